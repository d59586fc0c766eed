//! tokio's `AsyncRead`/`AsyncWrite` on the streams (the `tokio` feature, which `port-tokio`
//! turns on): the same byte-stream view the `futures-io` traits give, for a stream and its
//! halves alike (`$half` is the half of `$s` the trait works on).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stream::{ReadHalf, Stream, WriteHalf};

macro_rules! tokio_io {
    (read $ty:ty, |$s:ident| $half:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                let n = ready!(ReadHalf::poll_read($half, cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    };
    (write $ty:ty, |$s:ident| $half:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                WriteHalf::poll_write($half, cx, buf)
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                WriteHalf::poll_flush($half, cx)
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                WriteHalf::poll_shutdown($half, cx)
            }
        }
    };
}
tokio_io!(read ReadHalf, |s| s);
tokio_io!(read Stream, |s| s.read_half());
tokio_io!(write WriteHalf, |s| s);
tokio_io!(write Stream, |s| s.write_half());
