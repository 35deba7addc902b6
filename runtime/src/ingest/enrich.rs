//! Enrichment: the message as sent, rewritten at its top level only (nested
//! values are copied byte for byte) with what ingest adds the way Segment
//! does: `receivedAt`, `sentAt`, `originalTimestamp`, a `timestamp`
//! corrected for the client's clock skew, `context.ip`, `sourceId`, a
//! `messageId` when absent, and `type` from the endpoint. The write key is
//! removed: it is never stored with an event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use uniflow_schemas::validate::scan::object_members;

use crate::time;

/// A top-level key, borrowed from the body unless it has escapes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a>(Cow<'a, str>);

/// A value: the sender's bytes, or one ingest wrote.
#[derive(Debug)]
enum Val<'a> {
    Raw(&'a str),
    Owned(String),
}

impl Val<'_> {
    fn json(&self) -> &str {
        match self {
            Val::Raw(r) => r,
            Val::Owned(s) => s,
        }
    }

    /// The value when it is a JSON string without escapes.
    fn plain_str(&self) -> Option<&str> {
        let s = self.json();
        let inner = s.strip_prefix('"')?.strip_suffix('"')?;
        (!inner.contains('\\')).then_some(inner)
    }
}

/// What the request tells about every message in it.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    /// The call type of a single-call endpoint (`None` for a batch).
    pub call: Option<&'a str>,
    /// The source's name.
    pub source: &'a str,
    /// When ingest received the request.
    pub received_at_ms: i64,
    /// The batch's `sentAt` (a message's own wins).
    pub batch_sent_at: Option<&'a str>,
    /// The client's address, for `context.ip`.
    pub ip: Option<&'a str>,
}

/// One message, enriched.
#[derive(Debug)]
pub struct Enriched {
    /// The rewritten message, compact JSON.
    pub json: Vec<u8>,
    /// Its `messageId` (sent or generated).
    pub message_id: String,
    /// See [`crate::record::Record::partition_key`].
    pub partition_key: String,
}

/// Why a message could not be enriched (it is then rejected).
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// Not a JSON object.
    #[error("a message must be a JSON object")]
    NotAnObject,
}

