//! Sizes derived from the config and its traffic envelope: the stream's
//! capacity mode, API throttling, and each function's settings (written to
//! `build/lambda/<function>.json` and read back by the template, so the two
//! never disagree).
//!
//! The envelope gives a monthly volume; capacity is sized for a peak of
//! [`PEAK_FACTOR`] times the mean rate, the usual daily peak of consumer
//! traffic (evening hours, campaigns) with headroom.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cost::prices::{
    HOURS_PER_MONTH, KINESIS_EXTENDED_RETENTION_SHARD_HOUR,
    KINESIS_ON_DEMAND_EXTENDED_RETENTION_GB_MONTH, KINESIS_ON_DEMAND_INGEST_GB,
    KINESIS_ON_DEMAND_RETRIEVAL_GB, KINESIS_ON_DEMAND_STREAM_HOUR, KINESIS_PUT_MILLION_UNITS,
    KINESIS_PUT_UNIT_BYTES, KINESIS_SHARD_HOUR,
};
use crate::model::{Config, DestinationKind, HeaderValue, SecretRef};

use super::{destination_id, logical};

/// Peak rate over mean rate that capacity is sized for.
pub const PEAK_FACTOR: u64 = 10;
/// Seconds in the 30-day month the envelope counts in.
pub(crate) const SECONDS_PER_MONTH: u64 = 30 * 24 * 3600;
/// One provisioned shard takes 1 MiB/s and 1,000 records/s.
const SHARD_BYTES_PER_SEC: u64 = 1024 * 1024;
const SHARD_RECORDS_PER_SEC: u64 = 1000;
/// Events one processor invocation is expected to handle per second
/// (DynamoDB round trips dominate).
pub(crate) const PROCESSOR_EVENTS_PER_SEC: u64 = 500;
/// Readers of the stream: the processor and Firehose.
pub(crate) const STREAM_READERS: f64 = 2.0;
/// Days the stream keeps records: long enough to replay a week of failures.
pub const STREAM_RETENTION_HOURS: u64 = 7 * 24;
/// Days function logs are kept.
pub const LOG_RETENTION_DAYS: u32 = 30;

/// How the event stream is provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum StreamCapacity {
    /// Pay per GB; scales itself.
    OnDemand,
    /// A fixed number of shards.
    Provisioned {
        /// Shards.
        shards: u64,
    },
}

/// Everything sized from the envelope.
#[derive(Debug, Clone)]
pub struct Sizing {
    /// Events per second at the sized-for peak.
    pub peak_events_per_sec: u64,
    /// The stream's mode.
    pub stream: StreamCapacity,
    /// API Gateway steady-state request rate limit.
    pub api_rate_limit: u64,
    /// API Gateway burst limit.
    pub api_burst_limit: u64,
    /// The ingest function.
    pub ingest: FunctionConfig,
    /// The processor function.
    pub processor: FunctionConfig,
    /// The connector function (one event source per destination queue).
    pub connector: FunctionConfig,
    /// The management API function.
    pub management: FunctionConfig,
    /// Visibility timeout of every destination queue: six times the
    /// connector's timeout, as AWS advises for Lambda consumers.
    pub queue_visibility_secs: u64,
    /// `env:` secrets, by variable name: set on the connector from `NoEcho`
    /// parameters, since they have no store on AWS.
    pub env_secrets: Vec<String>,
}

/// One function's settings, as `build/lambda/<role>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionConfig {
    /// `ingest`, `processor`, `connector` or `management`.
    pub role: &'static str,
    /// The function's name in AWS.
    pub function_name: String,
    /// What it does.
    pub description: String,
    /// Memory in MB (CPU scales with it).
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_secs: u64,
    /// Instruction set of the binary.
    pub architecture: &'static str,
    /// Reserved concurrency, where it protects a downstream system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u64>,
    /// Days its log group keeps logs.
    pub log_retention_days: u32,
    /// Environment variables. `${LogicalId}` and `${AWS::...}` are filled in
    /// by CloudFormation (`Fn::Sub`); everything else is literal.
    pub environment: BTreeMap<String, String>,
    /// What invokes it from a stream or a queue.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_sources: Vec<EventSource>,
}

