//! The driver task: the one loop that moves bytes between a socket and a session, fires the
//! session's timers and routes its events to the application's handles.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use port_core::{Event, Link, Redirect, Status};

use crate::error::Error;
use crate::fallback::{self, Handoff};
use crate::incoming::{Incoming, ListenerShared};
use crate::metrics::ConnectionMetrics;
use crate::options::Options;
use crate::redirect::SecondLink;
use crate::runtime::{Runtime, Timer};
use crate::shared::{Inner, Phase, RECEIVE_WINDOW, Shared, register};
use crate::unauthenticated::Slot;

/// Size of one socket read.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// One read buffer per runtime thread, shared by every connection that thread drives. A
    /// read's bytes go to the session at once (it keeps what it needs), so the buffer is free
    /// again when `poll_read` returns, and 10 000 idle connections hold no read buffer at all.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// One `poll_read` into the thread's read buffer; `take` sees the bytes that arrived (an empty
/// slice at end of stream).
fn read_into<S: AsyncRead + Unpin + ?Sized, T>(
    socket: &mut S,
    cx: &mut Context<'_>,
    take: impl FnOnce(&[u8]) -> T,
) -> Poll<io::Result<T>> {
    READ_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => Pin::new(socket)
            .poll_read(cx, &mut buf)
            .map_ok(|n| take(&buf[..n])),
        // A socket whose own poll_read drives another connection on this thread.
        Err(_) => {
            let mut buf = vec![0u8; READ_CHUNK];
            Pin::new(socket)
                .poll_read(cx, &mut buf)
                .map_ok(|n| take(&buf[..n]))
        }
    })
}
/// Keeps `bytes` for a fallback while `replay` is kept, up to [`MAX_REPLAY`].
fn keep_for_fallback(replay: &mut Option<BytesMut>, bytes: &[u8]) {
    if let Some(kept) = replay {
        if kept.len() + bytes.len() > MAX_REPLAY {
            *replay = None;
        } else {
            kept.extend_from_slice(bytes);
        }
    }
}

/// Socket reads per poll before the task yields, so one busy connection cannot starve others.
const READS_PER_POLL: usize = 16;
/// How long a closed connection waits for the peer's FIN after sending its own.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// The most bytes a listener keeps of an unauthenticated peer for its fallback: far more than
/// any session reads before it judges a peer (a whole INIT is under 17 KiB).
const MAX_REPLAY: usize = 256 * 1024;

/// Where a driver's connection came from.
pub(crate) enum Origin {
    /// A client's connect.
    Client,
    /// A listener's accept: authenticated clients are handed to it, and per-user sockets
    /// (for sessions that ask for a second connection) are bound on `local`.
    Listener {
        queue: Weak<ListenerShared>,
        local: IpAddr,
    },
}

/// The future that runs one connection until it is over. Spawned on the runtime.
pub(crate) struct Driver {
    runtime: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    options: Options,
    timer: Pin<Box<dyn Timer>>,
    timer_deadline: Option<Instant>,
    eof: bool,
    /// Our FIN was sent (the session is over).
    write_shut: bool,
    /// Until when a closed connection drains the peer's last bytes.
    close_until: Option<Instant>,
    origin: Origin,
    /// Holds the listener's queue once a client was handed over: dropping the last reference
    /// here, under the connection's lock, would drop that very `Incoming` and deadlock.
    listener_ref: Option<Arc<ListenerShared>>,
    linger_until: Option<Instant>,
    span: tracing::Span,
    /// The second connection of a session that asks for one.
    second: SecondLink,
    /// Listener: the connection's place among the unauthenticated, until it authenticates.
    slot: Option<Slot>,
    /// Listener with a fallback: every byte read before authentication, for the fallback.
    replay: Option<BytesMut>,
    /// Set when the session asked for the fallback: what the splice needs.
    handoff: Option<Handoff>,
    /// The session's refusal of its peer was logged.
    refusal_logged: bool,
}

