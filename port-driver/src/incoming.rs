//! What reaches a listener's application: a client whose token authenticated, waiting for a
//! decision, and the queue such clients wait in until `Listener::accept` takes them.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use bytes::Bytes;
use port_core::Status;

use crate::error::Error;
use crate::shared::{HandleGuard, Shared, register};
use crate::stream::Stream;
use crate::unauthenticated::Unauthenticated;

#[derive(Default)]
struct Ready {
    queue: VecDeque<Incoming>,
    waker: Option<Waker>,
}

/// Authenticated clients waiting for `Listener::accept`, and the connections not
/// authenticated yet.
#[derive(Default)]
pub(crate) struct ListenerShared {
    ready: Mutex<Ready>,
    pub(crate) unauthenticated: Unauthenticated,
}

impl ListenerShared {
    pub(crate) fn push(&self, incoming: Incoming) {
        let mut ready = self.lock();
        ready.queue.push_back(incoming);
        if let Some(w) = ready.waker.take() {
            w.wake();
        }
    }

    /// The next client waiting, or `None` after registering `cx` to hear of one.
    pub(crate) fn pop(&self, cx: &Context<'_>) -> Option<Incoming> {
        let mut ready = self.lock();
        let next = ready.queue.pop_front();
        if next.is_none() {
            register(&mut ready.waker, cx.waker());
        }
        next
    }

    fn lock(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
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
