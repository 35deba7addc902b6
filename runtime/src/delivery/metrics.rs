//! What delivery reports per destination, the same on both backends:
//! counters, queue depths and delivery latency from a fixed-bucket
//! histogram that backends can add up without coordination.
//!
//! Latency is measured from when ingest received the event to when the
//! destination accepted it, so it includes time spent queued and retrying.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The histogram's bucket upper bounds in milliseconds (inclusive), a
/// 1-2-5 log scale from 1 ms to one hour. One more bucket holds what is
/// above the last bound.
pub const BOUNDS_MS: [u64; 21] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000, 1_000_000, 2_000_000, 3_600_000,
];

/// How many buckets a [`LatencyHistogram`] has: one per bound, plus the
/// overflow bucket.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Latencies counted in fixed buckets ([`BOUNDS_MS`]). Two histograms merge
/// by adding their counts, so each backend may keep one per invocation,
/// hour or process and add them up when asked.
///
/// Serialised as the list of its [`BUCKETS`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<u64>", into = "Vec<u64>")]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
}

/// A list of counts that is not a histogram's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a latency histogram has {BUCKETS} counts, not {0}")]
pub struct HistogramError(pub usize);

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// The histogram with these counts, one per bucket in [`BOUNDS_MS`]
    /// order, then the overflow bucket.
    pub fn from_counts(counts: &[u64]) -> Result<Self, HistogramError> {
        let counts = counts
            .try_into()
            .map_err(|_| HistogramError(counts.len()))?;
        Ok(LatencyHistogram { counts })
    }

    /// The bucket a latency falls in: the first whose bound is at least
    /// `ms` (a negative latency, from clock skew, counts as 0), or the
    /// overflow bucket.
    pub fn bucket(ms: i64) -> usize {
        let ms = u64::try_from(ms).unwrap_or(0);
        BOUNDS_MS.partition_point(|&bound| bound < ms)
    }

    /// Counts one latency.
    pub fn record(&mut self, ms: i64) {
        let slot = &mut self.counts[Self::bucket(ms)];
        *slot = slot.saturating_add(1);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// The counts, one per bucket in [`BOUNDS_MS`] order, then the overflow.
    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// How many latencies were counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// The `q`-quantile (`q` in `[0, 1]`, clamped; NaN counts as 0) as the
    /// upper bound of the bucket it falls in, so the true value is at most
    /// this. A quantile in the overflow bucket is reported as the last
    /// bound (one hour): the true value is above it. `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // The rank of the quantile's value, 1-based: at least the first.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                return Some(BOUNDS_MS[i.min(BOUNDS_MS.len() - 1)]);
            }
        }
        BOUNDS_MS.last().copied()
    }
}

impl TryFrom<Vec<u64>> for LatencyHistogram {
    type Error = HistogramError;

    fn try_from(counts: Vec<u64>) -> Result<Self, Self::Error> {
        Self::from_counts(&counts)
    }
}

impl From<LatencyHistogram> for Vec<u64> {
    fn from(h: LatencyHistogram) -> Self {
        h.counts.to_vec()
    }
}

/// What happened to one destination's messages: the counters a backend
/// adds to as it delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryCounts {
    /// Messages the destination accepted.
    pub delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Messages sent to the dead-letter queue (permanent failures and
    /// exhausted retries).
    pub dead_lettered: u64,
    /// Time from ingest to delivery of the delivered messages.
    pub latency: LatencyHistogram,
}

impl DeliveryCounts {
    /// Adds `other` to these.
    pub fn merge(&mut self, other: &DeliveryCounts) {
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.retried = self.retried.saturating_add(other.retried);
        self.dead_lettered = self.dead_lettered.saturating_add(other.dead_lettered);
        self.latency.merge(&other.latency);
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.delivered == 0
            && self.retried == 0
            && self.dead_lettered == 0
            && self.latency.is_empty()
    }
}

/// Delivery latency percentiles in milliseconds, each the upper bound of
/// the histogram bucket it falls in ([`LatencyHistogram::percentile`]);
/// absent before the first delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyPercentiles {
    /// The median.
    pub p50: Option<u64>,
    /// The 90th percentile.
    pub p90: Option<u64>,
    /// The 99th percentile.
    pub p99: Option<u64>,
}

impl LatencyPercentiles {
    /// The percentiles of a histogram.
    pub fn of(histogram: &LatencyHistogram) -> Self {
        LatencyPercentiles {
            p50: histogram.percentile(0.50),
            p90: histogram.percentile(0.90),
            p99: histogram.percentile(0.99),
        }
    }
}

/// One destination's delivery, as `uniflow` and the management API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryMetrics {
    /// Messages the destination accepted.
    pub delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// Messages waiting in the queue, in flight and waiting for a retry
    /// included.
    pub queued: u64,
    /// Messages in the dead-letter queue.
    pub dlq_depth: u64,
    /// Time from ingest to delivery.
    pub latency_ms: LatencyPercentiles,
}

