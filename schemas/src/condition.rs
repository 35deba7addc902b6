//! The condition language of destination `filter`s and segment `where`s: AST,
//! parser, canonical printer and a three-valued (SQL) evaluator over events.
//!
//! ```text
//! expr      := or
//! or        := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT not | predicate
//! predicate := '(' expr ')'
//!            | operand [ cmp operand | IS [NOT] NULL
//!                      | [NOT] IN '(' literal (',' literal)* ')'
//!                      | [NOT] LIKE 'pattern'
//!                      | [NOT] BETWEEN operand AND operand ]
//! cmp       := = | != | <> | < | <= | > | >=
//! operand   := path | literal
//! path      := ident ('.' ident)*      (first: a top-level event field)
//! literal   := 'string' | number | TRUE | FALSE | NULL
//! ```
//!
//! Keywords are case-insensitive. Identifiers may be `"quoted"` (`""` escapes
//! a quote); strings are `'single-quoted'` (`''` escapes a quote). The parser
//! never panics and bounds nesting at [`MAX_DEPTH`].

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The deepest nesting of parentheses and `NOT`s a condition may have.
pub const MAX_DEPTH: usize = 64;

/// The top-level fields of an event a path may start with.
pub const FIELDS: &[&str] = &[
    "event",
    "type",
    "userId",
    "anonymousId",
    "groupId",
    "properties",
    "traits",
    "context",
    "name",
    "category",
    "sourceId",
];

const KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "BETWEEN", "TRUE", "FALSE",
];

