//! Small helpers: how a new session starts, tracing spans.

use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use port_core::{Side, Start};

use crate::error::Error;
use crate::runtime::Runtime;

/// A new session's start: the runtime's clock, the wall clock (zero before 1970), and a fresh
/// seed from the operating system's CSPRNG.
pub(crate) fn fresh_start(runtime: &dyn Runtime) -> Result<Start, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        let e = format!("no entropy from the operating system: {e}");
        Error::from(io::Error::other(e))
    })?;
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Start {
        now: runtime.now(),
        unix_time,
        seed,
    })
}

/// The span every event of one connection is recorded in.
pub(crate) fn span(side: Side, peer: SocketAddr) -> tracing::Span {
    tracing::info_span!("port", %side, %peer, user_id = tracing::field::Empty)
}
