//! The DynamoDB profile store against moto: the scenario suite every store
//! passes, the processor handler on a Kinesis fixture batch, and two
//! writers racing for one person.
//!
//! Each test starts its own moto (one request at a time, see
//! `support::start_serialised_moto`) and makes fresh tables, keyed as the
//! generated template keys them.

#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use uniflow_runtime::backend::SystemClock;
use uniflow_runtime::profiles::{ProfileStore, Rules, suite};
use uniflow_runtime_aws::fanout::FanOut;
use uniflow_runtime_aws::processor;
use uniflow_runtime_aws::profiles::{DynamoProfiles, ProfileTables};
use uniflow_runtime_aws::sqs::QueueNames;
use uniflow_schemas::Bundle;

use support::{create_table, sdk_config, start_serialised_moto};

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(suite::PROJECT);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

fn rules() -> Rules {
    Rules::new(&bundle().identity)
}

/// Names tables uniquely within one moto.
static TABLES: AtomicU32 = AtomicU32::new(0);

/// Creates the identities, profiles and state tables (as
/// `compiler/src/generate/cloudformation/profiles.rs` declares them).
async fn create_tables(config: &aws_config::SdkConfig) -> ProfileTables {
    let n = TABLES.fetch_add(1, Ordering::Relaxed);
    let tables = ProfileTables {
        identities: format!("t{n}-identities"),
        profiles: format!("t{n}-profiles"),
        state: format!("t{n}-state"),
    };
    create_table(
        config,
        &tables.identities,
        "identifier",
        None,
        Some(("by-profile", "profile_id", "identifier")),
    )
    .await;
    create_table(config, &tables.profiles, "pk", Some("sk"), None).await;
    create_table(config, &tables.state, "pk", Some("sk"), None).await;
    tables
}

/// A store over fresh, empty tables: what every suite runs on. The
/// scenarios and the property suite below (60 property cases take about
/// two minutes on moto; `PROPERTY_CASES_AWS` sets how many run).
async fn fresh_store(config: &aws_config::SdkConfig, rules: &Rules) -> DynamoProfiles {
    DynamoProfiles::new(config, create_tables(config).await, rules.clone())
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamo_store_passes_the_scenarios() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let rules = rules();
    suite::run_all(&scenarios(), |_| fresh_store(&config, &rules)).await;
    drop(moto);
}

/// Fan-out to no destination (the suite's project has none; fan-out is
/// tested in `delivery_moto.rs`).
fn no_fanout(config: &aws_config::SdkConfig) -> FanOut {
    FanOut::new(
        config,
        &Default::default(),
        &QueueNames::new("http://127.0.0.1/000000000000/", "unused"),
    )
}

fn fixture(name: &str) -> KinesisEvent {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_reports_partial_batch_failures() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let store = fresh_store(&config, &rules()).await;
    let batch = fixture("kinesis-batch.json");
    let sequence: Vec<String> = batch
        .records
        .iter()
        .map(|r| r.kinesis.sequence_number.clone())
        .collect();
    assert_eq!(sequence.len(), 4);

    // Three events applied; the record without a messageId skipped, not retried.
    let handled =
        processor::process(&store, &no_fanout(&config), &SystemClock, batch.clone()).await;
    assert_eq!(handled.failed, Vec::<String>::new());
    assert_eq!(handled.report.applied, 3, "{:?}", handled.report);
    assert_eq!(handled.skipped.len(), 1, "{:?}", handled.skipped);
    assert_eq!(handled.skipped[0].0, sequence[2]);
    assert!(
        handled.skipped[0].1.contains("messageId"),
        "{:?}",
        handled.skipped
    );
    assert_eq!(
        serde_json::to_value(handled.response()).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );
    let p = store.lookup("user_id:kin-u1").await.unwrap().unwrap();
    let ids: Vec<String> = store
        .identities(&p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.identifier)
        .collect();
    assert_eq!(
        ids,
        [
            "anonymous_id:kin-anon-1",
            "email:kin@example.com",
            "user_id:kin-u1"
        ]
    );
    assert_eq!(p.counts["page"], 1);
    assert_eq!(p.counts["identify"], 1);
    assert_eq!(p.event_counts["Order Completed"], 1);
    assert_eq!(p.traits["plan"].value, "pro");
    let page = store.events(&p.id, None, 10).await.unwrap();
    let order: Vec<&str> = page.events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(order, ["kin-3", "kin-2", "kin-1"]);
    assert!(page.events[0].event.get().contains("Order Completed"));

    // Redelivered by Lambda: nothing changes.
    let again = processor::process(&store, &no_fanout(&config), &SystemClock, batch.clone()).await;
    assert_eq!(again.failed, Vec::<String>::new());
    assert_eq!((again.report.applied, again.report.duplicates), (0, 3));
    let same = store.profile(&p.id).await.unwrap().unwrap();
    assert_eq!(same, p);

    // Tables that do not exist: every record from the first is retried.
    let broken = DynamoProfiles::new(
        &config,
        ProfileTables {
            identities: "no-such-identities".into(),
            profiles: "no-such-profiles".into(),
            state: "no-such-state".into(),
        },
        rules(),
    );
    let handled =
        processor::process(&broken, &no_fanout(&config), &SystemClock, batch.clone()).await;
    assert_eq!(handled.failed, sequence);
    assert_eq!(handled.report.applied, 0);
    let response = serde_json::to_value(
        processor::handle(&broken, &no_fanout(&config), &SystemClock, batch).await,
    )
    .unwrap();
    let reported: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(reported, sequence);
    drop(moto);
}

