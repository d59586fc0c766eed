//! The one error type of `echotest`: a single line that says what went wrong and with what.

use std::fmt;

/// Why a command failed, as one line of text meant for a person (the binary prints it after
/// `echotest: `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message (kept on one line: line breaks become spaces).
    pub fn msg(message: impl fmt::Display) -> Error {
        let text = message.to_string();
        let message = text.split_whitespace().collect::<Vec<_>>().join(" ");
        Error { message }
    }

    /// The message, without the `echotest: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        let e = Error::msg("first\nsecond  third\r\n");
        assert_eq!(e.message(), "first second third");
    }
}
