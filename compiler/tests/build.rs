//! `uniflow build` output for every example, snapshot-tested file by file so
//! a change to generated code is reviewed as a diff, and built twice to show
//! it is byte-identical.

#![allow(clippy::disallowed_methods)] // the test reads the examples

use std::path::Path;

fn examples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("uniflow.kdl").exists())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read_to_string(p.join("uniflow.kdl")).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn examples_build_deterministically() {
    for (name, source) in examples() {
        let (checked, first) = uniflow_compiler::build(&source);
        assert!(!checked.has_errors(), "{name}: {:#?}", checked.diagnostics);
        let first = first.unwrap();
        let (_, second) = uniflow_compiler::build(&source);
        assert_eq!(Some(&first), second.as_ref(), "{name}: two builds differ");
        assert!(first.files.contains_key("bundle.json"));
        assert!(first.files.contains_key("schemas/index.ts"));
        let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        for entry in std::fs::read_dir(&snapshots).unwrap() {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(rest) = file.strip_prefix(&format!("build__{name}__")) {
                let path = rest.trim_end_matches(".snap").replace("__", "/");
                assert!(
                    first.files.contains_key(&path),
                    "stale snapshot {file}: {path} is no longer generated"
                );
            }
        }
        for (path, text) in &first.files {
            if path.ends_with(".json") {
                serde_json::from_str::<serde_json::Value>(text)
                    .unwrap_or_else(|e| panic!("{name}/{path} is not JSON: {e}"));
            }
            let snapshot = format!("{name}__{}", path.replace('/', "__"));
            insta::assert_snapshot!(snapshot, text);
        }
    }
}

#[test]
fn bundle_round_trips_through_the_schemas_crate() {
    for (name, source) in examples() {
        let (_, artifacts) = uniflow_compiler::build(&source);
        let text = &artifacts.unwrap().files["bundle.json"];
        let bundle =
            uniflow_schemas::Bundle::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            &bundle.to_json(),
            text,
            "{name}: the bundle does not round-trip"
        );
    }
}

#[test]
fn a_bundle_of_another_version_is_refused() {
    let (_, artifacts) = uniflow_compiler::build(&examples()[0].1);
    let current = format!("\"version\": {}", uniflow_schemas::BUNDLE_VERSION);
    let bundle = &artifacts.unwrap().files["bundle.json"];
    assert!(bundle.contains(&current), "the bundle states its version");
    let text = bundle.replacen(&current, "\"version\": 99", 1);
    let err = uniflow_schemas::Bundle::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
}
