//! The monthly cost estimate `uniflow plan` shows: the config's traffic
//! envelope priced at AWS list prices (us-east-1, USD), by component, with
//! the idle floor (what the stack costs with no traffic at all) apart.
//! An estimate, labelled as one everywhere it is shown.
//!
//! The stack priced is the one [`crate::generate::cloudformation`] generates
//! for the config: the stream's capacity mode and each function's memory and
//! batch settings come from its [`Sizing`], and the resources counted
//! (alarms, keys, tables, queues) from its template. What the template does
//! not say (how long an invocation runs, how many DynamoDB items an event
//! touches) is an assumption, named in the line's `basis`.

pub(crate) mod prices;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::generate::cloudformation::sizing::{
    self, EventSource, FunctionConfig, PROCESSOR_EVENTS_PER_SEC, SECONDS_PER_MONTH, STREAM_READERS,
    Sizing, StreamCapacity,
};
use crate::model::{Config, Project, SecretRef};
use prices::*;

/// One priced component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The component: `API Gateway (HTTP API)`, `Lambda: ingest`,
    /// `Kinesis Data Streams`, `Firehose`, `S3 raw archive`, `DynamoDB`,
    /// `SQS`, `CloudWatch Logs`, `KMS`, ...
    pub component: String,
    /// How it was priced, in one line: "1.0M requests x $1.00/M".
    pub basis: String,
    /// USD per month.
    pub monthly_usd: f64,
}

/// The estimate for one config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The envelope it was priced from: events per month.
    pub events_per_month: u64,
    /// Mean event size in bytes.
    pub mean_event_bytes: u64,
    /// Monthly tracked users.
    pub monthly_tracked_users: u64,
    /// Usage-driven cost by component, at the envelope.
    pub usage: Vec<Line>,
    /// What the stack costs with no traffic: KMS key, provisioned shards,
    /// alarms, ... by component.
    pub idle_floor: Vec<Line>,
    /// Sum of `usage` and `idle_floor`.
    pub total_usd: f64,
    /// Sum of `idle_floor`.
    pub idle_usd: f64,
    /// The region and date of the price list, and what is left out.
    pub assumptions: Vec<String>,
}

/// Milliseconds one ingest invocation runs: one request, its `PutRecords`
/// and its dedupe put.
const INGEST_MS: f64 = 25.0;
/// Milliseconds of fixed work per processor invocation (decoding the batch,
/// reporting failures), beside the per-event work sizing assumes.
const PROCESSOR_BATCH_MS: f64 = 20.0;
/// Milliseconds one connector invocation runs: one delivery and its answer.
const CONNECTOR_BATCH_MS: f64 = 200.0;
/// Shards an on-demand stream starts with (4 MiB/s of writes), which the
/// processor's batches are spread over.
const ON_DEMAND_SHARDS: u64 = 4;
/// Write request units of one dedupe put (an id under 1 KB).
const DEDUPE_WRU_PER_EVENT: f64 = 1.0;
/// Items of the processor's transaction per event (marker, profile,
/// identifier), each under 1 KB at 2 WRU as a transactional write.
const PROCESSOR_WRU_PER_EVENT: f64 = 3.0 * 2.0;
/// Items the processor reads per event with consistent `BatchGetItem`s
/// (identifiers, suppressions, profile), each under 4 KB at 1 RRU.
const PROCESSOR_RRU_PER_EVENT: f64 = 3.0;
/// Bytes one tracked user keeps in DynamoDB: a profile and its identifiers.
const PROFILE_BYTES: f64 = 3.0 * 1024.0;
/// Raw archive size over event size: GZIP NDJSON of similar events.
const COMPRESSION_RATIO: f64 = 0.2;
/// SQS requests per delivered message: send, receive and delete.
const SQS_REQUESTS_PER_MESSAGE: f64 = 3.0;
/// Lambda's SQS pollers on an idle queue: 5 pollers, each one 20-second
/// long poll after another.
const SQS_IDLE_REQUESTS_PER_QUEUE: f64 = 5.0 * 3.0 * 60.0 * HOURS_PER_MONTH;
/// Bytes Lambda logs per invocation (`START`, `END` and `REPORT` as JSON).
const LOG_BYTES_PER_INVOCATION: f64 = 600.0;
/// Bytes of one API Gateway access log entry.
const ACCESS_LOG_BYTES_PER_REQUEST: f64 = 400.0;
/// Seconds a KMS data key is reused (streams, queues, tables): a client of
/// an encrypted resource asks KMS at most once per period while data flows.
const KMS_DATA_KEY_REUSE_SECS: f64 = 300.0;
/// Detailed metrics per API route (count, 4xx, 5xx, latency, integration
/// latency, data processed), billed as custom metrics.
const METRICS_PER_ROUTE: f64 = 6.0;
/// CloudWatch: per custom metric-month (first 10,000).
const METRIC_MONTH: f64 = 0.30;
/// The segments job: DPUs, minutes per run, runs per month (hourly).
const GLUE_DPUS: f64 = 2.0;
const GLUE_MINUTES_PER_RUN: f64 = 2.0;
const GLUE_RUNS_PER_MONTH: f64 = HOURS_PER_MONTH;
/// Firehose flushes its buffer at least this often, so an archive with
/// traffic gets an object per interval.
const FIREHOSE_BUFFER_SECS: f64 = 300.0;
/// ... or when this many bytes are buffered.
const FIREHOSE_BUFFER_BYTES: f64 = 128.0 * 1024.0 * 1024.0;

