//! Two cores in memory: handshake, echo, close, rejection, chunking.

mod common;

use common::*;

use bytes::Bytes;
use std::time::{Duration, Instant};

use port_core::Session;
use port_core::{
    CLIENT_PREFIX_LEN, CloseReason, Config, Event, InitRefusal, Link, Redirect, ServerConfig,
    Status,
};

#[test]
fn echo_round_trip_then_graceful_close() {
    let mut p = Pair::new(fast_config(), 1);
    p.handshake();
    let sent = numbered_messages(&[0, 1, 100, 16384, 16385, 100_000]);
    p.send_and_await_echoes(&sent);
    assert_eq!(p.client_messages(), sent);
    assert_eq!(p.server_messages(), sent);
    p.client.close();
    p.run_to_end();
    assert_eq!(p.client_closed(), Some(CloseReason::Local));
    assert_eq!(p.server_closed(), Some(CloseReason::Peer));
    assert!(p.client.is_closed() && p.server.is_closed());
}

#[test]
fn one_byte_chunking_delivers_everything() {
    let mut p = Pair::new(fast_config(), 2);
    p.chunking = Chunking::OneByte;
    p.handshake();
    let sent: Vec<_> = (0..20).map(|i| message(i, i as usize * 37)).collect();
    p.send_and_await_echoes(&sent);
    assert_eq!(p.client_messages(), sent);
}

#[test]
fn rejection_reaches_the_client_as_its_status() {
    let mut p = Pair::new(fast_config(), 3);
    p.decision = Decision::Reject(Status::Application(4321));
    p.run_to_end();
    assert_eq!(
        p.client_closed(),
        Some(CloseReason::Rejected(Status::Application(4321)))
    );
    assert_eq!(
        p.server_closed(),
        Some(CloseReason::Rejected(Status::Application(4321)))
    );
    assert!(!p.client_connected());
}

#[test]
fn server_close_is_graceful_too() {
    let mut p = Pair::new(Config::default(), 4);
    p.handshake();
    p.server.send("last words".into()).unwrap();
    p.server.close();
    p.run_to_end();
    assert_eq!(p.client_messages(), ["last words"]);
    assert_eq!(p.server_closed(), Some(CloseReason::Local));
    assert_eq!(p.client_closed(), Some(CloseReason::Peer));
}

#[test]
fn send_before_connected_and_after_close_are_typed_errors() {
    let mut p = Pair::new(fast_config(), 5);
    // The first message before the INIT went out rides in it (early data); no other can.
    assert_eq!(p.client.send("x".into()), Ok(()));
    assert_eq!(
        p.client.send("y".into()),
        Err(port_core::Error::NotConnected)
    );
    p.handshake();
    assert!(p.run_until(|p| p.client_messages() == [Bytes::from("x")]));
    p.client.close();
    assert_eq!(p.client.send("x".into()), Err(port_core::Error::Closing));
    p.run_to_end();
    assert_eq!(
        p.client.send("x".into()),
        Err(port_core::Error::Closed(CloseReason::Local))
    );
    assert!(
        p.server_events
            .iter()
            .any(|(_, e)| matches!(e, Event::Authenticate { token, .. } if &token[..] == TOKEN))
    );
}

#[test]
fn buffered_input_never_exceeds_one_frame() {
    let config = fast_config();
    let bound = port_core::frame::HEADER_WIRE_LEN
        + config.max_frame_payload()
        + port_core::MAX_PADDING
        + port_core::frame::BODY_TAG_LEN;
    let mut p = Pair::new(config, 6);
    p.handshake();
    p.client.send(message(1, 1 << 20)).unwrap();
    let wire: Vec<u8> = std::iter::from_fn(|| p.client.poll_transmit(p.now))
        .flat_map(|b| b.to_vec())
        .collect();
    let mut max_seen = 0;
    let mut delivered = 0;
    // Large pieces, so a naive buffer would grow with the input.
    for piece in wire.chunks(200_000) {
        p.server.handle_input(p.now, piece);
        max_seen = max_seen.max(p.server.receive_buffered());
        while let Some(event) = p.server.poll_event() {
            if let Event::Data(m) = event {
                delivered += m.len();
            }
        }
    }
    assert_eq!(delivered, 1 << 20);
    assert!(max_seen < bound, "buffered {max_seen} >= {bound}");

    let mut q = Pair::new(fast_config(), 7);
    q.handshake();
    q.client.send(message(2, 100_000)).unwrap();
    let wire: Vec<u8> = std::iter::from_fn(|| q.client.poll_transmit(q.now))
        .flat_map(|b| b.to_vec())
        .collect();
    let mut max_seen = 0;
    for byte in wire.chunks(1) {
        q.server.handle_input(q.now, byte);
        max_seen = max_seen.max(q.server.receive_buffered());
    }
    assert!(max_seen < bound, "buffered {max_seen} >= {bound}");
    assert!(matches!(q.server.poll_event(), Some(Event::Data(m)) if m.len() == 100_000));
}

