//! What every capability builds on: the customer-managed data key that
//! encrypts everything at rest, the alarm topic, the access-log bucket, and
//! the helpers that make a hardened bucket and a function with its own role
//! and log group.

use serde_json::{Value, json};

use super::iam::Policy;
use super::sizing::FunctionConfig;
use super::{ARTIFACTS_BUCKET, Stack, Template, get_att, key_arn, r#ref, sub};

/// The data key's logical id.
pub const DATA_KEY: &str = "DataKey";
/// The alarm topic's logical id.
pub const ALARM_TOPIC: &str = "AlarmTopic";
/// The access-log bucket's logical id.
const ACCESS_LOGS_BUCKET: &str = "AccessLogsBucket";

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    t.parameter(
        ARTIFACTS_BUCKET,
        json!({
            "Type": "String",
            "Description": "The artifacts bucket made by the bootstrap stack (cloudformation-bootstrap.json): function code and bundles, by content-addressed key.",
            "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        }),
    );
    t.retained(
        DATA_KEY,
        "AWS::KMS::Key",
        json!({
            "Description": format!("Uniflow {}: encrypts events, profiles, queues and logs at rest", stack.prefix),
            "EnableKeyRotation": true,
            "PendingWindowInDays": 30,
            "KeyPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministersKeyThroughIam",
                        "Effect": "Allow",
                        "Principal": { "AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") },
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "CloudWatchLogsEncryptsThisStacksLogGroups",
                        "Effect": "Allow",
                        "Principal": { "Service": sub("logs.${AWS::Region}.amazonaws.com") },
                        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                        "Resource": "*",
                        "Condition": {
                            "ArnLike": {
                                "kms:EncryptionContext:aws:logs:arn": sub(&format!(
                                    "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:*{}*",
                                    stack.prefix
                                )),
                            },
                        },
                    },
                    {
                        "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
                        "Effect": "Allow",
                        "Principal": { "Service": "cloudwatch.amazonaws.com" },
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": { "aws:SourceAccount": r#ref("AWS::AccountId") },
                        },
                    },
                ],
            },
        }),
    );
    t.resource(
        "DataKeyAlias",
        "AWS::KMS::Alias",
        json!({
            "AliasName": format!("alias/{}-data", stack.prefix),
            "TargetKeyId": r#ref(DATA_KEY),
        }),
    );

    t.parameter(
        "AlarmEmail",
        json!({
            "Type": "String",
            "Default": "",
            "Description": "An address that receives alarm notifications (confirm the subscription email). Empty: alarms go to the topic only.",
        }),
    );
    t.condition(
        "HasAlarmEmail",
        json!({ "Fn::Not": [{ "Fn::Equals": [r#ref("AlarmEmail"), ""] }] }),
    );
    t.resource(
        ALARM_TOPIC,
        "AWS::SNS::Topic",
        json!({
            "TopicName": stack.name("alarms"),
            "DisplayName": format!("Uniflow {} alarms", stack.prefix),
            "KmsMasterKeyId": r#ref(DATA_KEY),
        }),
    );
    t.conditional(
        "AlarmEmailSubscription",
        "HasAlarmEmail",
        "AWS::SNS::Subscription",
        json!({
            "TopicArn": r#ref(ALARM_TOPIC),
            "Protocol": "email",
            "Endpoint": r#ref("AlarmEmail"),
        }),
    );

    // Server access logs cannot be written to a bucket encrypted with a
    // customer-managed key, so this one bucket uses S3-managed keys.
    s3_managed_bucket(
        t,
        ACCESS_LOGS_BUCKET,
        json!({
            "Id": "expire-access-logs",
            "Status": "Enabled",
            "ExpirationInDays": 365,
            "NoncurrentVersionExpiration": { "NoncurrentDays": 30 },
            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
        }),
    );
    let mut statements = vec![json!({
        "Sid": "S3ServerAccessLogsFromThisAccount",
        "Effect": "Allow",
        "Principal": { "Service": "logging.s3.amazonaws.com" },
        "Action": "s3:PutObject",
        "Resource": sub("${AccessLogsBucket.Arn}/*"),
        "Condition": {
            "StringEquals": { "aws:SourceAccount": r#ref("AWS::AccountId") },
        },
    })];
    statements.push(deny_insecure_transport(ACCESS_LOGS_BUCKET));
    t.resource(
        "AccessLogsBucketPolicy",
        "AWS::S3::BucketPolicy",
        json!({
            "Bucket": r#ref(ACCESS_LOGS_BUCKET),
            "PolicyDocument": { "Version": "2012-10-17", "Statement": statements },
        }),
    );
    t.output(
        "AccessLogsBucketName",
        "S3 server access logs of every data bucket",
        r#ref(ACCESS_LOGS_BUCKET),
    );
}

/// Blocks every form of public access.
pub fn public_access_block() -> Value {
    json!({
        "BlockPublicAcls": true,
        "BlockPublicPolicy": true,
        "IgnorePublicAcls": true,
        "RestrictPublicBuckets": true,
    })
}

/// A private, versioned bucket encrypted with S3-managed keys, kept when the
/// stack goes, with one lifecycle rule.
pub fn s3_managed_bucket(t: &mut Template, id: &str, lifecycle: Value) {
    t.retained(
        id,
        "AWS::S3::Bucket",
        json!({
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{
                    "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" },
                }],
            },
            "PublicAccessBlockConfiguration": public_access_block(),
            "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
            "VersioningConfiguration": { "Status": "Enabled" },
            "LifecycleConfiguration": { "Rules": [lifecycle] },
        }),
    );
}

/// Refuses any request to the bucket that is not over TLS.
pub fn deny_insecure_transport(bucket: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [get_att(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// A bucket holding data: versioned, encrypted with the data key, private,
/// TLS-only, access-logged, kept when the stack goes. `expire_days` expires
/// current objects (exports are re-creatable; archives are not).
pub fn data_bucket(t: &mut Template, id: &str, expire_days: Option<u32>) {
    let mut rule = json!({
        "Id": "tidy-versions-and-uploads",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": { "NoncurrentDays": 30 },
        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
    });
    if let Some(days) = expire_days {
        rule["ExpirationInDays"] = json!(days);
    }
    t.retained(
        id,
        "AWS::S3::Bucket",
        json!({
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{
                    "ServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn(),
                    },
                    "BucketKeyEnabled": true,
                }],
            },
            "PublicAccessBlockConfiguration": public_access_block(),
            "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
            "VersioningConfiguration": { "Status": "Enabled" },
            "LoggingConfiguration": {
                "DestinationBucketName": r#ref(ACCESS_LOGS_BUCKET),
                "LogFilePrefix": format!("{id}/"),
            },
            "LifecycleConfiguration": { "Rules": [rule] },
        }),
    );
    t.resource(
        format!("{id}Policy"),
        "AWS::S3::BucketPolicy",
        json!({
            "Bucket": r#ref(id),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [deny_insecure_transport(id)],
            },
        }),
    );
}

/// The logical id prefix of a function's resources: `ingest` -> `Ingest`.
pub fn function_id(config: &FunctionConfig) -> String {
    super::logical(config.role)
}

/// A function with its code parameter, its own log group and its own role
/// holding `policy` plus writing to that log group.
pub fn function(t: &mut Template, config: &FunctionConfig, policy: Policy) {
    let id = function_id(config);
    let log_group = format!("{id}LogGroup");
    let role = format!("{id}Role");
    let code = format!("{id}CodeKey");
    t.parameter(
        &code,
        json!({
            "Type": "String",
            "Description": format!("Key of the {} function's zip in the artifacts bucket: lambda/{}/<sha256 of the zip>.zip", config.role, config.role),
            "AllowedPattern": format!("^lambda/{}/[0-9a-f]{{64}}\\.zip$", config.role),
        }),
    );
    t.disposable(
        &log_group,
        "AWS::Logs::LogGroup",
        json!({
            "LogGroupName": format!("/aws/lambda/{}", config.function_name),
            "RetentionInDays": config.log_retention_days,
            "KmsKeyId": key_arn(),
        }),
    );
    policy.logs(&log_group).role(
        t,
        &role,
        "lambda.amazonaws.com",
        &format!("Runs the {} function", config.function_name),
    );
    let environment: serde_json::Map<String, Value> = config
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), sub(v)))
        .collect();
    let mut properties = json!({
        "FunctionName": config.function_name,
        "Description": config.description,
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Architectures": [config.architecture],
        "MemorySize": config.memory_mb,
        "Timeout": config.timeout_secs,
        "Role": get_att(&role, "Arn"),
        "Code": { "S3Bucket": r#ref(ARTIFACTS_BUCKET), "S3Key": r#ref(&code) },
        "Environment": { "Variables": environment },
        "KmsKeyArn": key_arn(),
        "LoggingConfig": { "LogGroup": r#ref(&log_group), "LogFormat": "JSON" },
    });
    if let Some(n) = config.reserved_concurrency {
        properties["ReservedConcurrentExecutions"] = json!(n);
    }
    t.resource(format!("{id}Function"), "AWS::Lambda::Function", properties);
}

/// An alarm that fires when `metric` reaches `threshold` in a 5-minute period.
pub fn alarm(
    t: &mut Template,
    id: &str,
    description: &str,
    (namespace, metric, statistic): (&str, &str, &str),
    dimensions: Value,
    threshold: u64,
) {
    t.resource(
        id,
        "AWS::CloudWatch::Alarm",
        json!({
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [r#ref(ALARM_TOPIC)],
            "OKActions": [r#ref(ALARM_TOPIC)],
        }),
    );
}
