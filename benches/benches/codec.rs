//! The frame codec against the bare AEAD it is built from.
//!
//! - `codec/port/pad{0,256}/SIZE`: `FrameSealer::seal` of one frame with a SIZE-byte payload
//!   and 0 or 256 bytes of padding into one reused `BytesMut`, then `FrameOpener::open_header`
//!   and `open_body` on the same buffer (two AEAD seals and two opens per frame: header and
//!   body).
//! - `codec/raw/SIZE`: ring's ChaCha20-Poly1305 (the implementation PORT uses),
//!   `seal_in_place_separate_tag` then `open_in_place_separate_tag` of SIZE bytes in place in
//!   one reused buffer, counter nonces: the baseline.
//! - `codec/raw-rustcrypto/SIZE`: the same with RustCrypto's `chacha20poly1305`
//!   (`encrypt_inout_detached`, `decrypt_inout_detached`), for the choice of implementation.
//! - `codec/connection/pad{0,256}/SIZE`: the whole core path of one message between two
//!   in-memory `Connection`s (`send`, `poll_transmit`, `handle_input`, `poll_event`), for what
//!   the state machines add on top of the codec.
//!
//! Throughput is payload bytes. After criterion, the same routines run again interleaved (see
//! `benches::compare`) and the bench prints PORT's speed relative to the raw AEAD (raw time over
//! PORT time) against the goals: >= 0.9x at 16 KiB and >= 0.85x at 1400 B, frame, no padding.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput};
use port_core::frame::{FLAG_DATA, FrameHeader, FrameOpener, FrameSealer, HEADER_WIRE_LEN};
use port_core::{Cipher, Config, MAX_FRAME_PAYLOAD, Padding};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use benches::compare::{self, Entry, Plan};
use benches::pair::{Pair, Setups};
use benches::sys;

const SIZES: [usize; 4] = [64, 1400, 16 * 1024, MAX_FRAME_PAYLOAD];
const PADDINGS: [u16; 2] = [0, 256];
const KEY: [u8; 32] = [0x42; 32];

/// One frame sealed and opened again, the output buffer reused.
fn port_round_trip(
    sealer: &mut FrameSealer,
    opener: &mut FrameOpener,
    header: &FrameHeader,
    payload: &[u8],
    wire: &mut BytesMut,
) {
    wire.clear();
    sealer.seal(header, payload, wire).expect("seal");
    let opened = opener
        .open_header(&mut wire[..HEADER_WIRE_LEN])
        .expect("open header");
    // The body is split off and joined again: the split shares the allocation, and joining
    // two adjacent halves copies nothing.
    let mut body = wire.split_off(HEADER_WIRE_LEN);
    opener.open_body(&opened, &mut body).expect("open body");
    black_box(&body[..]);
    wire.unsplit(body);
}

/// Counter nonces, as PORT uses them.
fn counter_nonce(counter: &mut u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&counter.to_le_bytes());
    *counter += 1;
    nonce
}

/// ring's ChaCha20-Poly1305, the implementation inside PORT.
struct Raw {
    key: LessSafeKey,
    counter: u64,
}

impl Raw {
    /// Encrypts and decrypts `buf` in place.
    fn round_trip(&mut self, buf: &mut [u8]) {
        let nonce = counter_nonce(&mut self.counter);
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf)
            .expect("seal");
        self.key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                tag,
                buf,
                0..,
            )
            .expect("open");
        black_box(&buf[..]);
    }
}

/// RustCrypto's ChaCha20-Poly1305.
struct RawRustCrypto {
    cipher: ChaCha20Poly1305,
    counter: u64,
}

impl RawRustCrypto {
    /// Encrypts and decrypts `buf` in place.
    fn round_trip(&mut self, buf: &mut [u8]) {
        let nonce = counter_nonce(&mut self.counter).into();
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, &[], buf.into())
            .expect("encrypt");
        self.cipher
            .decrypt_inout_detached(&nonce, &[], buf.into(), &tag)
            .expect("decrypt");
        black_box(&buf[..]);
    }
}

/// The fixtures of one payload size, shared by criterion and the interleaved comparison.
struct Fixture {
    size: usize,
    payload: Vec<u8>,
    message: Bytes,
}

impl Fixture {
    fn new(size: usize) -> Fixture {
        let payload = vec![0xA5u8; size];
        Fixture {
            size,
            message: Bytes::from(payload.clone()),
            payload,
        }
    }

