//! Per-source rate limiting: a token bucket of requests per second.

use std::collections::HashMap;
use std::sync::Mutex;

/// Requests per second per source, with a burst.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

impl RateLimit {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token, or says in how many seconds to retry.
    pub fn take(&self, source: &str, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets
            .entry(source.to_owned())
            .or_insert((self.burst, now_ms));
        let elapsed = (now_ms - *last).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn refills_at_the_rate() {
        let r = RateLimit::new(2, 2);
        assert!(r.take("s", 0).is_ok());
        assert!(r.take("s", 0).is_ok());
        assert_eq!(r.take("s", 0), Err(1));
        assert!(r.take("other", 0).is_ok());
        assert!(r.take("s", 500).is_ok());
        assert!(r.take("s", 500).is_err());
    }
}
