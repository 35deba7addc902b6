//! Renders a plan as text for people, markdown for a pull request, or JSON.
//!
//! All three read the same [`Plan`] and nothing else, so they cannot
//! disagree. Risks come first in the text and markdown forms: a reviewer
//! reads what is destroyed, replaced, widened, broken or newly exposed
//! before the details.
//!
//! The human form shows a file's unified diff when it has at most
//! [`HUMAN_DIFF_LINES`] lines, and lists larger ones with their counts
//! (the JSON plan has every diff in full). The markdown form stays under
//! [`MARKDOWN_LIMIT`] characters (GitHub refuses comments over 65,536),
//! cutting file diffs first, then change set rows, then config changes,
//! and says what it cut.

use std::fmt::Write as _;

use uniflow_compiler::cost::{Estimate, Line};
use uniflow_compiler::diff::{Action, BreakingChange, Change, Direction, Subject};

use super::model::{
    ChangeSet, ChangeSetSource, FileDiff, FileStatus, Plan, ResourceAction, ResourceChange,
    RiskKind, Summary,
};

/// The most diff lines the human form shows for one file.
pub const HUMAN_DIFF_LINES: usize = 200;

/// The most characters [`markdown`] returns.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// The cost section's title.
const COST_TITLE: &str = "Estimated monthly cost (AWS list prices, us-east-1)";

/// The plan as text for a terminal, with ANSI colours when `color`.
pub fn human(plan: &Plan, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    header_human(plan, &paint, &mut out);
    let _ = writeln!(out);
    if !plan.summary.has_changes() {
        let _ = writeln!(out, "{}", paint.bold(NO_CHANGES));
        return out;
    }
    let _ = writeln!(out, "{}", paint.bold(&summary_line(&plan.summary)));

    if !plan.risks.is_empty() {
        section(&mut out, &paint, "Risks");
        for risk in &plan.risks {
            let label = format!("! {:<10}", risk_label(risk.kind));
            let label = match risk.kind {
                RiskKind::Destroyed | RiskKind::Replaced | RiskKind::Breaking => paint.red(&label),
                RiskKind::IamWidened | RiskKind::Pii => paint.yellow(&label),
            };
            let _ = writeln!(out, "  {label} {}", risk.message);
        }
    }

    if !plan.config.changes.is_empty() {
        section(&mut out, &paint, "Config changes");
        for change in &plan.config.changes {
            let symbol = format!("{:<3}", change_symbol(change.action));
            let symbol = match change.action {
                Action::Add => paint.green(&symbol),
                Action::Remove => paint.red(&symbol),
                Action::Change => paint.yellow(&symbol),
            };
            let _ = writeln!(out, "  {symbol} {}", change_title(change));
            for detail in &change.details {
                let _ = writeln!(out, "        {detail}");
            }
        }
    }

    if !plan.config.breaking.is_empty() {
        section(&mut out, &paint, "Breaking changes");
        for (direction, title) in DIRECTIONS {
            let group: Vec<&BreakingChange> = plan
                .config
                .breaking
                .iter()
                .filter(|b| b.direction == direction)
                .collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {}", paint.bold(title));
            for b in group {
                let _ = writeln!(
                    out,
                    "    {} {}: {}",
                    paint.red("!"),
                    breaking_subject(b),
                    b.detail
                );
                for item in &b.breaks {
                    let _ = writeln!(out, "        breaks {item}");
                }
            }
        }
    }

    if !plan.config.versions.is_empty() {
        section(&mut out, &paint, "Versions");
        for note in &plan.config.versions {
            let _ = writeln!(out, "  `{}`: {}", note.event, note.message);
        }
    }

    if !plan.config.pii_flows.is_empty() {
        section(&mut out, &paint, "Personal data newly sent");
        for flow in &plan.config.pii_flows {
            let _ = writeln!(
                out,
                "  `{}`.{} -> destination `{}` ({})",
                flow.event, flow.property, flow.destination, flow.form
            );
        }
    }

    if !plan.files.is_empty() {
        section(&mut out, &paint, "Generated files (build/)");
        let width = plan.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
        for file in &plan.files {
            let _ = writeln!(
                out,
                "  {} {:<width$}  {} {}",
                file_symbol(file.status),
                file.path,
                paint.green(&format!("+{}", file.added)),
                paint.red(&format!("-{}", file.removed)),
            );
        }
        for file in &plan.files {
            let lines = file.diff.lines().count();
            let _ = writeln!(out);
            if lines > HUMAN_DIFF_LINES {
                let _ = writeln!(
                    out,
                    "  {}: diff of {lines} lines not shown (over {HUMAN_DIFF_LINES}); `uniflow plan --format json` has it",
                    file.path
                );
                continue;
            }
            for line in file.diff.lines() {
                let _ = writeln!(out, "{}", paint.diff_line(line));
            }
        }
    }

    change_set_human(&plan.change_set, &paint, &mut out);

    if let Some(cost) = &plan.cost {
        section(&mut out, &paint, COST_TITLE);
        cost_human(cost, plan.cost_before.as_ref(), &mut out);
    }
    out
}

