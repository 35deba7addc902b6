//! A destination's `template`: compiled with Tera (the engine the runtime
//! renders it with), checked for what a single self-contained payload
//! template may use, and read for the event fields it names.
//!
//! ## What it does
//! A template that Tera cannot parse is `invalid-template`, pointing at the
//! line and column Tera reports. So is one that names another template
//! (`extends`, `include`, `import`: there is none), uses a filter, test or
//! function Tera does not have, or calls `get_env` (it would send the
//! runtime's environment, secrets included, to the destination). Every
//! variable it reads is collected with its place in the file, for
//! `check::destination` to resolve against the events' schemas.
//!
//! ## Why
//! A template that fails at run time fails every delivery of the
//! destination; the compiler sees the same text first.

use std::collections::BTreeSet;

use tera::ast::{Expr, ExprVal, FunctionCall, Node};

use crate::diagnostic::{Code, Diagnostic};
use crate::model::TemplateDecl;
use crate::span::{Span, Spanned};
use crate::suggest;

/// Tera's built-in filters without its optional features (the runtime
/// builds Tera the same way).
const FILTERS: &[&str] = &[
    "abs",
    "addslashes",
    "as_str",
    "capitalize",
    "concat",
    "default",
    "escape",
    "escape_xml",
    "filter",
    "first",
    "float",
    "get",
    "group_by",
    "indent",
    "int",
    "join",
    "json_encode",
    "last",
    "length",
    "linebreaksbr",
    "lower",
    "map",
    "nth",
    "pluralize",
    "replace",
    "reverse",
    "round",
    "safe",
    "slice",
    "sort",
    "spaceless",
    "split",
    "striptags",
    "title",
    "trim",
    "trim_end",
    "trim_end_matches",
    "trim_start",
    "trim_start_matches",
    "truncate",
    "unique",
    "upper",
    "wordcount",
];

/// Tera's built-in tests.
const TESTS: &[&str] = &[
    "containing",
    "defined",
    "divisibleby",
    "ending_with",
    "even",
    "iterable",
    "matching",
    "number",
    "object",
    "odd",
    "starting_with",
    "string",
    "undefined",
];

/// Tera's functions a payload template may call (`get_env` is refused).
const FUNCTIONS: &[&str] = &["range", "throw"];

/// Names Tera itself puts in scope.
const TERA_NAMES: &[&str] = &["loop", "__tera_context"];

/// Compiles a template, reporting every problem. `lines` maps the text onto
/// the file: `(offset in the text, offset in the file)` where each line
/// starts (empty when the string does not map byte for byte).
pub(super) fn compile(
    text: Spanned<String>,
    lines: &[(usize, usize)],
    diags: &mut Vec<Diagnostic>,
) -> Option<TemplateDecl> {
    let whole = text.span;
    let at =
        |range: std::ops::Range<usize>| match lines.iter().rev().find(|(v, _)| *v <= range.start) {
            Some((v, f)) => Span::new(f + range.start - v, f + range.end - v),
            None => whole,
        };
    let template = match tera::Template::new("template", None, &text.value) {
        Ok(t) => t,
        Err(e) => {
            let (range, why) = syntax_error(&text.value, &e.to_string());
            diags.push(
                Diagnostic::new(
                    Code::InvalidTemplate,
                    range.map_or(whole, at),
                    format!("the template does not compile: {why}"),
                    "here",
                )
                .help("templates are Tera (Jinja2-like): `{{ properties.revenue }}`, `{% if traits.email %}...{% endif %}`; see \"Transforms and templates\" in the language reference"),
            );
            return None;
        }
    };
    let mut walker = Walker {
        text: &text.value,
        at: &at,
        diags,
        reads: Vec::new(),
        seen: BTreeSet::new(),
        locals: TERA_NAMES.iter().map(|n| (*n).to_owned()).collect(),
        whole,
    };
    walker.nodes(&template.ast);
    // Reported problems make the file fail; the reads are still checked.
    let reads = walker.reads;
    Some(TemplateDecl { text, reads })
}

