//! The three async runtimes `echotest` runs on, behind one small trait, so that the server,
//! the client and the demo are written once.
//!
//! Every adapter hands out the message API of [`port_driver::Stream`] (tokio's stream derefs
//! to it), so the trait only covers what differs: binding, accepting, connecting, spawning,
//! sleeping and entering the runtime.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use port_core::Session;
use port_driver::{Error as DriverError, SessionFactory, SocketOptions};

/// An async runtime with PORT listeners and connections on it.
pub trait Runtime: Copy + Send + Sync + 'static {
    /// A bound listener.
    type Listener: Send + Sync + 'static;
    /// A client that authenticated (or a connection that needs no decision).
    type Incoming: Send + 'static;
    /// An established connection.
    type Stream: Send + 'static;

    /// The runtime's name, as given to `--runtime`.
    fn name(self) -> &'static str;

    /// Binds a listener on `addr` whose connections run the sessions `factory` builds.
    fn bind(
        self,
        addr: SocketAddr,
        factory: SessionFactory,
        linger: Duration,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// The address a listener is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// The next client that authenticated.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = Result<Self::Incoming, DriverError>> + Send + '_;

    /// The runtime-independent view of an incoming client.
    fn incoming(incoming: &Self::Incoming) -> &port_driver::Incoming;

    /// Accepts an incoming client with `user_id`.
    fn accept_incoming(incoming: Self::Incoming, user_id: u32)
    -> Result<Self::Stream, DriverError>;

    /// The message API of a connection.
    fn stream(stream: &mut Self::Stream) -> &mut port_driver::Stream;

    /// Connects to `addr` (`host:port`) and runs `session` over the TCP connection; `limit`
    /// bounds the TCP connect and the linger after the last handle.
    fn connect(
        self,
        addr: String,
        session: Box<dyn Session + Send>,
        limit: Duration,
    ) -> impl Future<Output = Result<Self::Stream, DriverError>> + Send;

    /// Runs `future` in the background.
    fn spawn<F>(self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Waits for `duration`.
    fn sleep(self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Runs `future` to completion on this runtime, blocking the calling thread.
    fn block_on<F: Future>(self, future: F) -> io::Result<F::Output>;
}

/// tokio, through `port-tokio` (a multi-threaded runtime built for each `block_on`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    type Listener = port_tokio::Listener;
    type Incoming = port_tokio::Incoming;
    type Stream = port_tokio::PortStream;

    fn name(self) -> &'static str {
        "tokio"
    }

    async fn bind(
        self,
        addr: SocketAddr,
        factory: SessionFactory,
        linger: Duration,
    ) -> io::Result<Self::Listener> {
        port_tokio::Listener::bind_sessions(addr, factory, linger, SocketOptions::default()).await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = Result<Self::Incoming, DriverError>> + Send + '_ {
        listener.accept()
    }

    fn incoming(incoming: &Self::Incoming) -> &port_driver::Incoming {
        incoming
    }

    fn accept_incoming(
        incoming: Self::Incoming,
        user_id: u32,
    ) -> Result<Self::Stream, DriverError> {
        incoming.accept(user_id)
    }

    fn stream(stream: &mut Self::Stream) -> &mut port_driver::Stream {
        stream
    }

    async fn connect(
        self,
        addr: String,
        session: Box<dyn Session + Send>,
        limit: Duration,
    ) -> Result<Self::Stream, DriverError> {
        port_tokio::connect_session(addr, move || session, limit, SocketOptions::default()).await
    }

    fn spawn<F>(self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn sleep(self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(runtime.block_on(future))
    }
}

/// The futures-io adapter (`port-async-std`) with its tasks spawned by `S`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FuturesIo<S>(pub S);

/// smol: `port-async-std` spawning on smol's global executor, entered with `smol::block_on`.
pub type SmolRuntime = FuturesIo<port_async_std::Smol>;

/// async-std: `port-async-std` spawning on async-std's executor, entered with
/// `async_std::task::block_on`.
pub type AsyncStdRuntime = FuturesIo<port_async_std::AsyncStd>;

/// What differs between smol and async-std on top of the futures-io adapter.
pub trait Executor: port_driver::Runtime + Copy + Default {
    /// The runtime's name.
    const NAME: &'static str;
    /// Spawns a detached task.
    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static;
    /// Runs a future to completion on the calling thread.
    fn run<F: Future>(future: F) -> F::Output;
}

impl Executor for port_async_std::Smol {
    const NAME: &'static str = "smol";
    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }
    fn run<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

impl Executor for port_async_std::AsyncStd {
    const NAME: &'static str = "async-std";
    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        async_std::task::spawn(future);
    }
    fn run<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

impl<S: Executor> Runtime for FuturesIo<S> {
    type Listener = port_async_std::Listener;
    type Incoming = port_driver::Incoming;
    type Stream = port_driver::Stream;

    fn name(self) -> &'static str {
        S::NAME
    }

    async fn bind(
        self,
        addr: SocketAddr,
        factory: SessionFactory,
        linger: Duration,
    ) -> io::Result<Self::Listener> {
        port_async_std::Listener::bind_sessions_on(
            self.0,
            addr,
            factory,
            linger,
            SocketOptions::default(),
        )
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = Result<Self::Incoming, DriverError>> + Send + '_ {
        listener.accept()
    }

    fn incoming(incoming: &Self::Incoming) -> &port_driver::Incoming {
        incoming
    }

    fn accept_incoming(
        incoming: Self::Incoming,
        user_id: u32,
    ) -> Result<Self::Stream, DriverError> {
        incoming.accept(user_id)
    }

    fn stream(stream: &mut Self::Stream) -> &mut port_driver::Stream {
        stream
    }

    async fn connect(
        self,
        addr: String,
        session: Box<dyn Session + Send>,
        limit: Duration,
    ) -> Result<Self::Stream, DriverError> {
        port_async_std::connect_session_on(
            self.0,
            addr,
            move || session,
            limit,
            SocketOptions::default(),
        )
        .await
    }

    fn spawn<F>(self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        S::spawn_detached(future);
    }

    async fn sleep(self, duration: Duration) {
        async_io::Timer::after(duration).await;
    }

    fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        Ok(S::run(future))
    }
}

/// Which runtime to run on, as chosen with `--runtime`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// tokio (multi-threaded).
    #[default]
    Tokio,
    /// smol.
    Smol,
    /// async-std (discontinued upstream, which recommends smol).
    AsyncStd,
}

impl RuntimeKind {
    /// Every runtime, in the order `--help` lists them.
    pub const ALL: [RuntimeKind; 3] =
        [RuntimeKind::Tokio, RuntimeKind::Smol, RuntimeKind::AsyncStd];

    /// The name `--runtime` takes.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::Smol => "smol",
            RuntimeKind::AsyncStd => "async-std",
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuntimeKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| format!("unknown runtime {s:?} (expected tokio, smol or async-std)"))
    }
}

/// Calls `$body` with `$rt` bound to the runtime value `$kind` names (each arm is
/// monomorphized for its runtime).
#[macro_export]
macro_rules! with_runtime {
    ($kind:expr, |$rt:ident| $body:expr) => {
        match $kind {
            $crate::runtime::RuntimeKind::Tokio => {
                let $rt = $crate::runtime::TokioRuntime;
                $body
            }
            $crate::runtime::RuntimeKind::Smol => {
                let $rt = $crate::runtime::SmolRuntime::default();
                $body
            }
            $crate::runtime::RuntimeKind::AsyncStd => {
                let $rt = $crate::runtime::AsyncStdRuntime::default();
                $body
            }
        }
    };
}