/// Prices the stack `config` generates at its traffic envelope; `None`
/// without a `project` node (nothing is deployed then).
pub fn estimate(config: &Config) -> Option<Estimate> {
    let project = config.project.as_ref()?;
    let template = main_template(config);
    let resources = resource_counts(&template);
    let sizing = Sizing::new(
        config,
        &crate::generate::cloudformation::resource_prefix(project),
        "",
    );
    let envelope = Envelope::new(project);
    let mut usage = Vec::new();
    let mut idle_floor = Vec::new();

    usage.push(api_gateway(&envelope));
    usage.push(ingest(&envelope, &sizing.ingest));
    let processor = processor(&envelope, &sizing);
    usage.push(processor.line);
    let connector = connector(&envelope, &sizing.connector);
    if let Some(connector) = &connector {
        usage.push(connector.line.clone());
    }
    let (kinesis_idle, kinesis_usage) = kinesis(&envelope, sizing.stream);
    idle_floor.push(kinesis_idle);
    usage.push(kinesis_usage);
    usage.push(firehose(&envelope));
    usage.push(raw_archive(&envelope));
    usage.push(dynamodb(config, &envelope, connector.as_ref()));
    let queues = sizing.connector.event_sources.len() as f64;
    if queues > 0.0 {
        usage.push(sqs(&envelope, queues));
        let requests = queues * SQS_IDLE_REQUESTS_PER_QUEUE;
        idle_floor.push(line(
            "SQS",
            format!(
                "idle polling: {} queue(s) x 5 Lambda pollers x 20 s long polls = {} requests x {}/M",
                queues,
                quantity(requests),
                price(SQS_MILLION_REQUESTS)
            ),
            requests / 1e6 * SQS_MILLION_REQUESTS,
        ));
    }
    let invocations =
        envelope.events + processor.invocations + connector.as_ref().map_or(0.0, |c| c.invocations);
    usage.push(logs(&envelope, invocations));
    usage.push(api_metrics(&envelope, ingest_routes(&template)));
    usage.push(kms_requests(&envelope, sizing.stream, &resources));

    let keys = count(&resources, "AWS::KMS::Key");
    idle_floor.push(line(
        "KMS",
        format!(
            "{keys} customer-managed key(s) x {}/key-month",
            price(KMS_KEY_MONTH)
        ),
        keys as f64 * KMS_KEY_MONTH,
    ));
    let alarms = count(&resources, "AWS::CloudWatch::Alarm");
    idle_floor.push(line(
        "CloudWatch alarms",
        format!("{alarms} alarms x {}/alarm-month", price(ALARM_MONTH)),
        alarms as f64 * ALARM_MONTH,
    ));
    let secrets = secrets_manager_secrets(config);
    if secrets > 0 {
        idle_floor.push(line(
            "Secrets Manager",
            format!("{secrets} secret(s) x {}/secret-month", price(SECRET_MONTH)),
            secrets as f64 * SECRET_MONTH,
        ));
    }
    if !config.segments.is_empty() {
        let dpu_hours = GLUE_DPUS * GLUE_MINUTES_PER_RUN / 60.0 * GLUE_RUNS_PER_MONTH;
        idle_floor.push(line(
            "Glue (segments job)",
            format!(
                "hourly: {GLUE_DPUS} DPU x {GLUE_MINUTES_PER_RUN} min x {GLUE_RUNS_PER_MONTH} runs = {} DPU-hours x {}/DPU-hour",
                quantity(dpu_hours),
                price(GLUE_DPU_HOUR)
            ),
            dpu_hours * GLUE_DPU_HOUR,
        ));
    }

    let idle_usd = idle_floor.iter().map(|l| l.monthly_usd).sum::<f64>();
    let total_usd = idle_usd + usage.iter().map(|l| l.monthly_usd).sum::<f64>();
    Some(Estimate {
        events_per_month: project.traffic.events_per_month,
        mean_event_bytes: project.traffic.mean_event_bytes,
        monthly_tracked_users: project.traffic.monthly_tracked_users,
        usage,
        idle_floor,
        total_usd,
        idle_usd,
        assumptions: assumptions(),
    })
}

