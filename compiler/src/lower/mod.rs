//! Lowering: the KDL document (the spanned syntax) into the resolved [`Config`],
//! reporting every shape, type and value problem of each node on the way.
//!
//! One module per top-level node. Cross-references between nodes (an event a
//! destination names, a destination a segment syncs to) are bound later, in
//! [`crate::check`], once every declaration is known.

mod destination;
mod event;
mod identity;
mod project;
mod reader;
mod segment;
mod source;
mod template;

use std::collections::HashMap;

use kdl::{KdlDocument, KdlNode};

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Config, Declared};
use crate::span::{Span, Spanned};

use reader::{Lowerer, name_span};

/// The top-level nodes, in the order the language reference documents them.
pub const TOP_LEVEL: &[&str] = &[
    "project",
    "source",
    "event",
    "trait",
    "identity",
    "destination",
    "segment",
];

/// Lowers a parsed document, returning the model and every problem found.
pub(crate) fn lower(doc: &KdlDocument) -> (Config, Vec<Diagnostic>) {
    let mut cx = Lowerer::default();
    let mut config = Config::default();
    let mut projects: Vec<&KdlNode> = Vec::new();
    let mut identity_seen = None;
    let mut identity_node = None;
    for node in doc.nodes() {
        match node.name().value() {
            "project" => projects.push(node),
            "source" => config.sources.extend(source::lower(&mut cx, node)),
            "event" => config.events.extend(event::lower_event(&mut cx, node)),
            "trait" => config.traits.extend(event::lower_trait(&mut cx, node)),
            "identity" => {
                if cx.once(&mut identity_seen, node, "") {
                    identity_node = Some(node);
                }
            }
            "destination" => config
                .destinations
                .extend(destination::lower(&mut cx, node)),
            "segment" => config.segments.extend(segment::lower(&mut cx, node)),
            _ => cx.unknown_node(node, "", TOP_LEVEL),
        }
    }
    config.identity = identity::lower(&mut cx, identity_node);
    config.declared = declared(doc, &config);
    match projects.as_slice() {
        [] => cx.push(
            Diagnostic::new(
                Code::MissingProject,
                Span::new(0, 0),
                "the file has no `project` node",
                "a `project` node belongs here",
            )
            .help("start the file with `project \"my-shop\" { region \"eu-west-1\" }`"),
        ),
        [first, rest @ ..] => {
            config.project = project::lower(&mut cx, first);
            for extra in rest {
                cx.push(
                    Diagnostic::new(
                        Code::MissingProject,
                        name_span(extra),
                        "a file describes one project, but this is a second `project` node",
                        "second project",
                    )
                    .with_label(name_span(first), "the project is declared here")
                    .help("merge the two `project` nodes, or put the second project in its own folder"),
                );
            }
        }
    }
    duplicates(&mut cx, "source", config.sources.iter().map(|s| &s.name));
    duplicates(&mut cx, "event", config.events.iter().map(|e| &e.name));
    duplicates(
        &mut cx,
        "trait",
        config
            .traits
            .iter()
            .filter(|t| t.scope == crate::model::TraitScope::User)
            .map(|t| &t.property.name),
    );
    duplicates(
        &mut cx,
        "group trait",
        config
            .traits
            .iter()
            .filter(|t| t.scope == crate::model::TraitScope::Group)
            .map(|t| &t.property.name),
    );
    duplicates(
        &mut cx,
        "destination",
        config.destinations.iter().map(|d| &d.name),
    );
    duplicates(&mut cx, "segment", config.segments.iter().map(|s| &s.name));
    duplicates(
        &mut cx,
        "identifier",
        config.identity.identifiers.iter().map(|i| &i.name),
    );
    (config, cx.diags)
}

/// The first string argument of every node named `kind`, or misspelt so that
/// did-you-mean suggests `kind` (the misspelling is reported once, as an
/// unknown node; references to what it declares are not reported again).
fn names_of<'d>(nodes: &'d [KdlNode], kind: &str) -> impl Iterator<Item = String> + 'd {
    let kind = kind.to_owned();
    nodes
        .iter()
        .filter(move |n| {
            let name = n.name().value();
            name == kind
                || (!TOP_LEVEL.contains(&name)
                    && !["identifier", "blocked"].contains(&name)
                    && crate::suggest::did_you_mean(name, [kind.as_str()]).is_some())
        })
        .filter_map(|n| n.entries().iter().find(|e| e.name().is_none()))
        .filter_map(|e| e.value().as_string().map(str::to_owned))
}

fn declared(doc: &KdlDocument, config: &Config) -> Declared {
    let nodes = doc.nodes();
    let identity: Vec<String> = match nodes.iter().find(|n| n.name().value() == "identity") {
        Some(node) => names_of(reader::children(node), "identifier").collect(),
        None => config
            .identity
            .identifiers
            .iter()
            .map(|i| i.name.value.clone())
            .collect(),
    };
    let user_traits = nodes
        .iter()
        .filter(|n| n.name().value() == "trait")
        .filter(|n| {
            n.get("scope")
                .and_then(|v| v.as_string())
                .is_none_or(|s| s != "group")
        })
        .filter_map(|n| n.entries().iter().find(|e| e.name().is_none()))
        .filter_map(|e| e.value().as_string().map(str::to_owned))
        .collect();
    Declared {
        events: names_of(nodes, "event").collect(),
        destinations: names_of(nodes, "destination").collect(),
        identifiers: identity,
        user_traits,
    }
}

/// Reports every name declared twice among `names`.
pub(crate) fn duplicates<'a>(
    cx: &mut Lowerer,
    kind: &str,
    names: impl Iterator<Item = &'a Spanned<String>>,
) {
    let mut first: HashMap<&str, Span> = HashMap::new();
    for name in names {
        if let Some(&original) = first.get(name.value.as_str()) {
            cx.push(
                Diagnostic::new(
                    Code::DuplicateName,
                    name.span,
                    format!("{kind} `{}` is declared twice", name.value),
                    "declared again here",
                )
                .with_label(original, "first declared here")
                .help(format!(
                    "rename one of them, or merge the two declarations of `{}`",
                    name.value
                )),
            );
        } else {
            first.insert(&name.value, name.span);
        }
    }
}

/// Checks a resource name (a slug that ends up in AWS resource names).
pub(crate) fn check_slug(cx: &mut Lowerer, kind: &str, name: &Spanned<String>, max: usize) {
    if !crate::values::is_slug(&name.value, max) {
        let suggestion = crate::values::slugify(&name.value);
        let help = if suggestion.is_empty() || suggestion.len() > max {
            format!(
                "use lowercase letters, digits and single dashes, starting with a letter, at most {max} characters"
            )
        } else {
            format!(
                "use lowercase letters, digits and single dashes, starting with a letter, at most {max} characters, like `{suggestion}`"
            )
        };
        cx.push(
            Diagnostic::new(
                Code::InvalidName,
                name.span,
                format!(
                    "{kind} name {:?} cannot be used to name AWS resources",
                    name.value
                ),
                "invalid name",
            )
            .help(help),
        );
    }
}
