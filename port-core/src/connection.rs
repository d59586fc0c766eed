//! The PORT/1 connection state machine, for both sides.

use std::mem;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use crate::config::{Config, MAX_PADDING};
use crate::crypto::SessionKeys;
use crate::endpoint::{ClientConfig, ServerConfig};
use crate::error::{CloseReason, Error, InitRefusal, ProtocolError, Side, Status};
use crate::event::Event;
use crate::first_flight::{FlightReader, Unshaped};
use crate::frame::{
    FLAG_DATA, FLAG_MORE, FLAG_PING, FLAG_PONG, FLAG_TERM, FRAME_OVERHEAD, FrameHeader,
    FrameOpener, FrameSealer, HEADER_WIRE_LEN,
};
use crate::handshake::{
    self, CLIENT_PREFIX_LEN, ClientHeader, ClientInitiator, InitPrefix, MAX_EARLY_DATA,
    MAX_TOKEN_LEN, SERVER_PREFIX_LEN, ServerHeader, ServerPrefix, ServerResponder, UnsealedInit,
};
use crate::keepalive::Keepalive;
use crate::lengths::Records;
use crate::machinery::{Events, SendQueue, TRANSMIT_BATCH, UnitReader, seeded, uniform};
use crate::record::{MessageKind, MessageRecord, RecordSink};
use crate::replay::Refusal;
use crate::session::{Link, Redirect, Seed, Session};
use crate::shape::Lengths;

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed out by `poll_transmit`.
    pub bytes_sent: u64,
    /// Bytes given to `handle_input` (including discarded ones).
    pub bytes_received: u64,
    /// Frames sealed.
    pub frames_sent: u64,
    /// Frames opened.
    pub frames_received: u64,
    /// Application messages queued for sending.
    pub messages_sent: u64,
    /// Application messages delivered.
    pub messages_received: u64,
    /// Keepalive requests sent.
    pub pings_sent: u64,
    /// Keepalive answers received (each gave a round-trip sample).
    pub pongs_received: u64,
    /// Application payload bytes sealed into frames.
    pub payload_bytes_sent: u64,
    /// Application payload bytes opened from frames.
    pub payload_bytes_received: u64,
    /// Padding bytes sealed into frames (handshake padding not counted).
    pub padding_bytes_sent: u64,
    /// Padding bytes opened from frames.
    pub padding_bytes_received: u64,
    /// The latest keepalive round-trip sample.
    pub last_rtt: Option<Duration>,
}

enum Role {
    Client,
    Server(ServerConfig),
}

enum State {
    /// Client: INIT queued, reading the server INIT prefix.
    ClientAwaitPrefix {
        initiator: Box<ClientInitiator>,
        deadline: Instant,
    },
    /// Client: reading the server INIT body.
    ClientAwaitBody {
        prefix: Box<ServerPrefix>,
        deadline: Instant,
    },
    /// Server: reading the client INIT prefix.
    ServerAwaitPrefix,
    /// Server: reading the client INIT body.
    ServerAwaitBody { prefix: Box<InitPrefix> },
    /// Server: `Authenticate` reported; waiting for `accept` or `reject`. The server's
    /// ephemeral key and the session keys (`responder`) are computed on the first
    /// `poll_transmit` after the report or at the decision, whichever comes first: the
    /// application learns the token two X25519 products sooner, and what its decision waits
    /// for (a forward connect, say) runs while they are computed.
    ServerDecide {
        prefix: Box<InitPrefix>,
        responder: Option<Box<ServerResponder>>,
        deadline: Instant,
    },
    /// Server: the first bytes were refused; discard input until the drain deadline.
    Draining { refusal: InitRefusal },
    /// Handshake done. Each direction ends with its own TERM (a half-close); keepalive frames
    /// keep flowing both ways until both directions ended.
    Open,
    /// Nothing more will be produced (bytes already in the transmit buffer excepted).
    Closed,
}

/// One PORT/1 connection, client or server: a pure state machine.
///
/// It never touches a socket or a clock. The caller feeds it the TCP byte stream with
/// [`handle_input`](Self::handle_input), writes out what [`poll_transmit`](Self::poll_transmit)
/// returns, reacts to [`poll_event`](Self::poll_event), and calls
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). See the
/// crate documentation for the drive loop.
pub struct Connection {
    role: Role,
    config: Config,
    rng: ChaCha20Rng,
    epoch: Instant,
    unix_epoch: Duration,
    last_now: Instant,
    state: State,
    /// Server: when a connection that has not authenticated is closed, drawn at creation.
    drain_deadline: Instant,
    rx: UnitReader,
    pending_header: Option<FrameHeader>,
    tx: BytesMut,
    queue: SendQueue,
    events: Events,
    sealer: Option<FrameSealer>,
    opener: Option<FrameOpener>,
    /// Largest fragment we send: the smaller of our limit and the peer's.
    send_payload: usize,
    /// Largest message we send: the smaller of our limit and the peer's.
    send_message: usize,
    /// A fragmented message is being received (its fragments are held in `rx`).
    reassembling: bool,
    /// Length of the last message that came in several frames: the next one is read into an
    /// allocation of that size from its first fragment on.
    last_reassembled: usize,
    keepalive: Keepalive,
    pong_due: Option<u16>,
    /// `close()` was called: TERM goes out after the queued messages.
    term_queued: bool,
    /// Our TERM is sealed: no DATA follows it.
    term_sent: bool,
    /// The peer's TERM arrived: it sends no more DATA.
    peer_term: bool,
    user_id: Option<u32>,
    stats: Stats,
    /// When buffers that data grew are next checked for release (see `BUFFER_LINGER`).
    release_at: Option<Instant>,
    /// Where records of sent messages go, when asked for (see `record_to`).
    sink: Option<Box<dyn RecordSink>>,
    /// Client: the INIT until its first transmit, keys ready and not sealed, so that the
    /// first message can join it as early data.
    unsent: Option<Box<UnsentInit>>,
    /// Server of a shaped first flight: undoes the shape until the client INIT was read.
    flight: Option<Box<FlightReader>>,
    /// How frame sizes are chosen (the key's shape).
    lengths: Lengths,
    /// With shaped lengths, once open: the record distribution.
    records: Option<Box<Records>>,
    /// With shaped lengths: since when the oldest unsent message waits (see `record_linger`).
    queued_since: Option<Instant>,
    /// Server: the fewest bytes a client's first write holds (the INIT's first 88 bytes, in
    /// the key's shape); judged on the first input of a link with whole reads.
    min_first_read: usize,
    /// Server: the next input is the link's first read, and is judged by its length.
    judge_first_read: bool,
    /// Server: gave up on a peer that sent bytes but never authenticated (refused them, or
    /// its INIT was incomplete at the drain deadline or cut by its FIN): they go to a
    /// fallback. Sticky.
    gave_up: bool,
}

