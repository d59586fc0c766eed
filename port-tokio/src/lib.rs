//! # port-tokio: PORT connections on tokio
//!
//! The tokio runtime as a value for [`port_driver`], whose whole API this crate re-exports:
//! `port_tokio::connect(&port_tokio::runtime(), addr, &setup)`. Streams are tokio
//! `AsyncRead`/`AsyncWrite` byte streams as well as message streams. The clock is tokio's, so
//! a runtime started paused (`#[tokio::test(start_paused = true)]`) drives keepalives and
//! timeouts of real sockets in no wall time.
//!
//! ```no_run
//! # async fn demo(server_key: port_core::ServerKey) -> Result<(), port_tokio::Error> {
//! use port_core::{ClientConfig, Config, ServerConfig};
//!
//! let rt = port_tokio::runtime();
//! let client_key = server_key.client_key();
//! let server = ServerConfig::new(Config::default(), server_key);
//! let listener = port_tokio::Listener::bind(&rt, "127.0.0.1:9000", server).await?;
//! tokio::spawn(async move {
//!     while let Ok(incoming) = listener.accept().await {
//!         let mut stream = incoming.accept(1).unwrap();
//!         tokio::spawn(async move {
//!             while let Ok(Some(message)) = stream.recv().await {
//!                 stream.send(message).await.unwrap(); // echo
//!             }
//!         });
//!     }
//! });
//! let setup = ClientConfig::new(Config::default(), client_key, "token").unwrap();
//! let mut stream = port_tokio::connect(&rt, "127.0.0.1:9000", &setup).await?;
//! stream.send("hello").await?;
//! assert_eq!(stream.recv().await?.as_deref(), Some(&b"hello"[..]));
//! stream.close().await
//! # }
//! ```
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub use port_driver::*;

/// The tokio runtime: `tokio::spawn`, tokio's clock and timers, tokio's sockets. Its methods
/// are called from within a tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// The tokio runtime as the value the API takes.
pub fn runtime() -> Arc<dyn Runtime> {
    Arc::new(Tokio)
}

impl Runtime for Tokio {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(TokioTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    fn spawn(&self, future: BoxFuture<()>) {
        tokio::spawn(future);
    }

    fn resolve(&self, host: String) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host(host).await?.collect()) })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Socket>>> {
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            Ok(Box::new(TokioSocket(tcp)) as Box<dyn Socket>)
        })
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<Box<dyn Acceptor>> {
        // Registering a socket outside a runtime would panic: say so instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Box::new(TokioListener(TcpListener::from_std(listener)?)))
    }
}

#[derive(Debug)]
struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Timer for TokioTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }
    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

struct TokioListener(TcpListener);

impl Acceptor for TokioListener {
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Socket>, SocketAddr)>> {
        let (tcp, peer) = ready!(self.0.poll_accept(cx))?;
        Poll::Ready(Ok((Box::new(TokioSocket(tcp)), peer)))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A tokio TCP stream seen through `futures-io`, which the driver speaks.
struct TokioSocket(TcpStream);

impl AsFd for TokioSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl futures_io::AsyncRead for TokioSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl futures_io::AsyncWrite for TokioSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
