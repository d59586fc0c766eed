//! Tampering with the byte streams: flipped bits, truncation, dropped, duplicated and
//! reordered frames. Whatever happens on the path, a receiver delivers only messages exactly as
//! they were sent, in order, then closes with the precise reason, and stays closed.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use port_core::Session;
use port_core::{
    ClientConfig, CloseReason, Config, Connection, Error, Event, InitRefusal, Padding,
    ProtocolError, ServerConfig, ServerKey, Side, Status,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const SEED: u64 = 9;
const AUTH: CloseReason = CloseReason::Protocol(ProtocolError::Authentication);

/// Short timers and at most 8 bytes of padding, so the streams stay short.
fn config() -> Config {
    fast_config()
        .to_builder()
        .padding(Padding::Uniform { max: 8 })
        .build()
        .unwrap()
}

fn from_client() -> [Bytes; 2] {
    [Bytes::new(), message(1, 5)]
}

fn from_server() -> Bytes {
    message(2, 8)
}

/// Messages the client receives in an undisturbed run: the server's own, then the echoes.
const TO_CLIENT: usize = 3;

struct Setup {
    config: Config,
    client: ClientConfig,
    key: ServerKey,
}

impl Setup {
    fn new(config: Config) -> Setup {
        let (client, key) = setups_for(&config);
        Setup {
            config,
            client,
            key,
        }
    }

    /// A server setup with a fresh replay filter.
    fn server(&self) -> ServerConfig {
        ServerConfig::new(self.config.clone(), self.key.clone())
    }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| Setup::new(config()))
}

/// The scenario: handshake; the client sends two messages, the server one of its own and
/// echoes; once the client has its three messages it closes. `fault` alters delivered bytes,
/// `cut` stops one direction after that many bytes. Runs until nothing can happen any more.
fn scenario(fault: Option<Fault>, cut: Option<(Dir, usize)>) -> Pair {
    let s = setup();
    let mut p = Pair::with_setups(&s.client, &s.server(), SEED);
    p.fault = fault;
    let run = |p: &mut Pair, done: &dyn Fn(&Pair) -> bool| match cut {
        Some((dir, limit)) => run_cut_until(p, dir, limit, done),
        None => p.run_until(done),
    };
    run(&mut p, &|p| {
        p.client_connected() || p.client.close_reason().is_some()
    });
    if p.client.is_connected() {
        for m in from_client() {
            p.client.send(m).unwrap();
        }
        p.server.send(from_server()).unwrap();
    }
    run(&mut p, &|p| {
        p.client_messages().len() == TO_CLIENT || p.client.close_reason().is_some()
    });
    p.client.close();
    run(&mut p, &|_| false);
    p
}

/// What a receiver makes of one direction of the undisturbed scenario, found by feeding the
/// recorded stream one byte at a time to a fresh connection that derives the same keys.
struct Stream {
    bytes: Vec<u8>,
    /// Length of the INIT (where `Authenticate` / `Connected` appears).
    init_end: usize,
    /// Where each frame ends.
    frame_ends: Vec<usize>,
    /// Each message with the offset where it was complete.
    messages: Vec<(usize, Bytes)>,
}

impl Stream {
    fn dissect(mut receiver: Connection, now: Instant, bytes: &[u8]) -> Stream {
        let mut init_end = None;
        let mut frame_ends = Vec::new();
        let mut messages = Vec::new();
        let mut frames = 0;
        // A client seals its INIT, and so knows its transcript, on its first transmit.
        let _ = receiver.poll_transmit(now);
        for (i, byte) in bytes.iter().enumerate() {
            receiver.handle_input(now, std::slice::from_ref(byte));
            while let Some(event) = receiver.poll_event() {
                match event {
                    Event::Authenticate { .. } => {
                        receiver.accept(42).unwrap();
                        init_end = Some(i + 1);
                    }
                    Event::Connected { .. } if receiver.side() == Side::Client => {
                        init_end = Some(i + 1);
                    }
                    Event::Data(m) => messages.push((i + 1, m)),
                    _ => {}
                }
            }
            if receiver.stats().frames_received > frames {
                frames = receiver.stats().frames_received;
                frame_ends.push(i + 1);
            }
        }
        Stream {
            bytes: bytes.to_vec(),
            init_end: init_end.expect("the INIT opens"),
            frame_ends,
            messages,
        }
    }

