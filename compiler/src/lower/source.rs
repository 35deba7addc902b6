//! `source "web" kind="browser" { allow-origin ...; on-violation ...; dedupe-window ... }`.

use kdl::KdlNode;

use super::check_slug;
use super::reader::{Lowerer, Shape, children, name_span, string_setting};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Source, SourceKind, ViolationPolicy};
use crate::span::Spanned;
use crate::values;

const SHAPE: Shape = Shape {
    name: "source",
    args: &["the source name"],
    required_args: 1,
    variadic: false,
    props: &["kind"],
    children: true,
    example: "source \"web\" kind=\"browser\" { allow-origin \"https://shop.example.com\" }",
};

const SETTINGS: &[&str] = &[
    "allow-origin",
    "on-violation",
    "on-undeclared",
    "dedupe-window",
];

const KINDS: &[(&str, SourceKind)] = &[
    ("browser", SourceKind::Browser),
    ("server", SourceKind::Server),
    ("mobile", SourceKind::Mobile),
];

pub(crate) const POLICIES: &[(&str, ViolationPolicy)] = &[
    ("reject", ViolationPolicy::Reject),
    ("quarantine", ViolationPolicy::Quarantine),
    ("allow", ViolationPolicy::Allow),
];

const ORIGINS: Shape = Shape {
    name: "allow-origin",
    args: &["an origin"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "allow-origin \"https://shop.example.com\" \"https://www.example.com\"",
};

/// The longest dedupe window: Kinesis keeps records for 7 days, so a longer
/// window could not catch a redelivery that the stream itself no longer holds.
const MAX_DEDUPE_SECS: u64 = 7 * 86_400;

pub(super) fn lower(cx: &mut Lowerer, node: &KdlNode) -> Option<Source> {
    let entries = cx.entries(node, &SHAPE);
    let name = cx.nonempty_string(entries.arg(0), "the source name");
    if let Some(name) = &name {
        check_slug(cx, "source", name, 40);
    }
    let kind = match entries.prop("kind") {
        Some(entry) => cx
            .keyword(Some(entry), "the source kind", KINDS)
            .map(|k| k.value),
        None => {
            cx.push(
                Diagnostic::new(
                    Code::MissingSetting,
                    name_span(node),
                    "`source` needs a `kind`",
                    "no kind",
                )
                .help(
                    "add `kind=\"browser\"`, `kind=\"server\"` or `kind=\"mobile\"` after the name",
                ),
            );
            None
        }
    };
    let mut origins = Vec::new();
    let mut origin_nodes = Vec::new();
    let (mut on_violation, mut on_undeclared, mut dedupe) = (None, None, None);
    let (mut seen_violation, mut seen_undeclared, mut seen_dedupe) = (None, None, None);
    for child in children(node) {
        match child.name().value() {
            "allow-origin" => {
                origin_nodes.push(name_span(child));
                let e = cx.entries(child, &ORIGINS);
                for entry in e.args {
                    let Some(origin) = cx.string(Some(entry), "an allowed origin") else {
                        continue;
                    };
                    match values::check_origin(&origin.value) {
                        Ok(()) => origins.push(origin),
                        Err(why) => cx.push(
                            Diagnostic::new(
                                Code::InvalidOrigin,
                                origin.span,
                                format!("{:?} is not an origin: {why}", origin.value),
                                "invalid origin",
                            )
                            .help("an origin is a scheme and host, with an optional port: \"https://shop.example.com\""),
                        ),
                    }
                }
            }
            "on-violation" => {
                if cx.once(&mut seen_violation, child, "source") {
                    let entry = cx.setting(
                        child,
                        &string_setting("on-violation", "on-violation \"quarantine\""),
                    );
                    on_violation = cx
                        .keyword(entry, "the violation policy", POLICIES)
                        .map(|p| p.value);
                }
            }
            "on-undeclared" => {
                if cx.once(&mut seen_undeclared, child, "source") {
                    let entry = cx.setting(
                        child,
                        &string_setting("on-undeclared", "on-undeclared \"allow\""),
                    );
                    on_undeclared = cx
                        .keyword(entry, "the undeclared-event policy", POLICIES)
                        .map(|p| p.value);
                }
            }
            "dedupe-window" => {
                if cx.once(&mut seen_dedupe, child, "source") {
                    let entry = cx.setting(
                        child,
                        &string_setting("dedupe-window", "dedupe-window \"24h\""),
                    );
                    dedupe = cx
                        .duration(entry, "the dedupe window")
                        .and_then(|d| check_dedupe(cx, d));
                }
            }
            _ => cx.unknown_node(child, "source", SETTINGS),
        }
    }
    let kind = kind?;
    match kind {
        SourceKind::Browser if origin_nodes.is_empty() => cx.push(
            Diagnostic::new(
                Code::NoAllowedOrigins,
                name_span(node),
                "browser source has no allowed origins, so browsers will be refused by CORS",
                "no `allow-origin`",
            )
            .help("add `allow-origin \"https://your-site.example\"` inside the source block"),
        ),
        SourceKind::Server | SourceKind::Mobile => {
            for span in &origin_nodes {
                cx.push(
                    Diagnostic::new(
                        Code::IgnoredSetting,
                        *span,
                        "`allow-origin` only applies to browser sources",
                        "ignored",
                    )
                    .with_label(name_span(node), "this source is not a browser source")
                    .help("remove it, or make the source `kind=\"browser\"`"),
                );
            }
        }
        SourceKind::Browser => {}
    }
    let on_violation = on_violation.unwrap_or(match kind {
        SourceKind::Server => ViolationPolicy::Reject,
        SourceKind::Browser | SourceKind::Mobile => ViolationPolicy::Quarantine,
    });
    Some(Source {
        name: name?,
        kind,
        allowed_origins: origins,
        on_violation,
        on_undeclared: on_undeclared.unwrap_or(ViolationPolicy::Allow),
        dedupe_window_secs: dedupe.map_or(86_400, |d| d.value),
        span: node.span().into(),
    })
}

fn check_dedupe(cx: &mut Lowerer, d: Spanned<u64>) -> Option<Spanned<u64>> {
    if d.value == 0 || d.value > MAX_DEDUPE_SECS {
        cx.push(
            Diagnostic::new(
                Code::OutOfRange,
                d.span,
                format!(
                    "the dedupe window must be between 1s and 7d, not {}",
                    values::format_duration(d.value)
                ),
                "out of range",
            )
            .help("the stream keeps events for 7 days, so a longer window could not catch their redelivery; use \"24h\" unless you need more"),
        );
        return None;
    }
    Some(d)
}
