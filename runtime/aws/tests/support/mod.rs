//! Shared by the moto tests: starting moto server on a free port, the SDK
//! config pointing at it, and tables shaped like the generated template's.
//!
//! moto is `target/py/bin/moto_server` (installed by `scripts/setup-python`);
//! `MOTO_SERVER` overrides the path, and `CARGO_TARGET_DIR/py` is tried when
//! the checkout has no venv of its own (a worktree sharing a target
//! directory). Without moto the tests fail, saying so.
//!
//! The root crate's `tests/aws_cli.rs` includes this file too (`#[path]`),
//! so it names only crates both have.

#![allow(clippy::disallowed_methods, dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// A running moto server, stopped when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    // The workspace's root is this crate's, or two levels up (runtime/aws).
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let own = [manifest.join("target"), manifest.join("../../target")]
        .into_iter()
        .map(|target| target.join("py/bin/moto_server"))
        .find(|path| path.exists())
        .unwrap_or_else(|| manifest.join("target/py/bin/moto_server"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !own.exists() => PathBuf::from(dir).join("py/bin/moto_server"),
        _ => own,
    }
}

/// moto's own server answering requests concurrently, as the other tests use it.
pub fn start_moto() -> Moto {
    let server = moto_server();
    assert!(
        server.exists(),
        "moto server not found at {} (run scripts/setup-python, or set MOTO_SERVER)",
        server.display()
    );
    spawn(Command::new(&server))
}

/// moto with one request at a time. moto applies a `TransactWriteItems`
/// without isolation from concurrent requests (and rolls a cancelled one
/// back by restoring whole tables, undoing writes made meanwhile);
/// DynamoDB's transactions are isolated. Serialising requests gives the
/// isolation the profile store relies on, while writers still race at the
/// request level.
pub fn start_serialised_moto() -> Moto {
    let server = moto_server();
    let python = server.with_file_name("python");
    assert!(
        python.exists(),
        "moto's python not found at {} (run scripts/setup-python, or set MOTO_SERVER)",
        python.display()
    );
    let mut command = Command::new(&python);
    command.args([
        "-c",
        "import sys, threading\n\
         from moto.moto_server.werkzeug_app import DomainDispatcherApplication as App\n\
         from moto import server\n\
         lock = threading.Lock()\n\
         call = App.__call__\n\
         def serialised(self, environ, start_response):\n\
         \x20   with lock:\n\
         \x20       return call(self, environ, start_response)\n\
         App.__call__ = serialised\n\
         server.main(sys.argv[1:])\n",
    ]);
    spawn(command)
}

fn spawn(mut command: Command) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

/// The SDK config every client in the test uses: moto, `eu-west-1`.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// Creates a table with string keys; `index` is `(name, hash, range)` of a
/// global secondary index projecting every attribute (as the template's).
pub async fn create_table(
    config: &aws_config::SdkConfig,
    table: &str,
    hash: &str,
    range: Option<&str>,
    index: Option<(&str, &str, &str)>,
) {
    let mut attributes = vec![hash];
    let mut request = aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash));
    if let Some(range) = range {
        attributes.push(range);
        request = request.key_schema(key(range, KeyType::Range));
    }
    if let Some((name, hash, range)) = index {
        attributes.extend([hash, range]);
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    attributes.sort_unstable();
    attributes.dedup();
    for a in attributes {
        request = request.attribute_definitions(attribute(a));
    }
    request.send().await.unwrap();
}
