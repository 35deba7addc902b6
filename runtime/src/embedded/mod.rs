//! The embedded backend of `uniflow dev`: everything on local disk under one
//! data directory, nothing else to install.
//!
//! ```text
//! DIR/log/            the durable event log (Kinesis on AWS)
//! DIR/archive/raw/    the raw archive, as Firehose writes it on S3
//! DIR/archive/violations/  quarantined events and their issues
//! DIR/profiles.redb   profiles, identities, timelines (DynamoDB on AWS)
//! DIR/deliveries.redb  delivery queues and dead letters (SQS on AWS)
//! DIR/state/          checkpoints
//! DIR/sources.json    each source's write key
//! ```

pub mod archive;
pub mod dedupe;
pub mod deliver;
pub mod log;
pub mod profiles;
pub mod queues;

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

    /// The profile store.
    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles.redb")
    }

    /// The delivery queues.
    pub fn deliveries(&self) -> PathBuf {
        self.root.join("deliveries.redb")
    }

    /// Secret values for `ssm:` and `secretsmanager:` references.
    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets.json")
    }

    /// Objects s3-export destinations write (`BUCKET/KEY`).
    pub fn exports(&self) -> PathBuf {
        self.root.join("exports")
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

/// How many log records one processor transaction takes at most (under
/// load; when idle a batch is whatever arrived). Larger batches amortise
/// the store's commit; this one keeps a batch under a second.
pub const PROCESS_BATCH: usize = 16_384;

/// Applies the next records of the log (after the store's cursor) to the
/// profile store in one transaction; returns how many records it read.
pub fn process_log(
    log: &Log,
    store: &profiles::EmbeddedProfiles,
    max_records: usize,
) -> Result<(usize, crate::profiles::Report), crate::profiles::BatchError> {
    let fail = |error: crate::backend::BackendError| crate::profiles::BatchError {
        done: 0,
        report: crate::profiles::Report::default(),
        error,
    };
    let from = store.cursor().map_err(fail)?;
    let mut reader = log
        .reader(from)
        .map_err(|e| fail(crate::backend::BackendError(e.to_string())))?;
    let mut bytes = Vec::new();
    let mut ranges = Vec::new();
    let mut offsets = Vec::new();
    let mut end = from;
    let mut read = 0;
    while read < max_records {
        match reader
            .next_view()
            .map_err(|e| fail(crate::backend::BackendError(e.to_string())))?
        {
            Some((kind, _, json, next)) => {
                if kind == crate::record::RecordKind::Accepted {
                    let start = bytes.len();
                    bytes.extend_from_slice(json);
                    ranges.push(start..bytes.len());
                    offsets.push(end);
                }
                end = next;
                read += 1;
            }
            None => break,
        }
    }
    if read == 0 {
        return Ok((0, crate::profiles::Report::default()));
    }
    let events: Vec<&[u8]> = ranges.iter().map(|r| &bytes[r.clone()]).collect();
    let report = store.apply_batch(&events, Some((&offsets, end)))?;
    Ok((read, report))
}

/// Runs the processor until `stop` turns true: then it finishes the batch
/// in hand, syncs the store and returns (what the log holds beyond is
/// applied at the next start, which resumes from the store's cursor). A
/// failing store is retried every second (nothing is skipped: the cursor
/// only moves with a committed batch). `say` receives what an operator
/// should see (failures, skipped events).
pub async fn run_processor(
    log: Log,
    store: profiles::EmbeddedProfiles,
    mut stop: watch::Receiver<bool>,
    say: impl Fn(&str) + Send + Sync + 'static,
) {
    let mut committed = log.watch();
    loop {
        if *stop.borrow() {
            break;
        }
        let behind = store.cursor().map_or(true, |c| log.committed() > c);
        if behind {
            let (l, s) = (log.clone(), store.clone());
            let result =
                tokio::task::spawn_blocking(move || process_log(&l, &s, PROCESS_BATCH)).await;
            let failure = match result {
                Ok(Ok((_, report))) => {
                    for (i, why) in &report.invalid {
                        say(&format!("processor: skipped event {i} of a batch: {why}"));
                    }
                    None
                }
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure {
                say(&format!("processor: {why}; retrying in 1s"));
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
            continue;
        }
        tokio::select! {
            r = committed.changed() => { if r.is_err() { break; } }
            _ = stop.changed() => {}
        }
    }
    let s = store.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.sync()).await {
        say(&format!(
            "processor: {e}; the next start applies again what was not synced"
        ));
    }
}
