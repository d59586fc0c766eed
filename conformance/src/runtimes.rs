//! The three [`Harness`] implementations: tokio, async-std and smol.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use port_core::{ClientConfig, ServerConfig, Status};
use port_driver::{Error, SocketOptions};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::{Harness, Task, catching};

/// Where every listener of the suite binds.
const LOOPBACK: &str = "127.0.0.1:0";

/// tokio: a multi-thread runtime with 2 workers per scenario, `port-tokio`, tokio's sockets
/// and timers; byte streams through `tokio_util::compat`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Harness for Tokio {
    const NAME: &'static str = "tokio";

    type Listener = port_tokio::Listener;
    type Incoming = port_tokio::Incoming;
    type Stream = port_tokio::PortStream;
    type ByteStream = Compat<port_tokio::PortStream>;
    type ReadHalf = port_tokio::ReadHalf;
    type WriteHalf = port_tokio::WriteHalf;
    type TcpStream = Compat<tokio::net::TcpStream>;
    type TcpListener = tokio::net::TcpListener;

    fn block_on<F: Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(future)
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
        let handle = tokio::spawn(catching(future));
        Task::from_handle(async move {
            match handle.await {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => Err(e.into_panic()),
                Err(e) => {
                    Err(Box::new(format!("tokio task failed: {e}"))
                        as Box<dyn std::any::Any + Send>)
                }
            }
        })
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn bind(server: ServerConfig) -> io::Result<Self::Listener> {
        port_tokio::Listener::bind(LOOPBACK, server).await
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn accept(listener: &Self::Listener) -> Result<Self::Incoming, Error> {
        listener.accept().await
    }

    fn admit(incoming: Self::Incoming, user_id: u32) -> Result<Self::Stream, Error> {
        incoming.accept(user_id)
    }

    fn reject(incoming: Self::Incoming, status: Status) -> Result<(), Error> {
        incoming.reject(status)
    }

    async fn connect(addr: SocketAddr, setup: &ClientConfig) -> Result<Self::Stream, Error> {
        port_tokio::connect(addr, setup).await
    }

    fn into_bytes(stream: Self::Stream) -> Self::ByteStream {
        stream.compat()
    }

    fn split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf) {
        stream.into_split()
    }

    async fn tcp_bind() -> io::Result<Self::TcpListener> {
        tokio::net::TcpListener::bind(LOOPBACK).await
    }

    fn tcp_local_addr(listener: &Self::TcpListener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn tcp_accept(listener: &Self::TcpListener) -> io::Result<Self::TcpStream> {
        let (tcp, _) = listener.accept().await?;
        Ok(tcp.compat())
    }

    async fn tcp_connect(addr: SocketAddr) -> io::Result<Self::TcpStream> {
        Ok(tokio::net::TcpStream::connect(addr).await?.compat())
    }
}

/// A driver type seen through `Deref`, as the tokio adapter's wrappers are: `port-async-std`
/// hands out the driver's own types, which need no wrapper outside tests.
#[derive(Debug)]
pub struct Io<T>(pub T);

