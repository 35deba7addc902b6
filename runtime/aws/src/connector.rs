//! The connector Lambda's logic: an SQS batch of queued events ([`Message`]
//! bodies) delivered to destinations, answered with partial batch
//! failures. A plain async function over [`Deliver`], so it runs in tests
//! with any [`Connector`] and without the Lambda runtime.
//!
//! Records are grouped by the queue they came from (`eventSourceARN`, named
//! `<resource prefix>-<destination>`), shaped for the destination, and sent
//! in batches of at most `batch.max_events` payloads and `batch.max_bytes`
//! bytes (a payload larger than `max_bytes` goes alone). A message's
//! attempts are SQS's `ApproximateReceiveCount`. Per outcome:
//!
//! - [`Outcome::Delivered`]: success; Lambda deletes the message.
//! - [`Outcome::Retry`]: [`fate`](uniflow_runtime::delivery::fate) decides, as in every backend. To retry after `d`,
//!   the message's visibility timeout is set to `d` (at most
//!   [`MAX_VISIBILITY`]) and it is reported in `batchItemFailures`, so SQS
//!   delivers it again then. To give up (attempts or maximum age), it goes
//!   to the dead-letter queue like a permanent failure.
//! - [`Outcome::Failed`], or an event that cannot be shaped: sent to the
//!   destination's dead-letter queue with `attempts` and `last_error`
//!   set, then success (Lambda deletes it from the queue).
//!
//! A message is never lost: when the dead-letter queue cannot take it, it
//! is reported as failed and stays in the queue. Should the connector fail
//! as a whole (a crash, a timeout), SQS's own redrive policy
//! (`maxReceiveCount` = the retry policy's attempts) still moves it to the
//! dead-letter queue, without a `last_error`.
//!
//! Each invocation adds what it did to the destination's counters
//! ([`crate::metrics`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use uniflow_runtime::backend::{BackendError, Clock, SystemClock};
use uniflow_runtime::delivery::metrics::DeliveryCounts;
use uniflow_runtime::delivery::{Connector, Fate as Decided, Message, Outcome, Outgoing, fate};
use uniflow_schemas::bundle::DestinationInfo;

use crate::env;
use crate::sqs::{QueueNames, change_visibility, message_body, send_all};

/// The longest a retry waits in the queue: SQS refuses a visibility timeout
/// beyond 12 hours from the receive, and this invocation may already have
/// run for up to a Lambda's 15 minutes.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600 - 15 * 60);
/// Batches of one destination sent at once.
const CONCURRENT_BATCHES: usize = 4;
/// The longest `last_error` kept on a dead-lettered message.
const MAX_ERROR_CHARS: usize = 2000;

/// Turns a stored event (JSON) into a destination's payload (the
/// destination's transforms, then its template), or says why it cannot.
pub type Shape = Box<dyn Fn(&[u8]) -> Result<Bytes, String> + Send + Sync>;

/// One destination the connector delivers to.
pub struct Destination {
    /// The destination as the bundle has it (retry and batch policies).
    pub info: DestinationInfo,
    /// How each event is shaped for it.
    pub shape: Shape,
    /// How payloads are sent to it.
    pub connector: Box<dyn Connector>,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("kind", &self.info.kind)
            .finish_non_exhaustive()
    }
}

/// Everything an invocation needs: the queues, the state table and the
/// destinations by name.
pub struct Deliver {
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    queues: QueueNames,
    state_table: String,
    destinations: BTreeMap<String, Destination>,
    clock: Box<dyn Clock>,
    jitter: fn() -> f64,
}

impl fmt::Debug for Deliver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliver")
            .field("queues", &self.queues)
            .field("state_table", &self.state_table)
            .field("destinations", &self.destinations)
            .finish_non_exhaustive()
    }
}

