//! The AWS list prices (us-east-1, USD, 2026) that sizing compares and the cost estimate multiplies, in one place.

/// Where and when the prices below were read.
pub const PRICE_LIST: &str = "AWS list prices for us-east-1 in USD, as published in 2026";

/// Hours in a month, as AWS prices them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Kinesis Data Streams, provisioned: per shard-hour.
pub const KINESIS_SHARD_HOUR: f64 = 0.015;
/// Kinesis Data Streams, provisioned: retention beyond 24 hours, per shard-hour.
pub const KINESIS_EXTENDED_RETENTION_SHARD_HOUR: f64 = 0.02;
/// Kinesis Data Streams, provisioned: per million PUT payload units (25 KB each).
pub const KINESIS_PUT_MILLION_UNITS: f64 = 0.014;
/// Bytes in one PUT payload unit.
pub const KINESIS_PUT_UNIT_BYTES: u64 = 25 * 1024;
/// Kinesis Data Streams, on demand: per stream-hour.
pub const KINESIS_ON_DEMAND_STREAM_HOUR: f64 = 0.04;
/// Kinesis Data Streams, on demand: per GB written.
pub const KINESIS_ON_DEMAND_INGEST_GB: f64 = 0.08;
/// Kinesis Data Streams, on demand: per GB read.
pub const KINESIS_ON_DEMAND_RETRIEVAL_GB: f64 = 0.04;
/// Kinesis Data Streams, on demand: retention beyond 24 hours, per GB-month.
pub const KINESIS_ON_DEMAND_EXTENDED_RETENTION_GB_MONTH: f64 = 0.10;

/// API Gateway HTTP API: per million requests (first 300 million).
pub const HTTP_API_MILLION_REQUESTS: f64 = 1.00;
/// API Gateway HTTP API meters requests in increments of this many bytes.
pub const HTTP_API_REQUEST_INCREMENT_BYTES: u64 = 512 * 1024;

/// Lambda: per million requests.
pub const LAMBDA_MILLION_REQUESTS: f64 = 0.20;
/// Lambda on x86_64: per GB-second of duration.
pub const LAMBDA_X86_GB_SECOND: f64 = 0.000_016_666_7;

/// Data Firehose (Kinesis stream as source): per GB ingested.
pub const FIREHOSE_GB: f64 = 0.029;
/// Data Firehose bills each record rounded up to a multiple of this many bytes.
pub const FIREHOSE_RECORD_INCREMENT_BYTES: u64 = 5 * 1024;

/// S3 Standard: per GB-month stored (first 50 TB).
pub const S3_STANDARD_GB_MONTH: f64 = 0.023;
/// S3 Standard: per 1,000 PUT, COPY, POST or LIST requests.
pub const S3_THOUSAND_PUTS: f64 = 0.005;

/// DynamoDB on demand: per million write request units.
pub const DYNAMODB_MILLION_WRU: f64 = 0.625;
/// DynamoDB on demand: per million read request units.
pub const DYNAMODB_MILLION_RRU: f64 = 0.125;
/// DynamoDB Standard table class: per GB-month stored.
pub const DYNAMODB_GB_MONTH: f64 = 0.25;

/// SQS standard queues: per million requests.
pub const SQS_MILLION_REQUESTS: f64 = 0.40;

/// CloudWatch Logs (standard class): per GB ingested.
pub const LOGS_INGESTED_GB: f64 = 0.50;
/// CloudWatch: per standard-resolution metric alarm-month.
pub const ALARM_MONTH: f64 = 0.10;

/// KMS: per customer-managed key-month.
pub const KMS_KEY_MONTH: f64 = 1.00;
/// KMS: per 10,000 requests.
pub const KMS_TEN_THOUSAND_REQUESTS: f64 = 0.03;

/// Secrets Manager: per secret-month.
pub const SECRET_MONTH: f64 = 0.40;

/// Glue (Spark jobs): per DPU-hour.
pub const GLUE_DPU_HOUR: f64 = 0.44;
