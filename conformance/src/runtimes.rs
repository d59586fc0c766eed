//! The three [`Harness`] implementations: a runtime value each, and how a test enters it.

use std::future::Future;
use std::sync::Arc;

use port_driver::Runtime;

use crate::Harness;

/// tokio: `port-tokio` on a multi-thread runtime with 2 workers per scenario.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Harness for Tokio {
    const NAME: &'static str = "tokio";

    fn runtime() -> Arc<dyn Runtime> {
        port_tokio::runtime()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(future)
    }
}

/// async-std: `port-async-std`'s async-std runtime, entered with `async_std::task::block_on`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Harness for AsyncStd {
    const NAME: &'static str = "async-std";

    fn runtime() -> Arc<dyn Runtime> {
        port_async_std::async_std()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// smol: `port-async-std`'s smol runtime (the global executor), entered with
/// `smol::block_on`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Harness for Smol {
    const NAME: &'static str = "smol";

    fn runtime() -> Arc<dyn Runtime> {
        port_async_std::smol()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}
