//! Keepalive: idle connections stay up, a silent peer is detected within the documented bound,
//! the RTT estimate follows the path, PINGs ride on DATA frames, and the PONG wait is clamped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use port_core::Session;
use port_core::{CloseReason, Config, Connection, Event, Side};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// When one side's keepalive counters moved, as precisely as the step granularity allows
/// (PINGs are counted when sealed, PONGs when opened, both at the step's instant).
#[derive(Debug, Default)]
struct Trace {
    pings: Vec<Instant>,
    pongs: Vec<Instant>,
}

impl Trace {
    fn observe(&mut self, conn: &Connection, now: Instant) {
        let stats = conn.stats();
        while (self.pings.len() as u64) < stats.pings_sent {
            self.pings.push(now);
        }
        while (self.pongs.len() as u64) < stats.pongs_received {
            self.pongs.push(now);
        }
    }

    /// The last answered keepalive, or `since` (the handshake) if none was answered yet.
    fn last_pong(&self, since: Instant) -> Instant {
        self.pongs.last().copied().unwrap_or(since)
    }

    /// The first PING sealed after `t`.
    fn first_ping_after(&self, t: Instant) -> Option<Instant> {
        self.pings.iter().copied().find(|&p| p > t)
    }
}

/// One side of a pair: its name, connection and events.
type SideView<'a> = (&'static str, &'a Connection, &'a [(Instant, Event)]);

/// A pair plus one trace per side.
struct Watched {
    p: Pair,
    client: Trace,
    server: Trace,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    ServerSilent,
}

impl Watched {
    fn new(config: Config, seed: u64, delay: Duration) -> Watched {
        let mut p = Pair::new(config, seed);
        p.delay = delay;
        p.handshake();
        let mut w = Watched {
            p,
            client: Trace::default(),
            server: Trace::default(),
        };
        w.observe();
        w
    }

    fn observe(&mut self) {
        self.client.observe(&self.p.client, self.p.now);
        self.server.observe(&self.p.server, self.p.now);
    }

    fn step(&mut self, mode: Mode) -> bool {
        let more = match mode {
            Mode::Normal => self.p.step(),
            Mode::ServerSilent => self.p.step_server_silent(),
        };
        self.observe();
        more
    }

    /// Steps until virtual time reaches `now + d` (the last step may jump past it), or until
    /// nothing can happen any more (both sides closed).
    fn run_for(&mut self, d: Duration, mode: Mode) {
        let until = self.p.now + d;
        while self.p.now < until && self.step(mode) {}
    }

    /// Both sides, with their events.
    fn sides(&self) -> [SideView<'_>; 2] {
        [
            ("client", &self.p.client, &self.p.client_events),
            ("server", &self.p.server, &self.p.server_events),
        ]
    }

    /// Steps until `done` holds.
    fn run_until(&mut self, mode: Mode, done: impl Fn(&Pair) -> bool) {
        while !done(&self.p) {
            assert!(
                self.step(mode),
                "nothing left to do at {:?}",
                self.p.elapsed()
            );
        }
    }

    /// The side that keeps listening while `silent` is quiet: its connection, trace and close.
    fn judge(&self, silent: Side) -> (&Connection, &Trace, Option<(Instant, CloseReason)>) {
        match silent {
            Side::Client => (
                &self.p.server,
                &self.server,
                closed_at(&self.p.server_events),
            ),
            Side::Server => (
                &self.p.client,
                &self.client,
                closed_at(&self.p.client_events),
            ),
        }
    }

    /// When each side reported `Connected`.
    fn connected_at(&self) -> (Instant, Instant) {
        let at = |events: &[(Instant, Event)]| {
            events
                .iter()
                .find_map(|(t, e)| matches!(e, Event::Connected { .. }).then_some(*t))
                .expect("connected")
        };
        (at(&self.p.client_events), at(&self.p.server_events))
    }
}

fn no_data(events: &[(Instant, Event)]) -> bool {
    !events.iter().any(|(_, e)| matches!(e, Event::Data(_)))
}