/// What the estimate leaves out or assumes across lines.
fn assumptions() -> Vec<String> {
    [
        format!("{PRICE_LIST}; Lambda at x86_64 rates; a GB is 10^9 bytes."),
        "The AWS free tier is not subtracted.".to_owned(),
        "Data transfer out of AWS (webhook deliveries, API answers) is excluded.".to_owned(),
        "Each tracking request carries one event (an upper bound: SDKs batch).".to_owned(),
        "Every event is delivered to every destination (an upper bound: filters and event lists deliver fewer).".to_owned(),
        "The raw archive is priced for one month of data; it grows by that much each month it is kept.".to_owned(),
        "Log storage, the management API and its Cognito users, the access-log and violations buckets, SNS alarm notifications and the SSM write-key parameters (standard tier, free) are left out.".to_owned(),
        "Invocation durations, DynamoDB items per event and log volume are estimates, stated in each line.".to_owned(),
    ]
    .into()
}

/// The traffic envelope in the units the lines price.
struct Envelope {
    /// Events per month.
    events: f64,
    /// Mean event bytes.
    bytes: u64,
    /// Monthly tracked users.
    users: f64,
    /// Mean events per second over the 30-day month.
    rate: f64,
    /// `(events, bytes)` as sizing takes them.
    raw: (u64, u64),
}

impl Envelope {
    fn new(project: &Project) -> Envelope {
        let t = project.traffic;
        Envelope {
            events: t.events_per_month as f64,
            bytes: t.mean_event_bytes,
            users: t.monthly_tracked_users as f64,
            rate: t.events_per_month as f64 / SECONDS_PER_MONTH as f64,
            raw: (t.events_per_month, t.mean_event_bytes),
        }
    }

    /// Events per batch when a batch fills for `window_secs` at the mean
    /// rate, spread over `lanes` concurrent batches: at least 1, at most
    /// `batch_size`.
    fn batch_fill(&self, window_secs: u64, lanes: u64, batch_size: u32) -> f64 {
        let fill = self.rate * window_secs.max(1) as f64 / lanes.max(1) as f64;
        fill.clamp(1.0, f64::from(batch_size.max(1)))
    }
}

/// A function's invocations and the line pricing them.
struct Invocations {
    invocations: f64,
    line: Line,
}

fn api_gateway(e: &Envelope) -> Line {
    let increments = e.bytes.div_ceil(HTTP_API_REQUEST_INCREMENT_BYTES).max(1) as f64;
    let requests = e.events * increments;
    line(
        "API Gateway (HTTP API)",
        format!(
            "{} requests x {}/M",
            quantity(requests),
            price(HTTP_API_MILLION_REQUESTS)
        ),
        requests / 1e6 * HTTP_API_MILLION_REQUESTS,
    )
}

/// Lambda's price of `invocations` of `duration_ms` each at `memory_mb`.
fn lambda_usd(invocations: f64, duration_ms: f64, memory_mb: u32) -> f64 {
    let gb_seconds = invocations * duration_ms / 1000.0 * f64::from(memory_mb) / 1024.0;
    invocations / 1e6 * LAMBDA_MILLION_REQUESTS + gb_seconds * LAMBDA_X86_GB_SECOND
}

/// The basis of a Lambda line.
fn lambda_basis(invocations: f64, duration_ms: f64, memory_mb: u32, how: &str) -> String {
    let gb_seconds = invocations * duration_ms / 1000.0 * f64::from(memory_mb) / 1024.0;
    format!(
        "{} invocations ({how}) x {}/M + {} GB-s ({duration_ms:.1} ms at {memory_mb} MB) x {}/GB-s",
        quantity(invocations),
        price(LAMBDA_MILLION_REQUESTS),
        quantity(gb_seconds),
        price(LAMBDA_X86_GB_SECOND)
    )
}

