//! The opt-in record of sent messages: off by default, and when on its wire sizes add up to
//! exactly the bytes each side transmitted, in order, INIT first and TERM last.

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use port_core::Session;
use port_core::record::{MessageKind, MessageRecord, RecordSink};

/// A sink that keeps what it is given, for the test to read.
fn sink() -> (Box<dyn RecordSink>, Arc<Mutex<Vec<MessageRecord>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let into = kept.clone();
    let sink = move |r: MessageRecord| into.lock().unwrap().push(r);
    (Box::new(sink), kept)
}

#[test]
fn nothing_is_recorded_once_the_sink_is_taken_away() {
    let mut p = Pair::new(fast_config(), 11);
    let (client_sink, kept) = sink();
    p.client.record_to(Some(client_sink));
    p.handshake();
    p.client.send(message(0, 100)).unwrap();
    p.run_until(|p| p.client_messages().len() == 1);
    let before = kept.lock().unwrap().len();
    assert_eq!(before, 2, "the INIT and one DATA frame");
    p.client.record_to(None);
    p.client.send(message(1, 100)).unwrap();
    p.run_until(|p| p.client_messages().len() == 2);
    assert_eq!(kept.lock().unwrap().len(), before);
}

#[test]
fn wire_sizes_add_up_to_the_bytes_sent() {
    let mut p = Pair::new(fast_config(), 12);
    let (client_sink, client_kept) = sink();
    let (server_sink, server_kept) = sink();
    p.client.record_to(Some(client_sink));
    p.server.record_to(Some(server_sink));
    p.handshake();
    let sizes = [1, 300, 5000];
    p.send_and_await_echoes(&numbered_messages(&sizes));
    // Let a keepalive cycle pass, then close.
    p.advance(fast_config().max_next_in() + Duration::from_millis(10));
    p.client.close();
    p.run_to_end();
    for (side, conn, kept) in [
        ("client", &p.client, client_kept),
        ("server", &p.server, server_kept),
    ] {
        let records = kept.lock().unwrap();
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
    }
}
