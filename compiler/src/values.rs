//! Parsers and validators for the value syntaxes the language uses inside
//! strings: durations, AWS regions, URLs and origins, resource names, paths.

/// Every AWS region a project may deploy to.
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Parses `30s`, `15m`, `24h`, `7d`, `2w` or a sequence like `1h30m` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    parse(text, false).map(|ms| ms / 1000)
}

/// Parses a duration that may also use `ms` (`500ms`, `1s500ms`) into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    parse(text, true)
}

/// A duration in milliseconds; `ms` is a unit only when `millis` allows it.
fn parse(text: &str, millis: bool) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let units = if millis {
        "ms, s, m, h, d or w"
    } else {
        "s, m, h, d or w"
    };
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale: u64 = match unit {
            "ms" if millis => 1,
            "ms" => return Err("milliseconds are not allowed here; use whole seconds".to_owned()),
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err("the number has no unit".to_owned()),
            u if u.trim() != u || u.contains(' ') => {
                return Err("write the number and its unit together, without spaces".to_owned());
            }
            other => return Err(format!("`{other}` is not a unit (use {units})")),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "it is too long".to_owned())?;
    }
    Ok(total)
}

/// Formats milliseconds the way a user would write them (`1500` -> `1500ms`).
pub fn format_duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format_duration(ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Formats seconds the way a user would write them (`86400` -> `1d`).
pub fn format_duration(secs: u64) -> String {
    for (unit, scale) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

/// Whether `name` is a slug usable in AWS resource names: lowercase ASCII
/// letters, digits and `-`, starting with a letter, at most `max` characters.
pub fn is_slug(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= max
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A slug suggestion for a name: `Big Spenders` -> `big-spenders`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "x-");
    }
    out
}

/// Checks an absolute `https` (or `http`) URL.
pub fn check_url(text: &str, allow_http: bool) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        other => return Err(format!("the scheme is `{other}`, expected `https`")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_owned());
    }
    Ok(())
}

/// Checks a CORS origin: `scheme://host[:port]` with nothing after it.
pub fn check_origin(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is `{}`, expected `https` or `http`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_owned());
    }
    if text.contains('*') {
        return Err(
            "wildcards are not supported; list each origin, or use \"*\" alone for any origin"
                .to_owned(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an origin has no user name or password".to_owned());
    }
    if text.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "browsers send origins in lowercase, so it would never match; write {:?}",
            text.to_ascii_lowercase()
        ));
    }
    let bare = text.trim_end_matches('/');
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || bare.len() + 1 < text.len()
    {
        return Err("an origin has no path, query or fragment".to_owned());
    }
    Ok(())
}

/// The top-level fields of a Segment message an identifier can be read from.
pub const PATH_ROOTS: &[&str] = &[
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "traits",
    "context",
    "properties",
];

/// Checks a dotted field path like `traits.email` or `context.device.id`.
pub fn check_path(path: &str) -> Result<(), String> {
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    if !PATH_ROOTS.contains(&root) {
        return Err(format!("it starts with `{root}`"));
    }
    let rest: Vec<&str> = parts.collect();
    let needs_key = matches!(root, "traits" | "context" | "properties");
    if needs_key && rest.is_empty() {
        return Err(format!(
            "`{root}` is an object; name a field in it, like `{root}.email`"
        ));
    }
    if !needs_key && !rest.is_empty() {
        return Err(format!("`{root}` is a string and has no fields"));
    }
    if rest.iter().any(|p| p.is_empty()) {
        return Err("it has an empty segment".to_owned());
    }
    Ok(())
}

/// The top-level string fields of a Segment message a transform or a
/// template may name.
pub const EVENT_FIELDS: &[&str] = &[
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "event",
    "type",
    "name",
    "category",
    "messageId",
    "timestamp",
    "sentAt",
    "receivedAt",
    "originalTimestamp",
];

/// The top-level objects of a Segment message.
pub const EVENT_OBJECTS: &[&str] = &["properties", "traits", "context"];

/// Checks the path of a transform: a field of `properties`, `traits` or
/// `context` (`properties.revenue`, `context.device.id`), or a top-level
/// field (`userId`); a whole object too when `whole_object` allows it.
pub fn check_event_path(path: &str, whole_object: bool) -> Result<(), String> {
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if EVENT_OBJECTS.contains(&root) {
        if rest.is_empty() && !whole_object {
            return Err(format!(
                "`{root}` is an object; name a field in it, like `{root}.email`"
            ));
        }
    } else if EVENT_FIELDS.contains(&root) {
        if !rest.is_empty() {
            return Err(format!("`{root}` is a string and has no fields"));
        }
    } else {
        return Err(format!("`{root}` is not a field of an event"));
    }
    if rest.iter().any(|p| p.is_empty()) {
        return Err("it has an empty segment".to_owned());
    }
    Ok(())
}

/// Splits a whitespace-separated list (`values="USD EUR GBP"`).
pub fn split_list(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 days").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999w").is_err());
        assert_eq!(format_duration(86_400), "1d");
        assert_eq!(format_duration(5400), "90m");
        assert_eq!(format_duration(7), "7s");
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1s500ms"), Ok(1500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert!(parse_duration("500ms").is_err());
        assert!(parse_duration_ms("500 ms").is_err());
        assert!(parse_duration_ms("5mss").is_err());
        assert_eq!(format_duration_ms(1500), "1500ms");
        assert_eq!(format_duration_ms(30_000), "30s");
    }

    #[test]
    fn slugs() {
        assert!(is_slug("big-spenders", 40));
        assert!(!is_slug("Big", 40));
        assert!(!is_slug("1x", 40));
        assert!(!is_slug("a--b", 40));
        assert!(!is_slug("a-", 40));
        assert_eq!(slugify("Big Spenders!"), "big-spenders");
        assert_eq!(slugify("30 day"), "x-30-day");
    }

    #[test]
    fn urls_and_origins() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_url("http://hooks.example.com/x", false).is_err());
        assert!(check_url("http://localhost:8080/x", true).is_ok());
        assert!(check_url("hooks.example.com", false).is_err());
        assert!(check_origin("https://shop.example.com").is_ok());
        assert!(check_origin("http://localhost:3000").is_ok());
        assert!(check_origin("https://shop.example.com/").is_ok());
        assert!(check_origin("https://shop.example.com/cart").is_err());
        assert!(check_origin("shop.example.com").is_err());
        assert!(check_origin("ftp://shop.example.com").is_err());
        assert!(check_origin("https://*.example.com").is_err());
        assert!(check_origin("https://u:p@example.com").is_err());
        assert!(check_origin("HTTPS://A.EXAMPLE.COM").is_err());
        assert!(check_origin("*").is_ok());
    }

    #[test]
    fn paths() {
        assert!(check_path("userId").is_ok());
        assert!(check_path("traits.email").is_ok());
        assert!(check_path("context.device.id").is_ok());
        assert!(check_path("traits").is_err());
        assert!(check_path("trait.email").is_err());
        assert!(check_path("userId.x").is_err());
        assert!(check_path("context..id").is_err());
        assert!(check_event_path("properties.revenue", false).is_ok());
        assert!(check_event_path("messageId", false).is_ok());
        assert!(check_event_path("context", true).is_ok());
        assert!(check_event_path("context", false).is_err());
        assert!(check_event_path("props.revenue", false).is_err());
        assert!(check_event_path("userId.x", false).is_err());
        assert!(check_event_path("traits..email", false).is_err());
    }
}