/// The byte range and the reason of a Tera parse error, from Tera's message
/// (` --> LINE:COLUMN` and `= expected ...`).
fn syntax_error(text: &str, message: &str) -> (Option<std::ops::Range<usize>>, String) {
    let position = message.lines().find_map(|l| {
        let (line, column) = l.trim().strip_prefix("--> ")?.split_once(':')?;
        Some((
            line.trim().parse::<usize>().ok()?,
            column.trim().parse::<usize>().ok()?,
        ))
    });
    let why = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or_else(|| message.lines().next().unwrap_or(message))
        .trim()
        .to_owned();
    let range = position.and_then(|(line, column)| {
        let start: usize = text
            .split_inclusive('\n')
            .take(line.checked_sub(1)?)
            .map(str::len)
            .sum();
        let line_text = text[start..].split('\n').next().unwrap_or("");
        let offset = line_text
            .char_indices()
            .nth(column.checked_sub(1)?)
            .map_or(line_text.len(), |(i, _)| i);
        let start = start + offset;
        let end = text[start..]
            .chars()
            .next()
            .map_or(start, |c| start + c.len_utf8());
        Some(start..end)
    });
    (range, why)
}

struct Walker<'a, 'd> {
    text: &'a str,
    at: &'a dyn Fn(std::ops::Range<usize>) -> Span,
    diags: &'d mut Vec<Diagnostic>,
    reads: Vec<Spanned<String>>,
    seen: BTreeSet<String>,
    /// Names bound by `for`, `set` and macro arguments: not event fields.
    locals: BTreeSet<String>,
    /// The whole string.
    whole: Span,
}

impl Walker<'_, '_> {
    /// Where `needle` first appears inside a tag (`{{ }}` or `{% %}`), else
    /// anywhere, else the whole string.
    fn find(&self, needle: &str) -> Span {
        let mut from = 0;
        while let Some(i) = self.text[from..].find(needle).map(|i| i + from) {
            let before = &self.text[..i];
            let open = before.rfind("{{").max(before.rfind("{%"));
            let close = before.rfind("}}").max(before.rfind("%}"));
            let boundary = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.');
            if boundary && open.is_some() && open > close {
                return (self.at)(i..i + needle.len());
            }
            from = i + needle.len();
        }
        match self.text.find(needle) {
            Some(i) => (self.at)(i..i + needle.len()),
            None => self.whole,
        }
    }

    fn error(&mut self, needle: &str, message: String, label: &str, help: String) {
        let span = self.find(needle);
        self.diags
            .push(Diagnostic::new(Code::InvalidTemplate, span, message, label).help(help));
    }

    fn nodes(&mut self, nodes: &[Node]) {
        for node in nodes {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::VariableBlock(_, e) => self.expr(e),
            Node::Set(_, set) => {
                self.expr(&set.value);
                self.locals.insert(set.key.clone());
            }
            Node::FilterSection(_, section, _) => {
                self.filter(&section.filter);
                self.nodes(&section.body);
            }
            Node::Block(_, block, _) => self.nodes(&block.body),
            Node::Forloop(_, f, _) => {
                self.expr(&f.container);
                self.locals.insert(f.value.clone());
                self.locals.extend(f.key.clone());
                self.nodes(&f.body);
                self.nodes(f.empty_body.as_deref().unwrap_or_default());
            }
            Node::If(i, _) => {
                for (_, cond, body) in &i.conditions {
                    self.expr(cond);
                    self.nodes(body);
                }
                if let Some((_, body)) = &i.otherwise {
                    self.nodes(body);
                }
            }
            Node::MacroDefinition(_, m, _) => {
                self.locals.extend(m.args.keys().cloned());
                for default in m.args.values().flatten() {
                    self.expr(default);
                }
                self.nodes(&m.body);
            }
            Node::Extends(_, name) => self.elsewhere("extends", name),
            Node::Include(_, names, _) => {
                self.elsewhere("include", names.first().map_or("", String::as_str));
            }
            Node::ImportMacro(_, name, _) => self.elsewhere("import", name),
            Node::Super
            | Node::Text(_)
            | Node::Raw(..)
            | Node::Break(_)
            | Node::Continue(_)
            | Node::Comment(..) => {}
        }
    }

    fn elsewhere(&mut self, tag: &str, name: &str) {
        self.error(
            tag,
            format!("the template uses `{tag}` \"{name}\", but a destination's template is self-contained"),
            "another template",
            "write everything the payload needs in this one template; a macro defined here can be called as `self::name()`".to_owned(),
        );
    }

    fn expr(&mut self, e: &Expr) {
        self.value(&e.val);
        for f in &e.filters {
            self.filter(f);
        }
    }

