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

/// A failed PORT connection attempt or connection, phrased for a person: the server's
/// refusals say what they mean in the tunnel.
pub fn describe(error: &port_tokio::Error) -> String {
    match error {
        port_tokio::Error::Rejected(status) => {
            match crate::refusal::Refusal::from_status(*status) {
                Some(refusal) => refusal.describe(),
                None => port_stack::tokens::describe_refusal(*status),
            }
        }
        port_tokio::Error::Unanswered { .. } => format!("{error} (--key)"),
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
        for closed in [false, true] {
            let e = port_tokio::Error::Unanswered { closed };
            assert!(describe(&e).contains("--key"), "{}", describe(&e));
        }
    }

    #[test]
    fn refusals_say_what_they_mean_in_the_tunnel() {
        use crate::refusal::Refusal;
        let unknown = port_tokio::Error::Rejected(port_stack::tokens::UNKNOWN_TOKEN);
        assert!(describe(&unknown).contains("does not know this token"));
        let down = port_tokio::Error::Rejected(crate::server::TARGET_DOWN);
        assert_eq!(describe(&down), "the server cannot reach the target");
        let refused = port_tokio::Error::Rejected(Refusal::ConnectionRefused.status());
        assert!(describe(&refused).ends_with("connection refused"));
        let other = port_tokio::Error::Rejected(port_core::Status::Application(300));
        assert!(describe(&other).contains("application status (300)"));
    }
}
