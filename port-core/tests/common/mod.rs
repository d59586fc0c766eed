//! An in-memory pair: a client and a server connection joined by two simulated byte streams,
//! a virtual clock that jumps to the next deadline, a step limit that catches livelock, and
//! hooks for chunking, latency and byte faults.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::Session;
use port_core::{ClientConfig, Config, Connection, Event, Seed, ServerConfig, ServerKey, Status};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// A fixed Unix time for tests (2027-01-15).
pub const UNIX: Duration = Duration::from_secs(1_800_000_000);
pub const TOKEN: &[u8] = b"test token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// How a stream's bytes are cut before `handle_input`.
#[derive(Clone, Copy, Debug)]
pub enum Chunking {
    /// Each transmit delivered in one call.
    Whole,
    /// One byte per call.
    OneByte,
    /// Random cut points (seeded), pieces of 1..=max bytes.
    Random { seed: u64, max: usize },
}

/// What the server application answers to `Authenticate`.
#[derive(Clone, Copy, Debug)]
pub enum Decision {
    Accept(u32),
    Reject(Status),
    /// Leave it pending (the test decides by hand).
    Hold,
}

/// Bytes in flight in one direction.
#[derive(Default)]
struct Link {
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    /// Every byte ever written in this direction (before faults).
    transcript: Vec<u8>,
    /// Stream offset of the next byte delivered (for faults).
    delivered: usize,
    /// The sizes of the transmits, in order.
    writes: Vec<usize>,
    /// False once the writer side stopped (its connection is closed and drained).
    open: bool,
}

pub type Fault = Box<dyn FnMut(Dir, usize, &mut [u8])>;

pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub start: Instant,
    pub now: Instant,
    pub client_events: Vec<(Instant, Event)>,
    pub server_events: Vec<(Instant, Event)>,
    pub decision: Decision,
    /// One-way delay of each direction.
    pub delay: Duration,
    pub chunking: Chunking,
    /// Called on each delivered piece with the stream offset of its first byte.
    pub fault: Option<Fault>,
    /// When true the client application echoes nothing and the server echoes every message.
    pub server_echoes: bool,
    /// Stop delivering bytes from the client (it went silent, e.g. its host vanished).
    pub client_silent: bool,
    /// Stop delivering bytes from the server.
    pub server_silent: bool,
    /// Each side's application closes its direction when the peer finished (default true).
    pub close_on_finish: bool,
    /// Deliver at most this many bytes of one direction (later bytes are written but lost).
    pub cut: Option<(Dir, usize)>,
    pub steps: usize,
    pub max_steps: usize,
    c2s: Link,
    s2c: Link,
    chunk_rng: ChaCha20Rng,
    chunk_seed: Option<u64>,
}

pub fn server_key(seed: u8) -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
}

