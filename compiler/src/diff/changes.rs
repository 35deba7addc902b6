//! The domain diff: what was added, removed or changed, one [`Change`] per
//! thing, with one `old -> new` detail line per changed setting.

use std::fmt::Display;

use crate::model::{
    Backoff, Config, Destination, DestinationKind, ExportFormat, HeaderValue, Identifier,
    ObjectDecl, Project, PropertyDecl, SchemaDecl, Segment, Source, SourceKind, TraitScope,
    TransformDecl, ViolationPolicy,
};
use crate::values::{format_duration, format_duration_ms};

use super::{Action, Change, Subject};

/// One thing matched by name across the two configs.
pub(super) enum Pair<'a, T> {
    /// Only in the new config.
    Added(&'a T),
    /// Only in the old config.
    Removed(&'a T),
    /// In both: old, new.
    Both(&'a T, &'a T),
}

/// Matches `old` and `new` by `key`, in the new list's order; a removed item
/// comes right after the item that preceded it in the old list and is still
/// there (first when none does).
pub(super) fn pairs<'a, T, K: PartialEq>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<Pair<'a, T>> {
    let mut removed: Vec<(Option<usize>, &'a T)> = Vec::new();
    let mut anchor = None;
    for o in old {
        let k = key(o);
        match new.iter().position(|n| key(n) == k) {
            Some(i) => anchor = Some(i),
            None => removed.push((anchor, o)),
        }
    }
    let mut out: Vec<Pair<'a, T>> = removed
        .iter()
        .filter(|(a, _)| a.is_none())
        .map(|(_, o)| Pair::Removed(*o))
        .collect();
    for (i, n) in new.iter().enumerate() {
        let k = key(n);
        out.push(match old.iter().find(|o| key(o) == k) {
            Some(o) => Pair::Both(o, n),
            None => Pair::Added(n),
        });
        out.extend(
            removed
                .iter()
                .filter(|(a, _)| *a == Some(i))
                .map(|(_, o)| Pair::Removed(*o)),
        );
    }
    out
}

/// Every change from `old` to `new`: project, sources, events (each followed
/// by its properties), traits, identity, destinations, segments.
pub(super) fn changes(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Out::default();
    project(&mut out, old.project.as_ref(), new.project.as_ref());
    for pair in pairs(&old.sources, &new.sources, |s| s.name.value.as_str()) {
        out.pair(Subject::Source, pair, |s| s.name.value.clone(), source);
    }
    for pair in pairs(&old.events, &new.events, |e| e.name.value.as_str()) {
        let name = match &pair {
            Pair::Added(e) | Pair::Removed(e) | Pair::Both(_, e) => e.name.value.clone(),
        };
        if let Pair::Both(o, n) = pair {
            let mut d = Vec::new();
            field(
                &mut d,
                "description",
                text(&o.description),
                text(&n.description),
            );
            field(&mut d, "version", o.version, n.version);
            field(
                &mut d,
                "unknown-keys",
                o.properties.unknown_keys.keyword(),
                n.properties.unknown_keys.keyword(),
            );
            out.push(Subject::Event, Action::Change, &name, d);
            object(
                &mut out,
                Subject::Property,
                &name,
                &o.properties,
                &n.properties,
            );
        } else {
            out.pair(
                Subject::Event,
                pair,
                |e| e.name.value.clone(),
                |_, _| Vec::new(),
            );
        }
    }
    let trait_name = |t: &crate::model::Trait| {
        let scope = match t.scope {
            TraitScope::User => "user",
            TraitScope::Group => "group",
        };
        format!("{scope}.{}", t.property.name.value)
    };
    for pair in pairs(&old.traits, &new.traits, trait_name) {
        if let Pair::Both(o, n) = pair {
            let name = trait_name(n);
            let d = schema_details(&o.property.schema, &n.property.schema);
            out.push(Subject::Trait, Action::Change, &name, d);
            children(
                &mut out,
                Subject::Trait,
                &name,
                &o.property.schema,
                &n.property.schema,
            );
        } else {
            out.pair(Subject::Trait, pair, trait_name, |_, _| Vec::new());
        }
    }
    let (oi, ni) = (&old.identity, &new.identity);
    for pair in pairs(&oi.identifiers, &ni.identifiers, |i| i.name.value.as_str()) {
        out.pair(
            Subject::Identifier,
            pair,
            |i| i.name.value.clone(),
            identifier,
        );
    }
    let mut d = Vec::new();
    set(&mut d, "blocked", &oi.blocked, &ni.blocked);
    out.push(Subject::Identifier, Action::Change, "blocked", d);
    for pair in pairs(&old.destinations, &new.destinations, |d| {
        d.name.value.as_str()
    }) {
        out.pair(
            Subject::Destination,
            pair,
            |d| d.name.value.clone(),
            destination,
        );
    }
    for pair in pairs(&old.segments, &new.segments, |s| s.name.value.as_str()) {
        out.pair(Subject::Segment, pair, |s| s.name.value.clone(), segment);
    }
    out.changes
}

#[derive(Default)]
struct Out {
    changes: Vec<Change>,
}

impl Out {
    /// Adds a change; a `Change` without details is no change and is skipped.
    fn push(&mut self, subject: Subject, action: Action, name: &str, details: Vec<String>) {
        if action == Action::Change && details.is_empty() {
            return;
        }
        self.changes.push(Change {
            subject,
            action,
            name: name.to_owned(),
            details,
        });
    }

    /// Adds the change of one matched pair, with `details` for one in both.
    fn pair<T>(
        &mut self,
        subject: Subject,
        pair: Pair<'_, T>,
        name: impl Fn(&T) -> String,
        details: impl Fn(&T, &T) -> Vec<String>,
    ) {
        match pair {
            Pair::Added(n) => self.push(subject, Action::Add, &name(n), Vec::new()),
            Pair::Removed(o) => self.push(subject, Action::Remove, &name(o), Vec::new()),
            Pair::Both(o, n) => self.push(subject, Action::Change, &name(n), details(o, n)),
        }
    }
}

/// `label: old -> new` when they differ.
fn field(d: &mut Vec<String>, label: &str, old: impl Display, new: impl Display) {
    let (old, new) = (old.to_string(), new.to_string());
    if old != new {
        d.push(format!("{label}: {old} -> {new}"));
    }
}

/// `label: +added -removed` when the sets differ (added in the new order,
/// removed in the old order).
fn set(d: &mut Vec<String>, label: &str, old: &[String], new: &[String]) {
    let mut parts: Vec<String> = new
        .iter()
        .filter(|n| !old.contains(n))
        .map(|n| format!("+{n}"))
        .collect();
    parts.extend(
        old.iter()
            .filter(|o| !new.contains(o))
            .map(|o| format!("-{o}")),
    );
    if !parts.is_empty() {
        d.push(format!("{label}: {}", parts.join(" ")));
    }
}

/// An optional value, `none` when absent.
fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// An optional text, quoted, `none` when absent.
fn text(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_owned(), |v| format!("\"{v}\""))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A list of names, `all` when there is no list.
fn list_or_all<T>(v: Option<&[T]>, name: impl Fn(&T) -> String) -> String {
    v.map_or_else(
        || "all".to_owned(),
        |v| v.iter().map(name).collect::<Vec<_>>().join(", "),
    )
}

fn project(out: &mut Out, old: Option<&Project>, new: Option<&Project>) {
    match (old, new) {
        (None, Some(n)) => out.push(Subject::Project, Action::Add, &n.name.value, Vec::new()),
        (Some(o), None) => out.push(Subject::Project, Action::Remove, &o.name.value, Vec::new()),
        (None, None) => {}
        (Some(o), Some(n)) => {
            let mut d = Vec::new();
            field(&mut d, "name", &o.name.value, &n.name.value);
            field(&mut d, "region", &o.region.value, &n.region.value);
            field(&mut d, "stage", &o.stage.value, &n.stage.value);
            let keys = o
                .tags
                .keys()
                .chain(n.tags.keys().filter(|k| !o.tags.contains_key(*k)));
            for k in keys {
                field(
                    &mut d,
                    &format!("tag {k}"),
                    opt(o.tags.get(k)),
                    opt(n.tags.get(k)),
                );
            }
            let (ot, nt) = (o.traffic, n.traffic);
            field(
                &mut d,
                "events-per-month",
                ot.events_per_month,
                nt.events_per_month,
            );
            field(
                &mut d,
                "mean-event-bytes",
                ot.mean_event_bytes,
                nt.mean_event_bytes,
            );
            field(
                &mut d,
                "monthly-tracked-users",
                ot.monthly_tracked_users,
                nt.monthly_tracked_users,
            );
            out.push(Subject::Project, Action::Change, &n.name.value, d);
        }
    }
}

fn source_kind(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Browser => "browser",
        SourceKind::Server => "server",
        SourceKind::Mobile => "mobile",
    }
}

fn policy(p: ViolationPolicy) -> &'static str {
    match p {
        ViolationPolicy::Reject => "reject",
        ViolationPolicy::Quarantine => "quarantine",
        ViolationPolicy::Allow => "allow",
    }
}

