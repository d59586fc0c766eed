//! `port-tunnel client`: accepts local TCP connections (for the server's forward target) and
//! SOCKS5 clients (for the targets they name), and carries each over its own PORT connection
//! to the tunnel server.
//!
//! One PORT connection per TCP connection, not streams multiplexed over a shared one: a slow
//! or stalled stream never holds up the others (no head-of-line blocking inside one TCP
//! connection and one send window), the PORT handshake costs one round trip and two X25519
//! operations, and each connection gets its own padding, keepalive schedule and lifetime, so
//! one connection's traffic says nothing about another's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use port_core::{ClientConfig, MAX_EARLY_DATA};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::ClientSettings;
use crate::copy::{carry, close_gently};
use crate::error::{Error, describe};
use crate::server::announce;
use crate::shutdown::{StopSignals, drain};
use crate::summary::{Summary, bump};
use port_stack::tokens::read_token_file;

/// How long the accept loop pauses after a failed accept (a full file table, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection task shares.
pub(crate) struct Shared {
    runtime: Arc<dyn port_tokio::Runtime>,
    server: String,
    stack: crate::stacks::TunnelStack,
    /// The client setup with the plain token (connections for the server's forward target).
    setup: ClientConfig,
    options: port_tokio::Options,
    summary: Arc<Summary>,
    /// The `USER:PASSWORD` SOCKS5 clients must give, if any.
    pub(crate) socks5_auth: Option<crate::socks::Credentials>,
    /// What a local application already sent goes in the INIT (`--early-data`).
    early_data: bool,
}

/// Runs the client until SIGINT or SIGTERM; returns what it carried.
pub async fn run(settings: ClientSettings) -> Result<Arc<Summary>, Error> {
    let key = port_stack::keyfile::read_client_key(&settings.key_file).map_err(Error::msg)?;
    let token = read_token_file(&settings.token_file).map_err(Error::msg)?;
    let setup = ClientConfig::new(settings.port, key, token)
        .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?;
    let socks5_auth = settings
        .socks5_auth_file
        .as_deref()
        .map(crate::socks::Credentials::read)
        .transpose()?;
    if let Some(addr) = settings.metrics {
        port_stack::prometheus::serve(addr).map_err(Error::msg)?;
    }
    let mut stop = StopSignals::install()?;
    let forward = match settings.listen {
        Some(addr) => Some(listen(addr, "listening on").await?),
        None => None,
    };
    let socks = match settings.socks5 {
        Some(addr) => Some(listen(addr, "socks5 listening on").await?),
        None => None,
    };
    tracing::info!(server = %settings.server, "tunnel client started");

    let shared = Arc::new(Shared {
        runtime: port_tokio::runtime(),
        server: settings.server.host_port(),
        options: port_tokio::Options::for_config(setup.config()),
        stack: settings.stack,
        setup,
        summary: Arc::new(Summary::default()),
        socks5_auth,
        early_data: settings.early_data,
    });
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(forward.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(carry_one(tcp, peer, shared.clone()));
                }
                Err(e) => accept_failed(e).await,
            },
            accepted = accept(socks.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(crate::socks::serve(tcp, peer, shared.clone()));
                }
                Err(e) => accept_failed(e).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            name = stop.next() => {
                tracing::info!(signal = name, "stopping: no new connections");
                break;
            }
        }
    }
    drop((forward, socks));
    drain(&mut tasks, &mut stop).await;
    Ok(shared.summary.clone())
}

/// Binds `addr` and says so on stdout (`{what} ADDR`).
async fn listen(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener, Error> {
    let cannot = |e: std::io::Error| Error::msg(format!("cannot listen on {addr}: {e}"));
    let listener = TcpListener::bind(addr).await.map_err(cannot)?;
    let local = listener.local_addr().map_err(cannot)?;
    announce(&format!("{what} {local}"))?;
    tracing::info!(addr = %local, "{what}");
    Ok(listener)
}

/// The next connection on `listener`; never, without one.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_failed(error: std::io::Error) {
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Opens a PORT connection to the server with `setup` (a session of the tunnel's stack),
/// `first` its first message (see [`already_sent`]).
async fn connect(
    shared: &Shared,
    setup: ClientConfig,
    first: Bytes,
) -> Result<port_tokio::Stream, port_tokio::Error> {
    let factory = shared.stack.client_factory(setup);
    let (runtime, server, options) = (&shared.runtime, &shared.server, shared.options);
    port_tokio::connect_session_with_first(runtime, server, factory, options, first).await
}

/// With `--early-data`, what the application sent before its connection was taken up, without
/// waiting (up to [`MAX_EARLY_DATA`] bytes): it travels in the INIT (`docs/PROTOCOL.md` §5.8).
/// Client-speaks-first protocols (HTTP, TLS) have sent their first bytes by then.
fn already_sent(shared: &Shared, tcp: &TcpStream) -> Bytes {
    if !shared.early_data {
        return Bytes::new();
    }
    let mut buf = vec![0u8; MAX_EARLY_DATA];
    match tcp.try_read(&mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Bytes::from(buf)
        }
        // Nothing there yet (or an error the copy will see again): no early data.
        Err(_) => Bytes::new(),
    }
}

/// Opens a PORT connection for one local connection (to the server's forward target, or to
/// `target`): the stream, or the failure already logged and counted.
pub(crate) async fn open(
    shared: &Shared,
    peer: std::net::SocketAddr,
    target: Option<&crate::target::Target>,
    first: Bytes,
) -> Result<port_tokio::Stream, port_tokio::Error> {
    let setup = match target {
        None => shared.setup.clone(),
        Some(target) => {
            let token = crate::target::token_with_target(shared.setup.token(), target);
            ClientConfig::new(
                shared.setup.config().clone(),
                shared.setup.key().clone(),
                token,
            )
            .map_err(port_tokio::Error::Session)?
        }
    };
    connect(shared, setup, first).await.inspect_err(|e| {
        let counter = match e {
            port_tokio::Error::Rejected(_) => &shared.summary.refused,
            _ => &shared.summary.failed,
        };
        bump(counter);
        let target = target.map_or_else(|| "the forward target".to_owned(), ToString::to_string);
        tracing::warn!(%peer, server = %shared.server, %target, error = %describe(e),
            "cannot open a tunnel for this connection");
    })
}

/// Opens a PORT connection for one local connection and carries it.
async fn carry_one(tcp: TcpStream, peer: std::net::SocketAddr, shared: Arc<Shared>) {
    tracing::debug!(%peer, "local connection accepted");
    let _ = tcp.set_nodelay(true);
    let first = already_sent(&shared, &tcp);
    let early = first.len() as u64;
    if early > 0 {
        tracing::debug!(%peer, bytes = early, "early data");
    }
    match open(&shared, peer, None, first).await {
        Ok(stream) => {
            shared.summary.up.fetch_add(early, Ordering::Relaxed);
            carry_counted(tcp, stream, peer, &shared).await
        }
        Err(_) => close_gently(tcp).await,
    }
}

/// Carries `tcp` over `stream`, counting and logging.
pub(crate) async fn carry_counted(
    tcp: TcpStream,
    stream: port_tokio::Stream,
    peer: std::net::SocketAddr,
    shared: &Shared,
) {
    let summary = &shared.summary;
    bump(&summary.carried);
    tracing::info!(%peer, "carrying a connection");
    match carry(tcp, stream, &summary.up, &summary.down).await {
        Ok(()) => tracing::info!(%peer, "connection closed"),
        Err(e) => {
            bump(&summary.broken);
            tracing::warn!(%peer, error = %e, "connection ended");
        }
    }
}
