//! Reading KDL nodes against the shape a node must have: arguments, properties
//! and children checked once, typed getters that report wrong types.
//!
//! Every lowering function follows one pattern: declare the node's [`Shape`],
//! get its [`Entries`] (unknown properties, missing or extra arguments and
//! unexpected children are reported here), then read each value with a typed
//! getter that reports a wrong type and returns `None`, so lowering goes on
//! and every problem in the file is found in one run.

use std::collections::BTreeMap;

use kdl::{KdlEntry, KdlNode, KdlValue};

use crate::diagnostic::{Code, Diagnostic};
use crate::span::{Span, Spanned};
use crate::suggest;
use crate::values;

/// What a node looks like.
#[derive(Debug)]
pub(crate) struct Shape {
    /// How the node is named in messages ("event", "property").
    pub name: &'static str,
    /// What each positional argument is, in order ("the event name").
    pub args: &'static [&'static str],
    /// How many of `args` are required (the rest are optional).
    pub required_args: usize,
    /// Extra arguments allowed beyond `args` (lists like `events "A" "B"`).
    pub variadic: bool,
    /// Properties it takes.
    pub props: &'static [&'static str],
    /// Whether it may have a `{ ... }` block.
    pub children: bool,
    /// A correct example, shown in help.
    pub example: &'static str,
}

/// The validated entries of one node.
#[derive(Debug)]
pub(crate) struct Entries<'n> {
    pub args: Vec<&'n KdlEntry>,
    props: BTreeMap<&'n str, &'n KdlEntry>,
}

impl<'n> Entries<'n> {
    /// The property `key`, when given.
    pub fn prop(&self, key: &str) -> Option<&'n KdlEntry> {
        self.props.get(key).copied()
    }

    /// The `i`th positional argument, when given.
    pub fn arg(&self, i: usize) -> Option<&'n KdlEntry> {
        self.args.get(i).copied()
    }
}

/// The span of a node's name.
pub(crate) fn name_span(node: &KdlNode) -> Span {
    node.name().span().into()
}

/// The span of an entry's value (without `key=`).
pub(crate) fn value_span(entry: &KdlEntry) -> Span {
    let span: Span = entry.span().into();
    match entry.format() {
        Some(f) if entry.name().is_some() && f.value_repr.len() <= span.len() => {
            Span::new(span.end - f.value_repr.len(), span.end)
        }
        _ => span,
    }
}

/// The children of a node (empty when it has no block).
pub(crate) fn children(node: &KdlNode) -> &[KdlNode] {
    node.children().map(|d| d.nodes()).unwrap_or(&[])
}

/// How a value reads in a message: `"x" (a string)`, `5 (an integer)`.
pub(crate) fn describe(value: &KdlValue) -> String {
    match value {
        KdlValue::String(s) => format!("{s:?} (a string)"),
        KdlValue::Integer(i) => format!("{i} (an integer)"),
        KdlValue::Float(f) => format!("{f} (a number)"),
        KdlValue::Bool(b) => format!("#{b} (a boolean)"),
        KdlValue::Null => "#null".to_owned(),
    }
}

/// The diagnostics sink that lowering writes into.
#[derive(Debug, Default)]
pub(crate) struct Lowerer {
    pub diags: Vec<Diagnostic>,
}

