//! `seaside`: a session of the seaside wire profile (upstream SeasideVPN's PORT) as a layer.
//! It moves to a second TCP connection after its handshake, so it is always the bottom layer.

use std::time::Instant;

use bytes::Bytes;
use port_core::seaside::{ClientConfig, Connection, ServerConfig};
use port_core::{CloseReason, Error, Event, Seed, Status};

use crate::layer::Layer;

/// A seaside session (client or listener side) as a layer.
#[derive(Debug)]
pub struct SeasideLayer {
    conn: Connection,
}

impl SeasideLayer {
    /// The client side: its INIT is queued at once.
    pub fn client(setup: &ClientConfig, now: Instant, seed: Seed) -> Self {
        SeasideLayer {
            conn: Connection::client(setup, now, seed),
        }
    }

    /// The listener side.
    pub fn server(setup: &ServerConfig, now: Instant, seed: Seed) -> Self {
        SeasideLayer {
            conn: Connection::server(setup, now, seed),
        }
    }

    /// The session inside.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Layer for SeasideLayer {
    fn name(&self) -> &str {
        "seaside"
    }
    fn link_up(&mut self, _now: Instant, _user_id: u32) {
        // The INIT is already queued; the stack pulls it now that there is somewhere to send it.
    }
    fn input(&mut self, now: Instant, data: Bytes) {
        self.conn.handle_input(now, &data);
    }
    fn link_finished(&mut self, now: Instant) {
        self.conn.handle_transport_end(now);
    }
    fn link_down(&mut self, now: Instant, _reason: CloseReason) {
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
        // No keepalive follows a seaside TERM.
        self.conn.is_send_closed()
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
    fn needs_redirect(&self) -> bool {
        true
    }
    fn link_redirected(&mut self, now: Instant) {
        self.conn.handle_redirected(now);
    }
}
