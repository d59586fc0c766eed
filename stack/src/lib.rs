//! # stack: composable protocol layers, selectable by name or by address
//!
//! A protocol knows the layer above, a transport knows the layer below, and a stack is built
//! bottom to top. Each [`Layer`] is sans-IO, like a PORT [`Connection`](port_core::Connection):
//! inputs from below (`link_up`, `input`, `link_finished`, `link_down`) and from above
//! (`send`, `close`), outputs pulled toward both sides, and deadlines. A layer reports
//! `Connected` only when its own handshake completed, so the application hears "connected"
//! only when every layer below is ready; a layer going down always reaches the top with a
//! reason.
//!
//! A [`Stack`] is itself a `Layer` (stacks nest) and a [`Session`](port_core::Session), so the
//! runtime adapters' one driver runs a whole stack exactly as it runs a bare connection.
//!
//! Built-in layers: [`Passthrough`](layers::Passthrough) (does nothing: for teaching and
//! testing the plumbing), [`PortLayer`](layers::PortLayer) (client and server),
//! [`SeasideLayer`](layers::SeasideLayer) (upstream SeasideVPN's PORT, always the bottom layer:
//! it reports `Event::Redirect` and the driver moves the stack to a second TCP connection), and
//! [`Frame`](layers::Frame) (length-prefixed messages over a byte stream).
//!
//! [`keyfile`] reads and writes the one-line key files every binary's `--key FILE` takes.
#![forbid(unsafe_code)]

pub mod address;
pub mod keyfile;
mod layer;
pub mod layers;
pub mod registry;
mod stack;

pub use address::{Address, AddressError};
pub use layer::{Layer, LayerContext};
pub use registry::{LayerFactory, Registry, RegistryError};
pub use stack::Stack;
