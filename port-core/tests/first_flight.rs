//! Shaped first flights: a prefix and popcount shaping carried by the key, end to end between
//! two in-memory endpoints, and what a server does with a first flight of the wrong shape.

mod common;

use std::time::Instant;

use common::*;
use port_core::{
    ClientConfig, CloseReason, Connection, Event, InitRefusal, Popcount, ServerConfig, ServerKey,
    Session, Shape,
};

const HTTP: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
const TLS: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

fn shape(prefix: &[u8], popcount: Option<Popcount>) -> Shape {
    Shape::none()
        .with_prefix(prefix.to_vec())
        .unwrap()
        .with_popcount(popcount)
}

fn shapes() -> Vec<Shape> {
    vec![
        shape(HTTP, None),
        shape(TLS, None),
        shape(b"", Some(Popcount::Low)),
        shape(b"", Some(Popcount::High)),
        shape(HTTP, Some(Popcount::Low)),
        shape(TLS, Some(Popcount::High)),
    ]
}

/// A server key with `shape` and a client set up from its client key line, as an operator
/// hands it out.
fn setups(shape: &Shape) -> (ClientConfig, ServerKey) {
    let key = server_key(1).with_shape(shape.clone());
    let line = key.client_key().to_text();
    let client_key = line.parse().expect("the client line parses");
    let client = ClientConfig::new(fast_config(), client_key, TOKEN).unwrap();
    (client, key)
}

fn bits_per_byte(bytes: &[u8]) -> f64 {
    let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
    f64::from(ones) / bytes.len() as f64
}

/// The first flight a client of `setup` sends with connection seed `seed`.
fn first_flight(setup: &ClientConfig, seed: u64) -> Vec<u8> {
    let now = Instant::now();
    let mut client = lone_client(setup, seed, now);
    client.poll_transmit(now).unwrap().to_vec()
}

/// Feeds `stream` to a fresh server of `key` in pieces of `piece` bytes and runs it to its
/// end: whether it authenticated, whether it ever transmitted, and how it closed.
fn serve(key: &ServerKey, stream: &[u8], piece: usize) -> (bool, bool, Option<CloseReason>) {
    let setup = ServerConfig::new(fast_config(), key.clone());
    let now = Instant::now();
    let mut server = lone_server(&setup, 7, now);
    let mut authenticated = false;
    let mut transmitted = false;
    for chunk in stream.chunks(piece) {
        server.handle_input(now, chunk);
        transmitted |= server.poll_transmit(now).is_some();
    }
    let mut closed = None;
    for _ in 0..10 {
        while let Some(event) = server.poll_event() {
            match event {
                Event::Authenticate { .. } => authenticated = true,
                Event::Closed(reason) => closed = Some(reason),
                _ => {}
            }
        }
        match server.poll_timeout() {
            Some(at) if !authenticated => server.handle_timeout(at),
            _ => break,
        }
        transmitted |= server.poll_transmit(now).is_some();
    }
    (authenticated, transmitted, closed)
}

const SILENT_DRAIN: (bool, bool, Option<CloseReason>) = (
    false,
    false,
    Some(CloseReason::Refused(InitRefusal::Unauthenticated)),
);

#[test]
fn every_shape_connects_and_carries_messages_in_any_chunking() {
    for shape in shapes() {
        let (client, key) = setups(&shape);
        for chunking in [
            Chunking::Whole,
            Chunking::OneByte,
            Chunking::Random { seed: 3, max: 7 },
        ] {
            let server = ServerConfig::new(fast_config(), key.clone());
            let mut pair = Pair::with_setups(&client, &server, 11);
            pair.chunking = chunking;
            pair.handshake();
            let sent = [message(1, 5), message(2, 40_000)];
            pair.send_and_await_echoes(&sent);
            assert_eq!(pair.client_messages(), sent, "{shape:?} {chunking:?}");
        }
    }
}

#[test]
fn the_first_flight_wears_the_shape() {
    let (plain, _) = setups(&Shape::none());
    let plain_len = first_flight(&plain, 5).len();
    for shape in shapes() {
        let (client, _) = setups(&shape);
        let wire = first_flight(&client, 5);
        assert!(wire.starts_with(shape.prefix()), "{shape:?}");
        let init = &wire[shape.prefix().len()..];
        match shape.popcount() {
            None => assert_eq!(init.len(), plain_len),
            Some(side) => {
                assert_eq!(init.len(), plain_len.div_ceil(3) * 4);
                let bits = bits_per_byte(init);
                match side {
                    Popcount::Low => assert!(bits < 2.5, "{bits}"),
                    Popcount::High => assert!(bits > 5.5, "{bits}"),
                }
            }
        }
    }
}

#[test]
fn first_flight_lengths_still_vary() {
    let (client, _) = setups(&shape(HTTP, Some(Popcount::Low)));
    let mut lengths: Vec<usize> = (0..50).map(|s| first_flight(&client, s).len()).collect();
    lengths.sort();
    lengths.dedup();
    assert!(lengths.len() > 30, "{} distinct lengths", lengths.len());
}

