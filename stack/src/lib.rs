//! # port-stack: composable protocol layers, selectable by name or by address
//!
//! A protocol knows the layer above, a transport knows the layer below, and a stack is built
//! bottom to top. A layer is a [`Session`](port_core::Session), the same sans-IO interface a
//! PORT [`Connection`](port_core::Connection) implements: input from below
//! (`handle_link_up`, `handle_input`, `handle_link_end`), calls from above (`send`, `close`),
//! output pulled toward both sides, and deadlines. A layer reports `Connected` only when its
//! own handshake completed, so the application hears "connected" only when every layer below
//! is ready; a layer going down always reaches the top with a reason.
//!
//! A [`Stack`] is itself a `Session`, so stacks nest and the runtime adapters' one driver runs
//! a whole stack exactly as it runs a bare connection.
//!
//! Built-in layers ([`layers`]): `passthrough` (does nothing: for teaching and testing the
//! plumbing), `frame` (length-prefixed messages over a byte stream), `port` (a PORT/1
//! connection) and `seaside` (upstream SeasideVPN's PORT, always the bottom layer: it asks its
//! driver to move it to a second TCP connection). The [`Registry`] turns names, specs such as
//! `port+passthrough` and stack files into stacks; an [`Address`] such as
//! `port+passthrough://127.0.0.1:9000` names a stack and a peer at once.
//!
//! [`keyfile`] reads and writes the one-line key files every binary's `--key FILE` takes, and
//! [`toml_file`] reads TOML (stack files, a program's own configuration) with errors that name
//! the line, the column and the key; [`tokens`] reads the tokens file a server checks its
//! clients' tokens against (`--tokens FILE`) and a client's token file.
#![forbid(unsafe_code)]

pub mod address;
mod error;
mod factory;
pub mod keyfile;
pub mod layers;
mod names;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod registry;
mod stack;
pub mod tokens;
pub mod toml_file;

pub use address::{Address, AddressError};
pub use error::RegistryError;
pub use factory::LayerFactory;
pub use registry::Registry;
pub use stack::{LAYER_WINDOW, Stack};
