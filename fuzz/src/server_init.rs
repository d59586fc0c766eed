//! Target `server_init`: a client connection, its INIT sent, reading what comes back.
//!
//! Input: `flags, mode, param, stream…`. `flags & 3` picks the scenario (the client),
//! `flags & 8` ends the transport after the stream; `mode`/`param` choose the chunking. Checked
//! after every piece:
//!
//! - nothing panics; `receive_buffered()` stays within its ceiling (see
//!   [`check_receive_buffered`]);
//! - the client transmits nothing after its INIT until it is connected;
//! - once 68 bytes arrived that are not the prefix of a genuine server INIT (one of
//!   [`server_inits`]), the client is closed with `Protocol(Authentication)` at once; until
//!   connected, it is either waiting or closed with `Protocol(_)`, or `Rejected(_)` after a
//!   genuine rejection;
//! - only a genuine server INIT connects (with its user id) or rejects (with its status);
//! - `Data` only after `Connected`, never after `Finished` or `Closed`; `Closed` once, and equal
//!   to `close_reason()` from then on.
//!
//! At the end, a transport end closes a client that is still open with `TransportClosed`;
//! otherwise a client still in its handshake closes exactly at its handshake deadline with
//! `HandshakeTimeout`.

use std::time::{Duration, Instant};

use port_core::Session;
use port_core::{CloseReason, Connection, Event, ProtocolError, SERVER_PREFIX_LEN, Status};

use crate::setup::{
    Chunker, DECISIONS, Decision, base, check_receive_buffered, preset, scenario, server_inits,
};

#[derive(Default)]
struct Seen {
    connected: Option<u32>,
    finished: bool,
    closed: Option<CloseReason>,
}

impl Seen {
    fn events(&mut self, client: &mut Connection) {
        while let Some(event) = client.poll_event() {
            match event {
                Event::Connected { user_id } => {
                    assert!(self.connected.is_none(), "second Connected");
                    assert!(self.closed.is_none(), "Connected after Closed");
                    self.connected = Some(user_id);
                }
                Event::Data(_) => {
                    assert!(self.connected.is_some(), "Data before Connected");
                    assert!(!self.finished, "Data after Finished");
                    assert!(self.closed.is_none(), "Data after Closed");
                }
                Event::Finished => {
                    assert!(self.connected.is_some() && !self.finished && self.closed.is_none());
                    self.finished = true;
                }
                Event::Closed(reason) => {
                    assert!(self.closed.is_none(), "second Closed: {reason:?}");
                    self.closed = Some(reason);
                }
                other => panic!("unexpected client event {other:?}"),
            }
        }
        assert_eq!(
            client.close_reason(),
            self.closed,
            "close_reason is not sticky"
        );
        if self.connected.is_none() {
            assert!(
                matches!(
                    self.closed,
                    None | Some(CloseReason::Protocol(_))
                        | Some(CloseReason::Rejected(_))
                        | Some(CloseReason::TransportClosed)
                        | Some(CloseReason::HandshakeTimeout)
                ),
                "a client in its handshake closed with {:?}",
                self.closed
            );
            assert_ne!(self.closed, Some(CloseReason::Rejected(Status::Success)));
        }
    }

    fn transmits(&self, client: &mut Connection, now: Instant) {
        while let Some(bytes) = client.poll_transmit(now) {
            assert!(
                self.connected.is_some(),
                "a client transmitted {} bytes after its INIT before it connected",
                bytes.len()
            );
        }
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let Some((&[flags, mode, param], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let scn = scenario(flags);
    let config = preset(scn.client_preset);
    let start = base();
    let mut client = scn.client(start);
    assert!(client.poll_transmit(start).is_some(), "the client INIT");
    assert!(client.poll_transmit(start).is_none());
    let deadline = client
        .poll_timeout()
        .expect("a client in its handshake has a deadline");
    assert_eq!(deadline, start + config.handshake_timeout());

    let known = server_inits(flags);
    let genuine = known.iter().position(|init| stream.starts_with(init));
    let prefix_known = stream.len() >= SERVER_PREFIX_LEN
        && known
            .iter()
            .any(|init| init[..SERVER_PREFIX_LEN] == stream[..SERVER_PREFIX_LEN]);

    let mut seen = Seen::default();
    let mut chunker = Chunker::new(mode, param);
    let mut rest = stream;
    let mut fed = 0;
    while !rest.is_empty() {
        let n = chunker.next(rest.len());
        client.handle_input(start, &rest[..n]);
        rest = &rest[n..];
        fed += n;
        seen.events(&mut client);
        seen.transmits(&mut client, start);
        check_receive_buffered(&client, config, true);
        if fed >= SERVER_PREFIX_LEN && !prefix_known {
            assert_eq!(
                seen.closed,
                Some(CloseReason::Protocol(ProtocolError::Authentication)),
                "a forged server INIT prefix did not close the client at once"
            );
        }
    }

    match genuine.map(|i| DECISIONS[i]) {
        Some(Decision::Accept(user_id)) => assert_eq!(seen.connected, Some(user_id)),
        Some(Decision::Reject(status)) => {
            assert_eq!(seen.connected, None);
            assert_eq!(seen.closed, Some(CloseReason::Rejected(status)));
        }
        None => {
            assert_eq!(seen.connected, None, "a forged server INIT connected");
            assert!(
                !matches!(seen.closed, Some(CloseReason::Rejected(_))),
                "a forged server INIT rejected"
            );
        }
    }

    if flags & 8 != 0 {
        let was_open = seen.closed.is_none();
        client.handle_link_end(start, None);
        seen.events(&mut client);
        if was_open {
            assert_eq!(seen.closed, Some(CloseReason::TransportClosed));
        }
        assert!(
            client.poll_transmit(start).is_none(),
            "transmit after a transport end"
        );
        return;
    }
    if seen.connected.is_none() && seen.closed.is_none() {
        client.handle_timeout(deadline - Duration::from_nanos(1));
        seen.events(&mut client);
        assert_eq!(seen.closed, None, "closed before the handshake deadline");
        client.handle_timeout(deadline);
        seen.events(&mut client);
        assert_eq!(seen.closed, Some(CloseReason::HandshakeTimeout));
        assert!(client.poll_transmit(deadline).is_none());
        return;
    }
    let mut now = start;
    for _ in 0..8 {
        let Some(t) = client.poll_timeout() else {
            break;
        };
        now = now.max(t);
        client.handle_timeout(now);
        if let Some(next) = client.poll_timeout() {
            assert!(
                next > now,
                "poll_timeout() {next:?} not after handle_timeout({now:?})"
            );
        }
        seen.events(&mut client);
        seen.transmits(&mut client, now);
    }
}
