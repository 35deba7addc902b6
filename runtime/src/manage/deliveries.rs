//! Deliveries: a destination's metrics, its dead letters, redrive, and
//! putting events on its queue (`uniflow replay`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{StatusCode, Uri};
use serde::{Deserialize, Serialize};
use uniflow_schemas::condition::Condition;

use super::{ApiError, Shared, ok, path_param, query};
use crate::delivery::Message;
use crate::delivery::admin::Deliveries;
use crate::profiles::ProfileStore;

/// The most dead letters one page holds.
const MAX_PAGE: usize = 500;
/// The most messages one `POST .../messages` takes.
const MAX_ENQUEUE: usize = 10_000;

/// The destination named in the path, which must exist, and the backend's
/// deliveries.
fn destination<S: ProfileStore>(
    api: &super::Api<S>,
    param: Result<Path<String>, PathRejection>,
) -> Result<(String, &dyn Deliveries), ApiError> {
    let name = path_param(param, "destination name")?;
    if !api.bundle.destinations.contains_key(&name) {
        let known: Vec<&str> = api.bundle.destinations.keys().map(String::as_str).collect();
        return Err(ApiError::not_found(
            "destination_not_found",
            format!(
                "no destination `{name}` in this project (it has: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let deliveries = api.deliveries.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "deliveries_unavailable",
            "this management API does not reach the delivery queues",
        )
    })?;
    Ok((name, deliveries))
}

fn unavailable(e: crate::backend::BackendError) -> ApiError {
    tracing::warn!(error = %e, "management API: delivery queues failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        format!("the delivery queues did not answer ({e}); retry shortly"),
    )
}

/// `GET /api/v1/destinations/{name}/metrics`.
pub(super) async fn metrics<S: ProfileStore>(
    State(api): Shared<S>,
    param: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let (name, deliveries) = destination(&api, param)?;
    let metrics = deliveries.metrics(&name).await.map_err(unavailable)?;
    Ok(ok(&metrics))
}

#[derive(Debug, Serialize)]
struct Page<T> {
    items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /api/v1/destinations/{name}/dead-letters?after=&limit=`.
pub(super) async fn dead_letters<S: ProfileStore>(
    State(api): Shared<S>,
    param: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = query(&uri, &["after", "limit"])?;
    let (name, deliveries) = destination(&api, param)?;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("`limit` is a whole number from 1 to {MAX_PAGE}, not `{l}`"),
                )
            })?,
    };
    let items = deliveries
        .dead_letters(&name, q.get("after").map(String::as_str), limit)
        .await
        .map_err(unavailable)?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|l| l.id.clone()))
        .flatten();
    Ok(ok(&Page { items, next }))
}

/// The body of a redrive.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RedriveRequest {
    /// At most this many.
    #[serde(default)]
    max: Option<u64>,
    /// Only dead letters whose event this condition holds for.
    #[serde(default)]
    filter: Option<String>,
}

fn body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("the request body is not valid: {e}"),
        )
    })
}

/// `POST /api/v1/destinations/{name}/dead-letters/redrive`.
pub(super) async fn redrive<S: ProfileStore>(
    State(api): Shared<S>,
    param: Result<Path<String>, PathRejection>,
    uri: Uri,
    request: Bytes,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let (name, deliveries) = destination(&api, param)?;
    let request: RedriveRequest = body(&request)?;
    let filter = match &request.filter {
        None => None,
        Some(text) => Some(Condition::parse(text).map_err(|e| {
            ApiError::bad_request("invalid_filter", format!("the filter `{text}`: {e}"))
        })?),
    };
    let done = deliveries
        .redrive(&name, request.max, filter.as_ref())
        .await
        .map_err(unavailable)?;
    Ok(ok(&done))
}

/// The body of `POST .../messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnqueueRequest {
    messages: Vec<Message>,
}

#[derive(Debug, Serialize)]
struct Enqueued {
    queued: usize,
}

/// `POST /api/v1/destinations/{name}/messages`: events put on the queue,
/// due at once (each must be an event the destination accepts).
pub(super) async fn enqueue<S: ProfileStore>(
    State(api): Shared<S>,
    param: Result<Path<String>, PathRejection>,
    uri: Uri,
    request: Bytes,
) -> Result<Response, ApiError> {
    query(&uri, &[])?;
    let (name, deliveries) = destination(&api, param)?;
    let request: EnqueueRequest = body(&request)?;
    if request.messages.len() > MAX_ENQUEUE {
        return Err(ApiError::bad_request(
            "too_many_messages",
            format!(
                "at most {MAX_ENQUEUE} messages per request, not {}",
                request.messages.len()
            ),
        ));
    }
    let info = &api.bundle.destinations[&name];
    for (i, m) in request.messages.iter().enumerate() {
        let event: serde_json::Value = serde_json::from_slice(&m.event).map_err(|e| {
            ApiError::bad_request("invalid_body", format!("message {i}: its event: {e}"))
        })?;
        if !info.accepts(&event) {
            return Err(ApiError::bad_request(
                "not_subscribed",
                format!(
                    "message {i} ({}): destination `{name}` does not receive this event (its events, types or filter exclude it)",
                    m.id
                ),
            ));
        }
    }
    let queued = deliveries
        .enqueue(&name, request.messages)
        .await
        .map_err(unavailable)?;
    Ok(ok(&Enqueued { queued }))
}
