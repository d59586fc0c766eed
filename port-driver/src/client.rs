//! Opening a client connection over an established byte stream.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use port_core::{ClientConfig, Connection, Session, Side};

use crate::driver::Driver;
use crate::error::Error;
use crate::redirect::{RedirectSetup, Redirector};
use crate::runtime::Runtime;
use crate::shared::{HandleGuard, Phase, Shared, register};
use crate::stream::Stream;
use crate::util::{fresh_seed, span, unix_now};

/// Runs a PORT client over `socket` (already connected to `peer`) and returns the stream once
/// the handshake succeeded. A rejection is [`Error::Rejected`] with the server's status; no
/// answer within the handshake timeout is `Error::Closed(CloseReason::HandshakeTimeout)`; a
/// server that closes the TCP connection without answering (one that refused the INIT, for
/// instance a wrong key, closes it at its random drain deadline) is [`Error::TransportClosed`].
pub async fn connect<S>(
    runtime: &dyn Runtime,
    socket: S,
    peer: SocketAddr,
    setup: &ClientConfig,
) -> Result<Stream, Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let session = Connection::client(setup, Instant::now(), unix_now(), fresh_seed()?);
    let linger = setup.config().handshake_timeout();
    connect_session(runtime, socket, peer, Box::new(session), linger).await
}

/// Runs any client [`Session`] (a bare PORT connection, a stack of layers) over `socket` and
/// returns the stream once it reported `Connected`. `linger` bounds how long a connection
/// whose handles were all dropped waits for a clean end.
pub async fn connect_session<S>(
    runtime: &dyn Runtime,
    socket: S,
    peer: SocketAddr,
    session: Box<dyn Session + Send>,
    linger: Duration,
) -> Result<Stream, Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    connect_session_with(runtime, socket, peer, session, linger, None).await
}

/// [`connect_session`] for sessions that may move to a second connection (the seaside
/// profile): `redirector` opens it to `peer`'s host at the port the server names. The
/// session's handshake deadline bounds that connect too; a session that asks without a
/// redirector fails with an `Unsupported` I/O error.
pub async fn connect_session_with<S>(
    runtime: &dyn Runtime,
    socket: S,
    peer: SocketAddr,
    session: Box<dyn Session + Send>,
    linger: Duration,
    redirector: Option<Arc<dyn Redirector<S>>>,
) -> Result<Stream, Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let redirect = redirector.map(|redirector| RedirectSetup {
        redirector,
        local: peer.ip(),
    });
    let shared = Shared::new(session, peer);
    // The guard closes the connection if this future is dropped or fails.
    let guard = Arc::new(HandleGuard {
        shared: shared.clone(),
    });
    Driver::spawn(
        runtime,
        shared.clone(),
        socket,
        None,
        linger,
        span(Side::Client, peer),
        redirect,
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
