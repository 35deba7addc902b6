//! The s3-export connector: each batch written as one object, GZIP NDJSON
//! or Parquet, under a key derived from the batch so that sending the same
//! batch again overwrites the same object. `README.md` beside this file
//! documents the layout and the Parquet schema.

mod encode;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use uniflow_schemas::bundle::{ConnectorSettings, DestinationInfo};

use super::{ConnectorError, ObjectStore, batch_digest};
use crate::delivery::{Connector, Delivering, Outcome, Outgoing};

pub use encode::PARQUET_SCHEMA;

/// How objects are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One payload per line, GZIP-compressed (`.ndjson.gz`).
    NdjsonGz,
    /// One row per payload in [`PARQUET_SCHEMA`], Snappy-compressed
    /// (`.parquet`).
    Parquet,
}

impl Format {
    /// The file name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::NdjsonGz => "ndjson.gz",
            Format::Parquet => "parquet",
        }
    }

    /// The object's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::NdjsonGz => "application/gzip",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// A destination's bucket, prefix and format.
pub struct S3ExportConnector {
    bucket: String,
    prefix: String,
    format: Format,
    objects: Arc<dyn ObjectStore>,
}

impl fmt::Debug for S3ExportConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3ExportConnector")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The s3-export connector of destination `name`, writing through
/// `objects`.
pub fn connector(
    name: &str,
    destination: &DestinationInfo,
    objects: Arc<dyn ObjectStore>,
) -> Result<S3ExportConnector, ConnectorError> {
    let ConnectorSettings::S3Export {
        bucket,
        prefix,
        format,
    } = &destination.connector
    else {
        return Err(ConnectorError::settings(
            name,
            "the s3-export connector needs s3-export settings",
        ));
    };
    let format = match format.as_str() {
        "ndjson" => Format::NdjsonGz,
        "parquet" => Format::Parquet,
        other => {
            return Err(ConnectorError::settings(
                name,
                format!("`{other}` is not an export format: write `ndjson` or `parquet`"),
            ));
        }
    };
    if bucket.is_empty() {
        return Err(ConnectorError::settings(name, "the bucket name is empty"));
    }
    if !(prefix.is_empty() || prefix.ends_with('/')) || prefix.starts_with('/') {
        return Err(ConnectorError::settings(
            name,
            format!("the prefix `{prefix}` must be empty or end with `/`, and not start with one"),
        ));
    }
    Ok(S3ExportConnector {
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        format,
        objects,
    })
}

impl S3ExportConnector {
    /// The key of the object holding `payloads`:
    /// `<prefix>dt=YYYY-MM-DD/hour=HH/<digest of the ids>.<extension>`,
    /// dated by the first payload's `receivedAt` (now when it has none).
    pub fn key(&self, payloads: &[&Outgoing]) -> String {
        let received = payloads
            .first()
            .and_then(|o| received_at(&o.payload))
            .unwrap_or_else(now_ms);
        let (y, m, d, h) = crate::time::utc_hour(received);
        format!(
            "{}dt={y:04}-{m:02}-{d:02}/hour={h:02}/{}.{}",
            self.prefix,
            batch_digest(payloads.iter().map(|o| o.id.as_str())),
            self.format.extension()
        )
    }

    async fn write(&self, payloads: &[&Outgoing]) -> Outcome {
        let encoded = match self.format {
            Format::NdjsonGz => encode::ndjson_gz(payloads),
            Format::Parquet => encode::parquet(payloads),
        };
        let body = match encoded {
            Ok(body) => body,
            Err(reason) => return Outcome::Failed { reason },
        };
        let key = self.key(payloads);
        let put = self
            .objects
            .put(&self.bucket, &key, body.into(), self.format.content_type())
            .await;
        match put {
            Ok(()) => Outcome::Delivered,
            Err(e) => {
                let reason = format!("cannot write s3://{}/{key}: {}", self.bucket, e.message);
                if e.retryable {
                    Outcome::Retry {
                        reason,
                        after: None,
                    }
                } else {
                    Outcome::Failed { reason }
                }
            }
        }
    }
}

impl Connector for S3ExportConnector {
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a> {
        Box::pin(async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let sendable: Vec<&Outgoing> = batch.iter().collect();
            vec![self.write(&sendable).await; batch.len()]
        })
    }
}

/// The payload's top-level `receivedAt`, in ms since the epoch.
fn received_at(payload: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Received<'a> {
        #[serde(borrow)]
        received_at: Option<std::borrow::Cow<'a, str>>,
    }
    let r: Received<'_> = serde_json::from_slice(payload).ok()?;
    crate::time::parse_ms(&r.received_at?)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
