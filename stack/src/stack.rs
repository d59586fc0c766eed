//! `Stack`: layers composed bottom to top, itself a [`Layer`] (stacks nest) and a
//! [`Session`] (a driver runs it over a transport like a bare PORT connection).

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use port_core::{CloseReason, Error, Event, Session, Status};

use crate::layer::Layer;

/// Layers bottom (index 0, next to the transport) to top (next to the application).
pub struct Stack {
    layers: Vec<Box<dyn Layer>>,
    /// `up[i]`: layer `i` reported `Connected`, so layer `i + 1` may send through it.
    up: Vec<bool>,
    /// The transport (or the outer stack's lower layer) is up.
    link_up: bool,
    /// `closed_below[i]`: layer `i - 1` was told to end its direction because layer `i` will
    /// never send again.
    closed_below: Vec<bool>,
    events: VecDeque<Event>,
    /// The layer whose `Authenticate` waits for the application's decision.
    deciding: Option<usize>,
    /// The top layer reported `Finished`.
    peer_finished: bool,
    /// The latest `now` seen, for calls that take none (`accept`, `reject`, `close`).
    last_now: Option<Instant>,
    name: String,
}

impl Stack {
    /// A stack of `layers`, bottom first, not yet linked to anything below. Empty stacks are
    /// refused by returning `None`.
    pub fn new(name: impl Into<String>, layers: Vec<Box<dyn Layer>>) -> Option<Stack> {
        if layers.is_empty() {
            return None;
        }
        let n = layers.len();
        Some(Stack {
            layers,
            up: vec![false; n],
            link_up: false,
            closed_below: vec![false; n],
            events: VecDeque::new(),
            deciding: None,
            peer_finished: false,
            last_now: None,
            name: name.into(),
        })
    }

    /// A stack over a transport that is already connected (what a driver runs).
    pub fn over_transport(
        name: impl Into<String>,
        layers: Vec<Box<dyn Layer>>,
        now: Instant,
    ) -> Option<Stack> {
        let mut stack = Stack::new(name, layers)?;
        Layer::link_up(&mut stack, now, 0);
        Some(stack)
    }

