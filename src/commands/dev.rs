//! `uniflow dev`: the whole pipeline in one process on local disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use uniflow_runtime::backend::{Clock, SystemClock};
use uniflow_runtime::connectors::{self, ConnectorError, ObjectStore, Services};
use uniflow_runtime::connectors::{LocalObjects, LocalSecrets};
use uniflow_runtime::delivery::shape::Shaper;
use uniflow_runtime::embedded::deliver::{Route, run_deliveries};
use uniflow_runtime::embedded::profiles::EmbeddedProfiles;
use uniflow_runtime::embedded::queues::EmbeddedQueues;
use uniflow_runtime::embedded::{self, ArchivePolicy, Archiver, DataDir, Log, MemoryDedupe};
use uniflow_runtime::ingest::{Ingest, Limits, RateLimit};
use uniflow_runtime::profiles::Rules;
use uniflow_runtime_aws::services::S3Objects;
use uniflow_schemas::Bundle;
use uniflow_schemas::bundle::{ConnectorSettings, HeaderSource};

use super::{compile, dev_api, resolve};
use crate::ExitStatus;

pub fn run(
    path: &Path,
    port: u16,
    data: Option<&Path>,
    rate: u32,
    archive_wait_ms: u64,
) -> anyhow::Result<ExitStatus> {
    let file = resolve(path);
    let bundle = match compile(path, "uniflow dev")? {
        Ok((_, bundle)) => bundle,
        Err(status) => return Ok(status),
    };
    let project_dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = DataDir::new(&data.map_or_else(|| project_dir.join(".uniflow"), Path::to_path_buf));
    std::fs::create_dir_all(&dir.root)
        .with_context(|| format!("cannot create the data directory {}", dir.root.display()))?;
    let keys = write_keys(&dir, &bundle)?;
    write_secrets(&dir, &bundle)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let archive = ArchivePolicy {
        max_wait: std::time::Duration::from_millis(archive_wait_ms),
        ..ArchivePolicy::default()
    };
    runtime.block_on(serve(bundle, dir, keys, port, rate, archive))
}

async fn serve(
    bundle: Bundle,
    dir: DataDir,
    keys: BTreeMap<String, String>,
    port: u16,
    rate: u32,
    archive: ArchivePolicy,
) -> anyhow::Result<ExitStatus> {
    let log = Log::open(&dir.log()).context("cannot open the event log")?;
    let windows: BTreeMap<String, u64> = bundle
        .sources
        .iter()
        .map(|(name, s)| (name.clone(), s.dedupe_window_secs))
        .collect();
    let dedupe = MemoryDedupe::rebuild(&log, SystemClock.now_ms(), |s| windows.get(s).copied())
        .context("cannot read the event log")?;
    let archiver =
        Archiver::open(&dir.archive(), &dir.state()).context("cannot open the archive")?;
    let profiles = EmbeddedProfiles::open(&dir.profiles(), Rules::new(&bundle.identity))
        .context("cannot open the profile store")?
        .with_log(log.clone());
    let queues =
        EmbeddedQueues::open(&dir.deliveries()).context("cannot open the delivery queues")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let archive_task = tokio::spawn(embedded::run_archiver(
        log.clone(),
        archiver,
        archive,
        stop_rx.clone(),
    ));
    let processor_task = tokio::spawn(embedded::run_processor(
        log.clone(),
        profiles.clone(),
        stop_rx.clone(),
        |message| {
            let _ = writeln!(std::io::stderr(), "{message}");
        },
    ));
    let (routes, idle) = routes(&bundle, &dir).await?;
    let say: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|message: &str| {
        let _ = writeln!(std::io::stderr(), "{message}");
    });
    let mut delivery_tasks = Vec::new();
    for route in routes {
        // Before ingest starts: a new destination's queue begins at the
        // end of the log as it is now.
        queues
            .cursor_or_start(&route.name, log.committed())
            .with_context(|| format!("cannot open the queue of destination `{}`", route.name))?;
        delivery_tasks.push(tokio::spawn(run_deliveries(
            log.clone(),
            queues.clone(),
            route,
            stop_rx.clone(),
            say.clone(),
        )));
    }
    let ingest = Arc::new(Ingest::new(
        &bundle,
        &keys,
        Limits::default(),
        RateLimit::new(rate, rate.saturating_mul(2)),
        log,
        dedupe,
        SystemClock,
    ));
    let token = dev_api::token(&dir.root);
    let api = dev_api::router(
        Arc::new(profiles),
        queues.clone(),
        Arc::new(bundle.clone()),
        &token,
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try --port)"))?;
    let addr = listener.local_addr()?;
    dev_api::write(&dir.root, &addr, &token)?;
    announce(&addr, &bundle, &keys, &dir, &token, &idle)?;
    let app = uniflow_runtime::serve::router(ingest).merge(api);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the HTTP server failed")?;
    let mut stderr = std::io::stderr().lock();
    writeln!(
        stderr,
        "stopping: archiving what is in the log (profiles and deliveries resume from it at the next start)"
    )?;
    let _ = stop_tx.send(true);
    for task in delivery_tasks {
        task.await.context("a delivery worker stopped abnormally")?;
    }
    processor_task
        .await
        .context("the processor stopped abnormally")?;
    archive_task
        .await
        .context("the archiver stopped abnormally")?
        .context("archiving failed")?;
    writeln!(std::io::stderr(), "stopped")?;
    Ok(ExitStatus::Success)
}

