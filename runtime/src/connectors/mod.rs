//! The connectors: one folder each (`webhook/`, `s3_export/`, `lambda/`),
//! every one implementing [`Connector`](crate::delivery::Connector) and
//! passing the one compliance suite (`runtime/tests/connectors.rs`).
//!
//! A connector reaches the outside world only through the small traits
//! here, so the same code runs in `uniflow dev` (secrets from the
//! environment or the data directory, objects in a local directory) and
//! on AWS (SSM and Secrets Manager, S3, Lambda), the AWS implementations
//! living in `uniflow-runtime-aws`.
//!
//! [`build`] turns a destination's settings into its connector; every
//! connector module has the same roles: `mod.rs` (settings into the
//! connector, and its [`Connector`] impl), `README.md` (exactly what the
//! destination receives and how failures are classified) and private
//! modules for the rest. [`LocalSecrets`] and [`LocalObjects`] are the
//! embedded backend's outside world.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use uniflow_schemas::bundle::{ConnectorSettings, DestinationInfo};

use crate::delivery::Connector;

pub mod lambda;
mod local;
pub mod s3_export;
pub mod webhook;

pub use local::{LocalObjects, LocalSecrets};

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

/// What connectors reach the outside world through.
#[derive(Clone)]
pub struct Services {
    /// Resolves secret references (webhook headers and signing secrets).
    pub secrets: Arc<dyn Secrets>,
    /// Where s3-export writes.
    pub objects: Arc<dyn ObjectStore>,
    /// Invokes functions; `None` where there is no AWS (`uniflow dev`).
    pub invoke: Option<Arc<dyn Invoke>>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("invoke", &self.invoke.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a destination's connector could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// A setting cannot be used (a URL that does not parse, an unknown
    /// format, a header that HTTP cannot carry).
    #[error("destination `{destination}`: {message}")]
    Settings {
        /// The destination's name.
        destination: String,
        /// What is wrong, and what to write instead.
        message: String,
    },
    /// A secret it names could not be read.
    #[error("destination `{destination}`: cannot read the secret `{reference}`: {source}")]
    Secret {
        /// The destination's name.
        destination: String,
        /// The reference, as written (`ssm:/acme/x`); never the value.
        reference: String,
        /// Why not; [`ServiceError::retryable`] says whether starting again
        /// later may help.
        #[source]
        source: ServiceError,
    },
    /// A lambda destination where there is no AWS to invoke it.
    #[error(
        "destination `{destination}`: the lambda connector invokes an AWS Lambda function and \
         needs the AWS backend; `uniflow dev` cannot run it (deploy, or use a webhook \
         destination pointing at a local server while developing)"
    )]
    NeedsAws {
        /// The destination's name.
        destination: String,
    },
}

impl ConnectorError {
    pub(crate) fn settings(destination: &str, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Settings {
            destination: destination.to_owned(),
            message: message.into(),
        }
    }
}

/// The connector of destination `name`, its secrets resolved (once, here).
pub async fn build(
    name: &str,
    destination: &DestinationInfo,
    services: &Services,
) -> Result<Box<dyn Connector>, ConnectorError> {
    Ok(match &destination.connector {
        ConnectorSettings::Webhook { .. } => {
            Box::new(webhook::connector(name, destination, services.secrets.as_ref()).await?)
        }
        ConnectorSettings::S3Export { .. } => Box::new(s3_export::connector(
            name,
            destination,
            Arc::clone(&services.objects),
        )?),
        ConnectorSettings::Lambda { .. } => {
            let invoke = services
                .invoke
                .as_ref()
                .ok_or_else(|| ConnectorError::NeedsAws {
                    destination: name.to_owned(),
                })?;
            Box::new(lambda::connector(name, destination, Arc::clone(invoke))?)
        }
    })
}

/// The first 32 hex digits of the SHA-256 of the message ids joined by
/// `\n`: a batch's identity, the same every time the same batch is sent.
pub(crate) fn batch_digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::{Digest, Sha256};
    let mut sha = Sha256::new();
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            sha.update(b"\n");
        }
        sha.update(id.as_bytes());
    }
    let mut hex = crate::delivery::shape::hex(&sha.finalize());
    hex.truncate(32);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_digest_is_sha256_of_the_ids_joined_by_newlines() {
        // printf 'm1\nm2' | sha256sum
        assert_eq!(
            batch_digest(["m1", "m2"]),
            "b82a5b7a3e0f601f81efe9e950affdb4"
        );
    }
}
