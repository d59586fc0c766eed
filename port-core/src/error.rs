//! Status codes, close reasons and errors.

use std::fmt;

/// Which end of a connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that sends the client INIT.
    Client,
    /// The end that accepted the TCP connection.
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// The server's answer to a client INIT, carried as a `u16` in the server INIT.
///
/// Codes 0–4 match the upstream Seaside values; 5–255 are reserved for the protocol;
/// 256–65535 are free for applications ([`Status::Application`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// 0: the token was accepted.
    Success,
    /// 1: the token could not be parsed.
    TokenParseError,
    /// 2: the server could not set up the connection.
    ConnectionError,
    /// 3: the user could not be registered (for example, no free slot).
    RegistrationError,
    /// 4: an unspecified failure.
    UnknownError,
    /// 5–255: a code reserved for future protocol use, as received.
    Reserved(u8),
    /// 256–65535: an application-defined rejection code.
    Application(u16),
}

impl Status {
    /// The wire value.
    pub fn code(self) -> u16 {
        match self {
            Status::Success => 0,
            Status::TokenParseError => 1,
            Status::ConnectionError => 2,
            Status::RegistrationError => 3,
            Status::UnknownError => 4,
            Status::Reserved(c) => c.into(),
            Status::Application(c) => c,
        }
    }

    /// Decodes a wire value; every `u16` maps to exactly one status.
    pub fn from_code(code: u16) -> Status {
        match code {
            0 => Status::Success,
            1 => Status::TokenParseError,
            2 => Status::ConnectionError,
            3 => Status::RegistrationError,
            4 => Status::UnknownError,
            5..=255 => Status::Reserved(code as u8),
            _ => Status::Application(code),
        }
    }

    /// An application rejection code, or `None` if `code` is below 256.
    pub fn application(code: u16) -> Option<Status> {
        (code >= 256).then_some(Status::Application(code))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Success => f.write_str("success (0)"),
            Status::TokenParseError => f.write_str("token parse error (1)"),
            Status::ConnectionError => f.write_str("connection error (2)"),
            Status::RegistrationError => f.write_str("registration error (3)"),
            Status::UnknownError => f.write_str("unknown error (4)"),
            Status::Reserved(c) => write!(f, "reserved status ({c})"),
            Status::Application(c) => write!(f, "application status ({c})"),
        }
    }
}

/// A violation of PORT/1 by an authenticated peer (or by whoever tampered with its bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A header or body failed authentication: altered, reordered, replayed or foreign bytes.
    Authentication,
    /// An authenticated field had a value the protocol forbids.
    Malformed(&'static str),
    /// A frame declared a payload above the receiver's advertised limit.
    FrameTooLarge {
        /// Declared payload length.
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// A frame declared more padding than the protocol allows.
    PaddingTooLarge {
        /// Declared padding length.
        len: usize,
    },
    /// A reassembled message exceeded the receiver's advertised limit.
    MessageTooLarge {
        /// Length the message reached.
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// A direction's key is used up: its nonce counter ran out, or, under AES-256-GCM, it sealed
    /// its budget of 2^34 blocks (256 GiB). The connection cannot go on safely.
    NonceExhausted,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Authentication => f.write_str("authentication failed"),
            ProtocolError::Malformed(what) => write!(f, "malformed frame: {what}"),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "frame payload of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::PaddingTooLarge { len } => {
                write!(f, "padding of {len} bytes exceeds the protocol limit")
            }
            ProtocolError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::NonceExhausted => {
                f.write_str("the direction's key is used up (nonce counter or AES-GCM budget)")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a server refused a connection's first bytes. The network sees no difference between
/// these (no reply, close at a random deadline); they exist for the server's own logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitRefusal {
    /// The bytes did not authenticate as a client INIT for this server's key: garbage, a
    /// probe, a truncated or altered INIT, or an INIT for another key.
    Unauthenticated,
    /// The INIT's timestamp was outside the replay window.
    Stale,
    /// The INIT was seen before.
    Replayed,
    /// The replay filter was full of live entries.
    ReplayFilterFull,
}

impl fmt::Display for InitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitRefusal::Unauthenticated => "the first bytes are not a valid INIT for this key",
            InitRefusal::Stale => "the INIT timestamp is outside the replay window",
            InitRefusal::Replayed => "the INIT is a replay",
            InitRefusal::ReplayFilterFull => "the replay filter is full",
        })
    }
}

