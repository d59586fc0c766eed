//! The AES-256-GCM suite end to end: it carries everything ChaCha20-Poly1305 carries, nothing
//! on the wire tells the two apart, and a client with the other cipher is treated as one with a
//! wrong key.

mod common;

use common::*;
use std::time::Instant;

use port_core::Session;
use port_core::{
    Cipher, ClientConfig, CloseReason, Event, InitRefusal, ProtocolError, ServerConfig, ServerKey,
};

fn pair_with(key: &ServerKey, seed: u64) -> Pair {
    let config = fast_config();
    let client = ClientConfig::new(config.clone(), key.client_key(), TOKEN).unwrap();
    Pair::with_setups(&client, &ServerConfig::new(config, key.clone()), seed)
}

/// Runs the same exchange as the ChaCha pair echo test: messages of every size class, one byte
/// at a time, then a graceful close.
fn exchange(key: &ServerKey, seed: u64) -> Pair {
    let mut p = pair_with(key, seed);
    p.chunking = Chunking::Random { seed, max: 977 };
    p.handshake();
    let sent = numbered_messages(&[0, 1, 100, 16384, 16385, 100_000]);
    p.send_and_await_echoes(&sent);
    assert_eq!(p.server_messages(), sent, "{:?}", key.cipher());
    assert_eq!(p.client_messages(), sent, "{:?}", key.cipher());
    p.client.close();
    p.run_to_end();
    assert_eq!(p.client_closed(), Some(CloseReason::Local));
    assert_eq!(p.server_closed(), Some(CloseReason::Peer));
    p
}

#[test]
fn aes_carries_what_chacha_carries_in_writes_of_the_same_sizes() {
    let chacha_key = server_key(1);
    let aes_key = chacha_key.clone().with_cipher(Cipher::Aes256Gcm);
    assert_eq!(aes_key.client_key().cipher(), Cipher::Aes256Gcm);
    for seed in 1..4 {
        let chacha = exchange(&chacha_key, seed);
        let aes = exchange(&aes_key, seed);
        for dir in [Dir::ClientToServer, Dir::ServerToClient] {
            // Same seeds, same draws: every write has the same size under either cipher...
            assert_eq!(chacha.writes(dir), aes.writes(dir), "{dir:?}");
            // ...and the bytes differ from the first one on (only the INIT's salt is shared).
            let (a, b) = (chacha.transcript(dir), aes.transcript(dir));
            let from = if dir == Dir::ClientToServer { 16 } else { 0 };
            let same = a[from..]
                .iter()
                .zip(&b[from..])
                .filter(|(x, y)| x == y)
                .count();
            assert!(
                same * 128 < a.len() * 2,
                "{dir:?}: {same} of {} bytes equal",
                a.len()
            );
        }
    }
}

#[test]
fn a_client_with_the_other_cipher_is_refused_like_a_wrong_key() {
    let chacha_key = server_key(1);
    let aes_key = chacha_key.clone().with_cipher(Cipher::Aes256Gcm);
    for (server, client) in [(&chacha_key, &aes_key), (&aes_key, &chacha_key)] {
        let config = fast_config();
        let client_setup = ClientConfig::new(config.clone(), client.client_key(), TOKEN).unwrap();
        let now = Instant::now();
        let init = lone_client(&client_setup, 5, now)
            .poll_transmit(now)
            .unwrap();
        let setup = ServerConfig::new(config, server.clone());
        let mut lone = lone_server(&setup, 5, now);
        lone.handle_input(now, &init);
        // Nothing is ever sent; the drain runs out and the refusal is a wrong key's.
        let mut events = Vec::new();
        for _ in 0..10 {
            assert_eq!(
                lone.poll_transmit(now),
                None,
                "a server answers no stranger"
            );
            events.extend(std::iter::from_fn(|| lone.poll_event()));
            match lone.poll_timeout() {
                Some(at) if !lone.is_closed() => lone.handle_timeout(at),
                _ => break,
            }
        }
        assert_eq!(
            events,
            [Event::Closed(CloseReason::Refused(
                InitRefusal::Unauthenticated
            ))],
            "the INIT of {:?} under {:?}",
            client.cipher(),
            server.cipher()
        );
    }
}

#[test]
fn a_flipped_bit_in_an_aes_frame_fails_authentication() {
    let key = server_key(2).with_cipher(Cipher::Aes256Gcm);
    let mut p = pair_with(&key, 9);
    p.handshake();
    let offset = p.transcript(Dir::ClientToServer).len() + 7;
    p.fault = Some(Box::new(move |dir, at, bytes| {
        if dir == Dir::ClientToServer && (at..at + bytes.len()).contains(&offset) {
            bytes[offset - at] ^= 0x20;
        }
    }));
    p.client.send(message(1, 300)).unwrap();
    p.run_to_end();
    assert!(p.server_messages().is_empty());
    assert_eq!(
        p.server_closed(),
        Some(CloseReason::Protocol(ProtocolError::Authentication))
    );
}
