//! The destination queues as the generated template names them, and the
//! SQS calls fan-out, the connector, redrive and replay share: batched
//! sends that retry only the entries SQS refused, batched visibility
//! changes and deletes.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    SendMessageBatchRequestEntry,
};
use uniflow_runtime::backend::BackendError;
use uniflow_runtime::delivery::Message;

use crate::env;

/// The largest message SQS takes, and the most one `SendMessageBatch`
/// carries in all.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The most entries in one batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// Attempts at entries SQS refused for a reason of its own (throttling,
/// internal errors), and at whole calls that failed.
const SEND_ATTEMPTS: u32 = 5;

/// Where each destination's queue and dead-letter queue are: the template
/// names them `<resource prefix>-<destination>` and `...-dlq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    url_prefix: String,
    resource_prefix: String,
}

impl QueueNames {
    /// Queues named under `resource_prefix` (`acme-shop-prod`), whose URLs
    /// are `url_prefix` (`https://sqs.<region>.amazonaws.com/<account>/`)
    /// followed by the name.
    pub fn new(url_prefix: &str, resource_prefix: &str) -> Self {
        let mut url_prefix = url_prefix.to_owned();
        if !url_prefix.ends_with('/') {
            url_prefix.push('/');
        }
        QueueNames {
            url_prefix,
            resource_prefix: resource_prefix.to_owned(),
        }
    }

    /// From `UNIFLOW_QUEUE_URL_PREFIX` and `UNIFLOW_RESOURCE_PREFIX`, as the
    /// template sets them on the processor and connector functions.
    pub fn from_env() -> Result<Self, BackendError> {
        Ok(Self::new(
            &env("UNIFLOW_QUEUE_URL_PREFIX")?,
            &env("UNIFLOW_RESOURCE_PREFIX")?,
        ))
    }

    /// The name of `destination`'s queue.
    pub fn queue_name(&self, destination: &str) -> String {
        queue_name(&self.resource_prefix, destination)
    }

    /// The URL of `destination`'s queue.
    pub fn queue_url(&self, destination: &str) -> String {
        format!("{}{}", self.url_prefix, self.queue_name(destination))
    }

    /// The URL of `destination`'s dead-letter queue.
    pub fn dlq_url(&self, destination: &str) -> String {
        format!(
            "{}{}",
            self.url_prefix,
            dlq_name(&self.resource_prefix, destination)
        )
    }

    /// The destination whose queue has this ARN
    /// (`arn:aws:sqs:<region>:<account>:<prefix>-<destination>`), if it is
    /// one of ours.
    pub fn destination_of_arn<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let name = arn.rsplit(':').next()?;
        name.strip_prefix(self.resource_prefix.as_str())?
            .strip_prefix('-')
            .filter(|d| !d.is_empty())
    }
}

/// `<resource prefix>-<destination>`.
pub(crate) fn queue_name(resource_prefix: &str, destination: &str) -> String {
    format!("{resource_prefix}-{destination}")
}

/// `<resource prefix>-<destination>-dlq`.
pub(crate) fn dlq_name(resource_prefix: &str, destination: &str) -> String {
    format!("{resource_prefix}-{destination}-dlq")
}

/// A message as an SQS body: its JSON, with the two characters JSON allows
/// raw but SQS refuses (U+FFFE, U+FFFF; they can only occur inside JSON
/// strings) escaped, which leaves the JSON's meaning unchanged.
pub(crate) fn message_body(message: &Message) -> Result<String, String> {
    let body = serde_json::to_string(message).map_err(|e| e.to_string())?;
    if body.contains(['\u{FFFE}', '\u{FFFF}']) {
        return Ok(body
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff"));
    }
    Ok(body)
}

/// Why a body was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsent {
    /// Larger than SQS allows: never sendable.
    TooLarge(usize),
    /// SQS refused it, or the call failed, after every attempt.
    Failed(String),
    /// Not tried: an earlier body failed and sending stopped there.
    NotTried,
}

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsent::TooLarge(n) => write!(
                f,
                "the message is {n} bytes, more than SQS's {MAX_MESSAGE_BYTES}"
            ),
            Unsent::Failed(why) => f.write_str(why),
            Unsent::NotTried => f.write_str("not sent: an earlier message could not be sent"),
        }
    }
}