impl Driver {
    /// Starts running `shared`'s session over its socket on `runtime`.
    pub(crate) fn spawn(
        runtime: &Arc<dyn Runtime>,
        shared: Arc<Shared>,
        options: Options,
        origin: Origin,
        span: tracing::Span,
    ) {
        let now = runtime.now();
        {
            let mut inner = shared.lock();
            inner.session.handle_link_up(now, Link::TCP);
            inner.metrics = Some(ConnectionMetrics::start(match origin {
                Origin::Client => "client",
                Origin::Listener { .. } => "server",
            }));
        }
        let (slot, replay) = match &origin {
            Origin::Listener { queue, .. } => (
                queue
                    .upgrade()
                    .map(|l| l.unauthenticated.admit(&shared, queue.clone())),
                options.fallback.map(|_| BytesMut::new()),
            ),
            Origin::Client => (None, None),
        };
        let mut driver = Driver {
            runtime: runtime.clone(),
            shared,
            options,
            // Re-armed before its first poll; an instant now keeps construction cheap.
            timer: runtime.new_timer(now + options.timeout),
            timer_deadline: None,
            eof: false,
            write_shut: false,
            close_until: None,
            origin,
            listener_ref: None,
            linger_until: None,
            span,
            second: SecondLink::default(),
            slot,
            replay,
            handoff: None,
            refusal_logged: false,
        };
        let runtime = runtime.clone();
        runtime.clone().spawn(Box::pin(async move {
            (&mut driver).await;
            if let Some(handoff) = driver.handoff.take() {
                let (shared, options) = (driver.shared.clone(), driver.options);
                fallback::splice(runtime, shared, handoff, options).await;
            }
        }));
    }
}

impl Drop for Driver {
    /// A driver dropped before its connection ended (its runtime shut down) still closes the
    /// socket and tells the handles, which would otherwise wait for it forever.
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.transport.take();
        if !inner.driver_done {
            inner.driver_done = true;
            inner.wake_all();
        }
    }
}

/// What one pass over the socket and the session achieved.
enum Step {
    Progress,
    Idle,
    Done,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let span = this.span.clone();
        let _entered = span.enter();
        let shared = this.shared.clone();
        let mut inner = shared.lock();
        register(&mut inner.driver_waker, cx.waker());
        let mut reads = 0;
        loop {
            match this.step(cx, &mut inner, &mut reads) {
                Step::Progress if reads >= READS_PER_POLL => {
                    cx.waker().wake_by_ref();
                    break;
                }
                Step::Progress => {}
                Step::Idle => break,
                Step::Done => {
                    // Closes the socket now (unless the fallback has it): handles may keep
                    // the shared state alive for long.
                    inner.transport.take();
                    inner.driver_done = true;
                    inner.wake_all();
                    if let Some(metrics) = inner.metrics.take() {
                        metrics.finish(&inner, this.handoff.is_some());
                    }
                    return Poll::Ready(());
                }
            }
        }
        this.allow_direct_writes(&mut inner);
        inner.update_metrics();
        Poll::Pending
    }
}

impl Driver {
    fn step(&mut self, cx: &mut Context<'_>, inner: &mut Inner, reads: &mut usize) -> Step {
        if inner.evicted || inner.aborted {
            tracing::debug!(
                evicted = inner.evicted,
                "cut: the socket closes without TERM"
            );
            return Step::Done;
        }
        if let Some(e) = inner.transport.failed.take() {
            return self.fail(inner, e.into());
        }
        let now = self.runtime.now();
        let mut progress = false;
        match inner.write(cx, now) {
            Ok(true) => {
                inner.wake_writer();
                progress = true;
            }
            Ok(false) => {}
            Err(e) => return self.fail(inner, e.into()),
        }
        match self.poll_redirect(cx, inner, now) {
            Ok(p) => progress |= p,
            Err(e) => return self.fail(inner, e),
        }
        match self.read(cx, inner, now, reads) {
            Ok(p) => progress |= p,
            Err(e) => return self.fail(inner, e.into()),
        }
        progress |= self.route_events(inner);
        if self.hand_off(inner) {
            return Step::Done;
        }
        if self.second.is_pending() && inner.session.is_closed() {
            // The session gave up (its deadline passed, or it was rejected): close the
            // per-user socket or abandon the connect now, not after the FIN linger.
            self.second.abandon();
        }
        if !self.write_shut && inner.transport.pending() == 0 && inner.session.is_send_finished() {
            let socket = match inner.transport.socket() {
                Ok(socket) => socket,
                Err(e) => return self.fail(inner, e.into()),
            };
            match Pin::new(socket).poll_close(cx) {
                Poll::Pending => return Step::Idle,
                Poll::Ready(_) => self.write_shut = true,
            }
        }
        if inner.session.is_closed() && self.write_shut {
            return self.drain_to_fin(cx, inner, now, reads);
        }
        match self.timers(cx, inner, now) {
            Some(p) => progress |= p,
            None => return Step::Done,
        }
        if progress { Step::Progress } else { Step::Idle }
    }

