//! Small helpers: entropy, wall-clock time, tracing spans.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use port_core::{Seed, Side};

use crate::error::Error;

/// A fresh connection seed from the operating system's CSPRNG.
pub(crate) fn fresh_seed() -> Result<Seed, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::from(io::Error::other(e.to_string())))?;
    Ok(seed)
}

/// Wall-clock time since the Unix epoch (zero for a clock set before 1970).
pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The span every event of one connection is recorded in.
pub(crate) fn span(side: Side, peer: SocketAddr) -> tracing::Span {
    tracing::info_span!("port", %side, %peer, user_id = tracing::field::Empty)
}
