//! The processor benchmark: identity resolution and profile upserts on the
//! embedded store (redb), single-threaded as in `uniflow dev`, against the
//! raw write rate of the same store for the same number of writes.
//!
//! The mix: 80% track, 15% page, 5% identify, from `--people` distinct
//! people (100,000), 10% of whom sign in (their identify carries a user id
//! and an email; their later events carry the user id). Identity rules are
//! those of `examples/shop`. Both runs commit one durable transaction per
//! `--batch` events, as the processor does.
//!
//!   cargo run --release -p uniflow-loadgen --bin processor -- --events 1000000
//!
//! Prints one JSON report; times are reported, never asserted.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use redb::{Database, TableDefinition};
use serde_json::json;
use uniflow_loadgen::payload::{Rng, iso};
use uniflow_loadgen::stats::cpu_seconds;
use uniflow_runtime::embedded::profiles::EmbeddedProfiles;
use uniflow_runtime::profiles::{Report, Rules};
use uniflow_schemas::Bundle;

#[derive(Parser)]
struct Args {
    /// Events to process.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Distinct people.
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    /// Events per transaction (`uniflow dev`'s batch under load).
    #[arg(long, default_value_t = uniflow_runtime::embedded::PROCESS_BATCH)]
    batch: usize,
    /// The project whose identity rules apply.
    #[arg(long, default_value = "examples/shop/uniflow.kdl")]
    project: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let source = std::fs::read_to_string(&args.project)?;
    let (checked, artifacts) = uniflow_compiler::build(&source);
    if checked.has_errors() {
        return Err(format!("{} has errors", args.project.display()).into());
    }
    let bundle = Bundle::from_json(&artifacts.ok_or("no artifacts")?.files["bundle.json"])?;
    let events = generate(args.events, args.people);
    let bytes: usize = events.iter().map(Vec::len).sum();
    let dir = tempfile::tempdir()?;

    // The processor.
    let store = EmbeddedProfiles::open(
        &dir.path().join("profiles.redb"),
        Rules::new(&bundle.identity),
    )?;
    let cpu0 = cpu_seconds(None).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut total = Report::default();
    // As in `uniflow dev`, timeline entries refer to the events' log
    // offsets (here, where they would be in a log).
    let mut position = 0u64;
    for chunk in events.chunks(args.batch) {
        let views: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let offsets: Vec<u64> = chunk
            .iter()
            .map(|e| {
                let at = position;
                position += e.len() as u64 + 64;
                at
            })
            .collect();
        let r = store
            .apply_batch(&views, Some((&offsets, position)))
            .map_err(|e| e.to_string())?;
        total.applied += r.applied;
        total.duplicates += r.duplicates;
        total.merges += r.merges;
        total.refusals += r.refusals;
        total.writes += r.writes;
        if !r.invalid.is_empty() {
            return Err(format!("invalid events: {:?}", &r.invalid[..1]).into());
        }
    }
    let processor_secs = t0.elapsed().as_secs_f64();
    let processor_cpu = cpu_seconds(None).unwrap_or(0.0) - cpu0;
    if total.applied != events.len() {
        return Err(format!("applied {} of {} events", total.applied, events.len()).into());
    }

    // The same store, raw: as many writes, of the processor's sizes (a
    // profile document, an idempotency marker naming the profile, a timeline
    // entry referring to the log), random keys, in transactions of the same
    // number of events.
    const RAW: TableDefinition<&str, &[u8]> = TableDefinition::new("raw");
    let db = Database::create(dir.path().join("raw.redb"))?;
    let per_event = total.writes as f64 / events.len() as f64;
    let profile = vec![b'p'; 400];
    let cpu1 = cpu_seconds(None).unwrap_or(0.0);
    let t1 = Instant::now();
    let mut written = 0usize;
    let mut rng = Rng::new(7);
    for n in 0..events.len().div_ceil(args.batch) {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(RAW)?;
            let target = (((n + 1) * args.batch).min(events.len()) as f64 * per_event) as usize;
            while written < target {
                let key = rng.hex(32);
                let value: &[u8] = match written % 3 {
                    0 => &profile,
                    1 => b"0123456789abcdef0123456789abcdef",
                    _ => b"L01234567",
                };
                table.insert(key.as_str(), value)?;
                written += 1;
            }
        }
        txn.commit()?;
    }
    let raw_secs = t1.elapsed().as_secs_f64();
    let raw_cpu = cpu_seconds(None).unwrap_or(0.0) - cpu1;

    let events_per_sec = events.len() as f64 / processor_secs;
    let raw_writes_per_sec = written as f64 / raw_secs;
    let report = json!({
        "events": events.len(),
        "people": args.people,
        "event_bytes": bytes,
        "batch": args.batch,
        "processor": {
            "seconds": processor_secs,
            "cpu_seconds": processor_cpu,
            "events_per_sec": events_per_sec,
            "events_per_cpu_sec": events.len() as f64 / processor_cpu.max(1e-9),
            "writes": total.writes,
            "writes_per_event": per_event,
            "merges": total.merges,
            "refusals": total.refusals,
        },
        "raw_store": {
            "seconds": raw_secs,
            "cpu_seconds": raw_cpu,
            "writes": written,
            "writes_per_sec": raw_writes_per_sec,
            "events_per_sec_at_raw_speed": raw_writes_per_sec / per_event,
        },
        "ratio_processor_to_raw": raw_secs / processor_secs,
    });
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&report)?
    )?;
    Ok(())
}

/// The event mix, enriched as ingest stores it.
fn generate(n: usize, people: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(42);
    let mut identified = vec![false; people];
    let start = 1_767_225_600_000i64; // 2026-01-01
    (0..n)
        .map(|i| {
            let p = rng.range(0, people as u64 - 1) as usize;
            let signs_in = p.is_multiple_of(10);
            let ts = iso(start + i as i64 * 10);
            let roll = rng.range(0, 99);
            let mut e = json!({
                "messageId": format!("m-{i}"),
                "sourceId": "web",
                "anonymousId": format!("anon-{p}"),
                "timestamp": ts,
                "receivedAt": ts,
                "sentAt": ts,
                "context": {
                    "ip": "198.51.100.4",
                    "library": {"name": "analytics.js", "version": "5.2.0"},
                    "page": {"path": "/products/42", "url": "https://shop.example/products/42"},
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
                },
            });
            if signs_in && identified[p] {
                e["userId"] = json!(format!("user-{p}"));
            }
            match roll {
                0..80 => {
                    e["type"] = json!("track");
                    e["event"] = json!(rng.pick(&["Product Viewed", "Product Added", "Cart Viewed", "Order Completed"]));
                    e["properties"] = json!({"product_id": format!("sku-{}", rng.range(0, 4999)), "price": 19.99, "currency": "EUR", "quantity": 1});
                }
                80..95 => {
                    e["type"] = json!("page");
                    e["name"] = json!("Product");
                    e["properties"] = json!({"path": "/products/42", "title": "A product", "url": "https://shop.example/products/42"});
                }
                _ => {
                    e["type"] = json!("identify");
                    if signs_in {
                        identified[p] = true;
                        e["userId"] = json!(format!("user-{p}"));
                        e["traits"] = json!({"email": format!("Person{p}@example.org"), "name": format!("Person {p}"), "plan": "pro"});
                    } else {
                        e["traits"] = json!({"plan": "free", "newsletter": rng.range(0, 1) == 1});
                    }
                }
            }
            serde_json::to_vec(&e).unwrap_or_default()
        })
        .collect()
}
