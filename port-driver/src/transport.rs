//! A connection's socket and the bytes on their way into it, kept beside the session under the
//! connection's lock, so that whichever task holds the lock can write.
//!
//! The application's writer seals and writes its own messages in its own task while the socket
//! takes them, as a TLS stream does: a bulk sender never wakes the driver, so a message costs
//! no cross-task wake-up and no context switch. The driver writes everything else (the
//! handshake, keepalives, TERM, and whatever a full socket left behind), and it is the one the
//! socket wakes when it can take more: every write, from either task, registers the driver's
//! waker, so a writer that moves on never strands bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_io::AsyncWrite;

use crate::runtime::Socket;
use crate::shared::Inner;

/// Transmits smaller than this are gathered with those ready after them, up to about this
/// many bytes per write.
const GATHER: usize = 64 * 1024;

pub(crate) struct Transport {
    /// `None` once the driver ended (the socket is closed) or handed it to the fallback.
    socket: Option<Box<dyn Socket>>,
    /// Bytes taken from the session and not written yet.
    write_buf: Bytes,
    /// The driver lets the application's writer write: the session is connected, on the
    /// socket it keeps, and not closing.
    pub(crate) direct: bool,
    /// The deadline the driver's timer is armed for: a writer whose message brought the
    /// session's next deadline before it wakes the driver.
    pub(crate) armed: Option<Instant>,
    /// A write in the application's task failed: the driver ends the connection with it.
    pub(crate) failed: Option<io::Error>,
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection's socket is closed",
    )
}

impl Transport {
    pub(crate) fn new(socket: Box<dyn Socket>) -> Transport {
        Transport {
            socket: Some(socket),
            write_buf: Bytes::new(),
            direct: false,
            armed: None,
            failed: None,
        }
    }

    pub(crate) fn socket(&mut self) -> io::Result<&mut Box<dyn Socket>> {
        self.socket.as_mut().ok_or_else(gone)
    }

    /// Moves the connection onto `socket` (the first one closes here).
    pub(crate) fn replace(&mut self, socket: Box<dyn Socket>) {
        self.socket = Some(socket);
        self.write_buf = Bytes::new();
    }

    /// Takes the socket out: nothing writes to it any more.
    pub(crate) fn take(&mut self) -> Option<Box<dyn Socket>> {
        self.direct = false;
        self.socket.take()
    }

    /// Bytes taken from the session and not written yet.
    pub(crate) fn pending(&self) -> usize {
        self.write_buf.len()
    }
}

impl Inner {
    /// Writes what the session has to send while the socket takes it; `cx`'s waker is woken
    /// when a full socket can take more. Returns whether anything was written.
    pub(crate) fn write(&mut self, cx: &mut Context<'_>, now: Instant) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if self.transport.write_buf.is_empty() {
                match next_write(self, now) {
                    Some(bytes) => self.transport.write_buf = bytes,
                    None => break,
                }
            }
            let transport = &mut self.transport;
            let socket = transport.socket.as_mut().ok_or_else(gone)?;
            match Pin::new(socket).poll_write(cx, &transport.write_buf) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.traffic.written += n as u64;
                    transport.write_buf.advance(n);
                    if transport.write_buf.is_empty() {
                        // An empty slice still holds the session's transmit buffer: letting
                        // go lets the session reuse that buffer in place, or free it when idle.
                        transport.write_buf = Bytes::new();
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(progress)
    }

    /// The application's writer, right after it gave the session a message: writes it in the
    /// writer's task when the driver allows it, and wakes the driver only when the driver has
    /// something to do (it does not allow direct writes yet, a write failed, or the session's
    /// next deadline moved before the driver's timer).
    pub(crate) fn write_through(&mut self, now: Instant) {
        let waker = match (&self.transport.direct, &self.driver_waker) {
            (true, Some(waker)) => waker.clone(),
            _ => return self.wake_driver(),
        };
        // The driver's waker: a full socket wakes the driver, which writes the rest.
        if let Err(e) = self.write(&mut Context::from_waker(&waker), now) {
            self.transport.failed = Some(e);
            return self.wake_driver();
        }
        let due = self.session.poll_timeout();
        if due.is_some_and(|t| self.transport.armed.is_none_or(|armed| t < armed)) {
            self.wake_driver();
        }
        self.update_metrics();
    }
}

/// The next bytes to write: the session's next transmit, with the ones ready right after it
/// when it is small. A session with shaped lengths hands out one record per transmit; writing
/// each alone would cost a system call per record, so records ready together go out in one
/// write, as the kernel would coalesce them anyway when the socket is busy. A lone transmit is
/// written as it is, without a copy. The gathering buffer is allocated per gathered write (one
/// per 64 KiB or so) and not kept, so an idle connection pins none.
fn next_write(inner: &mut Inner, now: Instant) -> Option<Bytes> {
    let session = &mut inner.session;
    let first = session.poll_transmit(now)?;
    if first.len() >= GATHER {
        return Some(first);
    }
    let Some(second) = session.poll_transmit(now) else {
        return Some(first);
    };
    let mut gathered = BytesMut::with_capacity(GATHER + first.len().max(second.len()));
    gathered.extend_from_slice(&first);
    gathered.extend_from_slice(&second);
    while gathered.len() < GATHER {
        match session.poll_transmit(now) {
            Some(more) => gathered.extend_from_slice(&more),
            None => break,
        }
    }
    Some(gathered.freeze())
}
