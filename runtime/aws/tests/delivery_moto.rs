//! Delivery on AWS against moto: fan-out from the processor to the
//! destination queues, the connector Lambda's handler with a scripted
//! connector, the dead-letter queue operations, replay from the raw
//! archive, and the AWS services behind the connectors.
//!
//! Each test starts its own moto and creates the queues, dead-letter
//! queues (with the template's redrive policy) and state table under the
//! names the generated template gives them. The connector tests play
//! Lambda's part: receive from the queue, hand the records to the handler
//! as an SQS event, then delete what it did not report as failed.
//!
//! What moto cannot show: moto never runs Lambda functions without Docker,
//! so `LambdaInvoke` is tested against a small local HTTP server speaking
//! Lambda's `Invoke` API (`POST /2015-03-31/functions/{name}/invocations`);
//! and the SQS-side redrive to the dead-letter queue after
//! `maxReceiveCount` receives is SQS's own behaviour, not exercised here.

#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bytes::Bytes;
use uniflow_runtime::backend::{Clock, SystemClock};
use uniflow_runtime::connectors::{Invoke, ObjectStore, Secrets};
use uniflow_runtime::delivery::metrics::{DeliveryMetrics, LatencyPercentiles};
use uniflow_runtime::delivery::{Connector, Delivering, Message, Outcome, Outgoing};
use uniflow_runtime::profiles::Rules;
use uniflow_runtime::time::parse_ms;
use uniflow_runtime_aws::connector::{self, Deliver, Destination};
use uniflow_runtime_aws::fanout::FanOut;
use uniflow_runtime_aws::metrics::DynamoDeliveryStats;
use uniflow_runtime_aws::processor;
use uniflow_runtime_aws::profiles::{DynamoProfiles, ProfileTables};
use uniflow_runtime_aws::queues::{QueueError, Queues, Replay};
use uniflow_runtime_aws::services::{AwsSecrets, LambdaInvoke, S3Objects};
use uniflow_runtime_aws::sqs::QueueNames;
use uniflow_schemas::Bundle;
use uniflow_schemas::bundle::DestinationInfo;
use uniflow_schemas::condition::Condition;

use support::{create_table, sdk_config, start_moto, start_serialised_moto};

const PROJECT: &str = r#"
project "deliv" {
    region "eu-west-1"
    stage "test"
}
source "web" kind="server"
identity {
    identifier "user_id" priority=1 limit=1
    identifier "anonymous_id" priority=2 limit=5
}
event "Order Completed" {
    property "revenue" type="number"
    property "currency" type="string"
}
event "Signed Up" {
    property "method" type="string"
}
destination "orders" kind="webhook" {
    url "https://orders.example/hook"
    events "Order Completed"
    filter "properties.currency = 'EUR'"
    retry attempts=3 backoff="fixed" max-age="1h"
    batch max-events=2
}
destination "all" kind="webhook" {
    url "https://all.example/hook"
}
destination "signups" kind="webhook" {
    url "https://signups.example/hook"
    events "Signed Up"
}
"#;

/// `<project>-<stage>`, as the template names resources.
const PREFIX: &str = "deliv-test";
const ACCOUNT: &str = "123456789012";

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(PROJECT);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

/// A deployed stack's delivery resources on moto.
struct Stack {
    config: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    bundle: Bundle,
    names: QueueNames,
    state_table: String,
}