#[test]
fn idle_connection_stays_up_across_many_keepalive_periods() {
    let config = fast_config();
    let span = config.max_next_in() * 20;
    for seed in 1..=3 {
        let mut w = Watched::new(config.clone(), seed, Duration::ZERO);
        let start = (w.p.client.stats(), w.p.server.stats());
        w.run_for(span, Mode::Normal);
        assert!(w.p.client.is_connected() && w.p.server.is_connected());
        assert_eq!(w.p.client_closed(), None);
        assert_eq!(w.p.server_closed(), None);
        assert!(no_data(&w.p.client_events) && no_data(&w.p.server_events));
        for (side, before, conn) in [
            ("client", start.0, &w.p.client),
            ("server", start.1, &w.p.server),
        ] {
            let now = conn.stats();
            let pongs = now.pongs_received - before.pongs_received;
            // One cycle every min_next_in..=max_next_in (the path has no delay).
            let fewest = (span.as_secs_f64() / config.max_next_in().as_secs_f64()) as u64 - 1;
            let most = (span.as_secs_f64() / config.min_next_in().as_secs_f64()) as u64 + 1;
            assert!(
                (fewest..=most).contains(&pongs),
                "{side}: {pongs} PONGs in {span:?}"
            );
            // Every PING was answered at the first attempt (one may be in flight).
            let pings = now.pings_sent - before.pings_sent;
            assert!(pings == pongs || pings == pongs + 1, "{side}: {now:?}");
            assert_eq!(now.messages_sent, 0);
            assert_eq!(now.messages_received, 0);
            assert!(now.frames_sent >= pings, "{side}: {now:?}");
            assert_eq!(conn.rtt(), Some(Duration::ZERO), "{side}");
        }
        // The keepalive cycles are randomized: the gaps between PINGs are not all equal.
        let gaps: Vec<_> = w.client.pings.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().any(|g| *g != gaps[0]),
            "client PING gaps: {gaps:?}"
        );
        for g in &gaps {
            assert!(
                (config.min_next_in()..=config.max_next_in()).contains(g),
                "gap {g:?}"
            );
        }
    }
}

