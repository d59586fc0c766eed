//! Keepalive: randomized PING schedule, RTT estimation (RFC 6298 style) and the retry budget.
//!
//! One cycle: wait a random `next_in` in `[min_next_in, max_next_in]`, send a PING with a fresh
//! id, wait `clamp(srtt + 4·rttvar, min_timeout, max_timeout)` (or `default_timeout` before the
//! first sample) for its PONG. An unanswered PING is retried with a new id (so every RTT sample
//! is unambiguous) until `max_retries` PINGs of the cycle went unanswered. Hence a silent peer
//! is declared dead at most `max_next_in + max_retries × max_timeout` after its last PONG.

use std::time::{Duration, Instant};

use crate::config::Config;

/// The clock granularity term of RFC 6298: keeps the wait above the RTT itself when the
/// variance has decayed to zero on a perfectly steady path.
const GRANULARITY: Duration = Duration::from_millis(10);

/// Smoothed round-trip time estimate.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    #[cfg(test)]
    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// How long to wait for a PONG: `clamp(srtt + max(4·rttvar, G), min, max)`.
    pub(crate) fn timeout(&self, config: &Config) -> Duration {
        match self.srtt {
            None => config.default_timeout(),
            Some(srtt) => (srtt + (self.rttvar * 4).max(GRANULARITY))
                .clamp(config.min_timeout(), config.max_timeout()),
        }
    }
}

/// Why the keepalive gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerSilent;

/// Keepalive state of one connection side.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    /// When the current cycle's PING is due (`None` once it went out).
    next_ping_at: Option<Instant>,
    /// When the current cycle began: at start, or at the PONG that closed the previous one.
    cycle_start: Option<Instant>,
    /// PINGs of this cycle not answered yet, `(id, sent_at)`; any of them may still be
    /// answered, late answers included.
    attempts: Vec<(u16, Instant)>,
    /// When the newest attempt is given up.
    wait_deadline: Option<Instant>,
    ping_due: bool,
    next_id: u16,
    pongs_received: u64,
    pings_sent: u64,
    rtt: RttEstimator,
    last_rtt: Option<Duration>,
}

impl Keepalive {
    /// Arms the first cycle: the first PING is due `first_in` after `now`.
    pub(crate) fn start(&mut self, now: Instant, first_in: Duration) {
        self.cycle_start = Some(now);
        self.next_ping_at = Some(now + first_in);
    }

