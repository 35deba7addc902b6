//! `uniflow profiles` against a real `uniflow dev`: events sent over HTTP
//! become profiles that `get`, `explain` and `delete` show and remove, with
//! the documented exit codes; and the errors a person meets when the API is
//! not there.

#![allow(clippy::disallowed_methods)] // the test drives real processes and reads their files

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Run, post_batch, root, run, start_dev, uniflow_command, write_key};

/// Runs `uniflow profiles ARGS examples/shop --data DATA`.
fn profiles(args: &[&str], data: &Path) -> Run {
    run(uniflow_command()
        .arg("profiles")
        .args(args)
        .arg("--data")
        .arg(data)
        .current_dir(root()))
}

/// Ann browses on two devices, logs in on one, gives her email on the
/// other; Bo then signs up with Ann's email (refused: both have a user id).
const STORY: &str = r#"{"batch":[
{"type":"track","event":"Product Viewed","messageId":"m1","anonymousId":"anon-1","properties":{"product_id":"p-1","name":"Tent","price":199.0},"timestamp":"2026-11-25T10:00:00Z"},
{"type":"identify","messageId":"m2","anonymousId":"anon-1","userId":"u-1","traits":{"email":"Ann@Example.com","first_name":"Ann"},"timestamp":"2026-11-25T10:01:00Z"},
{"type":"track","event":"Product Viewed","messageId":"m3","anonymousId":"anon-2","properties":{"product_id":"p-2","name":"Stove","price":49.0},"timestamp":"2026-11-25T10:02:00Z"},
{"type":"identify","messageId":"m4","anonymousId":"anon-2","traits":{"email":"ANN@example.com"},"timestamp":"2026-11-25T10:03:00Z"},
{"type":"identify","messageId":"m5","userId":"u-2","traits":{"email":"ann@example.com","first_name":"Bo"},"timestamp":"2026-11-25T10:04:00Z"}
]}"#;

