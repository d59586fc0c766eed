//! Target `connection`: a client and a server joined by two in-memory byte queues, driven by a
//! sequence of operations on a virtual clock.
//!
//! Transmits are taken after every operation and appended to the queue of their direction;
//! delivery ops move bytes from a queue into the receiver's `handle_input`; `Advance` moves the
//! clock and fires both sides' timers. After every operation:
//!
//! - nothing panics; `receive_buffered()` stays within its ceiling (see
//!   [`check_receive_buffered`]);
//! - right after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now` (nothing
//!   due is left behind); after the transmits are taken, it is `None` exactly when the
//!   connection is closed;
//! - the server transmits nothing before the application decided on an authenticated INIT, and
//!   delivers no `Data` unless it accepted;
//! - `Authenticate` carries exactly the client's token and type; the client connects with the
//!   user id the server accepted, or is rejected with the status the server rejected with;
//! - every message delivered is the next one the peer sent (the delivered messages are always a
//!   prefix of the sent ones, tampering or not: the AEAD makes any other outcome a bug);
//! - `Closed` is reported once, `close_reason()` equals it from then on, and no `Data`,
//!   `Finished` or transmit follows it once `is_closed()`;
//! - `send`, `accept` and `reject` succeed exactly when the state allows them;
//! - without tampering (`Corrupt`, `Drop`), no side ever closes with a protocol error or refuses
//!   the INIT as unauthenticated or replayed.
//!
//! At the end, if nothing was tampered with or lost, everything in flight is delivered; then if
//! both sides connected and neither failed, every message sent arrived, in order, and if both
//! sides called `close`, both are closed gracefully.

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use port_core::Session;
use port_core::{
    ClientConfig, CloseReason, Config, Connection, Error, Event, InitRefusal, MAX_TOKEN_LEN,
    ServerConfig, Status,
};

use crate::encode::Encoder;
use crate::setup::{
    CLIENT_SEED, SERVER_SEED, UNIX, base, check_receive_buffered, preset, server_key, token,
};

/// A direction.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// One operation on the pair.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Deliver up to `chunk` queued client bytes to the server (0: all of them).
    ClientToServer {
        /// Bytes to deliver.
        chunk: u16,
    },
    /// Deliver up to `chunk` queued server bytes to the client (0: all of them).
    ServerToClient {
        /// Bytes to deliver.
        chunk: u16,
    },
    /// Xor a queued byte (offset modulo the queue length).
    Corrupt {
        /// Which queue.
        dir: Dir,
        /// Offset in the queue.
        offset: u16,
        /// Xor mask.
        xor: u8,
    },
    /// Move the clock forward and fire both sides' timers.
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// The client sends a message.
    ClientSend(Vec<u8>),
    /// The server sends a message.
    ServerSend(Vec<u8>),
    /// The client closes.
    ClientClose,
    /// The server closes.
    ServerClose,
    /// The server application accepts with a user id.
    Accept(u32),
    /// The server application rejects with a status code.
    Reject(u16),
    /// Lose the first `n` queued bytes of a direction.
    Drop {
        /// Which queue.
        dir: Dir,
        /// Bytes lost.
        n: u16,
    },
    /// The client sends a large message of `len` bytes (a pattern from `fill`).
    ClientSendLarge {
        /// Length.
        len: u16,
        /// Pattern seed.
        fill: u8,
    },
    /// The server sends a large message.
    ServerSendLarge {
        /// Length.
        len: u16,
        /// Pattern seed.
        fill: u8,
    },
    /// Deliver everything both ways until nothing moves.
    Flush,
    /// Jump the clock to the earliest deadline of the two sides and fire timers.
    NextDeadline,
    /// The stream of `dir` ends at its receiver (TCP FIN); nothing more is delivered that way.
    TransportEnd {
        /// Which stream.
        dir: Dir,
    },
}

const OP_COUNT: u32 = 16;

