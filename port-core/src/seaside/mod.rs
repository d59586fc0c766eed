//! # The `seaside` wire profile: PORT as upstream SeasideVPN speaks it
//!
//! A second wire profile beside the native PORT/1, byte-compatible with the PORT
//! implementations of the SeasideVPN project (its Python client and listener, its Go server,
//! its Rust client), so that this crate can stand in for either end of an existing
//! deployment. It runs on the same state-machine machinery as PORT/1 (time as an argument,
//! injected randomness, exact-length reads, events, deadlines) and implements the same
//! [`Session`](crate::Session) trait, so the same drivers run it.
//!
//! - [`ServerKey`] / [`ClientKey`]: upstream's 40-byte keys (X25519 key ‖ 8-byte seed) and
//!   their standard-base64 text forms.
//! - [`ServerConfig`] / [`ClientConfig`]: per-endpoint setup.
//! - [`Connection`]: the session, client or listener side.
//! - [`wire`]: the message codec on its own, for vectors, tools and fuzzing.
//!
//! The flow takes two TCP connections: the client INIT goes to the listener; the server INIT
//! carries the user id, which is the port of a per-user socket; DATA and TERM then run on a
//! second connection to that port. The session asks its driver for that connection through
//! [`Session::redirect`](crate::Session::redirect), the one hook the generic interfaces have
//! for it.
//!
//! **What this profile does not protect against** (the bytes are upstream's, so neither can
//! be added): replayed messages (no sequence numbers, one key for both directions, a recorded
//! client INIT stays valid until the listener's key changes) and compromise of the
//! listener's static key (no forward secrecy: the session key comes from one
//! ephemeral-static exchange). Everyone holding the public key can unmask the ephemeral key.
//! PORT/1 has none of these weaknesses and stays the default; use `seaside` only to talk to
//! upstream peers.
//!
//! ```
//! use std::time::Instant;
//! use port_core::{Config, Event, Link, Redirect, Session};
//! use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let key = ServerKey::generate(&mut ChaCha20Rng::from_seed([9; 32]));
//! let client_setup = ClientConfig::new(Config::default(), key.client_key(), "token")?;
//! let now = Instant::now();
//! let mut client = Connection::client(&client_setup, now, [1; 32]);
//! let mut server = Connection::server(&ServerConfig::new(Config::default(), key), now, [2; 32]);
//!
//! // Connection 1: the INITs.
//! let init = client.poll_transmit(now).unwrap();
//! server.handle_input(now, &init);
//! assert!(matches!(server.poll_event(), Some(Event::Authenticate { .. })));
//! assert_eq!(server.redirect(), Some(Redirect::Listen)); // the driver opens a per-user socket
//! server.accept(40000)?; // the port of the per-user socket the driver opened
//! let reply = server.poll_transmit(now).unwrap();
//! client.handle_input(now, &reply);
//! assert_eq!(client.redirect(), Some(Redirect::Move { port: 40000 }));
//!
//! // Connection 2: the driver connected to port 40000; messages flow.
//! client.handle_link_up(now, Link::STREAM);
//! server.handle_link_up(now, Link::STREAM);
//! client.send("hello".into())?;
//! server.handle_input(now, &client.poll_transmit(now).unwrap());
//! assert!(std::iter::from_fn(|| server.poll_event()).any(|e| e == Event::Data("hello".into())));
//! # Ok::<(), port_core::Error>(())
//! ```

mod connection;
pub mod crypto;
mod keys;
mod setup;
pub mod wire;

pub use connection::Connection;
pub use keys::{ClientKey, KEY_BYTES, KeyError, KeyKind, SEED_LEN, ServerKey};
pub use setup::{ClientConfig, ServerConfig};
