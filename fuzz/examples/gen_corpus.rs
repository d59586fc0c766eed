//! Writes the seed corpus of every target into `fuzz/corpus/TARGET/` (or into the directory
//! given as the first argument).
//!
//! Seeds come from the test-vector setup of `docs/PROTOCOL.md` §16 (key seed, connection seeds,
//! Unix time, token, client type, configuration) and its variations (see
//! `port_fuzz::setup::scenario`), and from transcripts of in-memory client/server pairs driven
//! by the `connection` target's own simulator: client INITs, server INITs, frame streams.
//! Structured inputs are built as values and encoded; each encoding is decoded back and
//! compared. Every seed is then run through its target's checks: the generator exits non-zero
//! if one fails. `-v` reports what each `connection` seed comes to.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::BytesMut;
use port_core::frame::{FLAG_DATA, FLAG_TERM, FrameHeader, FrameSealer, HEADER_LEN};
use port_core::{Cipher, MAX_TOKEN_LEN, Status};
use port_fuzz::client_init::MutatedInit;
use port_fuzz::frames::{FrameInput, FrameSpec, KEY, VALID_FLAGS};
use port_fuzz::setup::{
    CLIENT_SEED, DECISIONS, Decision, SCENARIOS, SERVER_SEED, USER_ID, client_inits, scenario,
    server_inits,
};
use port_fuzz::sim::{ConnInput, Dir, Op, Setup, Sim};

/// Seeds per target, by file name.
#[derive(Default)]
struct Corpus {
    files: BTreeMap<(&'static str, String), Vec<u8>>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert((target, name.into()), bytes);
    }
}

/// The chunkings the raw-stream targets are seeded with: `(mode, param, label)`.
const CHUNKINGS: [(u8, u8, &str); 4] = [
    (1, 0, "bytewise"),
    (0, 0, "whole"),
    (2, 27, "by28"),
    (3, 5, "random"),
];

/// Transcripts of one scenario's pair.
struct Transcripts {
    /// Client to server, the server accepting.
    c2s: Vec<u8>,
    /// Server to client, for each entry of `DECISIONS`.
    s2c: Vec<Vec<u8>>,
}

/// Operations of a full conversation: handshake, messages both ways (one fragmented), two
/// keepalive rounds, graceful close.
fn conversation(decision: Decision) -> Vec<Op> {
    let mut ops = vec![Op::Flush];
    match decision {
        Decision::Accept(id) => ops.push(Op::Accept(id)),
        Decision::Reject(status) => ops.push(Op::Reject(status.code())),
    }
    ops.extend([
        Op::Flush,
        Op::ClientSend(b"hello, server".to_vec()),
        Op::Flush,
        Op::ServerSend(b"hello, client".to_vec()),
        Op::ClientSend(Vec::new()),
        Op::ClientSendLarge { len: 3000, fill: 1 },
        Op::Flush,
        Op::NextDeadline,
        Op::Flush,
        Op::NextDeadline,
        Op::Flush,
        Op::ServerSendLarge { len: 700, fill: 2 },
        Op::Flush,
        Op::ClientClose,
        Op::Flush,
        Op::ServerClose,
        Op::Flush,
    ]);
    ops
}

fn transcripts(i: u8) -> Transcripts {
    let scn = scenario(i);
    let run = |decision: Decision| {
        let mut sim = Sim::with_setups(
            scn.client_setup(),
            &scn.server_setup(),
            CLIENT_SEED,
            SERVER_SEED,
        );
        for op in conversation(decision) {
            sim.apply(&op);
        }
        sim.finish();
        let outcome = sim.outcome();
        if let Decision::Accept(_) = decision {
            assert_eq!(
                (outcome.client_received, outcome.server_received),
                (2, 3),
                "{outcome:?}"
            );
            assert!(
                outcome.client_closed.is_some_and(|r| r.is_graceful()),
                "{outcome:?}"
            );
            assert!(
                outcome.server_closed.is_some_and(|r| r.is_graceful()),
                "{outcome:?}"
            );
        }
        (sim.c2s_transcript, sim.s2c_transcript)
    };
    let (c2s, _) = run(DECISIONS[0]);
    let s2c: Vec<Vec<u8>> = DECISIONS.iter().map(|&d| run(d).1).collect();
    for (stream, init) in s2c.iter().zip(server_inits(i)) {
        assert!(
            stream.starts_with(init),
            "a pair's server INIT is not the genuine one"
        );
    }
    assert!(c2s.starts_with(&client_inits()[usize::from(i)]));
    Transcripts { c2s, s2c }
}

