//! `passthrough`: a layer that does nothing. It exists to teach the plumbing and to test it:
//! what comes from above goes below unchanged, what comes from below goes above unchanged, and
//! it is up exactly when the layer below is. (The classic mistake it guards against in a
//! framework is handing the lower transport up instead of the layer's own.)

use std::collections::VecDeque;

use bytes::Bytes;
use port_core::ProtocolError;

use super::codec::{Codec, CodecLayer};
use crate::factory::LayerFactory;

/// The identity codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Codec for Identity {
    fn encode(&mut self, message: Bytes) -> Bytes {
        message
    }
    fn decode(&mut self, input: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), ProtocolError> {
        if !input.is_empty() {
            out.push_back(input);
        }
        Ok(())
    }
    fn is_partial(&self) -> bool {
        false
    }
    /// Messages go down as they are: as large as the layer below takes.
    fn max_message(&self, link_max: usize) -> usize {
        link_max
    }
}

/// The do-nothing layer.
pub type Passthrough = CodecLayer<Identity>;

impl Passthrough {
    /// A passthrough layer, down until the layer below comes up.
    pub fn new() -> Self {
        CodecLayer::with_codec(Identity)
    }
}

/// What the registry builds `passthrough` with.
pub fn factory() -> LayerFactory {
    crate::factory::factory(|_, _| Ok(Box::new(Passthrough::new())))
}
