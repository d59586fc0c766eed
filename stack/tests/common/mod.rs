//! What the stack tests share: two sessions joined in memory on a virtual clock, and the
//! fixtures they run with.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::{
    ClientConfig, CloseReason, Config, Event, Link, Redirect, ServerConfig, ServerKey, Session,
    Start, seaside,
};
use port_stack::{LayerFactory, Registry, Stack, layers};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The wall clock the sessions start at.
pub const UNIX: Duration = Duration::from_secs(1_800_000_000);

/// A start at `now` with a seed made of `n`.
pub fn start(n: u8, now: Instant) -> Start {
    Start {
        now,
        unix_time: UNIX,
        seed: [n; 32],
    }
}

/// PORT client and server set-up with a key made from `n`; the token is `tok`.
pub fn setups(n: u8) -> (ClientConfig, ServerConfig) {
    let key = ServerKey::generate(&mut ChaCha20Rng::from_seed([n; 32]));
    let config = Config::default();
    let client = ClientConfig::new(config.clone(), key.client_key(), "tok").unwrap();
    (client, ServerConfig::new(config, key))
}

/// The built-in registries of a client and a server with `port` and `seaside` configured
/// (keys made from `n`).
pub fn registries(n: u8) -> (Registry, Registry) {
    let (client_setup, server_setup) = setups(n);
    let seaside_key = seaside::ServerKey::generate(&mut ChaCha20Rng::from_seed([n ^ 0x55; 32]));
    let seaside_client =
        seaside::ClientConfig::new(Config::default(), seaside_key.client_key(), "tok").unwrap();
    let seaside_server = seaside::ServerConfig::new(Config::default(), seaside_key);
    let client = configured(
        layers::port::client(client_setup),
        layers::seaside::client(seaside_client),
    );
    let server = configured(
        layers::port::server(server_setup),
        layers::seaside::server(seaside_server),
    );
    (client, server)
}

/// Both sides of `spec` (client, server), from fresh registries with keys made from `n` (so a
/// fresh replay filter), not yet linked to anything.
pub fn built(spec: &str, n: u8, now: Instant) -> (Stack, Stack) {
    let (client, server) = registries(n);
    (
        client.build(spec, &start(n, now)).unwrap(),
        server.build(spec, &start(n.wrapping_add(1), now)).unwrap(),
    )
}

/// Both sides of `spec`, as [`built`], each told its link is up.
pub fn linked(spec: &str, n: u8, now: Instant) -> (Stack, Stack) {
    let (mut client, mut server) = built(spec, n, now);
    client.handle_link_up(now, Link::STREAM);
    server.handle_link_up(now, Link::STREAM);
    (client, server)
}

/// The built-in registry with `port` and `seaside` built by these factories.
fn configured(port: LayerFactory, seaside: LayerFactory) -> Registry {
    let mut registry = Registry::with_builtins();
    registry.configure("port", port).unwrap();
    registry.configure("seaside", seaside).unwrap();
    registry
}

/// Two sessions joined by in-memory byte streams cut into `chunk`-byte pieces, on a virtual
/// clock that jumps to the next deadline, with a step limit that catches livelock. It does
/// what a driver does: tells both sides their link is up, shuts a side's write half once it
/// will never send again (the other side sees the end of the stream), and moves a session
/// that asks for a second connection (in memory that is the same pair of streams). The
/// server accepts with user id 5, echoes, and closes once the client finished.
pub struct Wire<C, S> {
    pub client: C,
    pub server: S,
    pub now: Instant,
    pub chunk: usize,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Whether the server echoes what it receives.
    pub echo: bool,
    client_fin: bool,
    server_fin: bool,
    steps: usize,
}

impl<C: Session, S: Session> Wire<C, S> {
    pub fn new(mut client: C, mut server: S, now: Instant, chunk: usize) -> Self {
        client.handle_link_up(now, Link::STREAM);
        server.handle_link_up(now, Link::STREAM);
        Wire {
            client,
            server,
            now,
            chunk,
            client_events: Vec::new(),
            server_events: Vec::new(),
            echo: true,
            client_fin: false,
            server_fin: false,
            steps: 0,
        }
    }

    /// One round; false when nothing can happen any more.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        assert!(self.steps < 200_000, "step limit reached: livelock?");
        let mut moved = self.carry();
        if !self.client_fin && self.client.is_send_finished() {
            self.client_fin = true;
            self.server.handle_link_end(self.now, None);
            moved = true;
        }
        if !self.server_fin && self.server.is_send_finished() {
            self.server_fin = true;
            self.client.handle_link_end(self.now, None);
            moved = true;
        }
        while let Some(event) = self.server.poll_event() {
            moved = true;
            match &event {
                Event::Authenticate { token, .. } => {
                    assert_eq!(&token[..], b"tok");
                    self.server.accept(5).unwrap();
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
        moved |= move_if_asked(&mut self.server, self.now);
        moved |= move_if_asked(&mut self.client, self.now);
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

    /// Moves every transmit across. Returns whether anything moved.
    fn carry(&mut self) -> bool {
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
        moved
    }

    /// Steps until `done` holds; false if nothing could happen any more before it did.
    pub fn run_until(&mut self, done: impl Fn(&Self) -> bool) -> bool {
        while !done(self) {
            if !self.step() {
                return done(self);
            }
        }
        true
    }

    /// Steps until nothing more can happen.
    pub fn run_out(&mut self) {
        while self.step() {}
    }

    pub fn connected(&self) -> bool {
        connects(&self.client_events) > 0
    }
}

/// A session that asked to move to its second connection gets it (the same streams).
fn move_if_asked(session: &mut impl Session, now: Instant) -> bool {
    if let Some(Redirect::Move { .. }) = session.redirect() {
        session.handle_link_up(now, Link::STREAM);
        return true;
    }
    false
}

pub fn data(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn closes(events: &[Event]) -> Vec<CloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(r) => Some(*r),
            _ => None,
        })
        .collect()
}

pub fn connects(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Connected { .. }))
        .count()
}

/// Twelve messages of growing sizes, and an empty one among them if asked.
pub fn messages(with_empty: bool) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = (1..=12u8)
        .map(|i| Bytes::from(vec![i; usize::from(i) * 211]))
        .collect();
    if with_empty {
        out.insert(3, Bytes::new());
    }
    out
}
