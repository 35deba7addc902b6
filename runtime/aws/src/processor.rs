//! The processor Lambda's logic: a Kinesis batch of stored events through a
//! [`ProfileStore`], then fanned out to the destination queues
//! ([`FanOut`]), answered with partial batch failures. A plain async
//! function, so it runs in tests without the Lambda runtime.
//!
//! The one mapping from outcomes to retries: a store failure
//! ([`BatchError`](uniflow_runtime::profiles::BatchError)) or a fan-out
//! failure ([`FanOutError`](crate::fanout::FanOutError)) reports the
//! record it stopped at and every later one, so Lambda retries from there
//! (events before it are applied and queued; applying one again is a
//! duplicate, and queueing one again is allowed: delivery is at least
//! once); an event that is not a pipeline event is logged with its sequence
//! number and not retried, since retrying cannot help (it stays in the raw
//! archive).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use bytes::Bytes;
use uniflow_runtime::backend::Clock;
use uniflow_runtime::profiles::{ProfileStore, Report};

use crate::fanout::{FanOut, FanOutReport};

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// The store's report of what it applied (up to a failure).
    pub report: Report,
    /// Records skipped as not pipeline events: sequence number and why.
    pub skipped: Vec<(String, String)>,
    /// What fan-out sent to the destination queues.
    pub fanned_out: FanOutReport,
    /// Sequence numbers to retry, in batch order.
    pub failed: Vec<String>,
}

impl Handled {
    /// The answer Lambda expects (`ReportBatchItemFailures`).
    pub fn response(&self) -> KinesisEventResponse {
        KinesisEventResponse {
            batch_item_failures: self
                .failed
                .iter()
                .map(|s| KinesisBatchItemFailure {
                    item_identifier: Some(s.clone()),
                })
                .collect(),
        }
    }
}

/// Processes one Kinesis batch, in order, then fans the events the store
/// applied out to the destination queues. Each record is one event as
/// ingest stored it: the JSON, then `\n`.
pub async fn process(
    store: &impl ProfileStore,
    fanout: &FanOut,
    clock: &impl Clock,
    event: KinesisEvent,
) -> Handled {
    let mut sequence = Vec::with_capacity(event.records.len());
    let mut batch = Vec::with_capacity(event.records.len());
    for record in event.records {
        sequence.push(record.kinesis.sequence_number);
        let mut data = record.kinesis.data.0;
        while data.last().is_some_and(u8::is_ascii_whitespace) {
            data.pop();
        }
        batch.push(Bytes::from(data));
    }
    let (report, done) = match store.process(batch.clone()).await {
        Ok(report) => (report, sequence.len()),
        Err(e) => {
            let done = e.done.min(sequence.len());
            tracing::error!(
                error = %e.error,
                done,
                retry_from = sequence.get(done).map(String::as_str),
                "the profile store failed; the rest of the batch is retried"
            );
            (e.report, done)
        }
    };
    let invalid = report.invalid.iter().map(|(i, _)| *i).collect();
    let (fanned_out, done) = match fanout.send(&batch[..done], &invalid, clock.now_ms()).await {
        Ok(sent) => (sent, done),
        Err(e) => {
            let from = e.from.min(done);
            tracing::error!(
                error = %e.error,
                retry_from = sequence.get(from).map(String::as_str),
                "fan-out failed; the batch is retried from the first event not queued everywhere"
            );
            (e.report, from)
        }
    };
    let failed = sequence[done..].to_vec();
    let skipped: Vec<(String, String)> = report
        .invalid
        .iter()
        .map(|(i, why)| (sequence.get(*i).cloned().unwrap_or_default(), why.clone()))
        .collect();
    for (seq, why) in &skipped {
        tracing::warn!(sequence_number = %seq, %why, "skipped a record that is not a pipeline event (kept in the raw archive)");
    }
    tracing::info!(
        applied = report.applied,
        duplicates = report.duplicates,
        merges = report.merges,
        refusals = report.refusals,
        unattributed = report.unattributed,
        skipped = skipped.len(),
        queued = fanned_out.sent,
        too_large = fanned_out.too_large.len(),
        failed = failed.len(),
        "processed a batch"
    );
    Handled {
        report,
        skipped,
        fanned_out,
        failed,
    }
}

/// [`process`], answered the way Lambda expects.
pub async fn handle(
    store: &impl ProfileStore,
    fanout: &FanOut,
    clock: &impl Clock,
    event: KinesisEvent,
) -> KinesisEventResponse {
    process(store, fanout, clock, event).await.response()
}
