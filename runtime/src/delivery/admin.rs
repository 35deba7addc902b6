//! What an operator can see and do about deliveries, whatever the backend:
//! delivery metrics, the dead-letter queue, redrive, and putting events on
//! a destination's queue (what `uniflow replay` sends). The management API
//! serves it; the embedded queues and the SQS queues implement it.

use serde::{Deserialize, Serialize};
use uniflow_schemas::condition::Condition;

use super::Message;
use super::metrics::DeliveryMetrics;
use crate::backend::BackendError;
use crate::connectors::BoxFuture;

/// A message that will not be attempted again until it is redriven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its handle in the dead-letter queue (the embedded queue's sequence
    /// number, or the SQS message id).
    pub id: String,
    /// When it was dead-lettered (ms since the epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_ms: Option<i64>,
    /// Why: the last error, or that it ran out of attempts or age.
    pub reason: String,
    /// The message, with its attempts and last error.
    pub message: Message,
}

/// What a redrive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redriven {
    /// Messages moved back to the queue.
    pub moved: u64,
    /// Dead letters left in place (not matching the filter, or past the
    /// count).
    pub kept: u64,
}

/// The operations on deliveries.
pub trait Deliveries: Send + Sync + 'static {
    /// The destination's metrics.
    fn metrics<'a>(
        &'a self,
        destination: &'a str,
    ) -> BoxFuture<'a, Result<DeliveryMetrics, BackendError>>;

    /// Up to `limit` dead letters, oldest first, after the one with handle
    /// `after` (from the start when `None`).
    fn dead_letters<'a>(
        &'a self,
        destination: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BackendError>>;

    /// Moves dead letters back to the queue (oldest first; those `filter`
    /// holds for on the event; at most `max`), attempts reset.
    fn redrive<'a>(
        &'a self,
        destination: &'a str,
        max: Option<u64>,
        filter: Option<&'a Condition>,
    ) -> BoxFuture<'a, Result<Redriven, BackendError>>;

    /// Puts messages on the destination's queue, due at once; durable when
    /// it returns.
    fn enqueue<'a>(
        &'a self,
        destination: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<usize, BackendError>>;
}
