//! The breaking-change rules of event schemas, in both directions.
//!
//! ## What it does
//! Compares each event's old and new `properties`, recursively (nested
//! objects as `address.city`, array items as `items[].sku`), and reports one
//! [`BreakingChange`] per rule a change violates.
//!
//! **Senders** (app builds already shipped keep sending what passed before):
//! - `new-required-property`: a property that did not exist is required.
//! - `optional-to-required`: an optional property became required.
//! - `narrowed-type`: the type accepts less: `number` -> `integer`,
//!   `string` -> `enum`/`timestamp`, nullable -> not nullable, any other
//!   type change (a sender of the old type is rejected), or a property
//!   removed from a `strict` object (a sender that still sends it is
//!   rejected for an unknown key).
//! - `removed-enum-value`: an enum lost values.
//! - `tighter-bound`: a new or tighter `min`, `max`, `min-length`,
//!   `max-length`, or a new `multiple-of` the old one is not a multiple of.
//! - `tighter-format`: a new or different `format`.
//! - `tighter-pattern`: a new or different `pattern`.
//! - `strip-to-strict`: an object went from `strip` or `passthrough` to
//!   `strict`.
//!
//! **Consumers** (the archive's Glue table, destinations, segments):
//! - `removed-property`: a property is gone.
//! - `renamed-property`: a property is gone and one with the same schema
//!   (type, constraints, children; descriptions aside) appeared in the same
//!   object. Reported once, instead of a removal; a required new name is
//!   still a `new-required-property` for senders.
//! - `changed-type`: the type changed in a way readers see. `integer` ->
//!   `number`, `enum` -> `string` and `timestamp` -> `string` keep the JSON
//!   value's shape (they only widen) and are not reported; their reverse is
//!   a sender-only `narrowed-type`.
//! - `required-to-optional`: readers must now handle the property missing.
//!
//! Widening (a new optional property, an enum value added, a bound loosened
//! or removed, nullable added, required -> optional) is never a sender break.
//!
//! ## Why
//! A sender break makes events from app builds already in users' hands fail
//! validation: rejected or quarantined, depending on the source. A consumer
//! break makes a segment, a destination's filter, transforms or template, or
//! an Athena query over the archive silently read nothing.
//!
//! ## Example
//! `property "coupon" type="string"` -> `... required=#true`: apps that send
//! `Order Completed` without `coupon` are now rejected. Fix: keep it optional,
//! or bump `version` and ship the apps first.

use uniflow_schemas::{PropertyType, Schema, UnknownKeys};

use crate::model::{Config, Event, ObjectDecl, PropertyDecl, SchemaDecl};

use super::changes::{Pair, pairs};
use super::{BreakingChange, Direction, Rule, readers};

/// Every breaking change from `old` to `new`, senders' first, then in the
/// new file's order of events (removed events where they stood).
pub(super) fn breaking(old: &Config, new: &Config) -> Vec<BreakingChange> {
    let mut out = Vec::new();
    for pair in pairs(&old.events, &new.events, |e| e.name.value.as_str()) {
        match pair {
            Pair::Added(_) => {}
            Pair::Removed(e) => removed_event(old, e, &mut out),
            Pair::Both(o, n) => {
                let mut found = Vec::new();
                object(&o.properties, &n.properties, None, &mut found);
                for f in found {
                    out.push(f.into_change(old, new, &n.name.value));
                }
            }
        }
    }
    out.sort_by_key(|b| b.direction);
    out
}

