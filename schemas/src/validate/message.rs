//! Messages: the Segment spec envelope of each call type, then the declared
//! schema of the body (`properties` of a declared track event, `traits` of
//! identify and group calls).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::compile::{Field, Fmt, Kind, Node, NodeId, Program, enum_message};
use super::engine::{Engine, JsonType, Received, Seg, SyntaxError};

use super::issue::{Issue, IssueCode, PathSegment};
use crate::bundle::Bundle;
use crate::schema::UnknownKeys;

/// The six Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallType {
    /// A user action.
    Track,
    /// Who the user is.
    Identify,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// The account a user belongs to.
    Group,
    /// Two ids are the same user.
    Alias,
}

impl CallType {
    /// Every call type, in the order messages name them.
    pub const ALL: [CallType; 6] = [
        CallType::Track,
        CallType::Identify,
        CallType::Page,
        CallType::Screen,
        CallType::Group,
        CallType::Alias,
    ];

    /// The `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Track => "track",
            CallType::Identify => "identify",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }
}

/// The outcome of validating one message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// The call type, when the message has a valid one.
    pub call: Option<CallType>,
    /// `event` of a track call.
    pub event: Option<String>,
    /// Whether a track call's event is declared in the bundle.
    pub declared: bool,
    /// `messageId`, when it is a string.
    pub message_id: Option<String>,
    /// Every issue; empty when the message is valid.
    pub issues: Vec<Issue>,
}

