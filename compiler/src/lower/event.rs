//! `event`, `trait`, and the property grammar they share (`property`, `item`).

use kdl::KdlNode;
use uniflow_schemas::{Format, PropertyType, UnknownKeys};

use super::reader::{Entries, Lowerer, Shape, children, name_span, string_setting};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Event, ObjectDecl, PropertyDecl, SchemaDecl, Trait, TraitScope};
use crate::span::{Span, Spanned};
use crate::values;

const EVENT: Shape = Shape {
    name: "event",
    args: &["the event name"],
    required_args: 1,
    variadic: false,
    props: &["version"],
    children: true,
    example: "event \"Order Completed\" { property \"order_id\" type=\"string\" required=#true }",
};

const EVENT_SETTINGS: &[&str] = &["description", "unknown-keys", "property"];

/// Properties every schema-bearing node takes.
const SCHEMA_PROPS: &[&str] = &[
    "type",
    "required",
    "nullable",
    "min",
    "max",
    "multiple-of",
    "min-length",
    "max-length",
    "pattern",
    "format",
    "values",
    "unknown-keys",
    "pii",
    "description",
];

const TRAIT_PROPS: &[&str] = &[
    "type",
    "scope",
    "nullable",
    "min",
    "max",
    "multiple-of",
    "min-length",
    "max-length",
    "pattern",
    "format",
    "values",
    "unknown-keys",
    "pii",
    "description",
];

const PROPERTY: Shape = Shape {
    name: "property",
    args: &["the property name"],
    required_args: 1,
    variadic: false,
    props: SCHEMA_PROPS,
    children: true,
    example: "property \"revenue\" type=\"number\" min=0",
};

const ITEM: Shape = Shape {
    name: "item",
    args: &[],
    required_args: 0,
    variadic: false,
    props: SCHEMA_PROPS,
    children: true,
    example: "item type=\"object\" { property \"sku\" type=\"string\" }",
};

const TRAIT: Shape = Shape {
    name: "trait",
    args: &["the trait name"],
    required_args: 1,
    variadic: false,
    props: TRAIT_PROPS,
    children: true,
    example: "trait \"email\" type=\"string\" format=\"email\" pii=#true",
};

const VALUES: Shape = Shape {
    name: "values",
    args: &["a value"],
    required_args: 1,
    variadic: true,
    props: &[],
    children: false,
    example: "values \"Credit Card\" \"Bank Transfer\"",
};

const SCHEMA_CHILDREN: &[&str] = &["property", "item", "values", "description", "unknown-keys"];

const TYPES: &[(&str, PropertyType)] = &[
    ("string", PropertyType::String),
    ("number", PropertyType::Number),
    ("integer", PropertyType::Integer),
    ("boolean", PropertyType::Boolean),
    ("timestamp", PropertyType::Timestamp),
    ("enum", PropertyType::Enum),
    ("object", PropertyType::Object),
    ("array", PropertyType::Array),
];

const FORMATS: &[(&str, Format)] = &[
    ("email", Format::Email),
    ("uri", Format::Uri),
    ("uuid", Format::Uuid),
    ("date-time", Format::DateTime),
    ("date", Format::Date),
];

const UNKNOWN_KEYS: &[(&str, UnknownKeys)] = &[
    ("strip", UnknownKeys::Strip),
    ("strict", UnknownKeys::Strict),
    ("passthrough", UnknownKeys::Passthrough),
];

const SCOPES: &[(&str, TraitScope)] = &[("user", TraitScope::User), ("group", TraitScope::Group)];

/// JavaScript's largest safe integer, Zod's bound for `z.int()`.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

pub(super) fn lower_event(cx: &mut Lowerer, node: &KdlNode) -> Option<Event> {
    let entries = cx.entries(node, &EVENT);
    let name = cx.nonempty_string(entries.arg(0), "the event name");
    let version = cx
        .integer(
            entries.prop("version"),
            "the event version",
            1,
            i128::from(u32::MAX),
        )
        .map_or(1, |v| v.value as u32);
    let mut description = None;
    let mut seen_description = None;
    let mut seen_unknown = None;
    let mut object = ObjectDecl::default();
    let mut unknown_keys_span = None;
    for child in children(node) {
        match child.name().value() {
            "description" => {
                if cx.once(&mut seen_description, child, "event") {
                    let e = cx.setting(
                        child,
                        &string_setting(
                            "description",
                            "description \"A customer finished checkout\"",
                        ),
                    );
                    description = cx.string(e, "the description").map(|d| d.value);
                }
            }
            "unknown-keys" => {
                if cx.once(&mut seen_unknown, child, "event") {
                    let e = cx.setting(
                        child,
                        &string_setting("unknown-keys", "unknown-keys \"strict\""),
                    );
                    if let Some(u) = cx.keyword(e, "the unknown-keys policy", UNKNOWN_KEYS) {
                        object.unknown_keys = u.value;
                        unknown_keys_span = Some(u.span);
                    }
                }
            }
            "property" => object.properties.extend(lower_property(cx, child)),
            _ => cx.unknown_node(child, "event", EVENT_SETTINGS),
        }
    }
    finish_object(cx, &object, unknown_keys_span, "event");
    Some(Event {
        name: name?,
        description,
        version,
        properties: object,
        span: node.span().into(),
    })
}

