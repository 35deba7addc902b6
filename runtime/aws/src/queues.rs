//! Operations on a deployed stack's destination queues, for the CLI's
//! `uniflow dlq list|show|redrive DEST` and `uniflow replay DEST` with
//! `--aws`. Queues are found by name (`GetQueueUrl`) from the stack's
//! resource prefix.
//!
//! - Peeking ([`Queues::dlq_list`], [`Queues::dlq_show`]) receives with a
//!   short visibility timeout and then releases every message it received
//!   (visibility 0), so nothing is consumed; while it runs, the messages it
//!   holds are invisible to others.
//! - [`Queues::redrive`] moves dead letters back to the queue with their
//!   attempts reset and their last error cleared, deleting each from the
//!   dead-letter queue only once the queue has it (so a failure part-way
//!   may leave a message in both, never in neither). It does not use
//!   `StartMessageMoveTask`, which cannot reset attempts or filter.
//! - [`Queues::replay`] reads the raw archive (GZIP NDJSON under
//!   `raw/year=YYYY/month=MM/day=DD/hour=HH/`) for a time window and sends
//!   the events one destination accepts to its queue only.
//!
//! SQS keeps no order, so listings are sorted (by when each message was
//! sent to the dead-letter queue, then its id) and replay goes object by
//! object in key order, line by line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message as SqsMessage, MessageSystemAttributeName};
use serde::Serialize;
use uniflow_runtime::delivery::Message;
use uniflow_runtime::time::{parse_ms, utc_hour};
use uniflow_schemas::bundle::DestinationInfo;
use uniflow_schemas::condition::Condition;

use crate::sqs::{
    MAX_MESSAGE_BYTES, Unsent, change_visibility, delete_all, dlq_name, message_body, queue_name,
    send_all,
};

/// How long a peeked message stays hidden before it is released (it is
/// released as soon as the listing ends; this bounds a crash).
const PEEK_VISIBILITY_SECS: i32 = 30;
/// How long redrive holds the messages it has not moved yet.
const REDRIVE_VISIBILITY_SECS: i32 = 300;
/// A long poll of one second: SQS then answers from all its servers, so an
/// empty answer means the queue has nothing visible.
const WAIT_SECS: i32 = 1;
/// Firehose names objects by when it received the records, which is at or
/// after ingest's `receivedAt`, by up to its buffering interval (300 s in
/// the template). One hour after the window's end is listed too.
const ARCHIVE_LAG_MS: i64 = 3_600_000;
const HOUR_MS: i64 = 3_600_000;

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// No queue of that name: a destination that is not deployed.
    #[error(
        "there is no queue `{0}`: is the destination named right, and is the stack deployed (`uniflow apply`)?"
    )]
    NoSuchQueue(String),
    /// Messages too large for SQS: none of the batch was sent.
    #[error(
        "{} message(s) are larger than SQS's {MAX_MESSAGE_BYTES} bytes, so none was queued: {}",
        .0.len(),
        .0.join(", ")
    )]
    TooLarge(Vec<String>),
    /// A message whose event is not JSON, so it has no queue body.
    #[error("message {id} cannot be queued: its event is not JSON ({message})")]
    Unencodable {
        /// The message's id.
        id: String,
        /// Why.
        message: String,
    },
    /// An SQS call failed.
    #[error("SQS {operation} on `{queue}` failed: {message}")]
    Sqs {
        /// The call.
        operation: &'static str,
        /// The queue's name.
        queue: String,
        /// What SQS said.
        message: String,
    },
    /// An S3 call failed, or an object could not be read.
    #[error("s3://{bucket}/{key}: {message}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// No bucket carries the tags looked for.
    #[error(
        "no bucket is tagged {tags}{}: is the stack deployed (`uniflow apply`)?",
        if .unreadable.is_empty() { String::new() } else { format!(" (the tags of {} could not be read)", .unreadable.join("; ")) }
    )]
    NoSuchBucket {
        /// The tags, `key=value, ...`.
        tags: String,
        /// Buckets whose tags could not be read, with why.
        unreadable: Vec<String>,
    },
    /// More than one bucket carries the tags looked for.
    #[error("more than one bucket is tagged {tags}: {}", .buckets.join(", "))]
    SeveralBuckets {
        /// The tags, `key=value, ...`.
        tags: String,
        /// The buckets.
        buckets: Vec<String>,
    },
    /// `from` is not before `to`.
    #[error("the window is empty: the start ({from}) must be before the end ({to})")]
    EmptyWindow {
        /// The start, as given (ISO 8601).
        from: String,
        /// The end, as given (ISO 8601).
        to: String,
    },
}

