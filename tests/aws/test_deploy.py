"""Deploys every example's generated stack to moto server and checks, resource
by resource, that what was created is what the template specifies.

Run by tests/aws/run (which builds the templates and starts moto):

    MOTO_ENDPOINT=http://127.0.0.1:5055 UNIFLOW_BUILDS=/tmp/b/shop:/tmp/b/saas \
        python -m unittest tests/aws/test_deploy.py

moto 5.2 creates S3 buckets, DynamoDB tables, Kinesis streams, SQS queues,
IAM roles with inline policies, Lambda functions (code from S3), event source
mappings, Lambda permissions, log groups, SNS topics and KMS keys. It skips
the types in NOT_CREATED_BY_MOTO while still reporting CREATE_COMPLETE; those
are checked by cfn-lint and checkov only, never here. Where moto creates a
resource but drops a property, the check says so (MOTO_DROPS) instead of
pretending to have seen it.
"""

import ast
import hashlib
import io
import json
import os
import re
import unittest
import urllib.request
import uuid
import zipfile

import boto3

ENDPOINT = os.environ.get("MOTO_ENDPOINT", "http://127.0.0.1:5055")
REGION = "eu-west-1"

# Resource types moto's CloudFormation skips: not verifiable against moto.
NOT_CREATED_BY_MOTO = {
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::Logs::LogStream",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
}

# Properties moto accepts but does not keep, so they cannot be checked here.
# checkov checks these instead (encryption, public access, versioning,
# logging, point-in-time recovery): see tests/aws/checkov-baseline.json.
MOTO_DROPS = {
    "AWS::DynamoDB::Table": [
        "PointInTimeRecoverySpecification",
        "SSESpecification",
        "TimeToLiveSpecification",
    ],
    "AWS::Kinesis::Stream": ["StreamEncryption"],
    "AWS::Logs::LogGroup": ["KmsKeyId"],
    "AWS::S3::Bucket": [
        "LifecycleConfiguration",
        "LoggingConfiguration",
        "OwnershipControls",
        "PublicAccessBlockConfiguration",
        "VersioningConfiguration",
    ],
    "AWS::Lambda::Function": ["Architectures", "KmsKeyArn", "LoggingConfig"],
    "AWS::Lambda::EventSourceMapping": [
        "BisectBatchOnFunctionError",
        "DestinationConfig",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryAttempts",
        "ParallelizationFactor",
        "StartingPosition",
    ],
}


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def fake_zip(role):
    """A deployable zip whose key is its content address, like apply's."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {role}\n")
    data = buffer.getvalue()
    return f"lambda/{role}/{hashlib.sha256(data).hexdigest()}.zip", data


class Deployed:
    """One example's stacks, deployed once."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.template = self.load("cloudformation.json")
        self.resources_spec = self.template["Resources"]
        self.stack = "uniflow-" + uuid.uuid4().hex[:8]
        cf = client("cloudformation")
        cf.create_stack(
            StackName=self.stack + "-bootstrap",
            TemplateBody=json.dumps(self.load("cloudformation-bootstrap.json")),
        )
        self.bootstrap = cf.describe_stacks(StackName=self.stack + "-bootstrap")["Stacks"][0]
        self.artifacts = self.output(self.bootstrap, "ArtifactsBucketName")
        s3 = client("s3")
        params = {"ArtifactsBucket": self.artifacts}
        for role in ["ingest", "processor", "connector", "management"]:
            key, data = fake_zip(role)
            s3.put_object(Bucket=self.artifacts, Key=key, Body=data)
            params[role.capitalize() + "CodeKey"] = key
        digest = self.template["Metadata"]["Uniflow"]["ConfigDigest"]
        with open(os.path.join(build_dir, "bundle.json"), "rb") as f:
            s3.put_object(Bucket=self.artifacts, Key=f"bundles/{digest}.json", Body=f.read())
        self.params = params
        cf.create_stack(
            StackName=self.stack,
            TemplateBody=json.dumps(self.template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        self.described = cf.describe_stacks(StackName=self.stack)["Stacks"][0]
        live = cf.describe_stack_resources(StackName=self.stack)["StackResources"]
        self.physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in live if "ResourceType" in r
        }
        self.created_types = {r["ResourceType"] for r in live if "ResourceType" in r}

    def load(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return json.load(f)

    @staticmethod
    def output(stack, key):
        return next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == key)

    def of_type(self, kind):
        return {k: v["Properties"] for k, v in self.resources_spec.items() if v["Type"] == kind}

    def key_arn(self):
        # Not DescribeKey: moto 5.2 fails it (HTTP 500) on a key whose policy
        # came from CloudFormation.
        keys = client("kms").list_keys()["Keys"]
        return next(k["KeyArn"] for k in keys if k["KeyId"] == self.physical["DataKey"])


def builds():
    dirs = os.environ.get("UNIFLOW_BUILDS", "")
    return [d for d in dirs.split(":") if d]


def setUpModule():
    if not builds():
        raise RuntimeError("UNIFLOW_BUILDS names no build directory (see tests/aws/run)")
    # Named resources (tables, queues) would collide with an earlier run's.
    urllib.request.urlopen(urllib.request.Request(ENDPOINT + "/moto-api/reset", method="POST"))


def policy_document(doc):
    """moto returns inline policies as JSON, or as a Python literal when they
    came from CloudFormation."""
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc)
    except json.JSONDecodeError:
        return ast.literal_eval(doc)