/// The plan as a pull-request comment, at most [`MARKDOWN_LIMIT`]
/// characters.
pub fn markdown(plan: &Plan) -> String {
    let full = Cuts::default();
    let text = markdown_with(plan, &full);
    if text.chars().count() <= MARKDOWN_LIMIT {
        return text;
    }
    // File diffs first: keep those that fit, in path order.
    let without_diffs = Cuts {
        diff_budget: Some(0),
        ..Cuts::default()
    };
    let base = markdown_with(plan, &without_diffs).chars().count();
    if base <= MARKDOWN_LIMIT {
        let budget = MARKDOWN_LIMIT.saturating_sub(base);
        let cuts = Cuts {
            diff_budget: Some(budget),
            ..Cuts::default()
        };
        let text = markdown_with(plan, &cuts);
        if text.chars().count() <= MARKDOWN_LIMIT {
            return text;
        }
        return markdown_with(plan, &without_diffs);
    }
    // Then change set rows, then config changes, then everything listed.
    let rows = plan.change_set.changes.len();
    let fits = |cuts: &Cuts| markdown_with(plan, cuts).chars().count() <= MARKDOWN_LIMIT;
    let mut cuts = Cuts {
        diff_budget: Some(0),
        rows: Some(0),
        ..Cuts::default()
    };
    if fits(&cuts) {
        cuts.rows = Some(most_that_fit(rows, |n| {
            fits(&Cuts {
                rows: Some(n),
                ..cuts
            })
        }));
        return markdown_with(plan, &cuts);
    }
    cuts.items = Some(0);
    if fits(&cuts) {
        let items = plan.config.changes.len();
        cuts.items = Some(most_that_fit(items, |n| {
            fits(&Cuts {
                items: Some(n),
                ..cuts
            })
        }));
        return markdown_with(plan, &cuts);
    }
    cuts.lists = Some(0);
    let longest = plan
        .risks
        .len()
        .max(plan.config.breaking.len())
        .max(plan.config.versions.len())
        .max(plan.config.pii_flows.len());
    cuts.lists = Some(most_that_fit(longest, |n| {
        fits(&Cuts {
            lists: Some(n),
            ..cuts
        })
    }));
    let text = markdown_with(plan, &cuts);
    if text.chars().count() <= MARKDOWN_LIMIT {
        return text;
    }
    // Only a header of absurd size gets here: say so, in full sentences.
    let mut out = String::new();
    let _ = writeln!(out, "## uniflow plan\n");
    let _ = writeln!(out, "{}\n", summary_line(&plan.summary));
    let _ = writeln!(out, "> {}", cut_note("everything but the summary"));
    out
}

/// The plan as pretty JSON, with a trailing newline.
pub fn json(plan: &Plan) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(plan)?;
    text.push('\n');
    Ok(text)
}

/// What the summary says when nothing changes.
pub const NO_CHANGES: &str = "No changes. The stack matches uniflow.kdl.";

/// "Config: 2 to add, 3 to change, 1 to remove (1 breaking). Generated
/// files: 4 change. Resources: 3 to add, 5 to modify, 0 to replace, 0 to
/// remove."
pub fn summary_line(s: &Summary) -> String {
    if !s.has_changes() {
        return NO_CHANGES.to_owned();
    }
    let breaking = match s.breaking {
        0 => String::new(),
        1 => " (1 breaking)".to_owned(),
        n => format!(" ({n} breaking)"),
    };
    format!(
        "Config: {} to add, {} to change, {} to remove{breaking}. Generated files: {} change. Resources: {} to add, {} to modify, {} to replace, {} to remove.",
        s.config_added,
        s.config_changed,
        s.config_removed,
        s.files_changed,
        s.resources_added,
        s.resources_modified,
        s.resources_replaced,
        s.resources_removed,
    )
}

const DIRECTIONS: [(Direction, &str); 2] = [
    (
        Direction::Senders,
        "Senders: apps already shipped send events that are now refused",
    ),
    (
        Direction::Consumers,
        "Consumers: what reads stored events (archive tables, destinations, segments)",
    ),
];

