//! The canonical formatter behind `uniflow fmt`.
//!
//! One node per line, four-space indentation, strings always in double quotes,
//! numbers as written, comments kept where they were (own-line comments above
//! their node, end-of-line comments at the end of their line), at most one
//! blank line in a row. The output is parsed again and compared with the
//! input, ignoring layout, so `fmt` can never change what a file means.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};

use crate::diagnostic::Diagnostic;
use crate::syntax;

/// Why a file could not be formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file is not valid KDL; nothing was changed.
    #[error("the file has {} syntax error(s)", .0.len())]
    Syntax(Vec<Diagnostic>),
    /// The formatter would have changed the file's meaning (a bug in uniflow).
    #[error("internal formatter error: {0}")]
    Internal(String),
}

/// Formats `source` canonically.
pub fn format(source: &str) -> Result<String, FormatError> {
    let doc = syntax::parse(source).map_err(FormatError::Syntax)?;
    let mut p = Printer::default();
    p.document(&doc, 0, true);
    let out = p.finish();
    let reparsed = KdlDocument::parse_v2(&out).map_err(|e| {
        FormatError::Internal(format!(
            "the formatted text does not parse ({}); please report this with the file",
            e.diagnostics
                .first()
                .and_then(|d| d.message.clone())
                .unwrap_or_default()
        ))
    })?;
    if structure(&doc) != structure(&reparsed) {
        return Err(FormatError::Internal(
            "formatting would change the document's meaning; please report this with the file"
                .to_owned(),
        ));
    }
    Ok(out)
}

#[derive(Default)]
struct Printer {
    lines: Vec<String>,
    /// Whether the last thing printed ended its line in the source
    /// (so the next leading trivia starts on a fresh line).
    at_line_start: bool,
    /// Indentation of the line being printed.
    indent: usize,
}

const INDENT: &str = "    ";

impl Printer {
    fn finish(mut self) -> String {
        while self.lines.last().is_some_and(|l| l.is_empty()) {
            self.lines.pop();
        }
        let mut out = self.lines.join("\n");
        out.push('\n');
        out
    }

