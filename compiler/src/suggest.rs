//! "Did you mean ...?": the closest known name to a misspelt one.

/// The candidate closest to `input`, if one is close enough to be a likely typo.
///
/// Case-insensitive Damerau-Levenshtein, accepting at most a third of the
/// longer name's length in edits (and at least one), ties going to the first
/// candidate so the answer is deterministic.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    let seen: Vec<&'a str> = candidates.into_iter().collect();
    for &candidate in &seen {
        if candidate == input {
            continue;
        }
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
        let limit = (lower.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c).or_else(|| {
        // `s3` for `s3-export`: a prefix of exactly one candidate.
        let mut prefixed = candidates_prefixed(&lower, &seen);
        match (prefixed.next(), prefixed.next()) {
            (Some(only), None) if lower.len() >= 2 => Some(only),
            _ => None,
        }
    })
}

fn candidates_prefixed<'a, 'b>(
    lower: &'b str,
    seen: &'b [&'a str],
) -> impl Iterator<Item = &'a str> + 'b {
    seen.iter()
        .copied()
        .filter(move |c| c.to_lowercase().starts_with(lower))
}

/// A help line: "did you mean `x`?" or, failing that, the list of choices.
pub fn help_for(input: &str, candidates: &[&str], noun: &str) -> Option<String> {
    if let Some(best) = did_you_mean(input, candidates.iter().copied()) {
        return Some(format!("did you mean `{best}`?"));
    }
    if candidates.is_empty() {
        return None;
    }
    Some(format!("{noun} is one of: {}", list(candidates)))
}

/// `a`, `b` or `c`.
pub fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names() {
        let nodes = ["project", "source", "event", "destination", "segment"];
        assert_eq!(did_you_mean("destinaton", nodes), Some("destination"));
        assert_eq!(did_you_mean("evnet", nodes), Some("event"));
        assert_eq!(did_you_mean("Segment", nodes), Some("segment"));
        assert_eq!(did_you_mean("zzzzzz", nodes), None);
        assert_eq!(
            did_you_mean("s3", ["webhook", "s3-export", "lambda"]),
            Some("s3-export")
        );
        assert_eq!(did_you_mean("e", nodes), None);
    }

    #[test]
    fn lists_choices() {
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(
            help_for("qqq", &["x", "y"], "the kind").as_deref(),
            Some("the kind is one of: `x` or `y`")
        );
    }
}
