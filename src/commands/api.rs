//! The client of the management API (`uniflow_runtime::manage`) that
//! `profiles`, `dlq` and `replay` share: where the API is (`DATA/dev.json`
//! or `--api`/`--token`), one JSON request, and the mapping of its answers
//! to exit codes (a 4xx is the user's mistake, exit 1; anything else that
//! goes wrong is exit 2).

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::dev_api::{DevFile, dev_file};
use super::resolve;
use crate::ExitStatus;
use crate::cli::ApiArgs;

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a command's future on a single-threaded runtime; a [`Refused`]
/// error is printed and becomes exit 1, other errors go up (exit 2).
pub fn block_on(
    command: impl Future<Output = anyhow::Result<ExitStatus>>,
) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(command) {
        Ok(status) => Ok(status),
        // The API said no to what the user asked: exit 1, with what the
        // command was doing when it did.
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            let mut stderr = std::io::stderr().lock();
            writeln!(stderr, "error: {e:#}")?;
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e),
    }
}

/// A 4xx answer of the management API: the request was wrong (exit 1).
#[derive(Debug)]
pub struct Refused {
    /// The API's stable error code (`destination_not_found`, ...).
    pub code: String,
    /// What the API said, for people.
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Refused {}

/// The management API, over HTTP.
pub struct Client {
    /// `http[s]://host[:port][/prefix]`, without a trailing slash or `/api/v1`.
    base: String,
    /// Where `base` came from, for error messages.
    origin: String,
    token: Option<String>,
    http: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The API named by --api (and --token), else by `dev.json`.
    pub fn new(args: &ApiArgs) -> anyhow::Result<Client> {
        let (url, token, origin) = match &args.api {
            Some(url) => (url.clone(), args.token.clone(), "--api".to_owned()),
            None => {
                let data = data_dir(&args.path, args.data.as_deref());
                let path = dev_file(&data);
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                        "no management API to ask: {} does not exist. `uniflow dev` writes it when it starts; start it (with the same --data), or pass --api and --token (UNIFLOW_API_URL, UNIFLOW_API_TOKEN)",
                        path.display()
                    ),
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", path.display()));
                    }
                };
                let file: DevFile = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not what `uniflow dev` writes; restart `uniflow dev` to rewrite it",
                        path.display()
                    )
                })?;
                // --token still wins, for a token kept elsewhere.
                let token = args.token.clone().or(Some(file.token));
                (file.api, token, path.display().to_string())
            }
        };
        let base = base_url(&url)?;
        let connector = connector(base.starts_with("https://"))?;
        Ok(Client {
            base,
            origin,
            token,
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Whether the API is a `uniflow dev` on this machine.
    fn is_local(&self) -> bool {
        self.origin != "--api"
            || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| self.base.starts_with(p))
    }

    /// Sends a request without a body to `/api/v1{path}` and reads its JSON
    /// answer.
    pub async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        self.request(method, path, None).await
    }

    /// POSTs `body` (JSON) to `/api/v1{path}` and reads its JSON answer.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        self.request(Method::POST, path, Some(body)).await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(bytes) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .with_context(|| format!("cannot make a request to {url}"))?;
        let unreachable = |why: String| {
            let hint = if self.is_local() {
                "is `uniflow dev` running?"
            } else {
                "check the URL and the network"
            };
            anyhow!(
                "cannot reach the management API at {} (from {}): {hint} ({why})",
                self.base,
                self.origin
            )
        };
        let response = match tokio::time::timeout(TIMEOUT, self.http.request(request)).await {
            Err(_) => return Err(unreachable(format!("no answer in {}s", TIMEOUT.as_secs()))),
            Ok(Err(e)) if e.is_connect() => return Err(unreachable(error_chain(&e))),
            Ok(Err(e)) => bail!(
                "the management API at {} failed to answer: {}",
                self.base,
                error_chain(&e)
            ),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| anyhow!("the management API at {} stopped answering", self.base))?
            .with_context(|| format!("the management API at {} broke its answer", self.base))?
            .to_bytes();
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                anyhow!(
                    "the management API at {} answered {status} with something that is not JSON",
                    self.base
                )
            });
        }
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match (field("code"), field("message")) {
            (Some(code), Some(message)) if status.is_client_error() => {
                Err(Refused { code, message }.into())
            }
            (Some(code), Some(message)) => bail!(
                "the management API at {} failed: {message} ({code}, {status})",
                self.base
            ),
            _ => bail!(
                "{url} answered {status} without a management API error: is {} a `uniflow dev` with the management API (or a deployed stack)? {}",
                self.base,
                excerpt(&body)
            ),
        }
    }
}

/// Plain HTTP, and HTTPS with rustls (ring) and this system's root
/// certificates, loaded only when the API is https.
fn connector(https: bool) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if https {
        builder
            .with_provider_and_native_roots(provider)
            .context("cannot load this system's root certificates for https")?
    } else {
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

/// `dev`'s data directory for the project at `path`: `data` when given,
/// else `.uniflow/` next to its `uniflow.kdl`.
pub fn data_dir(path: &Path, data: Option<&Path>) -> PathBuf {
    if let Some(d) = data {
        return d.to_owned();
    }
    let file = resolve(path);
    file.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join(".uniflow")
}

/// `http[s]://host[:port][/prefix]` from what a person may paste: a trailing slash or the
/// `/api/v1` that `uniflow dev` prints are dropped.
fn base_url(url: &str) -> anyhow::Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/api/v1").unwrap_or(trimmed);
    let parsed: hyper::Uri = trimmed
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        bail!("`{url}` is not an http:// or https:// URL (for example http://127.0.0.1:8088)");
    }
    if parsed.host().is_none() {
        bail!("`{url}` has no host (for example http://127.0.0.1:8088)");
    }
    Ok(trimmed.to_owned())
}

/// Percent-encodes everything but unreserved characters (for a path
/// segment or a query value).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for (input, expect) in [
            ("http://127.0.0.1:8088", Ok("http://127.0.0.1:8088")),
            ("http://127.0.0.1:8088/", Ok("http://127.0.0.1:8088")),
            ("http://127.0.0.1:8088/api/v1", Ok("http://127.0.0.1:8088")),
            ("http://localhost:8088/api/v1/", Ok("http://localhost:8088")),
            (
                "https://abc.execute-api.eu-west-1.amazonaws.com/api/v1",
                Ok("https://abc.execute-api.eu-west-1.amazonaws.com"),
            ),
            ("127.0.0.1:8088", Err("not an http:// or https:// URL")),
            ("ftp://x.example", Err("not an http:// or https:// URL")),
            ("http://", Err("not an http:// or https:// URL")),
            ("not a url", Err("not a URL")),
        ] {
            match (base_url(input), expect) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{input}: {e}"),
                (got, want) => panic!("{input}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            encode("email:ann+1@example.com"),
            "email%3Aann%2B1%40example.com"
        );
        assert_eq!(encode("Order Completed"), "Order%20Completed");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
