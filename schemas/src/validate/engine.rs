//! The engine: one schema-driven pass over the bytes of a JSON value.
//!
//! There is no tree: each value is checked as it is read, values the schema
//! does not look into are skipped by an iterative scanner (so nesting depth
//! can never overflow the stack), and issues are produced only on failure.
//! Semantics are JavaScript's `JSON.parse` followed by Zod 4:
//! duplicate keys keep the last value, `1e400` is `Infinity`, lengths count
//! code points, and issues come out in the schema's key order.

use crate::formats::MAX_SAFE_INTEGER;

use super::compile::{Kind, Node, NodeId, Program};
use super::issue::{Issue, IssueCode, PathSegment, js_number};
use crate::schema::UnknownKeys;

/// Where and why the bytes stopped being JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub pos: usize,
    pub what: &'static str,
}

pub(crate) type R<T> = Result<T, SyntaxError>;

/// A path step, borrowed until an issue needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    /// A key in the input, `start..end` of its raw (maybe escaped) text.
    Raw {
        start: usize,
        end: usize,
        escaped: bool,
    },
    /// A key named by the schema.
    Name(&'a str),
    Index(usize),
}

/// What a value of the wrong type was, in Zod's words.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Received {
    String,
    Number,
    Infinite(f64),
    Boolean,
    Null,
    Object,
    Array,
}

impl Received {
    fn name(self) -> String {
        match self {
            Received::String => "string".into(),
            Received::Number => "number".into(),
            Received::Infinite(v) => js_number(v),
            Received::Boolean => "boolean".into(),
            Received::Null => "null".into(),
            Received::Object => "object".into(),
            Received::Array => "array".into(),
        }
    }
}

/// The first byte of a value, as a JSON type (after a syntax check of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    String,
    Number,
    Boolean,
    Null,
    Object,
    Array,
}

pub(crate) struct Engine<'a> {
    pub prog: &'a Program,
    pub b: &'a [u8],
    pub pos: usize,
    pub issues: Vec<Issue>,
    pub path: Vec<Seg<'a>>,
    scratch: String,
}

impl<'a> Engine<'a> {
    pub fn new(prog: &'a Program, b: &'a [u8]) -> Self {
        Engine {
            prog,
            b,
            pos: 0,
            issues: Vec::new(),
            path: Vec::new(),
            scratch: String::new(),
        }
    }

    // ------------------------------------------------------------ scanning

    fn err<T>(&self, what: &'static str) -> R<T> {
        Err(SyntaxError {
            pos: self.pos,
            what,
        })
    }

    #[inline]
    pub fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub fn peek(&self) -> R<u8> {
        match self.b.get(self.pos) {
            Some(&c) => Ok(c),
            None => self.err("unexpected end of input"),
        }
    }

