//! `uniflow dlq ... --aws` and `uniflow replay ... --aws` against moto: the
//! real binary, with `AWS_ENDPOINT_URL` pointing at moto, on queues, a state
//! table and a raw archive bucket made under the names (and tags) the
//! compiled project gives them.
//!
//! What moto cannot show: CloudFormation copying the stack's tags onto the
//! raw bucket and naming it `<stack>-rawbucket-<suffix>`; the test makes
//! the bucket as CloudFormation would (without CloudFormation's own
//! `aws:` tags, which nobody else may set).

#![allow(clippy::disallowed_methods)] // the test drives real processes

#[path = "../runtime/aws/tests/support/mod.rs"]
mod moto;
mod support;

use std::io::Write;
use std::path::Path;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging};
use aws_sdk_sqs::types::QueueAttributeName;
use uniflow_compiler::generate::cloudformation::{Deployed, deployed};
use uniflow_runtime::delivery::Message;

use moto::{create_table, sdk_config, start_moto};
use support::{Run, run, uniflow_command, with_aws};

const PROJECT: &str = r#"project "opsaws" {
    region "eu-west-1"
    stage "test"
}

source "backend" kind="server"

event "Order Completed" {
    property "revenue" type="number"
    property "currency" type="string"
}

event "Signed Up" {
    property "method" type="string"
}

destination "orders" kind="webhook" {
    url "https://orders.example/hook"
    events "Order Completed"
    filter "properties.currency = 'EUR'"
}

destination "all" kind="webhook" {
    url "https://all.example/hook"
}

// In the project, never deployed.
destination "signups" kind="webhook" {
    url "https://signups.example/hook"
    events "Signed Up"
}
"#;

/// Runs `uniflow ARGS...` with AWS pointed at `endpoint`, credentials from
/// the environment, no region set (the project's is used) and no terminal.
fn uniflow(args: &[&str], endpoint: &str) -> Run {
    run(with_aws(uniflow_command().args(args), endpoint).env_remove("UNIFLOW_RAW_BUCKET"))
}

/// The stack's resources on moto.
struct Stack {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    names: Deployed,
}

impl Stack {
    /// Creates `destinations`' queues and dead-letter queues, the state
    /// table and the raw bucket (tagged as CloudFormation tags it), plus a
    /// decoy: another stage's raw bucket.
    async fn deploy(endpoint: &str, destinations: &[&str]) -> Stack {
        let config = sdk_config(endpoint).await;
        let checked = uniflow_compiler::check(PROJECT);
        assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
        let names = deployed(&checked.config.unwrap()).unwrap();
        let sqs = aws_sdk_sqs::Client::new(&config);
        for d in destinations {
            let queue = format!("{}-{d}", names.resource_prefix);
            sqs.create_queue()
                .queue_name(format!("{queue}-dlq"))
                .send()
                .await
                .unwrap();
            let redrive = serde_json::json!({
                "deadLetterTargetArn": format!("arn:aws:sqs:eu-west-1:123456789012:{queue}-dlq"),
                "maxReceiveCount": 3,
            });
            sqs.create_queue()
                .queue_name(queue)
                .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
                .send()
                .await
                .unwrap();
        }
        create_table(&config, &names.state_table, "pk", Some("sk"), None).await;
        let s3 = aws_sdk_s3::Client::new(&config);
        let mut decoy = names.raw_bucket_tags.clone();
        decoy.insert("uniflow:stage".into(), "prod".into());
        for (bucket, tags) in [
            ("opsaws-test-rawbucket-1x2y3z", &names.raw_bucket_tags),
            ("opsaws-prod-rawbucket-9q8w7e", &decoy),
        ] {
            s3.create_bucket()
                .bucket(bucket)
                .create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::EuWest1)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let mut tagging = Tagging::builder();
            for (k, v) in tags {
                tagging = tagging.tag_set(Tag::builder().key(k).value(v).build().unwrap());
            }
            s3.put_bucket_tagging()
                .bucket(bucket)
                .tagging(tagging.build().unwrap())
                .send()
                .await
                .unwrap();
        }
        Stack { sqs, s3, names }
    }

    async fn url(&self, name: &str) -> String {
        self.sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    async fn queue(&self, destination: &str) -> String {
        self.url(&format!("{}-{destination}", self.names.resource_prefix))
            .await
    }

    async fn dlq(&self, destination: &str) -> String {
        self.url(&format!("{}-{destination}-dlq", self.names.resource_prefix))
            .await
    }

    /// The ids of every visible message of a queue (hidden once read).
    async fn drain(&self, url: &str) -> Vec<String> {
        let mut ids = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                break;
            }
            for m in got {
                let message: Message = serde_json::from_str(m.body().unwrap()).unwrap();
                ids.push(message.id);
            }
        }
        ids.sort();
        ids
    }

    /// A GZIP NDJSON object in the raw bucket, as Firehose writes it.
    async fn archive(&self, key: &str, lines: &[serde_json::Value]) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for line in lines {
            writeln!(gz, "{line}").unwrap();
        }
        self.s3
            .put_object()
            .bucket("opsaws-test-rawbucket-1x2y3z")
            .key(format!("{}{key}", self.names.raw_archive_prefix))
            .body(gz.finish().unwrap().into())
            .send()
            .await
            .unwrap();
    }
}

