//! # conformance: one suite of PORT scenarios, run on every supported runtime
//!
//! The scenarios in [`scenarios`] are written once, against the [`Harness`] trait, and
//! instantiated as `#[test]`s for each runtime by [`conformance_tests!`]:
//!
//! | harness | executor | sockets and timers | PORT adapter |
//! |---|---|---|---|
//! | [`Tokio`] | a multi-thread tokio runtime with 2 workers | tokio | `port-tokio` |
//! | [`AsyncStd`] | `async_std::task` | async-std (async-io) | `port-async-std`, `AsyncStd` |
//! | [`Smol`] | `smol::block_on`, `smol::spawn` | smol (async-io) | `port-async-std`, `Smol` |
//!
//! smol's global executor runs on `SMOL_THREADS` threads (one if unset); under cargo the
//! workspace's `.cargo/config.toml` sets 2, like the other two executors.
//!
//! The message API ([`port_driver::Stream`]) is reached through the adapters' `Deref`; the
//! byte-stream API always goes through `futures-io` traits, which for tokio means wrapping the
//! adapter's stream in `tokio_util::compat`, so tokio's own `AsyncRead`/`AsyncWrite`
//! implementations are what gets exercised underneath.
//!
//! Every scenario is bounded by a generous ceiling that turns a hang into a panic; none
//! measures speed. Timer-driven scenarios use short protocol timers ([`support::fast_config`]),
//! and never run alongside the one CPU-bound scenario ([`support::run_alone`]).
//!
//! A test file per runtime holds a doc comment and one line,
//! `conformance::conformance_tests!(conformance::Smol);`.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::thread;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::FutureExt;
use port_core::{ClientConfig, ServerConfig, Status};
use port_driver::Error;

mod runtimes;
pub mod scenarios;
pub mod support;

pub use runtimes::{AsyncStd, Smol, Tokio};

/// What the scenarios need from a runtime and its PORT adapter.
///
/// Every associated function is static: implementors are zero-sized markers.
pub trait Harness: Sized + Send + Sync + 'static {
    /// A short name for messages.
    const NAME: &'static str;

    /// The adapter's PORT listener.
    type Listener: Send + Sync + 'static;
    /// An authenticated client waiting for a decision.
    type Incoming: Deref<Target = port_driver::Incoming> + Send + 'static;
    /// The adapter's PORT stream, with the message API through `DerefMut`.
    type Stream: DerefMut<Target = port_driver::Stream> + Send + Unpin + 'static;
    /// A PORT stream seen through `futures-io`'s byte-stream traits.
    type ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// The receiving half of a split stream.
    type ReadHalf: DerefMut<Target = port_driver::ReadHalf> + Send + 'static;
    /// The sending half of a split stream.
    type WriteHalf: DerefMut<Target = port_driver::WriteHalf> + Send + 'static;
    /// A plain TCP stream of the runtime.
    type TcpStream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// A plain TCP listener of the runtime.
    type TcpListener: Send + Sync + 'static;

    /// Runs `future` to completion on this runtime, from a test thread.
    fn block_on<F: Future>(future: F) -> F::Output;
    /// Spawns `future` on this runtime. Dropping the handle detaches the task.
    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T>;
    /// Sleeps for `duration` on this runtime's timers.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;

    /// Binds a PORT listener on `127.0.0.1:0`.
    fn bind(server: ServerConfig) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The listener's address.
    fn local_addr(listener: &Self::Listener) -> SocketAddr;
    /// The next authenticated client.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = Result<Self::Incoming, Error>> + Send;
    /// Accepts a client with `user_id`.
    fn admit(incoming: Self::Incoming, user_id: u32) -> Result<Self::Stream, Error>;
    /// Rejects a client with `status`.
    fn reject(incoming: Self::Incoming, status: Status) -> Result<(), Error>;
    /// Connects a PORT client to `addr`.
    fn connect(
        addr: SocketAddr,
        setup: &ClientConfig,
    ) -> impl Future<Output = Result<Self::Stream, Error>> + Send;
    /// The byte-stream view of a stream, through `futures-io`.
    fn into_bytes(stream: Self::Stream) -> Self::ByteStream;
    /// Splits a stream into halves usable from different tasks.
    fn split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf);

    /// Binds a plain TCP listener on `127.0.0.1:0`.
    fn tcp_bind() -> impl Future<Output = io::Result<Self::TcpListener>> + Send;
    /// The plain listener's address.
    fn tcp_local_addr(listener: &Self::TcpListener) -> SocketAddr;
    /// The next plain TCP connection.
    fn tcp_accept(
        listener: &Self::TcpListener,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send;
    /// Opens a plain TCP connection.
    fn tcp_connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::TcpStream>> + Send;
}

/// A spawned task: awaiting it yields its output, or resumes its panic on the awaiting side.
/// Dropping it detaches the task, on every runtime.
#[must_use = "a dropped task runs detached; await it to see its outcome"]
pub struct Task<T> {
    inner: Pin<Box<dyn Future<Output = thread::Result<T>> + Send>>,
}

impl<T> Task<T> {
    /// Wraps a runtime's join handle that reports the task's panic as an `Err`.
    pub fn from_handle(handle: impl Future<Output = thread::Result<T>> + Send + 'static) -> Self {
        Task {
            inner: Box::pin(handle),
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match ready!(self.inner.as_mut().poll(cx)) {
            Ok(value) => Poll::Ready(value),
            Err(panic) => resume_unwind(panic),
        }
    }
}

/// `future`, with a panic caught and returned as the `Err` of its output, so that a panic in
/// a spawned task reaches whoever awaits the [`Task`] on every runtime alike.
pub fn catching<F: Future>(future: F) -> impl Future<Output = thread::Result<F::Output>> {
    AssertUnwindSafe(future).catch_unwind()
}

/// Generates one `#[test]` per scenario of [`scenarios`] for a [`Harness`].
///
/// `conformance_tests!(conformance::Tokio)` generates the whole list; a list of scenario
/// names after a colon generates only those.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:ty) => {
        $crate::conformance_tests!($harness:
            message_echo_sizes,
            byte_stream_echo_sizes,
            many_concurrent_clients,
            rejection_status_reaches_client,
            unknown_key_times_out_silently,
            probes_drained_without_blocking_others,
            vanished_peer_is_transport_closed,
            blackholed_path_is_keepalive_timeout,
            graceful_close_delivers_everything,
            graceful_close_byte_stream,
            half_close_server_keeps_sending,
            split_halves_run_concurrently,
            backpressure_bounds_the_sender,
            drop_without_close_ends_peer,
        );
    };
    ($harness:ty: $($scenario:ident),+ $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::scenarios::$scenario::<$harness>();
            }
        )+
    };
}