/// A client's INIT before its first transmit (see [`Connection::client`]).
struct UnsentInit {
    init: UnsealedInit,
    header: ClientHeader,
    setup: ClientConfig,
    /// The first message, if the application sent one before the INIT went out.
    early: Bytes,
}

/// How long buffers grown by data are kept after the data stops. A timer fires at most once
/// per linger period while data flows (armed on the first data after a release, not moved by
/// later frames), and then gives back every buffer that is empty: a busy connection reuses its
/// buffers frame after frame, and one that fell silent holds only its state a second later.
const BUFFER_LINGER: Duration = Duration::from_secs(1);

impl Connection {
    /// Opens a client connection at `now`; the INIT is ready in `poll_transmit` at once.
    ///
    /// `unix_time` is the wall-clock time since the Unix epoch at `now` (the INIT carries it
    /// for the server's replay window). Random draws from `seed`, in order: padding length
    /// (one `u32`), salt (16 bytes), ephemeral secret (32 bytes).
    ///
    /// The INIT's keys are computed here and the INIT is sealed on the first `poll_transmit`:
    /// one message of 1 to [`MAX_EARLY_DATA`] bytes sent before that travels in the INIT as
    /// early data (`docs/PROTOCOL.md` §5.8), and the server's application receives it as the
    /// first message once it accepts. Early data saves the round trip a first message would
    /// otherwise wait for, and gives up forward secrecy for that message: it is sealed under a
    /// key that the server's static key and the INIT recover.
    pub fn client(setup: &ClientConfig, now: Instant, unix_time: Duration, seed: Seed) -> Self {
        let config = setup.config().clone();
        let mut conn = Connection::new(Role::Client, config, now, unix_time, seed);
        conn.lengths = setup.key().shape().lengths();
        let header = ClientHeader {
            client_type: setup.client_type(),
            timestamp: unix_time.as_secs(),
            token_len: setup.token().len() as u16,
            pad_len: conn.draw_padding(),
            max_payload: conn.config.max_frame_payload() as u16,
            max_message: conn.config.max_message() as u32,
            early_len: 0,
        };
        match handshake::client_init(setup.key(), setup.server_point(), &mut conn.rng) {
            Some((init, initiator)) => {
                conn.unsent = Some(Box::new(UnsentInit {
                    init,
                    header,
                    setup: setup.clone(),
                    early: Bytes::new(),
                }));
                conn.state = State::ClientAwaitPrefix {
                    initiator: Box::new(initiator),
                    deadline: now + conn.config.handshake_timeout(),
                };
            }
            // Unreachable with a key that passed `ClientConfig::new`; fail closed regardless.
            None => conn.fail(CloseReason::Protocol(ProtocolError::Authentication)),
        }
        conn
    }

    /// Accepts a server connection at `now` (the TCP connection was just accepted).
    ///
    /// Nothing is ever transmitted before the client INIT authenticated and the application
    /// accepted or rejected it. Random draws from `seed`, in order: the drain deadline (one
    /// `u64`); after a valid INIT the ephemeral secret (32 bytes); on `accept` the client's
    /// first keepalive delay and the server's own (one `u64` each), then the padding length
    /// (one `u32`); on `reject` only the padding length.
    pub fn server(setup: &ServerConfig, now: Instant, unix_time: Duration, seed: Seed) -> Self {
        let config = setup.config().clone();
        let mut conn = Connection::new(Role::Server(setup.clone()), config, now, unix_time, seed);
        let (lo, hi) = (conn.config.drain_min(), conn.config.drain_max());
        conn.drain_deadline = now + uniform(&mut conn.rng, lo, hi);
        conn.state = State::ServerAwaitPrefix;
        conn.flight = setup
            .first_flight()
            .map(|flight| Box::new(FlightReader::new(flight.clone())));
        conn.min_first_read = setup
            .first_flight()
            .map_or(CLIENT_PREFIX_LEN, |f| f.wire_len_of(CLIENT_PREFIX_LEN));
        conn.lengths = setup.key().shape().lengths();
        conn
    }

    fn new(role: Role, config: Config, now: Instant, unix_time: Duration, seed: Seed) -> Self {
        Connection {
            role,
            send_payload: config.max_frame_payload(),
            send_message: config.max_message(),
            config,
            rng: seeded(seed),
            epoch: now,
            unix_epoch: unix_time,
            last_now: now,
            state: State::Closed,
            drain_deadline: now,
            rx: UnitReader::default(),
            pending_header: None,
            tx: BytesMut::new(),
            queue: SendQueue::default(),
            events: Events::default(),
            sealer: None,
            opener: None,
            reassembling: false,
            last_reassembled: 0,
            keepalive: Keepalive::default(),
            pong_due: None,
            term_queued: false,
            term_sent: false,
            peer_term: false,
            user_id: None,
            stats: Stats::default(),
            release_at: None,
            sink: None,
            unsent: None,
            flight: None,
            lengths: Lengths::Padded,
            records: None,
            queued_since: None,
            min_first_read: 0,
            judge_first_read: false,
            gave_up: false,
        }
    }

