//! The Uniflow data plane. Handlers are written once, against the small
//! traits of [`backend`]; [`embedded`] implements them on local disk for
//! `uniflow dev`, and the AWS backend with Kinesis, S3 and DynamoDB.
//!
//! **Architecture Invariant:** handlers never import an HTTP server or the
//! Lambda runtime: [`ingest::Ingest::handle`] takes a plain [`ingest::Request`],
//! and [`manage::router`] is an axum `Router` over a [`profiles::ProfileStore`]
//! that `axum::serve` and `lambda_http` both run.
//! The runtime depends on `uniflow-schemas` (the bundle, the validator) and
//! never on the compiler.

pub mod backend;
pub mod conformance;
pub mod connectors;
pub mod delivery;
pub mod embedded;
pub mod ingest;
pub mod manage;
pub mod profiles;
pub mod record;
pub mod serve;
pub mod time;
