//! State-machine machinery every wire profile shares: exact-length reads from a stream fed in
//! any chunking, the event queue with its once-only close report, the queue of messages
//! waiting to be sealed, and seeded randomness. PORT/1's [`Connection`](crate::Connection)
//! and the seaside profile's [`Connection`](crate::seaside::Connection) are both built from
//! these, so a fix to one (a chunking bug, a second `Closed`) is a fix to both.

mod events;
mod random;
mod send_queue;
mod units;

pub(crate) use events::Events;
pub(crate) use random::{seeded, uniform, uniform_int};
pub(crate) use send_queue::SendQueue;
pub(crate) use units::{UnitReader, skip};

/// Bytes of sealed messages `poll_transmit` builds at most per call: large enough for few
/// syscalls, small enough that one call never holds much memory.
pub(crate) const TRANSMIT_BATCH: usize = 128 * 1024;