impl Verdict {
    /// Whether the message has no issues.
    pub fn is_valid(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Top-level keys the envelope reads, with the slot each is captured in.
const KEYS: [&str; 13] = [
    "anonymousId",
    "context",
    "event",
    "groupId",
    "integrations",
    "messageId",
    "name",
    "previousId",
    "properties",
    "sentAt",
    "timestamp",
    "traits",
    "userId",
];
const TYPE_SLOT: usize = KEYS.len();
const ANONYMOUS_ID: usize = 0;
const EVENT: usize = 2;
const MESSAGE_ID: usize = 5;
const PROPERTIES: usize = 8;
const TRAITS: usize = 11;
const USER_ID: usize = 12;

fn slot(key: &str) -> Option<usize> {
    slot_bytes(key.as_bytes())
}

fn slot_bytes(key: &[u8]) -> Option<usize> {
    // A `match` on byte strings compiles to a switch on length, then a compare.
    Some(match key {
        b"type" => TYPE_SLOT,
        b"anonymousId" => 0,
        b"context" => 1,
        b"event" => 2,
        b"groupId" => 3,
        b"integrations" => 4,
        b"messageId" => 5,
        b"name" => 6,
        b"previousId" => 7,
        b"properties" => 8,
        b"sentAt" => 9,
        b"timestamp" => 10,
        b"traits" => 11,
        b"userId" => 12,
        _ => return None,
    })
}

/// Schemas compiled for fast validation of messages.
#[derive(Debug, Clone)]
pub struct Validator {
    prog: Program,
    events: HashMap<String, NodeId>,
    user_traits: NodeId,
    group_traits: NodeId,
    /// Per call type: `(key slot, field)` in the order Zod reports them.
    envelopes: Vec<Vec<(usize, Field)>>,
    type_message: String,
}

impl Validator {
    /// Compiles every schema of a bundle.
    pub fn new(bundle: &Bundle) -> Validator {
        let mut prog = Program::default();
        let events = bundle
            .events
            .iter()
            .map(|(name, e)| (name.clone(), prog.compile(&e.properties)))
            .collect();
        let user_traits = prog.compile(&bundle.traits.user);
        let group_traits = prog.compile(&bundle.traits.group);
        let envelopes = CallType::ALL
            .iter()
            .map(|&call| envelope(&mut prog, call))
            .collect();
        let names: Vec<String> = CallType::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        Validator {
            prog,
            events,
            user_traits,
            group_traits,
            envelopes,
            type_message: enum_message(&names),
        }
    }

    /// Validates the raw bytes of one message.
    pub fn validate(&self, bytes: &[u8]) -> Verdict {
        match self.run(bytes) {
            Ok(v) => v,
            Err(e) => invalid_json(format!("{} at byte {}", e.what(), e.pos())),
        }
    }

    /// The schema of a call's body, when the call has one.
    fn body(&self, call: CallType, event: Option<&str>) -> Option<NodeId> {
        match call {
            CallType::Track => event.and_then(|e| self.events.get(e)).copied(),
            CallType::Identify => Some(self.user_traits),
            CallType::Group => Some(self.group_traits),
            _ => None,
        }
    }

    fn run(&self, bytes: &[u8]) -> Result<Verdict, SyntaxError> {
        let mut e = Engine::new(&self.prog, bytes);
        e.ws();
        if e.peek()? != b'{' {
            return self.not_an_object(e);
        }
        // One pass over the top level: capture where each envelope value is,
        // and check the body in place when `type` (and `event`) came first.
        let mut slots: [Option<Slot>; KEYS.len() + 1] = [None; KEYS.len() + 1];
        // (the body slot's position, the type and event positions it was checked with)
        let mut checked_body: Option<(usize, Option<usize>, Option<usize>)> = None;
        e.pos += 1;
        e.ws();
        if e.peek()? == b'}' {
            e.pos += 1;
        } else {
            loop {
                e.ws();
                let (ks, ke, kesc) = e.string_raw()?;
                e.ws();
                if e.next()? != b':' {
                    e.pos -= 1;
                    return Err(SyntaxError::new(e.pos, "expected `:` after a key"));
                }
                e.ws();
                let at = e.pos;
                let i = if kesc {
                    slot(&decode_key(bytes, ks, ke, true))
                } else {
                    slot_bytes(&bytes[ks..ke])
                };
                let captured = match i {
                    Some(i) if (i == PROPERTIES || i == TRAITS) && e.peek()? == b'{' => {
                        let call = slots[TYPE_SLOT].and_then(|s| call_of(bytes, s));
                        let event = slots[EVENT].and_then(|s| s.borrowed(bytes));
                        let key_matches = match call {
                            Some(CallType::Track) => i == PROPERTIES,
                            Some(CallType::Identify | CallType::Group) => i == TRAITS,
                            _ => false,
                        };
                        match call
                            .filter(|_| key_matches)
                            .and_then(|c| self.body(c, event.as_deref()))
                        {
                            Some(node) => {
                                if checked_body.is_some() {
                                    // A repeated key: only the last value counts.
                                    e.issues.clear();
                                }
                                e.path.push(Seg::Name(KEYS[i]));
                                e.value(node)?;
                                e.path.clear();
                                checked_body = Some((
                                    at,
                                    slots[TYPE_SLOT].map(|s| s.at),
                                    slots[EVENT].map(|s| s.at),
                                ));
                                Slot::new(at, JsonType::Object)
                            }
                            None => Slot::new(at, e.skip()?.0),
                        }
                    }
                    Some(_) if e.peek()? == b'"' => {
                        let (start, end, escaped) = e.string_raw()?;
                        Slot {
                            at,
                            ty: JsonType::String,
                            start,
                            end,
                            escaped,
                        }
                    }
                    _ => Slot::new(at, e.skip()?.0),
                };
                if let Some(i) = i {
                    slots[i] = Some(captured);
                }
                e.ws();
                match e.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => {
                        e.pos -= 1;
                        return Err(SyntaxError::new(e.pos, "expected `,` or `}` in an object"));
                    }
                }
            }
        }
        end(&mut e)?;

        let mut verdict = Verdict {
            message_id: slots[MESSAGE_ID].and_then(|s| s.text(bytes)),
            ..Verdict::default()
        };
        let Some(call) = slots[TYPE_SLOT].and_then(|s| call_of(bytes, s)) else {
            e.issues.clear();
            e.issues.push(Issue::new(
                IssueCode::InvalidValue,
                vec![PathSegment::Key("type".into())],
                self.type_message.clone(),
            ));
            verdict.issues = e.issues;
            return Ok(verdict);
        };
        verdict.call = Some(call);
        if call == CallType::Track {
            verdict.event = slots[EVENT].and_then(|s| s.text(bytes));
            verdict.declared = verdict
                .event
                .as_ref()
                .is_some_and(|ev| self.events.contains_key(ev));
        }
        // The body checked in place counts only if it was checked with the
        // final `type` and `event` (JSON.parse keeps the last of repeated keys).
        let body_key = if call == CallType::Track {
            PROPERTIES
        } else {
            TRAITS
        };
        let in_place = checked_body.is_some_and(|(at, t, ev)| {
            slots[body_key].map(|s| s.at) == Some(at)
                && slots[TYPE_SLOT].map(|s| s.at) == t
                && slots[EVENT].map(|s| s.at) == ev
        });
        let body_issues = if in_place {
            std::mem::take(&mut e.issues)
        } else {
            Vec::new()
        };
        e.issues.clear();

        // The envelope, in Zod's key order.
        for (i, field) in &self.envelopes[call as usize] {
            e.path.clear();
            match slots[*i] {
                Some(slot) => {
                    e.path.push(Seg::Name(&field.key));
                    let node = &self.prog.nodes[field.node];
                    if is_any_object(node) {
                        // `z.looseObject({})`: only the type matters.
                        match slot.ty {
                            JsonType::Object => {}
                            JsonType::Number => {
                                e.pos = slot.at;
                                let v = e.number()?;
                                let r = if v.is_finite() {
                                    Received::Number
                                } else {
                                    Received::Infinite(v)
                                };
                                e.wrong_type(node, r, None);
                            }
                            other => e.wrong_type(node, received(other), None),
                        }
                    } else if slot.ty == JsonType::String
                        && matches!(node.kind, Kind::String { .. })
                    {
                        // Read in the capture pass: check it without reading it again.
                        e.string_checks(node, slot.start, slot.end, slot.escaped);
                    } else {
                        e.pos = slot.at;
                        e.value(field.node)?;
                    }
                }
                None if field.required => e.missing_top(&field.key, field.node),
                None => {}
            }
        }
        e.path.clear();

        // `userId` or `anonymousId`.
        let present = |i: usize| match slots[i] {
            None => false,
            Some(s) => match s.ty {
                JsonType::Null => false,
                JsonType::String => s.end > s.start,
                _ => true,
            },
        };
        if !present(USER_ID) && !present(ANONYMOUS_ID) {
            e.issues.push(Issue::new(
                IssueCode::Custom,
                Vec::new(),
                "Invalid input: a message needs a userId or an anonymousId".to_owned(),
            ));
        }

        // The declared body.
        if in_place {
            e.issues.extend(body_issues);
        } else if let Some(node) = self.body(call, verdict.event.as_deref()) {
            let key = KEYS[body_key];
            match slots[body_key] {
                None => e.empty_object(key, node),
                Some(s) if s.ty == JsonType::Object => {
                    e.pos = s.at;
                    e.path.push(Seg::Name(key));
                    e.value(node)?;
                    e.path.clear();
                }
                Some(_) => {}
            }
        }
        verdict.issues = e.issues;
        Ok(verdict)
    }

    fn not_an_object(&self, mut e: Engine<'_>) -> Result<Verdict, SyntaxError> {
        let at = e.pos;
        let (ty, _) = e.skip()?;
        end(&mut e)?;
        let received = match ty {
            JsonType::Number => {
                e.pos = at;
                let v = e.number()?;
                if v.is_finite() {
                    Received::Number
                } else {
                    Received::Infinite(v)
                }
            }
            other => received(other),
        };
        let object = Node {
            kind: Kind::Object {
                fields: Box::new([]),
                unknown: UnknownKeys::Passthrough,
            },
            nullable: false,
        };
        e.wrong_type(&object, received, None);
        Ok(Verdict {
            issues: e.issues,
            ..Verdict::default()
        })
    }
}

/// Where a top-level value is, and for strings their raw content.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: usize,
    ty: JsonType,
    start: usize,
    end: usize,
    escaped: bool,
}

