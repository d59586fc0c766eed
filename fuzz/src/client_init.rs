//! Targets `client_init` and `client_init_mutated`: a server connection reading what a client
//! (or a prober) sends first.
//!
//! `client_init` input: `flags, mode, param, stream…`. `flags & 3` picks the scenario (server
//! configuration), `flags & 4` accept (clear) or reject (set) an authenticated client,
//! `flags & 8` ends the transport after the stream; `mode`/`param` choose the chunking (see
//! [`Chunker`]). Checked after every piece:
//!
//! - nothing panics; `receive_buffered()` stays within its ceiling (see
//!   [`check_receive_buffered`]);
//! - not one byte is transmitted before the application decided on an authenticated INIT;
//! - until then the connection stays open and its deadline is the drain deadline drawn at
//!   creation (no input moves it or closes earlier); a transport end (`flags & 8`) closes it
//!   at once, with `TransportClosed` or the refusal its bytes earned, and its bytes (if any)
//!   go to a fallback (`Redirect::Fallback`);
//! - only a stream that begins with a genuine client INIT (one of [`client_inits`]) ever
//!   authenticates, and such a stream always does, with its token and client type;
//! - `Data` only after `accept`, never after `Finished` or `Closed`; `Closed` once, and equal to
//!   `close_reason()` from then on.
//!
//! At the end, an unauthenticated server closes exactly at its drain deadline (not one
//! nanosecond earlier) with the reason the input calls for: `HandshakeTimeout` for an
//! incomplete INIT, `Refused(Unauthenticated)` for anything else.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use port_core::Session;
use port_core::{
    CLIENT_PREFIX_LEN, ClientConfig, CloseReason, Config, Connection, Error, Event, InitRefusal,
    MAX_TOKEN_LEN, Redirect, ServerConfig, Status,
};

use crate::encode::Encoder;
use crate::setup::{
    CLIENT_SEED, Chunker, Decision, SERVER_SEED, UNIX, USER_ID, base, check_receive_buffered,
    client_inits, preset, scenario, server_key, token,
};

/// What a server connection under test has shown so far.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) authenticated: bool,
    decided: Option<Decision>,
    connected: bool,
    finished: bool,
    pub(crate) closed: Option<CloseReason>,
    pub(crate) auth: Option<(Vec<u8>, u8)>,
}

impl Seen {
    /// Drains the server's events, deciding on `Authenticate` with `decision`.
    pub(crate) fn events(&mut self, server: &mut Connection, decision: Option<Decision>) {
        while let Some(event) = server.poll_event() {
            match event {
                Event::Authenticate { token, client_type } => {
                    assert!(!self.authenticated, "second Authenticate");
                    assert!(self.closed.is_none(), "Authenticate after Closed");
                    self.authenticated = true;
                    self.auth = Some((token.to_vec(), client_type));
                    if let Some(d) = decision {
                        // Bytes after the INIT in the same piece may have closed the server
                        // already (a frame before the server INIT): then the decision is refused.
                        match (server.close_reason(), d.apply(server)) {
                            (None, Ok(())) => self.decided = Some(d),
                            (Some(reason), Err(Error::Closed(r))) => assert_eq!(r, reason),
                            (reason, result) => {
                                panic!("{d:?} with close reason {reason:?}: {result:?}")
                            }
                        }
                    }
                }
                Event::Connected { user_id } => {
                    assert_eq!(self.decided, Some(Decision::Accept(user_id)));
                    assert!(!self.connected, "second Connected");
                    self.connected = true;
                }
                Event::Data(_) => {
                    assert!(self.connected, "Data before accept");
                    assert!(!self.finished, "Data after Finished");
                    assert!(self.closed.is_none(), "Data after Closed");
                }
                Event::Finished => {
                    assert!(self.connected && !self.finished && self.closed.is_none());
                    self.finished = true;
                }
                Event::Closed(reason) => {
                    assert!(self.closed.is_none(), "second Closed: {reason:?}");
                    self.closed = Some(reason);
                }
                other => panic!("unexpected server event {other:?}"),
            }
        }
        assert_eq!(
            server.close_reason(),
            self.closed,
            "close_reason is not sticky"
        );
    }

    /// Takes the server's transmits: there may be some only after a decision.
    pub(crate) fn transmits(&self, server: &mut Connection, now: std::time::Instant) {
        while let Some(bytes) = server.poll_transmit(now) {
            assert!(
                self.decided.is_some(),
                "a server transmitted {} bytes before any decision",
                bytes.len()
            );
        }
    }
}

/// The reason an unauthenticated server must close with at its drain deadline, given all the
/// bytes it read.
fn expected_refusal(stream: &[u8]) -> CloseReason {
    if stream.len() < CLIENT_PREFIX_LEN {
        return CloseReason::HandshakeTimeout;
    }
    match client_inits()
        .iter()
        .find(|init| init[..CLIENT_PREFIX_LEN] == stream[..CLIENT_PREFIX_LEN])
    {
        None => CloseReason::Refused(InitRefusal::Unauthenticated),
        Some(init) if stream.len() < init.len() => CloseReason::HandshakeTimeout,
        Some(_) => CloseReason::Refused(InitRefusal::Unauthenticated),
    }
}

