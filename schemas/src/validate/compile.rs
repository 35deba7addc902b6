//! Compiling schemas ahead of time into a flat program the engine runs:
//! nodes in an arena, object fields sorted by key for binary search, enum
//! messages and pattern regexes prepared once.

use regex::bytes::Regex;

use crate::schema::{Format, PropertyType, Schema, UnknownKeys};

/// An index into [`Program::nodes`].
pub(crate) type NodeId = usize;

/// A string format, including the envelope's offset date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fmt {
    Email,
    Url,
    Uuid,
    DateTime,
    DateTimeOffset,
    Date,
}

impl Fmt {
    fn of(f: Format) -> Fmt {
        match f {
            Format::Email => Fmt::Email,
            Format::Uri => Fmt::Url,
            Format::Uuid => Fmt::Uuid,
            Format::DateTime => Fmt::DateTime,
            Format::Date => Fmt::Date,
        }
    }

    /// Zod's message for a value that does not match.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Fmt::Email => "Invalid email address",
            Fmt::Url => "Invalid URL",
            Fmt::Uuid => "Invalid UUID",
            Fmt::DateTime | Fmt::DateTimeOffset => "Invalid ISO datetime",
            Fmt::Date => "Invalid ISO date",
        }
    }

    pub(crate) fn matches(self, s: &[u8]) -> bool {
        use crate::formats::*;
        match self {
            Fmt::Email => email_bytes(s),
            Fmt::Url => std::str::from_utf8(s).is_ok_and(is_url),
            Fmt::Uuid => uuid_bytes(s),
            Fmt::DateTime => datetime_bytes(s, false),
            Fmt::DateTimeOffset => datetime_bytes(s, true),
            Fmt::Date => date_prefix(s),
        }
    }
}

/// A user's `pattern`, translated to run with JavaScript's meaning.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub regex: Regex,
    /// Zod's message: `Invalid string: must match pattern /.../`.
    pub message: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    String {
        format: Option<Fmt>,
        min_len: Option<u64>,
        max_len: Option<u64>,
        pattern: Option<Box<Pattern>>,
    },
    Number {
        int: bool,
        min: Option<f64>,
        max: Option<f64>,
        multiple_of: Option<f64>,
    },
    Boolean,
    Enum {
        values: Box<[Box<str>]>,
        message: Box<str>,
    },
    Object {
        /// In JavaScript's key order over the sorted keys: the order Zod
        /// reports issues in, as the generated shapes list keys sorted.
        fields: Box<[Field]>,
        unknown: UnknownKeys,
    },
    Array {
        item: NodeId,
        min_len: Option<u64>,
        max_len: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub key: Box<str>,
    pub node: NodeId,
    pub required: bool,
    /// For keys that name a member of `Object.prototype` (`toString`,
    /// `constructor`, `__proto__`, ...): what Zod reads when the key is
    /// absent, since `input[key]` then finds the inherited member.
    pub inherited: Option<Inherited>,
}

/// An inherited member of `Object.prototype`, as Zod sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inherited {
    /// A method, with its `.length` (its number of parameters).
    Function(u32),
    /// `__proto__`: Zod never checks this key, present or not.
    Object,
}

impl Inherited {
    /// The member a key names, if any.
    pub(crate) fn of(key: &str) -> Option<Inherited> {
        Some(match key {
            "__proto__" => Inherited::Object,
            "constructor"
            | "hasOwnProperty"
            | "isPrototypeOf"
            | "propertyIsEnumerable"
            | "__lookupGetter__"
            | "__lookupSetter__" => Inherited::Function(1),
            "__defineGetter__" | "__defineSetter__" => Inherited::Function(2),
            "toString" | "toLocaleString" | "valueOf" => Inherited::Function(0),
            _ => return None,
        })
    }
}

