//! Hostile input to the seaside core: any bytes, in any chunking, at any stage, never panic; a
//! listener never answers bytes that are not an INIT for its key; memory stays bounded.

use std::time::{Duration, Instant};

use port_core::Session;
use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey};
use port_core::{CloseReason, Config, Event, Link};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([21; 32]))
}

/// Feeds `bytes` cut at `cuts` (positions taken modulo the length).
fn feed(conn: &mut Connection, now: Instant, bytes: &[u8], cuts: &[usize]) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    for pair in points.windows(2) {
        conn.handle_input(now, &bytes[pair[0]..pair[1]]);
    }
}

/// A client and a listener with the handshake done and both moved to the second connection.
fn open_pair(now: Instant) -> (Connection, Connection) {
    let key = key();
    let client_setup = ClientConfig::new(Config::default(), key.client_key(), "t").unwrap();
    let mut client = Connection::client(&client_setup, now, [1; 32]);
    let mut server = Connection::server(&ServerConfig::new(Config::default(), key), now, [2; 32]);
    server.handle_input(now, &client.poll_transmit(now).unwrap());
    assert!(matches!(
        server.poll_event(),
        Some(Event::Authenticate { .. })
    ));
    server.accept(40_000).unwrap();
    client.handle_input(now, &server.poll_transmit(now).unwrap());
    client.handle_link_up(now, Link::STREAM);
    server.handle_link_up(now, Link::STREAM);
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (client, server)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_listener_never_answers_garbage(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let now = Instant::now();
        let mut server = Connection::server(&ServerConfig::new(Config::default(), key()), now, [3; 32]);
        feed(&mut server, now, &bytes, &cuts);
        server.handle_link_end(now, None);
        prop_assert_eq!(server.poll_transmit(now), None);
        prop_assert_eq!(server.poll_event(), None);
        let deadline = server.poll_timeout().unwrap();
        server.handle_timeout(deadline + Duration::from_secs(1));
        prop_assert!(server.is_closed());
        prop_assert_eq!(server.poll_transmit(now), None);
    }

    #[test]
    fn garbage_after_the_handshake_closes_without_panic(
        bytes in proptest::collection::vec(any::<u8>(), 1..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        to_server in any::<bool>(),
    ) {
        let now = Instant::now();
        let (mut client, mut server) = open_pair(now);
        let target = if to_server { &mut server } else { &mut client };
        feed(target, now, &bytes, &cuts);
        let events: Vec<Event> = std::iter::from_fn(|| target.poll_event()).collect();
        // 45 random bytes essentially never authenticate: nothing is delivered, and once a
        // whole header arrived the session is closed for a protocol error.
        let delivered = events.iter().any(|e| matches!(e, Event::Data(_)));
        prop_assert!(!delivered, "{:?}", events);
        if bytes.len() >= 45 {
            prop_assert!(matches!(
                target.close_reason(),
                Some(CloseReason::Protocol(_))
            ), "{:?}", target.close_reason());
        }
    }

    #[test]
    fn a_client_survives_any_answer(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let now = Instant::now();
        let setup = ClientConfig::new(Config::default(), key().client_key(), "t").unwrap();
        let mut client = Connection::client(&setup, now, [4; 32]);
        let _ = client.poll_transmit(now);
        feed(&mut client, now, &bytes, &cuts);
        client.handle_link_end(now, None);
        prop_assert!(client.is_closed());
        prop_assert_eq!(client.redirect(), None);
        let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
        let connected = events.iter().any(|e| matches!(e, Event::Connected { .. }));
        prop_assert!(!connected, "{:?}", events);
    }
}
