//! The raw archive and the violations archive of `uniflow dev`, written
//! from the log in the layout Firehose writes on S3: GZIP newline-delimited
//! JSON under `raw/year=YYYY/month=MM/day=DD/hour=HH/` (by the hour ingest
//! received each event, as Firehose uses arrival time), and quarantined
//! events under `violations/...` beside it.
//!
//! Exactly once across crashes: a flush covers a range of the log and
//! writes its files as `*.tmp` (synced), then an intent file naming the
//! renames and the new checkpoint, then renames, then the checkpoint. A
//! restart finishes an interrupted flush from the intent file, so a range is
//! never archived twice or skipped. File names carry the log range, so a
//! file is also traceable to the log.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::log::{Log, LogError};
use crate::record::RecordKind;
use crate::time::utc_hour;

/// Why archiving failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the archive failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `(year, month, day, hour)` in UTC.
type Hour = (i64, u32, u32, u32);

/// The intent of one flush, written before its renames.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    renames: Vec<(PathBuf, PathBuf)>,
    checkpoint: u64,
}

/// Writes archive files from the log.
#[derive(Debug)]
pub struct Archiver {
    root: PathBuf,
    state: PathBuf,
    checkpoint: u64,
}

impl Archiver {
    /// Opens the archive rooted at `root` (with `raw/` and `violations/`),
    /// keeping its checkpoint in `state`; finishes an interrupted flush.
    pub fn open(root: &Path, state: &Path) -> Result<Archiver, ArchiveError> {
        fs::create_dir_all(root).map_err(io(root))?;
        fs::create_dir_all(state).map_err(io(state))?;
        let mut archiver = Archiver {
            root: root.to_owned(),
            state: state.to_owned(),
            checkpoint: 0,
        };
        let intent_path = archiver.intent_path();
        match fs::read(&intent_path) {
            Ok(bytes) => {
                if let Ok(intent) = serde_json::from_slice::<Intent>(&bytes) {
                    archiver.finish(&intent)?;
                }
                fs::remove_file(&intent_path).map_err(io(&intent_path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&intent_path)(e)),
        }
        let checkpoint_path = archiver.checkpoint_path();
        archiver.checkpoint = match fs::read_to_string(&checkpoint_path) {
            Ok(text) => text.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&checkpoint_path)(e)),
        };
        remove_stray_tmp(root)?;
        Ok(archiver)
    }

    /// The log offset up to which everything is archived.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    fn intent_path(&self) -> PathBuf {
        self.state.join("archive.intent")
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.state.join("archive.checkpoint")
    }

    /// Archives everything committed to the log since the checkpoint, at
    /// most `max_records` records. Returns how many were archived.
    pub fn flush(&mut self, log: &Log, max_records: usize) -> Result<usize, ArchiveError> {
        let start = self.checkpoint;
        let mut reader = log.reader(start)?;
        // (kind, hour) -> gzip stream of that file.
        let mut files: BTreeMap<(RecordKind, Hour), GzEncoder<Vec<u8>>> = BTreeMap::new();
        let mut count = 0;
        let mut end = start;
        while count < max_records {
            let Some((kind, received_at_ms, json, after)) = reader.next_view()? else {
                break;
            };
            let hour = utc_hour(received_at_ms);
            let gz = files
                .entry((kind, hour))
                .or_insert_with(|| GzEncoder::new(Vec::new(), Compression::fast()));
            let write = gz.write_all(json).and_then(|()| gz.write_all(b"\n"));
            write.map_err(io(&self.root))?;
            count += 1;
            end = after;
        }
        if count == 0 {
            return Ok(0);
        }
        let mut renames = Vec::new();
        for ((kind, (y, m, d, h)), gz) in files {
            let prefix = match kind {
                RecordKind::Accepted => "raw",
                RecordKind::Quarantined => "violations",
            };
            let dir = self
                .root
                .join(prefix)
                .join(format!("year={y:04}"))
                .join(format!("month={m:02}"))
                .join(format!("day={d:02}"))
                .join(format!("hour={h:02}"));
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            let name = format!("uniflow-{start:020}-{end:020}.json.gz");
            let final_path = dir.join(&name);
            let tmp = dir.join(format!("{name}.tmp"));
            let bytes = gz.finish().map_err(io(&tmp))?;
            write_synced(&tmp, &bytes)?;
            renames.push((tmp, final_path));
        }
        let intent = Intent {
            renames,
            checkpoint: end,
        };
        let intent_bytes = serde_json::to_vec(&intent).unwrap_or_default();
        let intent_path = self.intent_path();
        write_synced(&intent_path, &intent_bytes)?;
        sync_dir(&self.state)?;
        self.finish(&intent)?;
        fs::remove_file(&intent_path).map_err(io(&intent_path))?;
        Ok(count)
    }

    /// Carries out a flush's renames and moves the checkpoint.
    fn finish(&mut self, intent: &Intent) -> Result<(), ArchiveError> {
        for (tmp, final_path) in &intent.renames {
            if tmp.exists() {
                fs::rename(tmp, final_path).map_err(io(final_path))?;
            }
            if let Some(dir) = final_path.parent() {
                sync_dir(dir)?;
            }
        }
        let path = self.checkpoint_path();
        let tmp = self.state.join("archive.checkpoint.tmp");
        write_synced(&tmp, intent.checkpoint.to_string().as_bytes())?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.state)?;
        self.checkpoint = intent.checkpoint;
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// `*.tmp` files of a flush that crashed before its intent was written.
fn remove_stray_tmp(dir: &Path) -> Result<(), ArchiveError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            remove_stray_tmp(&path)?;
        } else if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}
