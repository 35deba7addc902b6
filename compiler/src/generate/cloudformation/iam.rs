//! IAM roles with one inline policy each, written statement by statement so
//! every action is named against the exact resources it needs.

use serde_json::{Value, json};

use super::{Template, sub};

/// The statements of one role's policy.
#[derive(Default)]
pub(crate) struct Policy {
    statements: Vec<Value>,
}

impl Policy {
    /// Allows `actions` on `resources` (values: strings, `Ref`s, `Fn::Sub`s).
    pub fn allow(mut self, sid: &str, actions: &[&str], resources: Vec<Value>) -> Self {
        self.statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": resources,
        }));
        self
    }

    /// Allows reading this stack's bundles from the artifacts bucket.
    pub fn read_bundle(self) -> Self {
        self.allow(
            "ReadBundle",
            &["s3:GetObject"],
            vec![sub(&format!(
                "arn:${{AWS::Partition}}:s3:::${{{}}}/bundles/*",
                super::ARTIFACTS_BUCKET
            ))],
        )
    }

    /// Allows reading the event stream as a consumer.
    pub fn read_event_stream(self) -> Self {
        self.allow(
            "ReadEventStream",
            &[
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
            ],
            vec![super::get_att(super::ingest::EVENT_STREAM, "Arn")],
        )
    }

    /// Allows the data key's use for the named purposes.
    pub fn data_key(self, actions: &[&str]) -> Self {
        self.allow("UseDataKey", actions, vec![super::key_arn()])
    }

    /// Allows writing to its own log group, and nothing else in CloudWatch Logs.
    pub fn logs(self, log_group: &str) -> Self {
        self.allow(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![super::get_att(log_group, "Arn")],
        )
    }

    /// Adds the role, assumable by `service`.
    pub fn role(self, template: &mut Template, id: &str, service: &str, description: &str) {
        template.resource(
            id,
            "AWS::IAM::Role",
            json!({
                "Description": description,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": service },
                        "Action": "sts:AssumeRole",
                    }],
                },
                "Policies": [{
                    "PolicyName": "least-privilege",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": self.statements,
                    },
                }],
            }),
        );
    }
}

/// `arn:aws:dynamodb:region:account:table/<name>` and its indexes, for a
/// table declared in this template.
pub(crate) fn table_and_indexes(table: &str) -> Vec<Value> {
    vec![
        super::get_att(table, "Arn"),
        sub(&format!("${{{table}.Arn}}/index/*")),
    ]
}
