//! The durable append-only log of `uniflow dev`: what Kinesis is on AWS.
//!
//! Records are framed (`length`, CRC-32, payload) in segment files named by
//! the byte offset they start at (`log/00000000000000000000.log`), rolled at
//! [`SEGMENT_BYTES`]. One writer thread does **group commit**: it takes every
//! append waiting, writes them with one `write`, makes them durable with one
//! `fdatasync`, and only then answers each caller, so concurrent requests
//! share the cost of a sync. A crash can leave a torn frame at the end of
//! the last segment; opening the log truncates it (nothing torn was ever
//! acknowledged).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use tokio::sync::{oneshot, watch};

use crate::backend::{BackendError, EventSink};
use crate::record::{Record, RecordKind};

/// A segment is rolled once it reaches this size.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Frame header: payload length and CRC-32, little endian.
const HEADER: usize = 8;
/// No record payload is larger (the event limit is 32 KB).
const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

/// Why the log could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_owned(),
        source,
    }
}

type Job = (Vec<Record>, oneshot::Sender<Result<(), BackendError>>);

/// The log's writing side, shared by every request.
#[derive(Debug, Clone)]
pub struct Log {
    dir: PathBuf,
    jobs: mpsc::Sender<Job>,
    committed: watch::Receiver<u64>,
    syncs: Arc<AtomicU64>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, repairing a torn tail, and starts
    /// its writer thread.
    pub fn open(dir: &Path) -> Result<Log, LogError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let segments = segments(dir)?;
        let (base, path) = match segments.last() {
            Some(&(base, ref path)) => (base, path.clone()),
            None => (0, segment_path(dir, 0)),
        };
        let valid = scan_valid_len(&path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        if len != valid {
            tracing::warn!(path = %path.display(), len, valid, "truncating a torn tail left by a crash");
            file.set_len(valid).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        file.seek(SeekFrom::Start(valid)).map_err(io(&path))?;
        sync_dir(dir)?;
        let end = base + valid;
        let (tx, rx) = mpsc::channel::<Job>();
        let (committed_tx, committed) = watch::channel(end);
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dir: dir.to_owned(),
            file,
            base,
            len: valid,
            committed: committed_tx,
            syncs: syncs.clone(),
        };
        thread::Builder::new()
            .name("uniflow-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io(dir))?;
        Ok(Log {
            dir: dir.to_owned(),
            jobs: tx,
            committed,
            syncs,
        })
    }

    /// The byte offset up to which records are durable.
    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// A receiver that changes whenever more records are durable.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// How many `fdatasync`s the writer has done (for the benchmark's report).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// A reader from byte offset `from` up to what is committed now.
    pub fn reader(&self, from: u64) -> Result<Reader, LogError> {
        Reader::new(&self.dir, from, self.committed(), 1 << 20)
    }

    /// The JSON of the committed record at byte offset `at` (a point read
    /// with a small buffer: the profile timeline refers to events by offset).
    pub fn json_at(&self, at: u64) -> Result<Option<Vec<u8>>, LogError> {
        if at >= self.committed() {
            return Ok(None);
        }
        let mut reader = Reader::new(&self.dir, at, self.committed(), 16 << 10)?;
        Ok(reader.next_view()?.map(|(_, _, json, _)| json.to_vec()))
    }
}

impl EventSink for Log {
    async fn append(&self, records: Vec<Record>) -> Result<(), BackendError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((records, tx))
            .map_err(|_| BackendError("the log writer has stopped".into()))?;
        rx.await
            .map_err(|_| BackendError("the log writer has stopped".into()))?
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    base: u64,
    len: u64,
    committed: watch::Sender<u64>,
    syncs: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        let mut buffer = Vec::with_capacity(1 << 20);
        // Blocks for the first job, then takes every job already waiting.
        while let Ok(first) = jobs.recv() {
            let mut group = vec![first];
            while let Ok(next) = jobs.try_recv() {
                group.push(next);
            }
            buffer.clear();
            for (records, _) in &group {
                for r in records {
                    encode(r, &mut buffer);
                }
            }
            let result = self.commit(&buffer);
            for (_, reply) in group {
                let _ = reply.send(result.clone().map_err(BackendError));
            }
        }
    }

