//! `uniflow plan`, `apply`, `destroy` and `force-unlock` against moto
//! server: the real binary, from an empty account to a deployed example,
//! through a reviewed change, stale plans, the deploy lock, and back to
//! nothing.
//!
//! What moto cannot show, and so these tests do not claim:
//! - change sets carry no `Replacement` (moto reports Add, Modify and
//!   Remove only), so the plan's replacement rows are exercised by the
//!   snapshot tests' template diff, not here;
//! - moto creates functions but never runs them, and keeps no stack
//!   outputs or tags from change sets: apply's closing summary says the
//!   stack reports no ingest URL here;
//! - the bootstrap bucket's versioning is dropped by moto, so the state's
//!   version is its ETag (apply makes every state object unique).

#![allow(clippy::disallowed_methods)] // the test drives real processes

#[path = "../runtime/aws/tests/support/mod.rs"]
mod moto;
mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use moto::{sdk_config, start_moto};
use support::{Run, run, uniflow_command, with_aws};

/// The shop example, which deploys the most.
fn example() -> String {
    std::fs::read_to_string(support::root().join("examples/shop/uniflow.kdl")).unwrap()
}

/// `uniflow ARGS...` against moto at `endpoint`.
fn uniflow(args: &[&str], endpoint: &str) -> Run {
    run(with_aws(uniflow_command().args(args), endpoint))
}

/// The artifacts bucket's name, from the bootstrap stack.
async fn artifacts_bucket(sdk: &aws_config::SdkConfig) -> Option<String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let resources = cfn
        .list_stack_resources()
        .stack_name("acme-shop-prod-bootstrap")
        .send()
        .await
        .ok()?;
    resources
        .stack_resource_summaries()
        .iter()
        .find(|r| r.logical_resource_id() == Some("ArtifactsBucket"))
        .and_then(|r| r.physical_resource_id().map(str::to_owned))
}

/// The main stack's status, `None` when it does not exist.
async fn stack_status(sdk: &aws_config::SdkConfig, name: &str) -> Option<String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let answer = cfn.describe_stacks().stack_name(name).send().await.ok()?;
    answer
        .stacks()
        .first()
        .and_then(|s| s.stack_status().map(|s| s.as_str().to_owned()))
        .filter(|s| s != "DELETE_COMPLETE")
}

