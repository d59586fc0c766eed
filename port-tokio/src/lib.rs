//! # port-tokio: PORT connections on tokio
//!
//! A thin layer over [`port_driver`]: tokio sockets, timers and tasks, and tokio's
//! `AsyncRead`/`AsyncWrite` on the streams. All protocol logic is in `port-core`, all I/O
//! logic in `port-driver`.
//!
//! [`connect_seaside`] and [`Listener::bind_seaside`] speak the `seaside` profile (upstream
//! SeasideVPN's PORT, over two TCP connections); every session these functions run gets its
//! second connection opened here when it asks for one.
//!
//! ```no_run
//! # async fn demo(server_key: port_core::ServerKey) -> Result<(), port_tokio::Error> {
//! use port_core::{ClientConfig, Config, ServerConfig};
//!
//! let client_key = server_key.client_key();
//! let listener = port_tokio::Listener::bind("127.0.0.1:9000", ServerConfig::new(Config::default(), server_key)).await?;
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
//! let mut stream = port_tokio::connect("127.0.0.1:9000", &setup).await?;
//! stream.send("hello").await?;
//! assert_eq!(stream.recv().await?.as_deref(), Some(&b"hello"[..]));
//! stream.close().await
//! # }
//! ```
#![forbid(unsafe_code)]

