//! The delivery benchmark: batched webhook delivery from the embedded queue
//! (what `uniflow dev` runs) to a receiver that answers 200 at once
//! (`uniflow-receiver`, started by `bench/delivery.sh`), against the
//! receiver's own maximum measured in the same run: the same batch bodies
//! POSTed straight to it by this process with as many requests in flight.
//!
//! Then isolation: the same delivery with a second destination beside it
//! that fails every attempt (a closed port), to show that a broken
//! destination does not slow a healthy one.
//!
//!   cargo run --release -p uniflow-loadgen --bin delivery -- --receiver http://127.0.0.1:PORT
//!
//! Prints one JSON report; times are reported, never asserted. Exits
//! non-zero only when something failed (an event not delivered, a receiver
//! count that does not add up).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::watch;
use uniflow_loadgen::payload::{Rng, iso};
use uniflow_runtime::backend::EventSink;
use uniflow_runtime::connectors::{self, LocalObjects, LocalSecrets, Services};
use uniflow_runtime::delivery::Shaper;
use uniflow_runtime::embedded::Log;
use uniflow_runtime::embedded::deliver::{IN_FLIGHT, Route, run_deliveries};
use uniflow_runtime::embedded::queues::EmbeddedQueues;
use uniflow_runtime::record::{Record, RecordKind};
use uniflow_schemas::bundle::{BatchPolicy, ConnectorSettings, DestinationInfo, RetryPolicy};

/// The allocator `uniflow dev` runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// The receiver's base URL.
    #[arg(long)]
    receiver: String,
    /// Events to deliver per run.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per webhook request.
    #[arg(long, default_value_t = 100)]
    batch: u32,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn destination(url: &str, batch: u32) -> DestinationInfo {
    DestinationInfo {
        kind: "webhook".to_owned(),
        events: None,
        types: None,
        filter: None,
        condition: None,
        transforms: Vec::new(),
        template: None,
        connector: ConnectorSettings::Webhook {
            url: url.to_owned(),
            headers: Vec::new(),
            timeout_secs: 10,
            secret: None,
        },
        retry: RetryPolicy {
            attempts: 10,
            exponential: true,
            delay_ms: 1000,
            max_age_secs: 24 * 3600,
        },
        batch: BatchPolicy {
            max_events: batch,
            max_bytes: 4 << 20,
            max_wait_secs: 0,
        },
    }
}

/// `count` stored events as ingest writes them (about 400 bytes each).
fn events(count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(7);
    let now = now_ms();
    (0..count)
        .map(|i| {
            let event = json!({
                "type": "track",
                "event": "Product Viewed",
                "messageId": format!("bench-{i:09}"),
                "anonymousId": format!("anon-{}", rng.range(0, 100_000)),
                "timestamp": iso(now + i as i64),
                "receivedAt": iso(now + i as i64),
                "sentAt": iso(now + i as i64),
                "sourceId": "web",
                "properties": {"product_id": format!("sku-{}", rng.range(0, 5_000)), "price": 19.99, "currency": "EUR"},
                "context": {"library": {"name": "analytics.js", "version": "5.2.0"}, "ip": "203.0.113.9"},
            });
            serde_json::to_vec(&event).unwrap_or_default()
        })
        .collect()
}

async fn receiver_count(base: &str) -> Result<u64, Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(format!("{base}/count").parse()?).await?;
    let body = response.into_body().collect().await?.to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body)?;
    doc["events"]
        .as_u64()
        .ok_or_else(|| "the receiver's count is not a number".into())
}

