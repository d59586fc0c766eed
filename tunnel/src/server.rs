//! `port-tunnel server`: accepts PORT clients, checks their tokens, and connects each carried
//! connection to the forward target.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use port_core::{ServerConfig, Status};
use port_tokio::{Incoming, Listener, Options};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::config::ServerSettings;
use crate::copy::carry;
use crate::error::{Error, describe};
use crate::shutdown::{StopSignals, drain};
use crate::summary::{Summary, bump};
use port_stack::tokens::{SharedTokens, Tokens, UNKNOWN_TOKEN};

/// The status a client is refused with when the forward target cannot be reached.
pub const TARGET_DOWN: Status = Status::ConnectionError;
/// How long the connect to the forward target may take.
const FORWARD_CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// How long the accept loop pauses after a failed accept (a full file table, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection task shares.
struct Shared {
    forward: String,
    tokens: Option<SharedTokens>,
    summary: Arc<Summary>,
    /// User ids handed out when there is no tokens file.
    next_user: AtomicU32,
}

/// Runs the server until SIGINT or SIGTERM; returns what it carried.
pub async fn run(settings: ServerSettings) -> Result<Arc<Summary>, Error> {
    let key = port_stack::keyfile::read_server_key(&settings.key_file).map_err(Error::msg)?;
    let tokens = match &settings.tokens_file {
        Some(path) => {
            let tokens = Tokens::load(path).map_err(Error::msg)?;
            tracing::info!(file = %path.display(), tokens = tokens.len(), "tokens loaded");
            Some(SharedTokens::new(tokens))
        }
        None => {
            tracing::warn!("no --tokens file: every client holding the client key is accepted");
            None
        }
    };
    let mut stop = StopSignals::install()?;
    let mut hangup = signal(SignalKind::hangup())
        .map_err(|e| Error::msg(format!("cannot handle SIGHUP: {e}")))?;
    let setup = ServerConfig::new(settings.port.clone(), key);
    let listener = bind(&settings, setup)
        .await
        .map_err(|e| Error::msg(format!("cannot listen on {}: {e}", settings.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::msg(format!("cannot listen on {}: {e}", settings.listen)))?;
    announce(&format!("listening on {local}"))?;
    tracing::info!(addr = %local, forward = %settings.forward, stack = settings.stack.spec(),
        "tunnel server listening");

    let shared = Arc::new(Shared {
        forward: settings.forward,
        tokens,
        summary: Arc::new(Summary::default()),
        next_user: AtomicU32::new(1),
    });
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(incoming) => {
                    tasks.spawn(serve_one(incoming, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = hangup.recv() => reload(&settings.tokens_file, shared.tokens.as_ref()),
            name = stop.next() => {
                tracing::info!(signal = name, "stopping: no new connections");
                break;
            }
        }
    }
    drop(listener);
    drain(&mut tasks, &mut stop).await;
    Ok(shared.summary.clone())
}

/// Binds the listener, whose sessions are the tunnel stack's.
async fn bind(settings: &ServerSettings, setup: ServerConfig) -> std::io::Result<Listener> {
    let mut options =
        Options::for_config(setup.config()).with_max_unauthenticated(settings.max_unauthenticated);
    if let Some(fallback) = settings.fallback {
        options = options.with_fallback(fallback);
    }
    let factory = settings.stack.server_factory(setup);
    Listener::bind_sessions(&port_tokio::runtime(), settings.listen, factory, options).await
}

/// Prints a line on stdout at once (scripts and tests wait for it).
pub(crate) fn announce(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::msg(format!("cannot write to stdout: {e}")))
}

/// SIGHUP: reads the tokens file again; a bad file keeps the tokens in force.
fn reload(path: &Option<std::path::PathBuf>, tokens: Option<&SharedTokens>) {
    let (Some(path), Some(tokens)) = (path, tokens) else {
        tracing::info!("SIGHUP: no tokens file to reload");
        return;
    };
    match Tokens::load(path) {
        Ok(fresh) => {
            tracing::info!(file = %path.display(), tokens = fresh.len(), "tokens reloaded");
            tokens.replace(fresh);
        }
        Err(e) => tracing::error!(error = %e, "tokens not reloaded: the previous ones stay"),
    }
}

/// Decides on one authenticated client, connects it to the target and carries it.
async fn serve_one(incoming: Incoming, shared: Arc<Shared>) {
    let peer = incoming.peer_addr();
    let summary = &shared.summary;
    let (name, user_id) = match &shared.tokens {
        Some(tokens) => match tokens.current().get(incoming.token()) {
            Some(entry) => (entry.name.clone(), entry.user_id),
            None => {
                tracing::warn!(%peer, "unknown token: refused");
                bump(&summary.refused);
                let _ = incoming.reject(UNKNOWN_TOKEN);
                return;
            }
        },
        None => (
            "any".to_owned(),
            shared.next_user.fetch_add(1, Ordering::Relaxed),
        ),
    };
    let target = match tokio::time::timeout(
        FORWARD_CONNECT_LIMIT,
        TcpStream::connect(&shared.forward),
    )
    .await
    {
        Ok(Ok(target)) => target,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {FORWARD_CONNECT_LIMIT:?}"),
            };
            tracing::warn!(%peer, client = %name, forward = %shared.forward, error = %why,
                "forward target unreachable: connection refused");
            bump(&summary.failed);
            let _ = incoming.reject(TARGET_DOWN);
            return;
        }
    };
    // Small writes (a keystroke) go out at once; bulk data is written in large chunks anyway.
    let _ = target.set_nodelay(true);
    let stream = match incoming.accept(user_id) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(%peer, client = %name, error = %describe(&e), "accept failed");
            bump(&summary.failed);
            return;
        }
    };
    bump(&summary.carried);
    tracing::info!(%peer, client = %name, user_id, "carrying a connection");
    match carry(target, stream, &summary.down, &summary.up).await {
        Ok(()) => tracing::info!(%peer, client = %name, "connection closed"),
        Err(e) => {
            bump(&summary.broken);
            tracing::warn!(%peer, client = %name, error = %e, "connection ended");
        }
    }
}
