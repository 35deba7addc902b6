//! The embedded delivery queues of `uniflow dev`: one durable queue and one
//! dead-letter queue per destination, in one redb file
//! (`DIR/deliveries.redb`), with the semantics of the SQS pair the AWS
//! backend uses.
//!
//! A destination's queue is two parts:
//!
//! - **its cursor into the event log**: every accepted event after it that
//!   the destination subscribed to is waiting. The log is already durable,
//!   so the common path (delivered at the first attempt) writes nothing per
//!   event: a round of deliveries moves the cursor once. One cursor per
//!   destination, so a slow or broken destination never holds another back
//!   and a redelivery never re-sends to the others;
//! - **its pending messages**: events that failed and wait for their next
//!   attempt (the SQS visibility timeout), each with its attempts so far
//!   (the receive count) and last error, keyed by when they are due; and
//!   events put back by a redrive or a replay.
//!
//! A round's outcomes and the cursor it reached are committed in one
//! transaction: after a crash the round is delivered again (at least once,
//! with the same `Idempotency-Key`), never skipped. Rounds are synced to
//! disk once a second like the profile store; losing unsynced rounds in a
//! crash only redelivers them. What an operator enqueues (redrive, replay)
//! is synced before the call returns.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uniflow_schemas::condition::Condition;

use crate::backend::BackendError;
use crate::connectors::BoxFuture;
use crate::delivery::Message;
use crate::delivery::admin::{DeadLetter, Deliveries, Redriven};
use crate::delivery::metrics::{DeliveryCounts, DeliveryMetrics};

/// The log offset each destination has read up to.
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");
/// Messages waiting for an attempt: (destination, due ms, sequence) →
/// the message as JSON.
const PENDING: TableDefinition<(&str, i64, u64), &[u8]> = TableDefinition::new("pending");
/// Dead letters: (destination, sequence) → [`DeadLetter`] as JSON.
const DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead");
/// Delivery counters per destination, as JSON.
const COUNTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("counters");
/// The next sequence number.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// How long rounds may stay unsynced (see the module docs).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// A pending message taken for an attempt, and where it is kept.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Its key in the pending table: due ms and sequence.
    pub key: (i64, u64),
    /// The message.
    pub message: Message,
}

/// What became of one message in a round.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Delivered; `from` is its pending key when it was pending.
    Delivered {
        /// Its pending key, if it came from the pending table.
        from: Option<(i64, u64)>,
        /// When ingest received it.
        received_ms: i64,
    },
    /// To be attempted again at `due_ms`, as `message` (attempts counted).
    Retry {
        /// Its pending key, if it came from the pending table.
        from: Option<(i64, u64)>,
        /// When it is due.
        due_ms: i64,
        /// The message with its attempts and last error updated.
        message: Message,
    },
    /// To the dead-letter queue.
    DeadLetter {
        /// Its pending key, if it came from the pending table.
        from: Option<(i64, u64)>,
        /// Why.
        reason: String,
        /// The message with its attempts and last error updated.
        message: Message,
    },
}

/// The delivery queues on local disk. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedQueues {
    db: Arc<Database>,
    last_durable: Arc<Mutex<Instant>>,
    /// Bumped when an operator puts messages back (redrive, replay), so
    /// idle workers look at their queue again.
    put_back: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for EmbeddedQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueues").finish_non_exhaustive()
    }
}

