//! The conformance scenarios on tokio (`port-tokio`, a 2-worker multi-thread runtime).

port_conformance::conformance_tests!(port_conformance::Tokio);
