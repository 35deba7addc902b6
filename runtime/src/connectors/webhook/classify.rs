//! What a webhook's answer (or the lack of one) means for the batch.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header};

use crate::delivery::Outcome;

/// How much of a response body a reason quotes.
pub(super) const QUOTED_BODY: usize = 512;

/// The outcome of an answered request: 2xx delivered; 408, 429 and 5xx
/// retried (after `Retry-After` when the receiver sent one); anything else
/// failed. The reason is `HTTP <status>: <start of the body>`.
pub(super) fn answered(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Outcome {
    if status.is_success() {
        return Outcome::Delivered;
    }
    let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]);
    let reason = format!("HTTP {}: {}", status.as_u16(), quoted.trim());
    let retryable = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    if retryable {
        let after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        Outcome::Retry { reason, after }
    } else {
        Outcome::Failed { reason }
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP-date (a date in the
/// past means now). Anything else is ignored.
pub(super) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(header::RETRY_AFTER, v.parse().unwrap());
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        answered(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
            now,
        )
    }

    #[test]
    fn success_statuses_deliver() {
        assert_eq!(check(200, None, ""), Outcome::Delivered);
        assert_eq!(check(204, None, ""), Outcome::Delivered);
    }

    #[test]
    fn throttling_and_server_errors_retry() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(check(status, None, "busy"), Outcome::Retry { reason, after: None } if reason == format!("HTTP {status}: busy")),
                "{status}"
            );
        }
    }

    #[test]
    fn other_statuses_fail_with_the_start_of_the_body() {
        let long = "x".repeat(2000);
        let Outcome::Failed { reason } = check(400, None, &long) else {
            panic!("400 must fail");
        };
        assert_eq!(reason, format!("HTTP 400: {}", "x".repeat(QUOTED_BODY)));
        assert!(matches!(check(301, None, ""), Outcome::Failed { .. }));
        assert!(matches!(check(404, None, ""), Outcome::Failed { .. }));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let after = |v| match check(429, Some(v), "") {
            Outcome::Retry { after, .. } => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(after("120"), Some(Duration::from_secs(120)));
        // 2015-10-21T07:28:00Z is 1_445_412_480; the date is 90 s later.
        assert_eq!(
            after("Wed, 21 Oct 2015 07:29:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(after("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(after("soon"), None);
    }
}
