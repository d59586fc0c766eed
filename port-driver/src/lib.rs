//! # port-driver: PORT connections on any async runtime
//!
//! The one user API of PORT over sockets, written once over a runtime value
//! (`Arc<dyn` [`Runtime`]`>`): [`connect`] and [`Listener::bind`] for PORT/1,
//! [`connect_seaside`] and [`Listener::bind_seaside`] for upstream SeasideVPN peers,
//! [`connect_session`] and [`Listener::bind_sessions`] for any [`Session`](port_core::Session)
//! (a stack of layers, say). A [`Stream`] sends and receives messages with their boundaries,
//! is a byte stream too (`futures-io`'s `AsyncRead`/`AsyncWrite`, and tokio's with the `tokio`
//! feature), and splits into halves.
//!
//! The runtime adapters supply the runtime value and nothing else: `port_tokio::runtime()`,
//! `port_async_std::async_std()` and `port_async_std::smol()`; their crates re-export this
//! API, so a program names one crate.
//!
//! ```no_run
//! # async fn demo(runtime: std::sync::Arc<dyn port_driver::Runtime>, server_key: port_core::ServerKey) -> Result<(), port_driver::Error> {
//! use port_core::{ClientConfig, Config, ServerConfig};
//! use port_driver::{Listener, connect};
//!
//! let client_key = server_key.client_key();
//! let server = ServerConfig::new(Config::default(), server_key);
//! let listener = Listener::bind(&runtime, "127.0.0.1:9000", server).await?;
//! let echo = async move {
//!     while let Ok(incoming) = listener.accept().await {
//!         let mut stream = incoming.accept(1).unwrap();
//!         while let Ok(Some(message)) = stream.recv().await {
//!             stream.send(message).await.unwrap(); // echo
//!         }
//!     }
//! };
//! runtime.spawn(Box::pin(echo));
//! let setup = ClientConfig::new(Config::default(), client_key, "token").unwrap();
//! let mut stream = connect(&runtime, "127.0.0.1:9000", &setup).await?;
//! stream.send("hello").await?;
//! assert_eq!(stream.recv().await?.as_deref(), Some(&b"hello"[..]));
//! stream.close().await
//! # }
//! ```
//!
//! ## How a connection runs
//!
//! One task per connection (the driver) feeds socket bytes to the session, sleeps until its
//! next deadline on the runtime's clock and routes its events to the application's handles.
//! Writing is shared: once connected, a message is sealed and written in the task that sends
//! it, for as long as the socket takes it (a bulk sender never wakes the driver, as a TLS
//! stream writes in its writer's task), and the driver writes everything else (the handshake,
//! keepalives, TERM, what a full socket left behind), woken by the socket when it can take
//! more. Time is read only from the runtime, so a runtime with a paused clock drives
//! keepalives and timeouts too.
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
//! A session that continues on a second TCP connection (the seaside profile) asks for it
//! through [`Session::redirect`](port_core::Session::redirect); the driver opens it with the
//! runtime's own sockets (a client connects, a listener accepts exactly one connection from
//! the client's address on a per-user socket), moves the session onto it and drops the first.
//! The session's own deadline bounds the wait.
//!
//! A connection that ended sends its FIN and then reads (and drops) what the peer still sends
//! until the peer's FIN, for at most 5 s, so that closing never resets the TCP connection
//! while the peer still has our last frames to read.
#![forbid(unsafe_code)]

mod addr;
mod connect;
mod driver;
mod error;
mod fallback;
mod incoming;
mod listener;
pub mod metrics;
mod options;
mod redirect;
mod runtime;
mod seaside;
mod shared;
mod stream;
#[cfg(feature = "tokio")]
mod tokio_io;
mod transport;
mod unauthenticated;
mod util;

pub use addr::TcpAddr;
pub use connect::{connect, connect_session, connect_session_with_first};
pub use error::Error;
pub use incoming::Incoming;
pub use listener::{Listener, SessionFactory};
pub use options::{MAX_UNAUTHENTICATED, Options};
pub use runtime::{Acceptor, AsSocketHandle, BoxFuture, Runtime, Socket, Timer, sleep};
pub use seaside::connect_seaside;
pub use shared::Traffic;
pub use stream::{ReadHalf, Stream, WriteHalf};
