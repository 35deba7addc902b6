//! The tracking API, a drop-in for Segment's: `POST /v1/track`, `identify`,
//! `page`, `screen`, `group`, `alias`, `batch` (and `/v1/b`). Written once
//! against [`EventSink`] and [`Dedupe`]; `uniflow dev` serves it with axum,
//! the ingest Lambda from API Gateway events.
//!
//! Per request: route, decompress (gzip), authenticate the write key (HTTP
//! Basic user name or `writeKey` in the body), check the origin of browser
//! sources, rate-limit, enforce the size limits, then per message: enrich,
//! validate against the bundle, apply the source's policy (reject,
//! quarantine, allow), deduplicate by `messageId`; finally make every
//! accepted and quarantined record durable and only then answer 2xx.

pub mod enrich;
mod http_io;
mod rate;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use uniflow_schemas::Bundle;
use uniflow_schemas::bundle::{Policy, SourceKind, SourcePolicy};
use uniflow_schemas::validate::scan::{array_items, object_members};
use uniflow_schemas::validate::{CallType, Issue, IssueCode, PathSegment, Validator};

use crate::backend::{Clock, Dedupe, EventSink};
use crate::record::{Record, RecordKind};
use enrich::{RequestFacts, enrich};
pub use http_io::{Reply, Request};
pub use rate::RateLimit;

/// Segment's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One message, in bytes (32 KB).
    pub max_event_bytes: usize,
    /// One request body after decompression, in bytes (500 KB).
    pub max_batch_bytes: usize,
    /// Messages in one batch.
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
            max_batch_events: 2500,
        }
    }
}

/// A source as ingest sees it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name (`sourceId` on its events).
    pub name: String,
    /// Its policies from the bundle.
    pub policy: SourcePolicy,
}

/// The calls and the endpoint names that take them.
const CALLS: &[(&str, Option<&str>)] = &[
    ("track", Some("track")),
    ("identify", Some("identify")),
    ("page", Some("page")),
    ("screen", Some("screen")),
    ("group", Some("group")),
    ("alias", Some("alias")),
    ("batch", None),
    ("b", None),
];

/// The tracking API handler.
#[derive(Debug)]
pub struct Ingest<S, D, C> {
    validator: Validator,
    sources_by_key: BTreeMap<String, Arc<Source>>,
    all_origins: Vec<String>,
    limits: Limits,
    rate: RateLimit,
    sink: S,
    dedupe: D,
    clock: C,
}

/// What happened to one message of a request.
#[derive(Debug, Serialize)]
struct Outcome {
    index: usize,
    #[serde(rename = "messageId")]
    message_id: Option<String>,
    issues: Vec<Issue>,
}

impl<S: EventSink, D: Dedupe, C: Clock> Ingest<S, D, C> {
    /// A handler for the bundle's sources; `write_keys` maps each source
    /// name to its write key.
    pub fn new(
        bundle: &Bundle,
        write_keys: &BTreeMap<String, String>,
        limits: Limits,
        rate: RateLimit,
        sink: S,
        dedupe: D,
        clock: C,
    ) -> Self {
        let mut sources_by_key = BTreeMap::new();
        let mut all_origins = Vec::new();
        for (name, policy) in &bundle.sources {
            if policy.kind == SourceKind::Browser {
                all_origins.extend(policy.allowed_origins.iter().cloned());
            }
            if let Some(key) = write_keys.get(name) {
                let source = Source {
                    name: name.clone(),
                    policy: policy.clone(),
                };
                sources_by_key.insert(key.clone(), Arc::new(source));
            }
        }
        all_origins.sort();
        all_origins.dedup();
        Ingest {
            validator: Validator::new(bundle),
            sources_by_key,
            all_origins,
            limits,
            rate,
            sink,
            dedupe,
            clock,
        }
    }