/// ANSI colours, or none.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn red(&self, text: &str) -> String {
        self.wrap("31", text)
    }
    fn green(&self, text: &str) -> String {
        self.wrap("32", text)
    }
    fn yellow(&self, text: &str) -> String {
        self.wrap("33", text)
    }
    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }
    fn diff_line(&self, line: &str) -> String {
        if line.starts_with("+++") || line.starts_with("---") {
            self.bold(line)
        } else if line.starts_with('+') {
            self.green(line)
        } else if line.starts_with('-') {
            self.red(line)
        } else if line.starts_with("@@") {
            self.wrap("36", line)
        } else {
            line.to_owned()
        }
    }
}

fn section(out: &mut String, paint: &Paint, title: &str) {
    let _ = writeln!(out, "\n{}", paint.bold(title));
}

fn header_human(plan: &Plan, paint: &Paint, out: &mut String) {
    let h = &plan.header;
    let _ = writeln!(out, "{}", paint.bold(&format!("uniflow plan: {}", h.stack)));
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(account) = &h.account {
        rows.push(("account", account.clone()));
    }
    rows.push(("region", h.region.clone()));
    rows.push(("against", h.against.clone()));
    rows.push(("config digest", h.config_digest.clone()));
    rows.push((
        "deployed digest",
        h.deployed_digest
            .clone()
            .unwrap_or_else(|| "none (nothing deployed)".to_owned()),
    ));
    if let Some(lock) = &h.lock {
        rows.push((
            "lock",
            format!(
                "held by {} for {} since {} (id {})",
                lock.who, lock.operation, lock.created, lock.id
            ),
        ));
    }
    for (key, value) in rows {
        let _ = writeln!(out, "  {:<16} {value}", format!("{key}:"));
    }
}

fn change_set_human(cs: &ChangeSet, paint: &Paint, out: &mut String) {
    if cs.changes.is_empty() && cs.notes.is_empty() {
        return;
    }
    section(out, paint, &change_set_title(cs));
    let id_width = cs
        .changes
        .iter()
        .map(|c| c.logical_id.len())
        .max()
        .unwrap_or(0);
    let type_width = cs
        .changes
        .iter()
        .map(|c| c.resource_type.len())
        .max()
        .unwrap_or(0);
    for c in &cs.changes {
        let symbol = format!("{:<4}", resource_symbol(c.action));
        let symbol = match c.action {
            ResourceAction::Add => paint.green(&symbol),
            ResourceAction::Modify => paint.yellow(&symbol),
            ResourceAction::Replace | ResourceAction::MaybeReplace | ResourceAction::Remove => {
                paint.red(&symbol)
            }
        };
        let line = format!(
            "  {symbol} {:<id_width$}  {:<type_width$}  {}",
            c.logical_id,
            c.resource_type,
            row_details(c)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for note in &cs.notes {
        let _ = writeln!(out, "  note: {note}");
    }
}

fn cost_human(cost: &Estimate, before: Option<&Estimate>, out: &mut String) {
    let _ = writeln!(
        out,
        "  An estimate at {} events/month, {} bytes each, {} monthly tracked users.",
        thousands(cost.events_per_month),
        thousands(cost.mean_event_bytes),
        thousands(cost.monthly_tracked_users)
    );
    let all: Vec<&Line> = cost.usage.iter().chain(&cost.idle_floor).collect();
    let cw = all.iter().map(|l| l.component.len()).max().unwrap_or(0);
    let uw = all
        .iter()
        .map(|l| usd(l.monthly_usd).len())
        .max()
        .unwrap_or(0);
    let mut table = |title: &str, lines: &[Line]| {
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "  {title}");
        for l in lines {
            let _ = writeln!(
                out,
                "    {:<cw$}  {:>uw$}  {}",
                l.component,
                usd(l.monthly_usd),
                l.basis
            );
        }
    };
    table("Usage", &cost.usage);
    table("Idle floor (with no traffic at all)", &cost.idle_floor);
    let _ = writeln!(
        out,
        "  Total: {}/month, of which {} idle floor",
        usd(cost.total_usd),
        usd(cost.idle_usd)
    );
    if let Some(before) = before {
        let _ = writeln!(
            out,
            "  Before -> after: {} -> {} ({})",
            usd(before.total_usd),
            usd(cost.total_usd),
            signed_usd(cost.total_usd - before.total_usd)
        );
    }
    for assumption in &cost.assumptions {
        let _ = writeln!(out, "  assumes: {assumption}");
    }
}

/// What the markdown renderer leaves out to fit the limit.
#[derive(Debug, Clone, Copy, Default)]
struct Cuts {
    /// The most characters of file diffs (None: all).
    diff_budget: Option<usize>,
    /// The most change set rows (None: all).
    rows: Option<usize>,
    /// The most config changes (None: all).
    items: Option<usize>,
    /// The most items of each remaining list: risks, breaking changes,
    /// versions, personal data (None: all).
    lists: Option<usize>,
}

/// The largest `n` in `0..=max` with `fits(n)`, given `fits(0)` and that
/// `fits` only turns false as `n` grows.
fn most_that_fit(max: usize, fits: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn cut_note(what: &str) -> String {
    format!(
        "This comment was shortened to stay under {} characters: {what} left out. \
         See the whole plan with `uniflow plan --format human`, or in the JSON plan \
         (`uniflow plan --format json`, or `--out plan.json`).",
        thousands(MARKDOWN_LIMIT as u64)
    )
}

/// Takes at most `limit` items, counting those left out.
fn take<'a, T>(items: &'a [T], limit: Option<usize>, dropped: &mut usize) -> &'a [T] {
    let n = limit.map_or(items.len(), |l| l.min(items.len()));
    *dropped += items.len() - n;
    &items[..n]
}