/// A config with short timers so tests run few steps.
pub fn fast_config() -> Config {
    Config::builder()
        .handshake_timeout(Duration::from_secs(5))
        .min_timeout(Duration::from_millis(500))
        .default_timeout(Duration::from_secs(1))
        .max_timeout(Duration::from_secs(2))
        .min_next_in(Duration::from_secs(2))
        .max_next_in(Duration::from_secs(4))
        .max_retries(3)
        .drain_min(Duration::from_secs(10))
        .drain_max(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn seed_from(n: u64, salt: u8) -> Seed {
    let mut seed = [salt; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed
}

impl Pair {
    /// A pair with the given config and seeds (key seed 1), default chunking.
    pub fn new(config: Config, seed: u64) -> Pair {
        let key = server_key(1);
        let client_setup = ClientConfig::new(config.clone(), key.client_key(), TOKEN).unwrap();
        let server_setup = ServerConfig::new(config, key);
        Pair::with_setups(&client_setup, &server_setup, seed)
    }

    pub fn with_setups(client: &ClientConfig, server: &ServerConfig, seed: u64) -> Pair {
        let start = Instant::now();
        Pair {
            client: Connection::client(client, start, UNIX, seed_from(seed, 0xC1)),
            server: Connection::server(server, start, UNIX, seed_from(seed, 0x5E)),
            start,
            now: start,
            client_events: Vec::new(),
            server_events: Vec::new(),
            decision: Decision::Accept(42),
            delay: Duration::ZERO,
            chunking: Chunking::Whole,
            fault: None,
            server_echoes: true,
            client_silent: false,
            server_silent: false,
            close_on_finish: true,
            cut: None,
            steps: 0,
            max_steps: 1_000_000,
            c2s: Link {
                open: true,
                ..Link::default()
            },
            s2c: Link {
                open: true,
                ..Link::default()
            },
            chunk_rng: ChaCha20Rng::seed_from_u64(seed),
            chunk_seed: None,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn transcript(&self, dir: Dir) -> &[u8] {
        match dir {
            Dir::ClientToServer => &self.c2s.transcript,
            Dir::ServerToClient => &self.s2c.transcript,
        }
    }

    pub fn writes(&self, dir: Dir) -> &[usize] {
        match dir {
            Dir::ClientToServer => &self.c2s.writes,
            Dir::ServerToClient => &self.s2c.writes,
        }
    }

    /// Messages the client received, in order.
    pub fn client_messages(&self) -> Vec<Bytes> {
        messages(&self.client_events)
    }

    pub fn server_messages(&self) -> Vec<Bytes> {
        messages(&self.server_events)
    }

    pub fn client_closed(&self) -> Option<port_core::CloseReason> {
        closed(&self.client_events)
    }

    pub fn server_closed(&self) -> Option<port_core::CloseReason> {
        closed(&self.server_events)
    }

    pub fn client_connected(&self) -> bool {
        self.client_events
            .iter()
            .any(|(_, e)| matches!(e, Event::Connected { .. }))
    }

    /// One step: transmits, deliveries, events; if none of them did anything, jump the clock
    /// to the next deadline and fire timers. Returns false when nothing can ever happen again.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        assert!(self.steps <= self.max_steps, "step limit hit: livelock?");
        let mut progressed = self.transmit();
        self.apply_cut();
        progressed |= self.deliver();
        progressed |= self.events();
        if progressed {
            return true;
        }
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        true
    }

    /// Steps until `done` holds (checked between steps) or nothing can happen. Returns
    /// whether `done` held.
    pub fn run_until(&mut self, mut done: impl FnMut(&Pair) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
    }

    /// Runs until both sides are closed or nothing can happen.
    pub fn run_to_end(&mut self) {
        self.run_until(|p| p.client.is_closed() && p.server.is_closed());
        // Collect the events the last step left behind (the final `Closed`s).
        self.events();
    }

    /// Runs until virtual time reaches `until` (or nothing can happen).
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            if !self.step() {
                break;
            }
        }
    }

    pub fn handshake(&mut self) {
        assert!(
            self.run_until(|p| p.client_connected()),
            "handshake did not complete: client {:?} server {:?}",
            self.client_events,
            self.server_events
        );
    }

    /// Drops in-flight bytes beyond the cut, if one is set.
    fn apply_cut(&mut self) {
        let Some((dir, limit)) = self.cut else {
            return;
        };
        let link = match dir {
            Dir::ClientToServer => &mut self.c2s,
            Dir::ServerToClient => &mut self.s2c,
        };
        let mut at = link.delivered;
        let mut keep = 0;
        for (_, bytes) in link.in_flight.iter_mut() {
            if at >= limit {
                break;
            }
            bytes.truncate(limit - at);
            at += bytes.len();
            keep += 1;
        }
        link.in_flight.truncate(keep);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.client.poll_timeout(),
            self.server.poll_timeout(),
            self.c2s.in_flight.front().map(|(t, _)| *t),
            self.s2c.in_flight.front().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn transmit(&mut self) -> bool {
        let mut any = false;
        while let Some(bytes) = self.client.poll_transmit(self.now) {
            any = true;
            push(&mut self.c2s, self.now + self.delay, &bytes);
        }
        while let Some(bytes) = self.server.poll_transmit(self.now) {
            any = true;
            push(&mut self.s2c, self.now + self.delay, &bytes);
        }
        any
    }

    fn deliver(&mut self) -> bool {
        let mut any = false;
        for dir in [Dir::ClientToServer, Dir::ServerToClient] {
            if dir == Dir::ClientToServer && self.client_silent {
                self.c2s.in_flight.clear();
                continue;
            }
            if dir == Dir::ServerToClient && self.server_silent {
                self.s2c.in_flight.clear();
                continue;
            }
            loop {
                let link = match dir {
                    Dir::ClientToServer => &mut self.c2s,
                    Dir::ServerToClient => &mut self.s2c,
                };
                let Some((at, _)) = link.in_flight.front() else {
                    break;
                };
                if *at > self.now {
                    break;
                }
                let (_, mut bytes) = link.in_flight.pop_front().unwrap();
                let offset = link.delivered;
                link.delivered += bytes.len();
                if let Some(fault) = self.fault.as_mut() {
                    fault(dir, offset, &mut bytes);
                }
                let receiver = match dir {
                    Dir::ClientToServer => &mut self.server,
                    Dir::ServerToClient => &mut self.client,
                };
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = match self.chunking {
                        Chunking::Whole => rest.len(),
                        Chunking::OneByte => 1,
                        Chunking::Random { seed, max } => {
                            if self.chunk_seed != Some(seed) {
                                self.chunk_seed = Some(seed);
                                self.chunk_rng = ChaCha20Rng::seed_from_u64(seed);
                            }
                            1 + (self.chunk_rng.next_u32() as usize % max.max(1))
                        }
                    }
                    .min(rest.len());
                    receiver.handle_input(self.now, &rest[..n]);
                    rest = &rest[n..];
                }
                any = true;
            }
        }
        any
    }

    fn events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.server.poll_event() {
            any = true;
            match &event {
                Event::Authenticate { .. } => match self.decision {
                    Decision::Accept(id) => self.server.accept(id).unwrap(),
                    Decision::Reject(status) => self.server.reject(status).unwrap(),
                    Decision::Hold => {}
                },
                Event::Data(m) if self.server_echoes => {
                    // The echo may be refused once the server is closing; that is fine.
                    let _ = self.server.send(m.clone());
                }
                // An echo server ends its direction when the client ended its own.
                Event::Finished if self.close_on_finish => self.server.close(),
                _ => {}
            }
            self.server_events.push((self.now, event));
        }
        while let Some(event) = self.client.poll_event() {
            any = true;
            if matches!(event, Event::Finished) && self.close_on_finish {
                self.client.close();
            }
            self.client_events.push((self.now, event));
        }
        any
    }
}

fn push(link: &mut Link, at: Instant, bytes: &[u8]) {
    link.transcript.extend_from_slice(bytes);
    link.writes.push(bytes.len());
    link.in_flight.push_back((at, bytes.to_vec()));
}

fn messages(events: &[(Instant, Event)]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[(Instant, Event)]) -> Option<port_core::CloseReason> {
    events.iter().find_map(|(_, e)| match e {
        Event::Closed(r) => Some(*r),
        _ => None,
    })
}

/// Makes a deterministic message of `len` bytes, distinct per `tag`.
pub fn message(tag: u32, len: usize) -> Bytes {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(tag));
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    Bytes::from(out)
}

