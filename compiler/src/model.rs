//! The resolved model of a `uniflow.kdl` project: names bound, defaults applied,
//! every user-written value still carrying its span for later checks.

use std::collections::BTreeMap;

use uniflow_schemas::{Condition, Format, Normalization, PropertyType, Schema, UnknownKeys};

use crate::span::{Span, Spanned};

/// A whole project.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `project` node (absent only when the file has errors).
    pub project: Option<Project>,
    /// `source` nodes, in file order.
    pub sources: Vec<Source>,
    /// `event` nodes, in file order.
    pub events: Vec<Event>,
    /// `trait` nodes, in file order.
    pub traits: Vec<Trait>,
    /// The `identity` rules (defaults when the node is absent).
    pub identity: Identity,
    /// `destination` nodes, in file order.
    pub destinations: Vec<Destination>,
    /// `segment` nodes, in file order.
    pub segments: Vec<Segment>,
    /// Every name declared, including declarations that had errors.
    pub declared: Declared,
}

/// The names of every declaration in the file, read before lowering, so a
/// reference to a declaration that has its own error is not also "unknown".
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// Event names.
    pub events: Vec<String>,
    /// Destination names.
    pub destinations: Vec<String>,
    /// Identity identifier names (the defaults when `identity` is absent).
    pub identifiers: Vec<String>,
    /// Trait names of identify calls.
    pub user_traits: Vec<String>,
}

impl Config {
    /// The event declared with this name.
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name.value == name)
    }

    /// The destination declared with this name.
    pub fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.name.value == name)
    }
}

/// `project "name" { ... }`.
#[derive(Debug, Clone)]
pub struct Project {
    /// A slug used to name every AWS resource.
    pub name: Spanned<String>,
    /// The AWS region to deploy to.
    pub region: Spanned<String>,
    /// The deployment stage (`prod`, `staging`, ...). Default `dev`.
    pub stage: Spanned<String>,
    /// Tags put on every AWS resource.
    pub tags: BTreeMap<String, String>,
    /// The expected traffic, for cost estimates.
    pub traffic: Traffic,
}

/// The traffic envelope a cost estimate starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Events received per month.
    pub events_per_month: u64,
    /// Mean size of one event in bytes.
    pub mean_event_bytes: u64,
    /// Distinct people (profiles) active per month.
    pub monthly_tracked_users: u64,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            events_per_month: 1_000_000,
            mean_event_bytes: 1_000,
            monthly_tracked_users: 10_000,
        }
    }
}

/// What kind of client sends to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A web page (analytics.js): needs CORS origins.
    Browser,
    /// A backend service.
    Server,
    /// An iOS or Android app.
    Mobile,
}

/// What happens to an event that fails its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationPolicy {
    /// Refuse it and report why.
    Reject,
    /// Keep it aside in the violations archive, with its issues.
    Quarantine,
    /// Keep it in the pipeline, issues attached.
    Allow,
}

/// `source "name" kind="..." { ... }`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The source's slug.
    pub name: Spanned<String>,
    /// Who sends.
    pub kind: SourceKind,
    /// Origins browsers may send from (`https://shop.example.com`).
    pub allowed_origins: Vec<Spanned<String>>,
    /// What to do with schema violations. Default `reject` for servers, `quarantine` otherwise.
    pub on_violation: ViolationPolicy,
    /// What to do with events that are not declared. Default `allow`.
    pub on_undeclared: ViolationPolicy,
    /// How long a `messageId` is remembered for deduplication, in seconds. Default 24h.
    pub dedupe_window_secs: u64,
    /// The whole node.
    pub span: Span,
}

/// `event "Name" { property ... }`.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event name as sent in `event` of a track call.
    pub name: Spanned<String>,
    /// What the event means.
    pub description: Option<String>,
    /// The schema version (default 1).
    pub version: u32,
    /// The schema of `properties`.
    pub properties: ObjectDecl,
    /// The whole node.
    pub span: Span,
}

/// Whom a trait describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraitScope {
    /// A person: `identify` calls.
    User,
    /// An account: `group` calls.
    Group,
}

/// `trait "name" type="..."`.
#[derive(Debug, Clone)]
pub struct Trait {
    /// Whether it is an identify or a group trait.
    pub scope: TraitScope,
    /// The trait, as a property of the `traits` object.
    pub property: PropertyDecl,
}

