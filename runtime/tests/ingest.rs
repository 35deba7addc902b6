//! The tracking API's answers, request by request, on the embedded backend:
//! every kind of bad input gets its documented status and message, good
//! events are durable before the answer, and nothing panics on garbage.

#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use uniflow_runtime::backend::{BackendError, Clock, EventSink};
use uniflow_runtime::embedded::{Log, MemoryDedupe};
use uniflow_runtime::ingest::{Ingest, Limits, RateLimit, Reply, Request};
use uniflow_runtime::record::{Record, RecordKind};
use uniflow_schemas::Bundle;

const CONFIG: &str = r#"
project "t" { region "eu-west-1" }
source "web" kind="browser" {
    allow-origin "https://shop.example"
    on-violation "quarantine"
}
source "backend" kind="server" {
    on-violation "reject"
    on-undeclared "reject"
    dedupe-window "1h"
}
source "app" kind="mobile" {
    on-violation "allow"
}
event "Order Completed" {
    property "order_id" type="string" required=#true
    property "revenue" type="number" min=0
}
trait "email" type="string" format="email"
destination "hook" kind="webhook" { url "https://example.com/hook" }
"#;

#[derive(Debug, Clone)]
struct FixedClock(Arc<AtomicI64>);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

const NOW: i64 = 1_795_000_000_000;

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(CONFIG);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

fn keys() -> BTreeMap<String, String> {
    [("web", "kw"), ("backend", "kb"), ("app", "ka")]
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect()
}

struct Harness<S: EventSink = Log> {
    ingest: Ingest<S, MemoryDedupe, FixedClock>,
    _dir: tempfile::TempDir,
    log: Log,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    harness_with(log.clone(), dir, log, RateLimit::new(1000, 1000))
}

fn harness_with<S: EventSink>(
    sink: S,
    dir: tempfile::TempDir,
    log: Log,
    rate: RateLimit,
) -> Harness<S> {
    let ingest = Ingest::new(
        &bundle(),
        &keys(),
        Limits::default(),
        rate,
        sink,
        MemoryDedupe::default(),
        FixedClock(Arc::new(AtomicI64::new(NOW))),
    );
    Harness {
        ingest,
        _dir: dir,
        log,
    }
}

fn post(path: &str, key: Option<&str>, body: impl Into<Bytes>) -> Request {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {auth}")).unwrap(),
        );
    }
    Request {
        method: Method::POST,
        path: path.to_owned(),
        headers,
        body: body.into(),
        peer: Some("203.0.113.9".parse().unwrap()),
    }
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&reply.body)))
}

fn error(reply: &Reply) -> String {
    json(reply)["error"].as_str().unwrap_or_default().to_owned()
}

fn stored(log: &Log) -> Vec<Record> {
    let mut reader = log.reader(0).unwrap();
    let mut out = Vec::new();
    while let Some((r, _)) = reader.next_record().unwrap() {
        out.push(r);
    }
    out
}

const GOOD: &str = r#"{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","properties":{"order_id":"o1","revenue":12.5}}"#;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn a_good_event_is_durable_and_enriched_before_the_answer() {
    let h = harness();
    let reply = h.ingest.handle(post("/v1/track", Some("kb"), GOOD)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", error(&reply));
    assert_eq!(json(&reply), serde_json::json!({ "success": true }));
    let records = stored(&h.log);
    assert_eq!(records.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&records[0].json).unwrap();
    assert_eq!(event["type"], "track");
    assert_eq!(event["sourceId"], "backend");
    assert_eq!(event["context"]["ip"], "203.0.113.9");
    assert_eq!(event["receivedAt"], "2026-11-18T11:06:40.000Z");
    assert_eq!(event["properties"]["revenue"], 12.5);
    assert_eq!(records[0].partition_key, "u1");
}

