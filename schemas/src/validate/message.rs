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

fn slot(key: &str) -> Option<usize> {
    if key == "type" {
        return Some(TYPE_SLOT);
    }
    KEYS.binary_search(&key).ok()
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
        if std::str::from_utf8(bytes).is_err() {
            return invalid_json("the bytes are not valid UTF-8".to_owned());
        }
        match self.run(bytes) {
            Ok(v) => v,
            Err(e) => invalid_json(format!("{} at byte {}", e.what, e.pos)),
        }
    }

    fn run(&self, bytes: &[u8]) -> Result<Verdict, SyntaxError> {
        let mut e = Engine::new(&self.prog, bytes);
        e.ws();
        if e.peek()? != b'{' {
            let (ty, _) = e.skip()?;
            end(&mut e)?;
            let received = match ty {
                JsonType::String => Received::String,
                JsonType::Number => Received::Number,
                JsonType::Boolean => Received::Boolean,
                JsonType::Null => Received::Null,
                JsonType::Array => Received::Array,
                JsonType::Object => Received::Object,
            };
            let object = Node {
                kind: Kind::Object {
                    fields: Box::new([]),
                    unknown: UnknownKeys::Passthrough,
                },
                nullable: false,
            };
            e.wrong_type(&object, received, None);
            return Ok(Verdict {
                issues: e.issues,
                ..Verdict::default()
            });
        }
        // Capture where each top-level value starts (the last of a repeated key wins).
        let mut slots: [Option<(usize, JsonType)>; KEYS.len() + 1] = [None; KEYS.len() + 1];
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
                    return Err(SyntaxError {
                        pos: e.pos,
                        what: "expected `:` after a key",
                    });
                }
                e.ws();
                let at = e.pos;
                let (ty, _) = e.skip()?;
                let key = decode_key(bytes, ks, ke, kesc);
                if let Some(i) = slot(&key) {
                    slots[i] = Some((at, ty));
                }
                e.ws();
                match e.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => {
                        e.pos -= 1;
                        return Err(SyntaxError {
                            pos: e.pos,
                            what: "expected `,` or `}` in an object",
                        });
                    }
                }
            }
        }
        end(&mut e)?;

        let string_at = |s: Option<(usize, JsonType)>| -> Option<String> {
            let (at, ty) = s?;
            if ty != JsonType::String {
                return None;
            }
            let mut probe = Engine::new(&self.prog, bytes);
            probe.pos = at;
            let (a, b, esc) = probe.string_raw().ok()?;
            Some(decode_key(bytes, a, b, esc))
        };
        let mut verdict = Verdict {
            message_id: string_at(slots[slot("messageId").unwrap_or(0)]),
            ..Verdict::default()
        };
        let call = string_at(slots[TYPE_SLOT])
            .and_then(|t| CallType::ALL.into_iter().find(|c| c.as_str() == t));
        let Some(call) = call else {
            verdict.issues.push(Issue::new(
                IssueCode::InvalidValue,
                vec![PathSegment::Key("type".into())],
                self.type_message.clone(),
            ));
            return Ok(verdict);
        };
        verdict.call = Some(call);

        // The envelope, in Zod's key order.
        for (i, field) in &self.envelopes[call as usize] {
            e.path.clear();
            match slots[*i] {
                Some((at, _)) => {
                    e.pos = at;
                    e.path.push(Seg::Name(&field.key));
                    e.value(field.node)?;
                }
                None if field.required => {
                    e.missing_top(&field.key, field.node);
                }
                None => {}
            }
        }
        e.path.clear();

        // `userId` or `anonymousId`.
        let present = |key: &str| -> bool {
            match slots[slot(key).unwrap_or(0)] {
                None | Some((_, JsonType::Null)) => false,
                Some((_, JsonType::String)) => {
                    string_at(slots[slot(key).unwrap_or(0)]).is_some_and(|s| !s.is_empty())
                }
                Some(_) => true,
            }
        };
        if !present("userId") && !present("anonymousId") {
            e.issues.push(Issue::new(
                IssueCode::Custom,
                Vec::new(),
                "Invalid input: a message needs a userId or an anonymousId".to_owned(),
            ));
        }

        // The declared body.
        let (body, key) = match call {
            CallType::Track => {
                verdict.event = string_at(slots[slot("event").unwrap_or(0)]);
                let node = verdict
                    .event
                    .as_ref()
                    .and_then(|ev| self.events.get(ev))
                    .copied();
                verdict.declared = node.is_some();
                (node, "properties")
            }
            CallType::Identify => (Some(self.user_traits), "traits"),
            CallType::Group => (Some(self.group_traits), "traits"),
            _ => (None, ""),
        };
        if let Some(node) = body {
            match slots[slot(key).unwrap_or(0)] {
                None => e.empty_object(key, node),
                Some((at, JsonType::Object)) => {
                    e.pos = at;
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
        return Err(SyntaxError {
            pos: e.pos,
            what: "unexpected data after the JSON value",
        });
    }
    Ok(())
}

fn decode_key(bytes: &[u8], start: usize, end: usize, escaped: bool) -> String {
    if !escaped {
        return String::from_utf8_lossy(&bytes[start..end]).into_owned();
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
            fields.push(("name", string(prog, None, false, None), false));
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
                },
            )
        })
        .collect()
}
