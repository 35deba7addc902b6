//! The embedded delivery worker against a real event log and queue store,
//! with connectors scripted in-process: routing, retries, dead letters,
//! redrive, isolation and a stop in the middle of deliveries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use uniflow_runtime::backend::EventSink;
use uniflow_runtime::delivery::{Connector, Delivering, Outcome, Outgoing};
use uniflow_runtime::embedded::Log;
use uniflow_runtime::embedded::deliver::{Route, run_deliveries};
use uniflow_runtime::embedded::queues::EmbeddedQueues;
use uniflow_runtime::record::{Record, RecordKind};
use uniflow_schemas::bundle::{BatchPolicy, ConnectorSettings, DestinationInfo, RetryPolicy};
use uniflow_schemas::condition::Condition;

type Script = dyn Fn(&str, u32) -> Outcome + Send + Sync;

/// A connector that answers by script (message id, attempt number from 1)
/// and records every attempt.
struct Scripted {
    script: Box<Script>,
    attempts: Mutex<BTreeMap<String, u32>>,
    delivered: Mutex<Vec<String>>,
    batches: Mutex<Vec<usize>>,
    delay: Duration,
}

impl Scripted {
    fn new(
        delay: Duration,
        script: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Scripted {
            script: Box::new(script),
            attempts: Mutex::new(BTreeMap::new()),
            delivered: Mutex::new(Vec::new()),
            batches: Mutex::new(Vec::new()),
            delay,
        })
    }

    fn delivered(&self) -> Vec<String> {
        let mut d = self.delivered.lock().unwrap().clone();
        d.sort();
        d
    }
}

impl Connector for Scripted {
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.batches.lock().unwrap().push(batch.len());
            batch
                .iter()
                .map(|o| {
                    let n = {
                        let mut a = self.attempts.lock().unwrap();
                        let n = a.entry(o.id.clone()).or_insert(0);
                        *n += 1;
                        *n
                    };
                    let outcome = (self.script)(&o.id, n);
                    if outcome == Outcome::Delivered {
                        self.delivered.lock().unwrap().push(o.id.clone());
                    }
                    outcome
                })
                .collect()
        })
    }
}