fn markdown_with(plan: &Plan, cuts: &Cuts) -> String {
    let mut out = String::new();
    let mut cut: Vec<String> = Vec::new();
    let h = &plan.header;
    let _ = writeln!(out, "## uniflow plan: {}\n", code(&h.stack));
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary));
    let mut facts = vec![
        format!("against {}", escape(&h.against)),
        format!("region {}", code(&h.region)),
    ];
    if let Some(account) = &h.account {
        facts.insert(0, format!("account {}", code(account)));
    }
    facts.push(format!("config digest {}", code(short(&h.config_digest))));
    facts.push(match &h.deployed_digest {
        Some(d) => format!("deployed digest {}", code(short(d))),
        None => "nothing deployed".to_owned(),
    });
    if let Some(lock) = &h.lock {
        facts.push(format!(
            "**locked** by {} for {} since {} (id {})",
            escape(&lock.who),
            escape(&lock.operation),
            escape(&lock.created),
            code(&lock.id)
        ));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    let cut_at = out.len();

    let mut dropped_lists = 0;
    if !plan.risks.is_empty() {
        let _ = writeln!(out, "### Risks\n");
        for risk in take(&plan.risks, cuts.lists, &mut dropped_lists) {
            let _ = writeln!(
                out,
                "- **{}** {}",
                risk_label(risk.kind),
                inline(&risk.message)
            );
        }
        let _ = writeln!(out);
    }

    if !plan.config.breaking.is_empty() {
        let _ = writeln!(out, "### Breaking changes\n");
        let shown = take(&plan.config.breaking, cuts.lists, &mut dropped_lists);
        for (direction, title) in DIRECTIONS {
            let group: Vec<&BreakingChange> =
                shown.iter().filter(|b| b.direction == direction).collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(out, "**{title}**\n");
            for b in group {
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    inline(&breaking_subject(b)),
                    inline(&b.detail)
                );
                for item in &b.breaks {
                    let _ = writeln!(out, "  - breaks {}", inline(item));
                }
            }
            let _ = writeln!(out);
        }
    }

    if !plan.config.changes.is_empty() {
        let mut dropped = 0;
        let shown = take(&plan.config.changes, cuts.items, &mut dropped);
        open_details(
            &mut out,
            &format!("Config changes ({})", plan.config.changes.len()),
        );
        for change in shown {
            let _ = writeln!(
                out,
                "- `{}` {}",
                change_symbol(change.action),
                inline(&change_title(change))
            );
            for detail in &change.details {
                let _ = writeln!(out, "  - {}", inline(detail));
            }
        }
        if dropped > 0 {
            let _ = writeln!(out, "- … and {dropped} more");
            cut.push(format!("{dropped} config changes"));
        }
        close_details(&mut out);
    }

    if !plan.config.versions.is_empty() {
        open_details(
            &mut out,
            &format!("Versions ({})", plan.config.versions.len()),
        );
        for note in take(&plan.config.versions, cuts.lists, &mut dropped_lists) {
            let _ = writeln!(out, "- {}: {}", code(&note.event), inline(&note.message));
        }
        close_details(&mut out);
    }

    if !plan.config.pii_flows.is_empty() {
        open_details(
            &mut out,
            &format!("Personal data newly sent ({})", plan.config.pii_flows.len()),
        );
        for flow in take(&plan.config.pii_flows, cuts.lists, &mut dropped_lists) {
            let _ = writeln!(
                out,
                "- {}.{} → destination {} ({})",
                code(&flow.event),
                escape(&flow.property),
                code(&flow.destination),
                escape(&flow.form)
            );
        }
        close_details(&mut out);
    }
    if dropped_lists > 0 {
        cut.push(format!(
            "{dropped_lists} items of the risks, breaking changes, versions and personal data lists"
        ));
    }

    if !plan.files.is_empty() {
        open_details(&mut out, &format!("Generated files ({})", plan.files.len()));
        let _ = writeln!(out, "| File | Status | Added | Removed |");
        let _ = writeln!(out, "|---|---|---:|---:|");
        for file in &plan.files {
            let _ = writeln!(
                out,
                "| {} | {} | +{} | -{} |",
                code(&file.path),
                file_status(file.status),
                file.added,
                file.removed
            );
        }
        let _ = writeln!(out);
        let mut budget = cuts.diff_budget;
        let mut left_out = 0;
        for file in &plan.files {
            let block = diff_block(file);
            match &mut budget {
                Some(left) if block.chars().count() > *left => left_out += 1,
                Some(left) => {
                    *left -= block.chars().count();
                    out.push_str(&block);
                }
                None => out.push_str(&block),
            }
        }
        if left_out > 0 {
            let _ = writeln!(
                out,
                "{left_out} of {} diffs not shown here.\n",
                plan.files.len()
            );
            cut.push(format!("{left_out} file diffs"));
        }
        close_details(&mut out);
    }

    let cs = &plan.change_set;
    if !cs.changes.is_empty() || !cs.notes.is_empty() {
        let mut dropped = 0;
        let rows = take(&cs.changes, cuts.rows, &mut dropped);
        open_details(
            &mut out,
            &format!("{} ({})", change_set_title(cs), cs.changes.len()),
        );
        if !rows.is_empty() {
            let _ = writeln!(out, "| | Logical id | Type | Details |");
            let _ = writeln!(out, "|---|---|---|---|");
            for c in rows {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    resource_symbol(c.action),
                    code(&c.logical_id),
                    escape(&c.resource_type),
                    escape(&row_details(c))
                );
            }
            let _ = writeln!(out);
        }
        if dropped > 0 {
            let _ = writeln!(out, "{dropped} more rows not shown here.\n");
            cut.push(format!("{dropped} change set rows"));
        }
        for note in &cs.notes {
            let _ = writeln!(out, "> {}\n", inline(note));
        }
        close_details(&mut out);
    }

    if let Some(cost) = &plan.cost {
        let title = match &plan.cost_before {
            Some(before) => format!(
                "{COST_TITLE}: {} → {} ({})",
                usd(before.total_usd),
                usd(cost.total_usd),
                signed_usd(cost.total_usd - before.total_usd)
            ),
            None => format!("{COST_TITLE}: {}/month", usd(cost.total_usd)),
        };
        open_details(&mut out, &title);
        let _ = writeln!(
            out,
            "An estimate at {} events/month, {} bytes each, {} monthly tracked users.\n",
            thousands(cost.events_per_month),
            thousands(cost.mean_event_bytes),
            thousands(cost.monthly_tracked_users)
        );
        let _ = writeln!(out, "| Component | USD/month | Basis |");
        let _ = writeln!(out, "|---|---:|---|");
        for l in &cost.usage {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                escape(&l.component),
                usd(l.monthly_usd),
                escape(&l.basis)
            );
        }
        for l in &cost.idle_floor {
            let _ = writeln!(
                out,
                "| {} (idle floor) | {} | {} |",
                escape(&l.component),
                usd(l.monthly_usd),
                escape(&l.basis)
            );
        }
        let _ = writeln!(out, "| **Total** | **{}** | |", usd(cost.total_usd));
        let _ = writeln!(
            out,
            "| of which idle floor (no traffic) | {} | |\n",
            usd(cost.idle_usd)
        );
        for assumption in &cost.assumptions {
            let _ = writeln!(out, "- {}", inline(assumption));
        }
        if !cost.assumptions.is_empty() {
            let _ = writeln!(out);
        }
        close_details(&mut out);
    }

    if !cut.is_empty() {
        let note = format!("> {}\n\n", cut_note(&cut.join(", ")));
        out.insert_str(cut_at, &note);
    }
    let _ = writeln!(
        out,
        "<sub>uniflow {} · plan format {}</sub>",
        plan.uniflow_version, plan.format_version
    );
    out
}

