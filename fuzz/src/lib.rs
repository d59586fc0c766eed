//! Fuzz targets of `port-core`, as plain functions over bytes.
//!
//! Each `fuzz_targets/*.rs` is one line calling a `run` function here; the corpus generator
//! (`examples/gen_corpus.rs`) calls the same functions on every seed it writes, so a seed that
//! breaks a property is caught before libFuzzer ever starts.
//!
//! | target | function |
//! |---|---|
//! | `frame_decode` | [`frames::run`] |
//! | `client_init` | [`client_init::run`] |
//! | `client_init_mutated` | [`client_init::run_mutated`] |
//! | `server_init` | [`server_init::run`] |
//! | `connection` | [`sim::run`] |
//! | `seaside` | [`seaside::run`] |
//! | `shaped_init` | [`shaped_init::run`] |
#![forbid(unsafe_code)]

pub mod client_init;
pub mod encode;
pub mod frames;
pub mod seaside;
pub mod server_init;
pub mod setup;
pub mod shaped_init;
pub mod sim;

/// A target: a function of the input bytes that panics when a property fails.
pub type Target = fn(&[u8]);

/// Every target by name, for the generator.
pub const TARGETS: [(&str, Target); 7] = [
    ("frame_decode", frames::run),
    ("client_init", client_init::run),
    ("client_init_mutated", client_init::run_mutated),
    ("server_init", server_init::run),
    ("connection", sim::run),
    ("seaside", seaside::run),
    ("shaped_init", shaped_init::run),
];