fn raw_seed(flags: u8, mode: u8, param: u8, stream: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, mode, param];
    out.extend_from_slice(stream);
    out
}

fn handshake_seeds(corpus: &mut Corpus) {
    for i in 0..SCENARIOS as u8 {
        let t = transcripts(i);
        let init = &client_inits()[usize::from(i)];
        let mut forged = init.clone();
        forged[init.len() / 2] ^= 0x01;
        let client_streams: [(&str, &[u8]); 5] = [
            ("conversation", &t.c2s),
            ("init", init),
            ("init-truncated", &init[..init.len() - 1]),
            ("prefix", &init[..port_core::CLIENT_PREFIX_LEN]),
            ("init-altered", &forged),
        ];
        for (label, stream) in client_streams {
            for (mode, param, chunking) in CHUNKINGS {
                corpus.add(
                    "client_init",
                    format!("s{i}-{label}-{chunking}-accept"),
                    raw_seed(i, mode, param, stream),
                );
            }
            corpus.add(
                "client_init",
                format!("s{i}-{label}-bytewise-reject-end"),
                raw_seed(i | 4 | 8, 1, 1, stream),
            );
        }
        for (d, stream) in t.s2c.iter().enumerate() {
            let init_len = server_inits(i)[d].len();
            let mut forged = stream.clone();
            forged[init_len / 2] ^= 0x01;
            let server_streams: [(&str, &[u8]); 4] = [
                ("conversation", stream),
                ("init", &stream[..init_len]),
                ("init-truncated", &stream[..init_len - 1]),
                ("altered", &forged),
            ];
            for (label, s) in server_streams {
                for (mode, param, chunking) in CHUNKINGS {
                    corpus.add(
                        "server_init",
                        format!("s{i}-d{d}-{label}-{chunking}"),
                        raw_seed(i, mode, param, s),
                    );
                }
                corpus.add(
                    "server_init",
                    format!("s{i}-d{d}-{label}-end"),
                    raw_seed(i | 8, 3, 9, s),
                );
            }
        }
    }
}

fn mutated_seeds(corpus: &mut Corpus) {
    let base = MutatedInit {
        client_preset: 0,
        server_preset: 0,
        seed: 0,
        token_len: 24,
        client_type: 0x2a,
        skew: 0,
        mode: 0,
        param: 0,
        truncate: 0,
        replay: false,
        mutations: Vec::new(),
    };
    let variants = [
        ("vector", base.clone()),
        (
            "empty-token",
            MutatedInit {
                token_len: 0,
                client_preset: 1,
                server_preset: 1,
                ..base.clone()
            },
        ),
        (
            "largest",
            MutatedInit {
                token_len: MAX_TOKEN_LEN as u16,
                client_preset: 3,
                server_preset: 4,
                mode: 3,
                param: 1,
                ..base.clone()
            },
        ),
        (
            "replayed",
            MutatedInit {
                replay: true,
                seed: 7,
                ..base.clone()
            },
        ),
        (
            "skew-edge",
            MutatedInit {
                skew: 60,
                ..base.clone()
            },
        ),
        (
            "stale",
            MutatedInit {
                skew: -61,
                replay: true,
                ..base.clone()
            },
        ),
        (
            "truncated",
            MutatedInit {
                truncate: 1,
                mode: 1,
                ..base.clone()
            },
        ),
        (
            "salt-bit",
            MutatedInit {
                mutations: vec![(3, 0x01)],
                replay: true,
                ..base.clone()
            },
        ),
        (
            "header-bit",
            MutatedInit {
                mutations: vec![(60, 0x80)],
                ..base.clone()
            },
        ),
        (
            "body-bit",
            MutatedInit {
                mutations: vec![(100, 0x10)],
                mode: 2,
                param: 40,
                ..base.clone()
            },
        ),
        (
            "cancelled",
            MutatedInit {
                mutations: vec![(9, 0x55), (9, 0x55)],
                ..base.clone()
            },
        ),
    ];
    for (label, input) in variants {
        let bytes = input.encode();
        assert_eq!(
            MutatedInit::decode(&bytes).as_ref(),
            Some(&input),
            "{label}"
        );
        corpus.add("client_init_mutated", label, bytes);
    }
}

