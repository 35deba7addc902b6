//! What changes between two configs, in the user's terms: the domain diff
//! `uniflow plan` shows (sources, events and their properties, traits,
//! identity rules, destinations, segments), the breaking changes of event
//! schemas in both directions, each naming what it breaks, version notes,
//! and personal data newly flowing to a destination.
//!
//! Everything here is computed from two checked [`Config`]s alone, so the
//! same diff comes out of `uniflow plan` against a deployed stack and
//! `uniflow plan --against OLD.kdl` in a pull request with no AWS access.
//!
//! The parts, one file each:
//!
//! - [`changes`]: added, removed and changed things. Each list keeps the new
//!   file's order; a removed thing comes right after the thing that preceded
//!   it in the old file (first, when nothing did).
//! - [`schema`]: the breaking-change rules of event schemas, one [`Rule`]
//!   each, documented there (What it does / Why / Example).
//! - [`readers`]: what reads a property (segments, destinations, the
//!   archive's Glue table), named in [`BreakingChange::breaks`].
//! - [`pii`]: `pii` values a destination newly receives.
//!
//! ## Removed events
//! A removed event is a change. It is also a breaking change
//! ([`Rule::RemovedProperty`] with `property: None`) when the *old* config
//! names it as something to read: a segment's `from` or a destination's
//! `events` list. Those readers are what stops receiving it; the archive
//! keeps its old rows, so the Glue table is not listed. Senders of a removed
//! event meet their source's `on-undeclared` policy, shown in `changes`.
//!
//! ## Version notes
//! For each event in both configs: a version change without a breaking
//! change, a breaking change (either direction) without a version change,
//! and a version that goes backwards each get a [`VersionNote`].
//!
//! **Invariants:** pure (no I/O), total (no panic on any pair of checked
//! configs), deterministic (file order, then sorted).

mod changes;
mod pii;
mod readers;
mod schema;

use serde::Serialize;

use crate::model::Config;

/// Everything that differs between the deployed config and the new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigDiff {
    /// Added, removed and changed things, in file order of the new config
    /// (removed ones where they stood in the old one).
    pub changes: Vec<Change>,
    /// Breaking changes of event schemas, senders' first.
    pub breaking: Vec<BreakingChange>,
    /// Versions changed without a breaking change, and breaking changes
    /// without a version change.
    pub versions: Vec<VersionNote>,
    /// Properties marked `pii` that reach a destination that did not
    /// receive them before.
    pub pii_flows: Vec<PiiFlow>,
}

impl ConfigDiff {
    /// Whether the two configs mean the same thing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.breaking.is_empty()
            && self.versions.is_empty()
            && self.pii_flows.is_empty()
    }
}

/// What kind of thing a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// The `project` node (region, stage, tags, traffic).
    Project,
    /// A `source`.
    Source,
    /// An `event`.
    Event,
    /// One property of an event (`order-completed.revenue`,
    /// `order-completed.items[].sku`).
    Property,
    /// A user or group trait (`user.email`).
    Trait,
    /// An identity rule (`identifier`) or the blocked list.
    Identifier,
    /// A `destination`.
    Destination,
    /// A `segment`.
    Segment,
}

/// Whether a thing is new, gone, or different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Only in the new config.
    Add,
    /// Only in the old config.
    Remove,
    /// In both, different.
    Change,
}

/// One added, removed or changed thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What kind of thing.
    pub subject: Subject,
    /// Added, removed or changed.
    pub action: Action,
    /// Its name as the user writes it: `web`, `order-completed`,
    /// `order-completed.revenue`, `user.email`, `email` (identifier).
    pub name: String,
    /// What changed, one short line each, old then new:
    /// `type: number -> string`, `optional -> required`,
    /// `events: order-completed -> order-completed, signed-up`.
    /// Empty for additions and removals.
    pub details: Vec<String>,
}

/// Who a breaking change breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Apps already shipped: events they send that passed before are now
    /// rejected (or quarantined).
    Senders,
    /// What reads stored events: the archive's Glue table, destinations
    /// (filters, transforms, templates), segments.
    Consumers,
}

