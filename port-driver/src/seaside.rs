//! The seaside profile (upstream SeasideVPN's PORT) on the driver: the same [`connect_session`]
//! and [`Listener`] as every session, with upstream's sessions and socket options. Its second
//! TCP connection is opened by the driver when the session asks (see `redirect.rs`).

use std::io;
use std::sync::Arc;

use port_core::Config;
use port_core::seaside::{ClientConfig, Connection, ServerConfig};

use crate::addr::TcpAddr;
use crate::connect::connect_session;
use crate::error::Error;
use crate::listener::{Listener, sessions};
use crate::options::Options;
use crate::runtime::Runtime;
use crate::stream::Stream;

/// The seaside wire has no keepalive of its own: like upstream's listener, switch TCP
/// keepalive on, with `PORT_TIMEOUT` as its idle time, so a vanished peer is noticed.
fn options(config: &Config) -> Options {
    Options::for_config(config).with_tcp_keepalive(config.handshake_timeout())
}

/// Connects to an upstream SeasideVPN listener (or a [`Listener::bind_seaside`] one) with the
/// `seaside` wire profile: the INIT on a first TCP connection, then the session on a second
/// one to the port the listener names. `PORT_TIMEOUT` (the configuration's handshake timeout)
/// bounds each connect and the wait for the answer, and is the TCP keepalive idle time.
pub async fn connect_seaside(
    runtime: &Arc<dyn Runtime>,
    addr: impl Into<TcpAddr>,
    setup: &ClientConfig,
) -> Result<Stream, Error> {
    let options = options(setup.config());
    let setup = setup.clone();
    let factory = sessions(move |start| Connection::client(&setup, start.now, start.seed));
    connect_session(runtime, addr, factory, options).await
}

impl Listener {
    /// Binds a listener speaking the `seaside` wire profile, a drop-in for an upstream
    /// SeasideVPN listener: each client accepted gets a per-user socket on this listener's
    /// address, which accepts exactly one connection, from the client's address only, within
    /// `PORT_TIMEOUT`; the user id is its port (the id passed to `accept` is ignored, see
    /// [`Incoming::assigned_user_id`](crate::Incoming::assigned_user_id)).
    pub async fn bind_seaside(
        runtime: &Arc<dyn Runtime>,
        addr: impl Into<TcpAddr>,
        server: ServerConfig,
    ) -> io::Result<Listener> {
        let options = options(server.config());
        let factory = sessions(move |start| Connection::server(&server, start.now, start.seed));
        Self::bind_sessions(runtime, addr, factory, options).await
    }
}
