//! The embedded backend of `uniflow dev`: everything on local disk under one
//! data directory, nothing else to install.
//!
//! ```text
//! DIR/log/            the durable event log (Kinesis on AWS)
//! DIR/archive/raw/    the raw archive, as Firehose writes it on S3
//! DIR/archive/violations/  quarantined events and their issues
//! DIR/state/          checkpoints
//! DIR/sources.json    each source's write key
//! ```

pub mod archive;
pub mod dedupe;
pub mod log;
pub mod profiles;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use archive::{ArchiveError, Archiver};
pub use dedupe::MemoryDedupe;
pub use log::{Log, LogError};

/// The paths under a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The directory.
    pub root: PathBuf,
}

impl DataDir {
    /// The layout under `root`.
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_owned(),
        }
    }

    /// The event log.
    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    /// The archives (`raw/`, `violations/`).
    pub fn archive(&self) -> PathBuf {
        self.root.join("archive")
    }

    /// Checkpoints.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Write keys.
    pub fn sources(&self) -> PathBuf {
        self.root.join("sources.json")
    }
}

/// How the archiver batches.
#[derive(Debug, Clone, Copy)]
pub struct ArchivePolicy {
    /// Flush when this many records wait.
    pub max_records: usize,
    /// Or when the oldest waiting record is this old.
    pub max_wait: Duration,
}

impl Default for ArchivePolicy {
    fn default() -> Self {
        ArchivePolicy {
            max_records: 50_000,
            max_wait: Duration::from_secs(2),
        }
    }
}

/// Runs the archiver until `stop` turns true, then archives what is left.
pub async fn run_archiver(
    log: Log,
    archiver: Archiver,
    policy: ArchivePolicy,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ArchiveError> {
    let archiver = Arc::new(std::sync::Mutex::new(archiver));
    let mut committed = log.watch();
    loop {
        let stopping = *stop.borrow();
        let pending = {
            let a = archiver.lock().map_err(|_| poisoned())?;
            log.committed() > a.checkpoint()
        };
        if pending {
            if !stopping {
                // Let a batch gather, unless stopping.
                tokio::select! {
                    () = tokio::time::sleep(policy.max_wait) => {}
                    _ = stop.changed() => {}
                }
            }
            let (log, archiver) = (log.clone(), archiver.clone());
            tokio::task::spawn_blocking(move || -> Result<(), ArchiveError> {
                let mut a = archiver.lock().map_err(|_| poisoned())?;
                while a.flush(&log, policy.max_records)? > 0 {}
                Ok(())
            })
            .await
            .map_err(|e| ArchiveError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })??;
            continue;
        }
        if stopping {
            return Ok(());
        }
        tokio::select! {
            r = committed.changed() => { if r.is_err() { return Ok(()); } }
            _ = stop.changed() => {}
        }
    }
}

fn poisoned() -> ArchiveError {
    ArchiveError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other("archiver state poisoned"),
    }
}
