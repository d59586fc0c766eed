//! Placeholder: this crate is filled in by a later milestone; it currently re-exports the core.
#![forbid(unsafe_code)]

pub use port_core;