fn ingest(e: &Envelope, f: &FunctionConfig) -> Line {
    line(
        "Lambda: ingest",
        lambda_basis(e.events, INGEST_MS, f.memory_mb, "one per request"),
        lambda_usd(e.events, INGEST_MS, f.memory_mb),
    )
}

fn processor(e: &Envelope, sizing: &Sizing) -> Invocations {
    let f = &sizing.processor;
    let shards = match sizing.stream {
        StreamCapacity::Provisioned { shards } => shards,
        StreamCapacity::OnDemand => ON_DEMAND_SHARDS,
    };
    let (window, lanes, batch_size) = f.event_sources.first().map_or((1, shards, 100), |s| {
        (
            s.batching_window_secs,
            shards * s.parallelization_factor.unwrap_or(1),
            s.batch_size,
        )
    });
    let fill = e.batch_fill(window, lanes, batch_size);
    let invocations = if e.events > 0.0 { e.events / fill } else { 0.0 };
    let duration_ms = PROCESSOR_BATCH_MS + fill * 1000.0 / PROCESSOR_EVENTS_PER_SEC as f64;
    let how = format!(
        "{} events per batch over {lanes} shard lane(s), {PROCESSOR_BATCH_MS} ms + {} ms per event",
        quantity(fill),
        1000 / PROCESSOR_EVENTS_PER_SEC
    );
    Invocations {
        invocations,
        line: line(
            "Lambda: processor",
            lambda_basis(invocations, duration_ms, f.memory_mb, &how),
            lambda_usd(invocations, duration_ms, f.memory_mb),
        ),
    }
}

/// The connector's invocations over all destination queues, or `None`
/// without destinations.
fn connector(e: &Envelope, f: &FunctionConfig) -> Option<Invocations> {
    if f.event_sources.is_empty() {
        return None;
    }
    let fill = |s: &EventSource| e.batch_fill(s.batching_window_secs, 1, s.batch_size);
    let invocations: f64 = if e.events > 0.0 {
        f.event_sources.iter().map(|s| e.events / fill(s)).sum()
    } else {
        0.0
    };
    let fills: Vec<String> = f.event_sources.iter().map(|s| quantity(fill(s))).collect();
    let how = format!(
        "{} destination(s), events per batch {}",
        f.event_sources.len(),
        fills.join("/")
    );
    Some(Invocations {
        invocations,
        line: line(
            "Lambda: connector",
            lambda_basis(invocations, CONNECTOR_BATCH_MS, f.memory_mb, &how),
            lambda_usd(invocations, CONNECTOR_BATCH_MS, f.memory_mb),
        ),
    })
}

/// The stream's `(idle, usage)` lines, in the capacity mode sizing chose.
fn kinesis(e: &Envelope, stream: StreamCapacity) -> (Line, Line) {
    let (events, bytes) = e.raw;
    match stream {
        StreamCapacity::Provisioned { shards } => (
            line(
                "Kinesis Data Streams",
                format!(
                    "provisioned: {shards} shard(s) x {HOURS_PER_MONTH} h x ({} + {} extended retention)/shard-hour",
                    price(KINESIS_SHARD_HOUR),
                    price(KINESIS_EXTENDED_RETENTION_SHARD_HOUR)
                ),
                sizing::provisioned_idle_cost(shards),
            ),
            line(
                "Kinesis Data Streams",
                format!(
                    "{} PUT payload units x {}/M",
                    quantity(sizing::provisioned_put_units(events, bytes)),
                    price(KINESIS_PUT_MILLION_UNITS)
                ),
                sizing::provisioned_usage_cost(events, bytes),
            ),
        ),
        StreamCapacity::OnDemand => {
            let (written, read, retained) = sizing::on_demand_volumes(events, bytes);
            (
                line(
                    "Kinesis Data Streams",
                    format!(
                        "on demand: {HOURS_PER_MONTH} stream-hours x {}",
                        price(KINESIS_ON_DEMAND_STREAM_HOUR)
                    ),
                    sizing::on_demand_idle_cost(),
                ),
                line(
                    "Kinesis Data Streams",
                    format!(
                        "{} written x {} + {} read ({STREAM_READERS} readers) x {} + {}-month retained x {}",
                        gb(written),
                        price(KINESIS_ON_DEMAND_INGEST_GB),
                        gb(read),
                        price(KINESIS_ON_DEMAND_RETRIEVAL_GB),
                        gb(retained),
                        price(KINESIS_ON_DEMAND_EXTENDED_RETENTION_GB_MONTH)
                    ),
                    sizing::on_demand_usage_cost(events, bytes),
                ),
            )
        }
    }
}

