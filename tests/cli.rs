//! End-to-end tests of the `uniflow` binary: exit codes, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn uniflow(args: &[&str], cwd: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_uniflow"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run uniflow");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn snapshot(run: &Run) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        run.code, run.stdout, run.stderr
    )
}

#[test]
fn examples_pass_check_and_fmt_check() {
    for example in ["examples/shop", "examples/saas"] {
        let run = uniflow(&["check", example], &root());
        assert_eq!(run.code, 0, "{example}: {}", run.stderr);
        assert!(run.stderr.contains("no problems found"), "{}", run.stderr);
        let run = uniflow(&["fmt", "--check", example], &root());
        assert_eq!(run.code, 0, "{example}: {}", run.stderr);
    }
}

#[test]
fn ten_mistakes_human() {
    let run = uniflow(
        &[
            "check",
            "compiler/tests/fixtures/diagnostics/ten_mistakes.kdl",
        ],
        &root(),
    );
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(snapshot(&run));
}

#[test]
fn ten_mistakes_json_and_github() {
    let file = "compiler/tests/fixtures/diagnostics/ten_mistakes.kdl";
    let run = uniflow(&["check", file, "--format", "json"], &root());
    assert_eq!(run.code, 1);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(json["version"], 1);
    let diags = json["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 10, "{}", diags.len());
    assert!(diags.iter().all(|d| d["file"] == file));
    let first = &diags[0];
    assert_eq!(first["code"], "invalid-region");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(3), Some(12))
    );

    let run = uniflow(&["check", file, "--format", "github"], &root());
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), diags.len());
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("::error file=") || l.starts_with("::warning file="))
    );
    assert!(
        lines[0].starts_with(&format!("::error file={file},line=3,col=12,")),
        "{}",
        lines[0]
    );
}

#[test]
fn unclosed_brace_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("uniflow.kdl"),
        "project \"a\" {\n    region \"eu-west-1\"\n",
    )
    .unwrap();
    let run = uniflow(&["check"], dir.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("kdl-syntax"));
    assert!(run.stderr.contains("uniflow.kdl:1:13"), "{}", run.stderr);
}

#[test]
fn unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = uniflow(&["check", "nope.kdl"], dir.path());
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(snapshot(&run).replace(&dir.path().display().to_string(), "[TMP]"));
}

#[test]
fn init_writes_a_project_that_passes_check_and_fmt() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("Acme Store");
    let run = uniflow(&["init", "Acme Store"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(project.join("uniflow.kdl")).unwrap();
    assert!(text.contains("project \"acme-store\""), "{text}");
    assert_eq!(uniflow(&["check", "Acme Store"], dir.path()).code, 0);
    assert_eq!(
        uniflow(&["fmt", "--check", "Acme Store"], dir.path()).code,
        0
    );
    // A second init refuses to overwrite.
    let again = uniflow(&["init", "Acme Store"], dir.path());
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        uniflow(&["init", "Acme Store", "--force"], dir.path()).code,
        0
    );
}

#[test]
fn fmt_check_names_unformatted_files_then_fmt_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "// the project\nproject   \"acme\" {region \"eu-west-1\"; stage prod}\n\n\n\nsource \"api\" kind=server // backend\n";
    std::fs::write(dir.path().join("uniflow.kdl"), messy).unwrap();
    let run = uniflow(&["fmt", "--check"], dir.path());
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("would reformat: uniflow.kdl"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("uniflow.kdl")).unwrap(),
        messy
    );

    let run = uniflow(&["fmt"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let formatted = std::fs::read_to_string(dir.path().join("uniflow.kdl")).unwrap();
    insta::assert_snapshot!(formatted);
    assert_eq!(uniflow(&["fmt", "--check"], dir.path()).code, 0);
}

#[test]
fn fmt_refuses_a_file_with_syntax_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uniflow.kdl"), "project \"a\" {\n").unwrap();
    let run = uniflow(&["fmt"], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("kdl-syntax"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("uniflow.kdl")).unwrap(),
        "project \"a\" {\n"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("uniflow.kdl"),
        "project \"a\" {\n    region \"eu-west-1\"\n}\nsource \"web\" kind=\"browser\"\n",
    )
    .unwrap();
    let run = uniflow(&["check"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(snapshot(&run));
}

#[test]
fn help_teaches_the_commands() {
    let run = uniflow(&["--help"], &root());
    assert_eq!(run.code, 0);
    insta::assert_snapshot!(run.stdout);
    let run = uniflow(&["check", "--help"], &root());
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--format"));
    for command in ["get", "explain", "delete"] {
        let run = uniflow(&["profiles", command, "--help"], &root());
        assert_eq!(run.code, 0);
        for needle in ["Examples:", "TYPE:VALUE", "--api", "UNIFLOW_API_TOKEN"] {
            assert!(run.stdout.contains(needle), "{command}: {needle}");
        }
    }
    for command in ["list", "show", "redrive"] {
        let run = uniflow(&["dlq", command, "--help"], &root());
        assert_eq!(run.code, 0);
        for needle in [
            "Examples:",
            "uniflow dlq ",
            "--data",
            "--api",
            "UNIFLOW_API_TOKEN",
        ] {
            assert!(run.stdout.contains(needle), "dlq {command}: {needle}");
        }
    }
    let run = uniflow(&["replay", "--help"], &root());
    assert_eq!(run.code, 0);
    for needle in [
        "Examples:",
        "--from <TIME>",
        "--to <TIME>",
        "--dry-run",
        "-2h",
        "--api",
    ] {
        assert!(run.stdout.contains(needle), "replay: {needle}");
    }
}

#[test]
fn build_writes_identical_artifacts_twice_and_check_detects_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("build");
    let out_s = out.to_str().unwrap();
    let run = uniflow(&["build", "examples/shop", "--out", out_s], &root());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = std::fs::read(out.join("schemas/index.ts")).unwrap();
    let bundle = std::fs::read(out.join("bundle.json")).unwrap();
    assert!(out.join("schemas/order-completed.schema.json").exists());
    assert!(out.join("schemas/traits/identify.schema.json").exists());
    let run = uniflow(&["build", "examples/shop", "--out", out_s], &root());
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("0 written"), "{}", run.stderr);
    assert_eq!(std::fs::read(out.join("schemas/index.ts")).unwrap(), first);
    assert_eq!(std::fs::read(out.join("bundle.json")).unwrap(), bundle);
    assert_eq!(
        uniflow(
            &["build", "examples/shop", "--out", out_s, "--check"],
            &root()
        )
        .code,
        0
    );
    // A stale file and a file no longer generated are both found, then fixed.
    std::fs::write(out.join("bundle.json"), "{}").unwrap();
    std::fs::write(out.join("schemas/old-event.schema.json"), "{}").unwrap();
    let run = uniflow(
        &["build", "examples/shop", "--out", out_s, "--check"],
        &root(),
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("out of date") && run.stderr.contains("no longer generated"),
        "{}",
        run.stderr
    );
    assert_eq!(
        uniflow(&["build", "examples/shop", "--out", out_s], &root()).code,
        0
    );
    assert!(!out.join("schemas/old-event.schema.json").exists());
    assert_eq!(std::fs::read(out.join("bundle.json")).unwrap(), bundle);
}