pub(super) fn lower_trait(cx: &mut Lowerer, node: &KdlNode) -> Option<Trait> {
    let entries = cx.entries(node, &TRAIT);
    let name = cx.nonempty_string(entries.arg(0), "the trait name");
    let scope = cx
        .keyword(entries.prop("scope"), "the trait scope", SCOPES)
        .map_or(TraitScope::User, |s| s.value);
    let schema = lower_schema(cx, node, &entries, "trait")?;
    Some(Trait {
        scope,
        property: PropertyDecl {
            name: name?,
            required: false,
            schema,
            span: node.span().into(),
        },
    })
}

fn lower_property(cx: &mut Lowerer, node: &KdlNode) -> Option<PropertyDecl> {
    let entries = cx.entries(node, &PROPERTY);
    let name = cx.nonempty_string(entries.arg(0), "the property name");
    let required = cx
        .boolean(entries.prop("required"), "`required`")
        .unwrap_or(false);
    let schema = lower_schema(cx, node, &entries, "property")?;
    Some(PropertyDecl {
        name: name?,
        required,
        schema,
        span: node.span().into(),
    })
}

fn lower_item(cx: &mut Lowerer, node: &KdlNode) -> Option<SchemaDecl> {
    let entries = cx.entries(node, &ITEM);
    if let Some(req) = entries.prop("required") {
        cx.push(
            Diagnostic::new(
                Code::NotApplicable,
                req.span().into(),
                "array items cannot be `required`",
                "not applicable",
            )
            .help("every item of an array is present; to forbid empty arrays put `min-length=1` on the array property"),
        );
    }
    lower_schema(cx, node, &entries, "item")
}

