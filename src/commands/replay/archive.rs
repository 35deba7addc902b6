//! Reading the raw archive for a replay: the hour partitions that overlap
//! the window (`raw/year=YYYY/month=MM/day=DD/hour=HH/`, the layout both
//! `uniflow dev` and Firehose write), and the events of their objects.
//!
//! [`Archive`] is what a replay reads through; [`LocalArchive`] reads
//! `DATA/archive/raw/` of `uniflow dev`. An archive on S3 is another
//! implementation with the same partitions and objects.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::read::MultiGzDecoder;
use uniflow_runtime::time::parse_ms;

use super::window::{HOUR_MS, Window};

/// One object (file) of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Where it is: a path, or an object key.
    pub name: String,
    /// Its size in bytes (compressed), for progress.
    pub size: u64,
}

/// One hour partition and its objects, in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The first ms of its hour (UTC).
    pub start_ms: i64,
    /// Its objects.
    pub objects: Vec<Object>,
}

/// A raw archive a replay reads.
pub trait Archive {
    /// Where it is, for messages.
    fn describe(&self) -> String;

    /// The partitions whose hour overlaps `window`, oldest first.
    async fn partitions(&self, window: &Window) -> anyhow::Result<Vec<Partition>>;

    /// The events of one object: one JSON text per line, in order.
    async fn read(&self, object: &Object) -> anyhow::Result<Vec<Vec<u8>>>;
}

/// `DATA/archive/raw/` of `uniflow dev`.
#[derive(Debug, Clone)]
pub struct LocalArchive {
    raw: PathBuf,
}

impl LocalArchive {
    /// The raw archive under `raw` (`DATA/archive/raw`).
    pub fn new(raw: &Path) -> LocalArchive {
        LocalArchive {
            raw: raw.to_owned(),
        }
    }

