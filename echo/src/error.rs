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

/// What a connection attempt or an established connection reported, phrased for a person.
pub fn describe_driver_error(error: &port_driver::Error) -> String {
    match error {
        port_driver::Error::Rejected(status) => format!("server rejected the token: {status}"),
        port_driver::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        let e = Error::msg("first\nsecond  third\r\n");
        assert_eq!(e.message(), "first second third");
    }

    #[test]
    fn rejection_names_the_status() {
        let e = port_driver::Error::Rejected(port_core::Status::Application(4242));
        assert_eq!(
            describe_driver_error(&e),
            "server rejected the token: application status (4242)"
        );
    }
}