/// A removed event, when the old config names it as something to read.
fn removed_event(old: &Config, e: &Event, out: &mut Vec<BreakingChange>) {
    let name = &e.name.value;
    let mut breaks = Vec::new();
    for s in &old.segments {
        if s.from.iter().any(|f| &f.value == name) {
            breaks.push(format!("segment `{}` reads `{name}`", s.name.value));
        }
    }
    for d in &old.destinations {
        if d.events
            .as_ref()
            .is_some_and(|list| list.iter().any(|l| &l.value == name))
        {
            breaks.push(format!("destination `{}` receives `{name}`", d.name.value));
        }
    }
    if breaks.is_empty() {
        return;
    }
    out.push(BreakingChange {
        event: name.clone(),
        property: None,
        rule: Rule::RemovedProperty,
        direction: Direction::Consumers,
        detail: format!("the event `{name}` was removed"),
        breaks,
    });
}

/// One rule violated at one place, before its readers are looked up.
struct Found {
    /// The property path (`None`: the event's properties object).
    property: Option<String>,
    /// For consumer rules: the path readers read (the old name of a rename).
    read: Option<String>,
    rule: Rule,
    detail: String,
    /// Sender rules: what the rejected events look like ("without `coupon`").
    sent: Vec<String>,
}

impl Found {
    fn new(rule: Rule, property: Option<&str>, detail: String) -> Self {
        Found {
            property: property.map(str::to_owned),
            read: property.map(str::to_owned),
            rule,
            detail,
            sent: Vec::new(),
        }
    }

    fn sent(mut self, what: String) -> Self {
        self.sent.push(what);
        self
    }

    fn into_change(self, old: &Config, new: &Config, event: &str) -> BreakingChange {
        let direction = self.rule.direction();
        let breaks = match direction {
            Direction::Senders => self
                .sent
                .iter()
                .map(|s| format!("app builds that send `{event}` {s}"))
                .collect(),
            Direction::Consumers => match &self.read {
                Some(path) => readers::readers(old, new, event, path),
                None => Vec::new(),
            },
        };
        BreakingChange {
            event: event.to_owned(),
            property: self.property,
            rule: self.rule,
            direction,
            detail: self.detail,
            breaks,
        }
    }
}

/// `prefix.name`, or `name` at the top.
fn join(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    }
}

/// The schema without descriptions, for comparing shapes.
fn shape(s: &SchemaDecl) -> Schema {
    fn strip(s: &mut Schema) {
        s.description = None;
        s.properties.values_mut().for_each(strip);
        if let Some(i) = s.items.as_deref_mut() {
            strip(i);
        }
    }
    let mut schema = s.to_schema();
    strip(&mut schema);
    schema
}

/// The rules of one object's properties (`at` is the object's own path).
fn object(o: &ObjectDecl, n: &ObjectDecl, at: Option<&str>, out: &mut Vec<Found>) {
    let what = at.map_or_else(|| "the event's properties".to_owned(), |p| format!("`{p}`"));
    if n.unknown_keys == UnknownKeys::Strict && o.unknown_keys != UnknownKeys::Strict {
        out.push(
            Found::new(
                Rule::StripToStrict,
                at,
                format!(
                    "{what} went from `{}` to `strict`: undeclared keys are now rejected",
                    o.unknown_keys.keyword()
                ),
            )
            .sent(match at {
                Some(p) => format!("with keys in `{p}` that it does not declare"),
                None => "with properties it does not declare".to_owned(),
            }),
        );
    }
    let mut added: Vec<&PropertyDecl> = n
        .properties
        .iter()
        .filter(|p| o.get(&p.name.value).is_none())
        .collect();
    for op in &o.properties {
        let old_path = join(at, &op.name.value);
        match n.get(&op.name.value) {
            Some(np) => property(op, np, &old_path, out),
            None => {
                let same = added.iter().position(|a| {
                    a.required == op.required && shape(&a.schema) == shape(&op.schema)
                });
                if let Some(i) = same {
                    let to = added.remove(i);
                    let new_path = join(at, &to.name.value);
                    let mut f = Found::new(
                        Rule::RenamedProperty,
                        Some(&new_path),
                        format!("`{old_path}` was renamed to `{new_path}`"),
                    );
                    f.read = Some(old_path.clone());
                    out.push(f);
                } else {
                    out.push(Found::new(
                        Rule::RemovedProperty,
                        Some(&old_path),
                        format!("`{old_path}` was removed"),
                    ));
                }
                if n.unknown_keys == UnknownKeys::Strict {
                    out.push(
                        Found::new(
                            Rule::NarrowedType,
                            Some(&old_path),
                            format!(
                                "`{old_path}` is no longer declared in a strict object: sending it is rejected"
                            ),
                        )
                        .sent(format!("with `{old_path}`")),
                    );
                }
            }
        }
    }
    for np in n
        .properties
        .iter()
        .filter(|p| o.get(&p.name.value).is_none())
    {
        if np.required {
            let path = join(at, &np.name.value);
            out.push(
                Found::new(
                    Rule::NewRequiredProperty,
                    Some(&path),
                    format!("`{path}` is new and required"),
                )
                .sent(format!("without `{path}`")),
            );
        }
    }
}