fn db(e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("delivery queues: {e}"))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, BackendError> {
    serde_json::from_slice(bytes)
        .map_err(|e| BackendError(format!("delivery queues: unreadable {what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BackendError> {
    serde_json::to_vec(value).map_err(db)
}

impl EmbeddedQueues {
    /// Opens (or creates) the queues at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedQueues, BackendError> {
        let database = Database::create(path)
            .map_err(|e| BackendError(format!("delivery queues {}: {e}", path.display())))?;
        let txn = database.begin_write().map_err(db)?;
        {
            txn.open_table(CURSORS).map_err(db)?;
            txn.open_table(PENDING).map_err(db)?;
            txn.open_table(DEAD).map_err(db)?;
            txn.open_table(COUNTERS).map_err(db)?;
            txn.open_table(META).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(EmbeddedQueues {
            db: Arc::new(database),
            last_durable: Arc::new(Mutex::new(Instant::now())),
            put_back: Arc::new(watch::channel(0).0),
        })
    }

    /// The destination's cursor; a destination seen for the first time
    /// starts at `log_end` (it receives events from now on; `uniflow
    /// replay` sends it history), recorded durably.
    pub fn cursor_or_start(&self, destination: &str, log_end: u64) -> Result<u64, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let cursors = txn.open_table(CURSORS).map_err(db)?;
        if let Some(c) = cursors.get(destination).map_err(db)? {
            return Ok(c.value());
        }
        drop(cursors);
        drop(txn);
        let txn = self.db.begin_write().map_err(db)?;
        let at = {
            let mut cursors = txn.open_table(CURSORS).map_err(db)?;
            let existing = cursors.get(destination).map_err(db)?.map(|c| c.value());
            match existing {
                Some(c) => c,
                None => {
                    cursors.insert(destination, log_end).map_err(db)?;
                    log_end
                }
            }
        };
        txn.commit().map_err(db)?;
        Ok(at)
    }

    /// Changes whenever messages are put back on a queue by
    /// [`enqueue`](Self::enqueue) or [`redrive`](Self::redrive).
    pub fn watch_put_back(&self) -> watch::Receiver<u64> {
        self.put_back.subscribe()
    }

    fn wake(&self) {
        self.put_back.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Up to `limit` pending messages due at `now_ms`, soonest first.
    pub fn due(
        &self,
        destination: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Taken>, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let pending = txn.open_table(PENDING).map_err(db)?;
        let mut out = Vec::new();
        for entry in pending
            .range((destination, i64::MIN, 0)..=(destination, now_ms, u64::MAX))
            .map_err(db)?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(db)?;
            let (_, due, seq) = k.value();
            out.push(Taken {
                key: (due, seq),
                message: decode("pending message", v.value())?,
            });
        }
        Ok(out)
    }

    /// When the destination's next pending message is due.
    pub fn next_due_ms(&self, destination: &str) -> Result<Option<i64>, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let pending = txn.open_table(PENDING).map_err(db)?;
        let first = pending
            .range((destination, i64::MIN, 0)..=(destination, i64::MAX, u64::MAX))
            .map_err(db)?
            .next();
        match first {
            Some(entry) => Ok(Some(entry.map_err(db)?.0.value().1)),
            None => Ok(None),
        }
    }

    /// Commits a round: every message's fate, and the cursor it reached
    /// (`None`: it read nothing from the log). Synced at most a second
    /// later (see the module docs).
    pub fn settle(
        &self,
        destination: &str,
        settled: &[Settle],
        cursor: Option<u64>,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        {
            let mut last = self
                .last_durable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < SYNC_EVERY {
                txn.set_durability(Durability::None);
            } else {
                *last = Instant::now();
            }
        }
        {
            let mut pending = txn.open_table(PENDING).map_err(db)?;
            let mut dead = txn.open_table(DEAD).map_err(db)?;
            let mut counters_table = txn.open_table(COUNTERS).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let mut counters: DeliveryCounts = match counters_table.get(destination).map_err(db)? {
                Some(v) => decode("counters", v.value())?,
                None => DeliveryCounts::default(),
            };
            let mut seq = meta.get("seq").map_err(db)?.map_or(0, |v| v.value());
            for s in settled {
                let from = match s {
                    Settle::Delivered { from, .. }
                    | Settle::Retry { from, .. }
                    | Settle::DeadLetter { from, .. } => *from,
                };
                if let Some((due, n)) = from {
                    pending.remove((destination, due, n)).map_err(db)?;
                }
                match s {
                    Settle::Delivered { received_ms, .. } => {
                        counters.delivered += 1;
                        counters.latency.record(now_ms.saturating_sub(*received_ms));
                    }
                    Settle::Retry {
                        due_ms, message, ..
                    } => {
                        counters.retried += 1;
                        seq += 1;
                        pending
                            .insert((destination, *due_ms, seq), encode(message)?.as_slice())
                            .map_err(db)?;
                    }
                    Settle::DeadLetter {
                        reason, message, ..
                    } => {
                        counters.dead_lettered += 1;
                        seq += 1;
                        let letter = DeadLetter {
                            id: seq.to_string(),
                            failed_ms: Some(now_ms),
                            reason: reason.clone(),
                            message: message.clone(),
                        };
                        dead.insert((destination, seq), encode(&letter)?.as_slice())
                            .map_err(db)?;
                    }
                }
            }
            meta.insert("seq", seq).map_err(db)?;
            counters_table
                .insert(destination, encode(&counters)?.as_slice())
                .map_err(db)?;
            if let Some(c) = cursor {
                txn.open_table(CURSORS)
                    .map_err(db)?
                    .insert(destination, c)
                    .map_err(db)?;
            }
        }
        txn.commit().map_err(db)
    }

    /// Puts messages on the destination's queue, due at once, durably
    /// (what `uniflow replay` sends). Returns how many.
    pub fn enqueue(
        &self,
        destination: &str,
        messages: &[Message],
        now_ms: i64,
    ) -> Result<usize, BackendError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_durability(Durability::Immediate);
        {
            let mut pending = txn.open_table(PENDING).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let mut seq = meta.get("seq").map_err(db)?.map_or(0, |v| v.value());
            for m in messages {
                seq += 1;
                pending
                    .insert((destination, now_ms, seq), encode(m)?.as_slice())
                    .map_err(db)?;
            }
            meta.insert("seq", seq).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        self.wake();
        Ok(messages.len())
    }

    /// The destination's dead letters, oldest first, after sequence
    /// `after` (0: from the start), at most `limit`.
    pub fn dead_letters(
        &self,
        destination: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let dead = txn.open_table(DEAD).map_err(db)?;
        let mut out = Vec::new();
        for entry in dead
            .range((destination, after.saturating_add(1))..=(destination, u64::MAX))
            .map_err(db)?
        {
            if out.len() >= limit {
                break;
            }
            out.push(decode("dead letter", entry.map_err(db)?.1.value())?);
        }
        Ok(out)
    }

    /// Moves dead letters back to the queue, oldest first: those `filter`
    /// holds for (on the event), at most `max`, with their attempts reset.
    /// Durable when it returns.
    pub fn redrive(
        &self,
        destination: &str,
        max: Option<u64>,
        filter: Option<&Condition>,
        now_ms: i64,
    ) -> Result<Redriven, BackendError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_durability(Durability::Immediate);
        let mut done = Redriven::default();
        {
            let mut dead = txn.open_table(DEAD).map_err(db)?;
            let mut pending = txn.open_table(PENDING).map_err(db)?;
            let mut meta = txn.open_table(META).map_err(db)?;
            let mut seq = meta.get("seq").map_err(db)?.map_or(0, |v| v.value());
            let mut chosen = Vec::new();
            for entry in dead
                .range((destination, 0)..=(destination, u64::MAX))
                .map_err(db)?
            {
                let (k, v) = entry.map_err(db)?;
                let letter: DeadLetter = decode("dead letter", v.value())?;
                let matches = filter.is_none_or(|c| {
                    serde_json::from_slice::<serde_json::Value>(&letter.message.event)
                        .is_ok_and(|e| c.matches(&e))
                });
                if matches && max.is_none_or(|m| (chosen.len() as u64) < m) {
                    chosen.push((k.value().1, letter));
                } else {
                    done.kept += 1;
                }
            }
            for (n, letter) in chosen {
                dead.remove((destination, n)).map_err(db)?;
                let message = Message {
                    attempts: 0,
                    last_error: None,
                    ..letter.message
                };
                seq += 1;
                pending
                    .insert((destination, now_ms, seq), encode(&message)?.as_slice())
                    .map_err(db)?;
                done.moved += 1;
            }
            meta.insert("seq", seq).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        if done.moved > 0 {
            self.wake();
        }
        Ok(done)
    }

    /// The destination's counters, pending messages and dead letters.
    pub fn stats(&self, destination: &str) -> Result<(DeliveryCounts, u64, u64), BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let counters = match txn
            .open_table(COUNTERS)
            .map_err(db)?
            .get(destination)
            .map_err(db)?
        {
            Some(v) => decode("counters", v.value())?,
            None => DeliveryCounts::default(),
        };
        let pending = txn.open_table(PENDING).map_err(db)?;
        let mut pending_n = 0;
        for e in pending
            .range((destination, i64::MIN, 0)..=(destination, i64::MAX, u64::MAX))
            .map_err(db)?
        {
            e.map_err(db)?;
            pending_n += 1;
        }
        let dead = txn.open_table(DEAD).map_err(db)?;
        let mut dead_n = 0;
        for e in dead
            .range((destination, 0)..=(destination, u64::MAX))
            .map_err(db)?
        {
            e.map_err(db)?;
            dead_n += 1;
        }
        Ok((counters, pending_n, dead_n))
    }

    /// How many pending messages all destinations hold (a cheap check).
    pub fn pending_total(&self) -> Result<u64, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        txn.open_table(PENDING).map_err(db)?.len().map_err(db)
    }

    /// The destination's metrics.
    pub fn metrics(&self, destination: &str) -> Result<DeliveryMetrics, BackendError> {
        let (counts, queued, dlq_depth) = self.stats(destination)?;
        Ok(DeliveryMetrics::new(&counts, queued, dlq_depth))
    }

    /// Makes every commit so far durable.
    pub fn sync(&self) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(db)?;
        if let Ok(mut last) = self.last_durable.lock() {
            *last = Instant::now();
        }
        Ok(())
    }
}

