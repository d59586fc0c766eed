//! The seaside session state machine, client and listener, on the shared machinery: the same
//! exact-length reader, event queue, send queue and seeded randomness as PORT/1's connection,
//! with upstream's messages and its two-connection flow.

use std::mem;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use x25519_dalek::StaticSecret;

use super::crypto::Sealer;
use super::setup::{ClientConfig, ServerConfig};
use super::wire::{
    self, CLIENT_INIT_HEADER_LEN, ClientInitHeader, MAX_PAYLOAD, MAX_TAIL_SENT, MESSAGE_HEADER_LEN,
    MessageHeader, SERVER_INIT_HEADER_LEN, ServerInitHeader,
};
use crate::config::{Config, Padding};

use crate::error::{CloseReason, Error, InitRefusal, ProtocolError, Side, Status};
use crate::event::Event;
use crate::machinery::{Events, SendQueue, TRANSMIT_BATCH, UnitReader, seeded, skip, uniform};
use crate::session::{Link, Redirect, Seed, Session};

enum Role {
    Client,
    Server(ServerConfig),
}

enum State {
    /// Client: INIT queued; reading the server INIT header.
    ClientAwaitInit { deadline: Instant },
    /// Client: skipping the server INIT tail before moving to the second connection.
    ClientInitTail { user_id: u16, deadline: Instant },
    /// Listener: reading the fixed part of the client INIT.
    ServerAwaitInit,
    /// Listener: reading the sealed token.
    ServerAwaitToken { header: ClientInitHeader },
    /// Listener: skipping the client INIT tail; the token waits for it.
    ServerInitTail { token: Bytes, client_type: u8 },
    /// Listener: `Authenticate` reported; waiting for `accept` or `reject`.
    ServerDecide { deadline: Instant },
    /// Listener: the first bytes were refused; input is discarded until the drain deadline.
    Draining { refusal: InitRefusal },
    /// Both: waiting for the driver to bring up the second connection.
    Redirect { deadline: Instant },
    /// Messages flow on the second connection.
    Open,
    /// Nothing more will be produced (bytes already in the transmit buffer excepted).
    Closed,
}

/// One seaside session, client or listener side: a pure state machine implementing
/// [`Session`](crate::Session), wire-compatible with upstream SeasideVPN peers.
///
/// The flow: the client's INIT goes to the listener on the first TCP connection; the listener's
/// application accepts with [`accept`](Session::accept) (the user id is the port of the
/// per-user socket the driver opened when [`redirect`](Session::redirect) asked for it) or
/// rejects with [`reject`](Session::reject); both sides then ask to move
/// ([`Redirect::Move`]) and continue on a second TCP connection to that port, which carries
/// DATA and TERM. The driver calls [`handle_link_up`](Session::handle_link_up) once that
/// connection is up; until then the session's deadline (`handshake_timeout`) runs.
///
/// What it keeps from upstream: every byte. What it adds on its side of the wire: exact-length
/// reads, a deadline on every wait, low-order ephemeral keys refused, a close on the first
/// message that fails to authenticate (never a skip that loses sync), payloads above
/// [`MAX_PAYLOAD`] refused instead of truncated, and a listener that never answers (nor
/// closes early for) bytes that are not an INIT for its key. What it cannot add without
/// changing the bytes: replay protection and forward secrecy (see `docs/PROTOCOL.md`).
pub struct Connection {
    role: Role,
    config: Config,
    rng: ChaCha20Rng,
    state: State,
    /// Listener: when a connection that never authenticated is closed, drawn at creation.
    drain_deadline: Instant,
    /// After our TERM: when we stop waiting for the peer to end too.
    term_deadline: Option<Instant>,
    rx: UnitReader,
    /// Tail bytes still to discard before the next unit.
    skip: usize,
    pending: Option<MessageHeader>,
    tx: BytesMut,
    queue: SendQueue,
    events: Events,
    sealer: Option<Sealer>,
    term_queued: bool,
    term_sent: bool,
    peer_term: bool,
    user_id: Option<u16>,
    /// The latest `now` seen, for calls that take none (`accept`).
    last_now: Instant,
}

