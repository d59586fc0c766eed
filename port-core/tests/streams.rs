//! Message streams end to end: many messages of every size, any chunking of both byte streams,
//! both directions at once, negotiated limits, padding, memory bound, determinism and the
//! ciphertext's independence from the plaintext.

mod common;

use bytes::Bytes;
use common::*;
use port_core::Session;
use port_core::frame::{BODY_TAG_LEN, HEADER_WIRE_LEN};
use port_core::{
    CLIENT_PREFIX_LEN, ClientConfig, CloseReason, Config, ConfigBuilder, Error, Event,
    MAX_FRAME_PAYLOAD, MAX_PADDING, MIN_FRAME_PAYLOAD, Padding, SERVER_PREFIX_LEN, ServerConfig,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

/// The default `max_frame_payload`.
const DEFAULT_PAYLOAD: usize = 16_384;

/// Proptest settings: a fixed seed and no regression files, so every run is the same.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        rng_seed: RngSeed::Fixed(0x504f_5254),
        failure_persistence: None,
        ..ProptestConfig::with_cases(n)
    }
}

/// Message sizes: empty, small, around the default frame payload, anything up to `max`, and
/// close to `max` (70 KiB spans five default frames and exceeds even the largest frame).
fn size(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        3 => 1..300usize,
        2 => (DEFAULT_PAYLOAD - 2..=DEFAULT_PAYLOAD + 2).prop_map(move |n| n.min(max)),
        2 => 0..=max,
        1 => max - max / 10..=max,
    ]
}

/// A list of messages with distinct contents and at least two extra empty messages inserted
/// at chosen places.
fn messages(count: std::ops::Range<usize>, max: usize) -> impl Strategy<Value = Vec<Bytes>> {
    (
        prop::collection::vec(size(max), count),
        prop::collection::vec(any::<Index>(), 2..4),
        any::<u32>(),
    )
        .prop_map(|(mut sizes, empties, tag)| {
            for at in empties {
                let i = at.index(sizes.len() + 1);
                sizes.insert(i, 0);
            }
            sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| message(tag.wrapping_add(i as u32), len))
                .collect()
        })
}

/// `fast_config()` with some settings changed.
fn fast_with(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Config {
    f(fast_config().to_builder()).build().unwrap()
}

/// A pair whose client and server use different configurations.
fn pair_with(client: Config, server: Config, seed: u64) -> Pair {
    let key = server_key(1);
    let client_setup = ClientConfig::new(client, key.client_key(), TOKEN).unwrap();
    let server_setup = ServerConfig::new(server, key);
    Pair::with_setups(&client_setup, &server_setup, seed)
}

/// Runs until nothing can happen any more, so every event has been collected.
fn settle(p: &mut Pair) {
    p.run_until(|_| false);
}

fn data_events(events: &[(std::time::Instant, Event)]) -> usize {
    events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Data(_)))
        .count()
}

/// Client sends `sent`, the server echoes; then the client closes. Checks that each side saw
/// every message exactly once, in order, byte-identical, and that the close was graceful.
fn echo_and_close(p: &mut Pair, sent: &[Bytes]) -> Result<(), TestCaseError> {
    p.handshake();
    for m in sent {
        p.client.send(m.clone()).unwrap();
    }
    p.run_until(|p| p.client_messages().len() >= sent.len() || p.client.is_closed());
    prop_assert_eq!(p.server_messages(), sent);
    prop_assert_eq!(p.client_messages(), sent);
    p.client.close();
    settle(p);
    prop_assert_eq!(p.client_closed(), Some(CloseReason::Local));
    prop_assert_eq!(p.server_closed(), Some(CloseReason::Peer));
    // Exactly once: nothing more arrived while closing.
    prop_assert_eq!(data_events(&p.server_events), sent.len());
    prop_assert_eq!(data_events(&p.client_events), sent.len());
    Ok(())
}

/// Frames needed for one message with fragments of at most `limit` bytes.
fn frames_for(len: usize, limit: usize) -> usize {
    len.div_ceil(limit).max(1)
}

/// On-wire bytes of one message's frames without padding.
fn wire_for(len: usize, limit: usize) -> usize {
    len + frames_for(len, limit) * (HEADER_WIRE_LEN + BODY_TAG_LEN)
}

proptest! {
    #![proptest_config(cases(16))]

    /// Random messages echoed under random chunking of both streams.
    #[test]
    fn echo_under_random_chunking(
        sent in messages(1..8, 70 * 1024),
        seed in any::<u64>(),
        max in prop_oneof![Just(1usize), 1..64usize, 1..5000usize],
    ) {
        let mut p = Pair::new(fast_config(), seed);
        p.chunking = Chunking::Random { seed, max };
        echo_and_close(&mut p, &sent)?;
    }
}