impl Slot {
    fn new(at: usize, ty: JsonType) -> Slot {
        Slot {
            at,
            ty,
            start: 0,
            end: 0,
            escaped: false,
        }
    }

    /// The decoded value of a string slot, borrowed when it has no escapes.
    fn borrowed(self, bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
        if self.ty != JsonType::String {
            return None;
        }
        if self.escaped {
            return Some(decode_key(bytes, self.start, self.end, true).into());
        }
        std::str::from_utf8(&bytes[self.start..self.end])
            .ok()
            .map(Into::into)
    }

    /// The decoded value of a string slot.
    fn text(self, bytes: &[u8]) -> Option<String> {
        (self.ty == JsonType::String).then(|| decode_key(bytes, self.start, self.end, self.escaped))
    }
}

fn call_of(bytes: &[u8], s: Slot) -> Option<CallType> {
    if s.ty != JsonType::String {
        return None;
    }
    let raw = &bytes[s.start..s.end];
    if s.escaped {
        let text = decode_key(bytes, s.start, s.end, true);
        return CallType::ALL.into_iter().find(|c| c.as_str() == text);
    }
    CallType::ALL
        .into_iter()
        .find(|c| c.as_str().as_bytes() == raw)
}

fn received(ty: JsonType) -> Received {
    match ty {
        JsonType::String => Received::String,
        JsonType::Number => Received::Number,
        JsonType::Boolean => Received::Boolean,
        JsonType::Null => Received::Null,
        JsonType::Array => Received::Array,
        JsonType::Object => Received::Object,
    }
}