impl Connection {
    /// Opens a client session at `now`; the INIT is ready in `poll_transmit` at once. Random
    /// draws from `seed`, in order: the INIT tail length (one `u32`), the ephemeral secret
    /// (32 bytes), then what [`wire::client_init`] draws; per message afterwards, the tail
    /// length (one `u32`) and what the message's encoder draws.
    pub fn client(setup: &ClientConfig, now: Instant, seed: Seed) -> Self {
        let mut conn = Connection::new(Role::Client, setup.config().clone(), now, seed);
        let tail_len = conn.draw_tail();
        let mut secret = [0u8; 32];
        conn.rng.fill_bytes(&mut secret);
        let ephemeral = StaticSecret::from(secret);
        let init = wire::client_init(
            setup.key(),
            &ephemeral,
            setup.client_type(),
            setup.token(),
            tail_len,
            &mut conn.rng,
        );
        match init {
            Some(init) => {
                conn.tx.extend_from_slice(&init.wire);
                conn.sealer = Some(Sealer::new(&init.session_key));
                conn.state = State::ClientAwaitInit {
                    deadline: now + conn.config.handshake_timeout(),
                };
            }
            // Unreachable with a setup that passed `ClientConfig::new`; fail closed regardless.
            None => conn.fail(CloseReason::Protocol(ProtocolError::Authentication)),
        }
        conn
    }

    /// Accepts a listener session at `now` (the TCP connection was just accepted). Nothing is
    /// ever sent before a client INIT authenticated and the application decided. Random draws
    /// from `seed`: the drain deadline (one `u64`), then per message the tail length (one
    /// `u32`) and what the message's encoder draws.
    pub fn server(setup: &ServerConfig, now: Instant, seed: Seed) -> Self {
        let config = setup.config().clone();
        let mut conn = Connection::new(Role::Server(setup.clone()), config, now, seed);
        let (lo, hi) = (conn.config.drain_min(), conn.config.drain_max());
        conn.drain_deadline = now + uniform(&mut conn.rng, lo, hi);
        conn.state = State::ServerAwaitInit;
        conn
    }

    fn new(role: Role, config: Config, now: Instant, seed: Seed) -> Self {
        Connection {
            role,
            config,
            rng: seeded(seed),
            state: State::Closed,
            drain_deadline: now,
            term_deadline: None,
            rx: UnitReader::default(),
            skip: 0,
            pending: None,
            tx: BytesMut::new(),
            queue: SendQueue::default(),
            events: Events::default(),
            sealer: None,
            term_queued: false,
            term_sent: false,
            peer_term: false,
            user_id: None,
            last_now: now,
        }
    }

    // ----- queries -------------------------------------------------------------------------

    /// Which side this session is.
    pub fn side(&self) -> Side {
        match self.role {
            Role::Client => Side::Client,
            Role::Server(_) => Side::Server,
        }
    }

    /// True once messages flow on the second connection, until the session closed.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// The user id (the per-user socket's port), once the server assigned it.
    pub fn user_id(&self) -> Option<u16> {
        self.user_id
    }

    /// The reason the session closed, once it has (sticky).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.events.close_reason()
    }

    // ----- application calls --------------------------------------------------------------

    // ----- I/O -----------------------------------------------------------------------------

    /// Heap bytes reserved by the session's own buffers (receive, transmit, the event and send
    /// queues), used or not. Every one is given back once drained, so an idle session that
    /// was polled reports 0.
    pub fn buffer_capacity(&self) -> usize {
        self.rx.capacity()
            + self.tx.capacity()
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.queue.messages.capacity() * std::mem::size_of::<Bytes>()
    }
}

impl Connection {
    // ----- input ---------------------------------------------------------------------------

