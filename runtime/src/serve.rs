//! The tracking API over HTTP with axum, for `uniflow dev`. The handler is
//! [`Ingest::handle`]; this only adapts requests and replies.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::backend::{Clock, Dedupe, EventSink};
use crate::ingest::{Ingest, Reply, Request};

/// The most bytes read from a request body; the handler applies the real
/// limits (500 KB per batch, after decompression) with a precise answer.
const READ_LIMIT: usize = 4 * 1024 * 1024;

/// A router that sends every request to `ingest`.
pub fn router<S: EventSink, D: Dedupe, C: Clock>(ingest: Arc<Ingest<S, D, C>>) -> Router {
    Router::new().fallback(handle::<S, D, C>).with_state(ingest)
}

async fn handle<S: EventSink, D: Dedupe, C: Clock>(
    State(ingest): State<Arc<Ingest<S, D, C>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: http::Request<Body>,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, READ_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return reply(Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body is over {READ_LIMIT} bytes; the limit is 512000 (500 KB) for a batch"
                ),
            ));
        }
    };
    let req = Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
        peer: Some(peer.ip()),
    };
    reply(ingest.handle(req).await)
}

fn reply(r: Reply) -> Response {
    let mut response = (r.status, r.body).into_response();
    response.headers_mut().extend(r.headers);
    response
}
