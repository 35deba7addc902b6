//! `uniflow validate`: check Segment-spec messages the way the runtime will.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::value::RawValue;
use uniflow_compiler::diagnostic::{self, HumanOptions};
use uniflow_schemas::bundle::Bundle;
use uniflow_schemas::validate::{Issue, Validator};

use super::{read, resolve};
use crate::ExitStatus;

#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    #[serde(rename = "messageId")]
    message_id: Option<&'a str>,
    valid: bool,
    issues: &'a [Issue],
}

pub fn run(config: &Path, file: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let Some(bundle) = load_bundle(config)? else {
        return Ok(ExitStatus::Failure);
    };
    let validator = Validator::new(&bundle);
    let mut input = Vec::new();
    match file {
        None => std::io::stdin()
            .read_to_end(&mut input)
            .context("cannot read standard input")?,
        Some(p) if p == Path::new("-") => std::io::stdin()
            .read_to_end(&mut input)
            .context("cannot read standard input")?,
        Some(p) => {
            input = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            input.len()
        }
    };
    let messages = split(&input);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut all_valid = true;
    for (index, bytes) in messages.iter().enumerate() {
        let verdict = validator.validate(bytes);
        all_valid &= verdict.is_valid();
        let line = Line {
            index,
            message_id: verdict.message_id.as_deref(),
            valid: verdict.is_valid(),
            issues: &verdict.issues,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if all_valid {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The messages of the input: the items of a `{"batch":[...]}` body, or the
/// non-blank lines of NDJSON.
fn split(input: &[u8]) -> Vec<&[u8]> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        batch: Vec<&'a RawValue>,
    }
    let trimmed = input.trim_ascii();
    if trimmed.starts_with(b"{")
        && let Ok(batch) = serde_json::from_slice::<Batch<'_>>(trimmed)
    {
        return batch.batch.iter().map(|m| m.get().as_bytes()).collect();
    }
    // Only JSON's own whitespace is trimmed: a form feed is not JSON.
    let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    input
        .split(|&b| b == b'\n')
        .map(|l| {
            let start = l.iter().position(|b| !json_space(b)).unwrap_or(l.len());
            let end = l
                .iter()
                .rposition(|b| !json_space(b))
                .map_or(start, |e| e + 1);
            &l[start..end]
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The bundle of a project: read from `bundle.json`, or compiled from
/// `uniflow.kdl` (printing its diagnostics; `None` when it has errors).
fn load_bundle(config: &Path) -> anyhow::Result<Option<Bundle>> {
    if config.extension().is_some_and(|e| e == "json") {
        let text = read(config)?;
        let bundle =
            Bundle::from_json(&text).with_context(|| format!("cannot use {}", config.display()))?;
        return Ok(Some(bundle));
    }
    let file = resolve(config);
    let source = read(&file)?;
    let checked = uniflow_compiler::check(&source);
    if checked.has_errors() {
        let name = file.display().to_string();
        let text = diagnostic::render_human(
            &name,
            &source,
            &checked.diagnostics,
            HumanOptions::default(),
        );
        std::io::stderr().lock().write_all(text.as_bytes())?;
        return Ok(None);
    }
    let config = checked
        .config
        .as_ref()
        .map(|c| uniflow_compiler::generate::bundle(c, &source));
    Ok(config)
}