fn source(o: &Source, n: &Source) -> Vec<String> {
    let mut d = Vec::new();
    field(&mut d, "kind", source_kind(o.kind), source_kind(n.kind));
    let origins =
        |s: &Source| -> Vec<String> { s.allowed_origins.iter().map(|o| o.value.clone()).collect() };
    set(&mut d, "allow-origin", &origins(o), &origins(n));
    field(
        &mut d,
        "on-violation",
        policy(o.on_violation),
        policy(n.on_violation),
    );
    field(
        &mut d,
        "on-undeclared",
        policy(o.on_undeclared),
        policy(n.on_undeclared),
    );
    field(
        &mut d,
        "dedupe-window",
        format_duration(o.dedupe_window_secs),
        format_duration(n.dedupe_window_secs),
    );
    d
}

/// The settings of one value's schema that differ (not its children).
pub(super) fn schema_details(o: &SchemaDecl, n: &SchemaDecl) -> Vec<String> {
    let mut d = Vec::new();
    field(&mut d, "type", o.ty.value.keyword(), n.ty.value.keyword());
    field(&mut d, "nullable", yes_no(o.nullable), yes_no(n.nullable));
    let num = |v: &Option<crate::span::Spanned<f64>>| opt(v.as_ref().map(|v| v.value));
    let len = |v: &Option<crate::span::Spanned<u64>>| opt(v.as_ref().map(|v| v.value));
    field(&mut d, "min", num(&o.min), num(&n.min));
    field(&mut d, "max", num(&o.max), num(&n.max));
    field(
        &mut d,
        "multiple-of",
        num(&o.multiple_of),
        num(&n.multiple_of),
    );
    field(&mut d, "min-length", len(&o.min_length), len(&n.min_length));
    field(&mut d, "max-length", len(&o.max_length), len(&n.max_length));
    let pattern = |s: &SchemaDecl| opt(s.pattern.as_ref().map(|p| &p.value));
    field(&mut d, "pattern", pattern(o), pattern(n));
    let format = |s: &SchemaDecl| opt(s.format.as_ref().map(|f| f.value.keyword()));
    field(&mut d, "format", format(o), format(n));
    let values =
        |s: &SchemaDecl| -> Vec<String> { s.values.iter().map(|v| v.value.clone()).collect() };
    set(&mut d, "values", &values(o), &values(n));
    field(&mut d, "pii", yes_no(o.pii), yes_no(n.pii));
    field(
        &mut d,
        "description",
        text(&o.description),
        text(&n.description),
    );
    if o.ty.value == n.ty.value {
        field(
            &mut d,
            "unknown-keys",
            o.object.unknown_keys.keyword(),
            n.object.unknown_keys.keyword(),
        );
    }
    d
}

