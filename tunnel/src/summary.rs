//! Counters of connections and bytes, shared by every carried connection and printed once on
//! shutdown.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a tunnel end carried since it started. "Up" is the direction from the tunnel
/// client's local connections toward the server's forward target, "down" the reverse, on
/// both ends.
#[derive(Debug, Default)]
pub struct Summary {
    /// Carried connections that started.
    pub carried: AtomicU64,
    /// Carried connections that ended with an error rather than a clean close.
    pub broken: AtomicU64,
    /// Connections refused: an unknown token (server) or a refusal by the server (client).
    pub refused: AtomicU64,
    /// Connections that could not be set up: the forward target (server) or the tunnel
    /// server (client) unreachable.
    pub failed: AtomicU64,
    /// Payload bytes carried up.
    pub up: AtomicU64,
    /// Payload bytes carried down.
    pub down: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "{} connections carried ({} ended by an error), {} refused, {} failed to start; \
             {} bytes up, {} bytes down",
            get(&self.carried),
            get(&self.broken),
            get(&self.refused),
            get(&self.failed),
            get(&self.up),
            get(&self.down),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_one_line_with_every_counter() {
        let s = Summary::default();
        bump(&s.carried);
        bump(&s.carried);
        bump(&s.refused);
        s.up.fetch_add(10, Ordering::Relaxed);
        assert_eq!(
            s.to_string(),
            "2 connections carried (0 ended by an error), 1 refused, 0 failed to start; \
             10 bytes up, 0 bytes down"
        );
    }
}
