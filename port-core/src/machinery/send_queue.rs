//! Messages accepted from the application and not yet sealed.

use std::collections::VecDeque;

use bytes::Bytes;

/// Messages waiting to be framed, cut into fragments of the negotiated size on the way out.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    pub(crate) messages: VecDeque<Bytes>,
    offset: usize,
    pub(crate) bytes: usize,
}

impl SendQueue {
    pub(crate) fn push(&mut self, message: Bytes) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    /// The next fragment (at most `max` bytes) and whether the message continues after it.
    pub(crate) fn next_fragment(&mut self, max: usize) -> Option<(Bytes, bool)> {
        let front = self.messages.front()?;
        let end = front.len().min(self.offset + max);
        let chunk = front.slice(self.offset..end);
        let more = end < front.len();
        if more {
            self.offset = end;
        } else {
            self.messages.pop_front();
            self.offset = 0;
        }
        self.bytes -= chunk.len();
        Some((chunk, more))
    }

    pub(crate) fn clear(&mut self) {
        *self = SendQueue::default();
    }

    /// Returns the queue's memory when it is empty.
    pub(crate) fn release_if_empty(&mut self) {
        if self.messages.is_empty() {
            self.messages = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_keep_order_and_count_bytes() {
        let mut q = SendQueue::default();
        q.push(Bytes::from_static(b"abcdefg"));
        q.push(Bytes::from_static(b"hi"));
        assert_eq!(q.bytes, 9);
        assert_eq!(q.next_fragment(3), Some((Bytes::from_static(b"abc"), true)));
        assert_eq!(q.next_fragment(3), Some((Bytes::from_static(b"def"), true)));
        assert_eq!(q.next_fragment(3), Some((Bytes::from_static(b"g"), false)));
        assert_eq!(q.bytes, 2);
        assert_eq!(q.next_fragment(3), Some((Bytes::from_static(b"hi"), false)));
        assert_eq!(q.next_fragment(3), None);
        assert_eq!(q.bytes, 0);
    }
}
