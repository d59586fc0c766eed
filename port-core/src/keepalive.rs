//! Keepalive: randomized PING schedule, RTT estimation (RFC 6298 style) and the retry budget.
//!
//! One cycle: wait a random `next_in` in `[min_next_in, max_next_in]`, send a PING with a fresh
//! id, wait `clamp(srtt + 4·rttvar, min_timeout, max_timeout)` (or `default_timeout` before the
//! first sample) for its PONG. An unanswered PING is retried with a new id (so every RTT sample
//! is unambiguous) until `max_retries` PINGs of the cycle went unanswered. Hence a silent peer
//! is declared dead at most `max_next_in + max_retries × max_timeout` after its last PONG.

use std::time::{Duration, Instant};

use crate::config::Config;

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

    /// How long to wait for a PONG.
    pub(crate) fn timeout(&self, config: &Config) -> Duration {
        match self.srtt {
            None => config.default_timeout(),
            Some(srtt) => {
                (srtt + self.rttvar * 4).clamp(config.min_timeout(), config.max_timeout())
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    id: u16,
    sent_at: Instant,
    deadline: Instant,
}

/// Why the keepalive gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerSilent;

/// Keepalive state of one connection side.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    next_ping_at: Option<Instant>,
    outstanding: Option<Outstanding>,
    ping_due: bool,
    attempts: u32,
    next_id: u16,
    pongs_received: u64,
    pings_sent: u64,
    rtt: RttEstimator,
}

impl Keepalive {
    /// Arms the first cycle: the first PING is due `first_in` after `now`.
    pub(crate) fn start(&mut self, now: Instant, first_in: Duration) {
        self.next_ping_at = Some(now + first_in);
    }

    /// Stops all keepalive timers (connection closed).
    pub(crate) fn stop(&mut self) {
        self.next_ping_at = None;
        self.outstanding = None;
        self.ping_due = false;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.next_ping_at, self.outstanding.map(|o| o.deadline))
    }

    /// True if a PONG with `id` would answer the outstanding PING.
    pub(crate) fn awaits(&self, id: u16) -> bool {
        self.outstanding.is_some_and(|o| o.id == id)
    }

    /// Fires due timers. Errors when the retry budget is spent.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        config: &Config,
    ) -> Result<(), PeerSilent> {
        if self.outstanding.is_some_and(|o| now >= o.deadline) {
            self.outstanding = None;
            if self.attempts >= config.max_retries() {
                self.stop();
                return Err(PeerSilent);
            }
            self.ping_due = true;
        }
        if self.next_ping_at.is_some_and(|t| now >= t) {
            self.next_ping_at = None;
            self.attempts = 0;
            self.ping_due = true;
        }
        Ok(())
    }

    /// Takes the due PING for a frame being built at `now`; returns its id.
    pub(crate) fn take_ping(&mut self, now: Instant, config: &Config) -> Option<u16> {
        if !std::mem::take(&mut self.ping_due) {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.attempts += 1;
        self.pings_sent += 1;
        self.outstanding = Some(Outstanding {
            id,
            sent_at: now,
            deadline: now + self.rtt.timeout(config),
        });
        Some(id)
    }

    /// Handles a PONG. A matching one closes the cycle and schedules the next PING `next_in`
    /// from `now`; a stale or unknown id is ignored.
    pub(crate) fn on_pong(&mut self, now: Instant, id: u16, next_in: Duration) {
        let Some(o) = self.outstanding.filter(|o| o.id == id) else {
            return;
        };
        self.outstanding = None;
        self.attempts = 0;
        self.pongs_received += 1;
        self.rtt.sample(now.saturating_duration_since(o.sent_at));
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
            assert!(ka.take_ping(now, &c).is_some());
            assert!(ka.take_ping(now, &c).is_none(), "one PING per attempt");
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
        let id = ka.take_ping(t0, &c).unwrap();
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
