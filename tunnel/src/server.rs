//! `port-tunnel server`: accepts PORT clients, checks their tokens, and connects each carried
//! connection to the forward target, or to the target its client named if `--allow` permits.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use port_core::{ServerConfig, Status};
use port_tokio::{Incoming, Listener, Options};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::allow::AllowList;
use crate::config::ServerSettings;
use crate::copy::carry;
use crate::error::{Error, describe};
use crate::refusal::Refusal;
use crate::shutdown::{StopSignals, drain};
use crate::summary::{Summary, bump};
use crate::target::{Host, Target, split_token};
use port_stack::tokens::{SharedTokens, Tokens, UNKNOWN_TOKEN};

/// The status a client is refused with when the target cannot be reached for a reason
/// without a status of its own ([`Refusal::Failed`]).
pub const TARGET_DOWN: Status = Status::ConnectionError;
/// How long the connect to the forward target may take.
const FORWARD_CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// How long the accept loop pauses after a failed accept (a full file table, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection task shares.
struct Shared {
    forward: Option<String>,
    allow: AllowList,
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
    if let Some(addr) = settings.metrics {
        port_stack::prometheus::serve(addr).map_err(Error::msg)?;
    }
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
    tracing::info!(addr = %local, forward = settings.forward.as_deref().unwrap_or("none"),
        allow = !settings.allow.is_empty(), stack = settings.stack.spec(),
        "tunnel server listening");

    let shared = Arc::new(Shared {
        forward: settings.forward,
        allow: settings.allow,
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

/// Decides on one authenticated client, connects it to its target and carries it.
async fn serve_one(incoming: Incoming, shared: Arc<Shared>) {
    let peer = incoming.peer_addr();
    tracing::debug!(%peer, "deciding");
    let summary = &shared.summary;
    let (token, requested) = split_token(incoming.token());
    let (name, user_id) = match &shared.tokens {
        Some(tokens) => match tokens.current().get(token) {
            Some(entry) => (entry.name.clone(), entry.user_id),
            None => {
                tracing::warn!(%peer, "unknown token: refused");
                metrics::counter!("port_tunnel_refusals_total",
                    "reason" => Refusal::UnknownToken.label())
                .increment(1);
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
    let requested = requested.map(|t| String::from_utf8_lossy(t).into_owned());
    let connected = tokio::time::timeout(
        FORWARD_CONNECT_LIMIT,
        connect_target(requested.as_deref(), &shared),
    )
    .await
    .unwrap_or(Err(Refusal::TimedOut));
    let (target_name, target) = match connected {
        Ok(connected) => connected,
        Err(refusal) => {
            let target = requested
                .as_deref()
                .or(shared.forward.as_deref())
                .unwrap_or("none");
            tracing::warn!(%peer, client = %name, target, reason = %refusal.describe(),
                "connection refused");
            match refusal {
                Refusal::NotAllowed | Refusal::UnknownToken => bump(&summary.refused),
                _ => bump(&summary.failed),
            }
            metrics::counter!("port_tunnel_refusals_total", "reason" => refusal.label())
                .increment(1);
            let _ = incoming.reject(refusal.status());
            return;
        }
    };
    tracing::debug!(%peer, target = %target_name, "target connected");
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
    tracing::info!(%peer, client = %name, user_id, target = %target_name, "carrying a connection");
    match carry(target, stream, &summary.down, &summary.up).await {
        Ok(()) => tracing::info!(%peer, client = %name, "connection closed"),
        Err(e) => {
            bump(&summary.broken);
            tracing::warn!(%peer, client = %name, error = %e, "connection ended");
        }
    }
}

/// Connects to the target a client named (if the allow list permits it), or to the forward
/// target when it named none. Returns the target as logged, and the socket.
async fn connect_target(
    requested: Option<&str>,
    shared: &Shared,
) -> Result<(String, TcpStream), Refusal> {
    let Some(text) = requested else {
        let forward = shared.forward.as_deref().ok_or(Refusal::NotAllowed)?;
        let socket = TcpStream::connect(forward)
            .await
            .map_err(|e| Refusal::of_connect_error(&e))?;
        return Ok((forward.to_owned(), socket));
    };
    let target = Target::parse(text).map_err(|_| Refusal::NotAllowed)?;
    let addrs = permitted_addrs(&target, &shared.allow).await?;
    let mut last = Refusal::HostUnreachable;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(socket) => return Ok((target.to_string(), socket)),
            Err(e) => last = Refusal::of_connect_error(&e),
        }
    }
    Err(last)
}

/// The addresses of `target` that `allow` permits connecting to: all of a name that a name
/// rule allows; otherwise only those an address rule allows (a name never leads past them).
async fn permitted_addrs(target: &Target, allow: &AllowList) -> Result<Vec<SocketAddr>, Refusal> {
    let port = target.port;
    let (name, by_name) = match &target.host {
        Host::Ip(ip) if allow.allows_ip(*ip, port) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Ip(_) => return Err(Refusal::NotAllowed),
        Host::Name(name) => (name, allow.allows_name(name, port)),
    };
    if !by_name && !allow.has_address_rules() {
        return Err(Refusal::NotAllowed);
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|_| Refusal::HostUnreachable)?
        .filter(|addr| by_name || allow.allows_ip(addr.ip(), port))
        .collect();
    match resolved.is_empty() {
        true if by_name => Err(Refusal::HostUnreachable),
        true => Err(Refusal::NotAllowed),
        false => Ok(resolved),
    }
}
