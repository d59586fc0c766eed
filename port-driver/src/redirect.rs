//! The second TCP connection of two-connection sessions (the seaside profile): what the driver
//! needs from a runtime to open one (client) or to accept exactly one (listener).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, as the runtimes hand them to the driver.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Opens second connections for one runtime and one socket type `S`.
///
/// Neither method needs its own timeout: the session's deadline (its `handshake_timeout`)
/// bounds the wait, and the driver drops the future (closing what it opened) when it passes.
pub trait Redirector<S>: Send + Sync + 'static {
    /// Client: connects to `addr` (the listener's host, at the port its server INIT named).
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<S>>;

    /// Listener: binds a listening socket on `local` with a port the kernel picks, and returns
    /// that port with a future resolving to the first connection whose peer address is `peer`.
    /// Connections from any other address are closed at once, so nobody else can take the
    /// client's place. Dropping the future closes the listening socket.
    fn bind_one(&self, local: IpAddr, peer: IpAddr) -> io::Result<(u16, BoxFuture<io::Result<S>>)>;
}

/// What a driver needs to redirect: the runtime's redirector and, on a listener, the address
/// per-user sockets bind to.
pub(crate) struct RedirectSetup<S> {
    pub(crate) redirector: Arc<dyn Redirector<S>>,
    pub(crate) local: IpAddr,
}

impl<S> Clone for RedirectSetup<S> {
    fn clone(&self) -> Self {
        RedirectSetup {
            redirector: self.redirector.clone(),
            local: self.local,
        }
    }
}
