//! The management API: read profiles, explain identity decisions, delete a
//! person, and read the project's catalog (sources, events, destinations,
//! segments, identity rules) over JSON.
//!
//! [`router`] builds one axum [`Router`] whose handlers are plain async
//! functions generic over [`ProfileStore`]; `uniflow dev` merges it with the
//! tracking API and serves it with `axum::serve`, the management Lambda runs
//! it under `lambda_http`. Every answer is JSON; every failure is
//! `{"code": "...", "message": "..."}` with a precise status (see
//! [`ApiError`]), and no input makes a handler panic.
//!
//! All routes live under `/api/v1/` and the router has no fallback of its
//! own (unknown paths under `/api/v1/` answer `not_found` through a
//! catch-all route), so it merges with a router that has one.

mod catalog;
mod deliveries;
mod profiles;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uniflow_schemas::Bundle;

use crate::backend::BackendError;
use crate::delivery::admin::Deliveries;
use crate::profiles::{ProfileStore, Rules};

/// Who may call the API.
#[derive(Clone)]
pub enum Auth {
    /// Requests must carry `Authorization: Bearer <token>` with this token
    /// (`uniflow dev`; the token is compared in constant time).
    Bearer(String),
    /// Every request is let through: something in front already checked the
    /// caller (on AWS, API Gateway's Cognito JWT authorizer).
    Trusted,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Trusted => f.write_str("Trusted"),
        }
    }
}

/// What every handler reads.
struct Api<S> {
    store: Arc<S>,
    bundle: Arc<Bundle>,
    rules: Rules,
    deliveries: Option<Arc<dyn Deliveries>>,
}

type Shared<S> = State<Arc<Api<S>>>;

