//! The window of a replay, `[from, to)`, from times as people write them:
//! RFC 3339, a date (midnight UTC), `now`, or a span before now (`-2h`).

use uniflow_runtime::time::{format_ms, parse_ms};

/// One hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;

/// Receive times from `from_ms` (included) to `to_ms` (excluded), in ms
/// since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first ms in the window.
    pub from_ms: i64,
    /// The first ms after it.
    pub to_ms: i64,
}

impl Window {
    /// The window between `--from` and `--to`, relative times counted back
    /// from `now_ms`; a message naming the flag when a time is not one or
    /// the window is empty.
    pub fn parse(from: &str, to: &str, now_ms: i64) -> Result<Window, String> {
        let from_ms = parse_time(from, now_ms).map_err(|e| format!("--from {e}"))?;
        let to_ms = parse_time(to, now_ms).map_err(|e| format!("--to {e}"))?;
        if from_ms >= to_ms {
            return Err(format!(
                "the window is empty: --from ({}) must be before --to ({})",
                format_ms(from_ms),
                format_ms(to_ms)
            ));
        }
        Ok(Window { from_ms, to_ms })
    }

    /// Whether `ms` is in the window.
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms <= ms && ms < self.to_ms
    }

    /// Whether `[start, end)` overlaps the window.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        start < self.to_ms && self.from_ms < end
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}, {})",
            format_ms(self.from_ms),
            format_ms(self.to_ms)
        )
    }
}

/// One time: `2026-11-25T10:00:00Z` (or with an offset), `2026-11-25`
/// (midnight UTC), `now`, or `-N` with a unit `s`, `m`, `h`, `d` or `w`
/// before `now_ms`. The error completes "`--from` ...".
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let help = "write 2026-11-25T10:00:00Z (RFC 3339), 2026-11-25 (midnight UTC), now, or a span before now such as -30m, -2h or -7d";
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(span) = text.strip_prefix('-') {
        let unit_at = span
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(span.len());
        let (digits, unit) = span.split_at(unit_at);
        let unit_ms: i64 = match unit {
            "s" => 1000,
            "m" => 60_000,
            "h" => HOUR_MS,
            "d" => 24 * HOUR_MS,
            "w" => 7 * 24 * HOUR_MS,
            "" => {
                return Err(format!(
                    "`{text}` has no unit: add s, m, h, d or w (-{digits}h)"
                ));
            }
            _ => return Err(format!("`{text}` is not a time: {help}")),
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a time: {help}"))?;
        return n
            .checked_mul(unit_ms)
            .and_then(|back| now_ms.checked_sub(back))
            .ok_or_else(|| format!("`{text}` is too far back"));
    }
    parse_ms(text).ok_or_else(|| format!("`{text}` is not a time: {help}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn times_people_write() {
        for (text, expect) in [
            ("2026-11-25T10:00:00Z", parse_ms("2026-11-25T10:00:00Z")),
            (
                "2026-11-25T11:00:00+01:00",
                parse_ms("2026-11-25T10:00:00Z"),
            ),
            ("2026-11-25T10:00:00.250Z", Some(1_795_600_800_250)),
            ("2026-11-25", parse_ms("2026-11-25T00:00:00Z")),
            (" now ", Some(NOW)),
            ("NOW", Some(NOW)),
            ("-30s", Some(NOW - 30_000)),
            ("-30m", Some(NOW - 30 * 60_000)),
            ("-2h", Some(NOW - 2 * HOUR_MS)),
            ("-7d", Some(NOW - 7 * 24 * HOUR_MS)),
            ("-1w", Some(NOW - 7 * 24 * HOUR_MS)),
            ("-0m", Some(NOW)),
        ] {
            assert_eq!(parse_time(text, NOW).ok(), expect, "{text}");
        }
        assert_eq!(
            parse_ms("2026-11-25T10:00:00.250Z"),
            Some(1_795_600_800_250)
        );
    }

    #[test]
    fn what_is_not_a_time_says_what_is() {
        for (text, says) in [
            (
                "yesterday",
                "`yesterday` is not a time: write 2026-11-25T10:00:00Z",
            ),
            ("2026-13-01", "`2026-13-01` is not a time"),
            ("2026-11-25T25:00:00Z", "is not a time"),
            ("-2", "`-2` has no unit: add s, m, h, d or w (-2h)"),
            ("-2y", "`-2y` is not a time"),
            ("-h", "`-h` is not a time"),
            ("-2h30m", "`-2h30m` is not a time"),
            ("+2h", "`+2h` is not a time"),
            ("-999999999999999999999w", "is not a time"),
            ("-9999999999999w", "is too far back"),
            ("", "`` is not a time"),
        ] {
            let err = parse_time(text, NOW).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn windows_are_half_open_and_never_empty() {
        let w = Window::parse("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", NOW).unwrap();
        let ten = parse_ms("2026-11-25T10:00:00Z").unwrap();
        assert!(w.contains(ten));
        assert!(w.contains(ten + HOUR_MS - 1));
        assert!(!w.contains(ten + HOUR_MS));
        assert!(!w.contains(ten - 1));
        assert!(w.overlaps(ten - HOUR_MS + 1, ten + 1));
        assert!(!w.overlaps(ten - HOUR_MS, ten));
        assert!(!w.overlaps(ten + HOUR_MS, ten + 2 * HOUR_MS));
        assert_eq!(
            w.to_string(),
            "[2026-11-25T10:00:00.000Z, 2026-11-25T11:00:00.000Z)"
        );

        let err = Window::parse("2026-11-25T11:00:00Z", "2026-11-25T10:00:00Z", NOW).unwrap_err();
        assert_eq!(
            err,
            "the window is empty: --from (2026-11-25T11:00:00.000Z) must be before --to (2026-11-25T10:00:00.000Z)"
        );
        assert!(Window::parse("now", "now", NOW).is_err());
        assert_eq!(
            Window::parse("-2h", "now", NOW).unwrap(),
            Window {
                from_ms: NOW - 2 * HOUR_MS,
                to_ms: NOW
            }
        );
        let err = Window::parse("nope", "now", NOW).unwrap_err();
        assert!(err.starts_with("--from `nope` is not a time"), "{err}");
        let err = Window::parse("now", "-5", NOW).unwrap_err();
        assert!(err.starts_with("--to `-5` has no unit"), "{err}");
    }
}
