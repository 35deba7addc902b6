//! Delivery: one queue and one dead-letter queue per destination, the
//! connector function reading every queue through its own mapping, and what
//! the connector may reach (the user's buckets, functions and secrets, each
//! named exactly).

use serde_json::{Value, json};

use super::base::{self, alarm};
use super::iam::Policy;
use super::sizing::env_secret_parameter;
use super::{Stack, Template, destination_id, get_att, key_arn, r#ref, sub};
use crate::model::{Destination, DestinationKind, HeaderValue, SecretRef};

/// SQS keeps messages at most 14 days.
const MAX_RETENTION_SECS: u64 = 14 * 24 * 3600;

pub fn add(t: &mut Template, stack: &Stack<'_>) {
    let visibility = stack.sizing.queue_visibility_secs;
    let mut queues = Vec::new();
    let mut dlqs = Vec::new();
    let mut reach = Reach::default();
    for d in &stack.config.destinations {
        let id = destination_id(&d.name.value);
        let queue = format!("{id}Queue");
        let dlq = format!("{id}Dlq");
        let queue_name = stack.name(&d.name.value);
        // A message is kept as long as it may still be delivered, plus one
        // visibility timeout for the attempt in flight.
        let retention = (d.retry.max_age_secs + visibility).clamp(60, MAX_RETENTION_SECS);
        t.disposable(
            &queue,
            "AWS::SQS::Queue",
            json!({
                "QueueName": queue_name,
                "VisibilityTimeout": visibility,
                "MessageRetentionPeriod": retention,
                "ReceiveMessageWaitTimeSeconds": 20,
                "KmsMasterKeyId": key_arn(),
                "KmsDataKeyReusePeriodSeconds": 300,
                "RedrivePolicy": {
                    "deadLetterTargetArn": get_att(&dlq, "Arn"),
                    "maxReceiveCount": d.retry.attempts,
                },
            }),
        );
        t.disposable(
            &dlq,
            "AWS::SQS::Queue",
            json!({
                "QueueName": format!("{queue_name}-dlq"),
                "MessageRetentionPeriod": MAX_RETENTION_SECS,
                "KmsMasterKeyId": key_arn(),
                "KmsDataKeyReusePeriodSeconds": 300,
                // Named by ARN, not by reference: the queue already refers to
                // this one, and a reference back would be a cycle.
                "RedriveAllowPolicy": {
                    "redrivePermission": "byQueue",
                    "sourceQueueArns": [sub(&format!(
                        "arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue_name}"
                    ))],
                },
            }),
        );
        deny_insecure_transport(t, &format!("{id}QueuePolicy"), &[&queue, &dlq]);
        alarm(
            t,
            &format!("{id}DlqAlarm"),
            &format!(
                "Events for destination `{}` exhausted their retries; inspect with `uniflow dlq show {}` and redrive",
                d.name.value, d.name.value
            ),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
            json!([{ "Name": "QueueName", "Value": get_att(&dlq, "QueueName") }]),
            1,
        );
        queues.push(get_att(&queue, "Arn"));
        dlqs.push(get_att(&dlq, "Arn"));
        reach.add(d);
    }

    let config = &stack.sizing.connector;
    let mut policy = Policy::default();
    if !queues.is_empty() {
        policy = policy
            .allow(
                "ConsumeDestinationQueues",
                &[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                queues,
            )
            .allow(
                "DeadLetterPermanentFailures",
                &["sqs:GetQueueAttributes", "sqs:SendMessage"],
                dlqs,
            );
    }
    policy = policy
        .allow(
            "RecordDeliveries",
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            vec![get_att("StateTable", "Arn")],
        )
        .read_bundle()
        .data_key(&["kms:Decrypt", "kms:GenerateDataKey"]);
    policy = reach.grant(policy);
    base::function(t, config, policy);
    for source in &config.event_sources {
        t.resource(
            &source.id,
            "AWS::Lambda::EventSourceMapping",
            json!({
                "EventSourceArn": get_att(&source.reads, "Arn"),
                "FunctionName": r#ref("ConnectorFunction"),
                "BatchSize": source.batch_size,
                "MaximumBatchingWindowInSeconds": source.batching_window_secs,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": { "MaximumConcurrency": source.max_concurrency },
            }),
        );
    }
    for var in &stack.sizing.env_secrets {
        t.parameter(
            &env_secret_parameter(var),
            json!({
                "Type": "String",
                "NoEcho": true,
                "Description": format!("Value of `env:{var}`, a secret the config reads from the environment; set on the connector function, encrypted with the data key"),
            }),
        );
    }
}

/// What the connector reaches outside the stack, collected from destinations.
#[derive(Default)]
struct Reach {
    export_objects: Vec<Value>,
    functions: Vec<Value>,
    parameters: Vec<Value>,
    secrets: Vec<Value>,
}

impl Reach {
    fn add(&mut self, d: &Destination) {
        match &d.kind {
            DestinationKind::Webhook(w) => {
                for h in &w.headers {
                    if let HeaderValue::Secret(s) = &h.value {
                        self.secret(s);
                    }
                }
            }
            DestinationKind::S3Export(e) => self.export_objects.push(sub(&format!(
                "arn:${{AWS::Partition}}:s3:::{}/{}*",
                e.bucket.value, e.prefix
            ))),
            DestinationKind::Lambda(l) => {
                let f = &l.function.value;
                self.functions.push(if f.starts_with("arn:") {
                    json!(f)
                } else {
                    sub(&format!(
                        "arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{f}"
                    ))
                });
            }
        }
        if let Some(s) = &d.secret {
            self.secret(s);
        }
    }

    fn secret(&mut self, s: &SecretRef) {
        match s {
            SecretRef::Ssm(path) => self.parameters.push(sub(&format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/{}",
                path.trim_start_matches('/')
            ))),
            // Secrets Manager appends six random characters to a secret's ARN.
            SecretRef::SecretsManager(name) => self.secrets.push(sub(&format!(
                "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{name}-??????"
            ))),
            SecretRef::Env(_) => {}
        }
    }

    fn grant(self, mut policy: Policy) -> Policy {
        for (sid, actions, resources) in [
            (
                "WriteExports",
                &["s3:AbortMultipartUpload", "s3:PutObject"][..],
                self.export_objects,
            ),
            (
                "InvokeDestinationFunctions",
                &["lambda:InvokeFunction"][..],
                self.functions,
            ),
            ("ReadSsmSecrets", &["ssm:GetParameter"][..], self.parameters),
            (
                "ReadSecretsManagerSecrets",
                &["secretsmanager:GetSecretValue"][..],
                self.secrets,
            ),
        ] {
            let resources = dedup(resources);
            if !resources.is_empty() {
                policy = policy.allow(sid, actions, resources);
            }
        }
        policy
    }
}

fn dedup(mut values: Vec<Value>) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    values.retain(|v| seen.insert(v.to_string()));
    values
}

/// One queue policy refusing every request not made over TLS, for `queues`.
pub fn deny_insecure_transport(t: &mut Template, id: &str, queues: &[&str]) {
    t.resource(
        id,
        "AWS::SQS::QueuePolicy",
        json!({
            "Queues": queues.iter().map(|q| r#ref(q)).collect::<Vec<_>>(),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queues.iter().map(|q| get_att(q, "Arn")).collect::<Vec<_>>(),
                    "Condition": { "Bool": { "aws:SecureTransport": "false" } },
                }],
            },
        }),
    );
}