/// The management API over `store` and (when given) the delivery queues,
/// describing `bundle`'s project.
pub fn router<S: ProfileStore>(
    store: Arc<S>,
    deliveries: Option<Arc<dyn Deliveries>>,
    bundle: Arc<Bundle>,
    auth: Auth,
) -> Router {
    let rules = Rules::new(&bundle.identity);
    let api = Arc::new(Api {
        store,
        bundle,
        rules,
        deliveries,
    });
    Router::new()
        .route("/api/v1/profiles", get(profiles::lookup::<S>))
        .route(
            "/api/v1/profiles/{id}",
            get(profiles::get::<S>).delete(profiles::delete::<S>),
        )
        .route("/api/v1/profiles/{id}/events", get(profiles::events::<S>))
        .route(
            "/api/v1/profiles/{id}/identities",
            get(profiles::identities::<S>),
        )
        .route("/api/v1/profiles/{id}/history", get(profiles::history::<S>))
        .route("/api/v1/accounts/{id}", get(profiles::account::<S>))
        .route("/api/v1/sources", get(catalog::sources::<S>))
        .route("/api/v1/events", get(catalog::events::<S>))
        .route("/api/v1/events/{name}", get(catalog::event::<S>))
        .route("/api/v1/destinations", get(catalog::destinations::<S>))
        .route(
            "/api/v1/destinations/{name}/metrics",
            get(deliveries::metrics::<S>),
        )
        .route(
            "/api/v1/destinations/{name}/dead-letters",
            get(deliveries::dead_letters::<S>),
        )
        .route(
            "/api/v1/destinations/{name}/dead-letters/redrive",
            post(deliveries::redrive::<S>),
        )
        .route(
            "/api/v1/destinations/{name}/messages",
            post(deliveries::enqueue::<S>),
        )
        .route("/api/v1/segments", get(catalog::segments::<S>))
        .route("/api/v1/identity", get(catalog::identity::<S>))
        .route("/api/v1", any(not_found))
        .route("/api/v1/", any(not_found))
        .route("/api/v1/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
        .layer(middleware::from_fn_with_state(Arc::new(auth), authorize))
}

/// A failed request, answered as `{"code": ..., "message": ...}`.
///
/// Codes: `unauthorized` (401); `not_found`, `profile_not_found`,
/// `account_not_found`, `event_not_found`, `destination_not_found` (404); `method_not_allowed` (405);
/// `missing_identifier`, `invalid_identifier`, `unknown_identifier_type`,
/// `blocked_identifier`, `invalid_limit`, `invalid_cursor`,
/// `unknown_parameter`, `invalid_query`, `invalid_path` (400);
/// `invalid_body`, `invalid_filter`, `not_subscribed`, `too_many_messages`
/// (400); `destination_not_found` (404); `deliveries_unavailable` (501);
/// `store_unavailable`, `queue_unavailable` (503, retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// What went wrong and what to do, for people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> ApiError {
        tracing::warn!(error = %e, "management API: profile store failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the profile store did not answer ({e}); retry shortly"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Body {
            code: self.code,
            message: &self.message,
        };
        let mut response = json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON answer. Profiles hold personal data: never cached.
fn json(status: StatusCode, body: &impl Serialize) -> Response {
    // Our views are plain data with string keys: serialisation cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

/// A 200 with `body`.
fn ok(body: &impl Serialize) -> Response {
    json(StatusCode::OK, body)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!(
            "no route {} {}; the routes are under /api/v1/profiles, /api/v1/accounts, /api/v1/sources, /api/v1/events, /api/v1/destinations, /api/v1/segments and /api/v1/identity",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    // Only `/api/v1/profiles/{id}` answers DELETE as well, and two
    // delivery routes answer POST only.
    let segments: Vec<&str> = request.uri().path().split('/').collect();
    let allowed = match segments.as_slice() {
        ["", "api", "v1", "profiles", _] => "GET and DELETE",
        [
            "",
            "api",
            "v1",
            "destinations",
            _,
            "dead-letters",
            "redrive",
        ]
        | ["", "api", "v1", "destinations", _, "messages"] => "only POST",
        _ => "only GET",
    };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}: it answers {allowed}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Lets a request through when `auth` allows it.
async fn authorize(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let Auth::Bearer(expected) = auth.as_ref() else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    const WHERE: &str = "`uniflow dev` prints the token when it starts and keeps it in dev.json in its data directory (.uniflow/dev.json next to uniflow.kdl by default)";
    match given {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("send the API token as `Authorization: Bearer <token>`; {WHERE}"),
        )
        .into_response(),
        Some(token) if !same_secret(token, expected) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("the bearer token is not this API's token; {WHERE}"),
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

/// Compares two secrets in time independent of where they differ (and of
/// their lengths): both are hashed, then every byte of the digests is compared.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The longest id, identifier or name accepted in a path or a query.
const MAX_KEY: usize = 1024;

/// A path parameter, checked.
fn path_param(
    param: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    what: &str,
) -> Result<String, ApiError> {
    let axum::extract::Path(value) = param.map_err(|e| {
        ApiError::bad_request(
            "invalid_path",
            format!("the {what} in the path is not valid: {e}"),
        )
    })?;
    if value.is_empty() || value.len() > MAX_KEY {
        return Err(ApiError::bad_request(
            "invalid_path",
            format!("a {what} is 1 to {MAX_KEY} bytes long"),
        ));
    }
    Ok(value)
}

/// The query string's parameters, each at most once, all of them in `allowed`.
fn query(uri: &http::Uri, allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(q) = uri.query() else {
        return Ok(out);
    };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name)?;
        let value = percent_decode(value)?;
        if !allowed.contains(&name.as_str()) {
            let accepted = if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown query parameter `{name}` (accepted: {accepted})"),
            ));
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("the query parameter `{name}` is given twice"),
            ));
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes. `+` stays a plus sign (identifiers such as
/// `email:ann+shop@example.com` hold them); encode a space as `%20`.
fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_query",
            format!("the query is not valid percent-encoded UTF-8 near `{text}`"),
        )
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let digit = |c: u8| char::from(c).to_digit(16).ok_or_else(bad);
            // Both digits checked: `from_str_radix` would take "+1".
            out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        for (input, expect) in [
            ("a%20b", Some("a b")),
            ("ann+shop%40example.com", Some("ann+shop@example.com")),
            ("%C3%A9", Some("é")),
            ("%", None),
            ("%2", None),
            ("%zz", None),
            ("%FF", None),
            ("%+1", None),
        ] {
            assert_eq!(percent_decode(input).ok().as_deref(), expect, "{input}");
        }
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", "abc"));
        assert!(!same_secret("abcd", "abc"));
    }
}
