//! State shared between a connection's driver task and the application's handles.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use port_core::{CloseReason, Session};

use crate::error::Error;
use crate::metrics::ConnectionMetrics;
use crate::runtime::{Runtime, Socket};
use crate::transport::Transport;

/// Received bytes held for the application before the driver stops reading the socket.
pub(crate) const RECEIVE_WINDOW: usize = 256 * 1024;
/// Bytes accepted from the application (queued or being written) before writers wait.
pub(crate) const SEND_WINDOW: usize = 256 * 1024;

/// Bytes a connection moved over its TCP socket (both sockets, for a session that moved to a
/// second connection): PORT's framing, padding and handshake included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Bytes read from the socket.
    pub read: u64,
    /// Bytes written to the socket.
    pub written: u64,
}

/// Where the handshake stands, as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Handshaking,
    /// Server: the token authenticated; waiting for the application's decision.
    Authenticating,
    Connected(u32),
}

pub(crate) struct Inner {
    pub(crate) session: Box<dyn Session + Send>,
    pub(crate) phase: Phase,
    pub(crate) received: VecDeque<Bytes>,
    pub(crate) received_bytes: usize,
    /// The reason reported by the session, once it closed.
    pub(crate) close_reason: Option<CloseReason>,
    /// A failure of the transport (or an end of it without TERM).
    pub(crate) transport_error: Option<Error>,
    /// The driver task ended: nothing will change any more.
    pub(crate) driver_done: bool,
    /// The socket, and what is on its way into it.
    pub(crate) transport: Transport,
    /// What the connection reported to the metrics facade so far (taken when it ends).
    pub(crate) metrics: Option<ConnectionMetrics>,
    /// No handle can read any more: received messages are dropped as they arrive.
    pub(crate) discard_input: bool,
    pub(crate) driver_waker: Option<Waker>,
    pub(crate) reader_waker: Option<Waker>,
    pub(crate) writer_waker: Option<Waker>,
    pub(crate) handshake_waker: Option<Waker>,
    /// Listener, two-connection sessions: the port of the per-user socket, which is the user
    /// id the session must be accepted with.
    pub(crate) assigned_user_id: Option<u16>,
    /// Bytes that crossed the socket(s).
    pub(crate) traffic: Traffic,
    /// Listener: the connection was evicted before it authenticated (the cap, or a full
    /// file table): its task closes the socket.
    pub(crate) evicted: bool,
    /// The application cut the connection: its task closes the socket without TERM.
    pub(crate) aborted: bool,
}

impl Inner {
    /// The error to report to a handle once the connection cannot carry data any more.
    pub(crate) fn terminal_error(&self) -> Option<Error> {
        if let Some(reason) = self.close_reason {
            return Some(match reason {
                CloseReason::Rejected(status) => Error::Rejected(status),
                CloseReason::TransportClosed => Error::TransportClosed,
                reason => Error::Closed(reason),
            });
        }
        if let Some(e) = &self.transport_error {
            return Some(e.clone());
        }
        self.driver_done.then_some(Error::TransportClosed)
    }

    /// The error for a reader: none while messages or a clean end of stream can still come.
    pub(crate) fn read_error(&self) -> Option<Error> {
        match self.close_reason {
            Some(reason) if reason.is_graceful() => None,
            _ => self.terminal_error(),
        }
    }

    pub(crate) fn unsent(&self) -> usize {
        self.session.send_buffered() + self.transport.pending()
    }

    /// Reports to the metrics facade what changed since the last report.
    pub(crate) fn update_metrics(&mut self) {
        if let Some(mut metrics) = self.metrics.take() {
            metrics.update(self);
            self.metrics = Some(metrics);
        }
    }

    pub(crate) fn wake_driver(&mut self) {
        wake(&mut self.driver_waker);
    }

    pub(crate) fn wake_reader(&mut self) {
        wake(&mut self.reader_waker);
    }

    pub(crate) fn wake_writer(&mut self) {
        wake(&mut self.writer_waker);
    }

    pub(crate) fn wake_handshake(&mut self) {
        wake(&mut self.handshake_waker);
    }

    pub(crate) fn wake_all(&mut self) {
        self.wake_reader();
        self.wake_writer();
        self.wake_handshake();
    }
}

/// Wakes the task waiting in `slot`, if any.
fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

/// Stores `waker` in `slot` unless an equivalent one is already there.
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) peer: SocketAddr,
    /// The runtime's clock, for the application's writer.
    pub(crate) runtime: Arc<dyn Runtime>,
}

impl Shared {
    pub(crate) fn new(
        runtime: &Arc<dyn Runtime>,
        session: Box<dyn Session + Send>,
        socket: Box<dyn Socket>,
        peer: SocketAddr,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                session,
                phase: Phase::Handshaking,
                received: VecDeque::new(),
                received_bytes: 0,
                close_reason: None,
                transport_error: None,
                driver_done: false,
                transport: Transport::new(socket),
                metrics: None,
                discard_input: false,
                driver_waker: None,
                reader_waker: None,
                writer_waker: None,
                handshake_waker: None,
                assigned_user_id: None,
                traffic: Traffic::default(),
                evicted: false,
                aborted: false,
            }),
            peer,
            runtime: runtime.clone(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a panic elsewhere while it was
        // held does not make it unusable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts the connection: nothing more is sent (no TERM, nothing queued), the socket is
    /// closed, and every handle's next call fails with [`Error::Aborted`].
    pub(crate) fn abort(&self) {
        let mut inner = self.lock();
        if inner.driver_done || inner.aborted {
            return;
        }
        inner.aborted = true;
        // Nothing more reaches the socket, not even from a writer that skips `poll_ready`.
        inner.transport.direct = false;
        inner.transport_error.get_or_insert(Error::Aborted);
        inner.discard_input = true;
        inner.received.clear();
        inner.received_bytes = 0;
        inner.wake_all();
    }
}

/// Held by every application handle of a connection; when the last one goes, the connection
/// is closed gracefully in the background (drop never blocks and never hangs the driver).
pub(crate) struct HandleGuard {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.discard_input = true;
        inner.received.clear();
        inner.received_bytes = 0;
        inner.session.close();
        inner.wake_driver();
    }
}
