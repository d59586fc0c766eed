//! The conformance scenarios on async-std (`port-async-std` with the `AsyncStd` runtime).

conformance::conformance_tests!(conformance::AsyncStd);
