//! A server never reveals itself to a prober: garbage, truncated INITs, INITs for another key,
//! replayed or stale INITs all get the same treatment. No byte ever comes back, the input is
//! read and discarded, no `Authenticate` is reported, and the connection closes only at its own
//! random drain deadline, drawn at creation and independent of what (and how much) was sent.

mod common;

use std::time::{Duration, Instant};

use common::*;
use port_core::Session;
use port_core::{
    CLIENT_PREFIX_LEN, ClientConfig, CloseReason, Config, Connection, Error, Event, InitRefusal,
    Redirect, ServerConfig, Side, Status,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// The server connection seed used by every probe scenario, so that all of them can be
/// compared with the same drain deadline.
const PROBE_SEED: u64 = 77;

/// A server connection driven by hand, with every output drained and recorded after every
/// call (input, timeout).
struct Probe {
    conn: Connection,
    start: Instant,
    now: Instant,
    /// Bytes given to `handle_input`.
    fed: u64,
    /// Bytes handed out by `poll_transmit`.
    transmitted: usize,
    events: Vec<(Instant, Event)>,
}

impl Probe {
    fn new(setup: &ServerConfig, seed: u64) -> Probe {
        let start = Instant::now();
        Probe {
            conn: Connection::server(setup, start, UNIX, seed_from(seed, 0x5E)),
            start,
            now: start,
            fed: 0,
            transmitted: 0,
            events: Vec::new(),
        }
    }

    /// Polls every output; `poll_transmit` several times, as an eager driver would.
    fn drain(&mut self) {
        for _ in 0..3 {
            while let Some(bytes) = self.conn.poll_transmit(self.now) {
                self.transmitted += bytes.len();
            }
        }
        while let Some(event) = self.conn.poll_event() {
            self.events.push((self.now, event));
        }
    }

    /// Moves the clock to `start + at`, firing every deadline on the way (and calling
    /// `handle_timeout` once more at the target, which must be harmless).
    fn advance_to(&mut self, at: Duration) {
        let target = self.start + at;
        let mut fired = 0;
        while let Some(deadline) = self.conn.poll_timeout() {
            if deadline > target {
                break;
            }
            fired += 1;
            assert!(fired < 100, "poll_timeout does not move on");
            self.now = self.now.max(deadline);
            self.conn.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(target);
        self.conn.handle_timeout(self.now);
        self.drain();
    }

    /// Feeds `bytes` at `start + at`.
    fn feed(&mut self, at: Duration, bytes: &[u8]) {
        self.advance_to(at);
        self.conn.handle_input(self.now, bytes);
        self.fed += bytes.len() as u64;
        self.drain();
    }

    /// Runs the clock until no deadline is left.
    fn run_out(&mut self) {
        let mut fired = 0;
        while let Some(deadline) = self.conn.poll_timeout() {
            fired += 1;
            assert!(fired < 100, "poll_timeout does not move on");
            self.now = self.now.max(deadline);
            self.conn.handle_timeout(self.now);
            self.drain();
        }
    }

    fn closes(&self) -> Vec<(Duration, CloseReason)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Closed(r) => Some((*t - self.start, *r)),
                _ => None,
            })
            .collect()
    }

    fn authenticated(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Authenticate { .. }))
    }
}

/// Seeded random bytes.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed ^ 0x6A5B_A6E0).fill_bytes(&mut out);
    out
}

fn server_setup(config: Config) -> ServerConfig {
    ServerConfig::new(config, server_key(1))
}

fn client_setup(config: Config, key_seed: u8) -> ClientConfig {
    ClientConfig::new(config, server_key(key_seed).client_key(), TOKEN).unwrap()
}

/// The INIT a client opened at `unix` with `seed` writes first.
fn client_init(setup: &ClientConfig, unix: Duration, seed: u64) -> Vec<u8> {
    let now = Instant::now();
    let mut client = Connection::client(setup, now, unix, seed_from(seed, 0xC1));
    let init = client
        .poll_transmit(now)
        .expect("a client writes its INIT at once");
    assert!(client.poll_transmit(now).is_none());
    init.to_vec()
}