    /// Messages complete within the first `n` bytes.
    fn delivered_within(&self, n: usize) -> Vec<Bytes> {
        self.messages
            .iter()
            .filter(|(end, _)| *end <= n)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Where frame `k` starts.
    fn frame_start(&self, k: usize) -> usize {
        if k == 0 {
            self.init_end
        } else {
            self.frame_ends[k - 1]
        }
    }
}

/// Both directions of the undisturbed scenario.
struct Clean {
    c2s: Stream,
    s2c: Stream,
    /// When the server's drain deadline falls, after the start.
    drain: Duration,
}

impl Clean {
    fn record(setup: &Setup, p: &Pair) -> Clean {
        let c2s = p.transcript(Dir::ClientToServer);
        let s2c = p.transcript(Dir::ServerToClient);
        let server = lone_server(&setup.server(), SEED, p.start);
        let client = lone_client(&setup.client, SEED, p.start);
        let drain = server.poll_timeout().expect("a drain deadline") - p.start;
        Clean {
            drain,
            c2s: Stream::dissect(server, p.start, c2s),
            s2c: Stream::dissect(client, p.start, s2c),
        }
    }

    fn stream(&self, dir: Dir) -> &Stream {
        match dir {
            Dir::ClientToServer => &self.c2s,
            Dir::ServerToClient => &self.s2c,
        }
    }
}

fn clean() -> &'static Clean {
    static CLEAN: OnceLock<Clean> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let p = scenario(None, None);
        let expected_server: Vec<Bytes> = from_client().to_vec();
        let mut expected_client = vec![from_server()];
        expected_client.extend(from_client());
        assert_eq!(p.server_messages(), expected_server);
        assert_eq!(p.client_messages(), expected_client);
        assert_eq!(p.client_closed(), Some(CloseReason::Local));
        assert_eq!(p.server_closed(), Some(CloseReason::Peer));
        let clean = Clean::record(setup(), &p);
        let c = &setup().config;
        assert!(clean.drain >= c.drain_min() && clean.drain <= c.drain_max());
        // The dissection agrees with the live run.
        assert_eq!(clean.c2s.init_end, p.writes(Dir::ClientToServer)[0]);
        assert_eq!(clean.s2c.init_end, p.writes(Dir::ServerToClient)[0]);
        for (stream, live) in [(&clean.c2s, expected_server), (&clean.s2c, expected_client)] {
            assert_eq!(stream.delivered_within(stream.bytes.len()), live);
            assert_eq!(stream.frame_ends.last(), Some(&stream.bytes.len()));
            // Data frames plus the TERM.
            assert_eq!(stream.frame_ends.len(), live.len() + 1);
        }
        clean
    })
}

fn closed_events(events: &[(Instant, Event)]) -> usize {
    events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Closed(_)))
        .count()
}

fn flip(dir: Dir, at: usize, bit: u8) -> Fault {
    Box::new(move |d, offset, bytes: &mut [u8]| {
        if d == dir && (offset..offset + bytes.len()).contains(&at) {
            bytes[at - offset] ^= 1 << bit;
        }
    })
}