#[tokio::test]
async fn routes_and_methods() {
    let h = harness();
    let r = h.ingest.handle(post("/v1/nope", Some("kb"), GOOD)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(error(&r).contains("/v1/nope is not a tracking call"));
    let r = h.ingest.handle(post("/other", Some("kb"), GOOD)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut get = post("/v1/track", Some("kb"), "");
    get.method = Method::GET;
    let r = h.ingest.handle(get).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers[header::ALLOW], "POST, OPTIONS");
    // /v1/b is a batch alias some clients use.
    let body = format!("{{\"batch\":[{GOOD}]}}");
    let r = h.ingest.handle(post("/v1/b", Some("kb"), body)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn write_keys() {
    let h = harness();
    let r = h.ingest.handle(post("/v1/track", None, GOOD)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error(&r).starts_with("missing write key"));
    let r = h.ingest.handle(post("/v1/track", Some("nope"), GOOD)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error(&r).starts_with("unknown write key"));
    let mut bad = post("/v1/track", None, GOOD);
    bad.headers
        .insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
    let r = h.ingest.handle(bad).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error(&r).starts_with("malformed Authorization header"));
    // In the body, as some SDKs send it; never stored.
    let body = GOOD.replacen('{', r#"{"writeKey":"kb","#, 1);
    let r = h.ingest.handle(post("/v1/track", None, body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", error(&r));
    let batch = format!(
        r#"{{"writeKey":"kb","batch":[{}]}}"#,
        GOOD.replace("m-1", "m-2")
    );
    let r = h.ingest.handle(post("/v1/batch", None, batch)).await;
    assert_eq!(r.status, StatusCode::OK);
    let records = stored(&h.log);
    assert_eq!(records.len(), 2);
    for r in records {
        assert!(!String::from_utf8(r.json).unwrap().contains("writeKey"));
    }
}

#[tokio::test]
async fn malformed_json_names_the_position() {
    let h = harness();
    let r = h
        .ingest
        .handle(post("/v1/track", Some("kb"), "{\"event\":\n  \"x\",}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&r),
        "malformed JSON at line 2 column 7: key must be a string"
    );
    let r = h
        .ingest
        .handle(post("/v1/batch", Some("kb"), "{\"batch\": 3}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        error(&r).starts_with("a batch body is {\"batch\": [message, ...]}"),
        "{}",
        error(&r)
    );
    let r = h.ingest.handle(post("/v1/batch", Some("kb"), "[]")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .ingest
        .handle(post("/v1/track", Some("kb"), vec![b'{', 0xff, b'}']))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(error(&r).contains("not UTF-8"));
    let r = h.ingest.handle(post("/v1/track", Some("kb"), "[1]")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&r)["rejected"][0]["issues"][0]["message"],
        "a message must be a JSON object"
    );
}

#[tokio::test]
async fn gzip_bodies() {
    let h = harness();
    let body = gzip(format!("{{\"batch\":[{GOOD}]}}").as_bytes());
    let mut req = post("/v1/batch", Some("kb"), body);
    req.headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", error(&r));
    assert_eq!(json(&r)["accepted"], 1);
    let mut req = post("/v1/track", Some("kb"), "not gzip");
    req.headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(error(&r).contains("does not decompress"));
    let mut req = post("/v1/track", Some("kb"), GOOD);
    req.headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A gzip bomb stops at the limit.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    let mut req = post("/v1/batch", Some("kb"), bomb);
    req.headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        error(&r).contains("the limit is 512000 (500 KB) for a batch"),
        "{}",
        error(&r)
    );
}

#[tokio::test]
async fn size_limits_are_named() {
    let h = harness();
    let big = format!(
        r#"{{"event":"Order Completed","userId":"u","properties":{{"order_id":"{}"}}}}"#,
        "x".repeat(40_000)
    );
    let r = h
        .ingest
        .handle(post("/v1/track", Some("kb"), big.clone()))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        error(&r).contains("the limit is 32768 (32 KB) for one message"),
        "{}",
        error(&r)
    );
    // In a batch, an oversized message is rejected alone.
    let batch = format!(
        r#"{{"batch":[{GOOD},{}]}}"#,
        big.replacen('{', r#"{"type":"track","#, 1)
    );
    let r = h.ingest.handle(post("/v1/batch", Some("kb"), batch)).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = json(&r);
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["index"], 1);
    let message = body["rejected"][0]["issues"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("the limit is 32768"), "{message}");
    let huge = format!(r#"{{"batch":[{}]}}"#, vec![GOOD; 5000].join(","));
    let r = h.ingest.handle(post("/v1/batch", Some("kb"), huge)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let many = format!(r#"{{"batch":[{}]}}"#, vec!["{}"; 2501].join(","));
    let r = h.ingest.handle(post("/v1/batch", Some("kb"), many)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error(&r),
        "the batch has 2501 messages; the limit is 2500 per batch"
    );
}

#[tokio::test]
async fn policies_reject_quarantine_and_allow() {
    let h = harness();
    let bad =
        r#"{"type":"track","event":"Order Completed","userId":"u1","properties":{"revenue":-1}}"#;
    let undeclared = r#"{"type":"track","event":"Nope","userId":"u1"}"#;
    let batch = format!(r#"{{"batch":[{GOOD},{bad},{undeclared}]}}"#);
    // Server source: reject both; the good one is accepted.
    let r = h
        .ingest
        .handle(post("/v1/batch", Some("kb"), batch.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = json(&r);
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(
        body["rejected"][0]["issues"][0]["path"],
        serde_json::json!(["properties", "order_id"])
    );
    assert_eq!(
        body["rejected"][1]["issues"][0]["message"],
        "event `Nope` is not declared in uniflow.kdl"
    );
    // Every message rejected: 400.
    let only_bad = format!(r#"{{"batch":[{bad}]}}"#);
    let r = h
        .ingest
        .handle(post("/v1/batch", Some("kb"), only_bad))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&r)["success"], false);
    let r = h.ingest.handle(post("/v1/track", Some("kb"), bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Browser source: quarantined and kept with its issues; undeclared allowed.
    let r = h
        .ingest
        .handle(post("/v1/batch", Some("kw"), batch.replace("m-1", "m-w")))
        .await;
    let body = json(&r);
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(body["quarantined"][0]["index"], 1);
    // Mobile source: allowed, issues attached.
    let r = h
        .ingest
        .handle(post("/v1/batch", Some("ka"), batch.replace("m-1", "m-a")))
        .await;
    assert_eq!(json(&r)["accepted"], 3);
    let records = stored(&h.log);
    let quarantined: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Quarantined)
        .collect();
    assert_eq!(quarantined.len(), 1);
    let doc: serde_json::Value = serde_json::from_slice(&quarantined[0].json).unwrap();
    assert_eq!(doc["sourceId"], "web");
    assert_eq!(doc["issues"][0]["code"], "invalid_type");
    assert_eq!(doc["message"]["properties"]["revenue"], -1);
    let allowed: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r.source == "app")
        .map(|r| serde_json::from_slice(&r.json).unwrap())
        .collect();
    assert_eq!(allowed.len(), 3);
    let with_issues = allowed
        .iter()
        .filter(|e| e.get("schemaIssues").is_some())
        .count();
    assert_eq!(with_issues, 2);
}

#[tokio::test]
async fn duplicates_within_the_window_are_stored_once() {
    let h = harness();
    for _ in 0..3 {
        let r = h.ingest.handle(post("/v1/track", Some("kb"), GOOD)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let body = format!(r#"{{"batch":[{GOOD}]}}"#);
    let r = h.ingest.handle(post("/v1/batch", Some("kb"), body)).await;
    assert_eq!(json(&r)["duplicates"], 1);
    assert_eq!(stored(&h.log).len(), 1);
    // The same id from another source is another message.
    let r = h.ingest.handle(post("/v1/track", Some("ka"), GOOD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stored(&h.log).len(), 2);
}

#[tokio::test]
async fn browser_origins_and_cors() {
    let h = harness();
    let mut req = post("/v1/track", Some("kw"), GOOD);
    req.headers.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://evil.example"),
    );
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(error(&r).contains("add it to its allow-origin"));
    assert!(!r.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let mut req = post("/v1/track", Some("kw"), GOOD);
    req.headers.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://shop.example"),
    );
    let r = h.ingest.handle(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
    let mut preflight = post("/v1/batch", None, "");
    preflight.method = Method::OPTIONS;
    preflight.headers.insert(
        header::ORIGIN,
        HeaderValue::from_static("https://shop.example"),
    );
    let r = h.ingest.handle(preflight).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
    let allowed = r.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = harness_with(log.clone(), dir, log, RateLimit::new(1, 2));
    let mut replies = Vec::new();
    for i in 0..3 {
        let body = GOOD.replace("m-1", &format!("m-{i}"));
        replies.push(h.ingest.handle(post("/v1/track", Some("kb"), body)).await);
    }
    assert_eq!(replies[1].status, StatusCode::OK);
    let r = &replies[2];
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert!(error(r).contains("rate limit of source `backend`"));
}

/// A sink that fails on demand.
#[derive(Debug, Clone)]
struct Failing(Arc<AtomicBool>, Log);

impl EventSink for Failing {
    async fn append(&self, records: Vec<Record>) -> Result<(), BackendError> {
        if self.0.load(Ordering::Relaxed) {
            return Err(BackendError("disk full".into()));
        }
        self.1.append(records).await
    }
}

#[tokio::test]
async fn a_failed_write_answers_503_and_the_retry_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let sink = Failing(failing.clone(), log.clone());
    let h = harness_with(sink, dir, log, RateLimit::new(100, 100));
    let r = h.ingest.handle(post("/v1/track", Some("kb"), GOOD)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(error(&r).contains("disk full"));
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    failing.store(false, Ordering::Relaxed);
    // The retry is not taken for a duplicate of the failed attempt.
    let r = h.ingest.handle(post("/v1/track", Some("kb"), GOOD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(json(&r), serde_json::json!({ "success": true }));
    assert_eq!(stored(&h.log).len(), 1);
}

/// Bounded fuzz of the request parser: mutated bodies on every route never
/// panic and get one of the documented statuses with a JSON body.
/// `FUZZ_ROUNDS` runs it longer.
#[tokio::test]
async fn garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let h = harness_with(log.clone(), dir, log, RateLimit::new(u32::MAX, u32::MAX));
    let rounds: usize = std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seeds = [
        GOOD.to_owned(),
        format!(
            r#"{{"batch":[{GOOD},{{"type":"identify","userId":"u","traits":{{"email":"a@b.co"}}}}],"sentAt":"2026-01-01T00:00:00Z"}}"#
        ),
        r#"{"type":"page","name":"Home","anonymousId":"a","context":{"ip":null},"timestamp":"2026-13-01"}"#.to_owned(),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let routes = [
        "/v1/track",
        "/v1/batch",
        "/v1/identify",
        "/v1/b",
        "/v1/alias",
    ];
    let alphabet = b"{}[]\",:\\0e-";
    for _ in 0..rounds {
        let mut body = seeds[(rand() % 3) as usize].clone().into_bytes();
        for _ in 0..(rand() % 4 + 1) {
            let at = (rand() as usize) % (body.len() + 1);
            match rand() % 4 {
                0 => body.truncate(at),
                1 if at < body.len() => body[at] = (rand() % 256) as u8,
                2 => body.insert(at, alphabet[(rand() % 11) as usize]),
                _ => {
                    let copy = body[..at].to_vec();
                    body.extend_from_slice(&copy);
                }
            }
        }
        let route = routes[(rand() % 5) as usize];
        let r = h.ingest.handle(post(route, Some("kb"), body)).await;
        assert!(
            [200, 400, 413].contains(&r.status.as_u16()),
            "{route}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
    }
}