    fn commit(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.len >= SEGMENT_BYTES {
            self.roll().map_err(|e| e.to_string())?;
        }
        let written = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        self.syncs.fetch_add(1, Ordering::Relaxed);
        match written {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.committed.send_replace(self.base + self.len);
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part was written, so the log stays whole.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(format!("writing the event log failed: {e}"))
            }
        }
    }

    fn roll(&mut self) -> Result<(), LogError> {
        let base = self.base + self.len;
        let path = segment_path(&self.dir, base);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.base = base;
        self.len = 0;
        Ok(())
    }
}

fn encode(r: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(r.kind.to_byte());
    out.extend_from_slice(&r.received_at_ms.to_le_bytes());
    for field in [&r.source, &r.message_id, &r.partition_key] {
        let bytes = &field.as_bytes()[..field.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&r.json);
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn decode(payload: &[u8]) -> Option<Record> {
    let kind = RecordKind::from_byte(*payload.first()?)?;
    let received_at_ms = i64::from_le_bytes(payload.get(1..9)?.try_into().ok()?);
    let mut at = 9;
    let mut field = || -> Option<String> {
        let len = u16::from_le_bytes(payload.get(at..at + 2)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(payload.get(at + 2..at + 2 + len)?).ok()?;
        at += 2 + len;
        Some(s.to_owned())
    };
    let (source, message_id, partition_key) = (field()?, field()?, field()?);
    Some(Record {
        kind,
        source,
        message_id,
        partition_key,
        received_at_ms,
        json: payload.get(at..)?.to_vec(),
    })
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The segments, by base offset.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = base {
            out.push((base, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The length of the longest prefix of whole, intact frames.
fn scan_valid_len(path: &Path) -> Result<u64, LogError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut valid = 0u64;
    let mut payload = Vec::new();
    loop {
        match read_frame(&mut reader, &mut payload) {
            Ok(Some(())) => valid += (HEADER + payload.len()) as u64,
            Ok(None) | Err(_) => return Ok(valid),
        }
    }
}

/// Reads one frame into `payload`: `None` at a clean end; an error for a
/// torn or corrupt frame.
fn read_frame(reader: &mut impl Read, payload: &mut Vec<u8>) -> std::io::Result<Option<()>> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match reader.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(header[4..].try_into().unwrap_or_default());
    if len > MAX_PAYLOAD {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    payload.resize(len as usize, 0);
    reader.read_exact(payload)?;
    if crc32fast::hash(payload) != crc {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(Some(()))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// A record borrowed from the reader: kind, received at (epoch ms), JSON,
/// and the offset just after it.
pub type View<'a> = (RecordKind, i64, &'a [u8], u64);

/// One record, borrowed from a [`Reader`].
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Accepted or quarantined.
    pub kind: RecordKind,
    /// When ingest received it (ms since the epoch).
    pub received_at_ms: i64,
    /// Its `messageId`.
    pub message_id: &'a str,
    /// Its JSON.
    pub json: &'a [u8],
    /// The offset just after it.
    pub next: u64,
}

/// Reads committed records in order, each with the offset after it.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    segments: Vec<(u64, PathBuf)>,
    current: Option<(u64, BufReader<File>)>,
    pos: u64,
    end: u64,
    payload: Vec<u8>,
    /// The read buffer's size.
    buffer: usize,
}

impl Reader {
    fn new(dir: &Path, from: u64, end: u64, buffer: usize) -> Result<Reader, LogError> {
        Ok(Reader {
            dir: dir.to_owned(),
            segments: segments(dir)?,
            current: None,
            pos: from,
            end,
            payload: Vec::new(),
            buffer,
        })
    }

    /// The offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next record, borrowed (no allocation): its kind, when it was
    /// received, its JSON, and the offset just after it.
    pub fn next_view(&mut self) -> Result<Option<View<'_>>, LogError> {
        Ok(self
            .next_entry()?
            .map(|e| (e.kind, e.received_at_ms, e.json, e.next)))
    }

    /// The next record, borrowed, with its message id.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, LogError> {
        if !self.advance()? {
            return Ok(None);
        }
        let p = &self.payload;
        let bad = || LogError::Io {
            path: self.dir.clone(),
            source: std::io::ErrorKind::InvalidData.into(),
        };
        let kind = p
            .first()
            .and_then(|b| RecordKind::from_byte(*b))
            .ok_or_else(bad)?;
        let received = p
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
            .ok_or_else(bad)?;
        // Source, message id, partition key: each a u16 length and bytes.
        let mut at = 9;
        let mut fields = [&[][..]; 3];
        for field in &mut fields {
            let len = p
                .get(at..at + 2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_le_bytes)
                .ok_or_else(bad)? as usize;
            *field = p.get(at + 2..at + 2 + len).ok_or_else(bad)?;
            at += 2 + len;
        }
        let message_id = std::str::from_utf8(fields[1]).map_err(|_| bad())?;
        let json = p.get(at..).ok_or_else(bad)?;
        Ok(Some(Entry {
            kind,
            received_at_ms: received,
            message_id,
            json,
            next: self.pos,
        }))
    }

    /// The next record and the offset just after it, or `None` at the end
    /// of what was committed when the reader was made.
    pub fn next_record(&mut self) -> Result<Option<(Record, u64)>, LogError> {
        if !self.advance()? {
            return Ok(None);
        }
        let record = decode(&self.payload).ok_or_else(|| LogError::Io {
            path: self.dir.clone(),
            source: std::io::ErrorKind::InvalidData.into(),
        })?;
        Ok(Some((record, self.pos)))
    }

    /// Reads the next frame into `self.payload`; false at the end.
    fn advance(&mut self) -> Result<bool, LogError> {
        if self.pos >= self.end {
            return Ok(false);
        }
        if self.current.is_none() {
            let Some((base, path)) = self
                .segments
                .iter()
                .rev()
                .find(|(base, _)| *base <= self.pos)
                .cloned()
            else {
                return Ok(false);
            };
            let mut file = File::open(&path).map_err(io(&path))?;
            file.seek(SeekFrom::Start(self.pos - base))
                .map_err(io(&path))?;
            self.current = Some((base, BufReader::with_capacity(self.buffer, file)));
        }
        let Some((base, reader)) = self.current.as_mut() else {
            return Ok(false);
        };
        let base = *base;
        match read_frame(reader, &mut self.payload) {
            Ok(Some(())) => {
                self.pos += (HEADER + self.payload.len()) as u64;
                Ok(true)
            }
            Ok(None) => {
                // The end of a segment: the next one starts here.
                self.current = None;
                if self.segments.iter().any(|(b, _)| *b == self.pos) {
                    self.advance()
                } else {
                    Ok(false)
                }
            }
            Err(source) => Err(LogError::Io {
                path: segment_path(&self.dir, base),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        Record {
            kind: if i.is_multiple_of(3) {
                RecordKind::Quarantined
            } else {
                RecordKind::Accepted
            },
            source: "web".into(),
            message_id: format!("m-{i}"),
            partition_key: format!("a-{}", i % 7),
            received_at_ms: 1_700_000_000_000 + i as i64,
            json: format!("{{\"messageId\":\"m-{i}\"}}").into_bytes(),
        }
    }

    #[tokio::test]
    async fn appends_are_read_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let handles: Vec<_> = (0..20)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.append((0..50).map(|i| record(t * 50 + i)).collect())
                        .await
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert!(log.syncs() <= 20, "group commit shares syncs");
        drop(log);
        let log = Log::open(dir.path()).unwrap();
        let mut reader = log.reader(0).unwrap();
        let mut seen = Vec::new();
        while let Some((r, _)) = reader.next_record().unwrap() {
            seen.push(r.message_id);
        }
        seen.sort();
        let mut want: Vec<String> = (0..1000).map(|i| format!("m-{i}")).collect();
        want.sort();
        assert_eq!(seen, want);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        log.append(vec![record(1), record(2)]).await.unwrap();
        let end = log.committed();
        drop(log);
        // A crash in the middle of the next write.
        let path = segment_path(dir.path(), 0);
        let mut torn = Vec::new();
        encode(&record(3), &mut torn);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(f);
        let log = Log::open(dir.path()).unwrap();
        assert_eq!(log.committed(), end);
        log.append(vec![record(4)]).await.unwrap();
        let mut reader = log.reader(0).unwrap();
        let mut ids = Vec::new();
        while let Some((r, _)) = reader.next_record().unwrap() {
            ids.push(r.message_id);
        }
        assert_eq!(ids, ["m-1", "m-2", "m-4"]);
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        encode(&record(5), &mut buf);
        let mut payload = Vec::new();
        read_frame(&mut &buf[..], &mut payload).unwrap().unwrap();
        assert_eq!(decode(&payload), Some(record(5)));
        buf[HEADER + 3] ^= 1;
        assert!(read_frame(&mut &buf[..], &mut payload).is_err());
    }
}
