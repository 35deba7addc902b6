//! `uniflow profiles get|explain|delete`: a client of the management API
//! (`uniflow_runtime::manage`) of a running `uniflow dev` or a deployed stack.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
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
use crate::cli::{ApiArgs, OutputFormat, ProfilesCommand};

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a `profiles` subcommand.
pub fn run(command: ProfilesCommand) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let outcome = match command {
            ProfilesCommand::Get {
                profile,
                events,
                format,
                api,
            } => get(&Client::new(&api)?, &profile, events, format).await,
            ProfilesCommand::Explain {
                profile,
                format,
                api,
            } => explain(&Client::new(&api)?, &profile, format).await,
            ProfilesCommand::Delete { profile, yes, api } => {
                if !yes && !std::io::stdin().is_terminal() {
                    let mut stderr = std::io::stderr().lock();
                    writeln!(
                        stderr,
                        "error: refusing to delete without --yes: standard input is not a terminal, so nobody can confirm"
                    )?;
                    return Ok(ExitStatus::Failure);
                }
                delete(&Client::new(&api)?, &profile, yes).await
            }
        };
        match outcome {
            Ok(status) => Ok(status),
            Err(e) => match e.downcast::<Refused>() {
                // The API said no to what the user asked: exit 1.
                Ok(refused) => {
                    let mut stderr = std::io::stderr().lock();
                    writeln!(stderr, "error: {refused}")?;
                    Ok(ExitStatus::Failure)
                }
                Err(e) => Err(e),
            },
        }
    })
}

/// A 4xx answer of the management API: the request was wrong (exit 1).
#[derive(Debug)]
struct Refused {
    code: String,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Refused {}

/// The management API, over HTTP.
struct Client {
    /// `http[s]://host[:port][/prefix]`, without a trailing slash or `/api/v1`.
    base: String,
    /// Where `base` came from, for error messages.
    origin: String,
    token: Option<String>,
    http: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    /// The API named by --api (and --token), else by `dev.json`.
    fn new(args: &ApiArgs) -> anyhow::Result<Client> {
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

    /// Sends a request to `/api/v1{path}` and reads its JSON answer.
    async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::new()))
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

