//! Deliveries end to end: a real `uniflow dev` delivering to scripted
//! webhook receivers on 127.0.0.1 (`uniflow-testkit`) through outages,
//! errors, throttling, timeouts and a SIGKILL, with signatures checked by
//! the kit's own verifier and every event accounted for.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Dev, api_get, post_batch, start_dev_in, status};
use uniflow_testkit::{Receiver, Reply, Script, Step, verify_signature};

/// How long a scenario may take before the test gives up (generous: the
/// machine may be busy; nothing is timed).
const PATIENCE: Duration = Duration::from_secs(120);

/// A project with one webhook destination per `(name, url, extra settings)`.
fn project(dir: &Path, destinations: &[(&str, String, &str)]) {
    let mut kdl = String::from(
        r#"project "deliveries" { region "eu-west-1" }
source "backend" kind="server"
event "Order Completed" {
    property "order_id" type="string" required=#true
    property "revenue" type="number"
}
event "Signed Up"
"#,
    );
    for (name, url, extra) in destinations {
        kdl.push_str(&format!(
            "destination \"{name}\" kind=\"webhook\" {{\n    url \"{url}\"\n    secret from=\"ssm:/deliveries/{name}\"\n    timeout \"1s\"\n    retry attempts=30 delay=\"100ms\" max-age=\"1h\"\n    {extra}\n}}\n"
        ));
    }
    std::fs::write(dir.join("uniflow.kdl"), kdl).unwrap();
}

fn key(data: &Path) -> String {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(data.join("sources.json")).unwrap()).unwrap();
    doc["sources"]["backend"]["write_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn secret(data: &Path, name: &str) -> Vec<u8> {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(data.join("secrets.json")).unwrap()).unwrap();
    doc[format!("ssm:/deliveries/{name}")]
        .as_str()
        .expect("uniflow dev keeps a value for each referenced secret")
        .as_bytes()
        .to_vec()
}

/// Sends `count` orders with ids `{prefix}{i}`; returns their ids.
fn send_orders(dev: &Dev, data: &Path, prefix: &str, count: usize) -> Vec<String> {
    let key = key(data);
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}{i:04}")).collect();
    for chunk in ids.chunks(50) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|id| {
                json!({"type": "track", "event": "Order Completed", "userId": "u1", "messageId": id,
                       "properties": {"order_id": id, "revenue": 10}})
            })
            .collect();
        let body = json!({ "batch": batch }).to_string();
        let answer = post_batch(dev.port, &key, &body).expect("ingest answers");
        assert_eq!(status(&answer), Some(200), "{answer}");
    }
    ids
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every id delivered at least once, and nothing else.
fn delivered_all(receiver: &Receiver, ids: &[String]) -> bool {
    let got = receiver.delivered();
    ids.iter().all(|id| got.contains_key(id))
}