impl Op {
    fn encode(&self, e: &mut Encoder) {
        let dir = |e: &mut Encoder, d: Dir| {
            e.variant(d as u32, 2);
        };
        match self {
            Op::ClientToServer { chunk } => e.variant(0, OP_COUNT).u16(*chunk),
            Op::ServerToClient { chunk } => e.variant(1, OP_COUNT).u16(*chunk),
            Op::Corrupt {
                dir: d,
                offset,
                xor,
            } => {
                e.variant(2, OP_COUNT);
                dir(e, *d);
                e.u16(*offset).u8(*xor)
            }
            Op::Advance { ms } => e.variant(3, OP_COUNT).u32(*ms),
            Op::ClientSend(m) => e.variant(4, OP_COUNT).byte_vec(m),
            Op::ServerSend(m) => e.variant(5, OP_COUNT).byte_vec(m),
            Op::ClientClose => e.variant(6, OP_COUNT),
            Op::ServerClose => e.variant(7, OP_COUNT),
            Op::Accept(id) => e.variant(8, OP_COUNT).u32(*id),
            Op::Reject(code) => e.variant(9, OP_COUNT).u16(*code),
            Op::Drop { dir: d, n } => {
                e.variant(10, OP_COUNT);
                dir(e, *d);
                e.u16(*n)
            }
            Op::ClientSendLarge { len, fill } => e.variant(11, OP_COUNT).u16(*len).u8(*fill),
            Op::ServerSendLarge { len, fill } => e.variant(12, OP_COUNT).u16(*len).u8(*fill),
            Op::Flush => e.variant(13, OP_COUNT),
            Op::NextDeadline => e.variant(14, OP_COUNT),
            Op::TransportEnd { dir: d } => {
                e.variant(15, OP_COUNT);
                dir(e, *d);
                e
            }
        };
    }
}

/// The fixed part of a `connection` input; the operations follow until the input ends.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Client configuration preset.
    pub client_preset: u8,
    /// Server configuration preset.
    pub server_preset: u8,
    /// Token length (modulo `MAX_TOKEN_LEN + 1`).
    pub token_len: u16,
    /// Client type byte.
    pub client_type: u8,
    /// Varies both connection seeds.
    pub seed: u8,
}

/// A whole `connection` input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInput {
    /// The fixed part.
    pub setup: Setup,
    /// The operations.
    pub ops: Vec<Op>,
}

impl ConnInput {
    /// The bytes from which [`ConnInput::decode`] decodes `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        let s = &self.setup;
        e.u8(s.client_preset)
            .u8(s.server_preset)
            .u16(s.token_len)
            .u8(s.client_type)
            .u8(s.seed);
        for op in &self.ops {
            op.encode(&mut e);
        }
        e.finish()
    }

    /// Decodes an input: the setup, then operations until the bytes run out.
    pub fn decode(data: &[u8]) -> Option<ConnInput> {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).ok()?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(Op::arbitrary(&mut u).ok()?);
        }
        Some(ConnInput { setup, ops })
    }
}

/// What a run came to (for the corpus generator's report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the client received.
    pub client_received: usize,
    /// Messages the server received.
    pub server_received: usize,
    /// The client's close reason.
    pub client_closed: Option<CloseReason>,
    /// The server's close reason.
    pub server_closed: Option<CloseReason>,
}

/// Runs a whole input and returns its outcome.
pub fn outcome(input: &ConnInput) -> Outcome {
    let mut sim = Sim::new(&input.setup);
    for op in &input.ops {
        sim.apply(op);
    }
    sim.finish();
    sim.outcome()
}

/// What one side has shown so far.
#[derive(Default)]
struct Track {
    connected: bool,
    finished: bool,
    closed: Option<CloseReason>,
    is_closed: bool,
    close_called: bool,
    received: Vec<Bytes>,
    sent: Vec<Bytes>,
}

/// The pair.
pub struct Sim {
    /// The client.
    pub client: Connection,
    /// The server.
    pub server: Connection,
    /// The virtual clock.
    pub now: Instant,
    client_config: Config,
    server_config: Config,
    token: Bytes,
    client_type: u8,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Every byte the client wrote.
    pub c2s_transcript: Vec<u8>,
    /// Every byte the server wrote.
    pub s2c_transcript: Vec<u8>,
    c2s_ended: bool,
    s2c_ended: bool,
    c: Track,
    s: Track,
    authenticated: bool,
    decided: Option<Result<u32, Status>>,
    tampered: bool,
    lossy: bool,
}

/// A message of `len` bytes from `fill`.
pub fn pattern(len: usize, fill: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_add(fill).rotate_left(3) ^ fill)
        .collect::<Vec<u8>>()
        .into()
}