impl Deliver {
    /// Delivery from the queues `queues` names, counting in `state_table`.
    pub fn new(
        config: &aws_config::SdkConfig,
        queues: QueueNames,
        state_table: &str,
        destinations: BTreeMap<String, Destination>,
    ) -> Self {
        Deliver {
            sqs: aws_sdk_sqs::Client::new(config),
            dynamo: aws_sdk_dynamodb::Client::new(config),
            queues,
            state_table: state_table.to_owned(),
            destinations,
            clock: Box::new(SystemClock),
            jitter: fastrand::f64,
        }
    }

    /// [`Deliver::new`] with the queues and state table the template sets
    /// in the connector's environment (`UNIFLOW_QUEUE_URL_PREFIX`,
    /// `UNIFLOW_RESOURCE_PREFIX`, `UNIFLOW_STATE_TABLE`).
    pub fn from_env(
        config: &aws_config::SdkConfig,
        destinations: BTreeMap<String, Destination>,
    ) -> Result<Self, BackendError> {
        Ok(Self::new(
            config,
            QueueNames::from_env()?,
            &env("UNIFLOW_STATE_TABLE")?,
            destinations,
        ))
    }

    /// The same, reading the time from `clock` and backoff jitter from
    /// `jitter` (uniform in `[0, 1)`); for tests.
    pub fn with_clock(mut self, clock: impl Clock, jitter: fn() -> f64) -> Self {
        self.clock = Box::new(clock);
        self.jitter = jitter;
        self
    }
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// SQS message ids to report in `batchItemFailures`, in batch order.
    pub failed: Vec<String>,
    /// SQS message ids retried, with how long each waits.
    pub retried: Vec<(String, Duration)>,
    /// SQS message ids sent to a dead-letter queue, with why.
    pub dead_lettered: Vec<(String, String)>,
    /// What each destination's counters were given.
    pub counts: BTreeMap<String, DeliveryCounts>,
}

impl Handled {
    /// The answer Lambda expects (`ReportBatchItemFailures`).
    pub fn response(&self) -> SqsBatchResponse {
        SqsBatchResponse {
            batch_item_failures: self
                .failed
                .iter()
                .map(|id| BatchItemFailure {
                    item_identifier: id.clone(),
                })
                .collect(),
        }
    }
}

/// One received message.
struct Item {
    /// Its position in the batch.
    index: usize,
    sqs_id: String,
    receipt: Option<String>,
    message: Message,
    /// This receive's `ApproximateReceiveCount`.
    attempts: u32,
    /// Set when the body is not a delivery message: it goes to the
    /// dead-letter queue as is, with this error.
    unreadable: Option<String>,
}

/// What became of one item.
enum Fate {
    Delivered,
    RetryAfter(Duration),
    DeadLetter(String),
    /// Stays in the queue as failed (the dead-letter queue refused it).
    Failed(String),
}

/// Handles one SQS batch: [`process`], answered the way Lambda expects.
pub async fn handle(deliver: &Deliver, event: SqsEvent) -> SqsBatchResponse {
    process(deliver, event).await.response()
}