/// Feeds `schedule` (pieces at offsets from the start) to a fresh server connection with
/// `seed`, runs it to the end, then feeds more garbage, and checks that the server stayed
/// silent throughout: nothing transmitted, no `Authenticate`, input counted and discarded,
/// one `Closed` inside the drain range, `is_closed`. Returns the close offset and reason.
fn probe(
    setup: &ServerConfig,
    seed: u64,
    schedule: &[(Duration, Vec<u8>)],
) -> (Duration, CloseReason) {
    let config = setup.config().clone();
    let mut p = Probe::new(setup, seed);
    // The deadline is drawn at creation and nothing the peer sends moves it.
    let drawn = p.conn.poll_timeout().expect("a drain deadline") - p.start;
    for (at, bytes) in schedule {
        p.feed(*at, bytes);
        assert_eq!(p.transmitted, 0, "the server answered a probe");
        assert!(!p.authenticated(), "a probe authenticated");
    }
    p.run_out();
    let closes = p.closes();
    assert_eq!(closes.len(), 1, "exactly one Closed: {:?}", p.events);
    let (at, reason) = closes[0];
    assert_eq!(
        at, drawn,
        "the close moved from the deadline drawn at creation"
    );
    assert!(
        (config.drain_min()..=config.drain_max()).contains(&at),
        "closed at {at:?}, outside the drain range"
    );
    assert_eq!(p.conn.close_reason(), Some(reason));
    assert!(p.conn.is_closed());
    assert!(!p.conn.is_connected());
    assert_eq!(p.conn.poll_timeout(), None);
    assert_eq!(p.conn.stats().bytes_received, p.fed);
    // Whatever sent bytes and did not authenticate (refused at once, or still short at the
    // deadline) is for a fallback; a silent peer is simply closed.
    let fallback = (p.fed > 0).then_some(Redirect::Fallback);
    assert_eq!(
        p.conn.redirect(),
        fallback,
        "{reason:?} after {} bytes",
        p.fed
    );

    // Whatever comes after the close is read and discarded: nothing changes.
    let events_before = p.events.len();
    for (i, extra) in [1usize, 88, 4096].into_iter().enumerate() {
        p.feed(
            at + Duration::from_secs(1 + i as u64),
            &garbage(seed + 100, extra),
        );
    }
    p.run_out();
    assert_eq!(p.events.len(), events_before, "events after the close");
    assert_eq!(p.conn.close_reason(), Some(reason));
    assert!(p.conn.is_closed());
    assert_eq!(p.conn.stats().bytes_received, p.fed);

    assert_eq!(p.transmitted, 0, "the server answered a probe");
    assert_eq!(p.conn.stats().bytes_sent, 0);
    assert_eq!(p.conn.stats().frames_sent, 0);
    assert!(!p.authenticated(), "a probe authenticated");
    (at, reason)
}

/// The close offset of a server with `seed` that never receives a byte.
fn silent_close(config: &Config, seed: u64) -> Duration {
    let (at, reason) = probe(&server_setup(config.clone()), seed, &[]);
    assert_eq!(reason, CloseReason::HandshakeTimeout);
    at
}

/// Cuts `bytes` into seeded random pieces (1..=max bytes) spread over `[0, within)`.
fn spread(seed: u64, bytes: &[u8], max: usize, within: Duration) -> Vec<(Duration, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (1 + rng.next_u32() as usize % max).min(rest.len());
        pieces.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    let mut times: Vec<Duration> = (0..pieces.len())
        .map(|_| within.mul_f64(f64::from(rng.next_u32()) / 4_294_967_296.0))
        .collect();
    times.sort();
    times.into_iter().zip(pieces).collect()
}

const GARBAGE_LENS: [usize; 6] = [1, 50, 81, 88, 200, 5000];

