//! Type checks of `filter` and `where` conditions against the declared schemas.
//!
//! ## What it does
//! Resolves every path of a destination's `filter` (against the events it
//! receives: all declared events when `events` is absent) and of a segment's
//! `where` (against its `from` events): `properties.X...` must be declared by
//! at least one of those events (`unknown-event-property`), `traits.X...` by a
//! user or group trait when any trait is declared (`unknown-trait`). Literals
//! must fit the field's type (`type-mismatch`): numbers for numbers, strings
//! for strings, enums and timestamps, booleans for booleans; `LIKE` only on
//! strings; a bare path only on booleans; `= NULL` never holds. A string not
//! among an enum's values is `unknown-enum-value` (a warning).
//!
//! ## Why
//! A condition that reads a misspelt property, or compares a number with a
//! string, is never TRUE: the destination silently receives nothing.
//!
//! ## Example
//! `filter "properties.revenue > '100'"` where `revenue` is a number: the
//! string never equals or orders against a number. Fix: `properties.revenue > 100`.

use uniflow_schemas::condition::{Condition, Operand, OperandKind};

use super::paths::{self, Kind};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{ConditionDecl, Config, Event};
use crate::suggest;

/// What a condition applies to, for messages.
pub(super) struct Scope<'a> {
    /// "destination `crm`", "segment `eu-buyers`".
    pub who: String,
    /// The events whose properties may be read.
    pub events: Vec<&'a Event>,
}

/// Checks one condition.
pub(super) fn check(
    config: &Config,
    decl: &ConditionDecl,
    scope: &Scope<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let mut cx = Cx {
        config,
        decl,
        scope,
        out,
    };
    decl.condition.visit(&mut |c| cx.node(c));
}

struct Cx<'a, 'o> {
    config: &'a Config,
    decl: &'a ConditionDecl,
    scope: &'a Scope<'a>,
    out: &'o mut Vec<Diagnostic>,
}