/// Lowers the type, constraints and nested schema of a property, item or trait.
fn lower_schema(
    cx: &mut Lowerer,
    node: &KdlNode,
    entries: &Entries<'_>,
    what: &str,
) -> Option<SchemaDecl> {
    let ty = match entries.prop("type") {
        Some(e) => cx.keyword(Some(e), "the type", TYPES),
        None => {
            cx.push(
                Diagnostic::new(
                    Code::MissingSetting,
                    name_span(node),
                    format!("`{what}` needs a `type`"),
                    "no type",
                )
                .help("add `type=\"string\"` (or number, integer, boolean, timestamp, enum, object, array)"),
            );
            None
        }
    };
    let nullable = cx
        .boolean(entries.prop("nullable"), "`nullable`")
        .unwrap_or(false);
    let pii = cx.boolean(entries.prop("pii"), "`pii`").unwrap_or(false);
    let min = cx.number(entries.prop("min"), "`min`");
    let max = cx.number(entries.prop("max"), "`max`");
    let multiple_of = cx.number(entries.prop("multiple-of"), "`multiple-of`");
    let big = i128::from(u64::MAX);
    let min_length = cx
        .integer(entries.prop("min-length"), "`min-length`", 0, big)
        .map(|v| v.map(|n| n as u64));
    let max_length = cx
        .integer(entries.prop("max-length"), "`max-length`", 0, big)
        .map(|v| v.map(|n| n as u64));
    let pattern = cx.string(entries.prop("pattern"), "`pattern`");
    let format = cx.keyword(entries.prop("format"), "the format", FORMATS);
    let mut unknown_keys = cx.keyword(
        entries.prop("unknown-keys"),
        "the unknown-keys policy",
        UNKNOWN_KEYS,
    );
    let mut values: Vec<Spanned<String>> = Vec::new();
    let mut values_span = None;
    if let Some(s) = cx.string(entries.prop("values"), "`values`") {
        values_span = Some(s.span);
        values.extend(
            values::split_list(&s.value)
                .into_iter()
                .map(|v| Spanned::new(v.to_owned(), s.span)),
        );
    }
    let mut description = cx.string(entries.prop("description"), "the description");
    let mut seen_description = entries.prop("description").map(|e| Span::from(e.span()));
    let mut object = ObjectDecl::default();
    let mut items: Option<(Span, Option<SchemaDecl>)> = None;
    let mut property_span = None;
    let mut seen_unknown = entries.prop("unknown-keys").map(|e| Span::from(e.span()));
    for child in children(node) {
        match child.name().value() {
            "property" => {
                property_span.get_or_insert(name_span(child));
                object.properties.extend(lower_property(cx, child));
            }
            "item" => {
                let span = name_span(child);
                if let Some((first, _)) = &items {
                    cx.push(
                        Diagnostic::new(Code::DuplicateSetting, span, "an array has one `item` schema", "second item")
                            .with_label(*first, "first item here")
                            .help("keep one `item`; for items of several shapes use `type=\"object\"` with optional properties"),
                    );
                } else {
                    items = Some((span, lower_item(cx, child)));
                }
            }
            "values" => {
                let e = cx.entries(child, &VALUES);
                values_span.get_or_insert(name_span(child));
                for entry in e.args {
                    if let Some(v) = cx.string(Some(entry), "an enum value") {
                        values.push(v);
                    }
                }
            }
            "description" => {
                if cx.once(&mut seen_description, child, what) {
                    let e = cx.setting(
                        child,
                        &string_setting("description", "description \"What it means\""),
                    );
                    description = cx.string(e, "the description");
                }
            }
            "unknown-keys" => {
                if cx.once(&mut seen_unknown, child, what) {
                    let e = cx.setting(
                        child,
                        &string_setting("unknown-keys", "unknown-keys \"strict\""),
                    );
                    unknown_keys = cx.keyword(e, "the unknown-keys policy", UNKNOWN_KEYS);
                }
            }
            _ => cx.unknown_node(child, what, SCHEMA_CHILDREN),
        }
    }
    let ty = ty?;
    let t = ty.value;
    let not_applicable = |cx: &mut Lowerer, span: Span, setting: &str, applies: &str| {
        cx.push(
            Diagnostic::new(
                Code::NotApplicable,
                span,
                format!("`{setting}` does not apply to a {t}"),
                "not applicable",
            )
            .with_label(ty.span, format!("the type is {t}"))
            .help(format!(
                "`{setting}` applies to {applies}; remove it or change the type"
            )),
        );
    };
    for (bound, name) in [(&min, "min"), (&max, "max"), (&multiple_of, "multiple-of")] {
        if let Some(b) = bound
            && !t.is_numeric()
        {
            not_applicable(cx, b.span, name, "number and integer");
        }
    }
    for (bound, name) in [(&min_length, "min-length"), (&max_length, "max-length")] {
        if let Some(b) = bound
            && !t.has_length()
        {
            not_applicable(cx, b.span, name, "string and array");
        }
    }
    if let Some(p) = &pattern {
        if t != PropertyType::String {
            not_applicable(cx, p.span, "pattern", "string");
        } else if let Err(e) = uniflow_schemas::validate::check_pattern(&p.value) {
            cx.push(
                Diagnostic::new(
                    Code::InvalidRegex,
                    p.span,
                    format!("`pattern` is not a valid regular expression: {}", first_line(&e)),
                    "invalid regular expression",
                )
                .help("patterns use Rust `regex` syntax, which the validator runs (no lookaround or backreferences); write a pattern with backslashes as a raw string, like #\"^\\d+$\"#"),
            );
        }
    }
    if let Some(f) = &format
        && t != PropertyType::String
    {
        let help = if t == PropertyType::Timestamp {
            "a timestamp is already an ISO 8601 date-time; remove `format`"
        } else {
            "`format` applies to string"
        };
        cx.push(
            Diagnostic::new(
                Code::NotApplicable,
                f.span,
                format!("`format` does not apply to a {t}"),
                "not applicable",
            )
            .with_label(ty.span, format!("the type is {t}"))
            .help(help),
        );
    }
    if let Some(span) = values_span
        && t != PropertyType::Enum
    {
        not_applicable(cx, span, "values", "enum");
    }
    if let Some(span) = property_span
        && t != PropertyType::Object
    {
        not_applicable(cx, span, "property", "object (nested properties)");
    }
    if let Some(u) = &unknown_keys
        && t != PropertyType::Object
    {
        not_applicable(cx, u.span, "unknown-keys", "object");
    }
    let items = match items {
        Some((span, item)) if t != PropertyType::Array => {
            not_applicable(cx, span, "item", "array");
            item
        }
        Some((_, item)) => item,
        None if t == PropertyType::Array => {
            cx.push(
                Diagnostic::new(
                    Code::MissingItem,
                    name_span(node),
                    format!("this array {what} has no `item` schema"),
                    "no item",
                )
                .with_label(ty.span, "declared an array here")
                .help("add a block with the item's schema: `{ item type=\"string\" }`"),
            );
            None
        }
        None => None,
    };
    if t == PropertyType::Enum {
        check_enum_values(cx, &values, values_span.unwrap_or(ty.span));
    }
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo.value > hi.value
    {
        contradictory(cx, "min", lo.value, lo.span, "max", hi.value, hi.span);
    }
    if let (Some(lo), Some(hi)) = (&min_length, &max_length)
        && lo.value > hi.value
    {
        contradictory(
            cx,
            "min-length",
            lo.value as f64,
            lo.span,
            "max-length",
            hi.value as f64,
            hi.span,
        );
    }
    if let Some(m) = &multiple_of
        && m.value <= 0.0
    {
        cx.push(
            Diagnostic::new(
                Code::OutOfRange,
                m.span,
                format!("`multiple-of` must be positive, not {}", m.value),
                "not positive",
            )
            .help("use a positive step, like `multiple-of=0.01` for cents"),
        );
    }
    if t == PropertyType::Integer {
        for b in [&min, &max].into_iter().flatten() {
            if b.value.abs() > MAX_SAFE_INTEGER {
                cx.push(
                    Diagnostic::new(Code::OutOfRange, b.span, "an integer bound must be a safe integer (at most 2^53 - 1 in size)", "beyond the safe range")
                        .help("integers are checked as JavaScript safe integers, as in Zod; use `type=\"number\"` for larger values"),
                );
            }
        }
    }
    let mut object_decl = object;
    if let Some(u) = &unknown_keys {
        object_decl.unknown_keys = u.value;
    }
    if t == PropertyType::Object {
        finish_object(
            cx,
            &object_decl,
            unknown_keys.as_ref().map(|u| u.span),
            what,
        );
    }
    Some(SchemaDecl {
        ty,
        nullable,
        min,
        max,
        multiple_of,
        min_length,
        max_length,
        pattern,
        format,
        values,
        object: object_decl,
        items: items.map(Box::new),
        pii,
        description: description.map(|d| d.value),
    })
}

