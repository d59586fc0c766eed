//! The fault injector's decisions, apart from any device: given a packet, the moment and its
//! direction, which copies go out after which delay, and the record of it. A seeded ChaCha
//! generator makes a run reproducible for a given order of packets.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::faults::{Chance, Faults};
use crate::packet;
use crate::record::{Direction, PacketRecord};

/// A netem-style correlated draw: each value leans on the previous one by `correlation`.
#[derive(Clone, Copy, Debug, Default)]
struct Correlated {
    last: f64,
}

impl Correlated {
    fn hit(&mut self, rng: &mut ChaCha20Rng, chance: Chance) -> bool {
        if chance.probability <= 0.0 {
            return false;
        }
        let fresh = unit(rng);
        let value = (1.0 - chance.correlation) * fresh + chance.correlation * self.last;
        self.last = value;
        value < chance.probability
    }
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One copy of a packet to write to the other side after `delay`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// How long to hold it.
    pub delay: Duration,
    /// The bytes to write.
    pub bytes: Vec<u8>,
}

/// Applies [`Faults`] to packets.
#[derive(Debug)]
pub struct Injector {
    faults: Faults,
    rng: ChaCha20Rng,
    loss: Correlated,
    duplicate: Correlated,
    reorder: Correlated,
    corrupt: Correlated,
    tamper: Correlated,
    payload_segments: u64,
    tampered: u64,
    blackhole_from: Option<Duration>,
}

impl Injector {
    /// An injector for `faults`, seeded with `seed`.
    pub fn new(faults: Faults, seed: u64) -> Injector {
        Injector {
            blackhole_from: faults.blackhole,
            faults,
            rng: ChaCha20Rng::seed_from_u64(seed),
            loss: Correlated::default(),
            duplicate: Correlated::default(),
            reorder: Correlated::default(),
            corrupt: Correlated::default(),
            tamper: Correlated::default(),
            payload_segments: 0,
            tampered: 0,
        }
    }

    /// Drops every packet from `at` on (the earlier of this and the spec's blackhole wins).
    pub fn blackhole_from(&mut self, at: Duration) {
        self.blackhole_from = Some(self.blackhole_from.map_or(at, |b| b.min(at)));
    }

    fn delay(&mut self) -> Duration {
        let (delay, jitter) = (self.faults.delay, self.faults.jitter);
        if jitter.is_zero() {
            return delay;
        }
        let low = delay.saturating_sub(jitter);
        let span = (delay + jitter).saturating_sub(low);
        low + span.mul_f64(unit(&mut self.rng))
    }