#[test]
fn build_check_fails_after_a_config_edit_and_passes_after_rebuilding() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("uniflow.kdl");
    let shop = std::fs::read_to_string(root().join("examples/shop/uniflow.kdl")).unwrap();
    std::fs::write(&config, &shop).unwrap();
    assert_eq!(uniflow(&["build"], dir.path()).code, 0);
    for file in [
        "build/cloudformation.json",
        "build/cloudformation-bootstrap.json",
        "build/lambda/connector.json",
        "build/lambda/processor.json",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    assert_eq!(uniflow(&["build", "--check"], dir.path()).code, 0);
    let edited = shop.replace("retry attempts=12", "retry attempts=20");
    assert_ne!(edited, shop);
    std::fs::write(&config, edited).unwrap();
    let run = uniflow(&["build", "--check"], dir.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    for stale in [
        "cloudformation.json",
        "bundle.json",
        "lambda/connector.json",
    ] {
        assert!(
            run.stderr.contains(&format!("out of date: build/{stale}"))
                || run.stderr.contains(&format!(
                    "out of date: {}",
                    dir.path().join("build").join(stale).display()
                )),
            "{stale} not named: {}",
            run.stderr
        );
    }
    assert_eq!(uniflow(&["build"], dir.path()).code, 0);
    assert_eq!(uniflow(&["build", "--check"], dir.path()).code, 0);
}

#[test]
fn build_refuses_a_config_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uniflow.kdl"), "project \"a\" {\n}\n").unwrap();
    let run = uniflow(&["build"], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nothing was built"), "{}", run.stderr);
    assert!(!dir.path().join("build").exists());
}

#[test]
fn validate_reads_ndjson_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"type":"identify","userId":"u1","messageId":"m1","traits":{"email":"a@b.co"}}"#;
    let bad = r#"{"type":"track","event":"Order Completed","anonymousId":"a","properties":{"revenue":"12"}}"#;
    std::fs::write(dir.path().join("good.ndjson"), format!("{good}\n\n")).unwrap();
    std::fs::write(
        dir.path().join("mixed.ndjson"),
        format!("{good}\n{bad}\nnot json\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("batch.json"),
        format!(r#"{{"batch":[{good},{bad}]}}"#),
    )
    .unwrap();
    let config = root().join("examples/shop");
    let config = config.to_str().unwrap();
    let run = uniflow(&["validate", "--config", config, "good.ndjson"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "{\"index\":0,\"messageId\":\"m1\",\"valid\":true,\"issues\":[]}\n"
    );
    let run = uniflow(
        &["validate", "--config", config, "mixed.ndjson"],
        dir.path(),
    );
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout);
    let run = uniflow(&["validate", "--config", config, "batch.json"], dir.path());
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout.lines().count(), 2);
    // The compiled bundle works as the configuration too.
    let out = dir.path().join("build");
    assert_eq!(
        uniflow(
            &["build", config, "--out", out.to_str().unwrap()],
            dir.path()
        )
        .code,
        0
    );
    let run = uniflow(
        &["validate", "--config", "build/bundle.json", "good.ndjson"],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}