    /// The sink (for draining at shutdown).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, req: Request) -> Reply {
        let origin = req
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut reply = self.route(req, origin.as_deref()).await;
        if let Some(origin) = origin.filter(|o| self.all_origins.iter().any(|a| a == o)) {
            reply.cors(&origin);
        }
        reply
    }

    async fn route(&self, req: Request, origin: Option<&str>) -> Reply {
        let Some(call) = req.path.strip_prefix("/v1/") else {
            return Reply::error(
                StatusCode::NOT_FOUND,
                "not found: the tracking API is POST /v1/track, identify, page, screen, group, alias or batch",
            );
        };
        let Some(&(_, call)) = CALLS.iter().find(|(name, _)| *name == call) else {
            return Reply::error(
                StatusCode::NOT_FOUND,
                &format!(
                    "not found: /v1/{call} is not a tracking call (track, identify, page, screen, group, alias, batch)"
                ),
            );
        };
        if req.method == Method::OPTIONS {
            return Reply::preflight();
        }
        if req.method != Method::POST {
            return Reply::error(StatusCode::METHOD_NOT_ALLOWED, "use POST")
                .with_header(header::ALLOW, "POST, OPTIONS");
        }
        let limit = if call.is_some() {
            self.limits.max_event_bytes
        } else {
            self.limits.max_batch_bytes
        };
        let body = match http_io::decode_body(&req.headers, req.body, limit) {
            Ok(body) => body,
            Err(reply) => return *reply,
        };
        let header_key = http_io::basic_user(&req.headers);
        if let Some(Err(reply)) = header_key.as_ref() {
            return reply.clone();
        }
        let header_key = header_key.and_then(Result::ok);
        let parsed = match parse_body(&body, call.is_none()) {
            Ok(parsed) => parsed,
            Err(message) => return Reply::error(StatusCode::BAD_REQUEST, &message),
        };
        let key = header_key.or_else(|| parsed.write_key.clone());
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return Reply::error(
                StatusCode::UNAUTHORIZED,
                "missing write key: send it as the HTTP Basic user name (Authorization: Basic base64(\"WRITE_KEY:\")) or as \"writeKey\" in the body",
            )
            .with_header(header::WWW_AUTHENTICATE, "Basic realm=\"uniflow\"");
        };
        let Some(source) = self.sources_by_key.get(&key).cloned() else {
            return Reply::error(StatusCode::UNAUTHORIZED, "unknown write key: no source of this project has it (see `uniflow dev` output or sources.json)")
                .with_header(header::WWW_AUTHENTICATE, "Basic realm=\"uniflow\"");
        };
        if source.policy.kind == SourceKind::Browser
            && let Some(origin) = origin
            && !source.policy.allowed_origins.iter().any(|o| o == origin)
        {
            return Reply::error(
                StatusCode::FORBIDDEN,
                &format!(
                    "origin {origin} may not send to source `{}`: add it to its allow-origin in uniflow.kdl",
                    source.name
                ),
            );
        }
        let now = self.clock.now_ms();
        if let Err(retry_after) = self.rate.take(&source.name, now) {
            return Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "rate limit of source `{}` exceeded; retry after {retry_after} s",
                    source.name
                ),
            )
            .with_header(header::RETRY_AFTER, &retry_after.to_string());
        }
        if parsed.messages.len() > self.limits.max_batch_events {
            return Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the batch has {} messages; the limit is {} per batch",
                    parsed.messages.len(),
                    self.limits.max_batch_events
                ),
            );
        }
        self.accept(&source, call, &parsed, now, req.peer.as_ref())
            .await
    }

    async fn accept(
        &self,
        source: &Source,
        call: Option<&str>,
        parsed: &Parsed<'_>,
        now: i64,
        peer: Option<&IpAddr>,
    ) -> Reply {
        let ip = peer.map(IpAddr::to_string);
        let facts = RequestFacts {
            call,
            source: &source.name,
            received_at_ms: now,
            batch_sent_at: parsed.sent_at.as_deref(),
            ip: ip.as_deref(),
        };
        let mut rejected = Vec::new();
        let mut quarantined = Vec::new();
        let mut records = Vec::new();
        for (index, message) in parsed.messages.iter().enumerate() {
            let size = message.len();
            if size > self.limits.max_event_bytes {
                rejected.push(Outcome {
                    index,
                    message_id: None,
                    issues: vec![Issue::new(
                        IssueCode::Custom,
                        Vec::new(),
                        format!(
                            "the message is {size} bytes; the limit is {} (32 KB) per message",
                            self.limits.max_event_bytes
                        ),
                    )],
                });
                continue;
            }
            let mut enriched = match enrich(message, &facts) {
                Ok(e) => e,
                Err(e) => {
                    rejected.push(Outcome {
                        index,
                        message_id: None,
                        issues: vec![Issue::new(
                            IssueCode::InvalidType,
                            Vec::new(),
                            e.to_string(),
                        )],
                    });
                    continue;
                }
            };
            let verdict = self.validator.validate(&enriched.json);
            let mut issues = verdict.issues;
            let policy = if verdict.call == Some(CallType::Track)
                && !verdict.declared
                && issues.is_empty()
            {
                let event = verdict.event.as_deref().unwrap_or_default();
                issues.push(Issue::new(
                    IssueCode::Custom,
                    vec![PathSegment::Key("event".into())],
                    format!("event `{event}` is not declared in uniflow.kdl"),
                ));
                source.policy.on_undeclared
            } else {
                source.policy.on_violation
            };
            let outcome = Outcome {
                index,
                message_id: Some(enriched.message_id.clone()),
                issues,
            };
            if outcome.issues.is_empty() {
                records.push(self.record(source, RecordKind::Accepted, enriched, now));
                continue;
            }
            match policy {
                Policy::Reject => rejected.push(outcome),
                Policy::Quarantine => {
                    let doc = violation(now, &source.name, &enriched, &outcome.issues);
                    let record = Record {
                        kind: RecordKind::Quarantined,
                        source: source.name.clone(),
                        message_id: enriched.message_id,
                        partition_key: enriched.partition_key,
                        received_at_ms: now,
                        json: doc,
                    };
                    records.push(record);
                    quarantined.push(outcome);
                }
                Policy::Allow => {
                    let issues = serde_json::to_string(&outcome.issues).unwrap_or_default();
                    enriched.with_schema_issues(&issues);
                    records.push(self.record(source, RecordKind::Accepted, enriched, now));
                }
            }
        }

        // Deduplicate what is about to be stored.
        let window = source.policy.dedupe_window_secs;
        let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        let fresh = match self
            .dedupe
            .first_seen(&source.name, window, &ids, now)
            .await
        {
            Ok(fresh) => fresh,
            Err(e) => return Reply::unavailable(&e.to_string()),
        };
        drop(ids);
        let total = records.len();
        let stored: Vec<Record> = records
            .into_iter()
            .zip(&fresh)
            .filter_map(|(r, &f)| f.then_some(r))
            .collect();
        let duplicates = total - stored.len();
        let accepted = stored
            .iter()
            .filter(|r| r.kind == RecordKind::Accepted)
            .count();
        let new_ids: Vec<String> = if stored.is_empty() {
            Vec::new()
        } else {
            stored.iter().map(|r| r.message_id.clone()).collect()
        };
        if !stored.is_empty()
            && let Err(e) = self.sink.append(stored).await
        {
            let ids: Vec<&str> = new_ids.iter().map(String::as_str).collect();
            self.dedupe.forget(&source.name, &ids).await;
            return Reply::unavailable(&e.to_string());
        }

        let all_rejected = !rejected.is_empty() && total == 0;
        let status = if all_rejected {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let mut body = serde_json::json!({ "success": !all_rejected });
        if call.is_none() || !rejected.is_empty() || !quarantined.is_empty() || duplicates > 0 {
            body["accepted"] = accepted.into();
            body["duplicates"] = duplicates.into();
            body["quarantined"] = serde_json::to_value(&quarantined).unwrap_or_default();
            body["rejected"] = serde_json::to_value(&rejected).unwrap_or_default();
        }
        if all_rejected {
            let message = if call.is_some() {
                "the message failed validation; see `rejected`"
            } else {
                "every message of the batch failed validation; see `rejected`"
            };
            body["code"] = "invalid_messages".into();
            body["error"] = message.into();
            body["message"] = message.into();
        }
        Reply::json(status, &body)
    }

    fn record(&self, source: &Source, kind: RecordKind, e: enrich::Enriched, now: i64) -> Record {
        Record {
            kind,
            source: source.name.clone(),
            message_id: e.message_id,
            partition_key: e.partition_key,
            received_at_ms: now,
            json: e.json,
        }
    }
}

