//! The echo server: accepts every client that authenticates (user ids 1, 2, 3, ...) and sends
//! every message back.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use port_core::CloseReason;
use port_driver::{Listener, Runtime, Stream, Traffic};

use crate::error::{Error, describe_driver_error};
use crate::setup::ServerSetup;

/// How long the accept loop pauses after a failed accept (a full file table, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What happened on one connection, reported once it ended.
#[derive(Clone, Debug)]
pub struct ConnectionReport {
    /// The client's address.
    pub peer: SocketAddr,
    /// The user id it was accepted with.
    pub user_id: u32,
    /// Length of the token it presented (0 for stacks without PORT).
    pub token_len: usize,
    /// Messages echoed.
    pub messages: u64,
    /// Payload bytes echoed.
    pub bytes: u64,
    /// The close reason the session reported, if any.
    pub reason: Option<CloseReason>,
    /// The error that ended the connection, if it did not end cleanly.
    pub error: Option<String>,
    /// What crossed its TCP socket: handshake, framing and padding included.
    pub traffic: Traffic,
}

impl fmt::Display for ConnectionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (user {}): {} messages, {} bytes echoed; ",
            self.peer, self.user_id, self.messages, self.bytes
        )?;
        match (&self.reason, &self.error) {
            (Some(reason), _) => write!(f, "{reason}"),
            (None, Some(error)) => write!(f, "{error}"),
            (None, None) => f.write_str("closed"),
        }
    }
}

/// A server running in the background ([`Server::spawn`]); dropping it stops accepting.
#[derive(Debug)]
pub struct Running {
    /// The report of every connection, once it ended.
    pub reports: smol::channel::Receiver<ConnectionReport>,
    _stop: smol::channel::Sender<()>,
}

/// A bound echo server.
pub struct Server {
    runtime: Arc<dyn Runtime>,
    listener: Listener,
    local: SocketAddr,
    setup: ServerSetup,
    next_user: Arc<AtomicU32>,
}

impl Server {
    /// Binds `addr` on `runtime` (call from within that runtime).
    pub async fn bind(
        runtime: Arc<dyn Runtime>,
        setup: ServerSetup,
        addr: SocketAddr,
    ) -> Result<Self, Error> {
        let cannot = |e: std::io::Error| Error::msg(format!("cannot listen on {addr}: {e}"));
        let listener = Listener::bind_sessions(&runtime, addr, setup.factory(), setup.options())
            .await
            .map_err(cannot)?;
        let local = listener.local_addr().map_err(cannot)?;
        Ok(Server {
            runtime,
            listener,
            local,
            setup,
            next_user: Arc::new(AtomicU32::new(1)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The setup the server was bound with.
    pub fn setup(&self) -> &ServerSetup {
        &self.setup
    }

    /// Runs the server in the background: every connection's report arrives on
    /// [`Running::reports`] once it ended, and dropping the handle stops accepting
    /// (connections already accepted carry on on their own tasks).
    pub fn spawn(self) -> Running {
        let (report, reports) = smol::channel::unbounded();
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let on_end = move |r| {
            let _ = report.try_send(r);
        };
        // Nothing is ever sent: the channel closes when the handle's sender is dropped.
        let stopped = async move {
            let _ = stopped.recv().await;
        };
        let runtime = self.runtime.clone();
        runtime.spawn(Box::pin(futures_lite::future::or(
            self.run(on_end),
            stopped,
        )));
        Running {
            reports,
            _stop: stop,
        }
    }

    /// Accepts clients forever, echoing each on its own task; `on_end` hears about every
    /// connection once it ended.
    pub async fn run<F>(self, on_end: F)
    where
        F: Fn(ConnectionReport) + Send + Sync + 'static,
    {
        let on_end = Arc::new(on_end);
        loop {
            let incoming = match self.listener.accept().await {
                Ok(incoming) => incoming,
                Err(e) => {
                    tracing::warn!(error = %describe_driver_error(&e), "accept failed");
                    port_driver::sleep(&*self.runtime, ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let peer = incoming.peer_addr();
            let token_len = incoming.token().len();
            let decided = incoming.needs_decision();
            let assigned = incoming.assigned_user_id();
            // A seaside session's user id is the port of its per-user socket.
            let user_id =
                assigned.map_or_else(|| self.next_user.fetch_add(1, Ordering::Relaxed), u32::from);
            let stream = match incoming.accept(user_id) {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(%peer, user_id, error = %describe_driver_error(&e), "accept failed");
                    continue;
                }
            };
            if decided {
                tracing::info!(%peer, user_id, token_len, "client authenticated and accepted");
            } else {
                tracing::info!(%peer, user_id, "client connected");
            }
            let on_end = on_end.clone();
            self.runtime.spawn(Box::pin(async move {
                let report = echo_connection(stream, peer, user_id, token_len).await;
                on_end(report);
            }));
        }
    }
}

/// Echoes every message of one connection until the client ends its direction, then closes.
pub async fn echo_connection(
    mut stream: Stream,
    peer: SocketAddr,
    user_id: u32,
    token_len: usize,
) -> ConnectionReport {
    let mut messages = 0u64;
    let mut bytes = 0u64;
    let outcome = loop {
        match stream.recv().await {
            Ok(Some(message)) => {
                messages += 1;
                bytes += message.len() as u64;
                if let Err(e) = stream.send(message).await {
                    break Err(e);
                }
            }
            Ok(None) => break stream.close().await,
            Err(e) => break Err(e),
        }
    };
    ConnectionReport {
        peer,
        user_id,
        token_len,
        messages,
        bytes,
        reason: stream.close_reason(),
        error: outcome.err().map(|e| describe_driver_error(&e)),
        traffic: stream.traffic(),
    }
}

/// Logs a finished connection with `tracing`.
pub fn log_report(report: &ConnectionReport) {
    let reason = report
        .reason
        .map(|r| r.to_string())
        .or_else(|| report.error.clone())
        .unwrap_or_else(|| "closed".to_owned());
    let clean = report.reason.is_some_and(|r| r.is_graceful())
        || (report.reason.is_none() && report.error.is_none());
    // The same fields at either level: a clean end is news, anything else a warning.
    macro_rules! log_at {
        ($level:ident, $what:literal) => {
            tracing::$level!(
                peer = %report.peer,
                user_id = report.user_id,
                messages = report.messages,
                bytes = report.bytes,
                %reason,
                $what
            )
        };
    }
    if clean {
        log_at!(info, "connection closed");
    } else {
        log_at!(warn, "connection ended");
    }
}
