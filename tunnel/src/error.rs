//! The one error type of `port-tunnel`: a single line naming what was wrong and the form
//! that was expected.

use std::fmt;

/// Why a command failed, as one line meant for a person (the binary prints it after
/// `port-tunnel: `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message, kept on one line (line breaks become spaces).
    pub fn msg(message: impl fmt::Display) -> Error {
        let text = message.to_string();
        let message = text.split_whitespace().collect::<Vec<_>>().join(" ");
        Error { message }
    }

    /// The message, without the `port-tunnel: ` prefix.
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

/// A failed PORT connection attempt or connection, phrased for a person.
pub fn describe(error: &port_tokio::Error) -> String {
    use port_core::CloseReason;
    match error {
        port_tokio::Error::Rejected(status) => format!("the server refused: {status}"),
        port_tokio::Error::Closed(CloseReason::HandshakeTimeout) => "no answer to the handshake \
             in time: is --key the client key of this server, and is it a PORT server?"
            .to_owned(),
        port_tokio::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(Error::msg("a\nb  c\r\n").message(), "a b c");
    }

    #[test]
    fn a_silent_server_points_at_the_key() {
        let e = port_tokio::Error::Closed(port_core::CloseReason::HandshakeTimeout);
        assert!(describe(&e).contains("--key"));
    }
}
