//! Target `frame_decode`: the frame codec on its own.
//!
//! - `FrameHeader::decode` on any 12 bytes and any payload limit never panics, agrees with a
//!   reference validator written from `docs/PROTOCOL.md` §7.1–7.2, and what it accepts encodes
//!   back to the same 12 bytes; `decode(encode(h)) == h` for every valid header.
//! - A stream of frames sealed with a fixed key opens back with a fresh opener: each valid
//!   header and payload comes back equal, an invalid header fails with exactly the error
//!   `decode` gives, and a flipped bit fails authentication in the frame that holds it (the
//!   frames before it still open). A seal refused for a length mismatch writes nothing and
//!   leaves the stream intact.
//! - Arbitrary bytes fed to `open_header` / `open_body` (under an arbitrary key, any lengths)
//!   never panic; wrong lengths are refused as malformed.

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use port_core::frame::{
    BODY_TAG_LEN, FLAG_DATA, FLAG_MORE, FLAG_TERM, FrameHeader, FrameOpener, FrameSealer,
    HEADER_LEN, HEADER_WIRE_LEN,
};
use port_core::{Cipher, MAX_FRAME_PAYLOAD, MAX_PADDING, ProtocolError};

use crate::encode::Encoder;

/// The key frames are sealed and opened with.
pub const KEY: [u8; 32] = [0x42; 32];
/// Most frames sealed per input.
const MAX_FRAMES: usize = 16;

/// One frame to seal.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Flags, used as they are (invalid combinations included).
    pub flags: u8,
    /// Padding length (see `pad_of`; above 8192 included).
    pub pad_len: u16,
    /// Ping id.
    pub ping_id: u16,
    /// Pong id.
    pub pong_id: u16,
    /// First bytes of the payload.
    pub payload: Vec<u8>,
    /// Bytes appended to the payload (a pattern; see `payload_of`).
    pub extra: u16,
    /// Try a seal whose header length disagrees with the payload first (it must be refused).
    pub mismatch_first: bool,
}

/// The structured part of a `frame_decode` input; the rest of the input is `garbage`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct FrameInput {
    /// A header plaintext to decode.
    pub raw: [u8; HEADER_LEN],
    /// The payload limit to decode it with.
    pub limit: u16,
    /// The payload limit of the opener of the sealed stream.
    pub opener_limit: u16,
    /// Frames to seal in order.
    pub frames: Vec<FrameSpec>,
    /// Flip: stream offset (modulo its length) and the byte to xor there.
    pub flip: Option<(u32, u8)>,
    /// The key byte (repeated) of the opener that reads `garbage`.
    pub garbage_key: u8,
    /// The payload limit of that opener.
    pub garbage_limit: u16,
    /// A header to try `open_body` with on the tail of `garbage`.
    pub body_header: (u8, u16, u16),
}

impl FrameInput {
    /// Writes the bytes from which [`run`] decodes `self` followed by `garbage`.
    pub fn encode(&self, garbage: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new();
        e.raw(&self.raw).u16(self.limit).u16(self.opener_limit);
        e.vec(&self.frames, |e, f| {
            e.u8(f.flags)
                .u16(f.pad_len)
                .u16(f.ping_id)
                .u16(f.pong_id)
                .byte_vec(&f.payload)
                .u16(f.extra)
                .bool(f.mismatch_first);
        });
        e.option(self.flip.as_ref(), |e, &(at, x)| {
            e.u32(at).u8(x);
        });
        e.u8(self.garbage_key).u16(self.garbage_limit);
        let (flags, payload_len, pad_len) = self.body_header;
        e.u8(flags).u16(payload_len).u16(pad_len);
        e.raw(garbage);
        e.finish()
    }
}

/// Decodes an input: the structured part, then the rest of the bytes.
pub fn decode(data: &[u8]) -> Option<(FrameInput, &[u8])> {
    let mut u = Unstructured::new(data);
    let input = FrameInput::arbitrary(&mut u).ok()?;
    Some((input, u.take_rest()))
}

