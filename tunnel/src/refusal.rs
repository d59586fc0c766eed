//! Why a tunnel server refuses a carried connection: the PORT status it answers with, the
//! words a client logs, and the SOCKS5 reply a client in SOCKS5 mode passes on.
//!
//! Statuses beyond the two PORT defines are application statuses `0x100 + R`, `R` being the
//! SOCKS5 reply code (RFC 1928 §6) that says the same thing, so a refusal keeps its meaning
//! from the server's connect to the SOCKS5 client.

use std::io;

use port_core::Status;
use socks5_proto::Reply;

/// A refusal by a tunnel server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The token is not in the server's tokens file.
    UnknownToken,
    /// The target is not in the server's `--allow` list (or the client named no target and
    /// the server has no `--forward`).
    NotAllowed,
    /// The target's network cannot be reached.
    NetworkUnreachable,
    /// The target's host cannot be reached, or its name does not resolve.
    HostUnreachable,
    /// The target refused the connection.
    ConnectionRefused,
    /// The target did not answer in time.
    TimedOut,
    /// The target could not be reached for another reason.
    Failed,
}

/// Application statuses start here (`docs/PROTOCOL.md` §6).
const BASE: u16 = 0x100;

impl Refusal {
    /// The status the server rejects the PORT connection with.
    pub fn status(self) -> Status {
        match self {
            Refusal::UnknownToken => port_stack::tokens::UNKNOWN_TOKEN,
            Refusal::Failed => Status::ConnectionError,
            other => Status::Application(BASE + u16::from(u8::from(other.socks_reply()))),
        }
    }

    /// Every refusal.
    pub const ALL: [Refusal; 7] = [
        Refusal::UnknownToken,
        Refusal::NotAllowed,
        Refusal::NetworkUnreachable,
        Refusal::HostUnreachable,
        Refusal::ConnectionRefused,
        Refusal::TimedOut,
        Refusal::Failed,
    ];

    /// The refusal a status stands for; `None` for a status a tunnel server does not send.
    pub fn from_status(status: Status) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.status() == status)
    }

    /// The SOCKS5 reply that says the same.
    pub fn socks_reply(self) -> Reply {
        match self {
            Refusal::UnknownToken | Refusal::Failed => Reply::GeneralFailure,
            Refusal::NotAllowed => Reply::ConnectionNotAllowed,
            Refusal::NetworkUnreachable => Reply::NetworkUnreachable,
            Refusal::HostUnreachable => Reply::HostUnreachable,
            Refusal::ConnectionRefused => Reply::ConnectionRefused,
            Refusal::TimedOut => Reply::TtlExpired,
        }
    }

    /// The refusal for a failed connect to the target.
    pub fn of_connect_error(error: &io::Error) -> Refusal {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Refusal::ConnectionRefused,
            io::ErrorKind::NetworkUnreachable => Refusal::NetworkUnreachable,
            io::ErrorKind::HostUnreachable => Refusal::HostUnreachable,
            io::ErrorKind::TimedOut => Refusal::TimedOut,
            _ => Refusal::Failed,
        }
    }

    /// Its name in metrics (`port_tunnel_refusals_total{reason}`).
    pub fn label(self) -> &'static str {
        match self {
            Refusal::UnknownToken => "unknown_token",
            Refusal::NotAllowed => "not_allowed",
            Refusal::NetworkUnreachable => "network_unreachable",
            Refusal::HostUnreachable => "host_unreachable",
            Refusal::ConnectionRefused => "connection_refused",
            Refusal::TimedOut => "timed_out",
            Refusal::Failed => "failed",
        }
    }

    /// What it means, for a person.
    pub fn describe(self) -> String {
        let unreachable = |why: &str| format!("the server cannot reach the target: {why}");
        match self {
            Refusal::UnknownToken => port_stack::tokens::describe_refusal(self.status()),
            Refusal::NotAllowed => "the server does not allow this target (its --allow list, \
                 or no --forward for a client that names none)"
                .to_owned(),
            Refusal::NetworkUnreachable => unreachable("network unreachable"),
            Refusal::HostUnreachable => unreachable("host unreachable or unknown"),
            Refusal::ConnectionRefused => unreachable("connection refused"),
            Refusal::TimedOut => unreachable("no answer in time"),
            Refusal::Failed => "the server cannot reach the target".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_keep_their_socks_meaning() {
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::from_status(refusal.status()), Some(refusal));
        }
        assert_eq!(Refusal::NotAllowed.status(), Status::Application(0x102));
        assert_eq!(
            Refusal::ConnectionRefused.status(),
            Status::Application(0x105)
        );
        assert_eq!(Refusal::from_status(Status::Application(0x300)), None);
    }

    #[test]
    fn connect_errors_map_to_refusals() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            Refusal::of_connect_error(&refused),
            Refusal::ConnectionRefused
        );
        let other = io::Error::other("?");
        assert_eq!(Refusal::of_connect_error(&other), Refusal::Failed);
    }
}
