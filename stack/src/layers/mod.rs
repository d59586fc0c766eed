//! The built-in layers. Each file holds one layer and the factories the registry builds it
//! with; a PORT connection and a seaside session are sessions already, so their files hold
//! only factories.

mod codec;
pub mod frame;
pub mod passthrough;
pub mod port;
pub mod seaside;

pub use codec::{Codec, CodecLayer};
pub use frame::{DEFAULT_MAX_MESSAGE, Frame, LengthPrefix};
pub use passthrough::{Identity, Passthrough};
