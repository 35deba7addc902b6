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
pub const BUNDLE_VERSION: u32 = 3;

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
    /// Destinations by name: what each receives, how it is transformed and
    /// how it is delivered.
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

/// A destination: what it receives ([`accepts`](Self::accepts)), how each
/// event is reshaped for it ([`transforms`](Self::transforms), then
/// [`template`](Self::template)) and how it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationInfo {
    /// `webhook`, `s3-export` or `lambda`.
    pub kind: String,
    /// The track events it receives; absent means every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// The message types it receives (`track`, `identify`, `page`, `screen`,
    /// `group`, `alias`); absent means every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// Its condition on events, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The parsed `filter`: only events it holds for (TRUE, not FALSE or
    /// UNKNOWN) are delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Applied to each event in order, before the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    /// A Tera template rendering the payload of one event (its context is
    /// the transformed event); absent means the transformed event as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Where and how events are sent.
    pub connector: ConnectorSettings,
    /// Retries and dead-lettering.
    pub retry: RetryPolicy,
    /// How events are grouped into one delivery.
    pub batch: BatchPolicy,
}

impl DestinationInfo {
    /// Whether an event is delivered here, by its `type`, its `event` name
    /// (a list of events admits only track calls of those names) and its
    /// filter over the whole message.
    pub fn accepts(&self, message: &serde_json::Value) -> bool {
        let ty = message.get("type").and_then(serde_json::Value::as_str);
        let typed = match (&self.types, ty) {
            (None, _) => true,
            (Some(list), Some(ty)) => list.iter().any(|t| t == ty),
            (Some(_), None) => false,
        };
        let listed = match &self.events {
            None => true,
            Some(list) => {
                let name = message.get("event").and_then(serde_json::Value::as_str);
                ty == Some("track") && name.is_some_and(|n| list.iter().any(|e| e == n))
            }
        };
        typed && listed && self.condition.as_ref().is_none_or(|c| c.matches(message))
    }
}

/// One step reshaping an event for a destination. Paths are dotted
/// (`properties.revenue`, `traits.email`, `context.ip`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transform {
    /// Moves the value at `from` to `to` (replacing what was there); nothing
    /// happens when `from` is absent.
    Rename {
        /// The path read.
        from: String,
        /// The path written.
        to: String,
    },
    /// Removes the value at `path`, if present.
    Drop {
        /// The path removed.
        path: String,
    },
    /// Replaces the value at `path` by the lowercase hex SHA-256 of its
    /// normalised text (a string trimmed and lowercased; a number or
    /// boolean as its JSON text). Absent values and `null` stay as they are.
    Hash {
        /// The path hashed.
        path: String,
    },
}

/// Where a secret's value is kept. Never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(
    /// As written: `ssm:/acme/x`, `secretsmanager:acme/x` or `env:NAME`.
    pub String,
);

/// A webhook header's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum HeaderSource {
    /// Written in the file.
    Value(String),
    /// Read from a secret store when the connector starts.
    Secret(SecretRef),
}

/// The connector and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ConnectorSettings {
    /// HTTP POST of JSON.
    Webhook {
        /// Where to POST.
        url: String,
        /// Extra headers, in file order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<(String, HeaderSource)>,
        /// Per-request timeout in seconds.
        timeout_secs: u64,
        /// The HMAC-SHA256 signing secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<SecretRef>,
    },
    /// Batches as objects in a bucket.
    S3Export {
        /// The bucket.
        bucket: String,
        /// The key prefix (ends with `/` or is empty).
        prefix: String,
        /// `ndjson` (GZIP-compressed) or `parquet`.
        format: String,
    },
    /// A user's Lambda function, invoked with a batch.
    Lambda {
        /// Function name or ARN.
        function: String,
    },
}

/// Retries and dead-lettering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts at an event before it goes to the dead-letter queue.
    pub attempts: u32,
    /// `true`: doubling delays with full jitter; `false`: a fixed delay.
    pub exponential: bool,
    /// The first (exponential) or every (fixed) delay, in milliseconds.
    pub delay_ms: u64,
    /// An event older than this (seconds since it was received) is not
    /// attempted again.
    pub max_age_secs: u64,
}

/// How events are grouped into one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPolicy {
    /// Most events in one delivery (1: no batching).
    pub max_events: u32,
    /// Most payload bytes in one delivery.
    pub max_bytes: u64,
    /// Longest the first event of a batch waits for it to fill, in seconds.
    pub max_wait_secs: u64,
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
