//! Delivery counters on AWS: the connector adds each invocation's counts to
//! one state-table item per destination (`pk = "delivery-metrics"`, `sk` = the
//! destination; one `UpdateItem` with `ADD`, so concurrent invocations
//! never overwrite each other), and [`DynamoDeliveryStats`] reads them back
//! with the queues' depths.
//!
//! The item's attributes: `delivered`, `retried`, `dead_lettered`, one
//! `latency_le_<bound>` per histogram bucket ([`BOUNDS_MS`]) and
//! `latency_over_<last bound>`, all numbers, only those ever added to;
//! `updated_ms`, when it last changed.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use uniflow_runtime::backend::BackendError;
use uniflow_runtime::delivery::metrics::{
    BOUNDS_MS, BUCKETS, DeliveryCounts, DeliveryMetrics, LatencyHistogram,
};

use crate::sqs::{dlq_name, queue_name};

/// The partition key of delivery counters in the state table.
pub const METRICS_PK: &str = "delivery-metrics";

/// The attribute holding histogram bucket `i`.
fn bucket_attribute(i: usize) -> String {
    match BOUNDS_MS.get(i) {
        Some(bound) => format!("latency_le_{bound}"),
        None => format!("latency_over_{}", BOUNDS_MS[BOUNDS_MS.len() - 1]),
    }
}

/// Adds `counts` to `destination`'s counters in the state table.
pub async fn record(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    destination: &str,
    counts: &DeliveryCounts,
    now_ms: i64,
) -> Result<(), BackendError> {
    let mut adds: Vec<(String, u64)> = vec![
        ("delivered".to_owned(), counts.delivered),
        ("retried".to_owned(), counts.retried),
        ("dead_lettered".to_owned(), counts.dead_lettered),
    ];
    adds.extend(
        counts
            .latency
            .counts()
            .iter()
            .enumerate()
            .map(|(i, &n)| (bucket_attribute(i), n)),
    );
    adds.retain(|(_, n)| *n > 0);
    let mut request = client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(METRICS_PK.to_owned()))
        .key("sk", AttributeValue::S(destination.to_owned()))
        .expression_attribute_names("#updated", "updated_ms")
        .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()));
    let mut terms = Vec::with_capacity(adds.len());
    for (k, (name, n)) in adds.iter().enumerate() {
        terms.push(format!("#a{k} :a{k}"));
        request = request
            .expression_attribute_names(format!("#a{k}"), name)
            .expression_attribute_values(format!(":a{k}"), AttributeValue::N(n.to_string()));
    }
    let mut expression = "SET #updated = :now".to_owned();
    if !terms.is_empty() {
        expression.push_str(" ADD ");
        expression.push_str(&terms.join(", "));
    }
    request
        .update_expression(expression)
        .send()
        .await
        .map_err(|e| {
            BackendError(format!(
                "recording delivery counters of `{destination}` in {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(())
}

/// Reads `destination`'s counters (zero before the first delivery).
pub async fn read(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    destination: &str,
) -> Result<DeliveryCounts, BackendError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(METRICS_PK.to_owned()))
        .key("sk", AttributeValue::S(destination.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| {
            BackendError(format!(
                "reading delivery counters of `{destination}` from {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        })?;
    let Some(item) = out.item() else {
        return Ok(DeliveryCounts::default());
    };
    let number = |name: &str| -> Result<u64, BackendError> {
        match item.get(name) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
                BackendError(format!(
                    "delivery counter `{name}` of `{destination}` is not a count: {n}"
                ))
            }),
            Some(other) => Err(BackendError(format!(
                "delivery counter `{name}` of `{destination}` is not a number: {other:?}"
            ))),
        }
    };
    let mut buckets = [0u64; BUCKETS];
    for (i, slot) in buckets.iter_mut().enumerate() {
        *slot = number(&bucket_attribute(i))?;
    }
    Ok(DeliveryCounts {
        delivered: number("delivered")?,
        retried: number("retried")?,
        dead_lettered: number("dead_lettered")?,
        latency: LatencyHistogram::from_counts(&buckets)
            .map_err(|e| BackendError(e.to_string()))?,
    })
}

/// [`DeliveryStats`] on AWS: the counters from the state table, the depths
/// from the queues (found by name with `GetQueueUrl`, so it runs wherever
/// the stack's resource prefix is known: a Lambda or the CLI).
#[derive(Debug, Clone)]
pub struct DynamoDeliveryStats {
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    state_table: String,
    resource_prefix: String,
}

impl DynamoDeliveryStats {
    /// Stats of the stack whose resources are named under
    /// `resource_prefix`, with counters in `state_table`.
    pub fn new(config: &aws_config::SdkConfig, state_table: &str, resource_prefix: &str) -> Self {
        DynamoDeliveryStats {
            dynamo: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            state_table: state_table.to_owned(),
            resource_prefix: resource_prefix.to_owned(),
        }
    }

    /// Messages in a queue: visible, in flight (a retry waiting out its
    /// backoff is in flight) and delayed.
    async fn depth(&self, name: &str) -> Result<u64, BackendError> {
        let url = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| {
                BackendError(format!(
                    "finding queue {name}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ))
            })?
            .queue_url
            .ok_or_else(|| BackendError(format!("SQS answered no URL for queue {name}")))?;
        let kinds = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .set_attribute_names(Some(kinds.to_vec()))
            .send()
            .await
            .map_err(|e| {
                BackendError(format!(
                    "reading the depth of queue {name}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ))
            })?;
        let attributes = out.attributes();
        let mut depth = 0u64;
        for kind in &kinds {
            if let Some(value) = attributes.and_then(|a| a.get(kind)) {
                depth += value.parse::<u64>().map_err(|_| {
                    BackendError(format!("queue {name}: {} is {value}", kind.as_str()))
                })?;
            }
        }
        Ok(depth)
    }
}

impl DynamoDeliveryStats {
    /// The metrics of `destination` (a name from the bundle): its counters
    /// and the depths of its queue and dead-letter queue.
    pub async fn metrics(&self, destination: &str) -> Result<DeliveryMetrics, BackendError> {
        let queue = queue_name(&self.resource_prefix, destination);
        let dlq = dlq_name(&self.resource_prefix, destination);
        let (counts, queued, dlq) = tokio::join!(
            read(&self.dynamo, &self.state_table, destination),
            self.depth(&queue),
            self.depth(&dlq),
        );
        Ok(DeliveryMetrics::new(&counts?, queued?, dlq?))
    }
}