impl DeliveryMetrics {
    /// The metrics from a destination's counters and its queues' depths.
    pub fn new(counts: &DeliveryCounts, queued: u64, dlq_depth: u64) -> Self {
        DeliveryMetrics {
            delivered: counts.delivered,
            retried: counts.retried,
            dead_lettered: counts.dead_lettered,
            queued,
            dlq_depth,
            latency_ms: LatencyPercentiles::of(&counts.latency),
        }
    }
}

impl fmt::Display for DeliveryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} delivered, {} retried, {} dead-lettered, {} queued, {} in the dead-letter queue",
            self.delivered, self.retried, self.dead_lettered, self.queued, self.dlq_depth
        )?;
        if let LatencyPercentiles {
            p50: Some(p50),
            p90: Some(p90),
            p99: Some(p99),
        } = self.latency_ms
        {
            write!(
                f,
                "; latency p50 ≤ {p50} ms, p90 ≤ {p90} ms, p99 ≤ {p99} ms"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(latencies: &[i64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for &ms in latencies {
            h.record(ms);
        }
        h
    }

    #[test]
    fn latencies_fall_in_the_first_bucket_whose_bound_holds_them() {
        for (ms, bucket) in [
            (-5, 0),
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (5, 2),
            (6, 3),
            (999, 9),
            (1_000, 9),
            (1_001, 10),
            (3_600_000, 20),
            (3_600_001, 21),
            (i64::MAX, 21),
        ] {
            assert_eq!(LatencyHistogram::bucket(ms), bucket, "{ms} ms");
        }
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        // 90 fast deliveries, 9 slower, 1 very slow.
        let mut latencies = vec![40; 90];
        latencies.extend([1_500; 9]);
        latencies.push(4_000_000);
        let h = histogram(&latencies);
        assert_eq!(h.total(), 100);
        assert_eq!(h.percentile(0.5), Some(50));
        assert_eq!(h.percentile(0.9), Some(50));
        assert_eq!(h.percentile(0.91), Some(2_000));
        assert_eq!(h.percentile(0.99), Some(2_000));
        // The overflow bucket reports the last bound.
        assert_eq!(h.percentile(1.0), Some(3_600_000));
        assert_eq!(h.percentile(0.0), Some(50));
        assert_eq!(h.percentile(f64::NAN), Some(50));
        assert_eq!(h.percentile(7.0), Some(3_600_000));
        assert_eq!(LatencyHistogram::new().percentile(0.5), None);
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = histogram(&[1, 10, 10]);
        let b = histogram(&[10, 5_000]);
        a.merge(&b);
        assert_eq!(a, histogram(&[1, 10, 10, 10, 5_000]));
        assert_eq!(a.counts()[3], 3);
        assert_eq!(a.percentile(0.99), Some(5_000));
    }

    #[test]
    fn a_histogram_round_trips_as_its_counts_and_refuses_a_wrong_length() {
        let h = histogram(&[3, 3, 700]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json, "[0,0,2,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0]",
            "{json}"
        );
        assert_eq!(serde_json::from_str::<LatencyHistogram>(&json).unwrap(), h);
        let err = serde_json::from_str::<LatencyHistogram>("[1,2,3]").unwrap_err();
        assert!(err.to_string().contains("22 counts, not 3"), "{err}");
        assert_eq!(
            LatencyHistogram::from_counts(&[0; 5]),
            Err(HistogramError(5))
        );
    }

    #[test]
    fn metrics_summarise_counts_and_refuse_unknown_fields() {
        let mut counts = DeliveryCounts {
            delivered: 3,
            retried: 1,
            dead_lettered: 0,
            latency: histogram(&[40, 40, 900]),
        };
        counts.merge(&DeliveryCounts {
            dead_lettered: 2,
            ..DeliveryCounts::default()
        });
        assert!(!counts.is_empty());
        assert!(DeliveryCounts::default().is_empty());
        let m = DeliveryMetrics::new(&counts, 7, 2);
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::json!({
                "delivered": 3, "retried": 1, "deadLettered": 2, "queued": 7, "dlqDepth": 2,
                "latencyMs": {"p50": 50, "p90": 1000, "p99": 1000},
            })
        );
        assert_eq!(
            m.to_string(),
            "3 delivered, 1 retried, 2 dead-lettered, 7 queued, 2 in the dead-letter queue; \
             latency p50 ≤ 50 ms, p90 ≤ 1000 ms, p99 ≤ 1000 ms"
        );
        let mut json = serde_json::to_value(m).unwrap();
        json["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<DeliveryMetrics>(json).is_err());
    }
}