#[test]
fn garbage_gets_no_answer_and_closes_at_the_drain_deadline() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    for (i, len) in GARBAGE_LENS.into_iter().enumerate() {
        let bytes = garbage(i as u64, len);
        // Fewer bytes than an INIT prefix leave the server waiting for more; a whole prefix
        // that does not authenticate is refused. Either way the wire sees the same thing.
        let expected = if len < CLIENT_PREFIX_LEN {
            CloseReason::HandshakeTimeout
        } else {
            CloseReason::Refused(InitRefusal::Unauthenticated)
        };
        let at_once = probe(&setup, PROBE_SEED, &[(Duration::ZERO, bytes.clone())]);
        assert_eq!(at_once, (deadline, expected), "{len} bytes at once");
        if len <= 300 {
            let one_by_one: Vec<_> = bytes
                .chunks(1)
                .map(|b| (Duration::ZERO, b.to_vec()))
                .collect();
            let at = probe(&setup, PROBE_SEED, &one_by_one);
            assert_eq!(at, (deadline, expected), "{len} bytes one at a time");
        }
        let spread_out = spread(i as u64, &bytes, 97, config.drain_min());
        let at = probe(&setup, PROBE_SEED, &spread_out);
        assert_eq!(at, (deadline, expected), "{len} bytes spread in time");
    }
}

#[test]
fn truncated_init_gets_no_answer() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    let client = client_setup(config.clone(), 1);
    for seed in 0..4 {
        let init = client_init(&client, UNIX, seed);
        assert!(init.len() > 100, "INIT of {} bytes", init.len());
        for cut in [1, 40, 87, 88, 100, init.len() - 1] {
            let part = init[..cut].to_vec();
            let (at, reason) = probe(&setup, PROBE_SEED, &[(Duration::ZERO, part.clone())]);
            assert_eq!(at, deadline, "cut at {cut}");
            assert_eq!(reason, CloseReason::HandshakeTimeout, "cut at {cut}");
            let (at, reason) = probe(
                &setup,
                PROBE_SEED,
                &spread(seed, &part, 13, Duration::from_secs(9)),
            );
            assert_eq!((at, reason), (deadline, CloseReason::HandshakeTimeout));
        }
    }
}

#[test]
fn init_for_another_key_gets_no_answer() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    for key_seed in [2, 3, 4] {
        let init = client_init(&client_setup(config.clone(), key_seed), UNIX, 9);
        let outcome = probe(&setup, PROBE_SEED, &[(Duration::from_secs(1), init)]);
        assert_eq!(
            outcome,
            (deadline, CloseReason::Refused(InitRefusal::Unauthenticated))
        );
    }
}

#[test]
fn replayed_init_gets_no_answer() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    let client_cfg = client_setup(config.clone(), 1);
    let now = Instant::now();
    let mut client = Connection::client(&client_cfg, now, UNIX, seed_from(5, 0xC1));
    let init = client.poll_transmit(now).unwrap();

    // The original connection succeeds.
    let mut first = Probe::new(&setup, 1);
    first.feed(Duration::ZERO, &init);
    assert!(first.authenticated());
    first.conn.accept(9).unwrap();
    let answer = first
        .conn
        .poll_transmit(first.now)
        .expect("the server INIT");
    client.handle_input(now, &answer);
    assert_eq!(client.poll_event(), Some(Event::Connected { user_id: 9 }));

    // The same bytes on another connection of the same server are refused silently, at once
    // and later in the window, and however they are cut.
    let outcome = probe(&setup, PROBE_SEED, &[(Duration::ZERO, init.to_vec())]);
    assert_eq!(
        outcome,
        (deadline, CloseReason::Refused(InitRefusal::Replayed))
    );
    let later = spread(3, &init, 40, Duration::from_secs(9));
    let outcome = probe(&setup, PROBE_SEED, &later);
    assert_eq!(
        outcome,
        (deadline, CloseReason::Refused(InitRefusal::Replayed))
    );

    // A rejected INIT is spent as well.
    let init = client_init(&client_cfg, UNIX, 6);
    let mut rejected = Probe::new(&setup, 2);
    rejected.feed(Duration::ZERO, &init);
    assert!(rejected.authenticated());
    rejected.conn.reject(Status::TokenParseError).unwrap();
    let outcome = probe(&setup, PROBE_SEED, &[(Duration::ZERO, init)]);
    assert_eq!(
        outcome,
        (deadline, CloseReason::Refused(InitRefusal::Replayed))
    );
}

