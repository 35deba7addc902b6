//! The profile routes: a profile by id or by identifier, its events, its
//! identifiers, its merge history, deleting it, and accounts.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::Response;
use http::Uri;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{ApiError, MAX_KEY, Shared, ok, path_param, query};
use crate::backend::{Clock, SystemClock};
use crate::profiles::model::{Stamped, Traits};
use crate::profiles::{Account, Cursor, Decision, Link, Outcome, Profile, ProfileStore};
use crate::time::format_ms;

/// Events per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The most events per page.
const MAX_LIMIT: usize = 1000;

/// A profile as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileView<'a> {
    /// The live profile's id.
    id: &'a str,
    /// The id asked for, when it was merged into `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_id: Option<&'a str>,
    /// The identifier looked up, normalised.
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<&'a str>,
    first_seen: String,
    last_seen: String,
    traits: BTreeMap<&'a str, &'a serde_json::Value>,
    trait_timestamps: BTreeMap<&'a str, String>,
    counts: &'a BTreeMap<String, u64>,
    event_counts: &'a BTreeMap<String, u64>,
    identity_counts: &'a BTreeMap<String, u32>,
    groups: &'a BTreeSet<String>,
    merged_from: &'a [String],
}

fn traits(traits: &Traits) -> (BTreeMap<&str, &serde_json::Value>, BTreeMap<&str, String>) {
    let values = traits
        .iter()
        .map(|(k, Stamped { value, .. })| (k.as_str(), value))
        .collect();
    let times = traits
        .iter()
        .map(|(k, s)| (k.as_str(), format_ms(s.at_ms)))
        .collect();
    (values, times)
}

fn profile_view<'a>(
    p: &'a Profile,
    requested: Option<&'a str>,
    identifier: Option<&'a str>,
) -> ProfileView<'a> {
    let (values, times) = traits(&p.traits);
    ProfileView {
        id: &p.id,
        requested_id: requested.filter(|r| *r != p.id),
        identifier,
        first_seen: format_ms(p.first_seen_ms),
        last_seen: format_ms(p.last_seen_ms),
        traits: values,
        trait_timestamps: times,
        counts: &p.counts,
        event_counts: &p.event_counts,
        identity_counts: &p.identity_counts,
        groups: &p.groups,
        merged_from: &p.merged_from,
    }
}

/// The live profile behind `id`, or 404.
async fn live<S: ProfileStore>(store: &S, id: &str) -> Result<Profile, ApiError> {
    store.profile(id).await?.ok_or_else(|| {
        ApiError::not_found(
            "profile_not_found",
            format!("no profile {id} (never created, or deleted)"),
        )
    })
}

/// `GET /api/v1/profiles/{id}`.
pub(super) async fn get<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "profile id")?;
    query(&uri, &[])?;
    let profile = live(api.store.as_ref(), &id).await?;
    Ok(ok(&profile_view(&profile, Some(&id), None)))
}

/// `GET /api/v1/profiles?identifier=type:value`.
pub(super) async fn lookup<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = query(&uri, &["identifier"])?;
    let known = || {
        api.rules
            .types
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(raw) = params.get("identifier") else {
        return Err(ApiError::bad_request(
            "missing_identifier",
            format!(
                "give the identifier to look up: /api/v1/profiles?identifier=TYPE:VALUE, TYPE one of {}",
                known()
            ),
        ));
    };
    let Some((kind, value)) = raw.split_once(':') else {
        return Err(ApiError::bad_request(
            "invalid_identifier",
            format!(
                "`{raw}` is not TYPE:VALUE (for example email:ann@example.com); TYPE is one of {}",
                known()
            ),
        ));
    };
    let Some(rank) = api.rules.types.iter().position(|t| t.name == kind) else {
        return Err(ApiError::bad_request(
            "unknown_identifier_type",
            format!(
                "`{kind}` is not an identifier of this project; the identifiers are {}",
                known()
            ),
        ));
    };
    if value.is_empty() || raw.len() > MAX_KEY {
        return Err(ApiError::bad_request(
            "invalid_identifier",
            format!("the value of a {kind} identifier is 1 to {MAX_KEY} bytes long"),
        ));
    }
    let Some(id) = api.rules.identifier(rank, value) else {
        return Err(ApiError::bad_request(
            "blocked_identifier",
            format!(
                "`{value}` is a blocked {kind} value (the project's identity rules never link it to anyone)"
            ),
        ));
    };
    let profile = api.store.lookup(&id.key).await?.ok_or_else(|| {
        ApiError::not_found("profile_not_found", format!("no profile holds {}", id.key))
    })?;
    Ok(ok(&profile_view(&profile, None, Some(&id.key))))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView<'a> {
    timestamp: String,
    message_id: &'a str,
    event: &'a RawValue,
}

