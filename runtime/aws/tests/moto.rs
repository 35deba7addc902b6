//! The AWS backend against moto server (Kinesis, S3, DynamoDB, SSM): the shared
//! behaviour suite, the Lambda handler on API Gateway v2 fixture events, and
//! loading the bundle and write keys the way the Lambda does at cold start.
//!
//! The test starts moto itself (see `support`) on a free port and stops it
//! at the end. Without moto it fails, saying so.

#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sdk_kinesis::types::ShardIteratorType;
use uniflow_runtime::backend::SystemClock;
use uniflow_runtime::conformance::{self, Backend, Stored};
use uniflow_runtime::ingest::{Ingest, Limits, RateLimit};
use uniflow_runtime::record::RecordKind;
use uniflow_runtime_aws::{DynamoDedupe, KinesisSink, apigw, load_bundle, write_keys};
use uniflow_schemas::Bundle;

use support::{create_table, sdk_config, start_moto};

/// The write keys' path, as the generated template sets it.
const WRITE_KEYS: &str = "/uniflow/acme/prod/write-keys/";

/// Puts `(name, value)` SecureString parameters, as `uniflow apply` does.
async fn put_parameters(config: &aws_config::SdkConfig, parameters: &[(&str, &str)]) {
    let ssm = aws_sdk_ssm::Client::new(config);
    for (name, value) in parameters {
        ssm.put_parameter()
            .name(*name)
            .value(*value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
}

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(conformance::PROJECT);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

/// Fresh AWS resources for each case: a stream, a bucket, a dedupe table.
struct Aws {
    config: aws_config::SdkConfig,
    current: Mutex<Option<(String, String, String)>>,
    counter: Mutex<u32>,
}

impl Aws {
    async fn create(&self, stream: &str, bucket: &str, table: &str) {
        let kinesis = aws_sdk_kinesis::Client::new(&self.config);
        kinesis
            .create_stream()
            .stream_name(stream)
            .shard_count(2)
            .send()
            .await
            .unwrap();
        aws_sdk_s3::Client::new(&self.config)
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        create_table(&self.config, table, "key", None, None).await;
    }
}

/// Every record in every shard, from the start.
async fn read_stream(config: &aws_config::SdkConfig, stream: &str) -> Vec<(String, Vec<u8>)> {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let page = kinesis
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .unwrap();
            for r in page.records() {
                out.push((r.partition_key().to_owned(), r.data().as_ref().to_vec()));
            }
            match page.next_shard_iterator() {
                Some(next) if !page.records().is_empty() => iterator = next.to_owned(),
                _ => break,
            }
        }
    }
    out
}

async fn read_violations(config: &aws_config::SdkConfig, bucket: &str) -> Vec<serde_json::Value> {
    let s3 = aws_sdk_s3::Client::new(config);
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("violations/")
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap();
        assert!(key.ends_with(".json.gz"), "{key}");
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
        );
    }
    out
}

impl Backend for Aws {
    type Sink = KinesisSink;
    type Dedupe = DynamoDedupe;

    async fn fresh(&self) -> (KinesisSink, DynamoDedupe) {
        let n = {
            let mut c = self.counter.lock().unwrap();
            *c += 1;
            *c
        };
        let names = (
            format!("events-{n}"),
            format!("violations-{n}"),
            format!("dedupe-{n}"),
        );
        self.create(&names.0, &names.1, &names.2).await;
        let sink = KinesisSink::new(&self.config, &names.0, &names.1);
        let dedupe = DynamoDedupe::new(&self.config, &names.2);
        *self.current.lock().unwrap() = Some(names);
        (sink, dedupe)
    }

