//! Resolving event field paths (`properties.revenue`, `traits.address.city`)
//! against the declared schemas: the one lookup behind condition checks and
//! destination transform and template checks.

use uniflow_schemas::condition::OperandKind;
use uniflow_schemas::{PropertyType, UnknownKeys};

use crate::model::{Config, Event, ObjectDecl, SchemaDecl};
use crate::span::Spanned;
use crate::suggest;

/// The type of a field as far as the checks care.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind<'a> {
    Str,
    Num,
    Bool,
    Enum(&'a [Spanned<String>]),
    /// An object or array: every comparison with it is UNKNOWN.
    Composite(&'static str),
    /// Not declared precisely (`context`, passthrough objects): not checked.
    Any,
}

impl Kind<'_> {
    pub(super) fn noun(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Num => "a number",
            Kind::Bool => "a boolean",
            Kind::Enum(_) => "an enum",
            Kind::Composite(n) => n,
            Kind::Any => "any value",
        }
    }

    pub(super) fn fits(self, lit: &OperandKind) -> bool {
        matches!(
            (self, lit),
            (Kind::Any, _)
                | (Kind::Str | Kind::Enum(_), OperandKind::String(_))
                | (Kind::Num, OperandKind::Number(_))
                | (Kind::Bool, OperandKind::Bool(_))
        )
    }
}

pub(super) fn kind_of(s: &SchemaDecl) -> Kind<'_> {
    match s.ty.value {
        PropertyType::String | PropertyType::Timestamp => Kind::Str,
        PropertyType::Number | PropertyType::Integer => Kind::Num,
        PropertyType::Boolean => Kind::Bool,
        PropertyType::Enum => Kind::Enum(&s.values),
        PropertyType::Object => Kind::Composite("an object"),
        PropertyType::Array => Kind::Composite("an array"),
    }
}

enum Res<'a> {
    Missing,
    Found(Kind<'a>),
}

fn resolve<'a>(obj: &'a ObjectDecl, rest: &[String]) -> Res<'a> {
    let Some((first, more)) = rest.split_first() else {
        return Res::Found(Kind::Composite("an object"));
    };
    match obj.get(first) {
        None if obj.unknown_keys == UnknownKeys::Passthrough => Res::Found(Kind::Any),
        None => Res::Missing,
        Some(p) if more.is_empty() => Res::Found(kind_of(&p.schema)),
        Some(p) if p.schema.ty.value == PropertyType::Object => resolve(&p.schema.object, more),
        Some(_) => Res::Missing,
    }
}

/// The keys declared at the parent of `rest`'s last segment, for suggestions.
fn keys_at<'a>(obj: &'a ObjectDecl, rest: &[String], out: &mut Vec<&'a str>) {
    match rest {
        [] | [_] => out.extend(obj.properties.iter().map(|p| p.name.value.as_str())),
        [first, more @ ..] => {
            if let Some(p) = obj.get(first) {
                keys_at(&p.schema.object, more, out);
            }
        }
    }
}

/// The kinds `properties.<rest>` has in the events that declare it; empty
/// when none does. A passthrough object declares every key (as any value).
pub(super) fn property_kinds<'a>(events: &[&'a Event], rest: &[String]) -> Vec<Kind<'a>> {
    events
        .iter()
        .filter_map(|e| match resolve(&e.properties, rest) {
            Res::Found(k) => Some(k),
            Res::Missing => None,
        })
        .collect()
}

/// The help of an unknown `properties.X...` (`segments` starts with `properties`).
pub(super) fn unknown_property_help(events: &[&Event], segments: &[String]) -> String {
    let mut keys = Vec::new();
    for e in events {
        keys_at(&e.properties, &segments[1..], &mut keys);
    }
    keys.sort_unstable();
    keys.dedup();
    let last = segments.last().map_or("", String::as_str);
    let parent = segments[..segments.len() - 1].join(".");
    match suggest::did_you_mean(last, keys.iter().copied()) {
        Some(best) => format!("did you mean `{parent}.{best}`?"),
        None if keys.is_empty() => {
            format!("declare it with `property \"{last}\" type=\"...\"` in one of these events")
        }
        None => format!("`{parent}` has {}", suggest::list(&keys)),
    }
}

/// The kinds `traits.<rest>` has among the user and group traits; empty
/// when no trait declares it.
pub(super) fn trait_kinds<'a>(config: &'a Config, rest: &[String]) -> Vec<Kind<'a>> {
    let Some((name, more)) = rest.split_first() else {
        return vec![Kind::Composite("an object")];
    };
    let mut kinds = Vec::new();
    for t in config
        .traits
        .iter()
        .filter(|t| &t.property.name.value == name)
    {
        let s = &t.property.schema;
        if more.is_empty() {
            kinds.push(kind_of(s));
        } else if s.ty.value == PropertyType::Object
            && let Res::Found(k) = resolve(&s.object, more)
        {
            kinds.push(k);
        }
    }
    kinds
}

/// The help of an unknown `traits.<rest>`.
pub(super) fn unknown_trait_help(config: &Config, rest: &[String]) -> String {
    let name = rest.first().map_or("", String::as_str);
    let top = rest.len() <= 1;
    let traits: Vec<&str> = config
        .traits
        .iter()
        .map(|t| t.property.name.value.as_str())
        .collect();
    match suggest::did_you_mean(name, traits.iter().copied()) {
        Some(best) if top => format!("did you mean `traits.{best}`?"),
        _ if top => format!("declare it with `trait \"{name}\" type=\"string\"`"),
        _ => format!("trait `{name}` declares no such nested property"),
    }
}
