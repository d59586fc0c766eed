//! The PORT/1 frame: the unit of every byte exchanged after the handshake.
//!
//! On the wire a frame is `AEAD(header) ‖ AEAD(payload ‖ padding)`, two seals under the
//! direction's key with consecutive counter nonces, so a header and a body cannot be separated,
//! swapped or replayed. [`FrameSealer`] and [`FrameOpener`] expose exactly that codec, for tools,
//! fuzzing and benchmarks; a [`Connection`](crate::Connection) uses the same code.

use bytes::{BufMut, BytesMut};

use crate::cipher::Cipher;
use crate::config::MAX_PADDING;
use crate::crypto::{Aead, TAG_LEN};
use crate::error::ProtocolError;

/// Plaintext length of a frame header.
pub const HEADER_LEN: usize = 12;
/// On-wire length of a frame header (plaintext plus tag).
pub const HEADER_WIRE_LEN: usize = HEADER_LEN + TAG_LEN;
/// On-wire overhead of the body seal.
pub const BODY_TAG_LEN: usize = TAG_LEN;
/// Wire bytes a frame adds besides its payload and padding: the sealed header and the body's
/// tag.
pub const FRAME_OVERHEAD: usize = HEADER_WIRE_LEN + BODY_TAG_LEN;

/// The frame carries (part of) an application message.
pub const FLAG_DATA: u8 = 0x01;
/// The message continues in the next frame (only with [`FLAG_DATA`]).
pub const FLAG_MORE: u8 = 0x02;
/// The frame carries a keepalive request; `ping_id` names it.
pub const FLAG_PING: u8 = 0x04;
/// The frame answers a keepalive request; `pong_id` names which.
pub const FLAG_PONG: u8 = 0x08;
/// The sender will send nothing after this frame.
pub const FLAG_TERM: u8 = 0x10;
const KNOWN_FLAGS: u8 = FLAG_DATA | FLAG_MORE | FLAG_PING | FLAG_PONG | FLAG_TERM;

/// A decoded frame header. All integers are big-endian on the wire:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | flags |
/// | 1 | 1 | reserved, zero |
/// | 2 | 2 | payload length |
/// | 4 | 2 | padding length |
/// | 6 | 2 | ping id |
/// | 8 | 2 | pong id |
/// | 10 | 2 | reserved, zero |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bit set of `FLAG_*` values.
    pub flags: u8,
    /// Bytes of application payload in the body.
    pub payload_len: u16,
    /// Bytes of padding after the payload in the body.
    pub pad_len: u16,
    /// Keepalive request id (meaningful with [`FLAG_PING`]).
    pub ping_id: u16,
    /// Keepalive request being answered (meaningful with [`FLAG_PONG`]).
    pub pong_id: u16,
}

impl FrameHeader {
    /// Serializes the header's plaintext.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.flags;
        out[2..4].copy_from_slice(&self.payload_len.to_be_bytes());
        out[4..6].copy_from_slice(&self.pad_len.to_be_bytes());
        out[6..8].copy_from_slice(&self.ping_id.to_be_bytes());
        out[8..10].copy_from_slice(&self.pong_id.to_be_bytes());
        out
    }

    /// Parses and validates a header's plaintext against the receiver's payload limit.
    pub fn decode(raw: &[u8; HEADER_LEN], max_payload: usize) -> Result<Self, ProtocolError> {
        let be = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
        let header = FrameHeader {
            flags: raw[0],
            payload_len: be(2),
            pad_len: be(4),
            ping_id: be(6),
            pong_id: be(8),
        };
        if raw[1] != 0 || raw[10] != 0 || raw[11] != 0 {
            return Err(ProtocolError::Malformed("reserved header bits set"));
        }
        header.validate(max_payload)?;
        Ok(header)
    }

    fn validate(&self, max_payload: usize) -> Result<(), ProtocolError> {
        let f = self.flags;
        if f & !KNOWN_FLAGS != 0 {
            return Err(ProtocolError::Malformed("unknown frame flags"));
        }
        if f & FLAG_DATA == 0 && (self.payload_len != 0 || f & FLAG_MORE != 0) {
            return Err(ProtocolError::Malformed("payload or MORE without DATA"));
        }
        if f & FLAG_TERM != 0 && f & FLAG_DATA != 0 {
            return Err(ProtocolError::Malformed("TERM combined with DATA"));
        }
        if usize::from(self.payload_len) > max_payload {
            return Err(ProtocolError::FrameTooLarge {
                len: self.payload_len.into(),
                max: max_payload,
            });
        }
        if usize::from(self.pad_len) > MAX_PADDING {
            return Err(ProtocolError::PaddingTooLarge {
                len: self.pad_len.into(),
            });
        }
        Ok(())
    }

    /// On-wire length of the body that follows this header.
    pub fn body_wire_len(&self) -> usize {
        usize::from(self.payload_len) + usize::from(self.pad_len) + BODY_TAG_LEN
    }

    /// True if every bit of `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// Seals frames for one direction (frame `n` uses nonces `2n` and `2n + 1`).
