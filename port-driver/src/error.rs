//! Errors of connections run by the driver.

use std::fmt;
use std::io;
use std::sync::Arc;

use port_core::{CloseReason, Status};

/// Why a connection (or an attempt to make one) failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(Arc<io::Error>),
    /// The TCP connection could not be established within the handshake timeout.
    ConnectTimeout,
    /// The server rejected the token with this status.
    Rejected(Status),
    /// The TCP connection was made but the server sent not one byte of an answer to the
    /// handshake: it closed the connection (`closed`) or stayed silent until the handshake
    /// timeout. A PORT server treats a client whose key (or shape) is not its own exactly
    /// so, as it treats any prober.
    Unanswered {
        /// The server closed the TCP connection; otherwise the handshake timed out.
        closed: bool,
    },
    /// The PORT connection ended for this reason (a handshake timeout, a keepalive timeout, a
    /// protocol error, ...).
    Closed(CloseReason),
    /// The TCP stream ended without the peer's TERM: the peer vanished or aborted.
    TransportClosed,
    /// The session refused the call (for example a message above the size limit).
    Session(port_core::Error),
    /// This side cut the connection ([`Stream::abort`](crate::Stream::abort)): the peer saw its
    /// TCP stream end without TERM.
    Aborted,
}

impl Error {
    /// The PORT close reason, if the connection ended with one.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            Error::Closed(reason) => Some(*reason),
            Error::Rejected(status) => Some(CloseReason::Rejected(*status)),
            Error::Unanswered { closed: false } => Some(CloseReason::HandshakeTimeout),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "transport error: {e}"),
            Error::ConnectTimeout => f.write_str("TCP connect timed out"),
            Error::Rejected(status) => write!(f, "the server rejected the token: {status}"),
            Error::Unanswered { closed } => write!(
                f,
                "the server never answered the handshake ({}); a PORT server answers nothing \
                 to a client whose key is not the client key of that server",
                match closed {
                    true => "it closed the connection",
                    false => "nothing within the handshake timeout",
                }
            ),
            Error::Closed(reason) => write!(f, "connection closed: {reason}"),
            Error::TransportClosed => f.write_str("the TCP stream ended without TERM"),
            Error::Session(e) => write!(f, "{e}"),
            Error::Aborted => f.write_str("this side aborted the connection"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(&**e),
            Error::Session(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::ConnectTimeout => io::ErrorKind::TimedOut,
            Error::Rejected(_) => io::ErrorKind::ConnectionRefused,
            Error::Unanswered { closed: false } => io::ErrorKind::TimedOut,
            Error::Unanswered { closed: true } => io::ErrorKind::ConnectionAborted,
            Error::Closed(CloseReason::KeepaliveTimeout | CloseReason::HandshakeTimeout) => {
                io::ErrorKind::TimedOut
            }
            Error::Closed(_) | Error::TransportClosed | Error::Aborted => {
                io::ErrorKind::ConnectionAborted
            }
            Error::Session(port_core::Error::MessageTooLarge { .. }) => io::ErrorKind::InvalidInput,
            Error::Session(_) => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, e)
    }
}
