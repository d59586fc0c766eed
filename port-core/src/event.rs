//! What a connection reports to its application.

use bytes::Bytes;

use crate::error::CloseReason;

/// An event from [`Session::poll_event`](crate::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Server only: a client INIT authenticated, is fresh and not a replay. The application
    /// decides with [`accept`](crate::Session::accept) or
    /// [`reject`](crate::Session::reject) within the handshake timeout.
    Authenticate {
        /// The opaque token from the client INIT.
        token: Bytes,
        /// The client type byte from the client INIT.
        client_type: u8,
    },
    /// The handshake completed; messages may flow.
    Connected {
        /// The user id the server assigned.
        user_id: u32,
    },
    /// One complete application message, boundaries kept.
    Data(Bytes),
    /// The peer sent TERM: it will send no more messages (end of stream). This side may still
    /// send until it calls [`close`](crate::Session::close); `Closed` follows once both
    /// directions ended.
    Finished,
    /// The connection ended. Emitted exactly once; bytes still returned by
    /// [`poll_transmit`](crate::Session::poll_transmit) afterwards should still be written.
    Closed(CloseReason),
}
