//! Test doubles for Uniflow's destinations, used only by tests and
//! benchmarks (a dev-dependency; never published):
//!
//! - [`Receiver`]: a webhook receiver on 127.0.0.1 that plays a [`Script`]
//!   (always 200; down for a while, then up on the same port; N times a
//!   status; 429 with `Retry-After`; 400 forever; slow answers) and records
//!   every request, with helpers for what was delivered, the idempotency
//!   keys seen, and [`verify_signature`], written from the webhook README
//!   independently of the connector.
//! - [`FakeLambda`]: the AWS Lambda `Invoke` API running a Rust closure as
//!   the function (moto needs Docker to run functions).
//! - the `uniflow-receiver` binary: a receiver that answers 200 at once and
//!   counts events, for throughput benchmarks.
//!
//! It depends on no Uniflow crate, so it tests them from the outside.

mod lambda;
mod receiver;
mod serve;

pub use lambda::{Answer, FakeLambda, Function, Invocation, Invoked};
pub use receiver::{
    Receiver, Recorded, Reply, SIGNATURE_TOLERANCE, Script, Step, verify_signature,
};
