//! What the driver needs from an async runtime, as one trait object: its clock, timers,
//! tasks, name resolution and TCP sockets. Each runtime adapter crate implements it in a
//! hundred lines or so; everything else is written once, over `Arc<dyn Runtime>`.

use std::fmt::Debug;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed future, as runtimes take and give them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An async runtime, as far as PORT is concerned.
///
/// The clock is the runtime's: a runtime with a paused or mocked clock (tokio's
/// `start_paused`) drives every deadline of every connection on it, keepalives and timeouts
/// included, so tests of timing take no wall time.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// The runtime's current instant.
    fn now(&self) -> Instant;

    /// A timer firing at `deadline` on the runtime's clock.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>>;

    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// Resolves `host:port` to socket addresses, without blocking the runtime.
    fn resolve(&self, host: String) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// Opens a TCP connection to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Socket>>>;

    /// Binds a TCP listener on `addr` (port 0: one the kernel picks).
    fn bind(&self, addr: SocketAddr) -> io::Result<Box<dyn Acceptor>>;
}

/// A resettable timer.
pub trait Timer: Send + Debug {
    /// Makes the timer fire at `deadline` instead.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// The operating system's handle of a socket, through which socket options are set.
#[cfg(unix)]
pub use std::os::fd::AsFd as AsSocketHandle;
/// The operating system's handle of a socket, through which socket options are set.
#[cfg(windows)]
pub use std::os::windows::io::AsSocket as AsSocketHandle;

/// A connected TCP stream of some runtime: a `futures-io` byte stream whose socket options
/// can be set.
pub trait Socket: AsyncRead + AsyncWrite + AsSocketHandle + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + AsSocketHandle + Send + Unpin + 'static> Socket for T {}

/// A listening TCP socket of some runtime.
pub trait Acceptor: Send + Sync + 'static {
    /// Polls for the next accepted connection and its peer's address.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Socket>, SocketAddr)>>;
    /// The local address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Waits for `duration` on `runtime`'s clock.
pub async fn sleep(runtime: &dyn Runtime, duration: Duration) {
    let mut timer = runtime.new_timer(runtime.now() + duration);
    poll_fn(|cx| timer.as_mut().poll_elapsed(cx)).await;
}

/// Runs `future` on `runtime` for at most `limit`; `None` when the time ran out first.
pub(crate) async fn within<T>(
    runtime: &Arc<dyn Runtime>,
    limit: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    let mut timer = runtime.new_timer(runtime.now() + limit);
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.as_mut().poll_elapsed(cx).map(|()| None)
    })
    .await
}
