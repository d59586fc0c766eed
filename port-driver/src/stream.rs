//! The application's side of a connection: a message API that keeps boundaries, and poll
//! methods for a byte-stream view that the runtime adapters expose as `AsyncRead`/`AsyncWrite`.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use port_core::CloseReason;

use crate::error::Error;
use crate::shared::{HandleGuard, Phase, RECEIVE_WINDOW, SEND_WINDOW, Shared, Traffic, register};

/// Largest message one byte-stream write becomes.
const WRITE_CHUNK: usize = 64 * 1024;

/// A PORT connection: [`send`](Stream::send)/[`recv`](Stream::recv) messages, or use the
/// byte-stream poll methods (the adapters implement their runtime's I/O traits with them).
///
/// Dropping it (and its halves) closes the connection gracefully in the background.
pub struct Stream {
    read: ReadHalf,
    write: WriteHalf,
}

/// The receiving half of a [`Stream`].
pub struct ReadHalf {
    shared: Arc<Shared>,
    _guard: Arc<HandleGuard>,
    /// The unread rest of a message, for byte-stream reads.
    partial: Bytes,
}

/// The sending half of a [`Stream`].
pub struct WriteHalf {
    shared: Arc<Shared>,
    _guard: Arc<HandleGuard>,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, guard: Arc<HandleGuard>) -> Stream {
        Stream {
            read: ReadHalf {
                shared: shared.clone(),
                _guard: guard.clone(),
                partial: Bytes::new(),
            },
            write: WriteHalf {
                shared,
                _guard: guard,
            },
        }
    }

    /// Sends one message, waiting while the connection's send window is full.
    pub async fn send(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.write.send(data).await
    }

    /// The next message; `Ok(None)` once the peer ended its direction cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        self.read.recv().await
    }

    /// Ends this side's direction (TERM after everything queued) and waits until the
    /// connection is over; messages still arriving meanwhile are discarded. `Ok` for a clean
    /// end in both directions.
    pub async fn close(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.write.poll_shutdown(cx)).await?;
        poll_fn(|cx| self.poll_closed(cx)).await
    }

    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.read.shared.lock();
        inner.discard_input = true;
        inner.received.clear();
        inner.received_bytes = 0;
        inner.wake_driver();
        if inner.session.is_closed() || inner.driver_done {
            return Poll::Ready(match inner.read_error() {
                Some(e) => Err(e),
                None => Ok(()),
            });
        }
        register(&mut inner.reader_waker, cx.waker());
        Poll::Pending
    }

    /// Cuts the connection: nothing more is sent (no TERM; messages queued are dropped) and
    /// the TCP connection is closed, so the peer sees its stream end without TERM
    /// ([`Error::TransportClosed`]), as if this process had died. For passing on a failure
    /// the peer must not mistake for a clean end; dropping the stream instead closes it
    /// gracefully. Later calls on either half fail with [`Error::Aborted`].
    pub fn abort(&self) {
        self.read.shared.abort();
    }

    /// Splits into halves usable from different tasks.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// The receiving half.
    pub fn read_half(&mut self) -> &mut ReadHalf {
        &mut self.read
    }

    /// The sending half.
    pub fn write_half(&mut self) -> &mut WriteHalf {
        &mut self.write
    }

    /// The user id of the connection.
    pub fn user_id(&self) -> Option<u32> {
        self.read.user_id()
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.read.shared.peer
    }

    /// The session's close reason, once it closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.read.shared.lock().close_reason
    }

    /// The bytes this connection moved over TCP so far.
    pub fn traffic(&self) -> Traffic {
        self.read.shared.lock().traffic
    }
}