/// The validity rules of `docs/PROTOCOL.md` §7.2, written independently of `port-core`.
pub fn reference_valid(raw: &[u8; HEADER_LEN], max_payload: usize) -> bool {
    let flags = raw[0];
    let payload_len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
    let pad_len = usize::from(u16::from_be_bytes([raw[4], raw[5]]));
    let data = flags & 0x01 != 0;
    let more = flags & 0x02 != 0;
    let term = flags & 0x10 != 0;
    raw[1] == 0
        && raw[10] == 0
        && raw[11] == 0
        && flags & !0x1f == 0
        && (data || (payload_len == 0 && !more))
        && !(term && data)
        && payload_len <= max_payload
        && pad_len <= MAX_PADDING
}

/// The target.
pub fn run(data: &[u8]) {
    let Some((input, garbage)) = decode(data) else {
        return;
    };
    check_decode(&input.raw, usize::from(input.limit));
    for spec in &input.frames {
        let h = header_of(spec, payload_of(spec).len());
        check_decode(&h.encode(), usize::from(input.limit));
    }
    check_sealed_stream(&input);
    check_garbage(&input, garbage);
}

fn check_decode(raw: &[u8; HEADER_LEN], limit: usize) {
    let decoded = FrameHeader::decode(raw, limit);
    assert_eq!(
        decoded.is_ok(),
        reference_valid(raw, limit),
        "decode({raw:02x?}, {limit}) = {decoded:?} disagrees with the specification"
    );
    match decoded {
        Ok(h) => {
            assert_eq!(
                &h.encode(),
                raw,
                "an accepted header re-encodes differently"
            );
            assert_eq!(FrameHeader::decode(&h.encode(), limit), Ok(h));
            assert_eq!(
                h.body_wire_len(),
                usize::from(h.payload_len) + usize::from(h.pad_len) + BODY_TAG_LEN
            );
        }
        Err(e) => assert!(
            matches!(
                e,
                ProtocolError::Malformed(_)
                    | ProtocolError::FrameTooLarge { .. }
                    | ProtocolError::PaddingTooLarge { .. }
            ),
            "decode error of an unexpected kind: {e:?}"
        ),
    }
    // Anything a sender could build from the decoded fields must decode to the same fields.
    let h = FrameHeader {
        flags: raw[0],
        payload_len: u16::from_be_bytes([raw[2], raw[3]]),
        pad_len: u16::from_be_bytes([raw[4], raw[5]]),
        ping_id: u16::from_be_bytes([raw[6], raw[7]]),
        pong_id: u16::from_be_bytes([raw[8], raw[9]]),
    };
    if let Ok(back) = FrameHeader::decode(&h.encode(), limit) {
        assert_eq!(back, h, "decode(encode(h)) != h");
    }
}

/// The payload of a frame: `payload`, then `extra % 4096` pattern bytes, or up to the largest
/// payload (65535 bytes) when `extra` is `u16::MAX`. Sealing costs time in proportion to the
/// frame, so most frames stay small; the extremes stay reachable.
fn payload_of(spec: &FrameSpec) -> Vec<u8> {
    let mut payload = spec.payload.clone();
    payload.truncate(MAX_FRAME_PAYLOAD);
    let extra = match spec.extra {
        u16::MAX => usize::MAX,
        n => usize::from(n % 4096),
    };
    let extra = extra.min(MAX_FRAME_PAYLOAD - payload.len());
    payload.extend((0..extra).map(|i| (i % 251) as u8));
    payload
}

/// The padding length of a frame: `pad_len` up to 8200 (the limit 8192 and a few beyond),
/// `u16::MAX` as it is, anything else modulo 8201.
fn pad_of(spec: &FrameSpec) -> u16 {
    match spec.pad_len {
        n @ (0..=8200 | u16::MAX) => n,
        n => n % 8201,
    }
}

fn header_of(spec: &FrameSpec, payload_len: usize) -> FrameHeader {
    FrameHeader {
        flags: spec.flags,
        payload_len: payload_len as u16,
        pad_len: pad_of(spec),
        ping_id: spec.ping_id,
        pong_id: spec.pong_id,
    }
}

