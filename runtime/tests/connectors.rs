//! The compliance suite every connector passes, then what is particular to
//! each. A connector joins the suite by implementing [`Rig`]: build the
//! connector against a destination that accepts, refuses for now or
//! refuses for good, and report what that destination received.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uniflow_runtime::connectors::{
    self, BoxFuture, ConnectorError, Invoke, LocalObjects, LocalSecrets, ObjectStore, Secrets,
    ServiceError, Services,
};
use uniflow_runtime::delivery::{Connector, Outcome, Outgoing};
use uniflow_schemas::bundle::{
    BatchPolicy, ConnectorSettings, DestinationInfo, HeaderSource, RetryPolicy, SecretRef,
};
use uniflow_testkit::{Answer, FakeLambda, Receiver, Reply, Script, Step, verify_signature};

// ---------------------------------------------------------------------------
// The suite

/// How the destination under test behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Takes everything.
    Accepts,
    /// Refuses in a way worth retrying (503, throttling, a disk hiccup).
    Unavailable,
    /// Refuses in a way no retry can fix (400, a function that throws).
    Refuses,
}

/// One delivery as the destination saw it.
#[derive(Debug, Clone, PartialEq)]
struct Delivery {
    /// What the destination can deduplicate by (Idempotency-Key, object
    /// key, the message ids).
    key: String,
    /// The message ids it carried, in order.
    ids: Vec<String>,
    /// The payloads it carried, in order.
    payloads: Vec<Value>,
}

/// A connector under test and its destination.
trait Rig {
    /// A connector to a fresh destination behaving as `mode`, batching up
    /// to `max_events`.
    async fn connector(&mut self, mode: Mode, max_events: u32) -> Box<dyn Connector>;
    /// What that destination received, one entry per request.
    fn deliveries(&self) -> Vec<Delivery>;
}

fn payload(id: &str, extra: Value) -> Outgoing {
    let mut event = json!({
        "messageId": id,
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "receivedAt": "2026-01-02T03:04:05.678Z",
        "properties": { "revenue": 9.5 },
    });
    event["properties"]["extra"] = extra;
    Outgoing {
        id: id.to_owned(),
        payload: Bytes::from(event.to_string()),
    }
}

fn batch(n: usize) -> Vec<Outgoing> {
    (0..n)
        .map(|i| payload(&format!("m{i}"), json!(i)))
        .collect()
}

fn parsed(batch: &[Outgoing]) -> Vec<Value> {
    batch
        .iter()
        .map(|o| serde_json::from_slice(&o.payload).unwrap())
        .collect()
}

fn ids(batch: &[Outgoing]) -> Vec<String> {
    batch.iter().map(|o| o.id.clone()).collect()
}

fn is_retry(o: &Outcome) -> bool {
    matches!(o, Outcome::Retry { .. })
}

fn is_failed(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed { .. })
}

/// Everything every connector must do.
async fn compliance(rig: &mut impl Rig) {
    // Success: one outcome per payload, in order; the destination has them.
    for max in [1, 3] {
        let connector = rig.connector(Mode::Accepts, max).await;
        let sent = batch(max as usize);
        let outcomes = connector.deliver(&sent).await;
        assert_eq!(outcomes, vec![Outcome::Delivered; sent.len()], "max {max}");
        let got = rig.deliveries();
        assert_eq!(got.len(), 1, "one request for the batch: {got:?}");
        assert_eq!(got[0].ids, ids(&sent));
        assert_eq!(got[0].payloads, parsed(&sent));
    }

    // A failure worth retrying retries every payload.
    let connector = rig.connector(Mode::Unavailable, 3).await;
    let outcomes = connector.deliver(&batch(3)).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(is_retry), "{outcomes:?}");

    // A permanent failure fails every payload, with a reason.
    let connector = rig.connector(Mode::Refuses, 3).await;
    let outcomes = connector.deliver(&batch(3)).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(is_failed), "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Failed { reason } if !reason.is_empty()))
    );

    // The same batch twice: the destination can tell it is the same.
    let connector = rig.connector(Mode::Accepts, 4).await;
    let sent = batch(4);
    assert_eq!(connector.deliver(&sent).await, vec![Outcome::Delivered; 4]);
    assert_eq!(connector.deliver(&sent).await, vec![Outcome::Delivered; 4]);
    let got = rig.deliveries();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1], "a resent batch is recognisable");

    // A full batch goes as one delivery.
    let connector = rig.connector(Mode::Accepts, 50).await;
    let sent = batch(50);
    assert_eq!(connector.deliver(&sent).await, vec![Outcome::Delivered; 50]);
    let got = rig.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ids, ids(&sent));

    // Unicode and a large payload arrive intact.
    let connector = rig.connector(Mode::Accepts, 2).await;
    let sent = vec![
        payload("uni", json!("héllo 🌍 中文 \"quoted\" \\ \u{7f} \t")),
        payload("large", json!("x".repeat(1 << 20))),
    ];
    assert_eq!(connector.deliver(&sent).await, vec![Outcome::Delivered; 2]);
    let got = rig.deliveries();
    assert_eq!(got[0].payloads, parsed(&sent));
}