/// JavaScript's own-property order: integer-like keys ascending, then the
/// rest in the order written (sorted, as the generated Zod shapes are).
pub(crate) fn js_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (array_index(a), array_index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// A canonical array index (`0`, `17`, not `01`), which JavaScript orders first.
pub(crate) fn array_index(k: &str) -> Option<u64> {
    if k.is_empty() || !k.bytes().all(|c| c.is_ascii_digit()) || (k.len() > 1 && k.starts_with('0'))
    {
        return None;
    }
    k.parse::<u64>().ok().filter(|&n| n < 4_294_967_295)
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub nullable: bool,
}

impl Node {
    /// Zod's `expected` for a value of the wrong type.
    pub(crate) fn expected(&self) -> &'static str {
        match self.kind {
            Kind::String { .. } => "string",
            Kind::Number { .. } => "number",
            Kind::Boolean => "boolean",
            Kind::Enum { .. } => "enum",
            Kind::Object { .. } => "object",
            Kind::Array { .. } => "array",
        }
    }

    /// The `min-length`/`max-length` bounds, which Zod checks on any value
    /// with a `.length`, even one of the wrong type.
    pub(crate) fn length_bounds(&self) -> (Option<u64>, Option<u64>) {
        match self.kind {
            Kind::String {
                min_len, max_len, ..
            }
            | Kind::Array {
                min_len, max_len, ..
            } => (min_len, max_len),
            _ => (None, None),
        }
    }
}

/// Compiled schemas.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub nodes: Vec<Node>,
}

impl Program {
    pub(crate) fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Compiles a schema and everything under it; returns its root.
    pub(crate) fn compile(&mut self, s: &Schema) -> NodeId {
        let kind = match s.ty {
            PropertyType::String => Kind::String {
                format: s.format.map(Fmt::of),
                min_len: s.min_length,
                max_len: s.max_length,
                pattern: s.pattern.as_deref().and_then(compile_pattern).map(Box::new),
            },
            PropertyType::Timestamp => Kind::String {
                format: Some(Fmt::DateTime),
                min_len: None,
                max_len: None,
                pattern: None,
            },
            PropertyType::Number | PropertyType::Integer => Kind::Number {
                int: s.ty == PropertyType::Integer,
                min: s.min,
                max: s.max,
                multiple_of: s.multiple_of,
            },
            PropertyType::Boolean => Kind::Boolean,
            PropertyType::Enum => Kind::Enum {
                values: s.values.iter().map(|v| v.as_str().into()).collect(),
                message: enum_message(&s.values).into(),
            },
            PropertyType::Object => {
                let mut fields: Vec<Field> = s
                    .properties
                    .iter()
                    .map(|(k, v)| Field {
                        key: k.as_str().into(),
                        node: self.compile(v),
                        required: !v.optional,
                        inherited: Inherited::of(k),
                    })
                    .collect();
                fields.sort_by(|a, b| js_key_order(&a.key, &b.key));
                Kind::Object {
                    fields: fields.into(),
                    unknown: s.unknown_keys,
                }
            }
            PropertyType::Array => {
                let item = match &s.items {
                    Some(i) => self.compile(i),
                    // The compiler always gives arrays an item; accept anything if not.
                    None => self.add(Node {
                        kind: Kind::Object {
                            fields: Box::new([]),
                            unknown: UnknownKeys::Passthrough,
                        },
                        nullable: true,
                    }),
                };
                Kind::Array {
                    item,
                    min_len: s.min_length,
                    max_len: s.max_length,
                }
            }
        };
        self.add(Node {
            kind,
            nullable: s.nullable,
        })
    }
}

/// `Invalid option: expected one of "a"|"b"` (or `Invalid input: expected "a"`).
pub(crate) fn enum_message(values: &[String]) -> String {
    if values.len() == 1 {
        format!("Invalid input: expected \"{}\"", values[0])
    } else {
        let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
        format!("Invalid option: expected one of {}", quoted.join("|"))
    }
}

/// Compiles a JavaScript pattern into a Rust regex with the same meaning for
/// the syntax they share: `\d`, `\w` and `\b` are ASCII as in JavaScript, and
/// `.` stops at JavaScript's line terminators. `None` when the pattern does
/// not compile (the compiler rejects those first).
pub(crate) fn compile_pattern(js: &str) -> Option<Pattern> {
    let rust = translate(js);
    let regex = Regex::new(&rust).ok()?;
    Some(Pattern {
        regex,
        message: format!(
            "Invalid string: must match pattern /{}/",
            js_regex_source(js)
        ),
    })
}

