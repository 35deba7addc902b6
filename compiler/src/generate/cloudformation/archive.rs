//! The archives: Firehose copies the event stream into the raw bucket, the
//! ingest function writes quarantined events into the violations bucket, and
//! Glue tables over both make them queryable from Athena from day one.
//!
//! Both archives use Hive-style prefixes, `raw/year=YYYY/month=MM/day=DD/hour=HH/`,
//! with GZIP-compressed newline-delimited JSON objects (`.json.gz`); the
//! embedded pipeline writes the same layout on disk. The Glue tables use
//! partition projection, so no crawler and no `MSCK REPAIR` is ever needed.

use serde_json::{Value, json};

use super::base::data_bucket;
use super::iam::Policy;
use super::ingest::EVENT_STREAM;
use super::{RAW_ARCHIVE_PREFIX, RAW_BUCKET, Stack, Template, get_att, key_arn, r#ref, sub};

/// The columns of an archived event: the Segment message as the ingest
/// function writes it to the stream (Segment's camelCase field names), one
/// JSON object per line. Nested objects are kept as JSON text: query them
/// with `json_extract_scalar(properties, '$.revenue')`. Timestamps are the
/// ISO 8601 strings the message carries: `from_iso8601_timestamp(timestamp)`.
pub const RAW_COLUMNS: &[(&str, &str, &str)] = &[
    (
        "messageId",
        "string",
        "Unique id of the message; deduplication key",
    ),
    (
        "type",
        "string",
        "track, identify, page, screen, group or alias",
    ),
    ("event", "string", "Event name (track)"),
    ("name", "string", "Page or screen name (page, screen)"),
    ("category", "string", "Page category (page)"),
    ("userId", "string", "The sender's user id"),
    ("anonymousId", "string", "The sender's anonymous id"),
    ("groupId", "string", "Account id (group)"),
    ("previousId", "string", "The id being aliased (alias)"),
    ("properties", "string", "Event properties, as JSON"),
    ("traits", "string", "User or group traits, as JSON"),
    (
        "context",
        "string",
        "Context (ip, library, page, device, ...), as JSON",
    ),
    (
        "integrations",
        "string",
        "Per-destination switches sent by the client, as JSON",
    ),
    (
        "timestamp",
        "string",
        "When it happened, corrected for client clock skew",
    ),
    (
        "originalTimestamp",
        "string",
        "The timestamp the client sent",
    ),
    ("sentAt", "string", "When the client sent it"),
    ("receivedAt", "string", "When ingest received it"),
    ("sourceId", "string", "The uniflow source it was sent to"),
    (
        "schemaIssues",
        "string",
        "Schema issues of an event let through by on-violation allow, as JSON",
    ),
];

/// The columns of a quarantined event in the violations archive.
pub const VIOLATION_COLUMNS: &[(&str, &str, &str)] = &[
    ("receivedAt", "string", "When ingest received it"),
    ("sourceId", "string", "The uniflow source it was sent to"),
    ("messageId", "string", "The message's id"),
    (
        "issues",
        "string",
        "Why it failed its schema, as JSON (Zod-style issues)",
    ),
    ("message", "string", "The message as received, as JSON"),
];

/// The log stream Firehose reports delivery errors to.
const DELIVERY_LOG_STREAM: &str = "S3Delivery";

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    data_bucket(t, RAW_BUCKET, None);
    data_bucket(t, "ViolationsBucket", None);
    // Segment membership snapshots and exports: re-creatable, so they expire.
    data_bucket(t, "ExportsBucket", Some(90));

    let delivery = stack.name("raw");
    t.disposable(
        "RawDeliveryLogGroup",
        "AWS::Logs::LogGroup",
        json!({
            "LogGroupName": format!("/aws/kinesisfirehose/{delivery}"),
            "RetentionInDays": super::sizing::LOG_RETENTION_DAYS,
            "KmsKeyId": key_arn(),
        }),
    );
    t.resource(
        "RawDeliveryLogStream",
        "AWS::Logs::LogStream",
        json!({
            "LogGroupName": r#ref("RawDeliveryLogGroup"),
            "LogStreamName": DELIVERY_LOG_STREAM,
        }),
    );
    Policy::default()
        .read_event_stream()
        .allow(
            "FindRawBucket",
            &["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            vec![get_att(RAW_BUCKET, "Arn")],
        )
        .allow(
            "WriteRawArchive",
            &["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            vec![
                sub(&format!("${{{RAW_BUCKET}.Arn}}/{RAW_ARCHIVE_PREFIX}*")),
                sub(&format!("${{{RAW_BUCKET}.Arn}}/errors/*")),
            ],
        )
        .allow(
            "WriteDeliveryLogs",
            &["logs:PutLogEvents"],
            vec![sub(
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${RawDeliveryLogGroup}:log-stream:S3Delivery",
            )],
        )
        .data_key(&["kms:Decrypt", "kms:GenerateDataKey"])
        .role(
            t,
            "RawDeliveryRole",
            "firehose.amazonaws.com",
            "Copies the event stream into the raw archive",
        );
    t.resource(
        "RawDeliveryStream",
        "AWS::KinesisFirehose::DeliveryStream",
        json!({
            "DeliveryStreamName": delivery,
            "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": get_att(EVENT_STREAM, "Arn"),
                "RoleARN": get_att("RawDeliveryRole", "Arn"),
            },
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": get_att(RAW_BUCKET, "Arn"),
                "RoleARN": get_att("RawDeliveryRole", "Arn"),
                "Prefix": format!("{RAW_ARCHIVE_PREFIX}year=!{{timestamp:yyyy}}/month=!{{timestamp:MM}}/day=!{{timestamp:dd}}/hour=!{{timestamp:HH}}/"),
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
                "CompressionFormat": "GZIP",
                "FileExtension": ".json.gz",
                "BufferingHints": { "IntervalInSeconds": 300, "SizeInMBs": 128 },
                "EncryptionConfiguration": {
                    "KMSEncryptionConfig": { "AWSKMSKeyARN": key_arn() },
                },
                "CloudWatchLoggingOptions": {
                    "Enabled": true,
                    "LogGroupName": r#ref("RawDeliveryLogGroup"),
                    "LogStreamName": DELIVERY_LOG_STREAM,
                },
            },
        }),
    );

    let database = stack.prefix.replace('-', "_");
    t.resource(
        "ArchiveDatabase",
        "AWS::Glue::Database",
        json!({
            "CatalogId": r#ref("AWS::AccountId"),
            "DatabaseInput": {
                "Name": database,
                "Description": format!("Uniflow {}: the raw event archive and quarantined events", stack.prefix),
            },
        }),
    );
    table(
        t,
        "RawEventsTable",
        super::RAW_EVENTS_TABLE,
        "Every accepted event, as archived by Firehose",
        RAW_BUCKET,
        "raw",
        RAW_COLUMNS,
    );
    table(
        t,
        "ViolationsTable",
        "violations",
        "Events quarantined for failing their schema, with the issues found",
        "ViolationsBucket",
        "violations",
        VIOLATION_COLUMNS,
    );

    t.output(
        "RawBucketName",
        "Raw event archive (Firehose, GZIP NDJSON)",
        r#ref(RAW_BUCKET),
    );
    t.output(
        "ViolationsBucketName",
        "Quarantined events and their issues",
        r#ref("ViolationsBucket"),
    );
    t.output(
        "ExportsBucketName",
        "Segment membership snapshots and exports",
        r#ref("ExportsBucket"),
    );
    t.output(
        "ArchiveDatabaseName",
        "Glue database of the archive tables (query with Athena)",
        r#ref("ArchiveDatabase"),
    );
}

