//! The shared vocabulary between the uniflow compiler and its runtime.
//!
//! This crate owns the *schema model*: the property types, string formats and
//! unknown-key policies a team can declare for events and traits, as plain
//! serde types. The compiler lowers `uniflow.kdl` into these; the runtime will
//! validate events against them through the compiled bundle.
//!
//! **Invariant:** this crate knows nothing of KDL, spans, diagnostics, AWS or
//! Lambda. It depends on `serde` and nothing of ours.

pub mod schema;

pub use schema::{Format, Normalization, PropertyType, Schema, UnknownKeys};
