//! The seaside session in memory, client against listener, on a virtual clock: the two-connection
//! flow, echo under every chunking and every split, rejection, deadlines, tampering, misuse.

use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::Session;
use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey, wire};
use port_core::{
    CloseReason, Config, Error, Event, InitRefusal, Link, ProtocolError, Redirect, Status,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const PORT: u16 = 41_000;
const TOKEN: &[u8] = b"sample user token";

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([4; 32]))
}

fn config() -> Config {
    Config::builder()
        .handshake_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What the listener's application answers.
#[derive(Clone, Copy)]
enum Decision {
    Accept(u32),
    Reject(Status),
    Hold,
}

/// Two sessions joined by in-memory streams. `redirect` says whether the "driver" brings up the
/// second connection when asked.
struct Net {
    client: Connection,
    server: Connection,
    now: Instant,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Every byte written, per direction, in order.
    client_wrote: Vec<u8>,
    server_wrote: Vec<u8>,
    decision: Decision,
    redirect: bool,
    echo: bool,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    /// What each side asked its "driver" through `redirect`, each change once.
    client_asked: Vec<Redirect>,
    server_asked: Vec<Redirect>,
    /// How many client events had come when the client moved to the second connection.
    client_moved_after: Option<usize>,
}

impl Net {
    fn new(decision: Decision) -> Net {
        let now = Instant::now();
        let key = key();
        let client_setup = ClientConfig::new(config(), key.client_key(), TOKEN).unwrap();
        let server_setup = ServerConfig::new(config(), key);
        Net {
            client: Connection::client(&client_setup, now, [1; 32]),
            server: Connection::server(&server_setup, now, [2; 32]),
            now,
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_wrote: Vec::new(),
            server_wrote: Vec::new(),
            decision,
            redirect: true,
            echo: true,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_asked: Vec::new(),
            server_asked: Vec::new(),
            client_moved_after: None,
        }
    }

    /// Moves bytes (cut by `cut`, which returns the next piece length) and handles events
    /// until nothing moves.
    fn run(&mut self, cut: &mut dyn FnMut(usize) -> usize) {
        for _ in 0..2_000_000 {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit(self.now) {
                self.client_wrote.extend_from_slice(&b);
                self.to_server.extend_from_slice(&b);
            }
            while let Some(b) = self.server.poll_transmit(self.now) {
                self.server_wrote.extend_from_slice(&b);
                self.to_client.extend_from_slice(&b);
            }
            if !self.to_server.is_empty() {
                let n = cut(self.to_server.len()).clamp(1, self.to_server.len());
                let piece: Vec<u8> = self.to_server.drain(..n).collect();
                self.server.handle_input(self.now, &piece);
                moved = true;
            }
            if !self.to_client.is_empty() {
                let n = cut(self.to_client.len()).clamp(1, self.to_client.len());
                let piece: Vec<u8> = self.to_client.drain(..n).collect();
                self.client.handle_input(self.now, &piece);
                moved = true;
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                match &event {
                    Event::Authenticate { .. } => {
                        // A driver opens the per-user socket before the decision.
                        if let Some(ask) = self.server.redirect() {
                            note(&mut self.server_asked, ask);
                        }
                        self.decide()
                    }
                    Event::Data(m) if self.echo => self.server.send(m.clone()).unwrap(),
                    Event::Finished => self.server.close(),
                    _ => {}
                }
                self.server_events.push(event);
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.client_events.push(event);
            }
            if let Some(ask) = self.server.redirect() {
                note(&mut self.server_asked, ask);
                if matches!(ask, Redirect::Move { .. }) && self.redirect {
                    self.server.handle_link_up(self.now, Link::STREAM);
                    moved = true;
                }
            }
            if let Some(ask) = self.client.redirect() {
                note(&mut self.client_asked, ask);
                if matches!(ask, Redirect::Move { .. }) && self.redirect {
                    // The "driver" connected to the port: the first connection is gone.
                    self.to_client.clear();
                    self.client.handle_link_up(self.now, Link::STREAM);
                    self.client_moved_after = Some(self.client_events.len());
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("livelock");
    }

    fn decide(&mut self) {
        match self.decision {
            Decision::Accept(id) => self.server.accept(id).unwrap(),
            Decision::Reject(status) => self.server.reject(status).unwrap(),
            Decision::Hold => {}
        }
    }

    fn run_whole(&mut self) {
        self.run(&mut |n| n);
    }

    /// Jumps the clock to the next deadline of either side and fires it.
    fn advance(&mut self) -> Instant {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a deadline");
        self.now = next.max(self.now);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.run_whole();
        self.now
    }

    fn client_data(&self) -> Vec<Bytes> {
        data_of(&self.client_events)
    }
}

/// Appends `ask` unless it is what was asked last.
fn note(asked: &mut Vec<Redirect>, ask: Redirect) {
    if asked.last() != Some(&ask) {
        asked.push(ask);
    }
}

fn data_of(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn closed_of(events: &[Event]) -> Vec<CloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn messages() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"hello"),
        Bytes::new(),
        Bytes::from(vec![7u8; 1400]),
        Bytes::from((0..wire::MAX_PAYLOAD).map(|i| i as u8).collect::<Vec<u8>>()),
    ]
}

fn echo_with(cut: &mut dyn FnMut(usize) -> usize) -> Net {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.run(cut);
    assert!(net.client.is_connected(), "{:?}", net.client_events);
    assert_eq!(net.client.user_id(), Some(PORT));
    for m in messages() {
        net.client.send(m).unwrap();
    }
    net.run(cut);
    assert_eq!(net.client_data(), messages());
    net.client.close();
    net.run(cut);
    assert!(net.client.is_closed() && net.server.is_closed());
    assert_eq!(closed_of(&net.client_events), [CloseReason::Local]);
    assert_eq!(closed_of(&net.server_events), [CloseReason::Peer]);
    net
}

#[test]
fn echo_over_the_second_connection_whole_and_byte_by_byte() {
    let net = echo_with(&mut |n| n);
    // The client learns the port before it is connected, and is connected only on the second
    // connection; the listener asked for its per-user socket before the decision, then to
    // move there too.
    assert_eq!(net.client_asked, [Redirect::Move { port: PORT }]);
    assert_eq!(
        net.server_asked,
        [Redirect::Listen, Redirect::Move { port: PORT }]
    );
    let connected = net
        .client_events
        .iter()
        .position(|e| matches!(e, Event::Connected { .. }))
        .unwrap();
    assert_eq!(
        net.client_events[connected],
        Event::Connected {
            user_id: PORT.into()
        }
    );
    assert!(net.client_moved_after.unwrap() <= connected);
    echo_with(&mut |_| 1);
}

#[test]
fn echo_with_random_chunking() {
    for seed in 0..8u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        echo_with(&mut |_| 1 + (rng.next_u32() % 700) as usize);
    }
}

#[test]
fn sizes_on_the_wire_are_upstreams() {
    let key = key();
    let client_setup = ClientConfig::new(config(), key.client_key(), TOKEN).unwrap();
    let server_setup = ServerConfig::new(config(), key);
    let now = Instant::now();
    let t = TOKEN.len();
    let mut seen = Vec::new();
    for seed in 0..40u8 {
        let mut client = Connection::client(&client_setup, now, [seed; 32]);
        let mut server = Connection::server(&server_setup, now, [seed; 32]);
        let init = client.poll_transmit(now).unwrap();
        assert!(
            (121 + t..=121 + t + 512).contains(&init.len()),
            "{}",
            init.len()
        );
        server.handle_input(now, &init);
        assert!(matches!(
            server.poll_event(),
            Some(Event::Authenticate { .. })
        ));
        server.accept(PORT.into()).unwrap();
        let reply = server.poll_transmit(now).unwrap();
        assert!((46..=46 + 512).contains(&reply.len()), "{}", reply.len());
        client.handle_input(now, &reply);
        client.handle_link_up(now, Link::STREAM);
        client.send("hello".into()).unwrap();
        let data = client.poll_transmit(now).unwrap();
        assert!(
            (85 + 5..=85 + 5 + 512).contains(&data.len()),
            "{}",
            data.len()
        );
        client.close();
        let term = client.poll_transmit(now).unwrap();
        assert!((45..=45 + 512).contains(&term.len()), "{}", term.len());
        seen.push(init.len());
    }
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() > 20, "tails are drawn per message: {seen:?}");
}