// ---------------------------------------------------------------------------
// Destinations

fn destination(connector: ConnectorSettings, max_events: u32) -> DestinationInfo {
    DestinationInfo {
        kind: match connector {
            ConnectorSettings::Webhook { .. } => "webhook",
            ConnectorSettings::S3Export { .. } => "s3-export",
            ConnectorSettings::Lambda { .. } => "lambda",
        }
        .to_owned(),
        events: None,
        types: None,
        filter: None,
        condition: None,
        transforms: Vec::new(),
        template: None,
        connector,
        retry: RetryPolicy {
            attempts: 5,
            exponential: true,
            delay_ms: 100,
            max_age_secs: 3600,
        },
        batch: BatchPolicy {
            max_events,
            max_bytes: 8 << 20,
            max_wait_secs: 1,
        },
    }
}

fn webhook(url: &str, timeout_secs: u64, secret: Option<&str>) -> ConnectorSettings {
    ConnectorSettings::Webhook {
        url: url.to_owned(),
        headers: Vec::new(),
        timeout_secs,
        secret: secret.map(|s| SecretRef(s.to_owned())),
    }
}

/// Services over a secrets file holding `secrets`, objects in `dir`.
fn services(dir: &Path, secrets: Value, invoke: Option<Arc<dyn Invoke>>) -> Services {
    let file = dir.join("secrets.json");
    std::fs::write(&file, secrets.to_string()).unwrap();
    Services {
        secrets: Arc::new(LocalSecrets::new(file)),
        objects: Arc::new(LocalObjects::new(dir.join("objects"))),
        invoke,
    }
}

async fn build(destination: &DestinationInfo, services: &Services) -> Box<dyn Connector> {
    connectors::build("test", destination, services)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// webhook

struct WebhookRig {
    dir: tempfile::TempDir,
    receiver: Option<Receiver>,
}

impl Rig for WebhookRig {
    async fn connector(&mut self, mode: Mode, max_events: u32) -> Box<dyn Connector> {
        let script = match mode {
            Mode::Accepts => Script::ok(),
            Mode::Unavailable => Script::always(Reply::status(503).body("maintenance")),
            Mode::Refuses => Script::always(Reply::status(400).body("no such field")),
        };
        let receiver = Receiver::start(script).await.unwrap();
        let settings = webhook(&receiver.url(), 5, None);
        self.receiver = Some(receiver);
        let services = services(self.dir.path(), json!({}), None);
        build(&destination(settings, max_events), &services).await
    }

    fn deliveries(&self) -> Vec<Delivery> {
        let Some(receiver) = &self.receiver else {
            return Vec::new();
        };
        receiver
            .requests()
            .into_iter()
            .map(|r| Delivery {
                key: r.header("idempotency-key").unwrap_or_default().to_owned(),
                ids: r.message_ids(),
                payloads: r.payloads(),
            })
            .collect()
    }
}

#[tokio::test]
async fn webhook_passes_the_compliance_suite() {
    compliance(&mut WebhookRig {
        dir: tempfile::tempdir().unwrap(),
        receiver: None,
    })
    .await;
}

/// A webhook connector to `receiver` with the given timeout, batch size,
/// secrets file contents, headers and signing secret.
async fn webhook_to(
    receiver: &Receiver,
    timeout_secs: u64,
    max_events: u32,
    headers: Vec<(String, HeaderSource)>,
    secret: Option<&str>,
) -> Box<dyn Connector> {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = webhook(&receiver.url(), timeout_secs, secret);
    if let ConnectorSettings::Webhook { headers: h, .. } = &mut settings {
        *h = headers;
    }
    let services = services(
        dir.path(),
        json!({"ssm:/acme/hook-secret": "whsec_test", "secretsmanager:acme/token": "t0k3n"}),
        None,
    );
    build(&destination(settings, max_events), &services).await
}

#[tokio::test]
async fn webhook_requests_are_signed_and_carry_the_headers() {
    let receiver = Receiver::start(Script::ok()).await.unwrap();
    let headers = vec![
        (
            "X-Api-Key".to_owned(),
            HeaderSource::Secret(SecretRef("secretsmanager:acme/token".to_owned())),
        ),
        (
            "X-Team".to_owned(),
            HeaderSource::Value("growth".to_owned()),
        ),
    ];
    let connector = webhook_to(&receiver, 5, 1, headers, Some("ssm:/acme/hook-secret")).await;
    let sent = batch(1);
    assert_eq!(connector.deliver(&sent).await, [Outcome::Delivered]);
    let request = &receiver.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(&request.body, &sent[0].payload, "one payload is the body");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("uniflow/")
    );
    assert_eq!(request.header("x-api-key"), Some("t0k3n"));
    assert_eq!(request.header("x-team"), Some("growth"));
    assert_eq!(request.header("idempotency-key"), Some("m0"));
    assert!(verify_signature(
        b"whsec_test",
        &request.headers,
        &request.body
    ));
    assert!(!verify_signature(
        b"another",
        &request.headers,
        &request.body
    ));
    assert!(!verify_signature(
        b"whsec_test",
        &request.headers,
        b"{\"tampered\":1}"
    ));
}

