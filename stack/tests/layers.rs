//! Stack behaviour with two in-memory endpoints: passthrough, frame, port, stacks of them
//! (nested too), the "up only when every layer below is up" rule, half-close and down
//! propagation, and a stack that loses nothing: messages as large as it says it takes, layers
//! that cut, hold back or refuse.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use common::{Wire, built, closes, data, setups};
use port_core::{CloseReason, Connection, Error, Event, Link, ProtocolError, Session, Status};
use port_stack::layers::{Frame, Passthrough};
use port_stack::{LAYER_WINDOW, Stack};

/// A stack of `layers`, bottom first, named after them.
fn stack(layers: Vec<(&str, Box<dyn Session + Send>)>) -> Stack {
    let named = layers
        .into_iter()
        .map(|(name, layer)| (name.to_owned(), layer))
        .collect();
    Stack::new("test", named).unwrap()
}

fn pass() -> (&'static str, Box<dyn Session + Send>) {
    ("passthrough", Box::new(Passthrough::new()))
}

fn frame() -> (&'static str, Box<dyn Session + Send>) {
    ("frame", Box::new(Frame::new()))
}

/// A connected-to-be pair of PORT connections.
fn port_pair(now: Instant) -> (Box<dyn Session + Send>, Box<dyn Session + Send>) {
    let (client, server) = setups(3);
    let unix = common::UNIX;
    (
        Box::new(Connection::client(&client, now, unix, [1; 32])),
        Box::new(Connection::server(&server, now, unix, [2; 32])),
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
    assert!(w.run_until(|w| data(&w.client_events).len() == sent.len()));
    assert_eq!(data(&w.client_events), sent);
    assert_eq!(data(&w.server_events), sent);
    w.client.close();
    assert!(w.run_until(|w| w.client.is_closed() && w.server.is_closed()));
    assert_eq!(closes(&w.client_events), [CloseReason::Local]);
    assert_eq!(closes(&w.server_events), [CloseReason::Peer]);
}

#[test]
fn passthrough_stack_echoes_and_closes() {
    let now = Instant::now();
    for chunk in [1, 7, 100_000] {
        let mut w = Wire::new(stack(vec![pass()]), stack(vec![pass()]), now, chunk);
        // Passthrough keeps no boundaries of its own: one byte at a time cuts messages up.
        assert!(w.run_until(|w| w.connected()));
        w.client.send(Bytes::from_static(b"hello")).unwrap();
        assert!(w.run_until(|w| data(&w.client_events).concat().len() == 5));
        assert_eq!(data(&w.client_events).concat(), b"hello");
    }
}

#[test]
fn frame_keeps_boundaries_under_any_chunking() {
    let now = Instant::now();
    for chunk in [1, 3, 4096] {
        let c = stack(vec![pass(), frame()]);
        let s = stack(vec![pass(), frame()]);
        echo_all(&mut Wire::new(c, s, now, chunk));
    }
}

#[test]
fn frame_refuses_a_declared_length_over_its_limit() {
    let now = Instant::now();
    let mut s = stack(vec![("frame", Box::new(Frame::with_max_message(10)))]);
    s.handle_link_up(now, Link::STREAM);
    assert_eq!(s.poll_event(), Some(Event::Connected { user_id: 0 }));
    s.handle_input(now, &[0, 0, 0, 11]);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        closes(&events),
        [CloseReason::Protocol(ProtocolError::MessageTooLarge {
            len: 11,
            max: 10
        })]
    );
}

#[test]
fn nested_stacks_compose() {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let inner_c = stack(vec![pass(), ("port", pc)]);
    let inner_s = stack(vec![pass(), ("port", ps)]);
    let c = stack(vec![("inner", Box::new(inner_c)), frame()]);
    let s = stack(vec![("inner", Box::new(inner_s)), frame()]);
    assert_eq!(c.layer_names(), ["frame", "inner"]);
    echo_all(&mut Wire::new(c, s, now, 333));
}

/// PORT over a passthrough on both sides, connected.
fn port_over_passthrough() -> Wire<Stack, Stack> {
    let now = Instant::now();
    let (pc, ps) = port_pair(now);
    let c = stack(vec![pass(), ("port", pc)]);
    let s = stack(vec![pass(), ("port", ps)]);
    let mut w = Wire::new(c, s, now, 1000);
    assert!(w.run_until(|w| w.connected()));
    w
}

#[test]
fn a_failing_layer_takes_the_stack_down_with_its_reason() {
    let mut w = port_over_passthrough();
    // Bytes no PORT peer could have sealed: the port layer fails and says why, at the top.
    w.client.handle_input(w.now, &[0x42; 64]);
    let events: Vec<_> = std::iter::from_fn(|| w.client.poll_event()).collect();
    assert_eq!(
        closes(&events),
        [CloseReason::Protocol(ProtocolError::Authentication)]
    );
    // The port layer will never send again, so the passthrough below ends its direction: the
    // transport may be shut, and the stack closes once the transport's end is seen.
    assert!(w.client.is_send_finished());
    w.client.handle_link_end(w.now, None);
    assert!(w.client.is_closed());
}

