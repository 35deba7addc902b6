//! Message ids seen within each source's dedupe window, in memory, rebuilt
//! from the log when `uniflow dev` starts (the log is the durable record of
//! every id accepted, so nothing else needs to be written).

use std::collections::HashMap;
use std::sync::Mutex;

use super::log::{Log, LogError};
use crate::backend::{BackendError, Dedupe};

/// The seen ids, with when each expires.
#[derive(Debug, Default)]
pub struct MemoryDedupe {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl MemoryDedupe {
    /// Ids of records in the log received within `window_secs(source)` of `now_ms`.
    pub fn rebuild(
        log: &Log,
        now_ms: i64,
        window_secs: impl Fn(&str) -> Option<u64>,
    ) -> Result<MemoryDedupe, LogError> {
        let mut seen = HashMap::new();
        let mut reader = log.reader(0)?;
        while let Some((r, _)) = reader.next_record()? {
            if let Some(window) = window_secs(&r.source) {
                let expires = r.received_at_ms + window as i64 * 1000;
                if expires > now_ms {
                    seen.insert((r.source, r.message_id), expires);
                }
            }
        }
        Ok(MemoryDedupe {
            seen: Mutex::new(seen),
        })
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Dedupe for MemoryDedupe {
    async fn first_seen(
        &self,
        keys: &[(String, String, u64)],
        now_ms: i64,
    ) -> Result<Vec<bool>, BackendError> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| BackendError("dedupe state poisoned".into()))?;
        if seen.len() > 100_000 && now_ms % 64 == 0 {
            seen.retain(|_, expires| *expires > now_ms);
        }
        Ok(keys
            .iter()
            .map(|(source, id, window)| {
                let key = (source.clone(), id.clone());
                match seen.get(&key) {
                    Some(&expires) if expires > now_ms => false,
                    _ => {
                        seen.insert(key, now_ms + *window as i64 * 1000);
                        true
                    }
                }
            })
            .collect())
    }

    async fn forget(&self, keys: &[(String, String)]) {
        if let Ok(mut seen) = self.seen.lock() {
            for key in keys {
                seen.remove(key);
            }
        }
    }
}
