//! Seeded randomness: a connection draws everything (keys, nonces, padding, deadlines) from
//! one 32-byte seed, so tests with fixed seeds get byte-identical transcripts.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// The generator a connection draws from.
pub(crate) fn seeded(seed: [u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(seed)
}

/// A duration drawn uniformly from `[lo, hi]` (one `u64` draw, multiply-shift).
pub(crate) fn uniform(rng: &mut ChaCha20Rng, lo: Duration, hi: Duration) -> Duration {
    let span = hi.saturating_sub(lo).as_nanos();
    let span = u64::try_from(span).unwrap_or(u64::MAX);
    let offset = ((u128::from(rng.next_u64()) * (u128::from(span) + 1)) >> 64) as u64;
    lo + Duration::from_nanos(offset)
}

/// Maps one uniformly random `u32` onto `lo..=hi` (Lemire's multiply-shift: the 2^32 values of
/// `r` fall into runs whose lengths differ by at most one, a bias below 2^-16 for spans up to
/// 2^16; unlike rejection it takes exactly one draw, which keeps draw orders fixed).
pub(crate) fn uniform_int(r: u32, lo: u32, hi: u32) -> u32 {
    let span = u64::from(hi - lo) + 1;
    lo + ((u64::from(r) * span) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_and_is_reproducible() {
        let (lo, hi) = (Duration::from_millis(10), Duration::from_millis(20));
        let mut a = seeded([3; 32]);
        let mut b = seeded([3; 32]);
        for _ in 0..1000 {
            let d = uniform(&mut a, lo, hi);
            assert!(lo <= d && d <= hi, "{d:?}");
            assert_eq!(d, uniform(&mut b, lo, hi));
        }
        assert_eq!(uniform(&mut a, lo, lo), lo);
    }

    #[test]
    fn uniform_int_covers_both_ends() {
        assert_eq!(uniform_int(0, 4, 16), 4);
        assert_eq!(uniform_int(u32::MAX, 4, 16), 16);
        assert_eq!(uniform_int(u32::MAX, 0, 8192), 8192);
        assert_eq!(uniform_int(1 << 31, 0, 9), 5);
    }
}