fn property_details(o: &PropertyDecl, n: &PropertyDecl) -> Vec<String> {
    let mut d = Vec::new();
    let req = |p: &PropertyDecl| if p.required { "required" } else { "optional" };
    if o.required != n.required {
        d.push(format!("{} -> {}", req(o), req(n)));
    }
    d.extend(schema_details(&o.schema, &n.schema));
    d
}

/// The properties of an object, each named `prefix.name`, and theirs.
fn object(out: &mut Out, subject: Subject, prefix: &str, o: &ObjectDecl, n: &ObjectDecl) {
    for pair in pairs(&o.properties, &n.properties, |p| p.name.value.as_str()) {
        let name = |p: &PropertyDecl| format!("{prefix}.{}", p.name.value);
        if let Pair::Both(op, np) = pair {
            let path = name(np);
            out.push(subject, Action::Change, &path, property_details(op, np));
            children(out, subject, &path, &op.schema, &np.schema);
        } else {
            out.pair(subject, pair, name, |_, _| Vec::new());
        }
    }
}

/// The nested properties (objects) and item schema (`path[]`) of a value
/// whose type did not change.
fn children(out: &mut Out, subject: Subject, path: &str, o: &SchemaDecl, n: &SchemaDecl) {
    if o.ty.value != n.ty.value {
        return;
    }
    object(out, subject, path, &o.object, &n.object);
    if let (Some(oi), Some(ni)) = (&o.items, &n.items) {
        let item = format!("{path}[]");
        out.push(subject, Action::Change, &item, schema_details(oi, ni));
        children(out, subject, &item, oi, ni);
    }
}