/// Sends `bodies` to `queue_url` in order, in batches of at most ten
/// entries and [`MAX_MESSAGE_BYTES`] (SQS's limit before it was raised to
/// 1 MiB in 2025, so queues made either way take them); answers per body. A body larger
/// than SQS allows is [`Unsent::TooLarge`] and the others still go. The
/// entries SQS refuses for a reason of its own are retried with backoff;
/// once a batch still fails, sending stops there and every later body is
/// [`Unsent::NotTried`], so a caller that reports "from here on" loses
/// nothing and sends little twice.
pub(crate) async fn send_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
) -> Vec<Result<(), Unsent>> {
    let mut results: Vec<Result<(), Unsent>> = vec![Err(Unsent::NotTried); bodies.len()];
    let (chunks, too_large) = plan(bodies.iter().map(String::len));
    for i in too_large {
        results[i] = Err(Unsent::TooLarge(bodies[i].len()));
    }
    for chunk in chunks {
        match send_chunk(client, queue_url, bodies, &chunk).await {
            Ok(()) => chunk.iter().for_each(|&j| results[j] = Ok(())),
            Err(per_entry) => {
                for (j, result) in per_entry {
                    results[j] = result;
                }
                return results;
            }
        }
    }
    results
}

/// Splits bodies of these sizes, in order, into batches of at most ten
/// and [`MAX_MESSAGE_BYTES`] in all; answers the batches (indices) and the
/// bodies too large to send at all.
fn plan(sizes: impl Iterator<Item = usize>) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut too_large = Vec::new();
    let mut bytes = 0;
    for (i, size) in sizes.enumerate() {
        if size > MAX_MESSAGE_BYTES {
            too_large.push(i);
            continue;
        }
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < MAX_BATCH_ENTRIES && bytes + size <= MAX_MESSAGE_BYTES => {
                chunk.push(i);
                bytes += size;
            }
            _ => {
                chunks.push(vec![i]);
                bytes = size;
            }
        }
    }
    (chunks, too_large)
}

/// Sends one batch (indices into `bodies`); on failure, the result of each
/// of its entries.
async fn send_chunk(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
    chunk: &[usize],
) -> Result<(), Vec<(usize, Result<(), Unsent>)>> {
    let mut pending: Vec<usize> = chunk.to_vec();
    let mut done: Vec<(usize, Result<(), Unsent>)> = Vec::new();
    let mut last_error = String::new();
    for attempt in 0..SEND_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let entries: Vec<SendMessageBatchRequestEntry> = pending
            .iter()
            .filter_map(|&j| {
                SendMessageBatchRequestEntry::builder()
                    .id(j.to_string())
                    .message_body(&bodies[j])
                    .build()
                    .ok()
            })
            .collect();
        let out = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                last_error = format!("SQS SendMessageBatch failed: {}", DisplayErrorContext(&e));
                tracing::warn!(queue_url, attempt, error = %last_error, "retrying");
                continue;
            }
        };
        for ok in out.successful() {
            if let Ok(j) = ok.id().parse::<usize>() {
                done.push((j, Ok(())));
            }
        }
        let mut retry = Vec::new();
        for failed in out.failed() {
            let Ok(j) = failed.id().parse::<usize>() else {
                continue;
            };
            let why = format!(
                "SQS refused the message: {} {}",
                failed.code(),
                failed.message().unwrap_or_default()
            );
            if failed.sender_fault() {
                done.push((j, Err(Unsent::Failed(why))));
            } else {
                last_error = why;
                retry.push(j);
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
        tracing::warn!(queue_url, attempt, failed = pending.len(), error = %last_error, "SQS refused some messages; retrying them");
    }
    for &j in &pending {
        done.push((j, Err(Unsent::Failed(last_error.clone()))));
    }
    if done.iter().all(|(_, r)| r.is_ok()) {
        Ok(())
    } else {
        Err(done)
    }
}