impl Lowerer {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Checks a node against its shape and returns its entries.
    pub fn entries<'n>(&mut self, node: &'n KdlNode, shape: &Shape) -> Entries<'n> {
        let mut args = Vec::new();
        let mut props: BTreeMap<&'n str, &'n KdlEntry> = BTreeMap::new();
        for entry in node.entries() {
            match entry.name() {
                None => args.push(entry),
                Some(key) => {
                    let key_str = key.value();
                    if !shape.props.contains(&key_str) {
                        let help = if shape.props.is_empty() {
                            Some(format!(
                                "`{}` takes no properties; write it like `{}`",
                                shape.name, shape.example
                            ))
                        } else {
                            suggest::help_for(key_str, shape.props, "the property")
                        };
                        self.push(
                            Diagnostic::new(
                                Code::UnknownProperty,
                                key.span().into(),
                                format!("`{}` has no property `{key_str}`", shape.name),
                                "unknown property",
                            )
                            .maybe_help(help),
                        );
                        continue;
                    }
                    if let Some(first) = props.insert(key_str, entry) {
                        self.push(
                            Diagnostic::new(
                                Code::DuplicateSetting,
                                entry.span().into(),
                                format!("`{key_str}` is set twice on `{}`", shape.name),
                                "set again here",
                            )
                            .with_label(first.span().into(), "first set here")
                            .help(format!("keep one `{key_str}=...`")),
                        );
                    }
                }
            }
        }
        let max = shape.args.len();
        if !shape.variadic && args.len() > max {
            for extra in &args[max..] {
                let help = match max {
                    0 => format!("`{}` takes no arguments: `{}`", shape.name, shape.example),
                    _ => format!(
                        "`{}` takes {} ({}): `{}`",
                        shape.name,
                        plural_args(max),
                        shape.args.join(", "),
                        shape.example
                    ),
                };
                self.push(
                    Diagnostic::new(
                        Code::UnexpectedArgument,
                        extra.span().into(),
                        format!("unexpected argument {}", describe(extra.value())),
                        "not expected here",
                    )
                    .help(help),
                );
            }
            args.truncate(max);
        }
        if args.len() < shape.required_args {
            let missing = shape.args[args.len()];
            self.push(
                Diagnostic::new(
                    Code::MissingArgument,
                    name_span(node),
                    format!("`{}` needs {missing}", shape.name),
                    format!("{missing} is missing"),
                )
                .help(format!("write it like `{}`", shape.example)),
            );
        }
        if !shape.children
            && let Some(block) = node.children()
        {
            self.push(
                Diagnostic::new(
                    Code::UnexpectedChildren,
                    block.span().into(),
                    format!("`{}` does not take a `{{ ... }}` block", shape.name),
                    "unexpected block",
                )
                .help(format!("write it like `{}`", shape.example)),
            );
        }
        Entries { args, props }
    }

    /// Reports a child node the parent does not know.
    pub fn unknown_node(&mut self, node: &KdlNode, parent: &str, known: &[&str]) {
        let name = node.name().value();
        let (message, label) = if parent.is_empty() {
            (
                format!("unknown top-level node `{name}`"),
                "not a top-level node",
            )
        } else {
            (
                format!("`{parent}` has no setting `{name}`"),
                "unknown setting",
            )
        };
        let noun = if parent.is_empty() {
            "a top-level node".to_owned()
        } else {
            format!("a setting of `{parent}`")
        };
        self.push(
            Diagnostic::new(Code::UnknownNode, name_span(node), message, label)
                .maybe_help(suggest::help_for(name, known, &noun)),
        );
    }

    /// Reports a second occurrence of a setting allowed once.
    pub fn once(&mut self, seen: &mut Option<Span>, node: &KdlNode, parent: &str) -> bool {
        let span = name_span(node);
        if let Some(first) = *seen {
            let name = node.name().value();
            let place = if parent.is_empty() {
                "the file".to_owned()
            } else {
                format!("`{parent}`")
            };
            self.push(
                Diagnostic::new(
                    Code::DuplicateSetting,
                    span,
                    format!("`{name}` is set twice in {place}"),
                    "set again here",
                )
                .with_label(first, "first set here")
                .help(format!("keep one `{name}`")),
            );
            return false;
        }
        *seen = Some(span);
        true
    }

    fn wrong_type(&mut self, entry: &KdlEntry, what: &str, expected: &str) {
        self.push(
            Diagnostic::new(
                Code::WrongType,
                value_span(entry),
                format!("{what} must be {expected}, not {}", describe(entry.value())),
                format!("expected {expected}"),
            )
            .help(type_help(expected)),
        );
    }

    /// A string value.
    pub fn string(&mut self, entry: Option<&KdlEntry>, what: &str) -> Option<Spanned<String>> {
        let entry = entry?;
        match entry.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), value_span(entry))),
            _ => {
                self.wrong_type(entry, what, "a string");
                None
            }
        }
    }

    /// A non-empty string value.
    pub fn nonempty_string(
        &mut self,
        entry: Option<&KdlEntry>,
        what: &str,
    ) -> Option<Spanned<String>> {
        let s = self.string(entry, what)?;
        if s.value.trim().is_empty() {
            self.push(Diagnostic::new(
                Code::InvalidName,
                s.span,
                format!("{what} must not be empty"),
                "empty",
            ));
            return None;
        }
        Some(s)
    }

    /// A boolean value.
    pub fn boolean(&mut self, entry: Option<&KdlEntry>, what: &str) -> Option<bool> {
        let entry = entry?;
        match entry.value() {
            KdlValue::Bool(b) => Some(*b),
            KdlValue::String(s) if s == "true" || s == "false" => {
                self.push(
                    Diagnostic::new(
                        Code::WrongType,
                        value_span(entry),
                        format!("{what} must be a boolean, not the string {s:?}"),
                        "expected #true or #false",
                    )
                    .help(format!("KDL v2 writes booleans as `#{s}`, without quotes")),
                );
                None
            }
            _ => {
                self.wrong_type(entry, what, "a boolean");
                None
            }
        }
    }

    /// A number (integer or decimal) value.
    pub fn number(&mut self, entry: Option<&KdlEntry>, what: &str) -> Option<Spanned<f64>> {
        let entry = entry?;
        match entry.value() {
            KdlValue::Integer(i) => Some(Spanned::new(*i as f64, value_span(entry))),
            KdlValue::Float(f) if f.is_finite() => Some(Spanned::new(*f, value_span(entry))),
            KdlValue::Float(_) => {
                self.push(Diagnostic::new(
                    Code::OutOfRange,
                    value_span(entry),
                    format!("{what} must be a finite number"),
                    "not finite",
                ));
                None
            }
            _ => {
                self.wrong_type(entry, what, "a number");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn integer(
        &mut self,
        entry: Option<&KdlEntry>,
        what: &str,
        min: i128,
        max: i128,
    ) -> Option<Spanned<i128>> {
        let entry = entry?;
        let unbounded = max == i128::from(u64::MAX) || max == i128::from(u32::MAX);
        let range = if unbounded {
            format!("from {min} to {max}")
        } else {
            format!("between {min} and {max}")
        };
        let value = match entry.value() {
            KdlValue::Integer(i) => *i,
            KdlValue::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => *f as i128,
            KdlValue::Float(f) if f.fract() == 0.0 && f.is_finite() => {
                self.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        value_span(entry),
                        format!("{what} must be {range}, not {f}"),
                        "out of range",
                    )
                    .help(format!("use a whole number {range}")),
                );
                return None;
            }
            _ => {
                self.wrong_type(entry, what, "an integer");
                return None;
            }
        };
        if value < min || value > max {
            let (message, help) = if value < min && unbounded {
                (
                    format!("{what} must be at least {min}, not {value}"),
                    format!("use a value of at least {min}"),
                )
            } else {
                (
                    format!("{what} must be {range}, not {value}"),
                    format!("use a value {range}"),
                )
            };
            self.push(
                Diagnostic::new(Code::OutOfRange, value_span(entry), message, "out of range")
                    .help(help),
            );
            return None;
        }
        Some(Spanned::new(value, value_span(entry)))
    }

    /// One of a fixed set of keywords.
    pub fn keyword<T: Copy>(
        &mut self,
        entry: Option<&KdlEntry>,
        what: &str,
        choices: &[(&'static str, T)],
    ) -> Option<Spanned<T>> {
        let s = self.string(entry, what)?;
        if let Some((_, v)) = choices.iter().find(|(k, _)| *k == s.value) {
            return Some(Spanned::new(*v, s.span));
        }
        let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
        self.push(
            Diagnostic::new(
                Code::InvalidValue,
                s.span,
                format!(
                    "{:?} is not a known {}",
                    s.value,
                    what.trim_start_matches("the ")
                ),
                "unknown value",
            )
            .maybe_help(suggest::help_for(&s.value, &names, what)),
        );
        None
    }

    /// A duration like `30s`, `15m`, `24h`, `30d`, `2w` or `1h30m`, in seconds.
    pub fn duration(&mut self, entry: Option<&KdlEntry>, what: &str) -> Option<Spanned<u64>> {
        let entry = entry?;
        if let KdlValue::Integer(_) = entry.value() {
            self.push(
                Diagnostic::new(
                    Code::InvalidDuration,
                    value_span(entry),
                    format!("{what} needs a unit"),
                    "a bare number",
                )
                .help("write a duration as a string with a unit, like \"30s\", \"15m\", \"24h\" or \"7d\""),
            );
            return None;
        }
        let s = self.string(Some(entry), what)?;
        match values::parse_duration(&s.value) {
            Ok(secs) => Some(Spanned::new(secs, s.span)),
            Err(why) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDuration,
                        s.span,
                        format!("{what} {:?} is not a duration: {why}", s.value),
                        "invalid duration",
                    )
                    .help("write a number and a unit (s, m, h, d, w), like \"30s\", \"24h\", \"7d\" or \"1h30m\""),
                );
                None
            }
        }
    }

    /// A duration that may use `ms` (`500ms`, `2s`), in milliseconds.
    pub fn duration_ms(&mut self, entry: Option<&KdlEntry>, what: &str) -> Option<Spanned<u64>> {
        let entry = entry?;
        if let KdlValue::Integer(_) = entry.value() {
            self.push(
                Diagnostic::new(
                    Code::InvalidDuration,
                    value_span(entry),
                    format!("{what} needs a unit"),
                    "a bare number",
                )
                .help("write a duration as a string with a unit, like \"500ms\", \"1s\" or \"2m\""),
            );
            return None;
        }
        let s = self.string(Some(entry), what)?;
        match values::parse_duration_ms(&s.value) {
            Ok(ms) => Some(Spanned::new(ms, s.span)),
            Err(why) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDuration,
                        s.span,
                        format!("{what} {:?} is not a duration: {why}", s.value),
                        "invalid duration",
                    )
                    .help(
                        "write a number and a unit (ms, s, m, h), like \"500ms\", \"2s\" or \"1m\"",
                    ),
                );
                None
            }
        }
    }

    /// A single-argument setting node like `region "eu-west-1"`: its one entry.
    pub fn setting<'n>(&mut self, node: &'n KdlNode, shape: &Shape) -> Option<&'n KdlEntry> {
        self.entries(node, shape).arg(0)
    }
}

fn plural_args(n: usize) -> String {
    if n == 1 {
        "one argument".to_owned()
    } else {
        format!("{n} arguments")
    }
}

fn type_help(expected: &str) -> String {
    match expected {
        "a string" => "put the value in double quotes, like \"value\"".to_owned(),
        "a boolean" => "write `#true` or `#false`".to_owned(),
        "an integer" => "write a whole number without quotes, like 10".to_owned(),
        "a number" => "write a number without quotes, like 10 or 2.5".to_owned(),
        other => format!("write {other}"),
    }
}

/// Shapes of the one-value settings that many nodes share.
pub(crate) const fn string_setting(name: &'static str, example: &'static str) -> Shape {
    Shape {
        name,
        args: &["a value"],
        required_args: 1,
        variadic: false,
        props: &[],
        children: false,
        example,
    }
}