/// One device's events: an identify tying `device` to `user`, then more.
fn device_events(round: u32, user: &str, device: &str) -> Vec<Bytes> {
    let events = [
        serde_json::json!({"type": "identify", "userId": user, "anonymousId": device}),
        serde_json::json!({"type": "page", "anonymousId": device}),
        serde_json::json!({"type": "track", "event": "Clicked", "anonymousId": device, "userId": user}),
    ];
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.as_object().unwrap().clone();
            e.insert(
                "timestamp".into(),
                format!("2026-04-01T10:00:0{i}.000Z").into(),
            );
            suite::enrich(&e, &format!("race-{round}-{device}-{i}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_for_one_person_end_with_one_profile() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let store = fresh_store(&config, &rules()).await;
    // Each round races two batches for a new person; the race is lost at
    // least once in a few rounds, and every round must end the same way.
    let mut rounds = 0;
    while rounds < 3 || (store.conflicts() == 0 && rounds < 20) {
        rounds += 1;
        let user = format!("racer-{rounds}");
        let (phone, laptop) = (format!("phone-{rounds}"), format!("laptop-{rounds}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [&phone, &laptop]
            .into_iter()
            .map(|device| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let events = device_events(rounds, &user, device);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.process(events).await
                })
            })
            .collect();
        let mut applied = 0;
        for task in tasks {
            let report = task.await.unwrap().unwrap();
            assert!(report.invalid.is_empty());
            applied += report.applied;
        }
        assert_eq!(applied, 6, "round {rounds}");

        let p = store
            .lookup(&format!("user_id:{user}"))
            .await
            .unwrap()
            .unwrap();
        let mut ids: Vec<String> = store
            .identities(&p.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.identifier)
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                format!("anonymous_id:{laptop}"),
                format!("anonymous_id:{phone}"),
                format!("user_id:{user}"),
            ],
            "round {rounds}"
        );
        for device in [&phone, &laptop] {
            let q = store
                .lookup(&format!("anonymous_id:{device}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(q.id, p.id, "round {rounds}: {device}");
        }
        assert_eq!(p.identity_counts["anonymous_id"], 2, "round {rounds}");
        assert_eq!(p.identity_counts["user_id"], 1, "round {rounds}");
        assert_eq!(p.counts.values().sum::<u64>(), 6, "round {rounds}: {p:?}");
        assert_eq!(p.counts["identify"], 2, "round {rounds}");
        assert_eq!(p.event_counts["Clicked"], 2, "round {rounds}");
        let page = store.events(&p.id, None, 100).await.unwrap();
        assert_eq!(page.events.len(), 6, "round {rounds}");
    }
    assert!(
        store.conflicts() > 0,
        "in {rounds} rounds no write lost a race: the retry path was not exercised"
    );
    drop(moto);
}

/// A delete racing a new link can leave that link pointing at a profile that
/// is gone. The resolver takes such an identifier for free; its put must
/// replace the stale link rather than fail its condition on every attempt
/// (which would stop the shard's batches for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_link_to_a_deleted_profile_is_replaced() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let tables = create_tables(&config).await;
    let store = DynamoProfiles::new(&config, tables.clone(), rules());
    let event = |id: &str, v: serde_json::Value| suite::enrich(v.as_object().unwrap(), id);
    store
        .process(vec![event(
            "o-1",
            serde_json::json!({"type": "identify", "userId": "orphan", "anonymousId": "o-dev"}),
        )])
        .await
        .unwrap();
    let gone = store.lookup("user_id:orphan").await.unwrap().unwrap();
    aws_sdk_dynamodb::Client::new(&config)
        .delete_item()
        .table_name(&tables.profiles)
        .key("pk", AttributeValue::S(format!("profile#{}", gone.id)))
        .key("sk", AttributeValue::S("profile".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.lookup("user_id:orphan").await.unwrap(), None);

    let report = store
        .process(vec![event(
            "o-2",
            serde_json::json!({"type": "track", "event": "Came Back", "userId": "orphan"}),
        )])
        .await
        .unwrap();
    assert_eq!(report.applied, 1);
    let p = store.lookup("user_id:orphan").await.unwrap().unwrap();
    assert_ne!(p.id, gone.id);
    assert_eq!(p.event_counts["Came Back"], 1);
    let ids: Vec<String> = store
        .identities(&p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.identifier)
        .collect();
    assert_eq!(ids, ["user_id:orphan"]);
    drop(moto);
}

/// A Kinesis record holding `event` (as ingest writes it: JSON, then `\n`).
fn record(sequence: &str, event: &serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    let mut data = serde_json::to_vec(event).unwrap();
    data.push(b'\n');
    serde_json::json!({
        "kinesis": {
            "partitionKey": "k",
            "sequenceNumber": sequence,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "approximateArrivalTimestamp": 1772359260.0,
        },
        "eventSource": "aws:kinesis",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dynamodb_refuses_stops_the_batch_at_its_event() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let store = fresh_store(&config, &rules()).await;
    let event = |id: &str, extra: &str| {
        serde_json::json!({"messageId": id, "sourceId": "web", "type": "track", "event": "Viewed",
            "userId": "big", "timestamp": "2026-05-01T00:00:00.000Z", "properties": {"note": extra}})
    };
    // Over DynamoDB's 400 KB item limit once stored on the timeline.
    let huge = "x".repeat(420 * 1024);
    let batch: KinesisEvent = serde_json::from_value(serde_json::json!({"Records": [
        record("101", &event("b-1", "")),
        record("102", &event("b-2", &huge)),
        record("103", &event("b-3", "")),
    ]}))
    .unwrap();
    let handled = processor::process(&store, &no_fanout(&config), &SystemClock, batch).await;
    assert_eq!(handled.failed, ["102", "103"]);
    assert_eq!(handled.report.applied, 1);
    assert!(handled.skipped.is_empty());
    let p = store.lookup("user_id:big").await.unwrap().unwrap();
    assert_eq!(p.event_counts["Viewed"], 1);
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_order_and_redelivery_end_with_the_same_people_on_dynamodb() {
    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let rules = rules();
    let cases = std::env::var("PROPERTY_CASES_AWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    suite::property(cases, 1, |_| fresh_store(&config, &rules)).await;
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_lambda_answers_api_gateway_events_from_dynamodb() {
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use aws_lambda_events::encodings::Body;
    use uniflow_runtime::manage::{self, Auth};

    let moto = start_serialised_moto();
    let config = sdk_config(&moto.endpoint).await;
    let store = fresh_store(&config, &rules()).await;
    let events = [
        serde_json::json!({"type": "page", "anonymousId": "a1", "messageId": "m1"}),
        serde_json::json!({"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {"email": "ann@example.org"}, "messageId": "m2"}),
    ];
    let batch = events
        .iter()
        .map(|e| suite::enrich(e.as_object().unwrap(), e["messageId"].as_str().unwrap()))
        .collect();
    store.process(batch).await.unwrap();
    let router = manage::router(Arc::new(store), None, Arc::new(bundle()), Auth::Trusted);
    let text = |r: &aws_lambda_events::apigw::ApiGatewayV2httpResponse| match &r.body {
        Some(Body::Text(t)) => serde_json::from_str::<serde_json::Value>(t).unwrap(),
        other => panic!("a JSON body, not {other:?}"),
    };

    // The lookup, with the identifier normalised by the rules (trim, lowercase).
    let event: ApiGatewayV2httpRequest = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/apigw-management-lookup.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let r = uniflow_runtime_aws::apigw::serve_router(&router, event.clone()).await;
    assert_eq!(r.status_code, 200, "{:?}", r.body);
    let profile = text(&r);
    assert_eq!(profile["counts"]["page"], 1, "{profile}");
    let id = profile["id"].as_str().unwrap().to_owned();

    // Its identities, then an unknown profile: JSON errors with a code.
    let mut identities = event.clone();
    identities.raw_path = Some(format!("/api/v1/profiles/{id}/identities"));
    identities.raw_query_string = None;
    let r = uniflow_runtime_aws::apigw::serve_router(&router, identities).await;
    assert_eq!(r.status_code, 200);
    let listed: Vec<String> = text(&r)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["identifier"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let mut missing = event;
    missing.raw_path = Some("/api/v1/profiles/nobody".into());
    missing.raw_query_string = None;
    let r = uniflow_runtime_aws::apigw::serve_router(&router, missing).await;
    assert_eq!(r.status_code, 404);
    assert_eq!(text(&r)["code"], "profile_not_found");
    drop(moto);
}