/// Every request is signed with the destination's secret, and every
/// message was always sent with one and the same idempotency key.
fn check_signed_and_keyed(receiver: &Receiver, secret: &[u8], name: &str) {
    for r in receiver.requests() {
        assert!(
            verify_signature(secret, &r.headers, &r.body),
            "{name}: a request's signature does not verify"
        );
    }
    for (id, keys) in receiver.idempotency_keys() {
        assert_eq!(keys.len(), 1, "{name}: {id} was sent with keys {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_each_receiver_through_scripted_failures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let down = Receiver::start(Script::steps(
        vec![Step::Down(Duration::from_secs(3))],
        Reply::ok(),
    ))
    .await
    .unwrap();
    let flaky = Receiver::start(Script::steps(
        vec![Step::times(3, Reply::status(500))],
        Reply::ok(),
    ))
    .await
    .unwrap();
    let throttled = Receiver::start(Script::steps(
        vec![Step::times(
            2,
            Reply::status(429).header("Retry-After", "1"),
        )],
        Reply::ok(),
    ))
    .await
    .unwrap();
    let slow = Receiver::start(Script::steps(
        vec![Step::times(2, Reply::ok().delay(Duration::from_secs(3)))],
        Reply::ok(),
    ))
    .await
    .unwrap();
    let refused = Receiver::start(Script::always(
        Reply::status(400).body(r#"{"error":"unknown field"}"#),
    ))
    .await
    .unwrap();
    let receivers = [
        ("down", &down, "batch max-events=10"),
        ("flaky", &flaky, "batch max-events=10"),
        ("throttled", &throttled, ""),
        ("slow", &slow, "batch max-events=25"),
        ("refused", &refused, ""),
    ];
    let destinations: Vec<(&str, String, &str)> = receivers
        .iter()
        .map(|(name, r, extra)| (*name, r.url(), *extra))
        .collect();
    project(dir.path(), &destinations);
    let dev = start_dev_in(dir.path(), &data, &[]);
    let ids = send_orders(&dev, &data, "o", 60);

    for (name, receiver, _) in &receivers[..4] {
        until(&format!("{name} has every event"), || {
            delivered_all(receiver, &ids)
        })
        .await;
        check_signed_and_keyed(receiver, &secret(&data, name), name);
    }
    // Retry-After was honoured: each throttled event came back a second
    // later, not after the destination's 100 ms delay.
    let requests = throttled.requests();
    for first in requests.iter().filter(|r| r.status == 429) {
        let id = &first.message_ids()[0];
        let again = requests
            .iter()
            .find(|r| r.at > first.at && r.message_ids().contains(id))
            .expect("a throttled event is sent again");
        let gap = again.at.duration_since(first.at).unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(900),
            "{id} retried after {gap:?}"
        );
    }

    // 400 is permanent: every event in the dead-letter queue at once, with
    // the response kept, each attempted once.
    until("the refused events are dead letters", || {
        api_get(&dev, "/destinations/refused/metrics").1["dlqDepth"] == 60
    })
    .await;
    assert_eq!(refused.requests().len(), 60);
    let (code, page) = api_get(&dev, "/destinations/refused/dead-letters?limit=500");
    assert_eq!(code, 200, "{page}");
    let letters = page["items"].as_array().unwrap();
    assert_eq!(letters.len(), 60);
    for l in letters {
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.starts_with("HTTP 400"), "{reason}");
        assert!(reason.contains("unknown field"), "{reason}");
        assert_eq!(l["message"]["attempts"], 1);
    }
    let mut dead: Vec<String> = letters
        .iter()
        .map(|l| l["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    dead.sort();
    assert_eq!(dead, ids);

    // The metrics add up.
    until("the flaky metrics are committed", || {
        api_get(&dev, "/destinations/flaky/metrics").1["delivered"] == 60
    })
    .await;
    let (_, m) = api_get(&dev, "/destinations/flaky/metrics");
    assert!(m["retried"].as_u64().unwrap() >= 10, "{m}");
    assert_eq!(m["deadLettered"], 0, "{m}");
    assert!(m["latencyMs"]["p50"].as_u64().is_some(), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_deliveries_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Slow enough that a kill lands in the middle of the deliveries.
    let receiver = Receiver::start(Script::always(Reply::ok().delay(Duration::from_millis(40))))
        .await
        .unwrap();
    project(dir.path(), &[("crm", receiver.url(), "")]);
    let mut all = Vec::new();
    for round in 0..3 {
        let mut dev = start_dev_in(dir.path(), &data, &[]);
        all.extend(send_orders(&dev, &data, &format!("k{round}-"), 300));
        let before = receiver.delivered().len();
        until("some deliveries happen", || {
            receiver.delivered().len() > before + 20
        })
        .await;
        // SIGKILL: no graceful stop, whatever was in flight is cut.
        dev.child.kill().unwrap();
        dev.child.wait().unwrap();
        assert!(
            !delivered_all(&receiver, &all),
            "the kill came after every delivery"
        );
    }
    let _dev = start_dev_in(dir.path(), &data, &[]);
    until("every acknowledged event is delivered", || {
        delivered_all(&receiver, &all)
    })
    .await;
    check_signed_and_keyed(&receiver, &secret(&data, "crm"), "crm");
    // At least once: a kill may repeat what was in flight and what the
    // last second of rounds delivered (rounds are synced once a second):
    // at this receiver's pace (8 requests per 40 ms) that is at most ~210
    // events per kill, never a whole run.
    let twice = receiver.delivered().values().filter(|n| **n > 1).count();
    assert!(twice <= 3 * 210, "{twice} events delivered more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_redriven_and_the_filter_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Refuses the first 10 requests for good, then takes everything.
    let receiver = Receiver::start(Script::steps(
        vec![Step::times(10, Reply::status(422))],
        Reply::ok(),
    ))
    .await
    .unwrap();
    project(
        dir.path(),
        &[("crm", receiver.url(), "filter \"properties.revenue >= 10\"")],
    );
    let dev = start_dev_in(dir.path(), &data, &["--archive-wait-ms", "50"]);
    let ids = send_orders(&dev, &data, "r", 30);
    // Not subscribed: below the filter's threshold.
    let answer = post_batch(
        dev.port,
        &key(&data),
        &json!({"batch": [{"type": "track", "event": "Order Completed", "userId": "u1",
                           "messageId": "cheap", "properties": {"order_id": "c", "revenue": 1}}]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(status(&answer), Some(200));
    until("everything is delivered or dead", || {
        let (_, m) = api_get(&dev, "/destinations/crm/metrics");
        m["delivered"].as_u64().unwrap_or(0) + m["dlqDepth"].as_u64().unwrap_or(0) == 30
    })
    .await;
    let (_, m) = api_get(&dev, "/destinations/crm/metrics");
    assert_eq!(m["dlqDepth"], 10, "{m}");

    let mut redrive = std::process::Command::new(env!("CARGO_BIN_EXE_uniflow"));
    let out = redrive
        .args(["dlq", "redrive", "crm"])
        .arg(dir.path())
        .arg("--data")
        .arg(&data)
        .arg("--yes")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until("the redriven events are delivered", || {
        delivered_all(&receiver, &ids)
    })
    .await;
    assert!(!receiver.delivered().contains_key("cheap"));
    let per_id: BTreeMap<String, usize> = receiver.delivered();
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");

    // Replay: the archived orders go to `crm` once more (the filter still
    // applies: not the cheap one), each with its own messageId as the key.
    let archived = || {
        walk(&data.join("archive/raw"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .count()
    };
    until("the events are archived", || archived() > 0).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_uniflow"))
        .args(["replay", "crm"])
        .arg(dir.path())
        .arg("--data")
        .arg(&data)
        .args(["--from", "-1h", "--to", "now"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("replayed 30 events"), "{stdout}");
    until("the replayed events are delivered again", || {
        let got = receiver.delivered();
        ids.iter().all(|id| got.get(id) == Some(&2))
    })
    .await;
    assert!(!receiver.delivered().contains_key("cheap"));
    for (id, keys) in receiver.idempotency_keys() {
        assert!(keys.len() == 1 && keys.contains(&id), "{id}: {keys:?}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