fn frame_seeds(corpus: &mut Corpus) {
    let mut specs = Vec::new();
    for (i, &flags) in VALID_FLAGS.iter().enumerate() {
        let data = flags & FLAG_DATA != 0;
        specs.push(FrameSpec {
            flags,
            pad_len: (i as u16) * 7,
            ping_id: if flags & 0x04 != 0 { i as u16 } else { 0 },
            pong_id: if flags & 0x08 != 0 { i as u16 + 1 } else { 0 },
            payload: if data {
                b"payload".to_vec()
            } else {
                Vec::new()
            },
            extra: if data && i % 2 == 0 { 300 } else { 0 },
            mismatch_first: i == 3,
        });
    }
    // The garbage part: a genuine stream under the key the garbage opener uses.
    let mut sealed = BytesMut::new();
    let mut sealer = FrameSealer::new(Cipher::default(), &KEY);
    for spec in &specs {
        let header = FrameHeader {
            flags: spec.flags,
            payload_len: spec.payload.len() as u16,
            pad_len: spec.pad_len,
            ping_id: spec.ping_id,
            pong_id: spec.pong_id,
        };
        sealer
            .seal(&header, &spec.payload, &mut sealed)
            .expect("seal");
    }
    let good = FrameHeader {
        flags: FLAG_DATA,
        payload_len: 100,
        pad_len: 12,
        ping_id: 0,
        pong_id: 0,
    };
    let mut reserved = good.encode();
    reserved[HEADER_LEN - 1] = 1;
    let raws = [
        ("data", good.encode()),
        (
            "term",
            FrameHeader {
                flags: FLAG_TERM,
                payload_len: 0,
                ..good
            }
            .encode(),
        ),
        (
            "term-data",
            FrameHeader {
                flags: FLAG_TERM | FLAG_DATA,
                ..good
            }
            .encode(),
        ),
        (
            "unknown-flag",
            FrameHeader {
                flags: 0x20,
                payload_len: 0,
                ..good
            }
            .encode(),
        ),
        (
            "pad-limit",
            FrameHeader {
                pad_len: 8192,
                ..good
            }
            .encode(),
        ),
        (
            "pad-over",
            FrameHeader {
                pad_len: 8193,
                ..good
            }
            .encode(),
        ),
        ("reserved", reserved),
    ];
    for (label, raw) in raws {
        for (variant, frames, flip, garbage) in [
            ("plain", specs.clone(), None, &sealed[..]),
            ("flipped", specs.clone(), Some((77, 0x04)), &sealed[..]),
            ("single", vec![specs[1].clone()], None, &sealed[..40]),
        ] {
            let input = FrameInput {
                raw,
                limit: 16_384,
                opener_limit: 16_384,
                frames,
                flip,
                garbage_key: KEY[0],
                garbage_limit: 16_384,
                body_header: (FLAG_DATA, 7, 0),
            };
            let bytes = input.encode(garbage);
            let (back, rest) = port_fuzz::frames::decode(&bytes).expect("decode");
            assert_eq!((&back, rest), (&input, garbage), "{label}-{variant}");
            corpus.add("frame_decode", format!("{label}-{variant}"), bytes);
        }
    }
}

