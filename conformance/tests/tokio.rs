//! The conformance scenarios on tokio (`port-tokio`, a 2-worker multi-thread runtime).

conformance::conformance_tests!(conformance::Tokio);
