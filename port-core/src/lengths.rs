//! Shaped lengths ([`Lengths::Shaped`](crate::Lengths::Shaped)): the sizes of the records a
//! connection writes follow a distribution of its own, drawn from its seed when it opens, and
//! nothing about the messages in them.
//!
//! A record is what one [`poll_transmit`](crate::Session::poll_transmit) hands out: one or more
//! whole frames whose sizes add up to a size drawn from the distribution. Messages are split
//! across records and small ones share a record; the last frame of a record is padded to fill
//! it. The distribution is a handful of sizes between [`MIN_RECORD`] and [`MAX_RECORD`], each
//! with its own weight, like obfs4's: every connection has its own, so no size is a
//! fingerprint of the protocol, while within a connection keystrokes and bulk transfers share
//! it. `docs/PROTOCOL.md` §18 gives the draws.

use rand_core::Rng;

use crate::machinery::uniform_int;

/// The smallest record: room for a frame and 20 bytes in it.
pub const MIN_RECORD: usize = 64;
/// The largest record: a TCP segment's payload on a 1500-byte Ethernet path (IPv4, with
/// timestamps), so that an unhurried connection's records are its segments.
pub const MAX_RECORD: usize = 1448;
/// Fewest and most sizes in a distribution.
const SIZES: std::ops::RangeInclusive<u32> = 4..=16;

/// The records of an open connection with shaped lengths: its distribution and the size of
/// the record it writes next.
#[derive(Clone, Debug)]
pub(crate) struct Records {
    sizes: RecordSizes,
    next: usize,
}

impl Records {
    /// Draws the distribution, then the first record's size (one `u32`).
    pub(crate) fn open(rng: &mut impl Rng) -> Records {
        let sizes = RecordSizes::draw(rng);
        let next = sizes.next(rng.next_u32());
        Records { sizes, next }
    }

    /// The size of the next record.
    pub(crate) fn next_size(&self) -> usize {
        self.next
    }

    /// A record went out: draws the next one's size (one `u32`).
    pub(crate) fn advance(&mut self, rng: &mut impl Rng) {
        self.next = self.sizes.next(rng.next_u32());
    }
}

/// A connection's record-size distribution.
#[derive(Clone, Debug)]
pub(crate) struct RecordSizes {
    sizes: Vec<u16>,
    /// Running sums of the sizes' weights; the last is the total.
    cumulative: Vec<u32>,
}

impl RecordSizes {
    /// Draws a distribution. Draws, in order: the number of sizes `n` (one `u32`, 4..=16),
    /// then for each size its value (one `u32`, uniform in `MIN_RECORD..=MAX_RECORD`) and its
    /// weight (one `u32`, uniform in 1..=1000).
    pub(crate) fn draw(rng: &mut impl Rng) -> RecordSizes {
        let n = uniform_int(rng.next_u32(), *SIZES.start(), *SIZES.end());
        let mut sizes = Vec::with_capacity(n as usize);
        let mut cumulative = Vec::with_capacity(n as usize);
        let mut total = 0;
        for _ in 0..n {
            let size = uniform_int(rng.next_u32(), MIN_RECORD as u32, MAX_RECORD as u32);
            total += uniform_int(rng.next_u32(), 1, 1000);
            sizes.push(size as u16);
            cumulative.push(total);
        }
        RecordSizes { sizes, cumulative }
    }

    /// The size of the next record, from one `u32` draw `r`.
    pub(crate) fn next(&self, r: u32) -> usize {
        let total = *self.cumulative.last().expect("at least 4 sizes");
        let point = uniform_int(r, 0, total - 1);
        let at = self.cumulative.partition_point(|&c| c <= point);
        usize::from(self.sizes[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn distributions_differ_per_seed_and_stay_in_range() {
        let a = RecordSizes::draw(&mut ChaCha20Rng::from_seed([1; 32]));
        let b = RecordSizes::draw(&mut ChaCha20Rng::from_seed([2; 32]));
        assert_ne!(a.sizes, b.sizes);
        for d in [&a, &b] {
            assert!(SIZES.contains(&(d.sizes.len() as u32)));
            assert!(
                d.sizes
                    .iter()
                    .all(|&s| (MIN_RECORD..=MAX_RECORD).contains(&usize::from(s)))
            );
        }
    }

    #[test]
    fn draws_follow_the_weights() {
        let d = RecordSizes::draw(&mut ChaCha20Rng::from_seed([3; 32]));
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let draws = 200_000;
        let mut counts = vec![0u32; d.sizes.len()];
        for _ in 0..draws {
            let size = d.next(rng.next_u32());
            let i = d
                .sizes
                .iter()
                .position(|&s| usize::from(s) == size)
                .unwrap();
            counts[i] += 1;
        }
        let total = f64::from(*d.cumulative.last().unwrap());
        let mut previous = 0;
        for (i, &c) in d.cumulative.iter().enumerate() {
            let expected = f64::from(c - previous) / total;
            previous = c;
            let got = f64::from(counts[i]) / f64::from(draws);
            // Several sizes may coincide; compare their joint share only when unique.
            if d.sizes.iter().filter(|&&s| s == d.sizes[i]).count() == 1 {
                assert!(
                    (got - expected).abs() < 0.01,
                    "size {i}: {got} vs {expected}"
                );
            }
        }
    }
}