fn connection_seeds(corpus: &mut Corpus) {
    let setup = |client_preset: u8, server_preset: u8, token_len: u16| Setup {
        client_preset,
        server_preset,
        token_len,
        client_type: 0x2a,
        seed: 0,
    };
    let handshake = vec![Op::Flush, Op::Accept(USER_ID), Op::Flush];
    let with = |extra: &[Op]| {
        let mut ops = handshake.clone();
        ops.extend_from_slice(extra);
        ops
    };
    let mut chunked = Vec::new();
    for _ in 0..40 {
        chunked.push(Op::ClientToServer { chunk: 29 });
        chunked.push(Op::Accept(7));
        chunked.push(Op::ServerToClient { chunk: 17 });
    }
    chunked.extend([
        Op::Flush,
        Op::ClientSend(b"after a chunked handshake".to_vec()),
        Op::Flush,
    ]);
    let seeds = [
        (
            "vector-conversation",
            setup(0, 0, 24),
            conversation(DECISIONS[0]),
        ),
        (
            "default-conversation",
            setup(1, 1, 0),
            conversation(DECISIONS[0]),
        ),
        (
            "small-conversation",
            setup(3, 3, 300),
            conversation(DECISIONS[0]),
        ),
        ("wide-small", setup(4, 3, 4096), conversation(DECISIONS[0])),
        (
            "rejected",
            setup(2, 2, 10),
            conversation(Decision::Reject(Status::TokenParseError)),
        ),
        (
            "reject-success",
            setup(2, 2, 10),
            vec![Op::Flush, Op::Reject(0), Op::Accept(1), Op::Flush],
        ),
        (
            "keepalive",
            setup(2, 2, 10),
            with(&[
                Op::NextDeadline,
                Op::Flush,
                Op::NextDeadline,
                Op::Flush,
                Op::Advance { ms: 2500 },
                Op::Flush,
                Op::NextDeadline,
                Op::Flush,
            ]),
        ),
        (
            "keepalive-timeout",
            setup(2, 4, 10),
            with(&[
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
                Op::NextDeadline,
            ]),
        ),
        (
            "fragments",
            setup(3, 3, 0),
            with(&[
                Op::ClientSendLarge { len: 4096, fill: 3 },
                Op::ServerSendLarge { len: 4097, fill: 4 },
                Op::ClientToServer { chunk: 300 },
                Op::ClientToServer { chunk: 3000 },
                Op::Flush,
                Op::ServerClose,
                Op::Flush,
                Op::ClientClose,
                Op::Flush,
            ]),
        ),
        (
            "corrupt",
            setup(2, 2, 10),
            with(&[
                Op::ClientSend(b"x".to_vec()),
                Op::Corrupt {
                    dir: Dir::ClientToServer,
                    offset: 30,
                    xor: 1,
                },
                Op::Flush,
            ]),
        ),
        (
            "corrupt-init",
            setup(2, 2, 10),
            vec![
                Op::Corrupt {
                    dir: Dir::ClientToServer,
                    offset: 5,
                    xor: 0x40,
                },
                Op::Flush,
                Op::Advance { ms: 30_000 },
            ],
        ),
        (
            "drop",
            setup(2, 2, 10),
            with(&[
                Op::ServerSend(b"lost".to_vec()),
                Op::Drop {
                    dir: Dir::ServerToClient,
                    n: 3,
                },
                Op::Flush,
            ]),
        ),
        (
            "transport-end",
            setup(2, 2, 10),
            with(&[
                Op::ClientSend(b"bye".to_vec()),
                Op::TransportEnd {
                    dir: Dir::ClientToServer,
                },
                Op::Flush,
            ]),
        ),
        (
            "handshake-timeout",
            setup(2, 2, 10),
            vec![
                Op::Flush,
                Op::Advance { ms: 6000 },
                Op::Accept(1),
                Op::Flush,
            ],
        ),
        (
            "stale",
            setup(1, 1, 10),
            vec![Op::Advance { ms: 61_000 }, Op::Flush, Op::NextDeadline],
        ),
        ("chunked", setup(0, 3, 1000), chunked),
        (
            "half-close",
            setup(2, 2, 10),
            with(&[
                Op::ClientClose,
                Op::Flush,
                Op::ServerSend(b"still talking".to_vec()),
                Op::NextDeadline,
                Op::Flush,
                Op::ServerClose,
                Op::Flush,
            ]),
        ),
    ];
    for (label, setup, ops) in seeds {
        let input = ConnInput { setup, ops };
        let bytes = input.encode();
        assert_eq!(ConnInput::decode(&bytes).as_ref(), Some(&input), "{label}");
        if verbose() {
            let o = port_fuzz::sim::outcome(&input);
            println!("connection/{label}: {o:?}");
        }
        corpus.add("connection", label, bytes);
    }
}