fn open_details(out: &mut String, summary: &str) {
    let _ = writeln!(
        out,
        "<details><summary>{}</summary>\n",
        html_escape(summary)
    );
}

/// Closes a `<details>` after a blank line, so a list or table before it
/// ends there.
fn close_details(out: &mut String) {
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    let _ = writeln!(out, "</details>\n");
}

/// A file's diff in a fence longer than any run of backticks inside it.
fn diff_block(file: &FileDiff) -> String {
    let longest = longest_backtick_run(&file.diff);
    let fence = "`".repeat((longest + 1).max(3));
    let mut block = format!("{}:\n\n{fence}diff\n", code(&file.path));
    block.push_str(&file.diff);
    if !file.diff.ends_with('\n') {
        block.push('\n');
    }
    let _ = writeln!(block, "{fence}\n");
    block
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Inline code, with a fence the text cannot close.
fn code(text: &str) -> String {
    let ticks = "`".repeat(longest_backtick_run(text) + 1);
    if ticks.len() > 1 {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("`{text}`")
    }
}

/// Text for a table cell or list item: no pipes or newlines that would
/// break the table, no HTML.
fn escape(text: &str) -> String {
    html_escape(&text.replace('|', "\\|").replace('\n', " "))
}

/// Text for a list item: one line, no HTML, keeping the backtick spans
/// sentences use to name things (they render as code, where `<` is safe).
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let part = part.replace('\n', " ");
        if i % 2 == 1 {
            out.push_str(&part);
        } else {
            out.push_str(&html_escape(&part));
        }
    }
    out
}

