//! Layer and stack behaviour with two in-memory endpoints: passthrough, frame, port, stacks of
//! them (nested too), the "up only when every layer below is up" rule, half-close and down
//! propagation.

use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::{
    ClientConfig, CloseReason, Config, Event, ProtocolError, ServerConfig, ServerKey, Session,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stack::layers::{Frame, Passthrough, PortLayer};
use stack::{Layer, Stack};

const UNIX: Duration = Duration::from_secs(1_800_000_000);

/// Two sessions joined by in-memory byte streams, cut into `chunk`-byte pieces, on a virtual
/// clock that jumps to the next deadline.
struct Wire<C, S> {
    client: C,
    server: S,
    now: Instant,
    chunk: usize,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    /// Each side's FIN was delivered to the other (once it had nothing more to send).
    client_fin: bool,
    server_fin: bool,
    steps: usize,
}

impl<C: Session, S: Session> Wire<C, S> {
    fn new(client: C, server: S, now: Instant, chunk: usize) -> Self {
        Wire {
            client,
            server,
            now,
            chunk,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_fin: false,
            server_fin: false,
            steps: 0,
        }
    }

    /// One round; false when nothing can happen any more.
    fn step(&mut self) -> bool {
        self.steps += 1;
        assert!(self.steps < 100_000, "step limit: livelock?");
        let mut moved = false;
        while let Some(bytes) = self.client.poll_transmit(self.now) {
            moved = true;
            for piece in bytes.chunks(self.chunk) {
                self.server.handle_input(self.now, piece);
            }
        }
        while let Some(bytes) = self.server.poll_transmit(self.now) {
            moved = true;
            for piece in bytes.chunks(self.chunk) {
                self.client.handle_input(self.now, piece);
            }
        }
        // What a driver does: a side that will never send again shuts its write half, and the
        // other side sees the end of the stream.
        if !self.client_fin && self.client.is_send_finished() {
            self.client_fin = true;
            self.server.handle_transport_end(self.now);
            moved = true;
        }
        if !self.server_fin && self.server.is_send_finished() {
            self.server_fin = true;
            self.client.handle_transport_end(self.now);
            moved = true;
        }
        while let Some(event) = self.server.poll_event() {
            moved = true;
            match &event {
                Event::Authenticate { .. } => self.server.accept(7).unwrap(),
                Event::Data(m) => {
                    let _ = self.server.send(m.clone());
                }
                Event::Finished => self.server.close(),
                _ => {}
            }
            self.server_events.push(event);
        }
        while let Some(event) = self.client.poll_event() {
            moved = true;
            self.client_events.push(event);
        }
        if moved {
            return true;
        }
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    fn run_until(&mut self, done: impl Fn(&Self) -> bool) -> bool {
        while !done(self) {
            if !self.step() {
                return done(self);
            }
        }
        true
    }

    fn connected(&self) -> bool {
        self.client_events
            .iter()
            .any(|e| matches!(e, Event::Connected { .. }))
    }

    fn client_data(&self) -> Vec<Bytes> {
        data(&self.client_events)
    }
}

fn data(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[Event]) -> Option<CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(r) => Some(*r),
        _ => None,
    })
}

fn setups() -> (ClientConfig, ServerConfig) {
    let key = ServerKey::generate(&mut ChaCha20Rng::from_seed([3; 32]));
    let config = Config::default();
    let client = ClientConfig::new(config.clone(), key.client_key(), "tok").unwrap();
    (client, ServerConfig::new(config, key))
}

/// Builds a stack (bottom first) over a connected transport.
fn stack(now: Instant, layers: Vec<Box<dyn Layer>>) -> Stack {
    Stack::over_transport("test", layers, now).unwrap()
}

fn port_pair(now: Instant) -> (PortLayer, PortLayer) {
    let (client, server) = setups();
    (
        PortLayer::client(&client, now, UNIX, [1; 32]),
        PortLayer::server(&server, now, UNIX, [2; 32]),
    )
}

fn messages() -> Vec<Bytes> {
    (0..20u8)
        .map(|i| Bytes::from(vec![i; usize::from(i) * 97]))
        .collect()
}

/// Client sends every message, the server echoes, the client closes: all arrive once, in
/// order, and both ends close cleanly.
fn echo_all<C: Session, S: Session>(w: &mut Wire<C, S>) {
    assert!(w.run_until(|w| w.connected()), "never connected");
    let sent = messages();
    for m in &sent {
        w.client.send(m.clone()).unwrap();
    }
    assert!(w.run_until(|w| w.client_data().len() == sent.len()));
    assert_eq!(w.client_data(), sent);
    assert_eq!(data(&w.server_events), sent);
    w.client.close();
    assert!(w.run_until(|w| w.client.is_closed() && w.server.is_closed()));
    assert_eq!(closed(&w.client_events), Some(CloseReason::Local));
    assert_eq!(closed(&w.server_events), Some(CloseReason::Peer));
}