/// Enriches one message given as raw JSON.
pub fn enrich(text: &str, facts: &RequestFacts<'_>) -> Result<Enriched, EnrichError> {
    if !text.starts_with('{') {
        return Err(EnrichError::NotAnObject);
    }
    let members = object_members(text.as_bytes()).map_err(|_| EnrichError::NotAnObject)?;
    let mut map: BTreeMap<Key<'_>, Val<'_>> = BTreeMap::new();
    for m in &members {
        let key = match m.key_text(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(&text[m.key.clone()]),
            Cow::Owned(k) => Cow::Owned(k),
        };
        // A repeated key: the last one counts, as in JSON.parse.
        map.insert(Key(key), Val::Raw(&text[m.value.clone()]));
    }
    let key = |s: &'static str| Key(Cow::Borrowed(s));

    map.remove(&key("writeKey"));
    // Only ingest says what the schema issues were (see `with_schema_issues`).
    map.remove(&key("schemaIssues"));
    if let Some(call) = facts.call {
        map.insert(key("type"), Val::Owned(quote(call)));
    }
    let message_id = match map
        .get(&key("messageId"))
        .and_then(|v| string_value(v.json()))
    {
        Some(id) => id,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            map.insert(key("messageId"), Val::Owned(quote(&id)));
            id
        }
    };

    let received = facts.received_at_ms;
    map.insert(key("receivedAt"), Val::Owned(quoted_time(received)));
    if !map.contains_key(&key("sentAt"))
        && let Some(sent) = facts.batch_sent_at
    {
        map.insert(key("sentAt"), Val::Owned(quote(sent)));
    }
    let sent_ms = map
        .get(&key("sentAt"))
        .and_then(|v| v.plain_str())
        .and_then(time::parse_ms);
    let original = map.get(&key("timestamp")).and_then(|v| {
        let ms = v.plain_str().and_then(time::parse_ms)?;
        Some((v.json().to_owned(), ms))
    });
    match original {
        Some((raw, ts_ms)) => {
            map.insert(key("originalTimestamp"), Val::Owned(raw));
            // Segment: timestamp = receivedAt - (sentAt - originalTimestamp),
            // which cancels the client clock's offset.
            let corrected = match sent_ms {
                Some(sent) => received - (sent - ts_ms),
                None => ts_ms,
            };
            map.insert(key("timestamp"), Val::Owned(quoted_time(corrected)));
        }
        None if !map.contains_key(&key("timestamp")) => {
            map.insert(key("timestamp"), Val::Owned(quoted_time(received)));
        }
        // A timestamp that is not a date stays as sent, for the validator.
        None => {}
    }

    if let Some(ip) = facts.ip {
        let context = map.get(&key("context")).map(|v| v.json());
        let with_ip = match context {
            None => Some(format!("{{\"ip\":{}}}", quote(ip))),
            Some(text) if text.starts_with('{') => {
                let has_ip = object_members(text.as_bytes())
                    .map(|members| members.iter().any(|m| m.key_text(text.as_bytes()) == "ip"));
                match has_ip {
                    // Splice `"ip":...` in after the opening brace: the rest
                    // of the context is copied as sent.
                    Ok(false) => {
                        let rest = text[1..].trim_start();
                        let sep = if rest.starts_with('}') { "" } else { "," };
                        Some(format!("{{\"ip\":{}{sep}{rest}", quote(ip)))
                    }
                    _ => None,
                }
            }
            // Not an object: left for the validator to report.
            Some(_) => None,
        };
        if let Some(context) = with_ip {
            map.insert(key("context"), Val::Owned(context));
        }
    }
    // RudderStack's SDKs put identify and group traits in `context.traits`
    // only; Segment's in `traits`. Read either, so both are validated and
    // reach profiles alike.
    let call = facts
        .call
        .map(str::to_owned)
        .or_else(|| map.get(&key("type")).and_then(|v| string_value(v.json())));
    if matches!(call.as_deref(), Some("identify" | "group"))
        && !map.contains_key(&key("traits"))
        && let Some(traits) = map.get(&key("context")).and_then(|c| {
            let text = c.json();
            let members = object_members(text.as_bytes()).ok()?;
            let m = members
                .iter()
                .rev()
                .find(|m| m.key_text(text.as_bytes()) == "traits")?;
            let value = &text[m.value.clone()];
            value.starts_with('{').then(|| value.to_owned())
        })
    {
        map.insert(key("traits"), Val::Owned(traits));
    }
    map.insert(key("sourceId"), Val::Owned(quote(facts.source)));

    let partition_key = ["anonymousId", "userId"]
        .iter()
        .find_map(|k| map.get(&key(k)).and_then(|v| string_value(v.json())))
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| message_id.clone());
    Ok(Enriched {
        json: write_object(&map).into_bytes(),
        message_id,
        partition_key,
    })
}

impl Enriched {
    /// Adds `schemaIssues` (a JSON array) to an event let through with issues
    /// by `on-violation "allow"`. Enrichment removed any sent by the client.
    pub fn with_schema_issues(&mut self, issues_json: &str) {
        if self.json.last() == Some(&b'}') {
            self.json.pop();
            if self.json.len() > 1 {
                self.json.push(b',');
            }
            self.json.extend_from_slice(b"\"schemaIssues\":");
            self.json.extend_from_slice(issues_json.as_bytes());
            self.json.push(b'}');
        }
    }
}

