//! String formats exactly as Zod 4 defines them, as hand-written matchers
//! (no backtracking, no allocation) and, for generated clients, as the
//! JavaScript regular expressions Zod itself uses.

/// JavaScript's largest safe integer, Zod's bound for `z.int()`.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Zod 4's `z.email()` pattern (JavaScript syntax).
pub const EMAIL_JS: &str = r"^(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$";

/// Zod 4's `z.uuid()` pattern: RFC 9562 versions 1-8, nil and max.
pub const UUID_JS: &str = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$";

/// Zod 4's date source: `YYYY-MM-DD` with each month's days and leap years.
macro_rules! date_source {
    () => {
        r"(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))"
    };
}

/// Zod 4's time source when a zone follows: seconds required, any fraction.
macro_rules! time_source {
    () => {
        r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    };
}

/// Zod 4's `z.iso.date()` pattern.
pub const DATE_JS: &str = concat!("^", date_source!(), "$");

/// Zod 4's `z.iso.datetime()` pattern (UTC `Z` only).
pub const DATETIME_JS: &str = concat!("^", date_source!(), "T(?:", time_source!(), "(?:Z))$");

/// Zod 4's `z.iso.datetime({ offset: true })` pattern (`Z` or `+hh:mm`).
pub const DATETIME_OFFSET_JS: &str = concat!(
    "^",
    date_source!(),
    "T(?:",
    time_source!(),
    r"(?:Z|([+-](?:[01]\d|2[0-3]):[0-5]\d)))$"
);

/// `z.email()`: dot-separated non-empty local labels of `[A-Za-z0-9_'+-]`
/// not ending in `'`, then a domain of `[A-Za-z0-9][A-Za-z0-9-]*` labels and
/// a top-level label of two or more ASCII letters.
pub fn is_email(s: &str) -> bool {
    email_bytes(s.as_bytes())
}

