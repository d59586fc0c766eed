//! The conformance scenarios on smol (`port-async-std` with the `Smol` runtime).

port_conformance::conformance_tests!(port_conformance::Smol);