/// The seaside target: the genuine client INIT (whole, bytewise, in 13-byte pieces) and a few
/// lengths of zeros at each stage.
fn seaside_seeds(corpus: &mut Corpus) {
    let init = port_fuzz::seaside::genuine_client_init();
    for (chunk, label) in [(255u8, "whole"), (0, "bytewise"), (13, "by13")] {
        let mut bytes = vec![0, chunk];
        bytes.extend_from_slice(&init);
        corpus.add("seaside", format!("init-{label}"), bytes);
    }
    for stage in 0..4u8 {
        for len in [0usize, 45, 46, 81, 200] {
            let mut bytes = vec![stage, 7];
            bytes.resize(2 + len, 0);
            corpus.add("seaside", format!("zeros-{stage}-{len}"), bytes);
        }
    }
}

/// The shaped_init target: each shape's genuine first flights in every chunking, under accept
/// and reject; the test-vector one cut short and with its last byte changed; a plain INIT and
/// another shape's first flight sent to each shape.
fn shaped_seeds(corpus: &mut Corpus) {
    use port_fuzz::shaped_init::{SHAPES, first_flights};
    for shape in 0..SHAPES as u8 {
        let flights = first_flights(usize::from(shape));
        for (k, flight) in flights.iter().enumerate() {
            for &(mode, param, label) in &CHUNKINGS {
                for (flag, decision) in [(0u8, "accept"), (0x80, "reject")] {
                    let mut bytes = vec![shape | flag, mode, param];
                    bytes.extend_from_slice(flight);
                    corpus.add(
                        "shaped_init",
                        format!("s{shape}-scenario{k}-{decision}-{label}"),
                        bytes,
                    );
                }
            }
        }
        let flight = &flights[0];
        let mut cut = vec![shape, 0, 0];
        cut.extend_from_slice(&flight[..flight.len() / 2]);
        corpus.add("shaped_init", format!("s{shape}-half"), cut);
        let mut changed = vec![shape, 0, 0];
        changed.extend_from_slice(flight);
        *changed.last_mut().expect("a byte") ^= 0x01;
        corpus.add("shaped_init", format!("s{shape}-last-changed"), changed);
        let mut plain = vec![shape, 0, 0];
        plain.extend_from_slice(&client_inits()[0]);
        corpus.add("shaped_init", format!("s{shape}-plain-init"), plain);
        let other = first_flights((usize::from(shape) + 1) % SHAPES);
        let mut foreign = vec![shape, 0, 0];
        foreign.extend_from_slice(&other[0]);
        corpus.add("shaped_init", format!("s{shape}-other-shape"), foreign);
    }
}

/// `-v` anywhere among the arguments: report what each connection seed comes to.
fn verbose() -> bool {
    std::env::args().skip(1).any(|a| a == "-v")
}

fn main() -> ExitCode {
    let dir = std::env::args()
        .skip(1)
        .find(|a| a != "-v")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut corpus = Corpus::default();
    handshake_seeds(&mut corpus);
    mutated_seeds(&mut corpus);
    frame_seeds(&mut corpus);
    connection_seeds(&mut corpus);
    seaside_seeds(&mut corpus);
    shaped_seeds(&mut corpus);

    let mut failed = 0;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for ((target, name), bytes) in &corpus.files {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir).expect("create the corpus directory");
        std::fs::write(target_dir.join(name), bytes).expect("write a seed");
        *counts.entry(target).or_default() += 1;
        let run = port_fuzz::TARGETS
            .iter()
            .find(|(t, _)| t == target)
            .expect("known target")
            .1;
        if catch_unwind(AssertUnwindSafe(|| run(bytes))).is_err() {
            eprintln!("seed {target}/{name} fails its target's checks");
            failed += 1;
        }
    }
    for (target, n) in counts {
        println!("{n:4} seeds  {}", dir.join(target).display());
    }
    if failed > 0 {
        eprintln!("{failed} seeds fail their target's checks");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
