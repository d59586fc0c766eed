//! Exact-length reads: a message format with fixed headers and declared lengths is read one
//! unit at a time, whatever the chunking of the TCP stream (a byte at a time, many messages
//! at once, a split anywhere).
//!
//! Units come out in one of two ways. [`UnitReader::fill`] splits each unit off as its own
//! buffer. The in-place mode ([`UnitReader::fill_in_place`] and the methods after it) leaves
//! the unit in the reader, where it is opened in place; the part worth keeping (a frame's
//! payload) is then *held* at the front, and the next unit is read right behind it. The
//! fragments of a long message so end up contiguous in one buffer as they are opened, and the
//! whole message is split off at the end with no copy.

use bytes::BytesMut;

/// Collects bytes until a unit of the requested length is complete.
#[derive(Debug, Default)]
pub(crate) struct UnitReader {
    /// `held` bytes kept from earlier units, then the incomplete (or complete) unit.
    buf: BytesMut,
    held: usize,
}

impl UnitReader {
    /// Moves bytes from the front of `data` toward a unit of `need` bytes and returns the unit
    /// once it is complete. Takes no more than the unit needs, so the rest of `data` stays for
    /// the next unit (whose length may depend on this one).
    pub(crate) fn fill(&mut self, data: &mut &[u8], need: usize) -> Option<BytesMut> {
        debug_assert_eq!(self.held, 0, "split-off units while bytes are held");
        if self.buf.is_empty() {
            // One allocation per unit, not one per chunk of a slowly arriving unit.
            self.buf.reserve(need);
        }
        let take = need.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        (self.buf.len() >= need).then(|| self.buf.split_to(need))
    }

    /// In-place mode: moves bytes from the front of `data` toward a unit of `need` bytes,
    /// placed right behind the held bytes; true once it is complete (see
    /// [`unit_mut`](Self::unit_mut)). Takes no more than the unit needs.
    pub(crate) fn fill_in_place(&mut self, data: &mut &[u8], need: usize) -> bool {
        if self.buf.len() == self.held && self.buf.capacity() - self.held < need {
            // At least doubling while bytes are held: the held bytes move at most a few times
            // however many units a long message takes, never once per unit.
            self.buf.reserve(need.max(self.held));
        }
        let take = (self.held + need)
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        self.buf.len() >= self.held + need
    }

    /// In-place mode: the unit behind the held bytes.
    pub(crate) fn unit_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.held..]
    }

    /// In-place mode: keeps the first `n` bytes of the unit, behind the bytes already held,
    /// and lets the rest of it go.
    pub(crate) fn hold(&mut self, n: usize) {
        self.held += n.min(self.buf.len() - self.held);
        self.buf.truncate(self.held);
    }

    /// Bytes held from earlier units.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Splits the held bytes off (no copy); the reader keeps the rest of the allocation.
    pub(crate) fn take_held(&mut self) -> BytesMut {
        let held = self.buf.split_to(self.held);
        self.held = 0;
        held
    }

    /// Makes room for `additional` more bytes behind what the reader holds, so that a long
    /// message expected to arrive is read into one allocation.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Bytes of the incomplete unit read so far (held bytes are not counted).
    pub(crate) fn unit_len(&self) -> usize {
        self.buf.len() - self.held
    }

    /// True when the reader holds nothing: no incomplete unit and no held bytes.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Heap bytes reserved, used or not.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets the incomplete unit and the held bytes.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.held = 0;
    }

    /// Gives the allocation back (callers check [`is_empty`](Self::is_empty) first: an idle
    /// connection should pin no buffer).
    pub(crate) fn release(&mut self) {
        self.buf = BytesMut::new();
        self.held = 0;
    }
}

