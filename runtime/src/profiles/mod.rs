//! Identity resolution and profiles: the processor's logic, written once.
//!
//! [`resolve::resolve`] decides, for one event, which profile it belongs
//! to, what merges and what is refused; it reads through a
//! [`resolve::View`] and returns [`resolve::Effects`]. Each backend
//! implements [`ProfileStore`]: it reads, calls the resolver, and writes
//! the effects atomically with the event's idempotency key (the embedded
//! store in one transaction per batch, DynamoDB in one transaction per
//! event). The management API and the behaviour suite
//! ([`crate::conformance::profiles`]) use only [`ProfileStore`].

pub mod model;
pub mod resolve;
pub mod rules;
pub mod suite;

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

use crate::backend::BackendError;
pub use model::{Account, Cursor, Decision, EventPage, Link, Outcome, Profile, TimelineEntry};
pub use resolve::{Effects, Key, Resolution, View, ViewError, resolve};
pub use rules::{Event, Rules};

/// What processing a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events applied.
    pub applied: usize,
    /// Events applied before (redelivered): nothing changed.
    pub duplicates: usize,
    /// Applied events that carried no usable identifier (belong to nobody).
    pub unattributed: usize,
    /// Profiles merged away.
    pub merges: usize,
    /// Links refused by a rule.
    pub refusals: usize,
    /// Items the store wrote (for the benchmark's raw-write baseline).
    pub writes: usize,
    /// Events that are not pipeline events, by index, with why (skipped:
    /// retrying cannot help; they stay in the raw archive).
    pub invalid: Vec<(usize, String)>,
}

impl Report {
    /// Counts one resolution's effects.
    pub fn count(&mut self, effects: &Effects) {
        self.applied += 1;
        if effects.profile.is_none() {
            self.unattributed += 1;
        }
        self.merges += effects.merged.len();
        self.refusals += effects
            .decisions
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Refused { .. }))
            .count();
    }
}

/// A batch stopped by a store failure: events before `done` are applied,
/// the rest must be redelivered.
#[derive(Debug, thiserror::Error)]
#[error("processing stopped at event {done}: {error}")]
pub struct BatchError {
    /// How many events, from the start of the batch, are done.
    pub done: usize,
    /// What was done before the failure.
    pub report: Report,
    /// The failure.
    pub error: BackendError,
}

/// What deleting a profile removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// The profile and every profile merged into it.
    pub profiles: Vec<String>,
    /// Its identifiers, suppressed from now on.
    pub identifiers: Vec<String>,
}

/// Profiles on a backend: the processor's writes and the management API's
/// reads.
pub trait ProfileStore: Send + Sync + 'static {
    /// Applies stored events in order. Idempotent: an event applied before
    /// changes nothing.
    fn process(
        &self,
        events: Vec<Bytes>,
    ) -> impl Future<Output = Result<Report, BatchError>> + Send;

    /// The profile with this id, following merges (`None`: unknown or deleted).
    fn profile(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Profile>, BackendError>> + Send;

    /// The profile an identifier (`type:value`, normalised) is linked to.
    fn lookup(
        &self,
        identifier: &str,
    ) -> impl Future<Output = Result<Option<Profile>, BackendError>> + Send;

    /// A live profile's identifiers, including those of profiles merged into it.
    fn identities(&self, id: &str) -> impl Future<Output = Result<Vec<Link>, BackendError>> + Send;

    /// A live profile's events, newest first, strictly older than `before`.
    fn events(
        &self,
        id: &str,
        before: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<EventPage, BackendError>> + Send;

    /// Merges and refusals recorded on a live profile and the profiles
    /// merged into it, oldest first.
    fn history(&self, id: &str)
    -> impl Future<Output = Result<Vec<Decision>, BackendError>> + Send;

    /// Deletes a live profile (and those merged into it) and suppresses its
    /// identifiers so they never link again. `None` when there is no such profile.
    fn delete(
        &self,
        id: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Deleted>, BackendError>> + Send;

    /// An account (group).
    fn account(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Account>, BackendError>> + Send;
}

/// Merges pages read from several profiles (a profile and those merged into
/// it) into one page, newest first.
pub fn merge_pages(mut entries: Vec<TimelineEntry>, limit: usize) -> EventPage {
    let limit = limit.max(1);
    entries.sort_by(|a, b| (b.at_ms, &b.message_id).cmp(&(a.at_ms, &a.message_id)));
    entries.dedup_by(|a, b| a.message_id == b.message_id && a.at_ms == b.at_ms);
    let next = (entries.len() > limit).then(|| {
        let last = &entries[limit - 1];
        Cursor {
            at_ms: last.at_ms,
            message_id: last.message_id.clone(),
        }
    });
    entries.truncate(limit);
    EventPage {
        events: entries,
        next,
    }
}