pub struct FrameSealer {
    aead: Aead,
}

impl FrameSealer {
    /// A sealer for a direction key under `cipher`, starting at nonce 0.
    pub fn new(cipher: Cipher, key: &[u8; 32]) -> Self {
        FrameSealer {
            aead: Aead::new(cipher, key),
        }
    }

    /// Appends one sealed frame to `out`. The padding is zeros before encryption: it is inside
    /// the AEAD, so its ciphertext is as random as the rest and it is authenticated.
    ///
    /// `header.payload_len` must equal `payload.len()`; on mismatch nothing is written.
    pub fn seal(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        if usize::from(header.payload_len) != payload.len() {
            return Err(ProtocolError::Malformed("payload length mismatch"));
        }
        let start = out.len();
        out.reserve(HEADER_WIRE_LEN + header.body_wire_len());
        out.put_slice(&header.encode());
        out.put_bytes(0, TAG_LEN);
        let sealed = self.aead.seal_in_place(&[], &mut out[start..]);
        if sealed.is_err() {
            out.truncate(start);
            return Err(ProtocolError::NonceExhausted);
        }
        let body = out.len();
        out.put_slice(payload);
        out.put_bytes(0, usize::from(header.pad_len) + TAG_LEN);
        if self.aead.seal_in_place(&[], &mut out[body..]).is_err() {
            out.truncate(start);
            return Err(ProtocolError::NonceExhausted);
        }
        Ok(())
    }
}

/// Opens frames for one direction, in order.
pub struct FrameOpener {
    aead: Aead,
    max_payload: usize,
}

impl FrameOpener {
    /// An opener for a direction key under `cipher` that accepts payloads up to `max_payload`
    /// bytes.
    pub fn new(cipher: Cipher, key: &[u8; 32], max_payload: usize) -> Self {
        FrameOpener {
            aead: Aead::new(cipher, key),
            max_payload,
        }
    }

    /// Authenticates and decodes a header from its `HEADER_WIRE_LEN` wire bytes (modified in place).
    pub fn open_header(&mut self, wire: &mut [u8]) -> Result<FrameHeader, ProtocolError> {
        if wire.len() != HEADER_WIRE_LEN {
            return Err(ProtocolError::Malformed("header length"));
        }
        self.aead
            .open_in_place(&[], wire)
            .map_err(|_| ProtocolError::Authentication)?;
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(&wire[..HEADER_LEN]);
        FrameHeader::decode(&raw, self.max_payload)
    }

    /// Authenticates and decrypts a body in place; on success `body` is truncated to the payload.
    pub fn open_body(
        &mut self,
        header: &FrameHeader,
        body: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let payload = self.open_body_slice(header, body)?;
        body.truncate(payload);
        Ok(())
    }

