//! Opening client connections.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use port_core::{ClientConfig, Connection, Side};

use crate::addr::TcpAddr;
use crate::driver::{Driver, Origin};
use crate::error::Error;
use crate::listener::{SessionFactory, sessions};
use crate::options::Options;
use crate::runtime::{Runtime, Socket, within};
use crate::shared::{HandleGuard, Phase, Shared, register};
use crate::stream::Stream;
use crate::util::{fresh_start, span};

/// Connects to a PORT server and returns the stream once the handshake succeeded.
///
/// A rejection is [`Error::Rejected`] with the server's status; no answer within the
/// handshake timeout is `Error::Closed(CloseReason::HandshakeTimeout)`; a server that closes
/// the TCP connection without answering (one that refused the INIT, for instance a wrong
/// key, closes it at its random drain deadline) is [`Error::TransportClosed`]. The
/// configuration's handshake timeout also bounds the TCP connect ([`Error::ConnectTimeout`]).
pub async fn connect(
    runtime: &Arc<dyn Runtime>,
    addr: impl Into<TcpAddr>,
    setup: &ClientConfig,
) -> Result<Stream, Error> {
    let options = Options::for_config(setup.config());
    let setup = setup.clone();
    let factory =
        sessions(move |start| Connection::client(&setup, start.now, start.unix_time, start.seed));
    connect_session(runtime, addr, factory, options).await
}

/// Connects to `addr` and runs the client session `factory` builds (a stack of layers, a
/// seaside session, any [`Session`](port_core::Session)) over the TCP connection; returns the
/// stream once the session reported `Connected`. `options.timeout` bounds the TCP connect.
pub async fn connect_session(
    runtime: &Arc<dyn Runtime>,
    addr: impl Into<TcpAddr>,
    factory: SessionFactory,
    options: Options,
) -> Result<Stream, Error> {
    let addr = addr.into();
    let (socket, peer) = within(runtime, options.timeout, open(runtime, &addr, options))
        .await
        .ok_or(Error::ConnectTimeout)??;
    let session = factory(&fresh_start(&**runtime)?, peer)?;
    let shared = Shared::new(session, peer);
    // The guard closes the connection if this future is dropped or fails.
    let guard = Arc::new(HandleGuard {
        shared: shared.clone(),
    });
    let span = span(Side::Client, peer);
    Driver::spawn(
        runtime,
        shared.clone(),
        socket,
        options,
        Origin::Client,
        span,
    );
    poll_fn(|cx| {
        let mut inner = shared.lock();
        if let Phase::Connected(_) = inner.phase {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = inner.terminal_error() {
            return Poll::Ready(Err(e));
        }
        register(&mut inner.handshake_waker, cx.waker());
        Poll::Pending
    })
    .await?;
    Ok(Stream::new(shared, guard))
}

/// Resolves `addr` and connects to the first of its addresses that answers.
async fn open(
    runtime: &Arc<dyn Runtime>,
    addr: &TcpAddr,
    options: Options,
) -> io::Result<(Box<dyn Socket>, SocketAddr)> {
    let mut failed = None;
    for peer in addr.resolve(&**runtime).await? {
        match runtime.connect(peer).await {
            Ok(socket) => {
                options.apply(&*socket)?;
                return Ok((socket, peer));
            }
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}