/// Why a connection closed. Reported once, in [`Event::Closed`](crate::Event::Closed), and
/// kept by the connection afterwards (see [`Connection::close_reason`](crate::Connection::close_reason)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Both directions ended with TERM, this side's first.
    Local,
    /// Both directions ended with TERM, the peer's first.
    Peer,
    /// The handshake ended with a non-success status: on a client, the server's answer; on a
    /// server, the application's `reject`.
    Rejected(Status),
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// The peer stopped answering keepalives: the retry budget is spent.
    KeepaliveTimeout,
    /// The server refused the first bytes and drained the connection until a random deadline.
    Refused(InitRefusal),
    /// The peer (or the path) violated the protocol after authentication.
    Protocol(ProtocolError),
    /// The transport under the connection ended without the peer's TERM.
    TransportClosed,
    /// Inside a stack, a layer refused what the layer above it handed down (a message would
    /// have been lost), so the stack ended rather than lose it silently.
    LayerRefused,
}

impl CloseReason {
    /// True for the two graceful endings (a TERM exchange).
    pub fn is_graceful(&self) -> bool {
        matches!(self, CloseReason::Local | CloseReason::Peer)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Peer => f.write_str("closed by the peer"),
            CloseReason::Rejected(s) => write!(f, "rejected with {s}"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::KeepaliveTimeout => f.write_str("peer stopped answering keepalives"),
            CloseReason::Refused(r) => write!(f, "refused: {r}"),
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::TransportClosed => f.write_str("the transport ended without TERM"),
            CloseReason::LayerRefused => {
                f.write_str("a layer of the stack refused a message from the layer above")
            }
        }
    }
}

/// Misuse of the API, or an operation on a connection that cannot perform it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The handshake has not completed; nothing can be sent yet.
    NotConnected,
    /// `close()` was called; no more messages are accepted.
    Closing,
    /// The connection is closed, for this reason (sticky).
    Closed(CloseReason),
    /// The message is larger than the smaller of both sides' message limits.
    MessageTooLarge {
        /// Length of the refused message.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The token does not fit in a client INIT.
    TokenTooLarge {
        /// Token length.
        len: usize,
        /// [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN).
        max: usize,
    },
    /// The server public key is a low-order point: no secure session is possible with it.
    WeakServerKey,
    /// The call is only valid on the other side (`accept`/`reject` are server calls).
    WrongSide {
        /// The side the call belongs to.
        expected: Side,
    },
    /// `accept`/`reject` without a pending [`Event::Authenticate`](crate::Event::Authenticate).
    NoPendingAuthentication,
    /// `reject` needs a failure status; `Status::Success` is what `accept` sends.
    RejectWithSuccess,
    /// The user id does not fit the wire: a seaside user id is the TCP port of the per-user
    /// socket, 1 to 65535.
    UserIdOutOfRange {
        /// The refused user id.
        user_id: u32,
    },
    /// The status does not fit the wire: seaside carries a one-byte status (0 to 255).
    StatusOutOfRange(Status),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("the handshake has not completed"),
            Error::Closing => f.write_str("the connection is closing"),
            Error::Closed(reason) => write!(f, "the connection is closed: {reason}"),
            Error::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            Error::TokenTooLarge { len, max } => {
                write!(f, "token of {len} bytes exceeds the limit of {max}")
            }
            Error::WeakServerKey => f.write_str("the server public key is a low-order point"),
            Error::WrongSide { expected } => write!(f, "this call is only valid on a {expected}"),
            Error::NoPendingAuthentication => {
                f.write_str("no authentication is waiting for a decision")
            }
            Error::RejectWithSuccess => f.write_str("reject needs a failure status, not success"),
            Error::UserIdOutOfRange { user_id } => write!(
                f,
                "user id {user_id} is out of range: a seaside user id is a TCP port, 1 to 65535"
            ),
            Error::StatusOutOfRange(status) => write!(
                f,
                "{status} does not fit the seaside status byte (0 to 255)"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_round_trips() {
        for code in 0..=u16::MAX {
            assert_eq!(Status::from_code(code).code(), code);
        }
        assert_eq!(Status::application(255), None);
        assert_eq!(Status::application(256), Some(Status::Application(256)));
    }

    #[test]
    fn displays_name_the_detail() {
        let s = CloseReason::Rejected(Status::Application(4242)).to_string();
        assert!(s.contains("4242"), "{s}");
        let e = Error::MessageTooLarge { len: 10, max: 5 }.to_string();
        assert!(e.contains("10") && e.contains('5'), "{e}");
    }
}
