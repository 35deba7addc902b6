//! `--aws`: `uniflow dlq` and `uniflow replay` on a deployed stack,
//! straight through SQS, S3 and DynamoDB with the AWS SDK (which honours
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_PROFILE` and credentials from the
//! environment). The stack's resources are found where the compiler's
//! template names them ([`deployed`]): queues under the resource prefix,
//! the state table, and the raw archive's bucket by its name and tags.

use std::io::Write;

use anyhow::{Context, anyhow};
use uniflow_compiler::Config;
use uniflow_compiler::generate::cloudformation::{Deployed, deployed};
use uniflow_runtime_aws::deliveries::AwsDeliveries;
use uniflow_runtime_aws::queues::QueueError;

use crate::ExitStatus;

/// A deployed stack, as the CLI reaches it.
#[derive(Debug)]
pub struct Stack {
    /// Where its resources are.
    pub deployed: Deployed,
    /// Its deliveries (and, through them, its queues).
    pub deliveries: AwsDeliveries,
    sdk: aws_config::SdkConfig,
}

impl Stack {
    /// The stack of `config`'s project: the region from the environment,
    /// else the project's.
    pub async fn connect(config: &Config) -> anyhow::Result<Stack> {
        let project = config
            .project
            .as_ref()
            .ok_or_else(|| anyhow!("the project has no `project` node, so nothing is deployed"))?;
        let deployed = deployed(config)
            .ok_or_else(|| anyhow!("the project has no `project` node, so nothing is deployed"))?;
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::new(project.region.value.clone()));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        let deliveries = AwsDeliveries::new(&sdk, &deployed.state_table, &deployed.resource_prefix);
        Ok(Stack {
            deployed,
            deliveries,
            sdk,
        })
    }

    /// Where the SDK calls go, for messages: the region, and the endpoint
    /// when one is set.
    pub fn describe(&self) -> String {
        let region = self
            .sdk
            .region()
            .map_or_else(|| "no region".to_owned(), ToString::to_string);
        match self.sdk.endpoint_url() {
            Some(url) => format!("AWS region {region} at {url}"),
            None => format!("AWS region {region}"),
        }
    }

    /// Checks that `destination`'s queues are there before anything is
    /// read or moved: `Ok(None)` when they are, `Ok(Some(status))` after
    /// saying they are not (exit 1), an error when AWS did not answer.
    pub async fn check(&self, destination: &str) -> anyhow::Result<Option<ExitStatus>> {
        match self.deliveries.queues().exists(destination).await {
            Ok(()) => Ok(None),
            Err(e @ QueueError::NoSuchQueue(_)) => {
                writeln!(std::io::stderr(), "error: {e} (asked {})", self.describe())?;
                Ok(Some(ExitStatus::Failure))
            }
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// An AWS failure, saying where uniflow asked and what to check.
    pub fn unreachable(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!(
            "{e}\n(asked {}; check AWS_REGION, the credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID) and AWS_ENDPOINT_URL)",
            self.describe()
        )
    }

    /// The raw archive's bucket: `given` (`--raw-bucket`), else the one
    /// bucket named as CloudFormation names it (`...-rawbucket-...`) that
    /// carries the stack's project and stage tags.
    pub async fn raw_bucket(&self, given: Option<&str>) -> anyhow::Result<Result<String, String>> {
        if let Some(bucket) = given {
            return Ok(Ok(bucket.to_owned()));
        }
        let (hint, tags) = (
            &self.deployed.raw_bucket_name_contains,
            &self.deployed.raw_bucket_tags,
        );
        match self.deliveries.queues().find_bucket(hint, tags).await {
            Ok(bucket) => Ok(Ok(bucket)),
            Err(e @ (QueueError::NoSuchBucket { .. } | QueueError::SeveralBuckets { .. })) => {
                Ok(Err(format!(
                    "{e} (asked {}; --raw-bucket names the bucket)",
                    self.describe()
                )))
            }
            Err(e) => Err(self.unreachable(e)).context("cannot find the raw archive's bucket"),
        }
    }
}