    fn push_line(&mut self, text: &str) {
        let line = if text.is_empty() {
            String::new()
        } else {
            format!("{}{text}", INDENT.repeat(self.indent))
        };
        self.lines.push(line);
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.is_empty() && !l.ends_with('{')) {
            self.lines.push(String::new());
        }
    }

    fn append(&mut self, text: &str) {
        match self.lines.last_mut() {
            Some(line) => {
                line.push(' ');
                line.push_str(text);
            }
            None => self.push_line(text),
        }
    }

    fn document(&mut self, doc: &KdlDocument, indent: usize, top: bool) {
        self.indent = indent;
        self.at_line_start = top;
        let leading = doc.format().map(|f| f.leading.as_str()).unwrap_or("");
        self.trivia(leading);
        for node in doc.nodes() {
            let leading = node.format().map(|f| f.leading.as_str()).unwrap_or("");
            self.trivia(leading);
            self.indent = indent;
            self.node(node, indent);
            let trailing = node.format().map(|f| f.trailing.as_str()).unwrap_or("");
            self.trivia(trailing);
        }
        let trailing = doc.format().map(|f| f.trailing.as_str()).unwrap_or("");
        self.trivia(trailing);
        while !top && self.lines.last().is_some_and(|l| l.is_empty()) {
            self.lines.pop();
        }
    }

    /// Whitespace and comments between nodes.
    fn trivia(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let (same_line, rest) = if self.at_line_start {
            ("", text)
        } else {
            match text.split_once('\n') {
                Some((first, rest)) => (first, rest),
                None => (text, ""),
            }
        };
        let same = same_line.trim();
        if !same.is_empty() {
            self.append(same);
        }
        if text.contains('\n') {
            self.at_line_start = true;
        }
        let lines: Vec<&str> = rest.split('\n').collect();
        let min_indent = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let mut pending_blank = false;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                // The last piece is the indentation before the next token, not a line.
                if i + 1 < lines.len() && i > 0 {
                    pending_blank = true;
                } else if i == 0 && lines.len() > 1 && !same_line.trim().is_empty() {
                    pending_blank = false;
                } else if i == 0 && lines.len() > 1 && self.at_line_start && !rest.is_empty() {
                    pending_blank = !self.lines.is_empty();
                }
                continue;
            }
            if pending_blank {
                self.blank();
                pending_blank = false;
            }
            let content = line[min_indent.min(line.len() - line.trim_start().len())..].trim_end();
            self.push_line(content);
        }
        if pending_blank {
            self.blank();
        }
    }

    fn node(&mut self, node: &KdlNode, indent: usize) {
        let fmt = node.format();
        let mut text = String::new();
        let mut eol_comments: Vec<String> = Vec::new();
        if let Some(ty) = node.ty() {
            text.push('(');
            text.push_str(&ident(ty));
            text.push(')');
        }
        text.push_str(&ident(node.name()));
        for entry in node.entries() {
            if let Some(f) = entry.format() {
                inline(&f.leading, &mut text, &mut eol_comments);
            }
            text.push(' ');
            text.push_str(&entry_text(entry));
            if let Some(f) = entry.format() {
                inline(&f.trailing, &mut text, &mut eol_comments);
            }
        }
        if let Some(f) = fmt {
            inline(&f.before_children, &mut text, &mut eol_comments);
        }
        match node.children() {
            Some(children) if is_empty_block(children) => {
                text.push_str(" {}");
                self.end_node(text, fmt, &mut eol_comments);
            }
            Some(children) => {
                text.push_str(" {");
                for c in &eol_comments {
                    text.push(' ');
                    text.push_str(c);
                }
                eol_comments.clear();
                self.push_line(&text);
                self.document(children, indent + 1, false);
                self.indent = indent;
                self.push_line("}");
                self.end_node(String::new(), fmt, &mut eol_comments);
            }
            None => self.end_node(text, fmt, &mut eol_comments),
        }
    }

    fn end_node(
        &mut self,
        mut text: String,
        fmt: Option<&kdl::KdlNodeFormat>,
        eol: &mut Vec<String>,
    ) {
        if let Some(f) = fmt {
            inline(&f.before_terminator, &mut text, eol);
            let term = f.terminator.trim();
            let comment = term.trim_start_matches(';').trim();
            if !comment.is_empty() {
                eol.push(comment.to_owned());
            }
            self.at_line_start = f.terminator.contains('\n') || f.terminator.is_empty();
        } else {
            self.at_line_start = true;
        }
        if text.is_empty() {
            for c in eol.drain(..) {
                self.append(&c);
            }
            return;
        }
        for c in eol.drain(..) {
            text.push(' ');
            text.push_str(&c);
        }
        self.push_line(&text);
    }
}

fn is_empty_block(doc: &KdlDocument) -> bool {
    doc.nodes().is_empty()
        && doc
            .format()
            .is_none_or(|f| f.leading.trim().is_empty() && f.trailing.trim().is_empty())
}

/// Copies the comments in inline trivia: block comments and slashdashed
/// entries stay in the line, `//` comments move to the end of the line.
fn inline(trivia: &str, text: &mut String, eol: &mut Vec<String>) {
    let bytes = trivia.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || c == b'\\' {
            i += 1;
        } else if trivia[i..].starts_with("//") {
            let end = trivia[i..].find('\n').map_or(trivia.len(), |e| i + e);
            eol.push(trivia[i..end].trim_end().to_owned());
            i = end;
        } else if trivia[i..].starts_with("/*") {
            let end = block_comment_end(trivia, i);
            text.push(' ');
            text.push_str(&collapse(&trivia[i..end]));
            i = end;
        } else {
            // A slashdashed entry or block: copy it, keeping quoted strings whole.
            let start = i;
            let mut depth = 0usize;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i += 1;
                        while i < bytes.len() && bytes[i] != b'"' {
                            i += if bytes[i] == b'\\' { 2 } else { 1 };
                        }
                        i += 1;
                    }
                    b'{' => {
                        depth += 1;
                        i += 1;
                    }
                    b'}' => {
                        depth = depth.saturating_sub(1);
                        i += 1;
                    }
                    b if b.is_ascii_whitespace() && depth == 0 => break,
                    _ => i += 1,
                }
            }
            let end = i.min(trivia.len());
            text.push(' ');
            text.push_str(&collapse(trivia.get(start..end).unwrap_or("")));
        }
    }
}

