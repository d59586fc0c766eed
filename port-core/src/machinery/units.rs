//! Exact-length reads: a message format with fixed headers and declared lengths is read one
//! unit at a time, whatever the chunking of the TCP stream (a byte at a time, many messages
//! at once, a split anywhere).

use bytes::BytesMut;

/// Collects bytes until a unit of the requested length is complete.
#[derive(Debug, Default)]
pub(crate) struct UnitReader {
    buf: BytesMut,
}

impl UnitReader {
    /// Moves bytes from the front of `data` toward a unit of `need` bytes and returns the unit
    /// once it is complete. Takes no more than the unit needs, so the rest of `data` stays for
    /// the next unit (whose length may depend on this one).
    pub(crate) fn fill(&mut self, data: &mut &[u8], need: usize) -> Option<BytesMut> {
        if self.buf.is_empty() {
            // One allocation per unit, not one per chunk of a slowly arriving unit.
            self.buf.reserve(need);
        }
        let take = need.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        (self.buf.len() >= need).then(|| self.buf.split_to(need))
    }

    /// Bytes of the incomplete unit held so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no incomplete unit is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Heap bytes reserved, used or not.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets the incomplete unit.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Gives the allocation back (callers check [`is_empty`](Self::is_empty) first: an idle
    /// connection should pin no buffer).
    pub(crate) fn release(&mut self) {
        self.buf = BytesMut::new();
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
            assert_eq!(reader.len(), 0, "chunk {chunk}");
        }
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