/// Sets the visibility timeout of each `(receipt handle, seconds)`, in
/// batches of ten; answers the receipts whose change failed, with why.
pub(crate) async fn change_visibility(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    changes: &[(String, i32)],
) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for chunk in changes.chunks(MAX_BATCH_ENTRIES) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(j, (receipt, secs))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(j.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(*secs)
                    .build()
                    .ok()
            })
            .collect();
        match client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => failed.extend(out.failed().iter().filter_map(|f| {
                let j: usize = f.id().parse().ok()?;
                Some((
                    chunk.get(j)?.0.clone(),
                    format!("{} {}", f.code(), f.message().unwrap_or_default()),
                ))
            })),
            Err(e) => {
                let why = format!(
                    "SQS ChangeMessageVisibilityBatch failed: {}",
                    DisplayErrorContext(&e)
                );
                failed.extend(chunk.iter().map(|(r, _)| (r.clone(), why.clone())));
            }
        }
    }
    failed
}

/// Deletes the messages of these receipt handles, in batches of ten;
/// answers the receipts whose delete failed, with why.
pub(crate) async fn delete_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipts: &[String],
) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(j, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(j.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        match client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => failed.extend(out.failed().iter().filter_map(|f| {
                let j: usize = f.id().parse().ok()?;
                Some((
                    chunk.get(j)?.clone(),
                    format!("{} {}", f.code(), f.message().unwrap_or_default()),
                ))
            })),
            Err(e) => {
                let why = format!("SQS DeleteMessageBatch failed: {}", DisplayErrorContext(&e));
                failed.extend(chunk.iter().map(|r| (r.clone(), why.clone())));
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn queues_are_named_as_the_template_names_them() {
        let names = QueueNames::new("https://sqs.eu-west-1.amazonaws.com/123", "acme-shop-prod");
        assert_eq!(
            names.queue_url("customer-io"),
            "https://sqs.eu-west-1.amazonaws.com/123/acme-shop-prod-customer-io"
        );
        assert_eq!(
            names.dlq_url("customer-io"),
            "https://sqs.eu-west-1.amazonaws.com/123/acme-shop-prod-customer-io-dlq"
        );
        assert_eq!(
            names.destination_of_arn("arn:aws:sqs:eu-west-1:123:acme-shop-prod-customer-io"),
            Some("customer-io")
        );
        assert_eq!(
            names.destination_of_arn("arn:aws:sqs:eu-west-1:123:other-prod-customer-io"),
            None
        );
        assert_eq!(
            names.destination_of_arn("arn:aws:sqs:eu-west-1:123:acme-shop-prod-"),
            None
        );
        assert_eq!(names.destination_of_arn("acme-shop-prodx"), None);
    }

    #[test]
    fn batches_hold_ten_entries_and_256_kib_and_oversized_bodies_are_set_apart() {
        let kib = 1024;
        let check = |sizes: &[usize], chunks: &[&[usize]], too_large: &[usize]| {
            let (got, big) = plan(sizes.iter().copied());
            let want: Vec<Vec<usize>> = chunks.iter().map(|c| c.to_vec()).collect();
            assert_eq!((got, big), (want, too_large.to_vec()), "{sizes:?}");
        };
        check(&[], &[], &[]);
        check(&[1; 12], &[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &[10, 11]], &[]);
        // 100 KiB each: two fit in 256 KiB, a third does not.
        check(&[100 * kib; 5], &[&[0, 1], &[2, 3], &[4]], &[]);
        // Exactly the limit is allowed, one byte more is not.
        check(&[256 * kib, 1, 256 * kib + 1, 10], &[&[0], &[1, 3]], &[2]);
    }

    #[test]
    fn bodies_escape_what_sqs_refuses_and_keep_the_json() {
        let m = Message {
            id: "m1".to_owned(),
            received_ms: 1,
            attempts: 0,
            last_error: None,
            event: Bytes::from("{\"name\":\"a\u{FFFF}b\u{FFFE}\"}"),
        };
        let body = message_body(&m).unwrap();
        assert!(!body.contains(['\u{FFFE}', '\u{FFFF}']), "{body}");
        let back: Message = serde_json::from_str(&body).unwrap();
        let value = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        assert_eq!(value(&back.event), value(&m.event));
        let not_json = Message {
            event: Bytes::from_static(b"{"),
            ..m
        };
        assert!(message_body(&not_json).is_err());
    }
}
