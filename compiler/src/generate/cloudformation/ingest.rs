//! The front door: the Segment-compatible HTTP API, the ingest function and
//! the event stream it writes to.

use serde_json::json;

use super::api::{self, HttpApi};
use super::base::{self, alarm};
use super::iam::Policy;
use super::sizing::{STREAM_RETENTION_HOURS, StreamCapacity};
use super::{Stack, Template, get_att, key_arn, r#ref, sub};
use crate::model::SourceKind;

/// The event stream's logical id.
pub const EVENT_STREAM: &str = "EventStream";

/// The tracking API's routes: Segment's, plus `/v1/b`, which some clients use
/// for batches.
pub const ROUTES: &[&str] = &[
    "track", "identify", "page", "screen", "group", "alias", "batch", "b",
];

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    let mut stream = json!({
        "Name": stack.name("events"),
        "RetentionPeriodHours": STREAM_RETENTION_HOURS,
        "StreamEncryption": { "EncryptionType": "KMS", "KeyId": key_arn() },
    });
    match stack.sizing.stream {
        StreamCapacity::OnDemand => {
            stream["StreamModeDetails"] = json!({ "StreamMode": "ON_DEMAND" });
        }
        StreamCapacity::Provisioned { shards } => {
            stream["StreamModeDetails"] = json!({ "StreamMode": "PROVISIONED" });
            stream["ShardCount"] = json!(shards);
        }
    }
    t.disposable(EVENT_STREAM, "AWS::Kinesis::Stream", stream);
    if let StreamCapacity::Provisioned { .. } = stack.sizing.stream {
        alarm(
            t,
            "EventStreamThrottledAlarm",
            "Ingest is writing faster than the stream's shards take: raise the traffic envelope in uniflow.kdl",
            ("AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum"),
            json!([{ "Name": "StreamName", "Value": r#ref(EVENT_STREAM) }]),
            1,
        );
    }

    let config = &stack.sizing.ingest;
    let write_keys_path = stack
        .config
        .project
        .as_ref()
        .map(super::write_keys_path)
        .unwrap_or_default();
    let policy = Policy::default()
        .allow(
            "WriteEventStream",
            &["kinesis:PutRecord", "kinesis:PutRecords"],
            vec![get_att(EVENT_STREAM, "Arn")],
        )
        .allow(
            "QuarantineViolations",
            &["s3:PutObject"],
            vec![sub("${ViolationsBucket.Arn}/violations/*")],
        )
        .allow(
            "DeduplicateMessageIds",
            &["dynamodb:DeleteItem", "dynamodb:PutItem"],
            vec![get_att("DedupeTable", "Arn")],
        )
        // GetParametersByPath is authorized against the requested path (sent
        // without its trailing slash), not the parameters it returns, and
        // reaches every level below it. No kms:Decrypt: the SecureStrings are
        // encrypted with the AWS-managed `aws/ssm` key, whose key policy lets
        // any principal of the account decrypt through SSM (kms:ViaService),
        // so the SSM permission alone decides who reads the keys.
        .allow(
            "ReadWriteKeys",
            &["ssm:GetParametersByPath"],
            vec![sub(&format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{}",
                write_keys_path.trim_end_matches('/')
            ))],
        )
        .read_bundle()
        .data_key(&["kms:Decrypt", "kms:GenerateDataKey"]);
    base::function(t, config, policy);

    let mut origins: Vec<&str> = stack
        .config
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::Browser)
        .flat_map(|s| s.allowed_origins.iter().map(|o| o.value.as_str()))
        .collect();
    origins.sort_unstable();
    origins.dedup();
    let cors = (!origins.is_empty()).then(|| {
        json!({
            "AllowOrigins": origins,
            "AllowMethods": ["POST"],
            "AllowHeaders": ["authorization", "content-encoding", "content-type"],
            "MaxAge": 86400,
        })
    });
    api::add(
        t,
        HttpApi {
            id: "Ingest",
            name: stack.name("ingest"),
            description: "Segment-compatible tracking API (POST /v1/track, identify, page, screen, group, alias, batch)",
            cors,
            throttle: (stack.sizing.api_rate_limit, stack.sizing.api_burst_limit),
            log_retention_days: config.log_retention_days,
            timeout_ms: (config.timeout_secs + 2) * 1000,
            paths: "v1/*",
        },
    );
    for route in ROUTES {
        t.resource(
            format!("IngestRoute{}", super::logical(route)),
            "AWS::ApiGatewayV2::Route",
            json!({
                "ApiId": r#ref("IngestApi"),
                "RouteKey": format!("POST /v1/{route}"),
                "AuthorizationType": "NONE",
                "Target": sub("integrations/${IngestIntegration}"),
            }),
        );
    }

    alarm(
        t,
        "IngestErrorsAlarm",
        "The ingest function failed: senders got 5xx answers and are retrying",
        ("AWS/Lambda", "Errors", "Sum"),
        json!([{ "Name": "FunctionName", "Value": r#ref("IngestFunction") }]),
        1,
    );
    alarm(
        t,
        "IngestApi5xxAlarm",
        "The tracking API answered 5xx (function errors, timeouts or stream throttling)",
        ("AWS/ApiGateway", "5xx", "Sum"),
        json!([
            { "Name": "ApiId", "Value": r#ref("IngestApi") },
            { "Name": "Stage", "Value": "$default" },
        ]),
        5,
    );

    t.output(
        "IngestUrl",
        "Base URL of the tracking API: point Segment or RudderStack SDKs here",
        sub("https://${IngestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
    );
    t.output(
        "EventStreamName",
        "Kinesis stream of accepted events",
        r#ref(EVENT_STREAM),
    );
}
