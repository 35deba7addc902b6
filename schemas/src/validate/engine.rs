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

/// Where and why the bytes stopped being JSON. Boxed, so that the results
/// of the hot scanning functions stay two words wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(Box<(usize, &'static str)>);

impl SyntaxError {
    pub(crate) fn new(pos: usize, what: &'static str) -> Self {
        SyntaxError(Box::new((pos, what)))
    }

    /// The byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.0.0
    }

    /// What was wrong.
    pub(crate) fn what(&self) -> &'static str {
        self.0.1
    }
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
    Function,
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
            Received::Function => "function".into(),
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
        Err(SyntaxError::new(self.pos, what))
    }

    #[inline]
    pub fn ws(&mut self) {
        // Minified JSON, the common case, has no whitespace at all.
        if self.b.get(self.pos).is_some_and(|&c| c > b' ') {
            return;
        }
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

    /// Reads a string; returns the raw content's range and whether it has
    /// escapes. Scans eight bytes at a time, and checks UTF-8 only in the
    /// strings that hold non-ASCII bytes (the only place JSON allows them).
    pub fn string_raw(&mut self) -> R<(usize, usize, bool)> {
        if self.next()? != b'"' {
            self.pos -= 1;
            return self.err("expected a string");
        }
        let start = self.pos;
        let mut escaped = false;
        let mut non_ascii = 0u64;
        let b = self.b;
        loop {
            // Fast scan over plain bytes, a word at a time.
            let mut i = self.pos;
            while let Some(chunk) = b.get(i..i + 8) {
                let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                    break;
                };
                let x = u64::from_le_bytes(word);
                let m = special(x);
                if m != 0 {
                    let at = (m.trailing_zeros() / 8) as usize;
                    non_ascii |= x & HIGHS & ((1u64 << (at * 8)).wrapping_sub(1));
                    i += at;
                    break;
                }
                non_ascii |= x & HIGHS;
                i += 8;
            }
            while let Some(&c) = b.get(i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                non_ascii |= u64::from(c & 0x80);
                i += 1;
            }
            self.pos = i;
            match b.get(self.pos) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    let end = self.pos;
                    if non_ascii != 0 && std::str::from_utf8(&b[start..end]).is_err() {
                        self.pos = start;
                        return self.err("a string is not valid UTF-8");
                    }
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = b.get(self.pos..self.pos + 4);
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

    /// The decoded bytes of a string: the raw bytes when it has no escapes
    /// (already checked to be UTF-8 by [`Self::string_raw`]), else decoded
    /// into `out`.
    #[inline]
    fn text<'s>(
        b: &'s [u8],
        start: usize,
        end: usize,
        escaped: bool,
        out: &'s mut String,
    ) -> &'s [u8] {
        if escaped {
            Self::decode(b, start, end, true, out).as_bytes()
        } else {
            &b[start..end]
        }
    }

    /// A string as JavaScript's UTF-16 units, for patterns: astral
    /// characters and escaped surrogates become one stand-in per unit.
    fn units<'s>(
        b: &'s [u8],
        start: usize,
        end: usize,
        escaped: bool,
        out: &'s mut String,
    ) -> &'s [u8] {
        let raw = &b[start..end];
        if !escaped && !raw.iter().any(|&c| c >= 0xF0) {
            return raw;
        }
        let text = std::str::from_utf8(raw).unwrap_or_default();
        out.clear();
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' || !escaped {
                super::compile::push_units(out, c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let unit = hex4(&text.as_bytes()[i + 2..i + 6]);
                    for _ in 0..4 {
                        chars.next();
                    }
                    if (0xD800..0xE000).contains(&unit) {
                        out.push(super::compile::unit_char(unit));
                    } else {
                        out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                    }
                }
                other => out.push(other),
            }
        }
        out.as_bytes()
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
        let (int_start, mut i) = self.integer_part()?;
        let mut simple = i - int_start <= 15;
        if b.get(i) == Some(&b'.') {
            simple = false;
            i = self.digit_run(i + 1, "invalid number: no digits after the decimal point")?;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            simple = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = self.digit_run(i, "invalid number: no digits in the exponent")?;
        }
        self.pos = i;
        if !simple {
            // Clinger's fast path: a mantissa below 2^53 divided by an exact
            // power of ten is correctly rounded, as JSON.parse's result is.
            if let Some(v) = fast_decimal(&b[start..i]) {
                return Ok(v);
            }
        }
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

    /// Scans a number's sign and integer digits (`0` or `[1-9][0-9]*`):
    /// returns where the digits start and end, without moving the cursor.
    fn integer_part(&mut self) -> R<(usize, usize)> {
        let b = self.b;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = i;
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
        Ok((digits, i))
    }

    /// The end of a run of one or more digits starting at `i`; `what` when there is none.
    fn digit_run(&mut self, mut i: usize, what: &'static str) -> R<usize> {
        let start = i;
        while self.b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            self.pos = i;
            return self.err(what);
        }
        Ok(i)
    }

    /// Skips one value (checking its syntax).
    fn value_skip(&mut self) -> R<()> {
        self.skip().map(|_| ())
    }

    /// Checks a number's syntax without computing its value.
    fn skip_number(&mut self) -> R<()> {
        let b = self.b;
        let (_, i) = self.integer_part()?;
        if b.get(i) == Some(&b'.') || matches!(b.get(i), Some(b'e' | b'E')) {
            // Rare enough outside validated values: let the full reader check it.
            self.number()?;
            return Ok(());
        }
        self.pos = i;
        Ok(())
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
        // The open containers: a bit per level (1 = object), no allocation
        // for the first 128 levels.
        let mut stack = BitStack::default();
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
                        stack.push(true);
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
                        if stack.len() == 0 {
                            items = 1;
                        }
                        stack.push(false);
                        continue;
                    }
                }
                b'"' => {
                    self.string_raw()?;
                }
                b'-' | b'0'..=b'9' => self.skip_number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return self.err("expected a value"),
            }
            loop {
                let Some(object) = stack.top() else {
                    return Ok((ty, items));
                };
                self.ws();
                match (object, self.next()?) {
                    (true, b',') => {
                        self.ws();
                        self.key_colon()?;
                        break;
                    }
                    (false, b',') => {
                        if stack.len() == 1 {
                            items += 1;
                        }
                        break;
                    }
                    (true, b'}') | (false, b']') => {
                        stack.pop();
                    }
                    (true, _) => {
                        self.pos -= 1;
                        return self.err("expected `,` or `}` in an object");
                    }
                    (false, _) => {
                        self.pos -= 1;
                        return self.err("expected `,` or `]` in an array");
                    }
                }
            }
        }
    }

    #[inline]
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
                self.absent(f);
            }
            self.path.pop();
        }
    }

    /// What Zod reports for a field whose key is absent: nothing when it is
    /// optional, the member of `Object.prototype` it finds for a key like
    /// `toString` (optional or not), else a missing-key issue.
    fn absent(&mut self, field: &'a super::compile::Field) {
        let prog = self.prog;
        let node = &prog.nodes[field.node];
        match field.inherited {
            Some(super::compile::Inherited::Function(len)) => {
                self.path.push(Seg::Name(&field.key));
                self.wrong_type(node, Received::Function, None);
                if !matches!(node.kind, Kind::Enum { .. }) {
                    self.unknown_length_checks(node.length_bounds(), f64::from(len));
                }
                self.path.pop();
            }
            // Zod never checks a key named `__proto__`.
            Some(super::compile::Inherited::Object) => {}
            None if field.required => self.missing(&field.key, node),
            None => {}
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

    /// Zod's length checks on a value of no known sizable type that has a
    /// `.length` (an object with a `length` key, a function): compared as
    /// JavaScript compares, so a non-numeric length fails both bounds.
    fn unknown_length_checks(&mut self, (min, max): (Option<u64>, Option<u64>), length: f64) {
        if let Some(min) = min
            && length.partial_cmp(&(min as f64)).is_none_or(|o| o.is_lt())
        {
            self.issue(
                IssueCode::TooSmall,
                format!("Too small: expected unknown to be >={min}"),
            );
        }
        if let Some(max) = max
            && length.partial_cmp(&(max as f64)).is_none_or(|o| o.is_gt())
        {
            self.issue(
                IssueCode::TooBig,
                format!("Too big: expected unknown to be <={max}"),
            );
        }
    }

    /// Skips an object; returns its last `length` value as JavaScript's
    /// `Number()` would see it, when it has one.
    fn object_length(&mut self) -> R<Option<f64>> {
        self.pos += 1; // {
        let mut length = None;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(None);
        }
        loop {
            let (ks, ke, kesc) = self.key_colon()?;
            self.ws();
            if !kesc && &self.b[ks..ke] == b"length" {
                length = Some(self.js_number_value(false)?);
            } else {
                self.skip()?;
            }
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(length),
                _ => {
                    self.pos -= 1;
                    return self.err("expected `,` or `}` in an object");
                }
            }
        }
    }

    /// Reads a value and converts it as JavaScript's `Number()` does (for an
    /// array element, as `Number(String(element))`).
    fn js_number_value(&mut self, element: bool) -> R<f64> {
        self.ws();
        Ok(match self.peek()? {
            b'-' | b'0'..=b'9' => self.number()?,
            b'"' => {
                let (s, e, esc) = self.string_raw()?;
                let mut scratch = String::new();
                js_string_to_number(Self::decode(self.b, s, e, esc, &mut scratch))
            }
            b't' => {
                self.literal(b"true")?;
                if element { f64::NAN } else { 1.0 }
            }
            b'f' => {
                self.literal(b"false")?;
                if element { f64::NAN } else { 0.0 }
            }
            b'n' => {
                self.literal(b"null")?;
                0.0
            }
            b'[' => {
                // `Number([x])` is `Number(String(x))`, `[]` is 0, longer is NaN;
                // nested single-element arrays unwrap without recursion.
                let mut at = self.pos;
                let mut end = None;
                loop {
                    self.pos = at;
                    let (_, n) = self.skip()?;
                    let outer_end = *end.get_or_insert(self.pos);
                    let v = match n {
                        0 => 0.0,
                        1 => {
                            self.pos = at + 1;
                            self.ws();
                            if self.peek()? == b'[' {
                                at = self.pos;
                                continue;
                            }
                            self.js_number_value(true)?
                        }
                        _ => f64::NAN,
                    };
                    self.pos = outer_end;
                    break v;
                }
            }
            _ => {
                self.skip()?;
                f64::NAN
            }
        })
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
                    .any(|v| v.as_bytes() == Self::text(self.b, s, e, esc, &mut scratch));
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
                        let length = self.object_length()?;
                        if let Some(l) = length
                            && !matches!(node.kind, Kind::Enum { .. })
                        {
                            self.wrong_type(node, Received::Object, None);
                            self.unknown_length_checks(node.length_bounds(), l);
                            return Ok(());
                        }
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
        let (s, e, esc) = self.string_raw()?;
        self.string_checks(node, s, e, esc);
        Ok(())
    }

    /// The checks of a string node on a string already read (its raw
    /// content's range), in Zod's order: format, lengths, pattern.
    pub fn string_checks(&mut self, node: &'a Node, s: usize, e: usize, esc: bool) {
        let Kind::String {
            format,
            min_len,
            max_len,
            pattern,
        } = &node.kind
        else {
            return;
        };
        let (format_ok, pattern_ok) = if format.is_some() || pattern.is_some() {
            let mut scratch = std::mem::take(&mut self.scratch);
            let text = Self::text(self.b, s, e, esc, &mut scratch);
            let f = format.is_none_or(|f| f.matches(text));
            let p = match pattern {
                None => true,
                Some(p) => {
                    let mut units = String::new();
                    p.regex.is_match(Self::units(self.b, s, e, esc, &mut units))
                }
            };
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
                if max.is_some_and(|max| n as u64 >= max) {
                    // One item too many: Zod checks an array's maximum before
                    // its items and reports only that, so forget the items'
                    // issues and just count the rest.
                    self.issues.truncate(start);
                    self.value_skip()?;
                } else {
                    self.path.push(Seg::Index(n));
                    let r = self.value(item);
                    self.path.pop();
                    r?;
                }
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
        if max.is_some_and(|max| n as u64 > max) {
            self.issues.truncate(start);
            self.length_checks((None, max), "array", n);
            return Ok(());
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
                    let key = Self::text(self.b, ks, ke, kesc, &mut scratch);
                    let found = find_field(fields, key);
                    if found.is_err() && *unknown == UnknownKeys::Strict {
                        let key = String::from_utf8_lossy(key);
                        if !unrecognized.iter().any(|u| *u == key) {
                            unrecognized.push(key.into_owned());
                        }
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
                        // Zod never checks a key named `__proto__`.
                        let r = if fields[i].inherited == Some(super::compile::Inherited::Object) {
                            self.skip().map(|_| ())
                        } else {
                            self.value(fields[i].node)
                        };
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
            .any(|(i, f)| (f.required || f.inherited.is_some()) && !seen.get(i));
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
            } else {
                self.absent(field);
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

/// The field with this key: a linear scan comparing lengths first, faster
/// than a binary search for the ten-odd fields of a typical event.
fn find_field(fields: &[super::compile::Field], key: &[u8]) -> Result<usize, usize> {
    if fields.len() > 24 {
        return fields.binary_search_by(|f| f.key.as_bytes().cmp(key));
    }
    fields
        .iter()
        .position(|f| f.key.len() == key.len() && short_eq(f.key.as_bytes(), key))
        .ok_or(0)
}

/// JavaScript's `Number(string)`: trimmed, empty is 0, decimal, `Infinity`,
/// or `0x`/`0o`/`0b` integers; anything else is NaN.
fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(crate::formats::is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return u128::from_str_radix(digits, radix).map_or(f64::NAN, |v| v as f64);
        }
    }
    match t.strip_prefix(['+', '-']).unwrap_or(t) {
        "Infinity" => {
            return if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        body if body.is_empty()
            || !body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) =>
        {
            return f64::NAN;
        }
        _ => {}
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `123.45` or `-0.5` (no exponent, at most 15 significant digits) exactly.
fn fast_decimal(lexeme: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match lexeme.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, lexeme),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    let mut frac = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
            }
            b'.' => frac = Some(i),
            _ => return None,
        }
        if count > 15 {
            return None;
        }
    }
    let scale = digits.len() - 1 - frac?;
    let v = mantissa as f64 / POW10[scale.min(15)];
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::fast_decimal;

    #[test]
    fn fast_decimals_equal_the_full_parser() {
        for s in [
            "0.07",
            "875.83",
            "-0.5",
            "4379.15",
            "0.000001",
            "123456789.012345",
            "1.5",
            "-0.0",
        ] {
            assert_eq!(
                fast_decimal(s.as_bytes()),
                Some(s.parse::<f64>().unwrap()),
                "{s}"
            );
        }
        assert_eq!(fast_decimal(b"1234567890.1234567"), None);
        assert_eq!(fast_decimal(b"1e5"), None);
    }
}

/// Byte equality of two short slices of equal length, without a call to memcmp.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set in the first byte of `x` (little-endian) that
/// ends a plain run in a string: `"`, `\` or a control character. Bits above
/// the first match may be spurious; only the lowest is used.
#[inline]
fn special(x: u64) -> u64 {
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    zero(quote) | zero(backslash) | control
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

/// A stack of booleans: 128 in two words, then a vector.
#[derive(Default)]
struct BitStack {
    low: u128,
    len: usize,
    high: Vec<bool>,
}

impl BitStack {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, v: bool) {
        if self.len < 128 {
            self.low = (self.low & !(1 << self.len)) | (u128::from(v) << self.len);
        } else {
            self.high.push(v);
        }
        self.len += 1;
    }

    fn top(&self) -> Option<bool> {
        match self.len {
            0 => None,
            n if n <= 128 => Some(self.low & (1 << (n - 1)) != 0),
            _ => self.high.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.len > 128 {
            self.high.pop();
        }
        self.len = self.len.saturating_sub(1);
    }
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