/// The rules of one property in both configs.
fn property(o: &PropertyDecl, n: &PropertyDecl, path: &str, out: &mut Vec<Found>) {
    if !o.required && n.required {
        out.push(
            Found::new(
                Rule::OptionalToRequired,
                Some(path),
                format!("`{path}` was optional and is now required"),
            )
            .sent(format!("without `{path}`")),
        );
    }
    if o.required && !n.required {
        out.push(Found::new(
            Rule::RequiredToOptional,
            Some(path),
            format!("`{path}` was required and is now optional: readers must handle it missing"),
        ));
    }
    schema(&o.schema, &n.schema, path, out);
}

/// Whether a change of type from `o` to `n` only widens what is accepted
/// and keeps the JSON value's shape.
fn widens(o: PropertyType, n: PropertyType) -> bool {
    use PropertyType as T;
    matches!(
        (o, n),
        (T::Integer, T::Number) | (T::Enum | T::Timestamp, T::String)
    )
}

/// Whether a change of type from `o` to `n` only narrows what is accepted
/// and keeps the JSON value's shape.
fn narrows(o: PropertyType, n: PropertyType) -> bool {
    widens(n, o)
}

fn fmt_f64(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

fn fmt_u64(v: Option<u64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// The rules of one value's schema (a property's or an item's).
fn schema(o: &SchemaDecl, n: &SchemaDecl, path: &str, out: &mut Vec<Found>) {
    let (ot, nt) = (o.ty.value, n.ty.value);
    if ot != nt {
        let detail = format!(
            "`{path}` changed type: {} -> {}",
            ot.keyword(),
            nt.keyword()
        );
        if widens(ot, nt) {
            return;
        }
        out.push(
            Found::new(Rule::NarrowedType, Some(path), detail.clone()).sent(format!(
                "with `{path}` as {} {}",
                article(ot),
                ot.keyword()
            )),
        );
        if !narrows(ot, nt) {
            out.push(Found::new(Rule::ChangedType, Some(path), detail));
        }
        return;
    }
    if o.nullable && !n.nullable {
        out.push(
            Found::new(
                Rule::NarrowedType,
                Some(path),
                format!("`{path}` was nullable and no longer is"),
            )
            .sent(format!("with `{path}` null")),
        );
    }
    let removed: Vec<&str> = o
        .values
        .iter()
        .filter(|v| !n.values.iter().any(|nv| nv.value == v.value))
        .map(|v| v.value.as_str())
        .collect();
    if !removed.is_empty() {
        let list = removed
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut f = Found::new(
            Rule::RemovedEnumValue,
            Some(path),
            format!("`{path}` no longer accepts {list}"),
        );
        for v in &removed {
            f = f.sent(format!("with `{path}` = `{v}`"));
        }
        out.push(f);
    }
    bounds(o, n, path, out);
    let (of, nf) = (
        o.format.as_ref().map(|f| f.value),
        n.format.as_ref().map(|f| f.value),
    );
    if let Some(f) = nf
        && of != nf
    {
        let was = of.map_or("none", |f| f.keyword());
        out.push(
            Found::new(
                Rule::TighterFormat,
                Some(path),
                format!("`{path}` has format `{}` (was {was})", f.keyword()),
            )
            .sent(format!(
                "with a `{path}` that is not a valid {}",
                f.keyword()
            )),
        );
    }
    let (op, np) = (
        o.pattern.as_ref().map(|p| &p.value),
        n.pattern.as_ref().map(|p| &p.value),
    );
    if let Some(p) = np
        && op != np
    {
        let was = op.map_or_else(|| "none".to_owned(), |p| format!("`{p}`"));
        out.push(
            Found::new(
                Rule::TighterPattern,
                Some(path),
                format!("`{path}` must match `{p}` (was {was})"),
            )
            .sent(format!("with a `{path}` that does not match `{p}`")),
        );
    }
    object(&o.object, &n.object, Some(path), out);
    if let (Some(oi), Some(ni)) = (&o.items, &n.items) {
        schema(oi, ni, &format!("{path}[]"), out);
    }
}

fn article(t: PropertyType) -> &'static str {
    match t {
        PropertyType::Integer | PropertyType::Enum | PropertyType::Object | PropertyType::Array => {
            "an"
        }
        _ => "a",
    }
}

/// `tighter-bound`: new or tighter `min`, `max`, `min-length`, `max-length`,
/// `multiple-of`, one change each.
fn bounds(o: &SchemaDecl, n: &SchemaDecl, path: &str, out: &mut Vec<Found>) {
    let val = |v: &Option<crate::span::Spanned<f64>>| v.as_ref().map(|v| v.value);
    let len = |v: &Option<crate::span::Spanned<u64>>| v.as_ref().map(|v| v.value);
    let mut push = |name: &str, was: String, now: String, sent: String| {
        out.push(
            Found::new(
                Rule::TighterBound,
                Some(path),
                format!("`{path}` has `{name}` {now} (was {was})"),
            )
            .sent(sent),
        );
    };
    let (omin, nmin) = (val(&o.min), val(&n.min));
    if let Some(m) = nmin
        && omin.is_none_or(|x| m > x)
    {
        push(
            "min",
            fmt_f64(omin),
            m.to_string(),
            format!("with `{path}` below {m}"),
        );
    }
    let (omax, nmax) = (val(&o.max), val(&n.max));
    if let Some(m) = nmax
        && omax.is_none_or(|x| m < x)
    {
        push(
            "max",
            fmt_f64(omax),
            m.to_string(),
            format!("with `{path}` above {m}"),
        );
    }
    let (omin, nmin) = (len(&o.min_length), len(&n.min_length));
    if let Some(m) = nmin
        && omin.is_none_or(|x| m > x)
    {
        push(
            "min-length",
            fmt_u64(omin),
            m.to_string(),
            format!("with `{path}` shorter than {m}"),
        );
    }
    let (omax, nmax) = (len(&o.max_length), len(&n.max_length));
    if let Some(m) = nmax
        && omax.is_none_or(|x| m < x)
    {
        push(
            "max-length",
            fmt_u64(omax),
            m.to_string(),
            format!("with `{path}` longer than {m}"),
        );
    }
    let (om, nm) = (val(&o.multiple_of), val(&n.multiple_of));
    if let Some(m) = nm
        && om.is_none_or(|x| !is_multiple(x, m))
    {
        push(
            "multiple-of",
            fmt_f64(om),
            m.to_string(),
            format!("with a `{path}` that is not a multiple of {m}"),
        );
    }
}

/// Whether every multiple of `old` is a multiple of `new` (`old` is one).
fn is_multiple(old: f64, new: f64) -> bool {
    if new == 0.0 || !new.is_finite() || !old.is_finite() {
        return old == new;
    }
    let ratio = old / new;
    (ratio - ratio.round()).abs() < 1e-9 && ratio.round() != 0.0
}
