//! `uniflow dlq` and `uniflow replay` against a real `uniflow dev`: dead
//! letters listed, shown and redriven; archived events replayed to one
//! destination's queue; and the errors a person meets.
//!
//! The project's webhooks point at 127.0.0.1:9, where nothing listens, so
//! whatever reaches their queues stays there, retrying: the counts hold
//! whether or not `uniflow dev` runs delivery workers.

#![allow(clippy::disallowed_methods)] // the test drives real processes and reads their files

mod support;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Dev, Run, post_batch, root, run, start_dev_in, status, uniflow_command};
use uniflow_runtime::delivery::Message;
use uniflow_runtime::embedded::queues::{EmbeddedQueues, Settle};

/// Runs `uniflow ARGS... PROJECT --data DATA` with no terminal.
fn uniflow(args: &[&str], project: &Path, data: &Path) -> Run {
    run(uniflow_command()
        .args(args)
        .arg(project)
        .arg("--data")
        .arg(data)
        .current_dir(root()))
}

/// A project with one source, two events, and the webhook `hook` (both
/// events) when `with_hook`, beside `other` (orders only).
fn write_project(dir: &Path, with_hook: bool) {
    let hook = if with_hook {
        r#"
// Nothing listens on port 9: what is queued stays, retrying.
destination "hook" kind="webhook" {
    url "http://127.0.0.1:9/"
    events "Order Completed" "Signed Up"
    retry attempts=100 max-age="14d"
}
"#
    } else {
        ""
    };
    let text = format!(
        r#"project "deliveries" {{
    region "eu-west-1"
    stage "dev"
}}

source "backend" kind="server"

event "Order Completed" {{
    property "order_id" type="string" required=#true
    property "currency" type="enum" values="EUR USD"
}}

event "Signed Up" {{
    property "method" type="enum" values="email google"
}}
{hook}
destination "other" kind="webhook" {{
    url "http://127.0.0.1:9/other"
    events "Order Completed"
    retry attempts=100 max-age="14d"
}}
"#
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("uniflow.kdl"), text).unwrap();
}

/// GETs a management API route and reads its JSON answer.
fn get(dev: &Dev, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", dev.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        dev.token
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert_eq!(status(&response), Some(200), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

fn metrics(dev: &Dev, destination: &str) -> Value {
    get(dev, &format!("/destinations/{destination}/metrics"))
}

/// The events in the raw archive under `data`.
fn archived(data: &Path) -> usize {
    fn walk(dir: &Path, count: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, count);
            } else if path.extension().is_some_and(|e| e == "gz") {
                let file = std::fs::File::open(&path).unwrap();
                let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
                *count += reader.lines().count();
            }
        }
    }
    let mut count = 0;
    walk(&data.join("archive/raw"), &mut count);
    count
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Three orders, two sign-ups and an identify.
const EVENTS: &str = r#"{"batch":[
{"type":"track","event":"Order Completed","messageId":"o1","userId":"u1","properties":{"order_id":"1","currency":"EUR"}},
{"type":"track","event":"Signed Up","messageId":"s1","userId":"u1","properties":{"method":"email"}},
{"type":"track","event":"Order Completed","messageId":"o2","userId":"u2","properties":{"order_id":"2","currency":"USD"}},
{"type":"identify","messageId":"i1","userId":"u2","traits":{}},
{"type":"track","event":"Signed Up","messageId":"s2","userId":"u3","properties":{"method":"google"}},
{"type":"track","event":"Order Completed","messageId":"o3","userId":"u3","properties":{"order_id":"3","currency":"EUR"}}
]}"#;

