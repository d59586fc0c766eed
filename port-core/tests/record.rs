//! The opt-in record of sent messages: off by default, and when on its wire sizes add up to
//! exactly the bytes each side transmitted, in order, INIT first and TERM last.

mod common;

use common::*;
use std::time::Duration;

use port_core::record::MessageKind;

#[test]
fn off_by_default() {
    let mut p = Pair::new(fast_config(), 11);
    p.handshake();
    p.client.send(message(0, 100)).unwrap();
    p.run_until(|p| p.client_messages().len() == 1);
    assert!(p.client.drain_records().is_empty());
    assert!(p.server.drain_records().is_empty());
}

#[test]
fn wire_sizes_add_up_to_the_bytes_sent() {
    let mut p = Pair::new(fast_config(), 12);
    p.client.record_messages(true);
    p.server.record_messages(true);
    p.handshake();
    let sizes = [1, 300, 5000];
    for (i, len) in sizes.iter().enumerate() {
        p.client.send(message(i as u32, *len)).unwrap();
    }
    assert!(p.run_until(|p| p.client_messages().len() == sizes.len()));
    // Let a keepalive cycle pass, then close.
    p.advance(fast_config().max_next_in() + Duration::from_millis(10));
    p.client.close();
    p.run_to_end();
    for (side, conn) in [("client", &mut p.client), ("server", &mut p.server)] {
        let records = conn.drain_records();
        assert_eq!(records[0].kind, MessageKind::Init, "{side}");
        let wire: usize = records.iter().map(|r| r.wire).sum();
        assert_eq!(wire as u64, conn.stats().bytes_sent, "{side}");
        assert!(records.iter().all(|r| r.wire > r.payload + r.padding));
        let data: Vec<usize> = records
            .iter()
            .filter(|r| r.kind == MessageKind::Data)
            .map(|r| r.payload)
            .collect();
        assert_eq!(data, sizes, "{side}");
        assert!(
            records.iter().any(|r| r.kind == MessageKind::Term),
            "{side}"
        );
        assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(conn.records_lost(), 0);
    }
    p.client.record_messages(false);
    assert!(p.client.drain_records().is_empty());
}
