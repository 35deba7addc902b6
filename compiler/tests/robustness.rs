//! The front end never panics, and `fmt` is idempotent and meaning-preserving,
//! on every example, every fixture, and many mutations of them.
//!
//! The mutation fuzzer is deterministic (a fixed-seed xorshift generator) and
//! bounded, so it runs in CI on every change.

#![allow(clippy::disallowed_methods)] // tests and benchmarks read fixtures and settings

use std::path::{Path, PathBuf};

fn corpus() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = vec![root.join("compiler/src/starter.kdl")];
    for dir in ["examples", "compiler/tests/fixtures/diagnostics"] {
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "kdl") {
            out.push(path);
        }
    }
}

#[test]
fn fmt_is_idempotent_on_every_example_and_fixture() {
    let files = corpus();
    assert!(files.len() > 40, "corpus too small: {}", files.len());
    for (path, text) in files {
        match uniflow_compiler::fmt::format(&text) {
            Ok(once) => {
                let twice = uniflow_compiler::fmt::format(&once)
                    .unwrap_or_else(|e| panic!("{}: formatted output fails: {e}", path.display()));
                assert_eq!(twice, once, "{}: fmt is not idempotent", path.display());
                let before = uniflow_compiler::check(&text);
                let after = uniflow_compiler::check(&once);
                let codes = |c: &uniflow_compiler::Checked| {
                    c.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
                };
                assert_eq!(
                    codes(&before),
                    codes(&after),
                    "{}: fmt changed the diagnostics",
                    path.display()
                );
            }
            Err(uniflow_compiler::fmt::FormatError::Syntax(_)) => {
                assert!(uniflow_compiler::check(&text).has_errors());
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn examples_and_starter_are_formatted_and_clean() {
    for (path, text) in corpus() {
        if path.components().any(|c| c.as_os_str() == "fixtures") {
            continue;
        }
        let checked = uniflow_compiler::check(&text);
        assert!(
            checked.diagnostics.is_empty(),
            "{}: {:#?}",
            path.display(),
            checked.diagnostics
        );
        assert_eq!(
            uniflow_compiler::fmt::format(&text).unwrap(),
            text,
            "{} is not formatted",
            path.display()
        );
    }
}

/// `FUZZ_ROUNDS` raises the bound for a longer local run.
fn rounds(default: usize) -> usize {
    std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// `FUZZ_SEED` explores other inputs; the default keeps CI deterministic.
fn seed(default: u64) -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "\"",
    ";",
    "=",
    "#true",
    "#null",
    "/-",
    "//",
    "/*",
    "*/",
    "\\",
    "\n",
    " ",
    "(",
    ")",
    "-",
    "1",
    "1.5e9",
    "0x",
    "#\"",
    "\"#",
    "é",
    "\u{feff}",
    "type=",
    "\"array\"",
    "property",
    "item",
    "event",
    "destination",
    "segment",
    "identity",
    "min=",
    "max=",
    "values=",
    "\"\"",
    "limit=0",
    "\t",
    "\r\n",
    "unknown-keys",
    "\"strict\"",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let len = 1 + rng.below(8);
                let end = (at + len).min(chars.len());
                chars.drain(at.min(chars.len())..end);
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                for (i, c) in piece.chars().enumerate() {
                    chars.insert(at.min(chars.len()) + i, c);
                }
            }
            2 if chars.len() > 2 => {
                let other = rng.below(chars.len());
                let at = at.min(chars.len() - 1);
                chars.swap(at, other);
            }
            _ => {
                let c = char::from_u32(rng.below(0x250) as u32).unwrap_or('x');
                chars.insert(at.min(chars.len()), c);
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_inputs_never_panic() {
    let files = corpus();
    let mut rng = Rng(seed(0x5eed_1234_abcd_0001));
    let mut parsed_ok = 0;
    for round in 0..rounds(3000) {
        let (_, base) = &files[round % files.len()];
        let text = mutate(&mut rng, base);
        let checked = uniflow_compiler::check(&text);
        // Rendering must not panic either, whatever the spans.
        let human = uniflow_compiler::diagnostic::render_human(
            "f.kdl",
            &text,
            &checked.diagnostics,
            Default::default(),
        );
        assert!(!human.is_empty());
        let _ = uniflow_compiler::diagnostic::render_json("f.kdl", &text, &checked.diagnostics);
        let formatted = uniflow_compiler::fmt::format(&text);
        if let Err(uniflow_compiler::fmt::FormatError::Internal(e)) = &formatted {
            panic!("round {round}: valid KDL that fmt cannot format ({e}):\n{text:?}");
        }
        if let Ok(once) = formatted {
            parsed_ok += 1;
            let twice = uniflow_compiler::fmt::format(&once).unwrap_or_else(|e| {
                panic!("round {round}: formatted text fails ({e}):\n{text}\n---\n{once}")
            });
            assert_eq!(twice, once, "round {round}: not idempotent for:\n{text}");
        }
    }
    // The mutations must also exercise the paths past the parser.
    assert!(parsed_ok > 300, "only {parsed_ok} mutated files parsed");
}

#[test]
fn arbitrary_text_never_panics() {
    let mut rng = Rng(seed(0x0dd_ba11));
    for _ in 0..rounds(2000) {
        let len = rng.below(120);
        let text: String = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    PIECES[rng.below(PIECES.len())].to_owned()
                } else {
                    char::from_u32(rng.below(0x3000) as u32)
                        .unwrap_or(' ')
                        .to_string()
                }
            })
            .collect();
        let checked = uniflow_compiler::check(&text);
        let _ = uniflow_compiler::diagnostic::render_human(
            "f.kdl",
            &text,
            &checked.diagnostics,
            Default::default(),
        );
        if let Err(uniflow_compiler::fmt::FormatError::Internal(e)) =
            uniflow_compiler::fmt::format(&text)
        {
            panic!("valid KDL that fmt cannot format ({e}):\n{text:?}");
        }
    }
}
