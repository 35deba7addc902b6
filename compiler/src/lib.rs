//! The uniflow compiler: `uniflow.kdl` text in; diagnostics and (in later
//! steps) generated artifacts out. It does no I/O: the CLI reads files and
//! hands text over, so every test here is an in-memory string.
//!
//! The steps, in order:
//!
//! 1. [`syntax`]: parse the text as KDL v2 into a spanned document; every
//!    syntax error becomes a diagnostic.
//! 2. [`lower`]: read each node against the shape it must have, type each
//!    value, apply defaults, and build the resolved [`model::Config`],
//!    reporting every local problem (unknown names, wrong types, bad values,
//!    contradictions) without stopping at the first.
//! 3. [`check`]: bind cross-references (events, destinations, identifiers,
//!    traits) and add warnings for likely mistakes.
//!
//! 4. [`generate`]: the checked model into the artifacts under `build/`:
//!    the compiled bundle, JSON Schema and Zod/TypeScript.
//!
//! [`fmt`] formats a file canonically, keeping its comments.
//!
//! **Invariants:** no `std::fs`, no `std::env`, no network; the same input
//! gives the same diagnostics in the same order. This crate depends on
//! `uniflow-schemas` and never on the runtime.

pub mod cost;
pub mod diagnostic;
pub mod diff;
pub mod fmt;
pub mod generate;
pub mod model;
pub mod span;
pub mod suggest;
pub mod syntax;
pub mod values;

mod check;
mod lower;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use lower::TOP_LEVEL;
pub use model::Config;
pub use span::{Span, Spanned};

/// The commented starter project `uniflow init` writes. It passes `check`.
pub const STARTER: &str = include_str!("starter.kdl");

/// The result of checking one file.
#[derive(Debug)]
pub struct Checked {
    /// The model, when the file has no errors (warnings allowed).
    pub config: Option<Config>,
    /// Every diagnostic, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, lowers and checks a `uniflow.kdl` text, reporting every problem.
pub fn check(source: &str) -> Checked {
    let doc = match syntax::parse(source) {
        Ok(doc) => doc,
        Err(mut diagnostics) => {
            diagnostic::sort(&mut diagnostics);
            return Checked {
                config: None,
                diagnostics,
            };
        }
    };
    let (config, mut diagnostics) = lower::lower(&doc);
    diagnostics.extend(check::check(&config));
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    Checked {
        config: (!has_errors).then_some(config),
        diagnostics,
    }
}

/// The starter project for a directory name: the project is named after the
/// directory when that makes a valid project name, `my-shop` otherwise.
pub fn starter(dir_name: &str) -> String {
    let slug = values::slugify(dir_name);
    if values::is_slug(&slug, 32) {
        STARTER.replace("my-shop", &slug)
    } else {
        STARTER.to_owned()
    }
}

/// Checks a `uniflow.kdl` text and, when it has no errors, generates every
/// artifact. The diagnostics (warnings included) come back either way.
pub fn build(source: &str) -> (Checked, Option<generate::Artifacts>) {
    let checked = check(source);
    let artifacts = checked
        .config
        .as_ref()
        .map(|config| generate::artifacts(config, source));
    (checked, artifacts)
}
