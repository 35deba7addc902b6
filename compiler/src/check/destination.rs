//! Checks of a destination's transforms (`rename`, `drop`, `hash`) and
//! `template` against the events it receives, and of the personal data it
//! sends.
//!
//! ## What it does
//! Resolves every path a transform names: `properties.X...` must be declared
//! by at least one event the destination receives (all declared events when
//! `events` is absent; none when `types` leaves out `track`, and then
//! `properties` is not checked) (`unknown-event-property`); `traits.X...` by
//! a user or group trait, when any trait is declared (`unknown-trait`);
//! `context.X...` and top-level fields are not checked. `hash` only hashes
//! strings and numbers (`type-mismatch`). The `to` of a `rename` may be a new
//! field. The template's variables are resolved the same way, through the
//! transforms before it: a field a `rename` wrote is read where it came from,
//! a field a `drop` or `rename` removed is an error.
//!
//! `pii-unhashed` (a warning): a webhook or lambda destination sends a value
//! marked `pii` (or a field of an object marked `pii`) that is neither hashed
//! nor dropped, nor listed in `allow-pii`. With a template, only what the
//! template reads is sent. `allow-pii` paths are checked like transforms.
//!
//! ## Why
//! A transform on a misspelt path does nothing at run time: the value it
//! was meant to hash or drop goes out as it came in.
//!
//! ## Example
//! `hash "properties.emial"`: no event declares `emial`, so `email` would be
//! sent in clear. Fix: `hash "properties.email"`.

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{
    Config, Destination, DestinationKind, Event, MessageType, ObjectDecl, TraitScope, TransformDecl,
};
use crate::span::{Span, Spanned};
use crate::{suggest, values};

use super::paths::{self, Kind};

/// The track events a destination receives.
pub(super) fn received_events<'a>(config: &'a Config, d: &Destination) -> Vec<&'a Event> {
    if !d.receives_type(MessageType::Track) {
        return Vec::new();
    }
    match &d.events {
        None => config.events.iter().collect(),
        Some(list) => list.iter().filter_map(|e| config.event(&e.value)).collect(),
    }
}

/// Every check of one destination's transforms, template and personal data.
pub(super) fn check(config: &Config, d: &Destination, out: &mut Vec<Diagnostic>) {
    let cx = Cx {
        config,
        d,
        events: received_events(config, d),
    };
    for t in &d.transforms {
        match t {
            TransformDecl::Rename { from, .. } => {
                cx.field(from, "`rename`", from.span, out);
            }
            TransformDecl::Drop(p) => {
                cx.field(p, "`drop`", p.span, out);
            }
            TransformDecl::Hash(p) => {
                let kinds = cx.field(p, "`hash`", p.span, out);
                if let Some(kind) = kinds.first()
                    && !kinds
                        .iter()
                        .any(|k| matches!(k, Kind::Str | Kind::Num | Kind::Enum(_) | Kind::Any))
                {
                    out.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            p.span,
                            format!(
                                "`hash` hashes strings and numbers, but `{}` is {}",
                                p.value,
                                kind.noun()
                            ),
                            kind.noun(),
                        )
                        .help(match kind {
                            Kind::Composite(_) => format!(
                                "hash the fields inside it (`hash \"{}.FIELD\"`), or drop it",
                                p.value
                            ),
                            _ => format!(
                                "a {} has too few values to hide behind a hash: drop it (`drop \"{}\"`), or send it as it is",
                                kind.noun().trim_start_matches("a "),
                                p.value
                            ),
                        }),
                    );
                }
            }
        }
    }
    for p in &d.allow_pii {
        cx.field(p, "`allow-pii`", p.span, out);
    }
    if let Some(template) = &d.template {
        for read in &template.reads {
            cx.template_read(read, out);
        }
    }
    cx.pii(out);
}

struct Cx<'a> {
    config: &'a Config,
    d: &'a Destination,
    events: Vec<&'a Event>,
}