/// The rule a breaking change violates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Senders: a new property that is required.
    NewRequiredProperty,
    /// Senders: an optional property became required.
    OptionalToRequired,
    /// Senders: the type accepts less (`string | number` -> `number`,
    /// nullable -> not nullable, `number` -> `integer`).
    NarrowedType,
    /// Senders: an enum lost a value.
    RemovedEnumValue,
    /// Senders: a new or tighter `min`, `max`, `min-length`, `max-length`
    /// or `multiple-of`.
    TighterBound,
    /// Senders: a new or different `format`.
    TighterFormat,
    /// Senders: a new or different `pattern`.
    TighterPattern,
    /// Senders: an object went from `strip` (or `passthrough`) to `strict`.
    StripToStrict,
    /// Consumers: a property is gone.
    RemovedProperty,
    /// Consumers: a property is gone and another with the same schema
    /// appeared (reported as a rename, once, instead of remove + add).
    RenamedProperty,
    /// Consumers: a property's type changed (not only narrowed or widened
    /// in a way readers cannot see).
    ChangedType,
    /// Consumers: a required property became optional, so readers must now
    /// handle it missing.
    RequiredToOptional,
}

impl Rule {
    /// Whose builds or readers this rule breaks.
    pub fn direction(self) -> Direction {
        match self {
            Rule::NewRequiredProperty
            | Rule::OptionalToRequired
            | Rule::NarrowedType
            | Rule::RemovedEnumValue
            | Rule::TighterBound
            | Rule::TighterFormat
            | Rule::TighterPattern
            | Rule::StripToStrict => Direction::Senders,
            Rule::RemovedProperty
            | Rule::RenamedProperty
            | Rule::ChangedType
            | Rule::RequiredToOptional => Direction::Consumers,
        }
    }
}

/// One breaking change of one event's schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakingChange {
    /// The event.
    pub event: String,
    /// The property path inside the event's properties (`revenue`,
    /// `items[].sku`); `None` for the event's top-level object.
    pub property: Option<String>,
    /// The rule.
    pub rule: Rule,
    /// Who it breaks (the rule's direction, repeated for readers of JSON).
    pub direction: Direction,
    /// What changed, in one sentence: "`coupon` was optional and is now
    /// required".
    pub detail: String,
    /// What it breaks, one item each: "app builds that send
    /// `order-completed` without `coupon`", "segment `big-spenders` reads
    /// `revenue`", "destination `warehouse` renames `revenue`", "the
    /// archive's Glue table `order_completed` column `revenue`".
    pub breaks: Vec<String>,
}

/// A version number that does not match the change it labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionNote {
    /// The event.
    pub event: String,
    /// The deployed version.
    pub from: u32,
    /// The new version.
    pub to: u32,
    /// Whether the event has a breaking change.
    pub breaking: bool,
    /// "version 1 -> 2 without a breaking change" or "breaking change
    /// without a version change: bump `version` to 2".
    pub message: String,
}

/// A `pii` property that now reaches a destination it did not reach before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PiiFlow {
    /// The destination.
    pub destination: String,
    /// The event (or `identify` for user traits).
    pub event: String,
    /// The property path (`email`, `address.street`).
    pub property: String,
    /// `unhashed` when it is sent as is, `hashed` when a `hash` transform
    /// covers it (still personal data under GDPR, but pseudonymous).
    pub form: String,
}

/// Compares the deployed config `old` with the new config `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let changes = changes::changes(old, new);
    let breaking = schema::breaking(old, new);
    let versions = versions(old, new, &breaking);
    let pii_flows = pii::new_flows(old, new);
    ConfigDiff {
        changes,
        breaking,
        versions,
        pii_flows,
    }
}

/// The version notes of the events in both configs, in the new file's order.
fn versions(old: &Config, new: &Config, breaking: &[BreakingChange]) -> Vec<VersionNote> {
    let mut notes = Vec::new();
    for n in &new.events {
        let Some(o) = old.event(&n.name.value) else {
            continue;
        };
        let is_breaking = breaking.iter().any(|b| b.event == n.name.value);
        let (from, to) = (o.version, n.version);
        let message = if to < from {
            format!("version {from} -> {to} goes backwards: versions only grow")
        } else if to > from && !is_breaking {
            format!("version {from} -> {to} without a breaking change")
        } else if to == from && is_breaking {
            format!(
                "breaking change without a version change: bump `version` to {}",
                from.saturating_add(1)
            )
        } else {
            continue;
        };
        notes.push(VersionNote {
            event: n.name.value.clone(),
            from,
            to,
            breaking: is_breaking,
            message,
        });
    }
    notes
}