    /// Listener with a fallback: once the session refused its peer before authentication,
    /// prepares the splice (run when this task's future ends) and returns true.
    fn hand_off(&mut self, inner: &mut Inner) -> bool {
        let refused = inner.session.redirect() == Some(Redirect::Fallback);
        if refused && !self.refusal_logged {
            // When it happens, not only when a drain ends up to 90 s later.
            self.refusal_logged = true;
            tracing::debug!(
                fallback = self.options.fallback.is_some(),
                "refused before authentication"
            );
        }
        let Some(target) = self.options.fallback else {
            return false;
        };
        if !refused || inner.phase != Phase::Handshaking {
            return false;
        }
        let Some(replay) = self.replay.take() else {
            return false;
        };
        let Some(socket) = inner.transport.take() else {
            return false;
        };
        self.handoff = Some(Handoff {
            socket,
            target,
            replay: replay.freeze(),
            peer_done: self.eof,
            slot: self.slot.take(),
        });
        true
    }

    /// Leaves the unauthenticated: nothing more is kept for a fallback.
    fn authenticated(&mut self) {
        self.slot = None;
        self.replay = None;
    }

    /// Moves the session to its second connection once that is up and everything meant for
    /// the first was written. Returns whether it moved.
    fn poll_redirect(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        now: Instant,
    ) -> Result<bool, Error> {
        if inner.transport.pending() > 0 {
            return Ok(false);
        }
        let ask = inner.session.redirect();
        let peer = self.shared.peer;
        let socket = match self.second.poll(cx, &self.runtime, ask, peer, self.options) {
            Poll::Pending => return Ok(false),
            Poll::Ready(result) => result?,
        };
        // The first connection is dropped (closed) here: nothing more goes over it.
        inner.transport.replace(socket);
        self.eof = false;
        tracing::debug!("moved to the second connection");
        inner.session.handle_link_up(now, Link::STREAM);
        self.route_events(inner);
        Ok(true)
    }

