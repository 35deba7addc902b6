//! Parsing: text into the KDL document, the spanned syntax tree every later
//! step reads. Every KDL syntax error becomes a diagnostic.

use kdl::KdlDocument;

use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;

/// Parses KDL v2 text, or returns every syntax error kdl found.
pub fn parse(source: &str) -> Result<KdlDocument, Vec<Diagnostic>> {
    KdlDocument::parse_v2(source).map_err(|err| {
        let mut out: Vec<Diagnostic> = err
            .diagnostics
            .iter()
            .map(|d| {
                let span = clamp(Span::from(d.span), source);
                let text = source.get(span.start..span.end).unwrap_or("");
                let keyword = matches!(text, "true" | "false" | "null");
                let message = if keyword {
                    format!("bare `{text}` is not a value in KDL v2")
                } else {
                    d.message
                        .clone()
                        .unwrap_or_else(|| "invalid KDL syntax".to_owned())
                };
                let label = d.label.clone().unwrap_or_else(|| "here".to_owned());
                let keyword_help = keyword.then(|| match text {
                    "null" => "KDL v2 spells null `#null`, but no uniflow setting takes null: remove the entry, or write \"null\" for the string".to_owned(),
                    _ => format!("write `#{text}`, with a `#`, or \"{text}\" for a string"),
                });
                let help = keyword_help.or_else(|| d.help.clone()).unwrap_or_else(|| {
                    "see https://kdl.dev for KDL v2 syntax: strings in double quotes, booleans as #true/#false, blocks in { }".to_owned()
                });
                Diagnostic::new(Code::KdlSyntax, span, message, label).help(help)
            })
            .collect();
        if out.is_empty() {
            out.push(Diagnostic::new(
                Code::KdlSyntax,
                Span::new(0, 0),
                "the file is not valid KDL",
                "here",
            ));
        }
        out.dedup();
        out
    })
}

/// Keeps a span inside the text and on character boundaries.
fn clamp(span: Span, source: &str) -> Span {
    let fix = |mut i: usize| {
        i = i.min(source.len());
        while !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    Span::new(start, fix(span.end).max(start))
}