    /// Size of the next unit to read, or `None` while input is discarded.
    fn bytes_needed(&self) -> Option<usize> {
        Some(match &self.state {
            State::ClientAwaitInit { .. } => SERVER_INIT_HEADER_LEN,
            State::ServerAwaitInit => CLIENT_INIT_HEADER_LEN,
            State::ServerAwaitToken { header } => header.token_len.into(),
            // Upstream receivers stop reading at a TERM; so does this one.
            State::Open if self.peer_term => return None,
            State::Open => self
                .pending
                .map_or(MESSAGE_HEADER_LEN, |h| h.data_len.into()),
            // A client sends nothing before the server INIT, and nothing on the first
            // connection after it: bytes there are dropped, never mistaken for messages.
            State::ClientInitTail { .. }
            | State::ServerInitTail { .. }
            | State::ServerDecide { .. }
            | State::Draining { .. }
            | State::Redirect { .. }
            | State::Closed => return None,
        })
    }

    fn on_unit(&mut self, now: Instant, mut unit: BytesMut) {
        match mem::replace(&mut self.state, State::Closed) {
            State::ClientAwaitInit { deadline } => self.on_server_init(deadline, &unit),
            State::ServerAwaitInit => self.on_client_init(&unit),
            State::ServerAwaitToken { header } => self.on_token(header, &mut unit),
            State::Open => {
                self.state = State::Open;
                self.on_message_unit(now, unit);
            }
            state => self.state = state,
        }
    }

    fn on_server_init(&mut self, deadline: Instant, unit: &[u8]) {
        let (Some(sealer), Ok(wire)) = (
            self.sealer.as_ref(),
            <&[u8; SERVER_INIT_HEADER_LEN]>::try_from(unit),
        ) else {
            return self.fail(CloseReason::Protocol(ProtocolError::Authentication));
        };
        let Some(header) = wire::open_server_init(sealer, wire) else {
            return self.fail(CloseReason::Protocol(ProtocolError::Authentication));
        };
        if header.status != 0 {
            return self.fail(CloseReason::Rejected(Status::from_code(
                header.status.into(),
            )));
        }
        if header.user_id == 0 {
            return self.fail(CloseReason::Protocol(ProtocolError::Malformed(
                "user id 0 (no port) with success",
            )));
        }
        self.state = State::ClientInitTail {
            user_id: header.user_id,
            deadline,
        };
        self.start_tail(header.tail_len);
    }

    fn on_client_init(&mut self, unit: &[u8]) {
        let Role::Server(setup) = &self.role else {
            return;
        };
        let opened = <&[u8; CLIENT_INIT_HEADER_LEN]>::try_from(unit)
            .ok()
            .and_then(|wire| wire::open_client_init(setup.key(), wire));
        match opened {
            Some(opened) => {
                self.sealer = Some(Sealer::new(&opened.session_key));
                self.state = State::ServerAwaitToken {
                    header: opened.header,
                };
            }
            None => self.refuse(InitRefusal::Unauthenticated),
        }
    }

    fn on_token(&mut self, header: ClientInitHeader, unit: &mut [u8]) {
        let token = self
            .sealer
            .as_ref()
            .and_then(|sealer| wire::open_body(sealer, unit))
            .map(|token| Bytes::copy_from_slice(token));
        match token {
            Some(token) => {
                self.state = State::ServerInitTail {
                    token,
                    client_type: header.client_type,
                };
                self.start_tail(header.tail_len);
            }
            None => self.refuse(InitRefusal::Unauthenticated),
        }
    }

    /// Skips a tail of `len` bytes, then goes on with [`after_tail`](Self::after_tail).
    fn start_tail(&mut self, len: u16) {
        self.skip = len.into();
        if self.skip == 0 {
            self.after_tail(self.last_now);
        }
    }

    fn after_tail(&mut self, now: Instant) {
        match mem::replace(&mut self.state, State::Closed) {
            State::ClientInitTail { user_id, .. } => {
                // The second connection's connect gets a full timeout of its own.
                self.user_id = Some(user_id);
                self.state = State::Redirect {
                    deadline: now + self.config.handshake_timeout(),
                };
            }
            State::ServerInitTail { token, client_type } => {
                self.state = State::ServerDecide {
                    deadline: now + self.config.handshake_timeout(),
                };
                self.events.push(Event::Authenticate { token, client_type });
            }
            state => self.state = state,
        }
    }