proptest! {
    #![proptest_config(cases(4))]

    /// The same with one byte per `handle_input` call, for smaller messages.
    #[test]
    fn echo_one_byte_at_a_time(sent in messages(1..5, 20 * 1024), seed in any::<u64>()) {
        let mut p = Pair::new(fast_config(), seed);
        p.chunking = Chunking::OneByte;
        echo_and_close(&mut p, &sent)?;
    }
}

proptest! {
    #![proptest_config(cases(8))]

    /// Both sides send their own messages at the same time, in two bursts with some steps in
    /// between; each side receives exactly the other's messages, in order.
    #[test]
    fn both_sides_send_concurrently(
        from_client in messages(1..6, 70 * 1024),
        from_server in messages(1..6, 70 * 1024),
        seed in any::<u64>(),
        max in 1..3000usize,
        split in any::<(Index, Index)>(),
        steps_between in 0..6usize,
    ) {
        let mut p = Pair::new(fast_config(), seed);
        p.chunking = Chunking::Random { seed, max };
        p.server_echoes = false;
        p.handshake();
        let (a, b) = (split.0.index(from_client.len() + 1), split.1.index(from_server.len() + 1));
        for m in &from_client[..a] {
            p.client.send(m.clone()).unwrap();
        }
        for m in &from_server[..b] {
            p.server.send(m.clone()).unwrap();
        }
        for _ in 0..steps_between {
            p.step();
        }
        for m in &from_client[a..] {
            p.client.send(m.clone()).unwrap();
        }
        for m in &from_server[b..] {
            p.server.send(m.clone()).unwrap();
        }
        p.run_until(|p| {
            p.server_messages().len() >= from_client.len()
                && p.client_messages().len() >= from_server.len()
        });
        prop_assert_eq!(&p.server_messages(), &from_client);
        prop_assert_eq!(&p.client_messages(), &from_server);
        // The server closes this time; everything still in flight arrives first.
        p.server.close();
        settle(&mut p);
        prop_assert_eq!(p.server_closed(), Some(CloseReason::Local));
        prop_assert_eq!(p.client_closed(), Some(CloseReason::Peer));
        prop_assert_eq!(data_events(&p.server_events), from_client.len());
        prop_assert_eq!(data_events(&p.client_events), from_server.len());
    }
}

#[derive(Clone, Copy, Debug)]
enum Small {
    Client,
    Server,
    Neither,
}

proptest! {
    #![proptest_config(cases(10))]

    /// A small `max_frame_payload` on one side only limits the fragments of both directions
    /// (the negotiated minimum); padding 0 makes the wire length exact, maximum padding only
    /// adds to it within bounds.
    #[test]
    fn negotiated_frame_limit_and_padding(
        sent in messages(1..5, 20 * 1024),
        seed in any::<u64>(),
        small in prop_oneof![Just(Small::Client), Just(Small::Server), Just(Small::Neither)],
        padded in any::<bool>(),
        max in 1..2000usize,
    ) {
        let padding = if padded { MAX_PADDING as u16 } else { 0 };
        let with = |payload: usize| {
            fast_with(|b| {
                b.padding(Padding::Uniform { max: padding })
                    .max_frame_payload(payload)
            })
        };
        let (client_payload, server_payload) = match small {
            Small::Client => (MIN_FRAME_PAYLOAD, DEFAULT_PAYLOAD),
            Small::Server => (DEFAULT_PAYLOAD, MIN_FRAME_PAYLOAD),
            Small::Neither => (DEFAULT_PAYLOAD, DEFAULT_PAYLOAD),
        };
        let limit = client_payload.min(server_payload);
        let mut p = pair_with(with(client_payload), with(server_payload), seed);
        p.chunking = Chunking::Random { seed, max };
        echo_and_close(&mut p, &sent)?;

        // No keepalive ran (the exchange took no virtual time), so every frame is a data frame
        // or the one TERM of each side.
        let (cs, ss) = (p.client.stats(), p.server.stats());
        prop_assert_eq!(cs.pings_sent + ss.pings_sent, 0);
        let data_frames: usize = sent.iter().map(|m| frames_for(m.len(), limit)).sum();
        prop_assert_eq!(cs.frames_sent as usize, data_frames + 1);
        prop_assert_eq!(ss.frames_sent as usize, data_frames + 1);
        prop_assert_eq!(ss.frames_received, cs.frames_sent);
        prop_assert_eq!(cs.frames_received, ss.frames_sent);

        let frames_wire: usize = sent.iter().map(|m| wire_for(m.len(), limit)).sum::<usize>()
            + HEADER_WIRE_LEN
            + BODY_TAG_LEN;
        let c2s_bare = CLIENT_PREFIX_LEN + TOKEN.len() + BODY_TAG_LEN + frames_wire;
        let s2c_bare = SERVER_PREFIX_LEN + BODY_TAG_LEN + frames_wire;
        let (c2s, s2c) = (
            p.transcript(Dir::ClientToServer).len(),
            p.transcript(Dir::ServerToClient).len(),
        );
        if padded {
            // Each frame and each INIT carries at most MAX_PADDING bytes of padding.
            let room = (data_frames + 2) * MAX_PADDING;
            prop_assert!(c2s > c2s_bare && c2s <= c2s_bare + room, "{} vs {}", c2s, c2s_bare);
            prop_assert!(s2c > s2c_bare && s2c <= s2c_bare + room, "{} vs {}", s2c, s2c_bare);
        } else {
            prop_assert_eq!(c2s, c2s_bare);
            prop_assert_eq!(s2c, s2c_bare);
        }
    }
}

