//! Read-only views of the project's bundle: sources (never their write
//! keys), declared events and their schemas, destinations, segments and the
//! identity rules.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::Response;
use http::Uri;
use serde::Serialize;
use uniflow_schemas::bundle::Policy;
use uniflow_schemas::{Normalization, Schema};

use super::{ApiError, Shared, ok, path_param, query};
use crate::profiles::ProfileStore;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SourceView<'a> {
    name: &'a str,
    kind: uniflow_schemas::bundle::SourceKind,
    allowed_origins: &'a [String],
    on_violation: Policy,
    on_undeclared: Policy,
    dedupe_window_secs: u64,
}

/// `GET /api/v1/sources`.
pub(super) async fn sources<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let view: Vec<SourceView<'_>> = api
        .bundle
        .sources
        .iter()
        .map(|(name, s)| SourceView {
            name,
            kind: s.kind,
            allowed_origins: &s.allowed_origins,
            on_violation: s.on_violation,
            on_undeclared: s.on_undeclared,
            dedupe_window_secs: s.dedupe_window_secs,
        })
        .collect();
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
struct EventView<'a> {
    name: &'a str,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// Only in `GET /api/v1/events/{name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a Schema>,
}

/// `GET /api/v1/events`.
pub(super) async fn events<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let view: Vec<EventView<'_>> = api
        .bundle
        .events
        .iter()
        .map(|(name, e)| EventView {
            name,
            version: e.version,
            description: e.description.as_deref(),
            properties: None,
        })
        .collect();
    Ok(ok(&view))
}

/// `GET /api/v1/events/{name}`: the event with the schema of its properties.
pub(super) async fn event<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let name = path_param(name, "event name")?;
    query(&uri, &[])?;
    let Some(e) = api.bundle.events.get(&name) else {
        let known: Vec<&str> = api.bundle.events.keys().map(String::as_str).collect();
        return Err(ApiError::not_found(
            "event_not_found",
            format!(
                "no declared event `{name}`; declared: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    Ok(ok(&EventView {
        name: &name,
        version: e.version,
        description: e.description.as_deref(),
        properties: Some(&e.properties),
    }))
}

#[derive(Debug, Serialize)]
struct DestinationView<'a> {
    name: &'a str,
    kind: &'a str,
    /// Absent: every event.
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a str>,
}

/// `GET /api/v1/destinations`.
pub(super) async fn destinations<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let view: Vec<DestinationView<'_>> = api
        .bundle
        .destinations
        .iter()
        .map(|(name, d)| DestinationView {
            name,
            kind: &d.kind,
            events: d.events.as_deref(),
            filter: d.filter.as_deref(),
        })
        .collect();
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SegmentView<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    from: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    within_secs: Option<u64>,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    where_: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    having: Option<&'a str>,
    refresh_secs: u64,
    sync_to: &'a [String],
}

/// `GET /api/v1/segments`.
pub(super) async fn segments<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let view: Vec<SegmentView<'_>> = api
        .bundle
        .segments
        .iter()
        .map(|(name, s)| SegmentView {
            name,
            description: s.description.as_deref(),
            from: &s.from,
            within_secs: s.within_secs,
            where_: s.where_.as_deref(),
            having: s.having.as_deref(),
            refresh_secs: s.refresh_secs,
            sync_to: &s.sync_to,
        })
        .collect();
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
struct IdentifierView<'a> {
    name: &'a str,
    from: &'a str,
    priority: u32,
    limit: u32,
    normalize: &'a [Normalization],
}

#[derive(Debug, Serialize)]
struct IdentityView<'a> {
    /// Strongest first.
    identifiers: Vec<IdentifierView<'a>>,
    blocked: &'a [String],
}

/// `GET /api/v1/identity`.
pub(super) async fn identity<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let rules = &api.bundle.identity;
    let mut identifiers: Vec<IdentifierView<'_>> = rules
        .identifiers
        .iter()
        .map(|i| IdentifierView {
            name: &i.name,
            from: &i.from,
            priority: i.priority,
            limit: i.limit,
            normalize: &i.normalize,
        })
        .collect();
    identifiers.sort_by_key(|i| i.priority);
    Ok(ok(&IdentityView {
        identifiers,
        blocked: &rules.blocked,
    }))
}
