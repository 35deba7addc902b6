//! `uniflow build`: write (or check) the generated artifacts.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use uniflow_compiler::diagnostic::{self, HumanOptions};

use super::{read, resolve};
use crate::ExitStatus;

/// Folders under the output directory that `build` owns entirely: a file
/// there that the project no longer generates is deleted.
const OWNED: &[&str] = &["schemas", "lambda"];

pub fn run(
    path: &Path,
    out: Option<&Path>,
    check: bool,
    color: bool,
) -> anyhow::Result<ExitStatus> {
    let file = resolve(path);
    let source = read(&file)?;
    let name = file.display().to_string();
    let (checked, artifacts) = uniflow_compiler::build(&source);
    let mut stderr = std::io::stderr().lock();
    if !checked.diagnostics.is_empty() {
        let options = HumanOptions {
            color,
            ..HumanOptions::default()
        };
        stderr.write_all(
            diagnostic::render_human(&name, &source, &checked.diagnostics, options).as_bytes(),
        )?;
    }
    let Some(artifacts) = artifacts else {
        writeln!(stderr, "nothing was built: fix the errors above")?;
        return Ok(ExitStatus::Failure);
    };
    let out_dir = out.map(Path::to_path_buf).unwrap_or_else(|| {
        file.parent()
            .map_or_else(|| PathBuf::from("build"), |p| p.join("build"))
    });
    let existing = owned_files(&out_dir)?;
    let wanted: BTreeSet<PathBuf> = artifacts.files.keys().map(|k| out_dir.join(k)).collect();
    let stale: Vec<&PathBuf> = existing.iter().filter(|p| !wanted.contains(*p)).collect();
    let mut changed = Vec::new();
    for (rel, text) in &artifacts.files {
        let target = out_dir.join(rel);
        let current = std::fs::read(&target).ok();
        if current.as_deref() != Some(text.as_bytes()) {
            changed.push((target, text));
        }
    }
    if check {
        for (target, _) in &changed {
            writeln!(stderr, "out of date: {}", target.display())?;
        }
        for target in &stale {
            writeln!(stderr, "no longer generated: {}", target.display())?;
        }
        if changed.is_empty() && stale.is_empty() {
            writeln!(stderr, "{} is up to date", out_dir.display())?;
            return Ok(ExitStatus::Success);
        }
        writeln!(
            stderr,
            "run `uniflow build` to update {}",
            out_dir.display()
        )?;
        return Ok(ExitStatus::Failure);
    }
    for (target, text) in &changed {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    for target in &stale {
        std::fs::remove_file(target)
            .with_context(|| format!("cannot remove {}", target.display()))?;
    }
    writeln!(
        stderr,
        "built {} files into {} ({} written, {} removed, {} unchanged)",
        artifacts.files.len(),
        out_dir.display(),
        changed.len(),
        stale.len(),
        artifacts.files.len() - changed.len()
    )?;
    Ok(ExitStatus::Success)
}

fn owned_files(out_dir: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    for dir in OWNED {
        walk(&out_dir.join(dir), &mut found)?;
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else {
            found.insert(path);
        }
    }
    Ok(())
}