impl Stack {
    /// Creates the queues of `destinations` (each with its dead-letter
    /// queue and the template's redrive policy) and the state table.
    async fn deploy(endpoint: &str, destinations: &[&str]) -> Stack {
        let config = sdk_config(endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let bundle = bundle();
        let mut url_prefix = String::new();
        for &d in destinations {
            let dlq = sqs
                .create_queue()
                .queue_name(format!("{PREFIX}-{d}-dlq"))
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            url_prefix = format!("{}/", dlq.rsplit_once('/').unwrap().0);
            let redrive = serde_json::json!({
                "deadLetterTargetArn": format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{PREFIX}-{d}-dlq"),
                "maxReceiveCount": bundle.destinations[d].retry.attempts,
            });
            sqs.create_queue()
                .queue_name(format!("{PREFIX}-{d}"))
                .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
                .send()
                .await
                .unwrap();
        }
        let state_table = format!("{PREFIX}-state");
        create_table(&config, &state_table, "pk", Some("sk"), None).await;
        Stack {
            names: QueueNames::new(&url_prefix, PREFIX),
            config,
            sqs,
            bundle,
            state_table,
        }
    }

    fn info(&self, destination: &str) -> DestinationInfo {
        self.bundle.destinations[destination].clone()
    }

    fn arn(destination: &str) -> String {
        format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{PREFIX}-{destination}")
    }

    async fn send(&self, url: &str, messages: &[Message]) {
        for m in messages {
            self.sqs
                .send_message()
                .queue_url(url)
                .message_body(serde_json::to_string(m).unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    /// Receives up to ten messages, hiding them for `visibility` seconds.
    async fn receive(&self, url: &str, visibility: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    /// Every visible message of a queue (hidden for a minute once read).
    async fn drain(&self, url: &str) -> Vec<Message> {
        let mut out = Vec::new();
        loop {
            let got = self.receive(url, 60).await;
            if got.is_empty() {
                break;
            }
            for m in got {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
        out.sort_by(|a: &Message, b| a.id.cmp(&b.id));
        out
    }

    /// Messages in a queue, visible or not.
    async fn depth(&self, url: &str) -> (u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let a = out.attributes().unwrap();
        let n = |k: QueueAttributeName| a.get(&k).unwrap().parse::<u64>().unwrap();
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Lambda's part: receives a batch from `destination`'s queue, runs the
    /// handler on it, deletes every message not reported as failed.
    async fn invoke(&self, deliver: &Deliver, destination: &str) -> connector::Handled {
        let url = self.names.queue_url(destination);
        let received = self.receive(&url, 600).await;
        assert!(!received.is_empty(), "nothing to deliver in {destination}");
        let event = lambda_event(&received, &Stack::arn(destination));
        let handled = connector::process(deliver, event.clone()).await;
        let reported: Vec<String> = handled
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(reported, handled.failed);
        for m in &received {
            if !handled
                .failed
                .iter()
                .any(|f| Some(f.as_str()) == m.message_id())
            {
                self.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        handled
    }
}

/// An SQS event as Lambda builds it from received messages.
fn lambda_event(received: &[aws_sdk_sqs::types::Message], arn: &str) -> SqsEvent {
    SqsEvent {
        records: received
            .iter()
            .map(|m| SqsMessage {
                message_id: m.message_id().map(str::to_owned),
                receipt_handle: m.receipt_handle().map(str::to_owned),
                body: m.body().map(str::to_owned),
                attributes: m
                    .attributes()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect(),
                event_source_arn: Some(arn.to_owned()),
                event_source: Some("aws:sqs".to_owned()),
                aws_region: Some("eu-west-1".to_owned()),
                ..SqsMessage::default()
            })
            .collect(),
    }
}

fn message(id: &str, received_ms: i64, event: serde_json::Value) -> Message {
    Message {
        id: id.to_owned(),
        received_ms,
        attempts: 0,
        last_error: None,
        event: Bytes::from(serde_json::to_vec(&event).unwrap()),
    }
}

fn order(id: &str, currency: &str, revenue: f64, received_at: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "track", "event": "Order Completed", "messageId": id, "userId": "u1",
        "sourceId": "web", "receivedAt": received_at, "timestamp": received_at,
        "properties": {"currency": currency, "revenue": revenue},
    })
}

fn kinesis(events: &[serde_json::Value]) -> KinesisEvent {
    use base64::Engine as _;
    let records: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut data = serde_json::to_vec(e).unwrap();
            data.push(b'\n');
            serde_json::json!({
                "kinesis": {
                    "partitionKey": "k",
                    "sequenceNumber": format!("{}", 1000 + i),
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1772359260.0,
                },
                "eventSource": "aws:kinesis",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_fans_events_out_to_the_queues_that_accept_them() {
    let moto = start_serialised_moto();
    // The signups queue is missing at first: fan-out fails at its first event.
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let tables = ProfileTables {
        identities: "deliv-test-identities".into(),
        profiles: "deliv-test-profiles".into(),
        state: stack.state_table.clone(),
    };
    create_table(
        &stack.config,
        &tables.identities,
        "identifier",
        None,
        Some(("by-profile", "profile_id", "identifier")),
    )
    .await;
    create_table(&stack.config, &tables.profiles, "pk", Some("sk"), None).await;
    let store = DynamoProfiles::new(&stack.config, tables, Rules::new(&stack.bundle.identity));
    let fanout = FanOut::new(&stack.config, &stack.bundle.destinations, &stack.names);

    let at = "2026-03-01T10:00:00.000Z";
    let events = [
        order("e1", "EUR", 10.0, at),
        order("e2", "USD", 20.0, at),
        serde_json::json!({"type": "track", "event": "Signed Up", "messageId": "e3",
            "userId": "u2", "receivedAt": at, "properties": {"method": "email"}}),
        serde_json::json!({"type": "identify", "messageId": "e4", "userId": "u2",
            "receivedAt": at, "traits": {"plan": "pro"}}),
        // Not a pipeline event (no messageId): skipped by the store, queued nowhere.
        serde_json::json!({"type": "track", "event": "Signed Up", "userId": "u3"}),
    ];
    let batch = kinesis(&events);
    let sequence: Vec<String> = batch
        .records
        .iter()
        .map(|r| r.kinesis.sequence_number.clone())
        .collect();

    let handled = processor::process(&store, &fanout, &SystemClock, batch.clone()).await;
    assert_eq!(handled.report.applied, 4, "{:?}", handled.report);
    assert_eq!(handled.skipped.len(), 1);
    // e3 (index 2) is the first event whose every queue did not take it.
    assert_eq!(handled.failed, sequence[2..]);

    // Deployed now; Lambda retries from e3.
    let retry = KinesisEvent {
        records: batch.records[2..].to_vec(),
    };
    let more = Stack::deploy_queue(&stack, "signups").await;
    let handled = processor::process(&store, &fanout, &SystemClock, retry).await;
    assert_eq!(handled.failed, Vec::<String>::new());
    assert_eq!(handled.report.duplicates, 2, "{:?}", handled.report);
    assert_eq!(handled.fanned_out.sent, 3, "{:?}", handled.fanned_out);

    // orders: only the EUR order (subscription and filter).
    let orders = stack.drain(&stack.names.queue_url("orders")).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].id, "e1");
    assert_eq!(orders[0].attempts, 0);
    assert_eq!(orders[0].last_error, None);
    assert_eq!(orders[0].received_ms, parse_ms(at).unwrap());
    let queued: serde_json::Value = serde_json::from_slice(&orders[0].event).unwrap();
    assert_eq!(queued, events[0]);
    // signups: only the Signed Up event.
    let signups = stack.drain(&more).await;
    let ids: Vec<&str> = signups.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["e3"]);
    // all: every pipeline event; e3 and e4 twice (queued before the
    // failure, and again on the retry: at least once).
    let all = stack.drain(&stack.names.queue_url("all")).await;
    let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e3", "e4", "e4"]);
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_sends_many_large_events_and_skips_those_too_large_for_sqs() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all", "signups"]).await;
    let fanout = FanOut::new(&stack.config, &stack.bundle.destinations, &stack.names);
    let at = "2026-03-01T10:00:00.000Z";
    // 25 events of 30 KiB: several calls (batches are split by entries and
    // bytes; the split itself is unit-tested in `sqs.rs`, as moto takes
    // batches up to 1 MiB).
    let mut events: Vec<Bytes> = (0..25)
        .map(|i| {
            let mut e = order(&format!("big-{i:02}"), "USD", 1.0, at);
            e["properties"]["note"] = "x".repeat(30 * 1024).into();
            Bytes::from(serde_json::to_vec(&e).unwrap())
        })
        .collect();
    let mut huge = order("huge", "USD", 1.0, at);
    huge["properties"]["note"] = "x".repeat(300 * 1024).into();
    events.insert(3, Bytes::from(serde_json::to_vec(&huge).unwrap()));

    let report = fanout.send(&events, &BTreeSet::new(), NOW).await.unwrap();
    assert_eq!(report.sent, 25);
    assert_eq!(report.too_large, [("huge".to_owned(), "all".to_owned())]);
    let all = stack.drain(&stack.names.queue_url("all")).await;
    let ids: Vec<String> = all.into_iter().map(|m| m.id).collect();
    let expect: Vec<String> = (0..25).map(|i| format!("big-{i:02}")).collect();
    assert_eq!(ids, expect);
    drop(moto);
}

impl Stack {
    /// Creates one more destination's queues; answers the queue's URL.
    async fn deploy_queue(stack: &Stack, destination: &str) -> String {
        stack
            .sqs
            .create_queue()
            .queue_name(format!("{PREFIX}-{destination}-dlq"))
            .send()
            .await
            .unwrap();
        stack
            .sqs
            .create_queue()
            .queue_name(format!("{PREFIX}-{destination}"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }
}

/// A connector that answers by the event's id prefix: `ok` delivered,
/// `retry` retried after two minutes, anything else failed permanently.
/// It keeps the ids of every batch it was given.
#[derive(Clone, Default)]
struct Scripted {
    batches: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Connector for Scripted {
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a> {
        self.batches
            .lock()
            .unwrap()
            .push(batch.iter().map(|o| o.id.clone()).collect());
        let outcomes = batch
            .iter()
            .map(|o| {
                if o.id.starts_with("ok") {
                    Outcome::Delivered
                } else if o.id.starts_with("retry") {
                    Outcome::Retry {
                        reason: "HTTP 503".to_owned(),
                        after: Some(Duration::from_secs(120)),
                    }
                } else {
                    Outcome::Failed {
                        reason: "HTTP 400: {\"error\":\"bad field\"}".to_owned(),
                    }
                }
            })
            .collect();
        Box::pin(async move { outcomes })
    }
}

/// The time, fixed.
struct At(i64);

impl Clock for At {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

const NOW: i64 = 1_772_359_200_000;

fn destination(stack: &Stack, name: &str, connector: &Scripted) -> Destination {
    Destination {
        info: stack.info(name),
        // Identity shaping, refusing events marked unshapeable.
        shape: Box::new(|event: &[u8]| {
            if String::from_utf8_lossy(event).contains("unshapeable") {
                Err("the template failed: no field `x`".to_owned())
            } else {
                Ok(Bytes::copy_from_slice(event))
            }
        }),
        connector: Box::new(connector.clone()),
    }
}

fn dead_letters(messages: &[Message]) -> BTreeMap<String, (u32, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                (m.attempts, m.last_error.clone().unwrap_or_default()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_delivers_retries_and_dead_letters() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let scripted = Scripted::default();
    let destinations = BTreeMap::from([
        (
            "orders".to_owned(),
            destination(&stack, "orders", &scripted),
        ),
        ("all".to_owned(), destination(&stack, "all", &scripted)),
    ]);
    let deliver = Deliver::new(
        &stack.config,
        stack.names.clone(),
        &stack.state_table,
        destinations,
    )
    .with_clock(At(NOW), || 0.5);
    let orders = stack.names.queue_url("orders");
    let orders_dlq = stack.names.dlq_url("orders");
    let at = "2026-03-01T10:00:00.000Z";
    let fresh = NOW - 1_500;
    stack
        .send(
            &orders,
            &[
                message("ok-1", fresh, order("ok-1", "EUR", 1.0, at)),
                message("ok-2", fresh, order("ok-2", "EUR", 1.0, at)),
                message("retry-1", fresh, order("retry-1", "EUR", 1.0, at)),
                message("fail-1", fresh, order("fail-1", "EUR", 1.0, at)),
                message(
                    "ok-unshapeable",
                    fresh,
                    order("ok-unshapeable", "EUR", 1.0, at),
                ),
                // Two hours old: past the one-hour maximum age once retried.
                message(
                    "retry-old",
                    NOW - 7_200_000,
                    order("retry-old", "EUR", 1.0, at),
                ),
            ],
        )
        .await;

    let handled = stack.invoke(&deliver, "orders").await;
    // Only the retry is reported, and it waits the two minutes asked for.
    assert_eq!(handled.retried.len(), 1, "{handled:?}");
    assert_eq!(handled.retried[0].1, Duration::from_secs(120));
    assert_eq!(handled.failed, [handled.retried[0].0.clone()]);
    // Batches of at most two (`batch max-events=2`), the unshapeable event never sent.
    let batches = scripted.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|b| b.len() <= 2), "{batches:?}");
    let sent: BTreeSet<String> = batches.into_iter().flatten().collect();
    assert_eq!(
        sent,
        ["fail-1", "ok-1", "ok-2", "retry-1", "retry-old"]
            .map(String::from)
            .into()
    );

    // The retried message is still queued, hidden until its next attempt.
    assert_eq!(stack.depth(&orders).await, (0, 1));
    assert!(stack.receive(&orders, 0).await.is_empty());

    // Permanent failures, shaping errors and an exhausted maximum age are
    // dead-lettered with their error and attempts, and gone from the queue.
    let letters = dead_letters(&stack.drain(&orders_dlq).await);
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(
        letters["fail-1"],
        (1, "HTTP 400: {\"error\":\"bad field\"}".to_owned())
    );
    assert_eq!(letters["ok-unshapeable"].0, 1);
    assert!(
        letters["ok-unshapeable"]
            .1
            .contains("cannot be shaped: the template failed"),
        "{letters:?}"
    );
    assert!(
        letters["retry-old"].1.contains("maximum age of 3600s")
            && letters["retry-old"].1.ends_with("last error: HTTP 503"),
        "{letters:?}"
    );

    // The counters: one invocation, one update.
    let stats = DynamoDeliveryStats::new(&stack.config, &stack.state_table, PREFIX);
    let metrics = stats.metrics("orders").await.unwrap();
    assert_eq!(
        metrics,
        DeliveryMetrics {
            delivered: 2,
            retried: 1,
            dead_lettered: 3,
            queued: 1,
            // Drained above: hidden, still counted.
            dlq_depth: 3,
            latency_ms: LatencyPercentiles {
                p50: Some(2_000),
                p90: Some(2_000),
                p99: Some(2_000),
            },
        }
    );
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_attempt_dead_letters_and_a_refusing_dlq_keeps_the_message() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let scripted = Scripted::default();
    let deliver = Deliver::new(
        &stack.config,
        stack.names.clone(),
        &stack.state_table,
        BTreeMap::from([
            (
                "orders".to_owned(),
                destination(&stack, "orders", &scripted),
            ),
            ("all".to_owned(), destination(&stack, "all", &scripted)),
        ]),
    )
    .with_clock(At(NOW), || 0.5);
    let at = "2026-03-01T10:00:00.000Z";

    // Third receive of a message retried twice: the retry policy's last attempt.
    let orders = stack.names.queue_url("orders");
    stack
        .send(
            &orders,
            &[message("retry-3", NOW, order("retry-3", "EUR", 1.0, at))],
        )
        .await;
    for _ in 0..2 {
        assert_eq!(stack.receive(&orders, 0).await.len(), 1);
    }
    let handled = stack.invoke(&deliver, "orders").await;
    assert_eq!(handled.failed, Vec::<String>::new());
    assert_eq!(stack.depth(&orders).await, (0, 0));
    let letters = dead_letters(&stack.drain(&stack.names.dlq_url("orders")).await);
    assert_eq!(
        letters["retry-3"],
        (
            3,
            "gave up after 3 attempts; last error: HTTP 503".to_owned()
        )
    );

    // A dead-letter queue that refuses: the message stays, reported failed.
    let all = stack.names.queue_url("all");
    stack
        .sqs
        .delete_queue()
        .queue_url(stack.names.dlq_url("all"))
        .send()
        .await
        .unwrap();
    stack
        .send(
            &all,
            &[
                message("fail-2", NOW, order("fail-2", "EUR", 1.0, at)),
                message("ok-3", NOW, order("ok-3", "EUR", 1.0, at)),
            ],
        )
        .await;
    let handled = stack.invoke(&deliver, "all").await;
    assert_eq!(handled.failed.len(), 1);
    assert!(handled.dead_lettered.is_empty());
    assert_eq!(stack.depth(&all).await, (0, 1));
    assert_eq!(handled.counts["all"].delivered, 1);
    assert_eq!(handled.counts["all"].dead_lettered, 0);

    // A record from a queue of no known destination is retried, not lost.
    let received = {
        stack
            .send(&all, &[message("ok-4", NOW, order("ok-4", "EUR", 1.0, at))])
            .await;
        stack.receive(&all, 600).await
    };
    let stray = lambda_event(
        &received,
        "arn:aws:sqs:eu-west-1:123456789012:other-prod-all",
    );
    let handled = connector::process(&deliver, stray).await;
    assert_eq!(handled.failed.len(), 1);
    assert_eq!(Some(handled.failed[0].as_str()), received[0].message_id());
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_and_redriven() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders"]).await;
    let queues = Queues::new(&stack.config, PREFIX);
    let dlq = stack.names.dlq_url("orders");
    let at = "2026-03-01T10:00:00.000Z";
    let letters: Vec<Message> = [
        ("d1", 10.0),
        ("d2", 90.0),
        ("d3", 70.0),
        ("d4", 5.0),
        ("d5", 99.0),
    ]
    .iter()
    .map(|(id, revenue)| Message {
        attempts: 3,
        last_error: Some("HTTP 500".to_owned()),
        ..message(id, NOW, order(id, "EUR", *revenue, at))
    })
    .collect();
    stack.send(&dlq, &letters).await;

    // Peeking consumes nothing: the same five, twice.
    for _ in 0..2 {
        let listed = queues.dlq_list("orders", 100).await.unwrap();
        let mut ids: Vec<&str> = listed.iter().map(|l| l.message.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["d1", "d2", "d3", "d4", "d5"]);
        assert!(listed.iter().all(|l| l.message.attempts == 3
            && l.message.last_error.as_deref() == Some("HTTP 500")
            && l.sent_at_ms > 0));
        let mut sorted = listed.clone();
        sorted.sort_by_key(|l| (l.sent_at_ms, l.sqs_message_id.clone()));
        assert_eq!(listed, sorted);
    }
    assert_eq!(queues.dlq_list("orders", 2).await.unwrap().len(), 2);
    let shown = queues.dlq_show("orders", "d3").await.unwrap().unwrap();
    assert_eq!(shown.message, letters[2]);
    assert_eq!(queues.dlq_show("orders", "nope").await.unwrap(), None);
    assert_eq!(stack.depth(&dlq).await, (5, 0));

    // At most one of those with revenue over 50.
    let big = Condition::parse("properties.revenue > 50").unwrap();
    let mut progress = Vec::new();
    let report = queues
        .redrive("orders", Some(1), Some(&big), |r| progress.push(*r))
        .await
        .unwrap();
    assert_eq!(report.moved, 1);
    assert!(!progress.is_empty());
    let moved = stack.drain(&stack.names.queue_url("orders")).await;
    assert_eq!(moved.len(), 1);
    assert!(
        ["d2", "d3", "d5"].contains(&moved[0].id.as_str()),
        "{moved:?}"
    );
    assert_eq!(moved[0].attempts, 0);
    assert_eq!(moved[0].last_error, None);
    assert_eq!(
        moved[0].event,
        letters.iter().find(|l| l.id == moved[0].id).unwrap().event
    );
    assert_eq!(stack.depth(&dlq).await, (4, 0));

    // The rest of them; the two small ones are kept.
    let report = queues
        .redrive("orders", None, Some(&big), |_| {})
        .await
        .unwrap();
    assert_eq!((report.moved, report.kept), (2, 2));
    let left: BTreeSet<String> = queues
        .dlq_list("orders", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message.id)
        .collect();
    assert_eq!(left, ["d1", "d4"].map(String::from).into());

    // Everything.
    let report = queues.redrive("orders", None, None, |_| {}).await.unwrap();
    assert_eq!((report.moved, report.kept), (2, 0));
    assert!(queues.dlq_list("orders", 100).await.unwrap().is_empty());
    let ids: Vec<String> = stack
        .drain(&stack.names.queue_url("orders"))
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), 4);

    assert_eq!(
        queues.dlq_list("nope", 10).await.unwrap_err(),
        QueueError::NoSuchQueue(format!("{PREFIX}-nope-dlq"))
    );
    drop(moto);
}

/// Calls the management router as API Gateway would after the authorizer:
/// answers the status and the JSON body.
async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => axum::body::Body::from(b.to_string()),
            None => axum::body::Body::empty(),
        })
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_serves_deliveries_from_the_queues_and_the_state_table() {
    use uniflow_runtime::delivery::metrics::DeliveryCounts;
    use uniflow_runtime::manage::{self, Auth};
    use uniflow_runtime_aws::deliveries::AwsDeliveries;

    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let dlq = stack.names.dlq_url("orders");
    let at = "2026-03-01T10:00:00.000Z";
    let letters: Vec<Message> = [("d1", 10.0, true), ("d2", 90.0, false), ("d3", 70.0, true)]
        .iter()
        .map(|(id, revenue, marked)| Message {
            attempts: 3,
            last_error: marked.then(|| "HTTP 500".to_owned()),
            ..message(id, NOW, order(id, "EUR", *revenue, at))
        })
        .collect();
    stack.send(&dlq, &letters).await;
    let mut counts = DeliveryCounts {
        delivered: 7,
        dead_lettered: 3,
        ..DeliveryCounts::default()
    };
    counts.latency.record(120);
    uniflow_runtime_aws::metrics::record(
        &aws_sdk_dynamodb::Client::new(&stack.config),
        &stack.state_table,
        "orders",
        &counts,
        NOW,
    )
    .await
    .unwrap();

    // As the management Lambda builds it (the profile store is not called
    // by these routes; its tables need not exist).
    let store = DynamoProfiles::new(
        &stack.config,
        ProfileTables {
            identities: "unused-identities".into(),
            profiles: "unused-profiles".into(),
            state: stack.state_table.clone(),
        },
        Rules::new(&stack.bundle.identity),
    );
    let deliveries = AwsDeliveries::new(&stack.config, &stack.state_table, PREFIX);
    let router = manage::router(
        Arc::new(store),
        Some(Arc::new(deliveries)),
        Arc::new(stack.bundle.clone()),
        Auth::Trusted,
    );

    // Metrics: the counters and both queues' depths.
    let (status, m) = call(&router, "GET", "/api/v1/destinations/orders/metrics", None).await;
    assert_eq!(status, 200, "{m}");
    let m: DeliveryMetrics = serde_json::from_value(m).unwrap();
    assert_eq!(
        (m.delivered, m.dead_lettered, m.queued, m.dlq_depth),
        (7, 3, 0, 3)
    );
    let (_, m) = call(&router, "GET", "/api/v1/destinations/all/metrics", None).await;
    assert_eq!(
        (m["delivered"].clone(), m["dlqDepth"].clone()),
        (0.into(), 0.into())
    );

    // Dead letters, two pages of two, in the order they were dead-lettered.
    let (status, first) = call(
        &router,
        "GET",
        "/api/v1/destinations/orders/dead-letters?limit=2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let next = first["next"].as_str().unwrap();
    assert_eq!(next, items[1]["id"].as_str().unwrap());
    let path = format!("/api/v1/destinations/orders/dead-letters?limit=2&after={next}");
    let (status, second) = call(&router, "GET", &path, None).await;
    assert_eq!(status, 200, "{second}");
    assert!(second.get("next").is_none(), "{second}");
    let all: Vec<&serde_json::Value> = items
        .iter()
        .chain(second["items"].as_array().unwrap())
        .collect();
    let mut ids: Vec<&str> = all
        .iter()
        .map(|l| l["message"]["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["d1", "d2", "d3"]);
    for l in &all {
        // When SQS took it into the dead-letter queue.
        assert!(l["failed_ms"].as_i64().unwrap() > 0, "{l}");
        let reason = l["reason"].as_str().unwrap();
        if l["message"]["id"] == "d2" {
            assert_eq!(
                reason,
                "exhausted its retries (moved by SQS's redrive policy)"
            );
        } else {
            assert_eq!(reason, "HTTP 500");
        }
    }
    // Peeking consumed nothing.
    assert_eq!(stack.depth(&dlq).await, (3, 0));

    // Redrive those with revenue over 50: d2 and d3, attempts reset.
    let (status, done) = call(
        &router,
        "POST",
        "/api/v1/destinations/orders/dead-letters/redrive",
        Some(serde_json::json!({"filter": "properties.revenue > 50"})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["moved"].clone(), done["kept"].clone()),
        (2.into(), 1.into())
    );
    let moved = stack.drain(&stack.names.queue_url("orders")).await;
    let ids: Vec<&str> = moved.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["d2", "d3"]);
    assert!(
        moved
            .iter()
            .all(|m| m.attempts == 0 && m.last_error.is_none())
    );
    assert_eq!(stack.depth(&dlq).await, (1, 0));

    // Enqueue (what `uniflow replay` sends) to one destination's queue only.
    let replayed = message("r1", NOW, order("r1", "EUR", 1.0, at));
    let (status, queued) = call(
        &router,
        "POST",
        "/api/v1/destinations/orders/messages",
        Some(serde_json::json!({"messages": [serde_json::to_value(&replayed).unwrap()]})),
    )
    .await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["queued"], 1);
    assert_eq!(
        stack.drain(&stack.names.queue_url("orders")).await,
        [replayed]
    );
    assert!(stack.drain(&stack.names.queue_url("all")).await.is_empty());

    // A destination whose queues are not deployed: 503 naming the queue.
    let missing = AwsDeliveries::new(&stack.config, &stack.state_table, "other-prefix");
    let router = manage::router(
        Arc::new(DynamoProfiles::new(
            &stack.config,
            ProfileTables {
                identities: "i".into(),
                profiles: "p".into(),
                state: "s".into(),
            },
            Rules::new(&stack.bundle.identity),
        )),
        Some(Arc::new(missing)),
        Arc::new(stack.bundle.clone()),
        Auth::Trusted,
    );
    let (status, e) = call(
        &router,
        "GET",
        "/api/v1/destinations/orders/dead-letters",
        None,
    )
    .await;
    assert_eq!(status, 503, "{e}");
    assert!(
        e.to_string()
            .contains("there is no queue `other-prefix-orders-dlq`"),
        "{e}"
    );
    drop(moto);
}

/// A GZIP NDJSON object, as Firehose writes the raw archive.
fn archive(lines: &[String]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in lines {
        gz.write_all(line.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_the_window_to_one_destination() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let s3 = aws_sdk_s3::Client::new(&stack.config);
    let bucket = "deliv-test-raw";
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let line = |v: serde_json::Value| v.to_string();
    let signup = |id: &str, at: &str| {
        line(
            serde_json::json!({"type": "track", "event": "Signed Up", "messageId": id,
            "receivedAt": at, "properties": {"method": "email"}}),
        )
    };
    let objects = [
        (
            "raw/year=2026/month=03/day=01/hour=09/a.json.gz",
            vec![line(order("early", "EUR", 1.0, "2026-03-01T09:30:00.000Z"))],
        ),
        (
            "raw/year=2026/month=03/day=01/hour=10/b.json.gz",
            vec![
                // Received before the window, archived in its first hour.
                line(order("before", "EUR", 1.0, "2026-03-01T09:59:59.999Z")),
                line(order("first", "EUR", 1.0, "2026-03-01T10:00:00.000Z")),
                line(order("usd", "USD", 1.0, "2026-03-01T10:30:00.000Z")),
                signup("signup", "2026-03-01T10:40:00.000Z"),
                "{not json".to_owned(),
                line(order("middle", "EUR", 1.0, "2026-03-01T10:45:00.000Z")),
            ],
        ),
        (
            "raw/year=2026/month=03/day=01/hour=11/c.json.gz",
            vec![
                // Archived in the next hour (Firehose's buffering).
                line(order("late", "EUR", 1.0, "2026-03-01T10:59:59.999Z")),
                line(order("end", "EUR", 1.0, "2026-03-01T11:00:00.000Z")),
            ],
        ),
        (
            "raw/year=2026/month=03/day=01/hour=13/d.json.gz",
            vec![line(order("later", "EUR", 1.0, "2026-03-01T13:00:00.000Z"))],
        ),
    ];
    for (key, lines) in &objects {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(archive(lines).into())
            .send()
            .await
            .unwrap();
    }
    let queues = Queues::new(&stack.config, PREFIX);
    let info = stack.info("orders");
    let from_ms = parse_ms("2026-03-01T10:00:00.000Z").unwrap();
    let to_ms = parse_ms("2026-03-01T11:00:00.000Z").unwrap();
    let mut progress = Vec::new();
    let report = queues
        .replay(
            &Replay {
                bucket,
                prefix: "raw/",
                destination: "orders",
                info: &info,
                from_ms,
                to_ms,
                event: None,
                dry_run: false,
            },
            |done, total| progress.push((done, total)),
        )
        .await
        .unwrap();
    // Hours 10 and 11 are read (11 for events archived late), not 9 or 13.
    assert_eq!(progress, [(0, 2), (1, 2), (2, 2)]);
    assert_eq!(report.objects, 2);
    assert_eq!(report.scanned, 8);
    assert_eq!(report.unreadable, 1);
    assert_eq!((report.selected, report.sent), (3, 3));
    let replayed = stack.drain(&stack.names.queue_url("orders")).await;
    let ids: Vec<&str> = replayed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["first", "late", "middle"]);
    assert!(replayed.iter().all(|m| m.attempts == 0));
    assert_eq!(
        replayed[0].received_ms,
        parse_ms("2026-03-01T10:00:00.000Z").unwrap()
    );
    // Only the destination asked for.
    assert!(stack.drain(&stack.names.queue_url("all")).await.is_empty());

    // Only one event's name, to a destination that takes every event.
    let info = stack.info("all");
    let report = queues
        .replay(
            &Replay {
                bucket,
                prefix: "raw/",
                destination: "all",
                info: &info,
                from_ms,
                to_ms,
                event: Some("Signed Up"),
                dry_run: false,
            },
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(report.sent, 1);
    let ids: Vec<String> = stack
        .drain(&stack.names.queue_url("all"))
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["signup"]);

    let empty = Replay {
        bucket,
        prefix: "raw/",
        destination: "all",
        info: &info,
        from_ms: to_ms,
        to_ms: from_ms,
        event: None,
        dry_run: false,
    };
    assert!(matches!(
        queues.replay(&empty, |_, _| {}).await,
        Err(QueueError::EmptyWindow { .. })
    ));
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_secrets_come_from_s3_ssm_secrets_manager_and_the_environment() {
    let moto = start_moto();
    let config = sdk_config(&moto.endpoint).await;
    let s3 = aws_sdk_s3::Client::new(&config);
    s3.create_bucket()
        .bucket("exports")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let objects = S3Objects::new(&config);
    objects
        .put(
            "exports",
            "uniflow/a.ndjson.gz",
            Bytes::from_static(b"{\"a\":1}\n"),
            "application/x-ndjson",
        )
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("exports")
        .key("uniflow/a.ndjson.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-ndjson"));
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"{\"a\":1}\n"
    );
    let missing = objects
        .put("no-such-bucket", "k", Bytes::new(), "text/plain")
        .await
        .unwrap_err();
    assert!(!missing.retryable, "{missing:?}");
    assert!(missing.message.contains("no-such-bucket/k"), "{missing:?}");

    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name("/deliv/token")
        .value("s3cr3t")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("deliv/hmac")
        .secret_string("hmac-key")
        .send()
        .await
        .unwrap();
    let secrets = AwsSecrets::new(&config);
    assert_eq!(secrets.resolve("ssm:/deliv/token").await.unwrap(), "s3cr3t");
    assert_eq!(
        secrets.resolve("secretsmanager:deliv/hmac").await.unwrap(),
        "hmac-key"
    );
    // Cargo sets this in the environment of every test it runs.
    assert_eq!(
        secrets.resolve("env:CARGO_PKG_NAME").await.unwrap(),
        "uniflow-runtime-aws"
    );
    for (reference, says) in [
        ("ssm:/deliv/missing", "/deliv/missing"),
        ("secretsmanager:deliv/missing", "deliv/missing"),
        (
            "env:UNIFLOW_NO_SUCH_VARIABLE",
            "UNIFLOW_NO_SUCH_VARIABLE is not set",
        ),
        ("vault:x", "not a secret reference"),
    ] {
        let e = secrets.resolve(reference).await.unwrap_err();
        assert!(!e.retryable, "{reference}: {e:?}");
        assert!(e.message.contains(says), "{reference}: {e:?}");
    }
    drop(moto);
}

/// What the local Lambda endpoint saw.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A local stand-in for Lambda's `Invoke` API: `echo` answers the payload,
/// `throws` answers a function error, `busy` is throttled, anything else
/// does not exist.
async fn lambda_endpoint() -> (String, Seen) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    async fn invocations(
        State(seen): State<Seen>,
        Path(name): Path<String>,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        seen.lock().unwrap().push((name.clone(), body.to_vec()));
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        match name.as_str() {
            "echo" => (StatusCode::OK, headers, body.to_vec()),
            "throws" => {
                headers.insert("x-amz-function-error", "Unhandled".parse().unwrap());
                (
                    StatusCode::OK,
                    headers,
                    br#"{"errorType":"Error","errorMessage":"boom"}"#.to_vec(),
                )
            }
            "busy" => {
                headers.insert(
                    "x-amzn-errortype",
                    "TooManyRequestsException".parse().unwrap(),
                );
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    headers,
                    br#"{"Type":"User","message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#.to_vec(),
                )
            }
            _ => {
                headers.insert(
                    "x-amzn-errortype",
                    "ResourceNotFoundException".parse().unwrap(),
                );
                (
                    StatusCode::NOT_FOUND,
                    headers,
                    br#"{"Type":"User","Message":"Function not found"}"#.to_vec(),
                )
            }
        }
    }

    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invocations),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoke_maps_answers_function_errors_and_throttling() {
    // moto cannot run Lambda functions without Docker: a local server
    // speaking the Invoke API stands in for Lambda.
    let (endpoint, seen) = lambda_endpoint().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let invoke = LambdaInvoke::new(&config);
    let payload = Bytes::from_static(br#"[{"messageId":"m1"}]"#);

    let answer = invoke.invoke("echo", payload.clone()).await.unwrap();
    assert_eq!(answer, payload);
    assert_eq!(
        seen.lock().unwrap()[0],
        ("echo".to_owned(), payload.to_vec())
    );

    let thrown = invoke.invoke("throws", payload.clone()).await.unwrap_err();
    assert!(!thrown.retryable);
    assert!(
        thrown.message.contains("(Unhandled)") && thrown.message.contains("boom"),
        "{thrown:?}"
    );

    let throttled = invoke.invoke("busy", payload.clone()).await.unwrap_err();
    assert!(throttled.retryable, "{throttled:?}");

    let missing = invoke.invoke("nope", payload).await.unwrap_err();
    assert!(!missing.retryable, "{missing:?}");
    assert!(
        missing.message.contains("Lambda Invoke nope"),
        "{missing:?}"
    );
}
