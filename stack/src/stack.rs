//! `Stack`: sessions composed as layers, bottom to top, and itself a [`Session`] (so stacks
//! nest, and a driver runs a stack exactly as it runs a bare connection).

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use port_core::{CloseReason, Error, Event, Link, Redirect, Session, Status};

/// How many bytes a layer may hold from the layer above before the stack stops handing it
/// more: what a slow lower layer holds back stays in the layers above it, so every layer's
/// queue is bounded and the driver's send window (over the whole stack) does the rest.
pub const LAYER_WINDOW: usize = 64 * 1024;

/// One layer of a stack and what the stack knows about it.
struct Layer {
    name: String,
    session: Box<dyn Session + Send>,
    /// It reported `Connected`: the layer above may send through it.
    up: bool,
    /// Output taken from it that the layer below has not accepted yet (the rest of a
    /// transmit cut to what the layer below takes per message).
    carry: Option<Bytes>,
    /// The layer below was told to end its direction, because this one will never send again.
    closed_below: bool,
}

impl Layer {
    fn carried(&self) -> usize {
        self.carry.as_ref().map_or(0, Bytes::len)
    }
}

/// Layers bottom (index 0, next to the transport) to top (next to the application).
///
/// Events move up and transmits move down whenever the stack is called. A layer's transmit
/// larger than the layer below takes in one message is cut to fit (layers that hand messages
/// down as they are bound their own limit instead, so only byte-stream output is cut), and a
/// lower layer holding [`LAYER_WINDOW`] bytes or more gets nothing more until it drained. A
/// refusal from a lower layer is never silent: a layer that closed reports its own reason up
/// the stack, and any other refusal ends the stack with [`CloseReason::LayerRefused`].
pub struct Stack {
    name: String,
    layers: Vec<Layer>,
    events: VecDeque<Event>,
    /// The transport (or the outer stack's lower layer) is up.
    link_up: bool,
    /// The layer whose `Authenticate` waits for the application's decision.
    deciding: Option<usize>,
    /// The top layer reported `Finished`.
    peer_finished: bool,
    /// The stack reported `Closed` (once) with this reason.
    closed: Option<CloseReason>,
    /// The latest `now` seen, for calls that take none (`accept`, `reject`, `close`).
    last_now: Option<Instant>,
}

impl Stack {
    /// A stack of named layers, bottom first, not yet linked to anything below (its driver,
    /// or the stack it is a layer of, calls [`handle_link_up`](Session::handle_link_up)).
    /// `None` for an empty list.
    pub fn new(
        name: impl Into<String>,
        layers: Vec<(String, Box<dyn Session + Send>)>,
    ) -> Option<Stack> {
        if layers.is_empty() {
            return None;
        }
        let layers = layers
            .into_iter()
            .map(|(name, session)| Layer {
                name,
                session,
                up: false,
                carry: None,
                closed_below: false,
            })
            .collect();
        Some(Stack {
            name: name.into(),
            layers,
            events: VecDeque::new(),
            link_up: false,
            deciding: None,
            peer_finished: false,
            closed: None,
            last_now: None,
        })
    }

