//! Checks across declarations: references bound to what they name, and
//! warnings for likely mistakes. Runs after lowering, on the whole model.

mod condition;
mod destination;
mod paths;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::span::Spanned;
use crate::suggest;

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Every cross-reference and whole-project check.
pub(crate) fn check(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let event_names = names(&config.declared.events);
    let destination_names = names(&config.declared.destinations);
    let identifier_names = names(&config.declared.identifiers);
    let user_traits = names(&config.declared.user_traits);

    for d in &config.destinations {
        for e in d.events.iter().flatten() {
            unknown_event(
                &mut out,
                e,
                &event_names,
                &format!("destination `{}`", d.name.value),
            );
        }
    }
    for d in &config.destinations {
        if let Some(filter) = &d.filter {
            let scope = condition::Scope {
                who: format!("destination `{}`", d.name.value),
                events: destination::received_events(config, d),
            };
            condition::check(config, filter, &scope, &mut out);
        }
        destination::check(config, d, &mut out);
    }
    for s in &config.segments {
        if let Some(where_) = &s.where_ {
            let scope = condition::Scope {
                who: format!("segment `{}`", s.name.value),
                events: s
                    .from
                    .iter()
                    .filter_map(|e| config.event(&e.value))
                    .collect(),
            };
            condition::check(config, where_, &scope, &mut out);
        }
    }
    for s in &config.segments {
        for e in &s.from {
            unknown_event(
                &mut out,
                e,
                &event_names,
                &format!("segment `{}`", s.name.value),
            );
        }
        for target in &s.sync_to {
            if !destination_names.contains(&target.destination.value.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::UnknownDestination,
                        target.destination.span,
                        format!(
                            "segment `{}` syncs to `{}`, which is not a declared destination",
                            s.name.value, target.destination.value
                        ),
                        "unknown destination",
                    )
                    .help(unknown_help(
                        &target.destination.value,
                        &destination_names,
                        "declare it with `destination \"NAME\" kind=\"webhook\" { ... }`",
                    )),
                );
            }
            if !identifier_names.contains(&target.identifier.value.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::UnknownIdentifier,
                        target.identifier.span,
                        format!(
                            "members are synced by `{}`, which is not an identity identifier",
                            target.identifier.value
                        ),
                        "unknown identifier",
                    )
                    .help(unknown_help(
                        &target.identifier.value,
                        &identifier_names,
                        "declare it in `identity { identifier ... }`",
                    )),
                );
            }
        }
    }
    if !user_traits.is_empty() {
        for id in &config.identity.identifiers {
            if let Some(t) = id.from.value.strip_prefix("traits.") {
                let top = t.split('.').next().unwrap_or(t);
                if !user_traits.contains(&top) {
                    out.push(
                        Diagnostic::new(
                            Code::UnknownTrait,
                            id.from.span,
                            format!("identifier `{}` reads `traits.{top}`, but no trait `{top}` is declared", id.name.value),
                            "unknown trait",
                        )
                        .help(unknown_help(top, &user_traits, &format!("declare it with `trait \"{top}\" type=\"string\"`"))),
                    );
                }
            }
        }
    }
    let mut files: Vec<(String, &Spanned<String>)> = Vec::new();
    for e in &config.events {
        let slug = crate::generate::names::file_slug(&e.name.value);
        let ident = crate::generate::names::pascal(&e.name.value);
        if slug.is_empty() {
            out.push(
                Diagnostic::new(
                    Code::InvalidName,
                    e.name.span,
                    format!(
                        "event name {:?} has no letters or digits to name its files and types",
                        e.name.value
                    ),
                    "no letters or digits",
                )
                .help("name events with words, like \"Order Completed\""),
            );
            continue;
        }
        if let Some((_, first)) = files.iter().find(|(k, _)| *k == slug || *k == ident) {
            out.push(
                Diagnostic::new(
                    Code::DuplicateName,
                    e.name.span,
                    format!("events `{}` and `{}` would generate the same file or type name", first.value, e.name.value),
                    "same generated name",
                )
                .with_label(first.span, "this event")
                .help(format!("`uniflow build` names files `{slug}.schema.json` and types `{ident}Properties`; rename one of the events")),
            );
        }
        files.push((slug, &e.name));
        files.push((ident, &e.name));
    }
    resource_names(config, &mut out);
    for e in &config.events {
        let delivered = config
            .destinations
            .iter()
            .any(|d| d.receives(&e.name.value));
        let segmented = config
            .segments
            .iter()
            .any(|s| s.from.iter().any(|f| f.value == e.name.value));
        if !delivered && !segmented {
            out.push(
                Diagnostic::new(
                    Code::UnusedEvent,
                    e.name.span,
                    format!("event `{}` is validated and archived, but no destination receives it and no segment reads it", e.name.value),
                    "not used",
                )
                .help("add it to a destination's `events`, read it in a segment's `from`, or remove it"),
            );
        }
    }
    out
}