    fn on_message_unit(&mut self, now: Instant, mut unit: BytesMut) {
        let Some(sealer) = self.sealer.as_ref() else {
            return;
        };
        match self.pending.take() {
            None => {
                let Ok(wire) = <&[u8; MESSAGE_HEADER_LEN]>::try_from(&unit[..]) else {
                    return;
                };
                match wire::open_message_header(sealer, wire) {
                    Ok(header) if header.is_data() => self.pending = Some(header),
                    Ok(_) => self.on_term(),
                    // Upstream's Go server skips a header that fails and reads on, out of
                    // step for good; closing is the only safe answer.
                    Err(e) => self.fail(CloseReason::Protocol(e)),
                }
            }
            Some(header) => match wire::open_body(sealer, &mut unit) {
                Some(payload) => {
                    let payload = Bytes::copy_from_slice(payload);
                    self.events.push(Event::Data(payload));
                    self.last_now = now;
                    self.start_tail(header.tail_len);
                }
                None => self.fail(CloseReason::Protocol(ProtocolError::Authentication)),
            },
        }
    }

    fn on_term(&mut self) {
        self.peer_term = true;
        self.rx.clear();
        self.events.push(Event::Finished);
        if self.term_sent {
            self.finish(CloseReason::Local);
        }
    }

    // ----- output --------------------------------------------------------------------------

    fn build_messages(&mut self, now: Instant) {
        let Some(sealer) = self.sealer.clone() else {
            return;
        };
        let mut out = Vec::new();
        while self.tx.len() + out.len() < TRANSMIT_BATCH && !self.term_sent {
            if self.queue.messages.is_empty() && !self.term_queued {
                break;
            }
            // Drawn only for a message that goes out, so the bytes depend on what was sent,
            // never on how often the driver asked.
            let tail_len = self.draw_tail();
            if let Some((payload, _)) = self.queue.next_fragment(MAX_PAYLOAD) {
                // `send` refused anything longer, so the length always fits.
                if wire::data(&sealer, &payload, tail_len, &mut self.rng, &mut out).is_none() {
                    return self.fail(CloseReason::Protocol(ProtocolError::Malformed(
                        "message above the payload limit",
                    )));
                }
            } else if self.term_queued {
                wire::term(&sealer, tail_len, &mut self.rng, &mut out);
                self.term_sent = true;
            } else {
                break;
            }
        }
        self.tx.extend_from_slice(&out);
        if self.term_sent && matches!(self.state, State::Open) {
            if self.peer_term {
                // The peer ended first; with our TERM both directions are done.
                self.finish(CloseReason::Peer);
            } else if self.term_deadline.is_none() {
                // Upstream peers answer TERM by closing; wait that long at most.
                self.term_deadline = Some(now + self.config.handshake_timeout());
            }
        }
    }

    fn queue_server_init(&mut self, status: u8, user_id: u16) {
        let Some(sealer) = self.sealer.clone() else {
            return;
        };
        let header = ServerInitHeader {
            status,
            user_id,
            tail_len: self.draw_tail(),
        };
        let mut out = Vec::new();
        wire::server_init(&sealer, &header, &mut self.rng, &mut out);
        self.tx.extend_from_slice(&out);
    }

    // ----- helpers -------------------------------------------------------------------------

    fn take_decision(&mut self) -> Result<(), Error> {
        if self.side() != Side::Server {
            return Err(Error::WrongSide {
                expected: Side::Server,
            });
        }
        match self.state {
            State::ServerDecide { .. } => Ok(()),
            _ => Err(match self.events.close_reason() {
                Some(reason) => Error::Closed(reason),
                None => Error::NoPendingAuthentication,
            }),
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.events.close_reason().unwrap_or(CloseReason::Local))
    }

    fn refuse(&mut self, refusal: InitRefusal) {
        self.rx.clear();
        self.state = State::Draining { refusal };
    }

    /// Ends the session at once: nothing further is sent.
    fn fail(&mut self, reason: CloseReason) {
        self.tx.clear();
        self.finish(reason);
    }

    /// Ends the session, keeping bytes already sealed for transmission.
    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.queue.clear();
        self.rx.clear();
        self.skip = 0;
        self.pending = None;
        self.term_deadline = None;
        self.events.closed(reason);
    }

    /// A tail length: uniform over `0..=min(configured maximum, 512)`, upstream's range.
    fn draw_tail(&mut self) -> u16 {
        let max = self.config.padding().max().min(MAX_TAIL_SENT.into()) as u16;
        Padding::Uniform { max }.draw(self.rng.next_u32()) as u16
    }
}