/// One [`message`] per length, each tagged with its index.
pub fn numbered_messages(lengths: &[usize]) -> Vec<Bytes> {
    (0u32..)
        .zip(lengths)
        .map(|(i, &len)| message(i, len))
        .collect()
}

impl Pair {
    /// Sends `sent` from the client and runs until as many messages came back to it (the
    /// server echoes): the caller then checks what came back, and what the server got.
    #[track_caller]
    pub fn send_and_await_echoes(&mut self, sent: &[Bytes]) {
        for m in sent {
            self.client.send(m.clone()).unwrap();
        }
        assert!(
            self.run_until(|p| p.client_messages().len() == sent.len()),
            "{} of {} messages came back",
            self.client_messages().len(),
            sent.len()
        );
    }

    /// Moves the virtual clock to exactly `now + d`, doing everything due on the way: unlike
    /// [`Pair::run_for`], the clock never jumps past the target, so a test can act at precise
    /// instants (e.g. send a message every 100 ms).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.steps += 1;
            assert!(self.steps <= self.max_steps, "step limit hit: livelock?");
            let mut progressed = self.transmit();
            progressed |= self.deliver();
            progressed |= self.events();
            if progressed {
                continue;
            }
            match self.next_deadline() {
                Some(next) if next <= until => {
                    self.now = self.now.max(next);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
    }

    /// Like [`Pair::step`], but everything the server writes is lost on the way (its host
    /// vanished): the client receives nothing more.
    pub fn step_server_silent(&mut self) -> bool {
        self.server_silent = true;
        self.step()
    }
}

/// The instant of the first `Closed` event in `events`, with its reason.
pub fn closed_at(events: &[(Instant, Event)]) -> Option<(Instant, port_core::CloseReason)> {
    events.iter().find_map(|(t, e)| match e {
        Event::Closed(r) => Some((*t, *r)),
        _ => None,
    })
}

/// The client and server setups `Pair::new` builds for `config` (server key seed 1, `TOKEN`).
/// Build a fresh `ServerConfig` (from `key`) for every server: each one has its own replay filter.
pub fn setups_for(config: &Config) -> (ClientConfig, ServerKey) {
    let key = server_key(1);
    let client = ClientConfig::new(config.clone(), key.client_key(), TOKEN).unwrap();
    (client, key)
}

/// A lone client built exactly as `Pair::with_setups(setup, .., seed)` builds its client: it
/// sends the same INIT, so it can open a recorded server→client stream of that pair.
pub fn lone_client(setup: &ClientConfig, seed: u64, start: Instant) -> Connection {
    Connection::client(setup, start, UNIX, seed_from(seed, 0xC1))
}

/// A lone server built exactly as `Pair::with_setups(.., setup, seed)` builds its server: it can
/// open a recorded client→server stream of that pair (give it a fresh `ServerConfig`, or the
/// replay filter refuses the INIT it already saw).
pub fn lone_server(setup: &ServerConfig, seed: u64, start: Instant) -> Connection {
    Connection::server(setup, start, UNIX, seed_from(seed, 0x5E))
}

/// Feeds `stream` to `conn` at `now` in pieces of at most `piece` bytes, accepting any
/// `Authenticate` with user id 42 (the `Pair` default). Returns each event with the number of
/// stream bytes fed when it appeared. Transmits are taken and dropped. Give a server its INIT
/// in pieces that end where the INIT ends (one byte at a time will do): a frame arriving before
/// `accept` is a protocol violation.
pub fn feed(
    conn: &mut Connection,
    now: Instant,
    stream: &[u8],
    piece: usize,
) -> Vec<(usize, Event)> {
    let mut out = Vec::new();
    let mut fed = 0;
    for chunk in stream.chunks(piece.max(1)) {
        conn.handle_input(now, chunk);
        fed += chunk.len();
        while let Some(event) = conn.poll_event() {
            if matches!(event, Event::Authenticate { .. }) {
                conn.accept(42).unwrap();
            }
            out.push((fed, event));
        }
        while conn.poll_transmit(now).is_some() {}
    }
    out
}

/// Like `Pair::step`, but the `dir` stream is cut after its first `limit` bytes: later bytes
/// are still written (and recorded in the transcript) but never delivered, as if the path
/// silently stopped there.
pub fn step_cut(p: &mut Pair, dir: Dir, limit: usize) -> bool {
    p.cut = Some((dir, limit));
    p.step()
}

/// `Pair::run_until` with the `dir` stream cut after `limit` bytes (see [`step_cut`]).
pub fn run_cut_until(
    p: &mut Pair,
    dir: Dir,
    limit: usize,
    mut done: impl FnMut(&Pair) -> bool,
) -> bool {
    loop {
        if done(p) {
            return true;
        }
        if !step_cut(p, dir, limit) {
            return done(p);
        }
    }
}