#[tokio::test]
async fn webhook_batches_are_wrapped_and_keyed_by_their_ids() {
    let receiver = Receiver::start(Script::ok()).await.unwrap();
    let connector = webhook_to(&receiver, 5, 10, Vec::new(), Some("ssm:/acme/hook-secret")).await;
    let sent = batch(3);
    assert_eq!(connector.deliver(&sent).await, vec![Outcome::Delivered; 3]);
    let request = &receiver.requests()[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["batch"], Value::Array(parsed(&sent)));
    let sent_at = body["sentAt"].as_str().unwrap();
    assert!(
        uniflow_runtime::time::parse_ms(sent_at).is_some(),
        "{sent_at}"
    );
    let digest = Sha256::digest(b"m0\nm1\nm2");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        request.header("idempotency-key").unwrap(),
        format!("batch-{}", &hex[..32])
    );
    assert!(verify_signature(
        b"whsec_test",
        &request.headers,
        &request.body
    ));
}

#[tokio::test]
async fn webhook_retries_500_then_delivers_once() {
    let script = Script::steps(vec![Step::times(2, Reply::status(500))], Reply::ok());
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 5, 1, Vec::new(), None).await;
    let sent = batch(1);
    for _ in 0..2 {
        let outcome = connector.deliver(&sent).await;
        assert!(
            matches!(&outcome[0], Outcome::Retry { reason, after: None } if reason.starts_with("HTTP 500")),
            "{outcome:?}"
        );
    }
    assert_eq!(connector.deliver(&sent).await, [Outcome::Delivered]);
    assert_eq!(receiver.delivered().get("m0"), Some(&1));
    let keys = receiver.idempotency_keys();
    assert_eq!(
        keys["m0"],
        BTreeSet::from(["m0".to_owned()]),
        "one key per message"
    );
}

#[tokio::test]
async fn webhook_400_fails_with_the_body_in_the_reason() {
    let receiver = Receiver::start(Script::always(
        Reply::status(400).body("{\"error\":\"email is required\"}"),
    ))
    .await
    .unwrap();
    let connector = webhook_to(&receiver, 5, 1, Vec::new(), None).await;
    let outcome = connector.deliver(&batch(1)).await;
    assert_eq!(
        outcome,
        [Outcome::Failed {
            reason: "HTTP 400: {\"error\":\"email is required\"}".to_owned()
        }]
    );
}

