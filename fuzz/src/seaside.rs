//! The `seaside` target: the seaside profile's core (`port_core::seaside::Connection`) fed
//! arbitrary bytes at every stage.
//!
//! Input: `stage, chunk, bytes…`. `stage % 4` picks the session under test: 0 a fresh listener,
//! 1 a client whose INIT went out (the bytes are its answer), 2 a listener and 3 a client with
//! the handshake done and both moved to the second connection. `chunk` is the size of the
//! pieces the bytes are fed in (0: one byte at a time). A genuine client INIT (from
//! [`genuine_client_init`]; its tail is outside every seal, so any tail bytes of the right
//! length will do) fed to stage 0 authenticates; anything else is refused.
//!
//! Checked: nothing panics; a listener transmits nothing before its application decided, stays
//! open whatever arrives (a transport end included) until its drain deadline drawn at creation,
//! and then closes at exactly that instant; a client is never told to redirect or connect by
//! bytes that are not a server INIT for its session; on the second connection no message is
//! delivered from bytes that are not the peer's (random bytes never authenticate), and once a
//! whole header arrived the session has closed for a protocol error; `Closed` comes once; after
//! `is_closed()` nothing more is transmitted.

use std::time::{Duration, Instant};

use port_core::Session;
use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey};
use port_core::{CloseReason, Config, Event, InitRefusal};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The sealed header length of DATA and TERM.
const HEADER: usize = 45;

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([0x5e; 32]))
}

fn client_setup() -> ClientConfig {
    ClientConfig::new(Config::default(), key().client_key(), "fuzz token").expect("a valid key")
}

fn server_setup() -> ServerConfig {
    ServerConfig::new(Config::default(), key())
}

/// The client INIT of this target's fixed client (for the seed corpus).
pub fn genuine_client_init() -> Vec<u8> {
    let now = Instant::now();
    let mut client = Connection::client(&client_setup(), now, [1; 32]);
    client.poll_transmit(now).expect("the INIT").to_vec()
}

/// The tail length of [`genuine_client_init`]: what follows `121 + token` bytes.
fn genuine_tail_len() -> usize {
    genuine_client_init().len() - 121 - b"fuzz token".len()
}

fn feed(conn: &mut Connection, now: Instant, bytes: &[u8], chunk: usize) {
    for piece in bytes.chunks(chunk.max(1)) {
        conn.handle_input(now, piece);
    }
}

fn drain(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

fn closes(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count()
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let [stage, chunk, bytes @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk);
    let now = Instant::now();
    match stage % 4 {
        0 => fresh_listener(now, bytes, chunk),
        1 => client_answer(now, bytes, chunk),
        side => open_session(now, bytes, chunk, side == 2),
    }
}

fn fresh_listener(now: Instant, bytes: &[u8], chunk: usize) {
    let mut server = Connection::server(&server_setup(), now, [2; 32]);
    let deadline = server.poll_timeout().expect("a drain deadline");
    feed(&mut server, now, bytes, chunk);
    let genuine = genuine_client_init();
    let events = drain(&mut server);
    assert!(
        server.poll_transmit(now).is_none(),
        "an answer before a decision"
    );
    let authenticated = events
        .iter()
        .any(|e| matches!(e, Event::Authenticate { .. }));
    // The tail is outside every seal (upstream's format): any tail bytes of the right length
    // complete the genuine INIT, and only the sealed part must be intact.
    let sealed = genuine.len() - genuine_tail_len();
    let complete = bytes.len() >= genuine.len() && bytes[..sealed] == genuine[..sealed];
    assert_eq!(
        authenticated, complete,
        "only the genuine INIT (any tail bytes) authenticates"
    );
    if complete {
        return;
    }
    server.handle_link_end(now, None);
    assert_eq!(
        server.close_reason(),
        None,
        "closed before the drain deadline"
    );
    assert_eq!(server.poll_timeout(), Some(deadline), "the deadline moved");
    server.handle_timeout(deadline - Duration::from_nanos(1));
    assert_eq!(server.close_reason(), None);
    server.handle_timeout(deadline);
    assert!(matches!(
        server.close_reason(),
        Some(CloseReason::HandshakeTimeout | CloseReason::Refused(InitRefusal::Unauthenticated))
    ));
    assert!(server.is_closed());
    assert!(server.poll_transmit(deadline).is_none());
    assert_eq!(closes(&drain(&mut server)), 1);
}

fn client_answer(now: Instant, bytes: &[u8], chunk: usize) {
    let mut client = Connection::client(&client_setup(), now, [3; 32]);
    let _ = client.poll_transmit(now);
    feed(&mut client, now, bytes, chunk);
    let events = drain(&mut client);
    assert!(
        client.redirect().is_none() && !events.iter().any(|e| matches!(e, Event::Connected { .. })),
        "random bytes moved the client on: {events:?}"
    );
    if bytes.len() >= 46 {
        assert!(client.is_closed(), "a bad server INIT left the client open");
    }
    client.handle_link_end(now, None);
    assert!(client.is_closed());
    assert!(closes(&events) + closes(&drain(&mut client)) == 1);
    assert!(client.poll_transmit(now).is_none());
}

fn open_session(now: Instant, bytes: &[u8], chunk: usize, listener: bool) {
    let mut client = Connection::client(&client_setup(), now, [4; 32]);
    let mut server = Connection::server(&server_setup(), now, [5; 32]);
    server.handle_input(now, &client.poll_transmit(now).expect("INIT"));
    assert!(matches!(
        server.poll_event(),
        Some(Event::Authenticate { .. })
    ));
    server.accept(40_000).expect("accept");
    client.handle_input(now, &server.poll_transmit(now).expect("server INIT"));
    client.handle_link_up(now, port_core::Link::STREAM);
    server.handle_link_up(now, port_core::Link::STREAM);
    drain(&mut client);
    drain(&mut server);
    let target = if listener { &mut server } else { &mut client };
    feed(target, now, bytes, chunk);
    let events = drain(target);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Data(_))),
        "random bytes delivered a message"
    );
    if bytes.len() >= HEADER {
        assert!(
            matches!(target.close_reason(), Some(CloseReason::Protocol(_))),
            "{:?}",
            target.close_reason()
        );
        assert!(target.poll_transmit(now).is_none());
    }
    assert!(closes(&events) <= 1);
}