#[test]
fn the_transport_ending_reaches_the_top() {
    let mut w = port_over_passthrough();
    w.client.handle_link_end(w.now, None);
    let events: Vec<_> = std::iter::from_fn(|| w.client.poll_event()).collect();
    assert_eq!(closes(&events), [CloseReason::TransportClosed]);
}

// ---------------------------------------------------------------------------------------------
// A stack that loses nothing.

/// Every built-in pair (and triple) of layers, as a spec, with whether it keeps boundaries.
const PAIRS: [&str; 10] = [
    "frame+port",
    "frame+passthrough",
    "frame+seaside",
    "passthrough+port",
    "passthrough+frame",
    "passthrough+seaside",
    "port+passthrough",
    "port+frame",
    "port+seaside",
    "frame+passthrough+port",
];

/// The largest message a stack says it takes goes through whole, on every built-in pair, and
/// one byte more is refused at once, never lost on the way. Frame over port was the case that
/// lost it: frame's 16 MiB limit plus its 4-byte prefix is more than one PORT message.
#[test]
fn a_message_as_large_as_max_message_arrives_on_every_built_in_pair() {
    for spec in PAIRS {
        let now = Instant::now();
        let (client, server) = built(spec, 21, now);
        let mut w = Wire::new(client, server, now, 1 << 20);
        w.echo = false;
        assert!(
            w.run_until(|w| w.connected()),
            "{spec}: never connected: {:?} / {:?}",
            w.client_events,
            w.server_events
        );
        let max = w.client.max_message();
        assert!(max >= 60_000, "{spec}: max_message {max}");
        let too_big = Bytes::from(vec![0u8; max + 1]);
        assert!(
            matches!(w.client.send(too_big), Err(Error::MessageTooLarge { .. })),
            "{spec}: one byte more than max_message must be refused at once"
        );
        let largest = Bytes::from((0..max).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        w.client.send(largest.clone()).unwrap();
        w.client.send(Bytes::from_static(b"next")).unwrap();
        assert!(
            w.run_until(
                |w| data(&w.server_events).len() >= 2 || !closes(&w.client_events).is_empty()
            ),
            "{spec}: nothing arrived"
        );
        assert_eq!(closes(&w.client_events), [], "{spec}");
        let got = data(&w.server_events);
        assert_eq!(got.len(), 2, "{spec}");
        assert!(
            got[0] == largest,
            "{spec}: the largest message arrived changed"
        );
        assert_eq!(got[1], Bytes::from_static(b"next"), "{spec}");
    }
}

/// Passthrough hands messages down as they are, so over `port` it takes what `port` takes;
/// frame makes a byte stream, which the stack cuts to fit, so it keeps its own limit.
#[test]
fn max_message_is_bounded_by_the_layer_below() {
    let now = Instant::now();
    let specs = [
        "port",
        "passthrough+port",
        "frame+port",
        "passthrough+seaside",
    ];
    let limits: Vec<(&str, usize)> = specs
        .into_iter()
        .map(|spec| {
            let (client, server) = built(spec, 22, now);
            let mut w = Wire::new(client, server, now, 1 << 20);
            assert!(w.run_until(|w| w.connected()), "{spec}");
            (spec, w.client.max_message())
        })
        .collect();
    let port = limits[0].1;
    assert_eq!(limits[1], ("passthrough+port", port));
    assert_eq!(
        limits[2],
        ("frame+port", port_stack::layers::DEFAULT_MAX_MESSAGE)
    );
    assert_eq!(
        limits[3],
        ("passthrough+seaside", port_core::seaside::wire::MAX_PAYLOAD)
    );
}

/// What the test sees of a [`Narrow`] layer inside a stack.
#[derive(Default)]
struct Probe {
    /// Bytes handed down and not yet written out.
    held: usize,
    /// The largest piece handed down.
    largest: usize,
    /// Every byte handed down, in order.
    got: Vec<u8>,
    /// Refuse whatever comes (a misbehaving custom layer).
    refuse: bool,
}

/// A bottom layer that takes messages of at most 100 bytes and holds them until the test
/// lets them go: how a small, slow lower layer looks to the stack.
struct Narrow(Arc<Mutex<Probe>>, VecDeque<Event>);

impl Session for Narrow {
    fn handle_link_up(&mut self, _now: Instant, link: Link) {
        self.1.push_back(Event::Connected {
            user_id: link.user_id,
        });
    }
    fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        self.1.push_back(Event::Data(Bytes::copy_from_slice(data)));
    }
    fn handle_link_end(&mut self, _now: Instant, _reason: Option<CloseReason>) {}
    fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        None
    }
    fn is_send_finished(&self) -> bool {
        false
    }
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        let mut probe = self.0.lock().unwrap();
        if probe.refuse {
            return Err(Error::NotConnected);
        }
        probe.held += data.len();
        probe.largest = probe.largest.max(data.len());
        probe.got.extend_from_slice(&data);
        Ok(())
    }
    fn close(&mut self) {}
    fn send_buffered(&self) -> usize {
        self.0.lock().unwrap().held
    }
    fn max_message(&self) -> usize {
        100
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.1.pop_front()
    }
    fn is_send_closed(&self) -> bool {
        false
    }
    fn is_peer_finished(&self) -> bool {
        false
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// A stack of a [`Narrow`] under `top`, up, with the probe into the narrow layer.
fn narrow_stack(top: (&'static str, Box<dyn Session + Send>)) -> (Stack, Arc<Mutex<Probe>>) {
    let probe = Arc::new(Mutex::new(Probe::default()));
    let narrow = Narrow(probe.clone(), VecDeque::new());
    let mut s = stack(vec![("narrow", Box::new(narrow)), top]);
    s.handle_link_up(Instant::now(), Link::STREAM);
    while s.poll_event().is_some() {}
    (s, probe)
}

#[test]
fn byte_stream_output_is_cut_to_what_the_layer_below_takes_and_held_back_while_it_is_full() {
    let now = Instant::now();
    let (mut s, probe) = narrow_stack(frame());
    let message = Bytes::from((0..3 * LAYER_WINDOW).map(|i| i as u8).collect::<Vec<u8>>());
    s.send(message.clone()).unwrap();
    let _ = s.poll_transmit(now);
    {
        let p = probe.lock().unwrap();
        assert_eq!(
            p.largest, 100,
            "pieces are cut to what the layer below takes"
        );
        assert!(
            (LAYER_WINDOW..LAYER_WINDOW + 100).contains(&p.held),
            "the layer below holds its window, not more: {}",
            p.held
        );
    }
    // Nothing is lost inside: what the bottom holds plus what waits above is all of it.
    assert_eq!(s.send_buffered(), message.len() + 4);
    // The bottom writes everything out; the rest comes down, in order, cut the same way.
    for _ in 0..4 {
        probe.lock().unwrap().held = 0;
        let _ = s.poll_transmit(now);
    }
    let p = probe.lock().unwrap();
    assert_eq!(p.got.len(), message.len() + 4);
    assert_eq!(&p.got[..4], &(message.len() as u32).to_be_bytes());
    assert!(p.got[4..] == message[..]);
    assert_eq!(p.largest, 100);
}

#[test]
fn a_refusal_below_closes_the_stack_with_a_reason_instead_of_losing_the_message() {
    let now = Instant::now();
    let (mut s, probe) = narrow_stack(pass());
    s.send(Bytes::from_static(b"fits")).unwrap();
    let _ = s.poll_transmit(now);
    assert_eq!(s.poll_event(), None);
    assert_eq!(probe.lock().unwrap().got, b"fits");
    probe.lock().unwrap().refuse = true;
    s.send(Bytes::from_static(b"lost?")).unwrap();
    let _ = s.poll_transmit(now);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(closes(&events), [CloseReason::LayerRefused]);
    assert_eq!(
        s.send(Bytes::from_static(b"more")),
        Err(Error::Closed(CloseReason::LayerRefused))
    );
    // Reported once.
    let _ = s.poll_transmit(now);
    assert_eq!(s.poll_event(), None);
}

#[test]
fn a_decision_goes_to_the_layer_that_asked_for_it() {
    let now = Instant::now();
    let (client, server) = built("frame+secure", 23, now);
    let mut w = Wire::new(client, server, now, 4096);
    // Take the decision out of the wire's hands: reject.
    let mut server_events = Vec::new();
    for _ in 0..10 {
        while let Some(b) = w.client.poll_transmit(now) {
            w.server.handle_input(now, &b);
        }
        while let Some(e) = w.server.poll_event() {
            if matches!(e, Event::Authenticate { .. }) {
                w.server.reject(Status::Application(4242)).unwrap();
            }
            server_events.push(e);
        }
        while let Some(b) = w.server.poll_transmit(now) {
            w.client.handle_input(now, &b);
        }
    }
    let client_events: Vec<_> = std::iter::from_fn(|| w.client.poll_event()).collect();
    assert_eq!(
        closes(&client_events),
        [CloseReason::Rejected(Status::Application(4242))]
    );
    assert_eq!(w.server.accept(1), Err(Error::NoPendingAuthentication));
}
