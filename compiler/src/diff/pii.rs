//! Personal data newly reaching a destination: each value marked `pii` a
//! destination receives in the new config and did not before.
//!
//! A value reaches a destination when the destination receives its message
//! (`events`, `types`), no `drop` removes it, and, with a template, the
//! template reads it; it is `hashed` when a `hash` covers it, else
//! `unhashed`. A value is named where `pii` is written: an object marked
//! `pii` is one value (unhashed when any field goes out in clear); values
//! inside array items are named `items[].email`. Event properties count with
//! their event, user traits with `identify` and group traits with `group`.
//! `allow-pii` does not hide a flow: this is where it is reviewed.
//!
//! A flow is new when the destination did not receive that value before
//! (every flow of a new destination is new), or received it hashed and now
//! receives it in clear.

use crate::model::{
    Config, Destination, MessageType, ObjectDecl, SchemaDecl, TraitScope, TransformDecl,
};

use super::PiiFlow;

const HASHED: &str = "hashed";
const UNHASHED: &str = "unhashed";

/// The flows of `new` that are not flows of `old`, sorted.
pub(super) fn new_flows(old: &Config, new: &Config) -> Vec<PiiFlow> {
    let mut out = Vec::new();
    for d in &new.destinations {
        let before = old
            .destination(&d.name.value)
            .map(|o| flows(old, o))
            .unwrap_or_default();
        for f in flows(new, d) {
            let was = before
                .iter()
                .find(|b| b.event == f.event && b.property == f.property);
            if was.is_none_or(|b| b.form == HASHED && f.form == UNHASHED) {
                out.push(f);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every `pii` value `d` receives in `config`.
fn flows(config: &Config, d: &Destination) -> Vec<PiiFlow> {
    let mut out = Vec::new();
    for e in config.events.iter().filter(|e| d.receives(&e.name.value)) {
        let mut groups = Vec::new();
        object_groups(&e.properties, "properties", "properties", &mut groups);
        push_flows(d, &e.name.value, &groups, &mut out);
    }
    for (ty, scope) in [
        (MessageType::Identify, TraitScope::User),
        (MessageType::Group, TraitScope::Group),
    ] {
        if !d.receives_type(ty) {
            continue;
        }
        let mut groups = Vec::new();
        for t in config.traits.iter().filter(|t| t.scope == scope) {
            let name = &t.property.name.value;
            let path = format!("traits.{name}");
            value_groups(&t.property.schema, path.clone(), path, &mut groups);
        }
        push_flows(d, ty.keyword(), &groups, &mut out);
    }
    out
}

fn push_flows(d: &Destination, event: &str, groups: &[Group], out: &mut Vec<PiiFlow>) {
    for g in groups {
        let fates: Vec<bool> = g.leaves.iter().filter_map(|l| fate(d, l)).collect();
        if fates.is_empty() {
            continue;
        }
        let property = g
            .display
            .split_once('.')
            .map_or(g.display.as_str(), |(_, rest)| rest);
        out.push(PiiFlow {
            destination: d.name.value.clone(),
            event: event.to_owned(),
            property: property.to_owned(),
            form: if fates.iter().all(|hashed| *hashed) {
                HASHED
            } else {
                UNHASHED
            }
            .to_owned(),
        });
    }
}

/// A value marked `pii` and the field paths it is made of.
struct Group {
    /// As shown: `properties.items[].email`.
    display: String,
    /// As transforms name them: `properties.items.email`.
    leaves: Vec<String>,
}

fn object_groups(object: &ObjectDecl, display: &str, path: &str, out: &mut Vec<Group>) {
    for p in &object.properties {
        let name = &p.name.value;
        value_groups(
            &p.schema,
            format!("{display}.{name}"),
            format!("{path}.{name}"),
            out,
        );
    }
}

fn value_groups(s: &SchemaDecl, display: String, path: String, out: &mut Vec<Group>) {
    if s.pii {
        let mut leaves = Vec::new();
        leaves_of(s, &path, &mut leaves);
        out.push(Group { display, leaves });
        return;
    }
    object_groups(&s.object, &display, &path, out);
    if let Some(items) = &s.items {
        value_groups(items, format!("{display}[]"), path, out);
    }
}

/// Every field path inside a value (the path itself when it has none).
fn leaves_of(s: &SchemaDecl, path: &str, out: &mut Vec<String>) {
    let before = out.len();
    for p in &s.object.properties {
        leaves_of(&p.schema, &format!("{path}.{}", p.name.value), out);
    }
    if let Some(items) = &s.items {
        leaves_of(items, path, out);
    }
    if out.len() == before {
        out.push(path.to_owned());
    }
}

/// Whether `path` is `prefix` or a field inside it.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What happens to the value at `path` on its way to `d`: `None` when it
/// does not leave, else whether it leaves hashed.
fn fate(d: &Destination, path: &str) -> Option<bool> {
    let mut at = path.to_owned();
    let mut hashed = false;
    for t in &d.transforms {
        match t {
            TransformDecl::Rename { from, to } if covers(&from.value, &at) => {
                at = format!(
                    "{}{}",
                    to.value,
                    at.get(from.value.len()..).unwrap_or_default()
                );
            }
            TransformDecl::Drop(p) if covers(&p.value, &at) => return None,
            TransformDecl::Hash(p) if covers(&p.value, &at) => hashed = true,
            _ => {}
        }
    }
    let read = |r: &String| covers(r, &at) || covers(&at, r);
    if let Some(t) = &d.template
        && !t.reads.iter().any(|r| read(&r.value))
    {
        return None;
    }
    Some(hashed)
}
