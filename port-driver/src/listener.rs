//! Accepting PORT connections: every TCP connection runs its handshake on its own task, and
//! only clients whose INIT authenticated reach the application, as an [`Incoming`].

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use port_core::{Connection, ServerConfig, Session, Side, Start};

use crate::addr::TcpAddr;
use crate::driver::{Driver, Origin};
use crate::error::Error;
use crate::incoming::{Incoming, ListenerShared};
use crate::options::Options;
use crate::runtime::{Acceptor, Runtime, Socket};
use crate::shared::Shared;
use crate::util::{fresh_start, span};

/// Builds the session of one connection: from the connection's [`Start`] (the runtime's
/// clock, the wall clock, a fresh seed) and the peer's address. Listeners call it for every
/// accepted TCP connection, [`connect_session`](crate::connect_session) once.
pub type SessionFactory =
    Arc<dyn Fn(&Start, SocketAddr) -> Result<Box<dyn Session + Send>, Error> + Send + Sync>;

/// A [`SessionFactory`] of sessions made from their start alone (a PORT or seaside
/// connection with its set-up).
pub(crate) fn sessions<S, F>(make: F) -> SessionFactory
where
    S: Session + Send + 'static,
    F: Fn(&Start) -> S + Send + Sync + 'static,
{
    Arc::new(move |start, _peer| Ok(Box::new(make(start)) as Box<dyn Session + Send>))
}

/// Accepts PORT connections (or connections of any server [`Session`]).
///
/// Every TCP connection runs its handshake on its own task, and only clients whose INIT
/// authenticated reach the application, as [`Incoming`]. Connections that never get there
/// (silent, slow, garbage, replayed) are drained and closed on their own tasks without ever
/// showing up, and without delaying anyone else.
pub struct Listener {
    acceptor: Box<dyn Acceptor>,
    runtime: Arc<dyn Runtime>,
    factory: SessionFactory,
    options: Options,
    /// Where per-user sockets are bound (the address the listener is bound to).
    local: IpAddr,
    ready: Arc<ListenerShared>,
}

impl Listener {
    /// Binds a TCP listener on `addr` serving PORT/1 with `server`.
    pub async fn bind(
        runtime: &Arc<dyn Runtime>,
        addr: impl Into<TcpAddr>,
        server: ServerConfig,
    ) -> io::Result<Listener> {
        let options = Options::for_config(server.config());
        let factory = sessions(move |start| {
            Connection::server(&server, start.now, start.unix_time, start.seed)
        });
        Self::bind_sessions(runtime, addr, factory, options).await
    }

    /// Binds a TCP listener on `addr` running the server sessions `factory` builds (a stack of
    /// layers, a seaside session, any [`Session`]). A session that reports `Authenticate` is
    /// handed out as an [`Incoming`] for a decision; one that reports `Connected` without
    /// asking (a stack without PORT, say) is handed out already accepted.
    pub async fn bind_sessions(
        runtime: &Arc<dyn Runtime>,
        addr: impl Into<TcpAddr>,
        factory: SessionFactory,
        options: Options,
    ) -> io::Result<Listener> {
        let mut failed = None;
        for addr in addr.into().resolve(&**runtime).await? {
            match runtime.bind(addr) {
                Ok(acceptor) => {
                    let local = acceptor.local_addr()?.ip();
                    return Ok(Listener {
                        acceptor,
                        runtime: runtime.clone(),
                        factory,
                        options,
                        local,
                        ready: Arc::default(),
                    });
                }
                Err(e) => failed = Some(e),
            }
        }
        Err(failed.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    }

    /// The next client whose INIT authenticated (or connection whose session needed no
    /// decision). An error is the listening socket's (a full file table, say): the listener
    /// still works, and the next call may succeed.
    pub async fn accept(&self) -> Result<Incoming, Error> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next authenticated client.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        loop {
            if let Some(incoming) = self.ready.pop(cx) {
                return Poll::Ready(Ok(incoming));
            }
            match self.acceptor.poll_accept(cx) {
                Poll::Ready(Ok((socket, peer))) => self.start(socket, peer)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn start(&self, socket: Box<dyn Socket>, peer: SocketAddr) -> Result<(), Error> {
        self.options.apply(&*socket)?;
        let session = (self.factory)(&fresh_start(&*self.runtime)?, peer)?;
        let origin = Origin::Listener {
            queue: Arc::downgrade(&self.ready),
            local: self.local,
        };
        let span = span(Side::Server, peer);
        let shared = Shared::new(session, peer);
        Driver::spawn(&self.runtime, shared, socket, self.options, origin, span);
        Ok(())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.acceptor.local_addr().ok())
            .field("runtime", &self.runtime)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
