//! The validator engine: Segment-spec messages checked against a bundle, in
//! one schema-driven pass over their bytes, with Zod 4's semantics.
//!
//! [`Validator::new`] compiles the bundle's schemas once; [`Validator::validate`]
//! then takes the raw bytes of one message and returns a [`Verdict`] listing
//! every issue, in the order and words Zod 4 uses for the same message
//! checked by `validateMessage` in the generated `index.ts`.

mod compile;
mod engine;
mod issue;
mod message;
pub mod scan;

pub use issue::{Issue, IssueCode, PathSegment, js_number};
pub use message::{CallType, Validator, Verdict};

/// Checks that a `pattern` compiles with JavaScript's meaning; the error says why not.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    compile::compile_pattern(pattern)
        .map(|_| ())
        .ok_or_else(|| match regex::Regex::new(pattern) {
            Err(e) => e.to_string(),
            Ok(_) => "it cannot be translated to JavaScript's meaning".to_owned(),
        })
}
