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
}