/// The `client_init` target.
pub fn run(data: &[u8]) {
    let Some((&[flags, mode, param], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let scn = scenario(flags);
    let config = preset(scn.server_preset);
    let decision = if flags & 4 == 0 {
        Decision::Accept(USER_ID)
    } else {
        Decision::Reject(Status::from_code(u16::from(param).max(1)))
    };
    let start = base();
    let mut server = Connection::server(&scn.server_setup(), start, UNIX, SERVER_SEED);
    let drain = server
        .poll_timeout()
        .expect("a fresh server has a deadline");
    assert!(drain > start);
    let genuine = client_inits()
        .iter()
        .position(|init| stream.starts_with(init));
    let mut seen = Seen::default();
    let mut chunker = Chunker::new(mode, param);
    let mut rest = stream;
    while !rest.is_empty() {
        let n = chunker.next(rest.len());
        server.handle_input(start, &rest[..n]);
        rest = &rest[n..];
        seen.events(&mut server, Some(decision));
        seen.transmits(&mut server, start);
        check_receive_buffered(&server, config, seen.authenticated);
        if !seen.authenticated {
            assert_eq!(seen.closed, None, "closed before the drain deadline");
            assert_eq!(
                server.poll_timeout(),
                Some(drain),
                "the drain deadline moved"
            );
        }
    }

    match genuine {
        Some(i) => {
            assert!(seen.authenticated, "a genuine INIT did not authenticate");
            let s = scenario(i as u8);
            assert_eq!(seen.auth, Some((s.token.to_vec(), s.client_type)));
        }
        None => assert!(!seen.authenticated, "a forged INIT authenticated"),
    }

    if flags & 8 != 0 {
        server.handle_link_end(start, None);
        seen.events(&mut server, None);
        seen.transmits(&mut server, start);
        if !seen.authenticated {
            // The prober's FIN closes it at once, silently, with what it made of the bytes.
            let expected = match expected_refusal(stream) {
                CloseReason::HandshakeTimeout => CloseReason::TransportClosed,
                refusal => refusal,
            };
            assert_eq!(seen.closed, Some(expected), "a transport end");
            assert!(server.is_closed());
            let fallback = (!stream.is_empty()).then_some(Redirect::Fallback);
            assert_eq!(server.redirect(), fallback, "bytes go to a fallback");
            return;
        }
    }

    if !seen.authenticated {
        server.handle_timeout(drain - Duration::from_nanos(1));
        seen.events(&mut server, None);
        assert_eq!(seen.closed, None, "closed before the drain deadline");
        server.handle_timeout(drain);
        seen.events(&mut server, None);
        assert_eq!(seen.closed, Some(expected_refusal(stream)));
        assert!(
            server.poll_transmit(drain).is_none(),
            "a refused server transmitted"
        );
        assert!(server.is_closed());
        return;
    }
    // Authenticated: whatever is pending, the deadlines still behave.
    let mut now = start;
    for _ in 0..8 {
        let Some(t) = server.poll_timeout() else {
            break;
        };
        now = now.max(t);
        server.handle_timeout(now);
        if let Some(next) = server.poll_timeout() {
            assert!(
                next > now,
                "poll_timeout() {next:?} not after handle_timeout({now:?})"
            );
        }
        seen.events(&mut server, None);
        seen.transmits(&mut server, now);
    }
}

// ----- client_init_mutated --------------------------------------------------------------------

/// Input of `client_init_mutated`: a genuine client INIT built from these fields, then altered.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct MutatedInit {
    /// Configuration preset of the client (padding, limits).
    pub client_preset: u8,
    /// Configuration preset of the server.
    pub server_preset: u8,
    /// Low bytes of the client connection seed.
    pub seed: u64,
    /// Token length (modulo `MAX_TOKEN_LEN + 1`); the bytes are a pattern.
    pub token_len: u16,
    /// Client type byte.
    pub client_type: u8,
    /// Server clock minus client clock, in seconds.
    pub skew: i16,
    /// Chunking mode.
    pub mode: u8,
    /// Chunking parameter.
    pub param: u8,
    /// Feed only the first `len - truncate % (len + 1)` bytes.
    pub truncate: u16,
    /// Then feed the unaltered INIT to a second connection of the same server.
    pub replay: bool,
    /// `(offset modulo the INIT length, xor)` pairs, applied in order.
    pub mutations: Vec<(u16, u8)>,
}

impl MutatedInit {
    /// The bytes from which [`run_mutated`] decodes `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u8(self.client_preset)
            .u8(self.server_preset)
            .u64(self.seed)
            .u16(self.token_len)
            .u8(self.client_type)
            .i16(self.skew)
            .u8(self.mode)
            .u8(self.param)
            .u16(self.truncate)
            .bool(self.replay);
        e.vec(&self.mutations, |e, &(at, x)| {
            e.u16(at).u8(x);
        });
        e.finish()
    }

    /// Decodes an input.
    pub fn decode(data: &[u8]) -> Option<Self> {
        MutatedInit::arbitrary_take_rest(Unstructured::new(data)).ok()
    }
}

