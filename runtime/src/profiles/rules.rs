//! The identity rules as the processor applies them, and the one parse of
//! an event it needs: its envelope and the identifiers it carries.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use uniflow_schemas::Normalization;
use uniflow_schemas::bundle::IdentityRules;

use crate::time::parse_ms;

/// One identifier type, ready to read events.
#[derive(Debug, Clone)]
pub struct IdentifierType {
    /// Its name (`email`).
    pub name: String,
    /// The field path, split (`["traits", "email"]`).
    pub path: Vec<String>,
    /// 1 is the strongest.
    pub priority: u32,
    /// How many one profile may hold.
    pub limit: u32,
    normalize: Vec<Normalization>,
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Strongest first.
    pub types: Vec<IdentifierType>,
    /// Blocked values, trimmed and lowercased.
    blocked: HashSet<String>,
}

/// One identifier an event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    /// Index into [`Rules::types`] (the priority order).
    pub rank: usize,
    /// `type:value`, normalised.
    pub key: String,
}

impl Rules {
    /// Compiles the bundle's rules.
    pub fn new(rules: &IdentityRules) -> Rules {
        let mut types: Vec<IdentifierType> = rules
            .identifiers
            .iter()
            .map(|i| IdentifierType {
                name: i.name.clone(),
                path: i.from.split('.').map(str::to_owned).collect(),
                priority: i.priority,
                limit: i.limit,
                normalize: i.normalize.clone(),
            })
            .collect();
        types.sort_by_key(|t| t.priority);
        Rules {
            types,
            blocked: rules
                .blocked
                .iter()
                .map(|b| b.trim().to_lowercase())
                .collect(),
        }
    }

    /// The limit of the type named `name` (0 when unknown).
    pub fn limit(&self, name: &str) -> u32 {
        self.types
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.limit)
    }

    /// Normalises `raw` for type `rank`; `None` when the value is blocked.
    /// Blocked values match after the type's normalisation, ignoring case
    /// and surrounding whitespace, so `" NULL "` is as blocked as `null`.
    pub fn identifier(&self, rank: usize, raw: &str) -> Option<Id> {
        let t = &self.types[rank];
        let mut value = Cow::Borrowed(raw);
        for n in &t.normalize {
            value = match n {
                Normalization::Trim => match value {
                    Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                    Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
                },
                Normalization::Lowercase => Cow::Owned(value.to_lowercase()),
            };
        }
        let probe = value.trim();
        let blocked = if probe.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
            self.blocked.contains(&probe.to_lowercase())
        } else {
            self.blocked.contains(probe)
        };
        if blocked {
            return None;
        }
        Some(Id {
            rank,
            key: format!("{}:{}", t.name, value),
        })
    }

    /// The identifier types `alias`'s `previousId` may be (the types read
    /// from `userId`, then from `anonymousId`).
    pub fn previous_id_ranks(&self) -> Vec<usize> {
        let of = |field: &str| {
            self.types
                .iter()
                .position(|t| t.path.len() == 1 && t.path[0] == field)
        };
        of("userId").into_iter().chain(of("anonymousId")).collect()
    }
}

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a pipeline event: {0}")]
pub struct EventError(String);

/// The parts of an enriched event the processor reads.
#[derive(Debug)]
pub struct Event<'a> {
    /// The whole event as stored.
    pub raw: &'a RawValue,
    /// Its message id.
    pub message_id: String,
    /// Its source.
    pub source_id: String,
    /// `track`, `identify`, ...
    pub kind: String,
    /// A track event's name.
    pub name: Option<String>,
    /// Its (skew-corrected) timestamp, epoch ms.
    pub at_ms: i64,
    /// `groupId` of a group call.
    pub group_id: Option<String>,
    /// `previousId` of an alias call.
    pub previous_id: Option<String>,
    /// Traits of identify and group calls.
    pub traits: Option<serde_json::Map<String, Value>>,
    top: Envelope<'a>,
}

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "messageId", borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "sourceId", borrow)]
    source_id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "receivedAt", borrow)]
    received_at: Option<Cow<'a, str>>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "anonymousId", borrow)]
    anonymous_id: Option<&'a RawValue>,
    #[serde(rename = "previousId", borrow)]
    previous_id: Option<&'a RawValue>,
    #[serde(rename = "groupId", borrow)]
    group_id: Option<&'a RawValue>,
    #[serde(borrow)]
    traits: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
}