fn announce(
    addr: &SocketAddr,
    bundle: &Bundle,
    keys: &BTreeMap<String, String>,
    dir: &DataDir,
    token: &str,
    idle: &[String],
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "uniflow dev: {} ({})",
        bundle.project.name, bundle.project.stage
    )?;
    writeln!(
        out,
        "tracking API  http://{addr}/v1/  (Segment-compatible: track, identify, page, screen, group, alias, batch)"
    )?;
    writeln!(
        out,
        "management    http://{addr}/api/v1/  token {token}  (also in {})",
        dev_api::dev_file(&dir.root).display()
    )?;
    writeln!(out, "data          {}", dir.root.display())?;
    writeln!(out, "write keys    (also in {})", dir.sources().display())?;
    for (source, key) in keys {
        let kind = bundle
            .sources
            .get(source)
            .map(|s| format!("{:?}", s.kind).to_lowercase())
            .unwrap_or_default();
        writeln!(out, "  {source:<24} {key}  ({kind})")?;
    }
    if !bundle.destinations.is_empty() {
        writeln!(
            out,
            "destinations  (secrets in {}, s3-export objects under {})",
            dir.secrets().display(),
            dir.exports().display()
        )?;
        for (name, d) in &bundle.destinations {
            let target = match &d.connector {
                ConnectorSettings::Webhook { url, .. } => url.clone(),
                ConnectorSettings::S3Export { bucket, prefix, .. } => match s3_endpoint() {
                    Some(endpoint) => format!("s3://{bucket}/{prefix} at {endpoint}"),
                    None => format!("{}/{bucket}/{prefix}", dir.exports().display()),
                },
                ConnectorSettings::Lambda { function } => function.clone(),
            };
            let note = if idle.contains(name) {
                "  NOT DELIVERED: the lambda connector needs AWS"
            } else {
                ""
            };
            writeln!(out, "  {name:<24} {:<10} {target}{note}", d.kind)?;
        }
    }
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;
    Ok(())
}

