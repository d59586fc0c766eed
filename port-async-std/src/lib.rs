//! # port-async-std: PORT connections on futures-io, for async-std and smol
//!
//! A thin layer over [`port_driver`]: `async-io` sockets and timers (they work under any
//! executor) and `futures-io`'s `AsyncRead`/`AsyncWrite` on the streams. Tasks are spawned on
//! the runtime you pick: [`AsyncStd`] (the default of [`connect`] and [`Listener::bind`]) or
//! [`Smol`] (through [`connect_on`] and [`Listener::bind_on`]). async-std is discontinued
//! upstream and recommends smol; both are supported and tested.
#![forbid(unsafe_code)]

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_io::{Async, Timer as IoTimer};
// async-net's stream (smol's `net`): runs on any executor, and its `poll_close` sends our FIN,
// which a bare `Async<TcpStream>` does not.
use port_core::{ClientConfig, ServerConfig, Session};
use port_driver::{Acceptor, Runtime, SessionFactory, SocketOptions, Timer};
use smol::net::TcpStream;

/// A PORT connection: the driver's stream, which is a futures-io `AsyncRead`/`AsyncWrite`
/// byte stream as well as a message API.
pub type PortStream = port_driver::Stream;
pub use port_driver::{Error, Incoming, ReadHalf, WriteHalf};

/// Spawns on async-std's executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

/// Spawns on smol's global executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

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

fn timer(deadline: Instant) -> Pin<Box<dyn Timer>> {
    Box::pin(AsyncIoTimer(IoTimer::at(deadline)))
}

impl Runtime for AsyncStd {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        timer(deadline)
    }
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        async_std::task::spawn(future);
    }
}

impl Runtime for Smol {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        timer(deadline)
    }
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        smol::spawn(future).detach();
    }
}

/// Connects to a PORT server, spawning on async-std; returns once the handshake succeeded.
pub async fn connect(
    addr: impl ToSocketAddrs + Send + 'static,
    setup: &ClientConfig,
) -> Result<PortStream, Error> {
    connect_on(AsyncStd, addr, setup, SocketOptions::default()).await
}

/// Connects to a PORT server with the tasks spawned on `runtime`.
pub async fn connect_on(
    runtime: impl Runtime,
    addr: impl ToSocketAddrs + Send + 'static,
    setup: &ClientConfig,
    options: SocketOptions,
) -> Result<PortStream, Error> {
    let limit = setup.config().handshake_timeout();
    let (tcp, peer) = tcp_connect(addr, limit, options).await?;
    port_driver::connect(&runtime, tcp, peer, setup).await
}

/// Connects and runs the client session `session` builds (a stack of layers, say), spawning
/// on `runtime`; `limit` bounds the TCP connect and the linger after the last handle.
pub async fn connect_session_on(
    runtime: impl Runtime,
    addr: impl ToSocketAddrs + Send + 'static,
    session: impl FnOnce() -> Box<dyn Session + Send>,
    limit: Duration,
    options: SocketOptions,
) -> Result<PortStream, Error> {
    let (tcp, peer) = tcp_connect(addr, limit, options).await?;
    port_driver::connect_session(&runtime, tcp, peer, session(), limit).await
}

async fn tcp_connect(
    addr: impl ToSocketAddrs + Send + 'static,
    limit: Duration,
    options: SocketOptions,
) -> Result<(TcpStream, SocketAddr), Error> {
    let connect = async {
        // Name resolution may block: keep it off the executor.
        let addrs: Vec<SocketAddr> =
            smol::unblock(move || addr.to_socket_addrs().map(Iterator::collect)).await?;
        Ok::<_, Error>(TcpStream::connect(&addrs[..]).await?)
    };
    let timeout = async {
        IoTimer::after(limit).await;
        Err(Error::ConnectTimeout)
    };
    let tcp = futures_lite::future::or(connect, timeout).await?;
    options.apply(&tcp)?;
    let peer = tcp.peer_addr()?;
    Ok((tcp, peer))
}

struct IoAcceptor {
    listener: Async<TcpListener>,
    options: SocketOptions,
}

impl Acceptor for IoAcceptor {
    type Socket = TcpStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Socket, SocketAddr)>> {
        loop {
            match self.listener.get_ref().accept() {
                Ok((tcp, peer)) => {
                    self.options.apply(&tcp)?;
                    return Poll::Ready(Ok((Async::new(tcp)?.into(), peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.listener.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }
}

/// Accepts PORT connections.
pub struct Listener(port_driver::Listener<IoAcceptor>);

impl Listener {
    /// Binds a TCP listener serving `server`, spawning on async-std.
    pub fn bind(addr: impl ToSocketAddrs, server: ServerConfig) -> io::Result<Listener> {
        Self::bind_on(AsyncStd, addr, server, SocketOptions::default())
    }

    /// Binds a TCP listener serving `server`, spawning on `runtime`.
    pub fn bind_on(
        runtime: impl Runtime,
        addr: impl ToSocketAddrs,
        server: ServerConfig,
        options: SocketOptions,
    ) -> io::Result<Listener> {
        let listener = Async::<TcpListener>::bind(first_addr(addr)?)?;
        let acceptor = IoAcceptor { listener, options };
        Ok(Listener(port_driver::Listener::new(
            acceptor,
            Arc::new(runtime),
            server,
        )))
    }

    /// Binds a TCP listener running the server sessions `factory` builds (a stack, say),
    /// spawning on `runtime`; `linger` bounds the wait for a clean end after the last handle.
    pub fn bind_sessions_on(
        runtime: impl Runtime,
        addr: impl ToSocketAddrs,
        factory: SessionFactory,
        linger: Duration,
        options: SocketOptions,
    ) -> io::Result<Listener> {
        let listener = Async::<TcpListener>::bind(first_addr(addr)?)?;
        let acceptor = IoAcceptor { listener, options };
        let runtime = Arc::new(runtime);
        let inner = port_driver::Listener::with_factory(acceptor, runtime, factory, linger);
        Ok(Listener(inner))
    }

    /// The next client whose token authenticated; see [`port_driver::Listener::accept`].
    pub async fn accept(&self) -> Result<Incoming, Error> {
        self.0.accept().await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))
}