/// The receiver alone: the same `{"batch": [...]}` bodies the connector
/// sends, `IN_FLIGHT` requests at a time.
async fn anchor(base: &str, events: &[Vec<u8>], batch: usize) -> Result<f64, Error> {
    let bodies: Vec<Bytes> = events
        .chunks(batch)
        .map(|chunk| {
            let mut body = b"{\"batch\":[".to_vec();
            for (i, e) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(e);
            }
            body.extend_from_slice(b"],\"sentAt\":\"2026-11-26T00:00:00.000Z\"}");
            Bytes::from(body)
        })
        .collect();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url: http::Uri = format!("{base}/hook").parse()?;
    let before = receiver_count(base).await?;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, url, next, bodies) =
            (client.clone(), url.clone(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), Error>(());
                };
                let request = http::Request::post(url.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?;
                let response = client.request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                if !status.is_success() {
                    return Err(format!("the receiver answered {status}").into());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let counted = receiver_count(base).await? - before;
    if counted != events.len() as u64 {
        return Err(format!("the receiver counted {counted} of {} events", events.len()).into());
    }
    Ok(events.len() as f64 / secs)
}

/// The pipeline: the events in a fresh log, delivered from the start by the
/// embedded worker and the real webhook connector; with `broken`, a second
/// destination that fails every attempt runs beside it.
async fn pipeline(base: &str, events: &[Vec<u8>], batch: u32, broken: bool) -> Result<f64, Error> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(&dir.path().join("log"))?;
    // Received now: within the retry policy's maximum age.
    let received = now_ms();
    let records: Vec<Record> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Record {
            kind: RecordKind::Accepted,
            source: "web".to_owned(),
            message_id: format!("bench-{i:09}"),
            partition_key: "p".to_owned(),
            received_at_ms: received + i as i64,
            json: e.clone(),
        })
        .collect();
    for chunk in records.chunks(10_000) {
        log.append(chunk.to_vec()).await?;
    }
    let queues = EmbeddedQueues::open(&dir.path().join("deliveries.redb"))?;
    let services = Services {
        secrets: Arc::new(LocalSecrets::new(dir.path().join("secrets.json"))),
        objects: Arc::new(LocalObjects::new(dir.path().join("exports"))),
        invoke: None,
    };
    let mut targets = vec![("healthy", destination(&format!("{base}/hook"), batch))];
    if broken {
        // Nothing listens on port 9: every attempt fails at once.
        targets.push(("broken", destination("http://127.0.0.1:9/hook", batch)));
    }
    let (stop, stop_rx) = watch::channel(false);
    let before = receiver_count(base).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (name, info) in targets {
        // From the start of the log (a destination's queue that existed
        // before the events arrived).
        queues.cursor_or_start(name, 0)?;
        let shaper = Shaper::new(&info)?;
        let connector = connectors::build(name, &info, &services).await?;
        let route = Arc::new(Route {
            name: name.to_owned(),
            info,
            shape: Box::new(move |e: &[u8]| shaper.shape(e).map_err(|e| e.to_string())),
            connector: Arc::from(connector),
        });
        tasks.push(tokio::spawn(run_deliveries(
            log.clone(),
            queues.clone(),
            route,
            stop_rx.clone(),
            Arc::new(|_: &str| {}),
        )));
    }
    let total = events.len() as u64;
    loop {
        let delivered = queues.stats("healthy")?.0.delivered;
        if delivered >= total {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(format!("only {delivered} of {total} delivered in 10 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for t in tasks {
        t.await?;
    }
    let counted = receiver_count(base).await? - before;
    if counted != total {
        return Err(format!("the receiver counted {counted} of {total} events").into());
    }
    Ok(total as f64 / secs)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let base = args.receiver.trim_end_matches('/').to_owned();
    let events = events(args.events);
    // Warm the receiver, the connections and the pipeline.
    anchor(
        &base,
        &events[..events.len().min(20_000)],
        args.batch as usize,
    )
    .await?;
    pipeline(
        &base,
        &events[..events.len().min(20_000)],
        args.batch,
        false,
    )
    .await?;
    let receiver_max = anchor(&base, &events, args.batch as usize).await?;
    let delivered = pipeline(&base, &events, args.batch, false).await?;
    let beside_broken = pipeline(&base, &events, args.batch, true).await?;
    let report = json!({
        "events": args.events,
        "batch": args.batch,
        "in_flight": IN_FLIGHT,
        "receiver_max_events_per_s": receiver_max.round(),
        "delivery_events_per_s": delivered.round(),
        "ratio_to_receiver_max": (delivered / receiver_max * 1000.0).round() / 1000.0,
        "goal_ratio": 0.5,
        "delivery_beside_a_broken_destination_events_per_s": beside_broken.round(),
        "isolation_ratio": (beside_broken / delivered * 1000.0).round() / 1000.0,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
