//! # port-core: the PORT/1 protocol as a sans-IO state machine
//!
//! PORT is an obfuscated, encrypted, message-oriented transport over TCP. This crate holds all
//! of the protocol and none of the I/O: no sockets, no clock, no global randomness. A
//! [`Connection`] is driven through the calls of the [`Session`] trait, and the caller owns
//! the socket, the clock and the entropy:
//!
//! | call | what it does |
//! |---|---|
//! | [`Session::handle_input`] | feed bytes read from TCP, in any chunking |
//! | [`Session::poll_transmit`] | take bytes to write to TCP |
//! | [`Session::poll_event`] | take [`Event`]s: `Authenticate`, `Connected`, `Data`, `Finished`, `Closed` |
//! | [`Session::poll_timeout`] | the one earliest deadline |
//! | [`Session::handle_timeout`] | fire what is due (early or repeated calls are harmless) |
//! | [`Session::send`], [`Session::close`] | application messages, graceful close |
//! | [`Session::accept`], [`Session::reject`] | the server's decision on a token |
//! | [`Session::handle_link_end`] | the TCP stream ended |
//!
//! The same trait is what the drivers run and what a layer of a stack is, so a PORT
//! connection, a seaside session and a whole stack of layers are driven alike.
//!
//! ## The drive loop
//!
//! After every input or timeout, drain in this order: **transmits** (write them out), then
//! **events** (they may call `send`, `accept`, `close`, which queue more transmits, so loop),
//! then read **`poll_timeout`** and sleep until it or until the socket is readable. Once
//! [`Session::is_closed`] is true, close the socket.
//!
//! This example runs a client and a server against each other in memory, on a virtual clock:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use port_core::{
//!     ClientConfig, Config, Connection, Event, ServerConfig, ServerKey, Session, Status,
//! };
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // use an OS-seeded CSPRNG in real code
//! let server_key = ServerKey::generate(&mut rng);
//! let config = Config::default();
//! let client_setup = ClientConfig::new(config.clone(), server_key.client_key(), "my token")?;
//! let server_setup = ServerConfig::new(config, server_key);
//!
//! let start = Instant::now();
//! let unix = Duration::from_secs(1_800_000_000);
//! let mut client = Connection::client(&client_setup, start, unix, [1; 32]);
//! let mut server = Connection::server(&server_setup, start, unix, [2; 32]);
//! // The first message may go before the handshake: it travels in the INIT as early data
//! // (without forward secrecy, docs/PROTOCOL.md §5.8). Any other waits for `Connected`.
//! client.send("early".into())?;
//! client.send("too early".into()).unwrap_err(); // NotConnected
//!
//! let mut now = start;
//! let mut echoed = Vec::new();
//! for _step in 0..100 {
//!     // 1. Transmits: what one side writes, the other reads.
//!     while let Some(bytes) = client.poll_transmit(now) {
//!         server.handle_input(now, &bytes);
//!     }
//!     while let Some(bytes) = server.poll_transmit(now) {
//!         client.handle_input(now, &bytes);
//!     }
//!     // 2. Events.
//!     let mut progressed = false;
//!     while let Some(event) = server.poll_event() {
//!         progressed = true;
//!         match event {
//!             Event::Authenticate { token, .. } if &token[..] == b"my token" => server.accept(7)?,
//!             Event::Authenticate { .. } => server.reject(Status::TokenParseError)?,
//!             Event::Data(message) => server.send(message)?, // echo
//!             Event::Finished => server.close(), // the client is done: end our side too
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = client.poll_event() {
//!         progressed = true;
//!         match event {
//!             Event::Connected { user_id } => {
//!                 assert_eq!(user_id, 7);
//!                 client.send("hello".into())?;
//!             }
//!             Event::Data(message) => {
//!                 echoed.push(message);
//!                 if echoed.len() == 2 {
//!                     client.close();
//!                 }
//!             }
//!             Event::Closed(reason) => assert!(reason.is_graceful()),
//!             _ => {}
//!         }
//!     }
//!     if client.is_closed() && server.is_closed() {
//!         break;
//!     }
//!     // 3. Timers: with nothing else to do, jump the virtual clock to the next deadline.
//!     if !progressed {
//!         now = client.poll_timeout().into_iter().chain(server.poll_timeout()).min().unwrap();
//!         client.handle_timeout(now);
//!         server.handle_timeout(now);
//!     }
//! }
//! assert_eq!(echoed, ["early", "hello"]);
//! assert!(client.is_closed() && server.is_closed());
//! # Ok::<(), port_core::Error>(())
//! ```
//!
//! ## Pieces
//!
//! - [`ServerKey`] / [`ClientKey`]: key material and its one-line text forms.
//! - [`Shape`]: what a server's connections look like to a censor (a first-flight prefix,
//!   popcount shaping, record sizes of the connection's own), carried in both key lines.
//! - [`Config`]: every knob, validated, from a builder or from `PORT_*` variables.
//! - [`ClientConfig`] / [`ServerConfig`]: per-endpoint setup (the server's holds the replay
//!   filter shared by its connections).
//! - [`Session`]: the one session interface drivers run and stacks are made of; [`Start`] is
//!   what a new session is made from (the moment, the wall clock, entropy), and
//!   [`Redirect`] the hook of sessions that move to a second TCP connection.
//! - [`frame`]: the frame codec on its own, for tools, fuzzing and benchmarks.
//! - [`record`]: an opt-in record of the messages a connection sends, for packet labelling.
//! - [`seaside`]: a second wire profile, byte-compatible with the PORT of upstream SeasideVPN
//!   deployments, on the same machinery; PORT/1 stays the default.
//!
//! The wire format is specified byte by byte in `docs/PROTOCOL.md` in the repository.
#![forbid(unsafe_code)]

pub mod cipher;
mod config;
mod connection;
mod crypto;
mod endpoint;
mod error;
mod event;
mod first_flight;
pub mod frame;
mod handshake;
mod keepalive;
mod keys;
mod lengths;
mod machinery;
pub mod record;
mod replay;
pub mod seaside;
mod session;
pub mod shape;
mod x25519;

pub use cipher::Cipher;
pub use config::{
    Config, ConfigBuilder, ConfigError, MAX_FRAME_PAYLOAD, MAX_PADDING, MIN_FRAME_PAYLOAD, Padding,
};
pub use connection::{Connection, Stats};
pub use endpoint::{ClientConfig, ServerConfig};
pub use error::{CloseReason, Error, InitRefusal, ProtocolError, Side, Status};
pub use event::Event;
pub use handshake::{
    CLIENT_PREFIX_LEN, MAX_EARLY_DATA, MAX_TOKEN_LEN, SALT_LEN, SERVER_PREFIX_LEN, VERSION,
};
pub use keys::{ClientKey, KeyError, KeyKind, SEED_LEN, ServerKey, generate_pair};
pub use lengths::{MAX_RECORD, MIN_RECORD};
pub use session::{Link, Redirect, Seed, Session, Start};
pub use shape::{Lengths, Popcount, Shape, ShapeError};