/// Drops up to `*remaining` bytes from the front of `data` (padding nobody needs to hold) and
/// counts them off.
pub(crate) fn skip(data: &mut &[u8], remaining: &mut usize) {
    let n = (*remaining).min(data.len());
    *data = &data[n..];
    *remaining -= n;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_out_whole_whatever_the_chunking() {
        let stream: Vec<u8> = (0..=255u8).collect();
        for chunk in [1, 2, 3, 7, 64, 256] {
            let mut reader = UnitReader::default();
            let mut units = Vec::new();
            let mut lens = [5usize, 11, 40, 200].into_iter().cycle();
            let mut need = lens.next().unwrap();
            for piece in stream.chunks(chunk) {
                let mut data = piece;
                while !data.is_empty() {
                    if let Some(unit) = reader.fill(&mut data, need) {
                        units.push(unit.to_vec());
                        need = lens.next().unwrap();
                    }
                }
            }
            assert_eq!(units[0], stream[..5]);
            assert_eq!(units[1], stream[5..16]);
            assert_eq!(units[2], stream[16..56]);
            assert_eq!(units[3], stream[56..256]);
            assert_eq!(reader.unit_len(), 0, "chunk {chunk}");
        }
    }

    /// Frames of the form [4-byte header][payload, 3 spent bytes], read in place: the payloads
    /// come out joined, whatever the chunking, with the spent bytes overwritten.
    #[test]
    fn held_payloads_join_in_place_whatever_the_chunking() {
        let payloads: [&[u8]; 4] = [b"alpha-", b"beta-", b"", b"gamma"];
        let mut stream = Vec::new();
        for p in payloads {
            stream.extend_from_slice(&[0xEE; 4]);
            stream.extend_from_slice(p);
            stream.extend_from_slice(&[0xFF; 3]);
        }
        for chunk in [1, 2, 5, 9, 64] {
            let mut reader = UnitReader::default();
            let mut frames = payloads.iter();
            let mut body = None;
            for piece in stream.chunks(chunk) {
                let mut data = piece;
                while !data.is_empty() {
                    let need = body.map_or(4, |len: usize| len + 3);
                    if !reader.fill_in_place(&mut data, need) {
                        continue;
                    }
                    match body.take() {
                        None => {
                            assert_eq!(reader.unit_mut(), &[0xEE; 4]);
                            reader.hold(0);
                            body = Some(frames.next().unwrap().len());
                        }
                        Some(len) => {
                            assert_eq!(&reader.unit_mut()[len..], &[0xFF; 3]);
                            reader.hold(len);
                        }
                    }
                    assert_eq!(
                        reader.unit_len(),
                        0,
                        "a finished unit is not counted as buffered"
                    );
                }
            }
            assert_eq!(reader.held(), 16, "chunk {chunk}");
            assert_eq!(
                &reader.take_held()[..],
                b"alpha-beta-gamma",
                "chunk {chunk}"
            );
            assert!(reader.is_empty() && reader.held() == 0);
        }
    }

    /// With room reserved up front, a long message's fragments never move: the allocation
    /// the first one went into is the one the whole message is split off.
    #[test]
    fn reserved_room_keeps_held_fragments_in_place() {
        let mut reader = UnitReader::default();
        reader.reserve(10 * 1000 + 16);
        let start = reader.buf.as_ptr();
        let fragment = vec![7u8; 1000 + 16];
        for _ in 0..10 {
            let mut data = &fragment[..];
            assert!(reader.fill_in_place(&mut data, fragment.len()));
            reader.hold(1000);
        }
        let message = reader.take_held();
        assert_eq!(message.len(), 10_000);
        assert_eq!(message.as_ptr(), start, "the fragments were copied");
        assert!(message.iter().all(|&b| b == 7));
    }

    /// Without a reservation the held bytes move when the buffer grows, but only a few times:
    /// growth at least doubles, so they are not copied once per fragment.
    #[test]
    fn held_bytes_move_only_a_logarithmic_number_of_times() {
        let mut reader = UnitReader::default();
        // An earlier message still held by the application shares the reader's allocation,
        // the usual case on a busy connection.
        let mut data: &[u8] = b"earlier";
        assert!(reader.fill_in_place(&mut data, 7));
        reader.hold(7);
        let _earlier = reader.take_held();
        let fragment = vec![1u8; 256 + 16];
        let mut moves = 0;
        let mut last = None;
        for _ in 0..256 {
            let mut data = &fragment[..];
            assert!(reader.fill_in_place(&mut data, fragment.len()));
            let now = reader.buf.as_ptr();
            if last.is_some_and(|p| p != now) {
                moves += 1;
            }
            last = Some(now);
            reader.hold(256);
        }
        assert_eq!(reader.held(), 256 * 256);
        assert!(
            moves <= 10,
            "held bytes moved {moves} times for 256 fragments"
        );
    }

    #[test]
    fn clearing_forgets_held_bytes() {
        let mut reader = UnitReader::default();
        let mut data: &[u8] = b"abcdef";
        assert!(reader.fill_in_place(&mut data, 6));
        reader.hold(4);
        assert!(!reader.is_empty());
        reader.clear();
        assert!(reader.is_empty() && reader.held() == 0 && reader.unit_len() == 0);
    }

    #[test]
    fn skip_stops_at_the_count() {
        let mut data: &[u8] = &[1, 2, 3, 4, 5];
        let mut remaining = 3;
        skip(&mut data, &mut remaining);
        assert_eq!((data, remaining), (&[4u8, 5][..], 0));
        let mut remaining = 9;
        skip(&mut data, &mut remaining);
        assert_eq!((data.len(), remaining), (0, 7));
    }
}
