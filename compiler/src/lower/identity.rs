//! `identity { identifier ...; blocked ... }`: which ids make a person, and how.

use std::collections::HashMap;

use kdl::KdlNode;
use uniflow_schemas::Normalization;

use super::reader::{Lowerer, Shape, children, name_span};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Identifier, Identity};
use crate::span::{Span, Spanned};
use crate::values;

/// Values that never identify anyone, unless `blocked defaults=#false`.
///
/// Placeholders that SDKs, forms and QA leave in id fields; one of these
/// linking thousands of people into one profile is the classic CDP failure.
pub const DEFAULT_BLOCKLIST: &[&str] = &[
    "",
    "null",
    "undefined",
    "nil",
    "none",
    "nan",
    "n/a",
    "0",
    "-1",
    "true",
    "false",
    "anonymous",
    "guest",
    "unknown",
    "test",
    "[object object]",
    "00000000-0000-0000-0000-000000000000",
    "test@test.com",
    "test@example.com",
    "email@example.com",
    "noemail@example.com",
    "no-reply@example.com",
];

/// Identifiers whose source field is known without `from=`.
const BUILTIN: &[(&str, &str)] = &[
    ("user_id", "userId"),
    ("anonymous_id", "anonymousId"),
    ("email", "traits.email"),
    ("group_id", "groupId"),
];

const SHAPE: Shape = Shape {
    name: "identity",
    args: &[],
    required_args: 0,
    variadic: false,
    props: &[],
    children: true,
    example: "identity { identifier \"user_id\" priority=1 limit=1 }",
};

const SETTINGS: &[&str] = &["identifier", "blocked"];

const IDENTIFIER: Shape = Shape {
    name: "identifier",
    args: &["the identifier name"],
    required_args: 1,
    variadic: false,
    props: &["from", "priority", "limit", "normalize"],
    children: false,
    example: "identifier \"email\" from=\"traits.email\" priority=2 limit=5 normalize=\"trim lowercase\"",
};

const BLOCKED: Shape = Shape {
    name: "blocked",
    args: &["a value"],
    required_args: 0,
    variadic: true,
    props: &["defaults"],
    children: false,
    example: "blocked \"test@acme.com\" \"N/A\"",
};

pub(super) fn lower(cx: &mut Lowerer, node: Option<&KdlNode>) -> Identity {
    let Some(node) = node else {
        return Identity {
            identifiers: vec![builtin("user_id", 1, 1), builtin("anonymous_id", 2, 100)],
            blocked: DEFAULT_BLOCKLIST.iter().map(|s| (*s).to_owned()).collect(),
        };
    };
    cx.entries(node, &SHAPE);
    let mut identifiers = Vec::new();
    let mut blocked = Vec::new();
    let mut defaults = true;
    for child in children(node) {
        match child.name().value() {
            "identifier" => identifiers.extend(lower_identifier(cx, child)),
            "blocked" => {
                let e = cx.entries(child, &BLOCKED);
                if let Some(d) = cx.boolean(e.prop("defaults"), "`defaults`") {
                    defaults = d;
                }
                for entry in e.args {
                    if let Some(v) = cx.string(Some(entry), "a blocked value") {
                        blocked.push(v.value);
                    }
                }
            }
            _ => cx.unknown_node(child, "identity", SETTINGS),
        }
    }
    let declared_any = children(node)
        .iter()
        .any(|c| c.name().value() == "identifier");
    if !declared_any {
        cx.push(
            Diagnostic::new(
                Code::MissingSetting,
                name_span(node),
                "`identity` declares no identifiers, so no event could be tied to a person",
                "no identifiers",
            )
            .help("add at least `identifier \"user_id\" priority=1 limit=1` and `identifier \"anonymous_id\" priority=2 limit=100`"),
        );
    }
    let mut priorities: HashMap<u32, Span> = HashMap::new();
    for id in &identifiers {
        if let Some(&first) = priorities.get(&id.priority.value) {
            cx.push(
                Diagnostic::new(
                    Code::DuplicatePriority,
                    id.priority.span,
                    format!("two identifiers have priority {}", id.priority.value),
                    "same priority",
                )
                .with_label(first, "also here")
                .help("priorities decide which link is dropped when a merge is refused, so each identifier needs its own"),
            );
        } else {
            priorities.insert(id.priority.value, id.priority.span);
        }
    }
    if defaults {
        blocked.extend(DEFAULT_BLOCKLIST.iter().map(|s| (*s).to_owned()));
    }
    blocked.sort();
    blocked.dedup();
    Identity {
        identifiers,
        blocked,
    }
}

