//! Shaping: one stored event into the payload one destination receives,
//! through its transforms (in order) and then its template.
//!
//! A [`Shaper`] is compiled once per destination (the template is parsed
//! then) and shapes every event with no further setup:
//!
//! 1. the stored event is parsed (it must be a JSON object);
//! 2. each [`Transform`] is applied in order, paths dotted into nested
//!    objects (`context.traits.email`):
//!    - `rename` moves the value at `from` to `to`, replacing what was there
//!      and creating missing intermediate objects; nothing happens when
//!      `from` is absent;
//!    - `drop` removes the value, if present;
//!    - `hash` replaces a string (trimmed and lowercased first) or a number
//!      or boolean (its JSON text) by the lowercase hex SHA-256 of that text;
//!      an object or array is hashed as its compact JSON text (keys sorted);
//!      absent values and `null` stay as they are;
//! 3. with a template, it is rendered with the event's top-level keys as
//!    its context (`{{ properties.revenue }}`, `{{ traits | json_encode() }}`)
//!    and the result must be JSON; line breaks (which valid JSON can only
//!    hold as whitespace) are removed so the payload is one line. Without
//!    one, the transformed event is serialised (keys in sorted order).
//!
//! A shaping error concerns one event: the caller dead-letters that event
//! with the error as its reason.

use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uniflow_schemas::bundle::{DestinationInfo, Transform};

/// The name the template is registered under inside its [`tera::Tera`].
const TEMPLATE: &str = "payload";

/// How much of a bad rendering an error quotes.
const QUOTED: usize = 200;

/// Why an event could not be shaped, or a destination's shaping compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The destination's template does not compile (found when the
    /// destination starts, not per event).
    #[error("the template does not compile: {0}")]
    Template(String),
    /// A transform's path is empty or has an empty segment (`a..b`).
    #[error("`{0}` is not a path: write dotted names like `properties.email`")]
    BadPath(String),
    /// The stored event is not a JSON object.
    #[error("the stored event is not a JSON object: {0}")]
    Event(String),
    /// A rename's destination runs through a value that is not an object.
    #[error("cannot rename into `{path}`: `{blocked_at}` is {found}, not an object")]
    Blocked {
        /// The path written.
        path: String,
        /// The prefix of it that holds a non-object.
        blocked_at: String,
        /// What is there (`a string`, `an array`, ...).
        found: &'static str,
    },
    /// The template failed on this event (a missing variable, a filter on a
    /// value of the wrong type).
    #[error("the template cannot render this event: {0}")]
    Render(String),
    /// The template rendered text that is not JSON.
    #[error("the template rendered invalid JSON ({error}): {start}")]
    NotJson {
        /// What the JSON parser said.
        error: String,
        /// The start of what was rendered.
        start: String,
    },
}

/// One destination's transforms and template, compiled once.
#[derive(Debug)]
pub struct Shaper {
    steps: Vec<Step>,
    template: Option<tera::Tera>,
}

/// A transform with its paths split.
#[derive(Debug)]
enum Step {
    Rename { from: Vec<String>, to: Vec<String> },
    Drop(Vec<String>),
    Hash(Vec<String>),
}

impl Shaper {
    /// Compiles `destination`'s transforms and template.
    pub fn new(destination: &DestinationInfo) -> Result<Shaper, ShapeError> {
        let steps = destination
            .transforms
            .iter()
            .map(|t| {
                Ok(match t {
                    Transform::Rename { from, to } => Step::Rename {
                        from: split(from)?,
                        to: split(to)?,
                    },
                    Transform::Drop { path } => Step::Drop(split(path)?),
                    Transform::Hash { path } => Step::Hash(split(path)?),
                })
            })
            .collect::<Result<Vec<_>, ShapeError>>()?;
        let template = match &destination.template {
            None => None,
            Some(text) => {
                let mut tera = tera::Tera::default();
                tera.autoescape_on(Vec::new());
                tera.add_raw_template(TEMPLATE, text)
                    .map_err(|e| ShapeError::Template(chain(&e)))?;
                Some(tera)
            }
        };
        Ok(Shaper { steps, template })
    }

    /// Shapes one stored event (JSON) into the destination's payload.
    pub fn shape(&self, event: &[u8]) -> Result<Bytes, ShapeError> {
        if self.steps.is_empty() && self.template.is_none() {
            // Nothing to reshape: the stored event is the payload, as it is
            // (ingest stored it as one compact JSON object).
            return Ok(Bytes::copy_from_slice(event));
        }
        let mut value: Value =
            serde_json::from_slice(event).map_err(|e| ShapeError::Event(e.to_string()))?;
        let Value::Object(root) = &mut value else {
            return Err(ShapeError::Event(format!("it is {}", kind(&value))));
        };
        for step in &self.steps {
            apply(step, root)?;
        }
        let Some(tera) = &self.template else {
            return Ok(Bytes::from(value.to_string()));
        };
        let context =
            tera::Context::from_value(value).map_err(|e| ShapeError::Render(chain(&e)))?;
        let rendered = tera
            .render(TEMPLATE, &context)
            .map_err(|e| ShapeError::Render(chain(&e)))?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&rendered) {
            let start: String = rendered.chars().take(QUOTED).collect();
            return Err(ShapeError::NotJson {
                error: e.to_string(),
                start,
            });
        }
        let one_line: String = rendered
            .trim()
            .chars()
            .filter(|c| !matches!(c, '\n' | '\r'))
            .collect();
        Ok(Bytes::from(one_line))
    }
}

