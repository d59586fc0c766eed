//! Opening a client connection over an established byte stream.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use port_core::{ClientConfig, Connection, Side};

use crate::driver::Driver;
use crate::error::Error;
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
    let shared = Shared::new(Box::new(session), peer);
    // The guard closes the connection if this future is dropped or fails.
    let guard = Arc::new(HandleGuard {
        shared: shared.clone(),
    });
    Driver::spawn(
        runtime,
        shared.clone(),
        socket,
        None,
        setup.config().handshake_timeout(),
        span(Side::Client, peer),
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
