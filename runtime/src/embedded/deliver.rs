//! The embedded delivery worker: one task per destination, reading its
//! queue ([`EmbeddedQueues`]: its cursor into the log, then its pending
//! messages) in rounds.
//!
//! A round takes what is due (pending messages first, then new events from
//! the log that the destination accepts), shapes each event, groups them
//! into batches of the destination's `batch` size, sends up to
//! [`IN_FLIGHT`] batches at once, applies [`fate`] to each outcome and
//! commits the outcomes with the cursor the round reached, in one
//! transaction. Commits land in order; when a round leaves the pending
//! messages as it found them (all from the log, all delivered: the steady
//! state), the next round reads and sends while it commits.
//!
//! While a destination fails every attempt of a round (it is down), the
//! worker stops reading new events from the log and only retries what is
//! pending when it comes due: an outage costs one attempt per backoff, not
//! a copy of the log, and the events behind the cursor wait in the log.
//! The first success resumes reading.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use uniflow_schemas::bundle::DestinationInfo;

use super::Log;
use super::queues::{EmbeddedQueues, Settle};
use crate::backend::{BackendError, Clock, SystemClock};
use crate::delivery::{Connector, Fate, Message, Outcome, Outgoing, fate, jitter};
use crate::record::RecordKind;

/// Batches one destination has in flight at once.
pub const IN_FLIGHT: usize = 8;

/// Shapes a stored event into the destination's payload.
pub type Shape = dyn Fn(&[u8]) -> Result<Bytes, String> + Send + Sync;