    #[inline]
    pub fn next(&mut self) -> R<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Ok(c)
    }

    fn literal(&mut self, word: &'static [u8]) -> R<()> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("invalid literal (expected true, false or null)")
        }
    }

    /// Reads a string; returns the raw content's range and whether it has escapes.
    pub fn string_raw(&mut self) -> R<(usize, usize, bool)> {
        if self.next()? != b'"' {
            self.pos -= 1;
            return self.err("expected a string");
        }
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Fast scan over plain bytes.
            while let Some(&c) = self.b.get(self.pos) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match self.b.get(self.pos) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.pos..self.pos + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.err("invalid \\u escape");
                            }
                            self.pos += 4;
                        }
                        _ => {
                            self.pos -= 1;
                            return self.err("invalid escape");
                        }
                    }
                }
                Some(_) => return self.err("control character in string"),
            }
        }
    }

    /// The decoded text of a string read by [`Self::string_raw`]: borrowed
    /// when it has no escapes, else decoded into `out` (lone surrogates
    /// become U+FFFD).
    fn decode<'s>(
        b: &'s [u8],
        start: usize,
        end: usize,
        escaped: bool,
        out: &'s mut String,
    ) -> &'s str {
        let raw = std::str::from_utf8(&b[start..end]).unwrap_or_default();
        if !escaped {
            return raw;
        }
        out.clear();
        let bytes = raw.as_bytes();
        let mut i = 0;
        let mut plain = 0;
        while i < bytes.len() {
            if bytes[i] != b'\\' {
                i += 1;
                continue;
            }
            out.push_str(&raw[plain..i]);
            let e = bytes[i + 1];
            i += 2;
            match e {
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let unit = hex4(&bytes[i..i + 4]);
                    i += 4;
                    if (0xD800..0xDC00).contains(&unit)
                        && bytes.get(i) == Some(&b'\\')
                        && bytes.get(i + 1) == Some(&b'u')
                    {
                        let low = hex4(&bytes[i + 2..i + 6]);
                        if (0xDC00..0xE000).contains(&low) {
                            let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                            i += 6;
                            plain = i;
                            continue;
                        }
                    }
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
                other => out.push(char::from(other)),
            }
            plain = i;
        }
        out.push_str(&raw[plain..]);
        out
    }

    /// Code points of a string's decoded value (lone surrogates count one).
    fn codepoints(&mut self, start: usize, end: usize, escaped: bool) -> usize {
        if escaped {
            let mut scratch = std::mem::take(&mut self.scratch);
            let n = Self::decode(self.b, start, end, true, &mut scratch)
                .chars()
                .count();
            self.scratch = scratch;
            n
        } else {
            self.b[start..end]
                .iter()
                .filter(|&&c| (c & 0xC0) != 0x80)
                .count()
        }
    }

    /// Reads a number as JavaScript's `JSON.parse` would.
    pub fn number(&mut self) -> R<f64> {
        let start = self.pos;
        let b = self.b;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return self.err("invalid number");
            }
        }
        let mut simple = i - int_start <= 15;
        if b.get(i) == Some(&b'.') {
            simple = false;
            i += 1;
            let d = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == d {
                self.pos = i;
                return self.err("invalid number: no digits after the decimal point");
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            simple = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let d = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == d {
                self.pos = i;
                return self.err("invalid number: no digits in the exponent");
            }
        }
        self.pos = i;
        if simple {
            let mut n: i64 = 0;
            for &c in &b[int_start..i] {
                n = n * 10 + i64::from(c - b'0');
            }
            let v = n as f64;
            return Ok(if b[start] == b'-' { -v } else { v });
        }
        let text = std::str::from_utf8(&b[start..i]).unwrap_or("0");
        Ok(text.parse::<f64>().unwrap_or(f64::NAN))
    }

    /// Skips one value of any type, checking its syntax, without recursion.
    /// Returns the value's JSON type and, for arrays, how many items it has.
    pub fn skip(&mut self) -> R<(JsonType, usize)> {
        self.ws();
        let ty = match self.peek()? {
            b'"' => JsonType::String,
            b'{' => JsonType::Object,
            b'[' => JsonType::Array,
            b't' | b'f' => JsonType::Boolean,
            b'n' => JsonType::Null,
            _ => JsonType::Number,
        };
        let mut stack: Vec<u8> = Vec::new();
        let mut items = 0usize;
        loop {
            self.ws();
            match self.peek()? {
                b'{' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.pos += 1;
                    } else {
                        if stack.len() > 100_000 {
                            return self.err("nesting deeper than 100000 levels");
                        }
                        stack.push(b'{');
                        self.key_colon()?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.pos += 1;
                    } else {
                        if stack.len() > 100_000 {
                            return self.err("nesting deeper than 100000 levels");
                        }
                        if stack.is_empty() {
                            items = 1;
                        }
                        stack.push(b'[');
                        continue;
                    }
                }
                b'"' => {
                    self.string_raw()?;
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return self.err("expected a value"),
            }
            loop {
                let Some(&top) = stack.last() else {
                    return Ok((ty, items));
                };
                self.ws();
                match (top, self.next()?) {
                    (b'{', b',') => {
                        self.ws();
                        self.key_colon()?;
                        break;
                    }
                    (b'[', b',') => {
                        if stack.len() == 1 {
                            items += 1;
                        }
                        break;
                    }
                    (b'{', b'}') | (b'[', b']') => {
                        stack.pop();
                    }
                    (b'{', _) => {
                        self.pos -= 1;
                        return self.err("expected `,` or `}` in an object");
                    }
                    _ => {
                        self.pos -= 1;
                        return self.err("expected `,` or `]` in an array");
                    }
                }
            }
        }
    }

    fn key_colon(&mut self) -> R<(usize, usize, bool)> {
        self.ws();
        if self.peek()? != b'"' {
            return self.err("expected a key (a string)");
        }
        let key = self.string_raw()?;
        self.ws();
        if self.next()? != b':' {
            self.pos -= 1;
            return self.err("expected `:` after a key");
        }
        Ok(key)
    }

    // ------------------------------------------------------------ issues

    fn path_owned(&mut self, extra: Option<Seg<'a>>) -> Vec<PathSegment> {
        let mut out = Vec::with_capacity(self.path.len() + 1);
        let mut scratch = std::mem::take(&mut self.scratch);
        for seg in self.path.iter().copied().chain(extra) {
            out.push(match seg {
                Seg::Raw {
                    start,
                    end,
                    escaped,
                } => PathSegment::Key(
                    Self::decode(self.b, start, end, escaped, &mut scratch).to_owned(),
                ),
                Seg::Name(n) => PathSegment::Key(n.to_owned()),
                Seg::Index(i) => PathSegment::Index(i),
            });
        }
        self.scratch = scratch;
        out
    }

    pub fn issue(&mut self, code: IssueCode, message: String) {
        let path = self.path_owned(None);
        self.issues.push(Issue::new(code, path, message));
    }

    fn issue_at(&mut self, extra: Seg<'a>, code: IssueCode, message: String) {
        let path = self.path_owned(Some(extra));
        self.issues.push(Issue::new(code, path, message));
    }

    /// The issue for a missing required key.
    fn missing(&mut self, key: &'a str, node: &Node) {
        match &node.kind {
            Kind::Enum { message, .. } => {
                self.issue_at(Seg::Name(key), IssueCode::InvalidValue, message.to_string())
            }
            _ => {
                let msg = format!(
                    "Invalid input: expected {}, received undefined",
                    node.expected()
                );
                self.issue_at(Seg::Name(key), IssueCode::InvalidType, msg);
            }
        }
    }

    /// The issue for a missing required top-level key.
    pub fn missing_top(&mut self, key: &'a str, node: NodeId) {
        let prog = self.prog;
        self.missing(key, &prog.nodes[node]);
    }

    /// An absent body (`properties`, `traits`) is checked as `{}`: each
    /// required field is missing.
    pub fn empty_object(&mut self, key: &'a str, node: NodeId) {
        let prog = self.prog;
        if let Kind::Object { fields, .. } = &prog.nodes[node].kind {
            self.path.push(Seg::Name(key));
            for f in fields.iter() {
                if f.required {
                    self.missing(&f.key, &prog.nodes[f.node]);
                }
            }
            self.path.pop();
        }
    }

    /// A value of the wrong type; `len` is its length when it has one, for
    /// the length checks Zod still runs.
    pub fn wrong_type(
        &mut self,
        node: &Node,
        received: Received,
        len: Option<(&'static str, usize)>,
    ) {
        match &node.kind {
            Kind::Enum { message, .. } => {
                self.issue(IssueCode::InvalidValue, message.to_string());
                return;
            }
            _ => {
                let msg = format!(
                    "Invalid input: expected {}, received {}",
                    node.expected(),
                    received.name()
                );
                self.issue(IssueCode::InvalidType, msg);
            }
        }
        if let Some((origin, n)) = len {
            self.length_checks(node.length_bounds(), origin, n);
        }
    }

    fn length_checks(&mut self, (min, max): (Option<u64>, Option<u64>), origin: &str, n: usize) {
        let unit = if origin == "string" {
            "characters"
        } else {
            "items"
        };
        if let Some(min) = min
            && (n as u64) < min
        {
            self.issue(
                IssueCode::TooSmall,
                format!("Too small: expected {origin} to have >={min} {unit}"),
            );
        }
        if let Some(max) = max
            && (n as u64) > max
        {
            self.issue(
                IssueCode::TooBig,
                format!("Too big: expected {origin} to have <={max} {unit}"),
            );
        }
    }

    // ------------------------------------------------------------ values

    /// Checks the value at the cursor against a node.
    pub fn value(&mut self, id: NodeId) -> R<()> {
        self.ws();
        let prog = self.prog;
        let node = &prog.nodes[id];
        let c = self.peek()?;
        match (&node.kind, c) {
            (_, b'n') => {
                self.literal(b"null")?;
                if !node.nullable {
                    self.wrong_type(node, Received::Null, None);
                }
                Ok(())
            }
            (Kind::String { .. }, b'"') => self.string_node(node),
            (Kind::Enum { values, message }, b'"') => {
                let (s, e, esc) = self.string_raw()?;
                let mut scratch = std::mem::take(&mut self.scratch);
                let ok = values
                    .iter()
                    .any(|v| **v == *Self::decode(self.b, s, e, esc, &mut scratch));
                self.scratch = scratch;
                if !ok {
                    self.issue(IssueCode::InvalidValue, message.to_string());
                }
                Ok(())
            }
            (Kind::Number { .. }, b'-' | b'0'..=b'9') => self.number_node(node),
            (Kind::Boolean, b't') => self.literal(b"true"),
            (Kind::Boolean, b'f') => self.literal(b"false"),
            (Kind::Object { .. }, b'{') => self.object(node),
            (
                Kind::Array {
                    item,
                    min_len,
                    max_len,
                },
                b'[',
            ) => self.array(*item, *min_len, *max_len),
            _ => {
                let (received, len) = match c {
                    b'"' => {
                        let (s, e, esc) = self.string_raw()?;
                        (
                            Received::String,
                            Some(("string", self.codepoints(s, e, esc))),
                        )
                    }
                    b'[' => (Received::Array, Some(("array", self.skip()?.1))),
                    b'{' => {
                        self.skip()?;
                        (Received::Object, None)
                    }
                    b't' | b'f' => {
                        self.skip()?;
                        (Received::Boolean, None)
                    }
                    b'-' | b'0'..=b'9' => {
                        let v = self.number()?;
                        (
                            if v.is_finite() {
                                Received::Number
                            } else {
                                Received::Infinite(v)
                            },
                            None,
                        )
                    }
                    _ => return self.err("expected a value"),
                };
                self.wrong_type(node, received, len);
                Ok(())
            }
        }
    }

    fn string_node(&mut self, node: &'a Node) -> R<()> {
        let Kind::String {
            format,
            min_len,
            max_len,
            pattern,
        } = &node.kind
        else {
            return Ok(());
        };
        let (s, e, esc) = self.string_raw()?;
        let (format_ok, pattern_ok) = if format.is_some() || pattern.is_some() {
            let mut scratch = std::mem::take(&mut self.scratch);
            let text = Self::decode(self.b, s, e, esc, &mut scratch);
            let f = format.is_none_or(|f| f.matches(text));
            let p = pattern.as_ref().is_none_or(|p| p.regex.is_match(text));
            self.scratch = scratch;
            (f, p)
        } else {
            (true, true)
        };
        if let Some(f) = format
            && !format_ok
        {
            self.issue(IssueCode::InvalidFormat, f.message().to_owned());
        }
        if min_len.is_some() || max_len.is_some() {
            let n = self.codepoints(s, e, esc);
            self.length_checks((*min_len, *max_len), "string", n);
        }
        if let Some(p) = pattern
            && !pattern_ok
        {
            self.issue(IssueCode::InvalidFormat, p.message.clone());
        }
        Ok(())
    }

    fn number_node(&mut self, node: &Node) -> R<()> {
        let Kind::Number {
            int,
            min,
            max,
            multiple_of,
        } = node.kind
        else {
            return Ok(());
        };
        let v = self.number()?;
        if !v.is_finite() {
            self.wrong_type(node, Received::Infinite(v), None);
            return Ok(());
        }
        if int {
            if v.fract() != 0.0 {
                self.issue(
                    IssueCode::InvalidType,
                    "Invalid input: expected int, received number".to_owned(),
                );
                if let Some(last) = self.issues.last_mut() {
                    last.aborts = true;
                }
                return Ok(());
            }
            if v > MAX_SAFE_INTEGER {
                self.issue(
                    IssueCode::TooBig,
                    "Too big: expected int to be <=9007199254740991".to_owned(),
                );
            } else if v < -MAX_SAFE_INTEGER {
                self.issue(
                    IssueCode::TooSmall,
                    "Too small: expected int to be >=-9007199254740991".to_owned(),
                );
            }
        }
        if let Some(m) = min
            && v < m
        {
            self.issue(
                IssueCode::TooSmall,
                format!("Too small: expected number to be >={}", js_number(m)),
            );
        }
        if let Some(m) = max
            && v > m
        {
            self.issue(
                IssueCode::TooBig,
                format!("Too big: expected number to be <={}", js_number(m)),
            );
        }
        if let Some(d) = multiple_of
            && !is_multiple(v, d)
        {
            self.issue(
                IssueCode::NotMultipleOf,
                format!("Invalid number: must be a multiple of {}", js_number(d)),
            );
        }
        Ok(())
    }

    fn array(&mut self, item: NodeId, min: Option<u64>, max: Option<u64>) -> R<()> {
        self.pos += 1; // [
        let start = self.issues.len();
        let mut n = 0usize;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.path.push(Seg::Index(n));
                let r = self.value(item);
                self.path.pop();
                r?;
                n += 1;
                self.ws();
                match self.next()? {
                    b',' => continue,
                    b']' => break,
                    _ => {
                        self.pos -= 1;
                        return self.err("expected `,` or `]` in an array");
                    }
                }
            }
        }
        if !self.issues[start..].iter().any(|i| i.aborts) {
            self.length_checks((min, max), "array", n);
        }
        Ok(())
    }

    fn object(&mut self, node: &'a Node) -> R<()> {
        let Kind::Object { fields, unknown } = &node.kind else {
            return Ok(());
        };
        self.pos += 1; // {
        let start = self.issues.len();
        let mut seen = Seen::new(fields.len());
        // (field, issues start, issues end, live) for values that produced issues.
        let mut occurrences: Vec<(usize, usize, usize, bool)> = Vec::new();
        let mut unrecognized: Vec<String> = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                let (ks, ke, kesc) = self.key_colon()?;
                let found = {
                    let mut scratch = std::mem::take(&mut self.scratch);
                    let key = Self::decode(self.b, ks, ke, kesc, &mut scratch);
                    let found = fields.binary_search_by(|f| f.key.as_bytes().cmp(key.as_bytes()));
                    if found.is_err()
                        && *unknown == UnknownKeys::Strict
                        && !unrecognized.iter().any(|u| u == key)
                    {
                        unrecognized.push(key.to_owned());
                    }
                    self.scratch = scratch;
                    found
                };
                match found {
                    Ok(i) => {
                        if seen.get(i) {
                            // JSON.parse keeps the last value of a repeated key.
                            for occ in occurrences.iter_mut().filter(|o| o.0 == i) {
                                occ.3 = false;
                            }
                        }
                        seen.set(i);
                        let before = self.issues.len();
                        self.path.push(Seg::Raw {
                            start: ks,
                            end: ke,
                            escaped: kesc,
                        });
                        let r = self.value(fields[i].node);
                        self.path.pop();
                        r?;
                        if self.issues.len() > before {
                            occurrences.push((i, before, self.issues.len(), true));
                        }
                    }
                    Err(_) => {
                        self.skip()?;
                    }
                }
                self.ws();
                match self.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => {
                        self.pos -= 1;
                        return self.err("expected `,` or `}` in an object");
                    }
                }
            }
        }
        let missing = fields
            .iter()
            .enumerate()
            .any(|(i, f)| f.required && !seen.get(i));
        let in_order =
            occurrences.iter().all(|o| o.3) && occurrences.windows(2).all(|w| w[0].0 < w[1].0);
        if !missing && unrecognized.is_empty() && in_order {
            return Ok(());
        }
        // Rebuild this object's issues in schema order, as Zod reports them.
        let produced: Vec<Issue> = self.issues.split_off(start);
        for (i, field) in fields.iter().enumerate() {
            if seen.get(i) {
                for &(f, s, e, live) in &occurrences {
                    if f == i && live {
                        self.issues
                            .extend_from_slice(&produced[s - start..e - start]);
                    }
                }
            } else if field.required {
                let prog = self.prog;
                self.missing(&field.key, &prog.nodes[field.node]);
            }
        }
        if !unrecognized.is_empty() {
            // JavaScript's key order: integer-like keys ascending, then the rest.
            let (mut ints, rest): (Vec<String>, Vec<String>) =
                unrecognized.into_iter().partition(|k| is_array_index(k));
            ints.sort_by_key(|k| k.parse::<u64>().unwrap_or(0));
            ints.extend(rest);
            let quoted: Vec<String> = ints.iter().map(|k| format!("\"{k}\"")).collect();
            let s = if ints.len() > 1 { "s" } else { "" };
            self.issue(
                IssueCode::UnrecognizedKeys,
                format!("Unrecognized key{s}: {}", quoted.join(", ")),
            );
        }
        Ok(())
    }
}