#[test]
fn init_outside_the_replay_window_gets_no_answer() {
    let config = fast_config();
    let window = config.replay_window();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    let client_cfg = client_setup(config.clone(), 1);
    let skew = window + Duration::from_secs(1);
    for (seed, unix) in [(1, UNIX + skew), (2, UNIX - skew)] {
        let init = client_init(&client_cfg, unix, seed);
        let outcome = probe(&setup, PROBE_SEED, &[(Duration::ZERO, init)]);
        assert_eq!(
            outcome,
            (deadline, CloseReason::Refused(InitRefusal::Stale))
        );
    }
    // The server's clock runs on: an INIT stamped at its start is stale once the window passed.
    let long_drain = config
        .to_builder()
        .drain_min(window * 2)
        .drain_max(window * 3)
        .build()
        .unwrap();
    let setup = server_setup(long_drain.clone());
    let init = client_init(&client_cfg, UNIX, 3);
    let (at, reason) = probe(&setup, PROBE_SEED, &[(skew, init)]);
    assert_eq!(reason, CloseReason::Refused(InitRefusal::Stale));
    assert_eq!(at, silent_close(&long_drain, PROBE_SEED));
}

#[test]
fn init_at_the_edge_of_the_replay_window_authenticates() {
    let config = fast_config();
    let window = config.replay_window();
    let setup = server_setup(config.clone());
    let client_cfg = client_setup(config, 1);
    for (seed, unix) in [(1, UNIX + window), (2, UNIX - window)] {
        let mut p = Probe::new(&setup, seed);
        p.feed(Duration::ZERO, &client_init(&client_cfg, unix, seed));
        assert!(p.authenticated(), "{:?}", p.events);
    }
}

#[test]
fn replay_filter_full_refuses_silently() {
    let config = fast_config()
        .to_builder()
        .replay_capacity(2)
        .build()
        .unwrap();
    let setup = server_setup(config.clone());
    let deadline = silent_close(&config, PROBE_SEED);
    let client_cfg = client_setup(config, 1);
    for seed in [1, 2] {
        let mut p = Probe::new(&setup, seed);
        p.feed(Duration::ZERO, &client_init(&client_cfg, UNIX, seed));
        assert!(p.authenticated(), "INIT {seed}: {:?}", p.events);
    }
    let outcome = probe(
        &setup,
        PROBE_SEED,
        &[(Duration::ZERO, client_init(&client_cfg, UNIX, 3))],
    );
    assert_eq!(
        outcome,
        (
            deadline,
            CloseReason::Refused(InitRefusal::ReplayFilterFull)
        )
    );
}

#[test]
fn close_instant_ignores_the_input_and_varies_with_the_seed() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let mut instants = Vec::new();
    for seed in 0..20 {
        let silent = silent_close(&config, seed);
        for (i, len) in GARBAGE_LENS.into_iter().enumerate() {
            let (at, _) = probe(
                &setup,
                seed,
                &[(Duration::ZERO, garbage(seed * 10 + i as u64, len))],
            );
            assert_eq!(at, silent, "seed {seed}: {len} bytes moved the close");
        }
        instants.push(silent);
    }
    for at in &instants {
        assert!((config.drain_min()..=config.drain_max()).contains(at));
    }
    let mut distinct = instants.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 15, "close instants: {instants:?}");
    // They are spread over the range, not bunched at one end.
    let span = *distinct.last().unwrap() - distinct[0];
    assert!(
        span > (config.drain_max() - config.drain_min()) / 2,
        "{instants:?}"
    );
}

#[test]
fn silent_client_closes_at_the_drain_deadline() {
    let config = Config::default();
    let at = silent_close(&config, 3);
    assert!((config.drain_min()..=config.drain_max()).contains(&at));
    let garbage_at = probe(
        &server_setup(config),
        3,
        &[(Duration::from_secs(29), garbage(1, 500))],
    );
    assert_eq!(garbage_at.0, at);
}