#[tokio::test]
async fn webhook_honours_retry_after_in_seconds() {
    let script = Script::steps(
        vec![Step::times(
            1,
            Reply::status(429).header("Retry-After", "7"),
        )],
        Reply::ok(),
    );
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 5, 1, Vec::new(), None).await;
    let outcome = connector.deliver(&batch(1)).await;
    assert!(
        matches!(&outcome[0], Outcome::Retry { after: Some(after), .. } if *after == Duration::from_secs(7)),
        "{outcome:?}"
    );
    assert_eq!(connector.deliver(&batch(1)).await, [Outcome::Delivered]);
}

#[tokio::test]
async fn webhook_honours_retry_after_as_a_date() {
    let at = SystemTime::now() + Duration::from_secs(120);
    let date = httpdate::fmt_http_date(at);
    let script = Script::steps(
        vec![Step::times(
            1,
            Reply::status(503).header("Retry-After", &date),
        )],
        Reply::ok(),
    );
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 5, 1, Vec::new(), None).await;
    let outcome = connector.deliver(&batch(1)).await;
    let Outcome::Retry {
        after: Some(after), ..
    } = &outcome[0]
    else {
        panic!("expected a retry with a delay, got {outcome:?}");
    };
    // An HTTP-date has whole seconds: the delay is what is left of the 120.
    assert!(
        (Duration::from_secs(100)..=Duration::from_secs(120)).contains(after),
        "{after:?}"
    );
}

#[tokio::test]
async fn webhook_timeout_retries() {
    let script = Script::steps(
        vec![Step::times(1, Reply::ok().delay(Duration::from_secs(4)))],
        Reply::ok(),
    );
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 1, 1, Vec::new(), None).await;
    let outcome = connector.deliver(&batch(1)).await;
    assert!(
        matches!(&outcome[0], Outcome::Retry { reason, .. } if reason.contains("within 1s")),
        "{outcome:?}"
    );
    assert_eq!(connector.deliver(&batch(1)).await, [Outcome::Delivered]);
}

#[tokio::test]
async fn webhook_down_retries_then_delivers_on_the_same_port() {
    let script = Script::steps(vec![Step::Down(Duration::from_millis(800))], Reply::ok());
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 2, 1, Vec::new(), None).await;
    let outcome = connector.deliver(&batch(1)).await;
    assert!(
        matches!(&outcome[0], Outcome::Retry { reason, .. } if reason.contains("cannot connect")),
        "{outcome:?}"
    );
    let mut delivered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match connector.deliver(&batch(1)).await.remove(0) {
            Outcome::Delivered => {
                delivered = true;
                break;
            }
            Outcome::Retry { .. } => {}
            other => panic!("a receiver coming back is not a permanent failure: {other:?}"),
        }
    }
    assert!(delivered, "the receiver came back");
    assert_eq!(receiver.delivered().get("m0"), Some(&1));
}

#[tokio::test]
async fn webhook_goes_down_mid_script_and_comes_back() {
    let script = Script::steps(
        vec![
            Step::times(1, Reply::ok()),
            Step::Down(Duration::from_millis(500)),
        ],
        Reply::ok(),
    );
    let receiver = Receiver::start(script).await.unwrap();
    let connector = webhook_to(&receiver, 2, 1, Vec::new(), None).await;
    assert_eq!(connector.deliver(&batch(1)).await, [Outcome::Delivered]);
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        let outcome = connector.deliver(&batch(1)).await.remove(0);
        let done = outcome == Outcome::Delivered;
        outcomes.push(outcome);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(outcomes.iter().any(is_retry), "it went down: {outcomes:?}");
    assert_eq!(outcomes.last(), Some(&Outcome::Delivered), "and came back");
    assert_eq!(receiver.delivered().get("m0"), Some(&2));
}

