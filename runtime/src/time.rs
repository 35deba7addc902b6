//! ISO 8601 timestamps as Segment messages carry them, to and from
//! milliseconds since the Unix epoch (UTC). Only what messages need: no
//! dependency, no time zones beyond fixed offsets.

/// Formats epoch milliseconds as `2026-11-25T20:01:55.123Z`.
pub fn format_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_ms(ms, &mut out);
    out
}

/// Appends epoch milliseconds as `2026-11-25T20:01:55.123Z` (no allocation
/// beyond `out`'s growth; ingest formats two per event).
pub fn write_ms(ms: i64, out: &mut String) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let fields = [
        (y.clamp(0, 9999), 4, '-'),
        (i64::from(m), 2, '-'),
        (i64::from(d), 2, 'T'),
        (rem / 3_600_000, 2, ':'),
        (rem / 60_000 % 60, 2, ':'),
        (rem / 1000 % 60, 2, '.'),
        (rem % 1000, 3, 'Z'),
    ];
    for (value, width, sep) in fields {
        let mut digits = [b'0'; 4];
        let mut v = value;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for &c in &digits[..width] {
            out.push(char::from(c));
        }
        out.push(sep);
    }
}

/// The `(year, month, day, hour)` of epoch milliseconds, in UTC.
pub fn utc_hour(ms: i64) -> (i64, u32, u32, u32) {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    (y, m, d, (ms.rem_euclid(86_400_000) / 3_600_000) as u32)
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff...]]` with `Z`, `±HH:MM`,
/// `±HHMM` or no offset (UTC), `T` or a space between date and time.
pub fn parse_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (h, mi) = (num(11, 2)?, num(14, 2)?);
    if h > 23 || mi > 59 {
        return None;
    }
    ms += (h * 60 + mi) * 60_000;
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        let s = num(i + 1, 2)?;
        if s > 60 {
            return None;
        }
        ms += s.min(59) * 1000;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            let mut frac = 0i64;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                if i - start < 3 {
                    frac = frac * 10 + i64::from(c - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..3 {
                frac *= 10;
            }
            ms += frac;
        }
    }
    match b.get(i) {
        None => Some(ms),
        Some(b'Z' | b'z') if i + 1 == b.len() => Some(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(i + 1, 2)?;
            let om = match b.get(i + 3) {
                Some(b':') if b.len() == i + 6 => num(i + 4, 2)?,
                Some(_) if b.len() == i + 5 => num(i + 3, 2)?,
                None => 0,
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = (oh * 60 + om) * 60_000;
            Some(if sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        _ => None,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let ms = parse_ms("2026-11-25T20:01:55.123Z").unwrap();
        assert_eq!(format_ms(ms), "2026-11-25T20:01:55.123Z");
        assert_eq!(parse_ms("2026-11-25T21:01:55.123+01:00"), Some(ms));
        assert_eq!(parse_ms("2026-11-25T19:01:55.123-0100"), Some(ms));
        assert_eq!(parse_ms("2026-11-25 20:01:55.123456Z"), Some(ms));
        assert_eq!(parse_ms("1970-01-01"), Some(0));
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_ms("2024-02-29T00:00:00Z").map(format_ms).unwrap(),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(utc_hour(ms), (2026, 11, 25, 20));
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2023-02-29",
            "2026-11-25T25:00:00Z",
            "2026-11-25T20:01:55.Z",
            "2026-11-25T20:01:55Zjunk",
            "2026-11-25T20:01",
        ] {
            if bad == "2026-11-25T20:01" {
                assert!(parse_ms(bad).is_some());
                continue;
            }
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