impl ReadHalf {
    /// Polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        if !self.partial.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.partial))));
        }
        let mut inner = self.shared.lock();
        if let Some(message) = inner.received.pop_front() {
            let before = inner.received_bytes;
            inner.received_bytes -= message.len();
            if before >= RECEIVE_WINDOW && inner.received_bytes < RECEIVE_WINDOW {
                inner.wake_driver();
            }
            return Poll::Ready(Ok(Some(message)));
        }
        if inner.session.is_peer_finished() {
            return Poll::Ready(Ok(None));
        }
        if let Some(e) = inner.read_error() {
            return Poll::Ready(Err(e));
        }
        register(&mut inner.reader_waker, cx.waker());
        Poll::Pending
    }

    /// The next message; `Ok(None)` once the peer ended its direction cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Byte-stream read: fills `buf` from the received messages, boundaries ignored; `Ok(0)`
    /// at the clean end of the peer's direction.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if !self.partial.is_empty() {
                let n = buf.len().min(self.partial.len());
                buf[..n].copy_from_slice(&self.partial[..n]);
                self.partial.advance(n);
                return Poll::Ready(Ok(n));
            }
            match ready!(self.poll_recv(cx)) {
                Ok(Some(message)) => self.partial = message,
                Ok(None) => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// The user id of the connection.
    pub fn user_id(&self) -> Option<u32> {
        match self.shared.lock().phase {
            Phase::Connected(id) => Some(id),
            _ => None,
        }
    }
}

impl WriteHalf {
    /// Cuts the connection, as [`Stream::abort`] does.
    pub fn abort(&self) {
        self.shared.abort();
    }

    /// Ready when the send window has room (or with the error that ended the connection).
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        if let Some(e) = inner.terminal_error() {
            return Poll::Ready(Err(e));
        }
        if inner.unsent() >= SEND_WINDOW {
            register(&mut inner.writer_waker, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends one message, waiting while the send window is full.
    pub async fn send(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        let data = data.into();
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.start_send(data)
    }

    /// Queues one message without waiting (call after `poll_ready` was ready). Once connected,
    /// the message is sealed and written in the caller's task while the socket takes it; what
    /// a full socket cannot take the connection's driver writes later.
    pub fn start_send(&mut self, data: Bytes) -> Result<(), Error> {
        let now = self.shared.runtime.now();
        let mut inner = self.shared.lock();
        // A cut or failed connection says so, even to a writer that skipped `poll_ready`.
        if let Some(e) = inner.terminal_error() {
            return Err(e);
        }
        inner.session.send(data).map_err(Error::Session)?;
        inner.write_through(now);
        Ok(())
    }

    /// Byte-stream write: queues up to 64 KiB of `buf` as one message.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_ready(cx))?;
        let limit = self.shared.lock().session.max_message();
        let n = buf.len().min(WRITE_CHUNK).min(limit);
        self.start_send(Bytes::copy_from_slice(&buf[..n]))?;
        Poll::Ready(Ok(n))
    }

    /// Ready once everything queued was written to the socket.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        if inner.unsent() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = inner.terminal_error() {
            return Poll::Ready(Err(e.into()));
        }
        register(&mut inner.writer_waker, cx.waker());
        Poll::Pending
    }

    /// Ends this side's direction: TERM after everything queued; ready once it was written.
    /// Messages from the peer keep arriving on the read half until its own TERM.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        inner.session.close();
        inner.wake_driver();
        if inner.session.is_send_closed() && inner.transport.pending() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = inner.read_error() {
            return Poll::Ready(Err(e.into()));
        }
        register(&mut inner.writer_waker, cx.waker());
        Poll::Pending
    }
}

// The byte-stream view as futures-io traits (async-std, smol, and anything on futures-io),
// for a stream and its halves alike: `$half` is the half of `$s` the trait works on.
macro_rules! futures_io {
    (read $ty:ty, |$s:ident| $half:expr) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                ReadHalf::poll_read($half, cx, buf)
            }
        }
    };
    (write $ty:ty, |$s:ident| $half:expr) => {
        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                WriteHalf::poll_write($half, cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                WriteHalf::poll_flush($half, cx)
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                WriteHalf::poll_shutdown($half, cx)
            }
        }
    };
}
futures_io!(read ReadHalf, |s| s);
futures_io!(read Stream, |s| &mut s.read);
futures_io!(write WriteHalf, |s| s);
futures_io!(write Stream, |s| &mut s.write);
