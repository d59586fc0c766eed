//! An opt-in record of the PORT messages a connection sent: kind, payload and padding sizes,
//! bytes on the wire and when. Tools that watch the TCP stream (a packet capture, the chaos
//! harness) match it to segments by byte offset, since the bytes themselves look random.
//!
//! A connection sends each record to the [`RecordSink`] given to
//! [`Connection::record_to`](crate::Connection::record_to) as the message is sealed. Whoever
//! builds the connection sets the sink (a stack's layer factory, say), so a connection run by
//! a driver is recorded with no change to the driver, and nothing is recorded unless asked:
//! a connection without a sink keeps no log at all (one `Option` check per message).

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

/// Where a connection sends the records of the messages it seals, in the order they enter
/// the byte stream. Any `FnMut(MessageRecord) + Send` closure is one.
pub trait RecordSink: Send {
    /// Takes the record of one message, just sealed.
    fn record(&mut self, record: MessageRecord);
}

impl<F: FnMut(MessageRecord) + Send> RecordSink for F {
    fn record(&mut self, record: MessageRecord) {
        self(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_sinks() {
        let mut seen = Vec::new();
        let mut sink = |r: MessageRecord| seen.push(r.payload);
        let at = std::time::Instant::now();
        for payload in [3, 1] {
            sink.record(MessageRecord {
                kind: MessageKind::Data,
                payload,
                padding: 0,
                wire: payload + 44,
                at,
            });
        }
        assert_eq!(seen, [3, 1]);
    }

    #[test]
    fn kinds_have_names() {
        assert_eq!(MessageKind::Keepalive.name(), "keepalive");
        assert_eq!(MessageKind::Init.name(), "init");
    }
}
