//! Unified diffs of the generated files under build/.

use std::collections::BTreeMap;

use similar::{ChangeTag, TextDiff};

use super::model::{FileDiff, FileStatus};

/// Lines of unchanged context around each change.
const CONTEXT_LINES: usize = 3;

/// What the unified diff names a missing side: `/dev/null`, as git does.
const NO_FILE: &str = "/dev/null";

/// Every file added, removed or modified between `old` and `new` (path under
/// `build/` to contents), sorted by path, each with its unified diff. An
/// added file diffs against nothing (`--- /dev/null`), a removed one into
/// nothing (`+++ /dev/null`); unchanged files are left out.
pub fn diff_files(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<FileDiff> {
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| match (old.get(path), new.get(path)) {
            (Some(before), Some(after)) if before == after => None,
            (Some(before), Some(after)) => Some(diff_file(
                path,
                FileStatus::Modified,
                (before, &format!("a/{path}")),
                (after, &format!("b/{path}")),
            )),
            (None, Some(after)) => Some(diff_file(
                path,
                FileStatus::Added,
                ("", NO_FILE),
                (after, &format!("b/{path}")),
            )),
            (Some(before), None) => Some(diff_file(
                path,
                FileStatus::Removed,
                (before, &format!("a/{path}")),
                ("", NO_FILE),
            )),
            (None, None) => None,
        })
        .collect()
}

/// One file's diff: `(contents, header name)` of each side.
fn diff_file(path: &str, status: FileStatus, old: (&str, &str), new: (&str, &str)) -> FileDiff {
    let diff = TextDiff::from_lines(old.0, new.0);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let text = diff
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(old.1, new.1)
        .to_string();
    FileDiff {
        path: path.to_owned(),
        status,
        added,
        removed,
        diff: text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
            .collect()
    }

    /// `n` numbered lines, `line 1` to `line n`.
    fn lines(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn unchanged_files_are_left_out() {
        let same = files(&[
            ("cloudformation.json", "{}\n"),
            ("lambda/ingest.json", "{}\n"),
        ]);
        assert_eq!(diff_files(&same, &same), Vec::new());
    }

    #[test]
    fn a_modified_file_has_a_unified_diff_with_three_lines_of_context() {
        let old = lines(10);
        let new = old.replace("line 5\n", "line five\n");
        let diffs = diff_files(
            &files(&[("cloudformation.json", &old)]),
            &files(&[("cloudformation.json", &new)]),
        );
        assert_eq!(
            diffs,
            vec![FileDiff {
                path: "cloudformation.json".into(),
                status: FileStatus::Modified,
                added: 1,
                removed: 1,
                diff: "--- a/cloudformation.json\n+++ b/cloudformation.json\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"
                    .into(),
            }]
        );
    }

    #[test]
    fn distant_changes_are_separate_hunks() {
        let old = lines(20);
        let new = old
            .replace("line 2\n", "line two\n")
            .replace("line 18\n", "");
        let diffs = diff_files(&files(&[("f", &old)]), &files(&[("f", &new)]));
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let diff = &diffs[0];
        let headers: Vec<&str> = diff.diff.lines().filter(|l| l.starts_with("@@")).collect();
        assert_eq!(headers, ["@@ -1,5 +1,5 @@", "@@ -15,6 +15,5 @@"]);
        assert_eq!((diff.added, diff.removed), (1, 2));
    }

    #[test]
    fn an_added_file_diffs_against_dev_null() {
        let diffs = diff_files(&files(&[]), &files(&[("lambda/connector.json", "{\n}\n")]));
        assert_eq!(
            diffs,
            vec![FileDiff {
                path: "lambda/connector.json".into(),
                status: FileStatus::Added,
                added: 2,
                removed: 0,
                diff: "--- /dev/null\n+++ b/lambda/connector.json\n@@ -0,0 +1,2 @@\n+{\n+}\n"
                    .into(),
            }]
        );
    }

    #[test]
    fn a_removed_file_diffs_into_dev_null() {
        let diffs = diff_files(&files(&[("old.json", "a\nb\nc\n")]), &files(&[]));
        assert_eq!(
            diffs,
            vec![FileDiff {
                path: "old.json".into(),
                status: FileStatus::Removed,
                added: 0,
                removed: 3,
                diff: "--- a/old.json\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-a\n-b\n-c\n".into(),
            }]
        );
    }

    #[test]
    fn files_are_sorted_by_path_across_both_sides() {
        let old = files(&[("b.json", "1\n"), ("d.json", "1\n"), ("c.json", "same\n")]);
        let new = files(&[("a.json", "1\n"), ("c.json", "same\n"), ("d.json", "2\n")]);
        let summary: Vec<(String, FileStatus)> = diff_files(&old, &new)
            .into_iter()
            .map(|d| (d.path, d.status))
            .collect();
        assert_eq!(
            summary,
            [
                ("a.json".to_owned(), FileStatus::Added),
                ("b.json".to_owned(), FileStatus::Removed),
                ("d.json".to_owned(), FileStatus::Modified),
            ]
        );
    }

    #[test]
    fn a_missing_final_newline_is_marked() {
        let diffs = diff_files(&files(&[("f", "a\nb")]), &files(&[("f", "a\nb\n")]));
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let diff = &diffs[0];
        assert_eq!(
            diff.diff,
            "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }
}