    /// The partitions overlapping `window`, walking only the years,
    /// months and days that overlap it.
    fn list(&self, window: &Window) -> anyhow::Result<Vec<Partition>> {
        let mut out = Vec::new();
        for (year, year_dir) in numbered(&self.raw, "year")? {
            let Some(start) = start_ms(year, 1, 1) else {
                continue;
            };
            let end = start_ms(year + 1, 1, 1).unwrap_or(i64::MAX);
            if !window.overlaps(start, end) {
                continue;
            }
            for (month, month_dir) in numbered(&year_dir, "month")? {
                let Some(start) = start_ms(year, month, 1) else {
                    continue;
                };
                let end = if month == 12 {
                    start_ms(year + 1, 1, 1)
                } else {
                    start_ms(year, month + 1, 1)
                }
                .unwrap_or(i64::MAX);
                if !window.overlaps(start, end) {
                    continue;
                }
                for (day, day_dir) in numbered(&month_dir, "day")? {
                    let Some(start) = start_ms(year, month, day) else {
                        continue;
                    };
                    if !window.overlaps(start, start + 24 * HOUR_MS) {
                        continue;
                    }
                    for (hour, hour_dir) in numbered(&day_dir, "hour")? {
                        if hour > 23 {
                            continue;
                        }
                        let start = start + hour * HOUR_MS;
                        if window.overlaps(start, start + HOUR_MS) {
                            out.push(Partition {
                                start_ms: start,
                                objects: objects(&hour_dir)?,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The lines of one object.
    fn lines(&self, object: &Object) -> anyhow::Result<Vec<Vec<u8>>> {
        let file =
            File::open(&object.name).with_context(|| format!("cannot open {}", object.name))?;
        let mut reader = BufReader::new(MultiGzDecoder::new(file));
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read {} (is it GZIP?)", object.name))?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line);
            }
        }
        Ok(lines)
    }
}

impl Archive for LocalArchive {
    fn describe(&self) -> String {
        self.raw.display().to_string()
    }

    async fn partitions(&self, window: &Window) -> anyhow::Result<Vec<Partition>> {
        self.list(window)
    }

    async fn read(&self, object: &Object) -> anyhow::Result<Vec<Vec<u8>>> {
        self.lines(object)
    }
}

/// The first ms of a UTC date, if it is one.
fn start_ms(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(0..=9999).contains(&year) {
        return None;
    }
    parse_ms(&format!("{year:04}-{month:02}-{day:02}"))
}

/// The subdirectories of `dir` named `KEY=N`, by `N`; none when `dir` does
/// not exist. Other entries are not the archive's and are passed over.
fn numbered(dir: &Path, key: &str) -> anyhow::Result<Vec<(i64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(key))
            .and_then(|n| n.strip_prefix('='))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        if entry.path().is_dir() {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The archive files of an hour directory (`*.gz`; a flush's `*.tmp` is not
/// one yet), by name: names carry the log range, so this is write order.
fn objects(dir: &Path) -> anyhow::Result<Vec<Object>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "gz") {
            continue;
        }
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_file() {
            out.push(Object {
                name: path.display().to_string(),
                size: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// Writes `lines` as `raw/year=.../hour=HH/NAME` (GZIP).
    pub fn write_object(raw: &Path, hour: &str, name: &str, lines: &[String]) {
        let (date, h) = hour.split_once('T').unwrap();
        let mut parts = date.split('-');
        let (y, m, d) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let dir = raw
            .join(format!("year={y}"))
            .join(format!("month={m}"))
            .join(format!("day={d}"))
            .join(format!("hour={h}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for line in lines {
            gz.write_all(line.as_bytes()).unwrap();
            gz.write_all(b"\n").unwrap();
        }
        std::fs::write(dir.join(name), gz.finish().unwrap()).unwrap();
    }

    fn window(from: &str, to: &str) -> Window {
        Window::parse(from, to, 0).unwrap()
    }

    /// The partitions of `window` as `YYYY-MM-DDTHH` and file names.
    fn listed(archive: &LocalArchive, window: &Window) -> Vec<(String, Vec<String>)> {
        archive
            .list(window)
            .unwrap()
            .into_iter()
            .map(|p| {
                let hour = uniflow_runtime::time::format_ms(p.start_ms)[..13].to_owned();
                let names = p
                    .objects
                    .iter()
                    .map(|o| {
                        Path::new(&o.name)
                            .file_name()
                            .unwrap()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                (hour, names)
            })
            .collect()
    }

    #[test]
    fn only_the_hours_overlapping_the_window_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        for hour in [
            "2025-12-31T23",
            "2026-11-24T23",
            "2026-11-25T00",
            "2026-11-25T09",
            "2026-11-25T10",
            "2026-11-25T11",
            "2026-12-01T00",
        ] {
            write_object(&raw, hour, "uniflow-1-2.json.gz", &[]);
        }
        // Not archive files: a flush in progress, something else, a bad hour.
        write_object(&raw, "2026-11-25T10", "uniflow-0-1.json.gz", &[]);
        write_object(&raw, "2026-11-25T10", "uniflow-2-3.json.gz.tmp", &[]);
        std::fs::write(raw.join("year=2026/month=11/day=25/hour=10/notes.txt"), "").unwrap();
        std::fs::create_dir_all(raw.join("year=2026/month=11/day=25/hour=24")).unwrap();
        std::fs::create_dir_all(raw.join("year=2026/month=11/day=31")).unwrap();
        std::fs::create_dir_all(raw.join("year=2026/month=13")).unwrap();
        std::fs::create_dir_all(raw.join("year=abc")).unwrap();
        std::fs::create_dir_all(raw.join("_tmp")).unwrap();
        let archive = LocalArchive::new(&raw);

        let hours = |from, to| -> Vec<String> {
            listed(&archive, &window(from, to))
                .into_iter()
                .map(|(h, _)| h)
                .collect()
        };
        // Edges: an hour is read when it overlaps [from, to).
        assert_eq!(
            hours("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z"),
            ["2026-11-25T10"]
        );
        assert_eq!(
            hours("2026-11-25T09:59:59.999Z", "2026-11-25T11:00:00.001Z"),
            ["2026-11-25T09", "2026-11-25T10", "2026-11-25T11"]
        );
        assert_eq!(
            hours("2026-11-25T10:30:00Z", "2026-11-25T10:31:00Z"),
            ["2026-11-25T10"]
        );
        // Across a day, a month and a year.
        assert_eq!(
            hours("2026-11-24T23:30:00Z", "2026-11-25T00:30:00Z"),
            ["2026-11-24T23", "2026-11-25T00"]
        );
        assert_eq!(
            hours("2025-12-31T00:00:00Z", "2026-11-25"),
            ["2025-12-31T23", "2026-11-24T23"]
        );
        assert_eq!(hours("2026-11-30", "2026-12-02"), ["2026-12-01T00"]);
        assert!(hours("2026-11-25T12:00:00Z", "2026-11-30").is_empty());
        // Files of an hour: archive files only, in write order.
        assert_eq!(
            listed(
                &archive,
                &window("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z")
            ),
            [(
                "2026-11-25T10".to_owned(),
                vec![
                    "uniflow-0-1.json.gz".to_owned(),
                    "uniflow-1-2.json.gz".to_owned()
                ]
            )]
        );
        // No archive yet: nothing to read.
        assert!(
            LocalArchive::new(&tmp.path().join("none"))
                .list(&window("2026-01-01", "2027-01-01"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn lines_are_read_in_order_without_blank_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        let lines = vec![
            r#"{"a":1}"#.to_owned(),
            String::new(),
            r#"{"a":2}"#.to_owned(),
        ];
        write_object(&raw, "2026-11-25T10", "f.json.gz", &lines);
        let archive = LocalArchive::new(&raw);
        let parts = archive.list(&window("2026-11-25", "2026-11-26")).unwrap();
        let read = archive.lines(&parts[0].objects[0]).unwrap();
        assert_eq!(read, [br#"{"a":1}"#.to_vec(), br#"{"a":2}"#.to_vec()]);

        // A file that is not GZIP names itself.
        let bad = raw.join("year=2026/month=11/day=25/hour=10/bad.json.gz");
        std::fs::write(&bad, "plain text").unwrap();
        let err = archive
            .lines(&Object {
                name: bad.display().to_string(),
                size: 10,
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("bad.json.gz"), "{err:#}");
    }
}