#[tokio::test]
async fn webhook_settings_errors_are_specific() {
    let dir = tempfile::tempdir().unwrap();
    let services = services(dir.path(), json!({}), None);
    let check = |settings: ConnectorSettings| {
        let services = services.clone();
        async move {
            connectors::build("crm", &destination(settings, 1), &services)
                .await
                .map(|_| ())
                .unwrap_err()
        }
    };
    let err = check(webhook("ftp://x/", 5, None)).await;
    assert!(
        err.to_string().contains("not an http:// or https:// URL"),
        "{err}"
    );
    let err = check(webhook("http://127.0.0.1:9/", 5, Some("ssm:/missing"))).await;
    assert!(
        matches!(&err, ConnectorError::Secret { reference, .. } if reference == "ssm:/missing"),
        "{err}"
    );
    let mut reserved = webhook("http://127.0.0.1:9/", 5, None);
    if let ConnectorSettings::Webhook { headers, .. } = &mut reserved {
        headers.push((
            "Idempotency-Key".to_owned(),
            HeaderSource::Value("x".to_owned()),
        ));
    }
    let err = check(reserved).await;
    assert!(
        err.to_string().contains("set by the webhook connector"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// s3-export

/// An object store recording every put, failing on demand.
struct Store {
    inner: LocalObjects,
    fail: Option<bool>,
    puts: Mutex<Vec<(String, String, Bytes, String)>>,
}

impl ObjectStore for Store {
    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            if let Some(retryable) = self.fail {
                return Err(ServiceError {
                    message: if retryable {
                        "SlowDown".to_owned()
                    } else {
                        "AccessDenied".to_owned()
                    },
                    retryable,
                });
            }
            self.puts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((
                    bucket.to_owned(),
                    key.to_owned(),
                    body.clone(),
                    content_type.to_owned(),
                ));
            self.inner.put(bucket, key, body, content_type).await
        })
    }
}

struct S3Rig {
    dir: tempfile::TempDir,
    format: &'static str,
    store: Option<Arc<Store>>,
    /// The directory of the current destination's objects.
    root: std::path::PathBuf,
}

impl S3Rig {
    fn new(format: &'static str) -> S3Rig {
        S3Rig {
            dir: tempfile::tempdir().unwrap(),
            format,
            store: None,
            root: std::path::PathBuf::new(),
        }
    }
}

impl Rig for S3Rig {
    async fn connector(&mut self, mode: Mode, max_events: u32) -> Box<dyn Connector> {
        let root = self.dir.path().join(uuid_like());
        self.root = root.clone();
        let store = Arc::new(Store {
            inner: LocalObjects::new(&root),
            fail: match mode {
                Mode::Accepts => None,
                Mode::Unavailable => Some(true),
                Mode::Refuses => Some(false),
            },
            puts: Mutex::new(Vec::new()),
        });
        self.store = Some(Arc::clone(&store));
        let settings = ConnectorSettings::S3Export {
            bucket: "lake".to_owned(),
            prefix: "exports/".to_owned(),
            format: self.format.to_owned(),
        };
        let services = Services {
            objects: store,
            ..services(self.dir.path(), json!({}), None)
        };
        build(&destination(settings, max_events), &services).await
    }

    fn deliveries(&self) -> Vec<Delivery> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let puts = store.puts.lock().unwrap().clone();
        puts.into_iter()
            .map(|(_, key, body, _)| {
                let rows = if key.ends_with(".parquet") {
                    parquet_rows(&body)
                } else {
                    ndjson_rows(&body)
                };
                Delivery {
                    key,
                    ids: rows.iter().map(|(id, _)| id.clone()).collect(),
                    payloads: rows.into_iter().map(|(_, p)| p).collect(),
                }
            })
            .collect()
    }
}

/// A fresh directory name per destination.
fn uuid_like() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "store-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// The gunzipped lines, each with its `messageId`.
fn ndjson_rows(body: &[u8]) -> Vec<(String, Value)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.ends_with('\n'), "every line ends");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (v["messageId"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// The `messageId` and parsed `json` columns of a Parquet file.
fn parquet_rows(body: &Bytes) -> Vec<(String, Value)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let reader = SerializedFileReader::new(body.clone()).unwrap();
    let rows = reader.metadata().file_metadata().num_rows();
    let out: Vec<(String, Value)> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            let row = row.unwrap();
            let mut id = None;
            let mut json = None;
            for (name, field) in row.get_column_iter() {
                match (name.as_str(), field) {
                    ("messageId", Field::Str(s)) => id = Some(s.clone()),
                    ("json", Field::Str(s)) => json = Some(serde_json::from_str(s).unwrap()),
                    _ => {}
                }
            }
            (id.unwrap(), json.unwrap())
        })
        .collect();
    assert_eq!(out.len() as i64, rows, "the row count in the footer");
    out
}

#[tokio::test]
async fn s3_export_ndjson_passes_the_compliance_suite() {
    compliance(&mut S3Rig::new("ndjson")).await;
}

#[tokio::test]
async fn s3_export_parquet_passes_the_compliance_suite() {
    compliance(&mut S3Rig::new("parquet")).await;
}