fn hex4(h: &[u8]) -> u32 {
    h.iter().fold(0, |n, &c| {
        n * 16
            + match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'a'..=b'f' => u32::from(c - b'a' + 10),
                _ => u32::from(c - b'A' + 10),
            }
    })
}

/// Zod's `floatSafeRemainder`: `v / d` within 4 ulps of an integer.
pub(crate) fn is_multiple(v: f64, d: f64) -> bool {
    let r = v / d;
    (r - js_round(r)).abs() < 4.0 * f64::EPSILON * r.abs().max(1.0)
}

/// JavaScript's `Math.round` (halves round towards +infinity), exactly:
/// `floor(x + 0.5)` would round 0.49999999999999994 up.
fn js_round(x: f64) -> f64 {
    let f = x.floor();
    if x - f >= 0.5 { f + 1.0 } else { f }
}

/// A canonical array index (`0`, `17`, not `01`), which JavaScript orders first.
fn is_array_index(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|c| c.is_ascii_digit())
        && (k == "0" || !k.starts_with('0'))
        && k.parse::<u64>().is_ok_and(|n| n < 4_294_967_295)
}

/// Which of an object's fields were seen: a bit mask up to 64, a vector beyond.
enum Seen {
    Small(u64),
    Large(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Seen::Small(0)
        } else {
            Seen::Large(vec![false; n])
        }
    }

    fn get(&self, i: usize) -> bool {
        match self {
            Seen::Small(m) => m & (1 << i) != 0,
            Seen::Large(v) => v[i],
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            Seen::Small(m) => *m |= 1 << i,
            Seen::Large(v) => v[i] = true,
        }
    }
}
