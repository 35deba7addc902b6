//! The AWS backend of the Uniflow runtime and the Lambda entry points.
//!
//! - [`KinesisSink`]: accepted events to the Kinesis stream (`PutRecords`,
//!   retrying the entries a partial failure names), quarantined events to
//!   the violations bucket as GZIP NDJSON; durable when it returns.
//! - [`DynamoDedupe`]: message ids in the dedupe table, one conditional put
//!   each, expiring through the table's TTL.
//! - [`apigw`]: API Gateway HTTP API (payload v2) events to and from the
//!   handler's plain requests and replies.
//! - [`profiles::DynamoProfiles`]: the profile store (identities, profiles
//!   and suppressed identifiers), one transaction per event.
//! - [`processor`]: the processor Lambda's logic, Kinesis batches through a
//!   profile store and [`fanout`] to the destination queues, with partial
//!   batch failures.
//! - [`connector`]: the connector Lambda's logic, SQS batches of queued
//!   events delivered through connectors, retried by visibility timeout,
//!   dead-lettered with their last error; [`metrics`] records and reads
//!   the delivery counters.
//! - [`queues`]: operations on the queues for `uniflow dlq` and `uniflow
//!   replay` (peek, redrive, enqueue, replay from the raw archive);
//!   [`deliveries::AwsDeliveries`] serves them (with the delivery counters)
//!   as the management API's `Deliveries`.
//! - [`services`]: S3, Lambda, SSM and Secrets Manager behind the
//!   connectors' traits.
//! - [`sqs`]: the queues' names and the batched SQS calls they share.
//!
//! Every client is made from the shared AWS config, so `AWS_ENDPOINT_URL`
//! points all of them at moto in tests.

pub mod apigw;
pub mod connector;
pub mod deliveries;
pub mod fanout;
pub mod metrics;
pub mod processor;
pub mod profiles;
pub mod queues;
pub mod services;
pub mod sqs;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::future::join_all;
use uniflow_runtime::backend::{BackendError, Dedupe, EventSink};
use uniflow_runtime::record::{Record, RecordKind};
use uniflow_runtime::time::{format_ms, utc_hour};

/// Kinesis takes at most 500 records and 5 MiB per `PutRecords`.
const MAX_RECORDS_PER_PUT: usize = 500;
const MAX_BYTES_PER_PUT: usize = 5 * 1024 * 1024;
/// Kinesis partition keys are at most 256 characters.
const MAX_PARTITION_KEY: usize = 256;
/// Attempts at records Kinesis refused (throttling, internal errors).
const PUT_ATTEMPTS: u32 = 6;

/// Where the ingest Lambda writes.
#[derive(Debug, Clone)]
pub struct KinesisSink {
    kinesis: aws_sdk_kinesis::Client,
    s3: aws_sdk_s3::Client,
    stream: String,
    violations_bucket: String,
}

impl KinesisSink {
    /// A sink writing to `stream` and quarantining into `violations_bucket`.
    pub fn new(config: &aws_config::SdkConfig, stream: &str, violations_bucket: &str) -> Self {
        KinesisSink {
            kinesis: aws_sdk_kinesis::Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
            stream: stream.to_owned(),
            violations_bucket: violations_bucket.to_owned(),
        }
    }

