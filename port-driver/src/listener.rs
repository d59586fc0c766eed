//! Accepting PORT connections: every TCP connection runs its handshake on its own task, and
//! only clients whose INIT authenticated reach the application, as an [`Incoming`].

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use port_core::{Connection, ServerConfig, Session, Side, Start};

use crate::addr::TcpAddr;
use crate::driver::{Driver, Origin};
use crate::error::Error;
use crate::incoming::{Incoming, ListenerShared};
use crate::options::Options;
use crate::runtime::{Acceptor, Runtime, Socket, Timer};
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
    /// Armed while accepting fails for want of descriptors or memory.
    backoff: Mutex<Backoff>,
}

/// Waiting out a full file table (or memory) before accepting again.
#[derive(Default)]
struct Backoff {
    timer: Option<Pin<Box<dyn Timer>>>,
    delay: Duration,
}

/// The first and the longest wait after an accept failed for want of resources.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Unauthenticated connections evicted at once when the file table is full.
const EVICT_BATCH: usize = 8;

impl Listener {
    /// Binds a TCP listener on `addr` serving PORT/1 with `server`.
    pub async fn bind(
        runtime: &Arc<dyn Runtime>,
        addr: impl Into<TcpAddr>,
        server: ServerConfig,
    ) -> io::Result<Listener> {
        let options = Options::for_config(server.config());
        Self::bind_with(runtime, addr, server, options).await
    }

    /// [`bind`](Self::bind) with `options`: a fallback service for peers that do not
    /// authenticate, a cap on unauthenticated connections, TCP keepalive.
    pub async fn bind_with(
        runtime: &Arc<dyn Runtime>,
        addr: impl Into<TcpAddr>,
        server: ServerConfig,
        options: Options,
    ) -> io::Result<Listener> {
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
                        backoff: Mutex::default(),
                    });
                }
                Err(e) => failed = Some(e),
            }
        }
        Err(failed.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    }

    /// The next client whose INIT authenticated (or connection whose session needed no
    /// decision). An error is the listening socket's: the listener still works, and the next
    /// call may succeed.
    ///
    /// A full file table (or a lack of memory) is not returned: the listener evicts its oldest
    /// unauthenticated connections to free descriptors and tries again, and when there are
    /// none to evict it waits (1 ms, doubling up to 1 s) instead of spinning; each episode is
    /// logged once, at `warn`.
    pub async fn accept(&self) -> Result<Incoming, Error> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next authenticated client.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        loop {
            if let Some(incoming) = self.ready.pop(cx) {
                return Poll::Ready(Ok(incoming));
            }
            if self.backing_off(cx) {
                return Poll::Pending;
            }
            match self.acceptor.poll_accept(cx) {
                Poll::Ready(Ok((socket, peer))) => {
                    self.lock_backoff().delay = Duration::ZERO;
                    self.start(socket, peer)?;
                }
                Poll::Ready(Err(e)) if out_of_resources(&e) => self.starved(&e),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Accepting failed for want of descriptors: evict the oldest unauthenticated
    /// connections (their tasks close them) and wait a little for the descriptors to come
    /// back; with none to evict, wait longer each time.
    fn starved(&self, error: &io::Error) {
        let evicted = self.ready.unauthenticated.evict_oldest(EVICT_BATCH);
        let mut backoff = self.lock_backoff();
        if backoff.delay.is_zero() {
            tracing::warn!(%error, evicted, "accept failed: evicting unauthenticated connections and backing off");
        }
        backoff.delay = match evicted {
            0 => (backoff.delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX),
            _ => BACKOFF_MIN,
        };
        let deadline = self.runtime.now() + backoff.delay;
        backoff.timer = Some(self.runtime.new_timer(deadline));
    }

    /// True while a backoff timer runs (`cx` is woken when it ends).
    fn backing_off(&self, cx: &mut Context<'_>) -> bool {
        let mut backoff = self.lock_backoff();
        let Some(timer) = backoff.timer.as_mut() else {
            return false;
        };
        if timer.as_mut().poll_elapsed(cx).is_pending() {
            return true;
        }
        backoff.timer = None;
        false
    }

    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, socket: Box<dyn Socket>, peer: SocketAddr) -> Result<(), Error> {
        let waiting = self.ready.unauthenticated.count();
        if waiting >= self.options.max_unauthenticated {
            let over = waiting + 1 - self.options.max_unauthenticated;
            self.ready.unauthenticated.evict_oldest(over);
        }
        self.options.apply(&*socket)?;
        let session = (self.factory)(&fresh_start(&*self.runtime)?, peer)?;
        let origin = Origin::Listener {
            queue: Arc::downgrade(&self.ready),
            local: self.local,
        };
        let span = span(Side::Server, peer);
        span.in_scope(|| tracing::debug!("tcp accepted"));
        let shared = Shared::new(&self.runtime, session, socket, peer);
        Driver::spawn(&self.runtime, shared, self.options, origin, span);
        Ok(())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }
}

/// True for accept errors that say the process or the system ran out of descriptors or
/// memory, which pass as connections close.
fn out_of_resources(error: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        if let Some(errno) = Errno::from_io_error(error) {
            return [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM].contains(&errno);
        }
    }
    error.kind() == io::ErrorKind::OutOfMemory
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