#[derive(Debug, Serialize)]
struct EventsView<'a> {
    id: &'a str,
    events: Vec<EventView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /api/v1/profiles/{id}/events?limit=N&before=TOKEN`.
pub(super) async fn events<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "profile id")?;
    let params = query(&uri, &["limit", "before"])?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit is a whole number from 1 to {MAX_LIMIT}, not `{text}`"),
                )
            })?,
    };
    let before = match params.get("before") {
        None => None,
        Some(token) => Some(Cursor::parse(token).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("`{token}` is not a page token; pass the `next` of the previous page"),
            )
        })?),
    };
    let profile = live(api.store.as_ref(), &id).await?;
    let page = api.store.events(&profile.id, before, limit).await?;
    let view = EventsView {
        id: &profile.id,
        events: page
            .events
            .iter()
            .map(|e| EventView {
                timestamp: format_ms(e.at_ms),
                message_id: &e.message_id,
                event: &e.event,
            })
            .collect(),
        next: page.next.as_ref().map(Cursor::token),
    };
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityView<'a> {
    identifier: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    value: &'a str,
    linked_at: String,
    message_id: &'a str,
    source_id: &'a str,
}

fn identity_view(link: &Link) -> IdentityView<'_> {
    let (kind, value) = link
        .identifier
        .split_once(':')
        .unwrap_or(("", &link.identifier));
    IdentityView {
        identifier: &link.identifier,
        kind,
        value,
        linked_at: format_ms(link.at_ms),
        message_id: &link.message_id,
        source_id: &link.source_id,
    }
}

/// `GET /api/v1/profiles/{id}/identities`.
pub(super) async fn identities<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "profile id")?;
    query(&uri, &[])?;
    let profile = live(api.store.as_ref(), &id).await?;
    let mut links = api.store.identities(&profile.id).await?;
    links.sort_by(|a, b| (a.at_ms, &a.identifier).cmp(&(b.at_ms, &b.identifier)));
    let view: Vec<IdentityView<'_>> = links.iter().map(identity_view).collect();
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionView<'a> {
    /// `merged` or `refused`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    into: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    timestamp: String,
    message_id: &'a str,
    source_id: &'a str,
    identifiers: &'a [String],
    via: &'a str,
    rule: &'a str,
}

fn decision_view(d: &Decision) -> DecisionView<'_> {
    let (outcome, from, into, identifier, profile) = match &d.outcome {
        Outcome::Merged { from, into } => ("merged", Some(from), Some(into), None, None),
        Outcome::Refused {
            identifier,
            profile,
        } => ("refused", None, None, Some(identifier), profile.as_ref()),
    };
    DecisionView {
        outcome,
        from: from.map(String::as_str),
        into: into.map(String::as_str),
        identifier: identifier.map(String::as_str),
        profile: profile.map(String::as_str),
        timestamp: format_ms(d.at_ms),
        message_id: &d.message_id,
        source_id: &d.source_id,
        identifiers: &d.identifiers,
        via: &d.via,
        rule: &d.rule,
    }
}

/// `GET /api/v1/profiles/{id}/history`.
pub(super) async fn history<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "profile id")?;
    query(&uri, &[])?;
    let profile = live(api.store.as_ref(), &id).await?;
    let decisions = api.store.history(&profile.id).await?;
    let view: Vec<DecisionView<'_>> = decisions.iter().map(decision_view).collect();
    Ok(ok(&view))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeletedView<'a> {
    deleted: &'a [String],
    suppressed_identifiers: &'a [String],
}

/// `DELETE /api/v1/profiles/{id}`.
pub(super) async fn delete<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "profile id")?;
    query(&uri, &[])?;
    let deleted = api
        .store
        .delete(&id, SystemClock.now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "profile_not_found",
                format!("no profile {id} (never created, or already deleted)"),
            )
        })?;
    Ok(ok(&DeletedView {
        deleted: &deleted.profiles,
        suppressed_identifiers: &deleted.identifiers,
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountView<'a> {
    id: &'a str,
    first_seen: String,
    last_seen: String,
    traits: BTreeMap<&'a str, &'a serde_json::Value>,
    trait_timestamps: BTreeMap<&'a str, String>,
}

/// `GET /api/v1/accounts/{groupId}`.
pub(super) async fn account<S: ProfileStore>(
    axum::extract::State(api): Shared<S>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_param(id, "group id")?;
    query(&uri, &[])?;
    let account: Account = api.store.account(&id).await?.ok_or_else(|| {
        ApiError::not_found(
            "account_not_found",
            format!("no account {id} (no group call named it)"),
        )
    })?;
    let (values, times) = traits(&account.traits);
    Ok(ok(&AccountView {
        id: &account.id,
        first_seen: format_ms(account.first_seen_ms),
        last_seen: format_ms(account.last_seen_ms),
        traits: values,
        trait_timestamps: times,
    }))
}
