//! Shared pieces of the PORT benchmarks (the criterion benches live in `benches/benches/`).
//!
//! - [`pair`]: two PORT cores joined in memory, with a handshake driver and a message pump.
//! - [`tls`]: rustls TLS 1.3 configurations (ring provider, X25519, an Ed25519 certificate made
//!   at start-up) and an in-memory TLS handshake.
//! - [`net`]: connected loopback pairs on tokio: plain TCP, tokio-rustls and port-tokio.
//! - [`sys`]: the machine description and `/proc` readings (resident memory, CPU time).
//! - [`compare`]: interleaved in-process comparisons, so each bench prints its ratios against
//!   the goals next to criterion's own report, robust to load from other processes.
#![forbid(unsafe_code)]

pub mod compare;
pub mod net;
pub mod pair;
pub mod sys;
pub mod tls;
