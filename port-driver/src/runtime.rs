//! What the driver needs from an async runtime: timers and a way to spawn tasks.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A resettable timer.
pub trait Timer: Send + Debug {
    /// Makes the timer fire at `deadline` instead.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// An async runtime, as far as the driver is concerned.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// A timer firing at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>>;
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>);
}
