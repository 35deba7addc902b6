//! [`AwsDeliveries`]: what an operator sees and does about deliveries on a
//! deployed stack (the management API's `/destinations/{name}/...` and the
//! CLI's `--aws`), over the state table's counters
//! ([`DynamoDeliveryStats`]) and the destination queues ([`Queues`]).
//!
//! SQS keeps no order and has no cursor, so a page of dead letters is cut
//! from one listing of the dead-letter queue (at most [`MAX_LISTED`]
//! messages, sorted by when each was dead-lettered): `after` is an SQS
//! message id, and the page starts after it in that order.

use uniflow_runtime::backend::BackendError;
use uniflow_runtime::connectors::BoxFuture;
use uniflow_runtime::delivery::Message;
use uniflow_runtime::delivery::admin::{DeadLetter, Deliveries, Redriven};
use uniflow_runtime::delivery::metrics::DeliveryMetrics;
use uniflow_schemas::condition::Condition;

use crate::env;
use crate::metrics::DynamoDeliveryStats;
use crate::queues::{self, QueueError, Queues};

/// The most dead letters one listing peeks at; pages are cut from them. A
/// larger dead-letter queue is shown in part (its metrics give its depth).
pub const MAX_LISTED: usize = 1_000;

/// The reason of a dead letter the connector did not mark: SQS moved it
/// after `maxReceiveCount` receives.
const EXHAUSTED: &str = "exhausted its retries (moved by SQS's redrive policy)";

/// [`Deliveries`] on AWS.
#[derive(Debug, Clone)]
pub struct AwsDeliveries {
    stats: DynamoDeliveryStats,
    queues: Queues,
}

impl AwsDeliveries {
    /// The deliveries of the stack whose resources are named under
    /// `resource_prefix`, with counters in `state_table`.
    pub fn new(config: &aws_config::SdkConfig, state_table: &str, resource_prefix: &str) -> Self {
        AwsDeliveries {
            stats: DynamoDeliveryStats::new(config, state_table, resource_prefix),
            queues: Queues::new(config, resource_prefix),
        }
    }

    /// From `UNIFLOW_STATE_TABLE` and `UNIFLOW_RESOURCE_PREFIX`, as the
    /// template sets them on the management function.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, BackendError> {
        Ok(Self::new(
            config,
            &env("UNIFLOW_STATE_TABLE")?,
            &env("UNIFLOW_RESOURCE_PREFIX")?,
        ))
    }

    /// The stack's queues, for what the trait does not cover (replay).
    pub fn queues(&self) -> &Queues {
        &self.queues
    }
}

fn backend(e: QueueError) -> BackendError {
    BackendError(e.to_string())
}

/// A dead letter as the management API shows it.
fn shown(letter: queues::DeadLetter) -> DeadLetter {
    DeadLetter {
        id: letter.sqs_message_id,
        failed_ms: (letter.sent_at_ms > 0).then_some(letter.sent_at_ms),
        reason: letter
            .message
            .last_error
            .clone()
            .unwrap_or_else(|| EXHAUSTED.to_owned()),
        message: letter.message,
    }
}

/// Up to `limit` of `listed` (in order) after the one whose SQS message id
/// is `after`; an `after` no longer listed is an error (the page would
/// silently start over or skip).
fn page(
    destination: &str,
    listed: Vec<queues::DeadLetter>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, BackendError> {
    let start = match after {
        None => 0,
        Some(after) => {
            listed
                .iter()
                .position(|l| l.sqs_message_id == after)
                .ok_or_else(|| {
                    BackendError(format!(
                        "dead letter `{after}` is no longer among the first {MAX_LISTED} in the dead-letter queue of `{destination}` (redriven, or expired): list again from the start"
                    ))
                })?
                + 1
        }
    };
    Ok(listed
        .into_iter()
        .skip(start)
        .take(limit)
        .map(shown)
        .collect())
}

impl Deliveries for AwsDeliveries {
    fn metrics<'a>(
        &'a self,
        destination: &'a str,
    ) -> BoxFuture<'a, Result<DeliveryMetrics, BackendError>> {
        Box::pin(self.stats.metrics(destination))
    }

    fn dead_letters<'a>(
        &'a self,
        destination: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BackendError>> {
        Box::pin(async move {
            let listed = self
                .queues
                .dlq_list(destination, MAX_LISTED)
                .await
                .map_err(backend)?;
            page(destination, listed, after, limit)
        })
    }

    fn redrive<'a>(
        &'a self,
        destination: &'a str,
        max: Option<u64>,
        filter: Option<&'a Condition>,
    ) -> BoxFuture<'a, Result<Redriven, BackendError>> {
        Box::pin(async move {
            let max = max.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            let report = self
                .queues
                .redrive(destination, max, filter, |_| {})
                .await
                .map_err(backend)?;
            Ok(Redriven {
                moved: report.moved as u64,
                kept: report.kept as u64,
            })
        })
    }

    fn enqueue<'a>(
        &'a self,
        destination: &'a str,
        messages: Vec<Message>,
    ) -> BoxFuture<'a, Result<usize, BackendError>> {
        Box::pin(async move {
            self.queues
                .enqueue(destination, &messages)
                .await
                .map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn letter(id: &str, sent_at_ms: i64, last_error: Option<&str>) -> queues::DeadLetter {
        queues::DeadLetter {
            sqs_message_id: id.to_owned(),
            receipt: None,
            sent_at_ms,
            message: Message {
                id: format!("m-{id}"),
                received_ms: 1,
                attempts: 3,
                last_error: last_error.map(str::to_owned),
                event: Bytes::from_static(b"{}"),
            },
        }
    }

    fn ids(page: &[DeadLetter]) -> Vec<&str> {
        page.iter().map(|l| l.id.as_str()).collect()
    }

    #[test]
    fn pages_start_after_the_handle_in_the_listed_order() {
        let listed = || {
            vec![
                letter("s1", 10, Some("HTTP 500")),
                letter("s2", 0, None),
                letter("s3", 30, None),
            ]
        };
        let first = page("d", listed(), None, 2).unwrap();
        assert_eq!(ids(&first), ["s1", "s2"]);
        assert_eq!(first[0].failed_ms, Some(10));
        assert_eq!(first[0].reason, "HTTP 500");
        assert_eq!(first[0].message.id, "m-s1");
        // Sent time unknown; no error recorded: SQS's redrive policy moved it.
        assert_eq!(first[1].failed_ms, None);
        assert_eq!(first[1].reason, EXHAUSTED);
        assert_eq!(ids(&page("d", listed(), Some("s2"), 2).unwrap()), ["s3"]);
        assert!(page("d", listed(), Some("s3"), 2).unwrap().is_empty());
        let gone = page("d", listed(), Some("s9"), 2).unwrap_err();
        assert!(gone.0.contains("`s9` is no longer"), "{gone}");
    }
}