/// Runs a store call off the async threads.
fn off_thread<'a, T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> BoxFuture<'a, Result<T, BackendError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| BackendError(format!("delivery queues: {e}")))?
    })
}

impl Deliveries for EmbeddedQueues {
    fn metrics<'a>(
        &'a self,
        destination: &'a str,
    ) -> BoxFuture<'a, Result<DeliveryMetrics, BackendError>> {
        let (q, d) = (self.clone(), destination.to_owned());
        off_thread(move || q.metrics(&d))
    }

    fn dead_letters<'a>(
        &'a self,
        destination: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BackendError>> {
        let (q, d) = (self.clone(), destination.to_owned());
        let after = match after.map(str::parse::<u64>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                let bad = after.unwrap_or_default().to_owned();
                return Box::pin(async move {
                    Err(BackendError(format!(
                        "`{bad}` is not a dead letter of the embedded queue (they are numbered)"
                    )))
                });
            }
        };
        off_thread(move || q.dead_letters(&d, after, limit))
    }

    fn redrive<'a>(
        &'a self,
        destination: &'a str,
        max: Option<u64>,
        filter: Option<&'a Condition>,
    ) -> BoxFuture<'a, Result<Redriven, BackendError>> {
        let (q, d, f) = (self.clone(), destination.to_owned(), filter.cloned());
        off_thread(move || q.redrive(&d, max, f.as_ref(), now_ms()))
    }

    fn enqueue<'a>(
        &'a self,
        destination: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<usize, BackendError>> {
        let (q, d) = (self.clone(), destination.to_owned());
        off_thread(move || q.enqueue(&d, &messages, now_ms()))
    }
}