impl<T> std::ops::Deref for Io<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Io<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// async-std: `async_std::task`, `port-async-std` on the `AsyncStd` runtime, async-std's
/// sockets and timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Harness for AsyncStd {
    const NAME: &'static str = "async-std";

    type Listener = port_async_std::Listener;
    type Incoming = Io<port_async_std::Incoming>;
    type Stream = Io<port_async_std::PortStream>;
    type ByteStream = port_async_std::PortStream;
    type ReadHalf = Io<port_async_std::ReadHalf>;
    type WriteHalf = Io<port_async_std::WriteHalf>;
    type TcpStream = async_std::net::TcpStream;
    type TcpListener = async_std::net::TcpListener;

    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task::from_handle(async_std::task::spawn(catching(future)))
    }

    async fn sleep(duration: Duration) {
        async_std::task::sleep(duration).await;
    }

    async fn bind(server: ServerConfig) -> io::Result<Self::Listener> {
        port_async_std::Listener::bind_on(
            port_async_std::AsyncStd,
            LOOPBACK,
            server,
            SocketOptions::default(),
        )
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn accept(listener: &Self::Listener) -> Result<Self::Incoming, Error> {
        listener.accept().await.map(Io)
    }

    fn admit(incoming: Self::Incoming, user_id: u32) -> Result<Self::Stream, Error> {
        incoming.0.accept(user_id).map(Io)
    }

    fn reject(incoming: Self::Incoming, status: Status) -> Result<(), Error> {
        incoming.0.reject(status)
    }

    async fn connect(addr: SocketAddr, setup: &ClientConfig) -> Result<Self::Stream, Error> {
        port_async_std::connect_on(
            port_async_std::AsyncStd,
            addr,
            setup,
            SocketOptions::default(),
        )
        .await
        .map(Io)
    }

    fn into_bytes(stream: Self::Stream) -> Self::ByteStream {
        stream.0
    }

    fn split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf) {
        let (r, w) = stream.0.split();
        (Io(r), Io(w))
    }

    async fn tcp_bind() -> io::Result<Self::TcpListener> {
        async_std::net::TcpListener::bind(LOOPBACK).await
    }

    fn tcp_local_addr(listener: &Self::TcpListener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn tcp_accept(listener: &Self::TcpListener) -> io::Result<Self::TcpStream> {
        Ok(listener.accept().await?.0)
    }

    async fn tcp_connect(addr: SocketAddr) -> io::Result<Self::TcpStream> {
        async_std::net::TcpStream::connect(addr).await
    }
}

/// smol: `smol::block_on` for the scenario, `smol::spawn` (the global executor) for tasks,
/// `port-async-std` on the `Smol` runtime, smol's sockets and timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

/// A smol task that detaches instead of cancelling when dropped, like the other runtimes'
/// join handles.
struct Detaching<T>(Option<smol::Task<T>>);

impl<T> Future for Detaching<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let task = self.0.as_mut().expect("polled after completion");
        let output = std::task::ready!(Pin::new(task).poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

impl<T> Drop for Detaching<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

impl Harness for Smol {
    const NAME: &'static str = "smol";

    type Listener = port_async_std::Listener;
    type Incoming = Io<port_async_std::Incoming>;
    type Stream = Io<port_async_std::PortStream>;
    type ByteStream = port_async_std::PortStream;
    type ReadHalf = Io<port_async_std::ReadHalf>;
    type WriteHalf = Io<port_async_std::WriteHalf>;
    type TcpStream = smol::net::TcpStream;
    type TcpListener = smol::net::TcpListener;

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
        let task: smol::Task<thread::Result<T>> = smol::spawn(catching(future));
        Task::from_handle(Detaching(Some(task)))
    }

    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }

    async fn bind(server: ServerConfig) -> io::Result<Self::Listener> {
        port_async_std::Listener::bind_on(
            port_async_std::Smol,
            LOOPBACK,
            server,
            SocketOptions::default(),
        )
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn accept(listener: &Self::Listener) -> Result<Self::Incoming, Error> {
        listener.accept().await.map(Io)
    }

    fn admit(incoming: Self::Incoming, user_id: u32) -> Result<Self::Stream, Error> {
        incoming.0.accept(user_id).map(Io)
    }

    fn reject(incoming: Self::Incoming, status: Status) -> Result<(), Error> {
        incoming.0.reject(status)
    }

    async fn connect(addr: SocketAddr, setup: &ClientConfig) -> Result<Self::Stream, Error> {
        port_async_std::connect_on(port_async_std::Smol, addr, setup, SocketOptions::default())
            .await
            .map(Io)
    }

    fn into_bytes(stream: Self::Stream) -> Self::ByteStream {
        stream.0
    }

    fn split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf) {
        let (r, w) = stream.0.split();
        (Io(r), Io(w))
    }

    async fn tcp_bind() -> io::Result<Self::TcpListener> {
        smol::net::TcpListener::bind(LOOPBACK).await
    }

    fn tcp_local_addr(listener: &Self::TcpListener) -> SocketAddr {
        listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn tcp_accept(listener: &Self::TcpListener) -> io::Result<Self::TcpStream> {
        Ok(listener.accept().await?.0)
    }

    async fn tcp_connect(addr: SocketAddr) -> io::Result<Self::TcpStream> {
        smol::net::TcpStream::connect(addr).await
    }
}