    fn header(&self, pad: u16) -> FrameHeader {
        FrameHeader {
            flags: FLAG_DATA,
            payload_len: self.size as u16,
            pad_len: pad,
            ..FrameHeader::default()
        }
    }

    /// One raw AEAD round trip per call.
    fn raw(&self) -> impl FnMut() + '_ {
        let mut raw = Raw {
            key: LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &KEY).expect("key")),
            counter: 0,
        };
        let mut buf = self.payload.clone();
        move || raw.round_trip(&mut buf)
    }

    /// One raw RustCrypto AEAD round trip per call.
    fn raw_rustcrypto(&self) -> impl FnMut() + '_ {
        let mut raw = RawRustCrypto {
            cipher: ChaCha20Poly1305::new(&KEY.into()),
            counter: 0,
        };
        let mut buf = self.payload.clone();
        move || raw.round_trip(&mut buf)
    }

    /// One PORT frame round trip per call.
    fn port(&self, cipher: Cipher, pad: u16) -> impl FnMut() + '_ {
        let mut sealer = FrameSealer::new(cipher, &KEY);
        let mut opener = FrameOpener::new(cipher, &KEY, MAX_FRAME_PAYLOAD);
        let mut wire = BytesMut::new();
        let header = self.header(pad);
        move || port_round_trip(&mut sealer, &mut opener, &header, &self.payload, &mut wire)
    }

    /// One message through two connected cores per call; `pad` is the mean padding (uniform
    /// in `0..=2 * pad`, so 256 is the default configuration's).
    fn connection(&self, pad: u16) -> impl FnMut() + '_ {
        let config = Config::builder()
            .max_frame_payload(MAX_FRAME_PAYLOAD)
            .padding(Padding::Uniform { max: 2 * pad })
            .build()
            .expect("config");
        let mut pair = Pair::connected(&Setups::new(config));
        move || {
            black_box(pair.client_to_server(self.message.clone()));
        }
    }
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for size in SIZES {
        let fx = Fixture::new(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("raw", size), |b| b.iter(fx.raw()));
        group.bench_function(BenchmarkId::new("raw-rustcrypto", size), |b| {
            b.iter(fx.raw_rustcrypto())
        });
        for pad in PADDINGS {
            group.bench_function(BenchmarkId::new(format!("port/pad{pad}"), size), |b| {
                b.iter(fx.port(Cipher::ChaCha20Poly1305, pad))
            });
            group.bench_function(BenchmarkId::new(format!("port-aes/pad{pad}"), size), |b| {
                b.iter(fx.port(Cipher::Aes256Gcm, pad))
            });
        }
        for pad in PADDINGS {
            group.bench_function(
                BenchmarkId::new(format!("connection/pad{pad}"), size),
                |b| b.iter(fx.connection(pad)),
            );
        }
    }
    group.finish();
}

/// Interleaved ratios against the raw AEAD, with the goals.
fn summary() {
    println!(
        "\n== codec: PORT relative to raw ChaCha20-Poly1305 (ring, as inside PORT), interleaved in this process"
    );
    println!("   (speed = raw time / PORT time; throughput counts payload bytes)");
    for size in SIZES {
        let fx = Fixture::new(size);
        let mut entries = vec![
            Entry::new(format!("raw {size}"), fx.raw()),
            Entry::new("raw rustcrypto", fx.raw_rustcrypto()),
        ];
        for pad in PADDINGS {
            entries.push(Entry::new(
                format!("port frame pad {pad}"),
                fx.port(Cipher::ChaCha20Poly1305, pad),
            ));
        }
        entries.push(Entry::new(
            "port AES frame pad 0",
            fx.port(Cipher::Aes256Gcm, 0),
        ));
        for pad in PADDINGS {
            entries.push(Entry::new(
                format!("port message pad {pad}"),
                fx.connection(pad),
            ));
        }
        let outcomes = compare::interleaved(Plan::default(), &mut entries);
        compare::print(&format!("{size} B"), &outcomes, Some(size as u64));
        let goal = match size {
            16384 => Some(0.9),
            1400 => Some(0.85),
            _ => None,
        };
        if let Some(goal) = goal {
            let speed = compare::find(&outcomes, "port frame pad 0").speed;
            println!(
                "  -> frame pad 0 at {size} B: {speed:.3}x raw, {}",
                compare::verdict(speed, goal)
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    if !compare::compare_only() {
        codec(&mut criterion);
        criterion.final_summary();
    }
    if !compare::skip_comparisons() {
        println!("\n{}", sys::machine());
        summary();
    }
}
