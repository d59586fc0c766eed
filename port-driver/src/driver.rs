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

use bytes::{Buf, Bytes, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use port_core::{Event, Link, Redirect, Status};

use crate::error::Error;
use crate::fallback::{self, Handoff};
use crate::incoming::{Incoming, ListenerShared};
use crate::metrics::ConnectionMetrics;
use crate::options::Options;
use crate::redirect::SecondLink;
use crate::runtime::{Runtime, Socket, Timer};
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

/// Transmits smaller than this are gathered with those ready after them, up to about this
/// many bytes per write.
const GATHER: usize = 64 * 1024;

/// The future that runs one connection until it is over. Spawned on the runtime.
pub(crate) struct Driver {
    runtime: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    socket: Box<dyn Socket>,
    options: Options,
    timer: Pin<Box<dyn Timer>>,
    timer_deadline: Option<Instant>,
    write_buf: Bytes,
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
    /// What the connection reported to the metrics facade so far (taken when it ends).
    metrics: Option<ConnectionMetrics>,
}

impl Driver {
    /// Starts running `shared`'s session over `socket` on `runtime`.
    pub(crate) fn spawn(
        runtime: &Arc<dyn Runtime>,
        shared: Arc<Shared>,
        socket: Box<dyn Socket>,
        options: Options,
        origin: Origin,
        span: tracing::Span,
    ) {
        let now = runtime.now();
        shared.lock().session.handle_link_up(now, Link::TCP);
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
            socket,
            options,
            // Re-armed before its first poll; an instant now keeps construction cheap.
            timer: runtime.new_timer(now + options.timeout),
            timer_deadline: None,
            write_buf: Bytes::new(),
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
            metrics: None,
        };
        driver.metrics = Some(ConnectionMetrics::start(match driver.origin {
            Origin::Client => "client",
            Origin::Listener { .. } => "server",
        }));
        let runtime = runtime.clone();
        runtime.clone().spawn(Box::pin(async move {
            (&mut driver).await;
            if let Some(handoff) = driver.handoff.take() {
                let (shared, options) = (driver.shared.clone(), driver.options);
                fallback::splice(runtime, shared, driver.socket, handoff, options).await;
            }
        }));
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
                    inner.driver_done = true;
                    inner.wake_all();
                    if let Some(metrics) = this.metrics.take() {
                        metrics.finish(&inner, this.handoff.is_some());
                    }
                    return Poll::Ready(());
                }
            }
        }
        if let Some(metrics) = this.metrics.as_mut() {
            metrics.update(&inner);
        }
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
        let now = self.runtime.now();
        let mut progress = false;
        match self.write(cx, inner, now) {
            Ok(p) => progress |= p,
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
        if !self.write_shut && self.write_buf.is_empty() && inner.session.is_send_finished() {
            match Pin::new(&mut self.socket).poll_close(cx) {
                Poll::Pending => return Step::Idle,
                Poll::Ready(_) => self.write_shut = true,
            }
        }
        if inner.session.is_closed() && self.write_shut {
            return self.drain_to_fin(cx, now, reads);
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
        self.handoff = Some(Handoff {
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
        if !self.write_buf.is_empty() {
            return Ok(false);
        }
        let ask = inner.session.redirect();
        let peer = self.shared.peer;
        let socket = match self.second.poll(cx, &self.runtime, ask, peer, self.options) {
            Poll::Pending => return Ok(false),
            Poll::Ready(result) => result?,
        };
        // The first connection is dropped (closed) here: nothing more goes over it.
        self.socket = socket;
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

    /// Writes what the session has to send. Returns whether anything was written.
    fn write(&mut self, cx: &mut Context<'_>, inner: &mut Inner, now: Instant) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if self.write_buf.is_empty() {
                match self.next_write(inner, now) {
                    Some(bytes) => self.write_buf = bytes,
                    None => break,
                }
            }
            match Pin::new(&mut self.socket).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    inner.traffic.written += n as u64;
                    self.write_buf.advance(n);
                    if self.write_buf.is_empty() {
                        // An empty slice still holds the session's transmit buffer: letting
                        // go lets the session reuse that buffer in place, or free it when idle.
                        self.write_buf = Bytes::new();
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        inner.pending_write = self.write_buf.len();
        if progress {
            inner.wake_writer();
        }
        Ok(progress)
    }

    /// The next bytes to write: the session's next transmit, with the ones ready right after
    /// it when it is small. A session with shaped lengths hands out one record per transmit;
    /// writing each alone would cost a system call per record, so records ready together go
    /// out in one write, as the kernel would coalesce them anyway when the socket is busy. A
    /// lone transmit is written as it is, without a copy. The gathering buffer is allocated per
    /// gathered write (one per 64 KiB or so) and not kept, so an idle connection pins none.
    fn next_write(&mut self, inner: &mut Inner, now: Instant) -> Option<Bytes> {
        let first = inner.session.poll_transmit(now)?;
        if first.len() >= GATHER {
            return Some(first);
        }
        let Some(second) = inner.session.poll_transmit(now) else {
            return Some(first);
        };
        let mut gathered = BytesMut::with_capacity(GATHER + first.len().max(second.len()));
        gathered.extend_from_slice(&first);
        gathered.extend_from_slice(&second);
        while gathered.len() < GATHER {
            match inner.session.poll_transmit(now) {
                Some(more) => gathered.extend_from_slice(&more),
                None => break,
            }
        }
        Some(gathered.freeze())
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
            let got = read_into(&mut self.socket, cx, |bytes| {
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
    fn drain_to_fin(&mut self, cx: &mut Context<'_>, now: Instant, reads: &mut usize) -> Step {
        let deadline = *self.close_until.get_or_insert(now + CLOSE_LINGER);
        if self.eof || now >= deadline {
            return Step::Done;
        }
        while *reads < READS_PER_POLL {
            match read_into(&mut self.socket, cx, <[u8]>::len) {
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