fn firehose(e: &Envelope) -> Line {
    // Each record is the event and a newline.
    let record =
        (e.bytes + 1).div_ceil(FIREHOSE_RECORD_INCREMENT_BYTES) * FIREHOSE_RECORD_INCREMENT_BYTES;
    let billed = e.events * record as f64 / 1e9;
    line(
        "Firehose",
        format!(
            "{} records billed at {} KB each = {} x {}/GB",
            quantity(e.events),
            record / 1024,
            gb(billed),
            price(FIREHOSE_GB)
        ),
        billed * FIREHOSE_GB,
    )
}

fn raw_archive(e: &Envelope) -> Line {
    let compressed = e.events * e.bytes as f64 * COMPRESSION_RATIO;
    let objects = if e.events > 0.0 {
        (SECONDS_PER_MONTH as f64 / FIREHOSE_BUFFER_SECS).max(compressed / FIREHOSE_BUFFER_BYTES)
    } else {
        0.0
    };
    let stored = compressed / 1e9;
    line(
        "S3 raw archive",
        format!(
            "{}-month (one month, GZIP at {COMPRESSION_RATIO} of raw) x {} + {} PUTs (a Firehose flush per {FIREHOSE_BUFFER_SECS} s) x {}/1k",
            gb(stored),
            price(S3_STANDARD_GB_MONTH),
            quantity(objects),
            price(S3_THOUSAND_PUTS)
        ),
        stored * S3_STANDARD_GB_MONTH + objects / 1000.0 * S3_THOUSAND_PUTS,
    )
}

fn dynamodb(config: &Config, e: &Envelope, connector: Option<&Invocations>) -> Line {
    let mut wru_per_event = PROCESSOR_WRU_PER_EVENT;
    let mut writes = vec![format!("processor transaction {PROCESSOR_WRU_PER_EVENT}")];
    if config.sources.iter().any(|s| s.dedupe_window_secs > 0) {
        wru_per_event += DEDUPE_WRU_PER_EVENT;
        writes.push(format!("dedupe {DEDUPE_WRU_PER_EVENT}"));
    }
    let destinations = config.destinations.len();
    if destinations > 0 {
        wru_per_event += destinations as f64;
        writes.push(format!("{destinations} delivery receipt(s)"));
    }
    // One delivery-counter update per connector invocation.
    let counter_wru = connector.map_or(0.0, |c| c.invocations);
    let wru = e.events * wru_per_event + counter_wru;
    let rru = e.events * PROCESSOR_RRU_PER_EVENT;
    let stored = e.users * PROFILE_BYTES / 1e9;
    line(
        "DynamoDB",
        format!(
            "{} WRU ({wru_per_event} per event: {}{}) x {}/M + {} RRU ({PROCESSOR_RRU_PER_EVENT} per event) x {}/M + {}-month ({} users x {} KB) x {}",
            quantity(wru),
            writes.join(", "),
            if counter_wru > 0.0 {
                "; 1 per delivery batch"
            } else {
                ""
            },
            price(DYNAMODB_MILLION_WRU),
            quantity(rru),
            price(DYNAMODB_MILLION_RRU),
            gb(stored),
            quantity(e.users),
            PROFILE_BYTES / 1024.0,
            price(DYNAMODB_GB_MONTH)
        ),
        wru / 1e6 * DYNAMODB_MILLION_WRU
            + rru / 1e6 * DYNAMODB_MILLION_RRU
            + stored * DYNAMODB_GB_MONTH,
    )
}

fn sqs(e: &Envelope, queues: f64) -> Line {
    let requests = e.events * queues * SQS_REQUESTS_PER_MESSAGE;
    line(
        "SQS",
        format!(
            "{} messages x {queues} destination(s) x {SQS_REQUESTS_PER_MESSAGE} requests (send, receive, delete; unbatched, an upper bound) = {} requests x {}/M",
            quantity(e.events),
            quantity(requests),
            price(SQS_MILLION_REQUESTS)
        ),
        requests / 1e6 * SQS_MILLION_REQUESTS,
    )
}

