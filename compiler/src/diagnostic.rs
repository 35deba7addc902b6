//! Diagnostics: what went wrong, where, and how to fix it, in three renderings
//! (human via miette, versioned JSON, GitHub workflow commands).

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::span::{LineIndex, Span};

/// How bad a diagnostic is. Errors fail `check`; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration is wrong and cannot be built.
    Error,
    /// Probably a mistake, but the configuration can be built.
    Warning,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// A stable diagnostic code. The text form (`unknown-node`) never changes
        /// meaning once released; `compiler/LANGUAGE.md` lists every code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable text form, e.g. `unknown-node`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Code::$variant => $text, )*
                }
            }
        }
    };
}

codes! {
    /// The file is not valid KDL v2.
    KdlSyntax = "kdl-syntax",
    /// A node name the language does not know here.
    UnknownNode = "unknown-node",
    /// A `key=value` property the node does not take.
    UnknownProperty = "unknown-property",
    /// More positional arguments than the node takes.
    UnexpectedArgument = "unexpected-argument",
    /// A positional argument the node needs is missing.
    MissingArgument = "missing-argument",
    /// A `{ ... }` block on a node that takes none.
    UnexpectedChildren = "unexpected-children",
    /// A value of the wrong KDL type (a string where a number belongs, ...).
    WrongType = "wrong-type",
    /// A keyword that is not one of the allowed choices.
    InvalidValue = "invalid-value",
    /// A setting the node requires is absent.
    MissingSetting = "missing-setting",
    /// A setting given twice where only one is allowed.
    DuplicateSetting = "duplicate-setting",
    /// Two declarations of the same kind share a name.
    DuplicateName = "duplicate-name",
    /// The file has no `project` node, or more than one.
    MissingProject = "missing-project",
    /// A name that cannot be used (empty, or not a valid resource name).
    InvalidName = "invalid-name",
    /// A reference to an event that is not declared.
    UnknownEvent = "unknown-event",
    /// A reference to a trait that is not declared.
    UnknownTrait = "unknown-trait",
    /// A reference to a destination that is not declared.
    UnknownDestination = "unknown-destination",
    /// A reference to an identity identifier that is not declared.
    UnknownIdentifier = "unknown-identifier",
    /// A `pattern` that is not a valid regular expression.
    InvalidRegex = "invalid-regex",
    /// A URL that does not parse or uses the wrong scheme.
    InvalidUrl = "invalid-url",
    /// An allowed origin that is not `scheme://host[:port]`.
    InvalidOrigin = "invalid-origin",
    /// A duration that is not like `30s`, `15m`, `24h`, `30d` or `2w`.
    InvalidDuration = "invalid-duration",
    /// A region that is not an AWS region.
    InvalidRegion = "invalid-region",
    /// A field path (`traits.email`, `context.device.id`) that cannot be read.
    InvalidPath = "invalid-path",
    /// An enum with no values, or with one value twice.
    InvalidEnumValues = "invalid-enum-values",
    /// A number outside the range the setting allows.
    OutOfRange = "out-of-range",
    /// Bounds that no value can satisfy (`min` above `max`, ...).
    ContradictoryBounds = "contradictory-bounds",
    /// A setting that does not apply to this type or kind.
    NotApplicable = "not-applicable",
    /// Two identifiers with the same priority.
    DuplicatePriority = "duplicate-priority",
    /// A secret written inline instead of by reference.
    InlineSecret = "inline-secret",
    /// An `array` property without an `item` schema.
    MissingItem = "missing-item",
    /// A condition string that is empty.
    EmptyCondition = "empty-condition",
    /// A `filter` or `where` condition that does not parse.
    InvalidCondition = "invalid-condition",
    /// A destination `template` that Tera cannot compile, or that uses what a
    /// payload template may not (another template, an unknown filter, `get_env`).
    InvalidTemplate = "invalid-template",
    /// A condition reads `properties.X` that no event it applies to declares.
    UnknownEventProperty = "unknown-event-property",
    /// A condition compares a field with a value of another type.
    TypeMismatch = "type-mismatch",
    /// A condition compares an enum property with a value not among its values.
    UnknownEnumValue = "unknown-enum-value",
    /// A `having` aggregate on a segment that reads no events.
    HavingWithoutEvents = "having-without-events",
    /// A segment with neither events nor a condition: it would hold everyone.
    EmptySegment = "empty-segment",
    /// An event that no destination receives and no segment reads.
    UnusedEvent = "unused-event",
    /// A browser source with no allowed origins: browsers cannot send to it.
    NoAllowedOrigins = "no-allowed-origins",
    /// A setting that is valid but has no effect here.
    IgnoredSetting = "ignored-setting",
    /// A strict object with no properties: only `{}` passes.
    EmptyStrictObject = "empty-strict-object",
    /// A destination name whose AWS resource names would clash with another's
    /// or exceed an AWS limit.
    ResourceName = "resource-name",
    /// A webhook or lambda destination sends a value marked `pii` in clear:
    /// neither hashed nor dropped.
    PiiUnhashed = "pii-unhashed",
}

