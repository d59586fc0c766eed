//! # port-async-std: PORT connections on async-std and smol
//!
//! Two runtime values for [`port_driver`], whose whole API this crate re-exports:
//! [`async_std()`] and [`smol()`]. Both use `async-io`'s sockets and timers (they work under
//! any executor) and differ only in where tasks are spawned. Streams are `futures-io`
//! `AsyncRead`/`AsyncWrite` byte streams as well as message streams. async-std is discontinued
//! upstream and recommends smol; both are supported and tested.
//!
//! ```no_run
//! # async fn demo(server_key: port_core::ServerKey) -> Result<(), port_async_std::Error> {
//! use port_core::{ClientConfig, Config, ServerConfig};
//!
//! let rt = port_async_std::smol();
//! let client_key = server_key.client_key();
//! let server = ServerConfig::new(Config::default(), server_key);
//! let listener = port_async_std::Listener::bind(&rt, "127.0.0.1:9000", server).await?;
//! let setup = ClientConfig::new(Config::default(), client_key, "token").unwrap();
//! let mut stream = port_async_std::connect(&rt, "127.0.0.1:9000", &setup).await?;
//! stream.send("hello").await?;
//! let mut incoming = listener.accept().await?.accept(1)?;
//! assert_eq!(incoming.recv().await?.as_deref(), Some(&b"hello"[..]));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer as IoTimer};
// async-net's stream (smol's `net`): runs on any executor, and its `poll_close` sends our FIN,
// which a bare `Async<TcpStream>` does not.
use smol::net::TcpStream;

pub use port_driver::*;

/// async-io's clock, timers and sockets, with tasks spawned by `spawn`.
#[derive(Clone, Copy)]
struct AsyncIo {
    name: &'static str,
    spawn: fn(BoxFuture<()>),
}

impl fmt::Debug for AsyncIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The async-std runtime: tasks on async-std's executor.
pub fn async_std() -> Arc<dyn Runtime> {
    Arc::new(AsyncIo {
        name: "async-std",
        spawn: |future| drop(async_std::task::spawn(future)),
    })
}

/// The smol runtime: tasks on smol's global executor (`SMOL_THREADS` threads).
pub fn smol() -> Arc<dyn Runtime> {
    Arc::new(AsyncIo {
        name: "smol",
        spawn: |future| smol::spawn(future).detach(),
    })
}

impl Runtime for AsyncIo {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(AsyncIoTimer(IoTimer::at(deadline)))
    }

    fn spawn(&self, future: BoxFuture<()>) {
        (self.spawn)(future);
    }

    fn resolve(&self, host: String) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(smol::net::resolve(host))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Socket>>> {
        Box::pin(async move { Ok(Box::new(TcpStream::connect(addr).await?) as Box<dyn Socket>) })
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<Box<dyn Acceptor>> {
        Ok(Box::new(AsyncIoListener(Async::<TcpListener>::bind(addr)?)))
    }
}

#[derive(Debug)]
struct AsyncIoTimer(IoTimer);

impl Timer for AsyncIoTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }
    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

struct AsyncIoListener(Async<TcpListener>);

impl Acceptor for AsyncIoListener {
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Socket>, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((tcp, peer)) => {
                    let tcp = TcpStream::from(Async::new(tcp)?);
                    return Poll::Ready(Ok((Box::new(tcp), peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}
