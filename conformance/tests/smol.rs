//! The conformance scenarios on smol (`port-async-std` with the `Smol` runtime).

conformance::conformance_tests!(conformance::Smol);
