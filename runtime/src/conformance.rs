//! The behaviour suite every backend must pass: the same requests through
//! the same handler, checked by reading back what the backend stored. The
//! embedded backend runs it on local disk, the AWS backend against moto
//! (Kinesis, S3, DynamoDB). Test support, compiled into the library so both
//! crates' tests can call it.

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use uniflow_schemas::Bundle;

use crate::backend::{Dedupe, EventSink, SystemClock};
use crate::ingest::{Ingest, Limits, RateLimit, Request};
use crate::record::RecordKind;

/// The project the suite sends to (compile it with the compiler and pass
/// the bundle to [`run`]).
pub const PROJECT: &str = r#"
project "conformance" { region "eu-west-1" }
source "backend" kind="server" {
    on-violation "reject"
    dedupe-window "1h"
}
source "web" kind="browser" {
    allow-origin "https://shop.example"
    on-violation "quarantine"
}
event "Order Completed" {
    property "order_id" type="string" required=#true
    property "revenue" type="number" min=0
}
destination "hook" kind="webhook" { url "https://example.com/hook" }
"#;

/// A record as read back from a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Accepted or quarantined.
    pub kind: RecordKind,
    /// The message id.
    pub message_id: String,
    /// The partition key, where the backend keeps one.
    pub partition_key: Option<String>,
    /// The stored document.
    pub json: serde_json::Value,
}

/// A backend under test.
pub trait Backend {
    /// Where events go.
    type Sink: EventSink;
    /// Where seen ids go.
    type Dedupe: Dedupe;
    /// A sink and dedupe store with nothing in them.
    fn fresh(&self) -> impl Future<Output = (Self::Sink, Self::Dedupe)>;
    /// Everything stored since the last `fresh`.
    fn stored(&self) -> impl Future<Output = Vec<Stored>>;
}

fn request(key: &str, path: &str, body: String) -> Request {
    let mut headers = HeaderMap::new();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    if let Ok(v) = HeaderValue::from_str(&format!("Basic {auth}")) {
        headers.insert(header::AUTHORIZATION, v);
    }
    Request {
        method: Method::POST,
        path: path.to_owned(),
        headers,
        body: Bytes::from(body),
        peer: "198.51.100.4".parse().ok(),
    }
}

fn order(id: &str, anonymous: &str) -> String {
    format!(
        r#"{{"type":"track","event":"Order Completed","messageId":"{id}","anonymousId":"{anonymous}","userId":"u-{anonymous}","properties":{{"order_id":"o-{id}","revenue":10}}}}"#
    )
}

/// Runs every case; panics with a message naming the case that failed.
pub async fn run<B: Backend>(backend: &B, bundle: &Bundle) {
    let keys: BTreeMap<String, String> = [("backend", "k-backend"), ("web", "k-web")]
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect();
    let ingest = |sink, dedupe| {
        Ingest::new(
            bundle,
            &keys,
            Limits::default(),
            RateLimit::new(1_000_000, 1_000_000),
            sink,
            dedupe,
            SystemClock,
        )
    };

    // 1. Accepted events are stored enriched, with their partition key.
    let (sink, dedupe) = backend.fresh().await;
    let h = ingest(sink, dedupe);
    let body = format!(
        r#"{{"batch":[{},{}]}}"#,
        order("c-1", "a-1"),
        order("c-2", "a-2")
    );
    let r = h.handle(request("k-backend", "/v1/batch", body)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "accepted: {}",
        String::from_utf8_lossy(&r.body)
    );
    let mut stored = backend.stored().await;
    stored.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    assert_eq!(stored.len(), 2, "accepted: {stored:?}");
    assert_eq!(stored[0].kind, RecordKind::Accepted);
    assert_eq!(stored[0].message_id, "c-1");
    if let Some(key) = &stored[0].partition_key {
        assert_eq!(key, "a-1", "partition by anonymous id");
    }
    let event = &stored[0].json;
    assert_eq!(event["sourceId"], "backend", "enriched: {event}");
    assert_eq!(event["context"]["ip"], "198.51.100.4", "enriched: {event}");
    assert!(event["receivedAt"].is_string(), "enriched: {event}");
    assert_eq!(event["properties"]["order_id"], "o-c-1");

    // 2. Quarantined events are kept with their issues, apart.
    let (sink, dedupe) = backend.fresh().await;
    let h = ingest(sink, dedupe);
    let bad = r#"{"type":"track","event":"Order Completed","messageId":"q-1","anonymousId":"a","properties":{"revenue":-5}}"#;
    let body = format!(r#"{{"batch":[{bad},{}]}}"#, order("q-2", "a"));
    let r = h.handle(request("k-web", "/v1/batch", body)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "quarantine: {}",
        String::from_utf8_lossy(&r.body)
    );
    let stored = backend.stored().await;
    let quarantined: Vec<&Stored> = stored
        .iter()
        .filter(|s| s.kind == RecordKind::Quarantined)
        .collect();
    assert_eq!(quarantined.len(), 1, "quarantine: {stored:?}");
    assert_eq!(quarantined[0].message_id, "q-1");
    assert_eq!(quarantined[0].json["issues"][0]["path"][1], "order_id");
    assert_eq!(quarantined[0].json["message"]["properties"]["revenue"], -5);
    assert_eq!(
        stored
            .iter()
            .filter(|s| s.kind == RecordKind::Accepted)
            .count(),
        1
    );

    // 3. A message id seen within the window is stored once.
    let (sink, dedupe) = backend.fresh().await;
    let h = ingest(sink, dedupe);
    for _ in 0..3 {
        let r = h
            .handle(request("k-backend", "/v1/track", order("d-1", "a")))
            .await;
        assert_eq!(r.status, StatusCode::OK, "dedupe");
    }
    assert_eq!(backend.stored().await.len(), 1, "dedupe");

    // 4. A full batch (more records than one Kinesis call takes) is stored whole.
    let (sink, dedupe) = backend.fresh().await;
    let h = ingest(sink, dedupe);
    let events: Vec<String> = (0..700)
        .map(|i| order(&format!("b-{i:04}"), &format!("a-{}", i % 13)))
        .collect();
    let body = format!(r#"{{"batch":[{}]}}"#, events.join(","));
    let r = h.handle(request("k-backend", "/v1/batch", body)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "large batch: {}",
        String::from_utf8_lossy(&r.body)
    );
    let mut ids: Vec<String> = backend
        .stored()
        .await
        .into_iter()
        .map(|s| s.message_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 700, "large batch");
}