/// Runs the scenario with one bit flipped and checks the outcome precisely.
fn check_flip(dir: Dir, at: usize, bit: u8) {
    let clean = clean();
    let stream = clean.stream(dir);
    let p = scenario(Some(flip(dir, at, bit)), None);
    let ctx = format!("{dir:?} byte {at} bit {bit}");
    // The writer produced the same bytes up to the flip.
    assert_eq!(p.transcript(dir)[..=at], stream.bytes[..=at], "{ctx}");
    assert_eq!(closed_events(&p.client_events), 1, "{ctx}");
    assert_eq!(closed_events(&p.server_events), 1, "{ctx}");
    assert!(p.client.is_closed() && p.server.is_closed(), "{ctx}");
    match dir {
        Dir::ClientToServer if at < stream.init_end => {
            // The server refuses silently: no byte, no event but the close at its drain
            // deadline; the client gives up on the handshake.
            assert!(p.transcript(Dir::ServerToClient).is_empty(), "{ctx}");
            assert_eq!(p.server_events.len(), 1, "{ctx}: {:?}", p.server_events);
            let (when, reason) = closed_at(&p.server_events).unwrap();
            assert_eq!(
                reason,
                CloseReason::Refused(InitRefusal::Unauthenticated),
                "{ctx}"
            );
            assert_eq!(when - p.start, clean.drain, "{ctx}");
            assert_eq!(
                p.client_closed(),
                Some(CloseReason::HandshakeTimeout),
                "{ctx}"
            );
            assert!(!p.client_connected(), "{ctx}");
        }
        Dir::ClientToServer => {
            assert_eq!(p.server_closed(), Some(AUTH), "{ctx}");
            assert_eq!(p.server_messages(), stream.delivered_within(at), "{ctx}");
            // The server vanished without a TERM: the client's keepalive (which goes on after
            // its own TERM, a half-close) gives up on it.
            assert_eq!(
                p.client_closed(),
                Some(CloseReason::KeepaliveTimeout),
                "{ctx}"
            );
        }
        Dir::ServerToClient => {
            assert_eq!(p.client_closed(), Some(AUTH), "{ctx}");
            assert_eq!(p.client_messages(), stream.delivered_within(at), "{ctx}");
            if at < stream.init_end {
                assert!(!p.client_connected(), "{ctx}");
                // Nothing follows the client's INIT.
                assert_eq!(
                    p.transcript(Dir::ClientToServer).len(),
                    clean.c2s.init_end,
                    "{ctx}"
                );
                assert_eq!(
                    p.server_closed(),
                    Some(CloseReason::KeepaliveTimeout),
                    "{ctx}"
                );
            } else {
                assert!(p.client_connected(), "{ctx}");
                // A flip in the server's TERM hits a client that had closed: the server had
                // its TERM. Otherwise the client stopped without one.
                let expected = if p.client_messages().len() == TO_CLIENT {
                    CloseReason::Peer
                } else {
                    CloseReason::KeepaliveTimeout
                };
                assert_eq!(p.server_closed(), Some(expected), "{ctx}");
            }
        }
    }
}

/// Every bit of each stream's first `FULL` bytes is flipped, one at a time.
const FULL: usize = 200;

/// Flips, within `bytes` of one stream, every bit of the first `FULL` bytes and one bit (drawn
/// from a seeded generator) of each later byte. Returns how many flips were checked.
fn sweep(dir: Dir, bytes: std::ops::Range<usize>) -> usize {
    let len = clean().stream(dir).bytes.len();
    let mut rng = ChaCha20Rng::seed_from_u64(0xF11F);
    let mut count = 0;
    for at in 0..len {
        // Draw for every byte, so each byte's bit does not depend on the range swept.
        let drawn = (rng.next_u32() % 8) as u8;
        if !bytes.contains(&at) {
            continue;
        }
        if at < FULL {
            for bit in 0..8 {
                check_flip(dir, at, bit);
                count += 1;
            }
        } else {
            check_flip(dir, at, drawn);
            count += 1;
        }
    }
    count
}

// The sweeps are split so that the test harness runs them in parallel.

#[test]
fn every_bit_flip_in_the_client_init_is_refused_silently() {
    let end = clean().c2s.init_end;
    eprintln!(
        "DBG c2s {} init {} frames {:?}; s2c {} init {} frames {:?}",
        clean().c2s.bytes.len(),
        end,
        clean().c2s.frame_ends,
        clean().s2c.bytes.len(),
        clean().s2c.init_end,
        clean().s2c.frame_ends
    );
    assert!(end < FULL);
    assert_eq!(sweep(Dir::ClientToServer, 0..end), end * 8);
}

#[test]
fn bit_flips_in_client_frames_close_the_server() {
    let c = clean();
    let (start, len) = (c.c2s.init_end, c.c2s.bytes.len());
    assert!(len > FULL);
    assert_eq!(
        sweep(Dir::ClientToServer, start..len),
        (FULL - start) * 8 + (len - FULL)
    );
}