impl Sim {
    /// A pair built from `setup`.
    pub fn new(setup: &Setup) -> Sim {
        let token = token(
            usize::from(setup.token_len) % (MAX_TOKEN_LEN + 1),
            setup.client_type,
        );
        let client_setup = ClientConfig::new(
            preset(setup.client_preset).clone(),
            server_key().client_key(),
            token,
        )
        .expect("client setup")
        .with_client_type(setup.client_type);
        let server_setup =
            ServerConfig::new(preset(setup.server_preset).clone(), server_key().clone());
        let (mut client_seed, mut server_seed) = (CLIENT_SEED, SERVER_SEED);
        client_seed[0] ^= setup.seed;
        server_seed[0] ^= setup.seed;
        Sim::with_setups(&client_setup, &server_setup, client_seed, server_seed)
    }

    /// A pair from explicit setups and seeds.
    pub fn with_setups(
        client: &ClientConfig,
        server: &ServerConfig,
        client_seed: port_core::Seed,
        server_seed: port_core::Seed,
    ) -> Sim {
        let now = base();
        let mut sim = Sim {
            client: Connection::client(client, now, UNIX, client_seed),
            server: Connection::server(server, now, UNIX, server_seed),
            now,
            client_config: client.config().clone(),
            server_config: server.config().clone(),
            token: client.token().clone(),
            client_type: client.client_type(),
            c2s: Vec::new(),
            s2c: Vec::new(),
            c2s_transcript: Vec::new(),
            s2c_transcript: Vec::new(),
            c2s_ended: false,
            s2c_ended: false,
            c: Track::default(),
            s: Track::default(),
            authenticated: false,
            decided: None,
            tampered: false,
            lossy: false,
        };
        sim.check();
        sim
    }