fn is_any_object(node: &Node) -> bool {
    matches!(&node.kind, Kind::Object { fields, unknown } if fields.is_empty() && *unknown == UnknownKeys::Passthrough)
        && !node.nullable
}

fn invalid_json(why: String) -> Verdict {
    Verdict {
        issues: vec![Issue::new(
            IssueCode::InvalidJson,
            Vec::new(),
            format!("Invalid JSON: {why}"),
        )],
        ..Verdict::default()
    }
}

fn end(e: &mut Engine<'_>) -> Result<(), SyntaxError> {
    e.ws();
    if e.pos < e.b.len() {
        return Err(SyntaxError::new(
            e.pos,
            "unexpected data after the JSON value",
        ));
    }
    Ok(())
}

fn decode_key(bytes: &[u8], start: usize, end: usize, escaped: bool) -> String {
    if !escaped {
        // The engine checked strings' UTF-8 already.
        return match std::str::from_utf8(&bytes[start..end]) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(&bytes[start..end]).into_owned(),
        };
    }
    // Escapes are rare in keys: let serde_json decode the quoted string.
    let quoted = &bytes[start - 1..end + 1];
    serde_json::from_slice::<String>(quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes[start..end]).into_owned())
}

/// The envelope of a call type: `(slot, field)` sorted by key, matching the
/// key order of `envelopes` in the generated `index.ts`.
fn envelope(prog: &mut Program, call: CallType) -> Vec<(usize, Field)> {
    let string = |prog: &mut Program, min: Option<u64>, nullable: bool, format: Option<Fmt>| {
        prog.add(Node {
            kind: Kind::String {
                format,
                min_len: min,
                max_len: None,
                pattern: None,
            },
            nullable,
        })
    };
    let loose = |prog: &mut Program| {
        prog.add(Node {
            kind: Kind::Object {
                fields: Box::new([]),
                unknown: UnknownKeys::Passthrough,
            },
            nullable: false,
        })
    };
    let mut fields: Vec<(&'static str, NodeId, bool)> = vec![
        ("anonymousId", string(prog, None, true, None), false),
        ("context", loose(prog), false),
        ("integrations", loose(prog), false),
        ("messageId", string(prog, Some(1), false, None), false),
        (
            "sentAt",
            string(prog, None, false, Some(Fmt::DateTimeOffset)),
            false,
        ),
        (
            "timestamp",
            string(prog, None, false, Some(Fmt::DateTimeOffset)),
            false,
        ),
        ("userId", string(prog, None, true, None), false),
    ];
    match call {
        CallType::Track => {
            fields.push(("event", string(prog, Some(1), false, None), true));
            fields.push(("properties", loose(prog), false));
        }
        CallType::Identify => fields.push(("traits", loose(prog), false)),
        CallType::Page | CallType::Screen => {
            // analytics-python and rudder-sdk-python send `"name": null`.
            fields.push(("name", string(prog, None, true, None), false));
            fields.push(("properties", loose(prog), false));
        }
        CallType::Group => {
            fields.push(("groupId", string(prog, Some(1), false, None), true));
            fields.push(("traits", loose(prog), false));
        }
        CallType::Alias => {
            fields.push(("previousId", string(prog, Some(1), false, None), true));
            fields.retain(|f| f.0 != "userId");
            fields.push(("userId", string(prog, Some(1), false, None), true));
        }
    }
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    fields
        .into_iter()
        .map(|(key, node, required)| {
            (
                slot(key).unwrap_or(0),
                Field {
                    key: key.into(),
                    node,
                    required,
                    inherited: None,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_constants_name_their_keys() {
        assert_eq!(KEYS[ANONYMOUS_ID], "anonymousId");
        assert_eq!(KEYS[EVENT], "event");
        assert_eq!(KEYS[MESSAGE_ID], "messageId");
        assert_eq!(KEYS[PROPERTIES], "properties");
        assert_eq!(KEYS[TRAITS], "traits");
        assert_eq!(KEYS[USER_ID], "userId");
        assert!(KEYS.windows(2).all(|w| w[0] < w[1]));
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(slot(k), Some(i));
        }
        assert_eq!(slot("type"), Some(TYPE_SLOT));
        assert_eq!(slot("types"), None);
    }
}