/// Keeps `<` from opening an HTML tag; `>` and `&` render as themselves
/// where this is used (never at the start of a line).
fn html_escape(text: &str) -> String {
    text.replace('<', "&lt;")
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn risk_label(kind: RiskKind) -> &'static str {
    match kind {
        RiskKind::Destroyed => "destroyed",
        RiskKind::Replaced => "replaced",
        RiskKind::IamWidened => "iam",
        RiskKind::Breaking => "breaking",
        RiskKind::Pii => "pii",
    }
}

fn change_symbol(action: Action) -> &'static str {
    match action {
        Action::Add => "+",
        Action::Remove => "-",
        Action::Change => "~",
    }
}

fn subject_name(subject: Subject) -> &'static str {
    match subject {
        Subject::Project => "project",
        Subject::Source => "source",
        Subject::Event => "event",
        Subject::Property => "property",
        Subject::Trait => "trait",
        Subject::Identifier => "identifier",
        Subject::Destination => "destination",
        Subject::Segment => "segment",
    }
}

fn change_title(change: &Change) -> String {
    format!("{} `{}`", subject_name(change.subject), change.name)
}

fn breaking_subject(b: &BreakingChange) -> String {
    match &b.property {
        Some(p) => format!("`{}`.{p}", b.event),
        None => format!("`{}`", b.event),
    }
}

fn resource_symbol(action: ResourceAction) -> &'static str {
    match action {
        ResourceAction::Add => "+",
        ResourceAction::Modify => "~",
        ResourceAction::Replace => "-/+",
        ResourceAction::MaybeReplace => "-/+?",
        ResourceAction::Remove => "-",
    }
}

fn row_details(c: &ResourceChange) -> String {
    let mut details = c.details.join(", ");
    if c.action == ResourceAction::MaybeReplace {
        details = if details.is_empty() {
            "may be replaced".to_owned()
        } else {
            format!("may be replaced: {details}")
        };
    }
    details
}

fn file_symbol(status: FileStatus) -> &'static str {
    match status {
        FileStatus::Added => "+",
        FileStatus::Removed => "-",
        FileStatus::Modified => "~",
    }
}

fn file_status(status: FileStatus) -> &'static str {
    match status {
        FileStatus::Added => "added",
        FileStatus::Removed => "removed",
        FileStatus::Modified => "modified",
    }
}