/// The declared properties of one object.
#[derive(Debug, Clone, Default)]
pub struct ObjectDecl {
    /// The properties, in file order.
    pub properties: Vec<PropertyDecl>,
    /// The policy for undeclared keys.
    pub unknown_keys: UnknownKeys,
}

impl ObjectDecl {
    /// The property with this name.
    pub fn get(&self, name: &str) -> Option<&PropertyDecl> {
        self.properties.iter().find(|p| p.name.value == name)
    }

    /// The runtime schema of this object.
    pub fn to_schema(&self) -> Schema {
        let mut schema = Schema::of(PropertyType::Object);
        schema.unknown_keys = self.unknown_keys;
        for p in &self.properties {
            let mut child = p.schema.to_schema();
            child.optional = !p.required;
            schema.properties.insert(p.name.value.clone(), child);
        }
        schema
    }
}

/// `property "name" type="..." ...`.
#[derive(Debug, Clone)]
pub struct PropertyDecl {
    /// The key.
    pub name: Spanned<String>,
    /// Must be present (it may still be `null` when nullable).
    pub required: bool,
    /// The value's schema.
    pub schema: SchemaDecl,
    /// The whole node.
    pub span: Span,
}

/// The schema of one value as declared, with spans.
#[derive(Debug, Clone)]
pub struct SchemaDecl {
    /// The type.
    pub ty: Spanned<PropertyType>,
    /// May be `null`.
    pub nullable: bool,
    /// Inclusive numeric lower bound.
    pub min: Option<Spanned<f64>>,
    /// Inclusive numeric upper bound.
    pub max: Option<Spanned<f64>>,
    /// Numbers must be a multiple of this.
    pub multiple_of: Option<Spanned<f64>>,
    /// Minimum length (characters or items).
    pub min_length: Option<Spanned<u64>>,
    /// Maximum length (characters or items).
    pub max_length: Option<Spanned<u64>>,
    /// A regular expression strings must match.
    pub pattern: Option<Spanned<String>>,
    /// A string format.
    pub format: Option<Spanned<Format>>,
    /// Enum values.
    pub values: Vec<Spanned<String>>,
    /// Nested properties of an object.
    pub object: ObjectDecl,
    /// The item schema of an array.
    pub items: Option<Box<SchemaDecl>>,
    /// Personal data.
    pub pii: bool,
    /// What the value means.
    pub description: Option<String>,
}

impl SchemaDecl {
    /// The runtime schema.
    pub fn to_schema(&self) -> Schema {
        let mut s = match self.ty.value {
            PropertyType::Object => self.object.to_schema(),
            ty => Schema::of(ty),
        };
        s.nullable = self.nullable;
        s.min = self.min.as_ref().map(|v| v.value);
        s.max = self.max.as_ref().map(|v| v.value);
        s.multiple_of = self.multiple_of.as_ref().map(|v| v.value);
        s.min_length = self.min_length.as_ref().map(|v| v.value);
        s.max_length = self.max_length.as_ref().map(|v| v.value);
        s.pattern = self.pattern.as_ref().map(|v| v.value.clone());
        s.format = self.format.as_ref().map(|v| v.value);
        s.values = self.values.iter().map(|v| v.value.clone()).collect();
        s.items = self.items.as_ref().map(|i| Box::new(i.to_schema()));
        s.pii = self.pii;
        s.description = self.description.clone();
        s
    }
}

/// The `identity` rules.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Identifiers, in file order. Without an `identity` node: `user_id`
    /// (priority 1, limit 1) and `anonymous_id` (priority 2, limit 100).
    pub identifiers: Vec<Identifier>,
    /// Values that never identify anyone: the defaults (unless turned off) and the user's.
    pub blocked: Vec<String>,
}

impl Identity {
    /// The identifier with this name.
    pub fn identifier(&self, name: &str) -> Option<&Identifier> {
        self.identifiers.iter().find(|i| i.name.value == name)
    }
}

/// `identifier "email" priority=2 limit=5 ...`.
#[derive(Debug, Clone)]
pub struct Identifier {
    /// The identifier type's name (`user_id`, `email`).
    pub name: Spanned<String>,
    /// Where in an event its value is read (`userId`, `traits.email`).
    pub from: Spanned<String>,
    /// 1 is the strongest. Decides which link is dropped when a merge is refused.
    pub priority: Spanned<u32>,
    /// How many values of this type one profile may hold.
    pub limit: Spanned<u32>,
    /// Applied, in order, before values are compared.
    pub normalize: Vec<Normalization>,
}

