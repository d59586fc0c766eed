//! Shaped lengths between two in-memory endpoints: every record inside the distribution's
//! bounds, messages intact across records, the linger bounded, and peers whose key lines
//! predate lengths served. (How alike keystrokes and bulk look is measured by
//! `echotest lengths` and asserted in port-echo's tests.)

mod common;

use std::time::Duration;

use common::*;
use port_core::{
    ClientConfig, Config, Lengths, MAX_RECORD, MIN_RECORD, ServerConfig, Session, Shape,
};

const RECORDS: std::ops::RangeInclusive<usize> = MIN_RECORD..=MAX_RECORD;

fn shaped_pair(config: Config, lengths: Lengths, seed: u64) -> Pair {
    let key = server_key(1).with_shape(Shape::none().with_lengths(lengths));
    let client = ClientConfig::new(config.clone(), key.client_key(), TOKEN).unwrap();
    let server = ServerConfig::new(config, key);
    let mut pair = Pair::with_setups(&client, &server, seed);
    pair.server_echoes = false;
    pair.handshake();
    pair
}

#[test]
fn messages_of_every_size_cross_shaped_records_intact() {
    for chunking in [Chunking::Whole, Chunking::Random { seed: 5, max: 97 }] {
        let mut pair = shaped_pair(fast_config(), Lengths::Shaped, 3);
        pair.chunking = chunking;
        pair.server_echoes = true;
        let sent = numbered_messages(&[0, 1, 5, 19, 20, 21, 1403, 1404, 70_000, 3]);
        pair.send_and_await_echoes(&sent);
        assert_eq!(pair.client_messages(), sent);
        pair.client.close();
        pair.run_to_end();
        assert_eq!(pair.client_closed(), Some(port_core::CloseReason::Local));
        for dir in [Dir::ClientToServer, Dir::ServerToClient] {
            let records = &pair.writes(dir)[1..];
            assert!(records.iter().all(|s| RECORDS.contains(s)), "{records:?}");
        }
    }
}

#[test]
fn an_idle_shaped_connection_keeps_alive_in_shaped_records() {
    let mut pair = shaped_pair(fast_config(), Lengths::Shaped, 4);
    pair.run_for(Duration::from_secs(60));
    assert!(pair.client.is_connected() && pair.server.is_connected());
    let records = &pair.writes(Dir::ClientToServer)[1..];
    assert!(records.len() >= 10, "{} keepalive records", records.len());
    assert!(records.iter().all(|s| RECORDS.contains(s)));
    let mut distinct = records.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1, "keepalives vary in size: {records:?}");
}

#[test]
fn small_messages_wait_at_most_the_linger_to_share_a_record() {
    let linger = Duration::from_millis(5);
    let config = fast_config()
        .to_builder()
        .record_linger(linger)
        .build()
        .unwrap();
    let mut pair = shaped_pair(config, Lengths::Shaped, 8);
    let before = pair.writes(Dir::ClientToServer).len();
    let start = pair.now;
    for tag in 0..3 {
        pair.client.send(message(tag, 5)).unwrap();
        pair.advance(Duration::from_millis(1));
    }
    assert_eq!(
        pair.writes(Dir::ClientToServer).len(),
        before,
        "still lingering"
    );
    assert!(pair.run_until(|p| p.server_messages().len() == 3));
    assert_eq!(
        pair.writes(Dir::ClientToServer).len(),
        before + 1,
        "one record"
    );
    let waited = pair.now - start;
    assert!(waited <= linger, "waited {waited:?}");

    // Without a linger each message goes in a record of its own at once.
    let mut pair = shaped_pair(fast_config(), Lengths::Shaped, 8);
    let before = pair.writes(Dir::ClientToServer).len();
    for tag in 0..3 {
        pair.client.send(message(tag, 5)).unwrap();
        pair.advance(Duration::from_millis(1));
    }
    assert_eq!(pair.server_messages().len(), 3);
    assert_eq!(pair.writes(Dir::ClientToServer).len(), before + 3);
}

#[test]
fn a_shaped_server_talks_to_a_client_whose_line_predates_lengths() {
    let config = fast_config();
    let key = server_key(1).with_shape(Shape::none().with_lengths(Lengths::Shaped));
    let plain_line = server_key(1).client_key();
    let client = ClientConfig::new(config.clone(), plain_line, TOKEN).unwrap();
    let server = ServerConfig::new(config, key);
    let mut pair = Pair::with_setups(&client, &server, 9);
    pair.handshake();
    let sent = vec![message(1, 5), message(2, 3000)];
    pair.send_and_await_echoes(&sent);
    assert_eq!(pair.client_messages(), sent);
    let server_records = &pair.writes(Dir::ServerToClient)[1..];
    assert!(server_records.iter().all(|s| RECORDS.contains(s)));
    // The client pads as PORT/1 always did: its 3000-byte message is one frame.
    assert!(pair.writes(Dir::ClientToServer).iter().any(|&s| s > 3000));
}