#[test]
fn valid_init_followed_by_garbage_authenticates_then_fails_closed() {
    // Not a probe: the INIT proves knowledge of the key. The server reports `Authenticate`;
    // a client cannot seal frames before the server INIT, so any further byte while the
    // application decides closes the connection at once, sending nothing.
    let config = fast_config();
    let setup = server_setup(config.clone());
    let client_cfg = client_setup(config, 1);
    for (seed, together) in [(1, true), (2, false)] {
        let init = client_init(&client_cfg, UNIX, seed);
        let junk = garbage(seed, 200);
        let mut p = Probe::new(&setup, seed);
        let at = Duration::from_millis(300);
        if together {
            p.feed(at, &[init, junk].concat());
        } else {
            p.feed(at, &init);
            assert!(p.authenticated());
            assert!(p.closes().is_empty());
            p.feed(at, &junk);
        }
        let kinds: Vec<_> = p
            .events
            .iter()
            .map(|(t, e)| (*t - p.start, e.clone()))
            .collect();
        assert!(
            matches!(kinds[0], (t, Event::Authenticate { ref token, .. }) if t == at && &token[..] == TOKEN)
        );
        assert_eq!(
            kinds[1..],
            [(
                at,
                Event::Closed(CloseReason::Protocol(port_core::ProtocolError::Malformed(
                    "frame before the server INIT"
                )))
            )]
        );
        assert!(p.conn.is_closed());
        assert_eq!(p.conn.poll_timeout(), None);
        // The decision comes too late: nothing is ever sent.
        assert_eq!(
            p.conn.accept(1),
            Err(Error::Closed(CloseReason::Protocol(
                port_core::ProtocolError::Malformed("frame before the server INIT")
            )))
        );
        p.drain();
        p.feed(at * 2, &garbage(seed + 9, 1000));
        p.run_out();
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.transmitted, 0);
        assert_eq!(p.conn.stats().bytes_sent, 0);
    }
}

#[test]
fn undecided_authentication_times_out_without_a_word() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let client_cfg = client_setup(config.clone(), 1);
    let mut p = Probe::new(&setup, 4);
    let at = Duration::from_secs(2);
    p.feed(at, &client_init(&client_cfg, UNIX, 4));
    assert!(p.authenticated());
    assert_eq!(
        p.conn.poll_timeout(),
        Some(p.start + at + config.handshake_timeout())
    );
    p.run_out();
    assert_eq!(
        p.closes(),
        [(
            at + config.handshake_timeout(),
            CloseReason::HandshakeTimeout
        )]
    );
    assert!(p.conn.is_closed());
    assert_eq!(
        p.conn.accept(1),
        Err(Error::Closed(CloseReason::HandshakeTimeout))
    );
    p.drain();
    assert_eq!(p.transmitted, 0);
    assert_eq!(p.conn.stats().bytes_sent, 0);
}

#[test]
fn client_without_an_answer_times_out_at_the_handshake_timeout() {
    let config = fast_config();
    let client_cfg = client_setup(config.clone(), 1);
    let start = Instant::now();
    let mut client = Connection::client(&client_cfg, start, UNIX, seed_from(1, 0xC1));
    assert!(client.poll_transmit(start).is_some());
    let deadline = start + config.handshake_timeout();
    assert_eq!(client.poll_timeout(), Some(deadline));
    client.handle_timeout(deadline - Duration::from_nanos(1));
    assert_eq!(client.poll_event(), None);
    assert!(!client.is_closed());
    client.handle_timeout(deadline);
    assert_eq!(
        client.poll_event(),
        Some(Event::Closed(CloseReason::HandshakeTimeout))
    );
    assert_eq!(client.poll_event(), None);
    assert!(client.poll_transmit(deadline).is_none());
    assert!(client.is_closed());
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(deadline + Duration::from_secs(1));
    assert_eq!(client.poll_event(), None);
}