/// One message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// SQS's id of the message in the dead-letter queue.
    pub sqs_message_id: String,
    /// The receipt handle of the receive that peeked it; valid to delete
    /// it until someone receives it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// When it was sent to the dead-letter queue (ms since the epoch).
    pub sent_at_ms: i64,
    /// The message: its event, attempts and last error.
    pub message: Message,
}

/// What a redrive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages moved back to the queue.
    pub moved: usize,
    /// Messages seen and left in the dead-letter queue (not matching the
    /// filter, past `max`, or not delivery messages).
    pub kept: usize,
}

/// What to replay.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    /// The raw archive's bucket.
    pub bucket: &'a str,
    /// The key prefix before the partitions: `raw/` as the template writes.
    pub prefix: &'a str,
    /// The destination's name.
    pub destination: &'a str,
    /// The destination (its subscription and filter are applied).
    pub info: &'a DestinationInfo,
    /// Events received at or after this (ms since the epoch)...
    pub from_ms: i64,
    /// ...and before this.
    pub to_ms: i64,
    /// Only track events of this name, when set.
    pub event: Option<&'a str>,
    /// Count what would be sent, send nothing.
    pub dry_run: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Archive objects read.
    pub objects: usize,
    /// Events read from them.
    pub scanned: usize,
    /// Events in the window the destination accepts (and of the event
    /// asked for).
    pub selected: usize,
    /// Those sent to its queue (none in a dry run).
    pub sent: usize,
    /// Lines that are not an event with a `messageId` and a `receivedAt`.
    pub unreadable: usize,
    /// `messageId`s of events too large for SQS, not sent.
    pub too_large: Vec<String>,
}

/// A stack's destination queues.
#[derive(Debug, Clone)]
pub struct Queues {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    resource_prefix: String,
}

/// A message received and not yet dealt with.
struct Held {
    receipt: String,
    letter: Result<DeadLetter, String>,
}

impl Queues {
    /// The queues of the stack whose resources are named under
    /// `resource_prefix` (`<project>-<stage>`).
    pub fn new(config: &aws_config::SdkConfig, resource_prefix: &str) -> Self {
        Queues {
            sqs: aws_sdk_sqs::Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
            resource_prefix: resource_prefix.to_owned(),
        }
    }