use std::io;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use port_core::seaside;
use port_core::{ClientConfig, ServerConfig, Session, Status};
use port_driver::{Acceptor, BoxFuture, Redirector, Runtime, Timer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use port_driver::{Error, SessionFactory, SocketOptions};

/// The tokio runtime for the driver: `tokio::spawn` and tokio timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

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

impl Runtime for Tokio {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(TokioTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        tokio::spawn(future);
    }
}

/// Connects to a PORT server; returns once the handshake succeeded.
pub async fn connect(addr: impl ToSocketAddrs, setup: &ClientConfig) -> Result<PortStream, Error> {
    connect_with(addr, setup, SocketOptions::default()).await
}

/// [`connect`] with socket options.
pub async fn connect_with(
    addr: impl ToSocketAddrs,
    setup: &ClientConfig,
    options: SocketOptions,
) -> Result<PortStream, Error> {
    let limit = setup.config().handshake_timeout();
    let (tcp, peer) = tcp_connect(addr, limit, options).await?;
    Ok(PortStream(
        port_driver::connect(&Tokio, tcp, peer, setup).await?,
    ))
}

/// Connects and runs the client session `session` builds (a stack of layers, say), over the
/// TCP connection; `limit` bounds the TCP connect and the linger after the last handle. A
/// session that moves to a second connection (one with a `seaside` layer) gets it opened here.
pub async fn connect_session(
    addr: impl ToSocketAddrs,
    session: impl FnOnce() -> Box<dyn Session + Send>,
    limit: Duration,
    options: SocketOptions,
) -> Result<PortStream, Error> {
    let (tcp, peer) = tcp_connect(addr, limit, options).await?;
    let redirector: Arc<dyn Redirector<Compat<TcpStream>>> = Arc::new(TokioRedirector { options });
    let stream =
        port_driver::connect_session_with(&Tokio, tcp, peer, session(), limit, Some(redirector))
            .await?;
    Ok(PortStream(stream))
}

/// Connects to an upstream SeasideVPN listener (or a [`Listener::bind_seaside`] one) with the
/// `seaside` wire profile: the INIT on a first TCP connection, then the session on a second one
/// to the port the listener names. `PORT_TIMEOUT` (the configuration's handshake timeout)
/// bounds each connect and the wait for the answer, and is the TCP keepalive idle time.
pub async fn connect_seaside(
    addr: impl ToSocketAddrs,
    setup: &seaside::ClientConfig,
) -> Result<PortStream, Error> {
    let limit = setup.config().handshake_timeout();
    let seed = fresh_seed()?;
    connect_session(
        addr,
        || {
            Box::new(seaside::Connection::client(setup, Instant::now(), seed))
                as Box<dyn Session + Send>
        },
        limit,
        seaside_socket_options(limit),
    )
    .await
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

/// Opens second connections with tokio sockets (the seaside profile's data connection).
struct TokioRedirector {
    options: SocketOptions,
}

impl Redirector<Compat<TcpStream>> for TokioRedirector {
    fn connect(&self, addr: std::net::SocketAddr) -> BoxFuture<io::Result<Compat<TcpStream>>> {
        let options = self.options;
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            options.apply(&tcp)?;
            Ok(tcp.compat())
        })
    }

    fn bind_one(
        &self,
        local: std::net::IpAddr,
        peer: std::net::IpAddr,
    ) -> io::Result<(u16, BoxFuture<io::Result<Compat<TcpStream>>>)> {
        let std_listener = std::net::TcpListener::bind((local, 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let port = listener.local_addr()?.port();
        let options = self.options;
        let accept = async move {
            loop {
                let (tcp, from) = listener.accept().await?;
                if from.ip() == peer {
                    options.apply(&tcp)?;
                    return Ok(tcp.compat());
                }
                // Someone else found the port first: refuse them, keep the place for the client.
                drop(tcp);
            }
        };
        Ok((port, Box::pin(accept)))
    }
}

async fn tcp_connect(
    addr: impl ToSocketAddrs,
    limit: Duration,
    options: SocketOptions,
) -> Result<(Compat<TcpStream>, std::net::SocketAddr), Error> {
    let tcp = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectTimeout)??;
    options.apply(&tcp)?;
    let peer = tcp.peer_addr()?;
    Ok((tcp.compat(), peer))
}

struct TokioAcceptor {
    listener: TcpListener,
    options: SocketOptions,
}

impl Acceptor for TokioAcceptor {
    type Socket = Compat<TcpStream>;
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Self::Socket, std::net::SocketAddr)>> {
        let (tcp, peer) = ready!(self.listener.poll_accept(cx))?;
        self.options.apply(&tcp)?;
        Poll::Ready(Ok((tcp.compat(), peer)))
    }
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// Accepts PORT connections.
pub struct Listener(port_driver::Listener<TokioAcceptor>);

impl Listener {
    /// Binds a TCP listener serving `server`.
    pub async fn bind(addr: impl ToSocketAddrs, server: ServerConfig) -> io::Result<Listener> {
        Self::bind_with(addr, server, SocketOptions::default()).await
    }

    /// [`bind`](Self::bind) with socket options for accepted connections.
    pub async fn bind_with(
        addr: impl ToSocketAddrs,
        server: ServerConfig,
        options: SocketOptions,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let acceptor = TokioAcceptor { listener, options };
        Ok(Listener(port_driver::Listener::new(
            acceptor,
            Arc::new(Tokio),
            server,
        )))
    }

    /// Binds a TCP listener running the server sessions `factory` builds (a stack, say);
    /// `linger` bounds the wait for a clean end after the last handle of a connection.
    pub async fn bind_sessions(
        addr: impl ToSocketAddrs,
        factory: SessionFactory,
        linger: Duration,
        options: SocketOptions,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let acceptor = TokioAcceptor { listener, options };
        let runtime = Arc::new(Tokio);
        let redirector = Arc::new(TokioRedirector { options });
        let inner = port_driver::Listener::with_factory(acceptor, runtime, factory, linger)
            .with_redirector(redirector);
        Ok(Listener(inner))
    }

    /// Binds a listener speaking the `seaside` wire profile, a drop-in for an upstream
    /// SeasideVPN listener: each client accepted gets a per-user socket on this listener's
    /// address, which accepts exactly one connection, from the client's address only, within
    /// `PORT_TIMEOUT`; the user id is its port (the id passed to `accept` is ignored).
    pub async fn bind_seaside(
        addr: impl ToSocketAddrs,
        server: seaside::ServerConfig,
    ) -> io::Result<Listener> {
        let linger = server.config().handshake_timeout();
        let factory: SessionFactory = Arc::new(move |_peer| {
            let session = seaside::Connection::server(&server, Instant::now(), fresh_seed()?);
            Ok(Box::new(session) as Box<dyn Session + Send>)
        });
        Self::bind_sessions(addr, factory, linger, seaside_socket_options(linger)).await
    }

    /// The next client whose token authenticated; see [`port_driver::Listener::accept`].
    pub async fn accept(&self) -> Result<Incoming, Error> {
        self.0.accept().await.map(Incoming)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

/// A client waiting for the application's decision.
#[derive(Debug)]
pub struct Incoming(port_driver::Incoming);

impl Incoming {
    /// Accepts the client with `user_id`.
    pub fn accept(self, user_id: u32) -> Result<PortStream, Error> {
        self.0.accept(user_id).map(PortStream)
    }

    /// Rejects the client with `status`.
    pub fn reject(self, status: Status) -> Result<(), Error> {
        self.0.reject(status)
    }
}

impl Deref for Incoming {
    type Target = port_driver::Incoming;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A PORT connection with tokio's `AsyncRead`/`AsyncWrite` (byte stream) and, through
/// `Deref`, the message API of [`port_driver::Stream`].
pub struct PortStream(port_driver::Stream);

/// The receiving half of a split [`PortStream`].
pub struct ReadHalf(port_driver::ReadHalf);

/// The sending half of a split [`PortStream`].
pub struct WriteHalf(port_driver::WriteHalf);

impl PortStream {
    /// Splits into halves usable from different tasks.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let (r, w) = self.0.split();
        (ReadHalf(r), WriteHalf(w))
    }
}

macro_rules! deref_to {
    ($outer:ty => $inner:ty) => {
        impl Deref for $outer {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
        impl DerefMut for $outer {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }
    };
}
deref_to!(PortStream => port_driver::Stream);
deref_to!(ReadHalf => port_driver::ReadHalf);
deref_to!(WriteHalf => port_driver::WriteHalf);

fn poll_read_into(
    half: &mut port_driver::ReadHalf,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let n = ready!(half.poll_read(cx, buf.initialize_unfilled()))?;
    buf.advance(n);
    Poll::Ready(Ok(()))
}

impl AsyncRead for PortStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_into(self.get_mut().0.read_half(), cx, buf)
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_into(&mut self.get_mut().0, cx, buf)
    }
}

macro_rules! async_write {
    ($ty:ty, |$s:ident| $half:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                $half.poll_write(cx, buf)
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $half.poll_flush(cx)
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $half.poll_shutdown(cx)
            }
        }
    };
}
async_write!(PortStream, |s| s.0.write_half());
async_write!(WriteHalf, |s| s.0);