/// A parsed condition. Serialises compactly for the bundle, e.g.
/// `{"compare":{"left":{"path":["properties","revenue"]},"op":">","right":{"number":100.0}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// True when any is true (two or more).
    Or(Vec<Condition>),
    /// True when all are true (two or more).
    And(Vec<Condition>),
    /// The negation (UNKNOWN stays UNKNOWN).
    Not(Box<Condition>),
    /// `left op right`.
    Compare {
        /// Left side.
        left: Operand,
        /// The comparison.
        op: CmpOp,
        /// Right side.
        right: Operand,
    },
    /// `operand IS [NOT] NULL`: never UNKNOWN.
    IsNull {
        /// What is tested.
        operand: Operand,
        /// `IS NOT NULL`.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// `operand [NOT] IN (literal, ...)`.
    In {
        /// What is tested.
        operand: Operand,
        /// The literals (at least one).
        list: Vec<Operand>,
        /// `NOT IN`.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// `operand [NOT] LIKE 'pattern'` (`%` any run, `_` one character).
    Like {
        /// What is tested.
        operand: Operand,
        /// A string literal.
        pattern: Operand,
        /// `NOT LIKE`.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// `operand [NOT] BETWEEN low AND high` (inclusive).
    Between {
        /// What is tested.
        operand: Operand,
        /// Lower bound.
        low: Operand,
        /// Upper bound.
        high: Operand,
        /// `NOT BETWEEN`.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// An operand alone: true when it is JSON `true`.
    Value(Operand),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=` or `<>`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether it orders values (`<`, `<=`, `>`, `>=`).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }
}

/// A path or a literal, with where it was written (not serialised, not
/// compared).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Operand {
    /// What it is.
    pub kind: OperandKind,
    /// Byte range within the condition text (empty when deserialised).
    #[serde(skip)]
    pub span: Range<usize>,
}

impl PartialEq for Operand {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Operand {
    /// An operand without a position.
    pub fn new(kind: OperandKind) -> Self {
        Operand { kind, span: 0..0 }
    }
}

/// The value of an operand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OperandKind {
    /// A field of the event, `properties.revenue` as `["properties", "revenue"]`.
    Path(Vec<String>),
    /// `'text'`.
    String(String),
    /// A finite number.
    Number(f64),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte range within the condition text.
    pub span: Range<usize>,
}

fn err<T>(message: impl Into<String>, span: Range<usize>) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        span,
    })
}

impl std::str::FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::parse(s)
    }
}

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
            end: text.len(),
        };
        if p.peek() == &Tok::End {
            return err("the condition is empty", 0..text.len());
        }
        let c = p.expr()?;
        if p.peek() != &Tok::End {
            let (tok, span) = p.current();
            return err(
                format!("unexpected {} after the condition", tok.describe()),
                span,
            );
        }
        Ok(c)
    }

    /// Whether the event passes: only TRUE passes, FALSE and UNKNOWN do not.
    pub fn matches(&self, event: &Value) -> bool {
        self.eval(event) == Truth::True
    }

    /// The three-valued result on an event.
    pub fn eval(&self, event: &Value) -> Truth {
        match self {
            Condition::Or(items) => items.iter().fold(Truth::False, |acc, c| {
                if acc == Truth::True {
                    acc
                } else {
                    acc.or(c.eval(event))
                }
            }),
            Condition::And(items) => items.iter().fold(Truth::True, |acc, c| {
                if acc == Truth::False {
                    acc
                } else {
                    acc.and(c.eval(event))
                }
            }),
            Condition::Not(c) => c.eval(event).not(),
            Condition::Compare { left, op, right } => {
                compare(resolve(left, event), *op, resolve(right, event))
            }
            Condition::IsNull { operand, negated } => {
                let null = matches!(resolve(operand, event), Val::Null);
                Truth::from(null != *negated)
            }
            Condition::In {
                operand,
                list,
                negated,
            } => {
                let v = resolve(operand, event);
                let t = list.iter().fold(Truth::False, |acc, item| {
                    acc.or(compare(v, CmpOp::Eq, resolve(item, event)))
                });
                t.negate_if(*negated)
            }
            Condition::Like {
                operand,
                pattern,
                negated,
            } => {
                let t = match (resolve(operand, event), resolve(pattern, event)) {
                    (Val::Str(s), Val::Str(p)) => Truth::from(like(s, p)),
                    _ => Truth::Unknown,
                };
                t.negate_if(*negated)
            }
            Condition::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let v = resolve(operand, event);
                let t = compare(v, CmpOp::Ge, resolve(low, event)).and(compare(
                    v,
                    CmpOp::Le,
                    resolve(high, event),
                ));
                t.negate_if(*negated)
            }
            Condition::Value(o) => match resolve(o, event) {
                Val::Bool(b) => Truth::from(b),
                _ => Truth::Unknown,
            },
        }
    }

    /// Every operand, in writing order (for checks).
    pub fn operands(&self) -> Vec<&Operand> {
        let mut out = Vec::new();
        self.visit(&mut |c| match c {
            Condition::Compare { left, right, .. } => out.extend([left, right]),
            Condition::IsNull { operand, .. } | Condition::Value(operand) => out.push(operand),
            Condition::In { operand, list, .. } => {
                out.push(operand);
                out.extend(list);
            }
            Condition::Like {
                operand, pattern, ..
            } => out.extend([operand, pattern]),
            Condition::Between {
                operand, low, high, ..
            } => out.extend([operand, low, high]),
            Condition::Or(_) | Condition::And(_) | Condition::Not(_) => {}
        });
        out
    }

    /// Calls `f` on this condition and every condition inside it, pre-order.
    pub fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        f(self);
        match self {
            Condition::Or(items) | Condition::And(items) => {
                for c in items {
                    c.visit(f);
                }
            }
            Condition::Not(c) => c.visit(f),
            _ => {}
        }
    }
}

/// SQL's three truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Cannot be told (a missing or null value, or values of different types).
    Unknown,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b { Truth::True } else { Truth::False }
    }
}

impl Truth {
    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }

    #[allow(clippy::should_implement_trait)]
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn negate_if(self, negated: bool) -> Truth {
        if negated { self.not() } else { self }
    }
}

/// A value as the evaluator sees it.
#[derive(Clone, Copy)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// An object or array: comparisons with it are UNKNOWN.
    Other,
}

fn resolve<'a>(o: &'a Operand, event: &'a Value) -> Val<'a> {
    match &o.kind {
        OperandKind::Path(segments) => {
            let mut v = event;
            for s in segments {
                match v.get(s) {
                    Some(next) => v = next,
                    None => return Val::Null,
                }
            }
            match v {
                Value::Null => Val::Null,
                Value::Bool(b) => Val::Bool(*b),
                Value::Number(n) => n.as_f64().map_or(Val::Other, Val::Num),
                Value::String(s) => Val::Str(s),
                Value::Array(_) | Value::Object(_) => Val::Other,
            }
        }
        OperandKind::String(s) => Val::Str(s),
        OperandKind::Number(n) => Val::Num(*n),
        OperandKind::Bool(b) => Val::Bool(*b),
        OperandKind::Null => Val::Null,
    }
}

fn compare(a: Val<'_>, op: CmpOp, b: Val<'_>) -> Truth {
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(&y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(&y)),
        _ => None,
    };
    ord.map_or(Truth::Unknown, |o| Truth::from(op.holds(o)))
}

/// SQL `LIKE`: `%` matches any run of characters, `_` exactly one; no escapes.
pub fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

// ---------------------------------------------------------------- printing

fn is_bare(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl fmt::Display for OperandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperandKind::Path(segments) => {
                for (i, s) in segments.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(s) {
                        f.write_str(s)?;
                    } else {
                        write!(f, "\"{}\"", s.replace('"', "\"\""))?;
                    }
                }
                Ok(())
            }
            OperandKind::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            OperandKind::Number(n) => write!(f, "{n}"),
            OperandKind::Bool(true) => f.write_str("TRUE"),
            OperandKind::Bool(false) => f.write_str("FALSE"),
            OperandKind::Null => f.write_str("NULL"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |negated: bool| if negated { "NOT " } else { "" };
        match self {
            Condition::Or(items) => join(f, items, " OR ", |c| matches!(c, Condition::Or(_))),
            Condition::And(items) => join(f, items, " AND ", |c| {
                matches!(c, Condition::Or(_) | Condition::And(_))
            }),
            Condition::Not(c) => {
                if matches!(**c, Condition::Or(_) | Condition::And(_)) {
                    write!(f, "NOT ({c})")
                } else {
                    write!(f, "NOT {c}")
                }
            }
            Condition::Compare { left, op, right } => {
                write!(f, "{left} {} {right}", op.as_str())
            }
            Condition::IsNull { operand, negated } => {
                write!(f, "{operand} IS {}NULL", not(*negated))
            }
            Condition::In {
                operand,
                list,
                negated,
            } => {
                write!(f, "{operand} {}IN (", not(*negated))?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Condition::Like {
                operand,
                pattern,
                negated,
            } => write!(f, "{operand} {}LIKE {pattern}", not(*negated)),
            Condition::Between {
                operand,
                low,
                high,
                negated,
            } => write!(f, "{operand} {}BETWEEN {low} AND {high}", not(*negated)),
            Condition::Value(o) => write!(f, "{o}"),
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    items: &[Condition],
    sep: &str,
    parens: impl Fn(&Condition) -> bool,
) -> fmt::Result {
    for (i, c) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if parens(c) {
            write!(f, "({c})")?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Cmp(CmpOp),
    LParen,
    RParen,
    Comma,
    Dot,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Quoted(s) => format!("`\"{s}\"`"),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Num(n) => format!("`{n}`"),
            Tok::Cmp(op) => format!("`{}`", op.as_str()),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::Dot => "`.`".to_owned(),
            Tok::End => "the end of the condition".to_owned(),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

fn lex(text: &str) -> Result<Vec<(Tok, Range<usize>)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |tok| (tok, start..start + 1);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push(single(Tok::LParen)),
            b')' => out.push(single(Tok::RParen)),
            b',' => out.push(single(Tok::Comma)),
            b'.' => out.push(single(Tok::Dot)),
            b'\'' | b'"' => {
                let (s, end) = quoted(text, start, c)?;
                let tok = if c == b'\'' {
                    Tok::Str(s)
                } else {
                    Tok::Quoted(s)
                };
                out.push((tok, start..end));
                i = end;
                continue;
            }
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' => {
                let two = text.get(start..start + 2).unwrap_or("");
                let (op, len) = match two {
                    "==" => return err("unknown operator `==`: use `=`", start..start + 2),
                    "&&" => return err("unknown operator `&&`: use AND", start..start + 2),
                    "||" => return err("unknown operator `||`: use OR", start..start + 2),
                    "!=" => (CmpOp::Ne, 2),
                    "<>" => (CmpOp::Ne, 2),
                    "<=" => (CmpOp::Le, 2),
                    ">=" => (CmpOp::Ge, 2),
                    _ => match c {
                        b'=' => (CmpOp::Eq, 1),
                        b'<' => (CmpOp::Lt, 1),
                        b'>' => (CmpOp::Gt, 1),
                        b'!' => {
                            return err("unknown operator `!`: use `!=` or NOT", start..start + 1);
                        }
                        _ => {
                            let op = if c == b'&' { "AND" } else { "OR" };
                            return err(
                                format!("unknown operator `{}`: use {op}", c as char),
                                start..start + 1,
                            );
                        }
                    },
                };
                out.push((Tok::Cmp(op), start..start + len));
                i += len;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let mut j = if c == b'-' { i + 1 } else { i };
                let digits_start = j;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j == digits_start {
                    return err("expected a digit after `-`", start..start + 1);
                }
                if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                let n: f64 = text[start..j].parse().unwrap_or(f64::INFINITY);
                if !n.is_finite() {
                    return err("this number is too large", start..j);
                }
                out.push((Tok::Num(n), start..j));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                out.push((Tok::Ident(text[start..j].to_owned()), start..j));
                i = j;
                continue;
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                let end = start + ch.len_utf8();
                return err(format!("unexpected character `{ch}`"), start..end);
            }
        }
        i += 1;
    }
    out.push((Tok::End, text.len()..text.len()));
    Ok(out)
}