/// Whether `path` is `prefix` or a field inside it.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl<'a> Cx<'a> {
    fn who(&self) -> String {
        format!("destination `{}`", self.d.name.value)
    }

    /// Resolves a field path; reports it (at `span`) when no schema declares
    /// it. Empty when it is not checked or not found.
    fn field(
        &self,
        path: &Spanned<String>,
        what: &str,
        span: Span,
        out: &mut Vec<Diagnostic>,
    ) -> Vec<Kind<'a>> {
        let segments: Vec<String> = path.value.split('.').map(str::to_owned).collect();
        let Some((root, rest)) = segments.split_first() else {
            return Vec::new();
        };
        match root.as_str() {
            "properties" if !rest.is_empty() && !self.events.is_empty() => {
                let kinds = paths::property_kinds(&self.events, rest);
                if kinds.is_empty() {
                    let names: Vec<&str> =
                        self.events.iter().map(|e| e.name.value.as_str()).collect();
                    out.push(
                        Diagnostic::new(
                            Code::UnknownEventProperty,
                            span,
                            format!(
                                "{what} of {} names `{}`, which none of its events declares (searched {})",
                                self.who(),
                                path.value,
                                names.join(", ")
                            ),
                            "unknown property",
                        )
                        .help(paths::unknown_property_help(&self.events, &segments)),
                    );
                }
                kinds
            }
            "traits" if !rest.is_empty() && !self.config.traits.is_empty() => {
                let kinds = paths::trait_kinds(self.config, rest);
                if kinds.is_empty() {
                    out.push(
                        Diagnostic::new(
                            Code::UnknownTrait,
                            span,
                            format!(
                                "{what} of {} names `{}`, but no such trait is declared",
                                self.who(),
                                path.value
                            ),
                            "unknown trait",
                        )
                        .help(paths::unknown_trait_help(self.config, rest)),
                    );
                }
                kinds
            }
            r if values::EVENT_FIELDS.contains(&r) => vec![Kind::Str],
            _ => Vec::new(),
        }
    }

    /// Checks one variable the template reads, through the transforms that
    /// run before it.
    fn template_read(&self, read: &Spanned<String>, out: &mut Vec<Diagnostic>) {
        let root = read.value.split('.').next().unwrap_or_default();
        if !values::EVENT_OBJECTS.contains(&root) && !values::EVENT_FIELDS.contains(&root) {
            let declared = self.events.iter().any(|e| e.properties.get(root).is_some());
            let is_trait = self
                .config
                .traits
                .iter()
                .any(|t| t.property.name.value == root);
            let help = if declared {
                format!(
                    "event properties are under `properties`: `{{{{ properties.{} }}}}`",
                    read.value
                )
            } else if is_trait {
                format!(
                    "traits are under `traits`: `{{{{ traits.{} }}}}`",
                    read.value
                )
            } else {
                let known = values::EVENT_OBJECTS
                    .iter()
                    .chain(values::EVENT_FIELDS)
                    .copied();
                match suggest::did_you_mean(root, known) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "the template's variables are the event's fields: `properties`, `traits`, `context`, `userId`, `event`, `timestamp`, ...".to_owned(),
                }
            };
            out.push(
                Diagnostic::new(
                    Code::InvalidTemplate,
                    read.span,
                    format!(
                        "the template of {} reads `{root}`, which is not a field of an event (rendering would fail)",
                        self.who()
                    ),
                    "not an event field",
                )
                .help(help),
            );
            return;
        }
        // Back through the transforms, last first: where the value comes from.
        let mut path = read.value.clone();
        for t in self.d.transforms.iter().rev() {
            match t {
                TransformDecl::Rename { from, to } if covers(&to.value, &path) => {
                    path = format!("{}{}", from.value, &path[to.value.len()..]);
                }
                TransformDecl::Rename { from, to } if covers(&from.value, &path) => {
                    out.push(
                        Diagnostic::new(
                            Code::UnknownEventProperty,
                            read.span,
                            format!(
                                "the template of {} reads `{}`, which `rename` moves to `{}` before the template runs",
                                self.who(),
                                read.value,
                                to.value
                            ),
                            "moved away",
                        )
                        .with_label(from.span, "moved here")
                        .help(format!(
                            "read `{}{}` in the template",
                            to.value,
                            &path[from.value.len()..]
                        )),
                    );
                    return;
                }
                TransformDecl::Drop(p) if covers(&p.value, &path) => {
                    out.push(
                        Diagnostic::new(
                            Code::UnknownEventProperty,
                            read.span,
                            format!(
                                "the template of {} reads `{}`, which `drop` removes before the template runs",
                                self.who(),
                                read.value
                            ),
                            "dropped",
                        )
                        .with_label(p.span, "dropped here")
                        .help("remove it from the template, or stop dropping it"),
                    );
                    return;
                }
                _ => {}
            }
        }
        // A renamed field was checked where `rename` reads it.
        if path == read.value {
            self.field(read, "the template", read.span, out);
        }
    }

    /// `pii-unhashed`: values marked `pii` a webhook or lambda sends in clear.
    fn pii(&self, out: &mut Vec<Diagnostic>) {
        if matches!(self.d.kind, DestinationKind::S3Export(_)) {
            return;
        }
        let mut groups: Vec<PiiGroup> = Vec::new();
        for e in &self.events {
            pii_groups(&e.properties, "properties", &mut groups);
        }
        for (ty, scope) in [
            (MessageType::Identify, TraitScope::User),
            (MessageType::Group, TraitScope::Group),
        ] {
            if !self.d.receives_type(ty) {
                continue;
            }
            let traits = ObjectDecl {
                properties: self
                    .config
                    .traits
                    .iter()
                    .filter(|t| t.scope == scope)
                    .map(|t| t.property.clone())
                    .collect(),
                unknown_keys: Default::default(),
            };
            pii_groups(&traits, "traits", &mut groups);
        }
        let mut sent: Vec<&str> = Vec::new();
        for g in &groups {
            let allowed = self.d.allow_pii.iter().any(|a| covers(&a.value, &g.path));
            if !allowed
                && !sent.contains(&g.path.as_str())
                && g.leaves.iter().any(|l| self.sends_in_clear(l))
            {
                sent.push(&g.path);
            }
        }
        let Some(first) = sent.first() else {
            return;
        };
        let list = match sent.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!(
                "{} and `{last}`",
                rest.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("`{first}`"),
        };
        out.push(
            Diagnostic::new(
                Code::PiiUnhashed,
                self.d.name.span,
                format!(
                    "{} ({}) sends personal data in clear: {list}",
                    self.who(),
                    self.d.kind.keyword(),
                ),
                "sends pii in clear",
            )
            .help(format!(
                "hash what the destination only matches on (`hash \"{first}\"`), drop what it does not need (`drop \"{first}\"`), or, when it needs the value itself, say so: `allow-pii \"{first}\"`"
            )),
        );
    }

    /// Whether the value at `path` leaves for the destination unhashed.
    fn sends_in_clear(&self, path: &str) -> bool {
        let mut at = path.to_owned();
        let mut hashed = false;
        for t in &self.d.transforms {
            match t {
                TransformDecl::Rename { from, to } if covers(&from.value, &at) => {
                    at = format!("{}{}", to.value, &at[from.value.len()..]);
                }
                TransformDecl::Drop(p) if covers(&p.value, &at) => return false,
                TransformDecl::Hash(p) if p.value == at => hashed = true,
                _ => {}
            }
        }
        let read = |r: &Spanned<String>| covers(&r.value, &at) || covers(&at, &r.value);
        !hashed
            && self
                .d
                .template
                .as_ref()
                .is_none_or(|t| t.reads.iter().any(read))
    }
}

