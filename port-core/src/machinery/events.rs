//! The queue of events for the application, with the rule that `Closed` is reported exactly
//! once and its reason kept afterwards.

use std::collections::VecDeque;

use crate::error::CloseReason;
use crate::event::Event;

/// Events waiting for `poll_event`, and the sticky close reason.
#[derive(Debug, Default)]
pub(crate) struct Events {
    queue: VecDeque<Event>,
    close_reason: Option<CloseReason>,
}

impl Events {
    /// Queues an event.
    pub(crate) fn push(&mut self, event: Event) {
        self.queue.push_back(event);
    }

    /// The next event.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// Reports `Closed(reason)` unless a close was reported already (the first reason wins).
    pub(crate) fn closed(&mut self, reason: CloseReason) {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
            self.queue.push_back(Event::Closed(reason));
        }
    }

    /// The reason reported with `Closed`, once it was.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// True when no event waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events the queue has room for without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Gives the queue's allocation back (callers check [`is_empty`](Self::is_empty) first).
    pub(crate) fn release(&mut self) {
        self.queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_reported_once_and_the_first_reason_sticks() {
        let mut events = Events::default();
        events.push(Event::Finished);
        events.closed(CloseReason::Peer);
        events.closed(CloseReason::TransportClosed);
        assert_eq!(events.pop(), Some(Event::Finished));
        assert_eq!(events.pop(), Some(Event::Closed(CloseReason::Peer)));
        assert_eq!(events.pop(), None);
        assert_eq!(events.close_reason(), Some(CloseReason::Peer));
    }
}