    async fn put_stream(&self, records: &[&Record]) -> Result<(), BackendError> {
        let mut chunk: Vec<PutRecordsRequestEntry> = Vec::new();
        let mut bytes = 0;
        for r in records {
            let mut data = Vec::with_capacity(r.json.len() + 1);
            data.extend_from_slice(&r.json);
            // Firehose concatenates records as they are: one line each.
            data.push(b'\n');
            let key = partition_key(&r.partition_key);
            let size = data.len() + key.len();
            if chunk.len() == MAX_RECORDS_PER_PUT || bytes + size > MAX_BYTES_PER_PUT {
                self.put_chunk(std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
            bytes += size;
            let entry = PutRecordsRequestEntry::builder()
                .data(Blob::new(data))
                .partition_key(key)
                .build()
                .map_err(|e| BackendError(format!("a Kinesis record: {e}")))?;
            chunk.push(entry);
        }
        if !chunk.is_empty() {
            self.put_chunk(chunk).await?;
        }
        Ok(())
    }

    /// Puts one chunk, retrying only the entries Kinesis refused.
    async fn put_chunk(
        &self,
        mut entries: Vec<PutRecordsRequestEntry>,
    ) -> Result<(), BackendError> {
        for attempt in 0..PUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let out = self
                .kinesis
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(entries.clone()))
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) if attempt + 1 < PUT_ATTEMPTS => {
                    tracing::warn!(error = %aws_sdk_kinesis::error::DisplayErrorContext(&e), "PutRecords failed; retrying");
                    continue;
                }
                Err(e) => {
                    return Err(BackendError(format!(
                        "Kinesis PutRecords failed: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(&e)
                    )));
                }
            };
            if out.failed_record_count().unwrap_or(0) == 0 {
                return Ok(());
            }
            entries = entries
                .into_iter()
                .zip(out.records())
                .filter(|(_, result)| result.error_code().is_some())
                .map(|(entry, _)| entry)
                .collect();
            tracing::warn!(
                failed = entries.len(),
                attempt,
                "Kinesis refused some records; retrying them"
            );
        }
        Err(BackendError(format!(
            "Kinesis refused {} records after {PUT_ATTEMPTS} attempts",
            entries.len()
        )))
    }

    async fn put_violations(&self, records: &[&Record]) -> Result<(), BackendError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for r in records {
            std::io::Write::write_all(&mut gz, &r.json)
                .and_then(|()| std::io::Write::write_all(&mut gz, b"\n"))
                .map_err(|e| BackendError(e.to_string()))?;
        }
        let body = gz.finish().map_err(|e| BackendError(e.to_string()))?;
        let (y, m, d, h) = utc_hour(first.received_at_ms);
        let key = format!(
            "violations/year={y:04}/month={m:02}/day={d:02}/hour={h:02}/{}-{}.json.gz",
            format_ms(first.received_at_ms).replace([':', '.'], ""),
            uuid::Uuid::new_v4().simple()
        );
        self.s3
            .put_object()
            .bucket(&self.violations_bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                BackendError(format!(
                    "S3 PutObject {key} failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }
}

impl EventSink for KinesisSink {
    async fn append(&self, records: Vec<Record>) -> Result<(), BackendError> {
        let (accepted, quarantined): (Vec<&Record>, Vec<&Record>) =
            records.iter().partition(|r| r.kind == RecordKind::Accepted);
        let (a, q) = tokio::join!(
            self.put_stream(&accepted),
            self.put_violations(&quarantined)
        );
        a.and(q)
    }
}

/// A Kinesis partition key: at most 256 characters, never empty.
fn partition_key(key: &str) -> String {
    if key.is_empty() {
        return "-".to_owned();
    }
    key.chars().take(MAX_PARTITION_KEY).collect()
}

/// Message ids in the dedupe table (`key` = `<source>#<messageId>`,
/// `expires_at` in epoch seconds, the table's TTL attribute).
#[derive(Debug, Clone)]
pub struct DynamoDedupe {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDedupe {
    /// Dedupe in `table`.
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        DynamoDedupe {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
        }
    }
}

impl Dedupe for DynamoDedupe {
    async fn first_seen(
        &self,
        source: &str,
        window_secs: u64,
        ids: &[&str],
        now_ms: i64,
    ) -> Result<Vec<bool>, BackendError> {
        let now = now_ms / 1000;
        let puts = ids.iter().map(|id| {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("key", AttributeValue::S(format!("{source}#{id}")))
                .item(
                    "expires_at",
                    AttributeValue::N((now + window_secs as i64).to_string()),
                )
                // TTL deletes lazily: an expired item still present is not a duplicate.
                .condition_expression("attribute_not_exists(#k) OR expires_at < :now")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
        });
        let mut out = Vec::with_capacity(ids.len());
        for result in join_all(puts).await {
            match result {
                Ok(_) => out.push(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    out.push(false);
                }
                Err(e) => {
                    return Err(BackendError(format!(
                        "DynamoDB dedupe check failed: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )));
                }
            }
        }
        Ok(out)
    }

    async fn forget(&self, source: &str, ids: &[&str]) {
        let deletes = ids.iter().map(|id| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("key", AttributeValue::S(format!("{source}#{id}")))
                .send()
        });
        for result in join_all(deletes).await {
            if let Err(e) = result {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "could not forget a message id");
            }
        }
    }
}

/// Each source's write key, from the `SecureString` parameters `uniflow
/// apply` keeps under `path` in SSM Parameter Store
/// (`/uniflow/<project>/<stage>/write-keys/<source>`): every parameter below
/// the path, decrypted, keyed by the last segment of its name.
pub async fn write_keys(
    config: &aws_config::SdkConfig,
    path: &str,
) -> Result<std::collections::BTreeMap<String, String>, BackendError> {
    let client = aws_sdk_ssm::Client::new(config);
    // The role may read exactly the path without its trailing slash, which
    // is also the form SSM takes.
    let path = path.trim_end_matches('/');
    let mut keys = std::collections::BTreeMap::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            BackendError(format!(
                "reading write keys under {path}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            ))
        })?;
        for parameter in page.parameters() {
            let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                continue;
            };
            // A write key in plain text is a mistake made outside uniflow
            // (apply writes SecureStrings): refused, and said so.
            if parameter.r#type() != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
                tracing::warn!(
                    parameter = name,
                    "not a SecureString; ignored as a write key"
                );
                continue;
            }
            if let Some(source) = name.rsplit('/').next().filter(|s| !s.is_empty()) {
                keys.insert(source.to_owned(), value.to_owned());
            }
        }
    }
    Ok(keys)
}

/// Reads the bundle from `s3://bucket/key`.
pub async fn load_bundle(
    config: &aws_config::SdkConfig,
    url: &str,
) -> Result<uniflow_schemas::Bundle, BackendError> {
    let (bucket, key) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| BackendError(format!("UNIFLOW_BUNDLE is not an s3:// URL: {url}")))?;
    let object = aws_sdk_s3::Client::new(config)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            BackendError(format!(
                "reading {url}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| BackendError(format!("reading {url}: {e}")))?
        .into_bytes();
    let text = std::str::from_utf8(&bytes).map_err(|e| BackendError(format!("{url}: {e}")))?;
    uniflow_schemas::Bundle::from_json(text).map_err(|e| BackendError(format!("{url}: {e}")))
}

/// A Lambda's setting from the environment the generated template sets.
pub fn env(name: &str) -> Result<String, BackendError> {
    std::env::var(name).map_err(|_| {
        BackendError(format!(
            "{name} is not set (the generated template sets it)"
        ))
    })
}
