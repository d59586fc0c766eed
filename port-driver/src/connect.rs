//! Opening client connections.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;

use port_core::{ClientConfig, Connection, Session, Side};

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
/// A TCP connection that cannot be made is [`Error::Io`] (or [`Error::ConnectTimeout`]: the
/// configuration's handshake timeout bounds the TCP connect too). Once it is made, a
/// rejection is [`Error::Rejected`] with the server's status, and a server that never sends a
/// byte of an answer, whether it closes the connection (a PORT server that refused the INIT,
/// for instance for a wrong key, does so at its random drain deadline) or stays silent past
/// the handshake timeout, is [`Error::Unanswered`].
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
    connect_session_with_first(runtime, addr, factory, options, Bytes::new()).await
}

/// [`connect_session`] with `first` (unless empty) as the connection's first message. A PORT
/// session takes a first message of up to [`MAX_EARLY_DATA`](port_core::MAX_EARLY_DATA)
/// bytes into its INIT, as early data (`docs/PROTOCOL.md` §5.8): it reaches the server's
/// application with the handshake instead of a round trip later, and has no forward secrecy.
/// A session that cannot take it then (larger, or a stack whose top layer waits for its own
/// handshake) sends it as its first message once connected. Either way it is sent before
/// anything written to the returned stream.
pub async fn connect_session_with_first(
    runtime: &Arc<dyn Runtime>,
    addr: impl Into<TcpAddr>,
    factory: SessionFactory,
    options: Options,
    first: Bytes,
) -> Result<Stream, Error> {
    let addr = addr.into();
    let (socket, peer, mut session) = within(
        runtime,
        options.timeout,
        open(runtime, &addr, options, &factory),
    )
    .await
    .ok_or(Error::ConnectTimeout)??;
    let first = match first.is_empty() {
        true => None,
        false => session.send(first.clone()).err().map(|_| first),
    };
    let span = span(Side::Client, peer);
    let shared = Shared::new(runtime, session, socket, peer);
    // The guard closes the connection if this future is dropped or fails.
    let guard = Arc::new(HandleGuard {
        shared: shared.clone(),
    });
    Driver::spawn(runtime, shared.clone(), options, Origin::Client, span);
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
    .await
    .map_err(|e| unanswered(e, &shared))?;
    let mut stream = Stream::new(shared, guard);
    if let Some(first) = first {
        stream.send(first).await?;
    }
    Ok(stream)
}

/// A handshake that failed before the server sent a single byte is [`Error::Unanswered`]:
/// that is all a client can observe of a server that does not take its key.
fn unanswered(error: Error, shared: &Shared) -> Error {
    if shared.lock().traffic.read > 0 {
        return error;
    }
    match error {
        Error::Closed(port_core::CloseReason::HandshakeTimeout) => {
            Error::Unanswered { closed: false }
        }
        Error::TransportClosed => Error::Unanswered { closed: true },
        error => error,
    }
}

/// Resolves `addr` and connects to the first of its addresses that answers, with the session
/// `factory` builds for it. The session (for PORT, the client INIT and its two X25519
/// products) is built while the kernel completes the TCP handshake, so it adds no time of its
/// own to the connection's set-up.
async fn open(
    runtime: &Arc<dyn Runtime>,
    addr: &TcpAddr,
    options: Options,
    factory: &SessionFactory,
) -> Result<(Box<dyn Socket>, SocketAddr, Box<dyn Session + Send>), Error> {
    let mut failed = None;
    for peer in addr.resolve(&**runtime).await? {
        let mut connect = runtime.connect(peer);
        // The first poll sends the SYN; the answer comes while the session is built.
        let first = poll_fn(|cx| Poll::Ready(connect.as_mut().poll(cx))).await;
        let session = factory(&fresh_start(&**runtime)?, peer)?;
        tracing::debug!(%peer, "session ready");
        let connected = match first {
            Poll::Ready(connected) => connected,
            Poll::Pending => connect.await,
        };
        match connected {
            Ok(socket) => {
                tracing::debug!(%peer, "tcp connected");
                options.apply(&*socket)?;
                return Ok((socket, peer, session));
            }
            Err(e) => failed = Some(e),
        }
    }
    let failed = failed.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    Err(failed.into())
}
