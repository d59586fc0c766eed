//! A listener's fallback: a connection whose session refused its peer before authenticating
//! it ([`Redirect::Fallback`](port_core::Redirect::Fallback)) is spliced to another service,
//! every byte the peer sent replayed to it first, then copied both ways through two fixed
//! buffers until both directions ended. A prober talks to that service and nothing else
//! (`docs/PROTOCOL.md` §19).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;

use crate::options::Options;
use crate::runtime::{Runtime, Socket, within};
use crate::shared::{Shared, register};
use crate::unauthenticated::Slot;

/// Bytes each direction holds between a read and the write that passes it on.
const PIPE: usize = 16 * 1024;

/// What a driver hands over when its session asks for the fallback.
pub(crate) struct Handoff {
    /// The peer's socket.
    pub(crate) socket: Box<dyn Socket>,
    /// The fallback service.
    pub(crate) target: SocketAddr,
    /// Every byte the peer sent so far.
    pub(crate) replay: Bytes,
    /// The peer already ended its direction.
    pub(crate) peer_done: bool,
    /// The connection's place among the unauthenticated: a spliced prober still counts, and
    /// can be evicted like any other.
    pub(crate) slot: Option<Slot>,
}

/// Splices `peer` to the fallback. Ends when both directions ended, on an error of either
/// socket, or on eviction; the sockets close when it returns.
pub(crate) async fn splice(
    runtime: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    handoff: Handoff,
    options: Options,
) {
    let Handoff {
        socket: mut peer,
        target,
        replay,
        peer_done,
        slot,
    } = handoff;
    let connect = async {
        let socket = runtime.connect(target).await?;
        options.apply(&*socket)?;
        Ok::<_, io::Error>(socket)
    };
    let mut service = match within(&runtime, options.timeout, connect).await {
        Some(Ok(socket)) => socket,
        Some(Err(e)) => return tracing::warn!(%target, error = %e, "fallback unreachable"),
        None => return tracing::warn!(%target, "fallback unreachable: connect timed out"),
    };
    tracing::debug!(%target, replayed = replay.len(), "handed to the fallback");
    let mut up = Pipe::with_replay(replay, peer_done);
    let mut down = Pipe::with_replay(Bytes::new(), false);
    let done = poll_fn(|cx| {
        {
            let mut inner = shared.lock();
            if inner.evicted {
                return Poll::Ready(Ok(()));
            }
            register(&mut inner.driver_waker, cx.waker());
        }
        let up = up.poll(cx, &mut peer, &mut service)?;
        let down = down.poll(cx, &mut service, &mut peer)?;
        match (up, down) {
            (Poll::Ready(()), Poll::Ready(())) => Poll::Ready(Ok::<_, io::Error>(())),
            _ => Poll::Pending,
        }
    })
    .await;
    if let Err(e) = done {
        tracing::debug!(error = %e, "fallback splice ended");
    }
    drop(slot);
}

/// One direction of a splice: reads from one socket into a fixed buffer and writes it to the
/// other, then closes the other's write side once the first ended.
struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes to write before anything read.
    replay: Bytes,
    read_done: bool,
    closed: bool,
}

impl Pipe {
    fn with_replay(replay: Bytes, read_done: bool) -> Pipe {
        Pipe {
            buf: vec![0; PIPE].into_boxed_slice(),
            start: 0,
            end: 0,
            replay,
            read_done,
            closed: false,
        }
    }

    /// Moves what it can; ready once the writer was closed after the reader ended.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Box<dyn Socket>,
        to: &mut Box<dyn Socket>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.replay.is_empty() {
                let n = ready!(Pin::new(&mut **to).poll_write(cx, &self.replay))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                let _ = self.replay.split_to(n);
                continue;
            }
            if self.start < self.end {
                let n =
                    ready!(Pin::new(&mut **to).poll_write(cx, &self.buf[self.start..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                continue;
            }
            if self.read_done {
                if !self.closed {
                    ready!(Pin::new(&mut **to).poll_close(cx))?;
                    self.closed = true;
                }
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut **from).poll_read(cx, &mut self.buf))?;
            (self.start, self.end) = (0, n);
            self.read_done = n == 0;
        }
    }
}