impl<'a> Cx<'a, '_> {
    /// The kinds a path may have (empty: unknown, reported), or `None` when
    /// the operand is not a path or is not checked.
    fn kinds(&mut self, o: &Operand) -> Option<Vec<Kind<'a>>> {
        let OperandKind::Path(segments) = &o.kind else {
            return None;
        };
        let (first, rest) = segments.split_first()?;
        match first.as_str() {
            "properties" => {
                if self.scope.events.is_empty() {
                    return None;
                }
                let kinds = paths::property_kinds(&self.scope.events, rest);
                if kinds.is_empty() {
                    self.unknown_property(o, segments);
                }
                Some(kinds)
            }
            "traits" => {
                if self.config.traits.is_empty() {
                    return None;
                }
                let kinds = paths::trait_kinds(self.config, rest);
                if kinds.is_empty() {
                    self.unknown_trait(o, rest);
                }
                Some(kinds)
            }
            "context" => None,
            _ if rest.is_empty() => Some(vec![Kind::Str]),
            // `userId.x` on a string is always missing, so never TRUE.
            _ => Some(vec![Kind::Composite("a string field")]),
        }
    }

    fn unknown_property(&mut self, o: &Operand, segments: &[String]) {
        let names: Vec<&str> = self
            .scope
            .events
            .iter()
            .map(|e| e.name.value.as_str())
            .collect();
        self.out.push(
            Diagnostic::new(
                Code::UnknownEventProperty,
                self.decl.span(&o.span),
                format!(
                    "the condition of {} reads `{}`, which none of its events declares (searched {})",
                    self.scope.who,
                    o,
                    names.join(", ")
                ),
                "unknown property",
            )
            .help(paths::unknown_property_help(&self.scope.events, segments)),
        );
    }

    fn unknown_trait(&mut self, o: &Operand, rest: &[String]) {
        self.out.push(
            Diagnostic::new(
                Code::UnknownTrait,
                self.decl.span(&o.span),
                format!(
                    "the condition of {} reads `{o}`, but no such trait is declared",
                    self.scope.who
                ),
                "unknown trait",
            )
            .help(paths::unknown_trait_help(self.config, rest)),
        );
    }

    fn node(&mut self, c: &Condition) {
        match c {
            Condition::Compare { left, right, .. } => {
                let (path, lit) = match (&left.kind, &right.kind) {
                    (OperandKind::Path(_), OperandKind::Path(_)) => {
                        self.kinds(left);
                        self.kinds(right);
                        return;
                    }
                    (OperandKind::Path(_), _) => (left, right),
                    (_, OperandKind::Path(_)) => (right, left),
                    _ => return,
                };
                let kinds = self.kinds(path);
                if lit.kind == OperandKind::Null {
                    self.out.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            self.decl.span(&lit.span),
                            format!("`{path}` compared with NULL is never true: the comparison is UNKNOWN"),
                            "always UNKNOWN",
                        )
                        .help(format!("write `{path} IS NULL` or `{path} IS NOT NULL`")),
                    );
                    return;
                }
                if let Some(kinds) = kinds {
                    self.fit(path, &kinds, lit);
                }
            }
            Condition::In { operand, list, .. } => {
                if let Some(kinds) = self.kinds(operand) {
                    for item in list.iter().filter(|i| i.kind != OperandKind::Null) {
                        self.fit(operand, &kinds, item);
                    }
                }
            }
            Condition::Between {
                operand, low, high, ..
            } => {
                let kinds = self.kinds(operand);
                for bound in [low, high] {
                    if matches!(bound.kind, OperandKind::Path(_)) {
                        self.kinds(bound);
                    } else if let Some(kinds) = &kinds {
                        self.fit(operand, kinds, bound);
                    }
                }
            }
            Condition::Like { operand, .. } => {
                if let Some(kinds) = self.kinds(operand)
                    && !kinds.is_empty()
                    && !kinds
                        .iter()
                        .any(|k| matches!(k, Kind::Str | Kind::Enum(_) | Kind::Any))
                {
                    self.out.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            self.decl.span(&operand.span),
                            format!(
                                "LIKE matches strings, but `{operand}` is {}",
                                kinds[0].noun()
                            ),
                            kinds[0].noun(),
                        )
                        .help("use `=`, `<`, `>` or BETWEEN to compare numbers and booleans"),
                    );
                }
            }
            Condition::IsNull { operand, .. } => {
                self.kinds(operand);
            }
            Condition::Value(operand) => {
                if let Some(kinds) = self.kinds(operand)
                    && !kinds.is_empty()
                    && !kinds.iter().any(|k| matches!(k, Kind::Bool | Kind::Any))
                {
                    self.out.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            self.decl.span(&operand.span),
                            format!("`{operand}` alone holds when it is `true`, but it is {}", kinds[0].noun()),
                            kinds[0].noun(),
                        )
                        .help(format!("compare it with a value: `{operand} = ...`, or test `{operand} IS NOT NULL`")),
                    );
                }
            }
            Condition::Or(_) | Condition::And(_) | Condition::Not(_) => {}
        }
    }

    /// Reports a literal that fits none of the kinds the path may have.
    fn fit(&mut self, path: &Operand, kinds: &[Kind<'a>], lit: &Operand) {
        if kinds.is_empty() || matches!(lit.kind, OperandKind::Path(_)) {
            return;
        }
        if !kinds.iter().any(|k| k.fits(&lit.kind)) {
            let noun = kinds[0].noun();
            let lit_noun = match lit.kind {
                OperandKind::String(_) => "the string",
                OperandKind::Number(_) => "the number",
                OperandKind::Bool(_) => "the boolean",
                _ => "the value",
            };
            let help = match (&kinds[0], &lit.kind) {
                (Kind::Num, OperandKind::String(s)) if s.trim().parse::<f64>().is_ok() => {
                    format!("write the number without quotes: {}", s.trim())
                }
                (Kind::Str | Kind::Enum(_), OperandKind::Number(n)) => {
                    format!("quote it to compare strings: '{n}'")
                }
                (Kind::Bool, _) => "write TRUE or FALSE, without quotes".to_owned(),
                _ => "values of different types are never equal or ordered: no conversion is made"
                    .to_owned(),
            };
            self.out.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    self.decl.span(&lit.span),
                    format!("`{path}` is {noun}, but is compared with {lit_noun} {lit}: the comparison is never TRUE"),
                    format!("not {noun}"),
                )
                .with_label(self.decl.span(&path.span), noun)
                .help(help),
            );
            return;
        }
        if let OperandKind::String(s) = &lit.kind {
            let enums: Vec<&[crate::span::Spanned<String>]> = kinds
                .iter()
                .filter_map(|k| match k {
                    Kind::Enum(v) => Some(*v),
                    _ => None,
                })
                .collect();
            let other_strings = kinds.iter().any(|k| matches!(k, Kind::Str | Kind::Any));
            if !enums.is_empty()
                && !other_strings
                && !enums.iter().any(|v| v.iter().any(|x| &x.value == s))
            {
                let values: Vec<&str> = enums
                    .iter()
                    .flat_map(|v| v.iter().map(|x| x.value.as_str()))
                    .collect();
                self.out.push(
                    Diagnostic::new(
                        Code::UnknownEnumValue,
                        self.decl.span(&lit.span),
                        format!(
                            "`{path}` is never {lit}: it is one of {}",
                            suggest::list(&values)
                        ),
                        "not one of the values",
                    )
                    .maybe_help(suggest::help_for(s, &values, "the value")),
                );
            }
        }
    }
}
