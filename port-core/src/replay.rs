//! Replay protection for client INITs: a timestamp window plus a bounded set of salts seen
//! inside that window. Shared by all connections of one server.

use std::collections::{BTreeMap, BTreeSet};

use crate::handshake::SALT_LEN;

/// Why an INIT was refused by the replay rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The timestamp is outside the window around the server's clock.
    Stale,
    /// The salt was already seen inside the window.
    Replayed,
    /// The filter is full of live entries; refusing is safer than forgetting one.
    Full,
}

/// Bounded set of recent INIT salts. Entries expire once their timestamp leaves the window, at
/// which point the timestamp check alone refuses a replay. Ordered maps, not hash maps, so a
/// client cannot aim salts at hash collisions.
#[derive(Debug)]
pub(crate) struct ReplayFilter {
    window: u64,
    capacity: usize,
    salts: BTreeSet<[u8; SALT_LEN]>,
    by_time: BTreeMap<(u64, [u8; SALT_LEN]), ()>,
}

impl ReplayFilter {
    pub(crate) fn new(window_secs: u64, capacity: usize) -> Self {
        ReplayFilter {
            window: window_secs,
            capacity,
            salts: BTreeSet::new(),
            by_time: BTreeMap::new(),
        }
    }

    /// Checks an authenticated INIT's timestamp and salt, remembering the salt if accepted.
    pub(crate) fn check(
        &mut self,
        now_unix: u64,
        timestamp: u64,
        salt: [u8; SALT_LEN],
    ) -> Result<(), Refusal> {
        if now_unix.abs_diff(timestamp) > self.window {
            return Err(Refusal::Stale);
        }
        self.expire(now_unix);
        if self.salts.contains(&salt) {
            return Err(Refusal::Replayed);
        }
        if self.salts.len() >= self.capacity {
            return Err(Refusal::Full);
        }
        self.salts.insert(salt);
        self.by_time.insert((timestamp, salt), ());
        Ok(())
    }

    fn expire(&mut self, now_unix: u64) {
        while let Some((&(ts, salt), _)) = self.by_time.first_key_value() {
            if ts.saturating_add(self.window) >= now_unix {
                break;
            }
            self.by_time.pop_first();
            self.salts.remove(&salt);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.salts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_replay_and_expiry() {
        let mut f = ReplayFilter::new(60, 10);
        assert_eq!(f.check(1000, 1000, [1; 16]), Ok(()));
        assert_eq!(f.check(1001, 1000, [1; 16]), Err(Refusal::Replayed));
        assert_eq!(f.check(1000, 939, [2; 16]), Err(Refusal::Stale));
        assert_eq!(f.check(1000, 1061, [2; 16]), Err(Refusal::Stale));
        assert_eq!(f.check(1000, 1060, [2; 16]), Ok(()));
        // Once the first entry's timestamp left the window it is forgotten and refused as stale.
        assert_eq!(f.check(1061, 1061, [3; 16]), Ok(()));
        assert_eq!(f.len(), 2);
        assert_eq!(f.check(1061, 1000, [1; 16]), Err(Refusal::Stale));
    }

    #[test]
    fn full_filter_refuses_instead_of_forgetting() {
        let mut f = ReplayFilter::new(60, 2);
        f.check(100, 100, [1; 16]).unwrap();
        f.check(100, 100, [2; 16]).unwrap();
        assert_eq!(f.check(100, 100, [3; 16]), Err(Refusal::Full));
        assert_eq!(f.check(161, 161, [3; 16]), Ok(()));
    }
}