/// Waits until `get TARGET` finds a profile (the processor runs behind ingest).
fn wait_for(target: &str, data: &Path) -> Run {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = profiles(&["get", target, "examples/shop"], data);
        if run.code == 0 || Instant::now() > deadline {
            return run;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn get_explain_and_delete_a_person() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start_dev(&data, &[]);

    // dev.json holds the printed URL and token, for its owner only.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("dev.json")).unwrap()).unwrap();
    assert_eq!(doc["api"], format!("http://127.0.0.1:{}", dev.port));
    assert_eq!(doc["token"], dev.token.as_str());
    assert_eq!(dev.token.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let answer = post_batch(dev.port, &write_key(&data), STORY).expect("the tracking API answers");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""accepted":5"#), "{answer}");

    // The email, written any way, finds Ann's one profile.
    let run = wait_for("user_id:u-2", &data);
    assert_eq!(run.code, 0, "no profile within 10 s: {}", run.stderr);
    let run = profiles(&["get", "email:  Ann@EXAMPLE.com ", "examples/shop"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("(holds email:ann@example.com)"),
        "{}",
        run.stdout
    );
    for line in [
        "first_name  \"Ann\"",
        "user_id:u-1",
        "anonymous_id:anon-1",
        "anonymous_id:anon-2",
        "track    Product Viewed  (m3, order-backend)",
    ] {
        assert!(run.stdout.contains(line), "{line:?} not in\n{}", run.stdout);
    }

    let run = profiles(
        &[
            "get",
            "user_id:u-1",
            "examples/shop",
            "--format",
            "json",
            "--events",
            "2",
        ],
        &data,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let ann = doc["profile"]["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["profile"]["traits"]["first_name"], "Ann");
    assert_eq!(doc["profile"]["mergedFrom"].as_array().unwrap().len(), 1);
    assert_eq!(doc["identities"].as_array().unwrap().len(), 4);
    let events: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["m4", "m3"]);

    // The merged-away profile's id answers Ann's profile.
    let merged = doc["profile"]["mergedFrom"][0].as_str().unwrap().to_owned();
    let run = profiles(&["get", &merged, "examples/shop"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("profile {ann} ({merged} was merged into it)")),
        "{}",
        run.stdout
    );

    // explain: the links, then the merge with its event and rule.
    let run = profiles(&["explain", "user_id:u-1", "examples/shop"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        "4 identifiers, 1 merge, 1 refused link",
        "kept email:ann@example.com: an event of another profile asked to take it and was refused",
        "email:ann@example.com  by event m2 from source order-backend",
        &format!("merged profile {merged} into {ann}"),
        "event m4 from source order-backend carried email:ann@example.com, anonymous_id:anon-2",
        "through anonymous_id:anon-2",
        "rule: within every limit",
    ] {
        assert!(run.stdout.contains(line), "{line:?} not in\n{}", run.stdout);
    }
    let run = profiles(&["explain", "user_id:u-2", "examples/shop"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        &format!("refused to link email:ann@example.com: it belongs to profile {ann}"),
        "never merge",
    ] {
        assert!(run.stdout.contains(line), "{line:?} not in\n{}", run.stdout);
    }

    // The user's mistakes: exit 1, with the API's words.
    for (args, says) in [
        (
            vec!["get", "user_id:nobody"],
            "no profile holds user_id:nobody (profile_not_found)",
        ),
        (vec!["get", "0123abcd"], "no profile 0123abcd"),
        (vec!["get", "phone:+33612345678"], "unknown_identifier_type"),
        (
            vec!["explain", "email:qa@acme-shop.example"],
            "blocked_identifier",
        ),
        (vec!["get", "ann"], "no profile ann"),
        (
            vec!["get", "user_id:u-1", "--token", "wrong"],
            "(unauthorized)",
        ),
        (
            vec!["delete", "user_id:u-2"],
            "refusing to delete without --yes",
        ),
    ] {
        let mut args = args.clone();
        args.push("examples/shop");
        let run = profiles(&args, &data);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }

    // delete --yes removes Bo and suppresses his user id.
    let run = profiles(&["delete", "user_id:u-2", "--yes", "examples/shop"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("deleted 1 profile: "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("suppressed 1 identifier (they will never link again): user_id:u-2"),
        "{}",
        run.stdout
    );
    let run = profiles(&["get", "user_id:u-2", "examples/shop"], &data);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Ann is still there.
    assert_eq!(profiles(&["get", &ann, "examples/shop"], &data).code, 0);

    // --api (as printed, with /api/v1) and --token, and their variables.
    let printed = format!("http://127.0.0.1:{}/api/v1", dev.port);
    let other = tmp.path().join("elsewhere");
    let run = profiles(
        &["get", &ann, "--api", &printed, "--token", &dev.token],
        &other,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = Command::new(env!("CARGO_BIN_EXE_uniflow"))
        .args(["profiles", "get", &ann, "--events", "0"])
        .current_dir(tmp.path())
        .env("UNIFLOW_API_URL", &printed)
        .env("UNIFLOW_API_TOKEN", &dev.token)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = profiles(&["get", &ann, "--api", &printed], &other);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("Authorization: Bearer"),
        "{}",
        run.stderr
    );

    // https to a plain-HTTP server: the handshake fails, cleanly.
    let run = profiles(
        &[
            "get",
            &ann,
            "--api",
            &format!("https://127.0.0.1:{}", dev.port),
            "--token",
            "t",
        ],
        &other,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);

    // A restart keeps the token; a stopped server is named as such.
    drop(dev);
    let run = profiles(&["get", &ann, "examples/shop"], &data);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot reach the management API at http://127.0.0.1:")
            && run.stderr.contains("is `uniflow dev` running?"),
        "{}",
        run.stderr
    );
    let dev = start_dev(&data, &[]);
    assert_eq!(dev.token, doc_token(&data));
    assert_eq!(dev.token.len(), 32);
    let run = wait_for(&ann, &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn doc_token(data: &Path) -> String {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("dev.json")).unwrap()).unwrap();
    doc["token"].as_str().unwrap().to_owned()
}

#[test]
fn without_a_running_dev_the_error_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let run = profiles(
        &["get", "email:ann@example.com", "examples/shop"],
        tmp.path(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("dev.json does not exist")
            && run.stderr.contains("pass --api and --token"),
        "{}",
        run.stderr
    );
    let run = profiles(
        &["get", "x", "--api", "ftp://api.example.com", "--token", "t"],
        tmp.path(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("not an http:// or https:// URL"),
        "{}",
        run.stderr
    );
    // Nothing listens on port 9 (discard) of localhost.
    let run = profiles(
        &["get", "x", "--api", "http://127.0.0.1:9", "--token", "t"],
        tmp.path(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("is `uniflow dev` running?"),
        "{}",
        run.stderr
    );
}