/// Handles one SQS batch and says what it did.
pub async fn process(deliver: &Deliver, event: SqsEvent) -> Handled {
    let now_ms = deliver.clock.now_ms();
    let mut handled = Handled::default();
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<Item>> = BTreeMap::new();
    for (index, record) in event.records.into_iter().enumerate() {
        let Some(sqs_id) = record.message_id.clone() else {
            tracing::error!(
                index,
                "an SQS record without a message id; it cannot be reported and is left to SQS's redrive"
            );
            continue;
        };
        let arn = record.event_source_arn.as_deref().unwrap_or_default();
        let Some(name) = deliver
            .queues
            .destination_of_arn(arn)
            .and_then(|d| deliver.destinations.get_key_value(d))
            .map(|(name, _)| name.as_str())
        else {
            tracing::error!(message_id = %sqs_id, event_source_arn = arn, "a message from a queue of no known destination (is the bundle current?); retried");
            failed.push((index, sqs_id));
            continue;
        };
        groups
            .entry(name)
            .or_default()
            .push(item(index, sqs_id, &record, now_ms));
    }

    let runs = groups.into_iter().map(|(name, items)| async move {
        let destination = &deliver.destinations[name];
        let fates = deliver_all(destination, &items).await;
        let settled = settle(deliver, name, destination, &items, fates).await;
        (name, items, settled)
    });
    for (name, items, fates) in join_all(runs).await {
        let counts = handled.counts.entry(name.to_owned()).or_default();
        let done_ms = deliver.clock.now_ms();
        for (item, fate) in items.iter().zip(fates) {
            match fate {
                Fate::Delivered => {
                    counts.delivered += 1;
                    counts
                        .latency
                        .record(done_ms.saturating_sub(item.message.received_ms));
                }
                Fate::RetryAfter(wait) => {
                    counts.retried += 1;
                    handled.retried.push((item.sqs_id.clone(), wait));
                    failed.push((item.index, item.sqs_id.clone()));
                }
                Fate::DeadLetter(reason) => {
                    counts.dead_lettered += 1;
                    handled.dead_lettered.push((item.sqs_id.clone(), reason));
                }
                Fate::Failed(why) => {
                    tracing::error!(destination = name, message_id = %item.message.id, error = %why, "could not dead-letter a message; it stays in the queue");
                    failed.push((item.index, item.sqs_id.clone()));
                }
            }
        }
    }

    let recording = handled.counts.iter().filter(|(_, c)| !c.is_empty()).map(
        |(name, counts)| async move {
            if let Err(e) =
                crate::metrics::record(&deliver.dynamo, &deliver.state_table, name, counts, now_ms)
                    .await
            {
                tracing::warn!(destination = %name, error = %e, "delivery counters not recorded");
            }
        },
    );
    join_all(recording).await;

    failed.sort();
    handled.failed = failed.into_iter().map(|(_, id)| id).collect();
    for (name, c) in &handled.counts {
        tracing::info!(
            destination = %name,
            delivered = c.delivered,
            retried = c.retried,
            dead_lettered = c.dead_lettered,
            "delivered a batch"
        );
    }
    handled
}

/// Reads one record. A body that is not a delivery message is kept as it
/// is, to be dead-lettered: an event JSON, or the text as a JSON string.
fn item(index: usize, sqs_id: String, record: &SqsMessage, now_ms: i64) -> Item {
    let attempts = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let body = record.body.as_deref().unwrap_or_default();
    let (message, unreadable) = match serde_json::from_str::<Message>(body) {
        Ok(message) => (message, None),
        Err(e) => {
            let event = if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
                Bytes::copy_from_slice(body.as_bytes())
            } else {
                Bytes::from(serde_json::Value::from(body).to_string())
            };
            let sent_ms = record
                .attributes
                .get("SentTimestamp")
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(now_ms);
            let message = Message {
                id: sqs_id.clone(),
                received_ms: sent_ms,
                attempts,
                last_error: None,
                event,
            };
            (
                message,
                Some(format!("the queue message is not a delivery message: {e}")),
            )
        }
    };
    Item {
        index,
        sqs_id,
        receipt: record.receipt_handle.clone(),
        message,
        attempts,
        unreadable,
    }
}