fn now_ms() -> i64 {
    use crate::backend::{Clock, SystemClock};
    SystemClock.now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(id: &str) -> Message {
        Message {
            id: id.to_owned(),
            received_ms: 1_000,
            attempts: 0,
            last_error: None,
            event: Bytes::from(format!(
                r#"{{"type":"track","event":"E","messageId":"{id}"}}"#
            )),
        }
    }

    #[test]
    fn retries_come_due_in_order_and_dead_letters_redrive() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();
        assert_eq!(q.cursor_or_start("d", 42).unwrap(), 42);
        assert_eq!(q.cursor_or_start("d", 99).unwrap(), 42);
        let retry = |id: &str, due| Settle::Retry {
            from: None,
            due_ms: due,
            message: Message {
                attempts: 1,
                last_error: Some("HTTP 500".to_owned()),
                ..message(id)
            },
        };
        q.settle(
            "d",
            &[
                retry("late", 5_000),
                retry("soon", 2_000),
                Settle::DeadLetter {
                    from: None,
                    reason: "HTTP 400: bad".to_owned(),
                    message: message("bad"),
                },
                Settle::Delivered {
                    from: None,
                    received_ms: 1_000,
                },
            ],
            Some(50),
            1_500,
        )
        .unwrap();
        assert_eq!(q.cursor_or_start("d", 0).unwrap(), 50);
        assert!(q.due("d", 1_999, 10).unwrap().is_empty());
        let due = q.due("d", 5_000, 10).unwrap();
        let ids: Vec<_> = due.iter().map(|t| t.message.id.as_str()).collect();
        assert_eq!(ids, ["soon", "late"]);
        assert_eq!(q.next_due_ms("d").unwrap(), Some(2_000));
        // Another destination sees none of it.
        assert!(q.due("e", i64::MAX, 10).unwrap().is_empty());

        q.settle(
            "d",
            &[Settle::Delivered {
                from: Some(due[0].key),
                received_ms: 1_000,
            }],
            None,
            2_000,
        )
        .unwrap();
        let (counters, pending, dead) = q.stats("d").unwrap();
        assert_eq!(
            (counters.delivered, counters.retried, counters.dead_lettered),
            (2, 2, 1)
        );
        assert_eq!((pending, dead), (1, 1));
        assert_eq!(counters.latency.percentile(0.5), Some(500));
        assert_eq!(counters.latency.percentile(1.0), Some(1_000));

        let letters = q.dead_letters("d", 0, 10).unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason, "HTTP 400: bad");
        assert_eq!(letters[0].message.id, "bad");
        let filter = Condition::parse("event = 'Other'").unwrap();
        assert_eq!(
            q.redrive("d", None, Some(&filter), 3_000).unwrap(),
            Redriven { moved: 0, kept: 1 }
        );
        assert_eq!(
            q.redrive("d", Some(5), None, 3_000).unwrap(),
            Redriven { moved: 1, kept: 0 }
        );
        let due = q.due("d", 3_000, 10).unwrap();
        let back = due.iter().find(|t| t.message.id == "bad").unwrap();
        assert_eq!(back.message.attempts, 0);
        assert_eq!(back.message.last_error, None);
        assert!(q.dead_letters("d", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn enqueued_messages_are_due_at_once_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        {
            let q = EmbeddedQueues::open(&path).unwrap();
            assert_eq!(
                q.enqueue("d", &[message("a"), message("b")], 10).unwrap(),
                2
            );
        }
        let q = EmbeddedQueues::open(&path).unwrap();
        assert_eq!(q.due("d", 10, 10).unwrap().len(), 2);
        assert_eq!(q.pending_total().unwrap(), 2);
    }
}
