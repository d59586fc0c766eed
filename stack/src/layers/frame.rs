//! `frame`: turns a byte stream into messages with a 4-byte big-endian length prefix, for
//! stacks whose lower layer (plain TCP, a passthrough) does not keep message boundaries.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use port_core::ProtocolError;

use super::codec::{Codec, CodecLayer};
use crate::factory::LayerFactory;

/// Default largest message of a `frame` layer.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The length-prefix codec.
#[derive(Debug)]
pub struct LengthPrefix {
    max_message: usize,
    buf: BytesMut,
}

impl Default for LengthPrefix {
    fn default() -> Self {
        LengthPrefix {
            max_message: DEFAULT_MAX_MESSAGE,
            buf: BytesMut::new(),
        }
    }
}

impl Codec for LengthPrefix {
    fn encode(&mut self, message: Bytes) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + message.len());
        out.put_u32(message.len() as u32);
        out.put_slice(&message);
        out.freeze()
    }
    fn decode(&mut self, input: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), ProtocolError> {
        self.buf.extend_from_slice(&input);
        while self.buf.len() >= 4 {
            let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            let len = len as usize;
            if len > self.max_message {
                return Err(ProtocolError::MessageTooLarge {
                    len,
                    max: self.max_message,
                });
            }
            if self.buf.len() < 4 + len {
                break;
            }
            self.buf.advance(4);
            out.push_back(self.buf.split_to(len).freeze());
        }
        Ok(())
    }
    fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }
    /// The output is a byte stream, which a stack cuts to fit the layer below: only the
    /// length prefix bounds a message.
    fn max_message(&self, _link_max: usize) -> usize {
        self.max_message
    }
}

/// The length-prefixed framing layer.
pub type Frame = CodecLayer<LengthPrefix>;

impl Frame {
    /// A framing layer accepting messages up to `max_message` bytes (at most `u32::MAX`).
    pub fn with_max_message(max_message: usize) -> Self {
        CodecLayer::with_codec(LengthPrefix {
            max_message: max_message.min(u32::MAX as usize),
            buf: BytesMut::new(),
        })
    }

    /// A framing layer with the default 16 MiB message limit.
    pub fn new() -> Self {
        Self::with_max_message(DEFAULT_MAX_MESSAGE)
    }
}

/// What the registry builds `frame` with (the default 16 MiB message limit).
pub fn factory() -> LayerFactory {
    crate::factory::factory(|_, _| Ok(Box::new(Frame::new())))
}