fn order(id: &str, currency: &str, revenue: f64, at: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "track", "event": "Order Completed", "messageId": id, "userId": "u1",
        "sourceId": "backend", "receivedAt": at, "timestamp": at,
        "properties": {"currency": currency, "revenue": revenue},
    })
}

fn write_project(dir: &Path) -> String {
    let file = dir.join("uniflow.kdl");
    std::fs::write(&file, PROJECT).unwrap();
    dir.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_aws_lists_shows_and_redrives_the_deployed_dead_letters() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let tmp = tempfile::tempdir().unwrap();
    let project = write_project(tmp.path());
    let at = "2026-03-01T10:00:00.000Z";
    let dlq = stack.dlq("orders").await;
    for (id, revenue) in [("d1", 10.0), ("d2", 90.0), ("d3", 70.0)] {
        let letter = Message {
            id: id.to_owned(),
            received_ms: 1_772_359_200_000,
            attempts: 3,
            last_error: Some("HTTP 500 from the hook".to_owned()),
            event: serde_json::to_vec(&order(id, "EUR", revenue, at))
                .unwrap()
                .into(),
        };
        stack
            .sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(serde_json::to_string(&letter).unwrap())
            .send()
            .await
            .unwrap();
    }
    let endpoint = moto.endpoint.as_str();

    let run = uniflow(&["dlq", "list", "orders", &project, "--aws"], endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for id in ["d1", "d2", "d3"] {
        assert!(run.stdout.contains(id), "{}", run.stdout);
    }
    assert!(
        run.stdout.contains("HTTP 500 from the hook"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Order Completed"), "{}", run.stdout);

    let run = uniflow(
        &[
            "dlq", "list", "orders", &project, "--aws", "--format", "json",
        ],
        endpoint,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed.len(), 3);
    // A handle is the SQS message id; `show` finds a letter by either.
    let handle = listed[0]["id"].as_str().unwrap().to_owned();
    let run = uniflow(
        &["dlq", "show", "orders", &handle, &project, "--aws"],
        endpoint,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("dead letter {handle} of `orders`")),
        "{}",
        run.stdout
    );
    let run = uniflow(
        &["dlq", "show", "orders", "d2", &project, "--aws"],
        endpoint,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("messageId    d2"), "{}", run.stdout);
    let run = uniflow(
        &["dlq", "show", "orders", "d9", &project, "--aws"],
        endpoint,
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("no dead letter `d9`"), "{}", run.stderr);

    // Those with revenue over 50 go back to the queue; d1 stays.
    let run = uniflow(
        &[
            "dlq",
            "redrive",
            "orders",
            &project,
            "--aws",
            "--filter",
            "properties.revenue > 50",
            "--yes",
        ],
        endpoint,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("moved 2 dead letters back to `orders`'s queue"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("kept 1"), "{}", run.stdout);
    assert_eq!(
        stack.drain(&stack.queue("orders").await).await,
        ["d2", "d3"]
    );
    assert_eq!(stack.drain(&dlq).await, ["d1"]);
    assert!(stack.drain(&stack.queue("all").await).await.is_empty());

    // Nothing left visible: an empty listing says so from the counters.
    let run = uniflow(&["dlq", "list", "all", &project, "--aws"], endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("no dead letters for `all` (0 delivered"),
        "{}",
        run.stdout
    );
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_aws_sends_the_window_from_s3_to_one_destination_queue() {
    let moto = start_moto();
    let stack = Stack::deploy(&moto.endpoint, &["orders", "all"]).await;
    let tmp = tempfile::tempdir().unwrap();
    let project = write_project(tmp.path());
    stack
        .archive(
            "year=2026/month=03/day=01/hour=09/a.json.gz",
            &[order("early", "EUR", 1.0, "2026-03-01T09:30:00.000Z")],
        )
        .await;
    stack
        .archive(
            "year=2026/month=03/day=01/hour=10/b.json.gz",
            &[
                order("first", "EUR", 1.0, "2026-03-01T10:00:00.000Z"),
                order("usd", "USD", 1.0, "2026-03-01T10:30:00.000Z"),
                serde_json::json!({"type": "track", "event": "Signed Up", "messageId": "signup",
                    "receivedAt": "2026-03-01T10:40:00.000Z", "properties": {"method": "email"}}),
            ],
        )
        .await;
    stack
        .archive(
            // Filed in the next hour by Firehose's buffering.
            "year=2026/month=03/day=01/hour=11/c.json.gz",
            &[
                order("late", "EUR", 1.0, "2026-03-01T10:59:59.999Z"),
                order("end", "EUR", 1.0, "2026-03-01T11:00:00.000Z"),
            ],
        )
        .await;
    let endpoint = moto.endpoint.as_str();
    let window = [
        "--from",
        "2026-03-01T10:00:00Z",
        "--to",
        "2026-03-01T11:00:00Z",
    ];

    let mut args = vec!["replay", "orders", project.as_str()];
    args.extend(window);
    args.extend(["--aws", "--dry-run"]);
    let run = uniflow(&args, endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("would replay 2 events received in"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("2 archive objects read in s3://opsaws-test-rawbucket-1x2y3z"),
        "{}",
        run.stdout
    );
    assert!(stack.drain(&stack.queue("orders").await).await.is_empty());

    args.pop();
    let run = uniflow(&args, endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("replayed 2 events received in"),
        "{}",
        run.stdout
    );
    // The window's EUR orders, to `orders` only.
    assert_eq!(
        stack.drain(&stack.queue("orders").await).await,
        ["first", "late"]
    );
    assert!(stack.drain(&stack.queue("all").await).await.is_empty());

    // One event's name, to a destination that takes everything.
    let mut args = vec!["replay", "all", project.as_str()];
    args.extend(window);
    args.extend(["--aws", "--event", "Signed Up"]);
    let run = uniflow(&args, endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.drain(&stack.queue("all").await).await, ["signup"]);
    assert!(stack.drain(&stack.queue("orders").await).await.is_empty());

    // A bucket named outright is used as it is.
    let mut args = vec!["replay", "all", project.as_str()];
    args.extend(window);
    args.extend(["--aws", "--raw-bucket", "opsaws-prod-rawbucket-9q8w7e"]);
    let run = uniflow(&args, endpoint);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("no events to replay"),
        "{}",
        run.stdout
    );
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_say_what_is_missing_or_unreachable() {
    let moto = start_moto();
    let _stack = Stack::deploy(&moto.endpoint, &["orders"]).await;
    let tmp = tempfile::tempdir().unwrap();
    let project = write_project(tmp.path());
    let endpoint = moto.endpoint.as_str();

    // Not in the project.
    let run = uniflow(&["dlq", "list", "nope", &project, "--aws"], endpoint);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("no destination `nope` in this project (it has: all, orders, signups)"),
        "{}",
        run.stderr
    );

    // In the project, its queues not deployed.
    for args in [
        vec!["dlq", "list", "signups", &project, "--aws"],
        vec![
            "replay", "signups", &project, "--from", "-1h", "--to", "now", "--aws",
        ],
    ] {
        let run = uniflow(&args, endpoint);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stdout);
        assert!(
            run.stderr
                .contains("there is no queue `opsaws-test-signups`")
                && run.stderr.contains("`uniflow apply`")
                && run.stderr.contains("asked AWS region eu-west-1 at"),
            "{args:?}: {}",
            run.stderr
        );
    }

    // AWS does not answer: exit 2, saying where uniflow asked.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{closed}");
    let run = uniflow(&["dlq", "list", "orders", &project, "--aws"], &nowhere);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("asked AWS region eu-west-1 at {nowhere}")),
        "{}",
        run.stderr
    );

    // --aws talks to AWS, not to an API.
    let run = uniflow(
        &[
            "dlq",
            "list",
            "orders",
            &project,
            "--aws",
            "--api",
            "http://127.0.0.1:1",
        ],
        endpoint,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    drop(moto);
}

#[test]
fn the_help_shows_aws_examples() {
    for args in [["dlq", "--help"], ["replay", "--help"]] {
        let run = uniflow(&args, "http://127.0.0.1:1");
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("--aws"), "{args:?}: {}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_exports_to_s3_when_an_endpoint_is_configured() {
    let moto = start_moto();
    let s3 = aws_sdk_s3::Client::new(&sdk_config(&moto.endpoint).await);
    s3.create_bucket()
        .bucket("lake")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("uniflow.kdl"),
        r#"project "lakehouse" { region "eu-west-1" }
source "backend" kind="server"
event "Signed Up"
destination "lake" kind="s3-export" {
    bucket "lake"
    prefix "events/"
    batch max-events=10
}
"#,
    )
    .unwrap();
    let data = tmp.path().join("data");
    let dev = support::start_dev_env(
        tmp.path(),
        &data,
        &[],
        &[
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("sources.json")).unwrap()).unwrap();
    let key = doc["sources"]["backend"]["write_key"].as_str().unwrap();
    let batch: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({"type": "track", "event": "Signed Up", "userId": "u1",
                               "messageId": format!("s{i}")})
        })
        .collect();
    let answer = support::post_batch(
        dev.port,
        key,
        &serde_json::json!({ "batch": batch }).to_string(),
    )
    .unwrap();
    assert_eq!(support::status(&answer), Some(200), "{answer}");
    // One object under the prefix, GZIP NDJSON of the ten events.
    let mut keys = Vec::new();
    for _ in 0..400 {
        let listed = s3
            .list_objects_v2()
            .bucket("lake")
            .prefix("events/")
            .send()
            .await
            .unwrap();
        keys = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        if !keys.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with(".ndjson.gz"), "{}", keys[0]);
    let body = s3
        .get_object()
        .bucket("lake")
        .key(&keys[0])
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert!(!data.join("exports").exists(), "nothing written locally");
}