/// Shapes and sends every item; answers one outcome each (`Err` for an
/// item that goes straight to the dead-letter queue, with why).
async fn deliver_all(destination: &Destination, items: &[Item]) -> Vec<Result<Outcome, String>> {
    let mut outcomes: Vec<Option<Result<Outcome, String>>> = vec![None; items.len()];
    let mut shaped: Vec<(usize, Outgoing)> = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        if let Some(why) = &item.unreadable {
            outcomes[k] = Some(Err(why.clone()));
            continue;
        }
        match (destination.shape)(&item.message.event) {
            Ok(payload) => shaped.push((
                k,
                Outgoing {
                    id: item.message.id.clone(),
                    payload,
                },
            )),
            Err(e) => outcomes[k] = Some(Err(format!("the event cannot be shaped: {e}"))),
        }
    }
    let batches = batches(shaped, &destination.info);
    let sent: Vec<(Vec<usize>, Vec<Outcome>)> = futures::stream::iter(batches)
        .map(|(indices, payloads)| async move {
            let answered = destination.connector.deliver(&payloads).await;
            (indices, answered)
        })
        .buffered(CONCURRENT_BATCHES)
        .collect()
        .await;
    for (indices, answered) in sent {
        if answered.len() != indices.len() {
            tracing::error!(
                payloads = indices.len(),
                outcomes = answered.len(),
                "the connector answered the wrong number of outcomes; the missing ones are retried"
            );
        }
        let mut answered = answered.into_iter();
        for k in indices {
            outcomes[k] = Some(Ok(answered.next().unwrap_or_else(|| Outcome::Retry {
                reason: "the connector gave no outcome for this event".to_owned(),
                after: None,
            })));
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Ok(Outcome::Retry {
                    reason: "not attempted".to_owned(),
                    after: None,
                })
            })
        })
        .collect()
}

/// Splits payloads into deliveries of at most `max_events` and `max_bytes`
/// (a payload larger than `max_bytes` goes alone), keeping their order.
fn batches(
    shaped: Vec<(usize, Outgoing)>,
    info: &DestinationInfo,
) -> Vec<(Vec<usize>, Vec<Outgoing>)> {
    let max_events = (info.batch.max_events as usize).max(1);
    let max_bytes = info.batch.max_bytes as usize;
    let mut out: Vec<(Vec<usize>, Vec<Outgoing>)> = Vec::new();
    let mut bytes = 0usize;
    for (k, outgoing) in shaped {
        let size = outgoing.payload.len();
        let start_new = match out.last() {
            None => true,
            Some((indices, _)) => {
                indices.len() >= max_events || bytes.saturating_add(size) > max_bytes
            }
        };
        if start_new {
            out.push((Vec::new(), Vec::new()));
            bytes = 0;
        }
        if let Some((indices, payloads)) = out.last_mut() {
            indices.push(k);
            payloads.push(outgoing);
        }
        bytes = bytes.saturating_add(size);
    }
    out
}

/// Applies the retry policy to each outcome and carries it out:
/// visibility changes for retries, dead-letter sends for the rest.
async fn settle(
    deliver: &Deliver,
    name: &str,
    destination: &Destination,
    items: &[Item],
    outcomes: Vec<Result<Outcome, String>>,
) -> Vec<Fate> {
    let policy = &destination.info.retry;
    let now_ms = deliver.clock.now_ms();
    let mut fates: Vec<Fate> = Vec::with_capacity(items.len());
    for (item, outcome) in items.iter().zip(outcomes) {
        fates.push(match outcome {
            Err(why) => Fate::DeadLetter(why),
            Ok(outcome) => {
                // `fate` counts this attempt itself: SQS's receive count
                // already includes it.
                let before = Message {
                    attempts: item.attempts.saturating_sub(1),
                    ..item.message.clone()
                };
                match fate(policy, &before, &outcome, now_ms, (deliver.jitter)()) {
                    Decided::Delivered => Fate::Delivered,
                    Decided::Retry { after, .. } => Fate::RetryAfter(after.min(MAX_VISIBILITY)),
                    Decided::DeadLetter { reason, .. } => Fate::DeadLetter(reason),
                }
            }
        });
    }

    // Dead letters, in batch order.
    let mut letters: Vec<usize> = Vec::new();
    let mut bodies: Vec<String> = Vec::new();
    for (k, (item, fate)) in items.iter().zip(&mut fates).enumerate() {
        if let Fate::DeadLetter(reason) = fate {
            let message = Message {
                attempts: item.attempts,
                last_error: Some(truncate(reason, MAX_ERROR_CHARS)),
                ..item.message.clone()
            };
            match message_body(&message) {
                Ok(body) => {
                    letters.push(k);
                    bodies.push(body);
                }
                Err(e) => *fate = Fate::Failed(format!("cannot encode the dead letter: {e}")),
            }
        }
    }
    if !bodies.is_empty() {
        let dlq = deliver.queues.dlq_url(name);
        for (k, result) in letters
            .into_iter()
            .zip(send_all(&deliver.sqs, &dlq, &bodies).await)
        {
            if let Err(e) = result {
                fates[k] = Fate::Failed(format!("the dead-letter queue did not take it: {e}"));
            }
        }
    }

    // Retries: hidden until their next attempt.
    let changes: Vec<(String, i32)> = items
        .iter()
        .zip(&fates)
        .filter_map(|(item, fate)| match fate {
            Fate::RetryAfter(wait) => Some((
                item.receipt.clone()?,
                i32::try_from(wait.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX),
            )),
            _ => None,
        })
        .collect();
    if !changes.is_empty() {
        let queue = deliver.queues.queue_url(name);
        for (receipt, why) in change_visibility(&deliver.sqs, &queue, &changes).await {
            tracing::warn!(destination = name, receipt = %receipt, error = %why, "could not delay a retry; it comes back after the queue's visibility timeout");
        }
    }
    fates
}