/// Every piece delivered is cut to at most `at` bytes, so each message (client INIT, server
/// INIT, DATA and TERM both ways, at most 121 + token + 512 bytes here) is split at byte `at`.
#[test]
fn a_split_of_any_message_at_any_byte_works() {
    let longest = 121 + TOKEN.len() + 512;
    for at in 1..=longest {
        let mut net = Net::new(Decision::Accept(PORT.into()));
        let mut cut = move |n: usize| n.min(at);
        net.run(&mut cut);
        assert!(net.client.is_connected(), "split at {at}");
        net.client.send("hello".into()).unwrap();
        net.run(&mut cut);
        assert_eq!(
            net.client_data(),
            [Bytes::from_static(b"hello")],
            "split at {at}"
        );
        net.client.close();
        net.run(&mut cut);
        assert!(
            net.client.is_closed() && net.server.is_closed(),
            "split at {at}"
        );
    }
}

#[test]
fn same_seeds_same_bytes() {
    let a = echo_with(&mut |n| n);
    let b = echo_with(&mut |_| 3);
    assert!(
        a.client_wrote == b.client_wrote,
        "the client's bytes depend on the chunking"
    );
    assert!(
        a.server_wrote == b.server_wrote,
        "the listener's bytes depend on the chunking"
    );
}

