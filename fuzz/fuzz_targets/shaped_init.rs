//! See [`port_fuzz::shaped_init`] for what this target checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| port_fuzz::shaped_init::run(data));
