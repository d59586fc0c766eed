//! TOML read into serde types, with errors that say where: the line, the column and the key.
//! Stack files are read with it, and so is a program's own TOML (the tunnel's `--config`).

use std::fmt;

use serde::de::DeserializeOwned;

/// What is wrong in a TOML text, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TomlError {
    /// The line, from 1.
    pub line: usize,
    /// The column, in characters, from 1.
    pub column: usize,
    /// The dotted key it is about (`server.listen`), empty for errors of form.
    pub key: String,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, " ({})", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TomlError {}

/// Reads `text` into a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    let located = |e: toml::de::Error, key: String| {
        let (line, column) = position(text, e.span().map_or(0, |s| s.start));
        // Messages quote what they found; keep them on one line.
        let message: String = e
            .message()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        TomlError {
            line,
            column,
            key,
            message: message.trim().to_owned(),
        }
    };
    let document = toml::Deserializer::parse(text).map_err(|e| located(e, String::new()))?;
    serde_path_to_error::deserialize(document).map_err(|e| {
        // A value read with its span shows up as a private field of `Spanned`: not a key.
        let key: Vec<String> = e
            .path()
            .iter()
            .map(ToString::to_string)
            .filter(|segment| segment != "." && !segment.starts_with("$__serde_spanned"))
            .collect();
        located(e.into_inner(), key.join("."))
    })
}

/// The line and column (both from 1, the column in characters) of byte `offset` of `text`.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Characters, not bytes: skip UTF-8 continuation bytes.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\né€x\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 3), (2, 1));
        assert_eq!(position(text, "ab\né€".len()), (2, 3));
        assert_eq!(position(text, 1000), (3, 1));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        table: Table,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        count: u32,
    }

    #[test]
    fn errors_name_the_line_the_column_and_the_key() {
        let e = from_str::<Doc>("[table]\n\ncount = \"three\"\n").unwrap_err();
        assert_eq!((e.line, e.column, e.key.as_str()), (3, 9, "table.count"));
        assert_eq!(
            e.to_string(),
            "line 3, column 9 (table.count): invalid type: string \"three\", expected u32"
        );
        let e = from_str::<Doc>("[table\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (1, ""));
    }
}