#[test]
fn accept_and_reject_misuse_are_typed_errors() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let client_cfg = client_setup(config, 1);
    let now = Instant::now();
    let mut client = Connection::client(&client_cfg, now, UNIX, seed_from(1, 0xC1));
    let wrong_side = Err(Error::WrongSide {
        expected: Side::Server,
    });
    assert_eq!(client.accept(1), wrong_side);
    assert_eq!(client.reject(Status::TokenParseError), wrong_side);

    // Nothing to decide yet.
    let mut p = Probe::new(&setup, 1);
    assert_eq!(p.conn.accept(1), Err(Error::NoPendingAuthentication));
    assert_eq!(
        p.conn.reject(Status::UnknownError),
        Err(Error::NoPendingAuthentication)
    );
    p.feed(Duration::ZERO, &client.poll_transmit(now).unwrap());
    assert!(p.authenticated());
    // Rejecting with success is refused and leaves the decision pending.
    assert_eq!(
        p.conn.reject(Status::Success),
        Err(Error::RejectWithSuccess)
    );
    assert_eq!(p.transmitted, 0);
    p.conn.accept(5).unwrap();
    assert_eq!(p.conn.accept(5), Err(Error::NoPendingAuthentication));
    assert_eq!(
        p.conn.reject(Status::UnknownError),
        Err(Error::NoPendingAuthentication)
    );
    p.drain();
    assert!(p.transmitted > 0);
    assert!(p.conn.is_connected());

    // After a rejection the connection is closed, and says so.
    let mut p = Probe::new(&setup, 2);
    p.feed(Duration::ZERO, &client_init(&client_cfg, UNIX, 2));
    p.conn.reject(Status::RegistrationError).unwrap();
    let closed = Err(Error::Closed(CloseReason::Rejected(
        Status::RegistrationError,
    )));
    assert_eq!(p.conn.accept(1), closed);
    assert_eq!(p.conn.reject(Status::UnknownError), closed);
    assert_eq!(
        p.conn.reject(Status::Success),
        Err(Error::RejectWithSuccess)
    );
}

#[test]
fn close_before_the_handshake_is_immediate_and_silent() {
    let config = fast_config();
    let setup = server_setup(config.clone());
    let client_cfg = client_setup(config, 1);
    let now = Instant::now();

    // A client that closes before its INIT was written sends nothing at all.
    let mut client = Connection::client(&client_cfg, now, UNIX, seed_from(1, 0xC1));
    client.close();
    assert_eq!(client.poll_event(), Some(Event::Closed(CloseReason::Local)));
    assert!(client.poll_transmit(now).is_none());
    assert!(client.is_closed());
    assert_eq!(client.poll_timeout(), None);

    // A client that closes after its INIT went out ignores the server's answer.
    let mut client = Connection::client(&client_cfg, now, UNIX, seed_from(2, 0xC1));
    let init = client.poll_transmit(now).unwrap();
    client.close();
    client.close();
    assert_eq!(client.poll_event(), Some(Event::Closed(CloseReason::Local)));
    let mut server = Probe::new(&setup, 2);
    server.feed(Duration::ZERO, &init);
    server.conn.accept(1).unwrap();
    let answer = server.conn.poll_transmit(server.now).unwrap();
    client.handle_input(now, &answer);
    assert_eq!(client.poll_event(), None);
    assert!(client.poll_transmit(now).is_none());
    assert!(client.is_closed());

    // A server that closes while reading the INIT, or while deciding, sends nothing.
    let mut p = Probe::new(&setup, 3);
    p.feed(Duration::from_secs(1), &garbage(3, 40));
    p.conn.close();
    p.drain();
    assert_eq!(p.closes(), [(Duration::from_secs(1), CloseReason::Local)]);
    assert!(p.conn.is_closed());
    let mut p = Probe::new(&setup, 4);
    p.feed(Duration::from_secs(1), &client_init(&client_cfg, UNIX, 4));
    assert!(p.authenticated());
    p.conn.close();
    p.drain();
    assert_eq!(p.closes(), [(Duration::from_secs(1), CloseReason::Local)]);
    assert_eq!(p.conn.accept(1), Err(Error::Closed(CloseReason::Local)));
    p.feed(Duration::from_secs(2), &garbage(4, 300));
    p.run_out();
    assert_eq!(p.transmitted, 0);
    assert!(p.conn.is_closed());
}