/// What a destination is.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationKind {
    /// HTTP POST to a URL.
    Webhook(Webhook),
    /// Files in an S3 bucket.
    S3Export(S3Export),
    /// A user's Lambda function.
    Lambda(LambdaTarget),
}

impl DestinationKind {
    /// The keyword used in `kind="..."`.
    pub fn keyword(&self) -> &'static str {
        match self {
            DestinationKind::Webhook(_) => "webhook",
            DestinationKind::S3Export(_) => "s3-export",
            DestinationKind::Lambda(_) => "lambda",
        }
    }
}

/// A webhook destination's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where to POST.
    pub url: Spanned<String>,
    /// Extra headers: a literal value or a secret reference.
    pub headers: Vec<Header>,
    /// Per-request timeout in seconds. Default 10.
    pub timeout_secs: u64,
}

/// `header "Name" value="..."` or `header "Name" from="ssm:..."`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The header name.
    pub name: Spanned<String>,
    /// Its value.
    pub value: HeaderValue,
}

/// Where a header's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// Written in the file (not a secret).
    Literal(String),
    /// Read from a secret store at run time.
    Secret(SecretRef),
}

/// A reference to a secret kept outside the file and outside git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM Parameter Store SecureString: `ssm:/acme/crm-secret`.
    Ssm(String),
    /// A Secrets Manager secret: `secretsmanager:acme/crm`.
    SecretsManager(String),
    /// An environment variable of the runtime (for `uniflow dev`): `env:CRM_SECRET`.
    Env(String),
}

impl std::fmt::Display for SecretRef {
    /// As written in the file: `ssm:/acme/x`, `secretsmanager:acme/x`, `env:NAME`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Ssm(p) => write!(f, "ssm:{p}"),
            SecretRef::SecretsManager(p) => write!(f, "secretsmanager:{p}"),
            SecretRef::Env(p) => write!(f, "env:{p}"),
        }
    }
}

/// An s3-export destination's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Export {
    /// The bucket.
    pub bucket: Spanned<String>,
    /// Key prefix. Default `uniflow/<destination>/`.
    pub prefix: String,
    /// File format.
    pub format: ExportFormat,
}

/// The file format of an s3-export destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// GZIP-compressed newline-delimited JSON.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

/// A lambda destination's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaTarget {
    /// Function name or ARN.
    pub function: Spanned<String>,
}

/// Backoff between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Doubling delays with jitter.
    Exponential,
    /// The same delay each time.
    Fixed,
}

/// `retry attempts=... backoff=... delay=... max-age=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total delivery attempts before the dead-letter queue. Default 10.
    pub attempts: u32,
    /// The backoff shape. Default exponential.
    pub backoff: Backoff,
    /// The first (exponential) or every (fixed) delay in milliseconds, when
    /// written; see [`Retry::delay_ms`] for the default.
    pub delay_ms: Option<u64>,
    /// Give up on a message older than this, in seconds. Default 24h.
    pub max_age_secs: u64,
}

impl Retry {
    /// The first (exponential) or every (fixed) delay in milliseconds:
    /// as written, else 1s for exponential and 30s for fixed backoff.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms.unwrap_or(match self.backoff {
            Backoff::Exponential => 1000,
            Backoff::Fixed => 30_000,
        })
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 10,
            backoff: Backoff::Exponential,
            delay_ms: None,
            max_age_secs: 24 * 3600,
        }
    }
}

/// A Segment message type, as named in `types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageType {
    /// `track`: a named event with `properties`.
    Track,
    /// `identify`: a user's `traits`.
    Identify,
    /// `page`: a web page view.
    Page,
    /// `screen`: a mobile screen view.
    Screen,
    /// `group`: an account's `traits`.
    Group,
    /// `alias`: one identity joined to another.
    Alias,
}

impl MessageType {
    /// Every type, in the order the language reference lists them.
    pub const ALL: &'static [(&'static str, MessageType)] = &[
        ("track", MessageType::Track),
        ("identify", MessageType::Identify),
        ("page", MessageType::Page),
        ("screen", MessageType::Screen),
        ("group", MessageType::Group),
        ("alias", MessageType::Alias),
    ];

    /// The `type` field's value (`track`).
    pub fn keyword(self) -> &'static str {
        MessageType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(k, _)| k)
    }
}