    /// Decides the fate of `bytes`, read at `at` (since the bridge started) going `direction`.
    pub fn apply(
        &mut self,
        at: Duration,
        direction: Direction,
        mut bytes: Vec<u8>,
    ) -> (Vec<Copy>, PacketRecord) {
        let view = packet::tcp_view(&bytes);
        let mut record = PacketRecord {
            at,
            direction,
            size: bytes.len(),
            payload: view.map_or(0, |v| v.payload),
            flags: view.map_or(0, |v| v.flags),
            seq: view.map_or(0, |v| v.seq),
            dropped: false,
            blackholed: false,
            duplicated: false,
            delay: Duration::ZERO,
            reordered: false,
            corrupted: false,
            tampered: false,
        };
        if self.blackhole_from.is_some_and(|from| at >= from) {
            record.blackholed = true;
            return (Vec::new(), record);
        }
        if self.faults.direction.is_some_and(|d| d != direction) {
            return (
                vec![Copy {
                    delay: Duration::ZERO,
                    bytes,
                }],
                record,
            );
        }
        if self.loss.hit(&mut self.rng, self.faults.loss) {
            record.dropped = true;
            return (Vec::new(), record);
        }
        if record.payload > 0 {
            self.payload_segments += 1;
        }
        if let Some(t) = self.faults.tamper {
            let eligible = record.payload > 0
                && self.payload_segments > t.after
                && t.limit.is_none_or(|limit| self.tampered < limit);
            if eligible && self.tamper.hit(&mut self.rng, t.chance) {
                let offset = self.rng.next_u32() as usize;
                let mask = (self.rng.next_u32() as u8).max(1);
                record.tampered = packet::tamper(&mut bytes, offset, mask);
                self.tampered += u64::from(record.tampered);
            }
        }
        if self.corrupt.hit(&mut self.rng, self.faults.corrupt) {
            let offset = self.rng.next_u32() as usize;
            let mask = (self.rng.next_u32() as u8).max(1);
            record.corrupted = packet::corrupt(&mut bytes, offset, mask);
        }
        let reordered = self.reorder.hit(&mut self.rng, self.faults.reorder);
        record.reordered = reordered;
        record.delay = if reordered {
            Duration::ZERO
        } else {
            self.delay()
        };
        let mut copies = vec![Copy {
            delay: record.delay,
            bytes,
        }];
        if self.duplicate.hit(&mut self.rng, self.faults.duplicate) {
            record.duplicated = true;
            let again = Copy {
                delay: self.delay().max(record.delay),
                bytes: copies[0].bytes.clone(),
            };
            copies.push(again);
        }
        (copies, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::segment;
    use crate::packet::{flags, stored_tcp_checksum, tcp_checksum};

    fn run(spec: &str, n: usize) -> Vec<(Vec<Copy>, PacketRecord)> {
        let mut injector = Injector::new(Faults::parse(spec).unwrap(), 7);
        (0..n)
            .map(|i| {
                let at = Duration::from_millis(i as u64);
                injector.apply(at, Direction::ToServer, segment(b"payload!", flags::ACK))
            })
            .collect()
    }

    fn share(results: &[(Vec<Copy>, PacketRecord)], f: impl Fn(&PacketRecord) -> bool) -> f64 {
        results.iter().filter(|(_, r)| f(r)).count() as f64 / results.len() as f64
    }

    #[test]
    fn no_faults_passes_everything_at_once() {
        for (copies, record) in run("", 100) {
            assert_eq!(copies.len(), 1);
            assert_eq!(copies[0].delay, Duration::ZERO);
            assert_eq!(copies[0].bytes, segment(b"payload!", flags::ACK));
            assert!(record.delivered());
            assert_eq!((record.size, record.payload), (48, 8));
        }
    }

    #[test]
    fn loss_drops_about_its_share() {
        let results = run("loss 30%", 4000);
        let lost = share(&results, |r| r.dropped);
        assert!((0.26..0.34).contains(&lost), "{lost}");
        assert!(results.iter().all(|(c, r)| c.is_empty() == r.dropped));
    }

    #[test]
    fn duplicate_sends_twice() {
        let results = run("duplicate 30%", 4000);
        let twice = share(&results, |r| r.duplicated);
        assert!((0.26..0.34).contains(&twice), "{twice}");
        assert!(
            results
                .iter()
                .all(|(c, r)| c.len() == 1 + usize::from(r.duplicated))
        );
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let results = run("delay 100ms 75ms", 2000);
        let delays: Vec<_> = results.iter().map(|(c, _)| c[0].delay).collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*min >= Duration::from_millis(25) && *min < Duration::from_millis(35));
        assert!(*max <= Duration::from_millis(175) && *max > Duration::from_millis(165));
    }

    #[test]
    fn reorder_sends_a_share_at_once() {
        let results = run("delay 125ms reorder 30% 50%", 4000);
        let early = share(&results, |r| r.reordered);
        // netem's correlation pulls draws toward the previous one, so fewer than 30 % pass.
        assert!((0.05..0.4).contains(&early), "{early}");
        for (copies, record) in &results {
            let expected = if record.reordered { 0 } else { 125 };
            assert_eq!(copies[0].delay, Duration::from_millis(expected));
        }
    }

    #[test]
    fn corrupt_leaves_a_bad_checksum() {
        let results = run("corrupt 30%", 2000);
        let share = share(&results, |r| r.corrupted);
        assert!((0.26..0.34).contains(&share), "{share}");
        let original = segment(b"payload!", flags::ACK);
        for (copies, record) in results {
            let b = &copies[0].bytes;
            assert_eq!(b[..20], original[..20], "the IP header stays valid");
            if record.corrupted {
                // Either the checksum no longer matches, or the header length byte itself
                // was hit (the kernel drops such a segment as well).
                let header_hit = b[32] != original[32];
                assert!(header_hit || tcp_checksum(b) != stored_tcp_checksum(b));
            } else {
                assert_eq!(*b, original);
            }
        }
    }

    #[test]
    fn tamper_respects_after_and_limit_and_fixes_the_checksum() {
        let results = run("tamper 100% after 3 limit 2", 10);
        let tampered: Vec<_> = results.iter().map(|(_, r)| r.tampered).collect();
        assert_eq!(
            tampered,
            [
                false, false, false, true, true, false, false, false, false, false
            ]
        );
        for (copies, record) in &results {
            let b = &copies[0].bytes;
            assert_eq!(tcp_checksum(b), stored_tcp_checksum(b));
            assert_eq!(record.tampered, b[40..] != b"payload!"[..]);
        }
    }

    #[test]
    fn blackhole_drops_everything_from_its_moment() {
        let results = run("blackhole after 50ms", 100);
        for (copies, record) in results {
            assert_eq!(record.blackholed, record.at >= Duration::from_millis(50));
            assert_eq!(copies.is_empty(), record.blackholed);
        }
        let mut injector = Injector::new(Faults::default(), 1);
        injector.blackhole_from(Duration::from_secs(1));
        let (c, _) = injector.apply(Duration::from_secs(2), Direction::ToClient, vec![0; 20]);
        assert!(c.is_empty());
    }

    #[test]
    fn a_direction_leaves_the_other_alone() {
        let mut injector =
            Injector::new(Faults::parse("loss 100% direction to-server").unwrap(), 3);
        let packet = segment(b"payload!", flags::ACK);
        let (up, r) = injector.apply(Duration::ZERO, Direction::ToServer, packet.clone());
        assert!(up.is_empty() && r.dropped);
        let (down, r) = injector.apply(Duration::ZERO, Direction::ToClient, packet.clone());
        assert_eq!(down[0].bytes, packet);
        assert!(r.delivered());
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let a = run("delay 100ms 75ms loss 30% duplicate 30% corrupt 30%", 200);
        let b = run("delay 100ms 75ms loss 30% duplicate 30% corrupt 30%", 200);
        assert_eq!(a, b);
    }
}