/// A JSON string value's contents, when the value is a string.
fn string_value(json: &str) -> Option<String> {
    if !json.starts_with('"') {
        return None;
    }
    serde_json::from_str::<String>(json).ok()
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// A timestamp as a JSON string.
fn quoted_time(ms: i64) -> String {
    let mut out = String::with_capacity(26);
    out.push('"');
    time::write_ms(ms, &mut out);
    out.push('"');
    out
}

/// Appends `s` as a JSON string.
fn push_quoted(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

fn write_object(map: &BTreeMap<Key<'_>, Val<'_>>) -> String {
    let mut out = String::with_capacity(map.values().map(|v| v.json().len() + 16).sum());
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_quoted(&mut out, &k.0);
        out.push(':');
        out.push_str(v.json());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RequestFacts<'static> {
        RequestFacts {
            call: Some("track"),
            source: "web",
            received_at_ms: time::parse_ms("2026-11-25T12:00:10.000Z").unwrap(),
            batch_sent_at: None,
            ip: Some("203.0.113.7"),
        }
    }

    fn run(json: &str) -> serde_json::Value {
        let e = enrich(json, &facts()).unwrap();
        serde_json::from_slice(&e.json).unwrap()
    }

    #[test]
    fn corrects_clock_skew_like_segment() {
        // The client's clock is 1 hour fast: sentAt and timestamp are both off.
        let v = run(
            r#"{"event":"A","writeKey":"k","timestamp":"2026-11-25T13:00:00.000Z","sentAt":"2026-11-25T13:00:05.000Z","properties":{"a":[1,{"b":"\u00e9"}]}}"#,
        );
        assert_eq!(v["timestamp"], "2026-11-25T12:00:05.000Z");
        assert_eq!(v["originalTimestamp"], "2026-11-25T13:00:00.000Z");
        assert_eq!(v["receivedAt"], "2026-11-25T12:00:10.000Z");
        assert_eq!(v["type"], "track");
        assert_eq!(v["sourceId"], "web");
        assert_eq!(v["context"]["ip"], "203.0.113.7");
        assert!(v.get("writeKey").is_none());
        assert_eq!(v["properties"]["a"][1]["b"], "é");
        assert_eq!(
            uuid::Uuid::parse_str(v["messageId"].as_str().unwrap())
                .unwrap()
                .get_version_num(),
            4
        );
    }

    #[test]
    fn keeps_what_was_sent() {
        let v = run(
            r#"{"messageId":"m-1","context":{"ip":"10.0.0.1","library":{"name":"x"}},"userId":"u"}"#,
        );
        assert_eq!(v["messageId"], "m-1");
        assert_eq!(v["context"]["ip"], "10.0.0.1");
        assert_eq!(v["context"]["library"]["name"], "x");
        // No timestamp: the time of receipt.
        assert_eq!(v["timestamp"], "2026-11-25T12:00:10.000Z");
    }

    #[test]
    fn partitions_by_anonymous_id_first() {
        let raw = r#"{"userId":"u1","anonymousId":"a1"}"#;
        assert_eq!(enrich(raw, &facts()).unwrap().partition_key, "a1");
        let raw = r#"{"userId":"u1","anonymousId":null}"#;
        assert_eq!(enrich(raw, &facts()).unwrap().partition_key, "u1");
    }

    #[test]
    fn reads_rudderstack_traits_from_the_context() {
        let mut f = facts();
        f.call = Some("identify");
        let raw = r#"{"userId":"u","context":{"traits":{"email":"a@b.co"}}}"#;
        let v: serde_json::Value = serde_json::from_slice(&enrich(raw, &f).unwrap().json).unwrap();
        assert_eq!(v["traits"]["email"], "a@b.co");
        assert_eq!(v["context"]["traits"]["email"], "a@b.co");
        // Segment's own `traits` win.
        let raw = r#"{"userId":"u","traits":{},"context":{"traits":{"x":1}}}"#;
        let v: serde_json::Value = serde_json::from_slice(&enrich(raw, &f).unwrap().json).unwrap();
        assert_eq!(v["traits"], serde_json::json!({}));
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for text in ["[]", "1", "\"x\"", "null"] {
            assert!(enrich(text, &facts()).is_err(), "{text}");
        }
    }
}