#[test]
fn half_close_lets_the_other_direction_go_on() {
    let mut p = Pair::new(fast_config(), 8);
    p.close_on_finish = false;
    p.server_echoes = false;
    p.handshake();
    p.client.send("request".into()).unwrap();
    p.client.close();
    assert!(p.run_until(|p| p.server.is_peer_finished()));
    assert_eq!(p.server_messages(), ["request"]);
    assert!(
        p.server_events
            .iter()
            .any(|(_, e)| matches!(e, Event::Finished))
    );
    // The client's direction ended; the server's goes on, across several keepalive periods.
    let later = fast_config().max_next_in() * 5;
    for i in 0..5 {
        p.server.send(message(i, 3000)).unwrap();
        p.run_for(later / 5);
    }
    assert!(p.client.is_connected() && p.server.is_connected());
    assert_eq!(p.client_messages().len(), 5);
    assert!(
        p.server.stats().pongs_received > 0,
        "keepalive after the client's TERM"
    );
    // DATA may not follow a TERM: the client can no longer send.
    assert_eq!(p.client.send("late".into()), Err(port_core::Error::Closing));
    p.server.close();
    p.run_to_end();
    assert_eq!(p.client_closed(), Some(CloseReason::Local));
    assert_eq!(p.server_closed(), Some(CloseReason::Peer));
    assert!(p.client.is_closed() && p.server.is_closed());
}

#[test]
fn transport_end_closes_every_connection_at_once() {
    let mut p = Pair::new(fast_config(), 9);
    p.handshake();
    p.server.handle_link_end(p.now, None);
    assert_eq!(p.server.close_reason(), Some(CloseReason::TransportClosed));
    assert!(p.server.is_closed());

    // A server still waiting for an INIT closes right after the prober's FIN, silently: the
    // moment depends on nothing but the prober's own FIN. Its bytes are for a fallback.
    for (input, reason) in [
        (&b""[..], CloseReason::TransportClosed),
        (&b"garbage"[..], CloseReason::TransportClosed),
        (
            &[0u8; 200][..],
            CloseReason::Refused(InitRefusal::Unauthenticated),
        ),
    ] {
        let mut q = Pair::new(fast_config(), 10);
        q.server.handle_input(q.now, input);
        q.server.handle_link_end(q.now, None);
        assert_eq!(
            q.server.close_reason(),
            Some(reason),
            "{} bytes",
            input.len()
        );
        assert_eq!(q.server.poll_transmit(q.now), None);
        assert!(q.server.is_closed());
        let fallback = (!input.is_empty()).then_some(Redirect::Fallback);
        assert_eq!(q.server.redirect(), fallback, "{} bytes", input.len());
    }

    // Even after the peer's TERM, a transport that ends before both directions did means our
    // own direction can no longer be delivered.
    let mut r = Pair::new(fast_config(), 11);
    r.close_on_finish = false;
    r.handshake();
    r.client.close();
    assert!(r.run_until(|r| r.server.is_peer_finished()));
    r.server.handle_link_end(r.now, None);
    assert_eq!(r.server.close_reason(), Some(CloseReason::TransportClosed));
    assert_eq!(
        r.server.redirect(),
        None,
        "an authenticated peer never goes to a fallback"
    );
}