fn change_set_title(cs: &ChangeSet) -> String {
    match &cs.source {
        ChangeSetSource::Cloudformation { name } => {
            format!("CloudFormation change set `{name}`")
        }
        ChangeSetSource::NewStack => "CloudFormation: a new stack".to_owned(),
        ChangeSetSource::TemplateDiff => "CloudFormation, from comparing the templates".to_owned(),
    }
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$1,234.56`.
fn usd(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round();
    // Saturates for absurd values; an estimate never gets near u64::MAX cents.
    let cents = if cents.is_finite() { cents as u64 } else { 0 };
    let sign = if amount < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
}

/// `+$12.00` or `-$3.50`.
fn signed_usd(amount: f64) -> String {
    if amount >= 0.0 || usd(amount) == usd(0.0) {
        format!("+{}", usd(amount.abs()))
    } else {
        usd(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{ApplyInput, Base, Header, Risk};
    use super::*;
    use uniflow_compiler::diff::ConfigDiff;

    fn plan(files: Vec<FileDiff>, changes: Vec<ResourceChange>) -> Plan {
        let summary = Summary {
            files_changed: files.len(),
            resources_modified: changes.len(),
            ..Summary::default()
        };
        Plan {
            format_version: 1,
            uniflow_version: "0.0.0".into(),
            header: Header {
                stack: "shop-prod".into(),
                account: None,
                region: "eu-west-1".into(),
                config_digest: "0123456789abcdef".into(),
                deployed_digest: None,
                against: "file old.kdl".into(),
                lock: None,
            },
            summary,
            risks: vec![Risk {
                kind: RiskKind::IamWidened,
                message: "role `R` gains s3:PutObject on `<bucket>` <b>".into(),
            }],
            config: ConfigDiff::default(),
            files,
            change_set: ChangeSet {
                source: ChangeSetSource::TemplateDiff,
                changes,
                notes: vec!["only CloudFormation can tell replacements".into()],
            },
            cost: None,
            cost_before: None,
            apply: ApplyInput {
                source: String::new(),
                path: "uniflow.kdl".into(),
                base: Base::default(),
            },
        }
    }

    fn huge_diff(path: &str, lines: usize) -> FileDiff {
        let mut diff = format!("--- a/{path}\n+++ b/{path}\n@@ -1,0 +1,{lines} @@\n");
        for i in 0..lines {
            let _ = writeln!(diff, "+line {i} with ``` a fence inside and padding text");
        }
        FileDiff {
            path: path.into(),
            status: FileStatus::Modified,
            added: lines,
            removed: 0,
            diff,
        }
    }

    fn assert_balanced(text: &str) {
        let fences = text
            .lines()
            .filter(|l| l.trim_start().starts_with("```"))
            .count();
        assert_eq!(fences % 2, 0, "unbalanced fences");
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }

    #[test]
    fn markdown_cuts_huge_diffs_first_and_says_so() {
        let small = FileDiff {
            path: "bundle.json".into(),
            status: FileStatus::Modified,
            added: 1,
            removed: 1,
            diff: "--- a/bundle.json\n+++ b/bundle.json\n@@ -1 +1 @@\n-a\n+b\n".into(),
        };
        let rows = vec![ResourceChange {
            action: ResourceAction::Modify,
            logical_id: "Queue".into(),
            resource_type: "AWS::SQS::Queue".into(),
            details: vec!["Properties.VisibilityTimeout".into()],
        }];
        let p = plan(vec![small, huge_diff("cloudformation.json", 5_000)], rows);
        let text = markdown(&p);
        assert!(text.chars().count() <= MARKDOWN_LIMIT, "{}", text.len());
        assert_balanced(&text);
        assert!(text.contains("This comment was shortened"), "{text}");
        assert!(text.contains("1 file diffs left out"), "{text}");
        assert!(text.contains("+b\n"), "the small diff still fits");
        assert!(text.contains("| `~` | `Queue` |"), "rows are kept");
        assert!(text.contains("`uniflow plan --format human`"));
    }

    #[test]
    fn markdown_cuts_rows_when_diffs_are_not_enough() {
        let rows: Vec<ResourceChange> = (0..3_000)
            .map(|i| ResourceChange {
                action: ResourceAction::Add,
                logical_id: format!("Resource{i:05}"),
                resource_type: "AWS::SQS::Queue".into(),
                details: vec!["Properties.SomethingRatherLong".into()],
            })
            .collect();
        let p = plan(vec![huge_diff("a.json", 10)], rows);
        let text = markdown(&p);
        assert!(text.chars().count() <= MARKDOWN_LIMIT);
        assert!(
            text.chars().count() > MARKDOWN_LIMIT - 1_000,
            "fills the room"
        );
        assert_balanced(&text);
        assert!(text.contains("change set rows"), "{}", &text[..2_000]);
        assert!(text.contains("Resource00000"));
        assert!(!text.contains("Resource02999"));
    }

    #[test]
    fn markdown_escapes_table_cells_and_html() {
        let mut p = plan(Vec::new(), Vec::new());
        p.change_set.changes.push(ResourceChange {
            action: ResourceAction::Modify,
            logical_id: "Q".into(),
            resource_type: "A|B".into(),
            details: Vec::new(),
        });
        let text = markdown(&p);
        assert!(text.contains("`<bucket>` &lt;b>"), "{text}");
        assert!(text.contains("| `~` | `Q` | A\\|B |  |"), "{text}");
        assert!(!text.contains("shortened"));
        assert_balanced(&text);
    }

    #[test]
    fn human_hides_long_diffs_and_colours_only_when_asked() {
        let p = plan(vec![huge_diff("big.json", HUMAN_DIFF_LINES)], Vec::new());
        let text = human(&p, false);
        assert!(!text.contains('\x1b'));
        assert!(
            text.contains("big.json: diff of 203 lines not shown"),
            "{text}"
        );
        let p = plan(vec![huge_diff("small.json", 5)], Vec::new());
        let text = human(&p, true);
        assert!(text.contains("\x1b[32m+line 0"), "{text}");
        assert!(human(&p, false).contains("\n+line 4 with"));
    }

    #[test]
    fn change_set_titles_name_their_source() {
        let row = ResourceChange {
            action: ResourceAction::Remove,
            logical_id: "Queue".into(),
            resource_type: "AWS::SQS::Queue".into(),
            details: Vec::new(),
        };
        let mut p = plan(Vec::new(), vec![row]);
        let mut titles = Vec::new();
        for source in [
            ChangeSetSource::Cloudformation {
                name: "uniflow-plan-1".into(),
            },
            ChangeSetSource::NewStack,
            ChangeSetSource::TemplateDiff,
        ] {
            p.change_set.source = source;
            titles.push(change_set_title(&p.change_set));
            assert!(human(&p, false).contains(titles.last().unwrap().as_str()));
        }
        assert_eq!(
            titles,
            [
                "CloudFormation change set `uniflow-plan-1`",
                "CloudFormation: a new stack",
                "CloudFormation, from comparing the templates",
            ]
        );
    }

    #[test]
    fn json_reads_back_as_a_saved_plan() {
        let p = plan(Vec::new(), Vec::new());
        let text = json(&p).unwrap();
        assert!(text.ends_with("}\n"));
        let saved: super::super::model::SavedPlan = serde_json::from_str(&text).unwrap();
        assert_eq!(saved.format_version, super::super::model::FORMAT_VERSION);
        assert_eq!(saved.header, p.header);
        assert_eq!(saved.apply, p.apply);
    }

    fn estimate(total: f64) -> Estimate {
        Estimate {
            events_per_month: 40_000_000,
            mean_event_bytes: 1_200,
            monthly_tracked_users: 350_000,
            usage: vec![Line {
                component: "Lambda: ingest".into(),
                basis: "40.0M requests x $0.20/M".into(),
                monthly_usd: total - 1.0,
            }],
            idle_floor: vec![Line {
                component: "KMS".into(),
                basis: "1 key".into(),
                monthly_usd: 1.0,
            }],
            total_usd: total,
            idle_usd: 1.0,
            assumptions: vec!["us-east-1 list prices of 2026-11".into()],
        }
    }

    #[test]
    fn cost_shows_components_idle_floor_and_the_difference() {
        let mut p = plan(vec![huge_diff("a.json", 1)], Vec::new());
        p.cost = Some(estimate(1_501.5));
        p.cost_before = Some(estimate(1_001.0));
        let text = human(&p, false);
        let cost = &text[text.find(COST_TITLE).expect("a cost section")..];
        for needle in [
            "An estimate at 40,000,000 events/month, 1,200 bytes each, 350,000 monthly tracked users.",
            "Lambda: ingest  $1,500.50  40.0M requests x $0.20/M",
            "KMS                 $1.00  1 key",
            "Idle floor (with no traffic at all)",
            "Total: $1,501.50/month, of which $1.00 idle floor",
            "Before -> after: $1,001.00 -> $1,501.50 (+$500.50)",
            "assumes: us-east-1 list prices of 2026-11",
        ] {
            assert!(cost.contains(needle), "{needle}\n{cost}");
        }
        let text = markdown(&p);
        for needle in [
            "<details><summary>Estimated monthly cost (AWS list prices, us-east-1): $1,001.00 → $1,501.50 (+$500.50)</summary>",
            "| Lambda: ingest | $1,500.50 | 40.0M requests x $0.20/M |",
            "| KMS (idle floor) | $1.00 | 1 key |",
            "| **Total** | **$1,501.50** | |",
        ] {
            assert!(text.contains(needle), "{needle}\n{text}");
        }
    }

    #[test]
    fn money_and_counts_read_well() {
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(-3.5), "-$3.50");
        assert_eq!(signed_usd(-3.5), "-$3.50");
        assert_eq!(signed_usd(12.0), "+$12.00");
        assert_eq!(signed_usd(-0.001), "+$0.00");
        assert_eq!(thousands(40_000_000), "40,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(most_that_fit(10, |n| n <= 7), 7);
        assert_eq!(most_that_fit(0, |_| true), 0);
    }
}
