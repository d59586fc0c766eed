//! Shaped lengths between two in-memory endpoints: record sizes that say nothing about the
//! messages in them, measured with the two-sample Kolmogorov–Smirnov distance.

mod common;

use std::time::Duration;

use common::*;
use port_core::{
    ClientConfig, Config, Lengths, MAX_RECORD, MIN_RECORD, ServerConfig, Session, Shape,
};

const RECORDS: std::ops::RangeInclusive<usize> = MIN_RECORD..=MAX_RECORD;
const RECORDS_MEASURED: usize = 10_000;

fn shaped_pair(config: Config, lengths: Lengths, seed: u64) -> Pair {
    let key = server_key(1).with_shape(Shape::none().with_lengths(lengths));
    let client = ClientConfig::new(config.clone(), key.client_key(), TOKEN).unwrap();
    let server = ServerConfig::new(config, key);
    let mut pair = Pair::with_setups(&client, &server, seed);
    pair.server_echoes = false;
    pair.handshake();
    pair
}

/// The sizes of the next `RECORDS_MEASURED` records the client writes while it sends
/// messages of `len` bytes, `batch` at a time (each batch delivered before the next).
fn record_sizes(pair: &mut Pair, len: usize, batch: usize) -> Vec<usize> {
    let first = pair.writes(Dir::ClientToServer).len();
    let mut tag = 0;
    while pair.writes(Dir::ClientToServer).len() < first + RECORDS_MEASURED {
        pair.server_events.clear();
        for _ in 0..batch {
            pair.client.send(message(tag, len)).unwrap();
            tag += 1;
        }
        assert!(pair.run_until(|p| p.server_events.len() == batch));
    }
    pair.writes(Dir::ClientToServer)[first..first + RECORDS_MEASURED].to_vec()
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
/// distribution functions.
fn ks_distance(a: &[usize], b: &[usize]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[test]
fn ks_distance_is_the_largest_gap() {
    assert_eq!(ks_distance(&[1, 2, 3], &[1, 2, 3]), 0.0);
    assert_eq!(ks_distance(&[1, 2], &[3, 4]), 1.0);
    assert_eq!(ks_distance(&[1, 2, 3, 4], &[3, 4, 5, 6]), 0.5);
}

#[test]
fn keystrokes_and_bulk_share_one_record_size_distribution() {
    // One connection types, then transfers in bulk.
    let mut pair = shaped_pair(fast_config(), Lengths::Shaped, 21);
    let small = record_sizes(&mut pair, 5, 1);
    let bulk = record_sizes(&mut pair, 1000, 20);
    assert!(small.iter().chain(&bulk).all(|s| RECORDS.contains(s)));
    let shaped = ks_distance(&small, &bulk);
    println!("KS distance, shaped lengths, 5-byte vs 1000-byte messages: {shaped:.4}");
    assert!(shaped <= 0.05, "KS distance {shaped}");
    assert_ne!(small, bulk, "two samples, not one sequence twice");

    // The same measure tells the two apart at once under default padding.
    let mut pair = shaped_pair(fast_config(), Lengths::Padded, 21);
    let small = record_sizes(&mut pair, 5, 1);
    let bulk = record_sizes(&mut pair, 1000, 20);
    let padded = ks_distance(&small, &bulk);
    println!("KS distance, default padding, 5-byte vs 1000-byte messages: {padded:.4}");
    assert!(padded > 0.9, "KS distance {padded}");
}

#[test]
fn messages_of_every_size_cross_shaped_records_intact() {
    for chunking in [Chunking::Whole, Chunking::Random { seed: 5, max: 97 }] {
        let mut pair = shaped_pair(fast_config(), Lengths::Shaped, 3);
        pair.chunking = chunking;
        pair.server_echoes = true;
        let sent: Vec<_> = [0, 1, 5, 19, 20, 21, 1403, 1404, 70_000, 3]
            .iter()
            .enumerate()
            .map(|(i, &len)| message(i as u32, len))
            .collect();
        for m in &sent {
            pair.client.send(m.clone()).unwrap();
        }
        assert!(pair.run_until(|p| p.client_messages().len() == sent.len()));
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
    for m in &sent {
        pair.client.send(m.clone()).unwrap();
    }
    assert!(pair.run_until(|p| p.client_messages().len() == 2));
    assert_eq!(pair.client_messages(), sent);
    let server_records = &pair.writes(Dir::ServerToClient)[1..];
    assert!(server_records.iter().all(|s| RECORDS.contains(s)));
    // The client pads as PORT/1 always did: its 3000-byte message is one frame.
    assert!(pair.writes(Dir::ClientToServer).iter().any(|&s| s > 3000));
}