fn builtin(name: &str, priority: u32, limit: u32) -> Identifier {
    let from = BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, f)| f);
    Identifier {
        name: Spanned::new(name.to_owned(), Span::default()),
        from: Spanned::new(from.to_owned(), Span::default()),
        priority: Spanned::new(priority, Span::default()),
        limit: Spanned::new(limit, Span::default()),
        normalize: Vec::new(),
    }
}

fn lower_identifier(cx: &mut Lowerer, node: &KdlNode) -> Option<Identifier> {
    let e = cx.entries(node, &IDENTIFIER);
    let name = cx.nonempty_string(e.arg(0), "the identifier name");
    if let Some(n) = &name {
        let ok = n.value.starts_with(|c: char| c.is_ascii_lowercase())
            && n.value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            cx.push(
                Diagnostic::new(
                    Code::InvalidName,
                    n.span,
                    format!("identifier name {:?} is not a snake_case name", n.value),
                    "invalid name",
                )
                .help("use lowercase letters, digits and `_`, like `user_id` or `device_id`"),
            );
        }
    }
    let from =
        cx.string(e.prop("from"), "`from`")
            .and_then(|f| match values::check_path(&f.value) {
                Ok(()) => Some(f),
                Err(why) => {
                    cx.push(
                        Diagnostic::new(
                            Code::InvalidPath,
                            f.span,
                            format!("{:?} is not a field of an event: {why}", f.value),
                            "invalid path",
                        )
                        .help(format!(
                            "a path starts with {}, like \"traits.email\" or \"context.device.id\"",
                            crate::suggest::list(values::PATH_ROOTS)
                        )),
                    );
                    None
                }
            });
    let priority = required_int(cx, node, &e, "priority", 1, 1000, "priority=1");
    let limit = match e.prop("limit") {
        Some(entry) if matches!(entry.value(), kdl::KdlValue::Integer(0)) => {
            cx.push(
                Diagnostic::new(
                    Code::OutOfRange,
                    super::reader::value_span(entry),
                    "`limit=0` would forbid every profile from holding this identifier",
                    "limit of 0",
                )
                .help("use 1 for identifiers a person has one of (user_id), more for emails or devices; remove the identifier to stop using it"),
            );
            None
        }
        _ => required_int(cx, node, &e, "limit", 1, 100_000, "limit=5"),
    };
    let mut normalize = Vec::new();
    if let Some(n) = cx.string(e.prop("normalize"), "`normalize`") {
        for word in values::split_list(&n.value) {
            match Normalization::from_keyword(word) {
                Some(norm) if !normalize.contains(&norm) => normalize.push(norm),
                Some(_) => {}
                None => {
                    let names: Vec<&str> = Normalization::ALL.iter().map(|n| n.keyword()).collect();
                    cx.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            n.span,
                            format!("`{word}` is not a normalisation"),
                            "unknown normalisation",
                        )
                        .maybe_help(crate::suggest::help_for(
                            word,
                            &names,
                            "a normalisation",
                        )),
                    );
                }
            }
        }
    }
    let name = name?;
    let from = match from {
        Some(f) => f,
        None if e.prop("from").is_some() => return None,
        None => {
            match BUILTIN.iter().find(|(n, _)| *n == name.value) {
                Some((_, f)) => Spanned::new((*f).to_owned(), name.span),
                None => {
                    cx.push(
                    Diagnostic::new(
                        Code::MissingSetting,
                        name.span,
                        format!("identifier `{}` needs `from`: the field its value is read from", name.value),
                        "no `from`",
                    )
                    .help(format!(
                        "add `from=\"context.device.id\"` or similar; only {} are known without it",
                        crate::suggest::list(&BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                    )),
                );
                    return None;
                }
            }
        }
    };
    Some(Identifier {
        name,
        from,
        priority: priority?,
        limit: limit?,
        normalize,
    })
}

fn required_int(
    cx: &mut Lowerer,
    node: &KdlNode,
    e: &super::reader::Entries<'_>,
    key: &str,
    min: i128,
    max: i128,
    example: &str,
) -> Option<Spanned<u32>> {
    match e.prop(key) {
        Some(entry) => cx
            .integer(Some(entry), &format!("`{key}`"), min, max)
            .map(|v| v.map(|n| n as u32)),
        None => {
            cx.push(
                Diagnostic::new(
                    Code::MissingSetting,
                    name_span(node),
                    format!("`identifier` needs `{key}`"),
                    format!("no `{key}`"),
                )
                .help(format!("add `{example}`")),
            );
            None
        }
    }
}