#[test]
fn a_first_flight_of_another_shape_gets_silence_and_a_drain() {
    let all = shapes();
    for (i, server_shape) in all.iter().enumerate() {
        let (_, key) = setups(server_shape);
        let (own, _) = setups(server_shape);
        assert!(serve(&key, &first_flight(&own, 3), 5).0);
        let (plain, _) = setups(&Shape::none());
        assert_eq!(serve(&key, &first_flight(&plain, 3), 5), SILENT_DRAIN);
        for (j, client_shape) in all.iter().enumerate() {
            if i == j {
                continue;
            }
            let (client, _) = setups(client_shape);
            let outcome = serve(&key, &first_flight(&client, 3), 5);
            assert_eq!(
                outcome, SILENT_DRAIN,
                "{client_shape:?} to {server_shape:?}"
            );
        }
        // A PORT/1 server without a shape refuses shaped clients alike.
        let (client, _) = setups(server_shape);
        let (_, plain_key) = setups(&Shape::none());
        assert_eq!(
            serve(&plain_key, &first_flight(&client, 3), 5),
            SILENT_DRAIN
        );
    }
}

#[test]
fn a_shaped_first_flight_is_replay_protected() {
    let (client, key) = setups(&shape(TLS, Some(Popcount::Low)));
    let setup = ServerConfig::new(fast_config(), key);
    let wire = first_flight(&client, 9);
    let now = Instant::now();
    let mut first = lone_server(&setup, 1, now);
    let events = feed(&mut first, now, &wire, 1);
    assert!(matches!(events[0].1, Event::Authenticate { .. }));
    let mut again = lone_server(&setup, 2, now);
    again.handle_input(now, &wire);
    assert_eq!(again.poll_event(), None);
    assert_eq!(again.poll_transmit(now), None);
    again.handle_timeout(again.poll_timeout().unwrap());
    assert_eq!(
        again.poll_event(),
        Some(Event::Closed(CloseReason::Refused(InitRefusal::Replayed)))
    );
}

#[test]
fn the_zeros_that_complete_the_last_group_are_checked() {
    let shape = shape(b"", Some(Popcount::Low));
    let (client, key) = setups(&shape);
    // A seed whose INIT is not a whole number of groups, so its last symbol is padding only.
    let (wire, plain_len) = (0..)
        .map(|seed| {
            let plain = setups(&Shape::none()).0;
            (
                first_flight(&client, seed),
                first_flight(&plain, seed).len(),
            )
        })
        .find(|(_, len)| len % 3 != 0)
        .unwrap();
    assert_eq!(wire.len(), plain_len.div_ceil(3) * 4);
    assert!(serve(&key, &wire, 64).0);
    let mut tampered = wire.clone();
    let last = *wire.last().unwrap();
    *tampered.last_mut().unwrap() = *wire.iter().find(|&&b| b != last).unwrap();
    assert_eq!(serve(&key, &tampered, 64), SILENT_DRAIN);
}

#[test]
fn garbage_to_a_shaped_server_never_panics_and_gets_no_answer() {
    for shape in shapes() {
        let (_, key) = setups(&shape);
        for seed in 0..20u32 {
            let mut noise = message(seed, 2000).to_vec();
            // Half the probes start with the right prefix.
            if seed % 2 == 0 {
                noise.splice(0..0, shape.prefix().iter().copied());
            }
            let (authenticated, transmitted, closed) = serve(&key, &noise, 1 + seed as usize);
            assert!(!authenticated && !transmitted, "{shape:?}");
            assert!(
                matches!(closed, Some(CloseReason::Refused(_))),
                "{closed:?}"
            );
        }
    }
}

#[test]
fn the_key_line_carries_the_shape() {
    let shape = shape(HTTP, Some(Popcount::High));
    let key = server_key(1).with_shape(shape.clone());
    let secret_line = key.to_text();
    assert!(secret_line.contains("?prefix="), "{secret_line}");
    let back: ServerKey = secret_line.parse().unwrap();
    assert_eq!(back.shape(), &shape);
    assert_eq!(back.client_key(), key.client_key());
    let plain = server_key(1);
    assert!(!plain.client_key().to_text().contains('?'));
    let err = format!("{}?popcount=sideways", plain.client_key())
        .parse::<port_core::ClientKey>()
        .unwrap_err();
    assert!(err.to_string().contains("popcount=low|high"), "{err}");
}

#[test]
fn connections_of_a_lone_server_stay_independent() {
    // The reader lives in each connection: two shaped clients interleaved byte by byte.
    let (client, key) = setups(&shape(HTTP, Some(Popcount::Low)));
    let setup = ServerConfig::new(fast_config(), key);
    let now = Instant::now();
    let (a, b) = (first_flight(&client, 1), first_flight(&client, 2));
    let mut sa: Connection = lone_server(&setup, 1, now);
    let mut sb: Connection = lone_server(&setup, 2, now);
    for i in 0..a.len().max(b.len()) {
        if let Some(byte) = a.get(i) {
            sa.handle_input(now, &[*byte]);
        }
        if let Some(byte) = b.get(i) {
            sb.handle_input(now, &[*byte]);
        }
    }
    assert!(matches!(sa.poll_event(), Some(Event::Authenticate { .. })));
    assert!(matches!(sb.poll_event(), Some(Event::Authenticate { .. })));
}