#[test]
fn a_rejection_status_surfaces_on_the_client() {
    for status in [
        Status::TokenParseError,
        Status::ConnectionError,
        Status::RegistrationError,
        Status::UnknownError,
        Status::Reserved(200),
    ] {
        let mut net = Net::new(Decision::Reject(status));
        net.run_whole();
        assert_eq!(
            closed_of(&net.client_events),
            [CloseReason::Rejected(status)]
        );
        assert_eq!(
            closed_of(&net.server_events),
            [CloseReason::Rejected(status)]
        );
        assert!(net.client.is_closed() && net.server.is_closed());
        assert!(net.client_asked.is_empty());
        assert_eq!(net.server_asked, [Redirect::Listen]);
    }
}

#[test]
fn misuse_gets_typed_errors() {
    let mut net = Net::new(Decision::Hold);
    net.run_whole();
    assert_eq!(net.client.send("early".into()), Err(Error::NotConnected));
    assert_eq!(
        net.server.accept(0),
        Err(Error::UserIdOutOfRange { user_id: 0 })
    );
    assert_eq!(
        net.server.accept(70_000),
        Err(Error::UserIdOutOfRange { user_id: 70_000 })
    );
    assert_eq!(
        net.server.reject(Status::Application(300)),
        Err(Error::StatusOutOfRange(Status::Application(300)))
    );
    assert_eq!(
        net.server.reject(Status::Success),
        Err(Error::RejectWithSuccess)
    );
    assert!(matches!(
        net.client.accept(PORT.into()),
        Err(Error::WrongSide { .. })
    ));
    net.server.accept(PORT.into()).unwrap();
    assert_eq!(
        net.server.accept(PORT.into()),
        Err(Error::NoPendingAuthentication)
    );
    net.run_whole();
    let too_big = Bytes::from(vec![0u8; wire::MAX_PAYLOAD + 1]);
    assert_eq!(
        net.client.send(too_big),
        Err(Error::MessageTooLarge {
            len: wire::MAX_PAYLOAD + 1,
            max: wire::MAX_PAYLOAD
        })
    );
    assert_eq!(net.client.max_message(), 65_495);
}

#[test]
fn a_listener_that_never_answers_times_the_client_out() {
    let mut net = Net::new(Decision::Hold);
    net.run_whole();
    let start = net.now;
    while !net.client.is_closed() {
        net.advance();
    }
    assert_eq!(
        closed_of(&net.client_events),
        [CloseReason::HandshakeTimeout]
    );
    assert_eq!(net.now - start, Duration::from_secs(10));
    // The held decision times out on the listener too.
    while !net.server.is_closed() {
        net.advance();
    }
    assert_eq!(
        closed_of(&net.server_events),
        [CloseReason::HandshakeTimeout]
    );
}

#[test]
fn the_second_connection_has_a_deadline_on_both_sides() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.redirect = false;
    net.run_whole();
    assert_eq!(net.client.redirect(), Some(Redirect::Move { port: PORT }));
    // The listener's application may already queue messages; nothing goes out on connection 1.
    net.server.send("queued".into()).unwrap();
    assert_eq!(net.server.poll_transmit(net.now), None);
    let start = net.now;
    while !(net.client.is_closed() && net.server.is_closed()) {
        net.advance();
    }
    assert_eq!(net.now - start, Duration::from_secs(10));
    assert_eq!(
        closed_of(&net.client_events),
        [CloseReason::HandshakeTimeout]
    );
    assert_eq!(
        closed_of(&net.server_events),
        [CloseReason::HandshakeTimeout]
    );
}

#[test]
fn the_first_connection_ending_during_the_redirect_is_expected() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.redirect = false;
    net.run_whole();
    net.client.handle_link_end(net.now, None);
    net.server.handle_link_end(net.now, None);
    assert_eq!(net.client.close_reason(), None);
    assert_eq!(net.server.close_reason(), None);
    net.client.handle_link_up(net.now, Link::STREAM);
    net.server.handle_link_up(net.now, Link::STREAM);
    net.redirect = true;
    net.client.send("after".into()).unwrap();
    net.run_whole();
    assert_eq!(net.client_data(), [Bytes::from_static(b"after")]);
}