/// `a.b.c` into its segments.
fn split(path: &str) -> Result<Vec<String>, ShapeError> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ShapeError::BadPath(path.to_owned()));
    }
    Ok(segments)
}

fn apply(step: &Step, root: &mut Map<String, Value>) -> Result<(), ShapeError> {
    match step {
        Step::Rename { from, to } => {
            if let Some(moved) = remove(root, from) {
                insert(root, to, moved)?;
            }
        }
        Step::Drop(path) => {
            remove(root, path);
        }
        Step::Hash(path) => {
            if let Some(v) = get_mut(root, path) {
                hash(v);
            }
        }
    }
    Ok(())
}

/// The object holding the last segment of `path`, if every intermediate
/// value is an object.
fn parent_mut<'v>(
    root: &'v mut Map<String, Value>,
    path: &[String],
) -> Option<&'v mut Map<String, Value>> {
    let (_, parents) = path.split_last()?;
    parents
        .iter()
        .try_fold(root, |map, key| map.get_mut(key)?.as_object_mut())
}

fn get_mut<'v>(root: &'v mut Map<String, Value>, path: &[String]) -> Option<&'v mut Value> {
    let last = path.last()?;
    parent_mut(root, path)?.get_mut(last)
}

fn remove(root: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
    let last = path.last()?;
    parent_mut(root, path)?.remove(last)
}

fn insert(root: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), ShapeError> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut map = root;
    for (depth, key) in parents.iter().enumerate() {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let found = kind(slot);
        map = slot.as_object_mut().ok_or_else(|| ShapeError::Blocked {
            path: path.join("."),
            blocked_at: path[..=depth].join("."),
            found,
        })?;
    }
    map.insert(last.clone(), value);
    Ok(())
}

