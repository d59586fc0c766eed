//! See [`port_fuzz::seaside`] for what this target checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| port_fuzz::seaside::run(data));