/// Keys under `prefix` in `bucket`.
async fn keys(sdk: &aws_config::SdkConfig, bucket: &str, prefix: &str) -> Vec<String> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    let answer = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    answer
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Names of the write keys in SSM.
async fn write_keys(sdk: &aws_config::SdkConfig) -> Vec<String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let answer = ssm
        .get_parameters_by_path()
        .path("/uniflow/acme-shop/prod/write-keys")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = answer
        .parameters()
        .iter()
        .map(|p| {
            assert_eq!(p.r#type().map(|t| t.as_str()), Some("SecureString"));
            assert_eq!(p.value().map(str::len), Some(32), "a generated key");
            p.name().unwrap().to_owned()
        })
        .collect();
    names.sort();
    names
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn write_project(dir: &Path, text: &str) {
    std::fs::write(dir.join("uniflow.kdl"), text).unwrap();
}

/// The reviewed change: a new event, a new destination, and an optional
/// property made required (a breaking change for senders).
fn edited(base: &str) -> String {
    let text = base.replace(
        "    property \"remember_me\" type=\"boolean\"\n",
        "    property \"remember_me\" type=\"boolean\" required=#true\n",
    );
    assert_ne!(text, base, "the example still has Signed In's remember_me");
    text + r#"
event "Wishlist Viewed" {
    property "wishlist_id" type="string" required=#true
}

destination "wishlist-hook" kind="webhook" {
    url "https://hooks.acme-shop.example/wishlist"
    events "Wishlist Viewed"
}
"#
}

#[test]
fn from_an_empty_account_to_a_reviewed_change_and_back() {
    let moto = start_moto();
    let endpoint = moto.endpoint.as_str();
    let sdk = block_on(sdk_config(endpoint));
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_str().unwrap().to_owned();
    write_project(dir.path(), &example());

    // Nothing deployed: the plan adds everything.
    let plan = uniflow(&["plan", &project, "--detailed-exitcode"], endpoint);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);

    // Apply from nothing.
    let applied = uniflow(&["apply", &project, "--auto-approve"], endpoint);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("Applied acme-shop-prod"),
        "{}",
        applied.stdout
    );
    assert_eq!(
        block_on(stack_status(&sdk, "acme-shop-prod")).as_deref(),
        Some("CREATE_COMPLETE")
    );
    let bucket = block_on(artifacts_bucket(&sdk)).expect("the bootstrap stack made the bucket");
    for role in ["ingest", "processor", "connector", "management"] {
        let code = block_on(keys(&sdk, &bucket, &format!("lambda/{role}/")));
        assert_eq!(code.len(), 1, "{role}: {code:?}");
        assert!(code[0].ends_with(".zip") && code[0].len() == format!("lambda/{role}/").len() + 68);
    }
    assert_eq!(
        block_on(keys(&sdk, &bucket, "state/acme-shop-prod/")),
        ["state/acme-shop-prod/applied.json"],
        "state recorded, lock released"
    );
    let sources = [
        "/uniflow/acme-shop/prod/write-keys/mobile-app",
        "/uniflow/acme-shop/prod/write-keys/order-backend",
        "/uniflow/acme-shop/prod/write-keys/storefront",
    ];
    assert_eq!(block_on(write_keys(&sdk)), sources);
    for source in sources {
        assert!(applied.stdout.contains(source), "{}", applied.stdout);
    }
    let build = dir.path().join("build");
    assert!(!build.exists(), "apply writes nothing next to the project");

    // Plan again: nothing to do.
    let plan = uniflow(&["plan", &project, "--detailed-exitcode"], endpoint);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);

    // The reviewed change, saved twice before anything is applied.
    write_project(dir.path(), &edited(&example()));
    let first = dir.path().join("first.plan.json");
    let second = dir.path().join("second.plan.json");
    let plan = uniflow(
        &[
            "plan",
            &project,
            "--detailed-exitcode",
            "--format",
            "markdown",
            "--out",
            first.to_str().unwrap(),
        ],
        endpoint,
    );
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    for expected in [
        "Wishlist Viewed",
        "wishlist-hook",
        "remember_me",
        "was optional and is now required",
        "<details>",
        "DestinationWishlistHookQueue",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "{expected} in:\n{}",
            plan.stdout
        );
    }
    let again = uniflow(
        &["plan", &project, "--out", second.to_str().unwrap()],
        endpoint,
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);

    // The first saved plan applies; the second is stale after it.
    let applied = uniflow(&["apply", first.to_str().unwrap()], endpoint);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("Applied acme-shop-prod"),
        "{}",
        applied.stdout
    );
    let stale = uniflow(&["apply", second.to_str().unwrap()], endpoint);
    assert_eq!(stale.code, 1, "{}{}", stale.stdout, stale.stderr);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);
    let plan = uniflow(&["plan", &project, "--detailed-exitcode"], endpoint);
    assert_eq!(
        plan.code, 0,
        "applied as planned: {}{}",
        plan.stdout, plan.stderr
    );

    // Destroy keeps the data, then --delete-data removes it.
    let destroyed = uniflow(&["destroy", &project, "--auto-approve"], endpoint);
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    assert_eq!(block_on(stack_status(&sdk, "acme-shop-prod")), None);
    assert!(
        destroyed.stdout.contains("RawBucket"),
        "{}",
        destroyed.stdout
    );
    assert_eq!(block_on(write_keys(&sdk)).len(), 3, "write keys kept");
    let raw = destroyed
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("RawBucket"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_owned();
    let s3 = aws_sdk_s3::Client::new(&sdk);
    assert!(
        block_on(s3.head_bucket().bucket(&raw).send()).is_ok(),
        "raw archive kept"
    );

    let gone = uniflow(
        &["destroy", &project, "--auto-approve", "--delete-data"],
        endpoint,
    );
    assert_eq!(gone.code, 0, "{}{}", gone.stdout, gone.stderr);
    assert!(
        block_on(s3.head_bucket().bucket(&raw).send()).is_err(),
        "raw archive deleted"
    );
    assert!(
        block_on(s3.head_bucket().bucket(&bucket).send()).is_err(),
        "artifacts deleted"
    );
    assert_eq!(block_on(write_keys(&sdk)), Vec::<String>::new());
    assert_eq!(
        block_on(stack_status(&sdk, "acme-shop-prod-bootstrap")),
        None
    );
}

