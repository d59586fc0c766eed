//! A session wrapper that lets a [`Tap`] watch the bytes and messages crossing a session's
//! transport, for `echotest`'s byte counters and its `--record` file. Every other call is
//! passed through unchanged, so the wrapped session behaves exactly as the bare one.

use std::time::Instant;

use bytes::Bytes;
use port_core::record::MessageRecord;
use port_core::{Event, Session, Status};

/// What a [`Tapped`] session reports to. Both hooks default to doing nothing.
pub trait Tap: Send {
    /// Bytes the transport handed to the session.
    fn input(&mut self, _data: &[u8]) {}
    /// After each `poll_transmit`: the bytes it returned, and the session (to drain its record).
    fn transmit(&mut self, _session: &mut dyn Session, _bytes: Option<&Bytes>) {}
}

/// A session watched by a [`Tap`].
pub struct Tapped<T> {
    inner: Box<dyn Session + Send>,
    tap: T,
}

impl<T: Tap> Tapped<T> {
    /// Wraps `inner`, reporting to `tap`.
    pub fn new(inner: Box<dyn Session + Send>, tap: T) -> Tapped<T> {
        Tapped { inner, tap }
    }
}

impl<T: Tap> Session for Tapped<T> {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.tap.input(data);
        self.inner.handle_input(now, data);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let bytes = self.inner.poll_transmit(now);
        self.tap.transmit(self.inner.as_mut(), bytes.as_ref());
        bytes
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.inner.poll_event()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    fn send(&mut self, data: Bytes) -> Result<(), port_core::Error> {
        self.inner.send(data)
    }
    fn close(&mut self) {
        self.inner.close();
    }
    fn accept(&mut self, user_id: u32) -> Result<(), port_core::Error> {
        self.inner.accept(user_id)
    }
    fn reject(&mut self, status: Status) -> Result<(), port_core::Error> {
        self.inner.reject(status)
    }
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
    fn handle_transport_end(&mut self, now: Instant) {
        self.inner.handle_transport_end(now);
    }
    fn is_send_closed(&self) -> bool {
        self.inner.is_send_closed()
    }
    fn is_send_finished(&self) -> bool {
        self.inner.is_send_finished()
    }
    fn is_peer_finished(&self) -> bool {
        self.inner.is_peer_finished()
    }
    fn send_buffered(&self) -> usize {
        self.inner.send_buffered()
    }
    fn max_message(&self) -> usize {
        self.inner.max_message()
    }
    fn handle_redirected(&mut self, now: Instant) {
        self.inner.handle_redirected(now);
    }
    fn needs_redirect(&self) -> bool {
        self.inner.needs_redirect()
    }
    fn record_messages(&mut self, on: bool) {
        self.inner.record_messages(on);
    }
    fn drain_records(&mut self) -> Vec<MessageRecord> {
        self.inner.drain_records()
    }
}