    /// Listener: opens the per-user socket of a session that will move to it, before the
    /// application decides (the session must be accepted with its port). Without one the
    /// client is refused with `ConnectionError`, the status upstream defines for this failure.
    fn open_user_socket(&mut self, inner: &mut Inner) -> bool {
        let opened = match &self.origin {
            Origin::Listener { local, .. } => {
                let peer = self.shared.peer.ip();
                self.second
                    .listen(&self.runtime, *local, peer, self.options)
            }
            Origin::Client => Err(io::Error::other("a client cannot open per-user sockets")),
        };
        match opened {
            Ok(port) => {
                tracing::debug!(port, "per-user socket open");
                inner.assigned_user_id = Some(port);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "no per-user socket: refusing the client");
                let _ = inner.session.reject(Status::ConnectionError);
                false
            }
        }
    }

    /// Reads while the application keeps up. Returns whether anything was read.
    fn read(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        now: Instant,
        reads: &mut usize,
    ) -> io::Result<bool> {
        let mut progress = false;
        while !self.eof && inner.received_bytes < RECEIVE_WINDOW && *reads < READS_PER_POLL {
            let session = &mut inner.session;
            let replay = &mut self.replay;
            let got = read_into(inner.transport.socket()?, cx, |bytes| {
                if !bytes.is_empty() {
                    keep_for_fallback(replay, bytes);
                    session.handle_input(now, bytes);
                }
                bytes.len()
            });
            match got {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    inner.session.handle_link_end(now, None);
                    self.route_events(inner);
                }
                Poll::Ready(Ok(n)) => {
                    inner.traffic.read += n as u64;
                    self.route_events(inner);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
            *reads += 1;
            progress = true;
        }
        Ok(progress)
    }

    fn route_events(&mut self, inner: &mut Inner) -> bool {
        let mut any = false;
        while let Some(event) = inner.session.poll_event() {
            any = true;
            match event {
                Event::Authenticate { token, client_type } => {
                    tracing::debug!(client_type, "token authenticated");
                    self.authenticated();
                    let listen = inner.session.redirect() == Some(Redirect::Listen);
                    if listen && !self.open_user_socket(inner) {
                        continue;
                    }
                    inner.phase = Phase::Authenticating;
                    match self.listener() {
                        Some(listener) => {
                            let incoming =
                                Incoming::new(self.shared.clone(), token, client_type, true);
                            listener.push(incoming);
                            self.listener_ref = Some(listener);
                        }
                        // Nobody can decide any more: close without a word.
                        None => inner.session.close(),
                    }
                }
                Event::Connected { user_id } => {
                    self.authenticated();
                    // A server session that needed no decision reaches the application now.
                    if inner.phase == Phase::Handshaking
                        && let Some(listener) = self.listener()
                    {
                        listener.push(Incoming::new(self.shared.clone(), Bytes::new(), 0, false));
                        self.listener_ref = Some(listener);
                    }
                    inner.phase = Phase::Connected(user_id);
                    self.span.record("user_id", user_id);
                    tracing::info!(user_id, "connected");
                    inner.wake_handshake();
                }
                Event::Data(message) if !inner.discard_input => {
                    inner.received_bytes += message.len();
                    inner.received.push_back(message);
                    inner.wake_reader();
                }
                Event::Finished => inner.wake_reader(),
                Event::Closed(reason) => {
                    match reason {
                        port_core::CloseReason::KeepaliveTimeout => {
                            tracing::warn!(%reason, "peer stopped answering keepalives")
                        }
                        reason if reason.is_graceful() => tracing::debug!(%reason, "closed"),
                        reason => tracing::info!(%reason, "closed"),
                    }
                    inner.close_reason = Some(reason);
                    inner.wake_all();
                }
                _ => {}
            }
        }
        any
    }

    /// Fires due timers and arms the runtime timer for the next deadline. `None` when the
    /// linger after the last handle went away ran out.
    fn timers(&mut self, cx: &mut Context<'_>, inner: &mut Inner, now: Instant) -> Option<bool> {
        if inner.discard_input && self.linger_until.is_none() {
            self.linger_until = Some(now + self.options.timeout);
        }
        if self.linger_until.is_some_and(|t| now >= t) {
            tracing::debug!("no handle left and no clean end in time: dropping the connection");
            return None;
        }
        let deadline = match (inner.session.poll_timeout(), self.linger_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        inner.transport.armed = deadline;
        let Some(deadline) = deadline else {
            return Some(false);
        };
        if now >= deadline {
            inner.session.handle_timeout(now);
            return Some(true);
        }
        if self.timer_deadline != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.timer_deadline = Some(deadline);
        }
        // A fired timer means the deadline is (about to be) due: go round again.
        Some(self.timer.as_mut().poll_elapsed(cx).is_ready())
    }

    /// After our FIN, reads and drops whatever the peer still sends until its FIN (or
    /// [`CLOSE_LINGER`]). Closing a socket with unread bytes would send a RST, and a RST can
    /// destroy data the peer has not read yet, our final frames included.
    fn drain_to_fin(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        now: Instant,
        reads: &mut usize,
    ) -> Step {
        let deadline = *self.close_until.get_or_insert(now + CLOSE_LINGER);
        if self.eof || now >= deadline {
            return Step::Done;
        }
        let Ok(socket) = inner.transport.socket() else {
            return Step::Done;
        };
        while *reads < READS_PER_POLL {
            match read_into(socket, cx, <[u8]>::len) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Step::Done,
                Poll::Ready(Ok(_)) => *reads += 1,
                Poll::Pending => break,
            }
        }
        if self.timer_deadline != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.timer_deadline = Some(deadline);
        }
        match self.timer.as_mut().poll_elapsed(cx) {
            Poll::Ready(()) => Step::Done,
            Poll::Pending if *reads >= READS_PER_POLL => Step::Progress,
            Poll::Pending => Step::Idle,
        }
    }

    /// Lets the application's writer write in its own task while the session is connected on
    /// the socket it keeps and not closing; the driver writes everything before and after.
    fn allow_direct_writes(&self, inner: &mut Inner) {
        inner.transport.direct = matches!(inner.phase, Phase::Connected(_))
            && !self.second.is_pending()
            && inner.session.redirect().is_none()
            && !inner.session.is_send_closed()
            && self.close_until.is_none();
    }

    /// The listener this connection reports to, while it is still there.
    fn listener(&self) -> Option<Arc<ListenerShared>> {
        match &self.origin {
            Origin::Listener { queue, .. } => queue.upgrade(),
            Origin::Client => None,
        }
    }

    fn fail(&mut self, inner: &mut Inner, error: Error) -> Step {
        if inner.close_reason.is_none() && inner.transport_error.is_none() {
            tracing::info!(%error, "transport failed");
            inner.transport_error = Some(error);
        }
        Step::Done
    }
}