/// At most `max` characters of `text`, marked when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use uniflow_schemas::bundle::{BatchPolicy, ConnectorSettings, RetryPolicy};

    use super::*;

    fn info(max_events: u32, max_bytes: u64) -> DestinationInfo {
        DestinationInfo {
            kind: "webhook".to_owned(),
            events: None,
            types: None,
            filter: None,
            condition: None,
            transforms: Vec::new(),
            template: None,
            connector: ConnectorSettings::Webhook {
                url: "https://example.com".to_owned(),
                headers: Vec::new(),
                timeout_secs: 10,
                secret: None,
            },
            retry: RetryPolicy {
                attempts: 3,
                exponential: true,
                delay_ms: 1000,
                max_age_secs: 3600,
            },
            batch: BatchPolicy {
                max_events,
                max_bytes,
                max_wait_secs: 0,
            },
        }
    }

    fn shaped(sizes: &[usize]) -> Vec<(usize, Outgoing)> {
        sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                (
                    k,
                    Outgoing {
                        id: format!("m{k}"),
                        payload: Bytes::from(vec![b'x'; n]),
                    },
                )
            })
            .collect()
    }

    fn check(sizes: &[usize], max_events: u32, max_bytes: u64, expect: &[&[usize]]) {
        let got: Vec<Vec<usize>> = batches(shaped(sizes), &info(max_events, max_bytes))
            .into_iter()
            .map(|(indices, payloads)| {
                assert_eq!(indices.len(), payloads.len());
                indices
            })
            .collect();
        let expect: Vec<Vec<usize>> = expect.iter().map(|b| b.to_vec()).collect();
        assert_eq!(
            got, expect,
            "{sizes:?} max_events={max_events} max_bytes={max_bytes}"
        );
    }

    #[test]
    fn batches_respect_the_event_and_byte_limits_in_order() {
        check(&[], 10, 100, &[]);
        check(&[1, 1, 1, 1, 1], 2, 100, &[&[0, 1], &[2, 3], &[4]]);
        check(&[40, 40, 40, 10], 10, 100, &[&[0, 1], &[2, 3]]);
        // A payload over the byte limit goes alone.
        check(&[10, 500, 10], 10, 100, &[&[0], &[1], &[2]]);
        // max_events 0 in a hand-written bundle still sends one at a time.
        check(&[1, 1], 0, 100, &[&[0], &[1]]);
    }

    #[test]
    fn errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
        assert_eq!(truncate("", 0), "");
    }
}
