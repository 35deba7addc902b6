//! Delivery: every event a destination subscribed to, sent to it at least
//! once, through outages, with every failure kept where an operator can see
//! and redrive it.
//!
//! Written once and run by both backends:
//!
//! - [`Message`]: one event on its way to one destination, as a queue holds
//!   it (the stored event and its delivery state).
//! - [`Shaper`]: the stored event into the destination's payload (its
//!   transforms, then its template), compiled once per destination.
//! - [`Connector`]: sends a batch of payloads and answers one [`Outcome`]
//!   per payload. The connectors live in [`crate::connectors`].
//! - [`backoff`]: when a retryable failure is tried again.
//! - [`metrics`]: the counters and latency histogram each backend keeps,
//!   and [`metrics::DeliveryStats`], how they are read.
//!
//! The embedded backend keeps a durable queue per destination on local disk;
//! the AWS backend uses the SQS queue and dead-letter queue per destination
//! from the generated template. Both apply the same rules:
//!
//! 1. an event goes to the queue of every destination whose subscription and
//!    filter it matches ([`DestinationInfo::accepts`]);
//! 2. [`Outcome::Delivered`] removes it; [`Outcome::Retry`] makes it visible
//!    again after [`backoff`] (or the receiver's `Retry-After`, whichever is
//!    later) unless it has had [`RetryPolicy::attempts`] attempts or is older
//!    than [`RetryPolicy::max_age_secs`], when it goes to the dead-letter
//!    queue; [`Outcome::Failed`] sends it to the dead-letter queue at once;
//! 3. a dead-lettered message keeps its last error and how many attempts it
//!    had, and redrive puts it back with its attempts reset.

pub mod admin;
pub mod metrics;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uniflow_schemas::bundle::{DestinationInfo, RetryPolicy};

pub mod shape;

pub use shape::{ShapeError, Shaper};

/// One event on its way to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The event's `messageId`: the receiver's idempotency key.
    pub id: String,
    /// When ingest accepted the event (ms since the epoch); the retry
    /// policy's maximum age counts from here.
    pub received_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure, once there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The event as ingest stored it (JSON).
    #[serde(with = "json_bytes")]
    pub event: Bytes,
}

/// One payload handed to a connector: the event shaped for the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The event's `messageId`.
    pub id: String,
    /// The event after the destination's transforms and template: one JSON
    /// value. Connectors rely on it without parsing again (a batch body is
    /// the payloads joined); every producer guarantees it: the [`Shaper`]
    /// checks what a template renders and serialises what transforms
    /// change, and a stored event is JSON (ingest parsed it; the SQS
    /// message holding it is parsed before it is shaped).
    pub payload: Bytes,
}

/// What became of one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination has it.
    Delivered,
    /// Worth trying again (timeouts, network errors, 408, 429, 5xx).
    Retry {
        /// What happened, for the operator.
        reason: String,
        /// The receiver asked for at least this long (`Retry-After`).
        after: Option<Duration>,
    },
    /// Trying again cannot help (other 4xx, a template that cannot render):
    /// straight to the dead-letter queue.
    Failed {
        /// What happened, for the operator; for HTTP, the status and the
        /// start of the response body.
        reason: String,
    },
}

/// A future a connector returns.
pub type Delivering<'a> = Pin<Box<dyn Future<Output = Vec<Outcome>> + Send + 'a>>;

/// Sends payloads to one destination.
pub trait Connector: Send + Sync + 'static {
    /// Sends `batch` (at most the destination's `batch.max_events` payloads
    /// and `batch.max_bytes` bytes) and answers one outcome per payload, in
    /// order. Never panics and never fails as a whole: a failure of the
    /// whole request is the same outcome for every payload.
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a>;
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How long to wait before attempt `attempts + 1`, after `attempts` failed
/// ones (`attempts >= 1`), given a uniform random `jitter` in `[0, 1)`.
///
/// Exponential: full jitter over `delay * 2^(attempts-1)`, capped at
/// [`MAX_BACKOFF`], never under a tenth of the step (so a retry storm
/// spreads out but never hammers). Fixed: `delay`, jittered by ±10%.
pub fn backoff(policy: &RetryPolicy, attempts: u32, jitter: f64) -> Duration {
    let delay = Duration::from_millis(policy.delay_ms);
    let jitter = jitter.clamp(0.0, 1.0);
    if policy.exponential {
        let step = delay
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(MAX_BACKOFF);
        step.mul_f64(0.1 + 0.9 * jitter)
    } else {
        delay.mul_f64(0.9 + 0.2 * jitter)
    }
}

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Give up: to the dead-letter queue.
    DeadLetter,
}

