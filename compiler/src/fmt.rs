//! The canonical formatter behind `uniflow fmt`.
//!
//! One node per line, four-space indentation, strings always in double quotes,
//! numbers as written, comments kept where they were (own-line comments above
//! their node, end-of-line comments at the end of their line), at most one
//! blank line in a row, LF line endings. The output is parsed again and
//! compared with the input, ignoring layout, and its comments are compared
//! with the input's, so `fmt` can never change what a file means or drop a
//! comment.

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
    // Syntax errors are reported against the text as the user wrote it.
    syntax::parse(source).map_err(FormatError::Syntax)?;
    let normalized = normalize_newlines(source);
    let source = normalized.as_str();
    let doc = syntax::parse(source).map_err(FormatError::Syntax)?;
    let mut p = Printer {
        source,
        lines: Vec::new(),
        at_line_start: true,
        indent: 0,
    };
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
    if comments(source) != comments(&out) {
        return Err(FormatError::Internal(
            "formatting would lose or alter a comment; please report this with the file".to_owned(),
        ));
    }
    Ok(out)
}

/// Every KDL newline (CRLF, CR, NEL, FF, LS, PS) as LF. KDL strings cannot
/// hold a literal newline except multi-line strings, whose newlines the
/// spec normalises to LF anyway, so this never changes a value. Also drops
/// a leading byte-order mark.
fn normalize_newlines(text: &str) -> String {
    // A byte-order mark means nothing in UTF-8; the canonical file has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.replace("\r\n", "\n").replace(
        ['\r', '\u{85}', '\u{b}', '\u{c}', '\u{2028}', '\u{2029}'],
        "\n",
    )
}

struct Printer<'s> {
    /// The text being formatted, for what the KDL tree does not keep.
    source: &'s str,
    lines: Vec<String>,
    /// Whether the last thing printed ended its line in the source
    /// (so the next leading trivia starts on a fresh line).
    at_line_start: bool,
    /// Indentation of the line being printed.
    indent: usize,
}

const INDENT: &str = "    ";

impl Printer<'_> {
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
        if self
            .lines
            .last()
            .is_some_and(|l| !l.is_empty() && !l.ends_with('{'))
        {
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
            .map(|l| indent_chars(l))
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
            let content = strip_chars(line, min_indent).trim_end();
            self.push_line(content);
        }
        if pending_blank {
            self.blank();
        }
    }

    fn node(&mut self, node: &KdlNode, indent: usize) {
        let fmt = node.format();
        if needs_verbatim(node) {
            self.verbatim(node);
            return;
        }
        let mut text = String::new();
        let mut eol_comments: Vec<String> = Vec::new();
        if let Some(ty) = node.ty() {
            let empty = kdl::KdlNodeFormat::default();
            let f = fmt.unwrap_or(&empty);
            text.push('(');
            text.push_str(&pieces(&f.before_ty_name, &mut eol_comments));
            text.push_str(&ident(ty));
            let after = pieces(&f.after_ty_name, &mut eol_comments);
            if !after.is_empty() {
                text.push(' ');
                text.push_str(after.trim_end());
            }
            text.push(')');
            text.push_str(&pieces(&f.after_ty, &mut eol_comments));
        }
        text.push_str(&ident(node.name()));
        for entry in node.entries() {
            if let Some(f) = entry.format() {
                inline(&f.leading, &mut text, &mut eol_comments);
            }
            text.push(' ');
            text.push_str(&entry_text(entry, &mut eol_comments));
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
                eol_comments.extend(self.comment_after_block(node));
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
                let mut close = "}".to_owned();
                if let Some(comment) = self.comment_after_block(node) {
                    close.push(' ');
                    close.push_str(&comment);
                }
                self.push_line(&close);
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

impl Printer<'_> {
    /// A comment on the same line after a block's closing `}`, which the KDL
    /// tree does not keep: read it from the source.
    fn comment_after_block(&self, node: &KdlNode) -> Option<String> {
        let term = node.format().map(|f| f.terminator.as_str()).unwrap_or("");
        if term.contains("//") || term.contains("/*") {
            return None;
        }
        let span = node.span();
        let text = self.source.get(span.offset()..span.offset() + span.len())?;
        let brace = span.offset() + text.rfind('}')?;
        let rest = &self.source[brace + 1..];
        let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let line = line.trim_start().trim_start_matches(';').trim();
        (line.starts_with("//") || line.starts_with("/*")).then(|| line.to_owned())
    }

    /// Prints a node as written, re-indented: for the rare layouts the
    /// canonical printer cannot reproduce (a multi-line slashdashed block in
    /// the middle of a node).
    fn verbatim(&mut self, node: &KdlNode) {
        let span = node.span();
        let start = span.offset();
        let text = self
            .source
            .get(start..start + span.len())
            .unwrap_or("")
            .trim_end();
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let base = self.source[line_start..start].chars().count();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_end();
            if i == 0 {
                self.push_line(line);
                continue;
            }
            let strip = line
                .chars()
                .take(base)
                .take_while(|c| c.is_whitespace())
                .map(char::len_utf8)
                .sum::<usize>();
            let rest = &line[strip..];
            if rest.is_empty() {
                self.lines.push(String::new());
            } else {
                self.push_line(rest);
            }
        }
        let term = node.format().map(|f| f.terminator.as_str()).unwrap_or("\n");
        let comment = term.trim().trim_start_matches(';').trim();
        if !comment.is_empty() {
            self.append(comment);
        }
        if let Some(c) = node.children().and(self.comment_after_block(node)) {
            self.append(&c);
        }
        self.at_line_start = term.contains('\n') || term.is_empty();
    }
}