/// Silences one side at `quiet_after` past the handshake and checks the other side's verdict.
fn detects_silent_peer(config: &Config, seed: u64, quiet_after: Duration, silent: Side) {
    let mut w = Watched::new(config.clone(), seed, Duration::ZERO);
    let (client_up, server_up) = w.connected_at();
    w.run_for(quiet_after, Mode::Normal);
    let silence = w.p.now;
    // The judge is the side that keeps listening.
    let (mode, judge_up) = match silent {
        Side::Client => {
            w.p.client_silent = true;
            (Mode::Normal, server_up)
        }
        Side::Server => (Mode::ServerSilent, client_up),
    };
    let pongs = w.judge(silent).1.pongs.clone();
    let last_pong = pongs.last().copied().unwrap_or(judge_up);
    assert!(last_pong <= silence);
    while w.judge(silent).2.is_none() {
        assert!(w.step(mode), "nothing left to do at {:?}", w.p.elapsed());
    }
    let (conn, trace, closed) = w.judge(silent);
    let (closed, reason) = closed.unwrap();
    let what = format!("seed {seed}, {silent} quiet after {quiet_after:?}");
    assert_eq!(reason, CloseReason::KeepaliveTimeout, "{what}");
    assert_eq!(trace.pongs, pongs, "{what}: a PONG got through");
    let since = closed - last_pong;
    let what = format!("{what}: closed {since:?} after the last PONG");
    assert!(since <= config.max_keepalive_detection(), "{what}");
    let lower = config.min_next_in() + config.min_timeout() * config.max_retries();
    assert!(since >= lower, "{what}");
    // The retry budget was spent: max_retries PINGs went unanswered, none before.
    let stats = conn.stats();
    assert_eq!(
        stats.pings_sent - stats.pongs_received,
        u64::from(config.max_retries()),
        "{what}"
    );
    // On a path without delay the estimate is zero, so each attempt waits min_timeout
    // (default_timeout before the first sample).
    let wait = if pongs.is_empty() {
        config.default_timeout()
    } else {
        config.min_timeout()
    };
    let first = trace.first_ping_after(last_pong).unwrap();
    assert_eq!(closed, first + wait * config.max_retries(), "{what}");
    assert!(conn.is_closed());
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn server_detects_a_silent_client_within_the_bound() {
    for (seed, quiet_ms) in [(1, 0), (2, 3_700), (3, 11_300), (4, 25_000), (5, 40_001)] {
        detects_silent_peer(&fast_config(), seed, ms(quiet_ms), Side::Client);
    }
    detects_silent_peer(&Config::default(), 6, secs(300), Side::Client);
}

#[test]
fn client_detects_a_silent_server_within_the_bound() {
    for (seed, quiet_ms) in [(11, 0), (12, 2_500), (13, 9_999), (14, 31_000)] {
        detects_silent_peer(&fast_config(), seed, ms(quiet_ms), Side::Server);
    }
    detects_silent_peer(&Config::default(), 15, secs(200), Side::Server);
}

#[test]
fn detection_bound_holds_when_the_first_ping_waits_longest() {
    // Before any RTT sample each attempt waits default_timeout; with a path delay the
    // estimate grows too. Either way the documented bound holds.
    let config = fast_config();
    for (seed, delay) in [(21, ms(0)), (22, ms(120)), (23, ms(240))] {
        let mut w = Watched::new(config.clone(), seed, delay);
        let (_, server_up) = w.connected_at();
        w.p.client_silent = true;
        w.run_until(Mode::Normal, |p| p.server_closed().is_some());
        let (closed, reason) = closed_at(&w.p.server_events).unwrap();
        assert_eq!(reason, CloseReason::KeepaliveTimeout);
        assert_eq!(w.p.server.stats().pongs_received, 0);
        let since = closed - server_up;
        assert!(since <= config.max_keepalive_detection(), "{since:?}");
        // No sample yet: every attempt waited default_timeout.
        let first = w.server.pings[0];
        assert_eq!(
            closed,
            first + config.default_timeout() * config.max_retries()
        );
    }
}

#[test]
fn rtt_estimate_follows_the_path_delay() {
    let config = fast_config();
    let mut w = Watched::new(config.clone(), 31, ms(50));
    w.run_for(secs(40), Mode::Normal);
    for (side, conn) in [("client", &w.p.client), ("server", &w.p.server)] {
        assert!(conn.stats().pongs_received >= 5, "{side}");
        let rtt = conn.rtt().expect("sampled");
        assert!(rtt.abs_diff(ms(100)) <= ms(3), "{side}: {rtt:?}");
    }

    w.p.delay = ms(200);
    let pongs_before = (w.client.pongs.len(), w.server.pongs.len());
    let mut last = (w.p.client.rtt().unwrap(), w.p.server.rtt().unwrap());
    let until = w.p.now + secs(80);
    while w.p.now < until {
        assert!(w.step(Mode::Normal));
        let now = (w.p.client.rtt().unwrap(), w.p.server.rtt().unwrap());
        assert!(now.0 >= last.0 && now.1 >= last.1, "{last:?} -> {now:?}");
        last = now;
    }
    for (side, conn, before) in [
        ("client", &w.p.client, pongs_before.0),
        ("server", &w.p.server, pongs_before.1),
    ] {
        let samples = conn.stats().pongs_received as usize - before;
        assert!(samples >= 15, "{side}: {samples} samples");
        let rtt = conn.rtt().unwrap();
        assert!(rtt > ms(360) && rtt <= ms(400), "{side}: {rtt:?}");
        assert!(conn.is_connected());
        // No attempt was lost on the way: the PONG wait tracked the growing RTT.
        let s = conn.stats();
        assert!(s.pings_sent - s.pongs_received <= 1, "{side}: {s:?}");
    }
}

#[test]
fn keepalive_rides_on_data_frames_while_data_flows() {
    let config = fast_config();
    for seed in [41, 42, 43] {
        let mut p = Pair::new(config.clone(), seed);
        // The server only receives, so its own PINGs go out on their own and the client
        // answers each at once with a PONG frame; everything else the client sends is data.
        p.server_echoes = false;
        p.handshake();
        p.advance(ms(1_234));
        let client0 = p.client.stats();
        let server0 = p.server.stats();
        let writes0 = p.writes(Dir::ClientToServer).len();
        let span = config.max_next_in() * 5;
        let count = (span.as_millis() / 100) as u32;
        for i in 0..count {
            p.client.send(message(i, 64)).unwrap();
            p.advance(ms(100));
        }
        let client1 = p.client.stats();
        let server1 = p.server.stats();
        let writes = p.writes(Dir::ClientToServer).len() - writes0;
        let messages = client1.messages_sent - client0.messages_sent;
        let frames = client1.frames_sent - client0.frames_sent;
        let pings = client1.pings_sent - client0.pings_sent;
        let pongs_for_server = server1.pongs_received - server0.pongs_received;
        assert_eq!(messages, u64::from(count));
        assert_eq!(
            server1.messages_received - server0.messages_received,
            messages
        );
        assert!(pings >= 4, "seed {seed}: {pings} client PINGs");
        assert_eq!(client1.pongs_received - client0.pongs_received, pings);
        assert!(pongs_for_server >= 4, "seed {seed}");
        assert_eq!(
            frames,
            messages + pongs_for_server,
            "seed {seed}: {frames} client frames for {messages} messages, \
             {pongs_for_server} PONGs and {pings} PINGs that should have ridden on data"
        );
        assert_eq!(writes as u64, frames, "seed {seed}: one write per frame");
        assert!(p.client.is_connected() && p.server.is_connected());
    }
}

#[test]
fn delay_beyond_max_timeout_is_fatal_and_the_wait_is_clamped() {
    // default_timeout = max_timeout so that a 1.8 s RTT is sampled at the first attempt; the
    // estimate (srtt + 4·rttvar) then exceeds max_timeout and is clamped to it.
    let config = fast_config()
        .to_builder()
        .default_timeout(secs(2))
        .build()
        .unwrap();
    let mut w = Watched::new(config.clone(), 51, ms(900));
    let (client_up, server_up) = w.connected_at();
    w.run_until(Mode::Normal, |p| {
        p.client.stats().pongs_received >= 1 && p.server.stats().pongs_received >= 1
    });
    w.run_for(ms(500), Mode::Normal);
    for conn in [&w.p.client, &w.p.server] {
        assert!(conn.is_connected());
        assert!(conn.stats().pongs_received <= 4);
        assert_eq!(conn.rtt(), Some(ms(1_800)));
    }

    w.p.delay = secs(10);
    let change = w.p.now;
    w.run_until(Mode::Normal, |p| {
        p.client_closed().is_some() && p.server_closed().is_some()
    });
    for (side, events, trace, up) in [
        ("client", &w.p.client_events, &w.client, client_up),
        ("server", &w.p.server_events, &w.server, server_up),
    ] {
        let (closed, reason) = closed_at(events).unwrap();
        assert_eq!(reason, CloseReason::KeepaliveTimeout, "{side}");
        let last_pong = trace.last_pong(up);
        assert!(last_pong <= change + ms(1_800), "{side}");
        assert!(
            closed - last_pong <= config.max_keepalive_detection(),
            "{side}"
        );
        // Each of the unanswered attempts waited exactly max_timeout.
        let first = trace.first_ping_after(last_pong).unwrap();
        assert_eq!(
            closed,
            first + config.max_timeout() * config.max_retries(),
            "{side}"
        );
    }
}

#[test]
fn delay_below_min_timeout_stays_up() {
    let config = fast_config();
    // Round trip 490 ms, just under min_timeout (500 ms). Long enough for rttvar to decay
    // away, so the unclamped wait would shrink to the round trip itself.
    let mut w = Watched::new(config.clone(), 61, ms(245));
    w.run_for(secs(600), Mode::Normal);
    for (side, conn) in [("client", &w.p.client), ("server", &w.p.server)] {
        assert!(conn.is_connected(), "{side}");
        let s = conn.stats();
        assert!(s.pongs_received >= 100, "{side}: {s:?}");
        assert!(s.pings_sent - s.pongs_received <= 1, "{side}: {s:?}");
        assert_eq!(conn.rtt(), Some(ms(490)), "{side}");
    }
}

#[test]
fn steady_rtt_between_min_and_max_timeout_stays_up() {
    // Round trip 800 ms: above min_timeout (500 ms), below default_timeout (1 s) and
    // max_timeout (2 s). A perfectly steady path must not wear the connection down.
    let config = fast_config();
    let mut w = Watched::new(config.clone(), 71, ms(400));
    w.run_for(secs(600), Mode::Normal);
    for (side, conn, events) in w.sides() {
        let s = conn.stats();
        let closed = closed_at(events).map(|(t, r)| (t - w.p.start, r));
        assert!(conn.is_connected(), "{side} closed {closed:?}: {s:?}");
        assert!(s.pongs_received >= 100, "{side}: {s:?}");
        assert_eq!(conn.rtt(), Some(ms(800)), "{side}");
    }
}

#[test]
fn rtt_above_default_timeout_but_below_max_timeout_stays_up() {
    // Round trip 1.2 s: longer than the wait before the first sample (default_timeout, 1 s)
    // but well inside max_timeout (2 s). Each PING carries a fresh id, so a late PONG to an
    // earlier attempt is unambiguous proof of life and a valid RTT sample.
    let config = fast_config();
    let mut w = Watched::new(config.clone(), 72, ms(600));
    w.run_for(config.max_next_in() * 10, Mode::Normal);
    for (side, conn, events) in w.sides() {
        let s = conn.stats();
        let closed = closed_at(events).map(|(t, r)| (t - w.p.start, r));
        assert!(conn.is_connected(), "{side} closed {closed:?}: {s:?}");
        assert!(s.pongs_received >= 5, "{side}: {s:?}");
        let rtt = conn.rtt().expect("sampled");
        assert!(rtt.abs_diff(ms(1_200)) <= ms(10), "{side}: {rtt:?}");
    }
}
