//! One module per subcommand; each returns an [`ExitStatus`].

mod api;
mod aws;
mod build;
mod check;
pub mod deploy;
mod dev;
mod dev_api;
mod dlq;
mod fmt;
mod init;
pub mod plan;
mod profiles;
mod replay;
mod validate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::ExitStatus;
use crate::cli::{Cli, Color, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Init { dir, force } => init::run(&dir, force),
        Command::Check {
            path,
            format,
            color,
        } => check::run(&path, format, use_color(color)),
        Command::Build {
            path,
            out,
            check,
            color,
        } => build::run(&path, out.as_deref(), check, use_color(color)),
        Command::Plan(args) => plan::run(&args),
        Command::Dev {
            path,
            port,
            data,
            rate_limit,
            archive_wait_ms,
        } => dev::run(&path, port, data.as_deref(), rate_limit, archive_wait_ms),
        Command::Profiles { command } => profiles::run(command),
        Command::Dlq { command } => dlq::run(command),
        Command::Replay {
            destination,
            from,
            to,
            event,
            dry_run,
            aws,
            raw_bucket,
            api,
        } => replay::run(&replay::Request {
            destination,
            from,
            to,
            event,
            dry_run,
            aws: aws.then_some(replay::OnAws { raw_bucket }),
            api,
        }),
        Command::Validate { config, file } => validate::run(&config, file.as_deref()),
        Command::Fmt {
            paths,
            check,
            color,
        } => fmt::run(&paths, check, use_color(color)),
        Command::Apply {
            path,
            auto_approve,
            require_approval,
            lock_timeout,
            functions_dir,
            color,
        } => api::block_on(deploy::apply::run(deploy::ApplyRequest {
            input: if path.extension().is_some_and(|e| e == "json") {
                deploy::ApplyInputArg::Plan(path)
            } else {
                deploy::ApplyInputArg::Project(path)
            },
            auto_approve,
            require_approval,
            lock_timeout,
            functions_dir,
            color: use_color(color),
        })),
        Command::Destroy {
            path,
            auto_approve,
            delete_data,
            lock_timeout,
        } => api::block_on(async move {
            deploy::destroy::run(&deploy::destroy::DestroyRequest {
                path: &path,
                auto_approve,
                delete_data,
                lock_timeout,
            })
            .await
        }),
        Command::ForceUnlock { id, path } => api::block_on(deploy::force_unlock(id, path)),
        Command::BuildFunctions { out, functions_dir } => {
            deploy::functions::run(&out, functions_dir)
        }
    }
}

/// A project path: a file, or a directory holding `uniflow.kdl`.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("uniflow.kdl")
    } else {
        path.to_path_buf()
    }
}

/// The project's model and bundle, or exit 1 after printing its errors
/// (`command` needs a project without errors).
pub fn compile(
    path: &Path,
    command: &str,
) -> anyhow::Result<Result<(uniflow_compiler::Config, uniflow_schemas::Bundle), ExitStatus>> {
    use std::io::Write;
    use uniflow_compiler::diagnostic::{self, HumanOptions};

    let file = resolve(path);
    let source = read(&file)?;
    let (checked, artifacts) = uniflow_compiler::build(&source);
    let (Some(config), false) = (
        checked.config,
        checked
            .diagnostics
            .iter()
            .any(uniflow_compiler::Diagnostic::is_error),
    ) else {
        let text = diagnostic::render_human(
            &file.display().to_string(),
            &source,
            &checked.diagnostics,
            HumanOptions::default(),
        );
        let mut stderr = std::io::stderr().lock();
        stderr.write_all(text.as_bytes())?;
        writeln!(stderr, "{command} needs a project without errors")?;
        return Ok(Err(ExitStatus::Failure));
    };
    let artifacts = artifacts.context("the compiler produced no artifacts")?;
    let bundle = uniflow_schemas::Bundle::from_json(&artifacts.files["bundle.json"])
        .map_err(|e| anyhow::anyhow!("the compiled bundle does not load: {e}"))?;
    Ok(Ok((config, bundle)))
}

/// Reads a project file with a message that says which file and why.
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn use_color(choice: Color) -> bool {
    use_color_on(choice, std::io::stderr().is_terminal())
}

/// Whether to colour output going to a stream that `is_terminal` or not.
fn use_color_on(choice: Color, is_terminal: bool) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && is_terminal,
    }
}