pub(crate) fn email_bytes(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let local_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\'' | b'+' | b'-');
    let local_ok = local
        .split(|&c| c == b'.')
        .all(|label| !label.is_empty() && label.iter().all(local_char))
        && local.last().is_some_and(|&c| c != b'\'');
    if !local_ok {
        return false;
    }
    let labels: Vec<&[u8]> = domain.split(|&c| c == b'.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
        && rest.iter().all(|label| {
            label.first().is_some_and(u8::is_ascii_alphanumeric)
                && label
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// `z.uuid()`.
pub fn is_uuid(s: &str) -> bool {
    uuid_bytes(s.as_bytes())
}

pub(crate) fn uuid_bytes(b: &[u8]) -> bool {
    if b.len() != 36 {
        return false;
    }
    if b == b"00000000-0000-0000-0000-000000000000" || b == b"ffffffff-ffff-ffff-ffff-ffffffffffff"
    {
        return true;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => (b'1'..=b'8').contains(&c),
            19 => matches!(c, b'8' | b'9' | b'a' | b'b' | b'A' | b'B'),
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &c| n * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DD` with the days of each month and Gregorian leap years.
pub(crate) fn date_prefix(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) =
        (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `z.iso.date()`.
pub fn is_date(s: &str) -> bool {
    date_prefix(s.as_bytes())
}

/// `z.iso.datetime()` (`offset: false`) or `z.iso.datetime({ offset: true })`.
pub fn is_datetime(s: &str, offset: bool) -> bool {
    datetime_bytes(s.as_bytes(), offset)
}

pub(crate) fn datetime_bytes(b: &[u8], offset: bool) -> bool {
    if b.len() < 20 || !date_prefix(&b[..10]) || b[10] != b'T' {
        return false;
    }
    let mut rest = &b[11..];
    // hh:mm:ss, seconds required before a zone
    if rest.len() < 8 || rest[2] != b':' || rest[5] != b':' {
        return false;
    }
    match (digits(&rest[..2]), digits(&rest[3..5]), digits(&rest[6..8])) {
        (Some(h), Some(m), Some(sec)) if h <= 23 && m <= 59 && sec <= 59 => {}
        _ => return false,
    }
    rest = &rest[8..];
    // optional .fraction
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    match rest {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] if offset && matches!(sign, b'+' | b'-') => {
            matches!((digits(&[*h1, *h2]), digits(&[*m1, *m2])), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

/// Whitespace as JavaScript's `String.prototype.trim` removes it.
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `z.url()`: the trimmed string parses as a WHATWG URL.
pub fn is_url(s: &str) -> bool {
    if simple_http_url(s.as_bytes()) {
        return true;
    }
    let trimmed = s.trim_matches(is_js_space);
    url::Url::parse(trimmed).is_ok()
}

/// A shortcut for the common case that a WHATWG parser always accepts:
/// `http(s)://` and a plain ASCII domain (letters, digits and `-` in each
/// label, no punycode, a last label that starts with a letter so it is not
/// an IPv4 number), an optional port of at most four digits, then nothing or
/// a path, query or fragment of printable ASCII (which the parser only ever
/// percent-encodes). Anything else takes the full parser.
fn simple_http_url(b: &[u8]) -> bool {
    let rest = match b {
        [b'h', b't', b't', b'p', b's', b':', b'/', b'/', rest @ ..] => rest,
        [b'h', b't', b't', b'p', b':', b'/', b'/', rest @ ..] => rest,
        _ => return false,
    };
    let host_end = rest
        .iter()
        .position(|c| matches!(c, b':' | b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (host, mut tail) = rest.split_at(host_end);
    let labels_ok = !host.is_empty()
        && host.split(|&c| c == b'.').all(|l| {
            !l.is_empty()
                && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && !l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
        })
        && host
            .rsplit(|&c| c == b'.')
            .next()
            .and_then(|last| last.first())
            .is_some_and(u8::is_ascii_alphabetic);
    if !labels_ok {
        return false;
    }
    if let [b':', after @ ..] = tail {
        let digits = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 4 {
            return false;
        }
        tail = &after[digits..];
    }
    match tail.first() {
        None => true,
        Some(b'/' | b'?' | b'#') => tail.iter().all(|&c| (0x21..=0x7e).contains(&c)),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "o'neil_x@ex-ample.org",
            "a-@b.cd",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.co",
            ".a@b.co",
            "a..b@c.co",
            "a.@b.co",
            "a'@b.co",
            "a@b",
            "a@b.c",
            "a@-b.co",
            "a@b..co",
            "a@b.c0",
            "a@@b.co",
            "a b@c.co",
            "é@b.co",
            "a@b.co.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("123e4567-e89b-42d3-a456-426614174000"));
        assert!(is_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(is_uuid("FFFFFFFF-FFFF-8FFF-BFFF-FFFFFFFFFFFF"));
        assert!(!is_uuid("123e4567-e89b-92d3-a456-426614174000"));
        assert!(!is_uuid("123e4567-e89b-42d3-c456-426614174000"));
        assert!(!is_uuid("123e4567e89b42d3a456426614174000"));
    }

    #[test]
    fn dates_and_times() {
        assert!(is_date("2024-02-29"));
        assert!(is_date("2000-02-29"));
        assert!(!is_date("1900-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(!is_date("2024-04-31"));
        assert!(!is_datetime("2024-01-01T00:00Z", false));
        assert!(is_datetime("2024-01-01T00:00:00Z", false));
        assert!(is_datetime("2024-01-01T23:59:59.123456789Z", false));
        assert!(!is_datetime("2024-01-01T00:00:00+02:00", false));
        assert!(is_datetime("2024-01-01T00:00:00+02:00", true));
        assert!(!is_datetime("2024-01-01T24:00:00Z", false));
        assert!(!is_datetime("2024-01-01t00:00:00Z", false));
        assert!(!is_datetime("2024-01-01T00:00:00.Z", false));
        assert!(!is_datetime("2024-01-01", false));
        assert!(!is_datetime("2024-01-01T00:00:00", true));
    }

    #[test]
    fn the_url_shortcut_only_accepts_what_the_parser_accepts() {
        for s in [
            "https://example.com",
            "http://a.b.co:8080/x?y=1#z",
            "https://EXAMPLE.com/%zz",
            "https://a-b.example/p/{x}",
            "http://localhost:3000",
            "https://x.y/",
        ] {
            assert!(simple_http_url(s.as_bytes()), "{s}");
            assert!(url::Url::parse(s).is_ok(), "{s}");
        }
        for s in [
            "https://1.2.3.999",
            "https://xn--zz.com",
            "https://a..b",
            "https://a.b:99999",
            "https://a b.c",
            "https://",
            "ftp://a.b",
            "https://a.b/ c",
        ] {
            assert!(!simple_http_url(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_url("https://example.com"));
        assert!(is_url(" https://example.com "));
        assert!(is_url("mailto:x@y.z"));
        assert!(!is_url("example.com"));
        assert!(!is_url("http://"));
    }

    #[test]
    fn patterns_agree_with_matchers() {
        // The Rust regex crate has no lookaround, so check the parts it can run.
        let date = regex::Regex::new(DATE_JS).unwrap();
        let datetime = regex::Regex::new(DATETIME_JS).unwrap();
        let offset = regex::Regex::new(DATETIME_OFFSET_JS).unwrap();
        let uuid = regex::Regex::new(UUID_JS).unwrap();
        for s in [
            "2024-02-29",
            "1900-02-29",
            "2023-02-28",
            "2024-04-31",
            "0000-02-29",
            "2024-01-01T00:00Z",
            "2024-01-01T00:00:00.5Z",
            "2024-01-01T00:00:00+23:59",
            "2024-01-01T00:60Z",
            "123e4567-e89b-42d3-a456-426614174000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ] {
            assert_eq!(date.is_match(s), is_date(s), "{s}");
            assert_eq!(datetime.is_match(s), is_datetime(s, false), "{s}");
            assert_eq!(offset.is_match(s), is_datetime(s, true), "{s}");
            assert_eq!(uuid.is_match(s), is_uuid(s), "{s}");
        }
    }
}