fn check_sealed_stream(input: &FrameInput) {
    let limit = usize::from(input.opener_limit);
    let mut sealer = FrameSealer::new(Cipher::default(), &KEY);
    let mut wire = BytesMut::new();
    // (header, payload, header start, body start, end) of each frame.
    let mut frames = Vec::new();
    for spec in input.frames.iter().take(MAX_FRAMES) {
        let payload = payload_of(spec);
        let header = header_of(spec, payload.len());
        if spec.mismatch_first {
            let wrong = FrameHeader {
                payload_len: header.payload_len.wrapping_add(1),
                ..header
            };
            let before = wire.len();
            assert!(sealer.seal(&wrong, &payload, &mut wire).is_err());
            assert_eq!(wire.len(), before, "a refused seal wrote bytes");
        }
        let start = wire.len();
        sealer
            .seal(&header, &payload, &mut wire)
            .expect("sealing a frame");
        let body = start + HEADER_WIRE_LEN;
        assert_eq!(wire.len(), body + header.body_wire_len(), "sealed length");
        frames.push((header, payload, start, body, wire.len()));
    }
    let flip = match input.flip {
        Some((at, x)) if x != 0 && !wire.is_empty() => {
            let at = at as usize % wire.len();
            wire[at] ^= x;
            Some(at)
        }
        _ => None,
    };
    let mut opener = FrameOpener::new(Cipher::default(), &KEY, limit);
    for (header, payload, start, body, end) in frames {
        let in_header = flip.is_some_and(|at| (start..body).contains(&at));
        let in_body = flip.is_some_and(|at| (body..end).contains(&at));
        let mut hdr = wire[start..body].to_vec();
        let opened = opener.open_header(&mut hdr);
        if in_header {
            assert_eq!(opened, Err(ProtocolError::Authentication), "flipped header");
            return;
        }
        let expected = FrameHeader::decode(&header.encode(), limit);
        assert_eq!(
            opened, expected,
            "opened header differs from the sealed one"
        );
        if expected.is_err() {
            return;
        }
        let mut b = BytesMut::from(&wire[body..end]);
        let opened = opener.open_body(&header, &mut b);
        if in_body {
            assert_eq!(opened, Err(ProtocolError::Authentication), "flipped body");
            return;
        }
        assert_eq!(opened, Ok(()), "sealed body does not open");
        assert_eq!(&b[..], &payload[..], "opened payload differs");
    }
}

fn check_garbage(input: &FrameInput, mut garbage: &[u8]) {
    let key = [input.garbage_key; 32];
    let mut opener = FrameOpener::new(Cipher::default(), &key, usize::from(input.garbage_limit));
    let (flags, payload_len, pad_len) = input.body_header;
    let arbitrary_header = FrameHeader {
        flags,
        payload_len,
        pad_len,
        ping_id: 0,
        pong_id: 0,
    };
    // Whatever the header says, open_body checks the length first.
    let mut body = BytesMut::from(garbage);
    let opened = opener.open_body(&arbitrary_header, &mut body);
    if garbage.len() != arbitrary_header.body_wire_len() {
        assert_eq!(opened, Err(ProtocolError::Malformed("body length")));
    }
    let mut opener = FrameOpener::new(Cipher::default(), &key, usize::from(input.garbage_limit));
    while !garbage.is_empty() {
        let n = garbage.len().min(HEADER_WIRE_LEN);
        let mut hdr = garbage[..n].to_vec();
        garbage = &garbage[n..];
        let header = match opener.open_header(&mut hdr) {
            Ok(h) => h,
            Err(e) => {
                if n != HEADER_WIRE_LEN {
                    assert_eq!(e, ProtocolError::Malformed("header length"));
                }
                return;
            }
        };
        // A header opened: the bytes were a genuine frame under this key (the corpus holds
        // some). It must be valid, and its body must be read at exactly its length.
        assert!(reference_valid(
            &header.encode(),
            usize::from(input.garbage_limit)
        ));
        let n = garbage.len().min(header.body_wire_len());
        let mut body = BytesMut::from(&garbage[..n]);
        garbage = &garbage[n..];
        match opener.open_body(&header, &mut body) {
            Ok(()) => assert_eq!(body.len(), usize::from(header.payload_len)),
            Err(e) => {
                if n != header.body_wire_len() {
                    assert_eq!(e, ProtocolError::Malformed("body length"));
                }
                return;
            }
        }
    }
}

/// Flags a sender may combine (for the corpus).
pub const VALID_FLAGS: [u8; 9] = [
    0,
    FLAG_DATA,
    FLAG_DATA | FLAG_MORE,
    0x04,
    0x08,
    0x04 | 0x08,
    FLAG_TERM,
    FLAG_TERM | 0x04 | 0x08,
    FLAG_DATA | FLAG_MORE | 0x04 | 0x08,
];