/// A value marked `pii` as the warning names it, and the values it is made of.
struct PiiGroup {
    /// A property marked `pii` (`properties.shipping_address`).
    path: String,
    /// The paths inside it that are sent (itself, or its fields' paths).
    leaves: Vec<String>,
}

/// The values marked `pii` in `object`: fields of objects are followed (an
/// object marked `pii` is one group of all its fields), an array is one value.
fn pii_groups(object: &ObjectDecl, prefix: &str, out: &mut Vec<PiiGroup>) {
    for p in &object.properties {
        let path = format!("{prefix}.{}", p.name.value);
        let pii = p.schema.pii || p.schema.items.as_ref().is_some_and(|i| i.pii);
        if pii {
            let mut leaves = Vec::new();
            all_leaves(&p.schema.object, &path, &mut leaves);
            out.push(PiiGroup { path, leaves });
        } else {
            pii_groups(&p.schema.object, &path, out);
        }
    }
}

/// Every field path inside an object (the path itself when it has none).
fn all_leaves(object: &ObjectDecl, path: &str, out: &mut Vec<String>) {
    if object.properties.is_empty() {
        out.push(path.to_owned());
    }
    for p in &object.properties {
        all_leaves(&p.schema.object, &format!("{path}.{}", p.name.value), out);
    }
}