/// JavaScript's `\s`: WhiteSpace and LineTerminator.
const JS_SPACE: &str = r"\t\n\x0B\x0C\r \u{A0}\u{1680}\u{2000}-\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{FEFF}";

/// The private-use character standing for a UTF-16 surrogate unit, so that
/// patterns see strings as JavaScript does without the `u` flag: an astral
/// character is two units, each matched by one `.`.
pub(crate) fn unit_char(unit: u32) -> char {
    char::from_u32(0xE000 + (unit - 0xD800)).unwrap_or('\u{FFFD}')
}

/// Pushes a character as JavaScript's UTF-16 units (astral: two stand-ins).
pub(crate) fn push_units(out: &mut String, c: char) {
    let v = c as u32;
    if v > 0xFFFF {
        let v = v - 0x10000;
        out.push(unit_char(0xD800 + (v >> 10)));
        out.push(unit_char(0xDC00 + (v & 0x3FF)));
    } else {
        out.push(c);
    }
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        out.push('\\');
    }
    out.push(c);
}

fn translate(js: &str) -> String {
    let mut out = String::with_capacity(js.len() + 16);
    let mut in_class = false;
    let mut chars = js.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                Some('D') => out.push_str("[^0-9]"),
                Some('w') => out.push_str(if in_class {
                    "0-9A-Za-z_"
                } else {
                    "[0-9A-Za-z_]"
                }),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some('s') if in_class => out.push_str(JS_SPACE),
                Some('s') => {
                    out.push('[');
                    out.push_str(JS_SPACE);
                    out.push(']');
                }
                Some('S') => {
                    out.push_str("[^");
                    out.push_str(JS_SPACE);
                    out.push(']');
                }
                Some('b') if !in_class => out.push_str(r"(?-u:\b)"),
                Some('b') => out.push_str(r"\x08"),
                Some('B') if !in_class => out.push_str(r"(?-u:\B)"),
                Some('0') if !chars.peek().is_some_and(char::is_ascii_digit) => {
                    out.push_str(r"\x00")
                }
                Some('u') => {
                    let hex: String = chars.clone().take(4).collect();
                    match u32::from_str_radix(&hex, 16) {
                        Ok(unit) if hex.len() == 4 => {
                            for _ in 0..4 {
                                chars.next();
                            }
                            if (0xD800..0xE000).contains(&unit) {
                                out.push_str(&format!("\\u{{{:X}}}", unit_char(unit) as u32));
                            } else {
                                out.push_str(&format!("\\u{{{unit:X}}}"));
                            }
                        }
                        // Without the `u` flag, `\u` not followed by four hex digits is `u`.
                        _ => out.push('u'),
                    }
                }
                // Escapes both dialects read the same way.
                Some(e @ ('f' | 'n' | 'r' | 't' | 'v' | 'x')) => {
                    out.push('\\');
                    out.push(e);
                }
                Some(e @ '1'..='9') => {
                    // A back-reference: the Rust engine refuses it, as `check` does.
                    out.push('\\');
                    out.push(e);
                }
                // Any other escaped letter is that letter in JavaScript (`\p` is `p`).
                Some(e) if e.is_ascii_alphabetic() => out.push(e),
                Some(e) => push_escaped(&mut out, e),
                None => out.push('\\'),
            },
            '[' if !in_class => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    // `[]` matches nothing and `[^]` anything in JavaScript;
                    // Rust would read the `]` literally.
                    chars.next();
                    out.push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
                } else {
                    in_class = true;
                    out.push_str(if negated { "[^" } else { "[" });
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' if in_class => out.push_str("\\["),
            '&' | '~' | '-' if in_class && chars.peek() == Some(&c) => {
                // Rust's class set operators (`&&`, `~~`, `--`) are plain characters in JavaScript.
                out.push('\\');
                out.push(c);
            }
            '.' if !in_class => out.push_str("[^\\n\\r\\u{2028}\\u{2029}]"),
            '{' if !in_class => {
                // A brace that does not open `{n}`, `{n,}` or `{n,m}` is a
                // literal brace in JavaScript; Rust would refuse it.
                let rest: String = chars.clone().collect();
                let body = rest.split('}').next().unwrap_or("");
                let quantifier = rest.contains('}')
                    && !body.is_empty()
                    && body.chars().all(|c| c.is_ascii_digit() || c == ',')
                    && body.starts_with(|c: char| c.is_ascii_digit())
                    && body.matches(',').count() <= 1;
                if quantifier {
                    out.push('{');
                    for c in chars.by_ref() {
                        out.push(c);
                        if c == '}' {
                            break;
                        }
                    }
                } else {
                    out.push_str("\\{");
                }
            }
            '}' if !in_class => out.push_str("\\}"),
            c if (c as u32) > 0xFFFF => {
                let mut units = String::new();
                push_units(&mut units, c);
                for u in units.chars() {
                    out.push_str(&format!("\\u{{{:X}}}", u as u32));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `new RegExp(p).source`: `/` escaped, empty as `(?:)`.
fn js_regex_source(p: &str) -> String {
    if p.is_empty() {
        return "(?:)".to_owned();
    }
    let mut out = String::with_capacity(p.len());
    let mut escaped = false;
    let mut in_class = false;
    for c in p.chars() {
        match c {
            '/' if !escaped && !in_class => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
        if !escaped {
            match c {
                '[' => in_class = true,
                ']' => in_class = false,
                _ => {}
            }
        }
        escaped = c == '\\' && !escaped;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_keep_javascript_meaning() {
        let p = compile_pattern(r"^\d{3}-\w+$").unwrap();
        assert!(p.regex.is_match(b"123-ab_c"));
        assert!(
            !p.regex.is_match("١٢٣-ab".as_bytes()),
            "Arabic-Indic digits are not \\d in JavaScript"
        );
        let dot = compile_pattern("^a.b$").unwrap();
        assert!(!dot.regex.is_match(b"a\rb"));
        assert!(dot.regex.is_match(b"a-b"));
        let class = compile_pattern(r"^[\d.]+$").unwrap();
        assert!(class.regex.is_match(b"1.5"));
        assert_eq!(
            compile_pattern("a/b").unwrap().message,
            "Invalid string: must match pattern /a\\/b/"
        );
        assert_eq!(
            compile_pattern("[/]").unwrap().message,
            "Invalid string: must match pattern /[/]/"
        );
    }

    #[test]
    fn patterns_see_utf16_units_like_javascript() {
        let p = compile_pattern("^.{2,3}$").unwrap();
        let mut two_emoji = String::new();
        "😀😀".chars().for_each(|c| push_units(&mut two_emoji, c));
        assert!(!p.regex.is_match(two_emoji.as_bytes()));
        let letters = compile_pattern(r"^\p{L}+$").unwrap();
        assert!(!letters.regex.is_match("abc".as_bytes()));
        assert!(letters.regex.is_match("p{L}".as_bytes()));
        let space = compile_pattern(r"^\s$").unwrap();
        assert!(space.regex.is_match("\u{feff}".as_bytes()));
        assert!(!space.regex.is_match("\u{85}".as_bytes()));
        let class = compile_pattern(r"^[\D]+$").unwrap();
        assert!(class.regex.is_match("١".as_bytes()));
    }

    #[test]
    fn fields_follow_javascript_key_order() {
        let mut keys = vec!["b", "10", "a", "2", "01"];
        keys.sort_by(|a, b| js_key_order(a, b));
        assert_eq!(keys, ["2", "10", "01", "a", "b"]);
        assert_eq!(Inherited::of("toString"), Some(Inherited::Function(0)));
        assert_eq!(Inherited::of("__proto__"), Some(Inherited::Object));
        assert_eq!(Inherited::of("email"), None);
    }

    #[test]
    fn enum_messages() {
        assert_eq!(
            enum_message(&["USD".into()]),
            "Invalid input: expected \"USD\""
        );
        assert_eq!(
            enum_message(&["USD".into(), "EUR".into()]),
            "Invalid option: expected one of \"USD\"|\"EUR\""
        );
    }
}
