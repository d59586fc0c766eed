//! # port-echo: the `echotest` application
//!
//! An echo server and client over any PORT stack chosen by name (`port`, `passthrough`,
//! `port+passthrough`, `secure`, ...) on tokio, smol or async-std, plus `keygen` and a
//! self-contained `demo`. The binary is `echotest` (a binary called `echo` would be shadowed
//! by the shell builtin); this library holds its logic so that tests can drive it without
//! starting processes.
//!
//! - [`setup`]: stacks from the registry with the keys their layers need, key files,
//!   per-connection session factories.
//! - [`server`] and [`client`]: the echo logic, written once over the PORT API's runtime
//!   value.
//! - [`runtime`]: which runtime value (tokio, smol, async-std) and how the binary enters it.
//! - [`keygen`], [`demo`], [`cli`].
//! - [`flights`], [`lengths`]: what a passive censor sees of a stack (`echotest flights`,
//!   `echotest lengths`): first flights judged by the fully-encrypted-traffic rule, record
//!   sizes of keystrokes against bulk; [`probes`]: what an active prober sees of a server with
//!   a fallback (`echotest probes`).
//! - [`chaos`], [`scenario`], [`sequence`]: the network-in-chaos scenarios (`echotest chaos`)
//!   and the checked numbered sequence the client sends in them.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod cli;
pub mod client;
pub mod demo;
pub mod error;
pub mod flights;
pub mod keygen;
pub mod lengths;
pub mod probes;
pub mod recorder;
pub mod runtime;
pub mod scenario;
pub mod sequence;
pub mod server;
pub mod setup;

pub use error::Error;
