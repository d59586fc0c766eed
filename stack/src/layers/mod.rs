//! The built-in layers.

mod codec;
mod frame;
mod passthrough;
mod port;
mod seaside;

pub use codec::{Codec, CodecLayer};
pub use frame::{DEFAULT_MAX_MESSAGE, Frame, LengthPrefix};
pub use passthrough::{Identity, Passthrough};
pub use port::PortLayer;
pub use seaside::SeasideLayer;
