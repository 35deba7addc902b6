//! Crash safety of `uniflow dev`: batches are sent in a loop while the server
//! is killed with SIGKILL at random moments and restarted, again and again.
//! Every messageId that got a 2xx must then be in the log, and every event
//! in the archive exactly once.

#![allow(clippy::disallowed_methods)] // the test drives a real process and reads its files

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{post_batch, root, start_dev, status, write_key};

/// Short archive batches, no rate limit: as many crash points as possible.
const CRASH_ARGS: [&str; 4] = ["--archive-wait-ms", "150", "--rate-limit", "1000000"];

fn batch(ids: &[String]) -> String {
    let events: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"type":"track","event":"Product Viewed","messageId":"{id}","anonymousId":"anon-{id}","properties":{{"product_id":"p-1","name":"Tent","price":199.0}}}}"#
            )
        })
        .collect();
    format!(r#"{{"batch":[{}]}}"#, events.join(","))
}

fn archived(data: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut stack = vec![data.join("archive/raw")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                for line in text.lines() {
                    let event: serde_json::Value = serde_json::from_str(line).unwrap();
                    let id = event["messageId"].as_str().unwrap().to_owned();
                    *counts.entry(id).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

#[test]
fn nothing_acknowledged_is_lost_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let kills = 12;
    for round in 0..kills {
        let server = start_dev(&data, &CRASH_ARGS);
        let key = write_key(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (stop, acked, sent, key) =
                    (stop.clone(), acked.clone(), sent.clone(), key.clone());
                let port = server.port;
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let ids: Vec<String> =
                            (0..20).map(|i| format!("r{round}-t{t}-b{n}-{i}")).collect();
                        n += 1;
                        sent.fetch_add(ids.len(), Ordering::Relaxed);
                        if post_batch(port, &key, &batch(&ids))
                            .as_deref()
                            .and_then(status)
                            == Some(200)
                        {
                            acked.lock().unwrap().extend(ids);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rand() % 600));
        let mut server = server;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 1000,
        "too few acknowledged events to mean anything: {}",
        acked.len()
    );

    // Restart once more and stop gracefully: everything is archived.
    let mut server = start_dev(&data, &CRASH_ARGS);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "uniflow dev exited with {exit}");

    // In the log...
    let log = uniflow_runtime::embedded::Log::open(&data.join("log")).unwrap();
    let mut reader = log.reader(0).unwrap();
    let mut in_log = BTreeMap::new();
    while let Some((r, _)) = reader.next_record().unwrap() {
        *in_log.entry(r.message_id).or_insert(0usize) += 1;
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !in_log.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not in the log, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = in_log.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "in the log twice: {twice:?}");
    // ...and in the archive exactly once.
    let archive = archived(&data);
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !archive.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not archived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = archive.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "archived more than once: {:?}",
        &twice[..twice.len().min(5)]
    );
    assert_eq!(
        archive.len(),
        in_log.len(),
        "the archive and the log hold different events"
    );
    // ...and applied to profiles exactly once: every event has its own
    // anonymous id, so one profile per event, each counting one track.
    let source = std::fs::read_to_string(root().join("examples/shop/uniflow.kdl")).unwrap();
    let (_, artifacts) = uniflow_compiler::build(&source);
    let bundle =
        uniflow_schemas::Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap();
    let profiles = uniflow_runtime::embedded::profiles::EmbeddedProfiles::open(
        &data.join("profiles.redb"),
        uniflow_runtime::profiles::Rules::new(&bundle.identity),
    )
    .unwrap();
    // A stop leaves the rest of the log to the next start: apply it as
    // that start would.
    while uniflow_runtime::embedded::process_log(&log, &profiles, 50_000)
        .unwrap()
        .0
        > 0
    {}
    assert_eq!(profiles.cursor().unwrap(), log.committed());
    let (live, counted) = profiles.totals().unwrap();
    assert_eq!(
        live as usize,
        in_log.len(),
        "profiles made from the log's events"
    );
    assert_eq!(counted as usize, in_log.len(), "events counted on profiles");
    let out = std::io::stderr();
    let _ = writeln!(
        out.lock(),
        "crash test: {kills} SIGKILLs, {} events sent, {} acknowledged, {} in the log, all archived once and counted once on profiles",
        sent.load(Ordering::Relaxed),
        acked.len(),
        in_log.len()
    );
}