    /// Authenticates and decrypts a body in place, wherever it lies; on success the payload is
    /// the first `Ok(n)` bytes of `body` (the padding and tag after it are spent).
    pub fn open_body_slice(
        &mut self,
        header: &FrameHeader,
        body: &mut [u8],
    ) -> Result<usize, ProtocolError> {
        if body.len() != header.body_wire_len() {
            return Err(ProtocolError::Malformed("body length"));
        }
        self.aead
            .open_in_place(&[], body)
            .map_err(|_| ProtocolError::Authentication)?;
        Ok(header.payload_len.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, payload_len: u16, pad_len: u16) -> FrameHeader {
        FrameHeader {
            flags,
            payload_len,
            pad_len,
            ping_id: 7,
            pong_id: 9,
        }
    }

    #[test]
    fn header_encode_decode_round_trip() {
        let h = header(FLAG_DATA | FLAG_MORE | FLAG_PING | FLAG_PONG, 300, 17);
        assert_eq!(FrameHeader::decode(&h.encode(), 1000), Ok(h));
    }

    #[test]
    fn header_validation_rejects_each_bad_form() {
        let bad = |h: FrameHeader| FrameHeader::decode(&h.encode(), 100).unwrap_err();
        assert!(matches!(
            bad(header(0x80, 0, 0)),
            ProtocolError::Malformed(_)
        ));
        assert!(matches!(bad(header(0, 5, 0)), ProtocolError::Malformed(_)));
        assert!(matches!(
            bad(header(FLAG_MORE, 0, 0)),
            ProtocolError::Malformed(_)
        ));
        assert!(matches!(
            bad(header(FLAG_DATA | FLAG_TERM, 0, 0)),
            ProtocolError::Malformed(_)
        ));
        assert_eq!(
            bad(header(FLAG_DATA, 101, 0)),
            ProtocolError::FrameTooLarge { len: 101, max: 100 }
        );
        assert!(matches!(
            bad(header(FLAG_DATA, 0, u16::MAX)),
            ProtocolError::PaddingTooLarge { .. }
        ));
        let mut raw = header(FLAG_DATA, 1, 0).encode();
        raw[11] = 1;
        assert!(matches!(
            FrameHeader::decode(&raw, 100),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn sealed_frames_open_in_order_and_fail_out_of_order() {
        for cipher in Cipher::ALL {
            frames_round_trip_in_order(cipher);
        }
    }

    fn frames_round_trip_in_order(cipher: Cipher) {
        let key = [3u8; 32];
        let mut sealer = FrameSealer::new(cipher, &key);
        let mut wire = BytesMut::new();
        for (i, msg) in [&b"first"[..], b"", b"third message"].iter().enumerate() {
            let h = header(FLAG_DATA, msg.len() as u16, i as u16 * 5);
            sealer.seal(&h, msg, &mut wire).unwrap();
        }
        let mut opener = FrameOpener::new(cipher, &key, 1 << 16);
        for msg in [&b"first"[..], b"", b"third message"] {
            let mut hdr = wire.split_to(HEADER_WIRE_LEN);
            let h = opener.open_header(&mut hdr).unwrap();
            let mut body = wire.split_to(h.body_wire_len());
            opener.open_body(&h, &mut body).unwrap();
            assert_eq!(&body[..], msg);
        }
        assert!(wire.is_empty());

        // A second copy of the first frame fed to a fresh opener after one frame fails (replay).
        let mut again = BytesMut::new();
        let mut s = FrameSealer::new(cipher, &key);
        s.seal(&header(FLAG_DATA, 1, 0), b"x", &mut again).unwrap();
        let mut o = FrameOpener::new(cipher, &key, 100);
        let mut first = again.clone();
        let h = o.open_header(&mut first[..HEADER_WIRE_LEN]).unwrap();
        let mut body = BytesMut::from(&first[HEADER_WIRE_LEN..]);
        o.open_body(&h, &mut body).unwrap();
        assert_eq!(
            o.open_header(&mut again[..HEADER_WIRE_LEN]),
            Err(ProtocolError::Authentication)
        );
    }

    #[test]
    fn seal_refuses_length_mismatch_without_writing() {
        let mut out = BytesMut::new();
        let err = FrameSealer::new(Cipher::default(), &[0; 32]).seal(
            &header(FLAG_DATA, 3, 0),
            b"ab",
            &mut out,
        );
        assert!(err.is_err());
        assert!(out.is_empty());
    }
}