    // ----- queries -------------------------------------------------------------------------

    /// Which side this connection is.
    pub fn side(&self) -> Side {
        match self.role {
            Role::Client => Side::Client,
            Role::Server(_) => Side::Server,
        }
    }

    /// True once the handshake completed and until the connection closed in both directions.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// The reason the connection closed, once it has (sticky).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.events.close_reason()
    }

    /// The user id of an established connection.
    pub fn user_id(&self) -> Option<u32> {
        self.user_id
    }

    /// The smoothed round-trip time, once a keepalive was answered.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.rtt().srtt()
    }

    /// Bytes of an incomplete frame (or INIT) held until the rest arrives. Never more than
    /// [`max_receive_buffered`](Self::max_receive_buffered).
    pub fn receive_buffered(&self) -> usize {
        self.rx.unit_len()
    }

    /// Heap bytes reserved by the connection's own buffers (receive and reassembly, transmit, the
    /// send and event queues), used or not. Data grows them and they are reused while it
    /// flows; about a second after it stops, a timer ([`poll_timeout`](Session::poll_timeout))
    /// gives back every empty one, so an idle connection reports 0. Messages already handed
    /// to the application are not counted.
    pub fn buffer_capacity(&self) -> usize {
        self.rx.capacity()
            + self.tx.capacity()
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.queue.messages.capacity() * std::mem::size_of::<Bytes>()
    }

    /// The most `receive_buffered` can ever be: one maximum frame,
    /// `28 + max(max_frame_payload, 4096) + 8192 + 16` bytes. The 4096 is the longest token:
    /// a server holds a client INIT's body (token, padding, tag) until all of it arrived.
    pub fn max_receive_buffered(&self) -> usize {
        HEADER_WIRE_LEN
            + self.config.max_frame_payload().max(MAX_TOKEN_LEN)
            + MAX_PADDING
            + crate::frame::BODY_TAG_LEN
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.pings_sent = self.keepalive.pings_sent();
        stats.pongs_received = self.keepalive.pongs_received();
        stats.last_rtt = self.keepalive.last_rtt();
        stats
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends a record of every message this connection seals from now on to `sink`, for tools
    /// that label captured packets (see [`MessageRecord`]); `None` stops it. Off by default,
    /// and then free. A client's INIT is sealed on the first
    /// [`poll_transmit`](Session::poll_transmit); it is recorded when the record starts before.
    pub fn record_to(&mut self, sink: Option<Box<dyn RecordSink>>) {
        self.sink = sink;
    }

    /// Client: seals the INIT (with the early data, if any) into the transmit buffer, once.
    fn seal_init(&mut self) {
        let Some(unsent) = self.unsent.take() else {
            return;
        };
        let State::ClientAwaitPrefix { initiator, .. } = &mut self.state else {
            return;
        };
        let UnsentInit {
            init,
            mut header,
            setup,
            early,
        } = *unsent;
        header.early_len = early.len() as u16;
        let Some(wire) = init.seal(&header, setup.token(), &early, initiator) else {
            // Unreachable: a fresh key seals twice; fail closed regardless.
            return self.fail(CloseReason::Protocol(ProtocolError::NonceExhausted));
        };
        match setup.first_flight() {
            Some(flight) => self.tx.extend_from_slice(&flight.wrap(&wire)),
            None => self.tx.extend_from_slice(&wire),
        }
        if !early.is_empty() {
            self.stats.messages_sent += 1;
            self.stats.payload_bytes_sent += early.len() as u64;
        }
        let payload = usize::from(header.token_len) + early.len();
        let (pad, wire, at) = (usize::from(header.pad_len), self.tx.len(), self.last_now);
        self.note(MessageKind::Init, payload, pad, wire, at);
    }

    /// Data moved: make sure a release check is due within `BUFFER_LINGER`.
    fn arm_release(&mut self) {
        if self.release_at.is_none() {
            self.release_at = Some(self.last_now + BUFFER_LINGER);
        }
    }

    /// Gives back the capacity that traffic grew in buffers that are empty now. Timers fire
    /// once per keepalive cycle on an open connection, so a busy connection keeps reusing its
    /// buffers frame after frame (no allocation per frame), while one that went quiet holds
    /// its state alone: with thousands of idle connections that is the difference between a
    /// few hundred bytes and tens of kilobytes each.
    fn release_idle_buffers(&mut self) {
        if self.rx.is_empty() {
            self.rx.release();
        }
        if self.tx.is_empty() {
            self.tx = BytesMut::new();
        }
        if self.events.is_empty() {
            self.events.release();
        }
        self.queue.release_if_empty();
    }

    // ----- input ---------------------------------------------------------------------------

    /// Size of the next unit to read, or `None` if input is being discarded.
    fn bytes_needed(&self) -> Option<usize> {
        Some(match &self.state {
            State::ClientAwaitPrefix { .. } => SERVER_PREFIX_LEN,
            State::ClientAwaitBody { prefix, .. } => prefix.header.body_wire_len(),
            State::ServerAwaitPrefix => CLIENT_PREFIX_LEN,
            State::ServerAwaitBody { prefix } => prefix.header.body_wire_len(),
            State::ServerDecide { .. } | State::Open => self
                .pending_header
                .map_or(HEADER_WIRE_LEN, |h| h.body_wire_len()),
            State::Draining { .. } | State::Closed => return None,
        })
    }

    fn on_unit(&mut self, now: Instant, mut unit: BytesMut) {
        match mem::replace(&mut self.state, State::Closed) {
            State::ServerAwaitPrefix => self.on_client_prefix(&mut unit),
            State::ServerAwaitBody { prefix } => self.on_client_body(now, prefix, &mut unit),
            State::ClientAwaitPrefix {
                initiator,
                deadline,
            } => match initiator.open_server_prefix(&mut unit) {
                Some(prefix) => {
                    self.state = State::ClientAwaitBody {
                        prefix: Box::new(prefix),
                        deadline,
                    }
                }
                None => self.fail(CloseReason::Protocol(ProtocolError::Authentication)),
            },
            State::ClientAwaitBody { prefix, .. } => self.on_server_body(now, *prefix, &mut unit),
            // A client cannot seal a frame before it has read the server INIT, so anything
            // arriving while the application decides is a violation.
            State::ServerDecide { .. } => self.fail(CloseReason::Protocol(
                ProtocolError::Malformed("frame before the server INIT"),
            )),
            // Frames are read in place (see `handle_input`).
            state => self.state = state,
        }
    }

    fn server_setup(&self) -> Option<ServerConfig> {
        match &self.role {
            Role::Server(setup) => Some(setup.clone()),
            Role::Client => None,
        }
    }

    fn on_client_prefix(&mut self, unit: &mut [u8]) {
        let Some(setup) = self.server_setup() else {
            return;
        };
        match handshake::open_client_prefix(setup.key(), unit) {
            Some(prefix) => {
                self.state = State::ServerAwaitBody {
                    prefix: Box::new(prefix),
                }
            }
            None => self.refuse(InitRefusal::Unauthenticated),
        }
    }

    fn on_client_body(&mut self, now: Instant, mut prefix: Box<InitPrefix>, unit: &mut [u8]) {
        let Some(setup) = self.server_setup() else {
            return;
        };
        let Some(token) = prefix.open_body(unit).map(Bytes::copy_from_slice) else {
            return self.refuse(InitRefusal::Unauthenticated);
        };
        let now_unix = self.unix_at(now).as_secs();
        let checked = setup
            .replay()
            .check(now_unix, prefix.header.timestamp, prefix.salt);
        if let Err(refusal) = checked {
            return self.refuse(match refusal {
                Refusal::Stale => InitRefusal::Stale,
                Refusal::Replayed => InitRefusal::Replayed,
                Refusal::Full => InitRefusal::ReplayFilterFull,
            });
        }
        let header = prefix.header;
        self.set_peer_limits(header.max_payload, header.max_message);
        self.state = State::ServerDecide {
            prefix,
            responder: None,
            deadline: now + self.config.handshake_timeout(),
        };
        self.events.push(Event::Authenticate {
            token,
            client_type: header.client_type,
        });
    }

    fn on_server_body(&mut self, now: Instant, mut prefix: ServerPrefix, unit: &mut [u8]) {
        if prefix.open_body(unit).is_none() {
            return self.fail(CloseReason::Protocol(ProtocolError::Authentication));
        }
        let header = prefix.header;
        let status = Status::from_code(header.status);
        if status != Status::Success {
            return self.fail(CloseReason::Rejected(status));
        }
        self.set_peer_limits(header.max_payload, header.max_message);
        self.use_keys(&prefix.keys);
        // The server picks our first keepalive delay; our own ceiling keeps the documented
        // detection bound true whatever it sends.
        let first = Duration::from_millis(header.next_in_ms.into()).min(self.config.max_next_in());
        self.keepalive.start(now, first);
        self.state = State::Open;
        self.open_records();
        self.user_id = Some(header.user_id);
        self.events.push(Event::Connected {
            user_id: header.user_id,
        });
    }

    /// A complete header or body unit sits in `rx`, behind the fragments held so far.
    fn on_frame_unit(&mut self, now: Instant) {
        let Some(opener) = self.opener.as_mut() else {
            return;
        };
        let unit = self.rx.unit_mut();
        let opened = match self.pending_header.take() {
            None => opener.open_header(unit).map(|header| {
                self.rx.hold(0);
                self.expect_body(&header);
                self.pending_header = Some(header);
            }),
            Some(header) => opener.open_body_slice(&header, unit).map(|payload| {
                // Only DATA frames carry a payload (the header was validated).
                self.rx.hold(payload);
                self.on_frame(now, header);
            }),
        };
        if let Err(e) = opened {
            self.fail(CloseReason::Protocol(e));
        }
    }

    /// The first fragment of a long message is about to be read: room for all of it (as long
    /// as the last such message) now, rather than regrowing, and moving, fragment by fragment.
    fn expect_body(&mut self, header: &FrameHeader) {
        if header.has(FLAG_MORE) && self.rx.held() == 0 && self.last_reassembled > 0 {
            let expected = self.last_reassembled.min(self.config.max_message());
            self.rx.reserve(expected + header.body_wire_len());
        }
    }

    /// A frame was opened; a DATA payload is the last thing `rx` holds.
    fn on_frame(&mut self, now: Instant, header: FrameHeader) {
        self.stats.frames_received += 1;
        self.stats.payload_bytes_received += u64::from(header.payload_len);
        self.stats.padding_bytes_received += u64::from(header.pad_len);
        if header.has(FLAG_PONG) && self.keepalive.awaits(header.pong_id) {
            let next_in = self.draw_next_in();
            self.keepalive.on_pong(now, header.pong_id, next_in);
        }
        if header.has(FLAG_PING) {
            self.pong_due = Some(header.ping_id);
        }
        if !header.has(FLAG_DATA) && self.rx.is_empty() {
            // Nothing buffered and no data flowing: the receive buffer served a keepalive or
            // TERM frame only, so it is let go instead of pinning that frame's allocation
            // until the next timer (data frames keep it for reuse).
            self.rx.release();
        }
        if header.has(FLAG_DATA) {
            self.arm_release();
            let delivered = if self.peer_term {
                Err(ProtocolError::Malformed("DATA after TERM"))
            } else {
                self.on_data(header.has(FLAG_MORE))
            };
            if let Err(e) = delivered {
                return self.fail(CloseReason::Protocol(e));
            }
        }
        if header.has(FLAG_TERM) {
            self.on_term();
        }
    }

    /// The payload just opened is held in `rx` behind the message's earlier fragments.
    fn on_data(&mut self, more: bool) -> Result<(), ProtocolError> {
        let len = self.rx.held();
        let max = self.config.max_message();
        if len > max {
            return Err(ProtocolError::MessageTooLarge { len, max });
        }
        let fragmented = self.reassembling || more;
        self.reassembling = more;
        if !more {
            if fragmented {
                self.last_reassembled = len;
            }
            let message = self.rx.take_held().freeze();
            self.deliver(message);
        }
        Ok(())
    }

    fn deliver(&mut self, message: Bytes) {
        self.stats.messages_received += 1;
        self.events.push(Event::Data(message));
    }

    fn on_term(&mut self) {
        if self.reassembling {
            return self.fail(CloseReason::Protocol(ProtocolError::Malformed(
                "TERM inside a fragmented message",
            )));
        }
        if self.peer_term {
            return self.fail(CloseReason::Protocol(ProtocolError::Malformed(
                "second TERM",
            )));
        }
        self.peer_term = true;
        self.events.push(Event::Finished);
        if self.term_sent {
            // We ended our direction first.
            self.finish(CloseReason::Local);
        }
    }

    /// Server of a shaped first flight: takes the next bytes of it from `data` and feeds what
    /// they stand for to the INIT reader. Anything that is not this server's shape is refused
    /// like any other garbage; once the INIT was read, the reader is gone.
    fn unshape(&mut self, now: Instant, data: &mut &[u8]) {
        let Some(reader) = self.flight.as_mut() else {
            return;
        };
        match reader.next(data) {
            Unshaped::Pending => {}
            Unshaped::Raw => self.flight = None,
            Unshaped::Garbage => {
                self.flight = None;
                self.refuse(InitRefusal::Unauthenticated);
            }
            Unshaped::Group(bytes) => {
                // Only the group that ends the INIT is cut short, and what is cut must be
                // the zeros that completed it.
                let n = self.init_remaining().min(3);
                if bytes[n..].iter().any(|&b| b != 0) {
                    self.flight = None;
                    return self.refuse(InitRefusal::Unauthenticated);
                }
                let mut decoded = &bytes[..n];
                while let (false, Some(need)) = (decoded.is_empty(), self.bytes_needed()) {
                    if let Some(unit) = self.rx.fill(&mut decoded, need) {
                        self.on_unit(now, unit);
                    }
                }
                if !matches!(
                    self.state,
                    State::ServerAwaitPrefix | State::ServerAwaitBody { .. }
                ) {
                    self.flight = None;
                }
            }
        }
    }

    /// Server: bytes of the client INIT still to read (as far as is known yet).
    fn init_remaining(&self) -> usize {
        match &self.state {
            State::ServerAwaitBody { prefix } => prefix.header.body_wire_len() - self.rx.unit_len(),
            _ => usize::MAX,
        }
    }

    // ----- output --------------------------------------------------------------------------

    /// Seals frames into the transmit buffer; returns whether any carried data.
    fn build_frames(&mut self, now: Instant) -> bool {
        if self.records.is_some() {
            return self.build_record(now);
        }
        let mut data = false;
        while self.tx.len() < TRANSMIT_BATCH && matches!(self.state, State::Open) {
            let Some((mut header, payload)) = self.next_frame(now, self.send_payload) else {
                break;
            };
            header.pad_len = self.draw_padding();
            data |= header.has(FLAG_DATA);
            if !self.seal_frame(now, &header, &payload) {
                break;
            }
        }
        data
    }

    /// Shaped lengths: seals one record, frames whose sizes add up to the size drawn for it,
    /// unless nothing is due or a message lingers for company. Returns whether it carried data.
    fn build_record(&mut self, now: Instant) -> bool {
        let Some(size) = self.records.as_ref().map(|r| r.next_size()) else {
            return false;
        };
        if self.lingering(now, size) {
            return false;
        }
        let start = self.tx.len();
        let mut room = size;
        let mut data = false;
        while matches!(self.state, State::Open) {
            // `room` is at least a frame and a byte here: a record starts at MIN_RECORD, and
            // a frame leaves less than that behind only as the record's last.
            let budget = (room - FRAME_OVERHEAD).min(self.send_payload);
            let Some((mut header, payload)) = self.next_frame(now, budget) else {
                break;
            };
            let left = room - FRAME_OVERHEAD - payload.len();
            let last = left <= FRAME_OVERHEAD
                || !self.frame_due()
                || (header.has(FLAG_TERM) && self.peer_term);
            header.pad_len = if last { left as u16 } else { 0 };
            room = if last { 0 } else { left };
            data |= header.has(FLAG_DATA);
            if !self.seal_frame(now, &header, &payload) || last {
                break;
            }
        }
        let written = self.tx.len().saturating_sub(start);
        debug_assert!(
            written == 0 || written == size || matches!(self.state, State::Closed),
            "a record of {written} bytes where {size} were drawn"
        );
        if written > 0 {
            if let Some(records) = self.records.as_mut() {
                records.advance(&mut self.rng);
            }
            self.queued_since = (!self.queue.messages.is_empty()).then_some(now);
        }
        data
    }

    /// True if a frame would carry something now: data, TERM or a keepalive answer. (A due
    /// PING rides on the first frame of a record, so it never needs a frame of its own later.)
    fn frame_due(&self) -> bool {
        let data = !self.term_sent && !self.queue.messages.is_empty();
        let term = self.term_queued && !self.term_sent;
        data || term || self.pong_due.is_some()
    }

    /// Shaped lengths: true while queued messages fill less than a record of `size` and the
    /// oldest has waited less than `record_linger`, with nothing else due.
    fn lingering(&self, now: Instant, size: usize) -> bool {
        self.queued_since
            .is_some_and(|since| now < since + self.config.record_linger())
            && self.queue.bytes + FRAME_OVERHEAD < size
            && !self.term_queued
            && self.pong_due.is_none()
            && !self.keepalive.ping_due()
    }

    /// Shaped lengths: when the oldest unsent message stops waiting for company; `None` once
    /// that time was seen (the record then goes at the next `poll_transmit`), so that a
    /// caller that cannot write yet is not woken again and again.
    fn linger_until(&self) -> Option<Instant> {
        let linger = self.config.record_linger();
        let waiting =
            self.records.is_some() && !linger.is_zero() && !self.queue.messages.is_empty();
        let until = self.queued_since.filter(|_| waiting)? + linger;
        (until > self.last_now).then_some(until)
    }

    /// What the next frame carries, its payload at most `max_payload` (at least 1) bytes:
    /// keepalive flags, then a fragment of the next message or TERM. `None` if nothing is due.
    fn next_frame(&mut self, now: Instant, max_payload: usize) -> Option<(FrameHeader, Bytes)> {
        let mut header = FrameHeader::default();
        let with_data = !self.queue.messages.is_empty();
        if let Some(id) = self.keepalive.take_ping(now, &self.config, with_data) {
            header.flags |= FLAG_PING;
            header.ping_id = id;
        }
        if let Some(id) = self.pong_due.take() {
            header.flags |= FLAG_PONG;
            header.pong_id = id;
        }
        let mut payload = Bytes::new();
        // No DATA follows our TERM; keepalive frames still may.
        let fragment = match self.term_sent {
            true => None,
            false => self.queue.next_fragment(max_payload),
        };
        if let Some((chunk, more)) = fragment {
            header.flags |= FLAG_DATA | if more { FLAG_MORE } else { 0 };
            payload = chunk;
        } else if self.term_queued && !self.term_sent {
            header.flags |= FLAG_TERM;
            self.term_sent = true;
        } else if header.flags == 0 {
            return None;
        }
        header.payload_len = payload.len() as u16;
        Some((header, payload))
    }

    /// Seals one frame into the transmit buffer; false if the connection failed instead.
    fn seal_frame(&mut self, now: Instant, header: &FrameHeader, payload: &[u8]) -> bool {
        let Some(sealer) = self.sealer.as_mut() else {
            return false;
        };
        let before = self.tx.len();
        if let Err(e) = sealer.seal(header, payload, &mut self.tx) {
            self.fail(CloseReason::Protocol(e));
            return false;
        }
        self.stats.frames_sent += 1;
        self.stats.payload_bytes_sent += payload.len() as u64;
        self.stats.padding_bytes_sent += u64::from(header.pad_len);
        if self.sink.is_some() {
            let kind = if header.has(FLAG_TERM) {
                MessageKind::Term
            } else if header.has(FLAG_DATA) {
                MessageKind::Data
            } else {
                MessageKind::Keepalive
            };
            let wire = self.tx.len() - before;
            let pad = usize::from(header.pad_len);
            self.note(kind, payload.len(), pad, wire, now);
        }
        if header.has(FLAG_TERM) && self.peer_term {
            // The peer ended its direction first; with ours, the connection is over.
            self.finish(CloseReason::Peer);
        }
        true
    }

    /// The connection just opened: with shaped lengths, its record distribution is drawn.
    fn open_records(&mut self) {
        if self.lengths == Lengths::Shaped {
            self.records = Some(Box::new(Records::open(&mut self.rng)));
        }
    }

    fn queue_server_init(
        &mut self,
        responder: &ServerResponder,
        status: Status,
        user_id: u32,
        next_in: Duration,
    ) {
        let header = ServerHeader {
            status: status.code(),
            user_id,
            next_in_ms: u32::try_from(next_in.as_millis()).unwrap_or(u32::MAX),
            pad_len: self.draw_padding(),
            max_payload: self.config.max_frame_payload() as u16,
            max_message: self.config.max_message() as u32,
        };
        match responder.server_init(&header) {
            Some(wire) => {
                self.tx.extend_from_slice(&wire);
                let (pad, at) = (usize::from(header.pad_len), self.last_now);
                self.note(MessageKind::Init, 0, pad, wire.len(), at);
            }
            None => self.fail(CloseReason::Protocol(ProtocolError::NonceExhausted)),
        }
    }

    // ----- helpers -------------------------------------------------------------------------

    /// Adds a sent message to the record, if one is kept.
    fn note(
        &mut self,
        kind: MessageKind,
        payload: usize,
        padding: usize,
        wire: usize,
        at: Instant,
    ) {
        if let Some(sink) = self.sink.as_mut() {
            sink.record(MessageRecord {
                kind,
                payload,
                padding,
                wire,
                at,
            });
        }
    }

    /// Server, deciding: picks the server's ephemeral key (one 32-byte draw) and derives the
    /// session keys, once.
    fn prepare_response(&mut self) {
        let (
            State::ServerDecide {
                prefix,
                responder: None,
                ..
            },
            Role::Server(setup),
        ) = (&mut self.state, &self.role)
        else {
            return;
        };
        // `None` only for a client key of low order, which `es` already refused.
        let Some(ready) = prefix.respond(setup.key(), &mut self.rng) else {
            return self.refuse(InitRefusal::Unauthenticated);
        };
        self.use_keys(&ready.keys);
        if let State::ServerDecide { responder, .. } = &mut self.state {
            *responder = Some(Box::new(ready));
        }
    }

    /// Installs the frame keys of a finished key agreement: this side seals with its own
    /// direction's key and opens with the peer's.
    fn use_keys(&mut self, keys: &SessionKeys) {
        let (send, receive) = match self.side() {
            Side::Client => (&keys.client_to_server, &keys.server_to_client),
            Side::Server => (&keys.server_to_client, &keys.client_to_server),
        };
        self.sealer = Some(FrameSealer::new(keys.cipher, send));
        let max_payload = self.config.max_frame_payload();
        self.opener = Some(FrameOpener::new(keys.cipher, receive, max_payload));
    }

    /// The pending decision's responder and the client's early data.
    fn take_decision(&mut self) -> Result<(Box<ServerResponder>, Bytes), Error> {
        if self.side() != Side::Server {
            return Err(Error::WrongSide {
                expected: Side::Server,
            });
        }
        self.prepare_response();
        match mem::replace(&mut self.state, State::Closed) {
            State::ServerDecide {
                responder: Some(responder),
                mut prefix,
                ..
            } => Ok((responder, mem::take(&mut prefix.early))),
            other => {
                self.state = other;
                Err(match self.events.close_reason() {
                    Some(reason) => Error::Closed(reason),
                    None => Error::NoPendingAuthentication,
                })
            }
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.events.close_reason().unwrap_or(CloseReason::Local))
    }

    fn set_peer_limits(&mut self, max_payload: u16, max_message: u32) {
        self.send_payload = self.config.max_frame_payload().min(max_payload.into());
        self.send_message = self
            .config
            .max_message()
            .min(usize::try_from(max_message).unwrap_or(usize::MAX));
    }

    fn refuse(&mut self, refusal: InitRefusal) {
        self.gave_up = true;
        self.rx.clear();
        self.state = State::Draining { refusal };
    }

    /// Ends the connection at once: nothing further is sent (bytes already handed out aside).
    fn fail(&mut self, reason: CloseReason) {
        self.tx.clear();
        self.finish(reason);
    }

    /// Ends the connection, keeping bytes already sealed for transmission.
    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.queue.clear();
        self.rx.clear();
        self.pending_header = None;
        self.keepalive.stop();
        self.report_closed(reason);
        self.release_idle_buffers();
    }

    fn report_closed(&mut self, reason: CloseReason) {
        self.events.closed(reason);
    }

    fn unix_at(&self, now: Instant) -> Duration {
        self.unix_epoch + now.saturating_duration_since(self.epoch)
    }

    fn draw_padding(&mut self) -> u16 {
        self.config.padding().draw(self.rng.next_u32()) as u16
    }

    fn draw_next_in(&mut self) -> Duration {
        uniform(
            &mut self.rng,
            self.config.min_next_in(),
            self.config.max_next_in(),
        )
    }
}

