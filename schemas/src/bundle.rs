//! The compiled bundle (`build/bundle.json`): the one contract between the
//! compiler and the runtime. The runtime learns everything about a project
//! from it and never reads KDL.
//!
//! Versioned: [`BUNDLE_VERSION`] changes on any incompatible change, and a
//! runtime refuses a bundle of another version. Maps are `BTreeMap`s so the
//! serialised form is byte-identical for the same project.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::schema::Schema;

/// The bundle format version this crate reads and writes.
pub const BUNDLE_VERSION: u32 = 2;

/// Everything the runtime needs to know about a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`BUNDLE_VERSION`] at the time of writing.
    pub version: u32,
    /// SHA-256 (hex) of the `uniflow.kdl` text this bundle was compiled from.
    pub config_digest: String,
    /// Project identity.
    pub project: ProjectInfo,
    /// Sources by name.
    pub sources: BTreeMap<String, SourcePolicy>,
    /// Declared track events by name.
    pub events: BTreeMap<String, EventSchema>,
    /// The `traits` objects of identify and group calls.
    pub traits: TraitSchemas,
    /// Identity resolution rules.
    pub identity: IdentityRules,
    /// Destinations by name (what they receive; delivery settings stay in
    /// the generated Lambda configuration).
    pub destinations: BTreeMap<String, DestinationInfo>,
    /// Segments by name.
    pub segments: BTreeMap<String, SegmentInfo>,
}

/// The `identity` rules, as the processor applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRules {
    /// Identifier types, strongest (priority 1) first.
    pub identifiers: Vec<IdentifierRule>,
    /// Values that never identify anyone, sorted.
    pub blocked: Vec<String>,
}

/// One identifier type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierRule {
    /// Its name (`user_id`, `email`).
    pub name: String,
    /// The dotted field path its value is read from (`userId`, `traits.email`).
    pub from: String,
    /// 1 is the strongest.
    pub priority: u32,
    /// How many values of it one profile may hold.
    pub limit: u32,
    /// Applied in order before values are compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub normalize: Vec<crate::Normalization>,
}

/// What a destination receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationInfo {
    /// `webhook`, `s3-export` or `lambda`.
    pub kind: String,
    /// The track events it receives; absent means every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Its condition on events, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The parsed `filter`: only events it holds for (TRUE, not FALSE or
    /// UNKNOWN) are delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

impl DestinationInfo {
    /// Whether an event (its `event` name and the whole message) is delivered here.
    pub fn accepts(&self, event_name: Option<&str>, message: &serde_json::Value) -> bool {
        let listed = match (&self.events, event_name) {
            (None, _) => true,
            (Some(list), Some(name)) => list.iter().any(|e| e == name),
            (Some(_), None) => false,
        };
        listed && self.condition.as_ref().is_none_or(|c| c.matches(message))
    }
}

/// A segment, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentInfo {
    /// What the audience is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The events it reads.
    pub from: Vec<String>,
    /// How far back it reads, in seconds (absent: all history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_secs: Option<u64>,
    /// Its per-event condition.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub where_: Option<String>,
    /// The parsed `where`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub where_condition: Option<Condition>,
    /// Its per-profile aggregate condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub having: Option<String>,
    /// How often membership is recomputed, in seconds.
    pub refresh_secs: u64,
    /// `destination` names membership changes go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_to: Vec<String>,
}

/// Who the project is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInfo {
    /// The project's slug.
    pub name: String,
    /// The AWS region.
    pub region: String,
    /// The stage.
    pub stage: String,
}

/// What kind of client sends to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A web page.
    Browser,
    /// A backend service.
    Server,
    /// A mobile app.
    Mobile,
}

/// What happens to an event that fails validation, or is not declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Refuse it and report why.
    Reject,
    /// Keep it aside, with its issues, in the violations archive.
    Quarantine,
    /// Keep it in the pipeline, issues attached.
    Allow,
}

/// A source's policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePolicy {
    /// Who sends.
    pub kind: SourceKind,
    /// CORS origins (browser sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Schema violations.
    pub on_violation: Policy,
    /// Track events that are not declared.
    pub on_undeclared: Policy,
    /// How long a `messageId` is remembered, in seconds.
    pub dedupe_window_secs: u64,
}

/// A declared track event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSchema {
    /// Schema version.
    pub version: u32,
    /// What the event means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The schema of `properties` (an object).
    pub properties: Schema,
}

/// The schemas of identify and group traits (objects; empty when none are declared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitSchemas {
    /// `traits` of identify calls.
    pub user: Schema,
    /// `traits` of group calls.
    pub group: Schema,
}

impl Bundle {
    /// Serialises the bundle as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Reads a bundle, refusing one of another format version.
    pub fn from_json(text: &str) -> Result<Bundle, BundleError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = serde_json::from_str(text).map_err(BundleError::Json)?;
        if v.version != BUNDLE_VERSION {
            return Err(BundleError::Version {
                found: v.version,
                expected: BUNDLE_VERSION,
            });
        }
        serde_json::from_str(text).map_err(BundleError::Json)
    }
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not JSON, or not the bundle's shape.
    #[error("not a valid bundle: {0}")]
    Json(serde_json::Error),
    /// Written by another version of uniflow.
    #[error(
        "bundle format version {found}, but this uniflow reads version {expected}; rebuild with `uniflow build`"
    )]
    Version {
        /// The bundle's version.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
}
