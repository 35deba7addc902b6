//! The connectors: one folder each (`webhook/`, `s3_export/`, `lambda/`),
//! every one implementing [`Connector`](crate::delivery::Connector) and
//! passing the one compliance suite (`runtime/tests/connectors.rs`).
//!
//! A connector reaches the outside world only through the small traits
//! here, so the same code runs in `uniflow dev` (secrets from the
//! environment or the data directory, objects in a local directory) and
//! on AWS (SSM and Secrets Manager, S3, Lambda), the AWS implementations
//! living in `uniflow-runtime-aws`.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed future, so the traits are object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an outside service could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// What happened.
    pub message: String,
    /// Whether trying again may help (throttling, timeouts, 5xx).
    pub retryable: bool,
}

/// Resolves secret references (`ssm:/x`, `secretsmanager:x`, `env:NAME`).
pub trait Secrets: Send + Sync + 'static {
    /// The secret's value.
    fn resolve<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<String, ServiceError>>;
}

/// Where s3-export writes objects.
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes (or overwrites) one object.
    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
}

/// Invokes a user's function synchronously.
pub trait Invoke: Send + Sync + 'static {
    /// Invokes `function` with `payload` (JSON) and returns what it answered
    /// (JSON). A function error (it threw) is an `Err` that is not
    /// retryable unless the service says so.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ServiceError>>;
}
