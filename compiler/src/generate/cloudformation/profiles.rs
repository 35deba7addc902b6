//! Identity and profiles: the DynamoDB tables, the processor reading the
//! event stream, and where its failures go.
//!
//! The keys serve the processor's and the management API's access patterns;
//! ARCHITECTURE.md ("DynamoDB tables") says which query each key answers.

use serde_json::{Value, json};

use super::base::{self, alarm};
use super::iam::{Policy, table_and_indexes};
use super::{Stack, Template, destination_id, get_att, key_arn, r#ref};

/// A table's key schema and secondary indexes.
struct Table {
    id: &'static str,
    suffix: &'static str,
    hash: &'static str,
    range: Option<&'static str>,
    /// `(index name, hash, range)`.
    by: Option<(&'static str, &'static str, &'static str)>,
    ttl: Option<&'static str>,
    /// Whether losing it loses data (kept when the stack is deleted).
    durable: bool,
    what: &'static str,
}

const TABLES: &[Table] = &[
    Table {
        id: "IdentitiesTable",
        suffix: "identities",
        hash: "identifier",
        range: None,
        by: Some(("by-profile", "profile_id", "identifier")),
        ttl: None,
        durable: true,
        what: "Identity graph: `type:value` identifier to profile id",
    },
    Table {
        id: "ProfilesTable",
        suffix: "profiles",
        hash: "pk",
        range: Some("sk"),
        by: None,
        ttl: None,
        durable: true,
        what: "Profiles, their event timelines and merge history",
    },
    Table {
        id: "SegmentsTable",
        suffix: "segments",
        hash: "segment",
        range: Some("profile_id"),
        by: Some(("by-profile", "profile_id", "segment")),
        ttl: None,
        durable: true,
        what: "Segment membership",
    },
    Table {
        id: "DedupeTable",
        suffix: "dedupe",
        hash: "key",
        range: None,
        by: None,
        ttl: Some("expires_at"),
        durable: false,
        what: "Message ids seen within each source's dedupe window",
    },
    Table {
        id: "StateTable",
        suffix: super::STATE_TABLE_SUFFIX,
        hash: "pk",
        range: Some("sk"),
        by: None,
        ttl: Some("expires_at"),
        durable: true,
        what: "Locks, delivery receipts, suppressed identifiers and cursors",
    },
];

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    for table in TABLES {
        add_table(t, stack, table);
    }

    t.disposable(
        "ProcessorFailuresQueue",
        "AWS::SQS::Queue",
        json!({
            "QueueName": stack.name("processor-failures"),
            "MessageRetentionPeriod": 1_209_600,
            "KmsMasterKeyId": key_arn(),
            "KmsDataKeyReusePeriodSeconds": 300,
        }),
    );
    super::delivery::deny_insecure_transport(
        t,
        "ProcessorFailuresQueuePolicy",
        &["ProcessorFailuresQueue"],
    );

    let config = &stack.sizing.processor;
    let mut destination_queues: Vec<Value> = stack
        .config
        .destinations
        .iter()
        .map(|d| get_att(&format!("{}Queue", destination_id(&d.name.value)), "Arn"))
        .collect();
    destination_queues.push(get_att("ProcessorFailuresQueue", "Arn"));
    let mut tables = Vec::new();
    for id in ["IdentitiesTable", "ProfilesTable", "StateTable"] {
        tables.extend(table_and_indexes(id));
    }
    // Exactly the calls `DynamoProfiles::process` makes: batched reads, one
    // TransactWriteItems per event (authorised item by item as puts and
    // condition checks), and the re-pointing after a merge (a query of the
    // `by-profile` index, conditional updates).
    let policy = Policy::default()
        .read_event_stream()
        .allow(
            "ResolveIdentityAndUpsertProfiles",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            tables,
        )
        .allow(
            "FanOutAndReportFailures",
            &["sqs:GetQueueAttributes", "sqs:SendMessage"],
            destination_queues,
        )
        .read_bundle()
        .data_key(&["kms:Decrypt", "kms:GenerateDataKey"]);
    base::function(t, config, policy);
    for source in &config.event_sources {
        let mut mapping = json!({
            "EventSourceArn": get_att(&source.reads, "Arn"),
            "FunctionName": r#ref("ProcessorFunction"),
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": source.batch_size,
            "MaximumBatchingWindowInSeconds": source.batching_window_secs,
            "BisectBatchOnFunctionError": source.bisect_on_error,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {
                "OnFailure": { "Destination": get_att("ProcessorFailuresQueue", "Arn") },
            },
        });
        if let Some(n) = source.parallelization_factor {
            mapping["ParallelizationFactor"] = json!(n);
        }
        if let Some(n) = source.max_retry_attempts {
            mapping["MaximumRetryAttempts"] = json!(n);
        }
        if let Some(n) = source.max_record_age_secs {
            mapping["MaximumRecordAgeInSeconds"] = json!(n);
        }
        t.resource(&source.id, "AWS::Lambda::EventSourceMapping", mapping);
    }

    alarm(
        t,
        "ProcessorFailuresAlarm",
        "Events failed processing after every retry: their stream positions are in the processor-failures queue; replay them from the raw archive",
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
        json!([{ "Name": "QueueName", "Value": get_att("ProcessorFailuresQueue", "QueueName") }]),
        1,
    );
    alarm(
        t,
        "ProcessorIteratorAgeAlarm",
        "The processor is more than an hour behind the stream",
        ("AWS/Lambda", "IteratorAge", "Maximum"),
        json!([{ "Name": "FunctionName", "Value": r#ref("ProcessorFunction") }]),
        3_600_000,
    );
    t.output(
        "ProcessorFailuresQueueUrl",
        "Stream positions of events that failed processing (metadata only; the events are in the raw archive)",
        r#ref("ProcessorFailuresQueue"),
    );
}

fn add_table(t: &mut Template, stack: &Stack<'_>, table: &Table) {
    let mut attributes = vec![table.hash];
    let mut key = vec![json!({ "AttributeName": table.hash, "KeyType": "HASH" })];
    if let Some(range) = table.range {
        attributes.push(range);
        key.push(json!({ "AttributeName": range, "KeyType": "RANGE" }));
    }
    let mut properties = json!({
        "TableName": stack.name(table.suffix),
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key,
        "SSESpecification": { "SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": key_arn() },
        "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
        "DeletionProtectionEnabled": table.durable,
    });
    if let Some((index, hash, range)) = table.by {
        for a in [hash, range] {
            if !attributes.contains(&a) {
                attributes.push(a);
            }
        }
        properties["GlobalSecondaryIndexes"] = json!([{
            "IndexName": index,
            "KeySchema": [
                { "AttributeName": hash, "KeyType": "HASH" },
                { "AttributeName": range, "KeyType": "RANGE" },
            ],
            "Projection": { "ProjectionType": "ALL" },
        }]);
    }
    attributes.sort_unstable();
    properties["AttributeDefinitions"] = Value::Array(
        attributes
            .iter()
            .map(|a| json!({ "AttributeName": a, "AttributeType": "S" }))
            .collect(),
    );
    if let Some(ttl) = table.ttl {
        properties["TimeToLiveSpecification"] = json!({ "AttributeName": ttl, "Enabled": true });
    }
    if table.durable {
        t.retained(table.id, "AWS::DynamoDB::Table", properties);
    } else {
        t.disposable(table.id, "AWS::DynamoDB::Table", properties);
    }
    t.output(&format!("{}Name", table.id), table.what, r#ref(table.id));
}
