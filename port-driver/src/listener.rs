//! Accepting PORT connections: every TCP connection runs its handshake on its own task, and
//! only clients whose INIT authenticated reach the application, as [`Incoming`].

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_io::{AsyncRead, AsyncWrite};
use port_core::{Connection, ServerConfig, Session, Side, Status};

use crate::driver::Driver;
use crate::error::Error;
use crate::redirect::{RedirectSetup, Redirector};
use crate::runtime::Runtime;
use crate::shared::{HandleGuard, Shared, register};
use crate::stream::Stream;
use crate::util::{fresh_seed, span, unix_now};

/// A source of accepted byte streams (a TCP listener of some runtime).
pub trait Acceptor: Send + Sync + 'static {
    /// The accepted stream type.
    type Socket: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// Polls for the next accepted connection.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Socket, SocketAddr)>>;
    /// The local address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

#[derive(Default)]
struct Ready {
    queue: VecDeque<Incoming>,
    waker: Option<Waker>,
}

/// Authenticated clients waiting for `Listener::accept`.
#[derive(Default)]
pub(crate) struct ListenerShared {
    ready: Mutex<Ready>,
}

impl ListenerShared {
    pub(crate) fn push(&self, incoming: Incoming) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.queue.push_back(incoming);
        if let Some(w) = ready.waker.take() {
            w.wake();
        }
    }
}

/// Builds the server session for a connection accepted from a peer.
pub type SessionFactory =
    Arc<dyn Fn(SocketAddr) -> Result<Box<dyn Session + Send>, Error> + Send + Sync>;

/// Accepts PORT connections (or connections of any server [`Session`]) on an [`Acceptor`].
pub struct Listener<A: Acceptor> {
    acceptor: A,
    runtime: Arc<dyn Runtime>,
    factory: SessionFactory,
    linger: Duration,
    ready: Arc<ListenerShared>,
    redirector: Option<Arc<dyn Redirector<A::Socket>>>,
}

impl<A: Acceptor> Listener<A> {
    /// A listener serving PORT with `server` on `acceptor`, spawning its tasks on `runtime`.
    pub fn new(acceptor: A, runtime: Arc<dyn Runtime>, server: ServerConfig) -> Self {
        let linger = server.config().handshake_timeout();
        let factory: SessionFactory = Arc::new(move |_peer| {
            let session = Connection::server(&server, Instant::now(), unix_now(), fresh_seed()?);
            Ok(Box::new(session) as Box<dyn Session + Send>)
        });
        Self::with_factory(acceptor, runtime, factory, linger)
    }

    /// A listener running the sessions `factory` builds. A session that reports
    /// `Authenticate` is handed out as an [`Incoming`] for a decision; one that reports
    /// `Connected` without asking (a stack without PORT, say) is handed out already accepted.
    pub fn with_factory(
        acceptor: A,
        runtime: Arc<dyn Runtime>,
        factory: SessionFactory,
        linger: Duration,
    ) -> Self {
        Listener {
            acceptor,
            runtime,
            factory,
            linger,
            ready: Arc::default(),
            redirector: None,
        }
    }

    /// Lets the sessions of this listener move to a second connection (the seaside profile):
    /// each gets a per-user socket from `redirector`, bound on this listener's address, whose
    /// port is its user id.
    pub fn with_redirector(mut self, redirector: Arc<dyn Redirector<A::Socket>>) -> Self {
        self.redirector = Some(redirector);
        self
    }

    /// The next client whose INIT authenticated. Connections that never get there (silent,
    /// slow, garbage, replayed) are drained and closed on their own tasks without ever
    /// showing up here, and without delaying anyone else.
    pub async fn accept(&self) -> Result<Incoming, Error> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next authenticated client.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Error>> {
        loop {
            {
                let mut ready = self.ready.ready.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(incoming) = ready.queue.pop_front() {
                    return Poll::Ready(Ok(incoming));
                }
                register(&mut ready.waker, cx.waker());
            }
            match self.acceptor.poll_accept(cx) {
                Poll::Ready(Ok((socket, peer))) => self.start(socket, peer)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn start(&self, socket: A::Socket, peer: SocketAddr) -> Result<(), Error> {
        let session = (self.factory)(peer)?;
        let redirect = match &self.redirector {
            Some(redirector) => Some(RedirectSetup {
                redirector: redirector.clone(),
                local: self.acceptor.local_addr()?.ip(),
            }),
            None => None,
        };
        let shared = Shared::new(session, peer);
        Driver::spawn(
            &*self.runtime,
            shared,
            socket,
            Some(Arc::downgrade(&self.ready)),
            self.linger,
            span(Side::Server, peer),
            redirect,
        );
        Ok(())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }
}

/// A client whose token authenticated, waiting for the application's decision (within the
/// configured handshake timeout), or a connection of a session that needed no decision.
/// Dropping it closes the connection without a reply.
pub struct Incoming {
    shared: Arc<Shared>,
    guard: Arc<HandleGuard>,
    token: Bytes,
    client_type: u8,
    /// `Authenticate` came: `accept`/`reject` go to the session.
    pending: bool,
}

impl Incoming {
    pub(crate) fn new(shared: Arc<Shared>, token: Bytes, client_type: u8, pending: bool) -> Self {
        let guard = Arc::new(HandleGuard {
            shared: shared.clone(),
        });
        Incoming {
            shared,
            guard,
            token,
            client_type,
            pending,
        }
    }

    /// True if the session asks for a decision (a PORT token); false if it is connected
    /// already and `accept` just hands out the stream.
    pub fn needs_decision(&self) -> bool {
        self.pending
    }

    /// The client's token (empty when no decision is needed).
    pub fn token(&self) -> &Bytes {
        &self.token
    }

    /// The client type byte from the INIT.
    pub fn client_type(&self) -> u8 {
        self.client_type
    }

    /// The user id a two-connection session (the seaside profile) will have: the port of the
    /// per-user socket opened for it. `None` for other sessions.
    pub fn assigned_user_id(&self) -> Option<u16> {
        self.shared.lock().assigned_user_id
    }

    /// The client's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer
    }

    /// Accepts the client with `user_id` (ignored when no decision is needed). A session
    /// that moves to a second connection (the seaside profile) is accepted with the port of
    /// its per-user socket instead, which is the user id its client receives: see
    /// [`assigned_user_id`](Self::assigned_user_id).
    pub fn accept(self, user_id: u32) -> Result<Stream, Error> {
        if self.pending {
            let mut inner = self.shared.lock();
            let user_id = inner.assigned_user_id.map_or(user_id, u32::from);
            if let Err(e) = inner.session.accept(user_id) {
                return Err(inner.terminal_error().unwrap_or(Error::Session(e)));
            }
            inner.wake_driver();
        }
        Ok(Stream::new(self.shared, self.guard))
    }

    /// Rejects the client with a failure `status`, which the client receives.
    pub fn reject(self, status: Status) -> Result<(), Error> {
        let mut inner = self.shared.lock();
        inner.session.reject(status).map_err(Error::Session)?;
        inner.wake_driver();
        Ok(())
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.shared.peer)
            .field("client_type", &self.client_type)
            .field("token_len", &self.token.len())
            .finish_non_exhaustive()
    }
}
