//! # echo: the `echotest` application
//!
//! An echo server and client over any PORT stack chosen by name (`port`, `passthrough`,
//! `port+passthrough`, `secure`, ...) on tokio, smol or async-std, plus `keygen` and a
//! self-contained `demo`. The binary is `echotest` (a binary called `echo` would be shadowed
//! by the shell builtin); this library holds its logic so that tests can drive it without
//! starting processes.
//!
//! - [`setup`]: stacks from the registry, key files, per-connection session factories, byte
//!   meters.
//! - [`server`] and [`client`]: the echo logic, written once over the [`runtime::Runtime`]
//!   trait.
//! - [`runtime`]: tokio (`port-tokio`), smol and async-std (`port-async-std`).
//! - [`keygen`], [`demo`], [`cli`].
//! - [`chaos`], [`scenario`], [`sequence`]: the network-in-chaos scenarios (`echotest chaos`)
//!   and the checked numbered sequence the client sends in them.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod cli;
pub mod client;
pub mod demo;
pub mod error;
pub mod keygen;
pub mod recorder;
pub mod runtime;
pub mod scenario;
pub mod sequence;
pub mod server;
pub mod setup;
pub mod tap;

pub use error::Error;
