//! `destination "name" kind="webhook|s3-export|lambda" { ... }`.

use kdl::{KdlEntry, KdlNode};
use uniflow_schemas::condition::{Condition, Operand, OperandKind};

use super::check_slug;
use super::reader::{Lowerer, Shape, children, name_span, string_setting};
use super::template;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{
    Backoff, Batch, ConditionDecl, Destination, DestinationKind, ExportFormat, Header, HeaderValue,
    LambdaTarget, MessageType, Retry, S3Export, SecretRef, TransformDecl, Webhook,
};
use crate::span::{Span, Spanned};
use crate::{suggest, values};

const SHAPE: Shape = Shape {
    name: "destination",
    args: &["the destination name"],
    required_args: 1,
    variadic: false,
    props: &["kind"],
    children: true,
    example: "destination \"crm\" kind=\"webhook\" { url \"https://hooks.example.com/uniflow\" }",
};

const SETTINGS: &[&str] = &[
    "url",
    "header",
    "timeout",
    "secret",
    "bucket",
    "prefix",
    "format",
    "function",
    "events",
    "types",
    "filter",
    "rename",
    "drop",
    "hash",
    "template",
    "allow-pii",
    "retry",
    "batch",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Webhook,
    S3Export,
    Lambda,
}

const KINDS: &[(&str, Kind)] = &[
    ("webhook", Kind::Webhook),
    ("s3-export", Kind::S3Export),
    ("lambda", Kind::Lambda),
];