#[test]
fn bit_flips_in_the_server_init_and_first_frames_close_the_client() {
    assert_eq!(sweep(Dir::ServerToClient, 0..FULL / 2), FULL / 2 * 8);
}

#[test]
fn bit_flips_in_later_server_frames_close_the_client() {
    let c = clean();
    let len = c.s2c.bytes.len();
    assert!(c.s2c.init_end < FULL / 2 && len > FULL);
    assert_eq!(
        sweep(Dir::ServerToClient, FULL / 2..len),
        FULL / 2 * 8 + (len - FULL)
    );
}

/// Cuts one direction after `n` bytes and checks the outcome.
fn check_cut(dir: Dir, n: usize) {
    let clean = clean();
    let stream = clean.stream(dir);
    let p = scenario(None, Some((dir, n)));
    let ctx = format!("{dir:?} cut after {n} bytes");
    assert_eq!(closed_events(&p.client_events), 1, "{ctx}");
    assert_eq!(closed_events(&p.server_events), 1, "{ctx}");
    assert!(p.client.is_closed() && p.server.is_closed(), "{ctx}");
    let (client, server) = (p.client_closed().unwrap(), p.server_closed().unwrap());
    use CloseReason::*;
    match dir {
        Dir::ClientToServer => {
            assert_eq!(p.server_messages(), stream.delivered_within(n), "{ctx}");
            if n < stream.init_end {
                assert!(p.transcript(Dir::ServerToClient).is_empty(), "{ctx}");
                assert_eq!(
                    (client, server),
                    (HandshakeTimeout, HandshakeTimeout),
                    "{ctx}"
                );
            } else {
                // Whether or not the client had sent its TERM, nothing from it arrives any
                // more: both keepalives give up.
                assert_eq!(
                    (client, server),
                    (KeepaliveTimeout, KeepaliveTimeout),
                    "{ctx}"
                );
            }
        }
        Dir::ServerToClient => {
            assert_eq!(p.client_messages(), stream.delivered_within(n), "{ctx}");
            if n < stream.init_end {
                assert!(!p.client_connected(), "{ctx}");
                assert_eq!(
                    (client, server),
                    (HandshakeTimeout, KeepaliveTimeout),
                    "{ctx}"
                );
            } else if p.client_messages().len() == TO_CLIENT && server == Peer {
                // The server answered the client's TERM and is done; its TERM was lost, and
                // the client's keepalive gives up on the silent path.
                assert_eq!(client, KeepaliveTimeout, "{ctx}");
            } else {
                assert_eq!(
                    (client, server),
                    (KeepaliveTimeout, KeepaliveTimeout),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn truncating_the_client_stream_anywhere_delivers_no_partial_message() {
    for n in 0..clean().c2s.bytes.len() {
        check_cut(Dir::ClientToServer, n);
    }
}

#[test]
fn truncating_the_server_stream_anywhere_delivers_no_partial_message() {
    for n in 0..clean().s2c.bytes.len() {
        check_cut(Dir::ServerToClient, n);
    }
}

/// A longer exchange with small frames (one message spans three), for splicing whole frames.
fn splice_setup() -> &'static (Setup, Clean) {
    static SPLICE: OnceLock<(Setup, Clean)> = OnceLock::new();
    SPLICE.get_or_init(|| {
        let config = config()
            .to_builder()
            .max_frame_payload(port_core::MIN_FRAME_PAYLOAD)
            .build()
            .unwrap();
        let setup = Setup::new(config);
        let mut p = Pair::with_setups(&setup.client, &setup.server(), SEED);
        p.handshake();
        let sent: Vec<Bytes> = [10, 600, 0, 300, 7]
            .iter()
            .enumerate()
            .map(|(i, &n)| message(10 + i as u32, n))
            .collect();
        for m in &sent {
            p.client.send(m.clone()).unwrap();
        }
        p.server.send(message(20, 400)).unwrap();
        assert!(p.run_until(|p| p.client_messages().len() == sent.len() + 1));
        p.client.close();
        p.run_until(|_| false);
        assert_eq!(p.client_closed(), Some(CloseReason::Local));
        let clean = Clean::record(&setup, &p);
        // One message spans three frames, another two; plus the TERM.
        assert_eq!(clean.c2s.frame_ends.len(), 1 + 3 + 1 + 2 + 1 + 1);
        assert_eq!(clean.s2c.frame_ends.len(), 2 + 1 + 3 + 1 + 2 + 1 + 1);
        (setup, clean)
    })
}

/// Feeds `bytes` to a fresh receiver for `dir` of the splice exchange; returns its events.
fn receive(dir: Dir, init_end: usize, bytes: &[u8]) -> Vec<Event> {
    let (setup, _) = splice_setup();
    let start = Instant::now();
    let mut receiver = match dir {
        Dir::ClientToServer => lone_server(&setup.server(), SEED, start),
        Dir::ServerToClient => lone_client(&setup.client, SEED, start),
    };
    // The INIT byte by byte (the server must decide before frames arrive), then frames in
    // uneven pieces.
    let mut events = feed(&mut receiver, start, &bytes[..init_end], 1);
    events.extend(feed(&mut receiver, start, &bytes[init_end..], 77));
    events.into_iter().map(|(_, e)| e).collect()
}

fn data_and_close(events: &[Event]) -> (Vec<Bytes>, Vec<CloseReason>) {
    let data = events
        .iter()
        .filter_map(|e| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let closed = events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(r) => Some(*r),
            _ => None,
        })
        .collect();
    (data, closed)
}

#[test]
fn dropped_duplicated_or_reordered_frames_are_detected() {
    let (_, clean) = splice_setup();
    let mut checked = 0;
    for dir in [Dir::ClientToServer, Dir::ServerToClient] {
        let s = clean.stream(dir);
        let frame = |k: usize| &s.bytes[s.frame_start(k)..s.frame_ends[k]];
        let n = s.frame_ends.len();
        // The untouched stream: everything, then the peer's TERM (a half-close: the receiver
        // has not ended its own direction, so it is not closed).
        let events = receive(dir, s.init_end, &s.bytes);
        let (data, closed) = data_and_close(&events);
        assert_eq!(data, s.delivered_within(s.bytes.len()));
        assert_eq!(events.last(), Some(&Event::Finished));
        assert_eq!(closed, []);
        for k in 0..n - 1 {
            let (before, after) = (&s.bytes[..s.frame_start(k)], &s.bytes[s.frame_ends[k]..]);
            let dropped = [before, after].concat();
            let duplicated = [before, frame(k), frame(k), after].concat();
            let swapped = [
                before,
                frame(k + 1),
                frame(k),
                &s.bytes[s.frame_ends[k + 1]..],
            ]
            .concat();
            for (what, bytes, intact) in [
                ("drop", dropped, s.frame_start(k)),
                ("duplicate", duplicated, s.frame_ends[k]),
                ("swap", swapped, s.frame_start(k)),
            ] {
                let (data, closed) = data_and_close(&receive(dir, s.init_end, &bytes));
                let ctx = format!("{dir:?}: {what} frame {k} of {n}");
                assert_eq!(data, s.delivered_within(intact), "{ctx}");
                assert_eq!(closed, [AUTH], "{ctx}");
                checked += 1;
            }
        }
    }
    // Nine frames client to server, eleven the other way.
    assert_eq!(checked, 3 * (9 - 1 + 11 - 1));
}

/// Checks that a connection closed for `reason` stays exactly so whatever comes next.
fn assert_sticky(conn: &mut Connection, reason: CloseReason, now: Instant, more_input: &[u8]) {
    assert_eq!(conn.close_reason(), Some(reason));
    assert!(conn.is_closed() && !conn.is_connected());
    for _ in 0..2 {
        assert_eq!(conn.send("more".into()), Err(Error::Closed(reason)));
        assert_eq!(conn.send(Bytes::new()), Err(Error::Closed(reason)));
        assert_eq!(conn.poll_transmit(now), None);
        assert_eq!(conn.poll_event(), None);
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_input(now, more_input);
        conn.handle_input(now, &[0u8; 100]);
        conn.handle_timeout(now + Duration::from_secs(3600));
        conn.close();
        assert_eq!(conn.poll_event(), None);
        assert_eq!(conn.poll_transmit(now + Duration::from_secs(3600)), None);
        assert_eq!(conn.close_reason(), Some(reason));
        assert_eq!(conn.send_buffered(), 0);
        assert!(conn.is_closed() && !conn.is_connected());
    }
    match conn.side() {
        Side::Server => {
            assert_eq!(conn.accept(1), Err(Error::Closed(reason)));
            assert_eq!(
                conn.reject(Status::UnknownError),
                Err(Error::Closed(reason))
            );
        }
        Side::Client => assert_eq!(
            conn.accept(1),
            Err(Error::WrongSide {
                expected: Side::Server
            })
        ),
    }
}

/// Takes everything `conn` has to transmit.
fn drain(conn: &mut Connection, now: Instant) -> Vec<u8> {
    std::iter::from_fn(|| conn.poll_transmit(now))
        .flat_map(|b| b.to_vec())
        .collect()
}

#[test]
fn after_a_fatal_error_the_connection_stays_closed() {
    for receiver in [Side::Client, Side::Server] {
        let mut p = Pair::new(config(), 31);
        p.handshake();
        // Both sides have messages queued when the receiver fails.
        p.client.send(message(1, 3000)).unwrap();
        p.server.send(message(2, 3000)).unwrap();
        let (sender, conn) = match receiver {
            Side::Client => (&mut p.server, &mut p.client),
            Side::Server => (&mut p.client, &mut p.server),
        };
        let mut wire = drain(sender, p.now);
        wire[10] ^= 0x10;
        conn.handle_input(p.now, &wire[..60]);
        assert_eq!(conn.poll_event(), Some(Event::Closed(AUTH)));
        assert_eq!(conn.poll_event(), None);
        // Its queued message is dropped: nothing more goes out.
        assert_eq!(conn.poll_transmit(p.now), None);
        assert_sticky(conn, AUTH, p.now, &wire[60..]);
    }

    // A refused server, once its drain deadline passed.
    let mut p = scenario(Some(flip(Dir::ClientToServer, 3, 0)), None);
    let reason = CloseReason::Refused(InitRefusal::Unauthenticated);
    assert_eq!(p.server_closed(), Some(reason));
    let now = p.now;
    assert_sticky(&mut p.server, reason, now, &clean().c2s.bytes);
    // The client that gave up on the handshake.
    assert_eq!(p.client_closed(), Some(CloseReason::HandshakeTimeout));
    assert_sticky(
        &mut p.client,
        CloseReason::HandshakeTimeout,
        now,
        &clean().s2c.bytes,
    );
    // And both ends of a connection torn by a flipped frame.
    let mut p = scenario(Some(flip(Dir::ServerToClient, 150, 5)), None);
    let server = p.server_closed().unwrap();
    let now = p.now;
    assert_sticky(&mut p.client, AUTH, now, &clean().s2c.bytes[150..]);
    assert_sticky(&mut p.server, server, now, &clean().c2s.bytes);
}

/// While a server drains a refused connection it has not closed yet (`close_reason` is
/// `None`) and never connected: `send` must not report `Closed(Local)`, a reason that is not
/// the one the connection closes with.
#[test]
fn a_draining_server_does_not_claim_a_local_close() {
    let s = setup();
    let mut p = Pair::with_setups(&s.client, &s.server(), SEED);
    p.fault = Some(flip(Dir::ClientToServer, 20, 3));
    p.run_until(|p| p.client.close_reason().is_some());
    assert_eq!(p.server.close_reason(), None);
    assert!(!p.server.is_closed());
    let refused = CloseReason::Refused(InitRefusal::Unauthenticated);
    let during = p.server.send("x".into());
    p.run_until(|_| false);
    assert_eq!(p.server_closed(), Some(refused));
    assert_eq!(p.server.send("x".into()), Err(Error::Closed(refused)));
    assert_eq!(during, Err(Error::NotConnected));
}
