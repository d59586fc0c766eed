//! `--metrics ADDR` of the binaries: every connection's metrics (`port_driver::metrics`) and
//! the program's own, served in the Prometheus text format at `http://ADDR/metrics` by the
//! field's exporter.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Bucket bounds of the keepalive round-trip histogram, in seconds: 1 ms to 10 s.
pub const RTT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global metrics recorder and serves what it records over HTTP on `addr` (on a
/// thread of its own when called outside a tokio runtime, so any runtime can use it). Fails
/// when `addr` cannot be bound or a recorder is already installed.
pub fn serve(addr: SocketAddr) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("port_keepalive_rtt_seconds".to_owned()),
            &RTT_BUCKETS,
        )
        .and_then(|builder| builder.install())
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}