fn destination(events: Option<&[&str]>, filter: Option<&str>, attempts: u32) -> DestinationInfo {
    DestinationInfo {
        kind: "webhook".to_owned(),
        events: events.map(|e| e.iter().map(|s| (*s).to_owned()).collect()),
        types: None,
        filter: filter.map(str::to_owned),
        condition: filter.map(|f| Condition::parse(f).unwrap()),
        transforms: Vec::new(),
        template: None,
        connector: ConnectorSettings::Webhook {
            url: "http://127.0.0.1:9/".to_owned(),
            headers: Vec::new(),
            timeout_secs: 5,
            secret: None,
        },
        retry: RetryPolicy {
            attempts,
            exponential: true,
            delay_ms: 10,
            max_age_secs: 3600,
        },
        batch: BatchPolicy {
            max_events: 10,
            max_bytes: 1 << 20,
            max_wait_secs: 0,
        },
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn event(i: usize, name: &str, revenue: i64) -> Record {
    let id = format!("m{i:04}");
    let json = serde_json::json!({
        "type": "track", "event": name, "messageId": id, "userId": "u1",
        "properties": {"revenue": revenue},
    });
    Record {
        kind: RecordKind::Accepted,
        source: "web".to_owned(),
        message_id: id.clone(),
        partition_key: "u1".to_owned(),
        received_at_ms: now_ms(),
        json: serde_json::to_vec(&json).unwrap(),
    }
}

struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

fn start(
    log: &Log,
    queues: &EmbeddedQueues,
    routes: Vec<(&str, DestinationInfo, Arc<Scripted>)>,
) -> Running {
    let (stop, rx) = watch::channel(false);
    let tasks = routes
        .into_iter()
        .map(|(name, info, connector)| {
            queues.cursor_or_start(name, log.committed()).unwrap();
            let route = Arc::new(Route {
                name: name.to_owned(),
                info,
                shape: Box::new(|e: &[u8]| Ok(Bytes::copy_from_slice(e))),
                connector,
            });
            tokio::spawn(run_deliveries(
                log.clone(),
                queues.clone(),
                route,
                rx.clone(),
                Arc::new(|_: &str| {}),
            ))
        })
        .collect();
    Running { stop, tasks }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_destination_gets_what_it_subscribed_to_through_retries_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log")).unwrap();
    let queues = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();

    // Orders over 100 only; every message fails twice with a 500.
    let orders = Scripted::new(Duration::ZERO, |_, n| {
        if n <= 2 {
            Outcome::Retry {
                reason: "HTTP 500".to_owned(),
                after: None,
            }
        } else {
            Outcome::Delivered
        }
    });
    // Everything; m0003 is refused for good.
    let all = Scripted::new(Duration::ZERO, |id, _| {
        if id == "m0003" {
            Outcome::Failed {
                reason: "HTTP 400: bad".to_owned(),
            }
        } else {
            Outcome::Delivered
        }
    });
    let running = start(
        &log,
        &queues,
        vec![
            (
                "orders",
                destination(
                    Some(&["Order Completed"]),
                    Some("properties.revenue > 100"),
                    5,
                ),
                orders.clone(),
            ),
            ("all", destination(None, None, 5), all.clone()),
        ],
    );
    let records: Vec<Record> = (0..40)
        .map(|i| {
            let name = if i % 2 == 0 {
                "Order Completed"
            } else {
                "Signed Up"
            };
            event(i, name, if i % 4 == 0 { 500 } else { 50 })
        })
        .collect();
    log.append(records).await.unwrap();

    let expected_orders: Vec<String> = (0..40)
        .filter(|i| i % 4 == 0)
        .map(|i| format!("m{i:04}"))
        .collect();
    until("orders are delivered", || {
        orders.delivered() == expected_orders
    })
    .await;
    let mut expected_all = ids(0..40);
    expected_all.retain(|id| id != "m0003");
    until("all are delivered", || all.delivered() == expected_all).await;
    until("the dead letter is committed", || {
        queues.stats("all").unwrap().0.dead_lettered == 1
    })
    .await;

    let (counters, pending, dead) = queues.stats("orders").unwrap();
    assert_eq!(counters.delivered, 10);
    assert_eq!(counters.retried, 20, "two retries for each of 10 orders");
    assert_eq!((pending, dead), (0, 0));
    // Each order was attempted exactly three times.
    assert!(orders.attempts.lock().unwrap().values().all(|n| *n == 3));

    let letters = queues.dead_letters("all", 0, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message.id, "m0003");
    assert_eq!(letters[0].reason, "HTTP 400: bad");
    assert_eq!(letters[0].message.attempts, 1);

    // Redrive: the receiver now takes it.
    let fixed = Scripted::new(Duration::ZERO, |_, _| Outcome::Delivered);
    running.stop().await;
    let moved = queues.redrive("all", None, None, now_ms()).unwrap();
    assert_eq!(moved.moved, 1);
    let running = start(
        &log,
        &queues,
        vec![("all", destination(None, None, 5), fixed.clone())],
    );
    until("the redriven event is delivered", || {
        fixed.delivered() == ["m0003"]
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_run_out_into_the_dead_letter_queue_with_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log")).unwrap();
    let queues = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();
    let down = Scripted::new(Duration::ZERO, |_, n| Outcome::Retry {
        reason: format!("connection refused ({n})"),
        after: None,
    });
    let running = start(
        &log,
        &queues,
        vec![("down", destination(None, None, 4), down.clone())],
    );
    log.append((0..5).map(|i| event(i, "A", 1)).collect())
        .await
        .unwrap();
    until("all are dead-lettered", || {
        queues.stats("down").unwrap().2 == 5
    })
    .await;
    running.stop().await;
    let letters = queues.dead_letters("down", 0, 10).unwrap();
    for l in &letters {
        assert_eq!(l.message.attempts, 4);
        assert_eq!(
            l.message.last_error.as_deref(),
            Some("connection refused (4)")
        );
        assert!(
            l.reason.starts_with("gave up after 4 attempts"),
            "{}",
            l.reason
        );
    }
    assert!(down.attempts.lock().unwrap().values().all(|n| *n == 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_does_not_hold_back_another() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log")).unwrap();
    let queues = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();
    // Slow and always failing.
    let broken = Scripted::new(Duration::from_millis(200), |_, _| Outcome::Retry {
        reason: "HTTP 503".to_owned(),
        after: Some(Duration::from_secs(60)),
    });
    let healthy = Scripted::new(Duration::ZERO, |_, _| Outcome::Delivered);
    let running = start(
        &log,
        &queues,
        vec![
            ("broken", destination(None, None, 100), broken.clone()),
            ("healthy", destination(None, None, 100), healthy.clone()),
        ],
    );
    for chunk in 0..10 {
        log.append(
            (chunk * 100..chunk * 100 + 100)
                .map(|i| event(i, "A", 1))
                .collect(),
        )
        .await
        .unwrap();
    }
    until("the healthy destination has everything", || {
        healthy.delivered().len() == 1000
    })
    .await;
    // The broken one stopped reading the log after its first failed round:
    // it holds one round of pending messages, not a copy of the log.
    let attempted = broken.attempts.lock().unwrap().len();
    assert!(
        attempted <= 80,
        "the broken destination attempted {attempted} events"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_deliveries_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log")).unwrap();
    let queues = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();
    let slow = Scripted::new(Duration::from_millis(30), |_, _| Outcome::Delivered);
    let running = start(
        &log,
        &queues,
        vec![("d", destination(None, None, 5), slow.clone())],
    );
    log.append((0..500).map(|i| event(i, "A", 1)).collect())
        .await
        .unwrap();
    until("some are delivered", || !slow.delivered().is_empty()).await;
    running.stop().await;
    let first: Vec<String> = slow.delivered();
    assert!(first.len() < 500, "stopped before the end");

    let rest = Scripted::new(Duration::ZERO, |_, _| Outcome::Delivered);
    let running = start(
        &log,
        &queues,
        vec![("d", destination(None, None, 5), rest.clone())],
    );
    let all = ids(0..500);
    until("everything reached the receiver", || {
        let mut seen = first.clone();
        seen.extend(rest.delivered());
        seen.sort();
        seen.dedup();
        seen == all
    })
    .await;
    running.stop().await;
    // At least once: what was delivered before the stop and not committed
    // is delivered again, never more than one round's worth.
    let again = rest
        .delivered()
        .iter()
        .filter(|id| first.contains(id))
        .count();
    assert!(again <= 80, "{again} delivered twice");
}
