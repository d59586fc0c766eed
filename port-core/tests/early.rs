//! Early data: a client's first message sent before its INIT went out travels in the INIT,
//! and the server's application receives it as the first message once it accepts, never
//! before and never when it rejects or the INIT is replayed.

mod common;

use common::*;
use std::time::Instant;

use bytes::Bytes;
use port_core::Session;
use port_core::{
    Cipher, ClientConfig, CloseReason, Error, Event, InitRefusal, MAX_EARLY_DATA, ServerConfig,
    ServerKey, Shape, Status,
};

fn client_for(key: &ServerKey) -> ClientConfig {
    ClientConfig::new(fast_config(), key.client_key(), TOKEN).unwrap()
}

/// The INIT a client built with `seed` sends, with `early` sent first (if any).
fn init_with(setup: &ClientConfig, seed: u64, early: Option<&'static [u8]>) -> Bytes {
    let now = Instant::now();
    let mut client = lone_client(setup, seed, now);
    if let Some(early) = early {
        client.send(Bytes::from_static(early)).unwrap();
    }
    client.poll_transmit(now).unwrap()
}

/// A server's events for `wire`, accepting (or rejecting with `reject`) any client.
fn serve(key: &ServerKey, wire: &[u8], reject: Option<Status>) -> Vec<Event> {
    let now = Instant::now();
    let setup = ServerConfig::new(fast_config(), key.clone());
    let mut server = lone_server(&setup, 3, now);
    server.handle_input(now, wire);
    let mut events = Vec::new();
    while let Some(event) = server.poll_event() {
        if let Event::Authenticate { .. } = event {
            match reject {
                Some(status) => server.reject(status).unwrap(),
                None => server.accept(5).unwrap(),
            }
        }
        events.push(event);
    }
    events
}

#[test]
fn the_first_message_rides_in_the_init_and_arrives_after_the_accept() {
    let plain = server_key(1);
    let shaped = plain
        .clone()
        .with_shape(Shape::from_params("prefix=@tls&popcount=low").unwrap())
        .with_cipher(Cipher::Aes256Gcm);
    for key in [plain, shaped] {
        let setup = client_for(&key);
        let early: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let without = init_with(&setup, 7, None);
        let with = init_with(&setup, 7, Some(early));
        // Same draws: the INIT only grows by the early data (4/3 of it, popcount-encoded).
        assert!(
            with.len() > without.len(),
            "{} {}",
            with.len(),
            without.len()
        );
        let events = serve(&key, &with, None);
        assert!(
            matches!(
                &events[..],
                [Event::Authenticate { .. }, Event::Connected { user_id: 5 }, Event::Data(data)]
                    if &data[..] == early
            ),
            "{events:?}"
        );
        // Without early data nothing is delivered.
        assert!(
            !serve(&key, &without, None)
                .iter()
                .any(|e| matches!(e, Event::Data(_)))
        );
    }
}

#[test]
fn a_rejected_or_replayed_init_delivers_nothing() {
    let key = server_key(2);
    let setup = client_for(&key);
    let with = init_with(&setup, 9, Some(b"secret order"));
    let status = Status::Application(4321);
    let rejected = serve(&key, &with, Some(status));
    assert!(
        !rejected.iter().any(|e| matches!(e, Event::Data(_))),
        "{rejected:?}"
    );
    assert!(rejected.contains(&Event::Closed(CloseReason::Rejected(status))));

    // Two servers sharing one replay filter: the second sees the same INIT and refuses it.
    let now = Instant::now();
    let shared = ServerConfig::new(fast_config(), key.clone());
    for round in 0..2 {
        let mut server = lone_server(&shared, 10 + round, now);
        server.handle_input(now, &with);
        let mut events = Vec::new();
        for _ in 0..10 {
            while let Some(event) = server.poll_event() {
                if let Event::Authenticate { .. } = event {
                    server.accept(1).unwrap();
                }
                events.push(event);
            }
            match server.poll_timeout() {
                Some(at) if !server.is_closed() && round == 1 => server.handle_timeout(at),
                _ => break,
            }
        }
        let delivered = events.iter().any(|e| matches!(e, Event::Data(_)));
        assert_eq!(delivered, round == 0, "round {round}: {events:?}");
        if round == 1 {
            assert_eq!(
                events.last(),
                Some(&Event::Closed(CloseReason::Refused(InitRefusal::Replayed)))
            );
        }
    }
}

#[test]
fn early_data_is_the_first_message_only_and_at_most_the_limit() {
    let key = server_key(3);
    let setup = client_for(&key);
    let now = Instant::now();

    let mut late = lone_client(&setup, 1, now);
    late.poll_transmit(now).unwrap();
    assert_eq!(
        late.send("x".into()),
        Err(Error::NotConnected),
        "the INIT went out"
    );

    let mut big = lone_client(&setup, 2, now);
    let too_big = Bytes::from(vec![7u8; MAX_EARLY_DATA + 1]);
    assert_eq!(
        big.send(too_big),
        Err(Error::MessageTooLarge {
            len: MAX_EARLY_DATA + 1,
            max: MAX_EARLY_DATA
        })
    );
    assert_eq!(big.send_buffered(), 0, "nothing was taken");
    let most = Bytes::from(vec![9u8; MAX_EARLY_DATA]);
    assert_eq!(big.send(most.clone()), Ok(()));
    assert_eq!(big.send_buffered(), MAX_EARLY_DATA);
    let wire = big.poll_transmit(now).unwrap();
    let events = serve(&key, &wire, None);
    assert!(
        matches!(&events[..], [_, _, Event::Data(data)] if *data == most),
        "{} events",
        events.len()
    );
}

#[test]
fn a_pair_with_early_data_echoes_it_first_and_everything_after() {
    let mut p = Pair::new(fast_config(), 11);
    p.client.send(message(0, 300)).unwrap();
    p.handshake();
    let later: Vec<_> = (1..4).map(|i| message(i, 1000 * i as usize)).collect();
    for m in &later {
        p.client.send(m.clone()).unwrap();
    }
    assert!(p.run_until(|p| p.client_messages().len() == 4));
    let mut expected = vec![message(0, 300)];
    expected.extend(later);
    assert_eq!(p.server_messages(), expected);
    assert_eq!(p.client_messages(), expected);
    // The client's first transmit held the INIT and the early data; its first frame came
    // after the server INIT.
    assert!(p.writes(Dir::ClientToServer)[0] > 300);
}
