//! Data-driven diagnostics tests: every `fixtures/diagnostics/*.kdl` file is a
//! small bad project whose first line says which code it must produce
//! (`// expect: unknown-node`). Each gets a snapshot of the human report and of
//! the JSON form.

#![allow(clippy::disallowed_methods)] // tests and benchmarks read fixtures and settings

use std::collections::BTreeSet;
use std::path::Path;

use uniflow_compiler::diagnostic::{self, Code, HumanOptions};

fn expected_code(source: &str, path: &Path) -> String {
    source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// expect: "))
        .unwrap_or_else(|| panic!("{} must start with `// expect: CODE`", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn diagnostics_fixtures() {
    insta::glob!("fixtures/diagnostics/*.kdl", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let expected = expected_code(&source, path);
        let name = format!(
            "diagnostics/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let checked = uniflow_compiler::check(&source);
        assert!(
            checked
                .diagnostics
                .iter()
                .any(|d| d.code.as_str() == expected),
            "{name}: expected a `{expected}` diagnostic, got {:#?}",
            checked.diagnostics
        );
        for d in &checked.diagnostics {
            assert!(!d.message.is_empty(), "{name}: empty message");
            assert!(d.help.is_some(), "{name}: `{}` has no help", d.code);
        }
        let human = diagnostic::render_human(
            &name,
            &source,
            &checked.diagnostics,
            HumanOptions::default(),
        );
        insta::assert_snapshot!("human", human);
        let json = diagnostic::render_json(&name, &source, &checked.diagnostics);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("JSON output parses");
        assert_eq!(parsed["version"], 1);
        insta::assert_snapshot!("json", json);
    });
}

#[test]
fn every_code_has_a_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics");
    let mut covered = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "kdl") {
            let source = std::fs::read_to_string(&path).unwrap();
            covered.insert(expected_code(&source, &path));
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
    assert!(
        covered.len() >= 30,
        "only {} distinct codes covered",
        covered.len()
    );
}

/// The "done when" file: ten different mistakes, all reported in one run,
/// each with a position, a code and a help.
#[test]
fn ten_mistakes_are_all_reported() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics/ten_mistakes.kdl"),
    )
    .unwrap();
    let checked = uniflow_compiler::check(&source);
    let codes: BTreeSet<&str> = checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    for code in [
        "invalid-region",
        "unknown-node",
        "invalid-value",
        "contradictory-bounds",
        "missing-item",
        "invalid-url",
        "inline-secret",
        "unknown-event",
        "out-of-range",
        "invalid-duration",
        "unknown-destination",
    ] {
        assert!(codes.contains(code), "missing {code} in {codes:?}");
    }
    let json = diagnostic::render_json("f.kdl", &source, &checked.diagnostics);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let diags = parsed["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 10);
    for d in diags {
        for field in [
            "code",
            "severity",
            "message",
            "help",
            "file",
            "line",
            "column",
            "end_line",
            "end_column",
            "labels",
        ] {
            assert!(!d[field].is_null(), "missing {field} in {d}");
        }
        assert!(d["line"].as_u64().unwrap() >= 1);
        assert!(d["column"].as_u64().unwrap() >= 1);
    }
    let unknown = checked
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownNode)
        .unwrap();
    assert_eq!(unknown.help.as_deref(), Some("did you mean `destination`?"));
}

/// Snapshots whose fixture is gone fail the build, so none linger unreviewed.
#[test]
fn no_unreferenced_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix("build__") {
            let example = rest.split("__").next().unwrap_or_default();
            assert!(
                root.join("../../examples")
                    .join(example)
                    .join("uniflow.kdl")
                    .exists(),
                "snapshot {name} has no example"
            );
            continue;
        }
        let fixture = name
            .strip_prefix("diagnostics__human@")
            .or_else(|| name.strip_prefix("diagnostics__json@"))
            .and_then(|rest| rest.strip_suffix(".snap"))
            .unwrap_or_else(|| panic!("unexpected snapshot {name}"));
        assert!(
            root.join("fixtures/diagnostics").join(fixture).exists(),
            "snapshot {name} has no fixture"
        );
    }
}