/// A Glue table over GZIP NDJSON under `prefix/year=/month=/day=/hour=/`.
fn table(
    t: &mut Template,
    id: &str,
    name: &str,
    description: &str,
    bucket: &str,
    prefix: &str,
    columns: &[(&str, &str, &str)],
) {
    let columns: Vec<Value> = columns
        .iter()
        .map(|(name, ty, comment)| json!({ "Name": name, "Type": ty, "Comment": comment }))
        .collect();
    let partitions: Vec<Value> = ["year", "month", "day", "hour"]
        .iter()
        .map(|p| json!({ "Name": p, "Type": "string" }))
        .collect();
    t.resource(
        id,
        "AWS::Glue::Table",
        json!({
            "CatalogId": r#ref("AWS::AccountId"),
            "DatabaseName": r#ref("ArchiveDatabase"),
            "TableInput": {
                "Name": name,
                "Description": description,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {
                    "classification": "json",
                    "compressionType": "gzip",
                    "projection.enabled": "true",
                    "projection.year.type": "integer",
                    "projection.year.range": "2024,2099",
                    "projection.month.type": "integer",
                    "projection.month.range": "1,12",
                    "projection.month.digits": "2",
                    "projection.day.type": "integer",
                    "projection.day.range": "1,31",
                    "projection.day.digits": "2",
                    "projection.hour.type": "integer",
                    "projection.hour.range": "0,23",
                    "projection.hour.digits": "2",
                    "storage.location.template": sub(&format!(
                        "s3://${{{bucket}}}/{prefix}/year=${{!year}}/month=${{!month}}/day=${{!day}}/hour=${{!hour}}/"
                    )),
                },
                "PartitionKeys": partitions,
                "StorageDescriptor": {
                    "Location": sub(&format!("s3://${{{bucket}}}/{prefix}/")),
                    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    "Compressed": true,
                    "SerdeInfo": {
                        "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                        "Parameters": { "case.insensitive": "true", "ignore.malformed.json": "false" },
                    },
                    "Columns": columns,
                },
            },
        }),
    );
}
