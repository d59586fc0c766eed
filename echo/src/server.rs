//! The echo server: accepts the clients that authenticate (with a tokens file, only those whose
//! token it lists) and sends every message back; when told to stop, it ends every connection
//! with TERM.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use std::future::Future;

use port_core::CloseReason;
use port_driver::{Incoming, Listener, Runtime, Stream, Traffic};
use port_stack::tokens::{SharedTokens, UNKNOWN_TOKEN};

use crate::error::Error;
use crate::setup::ServerSetup;

/// How long the accept loop pauses after a failed accept (a full file table, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a stopping server waits for its clients to answer its TERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

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
    tokens: Option<SharedTokens>,
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
            tokens: None,
        })
    }

    /// Accepts only the clients whose token `tokens` lists, with the user id of its entry;
    /// the others are refused with [`UNKNOWN_TOKEN`]. Without it every client that
    /// authenticates is accepted.
    pub fn with_tokens(mut self, tokens: SharedTokens) -> Self {
        self.tokens = Some(tokens);
        self
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
        self.run_until(std::future::pending(), on_end).await;
    }

    /// [`run`](Self::run) until `stop` completes; then no client is accepted any more, every
    /// connection is ended with TERM, and this returns once they all ended (or after
    /// [`STOP_GRACE`]) with how many were open.
    pub async fn run_until<F>(self, stop: impl Future<Output = ()>, on_end: F) -> usize
    where
        F: Fn(ConnectionReport) + Send + Sync + 'static,
    {
        let on_end = Arc::new(on_end);
        // Every connection task holds a receiver of `stopping` (closed to stop them all) and
        // a sender of `ended` (all dropped once every task finished).
        let (stopping_tx, stopping) = smol::channel::bounded::<()>(1);
        let (ended_tx, ended) = smol::channel::bounded::<()>(1);
        let accepting = async {
            loop {
                let incoming = match self.listener.accept().await {
                    Ok(incoming) => incoming,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        port_driver::sleep(&*self.runtime, ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Some((stream, peer, user_id, token_len)) = self.decide(incoming) else {
                    continue;
                };
                let (on_end, stopping, ended) =
                    (on_end.clone(), stopping.clone(), ended_tx.clone());
                self.runtime.spawn(Box::pin(async move {
                    let report = echo_until(stream, peer, user_id, token_len, stopping).await;
                    on_end(report);
                    drop(ended);
                }));
            }
        };
        futures_lite::future::or(accepting, stop).await;
        let open = ended_tx.sender_count() - 1;
        tracing::info!(connections = open, "stopping: TERM to every client");
        drop((stopping_tx, ended_tx));
        let all_ended = async {
            let _ = ended.recv().await;
        };
        let grace = port_driver::sleep(&*self.runtime, STOP_GRACE);
        futures_lite::future::or(all_ended, grace).await;
        open
    }

    /// Accepts or refuses one client that authenticated: its stream, address, user id and
    /// token length when accepted.
    fn decide(&self, incoming: Incoming) -> Option<(Stream, SocketAddr, u32, usize)> {
        let peer = incoming.peer_addr();
        let token_len = incoming.token().len();
        let decided = incoming.needs_decision();
        let listed = match (&self.tokens, decided) {
            (Some(tokens), true) => match tokens.current().get(incoming.token()) {
                Some(entry) => Some((entry.name.clone(), entry.user_id)),
                None => {
                    tracing::warn!(%peer, token_len, "unknown token: refused");
                    if let Err(e) = incoming.reject(UNKNOWN_TOKEN) {
                        tracing::warn!(%peer, error = %e, "refusal failed");
                    }
                    return None;
                }
            },
            _ => None,
        };
        // A seaside session's user id is the port of its per-user socket.
        let user_id = match (incoming.assigned_user_id(), &listed) {
            (Some(port), _) => u32::from(port),
            (None, Some((_, id))) => *id,
            (None, None) => self.next_user.fetch_add(1, Ordering::Relaxed),
        };
        let stream = match incoming.accept(user_id) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%peer, user_id, error = %e, "accept failed");
                return None;
            }
        };
        match (decided, listed) {
            (true, Some((name, _))) => {
                tracing::info!(%peer, user_id, client = %name, "client authenticated and accepted")
            }
            (true, None) => {
                tracing::info!(%peer, user_id, token_len, "client authenticated and accepted")
            }
            (false, _) => tracing::info!(%peer, user_id, "client connected"),
        }
        Some((stream, peer, user_id, token_len))
    }
}

/// Echoes every message of one connection until the client ends its direction, then closes;
/// once `stopping` closes, ends the connection with TERM instead.
async fn echo_until(
    mut stream: Stream,
    peer: SocketAddr,
    user_id: u32,
    token_len: usize,
    stopping: smol::channel::Receiver<()>,
) -> ConnectionReport {
    let mut messages = 0u64;
    let mut bytes = 0u64;
    let outcome = loop {
        // `recv` takes a message only when it returns one, so dropping it loses nothing.
        let next = futures_lite::future::or(async { Some(stream.recv().await) }, async {
            let _ = stopping.recv().await;
            None
        });
        match next.await {
            Some(Ok(Some(message))) => {
                messages += 1;
                bytes += message.len() as u64;
                if let Err(e) = stream.send(message).await {
                    break Err(e);
                }
            }
            Some(Ok(None)) | None => break stream.close().await,
            Some(Err(e)) => break Err(e),
        }
    };
    ConnectionReport {
        peer,
        user_id,
        token_len,
        messages,
        bytes,
        reason: stream.close_reason(),
        error: outcome.err().map(|e| e.to_string()),
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
