//! `segment "name" { from ...; where ...; having ...; refresh ...; sync-to ... }`.

use kdl::KdlNode;

use super::check_slug;
use super::destination::{condition, nonempty_condition};
use super::reader::{Lowerer, Shape, children, name_span, string_setting};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Segment, SyncTarget};
use crate::span::Spanned;
use crate::values;

const SHAPE: Shape = Shape {
    name: "segment",
    args: &["the segment name"],
    required_args: 1,
    variadic: false,
    props: &[],
    children: true,
    example: "segment \"big-spenders\" { from \"Order Completed\" within=\"30d\"; having \"sum(revenue) > 500\" }",
};

const SETTINGS: &[&str] = &[
    "description",
    "from",
    "where",
    "having",
    "refresh",
    "sync-to",
];

const FROM: Shape = Shape {
    name: "from",
    args: &["an event name"],
    required_args: 1,
    variadic: true,
    props: &["within"],
    children: false,
    example: "from \"Order Completed\" within=\"30d\"",
};

const SYNC_TO: Shape = Shape {
    name: "sync-to",
    args: &["the destination name"],
    required_args: 1,
    variadic: false,
    props: &["identifier"],
    children: false,
    example: "sync-to \"crm\" identifier=\"email\"",
};

/// The fastest refresh: the audience job is a batch job over the archive.
const MIN_REFRESH_SECS: u64 = 15 * 60;

pub(super) fn lower(cx: &mut Lowerer, node: &KdlNode) -> Option<Segment> {
    let entries = cx.entries(node, &SHAPE);
    let name = cx.nonempty_string(entries.arg(0), "the segment name");
    if let Some(name) = &name {
        check_slug(cx, "segment", name, 40);
    }
    let (mut description, mut where_, mut having, mut refresh) = (None, None, None, None);
    let mut from = Vec::new();
    let mut within = None;
    let mut from_span = None;
    let mut sync_to = Vec::new();
    let (mut seen_desc, mut seen_from, mut seen_where, mut seen_having, mut seen_refresh) =
        (None, None, None, None, None);
    for child in children(node) {
        match child.name().value() {
            "description" => {
                if cx.once(&mut seen_desc, child, "segment") {
                    let e = cx.setting(
                        child,
                        &string_setting("description", "description \"Spent over 500 in 30 days\""),
                    );
                    description = cx.string(e, "the description").map(|d| d.value);
                }
            }
            "from" => {
                if cx.once(&mut seen_from, child, "segment") {
                    from_span = Some(name_span(child));
                    let e = cx.entries(child, &FROM);
                    from = e
                        .args
                        .iter()
                        .filter_map(|a| cx.nonempty_string(Some(*a), "an event name"))
                        .collect();
                    within = cx.duration(e.prop("within"), "`within`").and_then(|w| {
                        if w.value < 3600 {
                            cx.push(
                                Diagnostic::new(Code::OutOfRange, w.span, format!("`within` must be at least 1h, not {}", values::format_duration(w.value)), "too short")
                                    .help("segments are computed from the hourly archive; use a window of an hour or more"),
                            );
                            None
                        } else {
                            Some(w)
                        }
                    });
                }
            }
            "where" => {
                if cx.once(&mut seen_where, child, "segment") {
                    let e = cx.setting(
                        child,
                        &string_setting("where", "where \"properties.currency = 'EUR'\""),
                    );
                    where_ = condition(cx, e, "where");
                }
            }
            "having" => {
                if cx.once(&mut seen_having, child, "segment") {
                    let e =
                        cx.setting(child, &string_setting("having", "having \"count(*) >= 3\""));
                    having = cx
                        .string(e, "the `having` condition")
                        .and_then(|c| nonempty_condition(cx, c, "having"));
                }
            }
            "refresh" => {
                if cx.once(&mut seen_refresh, child, "segment") {
                    let e = cx.setting(child, &string_setting("refresh", "refresh \"1h\""));
                    refresh = cx.duration(e, "the refresh interval").and_then(|r| {
                        if r.value < MIN_REFRESH_SECS || r.value > 7 * 86_400 {
                            cx.push(
                                Diagnostic::new(Code::OutOfRange, r.span, format!("the refresh interval must be between 15m and 7d, not {}", values::format_duration(r.value)), "out of range")
                                    .help("segments are rebuilt by a batch job; \"1h\" is the usual cadence"),
                            );
                            None
                        } else {
                            Some(r)
                        }
                    });
                }
            }
            "sync-to" => {
                let e = cx.entries(child, &SYNC_TO);
                let dest = cx.nonempty_string(e.arg(0), "the destination name");
                let identifier = cx.nonempty_string(e.prop("identifier"), "the identifier");
                if let Some(destination) = dest {
                    let identifier = identifier
                        .unwrap_or_else(|| Spanned::new("user_id".to_owned(), name_span(child)));
                    sync_to.push(SyncTarget {
                        destination,
                        identifier,
                    });
                }
            }
            _ => cx.unknown_node(child, "segment", SETTINGS),
        }
    }
    let name = name?;
    if seen_from.is_none() && seen_where.is_none() {
        cx.push(
            Diagnostic::new(Code::EmptySegment, name.span, format!("segment `{}` has neither `from` nor `where`, so it would hold every profile", name.value), "no condition")
                .help("add `from \"Event Name\" within=\"30d\"` for people who did something, or `where \"traits.plan = 'pro'\"` for people who are something"),
        );
    }
    if let (Some(h), None) = (&having, from_span) {
        cx.push(
            Diagnostic::new(Code::HavingWithoutEvents, h.span, "`having` aggregates events, but this segment reads none", "nothing to aggregate")
                .help("add `from \"Event Name\"` to say which events `having` counts, or move the condition to `where`"),
        );
    }
    Some(Segment {
        name,
        description,
        from,
        within_secs: within,
        where_,
        having,
        refresh_secs: refresh.map_or(3600, |r| r.value),
        sync_to,
        span: node.span().into(),
    })
}