/// An event source mapping's settings.
#[derive(Debug, Clone, Serialize)]
pub struct EventSource {
    /// The logical id of the mapping in the template.
    pub id: String,
    /// The logical id of the stream or queue it reads.
    pub reads: String,
    /// Records per invocation at most.
    pub batch_size: u32,
    /// Seconds a batch may wait to fill.
    pub batching_window_secs: u64,
    /// Concurrent invocations at most (SQS only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u64>,
    /// Concurrent batches per shard (Kinesis only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelization_factor: Option<u64>,
    /// Retries of a failing batch before it goes to the failure destination
    /// (Kinesis only; SQS retries by the queue's redrive policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_attempts: Option<u32>,
    /// Oldest record retried, in seconds (Kinesis only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_record_age_secs: Option<u64>,
    /// Split a failing batch in two to isolate the bad record (Kinesis only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bisect_on_error: bool,
}

impl Sizing {
    pub fn new(config: &Config, prefix: &str, digest: &str) -> Sizing {
        let traffic = config
            .project
            .as_ref()
            .map(|p| p.traffic)
            .unwrap_or_default();
        let mean = traffic.events_per_month.div_ceil(SECONDS_PER_MONTH);
        let peak_events_per_sec = (mean * PEAK_FACTOR).max(1);
        let peak_bytes = peak_events_per_sec.saturating_mul(traffic.mean_event_bytes);
        let shards = peak_bytes
            .div_ceil(SHARD_BYTES_PER_SEC)
            .max(peak_events_per_sec.div_ceil(SHARD_RECORDS_PER_SEC))
            .max(1);
        let stream = if provisioned_cost(shards, traffic.events_per_month, traffic.mean_event_bytes)
            <= on_demand_cost(traffic.events_per_month, traffic.mean_event_bytes)
        {
            StreamCapacity::Provisioned { shards }
        } else {
            StreamCapacity::OnDemand
        };
        // A request carries one event or a batch; sizing for one event per
        // request bounds the request rate from above, twice for retries.
        let mut api_rate_limit = (peak_events_per_sec * 2).max(100);
        if let StreamCapacity::Provisioned { shards } = stream {
            api_rate_limit = api_rate_limit.min(shards * SHARD_RECORDS_PER_SEC).max(100);
        }
        let bundle = format!("s3://${{ArtifactsBucket}}/bundles/{digest}.json");
        let write_keys_path = config
            .project
            .as_ref()
            .map(super::write_keys_path)
            .unwrap_or_default();
        let common = |extra: &[(&str, &str)]| {
            let mut env: BTreeMap<String, String> = [
                ("RUST_LOG", "info"),
                ("UNIFLOW_BUNDLE", bundle.as_str()),
                ("UNIFLOW_RESOURCE_PREFIX", prefix),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            env.insert("UNIFLOW_REGION".into(), "${AWS::Region}".into());
            env
        };

        let ingest = FunctionConfig {
            role: "ingest",
            function_name: format!("{prefix}-ingest"),
            description: "Segment-compatible tracking API: validates, enriches and writes events to the stream".into(),
            memory_mb: 512,
            timeout_secs: 10,
            architecture: "x86_64",
            // API Gateway throttling protects the stream; reserving here
            // would only take concurrency from the rest of the account.
            reserved_concurrency: None,
            log_retention_days: LOG_RETENTION_DAYS,
            environment: common(&[
                ("UNIFLOW_STREAM", "${EventStream}"),
                ("UNIFLOW_VIOLATIONS_BUCKET", "${ViolationsBucket}"),
                ("UNIFLOW_DEDUPE_TABLE", "${DedupeTable}"),
                ("UNIFLOW_WRITE_KEYS_PATH", write_keys_path.as_str()),
            ]),
            event_sources: Vec::new(),
        };

        let parallelization = match stream {
            StreamCapacity::Provisioned { shards } => peak_events_per_sec
                .div_ceil(shards * PROCESSOR_EVENTS_PER_SEC)
                .clamp(1, 10),
            StreamCapacity::OnDemand => 1,
        };
        let processor = FunctionConfig {
            role: "processor",
            function_name: format!("{prefix}-processor"),
            description:
                "Resolves identity, upserts profiles and fans events out to destination queues"
                    .into(),
            memory_mb: 1024,
            timeout_secs: 60,
            architecture: "x86_64",
            // Bounds the write rate on the profile tables to what the stream
            // was sized for; on-demand streams add shards, so no bound there.
            reserved_concurrency: match stream {
                StreamCapacity::Provisioned { shards } => Some(shards * parallelization),
                StreamCapacity::OnDemand => None,
            },
            log_retention_days: LOG_RETENTION_DAYS,
            environment: common(&[
                ("UNIFLOW_IDENTITIES_TABLE", "${IdentitiesTable}"),
                ("UNIFLOW_PROFILES_TABLE", "${ProfilesTable}"),
                ("UNIFLOW_STATE_TABLE", "${StateTable}"),
                (
                    "UNIFLOW_QUEUE_URL_PREFIX",
                    "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${AWS::AccountId}/",
                ),
            ]),
            event_sources: vec![EventSource {
                id: "ProcessorStreamMapping".into(),
                reads: "EventStream".into(),
                batch_size: 100,
                batching_window_secs: 1,
                max_concurrency: None,
                parallelization_factor: Some(parallelization),
                max_retry_attempts: Some(10),
                max_record_age_secs: Some(24 * 3600),
                bisect_on_error: true,
            }],
        };

        let longest_request = config
            .destinations
            .iter()
            .filter_map(|d| match &d.kind {
                DestinationKind::Webhook(w) => Some(w.timeout_secs),
                _ => None,
            })
            .max()
            .unwrap_or(10);
        let connector_timeout = (longest_request * 3).clamp(60, 900);
        let mut env_secrets = Vec::new();
        let mut sources = Vec::new();
        for d in &config.destinations {
            let per_invocation = u64::from(d.batch.max_events) * 2;
            let max_concurrency = peak_events_per_sec.div_ceil(per_invocation).clamp(2, 20);
            let batch_size = d.batch.max_events;
            let id = destination_id(&d.name.value);
            sources.push(EventSource {
                id: format!("{id}Mapping"),
                reads: format!("{id}Queue"),
                batch_size,
                // SQS mappings need a window of at least 1 s above 10 records.
                batching_window_secs: if batch_size > 10 {
                    d.batch.max_wait_secs.max(1)
                } else {
                    d.batch.max_wait_secs
                },
                max_concurrency: Some(max_concurrency),
                parallelization_factor: None,
                max_retry_attempts: None,
                max_record_age_secs: None,
                bisect_on_error: false,
            });
            let secrets = d.secret.iter().chain(d.headers_secrets());
            for secret in secrets {
                if let SecretRef::Env(var) = secret
                    && !env_secrets.contains(var)
                {
                    env_secrets.push(var.clone());
                }
            }
        }
        env_secrets.sort();
        let mut connector_env = common(&[
            ("UNIFLOW_STATE_TABLE", "${StateTable}"),
            (
                "UNIFLOW_QUEUE_URL_PREFIX",
                "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${AWS::AccountId}/",
            ),
        ]);
        for var in &env_secrets {
            connector_env.insert(var.clone(), format!("${{{}}}", env_secret_parameter(var)));
        }
        let connector = FunctionConfig {
            role: "connector",
            function_name: format!("{prefix}-connector"),
            description: "Delivers queued events to their destination (webhook, S3 export, Lambda)"
                .into(),
            memory_mb: 512,
            timeout_secs: connector_timeout,
            architecture: "x86_64",
            // The sum of the per-destination maxima: what the queues need and
            // never more, so a backlog cannot starve the rest of the account.
            reserved_concurrency: if sources.is_empty() {
                None
            } else {
                Some(sources.iter().filter_map(|s| s.max_concurrency).sum())
            },
            log_retention_days: LOG_RETENTION_DAYS,
            environment: connector_env,
            event_sources: sources,
        };

        let management = FunctionConfig {
            role: "management",
            function_name: format!("{prefix}-management"),
            description: "Management API: profiles, identities and the deployed config".into(),
            memory_mb: 512,
            timeout_secs: 29,
            architecture: "x86_64",
            // Operators' reads must never crowd out the processor's writes.
            reserved_concurrency: Some(10),
            log_retention_days: LOG_RETENTION_DAYS,
            environment: common(&[
                ("UNIFLOW_IDENTITIES_TABLE", "${IdentitiesTable}"),
                ("UNIFLOW_PROFILES_TABLE", "${ProfilesTable}"),
                ("UNIFLOW_SEGMENTS_TABLE", "${SegmentsTable}"),
                ("UNIFLOW_STATE_TABLE", "${StateTable}"),
                // The destinations API reports each queue's and DLQ's depth.
                (
                    "UNIFLOW_QUEUE_URL_PREFIX",
                    "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${AWS::AccountId}/",
                ),
            ]),
            event_sources: Vec::new(),
        };

        Sizing {
            peak_events_per_sec,
            stream,
            api_rate_limit,
            api_burst_limit: api_rate_limit * 2,
            ingest,
            processor,
            connector,
            management,
            queue_visibility_secs: connector_timeout * 6,
            env_secrets,
        }
    }
}

/// The `NoEcho` parameter that carries an `env:` secret.
pub fn env_secret_parameter(var: &str) -> String {
    format!(
        "EnvSecret{}",
        logical(&var.to_ascii_lowercase().replace('_', "-"))
    )
}

impl crate::model::Destination {
    /// The secrets its headers read.
    pub(crate) fn headers_secrets(&self) -> impl Iterator<Item = &SecretRef> {
        let headers = match &self.kind {
            DestinationKind::Webhook(w) => w.headers.as_slice(),
            _ => &[],
        };
        headers.iter().filter_map(|h| match &h.value {
            HeaderValue::Secret(s) => Some(s),
            HeaderValue::Literal(_) => None,
        })
    }
}

/// Days the stream keeps records, which extended retention bills on demand.
const RETAINED_DAYS: f64 = STREAM_RETENTION_HOURS as f64 / 24.0;

/// Monthly list-price cost of a provisioned stream with 7-day retention.
pub(crate) fn provisioned_cost(shards: u64, events: u64, mean_bytes: u64) -> f64 {
    provisioned_idle_cost(shards) + provisioned_usage_cost(events, mean_bytes)
}

/// What a provisioned stream costs with no traffic: its shard-hours, with
/// extended retention.
pub(crate) fn provisioned_idle_cost(shards: u64) -> f64 {
    shards as f64 * HOURS_PER_MONTH * (KINESIS_SHARD_HOUR + KINESIS_EXTENDED_RETENTION_SHARD_HOUR)
}

/// PUT payload units a month of traffic takes: one per 25 KB of each record.
pub(crate) fn provisioned_put_units(events: u64, mean_bytes: u64) -> f64 {
    events as f64 * mean_bytes.div_ceil(KINESIS_PUT_UNIT_BYTES) as f64
}

/// What traffic adds to a provisioned stream: its PUT payload units.
pub(crate) fn provisioned_usage_cost(events: u64, mean_bytes: u64) -> f64 {
    provisioned_put_units(events, mean_bytes) / 1e6 * KINESIS_PUT_MILLION_UNITS
}

/// Monthly list-price cost of an on-demand stream with 7-day retention.
pub(crate) fn on_demand_cost(events: u64, mean_bytes: u64) -> f64 {
    on_demand_idle_cost() + on_demand_usage_cost(events, mean_bytes)
}

/// What an on-demand stream costs with no traffic: its stream-hours.
pub(crate) fn on_demand_idle_cost() -> f64 {
    HOURS_PER_MONTH * KINESIS_ON_DEMAND_STREAM_HOUR
}

/// What traffic moves through an on-demand stream: GB written, read (once
/// by each reader) and kept for the retention period, as `(written GB, read
/// GB, retained GB-month)`, a GB being 10^9 bytes.
pub(crate) fn on_demand_volumes(events: u64, mean_bytes: u64) -> (f64, f64, f64) {
    let gb = events as f64 * mean_bytes as f64 / 1e9;
    (gb, gb * STREAM_READERS, gb * RETAINED_DAYS / 30.0)
}

/// What traffic adds to an on-demand stream, priced.
pub(crate) fn on_demand_usage_cost(events: u64, mean_bytes: u64) -> f64 {
    let (written, read, retained) = on_demand_volumes(events, mean_bytes);
    written * KINESIS_ON_DEMAND_INGEST_GB
        + read * KINESIS_ON_DEMAND_RETRIEVAL_GB
        + retained * KINESIS_ON_DEMAND_EXTENDED_RETENTION_GB_MONTH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_steady_traffic_is_cheaper_on_one_shard() {
        // 40M events of 1.2 KB a month: ~$26 provisioned against ~$38 on demand.
        assert!(provisioned_cost(1, 40_000_000, 1_200) < on_demand_cost(40_000_000, 1_200));
    }

    #[test]
    fn many_small_events_go_on_demand() {
        // 20B events of 100 bytes: shards are bound by the record rate (78 at
        // peak), while on demand pays for 2 TB.
        let events = 20_000_000_000;
        let peak = events / SECONDS_PER_MONTH * PEAK_FACTOR;
        let shards = peak.div_ceil(SHARD_RECORDS_PER_SEC);
        assert!(provisioned_cost(shards, events, 100) > on_demand_cost(events, 100));
    }
}