fn identifier(o: &Identifier, n: &Identifier) -> Vec<String> {
    let mut d = Vec::new();
    field(&mut d, "from", &o.from.value, &n.from.value);
    field(&mut d, "priority", o.priority.value, n.priority.value);
    field(&mut d, "limit", o.limit.value, n.limit.value);
    let norm = |i: &Identifier| {
        let words: Vec<&str> = i.normalize.iter().map(|n| n.keyword()).collect();
        if words.is_empty() {
            "none".to_owned()
        } else {
            words.join(" ")
        }
    };
    field(&mut d, "normalize", norm(o), norm(n));
    d
}

/// Where a destination delivers: its URL, bucket or function.
fn target(k: &DestinationKind) -> String {
    match k {
        DestinationKind::Webhook(w) => format!("url {}", w.url.value),
        DestinationKind::S3Export(s) => format!("bucket {}", s.bucket.value),
        DestinationKind::Lambda(l) => format!("function {}", l.function.value),
    }
}

fn export_format(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Ndjson => "ndjson",
        ExportFormat::Parquet => "parquet",
    }
}

fn transform(t: &TransformDecl) -> String {
    match t {
        TransformDecl::Rename { from, to } => format!("rename {} to={}", from.value, to.value),
        TransformDecl::Drop(p) => format!("drop {}", p.value),
        TransformDecl::Hash(p) => format!("hash {}", p.value),
    }
}