/// Whether a node has a multi-line slashdashed part inside it.
fn needs_verbatim(node: &KdlNode) -> bool {
    let multi = |t: &str| t.contains("/-") && t.contains('\n');
    node.entries().iter().any(|e| {
        e.format()
            .is_some_and(|f| multi(&f.leading) || multi(&f.trailing))
    }) || node
        .format()
        .is_some_and(|f| multi(&f.before_children) || multi(&f.before_terminator))
}

/// Every comment in a KDL text, whitespace collapsed, sorted: formatting must
/// keep this list unchanged.
fn comments(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let at = |i: usize, pat: &[u8]| b[i..].starts_with(pat);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if at(i, b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |e| i + e);
            out.push(collapse(&text[i..end]));
            i = end;
        } else if at(i, b"/*") {
            let end = block_comment_end(text, i);
            out.push(collapse(&text[i..end]));
            i = end;
        } else if b[i] == b'#' && matches!(b.get(i + 1), Some(b'#' | b'"')) {
            // A raw string: #"..."#, ##"..."##, #"""..."""#.
            let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + hashes) != Some(&b'"') {
                i += hashes;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let from = i + hashes + 1;
            i = b[from..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |e| from + e + close.len());
        } else if b[i] == b'"' {
            let multi = at(i, b"\"\"\"");
            i += if multi { 3 } else { 1 };
            while i < b.len() {
                if b[i] == b'\\' {
                    i += 2;
                } else if multi && at(i, b"\"\"\"") {
                    i += 3;
                    break;
                } else if !multi && b[i] == b'"' {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    out.sort();
    out
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
            let mut end = i.min(trivia.len());
            while !trivia.is_char_boundary(end) {
                end += 1;
            }
            i = end;
            let run = &trivia[start..end];
            text.push(' ');
            if run.contains('\n') {
                text.push_str(&collapse(run));
            } else {
                text.push_str(run);
            }
        }
    }
}

/// How many whitespace characters (not bytes: KDL counts U+00A0 and other
/// Unicode spaces as whitespace) a line starts with.
fn indent_chars(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).count()
}

/// The line without its first `n` characters of indentation.
fn strip_chars(line: &str, n: usize) -> &str {
    let n = n.min(indent_chars(line));
    let bytes: usize = line.chars().take(n).map(char::len_utf8).sum();
    &line[bytes..]
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
        && s.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '$' | '+' | '*' | '!' | '?')
        })
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if bare { s.to_owned() } else { quote(s) }
}

/// The comments in a piece of trivia inside an entry or a type annotation,
/// each followed by a space (`"/* c */ "`); `//` comments go to `eol`.
fn pieces(trivia: &str, eol: &mut Vec<String>) -> String {
    let mut text = String::new();
    inline(trivia, &mut text, eol);
    if text.is_empty() {
        text
    } else {
        format!("{} ", text.trim_start())
    }
}

fn entry_text(entry: &KdlEntry, eol: &mut Vec<String>) -> String {
    let mut out = String::new();
    let empty = kdl::KdlEntryFormat::default();
    let f = entry.format().unwrap_or(&empty);
    if let Some(name) = entry.name() {
        out.push_str(&ident(name));
        let after_key = pieces(&f.after_key, eol);
        if !after_key.is_empty() {
            out.push(' ');
            out.push_str(&after_key);
        }
        out.push('=');
        let after_eq = pieces(&f.after_eq, eol);
        if !after_eq.is_empty() {
            out.push(' ');
            out.push_str(&after_eq);
        }
    }
    if let Some(ty) = entry.ty() {
        out.push('(');
        out.push_str(&pieces(&f.before_ty_name, eol));
        out.push_str(&ident(ty));
        let after = pieces(&f.after_ty_name, eol);
        if !after.is_empty() {
            out.push(' ');
            out.push_str(after.trim_end());
        }
        out.push(')');
        out.push_str(&pieces(&f.after_ty, eol));
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
            c if c.is_control()
                || matches!(
                    c,
                    '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
                ) =>
            {
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
    fn keeps_comments_after_closing_braces() {
        check(
            "a {\n    b 1\n} // after a\nc {\n} /* empty */\n",
            "a {\n    b 1\n} // after a\nc {} /* empty */\n",
        );
    }

    #[test]
    fn multiline_slashdash_blocks_stay_as_written() {
        check(
            "  p \"h\" type=\"object\" /-{\n      property \"x\" // old\n  }\n",
            "p \"h\" type=\"object\" /-{\n    property \"x\" // old\n}\n",
        );
    }

    #[test]
    fn comment_list_ignores_strings() {
        assert_eq!(
            comments("a \"// no\" #\"/* no */\"# // yes\n/* and\n   this */"),
            vec!["/* and this */".to_owned(), "// yes".to_owned()]
        );
    }

    /// Regression: a comment indented with a no-break space made the
    /// trivia printer slice inside a character and panic.
    #[test]
    fn regression_unicode_indentation_in_comments() {
        check("a 1\n // a\n\u{a0}// b\nb 2\n", "a 1\n// a\n// b\nb 2\n");
    }

    #[test]
    fn syntax_errors_are_reported_not_formatted() {
        assert!(matches!(format("n {"), Err(FormatError::Syntax(_))));
    }
}