/// Feeds `wire` to `server` in pieces; returns what it showed.
fn feed(server: &mut Connection, wire: &[u8], mode: u8, param: u8, config: &Config) -> Seen {
    let now = base();
    let mut seen = Seen::default();
    let mut chunker = Chunker::new(mode, param);
    let mut rest = wire;
    while !rest.is_empty() {
        let n = chunker.next(rest.len());
        server.handle_input(now, &rest[..n]);
        rest = &rest[n..];
        seen.events(server, None);
        seen.transmits(server, now);
        check_receive_buffered(server, config, seen.authenticated);
    }
    seen
}

/// Runs an unauthenticated server to its drain deadline and returns its close reason.
fn drain(server: &mut Connection, seen: &mut Seen) -> Option<CloseReason> {
    let deadline = server
        .poll_timeout()
        .expect("an open server has a deadline");
    server.handle_timeout(deadline);
    seen.events(server, None);
    assert!(
        server.poll_transmit(deadline).is_none(),
        "a refused server transmitted"
    );
    seen.closed
}

/// The `client_init_mutated` target.
pub fn run_mutated(data: &[u8]) {
    let Some(input) = MutatedInit::decode(data) else {
        return;
    };
    let token = token(
        usize::from(input.token_len) % (MAX_TOKEN_LEN + 1),
        input.client_type,
    );
    let client_setup = ClientConfig::new(
        preset(input.client_preset).clone(),
        server_key().client_key(),
        token.clone(),
    )
    .expect("client setup")
    .with_client_type(input.client_type);
    let mut seed = CLIENT_SEED;
    seed[..8].copy_from_slice(&input.seed.to_le_bytes());
    let start = base();
    let mut client = Connection::client(&client_setup, start, UNIX, seed);
    let original = client.poll_transmit(start).expect("client INIT").to_vec();

    let mut wire = original.clone();
    for &(at, x) in &input.mutations {
        let at = usize::from(at) % wire.len();
        wire[at] ^= x;
    }
    let fed = wire.len() - usize::from(input.truncate) % (wire.len() + 1);
    let wire = &wire[..fed];

    let server_config = preset(input.server_preset);
    let setup = ServerConfig::new(server_config.clone(), server_key().clone());
    let unix = if input.skew >= 0 {
        UNIX + Duration::from_secs(input.skew.unsigned_abs().into())
    } else {
        UNIX - Duration::from_secs(input.skew.unsigned_abs().into())
    };
    let window = server_config.replay_window().as_secs();
    let stale = u64::from(input.skew.unsigned_abs()) > window;
    let mut server = Connection::server(&setup, start, unix, SERVER_SEED);
    let mut seen = feed(&mut server, wire, input.mode, input.param, server_config);

    let prefix_intact = wire.len() >= CLIENT_PREFIX_LEN
        && wire[..CLIENT_PREFIX_LEN] == original[..CLIENT_PREFIX_LEN];
    let complete = wire.len() == original.len();
    let intact = complete && wire == &original[..];
    let expected = if wire.len() < CLIENT_PREFIX_LEN {
        Some(CloseReason::HandshakeTimeout)
    } else if !prefix_intact {
        Some(CloseReason::Refused(InitRefusal::Unauthenticated))
    } else if !complete {
        Some(CloseReason::HandshakeTimeout)
    } else if !intact {
        Some(CloseReason::Refused(InitRefusal::Unauthenticated))
    } else if stale {
        Some(CloseReason::Refused(InitRefusal::Stale))
    } else {
        None
    };
    match expected {
        None => {
            assert!(
                seen.authenticated,
                "an intact, fresh INIT did not authenticate"
            );
            assert_eq!(seen.auth, Some((token.to_vec(), input.client_type)));
        }
        Some(reason) => {
            assert!(
                !seen.authenticated,
                "an INIT authenticated: expected {reason:?}"
            );
            assert_eq!(drain(&mut server, &mut seen), Some(reason));
        }
    }

    if input.replay {
        // The same server (its replay filter) sees the unaltered INIT again.
        let mut again = Connection::server(&setup, start, unix, SERVER_SEED);
        let mut seen2 = feed(
            &mut again,
            &original,
            input.mode,
            input.param,
            server_config,
        );
        let expected = if stale {
            Some(CloseReason::Refused(InitRefusal::Stale))
        } else if seen.authenticated {
            Some(CloseReason::Refused(InitRefusal::Replayed))
        } else {
            None
        };
        match expected {
            None => assert!(seen2.authenticated, "an unseen INIT did not authenticate"),
            Some(reason) => {
                assert!(!seen2.authenticated, "a replayed INIT authenticated");
                assert_eq!(drain(&mut again, &mut seen2), Some(reason));
            }
        }
    }
}
