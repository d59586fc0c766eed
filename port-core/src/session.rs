//! The sans-IO session interface that drivers run: bytes in, bytes out, events, deadlines, and
//! the application's calls. A [`Connection`](crate::Connection) is one; a stack of protocol
//! layers can be another, so one driver serves both.

use std::time::Instant;

use bytes::Bytes;

use crate::error::{Error, Status};
use crate::event::Event;

/// A sans-IO session a driver can run over a byte stream.
///
/// The contract is the one documented on [`Connection`](crate::Connection): feed input, drain
/// transmits, drain events, sleep until [`poll_timeout`](Session::poll_timeout), and stop when
/// [`is_closed`](Session::is_closed) holds.
pub trait Session {
    /// Feeds bytes read from the transport, in any chunking.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// Bytes to write to the transport, if any.
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes>;
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event>;
    /// The earliest instant at which `handle_timeout` has work to do.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires whatever is due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// Queues one application message.
    fn send(&mut self, data: Bytes) -> Result<(), Error>;
    /// Starts a graceful close.
    fn close(&mut self);
    /// Server: accepts the pending authentication.
    fn accept(&mut self, user_id: u32) -> Result<(), Error>;
    /// Server: rejects the pending authentication.
    fn reject(&mut self, status: Status) -> Result<(), Error>;
    /// True when the session is over and everything it produced was handed out.
    fn is_closed(&self) -> bool;
    /// The transport's byte stream from the peer ended.
    fn handle_transport_end(&mut self, now: Instant);
    /// True once this side's direction ended and everything before its end was handed out
    /// (what a byte-stream `shutdown` waits for).
    fn is_send_closed(&self) -> bool;
    /// True once nothing at all will be handed out any more: the transport's write side can
    /// be shut (TCP FIN).
    fn is_send_finished(&self) -> bool;
    /// True once the peer ended its direction: no more messages will arrive.
    fn is_peer_finished(&self) -> bool;
    /// Bytes queued for sending but not yet handed out (for backpressure).
    fn send_buffered(&self) -> usize;
    /// The largest message `send` accepts.
    fn max_message(&self) -> usize;
    /// The second connection an [`Event::Redirect`] asked for is up: from now on input comes
    /// from it and output goes to it. Sessions that never redirect ignore it.
    fn handle_redirected(&mut self, _now: Instant) {}
    /// Starts or stops a record of the PORT messages sent (see
    /// [`Connection::record_messages`](crate::Connection::record_messages)); sessions without
    /// PORT messages ignore it.
    fn record_messages(&mut self, _on: bool) {}
    /// Takes the recorded messages, oldest first (empty when not recording).
    fn drain_records(&mut self) -> Vec<crate::record::MessageRecord> {
        Vec::new()
    }
    /// True for a session that continues on a second TCP connection after its handshake (the
    /// seaside profile). A listener running one opens the per-user socket before its
    /// application decides, since the user id a server INIT carries is that socket's port.
    fn needs_redirect(&self) -> bool {
        false
    }
}

impl Session for crate::Connection {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        crate::Connection::handle_input(self, now, data)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        crate::Connection::poll_transmit(self, now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        crate::Connection::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        crate::Connection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        crate::Connection::handle_timeout(self, now)
    }
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        crate::Connection::send(self, data)
    }
    fn close(&mut self) {
        crate::Connection::close(self)
    }
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        crate::Connection::accept(self, user_id)
    }
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        crate::Connection::reject(self, status)
    }
    fn is_closed(&self) -> bool {
        crate::Connection::is_closed(self)
    }
    fn handle_transport_end(&mut self, now: Instant) {
        crate::Connection::handle_transport_end(self, now)
    }
    fn is_send_closed(&self) -> bool {
        crate::Connection::is_send_closed(self)
    }
    fn is_send_finished(&self) -> bool {
        // Keepalive frames may follow a TERM: only a closed connection is done sending.
        crate::Connection::is_closed(self)
    }
    fn is_peer_finished(&self) -> bool {
        crate::Connection::is_peer_finished(self)
    }
    fn send_buffered(&self) -> usize {
        crate::Connection::send_buffered(self)
    }
    fn max_message(&self) -> usize {
        crate::Connection::max_message(self)
    }
    fn record_messages(&mut self, on: bool) {
        crate::Connection::record_messages(self, on)
    }
    fn drain_records(&mut self) -> Vec<crate::record::MessageRecord> {
        crate::Connection::drain_records(self)
    }
}