impl<'a> Event<'a> {
    /// Reads an event from the bytes a stream or log record holds.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Event<'a>, EventError> {
        let text = std::str::from_utf8(bytes).map_err(|e| EventError(e.to_string()))?;
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| EventError(e.to_string()))?;
        Event::parse(raw)
    }

    /// Reads an event as ingest stored it.
    pub fn parse(raw: &'a RawValue) -> Result<Event<'a>, EventError> {
        let top: Envelope<'a> =
            serde_json::from_str(raw.get()).map_err(|e| EventError(e.to_string()))?;
        let message_id = top
            .message_id
            .as_deref()
            .ok_or_else(|| EventError("no messageId".into()))?
            .to_owned();
        let kind = top.kind.as_deref().unwrap_or("track").to_owned();
        let at_ms = top
            .timestamp
            .as_deref()
            .and_then(parse_ms)
            .or_else(|| top.received_at.as_deref().and_then(parse_ms))
            .unwrap_or(0);
        let traits = match (kind.as_str(), top.traits) {
            ("identify" | "group", Some(t)) => match serde_json::from_str::<Value>(t.get()) {
                Ok(Value::Object(map)) => Some(map),
                _ => None,
            },
            _ => None,
        };
        Ok(Event {
            raw,
            message_id,
            source_id: top.source_id.as_deref().unwrap_or_default().to_owned(),
            name: top.event.as_deref().map(str::to_owned),
            at_ms,
            group_id: top.group_id.and_then(scalar),
            previous_id: top.previous_id.and_then(scalar),
            kind,
            traits,
            top,
        })
    }

    /// The key that makes processing idempotent: `<sourceId>#<messageId>`.
    pub fn applied_key(&self) -> String {
        format!("{}#{}", self.source_id, self.message_id)
    }

    /// The identifiers it carries, strongest first; blocked values left out.
    /// `alias`'s `previousId` is added by the resolver, which knows which
    /// type it already has.
    pub fn identifiers(&self, rules: &Rules) -> Vec<Id> {
        let mut out = Vec::new();
        for (rank, t) in rules.types.iter().enumerate() {
            let Some(raw) = self.field(&t.path) else {
                continue;
            };
            if let Some(id) = rules.identifier(rank, &raw)
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        out
    }

    /// The string (or integer, as text) at a dotted path.
    fn field(&self, path: &[String]) -> Option<String> {
        let (first, rest) = path.split_first()?;
        let top = match first.as_str() {
            "userId" => self.top.user_id,
            "anonymousId" => self.top.anonymous_id,
            "groupId" => self.top.group_id,
            "previousId" => self.top.previous_id,
            "traits" => {
                if let Some(traits) = &self.traits {
                    return lookup(traits.get(rest.first()?)?, &rest[1..]);
                }
                self.top.traits
            }
            "context" => self.top.context,
            _ => None,
        }?;
        if rest.is_empty() {
            return scalar(top);
        }
        let value: Value = serde_json::from_str(top.get()).ok()?;
        let (head, tail) = rest.split_first()?;
        lookup(value.get(head)?, tail)
    }
}

fn lookup(value: &Value, path: &[String]) -> Option<String> {
    let mut v = value;
    for p in path {
        v = v.get(p)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn scalar(raw: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(raw.get()).ok()? {
        Value::String(s) => Some(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use uniflow_schemas::bundle::{IdentifierRule, IdentityRules};

    use super::*;

    fn rules() -> Rules {
        let rule =
            |name: &str, from: &str, priority, normalize: Vec<Normalization>| IdentifierRule {
                name: name.into(),
                from: from.into(),
                priority,
                limit: 5,
                normalize,
            };
        Rules::new(&IdentityRules {
            // Out of priority order on purpose: the rules sort them.
            identifiers: vec![
                rule("device_id", "context.device.id", 4, vec![]),
                rule("user_id", "userId", 1, vec![]),
                rule(
                    "email",
                    "traits.email",
                    2,
                    vec![Normalization::Trim, Normalization::Lowercase],
                ),
                rule(
                    "loyalty_id",
                    "traits.loyalty.card",
                    3,
                    vec![Normalization::Trim],
                ),
                rule("anonymous_id", "anonymousId", 5, vec![]),
            ],
            blocked: vec!["null".into(), "QA@Shop.example".into()],
        })
    }

    fn ids(json: &str) -> Vec<String> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        let event = Event::parse(raw).unwrap();
        event
            .identifiers(&rules())
            .into_iter()
            .map(|i| i.key)
            .collect()
    }

    #[test]
    fn identifiers_come_from_their_paths_strongest_first_normalised() {
        assert_eq!(
            ids(
                r#"{"messageId":"m","type":"identify","anonymousId":"a1","userId":42,
                   "traits":{"email":"  Ann@Example.ORG ","loyalty":{"card":" LY1 "}},
                   "context":{"device":{"id":"dev-9"}}}"#
            ),
            [
                "user_id:42",
                "email:ann@example.org",
                "loyalty_id:LY1",
                "device_id:dev-9",
                "anonymous_id:a1"
            ]
        );
    }

    #[test]
    fn blocked_values_match_ignoring_case_and_spaces_and_other_types_are_ignored() {
        assert_eq!(
            ids(
                r#"{"messageId":"m","type":"identify","anonymousId":" NULL ","userId":true,
                   "traits":{"email":"qa@shop.EXAMPLE"},"context":{"device":{"id":1.5}}}"#
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_path_is_read_whatever_the_call() {
        // Identifiers are read wherever the configured path exists (a track
        // may carry traits); only identify and group merge trait values.
        assert_eq!(
            ids(r#"{"messageId":"m","type":"track","traits":{"email":"a@b.c"},"anonymousId":"a"}"#),
            ["email:a@b.c", "anonymous_id:a"]
        );
    }

    #[test]
    fn alias_previous_id_is_a_user_id_then_an_anonymous_id() {
        let r = rules();
        let ranks: Vec<&str> = r
            .previous_id_ranks()
            .into_iter()
            .map(|i| r.types[i].name.as_str())
            .collect();
        assert_eq!(ranks, ["user_id", "anonymous_id"]);
    }
}