    /// Applies one operation, then checks every invariant.
    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::ClientToServer { chunk } => {
                self.deliver(Dir::ClientToServer, chunk);
            }
            Op::ServerToClient { chunk } => {
                self.deliver(Dir::ServerToClient, chunk);
            }
            Op::Corrupt { dir, offset, xor } => {
                let q = self.queue(dir);
                if !q.is_empty() && xor != 0 {
                    let at = usize::from(offset) % q.len();
                    q[at] ^= xor;
                    self.tampered = true;
                    self.lossy = true;
                }
            }
            Op::Drop { dir, n } => {
                let q = self.queue(dir);
                let n = usize::from(n).min(q.len());
                take_front(q, n);
                if n > 0 {
                    self.tampered = true;
                    self.lossy = true;
                }
            }
            Op::Advance { ms } => {
                let to = self.now + Duration::from_millis(ms.into());
                self.fire(to);
            }
            Op::NextDeadline => {
                let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(t) = next {
                    self.fire(t.max(self.now));
                }
            }
            Op::ClientSend(ref m) => self.send(Side::Client, Bytes::copy_from_slice(m)),
            Op::ServerSend(ref m) => self.send(Side::Server, Bytes::copy_from_slice(m)),
            Op::ClientSendLarge { len, fill } => {
                self.send(Side::Client, pattern(len.into(), fill));
            }
            Op::ServerSendLarge { len, fill } => {
                self.send(Side::Server, pattern(len.into(), fill));
            }
            Op::ClientClose => {
                self.client.close();
                self.c.close_called = true;
            }
            Op::ServerClose => {
                self.server.close();
                self.s.close_called = true;
            }
            Op::Accept(user_id) => {
                let pending = self.pending();
                let result = self.server.accept(user_id);
                assert_eq!(result.is_ok(), pending, "accept(): {result:?}");
                if result.is_ok() {
                    self.decided = Some(Ok(user_id));
                }
            }
            Op::Reject(code) => {
                let status = Status::from_code(code);
                let pending = self.pending();
                let result = self.server.reject(status);
                if status == Status::Success {
                    assert_eq!(result, Err(Error::RejectWithSuccess));
                } else {
                    assert_eq!(result.is_ok(), pending, "reject(): {result:?}");
                    if result.is_ok() {
                        self.decided = Some(Err(status));
                    }
                }
            }
            Op::Flush => self.flush(),
            Op::TransportEnd { dir } => {
                let now = self.now;
                match dir {
                    Dir::ClientToServer if !self.c2s_ended => {
                        self.c2s_ended = true;
                        self.c2s.clear();
                        self.server.handle_link_end(now, None);
                    }
                    Dir::ServerToClient if !self.s2c_ended => {
                        self.s2c_ended = true;
                        self.s2c.clear();
                        self.client.handle_link_end(now, None);
                    }
                    _ => {}
                }
                self.lossy = true;
            }
        }
        self.check();
    }

    /// The end of an input: if nothing was lost, deliver everything and check that every
    /// message arrived and that mutual closes completed.
    pub fn finish(&mut self) {
        if self.lossy {
            return;
        }
        self.flush();
        let ok = |r: Option<CloseReason>| r.is_none_or(|r| r.is_graceful());
        if self.c.connected && self.s.connected && ok(self.c.closed) && ok(self.s.closed) {
            assert_eq!(self.s.received, self.c.sent, "client messages lost");
            assert_eq!(self.c.received, self.s.sent, "server messages lost");
            if self.c.close_called && self.s.close_called {
                assert!(self.client.is_closed() && self.server.is_closed());
                assert!(self.c.closed.is_some_and(|r| r.is_graceful()));
                assert!(self.s.closed.is_some_and(|r| r.is_graceful()));
            }
        }
    }

    /// Messages delivered (to the client, to the server) and both sides' close reasons.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            client_received: self.c.received.len(),
            server_received: self.s.received.len(),
            client_closed: self.c.closed,
            server_closed: self.s.closed,
        }
    }

    /// True if the server holds an authenticated INIT the application has not decided on.
    fn pending(&self) -> bool {
        self.authenticated && self.decided.is_none() && self.server.close_reason().is_none()
    }

    fn queue(&mut self, dir: Dir) -> &mut Vec<u8> {
        match dir {
            Dir::ClientToServer => &mut self.c2s,
            Dir::ServerToClient => &mut self.s2c,
        }
    }

    /// Delivers up to `chunk` bytes (0: all) of `dir`; returns the number delivered.
    fn deliver(&mut self, dir: Dir, chunk: u16) -> usize {
        let ended = match dir {
            Dir::ClientToServer => self.c2s_ended,
            Dir::ServerToClient => self.s2c_ended,
        };
        if ended {
            return 0;
        }
        let q = self.queue(dir);
        let n = match chunk {
            0 => q.len(),
            c => usize::from(c).min(q.len()),
        };
        if n == 0 {
            return 0;
        }
        let bytes = take_front(q, n);
        let now = self.now;
        match dir {
            Dir::ClientToServer => self.server.handle_input(now, &bytes),
            Dir::ServerToClient => self.client.handle_input(now, &bytes),
        }
        n
    }

    /// Delivers everything both ways, taking transmits and events, until nothing moves.
    pub fn flush(&mut self) {
        for _ in 0..10_000 {
            self.check();
            let moved = self.deliver(Dir::ClientToServer, 0) + self.deliver(Dir::ServerToClient, 0);
            if moved == 0 {
                self.check();
                if self.c2s.is_empty() && self.s2c.is_empty() {
                    return;
                }
                if self.c2s_ended || self.s2c_ended {
                    return;
                }
            }
        }
        panic!("flush did not settle: livelock");
    }

    /// Moves the clock to `to` and fires both sides' timers.
    fn fire(&mut self, to: Instant) {
        self.now = to;
        for conn in [&mut self.client, &mut self.server] {
            conn.handle_timeout(to);
            if let Some(next) = conn.poll_timeout() {
                assert!(
                    next > to,
                    "{:?}: poll_timeout() {:?} after handle_timeout({:?})",
                    conn.side(),
                    next - base(),
                    to - base()
                );
            }
        }
    }

    fn send(&mut self, side: Side, message: Bytes) {
        let (conn, track) = match side {
            Side::Client => (&mut self.client, &mut self.c),
            Side::Server => (&mut self.server, &mut self.s),
        };
        let allowed =
            conn.is_connected() && !track.close_called && message.len() <= conn.max_message();
        let result = conn.send(message.clone());
        assert_eq!(result.is_ok(), allowed, "{side:?} send(): {result:?}");
        if result.is_ok() {
            track.sent.push(message);
        }
    }

    /// Takes transmits, then events, then checks the state of both sides.
    fn check(&mut self) {
        let now = self.now;
        while let Some(bytes) = self.client.poll_transmit(now) {
            assert!(!self.c.is_closed, "client transmitted after is_closed()");
            self.c2s.extend_from_slice(&bytes);
            self.c2s_transcript.extend_from_slice(&bytes);
        }
        while let Some(bytes) = self.server.poll_transmit(now) {
            assert!(!self.s.is_closed, "server transmitted after is_closed()");
            assert!(
                self.decided.is_some(),
                "server transmitted before any decision"
            );
            self.s2c.extend_from_slice(&bytes);
            self.s2c_transcript.extend_from_slice(&bytes);
        }
        self.client_events();
        self.server_events();
        for (conn, track, config) in [
            (&self.client, &mut self.c, &self.client_config),
            (&self.server, &mut self.s, &self.server_config),
        ] {
            let side = conn.side();
            assert_eq!(conn.close_reason(), track.closed, "{side:?}: close_reason");
            assert_eq!(
                conn.poll_timeout().is_none(),
                track.closed.is_some(),
                "{side:?}: poll_timeout() {:?} with close_reason {:?}",
                conn.poll_timeout(),
                track.closed
            );
            let past_init = side == port_core::Side::Client || self.authenticated;
            check_receive_buffered(conn, config, past_init);
            if conn.is_connected() {
                assert!(track.closed.is_none());
            }
            assert_eq!(
                conn.stats().messages_received,
                track.received.len() as u64,
                "{side:?}: stats"
            );
            if !self.tampered {
                assert!(
                    !matches!(
                        track.closed,
                        Some(
                            CloseReason::Protocol(_)
                                | CloseReason::Refused(
                                    InitRefusal::Unauthenticated
                                        | InitRefusal::Replayed
                                        | InitRefusal::ReplayFilterFull
                                )
                        )
                    ),
                    "{side:?} closed with {:?} without any tampering",
                    track.closed
                );
            }
            track.is_closed = conn.is_closed();
        }
    }

    fn client_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            let t = &mut self.c;
            match event {
                Event::Connected { user_id } => {
                    assert!(!t.connected && t.closed.is_none(), "client Connected twice");
                    assert_eq!(self.decided, Some(Ok(user_id)), "client Connected");
                    t.connected = true;
                }
                Event::Data(m) => {
                    assert!(
                        t.connected && !t.finished && t.closed.is_none(),
                        "client Data"
                    );
                    let i = t.received.len();
                    assert!(
                        self.s.sent.get(i) == Some(&m),
                        "client received message {i} ({} bytes) that is not the server's {i}th",
                        m.len()
                    );
                    t.received.push(m);
                }
                Event::Finished => {
                    assert!(t.connected && !t.finished && t.closed.is_none(), "Finished");
                    assert!(
                        self.s.close_called,
                        "client Finished without server close()"
                    );
                    t.finished = true;
                }
                Event::Closed(reason) => {
                    assert!(t.closed.is_none(), "client Closed twice");
                    if let CloseReason::Rejected(status) = reason {
                        assert_eq!(self.decided, Some(Err(status)), "client Rejected");
                    }
                    t.closed = Some(reason);
                }
                other => panic!("unexpected client event {other:?}"),
            }
        }
    }

    fn server_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            let t = &mut self.s;
            match event {
                Event::Authenticate { token, client_type } => {
                    assert!(!self.authenticated && t.closed.is_none(), "Authenticate");
                    assert_eq!(token, self.token, "Authenticate token");
                    assert_eq!(client_type, self.client_type, "Authenticate client type");
                    self.authenticated = true;
                }
                Event::Connected { user_id } => {
                    assert_eq!(self.decided, Some(Ok(user_id)), "server Connected");
                    assert!(!t.connected, "server Connected twice");
                    t.connected = true;
                }
                Event::Data(m) => {
                    assert!(
                        t.connected && !t.finished && t.closed.is_none(),
                        "server Data"
                    );
                    let i = t.received.len();
                    assert!(
                        self.c.sent.get(i) == Some(&m),
                        "server received message {i} ({} bytes) that is not the client's {i}th",
                        m.len()
                    );
                    t.received.push(m);
                }
                Event::Finished => {
                    assert!(t.connected && !t.finished && t.closed.is_none(), "Finished");
                    assert!(
                        self.c.close_called,
                        "server Finished without client close()"
                    );
                    t.finished = true;
                }
                Event::Closed(reason) => {
                    assert!(t.closed.is_none(), "server Closed twice");
                    t.closed = Some(reason);
                }
                other => panic!("unexpected server event {other:?}"),
            }
        }
    }
}

/// Removes and returns the first `n` bytes of `q` (`n <= q.len()`).
fn take_front(q: &mut Vec<u8>, n: usize) -> Vec<u8> {
    let rest = q.split_off(n);
    std::mem::replace(q, rest)
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Client,
    Server,
}

/// The target.
pub fn run(data: &[u8]) {
    if let Some(input) = ConnInput::decode(data) {
        outcome(&input);
    }
}