/// Replaces a value by the SHA-256 of its normalised text (`null` stays).
fn hash(value: &mut Value) {
    let text = match value {
        Value::Null => return,
        Value::String(s) => s.trim().to_lowercase(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    };
    *value = Value::String(sha256_hex(text.as_bytes()));
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `a string`, `an object`, ... for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A Tera error with its causes (the top level alone says only "Failed to
/// render 'payload'").
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uniflow_schemas::bundle::{BatchPolicy, ConnectorSettings, RetryPolicy};

    fn destination(transforms: Vec<Transform>, template: Option<&str>) -> DestinationInfo {
        DestinationInfo {
            kind: "webhook".to_owned(),
            events: None,
            types: None,
            filter: None,
            condition: None,
            transforms,
            template: template.map(str::to_owned),
            connector: ConnectorSettings::Webhook {
                url: "http://127.0.0.1:1/".to_owned(),
                headers: Vec::new(),
                timeout_secs: 5,
                secret: None,
            },
            retry: RetryPolicy {
                attempts: 3,
                exponential: true,
                delay_ms: 100,
                max_age_secs: 60,
            },
            batch: BatchPolicy {
                max_events: 1,
                max_bytes: 1 << 20,
                max_wait_secs: 1,
            },
        }
    }

    fn rename(from: &str, to: &str) -> Transform {
        Transform::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }
    fn drop(path: &str) -> Transform {
        Transform::Drop {
            path: path.to_owned(),
        }
    }
    fn hash(path: &str) -> Transform {
        Transform::Hash {
            path: path.to_owned(),
        }
    }

    /// Shapes `event` with `transforms` and compares with `expect`.
    fn check(transforms: Vec<Transform>, event: Value, expect: Value) {
        let shaper = Shaper::new(&destination(transforms, None)).unwrap();
        let out = shaper.shape(event.to_string().as_bytes()).unwrap();
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, expect);
    }

    fn render(template: &str, event: Value) -> Result<Bytes, ShapeError> {
        Shaper::new(&destination(Vec::new(), Some(template)))?.shape(event.to_string().as_bytes())
    }

    // SHA-256 test vectors, computed independently (`printf %s TEXT | sha256sum`).
    const SHA_ANN: &str = "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476"; // "ann@example.com"
    const SHA_42: &str = "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"; // "42"
    const SHA_TRUE: &str = "b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b"; // "true"

    #[test]
    fn rename_moves_and_replaces() {
        check(
            vec![rename("userId", "user_id")],
            json!({"userId": "u1", "user_id": "old"}),
            json!({"user_id": "u1"}),
        );
    }

    #[test]
    fn rename_into_nested_paths_creates_the_objects() {
        check(
            vec![rename("properties.revenue", "data.order.total")],
            json!({"properties": {"revenue": 12.5, "sku": "a"}}),
            json!({"properties": {"sku": "a"}, "data": {"order": {"total": 12.5}}}),
        );
    }

    #[test]
    fn rename_of_an_absent_path_does_nothing() {
        check(
            vec![
                rename("properties.missing", "x"),
                rename("userId.deeper", "y"),
            ],
            json!({"userId": "u1"}),
            json!({"userId": "u1"}),
        );
    }

    #[test]
    fn rename_through_a_scalar_is_an_error() {
        let shaper = Shaper::new(&destination(vec![rename("a", "b.c.d")], None)).unwrap();
        let err = shaper.shape(br#"{"a":1,"b":{"c":"text"}}"#).unwrap_err();
        assert_eq!(
            err,
            ShapeError::Blocked {
                path: "b.c.d".to_owned(),
                blocked_at: "b.c".to_owned(),
                found: "a string",
            }
        );
    }

    #[test]
    fn drop_removes_nested_and_ignores_missing() {
        check(
            vec![
                drop("context.ip"),
                drop("context.nothing"),
                drop("nope.deep"),
            ],
            json!({"context": {"ip": "1.2.3.4", "locale": "en"}}),
            json!({"context": {"locale": "en"}}),
        );
    }

    #[test]
    fn transforms_apply_in_order() {
        // Hash then rename: the renamed value is the hash.
        check(
            vec![hash("traits.email"), rename("traits.email", "email_sha256")],
            json!({"traits": {"email": "ann@example.com"}}),
            json!({"traits": {}, "email_sha256": SHA_ANN}),
        );
    }

    #[test]
    fn hash_normalises_strings_before_hashing() {
        check(
            vec![hash("traits.email")],
            json!({"traits": {"email": "  Ann@Example.COM \n"}}),
            json!({"traits": {"email": SHA_ANN}}),
        );
    }

    #[test]
    fn hash_takes_the_json_text_of_numbers_and_booleans() {
        check(
            vec![hash("a"), hash("b")],
            json!({"a": 42, "b": true}),
            json!({"a": SHA_42, "b": SHA_TRUE}),
        );
    }

    #[test]
    fn hash_leaves_null_and_absent_values() {
        check(
            vec![hash("a"), hash("missing"), hash("a.b")],
            json!({"a": null}),
            json!({"a": null}),
        );
    }

    #[test]
    fn a_bad_path_is_refused_when_compiling() {
        let err = Shaper::new(&destination(vec![drop("a..b")], None)).unwrap_err();
        assert_eq!(err, ShapeError::BadPath("a..b".to_owned()));
    }

    #[test]
    fn an_event_that_is_not_an_object_is_an_error() {
        let shaper = Shaper::new(&destination(vec![drop("x")], None)).unwrap();
        assert!(matches!(shaper.shape(b"[1]"), Err(ShapeError::Event(_))));
        assert!(matches!(shaper.shape(b"{"), Err(ShapeError::Event(_))));
    }

    #[test]
    fn without_transforms_or_template_the_stored_event_is_the_payload_byte_for_byte() {
        let shaper = Shaper::new(&destination(Vec::new(), None)).unwrap();
        let stored = br#"{"b":1,"a":{"z":2.50}}"#;
        assert_eq!(&shaper.shape(stored).unwrap()[..], &stored[..]);
    }

    #[test]
    fn without_a_template_the_transformed_event_is_the_payload() {
        let shaper = Shaper::new(&destination(vec![drop("x")], None)).unwrap();
        let out = shaper.shape(br#"{"b": 1, "a": "\u00e9t\u00e9"}"#).unwrap();
        assert_eq!(&out[..], r#"{"a":"été","b":1}"#.as_bytes());
    }

    #[test]
    fn a_template_renders_the_transformed_event() {
        let template = r#"{
  "user": {{ userId | json_encode() }},
  "total": {{ properties.revenue }},
  "email": {{ traits.email | json_encode() }}
}"#;
        let shaper = Shaper::new(&destination(vec![hash("traits.email")], Some(template))).unwrap();
        let event = json!({"userId": "u\"1", "properties": {"revenue": 9.5}, "traits": {"email": "ANN@example.com"}});
        let out = shaper.shape(event.to_string().as_bytes()).unwrap();
        assert!(!out.contains(&b'\n'), "one line: {out:?}");
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, json!({"user": "u\"1", "total": 9.5, "email": SHA_ANN}));
    }

    #[test]
    fn a_template_rendering_invalid_json_is_an_error() {
        let err = render(r#"{"user": {{ userId }}}"#, json!({"userId": "u1"})).unwrap_err();
        match err {
            ShapeError::NotJson { start, .. } => assert_eq!(start, r#"{"user": u1}"#),
            other => panic!("expected NotJson, got {other:?}"),
        }
    }

    #[test]
    fn a_template_naming_a_missing_value_is_a_render_error() {
        let err = render(r#"{"x": {{ properties.nope }}}"#, json!({"properties": {}})).unwrap_err();
        assert!(
            matches!(&err, ShapeError::Render(m) if m.contains("properties.nope")),
            "{err}"
        );
    }

    #[test]
    fn a_template_that_does_not_compile_is_refused_when_compiling() {
        let err = Shaper::new(&destination(Vec::new(), Some("{{ unclosed"))).unwrap_err();
        assert!(matches!(err, ShapeError::Template(_)), "{err}");
    }
}