    /// The live profile named by an id or a `type:value` identifier.
    async fn profile(&self, target: &str) -> anyhow::Result<Value> {
        if target.contains(':') {
            self.call(
                Method::GET,
                &format!("/profiles?identifier={}", encode(target)),
            )
            .await
        } else {
            self.call(Method::GET, &format!("/profiles/{}", encode(target)))
                .await
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

/// `dev`'s data directory for the project at `path`.
fn data_dir(path: &Path, data: Option<&Path>) -> PathBuf {
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

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
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

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// `a 2, b 1` from `{"a": 2, "b": 1}`, or `none`.
fn counts(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The first line of a profile: its id, and how it was found.
fn heading(profile: &Value) -> String {
    let id = str_of(profile, "id");
    if let Some(requested) = profile.get("requestedId").and_then(Value::as_str) {
        format!("profile {id} ({requested} was merged into it)")
    } else if let Some(identifier) = profile.get("identifier").and_then(Value::as_str) {
        format!("profile {id} (holds {identifier})")
    } else {
        format!("profile {id}")
    }
}

/// One line about an event: what it was.
fn describe(event: &Value) -> String {
    let kind = str_of(event, "type");
    let detail = match kind {
        "track" => str_of(event, "event").to_owned(),
        "page" | "screen" => str_of(event, "name").to_owned(),
        "group" => format!("groupId {}", compact(&event["groupId"])),
        "alias" => format!("previousId {}", compact(&event["previousId"])),
        "identify" => {
            let keys: Vec<&str> = event
                .get("traits")
                .and_then(Value::as_object)
                .map(|t| t.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                String::new()
            } else {
                format!("traits {}", keys.join(", "))
            }
        }
        _ => String::new(),
    };
    format!("{kind:<8} {detail}").trim_end().to_owned()
}

fn compact(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

async fn get(
    client: &Client,
    target: &str,
    events: u16,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let profile = client.profile(target).await?;
    let id = encode(str_of(&profile, "id"));
    let identities = client
        .call(Method::GET, &format!("/profiles/{id}/identities"))
        .await?;
    let page = if events > 0 {
        client
            .call(
                Method::GET,
                &format!("/profiles/{id}/events?limit={events}"),
            )
            .await?
    } else {
        serde_json::json!({ "events": [] })
    };
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let doc = serde_json::json!({
            "profile": profile,
            "identities": identities,
            "events": page["events"],
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitStatus::Success);
    }
    let mut text = String::new();
    writeln!(text, "{}", heading(&profile))?;
    writeln!(text, "  first seen   {}", str_of(&profile, "firstSeen"))?;
    writeln!(text, "  last seen    {}", str_of(&profile, "lastSeen"))?;
    writeln!(text, "  calls        {}", counts(&profile["counts"]))?;
    writeln!(text, "  track events {}", counts(&profile["eventCounts"]))?;
    let groups: Vec<&str> = list(&profile["groups"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !groups.is_empty() {
        writeln!(text, "  groups       {}", groups.join(", "))?;
    }
    let merged: Vec<&str> = list(&profile["mergedFrom"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !merged.is_empty() {
        writeln!(text, "  merged from  {}", merged.join(", "))?;
    }
    let traits = profile["traits"].as_object();
    writeln!(text, "\ntraits")?;
    match traits.filter(|t| !t.is_empty()) {
        None => writeln!(text, "  none yet (identify calls set them)")?,
        Some(traits) => {
            let width = traits.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (name, value) in traits {
                let at = profile["traitTimestamps"][name].as_str().unwrap_or("");
                writeln!(text, "  {name:<width$}  {value}  (set {at})")?;
            }
        }
    }
    writeln!(text, "\nidentifiers")?;
    let ids = list(&identities);
    let width = ids
        .iter()
        .map(|i| str_of(i, "identifier").chars().count())
        .max()
        .unwrap_or(0);
    for i in ids {
        writeln!(
            text,
            "  {:<width$}  linked {}",
            str_of(i, "identifier"),
            str_of(i, "linkedAt")
        )?;
    }
    if events > 0 {
        let shown = list(&page["events"]);
        writeln!(text, "\nlatest events, newest first")?;
        if shown.is_empty() {
            writeln!(text, "  none")?;
        }
        for e in shown {
            writeln!(
                text,
                "  {}  {}  ({}, {})",
                str_of(e, "timestamp"),
                describe(&e["event"]),
                str_of(e, "messageId"),
                str_of(&e["event"], "sourceId"),
            )?;
        }
        if page.get("next").is_some_and(Value::is_string) {
            writeln!(
                text,
                "  ... older events: --events {}",
                (u32::from(events) * 5).min(1000)
            )?;
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

async fn explain(
    client: &Client,
    target: &str,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let profile = client.profile(target).await?;
    let id = encode(str_of(&profile, "id"));
    let identities = client
        .call(Method::GET, &format!("/profiles/{id}/identities"))
        .await?;
    let history = client
        .call(Method::GET, &format!("/profiles/{id}/history"))
        .await?;
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let doc = serde_json::json!({
            "profile": profile,
            "identities": identities,
            "history": history,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitStatus::Success);
    }
    let decisions = list(&history);
    let merges = decisions
        .iter()
        .filter(|d| str_of(d, "outcome") == "merged")
        .count();
    let refusals = decisions.len() - merges;
    let ids = list(&identities);
    let mut text = String::new();
    writeln!(
        text,
        "{}: {} identifier{}, {merges} merge{}, {refusals} refused link{}",
        heading(&profile),
        ids.len(),
        plural(ids.len()),
        plural(merges),
        plural(refusals),
    )?;
    writeln!(
        text,
        "\nHow each identifier was linked, oldest first (time of the event that brought it):"
    )?;
    let width = ids
        .iter()
        .map(|i| str_of(i, "identifier").chars().count())
        .max()
        .unwrap_or(0);
    for i in ids {
        writeln!(
            text,
            "  {}  {:<width$}  by event {} from source {}",
            str_of(i, "linkedAt"),
            str_of(i, "identifier"),
            str_of(i, "messageId"),
            str_of(i, "sourceId"),
        )?;
    }
    if decisions.is_empty() {
        writeln!(
            text,
            "\nNo merges or refusals: every identifier above was linked by an event of this one profile."
        )?;
    } else {
        writeln!(text, "\nMerges and refused links, oldest first:")?;
    }
    let own: Vec<&str> = std::iter::once(str_of(&profile, "id"))
        .chain(
            list(&profile["mergedFrom"])
                .iter()
                .filter_map(Value::as_str),
        )
        .collect();
    for (n, d) in decisions.iter().enumerate() {
        let what = if str_of(d, "outcome") == "merged" {
            format!(
                "merged profile {} into {}",
                str_of(d, "from"),
                str_of(d, "into")
            )
        } else {
            match d.get("profile").and_then(Value::as_str) {
                // Recorded on this profile because it kept the identifier.
                Some(holder) if own.contains(&holder) => format!(
                    "kept {}: an event of another profile asked to take it and was refused",
                    str_of(d, "identifier")
                ),
                Some(holder) => format!(
                    "refused to link {}: it belongs to profile {holder}, which stays separate",
                    str_of(d, "identifier")
                ),
                None => format!("refused to link {}", str_of(d, "identifier")),
            }
        };
        let carried: Vec<&str> = list(&d["identifiers"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        writeln!(text, "  {}. {}  {what}", n + 1, str_of(d, "timestamp"))?;
        writeln!(
            text,
            "     event {} from source {} carried {}",
            str_of(d, "messageId"),
            str_of(d, "sourceId"),
            carried.join(", ")
        )?;
        writeln!(text, "     through {}", str_of(d, "via"))?;
        writeln!(text, "     rule: {}", str_of(d, "rule"))?;
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn delete(client: &Client, target: &str, yes: bool) -> anyhow::Result<ExitStatus> {
    let profile = client.profile(target).await?;
    let id = str_of(&profile, "id").to_owned();
    if !yes {
        let merged = list(&profile["mergedFrom"]).len();
        let mut stderr = std::io::stderr().lock();
        write!(
            stderr,
            "Delete {} and {} profile{} merged into it, with their events, and suppress their identifiers so they never link again?\nThis cannot be undone. Type yes to delete: ",
            heading(&profile),
            merged,
            plural(merged)
        )?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim(), "yes" | "y" | "YES" | "Y") {
            writeln!(stderr, "nothing deleted")?;
            return Ok(ExitStatus::Failure);
        }
    }
    let deleted = client
        .call(Method::DELETE, &format!("/profiles/{}", encode(&id)))
        .await?;
    let profiles: Vec<&str> = list(&deleted["deleted"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let suppressed: Vec<&str> = list(&deleted["suppressedIdentifiers"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "deleted {} profile{}: {}",
        profiles.len(),
        plural(profiles.len()),
        profiles.join(", ")
    )?;
    writeln!(
        out,
        "suppressed {} identifier{} (they will never link again): {}",
        suppressed.len(),
        plural(suppressed.len()),
        suppressed.join(", ")
    )?;
    Ok(ExitStatus::Success)
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
