//! The webhook connector: each batch as one HTTP POST of JSON, signed when
//! the destination has a secret. `README.md` beside this file is what a
//! receiver's author reads: the request, the signature, the outcomes.

mod classify;
mod request;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use uniflow_schemas::bundle::{ConnectorSettings, DestinationInfo, HeaderSource};

use super::{ConnectorError, Secrets};
use crate::delivery::{Connector, Delivering, Outcome, Outgoing};

/// Headers the connector sets itself; the destination's headers may not.
const RESERVED: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::HOST,
    header::USER_AGENT,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("uniflow-timestamp"),
    HeaderName::from_static("uniflow-signature"),
];

/// Most of a response body read (the rest is not waited for).
const MAX_BODY_READ: usize = 64 * 1024;

/// A destination's webhook: its URL, headers with secrets resolved, and
/// signing key.
pub struct WebhookConnector {
    uri: Uri,
    headers: HeaderMap,
    secret: Option<Arc<[u8]>>,
    timeout: Duration,
    batched: bool,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl fmt::Debug for WebhookConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the header values or the secret.
        f.debug_struct("WebhookConnector")
            .field("uri", &self.uri)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .field("batched", &self.batched)
            .finish_non_exhaustive()
    }
}

/// The webhook connector of destination `name`, its header secrets and
/// signing secret resolved through `secrets` now, once.
pub async fn connector(
    name: &str,
    destination: &DestinationInfo,
    secrets: &dyn Secrets,
) -> Result<WebhookConnector, ConnectorError> {
    let ConnectorSettings::Webhook {
        url,
        headers: configured,
        timeout_secs,
        secret,
    } = &destination.connector
    else {
        return Err(ConnectorError::settings(
            name,
            "the webhook connector needs webhook settings",
        ));
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| ConnectorError::settings(name, format!("`{url}` is not a URL: {e}")))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(ConnectorError::settings(
                name,
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConnectorError::settings(
            name,
            format!("`{url}` has no host"),
        ));
    }
    let resolve = |reference: &str| {
        let reference = reference.to_owned();
        async move {
            secrets
                .resolve(&reference)
                .await
                .map_err(|source| ConnectorError::Secret {
                    destination: name.to_owned(),
                    reference,
                    source,
                })
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("uniflow/", env!("CARGO_PKG_VERSION"))),
    );
    for (header_name, source) in configured {
        let key = HeaderName::from_bytes(header_name.as_bytes()).map_err(|_| {
            ConnectorError::settings(name, format!("`{header_name}` is not an HTTP header name"))
        })?;
        if RESERVED.contains(&key) {
            return Err(ConnectorError::settings(
                name,
                format!("the header `{header_name}` is set by the webhook connector itself"),
            ));
        }
        let (text, shown) = match source {
            HeaderSource::Value(v) => (v.clone(), format!("`{v}`")),
            HeaderSource::Secret(r) => (resolve(&r.0).await?, format!("the secret `{}`", r.0)),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            ConnectorError::settings(
                name,
                format!(
                    "the value of header `{header_name}` ({shown}) has characters HTTP headers \
                     cannot carry (line breaks, control characters)"
                ),
            )
        })?;
        value.set_sensitive(matches!(source, HeaderSource::Secret(_)));
        headers.append(key, value);
    }
    let secret = match secret {
        None => None,
        Some(r) => {
            let value = resolve(&r.0).await?;
            if value.is_empty() {
                return Err(ConnectorError::settings(
                    name,
                    format!("the signing secret `{}` is empty", r.0),
                ));
            }
            Some(Arc::from(value.into_bytes()))
        }
    };
    let timeout = Duration::from_secs((*timeout_secs).max(1));
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(http_connector(https, timeout).map_err(|m| ConnectorError::settings(name, m))?);
    Ok(WebhookConnector {
        uri,
        headers,
        secret,
        timeout,
        batched: destination.batch.max_events > 1,
        client,
    })
}

/// Plain HTTP, and HTTPS with rustls (ring) and this system's root
/// certificates, loaded only for an https URL.
fn http_connector(https: bool, timeout: Duration) -> Result<HttpsConnector<HttpConnector>, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if https {
        builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot load this system's root certificates for https: {e}"))?
    } else {
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

impl WebhookConnector {
    /// Sends `payloads` in one request; the outcome of all of them.
    async fn send(&self, payloads: &[&Outgoing]) -> Outcome {
        let now = SystemTime::now();
        let since_epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let batched = self.batched || payloads.len() > 1;
        let (body, key) = request::body(payloads, batched, since_epoch.as_millis() as i64);
        let mut headers = self.headers.clone();
        let mut insert = |name: &'static str, value: &str| match HeaderValue::from_str(value) {
            Ok(v) => {
                headers.insert(HeaderName::from_static(name), v);
                Ok(())
            }
            Err(_) => Err(Outcome::Failed {
                reason: format!("the {name} header cannot carry `{value}`"),
            }),
        };
        let signed = self.secret.as_ref().map(|secret| {
            let ts = since_epoch.as_secs();
            (ts.to_string(), request::signature(secret, ts, &body))
        });
        let set = insert("idempotency-key", &key).and_then(|()| match &signed {
            Some((ts, sig)) => {
                insert("uniflow-timestamp", ts)?;
                insert("uniflow-signature", sig)
            }
            None => Ok(()),
        });
        if let Err(outcome) = set {
            return outcome;
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok((status, headers, body))) => {
                classify::answered(status, &headers, &body, SystemTime::now())
            }
            Ok(Err(reason)) => Outcome::Retry {
                reason,
                after: None,
            },
            Err(_) => Outcome::Retry {
                reason: format!(
                    "no answer from {} within {}s",
                    self.uri,
                    self.timeout.as_secs()
                ),
                after: None,
            },
        }
    }

    /// The request and its answer (status, headers, the start of the body),
    /// or why there is none.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(http::StatusCode, HeaderMap, Vec<u8>), String> {
        let response = self.client.request(request).await.map_err(|e| {
            let what = if e.is_connect() {
                format!("cannot connect to {}", self.uri)
            } else {
                format!("the request to {} failed", self.uri)
            };
            format!("{what}: {}", causes(&e))
        })?;
        let (parts, mut incoming) = response.into_parts();
        let mut body = Vec::new();
        while body.len() < MAX_BODY_READ {
            match incoming.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        body.extend_from_slice(data);
                    }
                }
                // A body cut short still carries the status: keep what came.
                Some(Err(_)) | None => break,
            }
        }
        Ok((parts.status, parts.headers, body))
    }
}

impl Connector for WebhookConnector {
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a> {
        Box::pin(async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let sendable: Vec<&Outgoing> = batch.iter().collect();
            vec![self.send(&sendable).await; batch.len()]
        })
    }
}

/// An error and its causes, deduplicated (hyper repeats itself).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