class Checks:
    """The checks, run once per example (a TestCase per build below)."""

    build_dir = None
    deployed = None

    @classmethod
    def setUpClass(cls):
        cls.deployed = Deployed(cls.build_dir)

    def each(self):
        return [self.deployed]

    def test_stack_is_created_with_every_output(self):
        for d in self.each():
            self.assertEqual(d.described["StackStatus"], "CREATE_COMPLETE")
            outputs = {o["OutputKey"] for o in d.described.get("Outputs", [])}
            # moto drops an output that refers to a resource it skipped by Ref.
            skipped = {k for k, v in d.resources_spec.items() if v["Type"] in NOT_CREATED_BY_MOTO}
            expected = {
                k
                for k, v in d.template["Outputs"].items()
                if not (isinstance(v["Value"], dict) and v["Value"].get("Ref") in skipped)
            }
            self.assertEqual(outputs, expected)

    def test_moto_creates_every_type_it_supports(self):
        for d in self.each():
            in_template = {v["Type"] for v in d.resources_spec.values()}
            self.assertEqual(
                in_template - d.created_types,
                in_template & NOT_CREATED_BY_MOTO,
                "moto's coverage changed: check the newly created types here, "
                "or list newly skipped ones in NOT_CREATED_BY_MOTO",
            )
            for logical, spec in d.resources_spec.items():
                if spec["Type"] in NOT_CREATED_BY_MOTO or "Condition" in spec:
                    continue
                self.assertIn(logical, d.physical)

    def test_buckets_are_encrypted_with_their_key(self):
        s3 = client("s3")
        for d in self.each():
            key = d.key_arn()
            for logical, spec in d.of_type("AWS::S3::Bucket").items():
                name = d.physical[logical]
                rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"][
                    "Rules"
                ][0]
                want = spec["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                by_default = rule["ApplyServerSideEncryptionByDefault"]
                self.assertEqual(
                    by_default["SSEAlgorithm"],
                    want["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                )
                if "KMSMasterKeyID" in want["ServerSideEncryptionByDefault"]:
                    self.assertEqual(by_default["KMSMasterKeyID"], key, logical)
                else:
                    self.assertNotIn("KMSMasterKeyID", by_default, logical)

    def test_artifacts_bucket_of_the_bootstrap_stack_holds_code_and_bundle(self):
        s3 = client("s3")
        for d in self.each():
            rule = s3.get_bucket_encryption(Bucket=d.artifacts)[
                "ServerSideEncryptionConfiguration"
            ]["Rules"][0]
            self.assertEqual(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
            keys = {o["Key"] for o in s3.list_objects_v2(Bucket=d.artifacts)["Contents"]}
            self.assertEqual(len(keys), 5)

    def test_tables_have_their_keys_and_indexes_on_demand(self):
        ddb = client("dynamodb")
        for d in self.each():
            for logical, spec in d.of_type("AWS::DynamoDB::Table").items():
                table = ddb.describe_table(TableName=d.physical[logical])["Table"]
                self.assertEqual(table["TableName"], spec["TableName"])
                self.assertEqual(table["KeySchema"], spec["KeySchema"])
                self.assertEqual(
                    sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                    spec["AttributeDefinitions"],
                )
                self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
                self.assertEqual(
                    table.get("DeletionProtectionEnabled", False),
                    spec["DeletionProtectionEnabled"],
                )
                indexes = {
                    i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])
                }
                self.assertEqual(
                    indexes,
                    {i["IndexName"]: i["KeySchema"] for i in spec.get("GlobalSecondaryIndexes", [])},
                )

    def test_stream_keeps_seven_days_encrypted_with_its_capacity(self):
        kinesis = client("kinesis")
        for d in self.each():
            spec = d.of_type("AWS::Kinesis::Stream")["EventStream"]
            summary = kinesis.describe_stream_summary(StreamName=spec["Name"])[
                "StreamDescriptionSummary"
            ]
            self.assertEqual(summary["RetentionPeriodHours"], 168)
            self.assertEqual(
                summary["StreamModeDetails"]["StreamMode"],
                spec["StreamModeDetails"]["StreamMode"],
            )
            if "ShardCount" in spec:
                self.assertEqual(summary["OpenShardCount"], spec["ShardCount"])

    def test_queues_redrive_to_their_dead_letter_queue(self):
        sqs = client("sqs")
        for d in self.each():
            key = d.key_arn()
            queues = d.of_type("AWS::SQS::Queue")
            arns = {}
            for logical, spec in queues.items():
                url = sqs.get_queue_url(QueueName=spec["QueueName"])["QueueUrl"]
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                arns[logical] = attrs["QueueArn"]
                self.assertEqual(attrs["KmsMasterKeyId"], key, logical)
                self.assertEqual(
                    int(attrs["MessageRetentionPeriod"]), spec["MessageRetentionPeriod"]
                )
                if "VisibilityTimeout" in spec:
                    self.assertEqual(int(attrs["VisibilityTimeout"]), spec["VisibilityTimeout"])
            for logical, spec in queues.items():
                if "RedrivePolicy" not in spec:
                    continue
                url = sqs.get_queue_url(QueueName=spec["QueueName"])["QueueUrl"]
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                redrive = json.loads(attrs["RedrivePolicy"])
                dlq_logical = spec["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                self.assertEqual(redrive["deadLetterTargetArn"], arns[dlq_logical])
                self.assertEqual(
                    int(redrive["maxReceiveCount"]), spec["RedrivePolicy"]["maxReceiveCount"]
                )
                # Visibility is longer than the connector may run on one batch.
                connector = d.resources_spec["ConnectorFunction"]["Properties"]
                self.assertGreaterEqual(int(attrs["VisibilityTimeout"]), 6 * connector["Timeout"])

    def test_an_undeliverable_message_ends_in_the_dead_letter_queue(self):
        sqs = client("sqs")
        for d in self.each():
            queues = d.of_type("AWS::SQS::Queue")
            logical, spec = next((k, v) for k, v in sorted(queues.items()) if "RedrivePolicy" in v)
            url = sqs.get_queue_url(QueueName=spec["QueueName"])["QueueUrl"]
            dlq = queues[spec["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
            dlq_url = sqs.get_queue_url(QueueName=dlq["QueueName"])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody='{"messageId":"m-1"}')
            limit = spec["RedrivePolicy"]["maxReceiveCount"]
            receipts = 0
            while receipts <= limit:
                got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
                if not got.get("Messages"):
                    break
                receipts += 1
            # moto counts the first receipt at visibility 0 twice, so the
            # message moves after limit - 1 receipts there, after limit on AWS.
            self.assertIn(receipts, (limit - 1, limit), logical)
            moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0)["Messages"]
            self.assertEqual(moved[0]["Body"], '{"messageId":"m-1"}')

    def test_roles_hold_exactly_their_policy_on_named_resources(self):
        iam = client("iam")
        for d in self.each():
            for logical, spec in d.of_type("AWS::IAM::Role").items():
                name = d.physical[logical].split("/")[-1]
                role = iam.get_role(RoleName=name)["Role"]
                trust = policy_document(role["AssumeRolePolicyDocument"])
                self.assertEqual(
                    trust["Statement"][0]["Principal"],
                    spec["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
                )
                self.assertEqual(iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"], [])
                names = iam.list_role_policies(RoleName=name)["PolicyNames"]
                self.assertEqual(names, ["least-privilege"])
                doc = policy_document(
                    iam.get_role_policy(RoleName=name, PolicyName="least-privilege")[
                        "PolicyDocument"
                    ]
                )
                want = spec["Policies"][0]["PolicyDocument"]["Statement"]
                self.assertEqual(
                    [(s["Sid"], s["Action"]) for s in doc["Statement"]],
                    [(s["Sid"], s["Action"]) for s in want],
                )
                for statement in doc["Statement"]:
                    for resource in statement["Resource"]:
                        self.assertNotEqual(resource, "*", (logical, statement["Sid"]))
                        self.assertNotIn("${", resource, (logical, statement["Sid"]))
                        self.assertTrue(resource.startswith("arn:aws:"), resource)

    def test_functions_run_their_code_from_s3_with_their_settings(self):
        lam = client("lambda")
        iam = client("iam")
        for d in self.each():
            for logical, spec in d.of_type("AWS::Lambda::Function").items():
                with open(os.path.join(d.dir, "lambda", logical[: -len("Function")].lower() + ".json")) as f:
                    config = json.load(f)
                got = lam.get_function(FunctionName=spec["FunctionName"])
                c = got["Configuration"]
                self.assertEqual(c["FunctionName"], config["function_name"])
                self.assertEqual(c["Runtime"], "provided.al2023")
                self.assertEqual(c["Handler"], "bootstrap")
                self.assertEqual(c["MemorySize"], config["memory_mb"])
                self.assertEqual(c["Timeout"], config["timeout_secs"])
                role = d.physical[spec["Role"]["Fn::GetAtt"][0]].split("/")[-1]
                self.assertEqual(c["Role"], iam.get_role(RoleName=role)["Role"]["Arn"])
                self.assertEqual(got["Code"]["RepositoryType"], "S3")
                self.assertTrue(
                    got["Code"]["Location"].endswith(d.params[logical.replace("Function", "CodeKey")])
                )
                env = c["Environment"]["Variables"]
                self.assertEqual(set(env), set(config["environment"]))
                for name, value in env.items():
                    self.assertNotIn("${", value, name)
                    pattern = re.escape(config["environment"][name])
                    pattern = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", pattern)
                    self.assertRegex(value, f"^{pattern}$", name)
                for var, table in [("UNIFLOW_PROFILES_TABLE", "ProfilesTable"), ("UNIFLOW_STREAM", "EventStream")]:
                    if var in env:
                        self.assertEqual(env[var], d.physical[table])
                if "UNIFLOW_BUNDLE" in env:
                    bucket, key = env["UNIFLOW_BUNDLE"][len("s3://"):].split("/", 1)
                    client("s3").head_object(Bucket=bucket, Key=key)
                concurrency = lam.get_function_concurrency(FunctionName=spec["FunctionName"])
                self.assertEqual(
                    concurrency.get("ReservedConcurrentExecutions"),
                    config.get("reserved_concurrency"),
                )
                groups = client("logs").describe_log_groups(
                    logGroupNamePrefix="/aws/lambda/" + spec["FunctionName"]
                )["logGroups"]
                self.assertEqual(groups[0]["retentionInDays"], config["log_retention_days"])

    def test_event_source_mappings_read_their_stream_and_queues(self):
        lam = client("lambda")
        sqs = client("sqs")
        kinesis = client("kinesis")
        for d in self.each():
            for logical, spec in d.of_type("AWS::Lambda::EventSourceMapping").items():
                function = spec["FunctionName"]["Ref"]
                name = d.resources_spec[function]["Properties"]["FunctionName"]
                source = spec["EventSourceArn"]["Fn::GetAtt"][0]
                source_spec = d.resources_spec[source]
                if source_spec["Type"] == "AWS::SQS::Queue":
                    url = sqs.get_queue_url(QueueName=source_spec["Properties"]["QueueName"])["QueueUrl"]
                    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                        "Attributes"
                    ]["QueueArn"]
                else:
                    arn = kinesis.describe_stream_summary(StreamName=source_spec["Properties"]["Name"])[
                        "StreamDescriptionSummary"
                    ]["StreamARN"]
                found = lam.list_event_source_mappings(FunctionName=name, EventSourceArn=arn)[
                    "EventSourceMappings"
                ]
                self.assertEqual(len(found), 1, logical)
                m = found[0]
                self.assertEqual(m["BatchSize"], spec["BatchSize"])
                self.assertEqual(
                    m["MaximumBatchingWindowInSeconds"], spec["MaximumBatchingWindowInSeconds"]
                )
                self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
                if "ScalingConfig" in spec:
                    self.assertEqual(m["ScalingConfig"], spec["ScalingConfig"])

    def test_only_api_gateway_of_this_account_invokes_the_api_functions(self):
        lam = client("lambda")
        for d in self.each():
            for logical, spec in d.of_type("AWS::Lambda::Permission").items():
                function = d.resources_spec[spec["FunctionName"]["Ref"]]["Properties"]["FunctionName"]
                policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
                (statement,) = policy["Statement"]
                self.assertEqual(statement["Principal"], {"Service": "apigateway.amazonaws.com"})
                self.assertEqual(statement["Action"], "lambda:InvokeFunction")
                self.assertEqual(
                    statement["Condition"]["StringEquals"]["AWS:SourceAccount"], "123456789012"
                )
                # moto leaves ${IngestApi} unresolved: the API itself is skipped.
                self.assertTrue(
                    statement["Condition"]["ArnLike"]["AWS:SourceArn"].startswith(
                        "arn:aws:execute-api:eu-west-1:123456789012:"
                    )
                )

    def test_data_key_rotates_and_encrypts_alarms_logs_are_kept(self):
        kms = client("kms")
        sns = client("sns")
        for d in self.each():
            key = d.physical["DataKey"]
            self.assertTrue(kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"])
            policy = policy_document(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
            self.assertEqual(
                [s["Sid"] for s in policy["Statement"]],
                [s["Sid"] for s in d.resources_spec["DataKey"]["Properties"]["KeyPolicy"]["Statement"]],
            )
            topic = sns.get_topic_attributes(TopicArn=d.physical["AlarmTopic"])["Attributes"]
            self.assertEqual(topic["KmsMasterKeyId"], key)
            for logical, spec in d.of_type("AWS::Logs::LogGroup").items():
                (group,) = client("logs").describe_log_groups(
                    logGroupNamePrefix=spec["LogGroupName"]
                )["logGroups"]
                self.assertEqual(group["retentionInDays"], spec["RetentionInDays"])


for _dir in builds():
    _name = "Deploy" + "".join(w.capitalize() for w in re.split(r"[^a-z0-9]+", os.path.basename(_dir.rstrip("/")).lower()) if w)
    globals()[_name] = type(_name, (Checks, unittest.TestCase), {"build_dir": _dir})


if __name__ == "__main__":
    unittest.main()