/// Feeding a large message one byte at a time: the receiver holds at most the unfinished part
/// of the current frame (never more than one maximum frame), releases it as soon as the frame
/// is complete, and delivers the message exactly when its last byte arrives.
#[test]
fn receiver_buffers_at_most_one_frame_while_fed_byte_by_byte() {
    for (payload, seed) in [(MAX_FRAME_PAYLOAD, 1), (DEFAULT_PAYLOAD, 2), (1000, 3)] {
        let config = fast_with(|b| {
            b.padding(Padding::Uniform {
                max: MAX_PADDING as u16,
            })
            .max_frame_payload(payload)
        });
        let bound = HEADER_WIRE_LEN + payload + MAX_PADDING + BODY_TAG_LEN;
        let mut p = Pair::new(config, seed);
        p.handshake();
        let big = message(seed as u32, 70 * 1024);
        p.client.send(big.clone()).unwrap();
        p.client.send(Bytes::new()).unwrap();
        let wire: Vec<u8> = std::iter::from_fn(|| p.client.poll_transmit(p.now))
            .flat_map(|b| b.to_vec())
            .collect();
        let mut delivered = Vec::new();
        let mut frames = p.server.stats().frames_received;
        let mut max_seen = 0;
        let mut frame_ends = Vec::new();
        for (i, byte) in wire.iter().enumerate() {
            p.server.handle_input(p.now, std::slice::from_ref(byte));
            let held = p.server.receive_buffered();
            max_seen = max_seen.max(held);
            assert!(held < bound, "byte {i}: {held} bytes held, bound {bound}");
            let now_frames = p.server.stats().frames_received;
            if now_frames != frames {
                assert_eq!(now_frames, frames + 1);
                assert_eq!(held, 0, "a complete frame is not kept");
                frames = now_frames;
                frame_ends.push(i);
            }
            while let Some(event) = p.server.poll_event() {
                if let Event::Data(m) = event {
                    delivered.push((i, m));
                }
            }
        }
        // Each message arrives with the last byte of its last frame, not a byte later.
        let fragments = frames_for(big.len(), payload);
        assert_eq!(frame_ends.len(), fragments + 1);
        assert_eq!(*frame_ends.last().unwrap(), wire.len() - 1);
        assert_eq!(delivered.len(), 2);
        assert_eq!(delivered[0], (frame_ends[fragments - 1], big));
        assert_eq!(delivered[1], (wire.len() - 1, Bytes::new()));
        assert_eq!(p.server.receive_buffered(), 0);
        // The bound is not vacuous: the body of a full fragment was held almost entirely.
        assert!(max_seen >= payload, "{max_seen} < {payload}");
    }
}

/// Runs an echo exchange and returns both transcripts and the transmit sizes.
fn transcripts(seed: u64, sent: &[Bytes]) -> (Vec<u8>, Vec<u8>, Vec<usize>, Vec<usize>) {
    let mut p = Pair::new(fast_config(), seed);
    p.chunking = Chunking::Random { seed, max: 100 };
    echo_and_close(&mut p, sent).unwrap();
    (
        p.transcript(Dir::ClientToServer).to_vec(),
        p.transcript(Dir::ServerToClient).to_vec(),
        p.writes(Dir::ClientToServer).to_vec(),
        p.writes(Dir::ServerToClient).to_vec(),
    )
}

