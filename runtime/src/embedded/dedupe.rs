//! Message ids seen within each source's dedupe window, in memory, rebuilt
//! from the log when `uniflow dev` starts (the log is the durable record of
//! every id accepted, so nothing else needs to be written).
//!
//! Per source: a hash set of ids and a queue of `(expiry, id)` in the order
//! they were seen. A source's window is fixed, so the queue is ordered by
//! expiry and expired ids are dropped from its front as time passes: memory
//! is bounded by what one window holds, and no call ever scans the set.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Mutex;

use super::log::{Log, LogError};
use crate::backend::{BackendError, Dedupe};

/// FxHash: message ids are not attacker-chosen keys of a long-lived
/// public table (they are scoped to an authenticated source), and SipHash
/// was a measurable part of ingest's cost.
type Fx = BuildHasherDefault<FxHasher>;

/// The hash rustc uses: a multiply and a rotate per word.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
struct Seen {
    /// Id to its expiry.
    ids: HashMap<String, i64, Fx>,
    queue: VecDeque<(i64, String)>,
}

impl Seen {
    fn expire(&mut self, now_ms: i64) {
        while let Some((expires, _)) = self.queue.front() {
            if *expires > now_ms {
                break;
            }
            if let Some((expires, id)) = self.queue.pop_front()
                && self.ids.get(&id) == Some(&expires)
            {
                // (An id forgotten and seen again has a later expiry.)
                self.ids.remove(&id);
            }
        }
    }
}

/// The seen ids, per source.
#[derive(Debug, Default)]
pub struct MemoryDedupe {
    sources: Mutex<HashMap<String, Seen, Fx>>,
}

impl MemoryDedupe {
    /// Ids of records in the log received within `window_secs(source)` of `now_ms`.
    pub fn rebuild(
        log: &Log,
        now_ms: i64,
        window_secs: impl Fn(&str) -> Option<u64>,
    ) -> Result<MemoryDedupe, LogError> {
        let mut sources: HashMap<String, Seen, Fx> = HashMap::default();
        let mut reader = log.reader(0)?;
        while let Some((r, _)) = reader.next_record()? {
            if let Some(window) = window_secs(&r.source) {
                let expires = r.received_at_ms + window as i64 * 1000;
                if expires > now_ms {
                    let seen = sources.entry(r.source).or_default();
                    if seen.ids.insert(r.message_id.clone(), expires).is_none() {
                        seen.queue.push_back((expires, r.message_id));
                    }
                }
            }
        }
        Ok(MemoryDedupe {
            sources: Mutex::new(sources),
        })
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.sources
            .lock()
            .map_or(0, |s| s.values().map(|seen| seen.ids.len()).sum())
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Dedupe for MemoryDedupe {
    async fn first_seen(
        &self,
        source: &str,
        window_secs: u64,
        ids: &[&str],
        now_ms: i64,
    ) -> Result<Vec<bool>, BackendError> {
        let mut sources = self
            .sources
            .lock()
            .map_err(|_| BackendError("dedupe state poisoned".into()))?;
        let seen = match sources.get_mut(source) {
            Some(seen) => seen,
            None => sources.entry(source.to_owned()).or_default(),
        };
        seen.expire(now_ms);
        let expires = now_ms + window_secs as i64 * 1000;
        Ok(ids
            .iter()
            .map(|id| {
                let fresh = !seen.ids.contains_key(*id);
                if fresh {
                    seen.ids.insert((*id).to_owned(), expires);
                    seen.queue.push_back((expires, (*id).to_owned()));
                }
                fresh
            })
            .collect())
    }

    async fn forget(&self, source: &str, ids: &[&str]) {
        if let Ok(mut sources) = self.sources.lock()
            && let Some(seen) = sources.get_mut(source)
        {
            // The queue entry stays until it expires; removing the id is
            // what makes a retry fresh.
            for id in ids {
                seen.ids.remove(*id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_seen_once_per_window_and_then_forgotten() {
        let d = MemoryDedupe::default();
        assert_eq!(
            d.first_seen("s", 10, &["a", "b", "a"], 0).await.unwrap(),
            [true, true, false]
        );
        assert_eq!(d.first_seen("s", 10, &["a"], 9_999).await.unwrap(), [false]);
        // The window has passed: a is new again, and b's memory is freed.
        assert_eq!(d.first_seen("s", 10, &["a"], 10_000).await.unwrap(), [true]);
        assert_eq!(d.len(), 1);
        d.forget("s", &["a"]).await;
        assert_eq!(d.first_seen("s", 10, &["a"], 10_001).await.unwrap(), [true]);
    }
}
