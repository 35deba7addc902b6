//! `loadgen`: sends pre-generated `POST /v1/batch` bodies over keep-alive
//! HTTP/1.1 connections (tokio + hyper) and prints one JSON report.
//!
//!   loadgen --url http://127.0.0.1:8088/v1/batch --write-key KEY \
//!           --connections 32 --duration 10 --batch 100
//!
//! Each connection sends one request at a time and waits for its answer.
//! Bodies are generated before the clock starts; each request sends a copy
//! of one with fresh message ids stamped in (see `payload`). Every answer
//! must be 200 and, when it counts them (uniflow's batch answer), say that
//! every message was accepted: anything else is counted, reported, and makes
//! the exit status 1. Exit status 2: bad arguments or nothing to connect to.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use uniflow_loadgen::payload::{self, Template};
use uniflow_loadgen::stats::{cpu_seconds, machine_busy_seconds, percentile};

/// HTTP load generator for the ingest benchmark.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Args {
    /// Where to POST the batches, e.g. http://127.0.0.1:8088/v1/batch.
    #[arg(long, required_unless_present = "dump")]
    url: Option<String>,
    /// The source's write key (sent as the HTTP Basic user name).
    #[arg(long)]
    write_key: Option<String>,
    /// Read the write key of --source from this `sources.json` instead.
    #[arg(long, conflicts_with = "write_key")]
    sources_json: Option<PathBuf>,
    /// The source whose key --sources-json gives.
    #[arg(long, default_value = "order-backend")]
    source: String,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to send for (after --warmup); the default is 10.
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Send exactly this many requests instead of for a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of load before measuring starts (with --duration).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Messages per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Distinct pre-generated bodies, used in turn.
    #[arg(long, default_value_t = 256)]
    bodies: usize,
    /// Seed of the generated payloads: the same seed, the same payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads of the load generator [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Also report the CPU time this process (the server) used meanwhile.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for the target in the report.
    #[arg(long)]
    label: Option<String>,
    /// Print this many messages as NDJSON (for `uniflow validate`) and exit.
    #[arg(long)]
    dump: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(std::io::stderr().lock(), "loadgen: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if args.batch == 0 || args.connections == 0 || args.bodies == 0 {
        return Err("--batch, --connections and --bodies must be at least 1".into());
    }
    if let Some(n) = args.dump {
        return dump(&args, n, now_ms);
    }
    let url = args.url.as_deref().unwrap_or_default();
    let target = Target::parse(url, &write_key(&args)?)?;

    let generating = Instant::now();
    let templates = payload::generate(args.seed, args.bodies, args.batch, now_ms);
    let pregen_s = generating.elapsed().as_secs_f64();

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let report = runtime.block_on(load(&args, target, templates))?;
    let report = report.to_json(&args, url, pregen_s);
    let failed = report["failed"].as_bool().unwrap_or(true);
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--dump N`: messages as they would be sent, one per line.
fn dump(args: &Args, n: usize, now_ms: i64) -> Result<ExitCode, String> {
    let count = n.div_ceil(args.batch).min(args.bodies.max(1));
    let templates = payload::generate(args.seed, count, args.batch, now_ms);
    let mut out = std::io::stdout().lock();
    let mut written = 0;
    let mut next = 0;
    for t in templates.iter().cycle() {
        let body = t.stamp(next);
        next += t.events() as u64;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        for m in doc["batch"].as_array().into_iter().flatten() {
            if written == n {
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "{m}").map_err(|e| e.to_string())?;
            written += 1;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_key(args: &Args) -> Result<String, String> {
    if let Some(key) = &args.write_key {
        return Ok(key.clone());
    }
    let Some(path) = &args.sources_json else {
        return Err("give --write-key or --sources-json".into());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    doc["sources"][&args.source]["write_key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no source `{}`", path.display(), args.source))
}

/// Where and how to send.
#[derive(Debug)]
struct Target {
    uri: Uri,
    addr: String,
    host: HeaderValue,
    authorization: HeaderValue,
}

impl Target {
    fn parse(url: &str, key: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad --url {url}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("--url must be http://HOST:PORT/PATH, not {url}"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--url {url} has no host"))?;
        let addr = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
        let authorization =
            HeaderValue::from_str(&format!("Basic {basic}")).map_err(|e| e.to_string())?;
        Ok(Target {
            uri,
            addr,
            host,
            authorization,
        })
    }
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    target: Target,
    templates: Vec<Template>,
    /// The next message-id counter value.
    next_id: AtomicU64,
    /// Requests still to send (with --requests), else unused.
    budget: AtomicI64,
    counted: bool,
    /// Requests sent from then on are measured.
    measure_from: Instant,
    /// No request is sent from then on (with --duration).
    deadline: Option<Instant>,
    /// Events of measured 200 answers so far, for the timeline.
    events_done: AtomicU64,
}

impl Shared {
    fn may_send(&self) -> bool {
        if self.counted {
            return self.budget.fetch_sub(1, Ordering::Relaxed) > 0;
        }
        self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// What one connection saw (measured requests only).
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    events: u64,
    bytes: u64,
    non_200: BTreeMap<u16, u64>,
    transport_errors: u64,
    /// Messages a 200 answer did not count as accepted (rejected, duplicates).
    not_accepted: u64,
    duplicates: u64,
    /// 200 answers that did not accept every message.
    incomplete: u64,
    last_done: Option<Instant>,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.events += other.events;
        self.bytes += other.bytes;
        for (status, n) in other.non_200 {
            *self.non_200.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.not_accepted += other.not_accepted;
        self.duplicates += other.duplicates;
        self.incomplete += other.incomplete;
        self.last_done = self.last_done.max(other.last_done);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn error(&mut self, message: String) {
        self.transport_errors += 1;
        self.first_error.get_or_insert(message);
    }
}

/// The merged result of a run.
#[derive(Debug)]
struct Report {
    tally: Tally,
    elapsed_s: f64,
    loadgen_cpu_s: Option<f64>,
    server_cpu_s: Option<f64>,
    /// Every process of the machine, this one and the server included.
    machine_busy_s: Option<f64>,
    /// Events accepted in each whole second of the measurement.
    timeline: Vec<u64>,
}

async fn load(args: &Args, target: Target, templates: Vec<Template>) -> Result<Report, String> {
    // Fail early, and clearly, when nothing listens.
    TcpStream::connect(&target.addr)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
    let start = Instant::now();
    let counted = args.requests.is_some();
    let warmup = if counted { 0.0 } else { args.warmup.max(0.0) };
    let measure_from = start + Duration::from_secs_f64(warmup);
    let deadline = (!counted)
        .then(|| measure_from + Duration::from_secs_f64(args.duration.unwrap_or(10.0).max(0.0)));
    let shared = Arc::new(Shared {
        target,
        templates,
        next_id: AtomicU64::new(0),
        budget: AtomicI64::new(args.requests.unwrap_or(0).min(i64::MAX as u64) as i64),
        counted,
        measure_from,
        deadline,
        events_done: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(i, args.connections, shared.clone())))
        .collect();
    let server_pid = args.server_pid;
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_start = (
        cpu_seconds(None),
        server_pid.and_then(|p| cpu_seconds(Some(p))),
        machine_busy_seconds(),
    );
    // Events per second of each whole second, to show stalls and slow-downs.
    let (stop_timeline, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let timeline = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut points = Vec::new();
            let mut last = 0;
            let mut tick = tokio::time::interval_at(
                (shared.measure_from + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let now = shared.events_done.load(Ordering::Relaxed);
                        points.push(now - last);
                        last = now;
                    }
                    _ = &mut stopped => return points,
                }
            }
        })
    };
    let mut tally = Tally::default();
    for task in tasks {
        let t = task
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        tally.merge(t);
    }
    let cpu_end = (
        cpu_seconds(None),
        server_pid.and_then(|p| cpu_seconds(Some(p))),
        machine_busy_seconds(),
    );
    let _ = stop_timeline.send(());
    let timeline = timeline.await.unwrap_or_default();
    let end = tally.last_done.unwrap_or(measure_from).max(measure_from);
    let elapsed_s = end.duration_since(measure_from).as_secs_f64();
    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    Ok(Report {
        tally,
        elapsed_s,
        loadgen_cpu_s: diff(cpu_start.0, cpu_end.0),
        server_cpu_s: diff(cpu_start.1, cpu_end.1),
        machine_busy_s: diff(cpu_start.2, cpu_end.2),
        timeline,
    })
}

/// One keep-alive connection sending requests one after the other until the
/// deadline or the request budget; reconnects after a transport error.
async fn connection(index: usize, stride: usize, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut next_body = index;
    let mut consecutive_failures = 0;
    'connect: loop {
        if consecutive_failures >= 5 {
            return tally;
        }
        let stream = match TcpStream::connect(&shared.target.addr).await {
            Ok(s) => s,
            Err(e) => {
                tally.error(format!("connect: {e}"));
                consecutive_failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
            {
                Ok(pair) => pair,
                Err(e) => {
                    tally.error(format!("handshake: {e}"));
                    consecutive_failures += 1;
                    continue;
                }
            };
        tokio::spawn(conn);
        loop {
            if !shared.may_send() {
                return tally;
            }
            let template = &shared.templates[next_body % shared.templates.len()];
            next_body += stride;
            let events = template.events() as u64;
            let first = shared.next_id.fetch_add(events, Ordering::Relaxed);
            let body = template.stamp(first);
            let size = body.len() as u64;
            let t = &shared.target;
            let request = Request::post(t.uri.clone())
                .header(header::HOST, t.host.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, t.authorization.clone())
                .header(header::USER_AGENT, "uniflow-loadgen/0.1")
                .body(Full::new(Bytes::from(body)));
            let Ok(request) = request else {
                tally.error("cannot build the request".into());
                return tally;
            };
            if let Err(e) = sender.ready().await {
                tally.error(format!("connection closed: {e}"));
                consecutive_failures += 1;
                continue 'connect;
            }
            let sent = Instant::now();
            let measured = sent >= shared.measure_from;
            let answer = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| (status, b.to_bytes()))
                }
                Err(e) => Err(e),
            };
            let done = Instant::now();
            let (status, reply) = match answer {
                Ok(a) => a,
                Err(e) => {
                    if measured {
                        tally.error(format!("request: {e}"));
                    }
                    consecutive_failures += 1;
                    continue 'connect;
                }
            };
            consecutive_failures = 0;
            if !measured {
                continue;
            }
            tally.last_done = Some(done);
            let micros = done.duration_since(sent).as_micros().min(u32::MAX as u128) as u32;
            tally.latencies_us.push(micros);
            if status != StatusCode::OK {
                *tally.non_200.entry(status.as_u16()).or_default() += 1;
                tally.first_error.get_or_insert_with(|| {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&reply))
                });
                continue;
            }
            tally.ok += 1;
            tally.events += events;
            shared.events_done.fetch_add(events, Ordering::Relaxed);
            tally.bytes += size;
            let (short, duplicates) = shortfall(&reply, events);
            tally.not_accepted += short;
            tally.duplicates += duplicates;
            if short > 0 {
                tally.incomplete += 1;
                tally.first_error.get_or_insert_with(|| {
                    format!(
                        "a 200 answer did not accept every message: {}",
                        String::from_utf8_lossy(&reply)
                    )
                });
            }
        }
    }
}

/// Of `events` sent, how many a 200 answer says were not accepted, and how
/// many of those were duplicates. Answers without counts (the bare server's
/// `{"success":true}`) accept everything unless `success` is false.
fn shortfall(reply: &[u8], events: u64) -> (u64, u64) {
    let Ok(doc) = serde_json::from_slice::<Value>(reply) else {
        return (events, 0);
    };
    if doc["success"] != Value::Bool(true) {
        return (events, 0);
    }
    let duplicates = doc["duplicates"].as_u64().unwrap_or(0);
    match doc["accepted"].as_u64() {
        Some(accepted) => (events.saturating_sub(accepted), duplicates),
        None => (0, 0),
    }
}

impl Report {
    fn to_json(&self, args: &Args, url: &str, pregen_s: f64) -> Value {
        let t = &self.tally;
        let mut lat = t.latencies_us.clone();
        lat.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let mean_ms = if lat.is_empty() {
            0.0
        } else {
            lat.iter().map(|&u| u64::from(u)).sum::<u64>() as f64 / lat.len() as f64 / 1000.0
        };
        let secs = self.elapsed_s.max(1e-9);
        let per_s = |n: u64| n as f64 / secs;
        let non_200_total: u64 = t.non_200.values().sum();
        let failed = non_200_total > 0 || t.transport_errors > 0 || t.not_accepted > 0 || t.ok == 0;
        let server_cores = self.server_cpu_s.map(|c| c / secs);
        let others = self.machine_busy_s.map(|m| {
            (m - self.loadgen_cpu_s.unwrap_or(0.0) - self.server_cpu_s.unwrap_or(0.0)).max(0.0)
                / secs
        });
        json!({
            "label": args.label.clone().unwrap_or_else(|| url.to_owned()),
            "url": url,
            "connections": args.connections,
            "batch": args.batch,
            "distinct_bodies": args.bodies,
            "seed": args.seed,
            "duration_s": round(self.elapsed_s, 3),
            "requests": t.ok + non_200_total,
            "ok_requests": t.ok,
            "events": t.events,
            "request_bytes": t.bytes,
            "mean_event_bytes": t.bytes.checked_div(t.events).unwrap_or(0),
            "events_per_s": round(per_s(t.events), 0),
            "requests_per_s": round(per_s(t.ok), 1),
            "mb_per_s": round(per_s(t.bytes) / 1e6, 2),
            "latency_p50_ms": ms(percentile(&lat, 50.0)),
            "latency_p90_ms": ms(percentile(&lat, 90.0)),
            "latency_p99_ms": ms(percentile(&lat, 99.0)),
            "latency_max_ms": ms(lat.last().copied().unwrap_or(0)),
            "latency_mean_ms": round(mean_ms, 3),
            "non_200": t.non_200.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "non_200_total": non_200_total,
            "transport_errors": t.transport_errors,
            "events_not_accepted": t.not_accepted,
            "duplicate_events": t.duplicates,
            "incomplete_requests": t.incomplete,
            "errors": non_200_total + t.transport_errors + t.incomplete,
            "first_error": t.first_error,
            "failed": failed,
            "events_per_second_timeline": format!("{:?}", self.timeline),
            "pregen_s": round(pregen_s, 3),
            "loadgen_cpu_s": self.loadgen_cpu_s.map(|c| round(c, 2)),
            "server_cpu_s": self.server_cpu_s.map(|c| round(c, 2)),
            "server_cores_used": server_cores.map(|c| round(c, 2)),
            "loadgen_cores_used": self.loadgen_cpu_s.map(|c| round(c / secs, 2)),
            "machine_busy_cores": self.machine_busy_s.map(|c| round(c / secs, 2)),
            "other_processes_cores": others.map(|c| round(c, 2)),
            "events_per_server_cpu_s": self.server_cpu_s.filter(|&c| c > 0.0).map(|c| round(t.events as f64 / c, 0)),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