/// Polls until `condition` holds, for at most `secs`.
fn wait_for(secs: u64, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn one_apply_at_a_time_and_a_dead_holders_lock_is_forced_open() {
    let moto = start_moto();
    let endpoint = moto.endpoint.as_str();
    let sdk = block_on(sdk_config(endpoint));
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_str().unwrap().to_owned();
    write_project(dir.path(), &example());
    let first = uniflow(&["apply", &project, "--auto-approve"], endpoint);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let bucket = block_on(artifacts_bucket(&sdk)).unwrap();
    write_project(dir.path(), &edited(&example()));

    // A holds the lock while it waits for approval.
    let mut holder = with_aws(
        uniflow_command()
            .args(["apply", &project])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        endpoint,
    )
    .spawn()
    .unwrap();
    let lock = "state/acme-shop-prod/lock.json".to_owned();
    wait_for(120, "the first apply to take the lock", || {
        block_on(keys(&sdk, &bucket, &lock)).contains(&lock)
    });

    // B does not wait: it fails, naming the holder and the lock's id.
    let refused = uniflow(&["apply", &project, "--auto-approve"], endpoint);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("is locked"), "{}", refused.stderr);
    assert!(refused.stderr.contains("apply by"), "{}", refused.stderr);
    let id = refused
        .stderr
        .split("force-unlock ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the error names the lock id")
        .trim_end_matches(['.', ',', '`'])
        .to_owned();

    // The plan's header shows who holds it.
    let plan = uniflow(&["plan", &project], endpoint);
    assert!(plan.stdout.contains(&id), "{}", plan.stdout);

    // C waits for it.
    let mut waiter = with_aws(
        uniflow_command()
            .args(["apply", &project, "--auto-approve", "--lock-timeout", "5m"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        endpoint,
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(waiter.try_wait().unwrap().is_none(), "C waits for the lock");

    // A dies without releasing it: C keeps waiting, the lock stays.
    holder.kill().unwrap();
    holder.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "a dead holder's lock stays"
    );

    // force-unlock needs the right id.
    let wrong = uniflow(&["force-unlock", "not-the-id", &project], endpoint);
    assert_eq!(wrong.code, 2, "{}{}", wrong.stdout, wrong.stderr);
    assert!(wrong.stderr.contains(&id), "{}", wrong.stderr);
    let unlocked = uniflow(&["force-unlock", &id, &project], endpoint);
    assert_eq!(unlocked.code, 0, "{}{}", unlocked.stdout, unlocked.stderr);

    // C gets the lock and applies the change.
    let out = waiter.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Applied acme-shop-prod"), "{stdout}");
    assert!(block_on(keys(&sdk, &bucket, &lock)).is_empty(), "released");

    // An apply that is told no changes nothing and releases the lock.
    write_project(
        dir.path(),
        &(edited(&example())
            + "\nevent \"Gift Card Bought\" {\n    property \"amount\" type=\"number\"\n}\n"),
    );
    let mut asked = with_aws(
        uniflow_command()
            .args(["apply", &project])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        endpoint,
    )
    .spawn()
    .unwrap();
    asked.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let out = asked.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Apply cancelled"), "{stderr}");
    assert!(
        stderr.contains("Gift Card Bought"),
        "the plan was shown: {stderr}"
    );
    assert!(block_on(keys(&sdk, &bucket, &lock)).is_empty(), "released");
}
