//! Every `kdl` example in the language reference and the README checks
//! without errors, so the docs cannot drift from the language.

#![allow(clippy::disallowed_methods)] // the test reads the docs

use std::path::Path;

fn kdl_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```kdl") => {
                current = Some((i + 1, String::new()))
            }
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn documented_examples_check_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    for doc in ["compiler/LANGUAGE.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (line, block) in kdl_blocks(&text) {
            let source = if block.lines().any(|l| l.starts_with("project ")) {
                block
            } else {
                format!("project \"x\" {{\n    region \"eu-west-1\"\n}}\n{block}")
            };
            let result = uniflow_compiler::check(&source);
            let errors: Vec<_> = result.diagnostics.iter().filter(|d| d.is_error()).collect();
            assert!(
                errors.is_empty(),
                "{doc}:{line}: the example has errors: {errors:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} examples found");
}