#[test]
fn garbage_gets_no_answer_and_a_random_deadline() {
    let mut closes = Vec::new();
    for seed in 0..4u8 {
        let now = Instant::now();
        let mut server = Connection::server(&ServerConfig::new(config(), key()), now, [seed; 32]);
        server.handle_input(now, &[0x42; 81]);
        server.handle_input(now, &[0x42; 1000]);
        server.handle_link_end(now, None);
        assert_eq!(server.poll_transmit(now), None);
        assert_eq!(
            server.close_reason(),
            None,
            "a FIN tells the prober nothing"
        );
        let deadline = server.poll_timeout().unwrap();
        server.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(server.close_reason(), None);
        server.handle_timeout(deadline);
        assert_eq!(
            server.close_reason(),
            Some(CloseReason::Refused(InitRefusal::Unauthenticated))
        );
        assert_eq!(server.poll_transmit(deadline), None);
        closes.push(deadline - now);
    }
    closes.dedup();
    assert!(
        closes.len() > 1,
        "the close time is drawn, not fixed: {closes:?}"
    );
}

#[test]
fn a_tampered_message_closes_the_session_instead_of_losing_sync() {
    for offset in [0usize, 24, 30, 44, 45, 60, 70] {
        let mut net = Net::new(Decision::Accept(PORT.into()));
        net.run_whole();
        net.client.send("one".into()).unwrap();
        let mut bytes = net.client.poll_transmit(net.now).unwrap().to_vec();
        bytes[offset] ^= 0x01;
        net.server.handle_input(net.now, &bytes);
        let events: Vec<Event> = std::iter::from_fn(|| net.server.poll_event()).collect();
        assert!(data_of(&events).is_empty(), "offset {offset}");
        assert_eq!(
            closed_of(&events),
            [CloseReason::Protocol(ProtocolError::Authentication)],
            "offset {offset}"
        );
        assert!(net.server.is_closed());
    }
}

#[test]
fn a_tampered_server_init_is_refused_by_the_client() {
    let mut net = Net::new(Decision::Hold);
    net.run_whole();
    net.server.accept(PORT.into()).unwrap();
    let mut reply = net.server.poll_transmit(net.now).unwrap().to_vec();
    reply[30] ^= 0x80;
    net.client.handle_input(net.now, &reply);
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::Protocol(ProtocolError::Authentication))
    );
}

#[test]
fn the_peer_vanishing_without_term_is_reported() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.run_whole();
    net.client.handle_link_end(net.now, None);
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::TransportClosed)
    );
    assert!(matches!(net.client.send("x".into()), Err(Error::Closed(_))));
}

#[test]
fn the_listener_can_end_first() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.run_whole();
    net.server.send("bye".into()).unwrap();
    net.server.close();
    net.echo = false;
    net.run_whole();
    assert_eq!(net.client_data(), [Bytes::from_static(b"bye")]);
    assert!(net.client_events.contains(&Event::Finished));
    assert!(net.client.is_peer_finished());
    // TERM ends one direction: the client may still answer before it ends its own.
    net.client.send("late reply".into()).unwrap();
    net.client.close();
    net.run_whole();
    assert_eq!(
        data_of(&net.server_events),
        [Bytes::from_static(b"late reply")]
    );
    assert!(net.client.is_closed() && net.server.is_closed());
    assert_eq!(closed_of(&net.server_events), [CloseReason::Local]);
    assert_eq!(closed_of(&net.client_events), [CloseReason::Peer]);
}

#[test]
fn after_the_peers_term_and_fin_what_was_queued_still_goes_out() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.run_whole();
    net.client.close();
    let term = net.client.poll_transmit(net.now).unwrap();
    net.server.handle_input(net.now, &term);
    let events: Vec<Event> = std::iter::from_fn(|| net.server.poll_event()).collect();
    assert_eq!(events, [Event::Finished]);
    net.server.send("last words".into()).unwrap();
    // The client's FIN arrives before the listener wrote its answer.
    net.server.handle_link_end(net.now, None);
    assert_eq!(net.server.close_reason(), None);
    let out = net.server.poll_transmit(net.now).unwrap();
    assert!(net.server.is_closed());
    assert_eq!(net.server.close_reason(), Some(CloseReason::Peer));
    net.client.handle_input(net.now, &out);
    let events: Vec<Event> = std::iter::from_fn(|| net.client.poll_event()).collect();
    assert_eq!(data_of(&events), [Bytes::from_static(b"last words")]);
    assert_eq!(closed_of(&events), [CloseReason::Local]);
}

#[test]
fn an_idle_session_gives_its_buffers_back() {
    let mut net = Net::new(Decision::Accept(PORT.into()));
    net.run_whole();
    for m in messages() {
        net.client.send(m).unwrap();
    }
    net.run(&mut |n| n.min(1000));
    assert_eq!(net.client_data(), messages());
    // Everything was delivered and polled: neither side holds an allocation any more.
    assert_eq!(net.client.buffer_capacity(), 0);
    assert_eq!(net.server.buffer_capacity(), 0);
}