/// Each destination's worker route (its shaping and its connector), and
/// the destinations `uniflow dev` cannot deliver to (lambda: it needs AWS).
async fn routes(bundle: &Bundle, dir: &DataDir) -> anyhow::Result<(Vec<Arc<Route>>, Vec<String>)> {
    let services = Services {
        secrets: Arc::new(LocalSecrets::new(dir.secrets())),
        objects: objects(bundle, dir).await,
        invoke: None,
    };
    let mut routes = Vec::new();
    let mut idle = Vec::new();
    for (name, info) in &bundle.destinations {
        let shaper = Shaper::new(info).map_err(|e| anyhow::anyhow!("destination `{name}`: {e}"))?;
        let connector = match connectors::build(name, info, &services).await {
            Ok(c) => c,
            Err(ConnectorError::NeedsAws { .. }) => {
                idle.push(name.clone());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        routes.push(Arc::new(Route {
            name: name.clone(),
            info: info.clone(),
            shape: Box::new(move |event: &[u8]| shaper.shape(event).map_err(|e| e.to_string())),
            connector: Arc::from(connector),
        }));
    }
    Ok((routes, idle))
}

/// Where s3-export destinations write: a local directory
/// (`DATA/exports/BUCKET/KEY`), or S3 itself when an endpoint is configured
/// (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`: MinIO, moto, or AWS), with
/// the SDK's usual credentials and the project's region unless one is set.
async fn objects(bundle: &Bundle, dir: &DataDir) -> Arc<dyn ObjectStore> {
    if s3_endpoint().is_none() {
        return Arc::new(LocalObjects::new(dir.exports()));
    }
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(aws_config::Region::new(bundle.project.region.clone()));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    Arc::new(S3Objects::new(&sdk))
}

/// The S3 endpoint s3-export writes to in `uniflow dev`, if one is set.
fn s3_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
}

/// The secret references of the destinations that `uniflow dev` keeps
/// values for (`ssm:` and `secretsmanager:`; `env:` reads the environment).
fn secret_references(bundle: &Bundle) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    for d in bundle.destinations.values() {
        if let ConnectorSettings::Webhook {
            headers, secret, ..
        } = &d.connector
        {
            let from_headers = headers.iter().filter_map(|(_, v)| match v {
                HeaderSource::Secret(r) => Some(r),
                HeaderSource::Value(_) => None,
            });
            refs.extend(secret.iter().chain(from_headers).map(|r| r.0.clone()));
        }
    }
    refs.retain(|r| !r.starts_with("env:"));
    refs.sort();
    refs.dedup();
    refs
}

/// `DATA/secrets.json`: a value for each secret the destinations reference
/// (kept across restarts; a new reference gets a random value, so signing
/// works at once and the receiver's side can be configured from the file).
/// Readable by its owner only.
fn write_secrets(dir: &DataDir, bundle: &Bundle) -> anyhow::Result<()> {
    let path = dir.secrets();
    let mut values: BTreeMap<String, String> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a JSON object of secret references to values",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let before = values.clone();
    for r in secret_references(bundle) {
        values
            .entry(r)
            .or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
    }
    if values != before || !path.exists() {
        dev_api::write_private(&path, &(serde_json::to_string_pretty(&values)? + "\n"))?;
    }
    Ok(())
}

/// Each source's write key: kept in `sources.json` so they stay the same for
/// the data directory; a new source gets a new random key.
fn write_keys(dir: &DataDir, bundle: &Bundle) -> anyhow::Result<BTreeMap<String, String>> {
    let path = dir.sources();
    let mut keys: BTreeMap<String, String> = match std::fs::read(&path) {
        Ok(bytes) => {
            let doc: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            doc.get("sources")
                .and_then(|s| s.as_object())
                .map(|s| {
                    s.iter()
                        .filter_map(|(k, v)| {
                            Some((k.clone(), v.get("write_key")?.as_str()?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let before = keys.clone();
    keys.retain(|name, _| bundle.sources.contains_key(name));
    for name in bundle.sources.keys() {
        keys.entry(name.clone())
            .or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
    }
    if keys != before || !path.exists() {
        let doc = serde_json::json!({
            "sources": keys.iter().map(|(k, v)| (k.clone(), serde_json::json!({ "write_key": v }))).collect::<serde_json::Map<_, _>>(),
        });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(keys)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