fn finish_object(cx: &mut Lowerer, object: &ObjectDecl, unknown_keys: Option<Span>, what: &str) {
    super::duplicates(cx, "property", object.properties.iter().map(|p| &p.name));
    if let (UnknownKeys::Strict, true, Some(span)) = (
        object.unknown_keys,
        object.properties.is_empty(),
        unknown_keys,
    ) {
        cx.push(
            Diagnostic::new(
                Code::EmptyStrictObject,
                span,
                format!("this {what} is strict but declares no properties, so only `{{}}` passes"),
                "strict with no properties",
            )
            .help("declare its properties, or use `unknown-keys \"strip\"`"),
        );
    }
}

fn check_enum_values(cx: &mut Lowerer, values: &[Spanned<String>], span: Span) {
    if values.is_empty() {
        cx.push(
            Diagnostic::new(Code::InvalidEnumValues, span, "an enum needs at least one value", "no values")
                .help("list them: `values=\"free pro enterprise\"`, or `values \"Credit Card\" \"Wire\"` for values with spaces"),
        );
        return;
    }
    for (i, v) in values.iter().enumerate() {
        if let Some(first) = values[..i].iter().find(|w| w.value == v.value) {
            let mut d = Diagnostic::new(
                Code::InvalidEnumValues,
                v.span,
                format!("enum value {:?} is listed twice", v.value),
                "listed again",
            )
            .help("remove the repeated value");
            if first.span != v.span {
                d = d.with_label(first.span, "first listed here");
            }
            cx.push(d);
        }
        if v.value.is_empty() {
            cx.push(Diagnostic::new(
                Code::InvalidEnumValues,
                v.span,
                "an enum value must not be empty",
                "empty value",
            ));
        }
    }
}

fn contradictory(
    cx: &mut Lowerer,
    lo_name: &str,
    lo: f64,
    lo_span: Span,
    hi_name: &str,
    hi: f64,
    hi_span: Span,
) {
    cx.push(
        Diagnostic::new(
            Code::ContradictoryBounds,
            lo_span,
            format!("`{lo_name}` ({lo}) is greater than `{hi_name}` ({hi}), so no value can pass"),
            format!("{lo_name} is {lo}"),
        )
        .with_label(hi_span, format!("{hi_name} is {hi}"))
        .help(format!(
            "swap them, or make `{lo_name}` at most `{hi_name}`"
        )),
    );
}

fn first_line(s: &str) -> String {
    s.lines()
        .last()
        .unwrap_or(s)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}
