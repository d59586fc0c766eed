//! The conformance scenarios on async-std (`port-async-std` with the `AsyncStd` runtime).

port_conformance::conformance_tests!(port_conformance::AsyncStd);
