//! The connectors' outside world on AWS: [`S3Objects`] (an
//! [`ObjectStore`] over `PutObject`), [`LambdaInvoke`] (an [`Invoke`] over
//! Lambda's synchronous `Invoke`) and [`AwsSecrets`] (a [`Secrets`] over
//! SSM Parameter Store, Secrets Manager and the function's environment).
//!
//! Every AWS failure becomes a [`ServiceError`] the same way: throttling,
//! timeouts, network failures and 5xx answers are retryable; anything
//! else (not found, access denied, a bad request) is not.

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use bytes::Bytes;
use uniflow_runtime::connectors::{BoxFuture, Invoke, ObjectStore, Secrets, ServiceError};

/// The most of a function's error answer kept in the error message.
const MAX_FUNCTION_ERROR_CHARS: usize = 1000;

/// Error codes that mean "slow down", whatever the HTTP status.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "RequestThrottled",
    "RequestThrottledException",
    "EC2ThrottledException",
];

/// One mapping from an SDK failure to a [`ServiceError`].
fn service_error<E>(what: &str, e: &SdkError<E>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match e {
        SdkError::ServiceError(inner) => {
            let status = inner.raw().status().as_u16();
            status >= 500
                || status == 429
                || inner
                    .err()
                    .code()
                    .is_some_and(|code| THROTTLING.contains(&code))
        }
        SdkError::ConstructionFailure(_) => false,
        // Timeouts, dispatch failures, unreadable answers.
        _ => true,
    };
    ServiceError {
        message: format!("{what}: {}", DisplayErrorContext(e)),
        retryable,
    }
}

/// Writes objects with S3 `PutObject`.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// Writes through a client of `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        S3Objects {
            client: aws_sdk_s3::Client::new(config),
        }
    }
}

impl ObjectStore for S3Objects {
    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| service_error(&format!("S3 PutObject s3://{bucket}/{key}"), &e))
        })
    }
}

/// Invokes functions synchronously (`RequestResponse`) with Lambda `Invoke`.
#[derive(Debug, Clone)]
pub struct LambdaInvoke {
    client: aws_sdk_lambda::Client,
}

impl LambdaInvoke {
    /// Invokes through a client of `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        LambdaInvoke {
            client: aws_sdk_lambda::Client::new(config),
        }
    }
}

impl Invoke for LambdaInvoke {
    /// The function's answer; a function error (it threw, or ran out of
    /// time or memory: `X-Amz-Function-Error`) is not retryable and carries
    /// the start of its answer; throttling and Lambda's own failures are.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, ServiceError>> {
        Box::pin(async move {
            let out = self
                .client
                .invoke()
                .function_name(function)
                .payload(Blob::new(payload.to_vec()))
                .send()
                .await
                .map_err(|e| service_error(&format!("Lambda Invoke {function}"), &e))?;
            let answer = out
                .payload()
                .map(|b| Bytes::copy_from_slice(b.as_ref()))
                .unwrap_or_default();
            if let Some(kind) = out.function_error() {
                let text = String::from_utf8_lossy(&answer);
                let text: String = text.chars().take(MAX_FUNCTION_ERROR_CHARS).collect();
                return Err(ServiceError {
                    message: format!("function {function} failed ({kind}): {text}"),
                    retryable: false,
                });
            }
            Ok(answer)
        })
    }
}

/// Resolves `ssm:/path` (Parameter Store, decrypted), `secretsmanager:id`
/// (Secrets Manager, the string or UTF-8 binary value) and `env:NAME` (the
/// function's environment, which the template fills from a stack
/// parameter).
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    ssm: aws_sdk_ssm::Client,
    secrets_manager: aws_sdk_secretsmanager::Client,
}

impl AwsSecrets {
    /// Resolves through clients of `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsSecrets {
            ssm: aws_sdk_ssm::Client::new(config),
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    async fn ssm(&self, name: &str) -> Result<String, ServiceError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| service_error(&format!("SSM GetParameter {name}"), &e))?;
        out.parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or_else(|| ServiceError {
                message: format!("SSM parameter {name} has no value"),
                retryable: false,
            })
    }

    async fn secrets_manager(&self, id: &str) -> Result<String, ServiceError> {
        let out = self
            .secrets_manager
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| service_error(&format!("Secrets Manager GetSecretValue {id}"), &e))?;
        if let Some(text) = out.secret_string() {
            return Ok(text.to_owned());
        }
        let binary = out.secret_binary().ok_or_else(|| ServiceError {
            message: format!("secret {id} has no value"),
            retryable: false,
        })?;
        String::from_utf8(binary.as_ref().to_vec()).map_err(|_| ServiceError {
            message: format!("secret {id} is binary and not UTF-8 text"),
            retryable: false,
        })
    }
}

impl Secrets for AwsSecrets {
    fn resolve<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<String, ServiceError>> {
        Box::pin(async move {
            if let Some(name) = reference.strip_prefix("ssm:") {
                self.ssm(name).await
            } else if let Some(id) = reference.strip_prefix("secretsmanager:") {
                self.secrets_manager(id).await
            } else if let Some(var) = reference.strip_prefix("env:") {
                std::env::var(var).map_err(|_| ServiceError {
                    message: format!(
                        "{var} is not set in the connector's environment (the template sets it from the stack parameter for `env:{var}`)"
                    ),
                    retryable: false,
                })
            } else {
                Err(ServiceError {
                    message: format!(
                        "`{reference}` is not a secret reference: write ssm:/path, secretsmanager:id or env:NAME"
                    ),
                    retryable: false,
                })
            }
        })
    }
}