    /// The stack's name (the spec it was built from).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers' names, top first (as in an address).
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().rev().map(|l| l.name.as_str()).collect()
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
                while let Some(event) = self.layers[i].session.poll_event() {
                    moved = true;
                    self.route_up(now, i, event);
                }
            }
            for i in (1..self.layers.len()).rev() {
                moved |= self.move_down(now, i);
            }
            if !moved {
                return;
            }
        }
    }

    /// Hands what layer `i` has to send to layer `i - 1`, while that layer is up and has
    /// room. Returns whether anything moved.
    fn move_down(&mut self, now: Instant, i: usize) -> bool {
        let (lower, upper) = self.layers.split_at_mut(i);
        let (below, above) = (&mut lower[i - 1], &mut upper[0]);
        if !below.up {
            return false;
        }
        let mut moved = false;
        let mut refused = false;
        while below.session.send_buffered() < LAYER_WINDOW {
            let mut bytes = match above.carry.take() {
                Some(bytes) => bytes,
                None => match above.session.poll_transmit(now) {
                    Some(bytes) => bytes,
                    None => break,
                },
            };
            let fits = below.session.max_message().max(1);
            if bytes.len() > fits {
                above.carry = Some(bytes.split_off(fits));
            }
            moved = true;
            match below.session.send(bytes) {
                Ok(()) => {}
                // A layer that closed reports its reason up the stack itself.
                Err(Error::Closed(_)) => above.carry = None,
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        if !above.closed_below && above.carry.is_none() && above.session.is_send_finished() {
            above.closed_below = true;
            below.session.close();
            moved = true;
        }
        if refused {
            self.fail(CloseReason::LayerRefused);
        }
        moved
    }

    fn route_up(&mut self, now: Instant, i: usize, event: Event) {
        match &event {
            Event::Authenticate { .. } => {
                self.deciding = Some(i);
                self.events.push_back(event);
                return;
            }
            Event::Connected { .. } => self.layers[i].up = true,
            _ => {}
        }
        if i == self.top() {
            return self.report(event);
        }
        let max_message = self.layers[i].session.max_message();
        let above = &mut self.layers[i + 1].session;
        match event {
            Event::Connected { user_id } => {
                above.handle_link_up(now, Link::new(user_id, max_message))
            }
            Event::Data(data) => above.handle_input_owned(now, data),
            Event::Finished => above.handle_link_end(now, None),
            Event::Closed(reason) => above.handle_link_end(now, Some(reason)),
            _ => {}
        }
    }

    /// Hands an event of the top layer to the application; `Closed` only once.
    fn report(&mut self, event: Event) {
        match event {
            Event::Finished => self.peer_finished = true,
            Event::Closed(_) if self.closed.is_some() => return,
            Event::Closed(reason) => self.closed = Some(reason),
            _ => {}
        }
        self.events.push_back(event);
    }

    /// Ends the stack for `reason`: the application hears it now, and every layer closes.
    fn fail(&mut self, reason: CloseReason) {
        self.report(Event::Closed(reason));
        for layer in &mut self.layers {
            layer.session.close();
        }
    }

    fn decide(
        &mut self,
        decision: impl FnOnce(&mut dyn Session) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let i = self.deciding.take().ok_or(Error::NoPendingAuthentication)?;
        decision(&mut *self.layers[i].session)?;
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
        let up: Vec<bool> = self.layers.iter().map(|l| l.up).collect();
        f.debug_struct("Stack")
            .field("name", &self.name)
            .field("layers", &self.layer_names())
            .field("up", &up)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Session for Stack {
    fn handle_link_up(&mut self, now: Instant, link: Link) {
        self.link_up = true;
        self.layers[0].session.handle_link_up(now, link);
        self.pump(now);
    }

    /// Input goes to the bottom layer as it is: no copy on the way in.
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.layers[0].session.handle_input(now, data);
        self.pump(now);
    }

    fn handle_input_owned(&mut self, now: Instant, data: Bytes) {
        self.layers[0].session.handle_input_owned(now, data);
        self.pump(now);
    }

    fn handle_link_end(&mut self, now: Instant, reason: Option<CloseReason>) {
        self.layers[0].session.handle_link_end(now, reason);
        self.pump(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.pump(now);
        if !self.link_up {
            return None;
        }
        self.layers[0].session.poll_transmit(now)
    }

    fn is_send_finished(&self) -> bool {
        self.layers[0].session.is_send_finished()
    }

    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        if let Some(reason) = self.closed {
            return Err(Error::Closed(reason));
        }
        let top = self.top();
        self.layers[top].session.send(data)
    }

    fn close(&mut self) {
        let top = self.top();
        self.layers[top].session.close();
        self.pump_again();
    }

    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        self.decide(|layer| layer.accept(user_id))
    }

    fn reject(&mut self, status: Status) -> Result<(), Error> {
        self.decide(|layer| layer.reject(status))
    }

    fn send_buffered(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.session.send_buffered() + l.carried())
            .sum()
    }

    fn max_message(&self) -> usize {
        self.layers[self.top()].session.max_message()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn is_send_closed(&self) -> bool {
        let top = self.top();
        self.layers[top].session.is_send_closed()
            && self.layers[top].carry.is_none()
            && self.layers[..top]
                .iter()
                .all(|l| l.session.send_buffered() == 0 && l.carry.is_none())
    }

    fn is_peer_finished(&self) -> bool {
        self.peer_finished
    }

    fn is_closed(&self) -> bool {
        self.layers[0].session.is_closed()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.layers
            .iter()
            .filter_map(|l| l.session.poll_timeout())
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for layer in &mut self.layers {
            layer.session.handle_timeout(now);
        }
        self.pump(now);
    }

    /// Only the bottom layer owns the transport a driver would replace.
    fn redirect(&self) -> Option<Redirect> {
        self.layers[0].session.redirect()
    }

    /// The counters of the first layer, from the bottom, that has any (the PORT layer).
    fn stats(&self) -> port_core::Stats {
        self.layers
            .iter()
            .map(|l| l.session.stats())
            .find(|s| *s != port_core::Stats::default())
            .unwrap_or_default()
    }
}
