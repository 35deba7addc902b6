//! Unified diffs of the generated files under build/.

// TEMPORARY (wt-c): a minimal stand-in so `plan` compiles before helper B's
// real implementation lands; the lead resolves the conflict in favour of
// B's version. It reports every changed file as wholly replaced.

use std::collections::BTreeMap;

use super::model::{FileDiff, FileStatus};

/// The files that differ between `old` and `new` (path -> contents), in
/// path order.
pub fn diff_files(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<FileDiff> {
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        let (a, b) = (old.get(path), new.get(path));
        if a == b {
            continue;
        }
        let status = match (a, b) {
            (None, _) => FileStatus::Added,
            (_, None) => FileStatus::Removed,
            _ => FileStatus::Modified,
        };
        let (a, b) = (a.map_or("", String::as_str), b.map_or("", String::as_str));
        let mut diff = format!(
            "--- a/{path}\n+++ b/{path}\n@@ -1,{} +1,{} @@\n",
            a.lines().count(),
            b.lines().count()
        );
        for line in a.lines() {
            diff.push_str(&format!("-{line}\n"));
        }
        for line in b.lines() {
            diff.push_str(&format!("+{line}\n"));
        }
        out.push(FileDiff {
            path: path.clone(),
            status,
            added: b.lines().count(),
            removed: a.lines().count(),
            diff,
        });
    }
    out
}
