//! What the processor keeps about people: profiles, the identifiers linked
//! to them, merge decisions, timeline entries and accounts. The same shapes
//! on every backend (stored as JSON documents), so a profile reads the same
//! from `uniflow dev` and from DynamoDB.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A value with when it was set, so a late event cannot overwrite a newer one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The value.
    pub value: serde_json::Value,
    /// The event timestamp it was set at (epoch ms).
    pub at_ms: i64,
    /// The event that set it (breaks ties between equal timestamps).
    pub message_id: String,
}

impl Stamped {
    /// Whether `self` is newer than `other` (by timestamp, then message id).
    pub fn newer_than(&self, other: &Stamped) -> bool {
        (self.at_ms, &self.message_id) > (other.at_ms, &other.message_id)
    }
}

/// Traits merged newest-wins, key by key.
pub type Traits = BTreeMap<String, Stamped>;

/// Merges `incoming` into `traits`, keeping the newer value of each key.
pub fn merge_traits(traits: &mut Traits, incoming: Traits) {
    for (key, value) in incoming {
        match traits.get(&key) {
            Some(current) if !value.newer_than(current) => {}
            _ => {
                traits.insert(key, value);
            }
        }
    }
}

/// One person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Its id (derived from the event that created it).
    pub id: String,
    /// Bumped by every write; conditional writes compare it.
    pub version: u64,
    /// The earliest event timestamp seen (epoch ms).
    pub first_seen_ms: i64,
    /// The latest event timestamp seen (epoch ms).
    pub last_seen_ms: i64,
    /// Traits from identify calls.
    #[serde(default)]
    pub traits: Traits,
    /// Events by type (`track`, `page`, `identify`, ...).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Track events by name.
    #[serde(default)]
    pub event_counts: BTreeMap<String, u64>,
    /// How many identifiers of each type are linked to it (what limits are checked against).
    #[serde(default)]
    pub identity_counts: BTreeMap<String, u32>,
    /// Groups (accounts) it belongs to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Profiles merged into this one (their timelines and history stay under their ids).
    #[serde(default)]
    pub merged_from: Vec<String>,
    /// Set when this profile was merged into another: the one to read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

impl Profile {
    /// A profile with nothing in it yet.
    pub fn new(id: String, at_ms: i64) -> Profile {
        Profile {
            id,
            version: 0,
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
            traits: Traits::new(),
            counts: BTreeMap::new(),
            event_counts: BTreeMap::new(),
            identity_counts: BTreeMap::new(),
            groups: BTreeSet::new(),
            merged_from: Vec::new(),
            merged_into: None,
        }
    }

    /// Folds `other` (being merged away) into `self`.
    pub fn absorb(&mut self, other: &Profile) {
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
        merge_traits(&mut self.traits, other.traits.clone());
        for (k, n) in &other.counts {
            *self.counts.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.event_counts {
            *self.event_counts.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.identity_counts {
            *self.identity_counts.entry(k.clone()).or_default() += n;
        }
        self.groups.extend(other.groups.iter().cloned());
        self.merged_from.push(other.id.clone());
    }

    /// Serialises it for a store.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An identifier linked to a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// `type:value`, normalised (`email:ann@example.com`).
    pub identifier: String,
    /// The profile it belongs to (possibly merged away: follow `merged_into`).
    pub profile_id: String,
    /// The event that linked it.
    pub message_id: String,
    /// The source of that event.
    pub source_id: String,
    /// That event's timestamp (epoch ms).
    pub at_ms: i64,
}

/// What an identity decision did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Profile `from` was merged into `into`.
    Merged {
        /// The profile merged away.
        from: String,
        /// The profile that absorbed it.
        into: String,
    },
    /// The event's identifier was not linked: linking it would have broken a rule.
    Refused {
        /// The identifier that was not linked.
        identifier: String,
        /// The profile holding it, when it had one (the merge refused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
}

/// A merge or a refused merge: which event, which identifiers, which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The event that asked for it.
    pub message_id: String,
    /// Its source.
    pub source_id: String,
    /// Its timestamp (epoch ms).
    pub at_ms: i64,
    /// Every identifier the event carried (`type:value`), strongest first.
    pub identifiers: Vec<String>,
    /// The identifier of the event that tied the two sides together.
    pub via: String,
    /// The rule that allowed or refused it, in words.
    pub rule: String,
}

/// One event on a profile's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The event timestamp (epoch ms).
    pub at_ms: i64,
    /// The event's message id.
    pub message_id: String,
    /// The event as the pipeline stored it.
    pub event: Box<RawValue>,
}

/// An account (group), with traits from group calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The `groupId`.
    pub id: String,
    /// Bumped by every write.
    pub version: u64,
    /// The earliest group call (epoch ms).
    pub first_seen_ms: i64,
    /// The latest group call (epoch ms).
    pub last_seen_ms: i64,
    /// Traits from group calls.
    #[serde(default)]
    pub traits: Traits,
}

/// Where a page of a profile's events starts: strictly older than this.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    /// Event timestamp (epoch ms).
    pub at_ms: i64,
    /// Message id.
    pub message_id: String,
}

impl Cursor {
    /// The opaque token form (`<ms>.<messageId>`).
    pub fn token(&self) -> String {
        format!("{}.{}", self.at_ms, self.message_id)
    }

    /// Reads a token made by [`Cursor::token`].
    pub fn parse(token: &str) -> Option<Cursor> {
        let (ms, id) = token.split_once('.')?;
        Some(Cursor {
            at_ms: ms.parse().ok()?,
            message_id: id.to_owned(),
        })
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<TimelineEntry>,
    /// Where the next page starts, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Cursor>,
}
