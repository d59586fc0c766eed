//! Target `shaped_init`: a server whose key has a shape (`docs/PROTOCOL.md` §18: a prefix,
//! popcount encoding, or both) reading what a client or a prober sends first.
//!
//! Input: `shape, mode, param, stream…`. `shape % SHAPES` picks the server's shape (see
//! [`shapes`]), `shape & 0x80` accept (clear) or reject (set) an authenticated client;
//! `mode`/`param` choose the chunking. Checked after every piece:
//!
//! - nothing panics; `receive_buffered()` stays within its ceiling;
//! - not one byte is transmitted before the application decided on an authenticated INIT;
//! - until then the connection stays open and its deadline is the drain deadline drawn at
//!   creation;
//! - only a stream that begins with a genuine first flight of that shape (a scenario's client
//!   of `setup`, under the shape) ever authenticates, and such a stream always does, with its
//!   token and client type.
//!
//! At the end, an unauthenticated server closes exactly at its drain deadline: with
//! `HandshakeTimeout` when the stream is a strict beginning of a genuine first flight, and
//! otherwise with `HandshakeTimeout` (a shaped INIT still incomplete) or
//! `Refused(Unauthenticated)`, and it never transmits.

use std::sync::OnceLock;
use std::time::Duration;

use port_core::{
    ClientConfig, CloseReason, Connection, InitRefusal, Popcount, ServerConfig, Session, Shape,
    Status,
};

use crate::client_init::Seen;
use crate::setup::{
    CLIENT_SEED, Chunker, Decision, SCENARIOS, SERVER_SEED, UNIX, USER_ID, base,
    check_receive_buffered, preset, scenario, server_key,
};

/// Number of shapes the target picks from.
pub const SHAPES: usize = 4;

/// The shapes: `@http` alone; `@tls` with low popcount; high popcount alone; a short custom
/// prefix with high popcount.
pub fn shapes() -> &'static [Shape] {
    static ALL: OnceLock<Vec<Shape>> = OnceLock::new();
    ALL.get_or_init(|| {
        ["prefix=@http", "prefix=@tls&popcount=low", "popcount=high"]
            .iter()
            .map(|text| Shape::from_params(text).expect("a valid shape"))
            .chain([Shape::none()
                .with_prefix(&b"GET "[..])
                .expect("a short prefix")
                .with_popcount(Some(Popcount::High))])
            .collect()
    })
}

/// The server setup of shape `i` (a fresh replay filter each time).
fn server_setup(i: usize) -> ServerConfig {
    let key = server_key().clone().with_shape(shapes()[i].clone());
    ServerConfig::new(preset(0).clone(), key)
}

/// The genuine first flights of shape `i`: each scenario's client under that shape.
pub fn first_flights(i: usize) -> &'static [Vec<u8>] {
    static ALL: OnceLock<Vec<Vec<Vec<u8>>>> = OnceLock::new();
    &ALL.get_or_init(|| {
        (0..SHAPES)
            .map(|i| (0..SCENARIOS as u8).map(|k| flight_of(i, k)).collect())
            .collect()
    })[i]
}

/// What scenario `k`'s client sends first to a server of shape `i`.
fn flight_of(i: usize, k: u8) -> Vec<u8> {
    let s = scenario(k);
    let key = server_key().client_key().with_shape(shapes()[i].clone());
    let setup = ClientConfig::new(preset(s.client_preset).clone(), key, s.token.clone())
        .expect("the scenario's client")
        .with_client_type(s.client_type);
    let mut client = Connection::client(&setup, base(), UNIX, CLIENT_SEED);
    client
        .poll_transmit(base())
        .expect("a first flight")
        .to_vec()
}

/// The `shaped_init` target.
pub fn run(data: &[u8]) {
    let Some((&[flags, mode, param], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let i = usize::from(flags) % SHAPES;
    let decision = if flags & 0x80 == 0 {
        Decision::Accept(USER_ID)
    } else {
        Decision::Reject(Status::from_code(u16::from(param).max(1)))
    };
    let start = base();
    let mut server = Connection::server(&server_setup(i), start, UNIX, SERVER_SEED);
    let drain = server
        .poll_timeout()
        .expect("a fresh server has a deadline");
    let genuine = first_flights(i);
    let mut seen = Seen::default();
    let mut chunker = Chunker::new(mode, param);
    let mut rest = stream;
    while !rest.is_empty() {
        let n = chunker.next(rest.len());
        server.handle_input(start, &rest[..n]);
        rest = &rest[n..];
        seen.events(&mut server, Some(decision));
        seen.transmits(&mut server, start);
        check_receive_buffered(&server, preset(0), seen.authenticated);
        if !seen.authenticated {
            assert_eq!(seen.closed, None, "closed before the drain deadline");
            assert_eq!(
                server.poll_timeout(),
                Some(drain),
                "the drain deadline moved"
            );
        }
    }
    if let Some(k) = genuine.iter().position(|g| stream.starts_with(g)) {
        assert!(
            seen.authenticated,
            "a genuine first flight did not authenticate"
        );
        let s = scenario(k as u8);
        assert_eq!(seen.auth, Some((s.token.to_vec(), s.client_type)));
        return;
    }
    assert!(!seen.authenticated, "a forged first flight authenticated");
    server.handle_timeout(drain - Duration::from_nanos(1));
    seen.events(&mut server, None);
    assert_eq!(seen.closed, None, "closed before the drain deadline");
    server.handle_timeout(drain);
    seen.events(&mut server, None);
    let refused = CloseReason::Refused(InitRefusal::Unauthenticated);
    match seen.closed {
        Some(CloseReason::HandshakeTimeout) => {}
        Some(reason) if reason == refused => assert!(
            !genuine.iter().any(|g| g.starts_with(stream)),
            "a beginning of a genuine first flight was refused"
        ),
        other => panic!("closed with {other:?}"),
    }
    assert!(
        server.poll_transmit(drain).is_none(),
        "a refused server transmitted"
    );
    assert!(server.is_closed());
}
