//! `port`: a PORT/1 connection as a layer. Its "up" is the end of the PORT handshake; its
//! "down" carries PORT's close reason.

use std::time::Instant;

use bytes::Bytes;
use port_core::{ClientConfig, CloseReason, Connection, Error, Event, Seed, ServerConfig, Status};

use crate::layer::Layer;

/// A PORT connection (client or server) as a layer.
#[derive(Debug)]
pub struct PortLayer {
    conn: Connection,
}

impl PortLayer {
    /// The client side: its INIT goes out once the layer below is up.
    pub fn client(
        setup: &ClientConfig,
        now: Instant,
        unix_time: std::time::Duration,
        seed: Seed,
    ) -> Self {
        Self::wrap(Connection::client(setup, now, unix_time, seed))
    }

    /// The server side.
    pub fn server(
        setup: &ServerConfig,
        now: Instant,
        unix_time: std::time::Duration,
        seed: Seed,
    ) -> Self {
        Self::wrap(Connection::server(setup, now, unix_time, seed))
    }

    /// Wraps an existing connection.
    pub fn wrap(conn: Connection) -> Self {
        PortLayer { conn }
    }

    /// The PORT connection inside.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Layer for PortLayer {
    fn name(&self) -> &str {
        "port"
    }
    fn link_up(&mut self, _now: Instant, _user_id: u32) {
        // The INIT is already queued; the stack pulls it now that there is somewhere to send it.
    }
    fn input(&mut self, now: Instant, data: Bytes) {
        self.conn.handle_input(now, &data);
    }
    fn link_finished(&mut self, now: Instant) {
        // PORT ends directions with its own TERM; the layer below ending first is the
        // transport ending under us.
        self.conn.handle_transport_end(now);
    }
    fn link_down(&mut self, now: Instant, _reason: CloseReason) {
        // Reported as `TransportClosed`; a server still draining a prober keeps its deadline.
        self.conn.handle_transport_end(now);
    }
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        self.conn.send(data)
    }
    fn close(&mut self) {
        self.conn.close();
    }
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        self.conn.accept(user_id)
    }
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        self.conn.reject(status)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.conn.poll_transmit(now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.conn.poll_event()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }
    fn is_send_closed(&self) -> bool {
        self.conn.is_send_closed()
    }
    fn is_send_finished(&self) -> bool {
        self.conn.is_closed()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    fn send_buffered(&self) -> usize {
        self.conn.send_buffered()
    }
    fn max_message(&self) -> usize {
        self.conn.max_message()
    }
    fn record_messages(&mut self, on: bool) {
        self.conn.record_messages(on);
    }
    fn drain_records(&mut self, out: &mut Vec<port_core::record::MessageRecord>) {
        out.extend(self.conn.drain_records());
    }
}