fn logs(e: &Envelope, invocations: f64) -> Line {
    let ingested =
        (invocations * LOG_BYTES_PER_INVOCATION + e.events * ACCESS_LOG_BYTES_PER_REQUEST) / 1e9;
    line(
        "CloudWatch Logs",
        format!(
            "{} ({} invocations x {LOG_BYTES_PER_INVOCATION} B + {} access log entries x {ACCESS_LOG_BYTES_PER_REQUEST} B) x {}/GB ingested",
            gb(ingested),
            quantity(invocations),
            quantity(e.events),
            price(LOGS_INGESTED_GB)
        ),
        ingested * LOGS_INGESTED_GB,
    )
}

/// The tracking API's detailed (per-route) metrics, published while its
/// routes see traffic.
fn api_metrics(e: &Envelope, routes: usize) -> Line {
    let routes = routes as f64;
    let metrics = if e.events > 0.0 {
        routes * METRICS_PER_ROUTE
    } else {
        0.0
    };
    line(
        "CloudWatch metrics",
        format!(
            "tracking API detailed metrics: {metrics} ({routes} routes x {METRICS_PER_ROUTE}) x {}/metric-month",
            price(METRIC_MONTH)
        ),
        metrics * METRIC_MONTH,
    )
}

/// KMS requests: each client of an encrypted resource asks for a data key
/// about once per reuse period in which data flows.
fn kms_requests(e: &Envelope, stream: StreamCapacity, resources: &BTreeMap<String, usize>) -> Line {
    let shards = match stream {
        StreamCapacity::Provisioned { shards } => shards,
        StreamCapacity::OnDemand => ON_DEMAND_SHARDS,
    } as f64;
    // The stream's writer and readers per shard, each queue's sender and
    // receiver, each table's one writer, the raw bucket's one writer.
    let clients = shards * (1.0 + STREAM_READERS)
        + 2.0 * count(resources, "AWS::SQS::Queue") as f64
        + count(resources, "AWS::DynamoDB::Table") as f64
        + 1.0;
    let periods = SECONDS_PER_MONTH as f64 / KMS_DATA_KEY_REUSE_SECS;
    // The share of periods with at least one event (Poisson arrivals).
    let busy = 1.0 - (-e.rate * KMS_DATA_KEY_REUSE_SECS).exp();
    let requests = clients * periods * busy;
    line(
        "KMS",
        format!(
            "{} requests ({clients} clients x a data key per {KMS_DATA_KEY_REUSE_SECS} s with traffic) x {}/10k",
            quantity(requests),
            price(KMS_TEN_THOUSAND_REQUESTS)
        ),
        requests / 1e4 * KMS_TEN_THOUSAND_REQUESTS,
    )
}

