//! The rules for names and specs, and the small text helpers every error message here uses.

use std::fmt;

/// The longest name a layer, alias or stack may have.
pub const MAX_NAME_LEN: usize = 64;

/// True if `name` is a valid layer, alias or stack name: 1 to [`MAX_NAME_LEN`] characters out of
/// `a-z`, `0-9`, `_` and `-`.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Why `name` is not a valid name, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name cannot be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("a name has at most 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("names are lower-case letters a-z, digits, '_' and '-'")
    } else {
        None
    }
}

/// What is wrong with a spec, for the registry's and the address parser's errors.
#[derive(Debug)]
pub(crate) enum SpecProblem<'a> {
    /// The spec is empty.
    Empty,
    /// `+` at the start, at the end, or twice in a row.
    EmptyComponent,
    /// One component is not a valid name.
    BadName(&'a str, &'static str),
}

impl fmt::Display for SpecProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecProblem::Empty => f.write_str("it is empty"),
            SpecProblem::EmptyComponent => f.write_str(
                "it has an empty name ('+' at the start, at the end, or twice in a row)",
            ),
            SpecProblem::BadName(name, why) => write!(f, "bad name {}: {why}", quoted(name)),
        }
    }
}

/// Splits `NAME(+NAME)*` into its names, top first.
pub(crate) fn split_spec(spec: &str) -> Result<Vec<&str>, SpecProblem<'_>> {
    if spec.is_empty() {
        return Err(SpecProblem::Empty);
    }
    let names: Vec<&str> = spec.split('+').collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(SpecProblem::EmptyComponent);
    }
    for name in &names {
        if let Some(why) = name_problem(name) {
            return Err(SpecProblem::BadName(name, why));
        }
    }
    Ok(names)
}

/// `text` quoted and escaped for a one-line message, cut to a readable length.
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

/// The known name closest to `name` (at most two edits away), if any.
pub(crate) fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.chars().count().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("frame", "frame"), 0);
        let known = vec!["frame".to_owned(), "port".to_owned()];
        assert_eq!(closest("prot", &known), Some("port"));
        assert_eq!(closest("fram", &known), Some("frame"));
        assert_eq!(closest("zz", &known), None);
    }
}
