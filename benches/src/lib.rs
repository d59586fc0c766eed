//! Benchmarks for PORT (criterion benches live in `benches/`); filled in by a later milestone.
#![forbid(unsafe_code)]