const EVENTS: Shape = Shape {
    name: "events",
    args: &["an event name"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "events \"Order Completed\" \"Signed Up\"",
};

const TYPES: Shape = Shape {
    name: "types",
    args: &["a message type"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "types \"track\" \"identify\"",
};

const RENAME: Shape = Shape {
    name: "rename",
    args: &["the path renamed"],
    required_args: 1,
    variadic: false,
    props: &["to"],
    children: false,
    example: "rename \"properties.revenue\" to=\"properties.value\"",
};

const DROP: Shape = Shape {
    name: "drop",
    args: &["a path"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "drop \"context.ip\" \"properties.internal_note\"",
};

const HASH: Shape = Shape {
    name: "hash",
    args: &["a path"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "hash \"traits.email\" \"properties.phone\"",
};

const ALLOW_PII: Shape = Shape {
    name: "allow-pii",
    args: &["a path"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "allow-pii \"properties.email\"",
};

const SECRET: Shape = Shape {
    name: "secret",
    args: &["a secret reference"],
    required_args: 0,
    variadic: false,
    props: &["from"],
    children: false,
    example: "secret from=\"ssm:/acme/crm-signing-secret\"",
};

const HEADER: Shape = Shape {
    name: "header",
    args: &["the header name"],
    required_args: 1,
    variadic: false,
    props: &["value", "from"],
    children: false,
    example: "header \"X-Team\" value=\"growth\"",
};

const RETRY: Shape = Shape {
    name: "retry",
    args: &[],
    required_args: 0,
    variadic: false,
    props: &["attempts", "backoff", "delay", "max-age"],
    children: false,
    example: "retry attempts=10 backoff=\"exponential\" delay=\"1s\" max-age=\"24h\"",
};

const BATCH: Shape = Shape {
    name: "batch",
    args: &[],
    required_args: 0,
    variadic: false,
    props: &["max-events", "max-bytes", "max-wait"],
    children: false,
    example: "batch max-events=100 max-wait=\"5s\"",
};

const BACKOFFS: &[(&str, Backoff)] = &[
    ("exponential", Backoff::Exponential),
    ("fixed", Backoff::Fixed),
];

const FORMATS: &[(&str, ExportFormat)] = &[
    ("ndjson", ExportFormat::Ndjson),
    ("parquet", ExportFormat::Parquet),
];

/// Header names whose values are credentials and so may only come from a secret store.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "cookie",
];

/// Longest retry age: SQS keeps a message at most 14 days.
const MAX_AGE_SECS: u64 = 14 * 86_400;

/// Longest retry delay: SQS delays a message at most 15 minutes.
const MAX_DELAY_MS: u64 = 15 * 60 * 1000;

#[derive(Default)]
struct Seen {
    url: Option<Span>,
    timeout: Option<Span>,
    secret: Option<Span>,
    bucket: Option<Span>,
    prefix: Option<Span>,
    format: Option<Span>,
    function: Option<Span>,
    events: Option<Span>,
    types: Option<Span>,
    filter: Option<Span>,
    template: Option<Span>,
    retry: Option<Span>,
    batch: Option<Span>,
}

pub(super) fn lower(cx: &mut Lowerer, node: &KdlNode) -> Option<Destination> {
    let entries = cx.entries(node, &SHAPE);
    let name = cx.nonempty_string(entries.arg(0), "the destination name");
    if let Some(name) = &name {
        check_slug(cx, "destination", name, 40);
    }
    let kind = match entries.prop("kind") {
        Some(e) => cx.keyword(Some(e), "the destination kind", KINDS),
        None => {
            cx.push(
                Diagnostic::new(Code::MissingSetting, name_span(node), "`destination` needs a `kind`", "no kind")
                    .help("add `kind=\"webhook\"`, `kind=\"s3-export\"` or `kind=\"lambda\"` after the name"),
            );
            None
        }
    };
    let mut seen = Seen::default();
    let (mut url, mut timeout, mut secret, mut bucket, mut prefix, mut format, mut function) =
        (None, None, None, None, None, None, None);
    let mut headers = Vec::new();
    let mut events: Option<Vec<Spanned<String>>> = None;
    let mut types: Option<Vec<Spanned<MessageType>>> = None;
    let (mut transforms, mut template, mut allow_pii) = (Vec::new(), None, Vec::new());
    let (mut filter, mut retry, mut batch) = (None, Retry::default(), Batch::default());
    for child in children(node) {
        let setting = child.name().value();
        let applies = match setting {
            "url" | "header" | "timeout" | "secret" => Some(Kind::Webhook),
            "bucket" | "prefix" | "format" => Some(Kind::S3Export),
            "function" => Some(Kind::Lambda),
            _ => None,
        };
        if let (Some(needed), Some(actual)) = (applies, &kind)
            && needed != actual.value
        {
            let needed_kw = KINDS
                .iter()
                .find(|(_, k)| *k == needed)
                .map_or("", |(n, _)| n);
            let actual_kw = KINDS
                .iter()
                .find(|(_, k)| *k == actual.value)
                .map_or("", |(n, _)| n);
            cx.push(
                Diagnostic::new(
                    Code::NotApplicable,
                    name_span(child),
                    format!(
                        "`{setting}` is a setting of {needed_kw} destinations, not {actual_kw}"
                    ),
                    "not applicable",
                )
                .with_label(actual.span, format!("this destination is {actual_kw}"))
                .help(format!(
                    "remove `{setting}`, or change the kind to `{needed_kw}`"
                )),
            );
            continue;
        }
        match setting {
            "url" => {
                if cx.once(&mut seen.url, child, "destination") {
                    let e = cx.setting(
                        child,
                        &string_setting("url", "url \"https://hooks.example.com/uniflow\""),
                    );
                    url = cx
                        .string(e, "the URL")
                        .inspect(|u| check_webhook_url(cx, u));
                }
            }
            "timeout" => {
                if cx.once(&mut seen.timeout, child, "destination") {
                    let e = cx.setting(child, &string_setting("timeout", "timeout \"10s\""));
                    timeout = cx.duration(e, "the timeout").and_then(|t| {
                        in_range(
                            cx,
                            t,
                            1,
                            900,
                            "the timeout",
                            "a connector runs at most 15 minutes",
                        )
                    });
                }
            }
            "secret" => {
                if cx.once(&mut seen.secret, child, "destination") {
                    secret = lower_secret(cx, child, &SECRET, "the signing secret");
                }
            }
            "header" => headers.extend(lower_header(cx, child)),
            "bucket" => {
                if cx.once(&mut seen.bucket, child, "destination") {
                    let e = cx.setting(child, &string_setting("bucket", "bucket \"acme-exports\""));
                    bucket = cx.string(e, "the bucket").inspect(|b| check_bucket(cx, b));
                }
            }
            "prefix" => {
                if cx.once(&mut seen.prefix, child, "destination") {
                    let e = cx.setting(
                        child,
                        &string_setting("prefix", "prefix \"uniflow/events/\""),
                    );
                    prefix = cx.string(e, "the prefix");
                }
            }
            "format" => {
                if cx.once(&mut seen.format, child, "destination") {
                    let e = cx.setting(child, &string_setting("format", "format \"parquet\""));
                    format = cx.keyword(e, "the export format", FORMATS);
                }
            }
            "function" => {
                if cx.once(&mut seen.function, child, "destination") {
                    let e = cx.setting(
                        child,
                        &string_setting("function", "function \"acme-enrich\""),
                    );
                    function = cx.nonempty_string(e, "the function");
                }
            }
            "events" => {
                if cx.once(&mut seen.events, child, "destination") {
                    let e = cx.entries(child, &EVENTS);
                    let list = e
                        .args
                        .iter()
                        .filter_map(|entry| cx.nonempty_string(Some(*entry), "an event name"))
                        .collect();
                    events = Some(list);
                }
            }
            "types" => {
                if cx.once(&mut seen.types, child, "destination") {
                    let e = cx.entries(child, &TYPES);
                    let mut list: Vec<Spanned<MessageType>> = Vec::new();
                    for entry in &e.args {
                        if let Some(t) =
                            cx.keyword(Some(*entry), "the message type", MessageType::ALL)
                            && !list.iter().any(|x| x.value == t.value)
                        {
                            list.push(t);
                        }
                    }
                    types = Some(list);
                }
            }
            "rename" => {
                let e = cx.entries(child, &RENAME);
                let from = cx
                    .nonempty_string(e.arg(0), "the path renamed")
                    .filter(|p| event_path(cx, p, false, "rename"));
                let to = match e.prop("to") {
                    Some(t) => cx
                        .nonempty_string(Some(t), "`to`")
                        .filter(|p| event_path(cx, p, false, "rename")),
                    None => {
                        if e.arg(0).is_some() {
                            cx.push(
                                Diagnostic::new(
                                    Code::MissingSetting,
                                    name_span(child),
                                    "`rename` needs `to`: the path the value moves to",
                                    "no `to`",
                                )
                                .help(format!("write it like `{}`", RENAME.example)),
                            );
                        }
                        None
                    }
                };
                if let (Some(from), Some(to)) = (from, to) {
                    transforms.push(TransformDecl::Rename { from, to });
                }
            }
            "drop" | "hash" => {
                let drop = setting == "drop";
                let e = cx.entries(child, if drop { &DROP } else { &HASH });
                for entry in &e.args {
                    if let Some(p) = cx
                        .nonempty_string(Some(*entry), "a path")
                        .filter(|p| event_path(cx, p, drop, setting))
                    {
                        transforms.push(if drop {
                            TransformDecl::Drop(p)
                        } else {
                            TransformDecl::Hash(p)
                        });
                    }
                }
            }
            "allow-pii" => {
                let e = cx.entries(child, &ALLOW_PII);
                for entry in &e.args {
                    if let Some(p) = cx
                        .nonempty_string(Some(*entry), "a path")
                        .filter(|p| event_path(cx, p, false, "allow-pii"))
                    {
                        allow_pii.push(p);
                    }
                }
            }
            "template" => {
                if cx.once(&mut seen.template, child, "destination") {
                    let e = cx.setting(
                        child,
                        &string_setting(
                            "template",
                            "template #\"{\"value\": {{ properties.revenue | json_encode() }}}\"#",
                        ),
                    );
                    if let Some(text) = cx.string(e, "the template") {
                        let lines = e.and_then(|e| text_lines(e, &text)).unwrap_or_default();
                        template = template::compile(text, &lines, &mut cx.diags);
                    }
                }
            }
            "filter" => {
                if cx.once(&mut seen.filter, child, "destination") {
                    let e = cx.setting(
                        child,
                        &string_setting("filter", "filter \"properties.revenue > 100\""),
                    );
                    filter = condition(cx, e, "filter");
                }
            }
            "retry" => {
                if cx.once(&mut seen.retry, child, "destination") {
                    let e = cx.entries(child, &RETRY);
                    if let Some(a) = cx.integer(e.prop("attempts"), "`attempts`", 1, 100) {
                        retry.attempts = a.value as u32;
                    }
                    if let Some(b) = cx.keyword(e.prop("backoff"), "the backoff", BACKOFFS) {
                        retry.backoff = b.value;
                    }
                    retry.delay_ms = cx.duration_ms(e.prop("delay"), "`delay`").and_then(|d| {
                        if d.value == 0 || d.value > MAX_DELAY_MS {
                            cx.push(
                                Diagnostic::new(
                                    Code::OutOfRange,
                                    d.span,
                                    format!(
                                        "`delay` must be between 1ms and 15m, not {}",
                                        values::format_duration_ms(d.value)
                                    ),
                                    "out of range",
                                )
                                .help("SQS delays a retry at most 15 minutes; with no delay a failing endpoint is retried at once"),
                            );
                            return None;
                        }
                        Some(d.value)
                    });
                    if let Some(m) = cx.duration(e.prop("max-age"), "`max-age`").and_then(|m| {
                        in_range(
                            cx,
                            m,
                            60,
                            MAX_AGE_SECS,
                            "`max-age`",
                            "the queue keeps a message at most 14 days",
                        )
                    }) {
                        retry.max_age_secs = m.value;
                    }
                }
            }
            "batch" => {
                if cx.once(&mut seen.batch, child, "destination") {
                    let e = cx.entries(child, &BATCH);
                    if let Some(n) = cx.integer(e.prop("max-events"), "`max-events`", 1, 10_000) {
                        batch.max_events = n.value as u32;
                    }
                    if let Some(n) =
                        cx.integer(e.prop("max-bytes"), "`max-bytes`", 1024, 6 * 1024 * 1024)
                    {
                        batch.max_bytes = n.value as u64;
                    }
                    if let Some(w) = cx.duration(e.prop("max-wait"), "`max-wait`").and_then(|w| {
                        in_range(
                            cx,
                            w,
                            0,
                            300,
                            "`max-wait`",
                            "an event waits at most 5 minutes for its batch",
                        )
                    }) {
                        batch.max_wait_secs = w.value;
                    }
                }
            }
            _ => cx.unknown_node(child, "destination", SETTINGS),
        }
    }
    if let (Some(events_span), Some(list)) = (seen.events, &types)
        && !list.is_empty()
        && !list.iter().any(|t| t.value == MessageType::Track)
    {
        cx.push(
            Diagnostic::new(
                Code::NotApplicable,
                seen.types.unwrap_or(events_span),
                "`events` admits only track calls, but `types` does not include \"track\": the destination would receive nothing",
                "no \"track\"",
            )
            .with_label(events_span, "track events only")
            .help("add \"track\" to `types`, or remove `events` to receive every message of these types"),
        );
    }
    if let (Some(span), Some(k)) = (seen.template, &kind)
        && k.value == Kind::S3Export
    {
        cx.push(
            Diagnostic::new(
                Code::NotApplicable,
                span,
                "`template` is a setting of webhook and lambda destinations, not s3-export",
                "not applicable",
            )
            .with_label(k.span, "this destination is s3-export")
            .help("an s3-export writes events as data (NDJSON or Parquet rows); use `rename` and `drop` to shape them, or remove `template`"),
        );
        template = None;
    }
    let name = name?;
    // Recovery: an invalid or missing kind was reported; go on as a webhook so
    // the rest of the node (events, retry, ...) is still checked.
    let kind_known = kind.is_some();
    let kind = kind.unwrap_or(Spanned::new(Kind::Webhook, name.span));
    let placeholder = || Spanned::new(String::new(), name.span);
    let missing = |cx: &mut Lowerer, setting: &str, example: &str| {
        if !kind_known {
            // Which settings are required depends on the kind, which is wrong.
            return;
        }
        cx.push(
            Diagnostic::new(
                Code::MissingSetting,
                name.span,
                format!("destination `{}` needs `{setting}`", name.value),
                format!("no `{setting}`"),
            )
            .help(format!("add `{example}` inside the destination block")),
        );
    };
    let kind = match kind.value {
        Kind::Webhook => {
            if seen.url.is_none() {
                missing(cx, "url", "url \"https://hooks.example.com/uniflow\"");
            }
            DestinationKind::Webhook(Webhook {
                url: url.unwrap_or_else(placeholder),
                headers,
                timeout_secs: timeout.map_or(10, |t| t.value),
            })
        }
        Kind::S3Export => {
            if seen.bucket.is_none() {
                missing(cx, "bucket", "bucket \"acme-exports\"");
            }
            DestinationKind::S3Export(S3Export {
                bucket: bucket.unwrap_or_else(placeholder),
                prefix: prefix.map_or_else(|| format!("uniflow/{}/", name.value), |p| p.value),
                format: format.map_or(ExportFormat::Ndjson, |f| f.value),
            })
        }
        Kind::Lambda => {
            if seen.function.is_none() {
                missing(cx, "function", "function \"acme-enrich\"");
            }
            DestinationKind::Lambda(LambdaTarget {
                function: function.unwrap_or_else(placeholder),
            })
        }
    };
    Some(Destination {
        name,
        kind,
        events,
        types,
        filter,
        transforms,
        template,
        allow_pii,
        retry,
        batch,
        secret,
        span: node.span().into(),
    })
}

/// Checks the path a transform names (`what`: `rename`, `drop`, `hash`).
fn event_path(cx: &mut Lowerer, p: &Spanned<String>, whole_object: bool, what: &str) -> bool {
    match values::check_event_path(&p.value, whole_object) {
        Ok(()) => true,
        Err(why) => {
            let (root, rest) = p.value.split_at(p.value.find('.').unwrap_or(p.value.len()));
            let known = values::EVENT_OBJECTS.iter().chain(values::EVENT_FIELDS);
            let help = match suggest::did_you_mean(root, known.copied()) {
                Some(best) if !known_root(root) => format!("did you mean `{best}{rest}`?"),
                _ => "name a field of `properties`, `traits` or `context` (`properties.revenue`), or a top-level field like `userId`".to_owned(),
            };
            cx.push(
                Diagnostic::new(
                    Code::InvalidPath,
                    p.span,
                    format!(
                        "`{what}` names {:?}, which is not a field path of an event: {why}",
                        p.value
                    ),
                    "not an event field",
                )
                .help(help),
            );
            false
        }
    }
}

fn known_root(root: &str) -> bool {
    values::EVENT_OBJECTS.contains(&root) || values::EVENT_FIELDS.contains(&root)
}

/// A `filter` or `where` string, parsed; a parse error is `invalid-condition`.
pub(super) fn condition(
    cx: &mut Lowerer,
    entry: Option<&KdlEntry>,
    what: &str,
) -> Option<ConditionDecl> {
    let text = cx.string(entry, &format!("the `{what}` condition"))?;
    let text = nonempty_condition(cx, text, what)?;
    let origin = entry.and_then(|e| text_origin(e, &text));
    let decl = |condition| ConditionDecl {
        text: text.clone(),
        condition,
        origin,
    };
    match Condition::parse(&text.value) {
        Ok(c) => Some(decl(c)),
        Err(e) => {
            let placeholder = decl(Condition::Value(Operand::new(OperandKind::Bool(true))));
            cx.push(
                Diagnostic::new(
                    Code::InvalidCondition,
                    placeholder.span(&e.span),
                    format!("the `{what}` condition does not parse: {}", e.message),
                    "here",
                )
                .help("conditions read like SQL: `properties.revenue > 100 AND properties.currency IN ('EUR', 'USD')`; see \"Conditions\" in the language reference"),
            );
            None
        }
    }
}

/// Where the value of a string entry starts in the file, when its text
/// there is the value itself: a quoted string without escapes, or a raw one.
fn text_origin(entry: &KdlEntry, text: &Spanned<String>) -> Option<usize> {
    let repr = &entry.format()?.value_repr;
    let value = &text.value;
    let hashes = repr.bytes().take_while(|&b| b == b'#').count();
    let inner = repr.get(hashes + 1..repr.len().checked_sub(hashes + 1)?)?;
    let quoted = repr.get(hashes..hashes + 1) == Some("\"")
        && !inner.starts_with("\"\"")
        && inner == value
        && (hashes > 0 || !inner.contains('\\'));
    let end = text.span.end;
    (quoted && text.span.len() >= repr.len()).then(|| end - repr.len() + hashes + 1)
}

/// Where each line of a string's value starts in the file, as pairs
/// `(offset in the value, offset in the file)`, when the value maps byte for
/// byte onto the file line by line: a single-line string without escapes, or
/// a multi-line string (`"""` or `#"""`) whose lines lose only their common
/// indentation.
fn text_lines(entry: &KdlEntry, text: &Spanned<String>) -> Option<Vec<(usize, usize)>> {
    if let Some(origin) = text_origin(entry, text) {
        return Some(vec![(0, origin)]);
    }
    let repr = &entry.format()?.value_repr;
    let hashes = repr.bytes().take_while(|&b| b == b'#').count();
    let body = repr
        .get(hashes..repr.len().checked_sub(hashes)?)?
        .strip_prefix("\"\"\"")?
        .strip_suffix("\"\"\"")?;
    if hashes == 0 && body.contains('\\') {
        return None;
    }
    let body_start = text.span.end.checked_sub(repr.len())? + hashes + 3;
    let (first, rest) = body.split_once('\n')?;
    if !first.trim().is_empty() {
        return None;
    }
    let mut lines: Vec<&str> = rest.split('\n').collect();
    let indent = lines.pop()?;
    if !indent.chars().all(char::is_whitespace) {
        return None;
    }
    let mut file = body_start + first.len() + 1;
    let (mut value, mut map) = (String::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            value.push('\n');
        }
        let content = line.strip_prefix(indent).unwrap_or(line.trim_start());
        if !content.trim().is_empty() {
            map.push((value.len(), file + line.len() - content.len()));
            value.push_str(content);
        }
        file += line.len() + 1;
    }
    (value == text.value).then_some(map)
}

pub(super) fn nonempty_condition(
    cx: &mut Lowerer,
    cond: Spanned<String>,
    what: &str,
) -> Option<Spanned<String>> {
    if cond.value.trim().is_empty() {
        cx.push(
            Diagnostic::new(
                Code::EmptyCondition,
                cond.span,
                format!("the `{what}` condition is empty"),
                "empty",
            )
            .help(format!(
                "write a SQL condition like \"properties.revenue > 100\", or remove `{what}`"
            )),
        );
        return None;
    }
    Some(cond)
}

fn in_range(
    cx: &mut Lowerer,
    d: Spanned<u64>,
    min: u64,
    max: u64,
    what: &str,
    why: &str,
) -> Option<Spanned<u64>> {
    if d.value < min || d.value > max {
        cx.push(
            Diagnostic::new(
                Code::OutOfRange,
                d.span,
                format!(
                    "{what} must be between {} and {}, not {}",
                    values::format_duration(min),
                    values::format_duration(max),
                    values::format_duration(d.value)
                ),
                "out of range",
            )
            .help(why.to_owned()),
        );
        return None;
    }
    Some(d)
}

fn lower_secret(cx: &mut Lowerer, node: &KdlNode, shape: &Shape, what: &str) -> Option<SecretRef> {
    let e = cx.entries(node, shape);
    if let Some(inline) = e.arg(0) {
        cx.push(inline_secret(inline.span().into(), what));
        return None;
    }
    match e.prop("from") {
        Some(f) => cx
            .string(Some(f), "`from`")
            .and_then(|r| parse_secret_ref(cx, r)),
        None => {
            if e.args.is_empty() {
                cx.push(
                    Diagnostic::new(
                        Code::MissingSetting,
                        name_span(node),
                        format!("{what} needs `from`"),
                        "no `from`",
                    )
                    .help("reference the secret: `from=\"ssm:/acme/crm-secret\"`"),
                );
            }
            None
        }
    }
}

fn inline_secret(span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        Code::InlineSecret,
        span,
        format!("{what} is written inline, where anyone with the repository can read it"),
        "secret in the file",
    )
    .help("store it in SSM Parameter Store and reference it: `from=\"ssm:/acme/crm-secret\"` (or `secretsmanager:NAME`, or `env:NAME` for `uniflow dev`)")
}

fn parse_secret_ref(cx: &mut Lowerer, r: Spanned<String>) -> Option<SecretRef> {
    let parsed = if let Some(p) = r.value.strip_prefix("ssm:") {
        (p.starts_with('/') && p.len() > 1).then(|| SecretRef::Ssm(p.to_owned()))
    } else if let Some(p) = r.value.strip_prefix("secretsmanager:") {
        (!p.is_empty()).then(|| SecretRef::SecretsManager(p.to_owned()))
    } else if let Some(p) = r.value.strip_prefix("env:") {
        (!p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| SecretRef::Env(p.to_owned()))
    } else {
        None
    };
    if parsed.is_none() {
        cx.push(
            Diagnostic::new(
                Code::InvalidValue,
                r.span,
                format!("{:?} is not a secret reference", r.value),
                "not a reference",
            )
            .help("write `ssm:/path/to/parameter`, `secretsmanager:name` or `env:VARIABLE`"),
        );
    }
    parsed
}

fn lower_header(cx: &mut Lowerer, node: &KdlNode) -> Option<Header> {
    let e = cx.entries(node, &HEADER);
    let name = cx.nonempty_string(e.arg(0), "the header name")?;
    let is_secret = SECRET_HEADERS.contains(&name.value.to_ascii_lowercase().as_str());
    let value = match (e.prop("value"), e.prop("from")) {
        (Some(v), None) => {
            if is_secret {
                cx.push(inline_secret(
                    v.span().into(),
                    &format!("the `{}` header", name.value),
                ));
                return None;
            }
            HeaderValue::Literal(cx.string(Some(v), "the header value")?.value)
        }
        (None, Some(f)) => {
            let reference = cx.string(Some(f), "`from`")?;
            HeaderValue::Secret(parse_secret_ref(cx, reference)?)
        }
        (Some(v), Some(_)) => {
            cx.push(
                Diagnostic::new(
                    Code::DuplicateSetting,
                    v.span().into(),
                    "a header has `value` or `from`, not both",
                    "both given",
                )
                .help("use `value=` for a plain value, `from=` for a secret reference"),
            );
            return None;
        }
        (None, None) => {
            cx.push(
                Diagnostic::new(
                    Code::MissingSetting,
                    name.span,
                    format!("header `{}` has no value", name.value),
                    "no value",
                )
                .help("add `value=\"...\"`, or `from=\"ssm:/...\"` for a secret"),
            );
            return None;
        }
    };
    Some(Header { name, value })
}

fn check_webhook_url(cx: &mut Lowerer, u: &Spanned<String>) {
    let local = url::Url::parse(&u.value)
        .ok()
        .and_then(|p| {
            p.host_str()
                .map(|h| matches!(h, "localhost" | "127.0.0.1" | "[::1]"))
        })
        .unwrap_or(false);
    if let Err(why) = values::check_url(&u.value, local) {
        cx.push(
            Diagnostic::new(Code::InvalidUrl, u.span, format!("{:?} is not a usable webhook URL: {why}", u.value), "invalid URL")
                .help("write an absolute https URL, like \"https://hooks.example.com/uniflow\" (plain http only for localhost)"),
        );
        return;
    }
    if let Ok(parsed) = url::Url::parse(&u.value) {
        let credential_query = parsed.query_pairs().any(|(k, _)| {
            let k = k.to_ascii_lowercase();
            [
                "token",
                "api_key",
                "apikey",
                "key",
                "secret",
                "password",
                "access_token",
            ]
            .contains(&k.as_str())
        });
        if !parsed.username().is_empty() || parsed.password().is_some() || credential_query {
            cx.push(inline_secret(u.span, "a credential in the URL"));
        }
    }
}

fn check_bucket(cx: &mut Lowerer, b: &Spanned<String>) {
    let v = &b.value;
    let ok = (3..=63).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !v.contains("..");
    if !ok {
        cx.push(
            Diagnostic::new(Code::InvalidName, b.span, format!("{v:?} is not a valid S3 bucket name"), "invalid bucket name")
                .help("bucket names are 3-63 characters of lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"),
        );
    }
}
