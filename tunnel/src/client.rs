//! `port-tunnel client`: accepts local TCP connections and carries each over its own PORT
//! connection to the tunnel server.
//!
//! One PORT connection per TCP connection, not streams multiplexed over a shared one: a slow
//! or stalled stream never holds up the others (no head-of-line blocking inside one TCP
//! connection and one send window), the PORT handshake costs one round trip and two X25519
//! operations, and each connection gets its own padding, keepalive schedule and lifetime, so
//! one connection's traffic says nothing about another's.

use std::sync::Arc;
use std::time::Duration;

use port_core::ClientConfig;
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
struct Shared {
    runtime: Arc<dyn port_tokio::Runtime>,
    server: String,
    factory: port_tokio::SessionFactory,
    options: port_tokio::Options,
    summary: Arc<Summary>,
}

/// Runs the client until SIGINT or SIGTERM; returns what it carried.
pub async fn run(settings: ClientSettings) -> Result<Arc<Summary>, Error> {
    let key = port_stack::keyfile::read_client_key(&settings.key_file).map_err(Error::msg)?;
    let token = read_token_file(&settings.token_file).map_err(Error::msg)?;
    let setup = ClientConfig::new(settings.port, key, token)
        .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?;
    let mut stop = StopSignals::install()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| Error::msg(format!("cannot listen on {}: {e}", settings.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::msg(format!("cannot listen on {}: {e}", settings.listen)))?;
    announce(&format!("listening on {local}"))?;
    tracing::info!(addr = %local, server = %settings.server, "tunnel client listening");

    let shared = Arc::new(Shared {
        runtime: port_tokio::runtime(),
        server: settings.server.host_port(),
        options: port_tokio::Options::for_config(setup.config()),
        factory: settings.stack.client_factory(setup),
        summary: Arc::new(Summary::default()),
    });
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(carry_one(tcp, peer, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
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

/// Opens a PORT connection to the server, a session of the tunnel's stack.
async fn connect(shared: &Shared) -> Result<port_tokio::Stream, port_tokio::Error> {
    let factory = shared.factory.clone();
    port_tokio::connect_session(&shared.runtime, &shared.server, factory, shared.options).await
}

/// Opens a PORT connection for one local connection and carries it.
async fn carry_one(tcp: TcpStream, peer: std::net::SocketAddr, shared: Arc<Shared>) {
    let summary = &shared.summary;
    let _ = tcp.set_nodelay(true);
    let stream = match connect(&shared).await {
        Ok(stream) => stream,
        Err(e) => {
            let counter = match e {
                port_tokio::Error::Rejected(_) => &summary.refused,
                _ => &summary.failed,
            };
            bump(counter);
            tracing::warn!(%peer, server = %shared.server, error = %describe(&e),
                "cannot open a tunnel for this connection");
            close_gently(tcp).await;
            return;
        }
    };
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
