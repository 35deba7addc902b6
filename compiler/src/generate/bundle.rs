//! The compiled bundle from the model.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use uniflow_schemas::bundle::{
    BatchPolicy, Bundle, ConnectorSettings, DestinationInfo, EventSchema, HeaderSource,
    IdentifierRule, IdentityRules, Policy, ProjectInfo, RetryPolicy, SecretRef, SegmentInfo,
    SourceKind, SourcePolicy, TraitSchemas, Transform,
};
use uniflow_schemas::{BUNDLE_VERSION, PropertyType, Schema};

use crate::model::{self, Config, TraitScope, ViolationPolicy};

/// The bundle of a checked project.
pub fn bundle(config: &Config, source: &str) -> Bundle {
    let project = config.project.as_ref();
    let sources = config
        .sources
        .iter()
        .map(|s| {
            let policy = SourcePolicy {
                kind: match s.kind {
                    model::SourceKind::Browser => SourceKind::Browser,
                    model::SourceKind::Server => SourceKind::Server,
                    model::SourceKind::Mobile => SourceKind::Mobile,
                },
                allowed_origins: s.allowed_origins.iter().map(|o| o.value.clone()).collect(),
                on_violation: policy(s.on_violation),
                on_undeclared: policy(s.on_undeclared),
                dedupe_window_secs: s.dedupe_window_secs,
            };
            (s.name.value.clone(), policy)
        })
        .collect();
    let events = config
        .events
        .iter()
        .map(|e| {
            let schema = EventSchema {
                version: e.version,
                description: e.description.clone(),
                properties: e.properties.to_schema(),
            };
            (e.name.value.clone(), schema)
        })
        .collect();
    Bundle {
        version: BUNDLE_VERSION,
        config_digest: hex(&Sha256::digest(source.as_bytes())),
        project: ProjectInfo {
            name: project.map(|p| p.name.value.clone()).unwrap_or_default(),
            region: project.map(|p| p.region.value.clone()).unwrap_or_default(),
            stage: project.map(|p| p.stage.value.clone()).unwrap_or_default(),
        },
        sources,
        events,
        traits: TraitSchemas {
            user: traits(config, TraitScope::User),
            group: traits(config, TraitScope::Group),
        },
        identity: identity(&config.identity),
        destinations: config
            .destinations
            .iter()
            .map(|d| {
                let info = DestinationInfo {
                    kind: d.kind.keyword().to_owned(),
                    events: d
                        .events
                        .as_ref()
                        .map(|list| list.iter().map(|e| e.value.clone()).collect()),
                    types: d
                        .types
                        .as_ref()
                        .map(|list| list.iter().map(|t| t.value.keyword().to_owned()).collect()),
                    filter: d.filter.as_ref().map(|f| f.text.value.clone()),
                    condition: d.filter.as_ref().map(|f| f.condition.clone()),
                    transforms: d.transforms.iter().map(transform).collect(),
                    template: d.template.as_ref().map(|t| t.text.value.clone()),
                    connector: connector(d),
                    retry: RetryPolicy {
                        attempts: d.retry.attempts,
                        exponential: d.retry.backoff == model::Backoff::Exponential,
                        delay_ms: d.retry.delay_ms(),
                        max_age_secs: d.retry.max_age_secs,
                    },
                    batch: BatchPolicy {
                        max_events: d.batch.max_events,
                        max_bytes: d.batch.max_bytes,
                        max_wait_secs: d.batch.max_wait_secs,
                    },
                };
                (d.name.value.clone(), info)
            })
            .collect(),
        segments: config
            .segments
            .iter()
            .map(|s| {
                let info = SegmentInfo {
                    description: s.description.clone(),
                    from: s.from.iter().map(|e| e.value.clone()).collect(),
                    within_secs: s.within_secs.as_ref().map(|w| w.value),
                    where_: s.where_.as_ref().map(|w| w.text.value.clone()),
                    where_condition: s.where_.as_ref().map(|w| w.condition.clone()),
                    having: s.having.as_ref().map(|h| h.value.clone()),
                    refresh_secs: s.refresh_secs,
                    sync_to: s
                        .sync_to
                        .iter()
                        .map(|t| t.destination.value.clone())
                        .collect(),
                };
                (s.name.value.clone(), info)
            })
            .collect(),
    }
}

/// The identity rules, strongest identifier first.
fn identity(identity: &model::Identity) -> IdentityRules {
    let mut identifiers: Vec<IdentifierRule> = identity
        .identifiers
        .iter()
        .map(|i| IdentifierRule {
            name: i.name.value.clone(),
            from: i.from.value.clone(),
            priority: i.priority.value,
            limit: i.limit.value,
            normalize: i.normalize.clone(),
        })
        .collect();
    identifiers.sort_by_key(|i| i.priority);
    let mut blocked = identity.blocked.clone();
    blocked.sort();
    blocked.dedup();
    IdentityRules {
        identifiers,
        blocked,
    }
}

fn traits(config: &Config, scope: TraitScope) -> Schema {
    let mut object = Schema::of(PropertyType::Object);
    object.properties = config
        .traits
        .iter()
        .filter(|t| t.scope == scope)
        .map(|t| {
            let mut schema = t.property.schema.to_schema();
            schema.optional = true;
            (t.property.name.value.clone(), schema)
        })
        .collect::<BTreeMap<_, _>>();
    object
}

fn policy(p: ViolationPolicy) -> Policy {
    match p {
        ViolationPolicy::Reject => Policy::Reject,
        ViolationPolicy::Quarantine => Policy::Quarantine,
        ViolationPolicy::Allow => Policy::Allow,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One transform, as the runtime applies it.
fn transform(t: &model::TransformDecl) -> Transform {
    match t {
        model::TransformDecl::Rename { from, to } => Transform::Rename {
            from: from.value.clone(),
            to: to.value.clone(),
        },
        model::TransformDecl::Drop(p) => Transform::Drop {
            path: p.value.clone(),
        },
        model::TransformDecl::Hash(p) => Transform::Hash {
            path: p.value.clone(),
        },
    }
}

/// A destination's connector settings; secrets stay references.
fn connector(d: &model::Destination) -> ConnectorSettings {
    match &d.kind {
        model::DestinationKind::Webhook(w) => ConnectorSettings::Webhook {
            url: w.url.value.clone(),
            headers: w
                .headers
                .iter()
                .map(|h| {
                    let value = match &h.value {
                        model::HeaderValue::Literal(v) => HeaderSource::Value(v.clone()),
                        model::HeaderValue::Secret(r) => {
                            HeaderSource::Secret(SecretRef(r.to_string()))
                        }
                    };
                    (h.name.value.clone(), value)
                })
                .collect(),
            timeout_secs: w.timeout_secs,
            secret: d.secret.as_ref().map(|r| SecretRef(r.to_string())),
        },
        model::DestinationKind::S3Export(s) => ConnectorSettings::S3Export {
            bucket: s.bucket.value.clone(),
            prefix: s.prefix.clone(),
            format: match s.format {
                model::ExportFormat::Ndjson => "ndjson",
                model::ExportFormat::Parquet => "parquet",
            }
            .to_owned(),
        },
        model::DestinationKind::Lambda(l) => ConnectorSettings::Lambda {
            function: l.function.value.clone(),
        },
    }
}
