//! What reads a property of an event: the segments, destinations and the
//! archive's Glue table a consumer break names.
//!
//! A reader reads a property when it names the property, a field inside it,
//! or an object around it: `drop "properties.address"` reads
//! `address.city`, `properties.items` reads `items[].sku`. Paths are the
//! ones the checker resolves: `properties.X...` in conditions, transforms and
//! templates. A segment's `having` is not parsed, so its paths are read off
//! the text: `properties.X...` and bare names (`sum(revenue)`), leaving out
//! function names, keywords, string literals and the message's own fields.

use uniflow_schemas::condition::{Condition, Operand, OperandKind};

use crate::generate::cloudformation::{RAW_EVENTS_TABLE, archive_database};
use crate::model::{Config, Destination, Segment, TransformDecl};
use crate::values;

/// Everything that reads `path` (`revenue`, `items[].sku`) of `event`:
/// segments, then destinations, then the archive's Glue table. A segment or
/// destination is looked up in `new` when it is still there (it will now
/// break), else in `old`.
pub(super) fn readers(old: &Config, new: &Config, event: &str, path: &str) -> Vec<String> {
    let target: Vec<&str> = path.split('.').map(|s| s.trim_end_matches("[]")).collect();
    let mut out = Vec::new();
    let segments = new.segments.iter().chain(
        old.segments
            .iter()
            .filter(|s| !new.segments.iter().any(|n| n.name.value == s.name.value)),
    );
    for s in segments {
        if segment_reads(s, event, &target) {
            out.push(format!("segment `{}` reads `{path}`", s.name.value));
        }
    }
    let destinations = new.destinations.iter().chain(
        old.destinations
            .iter()
            .filter(|d| new.destination(&d.name.value).is_none()),
    );
    for d in destinations {
        destination_reads(d, event, &target, &mut out);
    }
    let project = new.project.as_ref().or(old.project.as_ref());
    let table = match project {
        Some(p) => format!("{}.{RAW_EVENTS_TABLE}", archive_database(p)),
        None => RAW_EVENTS_TABLE.to_owned(),
    };
    out.push(format!(
        "the archive's Glue table `{table}` column `properties` (`$.{}`)",
        path.replace("[]", "[*]")
    ));
    out
}

/// Whether a field path (its segments after `properties`) reads the target.
fn related(read: &[&str], target: &[&str]) -> bool {
    !read.is_empty() && (read.starts_with(target) || target.starts_with(read))
}

/// The segments after `properties.` of an event field path, if it is one.
fn property_path(path: &str) -> Option<Vec<&str>> {
    let mut parts = path.split('.');
    (parts.next() == Some("properties")).then(|| parts.collect())
}

/// The `properties.X...` paths a condition reads, as segments after `properties`.
fn condition_paths(c: &Condition) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    c.visit(&mut |node| {
        let operands: Vec<&Operand> = match node {
            Condition::Or(_) | Condition::And(_) | Condition::Not(_) => Vec::new(),
            Condition::Compare { left, right, .. } => vec![left, right],
            Condition::IsNull { operand, .. } | Condition::Value(operand) => vec![operand],
            Condition::In { operand, list, .. } => {
                std::iter::once(operand).chain(list.iter()).collect()
            }
            Condition::Like {
                operand, pattern, ..
            } => vec![operand, pattern],
            Condition::Between {
                operand, low, high, ..
            } => vec![operand, low, high],
        };
        for o in operands {
            if let OperandKind::Path(segments) = &o.kind
                && let Some((first, rest)) = segments.split_first()
                && first == "properties"
            {
                out.push(rest.iter().map(String::as_str).collect());
            }
        }
    });
    out
}

/// Words of a `having` text that are not property names.
const SQL_WORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "is",
    "null",
    "in",
    "between",
    "like",
    "distinct",
    "interval",
    "true",
    "false",
    "case",
    "when",
    "then",
    "else",
    "end",
    "as",
    "current_timestamp",
    "current_date",
    "year",
    "month",
    "week",
    "day",
    "hour",
    "minute",
    "second",
];

/// The property paths a `having` text reads, as segments after `properties`.
fn having_paths(text: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
            let token = text.get(start..i).unwrap_or_default();
            let mut after = i;
            while after < bytes.len() && bytes[after].is_ascii_whitespace() {
                after += 1;
            }
            if bytes.get(after) == Some(&b'(') {
                continue;
            }
            let segments: Vec<&str> = token.split('.').collect();
            match segments.split_first() {
                Some((&"properties", rest)) => out.push(rest.to_vec()),
                Some((first, _))
                    if !values::EVENT_OBJECTS.contains(first)
                        && !values::EVENT_FIELDS.contains(first)
                        && !SQL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(first)) =>
                {
                    out.push(segments);
                }
                _ => {}
            }
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn segment_reads(s: &Segment, event: &str, target: &[&str]) -> bool {
    if !s.from.iter().any(|f| f.value == event) {
        return false;
    }
    let in_where = s.where_.as_ref().is_some_and(|w| {
        condition_paths(&w.condition)
            .iter()
            .any(|p| related(p, target))
    });
    let in_having = s
        .having
        .as_ref()
        .is_some_and(|h| having_paths(&h.value).iter().any(|p| related(p, target)));
    in_where || in_having
}

/// The ways a destination that receives `event` reads the target, one each.
fn destination_reads(d: &Destination, event: &str, target: &[&str], out: &mut Vec<String>) {
    if !d.receives(event) {
        return;
    }
    let name = &d.name.value;
    let reads = |path: &str| property_path(path).is_some_and(|p| related(&p, target));
    if let Some(f) = &d.filter
        && let Some(p) = condition_paths(&f.condition)
            .into_iter()
            .find(|p| related(p, target))
    {
        out.push(format!(
            "destination `{name}` filters on `properties.{}`",
            p.join(".")
        ));
    }
    for t in &d.transforms {
        let (verb, path) = match t {
            TransformDecl::Rename { from, .. } => ("renames", &from.value),
            TransformDecl::Drop(p) => ("drops", &p.value),
            TransformDecl::Hash(p) => ("hashes", &p.value),
        };
        if reads(path) {
            out.push(format!("destination `{name}` {verb} `{path}`"));
        }
    }
    if let Some(template) = &d.template {
        for r in template.reads.iter().filter(|r| reads(&r.value)) {
            out.push(format!(
                "destination `{name}`'s template reads `{}`",
                r.value
            ));
        }
    }
}
