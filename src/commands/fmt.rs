//! `uniflow fmt`: canonical formatting, in place or as a check.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use uniflow_compiler::diagnostic::{self, HumanOptions};
use uniflow_compiler::fmt::{self, FormatError};

use super::{read, resolve};
use crate::ExitStatus;

pub fn run(paths: &[PathBuf], check: bool, color: bool) -> anyhow::Result<ExitStatus> {
    let mut status = ExitStatus::Success;
    let mut stderr = std::io::stderr().lock();
    let mut unformatted = 0;
    for path in paths {
        let file = resolve(path);
        let name = file.display().to_string();
        let source = read(&file)?;
        let formatted = match fmt::format(&source) {
            Ok(text) => text,
            Err(FormatError::Syntax(diags)) => {
                let options = HumanOptions {
                    color,
                    ..HumanOptions::default()
                };
                stderr.write_all(
                    diagnostic::render_human(&name, &source, &diags, options).as_bytes(),
                )?;
                status = worst(status, ExitStatus::Failure);
                continue;
            }
            Err(err @ FormatError::Internal(_)) => {
                writeln!(stderr, "error: {name}: {err}")?;
                status = ExitStatus::Error;
                continue;
            }
        };
        if formatted == source {
            continue;
        }
        if check {
            writeln!(stderr, "would reformat: {name}")?;
            unformatted += 1;
            status = worst(status, ExitStatus::Failure);
        } else {
            std::fs::write(&file, formatted).with_context(|| format!("cannot write {name}"))?;
            writeln!(stderr, "formatted: {name}")?;
        }
    }
    if check && unformatted > 0 {
        writeln!(
            stderr,
            "{unformatted} file(s) not formatted; run `uniflow fmt` to fix"
        )?;
    }
    Ok(status)
}

fn worst(a: ExitStatus, b: ExitStatus) -> ExitStatus {
    match (a, b) {
        (ExitStatus::Error, _) | (_, ExitStatus::Error) => ExitStatus::Error,
        (ExitStatus::Failure, _) | (_, ExitStatus::Failure) => ExitStatus::Failure,
        _ => ExitStatus::Success,
    }
}