/// Decides what follows a [`Outcome::Retry`] of a message that has now had
/// `attempts` attempts, at `now_ms`.
pub fn after_retryable(
    policy: &RetryPolicy,
    received_ms: i64,
    attempts: u32,
    asked: Option<Duration>,
    now_ms: i64,
    jitter: f64,
) -> Next {
    if attempts >= policy.attempts {
        return Next::DeadLetter;
    }
    let wait = backoff(policy, attempts, jitter).max(asked.unwrap_or_default());
    let age_then = now_ms.saturating_sub(received_ms) + wait.as_millis() as i64;
    if age_then > (policy.max_age_secs as i64).saturating_mul(1000) {
        return Next::DeadLetter;
    }
    Next::RetryAfter(wait)
}

/// The fate of a message after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Delivered: remove it.
    Delivered,
    /// Attempt again after `after`, as `message` (attempts counted, last
    /// error set).
    Retry {
        /// How long it stays invisible.
        after: Duration,
        /// The message to keep.
        message: Message,
    },
    /// To the dead-letter queue, as `message`, because of `reason`.
    DeadLetter {
        /// Why it will not be attempted again.
        reason: String,
        /// The message to keep, with its attempts and last error.
        message: Message,
    },
}

/// Applies the retry policy to one attempt's outcome: the one mapping both
/// backends use (the module docs state it).
pub fn fate(
    policy: &RetryPolicy,
    message: &Message,
    outcome: &Outcome,
    now_ms: i64,
    jitter: f64,
) -> Fate {
    let attempts = message.attempts.saturating_add(1);
    match outcome {
        Outcome::Delivered => Fate::Delivered,
        Outcome::Failed { reason } => Fate::DeadLetter {
            reason: reason.clone(),
            message: Message {
                attempts,
                last_error: Some(reason.clone()),
                ..message.clone()
            },
        },
        Outcome::Retry { reason, after } => {
            let kept = Message {
                attempts,
                last_error: Some(reason.clone()),
                ..message.clone()
            };
            match after_retryable(
                policy,
                message.received_ms,
                attempts,
                *after,
                now_ms,
                jitter,
            ) {
                Next::RetryAfter(after) => Fate::Retry {
                    after,
                    message: kept,
                },
                Next::DeadLetter => Fate::DeadLetter {
                    reason: if attempts >= policy.attempts {
                        format!("gave up after {attempts} attempts; last error: {reason}")
                    } else {
                        format!(
                            "gave up: the next attempt would be past the maximum age of {}s; last error: {reason}",
                            policy.max_age_secs
                        )
                    },
                    message: kept,
                },
            }
        }
    }
}

/// A uniform random number in `[0, 1)` for backoff jitter.
pub fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Whether `destination` receives the stored event `event` (JSON); an event
/// that does not parse is delivered nowhere.
pub fn routes_to(destination: &DestinationInfo, event: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(event).is_ok_and(|v| destination.accepts(&v))
}

mod json_bytes {
    //! A message's event serialised as embedded JSON, not as a byte array.

    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(event: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue = serde_json::from_slice(event)
            .map_err(|e| serde::ser::Error::custom(format!("the event is not JSON: {e}")))?;
        serde::Serialize::serialize(raw, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(Bytes::copy_from_slice(raw.get().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(exponential: bool) -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            exponential,
            delay_ms: 1000,
            max_age_secs: 3600,
        }
    }

    #[test]
    fn exponential_backoff_doubles_within_jitter_and_is_capped() {
        let p = policy(true);
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 3, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(&p, 3, 0.0), Duration::from_millis(400));
        assert_eq!(backoff(&p, 40, 1.0), MAX_BACKOFF);
        let fixed = policy(false);
        assert_eq!(backoff(&fixed, 7, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn retries_stop_at_the_attempts_or_the_maximum_age() {
        let p = policy(true);
        assert_eq!(
            after_retryable(&p, 0, 1, None, 0, 1.0),
            Next::RetryAfter(Duration::from_secs(1))
        );
        // Retry-After wins when longer.
        assert_eq!(
            after_retryable(&p, 0, 1, Some(Duration::from_secs(30)), 0, 1.0),
            Next::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(after_retryable(&p, 0, 5, None, 0, 1.0), Next::DeadLetter);
        // The next attempt would come after the maximum age.
        assert_eq!(
            after_retryable(&p, 0, 1, None, 3_600_000, 1.0),
            Next::DeadLetter
        );
    }

    #[test]
    fn a_message_serialises_its_event_as_json() {
        let m = Message {
            id: "m1".to_owned(),
            received_ms: 5,
            attempts: 2,
            last_error: Some("HTTP 500".to_owned()),
            event: Bytes::from_static(br#"{"type":"track","event":"A"}"#),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.contains(r#""event":{"type":"track","event":"A"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), m);
    }
}