#[test]
fn on_whole_reads_a_first_read_too_short_for_an_init_is_refused_at_once() {
    let config = fast_config();
    let (client_setup, key) = setups_for(&config);
    let init = lone_client(&client_setup, 3, Instant::now())
        .poll_transmit(Instant::now())
        .unwrap();
    let setup = ServerConfig::new(config.clone(), key.clone());
    // The whole INIT in one read authenticates, as does any chunking on a plain stream.
    let now = Instant::now();
    let mut whole = lone_server(&setup, 1, now);
    whole.handle_link_up(now, Link::TCP);
    assert!(matches!(
        feed(&mut whole, now, &init, init.len())[0].1,
        Event::Authenticate { .. }
    ));
    let setup = ServerConfig::new(config.clone(), key.clone());
    let mut bytewise = lone_server(&setup, 1, now);
    bytewise.handle_link_up(now, Link::STREAM);
    assert!(matches!(
        feed(&mut bytewise, now, &init, 1)[0].1,
        Event::Authenticate { .. }
    ));
    // 87 bytes first on a TCP link: refused there and then, for a fallback to answer.
    let setup = ServerConfig::new(config, key);
    let mut short = lone_server(&setup, 1, now);
    short.handle_link_up(now, Link::TCP);
    short.handle_input(now, &init[..CLIENT_PREFIX_LEN - 1]);
    assert_eq!(short.redirect(), Some(Redirect::Fallback));
    short.handle_input(now, &init[CLIENT_PREFIX_LEN - 1..]);
    assert_eq!(
        short.poll_event(),
        None,
        "nothing authenticates after a refusal"
    );
    assert_eq!(short.poll_transmit(now), None);
}

#[test]
fn buffers_grown_by_data_are_given_back_a_second_after_it_stops() {
    // Keepalive far away, so that only the buffer timer can give the memory back.
    let config = Config::builder()
        .min_next_in(Duration::from_secs(60))
        .max_next_in(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut p = Pair::new(config, 9);
    p.handshake();
    let sent = message(1, 1 << 20);
    p.client.send(sent.clone()).unwrap();
    assert!(p.run_until(|p| p.client_messages().len() == 1));
    assert_eq!(p.client_messages(), vec![sent]);
    // The echo was reassembled from 64 fragments: the buffers grew well past one frame.
    let grown = p.client.buffer_capacity().max(p.server.buffer_capacity());
    assert!(grown > 16 * 1024, "grown to {grown}");
    let quiet = p.now;
    p.advance(Duration::from_secs(2));
    assert!(p.client.is_connected() && p.server.is_connected());
    for (side, conn) in [("client", &p.client), ("server", &p.server)] {
        assert_eq!(
            conn.buffer_capacity(),
            0,
            "{side}: held while idle (had {grown})"
        );
        assert_eq!(conn.stats().pings_sent, 0, "{side}: a keepalive ran");
        // Nothing is due before the keepalive now: the buffer timer does not repeat.
        assert!(conn.poll_timeout().unwrap() >= quiet + Duration::from_secs(60));
    }
}

#[test]
fn a_decision_taken_before_any_transmit_answers_with_a_server_init_that_opens() {
    // The server's half of the key agreement waits for its first transmit or its decision,
    // whichever comes first: here the decision.
    let config = fast_config();
    let (client_setup, key) = setups_for(&config);
    let now = Instant::now();
    for accept in [true, false] {
        let mut client = lone_client(&client_setup, 7, now);
        let init = client.poll_transmit(now).unwrap();
        let setup = ServerConfig::new(config.clone(), key.clone());
        let mut server = lone_server(&setup, 7, now);
        server.handle_input(now, &init);
        assert!(matches!(
            server.poll_event(),
            Some(Event::Authenticate { .. })
        ));
        let status = Status::Application(4321);
        let expected = if accept {
            server.accept(9).unwrap();
            Event::Connected { user_id: 9 }
        } else {
            server.reject(status).unwrap();
            Event::Closed(CloseReason::Rejected(status))
        };
        let reply = server.poll_transmit(now).unwrap();
        client.handle_input(now, &reply);
        assert_eq!(client.poll_event(), Some(expected));
    }
}
