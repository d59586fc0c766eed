//! The connections a listener accepted that have not authenticated yet: counted, oldest first,
//! so that a cap bounds them and a full file table evicts them, oldest first, before it can
//! touch anyone who authenticated.
//!
//! A connection holds a [`Slot`] from its accept until it authenticates or ends (a connection
//! handed to a fallback keeps it, so spliced probers count too). Evicting marks the
//! connection's shared state and wakes its task, which closes the socket: the descriptor is
//! free once that task has run.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::incoming::ListenerShared;
use crate::shared::Shared;

/// One connection in the line.
struct Entry {
    shared: Weak<Shared>,
    /// Still counted: cleared once, by whichever of eviction and release comes first.
    counted: AtomicBool,
}

/// The unauthenticated connections of one listener.
#[derive(Default)]
pub(crate) struct Unauthenticated {
    line: Mutex<VecDeque<Arc<Entry>>>,
    count: AtomicUsize,
}

impl Unauthenticated {
    /// How many connections hold a slot.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Puts a freshly accepted connection of `listener` at the back of the line.
    pub(crate) fn admit(&self, shared: &Arc<Shared>, listener: Weak<ListenerShared>) -> Slot {
        let entry = Arc::new(Entry {
            shared: Arc::downgrade(shared),
            counted: AtomicBool::new(true),
        });
        self.count.fetch_add(1, Ordering::AcqRel);
        let mut line = self.lock();
        line.push_back(entry.clone());
        // Entries that left the line stay in it until they reach its front; keep them from
        // piling up behind a long-lived one.
        if line.len() > 2 * self.count() + 64 {
            line.retain(|e| e.counted.load(Ordering::Acquire));
        }
        Slot { entry, listener }
    }

    /// Evicts up to `n` of the oldest connections still waiting to authenticate; returns how
    /// many.
    pub(crate) fn evict_oldest(&self, n: usize) -> usize {
        let mut evicted = 0;
        let mut line = self.lock();
        while evicted < n {
            let Some(entry) = line.pop_front() else {
                break;
            };
            if !self.release(&entry) {
                continue;
            }
            if let Some(shared) = entry.shared.upgrade() {
                let mut inner = shared.lock();
                inner.evicted = true;
                inner.wake_driver();
            }
            evicted += 1;
        }
        evicted
    }

    /// Stops counting `entry`; false if it was not counted any more.
    fn release(&self, entry: &Entry) -> bool {
        let was = entry.counted.swap(false, Ordering::AcqRel);
        if was {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        was
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Entry>>> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Held by a connection while it is unauthenticated; dropping it leaves the line.
pub(crate) struct Slot {
    entry: Arc<Entry>,
    listener: Weak<ListenerShared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.upgrade() {
            listener.unauthenticated.release(&self.entry);
        }
    }
}
