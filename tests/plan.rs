//! End-to-end tests of `uniflow plan --against`: the three formats as snapshots, exit codes, and the saved plan.

use std::path::PathBuf;
use std::process::Command;

const OLD: &str = "tests/plan/old.kdl";
const NEW: &str = "tests/plan/new.kdl";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `uniflow` in the repository's root, so paths in the plan are the
/// relative ones given here.
fn uniflow(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_uniflow"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run uniflow");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The output without the version of uniflow that made it, so a release
/// does not change the snapshots.
fn normalise(text: &str) -> String {
    text.replace(
        &format!("\"uniflow_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"uniflow_version\": \"[version]\"",
    )
    .replace(
        &format!("uniflow {} ·", env!("CARGO_PKG_VERSION")),
        "uniflow [version] ·",
    )
}

fn plan(format: &str) -> Run {
    let run = uniflow(&[
        "plan",
        NEW,
        "--against",
        OLD,
        "--format",
        format,
        "--color",
        "never",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    run
}

#[test]
fn plan_human() {
    let run = plan("human");
    assert!(
        !run.stdout.contains('\x1b'),
        "no colour when asked for none"
    );
    insta::assert_snapshot!(normalise(&run.stdout));
}

#[test]
fn plan_markdown() {
    let run = plan("markdown");
    assert!(run.stdout.chars().count() <= 60_000);
    insta::assert_snapshot!(normalise(&run.stdout));
}

#[test]
fn plan_json() {
    let run = plan("json");
    let mut json: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(json["format_version"], 1);
    let source = std::fs::read_to_string(root().join(NEW)).unwrap();
    assert_eq!(json["apply"]["source"], source.as_str());
    // The diffs are in the human and markdown snapshots, and the source is
    // checked above: keep the JSON snapshot to the plan's structure.
    json["apply"]["source"] = "[tests/plan/new.kdl]".into();
    for file in json["files"].as_array_mut().expect("files") {
        let lines = file["diff"].as_str().expect("a diff").lines().count();
        file["diff"] = format!("[{lines} lines]").into();
    }
    let text = serde_json::to_string_pretty(&json).unwrap();
    insta::assert_snapshot!(normalise(&text));
}

#[test]
fn detailed_exitcode_no_changes_changes_and_errors() {
    let run = uniflow(&["plan", OLD, "--against", OLD, "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);

    let run = uniflow(&["plan", NEW, "--against", OLD, "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stdout.contains("No changes."));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("uniflow.kdl");
    std::fs::write(&broken, "project \"x\" {\n    region \"mars-1\"\n}\n").unwrap();
    let broken = broken.to_str().unwrap();
    for args in [
        vec!["plan", broken, "--against", OLD, "--detailed-exitcode"],
        vec!["plan", NEW, "--against", broken, "--detailed-exitcode"],
        vec!["plan", NEW, "--against", broken],
    ] {
        let run = uniflow(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("mars-1"),
            "diagnostics shown: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }

    let missing = "tests/plan/missing.kdl";
    let run = uniflow(&["plan", NEW, "--against", missing, "--detailed-exitcode"]);
    assert_eq!(run.code, 1, "uniflow's own errors exit 1 too");
    assert!(
        run.stderr
            .starts_with("error: cannot read tests/plan/missing.kdl"),
        "{}",
        run.stderr
    );
    let run = uniflow(&["plan", NEW, "--against", missing]);
    assert_eq!(run.code, 2, "without the flag, uniflow's failures exit 2");
}

#[test]
fn out_saves_the_json_plan_whatever_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let run = uniflow(&[
        "plan",
        NEW,
        "--against",
        OLD,
        "--format",
        "markdown",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("## uniflow plan"), "{}", run.stdout);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("JSON");
    assert_eq!(saved["format_version"], 1);
    let source = std::fs::read_to_string(root().join(NEW)).unwrap();
    assert_eq!(saved["apply"]["source"], source.as_str());
    assert_eq!(saved["apply"]["path"], NEW);
    assert_eq!(saved["header"]["against"], format!("file {OLD}"));
    assert!(run.stderr.contains("saved the plan to"), "{}", run.stderr);
}

#[test]
fn a_directory_is_a_project() {
    let run = uniflow(&["plan", "examples/shop", "--against", "examples/shop"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("against:         file examples/shop/uniflow.kdl")
    );
    assert!(run.stdout.contains("No changes."));
}

#[test]
fn help_teaches_plan() {
    let run = uniflow(&["plan", "--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "Examples:",
        "--against",
        "--detailed-exitcode",
        "--out",
        "Exit status:",
    ] {
        assert!(run.stdout.contains(needle), "{needle}");
    }
}
