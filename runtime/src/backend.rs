//! The small traits the handlers are written against. The embedded backend
//! (`crate::embedded`) implements them on local disk; the AWS backend with
//! Kinesis, S3 and DynamoDB.

use std::future::Future;

use crate::record::Record;

/// Why a backend could not do what was asked; the caller answers 503 and
/// the sender retries.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Where ingest makes events durable.
pub trait EventSink: Send + Sync + 'static {
    /// Returns once every record is durable (fsynced, or accepted by
    /// Kinesis and S3), or fails and nothing may be assumed stored.
    fn append(&self, records: Vec<Record>)
    -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// Remembers message ids for deduplication.
pub trait Dedupe: Send + Sync + 'static {
    /// For each id of `source`, whether it was not seen within the last
    /// `window_secs`; records the fresh ones as seen from `now_ms`.
    fn first_seen(
        &self,
        source: &str,
        window_secs: u64,
        ids: &[&str],
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<bool>, BackendError>> + Send;

    /// Forgets ids recorded by `first_seen` whose events were then not
    /// stored, so a retry is not taken for a duplicate.
    fn forget(&self, source: &str, ids: &[&str]) -> impl Future<Output = ()> + Send;
}

/// The time. A trait so tests can pin it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}
