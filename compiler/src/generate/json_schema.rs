//! JSON Schema 2020-12 for clients: one file per declared event (the whole
//! track message), and one each for the traits of identify and group calls.
//!
//! String formats are written as `pattern`s holding Zod 4's own regular
//! expressions, so a JSON Schema validator agrees with Zod and the runtime;
//! `format` is added only where no pattern can say it (`uri`). Lengths are
//! where JSON Schema differs: it counts code points, Zod counts UTF-16 units
//! (see the language reference).

use serde_json::{Map, Value, json};
use uniflow_schemas::bundle::Bundle;
use uniflow_schemas::formats;
use uniflow_schemas::{Format, PropertyType, Schema, UnknownKeys};

use super::names::file_slug;

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// `(path, contents)` of every JSON Schema file.
pub fn files(bundle: &Bundle) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, event) in &bundle.events {
        let slug = file_slug(name);
        let props = schema(&event.properties);
        let mut extra = Map::new();
        extra.insert("event".into(), json!({ "const": name }));
        extra.insert("properties".into(), props);
        let needs_properties = event.properties.properties.values().any(|p| !p.optional);
        let mut doc = message("track", extra, needs_properties);
        let obj = doc.as_object_mut().expect("message() returns an object");
        obj.insert("$id".into(), json!(format!("{slug}.schema.json")));
        obj.insert("title".into(), json!(name));
        if let Some(d) = &event.description {
            obj.insert("description".into(), json!(d));
        }
        obj.insert(
            "$comment".into(),
            json!(format!("event schema version {}", event.version)),
        );
        out.push((format!("{slug}.schema.json"), render(&doc)));
    }
    for (call, traits) in [
        ("identify", &bundle.traits.user),
        ("group", &bundle.traits.group),
    ] {
        let mut extra = Map::new();
        extra.insert("traits".into(), schema(traits));
        if call == "group" {
            extra.insert(
                "groupId".into(),
                json!({ "type": "string", "minLength": 1 }),
            );
        }
        let mut doc = message(call, extra, false);
        let obj = doc.as_object_mut().expect("message() returns an object");
        obj.insert("$id".into(), json!(format!("traits/{call}.schema.json")));
        obj.insert("title".into(), json!(format!("{call} call")));
        if call == "group" {
            let required = obj
                .get_mut("required")
                .and_then(Value::as_array_mut)
                .expect("message() lists required keys");
            required.push(json!("groupId"));
        }
        out.push((format!("traits/{call}.schema.json"), render(&doc)));
    }
    out
}