/// A `'string'` or `"identifier"` starting at `start`; returns it and the end offset.
fn quoted(text: &str, start: usize, quote: u8) -> Result<(String, usize), ParseError> {
    let bytes = text.as_bytes();
    let mut s = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < bytes.len() {
        if bytes[i] == quote {
            s.push_str(&text[run..i]);
            if bytes.get(i + 1) == Some(&quote) {
                s.push(quote as char);
                i += 2;
                run = i;
                continue;
            }
            return Ok((s, i + 1));
        }
        i += 1;
    }
    let what = if quote == b'\'' {
        "unclosed string: add `'` at the end"
    } else {
        "unclosed quoted identifier: add `\"` at the end"
    };
    err(what, start..text.len())
}

// ---------------------------------------------------------------- parsing

struct Parser {
    tokens: Vec<(Tok, Range<usize>)>,
    pos: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn current(&self) -> (Tok, Range<usize>) {
        self.tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, self.end..self.end))
    }

    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::End, |(t, _)| t)
    }

    fn bump(&mut self) -> (Tok, Range<usize>) {
        let t = self.current();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek().keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self, span: Range<usize>) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                format!("the condition nests deeper than {MAX_DEPTH} levels"),
                span,
            );
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Condition, ParseError> {
        let mut items = vec![self.and()?];
        while self.eat_keyword("OR") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::Or(items)
        })
    }

    fn and(&mut self) -> Result<Condition, ParseError> {
        let mut items = vec![self.not()?];
        while self.eat_keyword("AND") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::And(items)
        })
    }

    fn not(&mut self) -> Result<Condition, ParseError> {
        let (tok, span) = self.current();
        if tok.keyword("NOT") {
            self.pos += 1;
            self.enter(span)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Condition, ParseError> {
        let (tok, span) = self.current();
        if tok == Tok::LParen {
            self.pos += 1;
            self.enter(span.clone())?;
            let inner = self.expr()?;
            self.depth -= 1;
            let (close, close_span) = self.current();
            if close != Tok::RParen {
                return err(
                    format!(
                        "expected `)` to close the `(` at offset {}, found {}",
                        span.start,
                        close.describe()
                    ),
                    close_span,
                );
            }
            self.pos += 1;
            return Ok(inner);
        }
        let operand = self.operand("expected a condition")?;
        let (next, _) = self.current();
        if let Tok::Cmp(op) = next {
            self.pos += 1;
            let right = self.operand(&format!("expected a value after `{}`", op.as_str()))?;
            return Ok(Condition::Compare {
                left: operand,
                op,
                right,
            });
        }
        if next.keyword("IS") {
            self.pos += 1;
            let negated = self.eat_keyword("NOT");
            let (null, null_span) = self.bump();
            if !null.keyword("NULL") {
                let after = if negated { "IS NOT" } else { "IS" };
                return err(
                    format!("expected NULL after {after}, found {}", null.describe()),
                    null_span,
                );
            }
            return Ok(Condition::IsNull { operand, negated });
        }
        let negated = self.eat_keyword("NOT");
        let (kw, kw_span) = self.current();
        if kw.keyword("IN") {
            self.pos += 1;
            let (open, open_span) = self.bump();
            if open != Tok::LParen {
                return err(
                    format!("expected `(` after IN, found {}", open.describe()),
                    open_span,
                );
            }
            let mut list = Vec::new();
            loop {
                let item = self.operand("expected a value in the IN list")?;
                if matches!(item.kind, OperandKind::Path(_)) {
                    return err("an IN list holds literals, not paths", item.span);
                }
                list.push(item);
                let (sep, sep_span) = self.bump();
                match sep {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    other => {
                        return err(
                            format!(
                                "expected `,` or `)` in the IN list, found {}",
                                other.describe()
                            ),
                            sep_span,
                        );
                    }
                }
            }
            return Ok(Condition::In {
                operand,
                list,
                negated,
            });
        }
        if kw.keyword("LIKE") {
            self.pos += 1;
            let (pat, pat_span) = self.bump();
            let Tok::Str(p) = pat else {
                return err(
                    format!(
                        "expected a 'quoted pattern' after LIKE, found {}",
                        pat.describe()
                    ),
                    pat_span,
                );
            };
            return Ok(Condition::Like {
                operand,
                pattern: Operand {
                    kind: OperandKind::String(p),
                    span: pat_span,
                },
                negated,
            });
        }
        if kw.keyword("BETWEEN") {
            self.pos += 1;
            let low = self.operand("expected a value after BETWEEN")?;
            let (and, and_span) = self.bump();
            if !and.keyword("AND") {
                return err(
                    format!(
                        "expected AND in BETWEEN ... AND ..., found {}",
                        and.describe()
                    ),
                    and_span,
                );
            }
            let high = self.operand("expected a value after AND")?;
            return Ok(Condition::Between {
                operand,
                low,
                high,
                negated,
            });
        }
        if negated {
            return err(
                format!(
                    "expected IN, LIKE or BETWEEN after NOT, found {}",
                    kw.describe()
                ),
                kw_span,
            );
        }
        match &operand.kind {
            OperandKind::Path(_) | OperandKind::Bool(_) => Ok(Condition::Value(operand)),
            _ => err(
                format!(
                    "`{operand}` alone is not a condition: compare it, e.g. `properties.x = {operand}`"
                ),
                operand.span,
            ),
        }
    }

    fn operand(&mut self, expected: &str) -> Result<Operand, ParseError> {
        let (tok, span) = self.current();
        let kind = match tok {
            Tok::Str(s) => OperandKind::String(s),
            Tok::Num(n) => OperandKind::Number(n),
            Tok::Ident(ref s) if s.eq_ignore_ascii_case("TRUE") => OperandKind::Bool(true),
            Tok::Ident(ref s) if s.eq_ignore_ascii_case("FALSE") => OperandKind::Bool(false),
            Tok::Ident(ref s) if s.eq_ignore_ascii_case("NULL") => OperandKind::Null,
            Tok::Ident(ref s) if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s)) => {
                return err(
                    format!("{expected}, found the keyword {}", s.to_uppercase()),
                    span,
                );
            }
            Tok::Ident(s) | Tok::Quoted(s) => return self.path(s, span),
            Tok::End => {
                // Point at what the value should follow, not at nothing.
                let span = self
                    .pos
                    .checked_sub(1)
                    .and_then(|p| self.tokens.get(p))
                    .map_or(span, |(_, s)| s.clone());
                return err(expected, span);
            }
            other => return err(format!("{expected}, found {}", other.describe()), span),
        };
        self.pos += 1;
        Ok(Operand { kind, span })
    }

    fn path(&mut self, first: String, span: Range<usize>) -> Result<Operand, ParseError> {
        self.pos += 1;
        if self.peek() == &Tok::LParen {
            return err(
                format!(
                    "`{first}(...)`: conditions have no functions (aggregates belong in a segment's `having`)"
                ),
                span,
            );
        }
        if !FIELDS.contains(&first.as_str()) {
            let hint = FIELDS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(&first))
                .map_or_else(
                    || format!("a path starts with one of: {}", FIELDS.join(", ")),
                    |f| format!("did you mean `{f}`?"),
                );
            return err(
                format!("`{first}` is not a field of an event: {hint}"),
                span,
            );
        }
        let mut segments = vec![first];
        let mut end = span.end;
        while self.peek() == &Tok::Dot {
            let (_, dot) = self.bump();
            let (tok, seg_span) = self.bump();
            match tok {
                Tok::Ident(s) | Tok::Quoted(s) => segments.push(s),
                other => {
                    return err(
                        format!(
                            "expected a field name after `.`, found {}",
                            other.describe()
                        ),
                        if other == Tok::End { dot } else { seg_span },
                    );
                }
            }
            end = seg_span.end;
        }
        Ok(Operand {
            kind: OperandKind::Path(segments),
            span: span.start..end,
        })
    }
}