#[tokio::test]
async fn s3_export_writes_one_object_per_batch_under_a_dated_key() {
    let mut rig = S3Rig::new("ndjson");
    let connector = rig.connector(Mode::Accepts, 10).await;
    let sent = batch(3);
    connector.deliver(&sent).await;
    connector.deliver(&sent).await;
    let puts = rig.store.as_ref().unwrap().puts.lock().unwrap().clone();
    let digest = Sha256::digest(b"m0\nm1\nm2");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("exports/dt=2026-01-02/hour=03/{}.ndjson.gz", &hex[..32]);
    assert_eq!(puts[0].1, key);
    assert_eq!(puts[0].3, "application/gzip");
    // On disk: the one object, rewritten.
    let root = rig.root.join("lake");
    let folder = root.join("exports/dt=2026-01-02/hour=03");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("{}.ndjson.gz", &hex[..32])]);
    // The gunzipped lines are the payloads, byte for byte.
    let body = std::fs::read(folder.join(&files[0])).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let expected: Vec<String> = sent
        .iter()
        .map(|o| String::from_utf8(o.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn s3_export_parquet_reads_back_with_the_parquet_reader() {
    let mut rig = S3Rig::new("parquet");
    let connector = rig.connector(Mode::Accepts, 10).await;
    let sent = batch(7);
    connector.deliver(&sent).await;
    let dir = rig.root.join("lake/exports/dt=2026-01-02/hour=03");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(file.extension().unwrap(), "parquet");
    let rows = parquet_rows(&Bytes::from(std::fs::read(&file).unwrap()));
    assert_eq!(rows.len(), 7);
    let got: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got, ids(&sent));
    assert_eq!(
        rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        parsed(&sent)
    );
}

#[tokio::test]
async fn s3_export_refuses_an_unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ConnectorSettings::S3Export {
        bucket: "lake".to_owned(),
        prefix: String::new(),
        format: "csv".to_owned(),
    };
    let err = connectors::build(
        "lake",
        &destination(settings, 1),
        &services(dir.path(), json!({}), None),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert!(
        err.to_string().contains("`csv` is not an export format"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// lambda

/// `Invoke` over HTTP to a [`FakeLambda`], mapped the way the AWS one is:
/// a function error is not retryable, throttling and 5xx are.
struct FakeInvoke(Arc<FakeLambda>);

impl Invoke for FakeInvoke {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ServiceError>> {
        Box::pin(async move {
            let answer =
                self.0
                    .invoke(function, payload)
                    .await
                    .map_err(|message| ServiceError {
                        message,
                        retryable: true,
                    })?;
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            if let Some(kind) = answer.function_error {
                return Err(ServiceError {
                    message: format!("the function failed ({kind}): {text}"),
                    retryable: false,
                });
            }
            match answer.status {
                200 => Ok(answer.body),
                status => Err(ServiceError {
                    message: format!(
                        "{}: {text}",
                        answer
                            .error_type
                            .unwrap_or_else(|| format!("HTTP {status}"))
                    ),
                    retryable: status == 429 || status >= 500,
                }),
            }
        })
    }
}

/// Answers every message of the batch `ok`.
fn all_ok(event: &Value) -> Answer {
    let results: Vec<Value> = event["messageIds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|id| json!({"messageId": id, "status": "ok"}))
        .collect();
    Answer::Return(json!({ "results": results }))
}

fn fake_function(name: &str, event: Value) -> Answer {
    match name {
        "throttled" => Answer::Service {
            status: 429,
            error_type: "TooManyRequestsException".to_owned(),
            message: "Rate exceeded".to_owned(),
        },
        "throws" => Answer::Throw {
            error_type: "TypeError".to_owned(),
            message: "Cannot read properties of undefined".to_owned(),
        },
        "partial" => Answer::Return(json!({"results": [
            {"messageId": "m0", "status": "ok"},
            {"messageId": "m1", "status": "failed", "error": "invalid email"},
            {"messageId": "m2", "status": "retry", "error": "CRM busy"},
        ]})),
        "garbage" => Answer::Return(json!("done")),
        _ => all_ok(&event),
    }
}

struct LambdaRig {
    dir: tempfile::TempDir,
    fake: Arc<FakeLambda>,
    function: &'static str,
}

impl Rig for LambdaRig {
    async fn connector(&mut self, mode: Mode, max_events: u32) -> Box<dyn Connector> {
        // A fresh fake per destination, so its invocations are its own.
        self.fake = Arc::new(FakeLambda::start(fake_function).await.unwrap());
        self.function = match mode {
            Mode::Accepts => "crm-sync",
            Mode::Unavailable => "throttled",
            Mode::Refuses => "throws",
        };
        let settings = ConnectorSettings::Lambda {
            function: self.function.to_owned(),
        };
        let invoke: Arc<dyn Invoke> = Arc::new(FakeInvoke(Arc::clone(&self.fake)));
        let services = services(self.dir.path(), json!({}), Some(invoke));
        build(&destination(settings, max_events), &services).await
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.fake
            .invocations()
            .into_iter()
            .map(|call| {
                let ids: Vec<String> = call.payload["messageIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                Delivery {
                    key: ids.join("\n"),
                    ids,
                    payloads: call.payload["batch"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

async fn lambda_rig() -> LambdaRig {
    LambdaRig {
        dir: tempfile::tempdir().unwrap(),
        fake: Arc::new(FakeLambda::start(fake_function).await.unwrap()),
        function: "crm-sync",
    }
}

#[tokio::test]
async fn lambda_passes_the_compliance_suite() {
    compliance(&mut lambda_rig().await).await;
}

async fn lambda_connector(rig: &LambdaRig, function: &str) -> Box<dyn Connector> {
    let invoke: Arc<dyn Invoke> = Arc::new(FakeInvoke(Arc::clone(&rig.fake)));
    let settings = ConnectorSettings::Lambda {
        function: function.to_owned(),
    };
    build(
        &destination(settings, 10),
        &services(rig.dir.path(), json!({}), Some(invoke)),
    )
    .await
}

#[tokio::test]
async fn lambda_results_are_per_message() {
    let rig = lambda_rig().await;
    let connector = lambda_connector(&rig, "partial").await;
    let outcomes = connector.deliver(&batch(4)).await;
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(
        matches!(&outcomes[1], Outcome::Failed { reason } if reason.contains("invalid email")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], Outcome::Retry { reason, .. } if reason.contains("CRM busy")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[3], Outcome::Retry { reason, .. } if reason.contains("no result for message m3")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn lambda_answer_of_another_shape_retries_everything() {
    let rig = lambda_rig().await;
    let connector = lambda_connector(&rig, "garbage").await;
    let outcomes = connector.deliver(&batch(2)).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Retry { reason, .. } if reason.contains("is not"))),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn lambda_thrown_errors_fail_with_the_message() {
    let rig = lambda_rig().await;
    let connector = lambda_connector(&rig, "throws").await;
    let outcomes = connector.deliver(&batch(1)).await;
    assert!(
        matches!(&outcomes[0], Outcome::Failed { reason } if reason.contains("Cannot read properties")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn lambda_needs_aws() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ConnectorSettings::Lambda {
        function: "crm-sync".to_owned(),
    };
    let err = connectors::build(
        "crm",
        &destination(settings, 1),
        &services(dir.path(), json!({}), None),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::NeedsAws {
            destination: "crm".to_owned()
        }
    );
    assert!(err.to_string().contains("needs the AWS backend"), "{err}");
}

/// Secrets must resolve through the trait: a failing store is reported
/// with the reference, never a value.
#[tokio::test]
async fn secret_errors_name_the_reference() {
    struct Unreachable;
    impl Secrets for Unreachable {
        fn resolve<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, ServiceError>> {
            Box::pin(async {
                Err(ServiceError {
                    message: "SSM timed out".to_owned(),
                    retryable: true,
                })
            })
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let services = Services {
        secrets: Arc::new(Unreachable),
        ..services(dir.path(), json!({}), None)
    };
    let settings = webhook("http://127.0.0.1:9/", 5, Some("ssm:/acme/s"));
    let err = connectors::build("crm", &destination(settings, 1), &services)
        .await
        .map(|_| ())
        .unwrap_err();
    let ConnectorError::Secret { source, .. } = &err else {
        panic!("{err}");
    };
    assert!(source.retryable);
    assert_eq!(
        err.to_string(),
        "destination `crm`: cannot read the secret `ssm:/acme/s`: SSM timed out"
    );
}
