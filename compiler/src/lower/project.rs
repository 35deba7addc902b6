//! `project "name" { region ...; stage ...; tags { ... }; traffic ... }`.

use std::collections::BTreeMap;

use kdl::KdlNode;

use super::check_slug;
use super::reader::{Lowerer, Shape, children, name_span, string_setting};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Project, Traffic};
use crate::span::{Span, Spanned};
use crate::suggest;
use crate::values::REGIONS;

const SHAPE: Shape = Shape {
    name: "project",
    args: &["the project name"],
    required_args: 1,
    variadic: false,
    props: &[],
    children: true,
    example: "project \"acme-shop\" { region \"eu-west-1\" }",
};

const SETTINGS: &[&str] = &["region", "stage", "tags", "traffic"];

const TRAFFIC: Shape = Shape {
    name: "traffic",
    args: &[],
    required_args: 0,
    variadic: false,
    props: &[
        "events-per-month",
        "mean-event-bytes",
        "monthly-tracked-users",
    ],
    children: false,
    example: "traffic events-per-month=5_000_000 mean-event-bytes=900 monthly-tracked-users=50_000",
};

const TAGS: Shape = Shape {
    name: "tags",
    args: &[],
    required_args: 0,
    variadic: false,
    props: &[],
    children: true,
    example: "tags { team \"growth\"; cost-center \"cc-42\" }",
};

pub(super) fn lower(cx: &mut Lowerer, node: &KdlNode) -> Option<Project> {
    let entries = cx.entries(node, &SHAPE);
    let name = cx.nonempty_string(entries.arg(0), "the project name");
    if let Some(name) = &name {
        check_slug(cx, "project", name, 32);
    }
    let (mut region, mut stage, mut traffic) = (None, None, Traffic::default());
    let mut tags = BTreeMap::new();
    let (mut seen_region, mut seen_stage, mut seen_tags, mut seen_traffic) =
        (None, None, None, None);
    for child in children(node) {
        match child.name().value() {
            "region" => {
                if cx.once(&mut seen_region, child, "project") {
                    let entry =
                        cx.setting(child, &string_setting("region", "region \"eu-west-1\""));
                    region = cx
                        .string(entry, "the region")
                        .and_then(|r| check_region(cx, r));
                }
            }
            "stage" => {
                if cx.once(&mut seen_stage, child, "project") {
                    let entry = cx.setting(child, &string_setting("stage", "stage \"prod\""));
                    stage = cx.string(entry, "the stage");
                    if let Some(s) = &stage {
                        check_slug(cx, "stage", s, 16);
                    }
                }
            }
            "tags" => {
                if cx.once(&mut seen_tags, child, "project") {
                    cx.entries(child, &TAGS);
                    let mut first: BTreeMap<&str, Span> = BTreeMap::new();
                    for tag in children(child) {
                        let key = tag.name().value();
                        if let Some(&original) = first.get(key) {
                            cx.push(
                                Diagnostic::new(
                                    Code::DuplicateSetting,
                                    name_span(tag),
                                    format!("tag `{key}` is set twice"),
                                    "set again here",
                                )
                                .with_label(original, "first set here")
                                .help(format!("keep one `{key}`")),
                            );
                            continue;
                        }
                        first.insert(key, name_span(tag));
                        let shape = string_setting("tags entry", "team \"growth\"");
                        let entry = cx.setting(tag, &shape);
                        if let Some(v) = cx.string(entry, "a tag value") {
                            tags.insert(key.to_owned(), v.value);
                        }
                    }
                }
            }
            "traffic" => {
                if cx.once(&mut seen_traffic, child, "project") {
                    let e = cx.entries(child, &TRAFFIC);
                    let big = i128::from(u64::MAX);
                    if let Some(v) =
                        cx.integer(e.prop("events-per-month"), "`events-per-month`", 0, big)
                    {
                        traffic.events_per_month = v.value as u64;
                    }
                    if let Some(v) = cx.integer(
                        e.prop("mean-event-bytes"),
                        "`mean-event-bytes`",
                        1,
                        32 * 1024,
                    ) {
                        traffic.mean_event_bytes = v.value as u64;
                    }
                    if let Some(v) = cx.integer(
                        e.prop("monthly-tracked-users"),
                        "`monthly-tracked-users`",
                        0,
                        big,
                    ) {
                        traffic.monthly_tracked_users = v.value as u64;
                    }
                }
            }
            _ => cx.unknown_node(child, "project", SETTINGS),
        }
    }
    let name = name?;
    let Some(region) = region else {
        if seen_region.is_none() {
            cx.push(
                Diagnostic::new(
                    Code::MissingSetting,
                    name_span(node),
                    "`project` needs a `region`",
                    "no region",
                )
                .help("add `region \"eu-west-1\"` (the AWS region to deploy to) inside the project block"),
            );
        }
        return None;
    };
    let stage = stage.unwrap_or_else(|| Spanned::new("dev".to_owned(), name_span(node)));
    Some(Project {
        name,
        region,
        stage,
        tags,
        traffic,
    })
}

fn check_region(cx: &mut Lowerer, region: Spanned<String>) -> Option<Spanned<String>> {
    if REGIONS.contains(&region.value.as_str()) {
        return Some(region);
    }
    cx.push(
        Diagnostic::new(
            Code::InvalidRegion,
            region.span,
            format!("{:?} is not an AWS region", region.value),
            "unknown region",
        )
        .help(
            suggest::did_you_mean(&region.value, REGIONS.iter().copied())
                .map(|r| format!("did you mean `{r}`?"))
                .unwrap_or_else(|| "use a region code like `eu-west-1` or `us-east-1`".to_owned()),
        ),
    );
    None
}
