//! `uniflow check`: every diagnostic of one file, in the chosen format.

use std::io::Write;
use std::path::Path;

use uniflow_compiler::diagnostic::{self, HumanOptions};

use super::{read, resolve};
use crate::ExitStatus;
use crate::cli::Format;

pub fn run(path: &Path, format: Format, color: bool) -> anyhow::Result<ExitStatus> {
    let file = resolve(path);
    let source = read(&file)?;
    let checked = uniflow_compiler::check(&source);
    let name = file.display().to_string();
    match format {
        Format::Human => {
            let text = diagnostic::render_human(
                &name,
                &source,
                &checked.diagnostics,
                HumanOptions {
                    color,
                    ..HumanOptions::default()
                },
            );
            std::io::stderr().lock().write_all(text.as_bytes())?;
        }
        Format::Json => {
            let text = diagnostic::render_json(&name, &source, &checked.diagnostics);
            std::io::stdout().lock().write_all(text.as_bytes())?;
        }
        Format::Github => {
            let text = diagnostic::render_github(&name, &source, &checked.diagnostics);
            std::io::stdout().lock().write_all(text.as_bytes())?;
        }
    }
    Ok(if checked.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