fn render(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// A Segment-spec message of one call type, with the envelope fields every
/// call shares and `extra` fields for this one.
fn message(call: &str, extra: Map<String, Value>, needs_properties: bool) -> Value {
    let id = json!({ "type": ["string", "null"] });
    let ts = json!({ "type": "string", "pattern": formats::DATETIME_OFFSET_JS });
    let mut props = Map::new();
    props.insert("type".into(), json!({ "const": call }));
    props.insert(
        "messageId".into(),
        json!({ "type": "string", "minLength": 1 }),
    );
    props.insert("userId".into(), id.clone());
    props.insert("anonymousId".into(), id);
    props.insert("timestamp".into(), ts.clone());
    props.insert("sentAt".into(), ts);
    props.insert("context".into(), json!({ "type": "object" }));
    props.insert("integrations".into(), json!({ "type": "object" }));
    if call == "track" {
        props.insert("event".into(), json!({ "type": "string", "minLength": 1 }));
    }
    props.extend(extra);
    let mut required = vec![json!("type")];
    if call == "track" {
        required.push(json!("event"));
        if needs_properties {
            required.push(json!("properties"));
        }
    }
    let some_id = |field: &str| {
        json!({
            "required": [field],
            "properties": { field: { "type": "string", "minLength": 1 } }
        })
    };
    json!({
        "$schema": DIALECT,
        "type": "object",
        "properties": props,
        "required": required,
        "anyOf": [some_id("userId"), some_id("anonymousId")],
    })
}

/// The JSON Schema of one value.
pub fn schema(s: &Schema) -> Value {
    let mut o = Map::new();
    let ty = match s.ty {
        PropertyType::String | PropertyType::Timestamp | PropertyType::Enum => "string",
        PropertyType::Number => "number",
        PropertyType::Integer => "integer",
        PropertyType::Boolean => "boolean",
        PropertyType::Object => "object",
        PropertyType::Array => "array",
    };
    o.insert(
        "type".into(),
        if s.nullable {
            json!([ty, "null"])
        } else {
            json!(ty)
        },
    );
    if let Some(d) = &s.description {
        o.insert("description".into(), json!(d));
    }
    if s.pii {
        o.insert("$comment".into(), json!("personal data (pii)"));
    }
    match s.ty {
        PropertyType::String => {
            if let Some(f) = s.format {
                match f {
                    Format::Email => pattern(&mut o, formats::EMAIL_JS),
                    Format::Uuid => pattern(&mut o, formats::UUID_JS),
                    Format::DateTime => pattern(&mut o, formats::DATETIME_JS),
                    Format::Date => pattern(&mut o, formats::DATE_JS),
                    Format::Uri => {
                        o.insert("format".into(), json!("uri"));
                    }
                }
            }
            lengths(&mut o, s, "minLength", "maxLength");
            if let Some(p) = &s.pattern {
                pattern(&mut o, p);
            }
        }
        PropertyType::Timestamp => pattern(&mut o, formats::DATETIME_JS),
        PropertyType::Enum => {
            let mut values: Vec<Value> = s.values.iter().map(|v| json!(v)).collect();
            if s.nullable {
                values.push(Value::Null);
            }
            o.insert("enum".into(), Value::Array(values));
        }
        PropertyType::Number | PropertyType::Integer => {
            let safe = formats::MAX_SAFE_INTEGER;
            let (mut min, mut max) = (s.min, s.max);
            if s.ty == PropertyType::Integer {
                min = Some(min.map_or(-safe, |m| m.max(-safe)));
                max = Some(max.map_or(safe, |m| m.min(safe)));
            }
            if let Some(m) = min {
                o.insert("minimum".into(), number(m));
            }
            if let Some(m) = max {
                o.insert("maximum".into(), number(m));
            }
            if let Some(m) = s.multiple_of {
                o.insert("multipleOf".into(), number(m));
            }
        }
        PropertyType::Boolean => {}
        PropertyType::Object => {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (k, v) in &s.properties {
                props.insert(k.clone(), schema(v));
                if !v.optional {
                    required.push(json!(k));
                }
            }
            o.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                o.insert("required".into(), Value::Array(required));
            }
            if s.unknown_keys == UnknownKeys::Strict {
                o.insert("additionalProperties".into(), json!(false));
            }
        }
        PropertyType::Array => {
            if let Some(items) = &s.items {
                o.insert("items".into(), schema(items));
            }
            lengths(&mut o, s, "minItems", "maxItems");
        }
    }
    Value::Object(o)
}

fn pattern(o: &mut Map<String, Value>, p: &str) {
    // Two patterns on one string: both must match.
    match o.remove("pattern") {
        None => {
            o.insert("pattern".into(), json!(p));
        }
        Some(first) => {
            o.insert(
                "allOf".into(),
                json!([{ "pattern": first }, { "pattern": p }]),
            );
        }
    }
}

fn lengths(o: &mut Map<String, Value>, s: &Schema, min: &str, max: &str) {
    if let Some(n) = s.min_length {
        o.insert(min.into(), json!(n));
    }
    if let Some(n) = s.max_length {
        o.insert(max.into(), json!(n));
    }
}

/// Integers as JSON integers, so `0` is not written `0.0`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= formats::MAX_SAFE_INTEGER {
        json!(n as i64)
    } else {
        json!(n)
    }
}
