//! SIGINT/SIGTERM: stop accepting, let carried connections finish, then stop.
//!
//! tokio's `signal` feature handles the signals (it registers them through
//! `signal-hook-registry`, already in the dependency tree through `async-io`): signals arrive
//! as futures in the same `select!` as the accept loop, with no thread of their own.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;

use crate::error::Error;

/// The longest a shutdown waits for carried connections to finish.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// SIGINT and SIGTERM, as one stream of "stop" requests.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Installs the handlers (inside the runtime).
    pub fn install() -> Result<StopSignals, Error> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::msg(format!("cannot handle {name}: {e}")))
        };
        Ok(StopSignals {
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// The next SIGINT or SIGTERM; returns its name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Waits for the carried connections in `tasks` to end, for at most [`DRAIN_LIMIT`] or until
/// another stop signal; whatever is left is then dropped.
pub async fn drain(tasks: &mut JoinSet<()>, signals: &mut StopSignals) {
    if !tasks.is_empty() {
        tracing::info!(
            connections = tasks.len(),
            "waiting for carried connections to finish (signal again to stop now)"
        );
    }
    let all_done = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        () = all_done => {}
        name = signals.next() => tracing::warn!(signal = name, "stopping now"),
        () = tokio::time::sleep(DRAIN_LIMIT) => {
            tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit");
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}