#[test]
fn passthrough_stack_echoes_and_closes() {
    let now = Instant::now();
    for chunk in [1, 7, 100_000] {
        let c = stack(now, vec![Box::new(Passthrough::new())]);
        let s = stack(now, vec![Box::new(Passthrough::new())]);
        let mut w = Wire::new(c, s, now, chunk);
        // Passthrough keeps no boundaries of its own: one byte at a time cuts messages up.
        assert!(w.run_until(|w| w.connected()));
        Session::send(&mut w.client, Bytes::from_static(b"hello")).unwrap();
        assert!(w.run_until(|w| w.client_data().concat().len() == 5));
        assert_eq!(w.client_data().concat(), b"hello");
    }
}

#[test]
fn frame_keeps_boundaries_under_any_chunking() {
    let now = Instant::now();
    for chunk in [1, 3, 4096] {
        let c = stack(
            now,
            vec![Box::new(Passthrough::new()), Box::new(Frame::new())],
        );
        let s = stack(
            now,
            vec![Box::new(Passthrough::new()), Box::new(Frame::new())],
        );
        echo_all(&mut Wire::new(c, s, now, chunk));
    }
}

#[test]
fn frame_refuses_a_declared_length_over_its_limit() {
    let now = Instant::now();
    let mut s = stack(now, vec![Box::new(Frame::with_max_message(10))]);
    let _ = Session::poll_event(&mut s);
    Session::handle_input(&mut s, now, &[0, 0, 0, 11]);
    let events: Vec<_> = std::iter::from_fn(|| Session::poll_event(&mut s)).collect();
    assert_eq!(
        closed(&events),
        Some(CloseReason::Protocol(ProtocolError::MessageTooLarge {
            len: 11,
            max: 10
        }))
    );
}

#[test]
fn port_over_passthrough_is_up_only_after_the_port_handshake() {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let mut c = stack(now, vec![Box::new(Passthrough::new()), Box::new(pc)]);
    let mut s = stack(now, vec![Box::new(Passthrough::new()), Box::new(ps)]);
    // The passthrough below is up at once, but the application hears nothing until PORT is.
    let early: Vec<_> = std::iter::from_fn(|| Session::poll_event(&mut c)).collect();
    assert!(
        early.is_empty(),
        "client reported {early:?} before the handshake"
    );
    let init = Session::poll_transmit(&mut c, now).expect("client INIT");
    Session::handle_input(&mut s, now, &init);
    assert!(matches!(
        Session::poll_event(&mut s),
        Some(Event::Authenticate { .. })
    ));
    Session::accept(&mut s, 9).unwrap();
    assert_eq!(
        Session::poll_event(&mut s),
        Some(Event::Connected { user_id: 9 })
    );
    assert_eq!(
        Session::poll_event(&mut c),
        None,
        "still waiting for the server INIT"
    );
    let reply = Session::poll_transmit(&mut s, now).expect("server INIT");
    Session::handle_input(&mut c, now, &reply);
    assert_eq!(
        Session::poll_event(&mut c),
        Some(Event::Connected { user_id: 9 })
    );
    let mut w = Wire::new(c, s, now, 1000);
    w.client_events.push(Event::Connected { user_id: 9 });
    echo_all(&mut w);
}

#[test]
fn nested_stacks_compose() {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let inner_c = Stack::new("inner", vec![Box::new(Passthrough::new()), Box::new(pc)]).unwrap();
    let inner_s = Stack::new("inner", vec![Box::new(Passthrough::new()), Box::new(ps)]).unwrap();
    let c = stack(now, vec![Box::new(inner_c), Box::new(Frame::new())]);
    let s = stack(now, vec![Box::new(inner_s), Box::new(Frame::new())]);
    assert_eq!(c.layer_names(), ["frame", "inner"]);
    echo_all(&mut Wire::new(c, s, now, 333));
}

#[test]
fn a_failing_layer_takes_the_stack_down_with_its_reason() {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let c = stack(now, vec![Box::new(Passthrough::new()), Box::new(pc)]);
    let s = stack(now, vec![Box::new(Passthrough::new()), Box::new(ps)]);
    let mut w = Wire::new(c, s, now, 1000);
    assert!(w.run_until(|w| w.connected()));
    // Bytes no PORT peer could have sealed: the port layer fails and says why, at the top.
    Session::handle_input(&mut w.client, w.now, &[0x42; 64]);
    let events: Vec<_> = std::iter::from_fn(|| Session::poll_event(&mut w.client)).collect();
    assert_eq!(
        closed(&events),
        Some(CloseReason::Protocol(ProtocolError::Authentication))
    );
    // The port layer will never send again, so the passthrough below ends its direction: the
    // transport may be shut, and the stack closes once the transport's end is seen.
    assert!(Session::is_send_finished(&w.client));
    Session::handle_transport_end(&mut w.client, w.now);
    assert!(Session::is_closed(&w.client));
}

#[test]
fn the_transport_ending_reaches_the_top() {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let c = stack(now, vec![Box::new(Passthrough::new()), Box::new(pc)]);
    let s = stack(now, vec![Box::new(Passthrough::new()), Box::new(ps)]);
    let mut w = Wire::new(c, s, now, 1000);
    assert!(w.run_until(|w| w.connected()));
    Session::handle_transport_end(&mut w.client, w.now);
    let events: Vec<_> = std::iter::from_fn(|| Session::poll_event(&mut w.client)).collect();
    assert_eq!(closed(&events), Some(CloseReason::TransportClosed));
}