    async fn stored(&self) -> Vec<Stored> {
        let (stream, bucket, _) = self.current.lock().unwrap().clone().unwrap();
        let mut out = Vec::new();
        for (key, data) in read_stream(&self.config, &stream).await {
            assert_eq!(
                data.last(),
                Some(&b'\n'),
                "each Kinesis record is one NDJSON line"
            );
            let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
            out.push(Stored {
                kind: RecordKind::Accepted,
                message_id: json["messageId"].as_str().unwrap().to_owned(),
                partition_key: Some(key),
                json,
            });
        }
        for json in read_violations(&self.config, &bucket).await {
            out.push(Stored {
                kind: RecordKind::Quarantined,
                message_id: json["messageId"].as_str().unwrap().to_owned(),
                partition_key: None,
                json,
            });
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_backend_against_moto() {
    let moto = start_moto();
    let config = sdk_config(&moto.endpoint).await;
    let bundle = bundle();
    let aws = Aws {
        config: config.clone(),
        current: Mutex::new(None),
        counter: Mutex::new(0),
    };

    // The behaviour suite every backend passes.
    conformance::run(&aws, &bundle).await;

    // Cold start: the bundle from S3, the write keys from Parameter Store.
    let s3 = aws_sdk_s3::Client::new(&config);
    let (sink, dedupe) = aws.fresh().await;
    let (stream, bucket, _) = aws.current.lock().unwrap().clone().unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("bundles/abc.json")
        .body(bundle.to_json().into_bytes().into())
        .send()
        .await
        .unwrap();
    let loaded = load_bundle(&config, &format!("s3://{bucket}/bundles/abc.json"))
        .await
        .unwrap();
    assert_eq!(loaded, bundle);
    let missing = load_bundle(&config, &format!("s3://{bucket}/bundles/nope.json")).await;
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("bundles/nope.json")
    );
    put_parameters(
        &config,
        &[
            (&format!("{WRITE_KEYS}backend"), "server-key"),
            (&format!("{WRITE_KEYS}web"), "website-key"),
        ],
    )
    .await;
    let keys = write_keys(&config, WRITE_KEYS).await.unwrap();
    let want: BTreeMap<String, String> = [("backend", "server-key"), ("web", "website-key")]
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect();
    assert_eq!(keys, want);

    // The Lambda handler on API Gateway v2 events, writing to Kinesis.
    let ingest = Ingest::new(
        &loaded,
        &keys,
        Limits::default(),
        RateLimit::new(u32::MAX, u32::MAX),
        sink,
        dedupe,
        SystemClock,
    );
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, key) in [
        ("apigw-batch.json", "website-key"),
        ("apigw-gzip-base64.json", "website-key"),
    ] {
        let text = std::fs::read_to_string(fixtures.join(file)).unwrap();
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        assert!(
            text.contains("d2Vic2l0ZS1rZXk6"),
            "{file} authenticates as {key}"
        );
        let response = apigw::handle(&ingest, event).await;
        assert_eq!(response.status_code, 200, "{file}: {:?}", response.body);
        let body: serde_json::Value = match &response.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => panic!("{file}: {other:?}"),
        };
        assert_eq!(body["accepted"], 1, "{file}: {body}");
    }
    let records = read_stream(&config, &stream).await;
    assert_eq!(records.len(), 2);
    let events: BTreeMap<String, serde_json::Value> = records
        .iter()
        .map(|(_, data)| {
            let v: serde_json::Value = serde_json::from_slice(data).unwrap();
            (v["messageId"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    let node = &events["node-next-1795636915000-1"];
    assert_eq!(node["context"]["ip"], "203.0.113.50");
    assert_eq!(node["sourceId"], "web");
    assert_eq!(
        node["context"]["library"]["name"],
        "@segment/analytics-node"
    );
    assert_eq!(node["originalTimestamp"], "2026-11-25T20:01:54.000Z");
    assert!(node.get("writeKey").is_none());
    let python = &events["py-identify-8"];
    assert_eq!(python["type"], "identify");
    assert_eq!(python["context"]["ip"], "198.51.100.23");
    assert_eq!(python["traits"]["email"], "ann@example.com");

    // A stream that does not exist: 503, and nothing is claimed as seen.
    let broken = Ingest::new(
        &loaded,
        &keys,
        Limits::default(),
        RateLimit::new(u32::MAX, u32::MAX),
        KinesisSink::new(&config, "no-such-stream", &bucket),
        DynamoDedupe::new(&config, "dedupe-1"),
        SystemClock,
    );
    let text = std::fs::read_to_string(fixtures.join("apigw-batch.json")).unwrap();
    let mut event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
    event.body = event
        .body
        .map(|b| b.replace("node-next-1795636915000-1", "retry-me"));
    let response = apigw::handle(&broken, event.clone()).await;
    assert_eq!(response.status_code, 503, "{:?}", response.body);
    let working = Ingest::new(
        &loaded,
        &keys,
        Limits::default(),
        RateLimit::new(u32::MAX, u32::MAX),
        KinesisSink::new(&config, &stream, &bucket),
        DynamoDedupe::new(&config, "dedupe-1"),
        SystemClock,
    );
    let response = apigw::handle(&working, event).await;
    assert_eq!(
        response.status_code, 200,
        "the retry is accepted: {:?}",
        response.body
    );
    assert_eq!(read_stream(&config, &stream).await.len(), 3);
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_keys_are_the_secure_strings_under_the_path_only() {
    let moto = start_moto();
    let config = sdk_config(&moto.endpoint).await;
    put_parameters(
        &config,
        &[
            (&format!("{WRITE_KEYS}storefront"), "key-one"),
            (&format!("{WRITE_KEYS}order-backend"), "key-two"),
            // Outside the path: another stage's key, and a sibling prefix.
            ("/uniflow/acme/dev/write-keys/storefront", "dev-key"),
            ("/uniflow/acme/prod/write-keys-old/storefront", "old-key"),
        ],
    )
    .await;
    // A plain-text parameter under the path is not taken as a write key.
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(format!("{WRITE_KEYS}plain"))
        .value("plain-key")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let want: BTreeMap<String, String> = [("order-backend", "key-two"), ("storefront", "key-one")]
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect();
    assert_eq!(write_keys(&config, WRITE_KEYS).await.unwrap(), want);
    // The path without its trailing slash reads the same keys.
    assert_eq!(
        write_keys(&config, WRITE_KEYS.trim_end_matches('/'))
            .await
            .unwrap(),
        want
    );
    assert_eq!(
        write_keys(&config, "/uniflow/nobody/prod/write-keys/")
            .await
            .unwrap(),
        BTreeMap::new()
    );
}