    /// The layers' names, top first (as in an address).
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().rev().map(|l| l.name()).collect()
    }

    fn top(&self) -> usize {
        self.layers.len() - 1
    }

    /// Moves events up and transmits down until nothing moves.
    fn pump(&mut self, now: Instant) {
        self.last_now = Some(now);
        loop {
            let mut moved = false;
            for i in 0..self.layers.len() {
                while let Some(event) = self.layers[i].poll_event() {
                    moved = true;
                    self.route_up(now, i, event);
                }
            }
            for i in (1..self.layers.len()).rev() {
                if !self.up[i - 1] {
                    continue;
                }
                while let Some(bytes) = self.layers[i].poll_transmit(now) {
                    moved = true;
                    // A lower layer that refuses has failed or closed; its own `Closed`
                    // reaches the top on the next round.
                    let _ = self.layers[i - 1].send(bytes);
                }
                if !self.closed_below[i] && self.layers[i].is_send_finished() {
                    self.closed_below[i] = true;
                    self.layers[i - 1].close();
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn route_up(&mut self, now: Instant, i: usize, event: Event) {
        if let Event::Authenticate { .. } = event {
            self.deciding = Some(i);
            self.events.push_back(event);
            return;
        }
        if let Event::Redirect { .. } = event {
            // Only the bottom layer owns the transport the driver would replace; the registry
            // never builds a redirecting layer anywhere else.
            if i == 0 {
                self.events.push_back(event);
            }
            return;
        }
        if let Event::Connected { .. } = event {
            self.up[i] = true;
        }
        if i == self.top() {
            self.peer_finished |= matches!(event, Event::Finished);
            self.events.push_back(event);
            return;
        }
        let above = &mut self.layers[i + 1];
        match event {
            Event::Connected { user_id } => above.link_up(now, user_id),
            Event::Data(data) => above.input(now, data),
            Event::Finished => above.link_finished(now),
            Event::Closed(reason) => above.link_down(now, reason),
            _ => {}
        }
    }

    fn decide(
        &mut self,
        decision: impl FnOnce(&mut dyn Layer) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let i = self.deciding.take().ok_or(Error::NoPendingAuthentication)?;
        decision(&mut *self.layers[i])?;
        self.pump_again();
        Ok(())
    }

    /// Pumps at the latest known instant, after a call that takes no `now`.
    fn pump_again(&mut self) {
        if let Some(now) = self.last_now {
            self.pump(now);
        }
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.name)
            .field("layers", &self.layer_names())
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

impl Layer for Stack {
    fn name(&self) -> &str {
        &self.name
    }
    fn link_up(&mut self, now: Instant, user_id: u32) {
        self.link_up = true;
        self.layers[0].link_up(now, user_id);
        self.pump(now);
    }
    fn input(&mut self, now: Instant, data: Bytes) {
        self.layers[0].input(now, data);
        self.pump(now);
    }
    fn link_finished(&mut self, now: Instant) {
        self.layers[0].link_finished(now);
        self.pump(now);
    }
    fn link_down(&mut self, now: Instant, reason: CloseReason) {
        self.layers[0].link_down(now, reason);
        self.pump(now);
    }
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        let top = self.top();
        self.layers[top].send(data)
    }
    fn close(&mut self) {
        let top = self.top();
        self.layers[top].close();
        self.pump_again();
    }
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        self.decide(|layer| layer.accept(user_id))
    }
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        self.decide(|layer| layer.reject(status))
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.pump(now);
        if !self.link_up {
            return None;
        }
        self.layers[0].poll_transmit(now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.layers.iter().filter_map(|l| l.poll_timeout()).min()
    }
    fn handle_timeout(&mut self, now: Instant) {
        for layer in &mut self.layers {
            layer.handle_timeout(now);
        }
        self.pump(now);
    }
    fn is_send_closed(&self) -> bool {
        let top = self.top();
        self.layers[top].is_send_closed()
            && self.layers[..top].iter().all(|l| l.send_buffered() == 0)
    }
    fn is_send_finished(&self) -> bool {
        self.layers[0].is_send_finished()
    }
    fn is_closed(&self) -> bool {
        self.layers[0].is_closed()
    }
    fn send_buffered(&self) -> usize {
        self.layers.iter().map(|l| l.send_buffered()).sum()
    }
    fn max_message(&self) -> usize {
        self.layers[self.top()].max_message()
    }
    fn needs_redirect(&self) -> bool {
        self.layers[0].needs_redirect()
    }
    fn link_redirected(&mut self, now: Instant) {
        self.layers[0].link_redirected(now);
        self.pump(now);
    }
    fn record_messages(&mut self, on: bool) {
        for layer in &mut self.layers {
            layer.record_messages(on);
        }
    }
    fn drain_records(&mut self, out: &mut Vec<port_core::record::MessageRecord>) {
        for layer in &mut self.layers {
            layer.drain_records(out);
        }
    }
}

impl Session for Stack {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        Layer::input(self, now, Bytes::copy_from_slice(data));
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        Layer::poll_transmit(self, now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Layer::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Layer::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Layer::handle_timeout(self, now)
    }
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        Layer::send(self, data)
    }
    fn close(&mut self) {
        Layer::close(self)
    }
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        Layer::accept(self, user_id)
    }
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        Layer::reject(self, status)
    }
    fn is_closed(&self) -> bool {
        Layer::is_closed(self)
    }
    fn handle_transport_end(&mut self, now: Instant) {
        Layer::link_finished(self, now)
    }
    fn is_send_closed(&self) -> bool {
        Layer::is_send_closed(self)
    }
    fn is_send_finished(&self) -> bool {
        Layer::is_send_finished(self)
    }
    fn is_peer_finished(&self) -> bool {
        self.peer_finished
    }
    fn send_buffered(&self) -> usize {
        Layer::send_buffered(self)
    }
    fn max_message(&self) -> usize {
        Layer::max_message(self)
    }
    fn handle_redirected(&mut self, now: Instant) {
        Layer::link_redirected(self, now)
    }
    fn needs_redirect(&self) -> bool {
        Layer::needs_redirect(self)
    }
    fn record_messages(&mut self, on: bool) {
        Layer::record_messages(self, on)
    }
    fn drain_records(&mut self) -> Vec<port_core::record::MessageRecord> {
        let mut out = Vec::new();
        Layer::drain_records(self, &mut out);
        out
    }
}