impl Session for Connection {
    fn stats(&self) -> Stats {
        Connection::stats(self)
    }

    /// A server on a link with whole reads ([`Link::TCP`]) judges its peer's first write by
    /// its first input (`docs/PROTOCOL.md` §19); any other link changes nothing.
    fn handle_link_up(&mut self, _now: Instant, link: Link) {
        self.judge_first_read = link.whole_reads
            && matches!(self.state, State::ServerAwaitPrefix)
            && self.stats.bytes_received == 0;
    }

    /// Feeds bytes read from the TCP stream, in any chunking. Never fails: whatever the
    /// bytes, the outcome shows in events and in `poll_transmit`.
    fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        self.last_now = now;
        self.stats.bytes_received += data.len() as u64;
        if mem::take(&mut self.judge_first_read) && data.len() < self.min_first_read {
            // A PORT/1 client writes its INIT at once: a first read this short is someone
            // else's first write, and can go to a fallback before it waits for more.
            self.flight = None;
            self.refuse(InitRefusal::Unauthenticated);
        }
        while !data.is_empty() {
            if self.flight.is_some() {
                self.unshape(now, &mut data);
                continue;
            }
            let Some(need) = self.bytes_needed() else {
                return;
            };
            if matches!(self.state, State::Open) {
                // Frames are opened where they were read, and the payloads of a fragmented
                // message are gathered there too: no copy between the input and the message.
                if self.rx.fill_in_place(&mut data, need) {
                    self.on_frame_unit(now);
                }
            } else if let Some(unit) = self.rx.fill(&mut data, need) {
                self.on_unit(now, unit);
            }
        }
    }

    /// The byte stream from the peer ended (TCP FIN or reset; the reason does not matter to
    /// PORT). An established connection (or a client in its handshake) closes with
    /// [`CloseReason::TransportClosed`] unless the peer's TERM came first. A server that has
    /// not authenticated its client closes at once too, sending nothing: closing right after
    /// the peer's own FIN depends on nothing but what the peer did, so it tells a prober only
    /// that its FIN arrived (`docs/PROTOCOL.md` §13.1). A peer it had refused closes with that
    /// refusal; one whose bytes were cut short leaves them for a fallback
    /// ([`Redirect::Fallback`]).
    fn handle_link_end(&mut self, now: Instant, _reason: Option<CloseReason>) {
        self.last_now = now;
        match self.state {
            State::ServerAwaitPrefix | State::ServerAwaitBody { .. } => {
                self.gave_up |= self.stats.bytes_received > 0;
                self.fail(CloseReason::TransportClosed);
            }
            State::Draining { refusal } => self.fail(CloseReason::Refused(refusal)),
            State::Closed => {}
            _ => self.fail(CloseReason::TransportClosed),
        }
    }

    /// Bytes to write to the TCP stream, if any. Call until it returns `None`.
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.last_now = now;
        self.seal_init();
        self.prepare_response();
        let mut data = false;
        if matches!(self.state, State::Open) {
            data = self.build_frames(now);
        }
        if self.tx.is_empty() {
            return None;
        }
        self.stats.bytes_sent += self.tx.len() as u64;
        if data {
            self.arm_release();
            // The split keeps the allocation for the next frames: once the caller drops these
            // bytes, the buffer is reused in place, with no allocation per frame.
            Some(self.tx.split().freeze())
        } else {
            // INITs, keepalives and TERM: hand the whole buffer over, so that an idle
            // connection pins no transmit allocation.
            Some(mem::take(&mut self.tx).freeze())
        }
    }

    /// Keepalive frames may follow a TERM: only a closed connection is done sending.
    fn is_send_finished(&self) -> bool {
        self.is_closed()
    }

    /// Queues one message; it arrives as one [`Event::Data`] with the same bytes. Messages
    /// larger than the frame payload limit are split into several frames and reassembled;
    /// messages larger than [`max_message`](Session::max_message) are refused.
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        if let Some(unsent) = self.unsent.as_mut().filter(|u| u.early.is_empty()) {
            // The first message, before the INIT went out: it rides in the INIT.
            if data.len() > MAX_EARLY_DATA {
                return Err(Error::MessageTooLarge {
                    len: data.len(),
                    max: MAX_EARLY_DATA,
                });
            }
            if !data.is_empty() {
                unsent.early = data;
                return Ok(());
            }
        }
        match self.state {
            State::Open if self.term_queued => return Err(Error::Closing),
            State::Open => {}
            State::Closed => return Err(self.closed_error()),
            _ => return Err(Error::NotConnected),
        }
        if data.len() > self.send_message {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.send_message,
            });
        }
        self.stats.messages_sent += 1;
        if self.queue.messages.is_empty() {
            self.queued_since = Some(self.last_now);
        }
        self.queue.push(data);
        Ok(())
    }

    /// Ends this side's sending, gracefully: queued messages go out, then TERM. Like a TCP
    /// half-close, messages from the peer keep arriving until its own TERM
    /// ([`Event::Finished`]); the connection reports `Closed` once both directions ended.
    /// Before the handshake completed it closes at once, sending nothing more. Calling it
    /// again does nothing.
    fn close(&mut self) {
        match self.state {
            State::Open => self.term_queued = true,
            State::Closed => {}
            _ => self.fail(CloseReason::Local),
        }
    }

    /// Server: accepts the authenticated client with `user_id`; queues the server INIT and
    /// reports [`Event::Connected`].
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        let (responder, early) = self.take_decision()?;
        let client_first = self.draw_next_in();
        let own_first = self.draw_next_in();
        self.queue_server_init(&responder, Status::Success, user_id, client_first);
        self.state = State::Open;
        self.open_records();
        self.user_id = Some(user_id);
        self.keepalive.start(self.last_now, own_first);
        self.events.push(Event::Connected { user_id });
        if !early.is_empty() {
            self.stats.payload_bytes_received += early.len() as u64;
            self.deliver(early);
        }
        Ok(())
    }

    /// Server: rejects the authenticated client with a failure `status`; the server INIT
    /// carrying it is queued and the connection closes with [`CloseReason::Rejected`].
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        if status == Status::Success {
            return Err(Error::RejectWithSuccess);
        }
        // The early data, if any, is dropped unread.
        let (responder, _) = self.take_decision()?;
        self.queue_server_init(&responder, status, 0, Duration::ZERO);
        self.finish(CloseReason::Rejected(status));
        Ok(())
    }

    /// Bytes accepted by `send` (or sealed) but not yet handed out by `poll_transmit`.
    fn send_buffered(&self) -> usize {
        let early = self.unsent.as_ref().map_or(0, |u| u.early.len());
        self.queue.bytes + self.tx.len() + early
    }

    /// The largest message `send` accepts now: both sides' limits once connected.
    fn max_message(&self) -> usize {
        self.send_message
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// True once this side's direction ended and its TERM (or the final bytes of a failed or
    /// refused connection) was handed out by `poll_transmit`. Keepalive frames may still
    /// follow a TERM; only [`is_closed`](Session::is_closed) means nothing at all will.
    fn is_send_closed(&self) -> bool {
        self.tx.is_empty() && (self.term_sent || matches!(self.state, State::Closed))
    }

    /// True once the peer's TERM arrived: no more messages will come.
    fn is_peer_finished(&self) -> bool {
        self.peer_term
    }

    /// True when the connection is over and every byte it produced was handed out: the
    /// caller can close the socket.
    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.tx.is_empty()
    }

    /// [`Redirect::Fallback`] once a server refused its peer or gave up on its bytes before
    /// authenticating it.
    fn redirect(&self) -> Option<Redirect> {
        self.gave_up.then_some(Redirect::Fallback)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::ClientAwaitPrefix { deadline, .. }
            | State::ClientAwaitBody { deadline, .. }
            | State::ServerDecide { deadline, .. } => Some(*deadline),
            State::ServerAwaitPrefix | State::ServerAwaitBody { .. } | State::Draining { .. } => {
                Some(self.drain_deadline)
            }
            State::Open => [
                self.keepalive.poll_timeout(),
                self.release_at,
                self.linger_until(),
            ]
            .into_iter()
            .flatten()
            .min(),
            State::Closed => None,
        }
    }

    /// Fires whatever is due at `now`. Calling it early, late or twice is harmless.
    fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        match &self.state {
            State::ClientAwaitPrefix { deadline, .. }
            | State::ClientAwaitBody { deadline, .. }
            | State::ServerDecide { deadline, .. } => {
                if now >= *deadline {
                    self.fail(CloseReason::HandshakeTimeout);
                }
            }
            State::ServerAwaitPrefix | State::ServerAwaitBody { .. } => {
                if now >= self.drain_deadline {
                    self.gave_up |= self.stats.bytes_received > 0;
                    self.fail(CloseReason::HandshakeTimeout);
                }
            }
            State::Draining { refusal } => {
                if now >= self.drain_deadline {
                    self.fail(CloseReason::Refused(*refusal));
                }
            }
            State::Open => {
                if self.keepalive.handle_timeout(now, &self.config).is_err() {
                    self.fail(CloseReason::KeepaliveTimeout);
                }
            }
            State::Closed => {}
        }
        if self.release_at.is_some_and(|at| now >= at) {
            self.release_at = None;
        }
        self.release_idle_buffers();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side())
            .field("connected", &self.is_connected())
            .field("close_reason", &self.events.close_reason())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
