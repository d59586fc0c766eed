//! # port-async-std: PORT connections on futures-io, for async-std and smol
//!
//! A thin layer over [`port_driver`]: `async-io` sockets and timers (they work under any
//! executor) and `futures-io`'s `AsyncRead`/`AsyncWrite` on the streams. Tasks are spawned on
//! the runtime you pick: [`AsyncStd`] (the default of [`connect`] and [`Listener::bind`]) or
//! [`Smol`] (through [`connect_on`] and [`Listener::bind_on`]). async-std is discontinued
//! upstream and recommends smol; both are supported and tested.
//!
//! [`connect_seaside_on`] and [`Listener::bind_seaside_on`] speak the `seaside` profile
//! (upstream SeasideVPN's PORT, over two TCP connections); every session these functions run
//! gets its second connection opened here when it asks for one.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_io::{Async, Timer as IoTimer};
// async-net's stream (smol's `net`): runs on any executor, and its `poll_close` sends our FIN,
// which a bare `Async<TcpStream>` does not.
use port_core::seaside;
use port_core::{ClientConfig, ServerConfig, Session};
use port_driver::{Acceptor, BoxFuture, Redirector, Runtime, Timer};
use smol::net::TcpStream;

/// A PORT connection: the driver's stream, which is a futures-io `AsyncRead`/`AsyncWrite`
/// byte stream as well as a message API.
pub type PortStream = port_driver::Stream;
pub use port_driver::{Error, Incoming, ReadHalf, SessionFactory, SocketOptions, WriteHalf};

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
/// on `runtime`; `limit` bounds the TCP connect and the linger after the last handle. A
/// session that moves to a second connection (one with a `seaside` layer) gets it opened here.
pub async fn connect_session_on(
    runtime: impl Runtime,
    addr: impl ToSocketAddrs + Send + 'static,
    session: impl FnOnce() -> Box<dyn Session + Send>,
    limit: Duration,
    options: SocketOptions,
) -> Result<PortStream, Error> {
    let (tcp, peer) = tcp_connect(addr, limit, options).await?;
    let redirector: Arc<dyn Redirector<TcpStream>> = Arc::new(IoRedirector { options });
    port_driver::connect_session_with(&runtime, tcp, peer, session(), limit, Some(redirector)).await
}

/// Connects to an upstream SeasideVPN listener (or a [`Listener::bind_seaside_on`] one) with
/// the `seaside` wire profile, spawning on `runtime`: the INIT on a first TCP connection, then
/// the session on a second one to the port the listener names. `PORT_TIMEOUT` (the
/// configuration's handshake timeout) bounds each connect and the wait for the answer.
pub async fn connect_seaside_on(
    runtime: impl Runtime,
    addr: impl ToSocketAddrs + Send + 'static,
    setup: &seaside::ClientConfig,
) -> Result<PortStream, Error> {
    let limit = setup.config().handshake_timeout();
    let seed = fresh_seed()?;
    let session = || {
        Box::new(seaside::Connection::client(setup, Instant::now(), seed))
            as Box<dyn Session + Send>
    };
    connect_session_on(runtime, addr, session, limit, seaside_socket_options(limit)).await
}

/// The seaside wire has no keepalive of its own: like upstream's listener, switch TCP
/// keepalive on, with `PORT_TIMEOUT` as its idle time, so a vanished peer is noticed.
fn seaside_socket_options(timeout: Duration) -> SocketOptions {
    SocketOptions::default().with_tcp_keepalive(timeout)
}

fn fresh_seed() -> io::Result<port_core::Seed> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(seed)
}

/// Opens second connections with async-io sockets (the seaside profile's data connection).
struct IoRedirector {
    options: SocketOptions,
}

impl Redirector<TcpStream> for IoRedirector {
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<TcpStream>> {
        let options = self.options;
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            options.apply(&tcp)?;
            Ok(tcp)
        })
    }

    fn bind_one(
        &self,
        local: IpAddr,
        peer: IpAddr,
    ) -> io::Result<(u16, BoxFuture<io::Result<TcpStream>>)> {
        let listener = Async::<TcpListener>::bind(SocketAddr::new(local, 0))?;
        let port = listener.get_ref().local_addr()?.port();
        let options = self.options;
        let accept = async move {
            loop {
                let (tcp, from) = listener.accept().await?;
                if from.ip() == peer {
                    options.apply(tcp.get_ref())?;
                    return Ok(TcpStream::from(tcp));
                }
                // Someone else found the port first: refuse them, keep the place for the client.
                drop(tcp);
            }
        };
        Ok((port, Box::pin(accept)))
    }
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
        let redirector = Arc::new(IoRedirector { options });
        let inner = port_driver::Listener::with_factory(acceptor, runtime, factory, linger)
            .with_redirector(redirector);
        Ok(Listener(inner))
    }

    /// Binds a listener speaking the `seaside` wire profile, spawning on `runtime`: a drop-in
    /// for an upstream SeasideVPN listener. Each client accepted gets a per-user socket on this
    /// listener's address, which accepts exactly one connection, from the client's address
    /// only, within `PORT_TIMEOUT`; the user id is its port (the id passed to `accept` is
    /// ignored).
    pub fn bind_seaside_on(
        runtime: impl Runtime,
        addr: impl ToSocketAddrs,
        server: seaside::ServerConfig,
    ) -> io::Result<Listener> {
        let linger = server.config().handshake_timeout();
        let factory: SessionFactory = Arc::new(move |_peer| {
            let session = seaside::Connection::server(&server, Instant::now(), fresh_seed()?);
            Ok(Box::new(session) as Box<dyn Session + Send>)
        });
        Self::bind_sessions_on(
            runtime,
            addr,
            factory,
            linger,
            seaside_socket_options(linger),
        )
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
