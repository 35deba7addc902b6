//! Requests and replies independent of the HTTP server (axum in `uniflow
//! dev`, API Gateway in the Lambda), and the body and header handling they
//! share: gzip with a bounded output, HTTP Basic write keys.

use std::io::Read;
use std::net::IpAddr;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as received (possibly gzip).
    pub body: Bytes,
    /// The client's address, for `context.ip`.
    pub peer: Option<IpAddr>,
}

/// One HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// A JSON body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: StatusCode, body: &serde_json::Value) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Reply {
            status,
            headers,
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    /// `{"success": false, "error": message}`.
    pub fn error(status: StatusCode, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({ "success": false, "error": message }),
        )
    }

    /// 503: nothing was stored; the sender should retry.
    pub fn unavailable(why: &str) -> Reply {
        Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("events were not stored, retry: {why}"),
        )
        .with_header(header::RETRY_AFTER, "1")
    }

    /// The answer to a CORS preflight (the origin header is added by the caller).
    pub fn preflight() -> Reply {
        let mut reply = Reply {
            status: StatusCode::NO_CONTENT,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        reply.headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        reply.headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-encoding, content-type"),
        );
        reply.headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        reply
    }

    /// The reply with one more header.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

/// The body, decompressed when `Content-Encoding: gzip`, refused with 413
/// when it exceeds `limit` bytes (before or after decompression).
pub fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Box<Reply>> {
    let too_large = |size: String| {
        Box::new(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body is {size} bytes; the limit is {limit} ({} KB) for {}",
                limit / 1024,
                if limit >= 100 * 1024 {
                    "a batch"
                } else {
                    "one message"
                }
            ),
        ))
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => {
            if body.len() > limit {
                return Err(too_large(body.len().to_string()));
            }
            Ok(body)
        }
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity((body.len() * 4).min(limit + 1));
            let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
            match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
                Ok(_) if out.len() > limit => {
                    Err(too_large(format!("more than {limit} once decompressed")))
                }
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(Box::new(Reply::error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body says Content-Encoding: gzip but does not decompress: {e}"),
                ))),
            }
        }
        Some(other) => Err(Box::new(Reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Encoding {other} is not supported; send gzip or no encoding"),
        ))),
    }
}

/// The HTTP Basic user name (Segment's write key), when the request has an
/// `Authorization` header; an error reply when the header is malformed.
pub fn basic_user(headers: &HeaderMap) -> Option<Result<String, Reply>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let bad = || {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "malformed Authorization header: expected Basic base64(\"WRITE_KEY:\")",
        )
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return Some(Err(bad()));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    Some(match decoded {
        Some(d) => Ok(d.split(':').next().unwrap_or_default().to_owned()),
        None => Err(bad()),
    })
}