#[test]
fn replay_sends_archived_events_to_one_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let data = tmp.path().join("data");

    // Before `hook` exists, events arrive and are archived.
    write_project(&project, false);
    let dev = start_dev_in(&project, &data, &["--archive-wait-ms", "50"]);
    let doc: Value =
        serde_json::from_slice(&std::fs::read(data.join("sources.json")).unwrap()).unwrap();
    let key = doc["sources"]["backend"]["write_key"].as_str().unwrap();
    let answer = post_batch(dev.port, key, EVENTS).expect("an answer");
    assert_eq!(status(&answer), Some(200), "{answer}");
    assert!(answer.contains(r#""accepted":6"#), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while archived(&data) < 6 {
        assert!(Instant::now() < deadline, "the events were not archived");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The file gains `hook` but the running `uniflow dev` has not: the
    // API refuses, exit 1.
    write_project(&project, true);
    let run = uniflow(
        &["replay", "hook", "--from", "-1h", "--to", "now"],
        &project,
        &data,
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        run.stderr,
        "error: no destination `hook` in this project (it has: other) (destination_not_found)\n"
    );
    drop(dev);

    // Restarted with `hook`, which starts with an empty queue.
    let dev = start_dev_in(&project, &data, &[]);
    assert_eq!(metrics(&dev, "hook")["queued"], 0);
    // `other` has had the orders since the first start (nothing listens at
    // its URL: they wait for retries); replays to `hook` must not add to it.
    let other = |dev: &_| {
        let m = metrics(dev, "other");
        ["queued", "dlqDepth", "delivered"]
            .iter()
            .map(|k| m[*k].as_u64().unwrap())
            .sum::<u64>()
    };
    let other_before = other(&dev);
    let to = uniflow_runtime::time::format_ms(now_ms() + 3_600_000);
    let window = ["--from", "-1h", "--to", &to];
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v = vec!["replay".to_owned(), "hook".to_owned()];
        v.extend(window.iter().map(|s| (*s).to_owned()));
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let replay = |extra: &[&'static str]| {
        let owned = args(extra);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        uniflow(&refs, &project, &data)
    };

    // A dry run counts and sends nothing.
    let run = replay(&["--event", "Order Completed", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("would replay 3 `Order Completed` events received in ["),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(dry run: nothing sent)"));
    assert_eq!(metrics(&dev, "hook")["queued"], 0);

    // Only orders, only to `hook`.
    let run = replay(&["--event", "Order Completed"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("replayed 3 `Order Completed` events"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("to `hook`'s queue"), "{}", run.stdout);
    assert_eq!(metrics(&dev, "hook")["queued"], 3);

    // Everything `hook` receives: the two sign-ups too, not the identify.
    let run = replay(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("replayed 5 events"),
        "{}",
        run.stdout
    );
    assert_eq!(metrics(&dev, "hook")["queued"], 8);

    // A window with nothing in it says so.
    let run = uniflow(
        &[
            "replay",
            "hook",
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-02",
        ],
        &project,
        &data,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "no events to replay: the archive has none received in [2020-01-01T00:00:00.000Z, 2020-01-02T00:00:00.000Z)\n"
    );

    // Errors: each says what is wrong, exit 1.
    for (args, says) in [
        (
            vec!["replay", "hook", "--from", "yesterday", "--to", "now"],
            "error: --from `yesterday` is not a time: write 2026-11-25T10:00:00Z (RFC 3339)",
        ),
        (
            vec!["replay", "hook", "--from", "-1h", "--to", "-2h"],
            "error: the window is empty: --from (",
        ),
        (
            vec!["replay", "nope", "--from", "-1h", "--to", "now"],
            "error: no destination `nope` in this project (it has: hook, other)",
        ),
        (
            vec![
                "replay",
                "other",
                "--from",
                "-1h",
                "--to",
                "now",
                "--event",
                "Signed Up",
            ],
            "error: destination `other` does not receive `Signed Up` (its events: Order Completed)",
        ),
    ] {
        let run = uniflow(&args, &project, &data);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert_eq!(metrics(&dev, "hook")["queued"], 8);
    assert_eq!(other(&dev), other_before);

    // Without `uniflow dev`: a dry run still counts, sending cannot.
    drop(dev);
    let run = replay(&["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("would replay 5 events"),
        "{}",
        run.stdout
    );
    let run = replay(&[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("is `uniflow dev` running?"),
        "{}",
        run.stderr
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = uniflow(
        &["replay", "hook", "--from", "-1h", "--to", "now"],
        &project,
        &empty,
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("error: no archive in"),
        "{}",
        run.stderr
    );
}

/// A message of `hook`'s queue, received now.
fn message(id: &str, attempts: u32, event: Value) -> Message {
    serde_json::from_value(json!({
        "id": id,
        "received_ms": now_ms(),
        "attempts": attempts,
        "last_error": "connection refused",
        "event": event,
    }))
    .unwrap()
}

const LONG_REASON: &str = "HTTP 400 Bad Request: {\"error\":\"the field order_id is not known to this receiver, check the mapping\"}";

#[test]
fn dlq_lists_shows_and_redrives_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let data = tmp.path().join("data");
    write_project(&project, true);

    // Two dead letters, put there before `uniflow dev` opens the queues.
    std::fs::create_dir_all(&data).unwrap();
    let queues = EmbeddedQueues::open(&data.join("deliveries.redb")).unwrap();
    let order = json!({"type": "track", "event": "Order Completed", "messageId": "m-order",
        "userId": "u1", "receivedAt": "2026-11-25T10:00:00.000Z",
        "properties": {"order_id": "1", "currency": "EUR"}});
    let signup = json!({"type": "track", "event": "Signed Up", "messageId": "m-signup",
        "userId": "u2", "receivedAt": "2026-11-25T10:01:00.000Z",
        "properties": {"method": "email"}});
    queues
        .settle(
            "hook",
            &[
                Settle::DeadLetter {
                    from: None,
                    reason: LONG_REASON.to_owned(),
                    message: message("m-order", 3, order),
                },
                Settle::DeadLetter {
                    from: None,
                    reason: "gave up after 10 attempts: connection refused".to_owned(),
                    message: message("m-signup", 10, signup),
                },
            ],
            None,
            now_ms(),
        )
        .unwrap();
    queues.sync().unwrap();
    drop(queues);
    let dev = start_dev_in(&project, &data, &[]);
    let dlq = |args: &[&str]| {
        let mut all = vec!["dlq"];
        all.extend_from_slice(args);
        uniflow(&all, &project, &data)
    };

    // The table: one line each, the reason shortened.
    let run = dlq(&["list", "hook"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].starts_with("HANDLE  MESSAGE ID  EVENT"),
        "{}",
        lines[0]
    );
    for (line, cells) in lines[1..].iter().zip([
        [
            "1",
            "m-order",
            "Order Completed",
            "3",
            "HTTP 400 Bad Request",
        ],
        [
            "2",
            "m-signup",
            "Signed Up",
            "10",
            "gave up after 10 attempts",
        ],
    ]) {
        let mut at = 0;
        for cell in cells {
            let found = line[at..]
                .find(cell)
                .unwrap_or_else(|| panic!("{cell} in {line}"));
            at += found + cell.len();
        }
    }
    assert!(lines[1].ends_with("..."), "{}", lines[1]);
    assert!(!run.stdout.contains("check the mapping"));

    // JSON has it all.
    let run = dlq(&["list", "hook", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let letters: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 2);
    assert_eq!(letters[0]["reason"], LONG_REASON);
    assert_eq!(letters[0]["message"]["id"], "m-order");
    assert_eq!(
        letters[0]["message"]["event"]["properties"]["currency"],
        "EUR"
    );

    let run = dlq(&["list", "hook", "--limit", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("... 1 shown of 2 dead letters: --limit to see more\n"),
        "{}",
        run.stdout
    );

    // A full last page with nothing after it says nothing more.
    let run = dlq(&["list", "hook", "--limit", "2"]);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);

    // One in full, by messageId or by handle.
    let run = dlq(&["show", "hook", "m-signup"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("dead letter 2 of `hook`\n"),
        "{}",
        run.stdout
    );
    for needle in [
        "  messageId    m-signup\n",
        "  event        Signed Up\n",
        "  attempts     10\n",
        "  reason       gave up after 10 attempts: connection refused\n",
        "  last error   connection refused\n",
        "    \"method\": \"email\"",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    let run = dlq(&["show", "hook", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(LONG_REASON), "{}", run.stdout);
    let run = dlq(&["show", "hook", "1", "--format", "json"]);
    let letter: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(letter["message"]["attempts"], 3);
    let run = dlq(&["show", "hook", "m-nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: no dead letter `m-nope` for `hook`: no handle or messageId is `m-nope` among its 2 dead letters (`uniflow dlq list hook` shows them)\n"
    );

    // Empty and unknown destinations.
    let run = dlq(&["list", "other"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("no dead letters for `other`"),
        "{}",
        run.stdout
    );
    let run = dlq(&["list", "nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no destination `nope` in this project (it has: hook, other)"),
        "{}",
        run.stderr
    );

    // Redrive asks, or needs --yes; a bad filter is refused before.
    let run = dlq(&["redrive", "hook"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("refusing to redrive without --yes"));
    let run = dlq(&["redrive", "hook", "--filter", "event = ", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: the filter `event = `"),
        "{}",
        run.stderr
    );
    assert_eq!(metrics(&dev, "hook")["dlqDepth"], 2);

    // Only the order goes back to the queue.
    let run = dlq(&[
        "redrive",
        "hook",
        "--filter",
        "event = 'Order Completed'",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "moved 1 dead letter back to `hook`'s queue (attempts reset); kept 1 in the dead-letter queue\n"
    );
    let m = metrics(&dev, "hook");
    assert_eq!(
        (m["dlqDepth"].as_u64(), m["queued"].as_u64()),
        (Some(1), Some(1))
    );
    let run = dlq(&["list", "hook", "--format", "json"]);
    let letters: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1);
    assert_eq!(letters[0]["message"]["id"], "m-signup");

    let run = dlq(&["redrive", "hook", "--max", "5", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("moved 1 dead letter back"),
        "{}",
        run.stdout
    );
    let run = dlq(&["redrive", "hook", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "no dead letters for `hook`: nothing to redrive\n"
    );
    let run = dlq(&["list", "hook"]);
    assert!(
        run.stdout.starts_with("no dead letters for `hook`"),
        "{}",
        run.stdout
    );
    drop(dev);

    // No `uniflow dev`: exit 2, saying so.
    let run = dlq(&["list", "hook"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("is `uniflow dev` running?"),
        "{}",
        run.stderr
    );
}