/// SQS queue names are at most 80 characters.
const MAX_QUEUE_NAME: usize = 80;

/// Destination names become AWS resource names (`<project>-<stage>-<name>`
/// and `...-dlq` queues) and CloudFormation logical ids; each must be unique
/// and within AWS limits.
fn resource_names(config: &Config, out: &mut Vec<Diagnostic>) {
    let Some(project) = &config.project else {
        return;
    };
    let prefix = format!("{}-{}", project.name.value, project.stage.value);
    let mut ids: Vec<(String, &Spanned<String>)> = Vec::new();
    for d in &config.destinations {
        let name = &d.name;
        let dlq = format!("{prefix}-{}-dlq", name.value);
        let reserved = if name.value == "processor-failures" {
            Some("the processor's failure queue is named `<project>-<stage>-processor-failures`")
        } else if name.value.ends_with("-dlq") {
            Some(
                "the queue of destination `x` is `<project>-<stage>-x` and its dead-letter queue `...-x-dlq`",
            )
        } else {
            None
        };
        if let Some(why) = reserved {
            out.push(
                Diagnostic::new(
                    Code::ResourceName,
                    name.span,
                    format!(
                        "destination name `{}` would clash with another queue's name",
                        name.value
                    ),
                    "reserved queue name",
                )
                .help(format!("{why}; choose another name")),
            );
        } else if dlq.len() > MAX_QUEUE_NAME {
            out.push(
                Diagnostic::new(
                    Code::ResourceName,
                    name.span,
                    format!(
                        "the dead-letter queue of destination `{}` would be named `{dlq}`, {} characters; SQS allows {MAX_QUEUE_NAME}",
                        name.value,
                        dlq.len()
                    ),
                    "name too long for AWS",
                )
                .help(format!(
                    "shorten the destination name to at most {} characters, or the project or stage name",
                    MAX_QUEUE_NAME.saturating_sub(prefix.len() + 5)
                )),
            );
        }
        let id = crate::generate::cloudformation::logical(&name.value);
        // Two destinations of one name are already a `duplicate-name`.
        if let Some((_, first)) = ids
            .iter()
            .find(|(k, first)| *k == id && first.value != name.value)
        {
            out.push(
                Diagnostic::new(
                    Code::ResourceName,
                    name.span,
                    format!(
                        "destinations `{}` and `{}` would both name their CloudFormation resources `Destination{id}...`",
                        first.value, name.value
                    ),
                    "same logical id",
                )
                .with_label(first.span, "this destination")
                .help("logical ids drop the dashes: rename one so they differ in more than dashes"),
            );
        }
        ids.push((id, name));
    }
}

fn unknown_event(out: &mut Vec<Diagnostic>, e: &Spanned<String>, events: &[&str], who: &str) {
    if events.contains(&e.value.as_str()) {
        return;
    }
    out.push(
        Diagnostic::new(
            Code::UnknownEvent,
            e.span,
            format!("{who} names event `{}`, which is not declared", e.value),
            "unknown event",
        )
        .help(unknown_help(
            &e.value,
            events,
            &format!("declare it with `event \"{}\" {{ ... }}`", e.value),
        )),
    );
}

fn unknown_help(name: &str, known: &[&str], otherwise: &str) -> String {
    match suggest::did_you_mean(name, known.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => otherwise.to_owned(),
    }
}