    async fn url(&self, name: &str) -> Result<String, QueueError> {
        match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(out) => out.queue_url.ok_or_else(|| QueueError::Sqs {
                operation: "GetQueueUrl",
                queue: name.to_owned(),
                message: "no URL in the answer".to_owned(),
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist()) =>
            {
                Err(QueueError::NoSuchQueue(name.to_owned()))
            }
            Err(e) => Err(QueueError::Sqs {
                operation: "GetQueueUrl",
                queue: name.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    /// Receives up to `max` (1 to 10) messages, hiding them for
    /// `visibility` seconds.
    async fn receive(
        &self,
        name: &str,
        url: &str,
        max: usize,
        visibility: i32,
    ) -> Result<Vec<SqsMessage>, QueueError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(visibility)
            .wait_time_seconds(WAIT_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| QueueError::Sqs {
                operation: "ReceiveMessage",
                queue: name.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Makes messages visible again; a failure only delays them (they come
    /// back after their visibility timeout), so it is logged.
    async fn release(&self, url: &str, receipts: Vec<String>) {
        let changes: Vec<(String, i32)> = receipts.into_iter().map(|r| (r, 0)).collect();
        for (_, why) in change_visibility(&self.sqs, url, &changes).await {
            tracing::warn!(queue_url = url, error = %why, "a message could not be released; it reappears after its visibility timeout");
        }
    }

    /// Receives until the queue shows nothing new or `enough` says stop;
    /// every message stays held (hidden for `visibility` seconds).
    async fn hold(
        &self,
        name: &str,
        url: &str,
        visibility: i32,
        mut enough: impl FnMut(&[Held]) -> bool,
    ) -> Result<Vec<Held>, QueueError> {
        let mut held: Vec<Held> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while !enough(&held) {
            let received = match self.receive(name, url, 10, visibility).await {
                Ok(received) => received,
                Err(e) => {
                    self.release(url, held.into_iter().map(|h| h.receipt).collect())
                        .await;
                    return Err(e);
                }
            };
            let mut fresh = 0;
            for m in received {
                let (Some(id), Some(receipt)) = (m.message_id.clone(), m.receipt_handle.clone())
                else {
                    continue;
                };
                if !seen.insert(id) {
                    // Held before and visible again: its hold ran out.
                    continue;
                }
                fresh += 1;
                held.push(Held {
                    receipt,
                    letter: dead_letter(&m),
                });
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(held)
    }

    /// Up to `limit` messages of `destination`'s dead-letter queue, without
    /// consuming them, sorted by when they were dead-lettered. Messages that
    /// are not delivery messages are left out (and logged).
    pub async fn dlq_list(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let name = dlq_name(&self.resource_prefix, destination);
        let url = self.url(&name).await?;
        let held = self
            .hold(&name, &url, PEEK_VISIBILITY_SECS, |h| h.len() >= limit)
            .await?;
        let receipts = held.iter().map(|h| h.receipt.clone()).collect();
        let mut letters: Vec<DeadLetter> = held
            .into_iter()
            .filter_map(|h| match h.letter {
                Ok(letter) => Some(letter),
                Err(why) => {
                    tracing::warn!(queue = %name, error = %why, "not a delivery message; left out");
                    None
                }
            })
            .collect();
        self.release(&url, receipts).await;
        letters.sort_by(|a, b| {
            (a.sent_at_ms, &a.sqs_message_id).cmp(&(b.sent_at_ms, &b.sqs_message_id))
        });
        letters.truncate(limit);
        Ok(letters)
    }

    /// The message of `destination`'s dead-letter queue whose event's
    /// `messageId` (or SQS message id) is `id`, without consuming anything.
    pub async fn dlq_show(
        &self,
        destination: &str,
        id: &str,
    ) -> Result<Option<DeadLetter>, QueueError> {
        let name = dlq_name(&self.resource_prefix, destination);
        let url = self.url(&name).await?;
        let is_it = |h: &Held| {
            h.letter
                .as_ref()
                .is_ok_and(|l| l.message.id == id || l.sqs_message_id == id)
        };
        let held = self
            .hold(&name, &url, PEEK_VISIBILITY_SECS, |h| h.iter().any(is_it))
            .await?;
        let receipts = held.iter().map(|h| h.receipt.clone()).collect();
        let found = held.into_iter().find(is_it).and_then(|h| h.letter.ok());
        self.release(&url, receipts).await;
        Ok(found)
    }

    /// Moves messages of `destination`'s dead-letter queue back to its
    /// queue, attempts reset and last error cleared: at most `max` of them,
    /// only those whose event `filter` holds for (when given). Calls
    /// `progress` after each batch. Messages left behind are released.
    pub async fn redrive(
        &self,
        destination: &str,
        max: Option<usize>,
        filter: Option<&Condition>,
        mut progress: impl FnMut(&RedriveReport),
    ) -> Result<RedriveReport, QueueError> {
        let dlq = dlq_name(&self.resource_prefix, destination);
        let queue = queue_name(&self.resource_prefix, destination);
        let dlq_url = self.url(&dlq).await?;
        let queue_url = self.url(&queue).await?;
        let max = max.unwrap_or(usize::MAX);
        let mut report = RedriveReport::default();
        let mut kept: Vec<String> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let result = loop {
            if report.moved >= max {
                break Ok(());
            }
            let received = match self
                .receive(&dlq, &dlq_url, 10, REDRIVE_VISIBILITY_SECS)
                .await
            {
                Ok(received) => received,
                Err(e) => break Err(e),
            };
            let mut moving: Vec<(String, String)> = Vec::new();
            let mut fresh = 0;
            for m in &received {
                let (Some(id), Some(receipt)) = (m.message_id.clone(), m.receipt_handle.clone())
                else {
                    continue;
                };
                if !seen.insert(id) {
                    continue;
                }
                fresh += 1;
                let wanted = report.moved + moving.len() < max;
                match dead_letter(m) {
                    Ok(letter) if wanted && matches(filter, &letter.message.event) => {
                        let message = Message {
                            attempts: 0,
                            last_error: None,
                            ..letter.message
                        };
                        match message_body(&message) {
                            Ok(body) => moving.push((receipt, body)),
                            Err(_) => kept.push(receipt),
                        }
                    }
                    Ok(_) => kept.push(receipt),
                    Err(why) => {
                        tracing::warn!(queue = %dlq, error = %why, "not a delivery message; kept");
                        kept.push(receipt);
                    }
                }
            }
            if fresh == 0 {
                break Ok(());
            }
            let bodies: Vec<String> = moving.iter().map(|(_, b)| b.clone()).collect();
            let sent = send_all(&self.sqs, &queue_url, &bodies).await;
            let mut delete = Vec::new();
            let mut failure = None;
            for ((receipt, _), result) in moving.into_iter().zip(sent) {
                match result {
                    Ok(()) => delete.push(receipt),
                    Err(e) => {
                        if failure.is_none() && e != Unsent::NotTried {
                            failure = Some(e.to_string());
                        }
                        kept.push(receipt);
                    }
                }
            }
            let undeleted = delete_all(&self.sqs, &dlq_url, &delete).await;
            report.moved += delete.len() - undeleted.len();
            if let Some((_, why)) = undeleted.into_iter().next() {
                break Err(QueueError::Sqs {
                    operation: "DeleteMessageBatch",
                    queue: dlq.clone(),
                    message: format!(
                        "{why} (the message is back in the queue and still in the dead-letter queue)"
                    ),
                });
            }
            report.kept = kept.len();
            progress(&report);
            if let Some(message) = failure {
                break Err(QueueError::Sqs {
                    operation: "SendMessageBatch",
                    queue: queue.clone(),
                    message,
                });
            }
        };
        report.kept = kept.len();
        self.release(&dlq_url, kept).await;
        result.map(|()| report)
    }

    /// Checks that `destination`'s queue and dead-letter queue exist, and
    /// so that SQS answers.
    pub async fn exists(&self, destination: &str) -> Result<(), QueueError> {
        self.url(&queue_name(&self.resource_prefix, destination))
            .await?;
        self.url(&dlq_name(&self.resource_prefix, destination))
            .await?;
        Ok(())
    }

    /// The bucket that carries every one of `tags` among those whose name
    /// contains `name_contains` (CloudFormation names a bucket it names
    /// `<stack>-<logical id, lowercase>-<suffix>`). Buckets whose tags
    /// cannot be read (another region's, say) are passed over.
    pub async fn find_bucket(
        &self,
        name_contains: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, QueueError> {
        let listed = self
            .s3
            .list_buckets()
            .send()
            .await
            .map_err(|e| QueueError::S3 {
                bucket: "*".to_owned(),
                key: String::new(),
                message: format!("ListBuckets failed: {}", DisplayErrorContext(&e)),
            })?;
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        for name in listed.buckets().iter().filter_map(|b| b.name()) {
            if !name.contains(name_contains) {
                continue;
            }
            let tagging = match self.s3.get_bucket_tagging().bucket(name).send().await {
                Ok(t) => t,
                Err(e) => {
                    unreadable.push(format!("{name} ({})", DisplayErrorContext(&e)));
                    continue;
                }
            };
            let has: BTreeMap<&str, &str> = tagging
                .tag_set()
                .iter()
                .map(|t| (t.key(), t.value()))
                .collect();
            if tags
                .iter()
                .all(|(k, v)| has.get(k.as_str()) == Some(&v.as_str()))
            {
                found.push(name.to_owned());
            }
        }
        let wanted = tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(QueueError::NoSuchBucket {
                tags: wanted,
                unreadable,
            }),
            _ => Err(QueueError::SeveralBuckets {
                tags: wanted,
                buckets: found,
            }),
        }
    }

    /// Puts `messages` on `destination`'s queue, in order, due at once;
    /// all of them are durable when it answers `Ok` (their count). None is
    /// sent when one cannot be (larger than SQS takes); a failure part-way
    /// says how many went before it.
    pub async fn enqueue(
        &self,
        destination: &str,
        messages: &[Message],
    ) -> Result<usize, QueueError> {
        let queue = queue_name(&self.resource_prefix, destination);
        let mut bodies = Vec::with_capacity(messages.len());
        let mut too_large = Vec::new();
        for m in messages {
            match message_body(m) {
                Ok(body) if body.len() <= MAX_MESSAGE_BYTES => bodies.push(body),
                Ok(_) => too_large.push(m.id.clone()),
                Err(message) => {
                    return Err(QueueError::Unencodable {
                        id: m.id.clone(),
                        message,
                    });
                }
            }
        }
        if !too_large.is_empty() {
            return Err(QueueError::TooLarge(too_large));
        }
        let url = self.url(&queue).await?;
        let mut sent = 0;
        for result in send_all(&self.sqs, &url, &bodies).await {
            match result {
                Ok(()) => sent += 1,
                Err(e) => {
                    return Err(QueueError::Sqs {
                        operation: "SendMessageBatch",
                        queue,
                        message: format!("{e} (after {sent} messages were sent)"),
                    });
                }
            }
        }
        Ok(sent)
    }

    /// Sends the archived events of the window that the destination accepts
    /// (and of the event asked for) to its queue, as new messages.
    /// `progress(done, total)` counts archive objects.
    pub async fn replay(
        &self,
        replay: &Replay<'_>,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ReplayReport, QueueError> {
        if replay.from_ms >= replay.to_ms {
            return Err(QueueError::EmptyWindow {
                from: uniflow_runtime::time::format_ms(replay.from_ms),
                to: uniflow_runtime::time::format_ms(replay.to_ms),
            });
        }
        let queue = queue_name(&self.resource_prefix, replay.destination);
        let url = self.url(&queue).await?;
        let keys = self.archive_objects(replay).await?;
        let mut report = ReplayReport::default();
        progress(0, keys.len());
        for (done, key) in keys.iter().enumerate() {
            let lines = self.read_archive(replay.bucket, key).await?;
            let mut bodies: Vec<(String, String)> = Vec::new();
            for line in lines {
                report.scanned += 1;
                match replayed(replay, &line) {
                    Line::Unreadable => report.unreadable += 1,
                    Line::Skipped => {}
                    Line::Send(id, body) if body.len() > MAX_MESSAGE_BYTES => {
                        tracing::error!(message_id = %id, "an event too large for SQS is not replayed");
                        report.too_large.push(id);
                    }
                    Line::Send(_, _) if replay.dry_run => report.selected += 1,
                    Line::Send(id, body) => {
                        report.selected += 1;
                        bodies.push((id, body));
                    }
                }
            }
            let texts: Vec<String> = bodies.iter().map(|(_, b)| b.clone()).collect();
            for result in send_all(&self.sqs, &url, &texts).await {
                match result {
                    Ok(()) => report.sent += 1,
                    Err(e) => {
                        return Err(QueueError::Sqs {
                            operation: "SendMessageBatch",
                            queue,
                            message: format!(
                                "{e} (after {} events were sent; replaying the window again resends them)",
                                report.sent
                            ),
                        });
                    }
                }
            }
            report.objects += 1;
            progress(done + 1, keys.len());
        }
        Ok(report)
    }

    /// The keys of the archive objects that may hold events of the window,
    /// in key order (time order).
    async fn archive_objects(&self, replay: &Replay<'_>) -> Result<Vec<String>, QueueError> {
        let mut keys = Vec::new();
        let first = replay.from_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let last = replay
            .to_ms
            .saturating_sub(1)
            .saturating_add(ARCHIVE_LAG_MS);
        let mut hour = first;
        while hour <= last {
            let (y, m, d, h) = utc_hour(hour);
            let prefix = format!(
                "{}year={y:04}/month={m:02}/day={d:02}/hour={h:02}/",
                replay.prefix
            );
            let mut pages = self
                .s3
                .list_objects_v2()
                .bucket(replay.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| QueueError::S3 {
                    bucket: replay.bucket.to_owned(),
                    key: prefix.clone(),
                    message: format!("listing failed: {}", DisplayErrorContext(&e)),
                })?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
            }
            hour += HOUR_MS;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The lines of one GZIP NDJSON archive object.
    async fn read_archive(&self, bucket: &str, key: &str) -> Result<Vec<String>, QueueError> {
        let error = |message: String| QueueError::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message,
        };
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| error(format!("reading failed: {}", DisplayErrorContext(&e))))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| error(format!("reading failed: {e}")))?
            .into_bytes();
        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
        let mut lines = Vec::new();
        for line in reader.lines() {
            let line = line.map_err(|e| error(format!("not a GZIP NDJSON archive object: {e}")))?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        Ok(lines)
    }
}

/// Whether `filter` (if any) holds for the event (JSON).
fn matches(filter: Option<&Condition>, event: &[u8]) -> bool {
    match filter {
        None => true,
        Some(condition) => {
            serde_json::from_slice::<serde_json::Value>(event).is_ok_and(|v| condition.matches(&v))
        }
    }
}

/// A received dead-letter queue message, or why it is not one of ours.
fn dead_letter(m: &SqsMessage) -> Result<DeadLetter, String> {
    let id = m.message_id.clone().unwrap_or_default();
    let message: Message = serde_json::from_str(m.body.as_deref().unwrap_or_default())
        .map_err(|e| format!("message {id}: {e}"))?;
    let sent_at_ms = m
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Ok(DeadLetter {
        sqs_message_id: id,
        receipt: m.receipt_handle.clone(),
        sent_at_ms,
        message,
    })
}

/// What replay does with one archive line.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Not an event with a `messageId` and a `receivedAt`.
    Unreadable,
    /// Outside the window, another event, or not for this destination.
    Skipped,
    /// Sent: its `messageId` and the queue body.
    Send(String, String),
}

fn replayed(replay: &Replay<'_>, line: &str) -> Line {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
        return Line::Unreadable;
    };
    let id = value.get("messageId").and_then(serde_json::Value::as_str);
    let received_ms = value
        .get("receivedAt")
        .and_then(serde_json::Value::as_str)
        .and_then(parse_ms);
    let (Some(id), Some(received_ms)) = (id, received_ms) else {
        return Line::Unreadable;
    };
    if received_ms < replay.from_ms || received_ms >= replay.to_ms {
        return Line::Skipped;
    }
    if let Some(name) = replay.event {
        let is_it = value.get("type").and_then(serde_json::Value::as_str) == Some("track")
            && value.get("event").and_then(serde_json::Value::as_str) == Some(name);
        if !is_it {
            return Line::Skipped;
        }
    }
    if !replay.info.accepts(&value) {
        return Line::Skipped;
    }
    let message = Message {
        id: id.to_owned(),
        received_ms,
        attempts: 0,
        last_error: None,
        event: bytes::Bytes::copy_from_slice(line.trim().as_bytes()),
    };
    match message_body(&message) {
        Ok(body) => Line::Send(id.to_owned(), body),
        Err(_) => Line::Unreadable,
    }
}
