//! API Gateway HTTP API (payload format 2.0) events to the handler's plain
//! [`Request`], and its [`Reply`] back to the response API Gateway expects.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use uniflow_runtime::ingest::{Reply, Request};

/// The request an API Gateway event carries; a reply when the event itself
/// is unusable (a body that is not valid base64).
pub fn request(event: ApiGatewayV2httpRequest) -> Result<Request, Box<Reply>> {
    let body = match event.body {
        None => Bytes::new(),
        Some(text) if event.is_base64_encoded => {
            match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    return Err(Box::new(Reply::error(
                        StatusCode::BAD_REQUEST,
                        &format!("the request body is not valid base64: {e}"),
                    )));
                }
            }
        }
        Some(text) => Bytes::from(text),
    };
    let http = &event.request_context.http;
    let path = event
        .raw_path
        .clone()
        .or_else(|| http.path.clone())
        .unwrap_or_default();
    let peer = http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    let mut headers = event.headers;
    // API Gateway joins repeated cookies into `cookies`; nothing here reads them.
    headers.remove(http::header::COOKIE);
    Ok(Request {
        method: http.method.clone(),
        path,
        headers,
        body,
        peer,
    })
}

/// The API Gateway response for a reply.
pub fn response(reply: Reply) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in &reply.headers {
        headers.insert(name.clone(), value.clone());
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) && !reply.body.is_empty() {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    ApiGatewayV2httpResponse {
        status_code: i64::from(reply.status.as_u16()),
        headers,
        multi_value_headers: HeaderMap::new(),
        body: (!reply.body.is_empty())
            .then(|| Body::Text(String::from_utf8_lossy(&reply.body).into_owned())),
        is_base64_encoded: false,
        cookies: Vec::new(),
    }
}

/// Handles one API Gateway event with the ingest handler.
pub async fn handle<S, D, C>(
    ingest: &uniflow_runtime::ingest::Ingest<S, D, C>,
    event: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse
where
    S: uniflow_runtime::backend::EventSink,
    D: uniflow_runtime::backend::Dedupe,
    C: uniflow_runtime::backend::Clock,
{
    match request(event) {
        Ok(req) => response(ingest.handle(req).await),
        Err(reply) => response(*reply),
    }
}

/// The most bytes of a router's answer passed back to API Gateway (its own
/// limit for a Lambda proxy response is 6 MB).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Handles one API Gateway event with an axum [`axum::Router`] (the
/// management API): the same router `uniflow dev` serves, run per event.
pub async fn serve_router(
    router: &axum::Router,
    event: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    use tower::ServiceExt as _;

    let query = event.raw_query_string.clone().unwrap_or_default();
    let req = match request(event) {
        Ok(req) => req,
        Err(reply) => return response(*reply),
    };
    let uri = if query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{query}", req.path)
    };
    let mut builder = http::Request::builder().method(req.method).uri(uri);
    if let Some(headers) = builder.headers_mut() {
        *headers = req.headers;
    }
    let built = match builder.body(axum::body::Body::from(req.body)) {
        Ok(r) => r,
        Err(e) => {
            return response(Reply::error(
                StatusCode::BAD_REQUEST,
                &format!("the request cannot be read: {e}"),
            ));
        }
    };
    let answer = match router.clone().oneshot(built).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    let (parts, body) = answer.into_parts();
    let body = match axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return response(Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the answer could not be produced: {e}"),
            ));
        }
    };
    ApiGatewayV2httpResponse {
        status_code: i64::from(parts.status.as_u16()),
        headers: parts.headers,
        multi_value_headers: HeaderMap::new(),
        body: (!body.is_empty()).then(|| Body::Text(String::from_utf8_lossy(&body).into_owned())),
        is_base64_encoded: false,
        cookies: Vec::new(),
    }
}
