//! The identity and profile suite (`uniflow_runtime::profiles::suite`) on
//! the embedded store; the DynamoDB store runs the same scenarios on moto.

use std::path::Path;

use uniflow_runtime::embedded::profiles::EmbeddedProfiles;
use uniflow_runtime::profiles::{ProfileStore, Rules, suite};
use uniflow_schemas::Bundle;

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(suite::PROJECT);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_passes_the_scenarios() {
    let rules = Rules::new(&bundle().identity);
    let dir = tempfile::tempdir().unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    suite::run_all(&scenarios, |name| {
        let store = EmbeddedProfiles::open(&dir.path().join(format!("{name}.redb")), rules.clone())
            .unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_keeps_group_traits() {
    let rules = Rules::new(&bundle().identity);
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedProfiles::open(&dir.path().join("p.redb"), rules).unwrap();
    let e = |v: serde_json::Value| {
        suite::enrich(v.as_object().unwrap(), v["messageId"].as_str().unwrap())
    };
    store
        .process(vec![
            e(serde_json::json!({"messageId": "g1", "type": "group", "userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}, "timestamp": "2026-02-01T00:00:00Z"})),
            e(serde_json::json!({"messageId": "g2", "type": "group", "userId": "u2", "groupId": "acme", "traits": {"plan": "free", "seats": 5}, "timestamp": "2026-01-01T00:00:00Z"})),
        ])
        .await
        .unwrap();
    let account = store.account("acme").await.unwrap().unwrap();
    assert_eq!(account.traits["plan"].value, "pro");
    assert_eq!(account.traits["seats"].value, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_order_and_redelivery_end_with_the_same_people() {
    let rules = Rules::new(&bundle().identity);
    let dir = tempfile::tempdir().unwrap();
    let cases = std::env::var("PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    suite::property(cases, 1, |name| {
        let store = EmbeddedProfiles::open(&dir.path().join(format!("{name}.redb")), rules.clone())
            .unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_reads_events_from_the_log_it_was_built_from() {
    use uniflow_runtime::backend::EventSink;
    use uniflow_runtime::embedded::{Log, process_log};
    use uniflow_runtime::record::{Record, RecordKind};

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log")).unwrap();
    let store = EmbeddedProfiles::open(&dir.path().join("p.redb"), Rules::new(&bundle().identity))
        .unwrap()
        .with_log(log.clone());
    let events: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            serde_json::json!({
                "messageId": format!("m{i}"), "sourceId": "web", "type": "track",
                "event": "Viewed", "anonymousId": "a1", "properties": {"n": i},
                "timestamp": format!("2026-01-01T00:00:0{i}.000Z"),
            })
        })
        .collect();
    let records = events
        .iter()
        .map(|e| Record {
            kind: RecordKind::Accepted,
            source: "web".into(),
            message_id: e["messageId"].as_str().unwrap().into(),
            partition_key: "a1".into(),
            received_at_ms: 0,
            json: serde_json::to_vec(e).unwrap(),
        })
        .collect();
    log.append(records).await.unwrap();
    let (read, report) = process_log(&log, &store, 3).unwrap();
    assert_eq!((read, report.applied), (3, 3));
    let (read, _) = process_log(&log, &store, 100).unwrap();
    assert_eq!(read, 2);
    assert_eq!(store.cursor().unwrap(), log.committed());

    let p = store.lookup("anonymous_id:a1").await.unwrap().unwrap();
    let page = store.events(&p.id, None, 10).await.unwrap();
    let got: Vec<serde_json::Value> = page
        .events
        .iter()
        .map(|e| serde_json::from_str(e.event.get()).unwrap())
        .collect();
    let mut want = events.clone();
    want.reverse();
    assert_eq!(got, want, "newest first, as stored in the log");
}