/// The violations-archive document of a quarantined message.
fn violation(now: i64, source: &str, e: &enrich::Enriched, issues: &[Issue]) -> Vec<u8> {
    let head = serde_json::json!({
        "receivedAt": crate::time::format_ms(now),
        "sourceId": source,
        "messageId": e.message_id,
        "issues": issues,
    });
    let mut doc = serde_json::to_vec(&head).unwrap_or_else(|_| b"{}".to_vec());
    // `{...}` + `,"message":<the enriched message>}`: keys stay sorted.
    doc.pop();
    doc.extend_from_slice(b",\"message\":");
    doc.extend_from_slice(&e.json);
    doc.push(b'}');
    doc
}

/// A request body, read at its top level.
#[derive(Debug)]
struct Parsed<'a> {
    messages: Vec<&'a str>,
    write_key: Option<String>,
    sent_at: Option<String>,
}

fn parse_body(body: &[u8], batch: bool) -> Result<Parsed<'_>, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "malformed JSON: the body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    // The fast scan; on any failure, serde_json says precisely what is wrong.
    let members = match object_members(body) {
        Ok(members) => members,
        Err(scan) => {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Err(format!(
                    "malformed JSON at line {} column {}: {}",
                    e.line(),
                    e.column(),
                    strip_position(&e.to_string())
                ));
            }
            if batch {
                return Err("a batch body must be an object: {\"batch\": [message, ...]}".into());
            }
            if text.trim_start().starts_with('{') {
                let (line, column) = line_column(text, scan.pos);
                return Err(format!(
                    "malformed JSON at line {line} column {column}: {}",
                    scan.what
                ));
            }
            // Valid JSON but not an object: the message is rejected as such.
            return Ok(Parsed {
                messages: vec![text.trim()],
                write_key: None,
                sent_at: None,
            });
        }
    };
    let string_member = |name: &str| {
        members
            .iter()
            .rev()
            .find(|m| m.key_text(body) == name)
            .and_then(|m| serde_json::from_str::<String>(&text[m.value.clone()]).ok())
    };
    let write_key = string_member("writeKey");
    if !batch {
        return Ok(Parsed {
            messages: vec![text.trim()],
            write_key,
            sent_at: None,
        });
    }
    let Some(batch) = members.iter().rev().find(|m| m.key_text(body) == "batch") else {
        return Err("a batch body needs a \"batch\" array of messages".into());
    };
    let items = array_items(body, batch.value.clone()).map_err(|_| {
        "a batch body is {\"batch\": [message, ...]}: \"batch\" is not an array".to_owned()
    })?;
    Ok(Parsed {
        messages: items.into_iter().map(|r| &text[r]).collect(),
        write_key,
        sent_at: string_member("sentAt"),
    })
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// serde_json's message without its " at line L column C" (said once, first).
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

impl Reply {
    fn cors(&mut self, origin: &str) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            self.headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            self.headers
                .insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// Headers of a request, re-exported for adapters.
pub type Headers = HeaderMap;

/// The raw body of a request.
pub type Body = Bytes;