fn block_comment_end(s: &str, start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < s.len() {
        if s[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if s[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    s.len()
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ident(id: &KdlIdentifier) -> String {
    match id.repr() {
        Some(repr) if !repr.is_empty() => repr.to_owned(),
        _ => quote_if_needed(id.value()),
    }
}

fn quote_if_needed(s: &str) -> String {
    let bare = !s.is_empty()
        && s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '$' | '+' | '*' | '!' | '?'))
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if bare { s.to_owned() } else { quote(s) }
}

fn entry_text(entry: &KdlEntry) -> String {
    let mut out = String::new();
    if let Some(name) = entry.name() {
        out.push_str(&ident(name));
        out.push('=');
    }
    if let Some(ty) = entry.ty() {
        out.push('(');
        out.push_str(&ident(ty));
        out.push(')');
    }
    let repr = entry.format().map(|f| f.value_repr.as_str()).unwrap_or("");
    match entry.value() {
        KdlValue::String(s) => {
            if repr.starts_with('#') || repr.starts_with("\"\"\"") {
                out.push_str(repr);
            } else {
                out.push_str(&quote(s));
            }
        }
        KdlValue::Bool(b) => out.push_str(if *b { "#true" } else { "#false" }),
        KdlValue::Null => out.push_str("#null"),
        other => {
            if repr.is_empty() {
                out.push_str(&other.to_string());
            } else {
                out.push_str(repr);
            }
        }
    }
    out
}

/// A KDL v2 quoted string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The document's meaning without layout: names, types, entries, children.
fn structure(doc: &KdlDocument) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(doc: &KdlDocument, depth: usize, out: &mut Vec<String>) {
        for node in doc.nodes() {
            let mut line = format!(
                "{depth} ({:?}){:?}",
                node.ty().map(|t| t.value()),
                node.name().value()
            );
            for e in node.entries() {
                line.push_str(&format!(
                    " {:?}=({:?}){:?}",
                    e.name().map(|n| n.value()),
                    e.ty().map(|t| t.value()),
                    e.value()
                ));
            }
            line.push_str(if node.children().is_some() { " {" } else { "" });
            out.push(line);
            if let Some(c) = node.children() {
                walk(c, depth + 1, out);
            }
        }
    }
    walk(doc, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let once = format(input).unwrap();
        assert_eq!(once, expected, "first pass");
        let twice = format(&once).unwrap();
        assert_eq!(twice, once, "not idempotent");
    }

    #[test]
    fn canonical_layout() {
        check(
            "project   x {region eu-west-1; stage \"prod\"}\n",
            "project \"x\" {\n    region \"eu-west-1\"\n    stage \"prod\"\n}\n",
        );
    }

    #[test]
    fn keeps_comments() {
        check(
            "// head\n\n\n\nproject \"x\" { // after brace\n  region \"eu\" // eol\n  /- stage \"old\"\n  // before close\n}\n/* tail */\n",
            "// head\n\nproject \"x\" { // after brace\n    region \"eu\" // eol\n    /- stage \"old\"\n    // before close\n}\n/* tail */\n",
        );
    }

    #[test]
    fn keeps_numbers_and_raw_strings() {
        check(
            "t a=50_000_000 b=1.5e3 p=#\"^\\d+$\"# c=#true d=#null\n",
            "t a=50_000_000 b=1.5e3 p=#\"^\\d+$\"# c=#true d=#null\n",
        );
    }

    #[test]
    fn inline_comments_and_slashdash_entries() {
        check(
            "n 1 /* two */ 3 /-x=\"a  b\" {\n}\n",
            "n 1 /* two */ 3 /-x=\"a  b\" {}\n",
        );
    }

    #[test]
    fn escapes_strings() {
        check("n \"a\\tb\\\"c\"\n", "n \"a\\tb\\\"c\"\n");
    }

    #[test]
    fn syntax_errors_are_reported_not_formatted() {
        assert!(matches!(format("n {"), Err(FormatError::Syntax(_))));
    }
}
