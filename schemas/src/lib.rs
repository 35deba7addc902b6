//! The shared vocabulary between the uniflow compiler and its runtime.
//!
//! This crate owns:
//!
//! - [`schema`]: the schema model (property types, string formats,
//!   unknown-key policies) as plain serde types;
//! - [`bundle`]: the compiled bundle, the versioned contract between the
//!   compiler, which writes it, and the runtime, which reads only it;
//! - [`condition`]: the condition language of destination filters and
//!   segment `where`s: parser, canonical printer and three-valued evaluator;
//! - [`validate`]: the validator engine, which checks the raw bytes of a
//!   Segment-spec message against the bundle in one schema-driven pass, with
//!   Zod 4's semantics, issue codes and messages.
//!
//! **Invariant:** this crate knows nothing of KDL, spans, diagnostics, AWS or
//! Lambda, and depends on nothing of ours.

pub mod bundle;
pub mod condition;
pub mod formats;
pub mod schema;
pub mod validate;

pub use bundle::{BUNDLE_VERSION, Bundle};
pub use condition::Condition;
pub use schema::{Format, Normalization, PropertyType, Schema, UnknownKeys};