impl Code {
    /// The severity a diagnostic with this code has.
    pub fn severity(self) -> Severity {
        match self {
            Code::UnusedEvent
            | Code::NoAllowedOrigins
            | Code::IgnoredSetting
            | Code::EmptyStrictObject
            | Code::UnknownEnumValue
            | Code::PiiUnhashed => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span with a short note saying what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What, in a few words ("first defined here").
    pub message: String,
}

/// One problem found in a `uniflow.kdl` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning (from the code).
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// The exact entry at fault.
    pub primary: Label,
    /// Other places involved.
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a primary label.
    pub fn new(
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label {
                span,
                message: label.into(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Adds a concrete suggestion.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a help line only when there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by position then code, so output is deterministic.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.primary.span.start, a.primary.span.end, a.code, &a.message).cmp(&(
            b.primary.span.start,
            b.primary.span.end,
            b.code,
            &b.message,
        ))
    });
}

/// Counts `(errors, warnings)`.
pub fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}

/// Options for the human rendering.
#[derive(Debug, Clone, Copy)]
pub struct HumanOptions {
    /// ANSI colours.
    pub color: bool,
    /// Wrap width.
    pub width: usize,
}

impl Default for HumanOptions {
    fn default() -> Self {
        HumanOptions {
            color: false,
            width: 100,
        }
    }
}

/// Renders diagnostics as miette reports, one after another, then a summary line.
pub fn render_human(
    file: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    options: HumanOptions,
) -> String {
    let theme = if options.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(options.width)
        .with_links(false);
    let named = NamedSource::new(file, source.to_owned());
    let mut out = String::new();
    for d in diagnostics {
        let report = Report { d, source: &named };
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail; keep the message if it ever does.
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    let (errors, warnings) = count(diagnostics);
    out.push_str(&summary(file, errors, warnings));
    out.push('\n');
    out
}

/// "2 errors and 1 warning in shop/uniflow.kdl".
pub fn summary(file: &str, errors: usize, warnings: usize) -> String {
    fn plural(n: usize, word: &str) -> String {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    }
    match (errors, warnings) {
        (0, 0) => format!("{file}: no problems found"),
        (0, w) => format!("{file}: {}, no errors", plural(w, "warning")),
        (e, 0) => format!("{file}: {}", plural(e, "error")),
        (e, w) => format!(
            "{file}: {} and {}",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

struct Report<'a> {
    d: &'a Diagnostic,
    source: &'a NamedSource<String>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.d, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.d.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.d
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.d.primary.message.clone()),
            self.d.primary.span,
        );
        let secondary = self
            .d
            .secondary
            .iter()
            .map(|l| LabeledSpan::new_with_span(Some(l.message.clone()), l.span));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }
}

/// The version of the JSON diagnostics format. Bumped on any incompatible change.
pub const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    message: &'a str,
    help: Option<&'a str>,
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    labels: Vec<JsonLabel<'a>>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    message: &'a str,
    primary: bool,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    start_byte: usize,
    end_byte: usize,
}

fn json_label<'a>(index: &LineIndex<'_>, label: &'a Label, primary: bool) -> JsonLabel<'a> {
    let (line, column) = index.line_col(label.span.start);
    let (end_line, end_column) = index.line_col(label.span.end);
    JsonLabel {
        message: &label.message,
        primary,
        line,
        column,
        end_line,
        end_column,
        start_byte: label.span.start,
        end_byte: label.span.end,
    }
}

/// Renders the versioned JSON form: `{"version":1,"diagnostics":[...]}`.
///
/// Lines and columns are 1-based; columns count characters; `end_*` is the
/// position just after the last character of the primary span.
pub fn render_json(file: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let index = LineIndex::new(source);
    let report = JsonReport {
        version: JSON_VERSION,
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let (line, column) = index.line_col(d.primary.span.start);
                let (end_line, end_column) = index.line_col(d.primary.span.end);
                let mut labels = vec![json_label(&index, &d.primary, true)];
                labels.extend(d.secondary.iter().map(|l| json_label(&index, l, false)));
                JsonDiagnostic {
                    code: d.code.as_str(),
                    severity: d.severity,
                    message: &d.message,
                    help: d.help.as_deref(),
                    file,
                    line,
                    column,
                    end_line,
                    end_column,
                    labels,
                }
            })
            .collect(),
    };
    // Serialising plain structs of strings and integers cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

/// Renders GitHub Actions workflow commands, one per line.
pub fn render_github(file: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let index = LineIndex::new(source);
    let mut out = String::new();
    for d in diagnostics {
        let (line, col) = index.line_col(d.primary.span.start);
        let (end_line, end_col) = index.line_col(d.primary.span.end);
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        out.push_str(&format!(
            "::{kind} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
            escape_property(file),
            escape_property(&format!("uniflow {}", d.code)),
            escape_data(&message),
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{s} is not kebab-case"
            );
        }
    }

    #[test]
    fn github_escapes_newlines_and_commas() {
        let d = Diagnostic::new(Code::UnknownNode, Span::new(0, 1), "a, b\nc", "x").help("h");
        let out = render_github("dir,x/f.kdl", "x", &[d]);
        assert_eq!(
            out,
            "::error file=dir%2Cx/f.kdl,line=1,col=1,endLine=1,endColumn=2,title=uniflow unknown-node::a, b%0Ac%0Ahelp: h\n"
        );
    }

    #[test]
    fn summary_pluralises() {
        assert_eq!(summary("f", 1, 2), "f: 1 error and 2 warnings");
        assert_eq!(summary("f", 0, 0), "f: no problems found");
        assert_eq!(summary("f", 0, 1), "f: 1 warning, no errors");
    }
}
