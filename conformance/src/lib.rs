//! # port-conformance: one suite of PORT scenarios, run on every supported runtime
//!
//! The scenarios in [`scenarios`] (and the seaside profile's in [`seaside`]) are written once,
//! against the public API of `port-driver` over a runtime value, and instantiated as
//! `#[test]`s for each runtime by [`conformance_tests!`]. A [`Harness`] only says which
//! runtime value to use and how a test thread enters that runtime:
//!
//! | harness | runtime value | entered with |
//! |---|---|---|
//! | [`Tokio`] | `port_tokio::runtime()` | a multi-thread tokio runtime with 2 workers |
//! | [`AsyncStd`] | `port_async_std::async_std()` | `async_std::task::block_on` |
//! | [`Smol`] | `port_async_std::smol()` | `smol::block_on` |
//!
//! smol's global executor runs on `SMOL_THREADS` threads (one if unset); under cargo the
//! workspace's `.cargo/config.toml` sets 2, like the other two executors.
//!
//! Plain TCP sockets (for probes and relays) come from the same runtime value, and the byte
//! stream view is the streams' own `futures-io` implementation; tokio's trait implementations
//! are exercised by `port-tokio`'s own tests.
//!
//! Every scenario is bounded by a generous ceiling that turns a hang into a panic; none
//! measures speed. Timer-driven scenarios use short protocol timers ([`support::fast_config`]),
//! and never run alongside the one CPU-bound scenario ([`support::run_alone`]).
//!
//! A test file per runtime holds a doc comment and one line,
//! `port_conformance::conformance_tests!(port_conformance::Smol);`.
#![forbid(unsafe_code)]

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::thread;

use futures_lite::FutureExt;
use port_driver::Runtime;

pub mod fallback;
mod runtimes;
pub mod scenarios;
pub mod seaside;
pub mod support;

pub use runtimes::{AsyncStd, Smol, Tokio};

/// What the scenarios need from a runtime: its value, and a way in from a test thread.
pub trait Harness: Sized + Send + Sync + 'static {
    /// A short name for messages.
    const NAME: &'static str;

    /// The runtime value under test.
    fn runtime() -> Arc<dyn Runtime>;

    /// Runs `future` to completion on this runtime, from a test thread.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Spawns `future` on this runtime. Awaiting the handle yields the output, or resumes the
    /// task's panic; dropping it detaches the task.
    fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
        let (done, outcome) = smol::channel::bounded(1);
        Self::runtime().spawn(Box::pin(async move {
            let _ = done.send(catching(future).await).await;
        }));
        Task {
            inner: Box::pin(async move {
                match outcome.recv().await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Box::new("the task was dropped before it finished")
                        as Box<dyn std::any::Any + Send>),
                }
            }),
        }
    }
}

/// A spawned task: awaiting it yields its output, or resumes its panic on the awaiting side.
/// Dropping it detaches the task, on every runtime.
#[must_use = "a dropped task runs detached; await it to see its outcome"]
pub struct Task<T> {
    inner: Pin<Box<dyn Future<Output = thread::Result<T>> + Send>>,
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
fn catching<F: Future>(future: F) -> impl Future<Output = thread::Result<F::Output>> {
    AssertUnwindSafe(future).catch_unwind()
}

/// Generates one `#[test]` per scenario of [`scenarios`] and [`seaside`] for a [`Harness`].
///
/// `conformance_tests!(port_conformance::Tokio)` generates the whole list, the seaside
/// profile's scenarios included; a list of scenario paths after a colon generates only
/// those.
#[macro_export]
macro_rules! conformance_tests {
    (@in $module:ident $harness:ty: $($scenario:ident),+ $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    $crate::$module::$scenario::<$harness>();
                }
            )+
        }
    };
    ($harness:ty) => {
        $crate::conformance_tests!($harness:
            message_echo_sizes,
            shaped_message_echo_sizes,
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
            queued_messages_leave_after_the_writer_stops,
            drop_without_close_ends_peer,
            abort_reaches_the_peer_as_a_cut,
        );
        $crate::conformance_tests!(@in fallback $harness:
            probes_get_the_fallbacks_answer,
            the_oldest_unauthenticated_connection_goes_first,
            a_probers_fin_ends_its_drain,
        );
        $crate::conformance_tests!(@in seaside $harness:
            echo_over_the_second_connection,
            rejection_status_reaches_client,
            per_user_socket_only_takes_the_clients_address,
            per_user_socket_closes_when_nobody_comes,
            failed_second_connection_is_reported,
            hanging_second_connect_ends_at_the_handshake_timeout,
            many_clients_get_their_own_per_user_sockets,
        );
    };
    ($harness:ty: $($scenario:ident),+ $(,)?) => {
        $crate::conformance_tests!(@in scenarios $harness: $($scenario),+);
    };
}
