//! The three [`Harness`] implementations: a runtime value each, and how a test enters it.

use std::future::Future;
use std::sync::Arc;

use port_driver::Runtime;

use crate::Harness;

/// A harness: its doc, its type, its name, its runtime value, and how `$future` is run to
/// completion from a test thread.
macro_rules! harness {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $runtime:expr, |$future:ident| $enter:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $ty;

        impl Harness for $ty {
            const NAME: &'static str = $name;

            fn runtime() -> Arc<dyn Runtime> {
                $runtime
            }

            fn block_on<F: Future>($future: F) -> F::Output {
                $enter
            }
        }
    };
}

harness!(
    /// tokio: `port-tokio` on a multi-thread runtime with 2 workers per scenario.
    Tokio,
    "tokio",
    port_tokio::runtime(),
    |future| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(future)
    }
);

harness!(
    /// async-std: `port-async-std`'s async-std runtime, entered with `async_std::task::block_on`.
    AsyncStd,
    "async-std",
    port_async_std::async_std(),
    |future| async_std::task::block_on(future)
);

harness!(
    /// smol: `port-async-std`'s smol runtime (the global executor), entered with
    /// `smol::block_on`.
    Smol,
    "smol",
    port_async_std::smol(),
    |future| smol::block_on(future)
);