/// One step reshaping events for a destination, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TransformDecl {
    /// `rename "FROM" to="TO"`.
    Rename {
        /// The path read.
        from: Spanned<String>,
        /// The path written.
        to: Spanned<String>,
    },
    /// One path of `drop "PATH" ...`.
    Drop(Spanned<String>),
    /// One path of `hash "PATH" ...`.
    Hash(Spanned<String>),
}

/// `template #"..."#`: a Tera template rendering one event's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDecl {
    /// The template text and the span of its string.
    pub text: Spanned<String>,
    /// The event fields it reads (`properties.revenue`, `userId`), each
    /// once, at its first place in the file.
    pub reads: Vec<Spanned<String>>,
}

/// `batch max-events=... max-bytes=... max-wait=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Most events in one delivery. Default 1 (no batching).
    pub max_events: u32,
    /// Most bytes in one delivery. Default 1 MiB.
    pub max_bytes: u64,
    /// Longest an event waits for a batch to fill, in seconds. Default 0.
    pub max_wait_secs: u64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            max_events: 1,
            max_bytes: 1024 * 1024,
            max_wait_secs: 0,
        }
    }
}

/// `destination "name" kind="..." { ... }`.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The destination's slug.
    pub name: Spanned<String>,
    /// Kind and kind-specific settings.
    pub kind: DestinationKind,
    /// Events it receives; `None` means every event.
    pub events: Option<Vec<Spanned<String>>>,
    /// Message types it receives, without repeats; `None` means every type.
    pub types: Option<Vec<Spanned<MessageType>>>,
    /// A condition on the event: only events it holds for are delivered.
    pub filter: Option<ConditionDecl>,
    /// Reshaping of each event, in file order (after the filter).
    pub transforms: Vec<TransformDecl>,
    /// The payload template (webhook and lambda destinations), applied last.
    pub template: Option<TemplateDecl>,
    /// Values marked `pii` it may receive in clear (`allow-pii`): no
    /// `pii-unhashed` warning for them.
    pub allow_pii: Vec<Spanned<String>>,
    /// Retry policy.
    pub retry: Retry,
    /// Batching.
    pub batch: Batch,
    /// Signing secret (webhooks) by reference.
    pub secret: Option<SecretRef>,
    /// The whole node.
    pub span: Span,
}

impl Destination {
    /// Whether it receives messages of this type.
    pub fn receives_type(&self, ty: MessageType) -> bool {
        let typed = self
            .types
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t.value == ty));
        // A list of events admits only track calls.
        typed && (self.events.is_none() || ty == MessageType::Track)
    }

    /// Whether it receives the named track event.
    pub fn receives(&self, event: &str) -> bool {
        if !self.receives_type(MessageType::Track) {
            return false;
        }
        match &self.events {
            None => true,
            Some(list) => list.iter().any(|e| e.value == event),
        }
    }
}

/// `sync-to "destination" identifier="email"`.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// The destination.
    pub destination: Spanned<String>,
    /// The identifier members are sent by. Default `user_id`.
    pub identifier: Spanned<String>,
}

/// `segment "name" { ... }`.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The segment's slug.
    pub name: Spanned<String>,
    /// What the audience is.
    pub description: Option<String>,
    /// The events it reads.
    pub from: Vec<Spanned<String>>,
    /// How far back it reads, in seconds (`None`: all history).
    pub within_secs: Option<Spanned<u64>>,
    /// A condition on the events it reads.
    pub where_: Option<ConditionDecl>,
    /// An aggregate condition per profile.
    pub having: Option<Spanned<String>>,
    /// How often membership is recomputed, in seconds. Default 1h.
    pub refresh_secs: u64,
    /// Where membership changes go.
    pub sync_to: Vec<SyncTarget>,
    /// The whole node.
    pub span: Span,
}

/// A parsed `filter` or `where` condition and where its text is in the file.
#[derive(Debug, Clone)]
pub struct ConditionDecl {
    /// The text as written (after KDL unescaping) and the span of the string.
    pub text: Spanned<String>,
    /// The parsed condition.
    pub condition: Condition,
    /// The file offset of the text's first byte, when the KDL string maps
    /// byte for byte onto its value (no escapes, one line).
    pub origin: Option<usize>,
}

impl ConditionDecl {
    /// The file span of a byte range of the condition text: exact when the
    /// string has no escapes, else the whole string.
    pub fn span(&self, range: &std::ops::Range<usize>) -> Span {
        match self.origin {
            Some(o) => Span::new(o + range.start, o + range.end),
            None => self.text.span,
        }
    }
}
