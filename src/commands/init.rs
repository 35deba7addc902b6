//! `uniflow init`: a starter project that passes `check`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::ExitStatus;

pub fn run(dir: &Path, force: bool) -> anyhow::Result<ExitStatus> {
    let file = dir.join("uniflow.kdl");
    let mut stderr = std::io::stderr().lock();
    if file.exists() && !force {
        writeln!(
            stderr,
            "error: {} already exists; pass --force to overwrite it",
            file.display()
        )?;
        return Ok(ExitStatus::Failure);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir_name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = uniflow_compiler::starter(&dir_name);
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(stderr, "created {}", file.display())?;
    writeln!(
        stderr,
        "next: edit it, then run `uniflow check {}`",
        dir.display()
    )?;
    Ok(ExitStatus::Success)
}