/// Distinct `secretsmanager:` secrets the destinations name.
fn secrets_manager_secrets(config: &Config) -> usize {
    config
        .destinations
        .iter()
        .flat_map(|d| d.secret.iter().chain(d.headers_secrets()))
        .filter_map(|s| match s {
            SecretRef::SecretsManager(name) => Some(name.as_str()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .len()
}

/// The resources of the main template the config generates, by logical id.
fn main_template(config: &Config) -> serde_json::Map<String, Value> {
    crate::generate::cloudformation::files(config, "")
        .into_iter()
        .find(|(path, _)| path == "cloudformation.json")
        .and_then(|(_, text)| serde_json::from_str::<Value>(&text).ok())
        .and_then(|mut t| match t.get_mut("Resources").map(Value::take) {
            Some(Value::Object(resources)) => Some(resources),
            _ => None,
        })
        .unwrap_or_default()
}

/// How many resources of each type the template declares.
fn resource_counts(resources: &serde_json::Map<String, Value>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for resource in resources.values() {
        if let Some(kind) = resource.get("Type").and_then(Value::as_str) {
            *counts.entry(kind.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// The tracking API's routes in the template.
fn ingest_routes(resources: &serde_json::Map<String, Value>) -> usize {
    let api = serde_json::json!({ "Ref": "IngestApi" });
    resources
        .values()
        .filter(|r| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::ApiGatewayV2::Route")
                && r.pointer("/Properties/ApiId") == Some(&api)
        })
        .count()
}

fn count(resources: &BTreeMap<String, usize>, kind: &str) -> usize {
    resources.get(kind).copied().unwrap_or(0)
}

fn line(component: &str, basis: String, monthly_usd: f64) -> Line {
    Line {
        component: component.to_owned(),
        basis,
        monthly_usd,
    }
}

/// A count for a basis: `12.0M`, `8.6k`, `730`, `2.5`.
fn quantity(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.1}B", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A volume for a basis: `61.4 GB`, `0.012 GB`.
fn gb(x: f64) -> String {
    if x >= 10.0 || x == 0.0 {
        format!("{x:.1} GB")
    } else {
        format!("{x:.3} GB")
    }
}

/// A unit price: `$1.00`, `$0.015`, `$0.0000166667`.
fn price(p: f64) -> String {
    let cents = p * 100.0;
    if (cents - cents.round()).abs() < 1e-9 {
        format!("${p:.2}")
    } else {
        format!("${p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project with one server source and `traffic`, and nothing else.
    fn config(traffic: &str) -> Config {
        let source = format!(
            "project \"acme\" {{\n    region \"us-east-1\"\n    stage \"prod\"\n    traffic {traffic}\n}}\nsource \"backend\" kind=\"server\"\n"
        );
        let checked = crate::check(&source);
        checked.config.expect("the test project checks")
    }

    fn find<'a>(lines: &'a [Line], component: &str) -> &'a Line {
        let found = lines.iter().find(|l| l.component == component);
        found.unwrap_or_else(|| panic!("no {component} line in {lines:#?}"))
    }

    fn assert_usd(lines: &[Line], component: &str, want: f64) {
        let got = find(lines, component).monthly_usd;
        assert!(
            (got - want).abs() < 1e-9,
            "{component}: got {got}, want {want}"
        );
    }

    // 12.96M events a month is 5 events/s on average (peak 50/s): one
    // provisioned shard, one processor batch of 5 events per second.
    const ENVELOPE: &str =
        "events-per-month=12_960_000 mean-event-bytes=1_000 monthly-tracked-users=100_000";

    #[test]
    fn a_hand_computed_envelope() {
        let e = estimate(&config(ENVELOPE)).unwrap();
        assert_eq!(
            (
                e.events_per_month,
                e.mean_event_bytes,
                e.monthly_tracked_users
            ),
            (12_960_000, 1_000, 100_000)
        );
        assert_usd(&e.usage, "API Gateway (HTTP API)", 12.96 * 1.00);
        // 12.96M requests, 25 ms at 512 MB each.
        assert_usd(
            &e.usage,
            "Lambda: ingest",
            12.96 * 0.20 + 12_960_000.0 * 0.025 * 0.5 * 0.000_016_666_7,
        );
        // 2.592M batches of 5 events, 20 + 5 x 2 ms at 1024 MB each.
        assert_usd(
            &e.usage,
            "Lambda: processor",
            2.592 * 0.20 + 2_592_000.0 * 0.030 * 1.0 * 0.000_016_666_7,
        );
        assert_usd(
            &e.idle_floor,
            "Kinesis Data Streams",
            730.0 * (0.015 + 0.02),
        );
        assert_usd(&e.usage, "Kinesis Data Streams", 12.96 * 0.014);
        // 1,001-byte records (the newline) are billed as 5 KB.
        assert_usd(&e.usage, "Firehose", 12_960_000.0 * 5120.0 / 1e9 * 0.029);
        // 12.96 GB raw at 0.2 = 2.592 GB stored; 8,640 five-minute flushes.
        assert_usd(&e.usage, "S3 raw archive", 2.592 * 0.023 + 8.64 * 0.005);
        // 7 WRU (transaction 6, dedupe 1) and 3 RRU per event; 3 KB a user.
        assert_usd(
            &e.usage,
            "DynamoDB",
            12.96 * 7.0 * 0.625 + 12.96 * 3.0 * 0.125 + 100_000.0 * 3072.0 / 1e9 * 0.25,
        );
        assert_usd(&e.idle_floor, "KMS", 1.00);
        assert!(
            e.usage
                .iter()
                .all(|l| l.component != "SQS" && l.component != "Lambda: connector"),
            "no destinations, no queues: {:#?}",
            e.usage
        );
        assert!(
            e.idle_floor
                .iter()
                .all(|l| l.component != "Glue (segments job)")
        );
        assert!(
            e.idle_floor
                .iter()
                .all(|l| l.component != "Secrets Manager")
        );
        assert!(
            find(&e.usage, "API Gateway (HTTP API)")
                .basis
                .starts_with("13.0M requests x $1.00/M"),
            "{:#?}",
            e.usage
        );
        let idle: f64 = e.idle_floor.iter().map(|l| l.monthly_usd).sum();
        let usage: f64 = e.usage.iter().map(|l| l.monthly_usd).sum();
        assert!((e.idle_usd - idle).abs() < 1e-9);
        assert!((e.total_usd - idle - usage).abs() < 1e-9);
        assert!(e.assumptions.iter().any(|a| a.contains("2026")));
    }

    #[test]
    fn alarms_are_the_templates() {
        let config = config(ENVELOPE);
        let files = crate::generate::cloudformation::files(&config, "");
        let template = &files
            .iter()
            .find(|(p, _)| p == "cloudformation.json")
            .unwrap()
            .1;
        let alarms = template.matches("\"AWS::CloudWatch::Alarm\"").count();
        assert!(alarms > 0);
        let e = estimate(&config).unwrap();
        assert_usd(&e.idle_floor, "CloudWatch alarms", alarms as f64 * 0.10);
    }

    #[test]
    fn the_idle_floor_does_not_change_with_traffic() {
        // Both envelopes fit one provisioned shard: the same stack.
        let quiet = estimate(&config(
            "events-per-month=1_000_000 mean-event-bytes=500 monthly-tracked-users=1_000",
        ))
        .unwrap();
        let busy = estimate(&config(ENVELOPE)).unwrap();
        assert_eq!(quiet.idle_floor, busy.idle_floor);
        assert_eq!(quiet.idle_usd, busy.idle_usd);
        assert!(busy.total_usd > quiet.total_usd);
    }

    #[test]
    fn the_total_grows_with_events() {
        let totals: Vec<f64> = [
            0_u64,
            1_000_000,
            10_000_000,
            100_000_000,
            1_000_000_000,
            20_000_000_000,
        ]
        .iter()
        .map(|events| {
            let traffic = format!(
                "events-per-month={events} mean-event-bytes=800 monthly-tracked-users=50_000"
            );
            estimate(&config(&traffic)).unwrap().total_usd
        })
        .collect();
        assert!(totals.windows(2).all(|w| w[0] < w[1]), "totals: {totals:?}");
    }

    #[test]
    fn no_traffic_costs_the_idle_floor() {
        let e = estimate(&config(
            "events-per-month=0 mean-event-bytes=800 monthly-tracked-users=0",
        ))
        .unwrap();
        assert!(
            e.usage.iter().all(|l| l.monthly_usd == 0.0),
            "{:#?}",
            e.usage
        );
        assert_eq!(e.total_usd, e.idle_usd);
        assert!(e.idle_usd > 0.0);
    }

    #[test]
    fn no_project_no_estimate() {
        assert_eq!(estimate(&Config::default()), None);
    }

    #[test]
    fn both_examples_have_an_estimate() {
        for (name, source, secrets) in [
            ("shop", include_str!("../../examples/shop/uniflow.kdl"), 1.0),
            ("saas", include_str!("../../examples/saas/uniflow.kdl"), 0.0),
        ] {
            let checked = crate::check(source);
            let config = checked.config.unwrap_or_else(|| panic!("{name} checks"));
            let e = estimate(&config).unwrap_or_else(|| panic!("{name} has a project"));
            for l in e.usage.iter().chain(&e.idle_floor) {
                assert!(
                    l.monthly_usd.is_finite() && l.monthly_usd >= 0.0,
                    "{name}: {l:?}"
                );
            }
            assert!(
                e.total_usd > e.idle_usd && e.idle_usd > 0.0,
                "{name}: {e:#?}"
            );
            // Both have destinations and segments.
            find(&e.usage, "Lambda: connector");
            find(&e.usage, "SQS");
            find(&e.idle_floor, "Glue (segments job)");
            let secrets_usd = e
                .idle_floor
                .iter()
                .find(|l| l.component == "Secrets Manager")
                .map_or(0.0, |l| l.monthly_usd);
            assert!(
                (secrets_usd - secrets * 0.40).abs() < 1e-9,
                "{name}: {e:#?}"
            );
        }
    }

    #[test]
    fn prices_and_quantities_read_well() {
        assert_eq!(price(1.0), "$1.00");
        assert_eq!(price(0.2), "$0.20");
        assert_eq!(price(0.015), "$0.015");
        assert_eq!(price(0.000_016_666_7), "$0.0000166667");
        assert_eq!(quantity(12_000_000.0), "12.0M");
        assert_eq!(quantity(8_640.0), "8640");
        assert_eq!(quantity(86_400.0), "86.4k");
        assert_eq!(quantity(2.5), "2.5");
    }
}
