//! # port-driver: one runtime-agnostic driver for PORT sessions
//!
//! Runs any [`port_core::Session`] (a bare PORT connection or a whole stack of layers) over any
//! `futures-io` byte stream: one task per connection feeds socket bytes to the session, writes
//! its output, sleeps until its next deadline (checking `now >= deadline` before arming a
//! timer) and routes its events to the application's handles. The runtime adapters
//! (`port-tokio`, `port-async-std`) only supply a [`Runtime`] (timers, spawning), sockets and
//! their runtime's I/O traits.
//!
//! Memory per connection is bounded: the driver stops reading the socket while more than
//! 256 KiB of received messages wait for the application, and writers wait while more than
//! 256 KiB are queued for sending. Idle connections are small: the socket read buffer is one
//! per runtime thread, and a session gives back the buffers that data grew about a second
//! after the data stops (`BENCHMARKS.md`: about 3 KiB resident per idle connection and end).
//! Whether freed buffers leave the process is the allocator's choice: glibc's `malloc` keeps
//! freed 16–64 KiB buffers in its arenas, so a server that serves bursts on many connections
//! keeps its peak resident size unless it runs with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16384` (buffers that large are then mapped and
//! unmapped on their own) or with an allocator that returns memory.
//!
//! PORT/1 has no flow control of its own, so keepalives travel behind data: an application
//! that stops reading for longer than the keepalive detection bound
//! ([`Config::max_keepalive_detection`](port_core::Config::max_keepalive_detection), 224 s
//! with the defaults) stalls the PONGs in the socket too, and the connection ends with
//! `KeepaliveTimeout` even though both peers are alive. Read promptly, or size the keepalive
//! settings for the longest pause the application makes.
//!
//! Sessions that continue on a second TCP connection (the seaside profile) report
//! `Event::Redirect`; a driver given a [`Redirector`] then opens that connection (client) or
//! accepts exactly one connection from the client's address on a per-user socket (listener),
//! moves the session onto it and drops the first. The session's own deadline bounds the wait.
//!
//! A connection that ended sends its FIN and then reads (and drops) what the peer still sends
//! until the peer's FIN, for at most 5 s, so that closing never resets the TCP connection
//! while the peer still has our last frames to read.
#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod listener;
mod redirect;
mod runtime;
mod shared;
mod socket;
mod stream;
mod util;

pub use client::{connect, connect_session, connect_session_with};
pub use error::Error;
pub use listener::{Acceptor, Incoming, Listener, SessionFactory};
pub use redirect::{BoxFuture, Redirector};
pub use runtime::{Runtime, Timer};
pub use socket::SocketOptions;
pub use stream::{ReadHalf, Stream, WriteHalf};