    /// Stops all keepalive timers (connection closed).
    pub(crate) fn stop(&mut self) {
        self.next_ping_at = None;
        self.cycle_start = None;
        self.attempts.clear();
        self.wait_deadline = None;
        self.ping_due = false;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.next_ping_at, self.wait_deadline)
    }

    /// True if a PONG with `id` answers a PING of the current cycle.
    pub(crate) fn awaits(&self, id: u16) -> bool {
        self.attempts.iter().any(|&(a, _)| a == id)
    }

    /// Fires due timers. Errors when the retry budget is spent.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        config: &Config,
    ) -> Result<(), PeerSilent> {
        if self.wait_deadline.is_some_and(|d| now >= d) {
            self.wait_deadline = None;
            if self.attempts.len() >= config.max_retries() as usize {
                self.stop();
                return Err(PeerSilent);
            }
            self.ping_due = true;
        }
        if self.next_ping_at.is_some_and(|t| now >= t) {
            self.next_ping_at = None;
            self.ping_due = true;
        }
        Ok(())
    }

    /// True if a PING waits for the next frame.
    pub(crate) fn ping_due(&self) -> bool {
        self.ping_due
    }

    /// The PING to attach to a frame being built at `now`, if one should go: a due one, or,
    /// when the frame carries data anyway and the cycle is at least `min_next_in` old, the
    /// cycle's PING ahead of its drawn time. Riding early on data costs nothing on the wire
    /// (flags are encrypted) and spares a standalone keepalive message later.
    pub(crate) fn take_ping(
        &mut self,
        now: Instant,
        config: &Config,
        with_data: bool,
    ) -> Option<u16> {
        let early = with_data
            && self.next_ping_at.is_some()
            && self
                .cycle_start
                .is_some_and(|s| now >= s + config.min_next_in());
        if !(std::mem::take(&mut self.ping_due) || early) {
            return None;
        }
        self.next_ping_at = None;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pings_sent += 1;
        self.attempts.push((id, now));
        self.wait_deadline = Some(now + self.rtt.timeout(config));
        Some(id)
    }

    /// Handles a PONG. One answering any PING of this cycle closes the cycle, gives an RTT
    /// sample (ids are never reused within a cycle, so the sample is unambiguous) and schedules
    /// the next PING `next_in` from `now`; an unknown id is ignored.
    pub(crate) fn on_pong(&mut self, now: Instant, id: u16, next_in: Duration) {
        let Some(&(_, sent_at)) = self.attempts.iter().find(|&&(a, _)| a == id) else {
            return;
        };
        self.attempts.clear();
        self.wait_deadline = None;
        self.pongs_received += 1;
        let rtt = now.saturating_duration_since(sent_at);
        self.last_rtt = Some(rtt);
        self.rtt.sample(rtt);
        self.cycle_start = Some(now);
        self.next_ping_at = Some(now + next_in);
    }

    pub(crate) fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    pub(crate) fn pings_sent(&self) -> u64 {
        self.pings_sent
    }

    pub(crate) fn pongs_received(&self) -> u64 {
        self.pongs_received
    }

    /// The latest round-trip sample.
    pub(crate) fn last_rtt(&self) -> Option<Duration> {
        self.last_rtt
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder()
            .min_timeout(Duration::from_secs(1))
            .default_timeout(Duration::from_secs(2))
            .max_timeout(Duration::from_secs(8))
            .max_retries(3)
            .build()
            .unwrap()
    }

    #[test]
    fn rtt_follows_rfc6298() {
        let mut rtt = RttEstimator::default();
        rtt.sample(Duration::from_millis(100));
        assert_eq!(rtt.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(rtt.rttvar(), Duration::from_millis(50));
        rtt.sample(Duration::from_millis(200));
        assert_eq!(rtt.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(rtt.rttvar(), Duration::from_micros(62_500));
    }

    #[test]
    fn timeout_is_clamped_and_defaults_before_samples() {
        let c = config();
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.timeout(&c), Duration::from_secs(2));
        rtt.sample(Duration::from_millis(1));
        assert_eq!(rtt.timeout(&c), Duration::from_secs(1));
        let mut steady = RttEstimator::default();
        for _ in 0..200 {
            steady.sample(Duration::from_millis(1500));
        }
        assert_eq!(
            steady.timeout(&c),
            Duration::from_millis(1510),
            "granularity floor"
        );
        for _ in 0..20 {
            rtt.sample(Duration::from_secs(30));
        }
        assert_eq!(rtt.timeout(&c), Duration::from_secs(8));
    }

    #[test]
    fn unanswered_pings_spend_the_retry_budget() {
        let c = config();
        let t0 = Instant::now();
        let mut ka = Keepalive::default();
        ka.start(t0, Duration::from_secs(5));
        assert_eq!(ka.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        for attempt in 1..=3 {
            let now = ka.poll_timeout().unwrap();
            assert_eq!(ka.handle_timeout(now, &c), Ok(()), "attempt {attempt}");
            assert!(ka.take_ping(now, &c, false).is_some());
            assert!(
                ka.take_ping(now, &c, false).is_none(),
                "one PING per attempt"
            );
        }
        let now = ka.poll_timeout().unwrap();
        assert_eq!(ka.handle_timeout(now, &c), Err(PeerSilent));
        assert_eq!(now, t0 + Duration::from_secs(5 + 3 * 2));
        assert_eq!(ka.poll_timeout(), None);
    }

    #[test]
    fn matching_pong_resets_the_cycle_and_stale_pong_is_ignored() {
        let c = config();
        let t0 = Instant::now();
        let mut ka = Keepalive::default();
        ka.start(t0, Duration::ZERO);
        ka.handle_timeout(t0, &c).unwrap();
        let id = ka.take_ping(t0, &c, false).unwrap();
        ka.on_pong(
            t0 + Duration::from_millis(10),
            id.wrapping_add(1),
            Duration::from_secs(9),
        );
        assert!(ka.rtt().srtt().is_none());
        let later = t0 + Duration::from_millis(40);
        ka.on_pong(later, id, Duration::from_secs(9));
        assert_eq!(ka.rtt().srtt(), Some(Duration::from_millis(40)));
        assert_eq!(ka.poll_timeout(), Some(later + Duration::from_secs(9)));
    }
}