fn destination(o: &Destination, n: &Destination) -> Vec<String> {
    let mut d = Vec::new();
    match (&o.kind, &n.kind) {
        (DestinationKind::Webhook(ow), DestinationKind::Webhook(nw)) => {
            field(&mut d, "url", &ow.url.value, &nw.url.value);
            let headers = |w: &crate::model::Webhook| -> Vec<String> {
                w.headers
                    .iter()
                    .map(|h| match &h.value {
                        HeaderValue::Literal(v) => format!("{}={v}", h.name.value),
                        HeaderValue::Secret(s) => format!("{}={s}", h.name.value),
                    })
                    .collect()
            };
            set(&mut d, "header", &headers(ow), &headers(nw));
            field(
                &mut d,
                "timeout",
                format_duration(ow.timeout_secs),
                format_duration(nw.timeout_secs),
            );
        }
        (DestinationKind::S3Export(os), DestinationKind::S3Export(ns)) => {
            field(&mut d, "bucket", &os.bucket.value, &ns.bucket.value);
            field(&mut d, "prefix", &os.prefix, &ns.prefix);
            field(
                &mut d,
                "format",
                export_format(os.format),
                export_format(ns.format),
            );
        }
        (DestinationKind::Lambda(ol), DestinationKind::Lambda(nl)) => {
            field(&mut d, "function", &ol.function.value, &nl.function.value);
        }
        (ok, nk) => {
            field(&mut d, "kind", ok.keyword(), nk.keyword());
            field(&mut d, "target", target(ok), target(nk));
        }
    }
    field(
        &mut d,
        "events",
        list_or_all(o.events.as_deref(), |e| e.value.clone()),
        list_or_all(n.events.as_deref(), |e| e.value.clone()),
    );
    field(
        &mut d,
        "types",
        list_or_all(o.types.as_deref(), |t| t.value.keyword().to_owned()),
        list_or_all(n.types.as_deref(), |t| t.value.keyword().to_owned()),
    );
    let filter = |x: &Destination| x.filter.as_ref().map(|f| f.text.value.clone());
    field(&mut d, "filter", text(&filter(o)), text(&filter(n)));
    let transforms = |x: &Destination| {
        if x.transforms.is_empty() {
            "none".to_owned()
        } else {
            x.transforms
                .iter()
                .map(transform)
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    field(&mut d, "transforms", transforms(o), transforms(n));
    match (&o.template, &n.template) {
        (None, Some(_)) => d.push("template: none -> set".to_owned()),
        (Some(_), None) => d.push("template: set -> none".to_owned()),
        (Some(a), Some(b)) if a.text.value != b.text.value => d.push("template: edited".to_owned()),
        _ => {}
    }
    let allow =
        |x: &Destination| -> Vec<String> { x.allow_pii.iter().map(|a| a.value.clone()).collect() };
    set(&mut d, "allow-pii", &allow(o), &allow(n));
    let secret = |x: &Destination| opt(x.secret.as_ref());
    field(&mut d, "secret", secret(o), secret(n));
    let (or, nr) = (o.retry, n.retry);
    field(&mut d, "retry attempts", or.attempts, nr.attempts);
    let backoff = |b: Backoff| match b {
        Backoff::Exponential => "exponential",
        Backoff::Fixed => "fixed",
    };
    field(
        &mut d,
        "retry backoff",
        backoff(or.backoff),
        backoff(nr.backoff),
    );
    field(
        &mut d,
        "retry delay",
        format_duration_ms(or.delay_ms()),
        format_duration_ms(nr.delay_ms()),
    );
    field(
        &mut d,
        "retry max-age",
        format_duration(or.max_age_secs),
        format_duration(nr.max_age_secs),
    );
    let (ob, nb) = (o.batch, n.batch);
    field(&mut d, "batch max-events", ob.max_events, nb.max_events);
    field(&mut d, "batch max-bytes", ob.max_bytes, nb.max_bytes);
    field(
        &mut d,
        "batch max-wait",
        format_duration(ob.max_wait_secs),
        format_duration(nb.max_wait_secs),
    );
    d
}

fn segment(o: &Segment, n: &Segment) -> Vec<String> {
    let mut d = Vec::new();
    field(
        &mut d,
        "description",
        text(&o.description),
        text(&n.description),
    );
    let from = |s: &Segment| -> Vec<String> { s.from.iter().map(|e| e.value.clone()).collect() };
    set(&mut d, "from", &from(o), &from(n));
    let within = |s: &Segment| opt(s.within_secs.as_ref().map(|w| format_duration(w.value)));
    field(&mut d, "within", within(o), within(n));
    let where_ = |s: &Segment| s.where_.as_ref().map(|c| c.text.value.clone());
    field(&mut d, "where", text(&where_(o)), text(&where_(n)));
    let having = |s: &Segment| s.having.as_ref().map(|h| h.value.clone());
    field(&mut d, "having", text(&having(o)), text(&having(n)));
    field(
        &mut d,
        "refresh",
        format_duration(o.refresh_secs),
        format_duration(n.refresh_secs),
    );
    let sync = |s: &Segment| -> Vec<String> {
        s.sync_to
            .iter()
            .map(|t| format!("{} identifier={}", t.destination.value, t.identifier.value))
            .collect()
    };
    set(&mut d, "sync-to", &sync(o), &sync(n));
    d
}
