//! Layers without a handshake of their own (`passthrough`, `frame`): a shared lifecycle (up with
//! the layer below, half-close, down) around a codec that maps messages to bytes and back.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use port_core::{CloseReason, Error, Event, Link, ProtocolError, Session};

/// How a codec layer turns messages from above into bytes for below, and back.
pub trait Codec: Send {
    /// Encodes one message from above.
    fn encode(&mut self, message: Bytes) -> Bytes;
    /// Decodes input from below, pushing each complete message to `out`.
    fn decode(&mut self, input: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), ProtocolError>;
    /// True when input ended inside a message.
    fn is_partial(&self) -> bool;
    /// The largest message `encode` accepts over a link whose own messages are at most
    /// `link_max` bytes. A codec whose output is a byte stream is free of `link_max` (a stack
    /// cuts its output to fit the layer below); one that hands messages down as they are is
    /// bounded by it.
    fn max_message(&self, link_max: usize) -> usize;
}

/// A [`Session`] made of a [`Codec`] and the common lifecycle.
#[derive(Debug, Default)]
pub struct CodecLayer<C> {
    codec: C,
    down: VecDeque<Bytes>,
    queued: usize,
    events: VecDeque<Event>,
    decoded: VecDeque<Bytes>,
    /// The link came up; what it takes at most per message.
    link_max: Option<usize>,
    close_requested: bool,
    /// This side ended its direction before the peer did.
    ours_first: bool,
    peer_finished: bool,
    closed: Option<CloseReason>,
}

impl<C: Codec> CodecLayer<C> {
    /// A layer around `codec`, down until the layer below comes up.
    pub fn with_codec(codec: C) -> Self {
        CodecLayer {
            codec,
            down: VecDeque::new(),
            queued: 0,
            events: VecDeque::new(),
            decoded: VecDeque::new(),
            link_max: None,
            close_requested: false,
            ours_first: false,
            peer_finished: false,
            closed: None,
        }
    }

    fn end(&mut self, reason: CloseReason) {
        self.down.clear();
        self.queued = 0;
        if self.closed.is_none() {
            self.closed = Some(reason);
            self.events.push_back(Event::Closed(reason));
        }
    }

    /// Both directions over: a clean end, named after whichever ended first.
    fn maybe_finish(&mut self) {
        if self.close_requested && self.down.is_empty() && self.peer_finished {
            let reason = if self.ours_first {
                CloseReason::Local
            } else {
                CloseReason::Peer
            };
            self.end(reason);
        }
    }
}

impl<C: Codec> Session for CodecLayer<C> {
    fn handle_link_up(&mut self, _now: Instant, link: Link) {
        if self.link_max.is_none() && self.closed.is_none() {
            self.link_max = Some(link.max_message);
            self.events.push_back(Event::Connected {
                user_id: link.user_id,
            });
        }
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.handle_input_owned(now, Bytes::copy_from_slice(data));
    }

    fn handle_input_owned(&mut self, _now: Instant, data: Bytes) {
        if self.closed.is_some() || self.peer_finished {
            return;
        }
        match self.codec.decode(data, &mut self.decoded) {
            Ok(()) => self.events.extend(self.decoded.drain(..).map(Event::Data)),
            Err(e) => self.end(CloseReason::Protocol(e)),
        }
    }

    fn handle_link_end(&mut self, _now: Instant, reason: Option<CloseReason>) {
        if let Some(reason) = reason {
            return self.end(reason);
        }
        if self.peer_finished || self.closed.is_some() {
            return;
        }
        if self.codec.is_partial() {
            return self.end(CloseReason::Protocol(ProtocolError::Malformed(
                "stream ended inside a message",
            )));
        }
        self.peer_finished = true;
        self.events.push_back(Event::Finished);
        self.maybe_finish();
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Bytes> {
        let data = self.down.pop_front()?;
        self.queued -= data.len();
        self.maybe_finish();
        Some(data)
    }

    fn is_send_finished(&self) -> bool {
        self.is_send_closed()
    }

    fn send(&mut self, data: Bytes) -> Result<(), Error> {
        if let Some(reason) = self.closed {
            return Err(Error::Closed(reason));
        }
        if self.close_requested {
            return Err(Error::Closing);
        }
        if self.link_max.is_none() {
            return Err(Error::NotConnected);
        }
        let max = self.max_message();
        if data.len() > max {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max,
            });
        }
        let encoded = self.codec.encode(data);
        self.queued += encoded.len();
        self.down.push_back(encoded);
        Ok(())
    }

    fn close(&mut self) {
        if !self.close_requested && !self.peer_finished {
            self.ours_first = true;
        }
        self.close_requested = true;
        self.maybe_finish();
    }

    fn send_buffered(&self) -> usize {
        self.queued
    }

    fn max_message(&self) -> usize {
        self.codec.max_message(self.link_max.unwrap_or(usize::MAX))
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn is_send_closed(&self) -> bool {
        (self.close_requested || self.closed.is_some()) && self.down.is_empty()
    }

    fn is_peer_finished(&self) -> bool {
        self.peer_finished
    }

    fn is_closed(&self) -> bool {
        self.closed.is_some() && self.down.is_empty()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}
