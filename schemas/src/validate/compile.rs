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
        /// Sorted by key bytes: the order Zod reports issues in, because the
        /// generated Zod schemas list keys in this order too.
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
                    })
                    .collect();
                fields.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
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

fn translate(js: &str) -> String {
    let mut out = String::with_capacity(js.len() + 16);
    let mut in_class = false;
    let mut chars = js.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                Some('D') if !in_class => out.push_str("[^0-9]"),
                Some('w') => out.push_str(if in_class {
                    "0-9A-Za-z_"
                } else {
                    "[0-9A-Za-z_]"
                }),
                Some('W') if !in_class => out.push_str("[^0-9A-Za-z_]"),
                Some('b') if !in_class => out.push_str(r"(?-u:\b)"),
                Some('B') if !in_class => out.push_str(r"(?-u:\B)"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `]` or `^]` is literal in both dialects.
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '.' if !in_class => out.push_str("[^\\n\\r\\u{2028}\\u{2029}]"),
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