#[test]
fn same_seed_same_bytes_other_seed_other_sizes_and_bytes() {
    let sent: Vec<Bytes> = [0, 10, 300, 20_000, 0, 5]
        .iter()
        .enumerate()
        .map(|(i, &n)| message(i as u32, n))
        .collect();
    for (a, b) in [(1, 2), (3, 4), (1000, 1001), (u64::MAX, 0)] {
        let first = transcripts(a, &sent);
        assert_eq!(first, transcripts(a, &sent), "seed {a} is not reproducible");
        let other = transcripts(b, &sent);
        for (x, y, dir) in [(&first.0, &other.0, "c2s"), (&first.1, &other.1, "s2c")] {
            assert_ne!(
                x.len(),
                y.len(),
                "{dir}: seeds {a} and {b} give the same length"
            );
            let common = x.len().min(y.len());
            let same = x[..common]
                .iter()
                .zip(&y[..common])
                .filter(|(p, q)| p == q)
                .count();
            // Independent random-looking bytes agree about once in 256.
            assert!(
                same * 32 < common,
                "{dir}: {same} of {common} bytes equal for seeds {a} and {b}"
            );
        }
        assert_ne!(first.2.iter().sum::<usize>(), other.2.iter().sum::<usize>());
        assert_ne!(first.3.iter().sum::<usize>(), other.3.iter().sum::<usize>());
    }
}

#[test]
fn same_payload_twice_gives_unrelated_ciphertexts() {
    let config = fast_with(|b| b.padding(Padding::NONE));
    let text: Bytes = b"attack at dawn, "
        .iter()
        .copied()
        .cycle()
        .take(160)
        .collect::<Vec<u8>>()
        .into();
    let mut p = Pair::new(config, 11);
    p.handshake();
    let mut frames = Vec::new();
    for _ in 0..3 {
        let before = p.transcript(Dir::ClientToServer).len();
        p.client.send(text.clone()).unwrap();
        assert!(p.run_until(|p| p.transcript(Dir::ClientToServer).len() > before));
        let frame = p.transcript(Dir::ClientToServer)[before..].to_vec();
        assert_eq!(frame.len(), wire_for(text.len(), DEFAULT_PAYLOAD));
        frames.push(frame);
    }
    assert!(p.run_until(|p| p.client_messages().len() == 3));
    assert_eq!(
        p.server_messages(),
        [text.clone(), text.clone(), text.clone()]
    );
    for (i, j) in [(0, 1), (1, 2), (0, 2)] {
        let same = frames[i]
            .iter()
            .zip(&frames[j])
            .filter(|(a, b)| a == b)
            .count();
        assert!(
            same * 16 < frames[i].len(),
            "frames {i} and {j}: {same} equal bytes"
        );
    }
    // No run of the plaintext shows on the wire, in either direction (the echo included).
    for dir in [Dir::ClientToServer, Dir::ServerToClient] {
        let wire = p.transcript(dir);
        assert!(!wire.windows(8).any(|w| text.windows(8).any(|t| t == w)));
    }
}

#[test]
fn message_limit_is_the_smaller_of_both_sides() {
    // Client advertises 1000, server the default: both sides may send at most 1000 bytes.
    let small = fast_with(|b| b.max_frame_payload(MIN_FRAME_PAYLOAD).max_message(1000));
    let mut p = pair_with(small, fast_config(), 21);
    assert_eq!(p.client.max_message(), 1000);
    assert_eq!(p.server.max_message(), fast_config().max_message());
    p.handshake();
    assert_eq!(p.client.max_message(), 1000);
    assert_eq!(p.server.max_message(), 1000);
    for side in [&mut p.client, &mut p.server] {
        let err = side.send(message(1, 1001)).unwrap_err();
        assert_eq!(
            err,
            Error::MessageTooLarge {
                len: 1001,
                max: 1000
            }
        );
        let text = err.to_string();
        assert!(text.contains("1001") && text.contains("1000"), "{text}");
        assert_eq!(side.send_buffered(), 0, "a refused message is not queued");
    }
    let at_limit = message(2, 1000);
    p.client.send(at_limit.clone()).unwrap();
    p.client.send("after".into()).unwrap();
    assert!(p.run_until(|p| p.client_messages().len() == 2));
    assert_eq!(
        p.server_messages(),
        [at_limit.clone(), Bytes::from("after")]
    );
    assert_eq!(p.client_messages(), [at_limit, Bytes::from("after")]);
    assert_eq!(p.server.stats().messages_received, 2);

    // The other way round: the server's smaller limit binds the client.
    let small = fast_with(|b| b.max_message(20_000));
    let mut p = pair_with(fast_config(), small, 22);
    p.handshake();
    assert_eq!(p.client.max_message(), 20_000);
    assert_eq!(p.server.max_message(), 20_000);
    assert_eq!(
        p.client.send(message(3, 20_001)),
        Err(Error::MessageTooLarge {
            len: 20_001,
            max: 20_000
        })
    );
    p.client.send(message(4, 20_000)).unwrap();
    assert!(p.run_until(|p| p.client_messages().len() == 1));
    assert_eq!(p.client_messages(), [message(4, 20_000)]);
}
