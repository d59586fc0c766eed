//! An opt-in record of the PORT messages a connection sent: kind, payload and padding sizes,
//! bytes on the wire and when. Tools that watch the TCP stream (a packet capture, the chaos
//! harness) match it to segments by byte offset, since the bytes themselves look random.
//!
//! A driver runs a connection as a [`Session`](crate::Session), which forwards
//! `record_messages` and `drain_records` (a stack forwards them to its `port` layer), so an
//! application reaches the record by wrapping the session it hands to the driver and draining
//! after each `poll_transmit`, as `echotest --record` does; the drivers need no change.
//!
//! Off by default: a connection then keeps no log at all (one `Option` check per message).
//! When on, the log is bounded: past [`MessageLog::CAPACITY`] entries not yet drained, the
//! oldest is dropped and counted in [`MessageLog::lost`].

use std::collections::VecDeque;
use std::time::Instant;

/// What a sent message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A client or server INIT (the handshake).
    Init,
    /// A frame carrying application data (possibly with a keepalive riding on it).
    Data,
    /// The frame that ends this side's direction.
    Term,
    /// A frame carrying only a keepalive request or answer.
    Keepalive,
}

impl MessageKind {
    /// `init`, `data`, `term` or `keepalive`.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Init => "init",
            MessageKind::Data => "data",
            MessageKind::Term => "term",
            MessageKind::Keepalive => "keepalive",
        }
    }
}

/// One message a connection sent, in the order they enter the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// What it was.
    pub kind: MessageKind,
    /// Application payload bytes (the token, for a client INIT).
    pub payload: usize,
    /// Padding bytes.
    pub padding: usize,
    /// Bytes it takes in the stream: headers, tags, payload and padding.
    pub wire: usize,
    /// When it was sealed.
    pub at: Instant,
}

/// A bounded log of sent messages.
#[derive(Clone, Debug, Default)]
pub struct MessageLog {
    records: VecDeque<MessageRecord>,
    lost: u64,
}

impl MessageLog {
    /// Entries kept before the oldest is dropped.
    pub const CAPACITY: usize = 4096;

    /// Appends `record`, dropping the oldest entry when full.
    pub fn push(&mut self, record: MessageRecord) {
        if self.records.len() >= Self::CAPACITY {
            self.records.pop_front();
            self.lost += 1;
        }
        self.records.push_back(record);
    }

    /// Takes every entry, oldest first.
    pub fn drain(&mut self) -> Vec<MessageRecord> {
        self.records.drain(..).collect()
    }

    /// Entries dropped because the log was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Entries waiting to be drained.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing waits to be drained.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> MessageRecord {
        MessageRecord {
            kind: MessageKind::Data,
            payload: i,
            padding: 0,
            wire: i + 40,
            at: Instant::now(),
        }
    }

    #[test]
    fn keeps_order_and_drops_the_oldest_when_full() {
        let mut log = MessageLog::default();
        for i in 0..MessageLog::CAPACITY + 3 {
            log.push(record(i));
        }
        assert_eq!(log.len(), MessageLog::CAPACITY);
        assert_eq!(log.lost(), 3);
        let drained = log.drain();
        assert_eq!(drained[0].payload, 3);
        assert_eq!(drained.last().unwrap().payload, MessageLog::CAPACITY + 2);
        assert!(log.is_empty());
        log.push(record(1));
        assert_eq!(log.drain().len(), 1);
        assert_eq!(log.lost(), 3);
    }

    #[test]
    fn kinds_have_names() {
        assert_eq!(MessageKind::Keepalive.name(), "keepalive");
        assert_eq!(MessageKind::Init.name(), "init");
    }
}