    fn filter(&mut self, f: &FunctionCall) {
        if !FILTERS.contains(&f.name.as_str()) {
            self.error(
                &f.name,
                format!(
                    "the template uses filter `{}`, which Tera does not have",
                    f.name
                ),
                "unknown filter",
                suggest::help_for(&f.name, FILTERS, "a filter").unwrap_or_default(),
            );
        }
        self.args(f.args.values());
    }

    fn args<'e>(&mut self, args: impl Iterator<Item = &'e Expr>) {
        let mut args: Vec<&Expr> = args.collect();
        // Tera keeps arguments in a hash map: visit them in a fixed order.
        args.sort_by_key(|e| format!("{:?}", e.val));
        for a in args {
            self.expr(a);
        }
    }

    fn value(&mut self, v: &ExprVal) {
        match v {
            ExprVal::Ident(ident) => self.ident(ident),
            ExprVal::Math(m) => {
                self.expr(&m.lhs);
                self.expr(&m.rhs);
            }
            ExprVal::Logic(l) => {
                self.expr(&l.lhs);
                self.expr(&l.rhs);
            }
            ExprVal::In(i) => {
                self.expr(&i.lhs);
                self.expr(&i.rhs);
            }
            ExprVal::Test(t) => {
                self.ident(&t.ident);
                if !TESTS.contains(&t.name.as_str()) {
                    self.error(
                        &t.name,
                        format!(
                            "the template uses test `{}`, which Tera does not have",
                            t.name
                        ),
                        "unknown test",
                        suggest::help_for(&t.name, TESTS, "a test").unwrap_or_default(),
                    );
                }
                for a in &t.args {
                    self.expr(a);
                }
            }
            ExprVal::MacroCall(m) => self.args(m.args.values()),
            ExprVal::FunctionCall(f) => {
                if f.name == "get_env" {
                    self.error(
                        &f.name,
                        "the template calls `get_env`, which would send the runtime's environment (secrets included) to the destination".to_owned(),
                        "reads the environment",
                        "put constant values in the template itself".to_owned(),
                    );
                } else if !FUNCTIONS.contains(&f.name.as_str()) {
                    self.error(
                        &f.name,
                        format!(
                            "the template calls `{}`, which is not a Tera function it may use",
                            f.name
                        ),
                        "unknown function",
                        suggest::help_for(&f.name, FUNCTIONS, "a function").unwrap_or_default(),
                    );
                }
                self.args(f.args.values());
            }
            ExprVal::Array(items) => {
                for i in items {
                    self.expr(i);
                }
            }
            ExprVal::StringConcat(c) => {
                for v in &c.values {
                    self.value(v);
                }
            }
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
        }
    }

    /// Records an event field the template reads: the dotted part of the
    /// identifier, before any `[...]` index.
    fn ident(&mut self, ident: &str) {
        let dotted = ident.split('[').next().unwrap_or(ident);
        let root = dotted.split('.').next().unwrap_or(dotted);
        if self.locals.contains(root) || dotted.is_empty() {
            return;
        }
        // `properties.products.0.sku`: numeric segments index arrays.
        let path: Vec<&str> = dotted
            .split('.')
            .take_while(|s| !s.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let path = path.join(".");
        if self.seen.insert(path.clone()) {
            let span = self.find(dotted);
            self.reads.push(Spanned::new(path, span));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_str(text: &str) -> (Option<TemplateDecl>, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let t = compile(
            Spanned::new(text.to_owned(), Span::new(99, 101 + text.len())),
            &[(0, 100)],
            &mut diags,
        );
        (t, diags)
    }

    #[test]
    fn collects_the_fields_read() {
        let (t, diags) = compile_str(
            r#"{"v": {{ properties.revenue | json_encode() }}, "e": {{ traits.email | default(value="") | json_encode() }},
{% for p in properties.products %}{{ p.sku }}{{ loop.index }}{% endfor %}
{% set x = userId %}{{ x }}{% if context.ip is defined %}{{ properties.products[0].sku }}{% endif %}}"#,
        );
        assert!(diags.is_empty(), "{diags:#?}");
        let t = t.unwrap();
        let reads: Vec<&str> = t.reads.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(
            reads,
            [
                "properties.revenue",
                "traits.email",
                "properties.products",
                "userId",
                "context.ip"
            ]
        );
        // Spans point into the file at the first use inside a tag.
        assert_eq!(t.reads[0].span, Span::new(109, 127));
    }
}
