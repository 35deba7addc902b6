//! The `uniflow` command-line interface: reads and writes files, then hands
//! text to the compiler. Exit codes: 0 ok, 1 the user's configuration is
//! wrong, 2 uniflow itself failed (unreadable file, internal error).

mod cli;
mod commands;

/// mimalloc: `uniflow dev` allocates many small, short-lived buffers per
/// event across threads, where glibc's allocator cost a sixth of ingest's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything is fine.
    Success,
    /// The user's configuration (or input) has errors.
    Failure,
    /// Uniflow itself failed.
    Error,
    /// Something would change (`uniflow plan --detailed-exitcode`).
    Changes,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::from(0),
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error | ExitStatus::Changes => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            ExitStatus::Error.into()
        }
    }
}