impl Session for Connection {
    /// The link is up. The first time (the connection the INIT travels on) there is nothing
    /// to do; once the session moved (see [`redirect`](Session::redirect)), the second
    /// connection is up and messages flow on it from now on.
    fn handle_link_up(&mut self, now: Instant, _link: Link) {
        self.last_now = now;
        if let State::Redirect { .. } = self.state {
            self.rx.clear();
            self.skip = 0;
            self.state = State::Open;
            if self.side() == Side::Client
                && let Some(port) = self.user_id
            {
                self.events.push(Event::Connected {
                    user_id: port.into(),
                });
            }
        }
    }

    /// Feeds bytes read from the current TCP connection, in any chunking. Never fails.
    fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        self.last_now = now;
        loop {
            if self.skip > 0 {
                skip(&mut data, &mut self.skip);
                if self.skip > 0 {
                    return;
                }
                self.after_tail(now);
                continue;
            }
            if data.is_empty() {
                return;
            }
            let Some(need) = self.bytes_needed() else {
                return;
            };
            if let Some(unit) = self.rx.fill(&mut data, need) {
                self.on_unit(now, unit);
                if self.rx.is_empty() {
                    // Units are copied out as they complete; letting the allocation go means
                    // a session that fell silent pins none (the next unit allocates anew).
                    self.rx.release();
                }
            }
        }
    }

    /// The byte stream ended. The first connection ending while the second is awaited is
    /// expected (upstream listeners close it); a listener that has not authenticated its
    /// client keeps its drain deadline; after the peer's TERM our queued messages and TERM
    /// still go out; after ours it is a clean end; otherwise the session closes with
    /// [`CloseReason::TransportClosed`].
    fn handle_link_end(&mut self, now: Instant, _reason: Option<CloseReason>) {
        self.last_now = now;
        match self.state {
            State::ServerAwaitInit
            | State::ServerAwaitToken { .. }
            | State::ServerInitTail { .. }
            | State::Draining { .. }
            | State::Redirect { .. }
            | State::Closed => {}
            // The peer ended its direction and its stream: what we queued and our TERM
            // still go out (a FIN does not mean it stopped reading), then the session ends.
            State::Open if self.peer_term => self.term_queued = true,
            State::Open if self.term_sent => self.finish(CloseReason::Local),
            _ => self.fail(CloseReason::TransportClosed),
        }
    }

    /// Bytes to write to the current TCP connection, if any.
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.last_now = now;
        if matches!(self.state, State::Open) {
            self.build_messages(now);
        }
        // The whole buffer is handed over, so an idle session pins no transmit allocation.
        (!self.tx.is_empty()).then(|| mem::take(&mut self.tx).freeze())
    }

    /// No keepalive follows a TERM: once it is out, the write side can be shut.
    fn is_send_finished(&self) -> bool {
        self.is_send_closed()
    }

    /// Queues one message; it goes out as one DATA message. Messages above [`MAX_PAYLOAD`]
    /// are refused with [`Error::MessageTooLarge`] (upstream peers cannot receive them).
    /// Accepted from [`Event::Connected`] on; a listener's messages wait for the second
    /// connection.
    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        match self.state {
            State::Open | State::Redirect { .. } if self.term_queued => return Err(Error::Closing),
            State::Open => {}
            State::Redirect { .. } if self.user_id.is_some() && self.side() == Side::Server => {}
            State::Closed => return Err(self.closed_error()),
            _ => return Err(Error::NotConnected),
        }
        if data.len() > MAX_PAYLOAD {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: MAX_PAYLOAD,
            });
        }
        self.queue.push(data);
        Ok(())
    }

    /// Ends the session gracefully: queued messages go out, then TERM. Messages from the peer
    /// keep arriving until its own TERM. Before the handshake completed it closes at once.
    fn close(&mut self) {
        match self.state {
            State::Open => self.term_queued = true,
            State::Redirect { .. } if self.side() == Side::Server => self.term_queued = true,
            State::Closed => {}
            _ => self.fail(CloseReason::Local),
        }
    }

    /// Listener: accepts the authenticated client. `user_id` must be the port of the per-user
    /// socket the client will connect to (1 to 65535, else [`Error::UserIdOutOfRange`]). Queues
    /// the server INIT, asks to move ([`Redirect::Move`]) and reports [`Event::Connected`].
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        let port = u16::try_from(user_id)
            .ok()
            .filter(|&p| p != 0)
            .ok_or(Error::UserIdOutOfRange { user_id })?;
        self.take_decision()?;
        self.queue_server_init(0, port);
        // The wait for the second connection gets a full timeout of its own.
        self.state = State::Redirect {
            deadline: self.last_now + self.config.handshake_timeout(),
        };
        self.user_id = Some(port);
        self.events.push(Event::Connected {
            user_id: port.into(),
        });
        Ok(())
    }

    /// Listener: rejects the authenticated client with a failure `status` (one byte on the
    /// wire: [`Error::StatusOutOfRange`] above 255). The server INIT carrying it, with user
    /// id 0 as upstream sends, is queued and the session closes with
    /// [`CloseReason::Rejected`].
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        if status == Status::Success {
            return Err(Error::RejectWithSuccess);
        }
        let code = u8::try_from(status.code()).map_err(|_| Error::StatusOutOfRange(status))?;
        self.take_decision()?;
        self.queue_server_init(code, 0);
        self.finish(CloseReason::Rejected(status));
        Ok(())
    }

    /// Bytes accepted by `send` but not yet handed out.
    fn send_buffered(&self) -> usize {
        self.queue.bytes + self.tx.len()
    }

    /// The largest message: [`MAX_PAYLOAD`] (65 495) bytes, what upstream's u16 length holds.
    fn max_message(&self) -> usize {
        MAX_PAYLOAD
    }

    /// The next event.
    fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop();
        if event.is_none() {
            // Drained: an idle session keeps no queue allocation.
            self.events.release();
            self.queue.release_if_empty();
        }
        event
    }

    /// True once our TERM (or the last bytes of a failed session) was handed out: seaside has
    /// no keepalive, so nothing at all follows.
    fn is_send_closed(&self) -> bool {
        self.tx.is_empty() && (self.term_sent || matches!(self.state, State::Closed))
    }

    /// True once the peer's TERM arrived.
    fn is_peer_finished(&self) -> bool {
        self.peer_term
    }

    /// True when the session is over and every byte it produced was handed out.
    fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.tx.is_empty()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::ClientAwaitInit { deadline }
            | State::ClientInitTail { deadline, .. }
            | State::ServerDecide { deadline }
            | State::Redirect { deadline } => Some(*deadline),
            State::ServerAwaitInit
            | State::ServerAwaitToken { .. }
            | State::ServerInitTail { .. }
            | State::Draining { .. } => Some(self.drain_deadline),
            State::Open => self.term_deadline,
            State::Closed => None,
        }
    }

    /// Fires whatever is due at `now`; early or repeated calls are harmless.
    fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::Draining { refusal } => self.fail(CloseReason::Refused(refusal)),
            // The peer never ended after our TERM: our side is done regardless.
            State::Open => self.finish(CloseReason::Local),
            _ => self.fail(CloseReason::HandshakeTimeout),
        }
    }

    /// A listener that reported `Authenticate` asks for its per-user socket; both sides ask to
    /// move once the server INIT named the port (server: after `accept`; client: once the
    /// server INIT was read). A listener that refused its peer asks for the fallback.
    fn redirect(&self) -> Option<Redirect> {
        match (&self.state, self.user_id) {
            (State::ServerDecide { .. }, _) => Some(Redirect::Listen),
            (State::Draining { .. }, _) => Some(Redirect::Fallback),
            (State::Redirect { .. }, Some(port)) => Some(Redirect::Move { port }),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("seaside::Connection")
            .field("side", &self.side())
            .field("connected", &self.is_connected())
            .field("user_id", &self.user_id)
            .field("close_reason", &self.events.close_reason())
            .finish_non_exhaustive()
    }
}