/// A destination as its worker runs it.
pub struct Route {
    /// Its name.
    pub name: String,
    /// What it receives and its retry and batch policies.
    pub info: DestinationInfo,
    /// Its transforms and template.
    pub shape: Box<Shape>,
    /// Its connector.
    pub connector: Arc<dyn Connector>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One message of a round and where it came from.
struct Item {
    from: Option<(i64, u64)>,
    message: Message,
}

/// What a round read.
struct Round {
    items: Vec<Item>,
    /// The log offset reached, if it read from the log.
    reached: Option<u64>,
    /// Fresh events dead-lettered without an attempt (too old).
    expired: Vec<Settle>,
}

/// Runs deliveries to one destination until `stop` turns true. Its queue
/// must have been made with [`EmbeddedQueues::cursor_or_start`] before
/// events it should receive were appended (else it starts at the log's
/// beginning). A round in
/// flight at the stop is abandoned uncommitted (its events are delivered
/// again at the next start). Store failures are reported through `say` and
/// retried every second.
pub async fn run_deliveries(
    log: Log,
    queues: EmbeddedQueues,
    route: Arc<Route>,
    mut stop: watch::Receiver<bool>,
    say: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let clock = SystemClock;
    let mut position = None;
    let mut healthy = true;
    let mut committed = log.watch();
    let mut put_back = queues.watch_put_back();
    // The last round's commit, still running while the next round reads
    // and sends when that round cannot depend on it (see `overlaps`).
    let mut in_commit: Option<JoinHandle<Result<(), BackendError>>> = None;
    let mut overlaps = false;
    loop {
        if *stop.borrow() {
            break;
        }
        if !overlaps && !settled(&mut in_commit, &route, &say, &mut position).await {
            pause(&mut stop, Duration::from_secs(1)).await;
            continue;
        }
        // What is put back from now on wakes an idle worker.
        put_back.borrow_and_update();
        let step = async {
            let at = match position {
                Some(at) => at,
                None => {
                    let (q, name) = (queues.clone(), route.name.clone());
                    let at = blocking(move || q.cursor_or_start(&name, 0)).await?;
                    position = Some(at);
                    at
                }
            };
            let now = clock.now_ms();
            let round = {
                let (l, q, r) = (log.clone(), queues.clone(), route.clone());
                blocking(move || read_round(&l, &q, &r, at, now, healthy)).await?
            };
            Ok::<_, BackendError>((at, now, round))
        };
        let (at, now, round) = match step.await {
            Ok(r) => r,
            Err(e) => {
                say(&format!("destination {}: {e}; retrying in 1s", route.name));
                pause(&mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if round.items.is_empty() {
            // Idle (or only skipping): let the last commit land first.
            overlaps = false;
            if !settled(&mut in_commit, &route, &say, &mut position).await {
                continue;
            }
            if round.reached.is_some_and(|r| r > at) || !round.expired.is_empty() {
                // Nothing for this destination in what was read: move on.
                let (q, name) = (queues.clone(), route.name.clone());
                let reached = round.reached;
                match blocking(move || q.settle(&name, &round.expired, reached, now)).await {
                    Ok(()) => position = reached.or(position),
                    Err(e) => {
                        say(&format!("destination {}: {e}; retrying in 1s", route.name));
                        pause(&mut stop, Duration::from_secs(1)).await;
                    }
                }
                continue;
            }
            let next_due = {
                let (q, name) = (queues.clone(), route.name.clone());
                blocking(move || q.next_due_ms(&name)).await.ok().flatten()
            };
            if !healthy && next_due.is_none() {
                healthy = true;
                continue;
            }
            let wait = next_due.map_or(Duration::from_secs(3600), |due| {
                Duration::from_millis(due.saturating_sub(clock.now_ms()).max(1) as u64)
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                r = committed.changed(), if healthy => { if r.is_err() { break; } }
                _ = put_back.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // Let a batch fill for up to `max_wait`, unless a round's worth is
        // already here.
        let batch = route.info.batch;
        if batch.max_wait_secs > 0 && round.items.len() < batch.max_events as usize {
            let oldest = round
                .items
                .iter()
                .map(|i| i.message.received_ms)
                .min()
                .unwrap_or(now);
            let deadline = oldest.saturating_add(batch.max_wait_secs as i64 * 1000);
            if deadline > now {
                overlaps = false;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis((deadline - now) as u64)) => {}
                    r = committed.changed() => { if r.is_err() { break; } }
                    _ = stop.changed() => {}
                }
                continue;
            }
        }
        let all_fresh = round.items.iter().all(|i| i.from.is_none());
        let settled_now = tokio::select! {
            s = deliver_round(&route, round.items, now) => s,
            _ = stop.changed() => break,
        };
        let delivered = settled_now
            .iter()
            .any(|s| matches!(s, Settle::Delivered { .. }));
        let retried = settled_now
            .iter()
            .any(|s| matches!(s, Settle::Retry { .. }));
        // The next round may read and send while this one commits only if
        // this one leaves the pending table as it found it: every message
        // came from the log and was delivered.
        overlaps = all_fresh
            && round.expired.is_empty()
            && settled_now
                .iter()
                .all(|s| matches!(s, Settle::Delivered { .. }));
        let mut all = round.expired;
        all.extend(settled_now);
        let reached = round.reached;
        let now = clock.now_ms();
        // Commits stay in order: each waits for the one before.
        let previous = in_commit.take();
        let (q, name) = (queues.clone(), route.name.clone());
        in_commit = Some(tokio::spawn(async move {
            if let Some(p) = previous {
                p.await
                    .map_err(|e| BackendError(format!("delivery worker: {e}")))??;
            }
            blocking(move || q.settle(&name, &all, reached, now)).await
        }));
        position = reached.or(position);
        healthy = delivered || !retried;
    }
    // A round in flight at the stop was abandoned; what was delivered
    // before it is committed, then synced.
    let _ = settled(&mut in_commit, &route, &say, &mut position).await;
    let q = queues.clone();
    if let Err(e) = blocking(move || q.sync()).await {
        say(&format!(
            "destination {}: {e}; the next start delivers again what was not synced",
            route.name
        ));
    }
}

/// Waits for the commit in flight, if any. On failure it says so and
/// forgets the position, so the worker reads again from the cursor last
/// committed (the rounds since are delivered again); returns whether the
/// commit landed.
async fn settled(
    in_commit: &mut Option<JoinHandle<Result<(), BackendError>>>,
    route: &Route,
    say: &Arc<dyn Fn(&str) + Send + Sync>,
    position: &mut Option<u64>,
) -> bool {
    let Some(task) = in_commit.take() else {
        return true;
    };
    let result = task
        .await
        .map_err(|e| BackendError(format!("delivery worker: {e}")))
        .and_then(|r| r);
    match result {
        Ok(()) => true,
        Err(e) => {
            say(&format!(
                "destination {}: {e}; delivering again from the last committed point in 1s",
                route.name
            ));
            *position = None;
            false
        }
    }
}

/// Reads a round: due pending messages, then (while the destination is
/// healthy) new accepted events it subscribed to, up to [`IN_FLIGHT`]
/// batches.
fn read_round(
    log: &Log,
    queues: &EmbeddedQueues,
    route: &Route,
    at: u64,
    now: i64,
    healthy: bool,
) -> Result<Round, BackendError> {
    let batch = route.info.batch;
    let capacity = IN_FLIGHT * batch.max_events.max(1) as usize;
    let max_bytes = IN_FLIGHT as u64 * batch.max_bytes.max(1);
    let mut items: Vec<Item> = queues
        .due(&route.name, now, capacity)?
        .into_iter()
        .map(|t| Item {
            from: Some(t.key),
            message: t.message,
        })
        .collect();
    if items.len() == capacity {
        // The read may have cut the last group that came due together:
        // leave it whole for the next round.
        let last = items.last().and_then(|i| i.from).map(|(due, _)| due);
        let keep = items
            .iter()
            .rposition(|i| i.from.map(|(due, _)| due) != last)
            .map_or(items.len(), |p| p + 1);
        items.truncate(keep);
    }
    let mut round = Round {
        items: Vec::new(),
        reached: None,
        expired: Vec::new(),
    };
    if healthy && items.len() < capacity && log.committed() > at {
        let mut reader = log.reader(at).map_err(|e| BackendError(e.to_string()))?;
        let mut bytes: u64 = items.iter().map(|i| i.message.event.len() as u64).sum();
        let max_age_ms = (route.info.retry.max_age_secs as i64).saturating_mul(1000);
        // Bound the scan too, so a destination that receives few events
        // still commits its progress through a long log.
        let mut scanned = 0;
        // A destination that takes every event needs no look inside it.
        let info = &route.info;
        let selective = info.types.is_some() || info.events.is_some() || info.condition.is_some();
        while items.len() < capacity && bytes < max_bytes && scanned < 65_536 {
            let Some(entry) = reader
                .next_entry()
                .map_err(|e| BackendError(e.to_string()))?
            else {
                break;
            };
            scanned += 1;
            round.reached = Some(entry.next);
            if entry.kind != RecordKind::Accepted {
                continue;
            }
            if selective
                && !serde_json::from_slice::<serde_json::Value>(entry.json)
                    .is_ok_and(|v| info.accepts(&v))
            {
                continue;
            }
            let received = entry.received_at_ms;
            let message = Message {
                id: entry.message_id.to_owned(),
                received_ms: received,
                attempts: 0,
                last_error: None,
                event: Bytes::copy_from_slice(entry.json),
            };
            if now.saturating_sub(received) > max_age_ms {
                round.expired.push(Settle::DeadLetter {
                    from: None,
                    reason: format!(
                        "expired: older than the retry policy's maximum age of {}s before its first attempt",
                        route.info.retry.max_age_secs
                    ),
                    message,
                });
                continue;
            }
            bytes += message.event.len() as u64;
            items.push(Item {
                from: None,
                message,
            });
        }
    }
    round.items = items;
    Ok(round)
}

/// Shapes, batches and sends a round's messages; returns each one's fate.
async fn deliver_round(route: &Arc<Route>, items: Vec<Item>, now: i64) -> Vec<Settle> {
    let policy = route.info.retry;
    let batch = route.info.batch;
    let mut settled = Vec::with_capacity(items.len());
    // Shape; a message that cannot be shaped fails at once.
    let mut ready: Vec<(Item, Outgoing)> = Vec::with_capacity(items.len());
    for item in items {
        match (route.shape)(&item.message.event) {
            Ok(payload) => {
                let out = Outgoing {
                    id: item.message.id.clone(),
                    payload,
                };
                ready.push((item, out));
            }
            Err(why) => settled.push(to_settle(
                &policy,
                item,
                &Outcome::Failed {
                    reason: format!("cannot shape the event: {why}"),
                },
                now,
                0.0,
            )),
        }
    }
    // Batches by count and bytes. Messages that failed together share a
    // due time and come due together: they form the same batch again, so a
    // retried batch keeps its `Idempotency-Key`.
    let mut batches: Vec<Vec<(Item, Outgoing)>> = Vec::new();
    let mut size = 0u64;
    for pair in ready {
        let len = pair.1.payload.len() as u64;
        let due = pair.0.from.map(|(due, _)| due);
        let start_new = match batches.last() {
            None => true,
            Some(b) => {
                b.len() >= batch.max_events.max(1) as usize
                    || size + len > batch.max_bytes
                    || b.last().map(|(i, _)| i.from.map(|(due, _)| due)) != Some(due)
            }
        };
        if start_new {
            batches.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(b) = batches.last_mut() {
            b.push(pair);
        }
    }
    let mut running = JoinSet::new();
    for (i, b) in batches.into_iter().enumerate() {
        let route = route.clone();
        running.spawn(async move {
            let (items, outgoing): (Vec<Item>, Vec<Outgoing>) = b.into_iter().unzip();
            let outcomes = route.connector.deliver(&outgoing).await;
            (i, items, outcomes)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(r) => done.push(r),
            // A connector that panicked: its batch is delivered again at
            // the next round (nothing is committed for it).
            Err(_) => continue,
        }
    }
    done.sort_by_key(|(i, _, _)| *i);
    let now = SystemClock.now_ms().max(now);
    for (_, items, outcomes) in done {
        let count = items.len();
        // One jitter per batch: a batch that failed comes due as one.
        let jitter = jitter();
        for (n, item) in items.into_iter().enumerate() {
            let outcome = outcomes.get(n).cloned().unwrap_or_else(|| Outcome::Retry {
                reason: format!(
                    "the connector answered {} outcomes for {count} events",
                    outcomes.len()
                ),
                after: None,
            });
            settled.push(to_settle(&policy, item, &outcome, now, jitter));
        }
    }
    settled
}

fn to_settle(
    policy: &uniflow_schemas::bundle::RetryPolicy,
    item: Item,
    outcome: &Outcome,
    now: i64,
    jitter: f64,
) -> Settle {
    match fate(policy, &item.message, outcome, now, jitter) {
        Fate::Delivered => Settle::Delivered {
            from: item.from,
            received_ms: item.message.received_ms,
        },
        Fate::Retry { after, message } => Settle::Retry {
            from: item.from,
            due_ms: now.saturating_add(after.as_millis() as i64),
            message,
        },
        Fate::DeadLetter { reason, message } => Settle::DeadLetter {
            from: item.from,
            reason,
            message,
        },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError(format!("delivery worker: {e}")))?
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}
