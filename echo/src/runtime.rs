//! The three async runtimes `echotest` runs on: a value each (what the PORT API takes), and how
//! the binary enters it.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use port_driver::Runtime;

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

    /// The runtime value the PORT API runs on.
    pub fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            RuntimeKind::Tokio => port_tokio::runtime(),
            RuntimeKind::Smol => port_async_std::smol(),
            RuntimeKind::AsyncStd => port_async_std::async_std(),
        }
    }

    /// Runs `future` to completion on this runtime, blocking the calling thread (tokio: a
    /// multi-threaded runtime with two workers, built for the call).
    pub fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        match self {
            RuntimeKind::Tokio => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(future))
            }
            RuntimeKind::Smol => Ok(smol::block_on(future)),
            RuntimeKind::AsyncStd => Ok(async_std::task::block_on(future)),
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
