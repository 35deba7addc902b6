//! Fan-out: the processor sends each stored event, once its profile is
//! applied, to the queue of every destination that accepts it
//! ([`DestinationInfo::accepts`]), as a [`Message`] (the queue body).
//!
//! At least once: a batch that fails part-way is retried by Kinesis from
//! the first event not fully fanned out, so an event may reach a queue
//! twice; receivers deduplicate by the `Idempotency-Key` (the message id).
//! An event too large for SQS (256 KiB with its envelope; ingest allows 32
//! KB per event, so only a pathological one) cannot be queued at all: it
//! is logged at error level with its id and destination and skipped for
//! that destination (it stays in the raw archive, from which `uniflow
//! replay` can resend it once the cause is fixed).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::future::join_all;
use uniflow_runtime::delivery::Message;
use uniflow_runtime::time::parse_ms;
use uniflow_schemas::bundle::DestinationInfo;

use crate::sqs::{QueueNames, Unsent, message_body, send_all};

/// Sends stored events to destination queues.
#[derive(Debug, Clone)]
pub struct FanOut {
    sqs: aws_sdk_sqs::Client,
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    name: String,
    info: DestinationInfo,
    queue_url: String,
}

/// What a fan-out sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanOutReport {
    /// Messages sent, over all queues.
    pub sent: usize,
    /// `(messageId, destination)` of events too large for SQS, skipped.
    pub too_large: Vec<(String, String)>,
}

/// Fan-out stopped at an event: it and every later one must be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fan-out failed at event {from} of the batch: {error}")]
pub struct FanOutError {
    /// The index of the first event not sent to every queue it belongs in.
    pub from: usize,
    /// What failed.
    pub error: String,
    /// What was sent before (and after, in other queues) the failure.
    pub report: FanOutReport,
}

impl FanOut {
    /// Fan-out to the queues of `destinations` (the bundle's).
    pub fn new(
        config: &aws_config::SdkConfig,
        destinations: &BTreeMap<String, DestinationInfo>,
        queues: &QueueNames,
    ) -> Self {
        FanOut {
            sqs: aws_sdk_sqs::Client::new(config),
            routes: destinations
                .iter()
                .map(|(name, info)| Route {
                    name: name.clone(),
                    info: info.clone(),
                    queue_url: queues.queue_url(name),
                })
                .collect(),
        }
    }

    /// Sends each of `events` (stored events, JSON) whose index is not in
    /// `skip` to every destination that accepts it, in batch order per
    /// queue. An event that is not a JSON object with a string `messageId`
    /// goes nowhere (the profile store has already reported it); one
    /// without a readable `receivedAt` counts its age from `now_ms`.
    pub async fn send(
        &self,
        events: &[Bytes],
        skip: &BTreeSet<usize>,
        now_ms: i64,
    ) -> Result<FanOutReport, FanOutError> {
        let mut report = FanOutReport::default();
        if self.routes.is_empty() {
            return Ok(report);
        }
        // Per route: (event index, body), in event order.
        let mut per_route: Vec<Vec<(usize, String)>> = vec![Vec::new(); self.routes.len()];
        for (i, event) in events.iter().enumerate() {
            if skip.contains(&i) {
                continue;
            }
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(event) else {
                continue;
            };
            let Some(id) = value.get("messageId").and_then(serde_json::Value::as_str) else {
                continue;
            };
            let targets: Vec<usize> = (0..self.routes.len())
                .filter(|&r| self.routes[r].info.accepts(&value))
                .collect();
            if targets.is_empty() {
                continue;
            }
            let received_ms = match value
                .get("receivedAt")
                .and_then(serde_json::Value::as_str)
                .and_then(parse_ms)
            {
                Some(ms) => ms,
                None => {
                    tracing::warn!(
                        message_id = id,
                        "an event without a readable receivedAt: its age counts from now"
                    );
                    now_ms
                }
            };
            let message = Message {
                id: id.to_owned(),
                received_ms,
                attempts: 0,
                last_error: None,
                event: event.clone(),
            };
            let body = match message_body(&message) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(message_id = id, error = %e, "an event that cannot be queued; skipped");
                    continue;
                }
            };
            for r in targets {
                per_route[r].push((i, body.clone()));
            }
        }

        let sends = self
            .routes
            .iter()
            .zip(&per_route)
            .filter(|(_, items)| !items.is_empty())
            .map(|(route, items)| async move {
                let bodies: Vec<String> = items.iter().map(|(_, b)| b.clone()).collect();
                let results = send_all(&self.sqs, &route.queue_url, &bodies).await;
                (route, items, results)
            });
        let mut failure: Option<(usize, String)> = None;
        for (route, items, results) in join_all(sends).await {
            for ((i, _), result) in items.iter().zip(results) {
                match result {
                    Ok(()) => report.sent += 1,
                    Err(Unsent::TooLarge(size)) => {
                        let id = message_id(&events[*i]);
                        tracing::error!(
                            message_id = %id,
                            destination = %route.name,
                            size,
                            "AN EVENT TOO LARGE FOR SQS WAS NOT QUEUED for this destination; \
                             it stays in the raw archive (resend it with `uniflow replay`)"
                        );
                        report.too_large.push((id, route.name.clone()));
                    }
                    Err(e) => {
                        if failure.as_ref().is_none_or(|(from, _)| *i < *from) {
                            failure =
                                Some((*i, format!("queue of destination `{}`: {e}", route.name)));
                        }
                        break;
                    }
                }
            }
        }
        report.too_large.sort();
        match failure {
            None => Ok(report),
            Some((from, error)) => Err(FanOutError {
                from,
                error,
                report,
            }),
        }
    }
}

fn message_id(event: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v.get("messageId")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
