//! Complete handshakes, client and server in one thread, bytes moved in memory.
//!
//! - `handshake/port`: `Connection::client` and `Connection::server` (fresh OS-random seeds,
//!   as the driver draws them), bytes shuttled until the server accepted the token and both
//!   sides are connected.
//! - `handshake/tls13`: rustls `ClientConnection` and `ServerConnection` (ring provider,
//!   X25519, TLS 1.3, ChaCha20-Poly1305, an Ed25519 certificate generated once at start,
//!   certificate verified against it as the only trust anchor, no resumption), records moved
//!   through a `Vec` with `write_tls`/`read_tls` until neither side is handshaking.
//!
//! The server's replay filter (65 536 salts by default) is renewed every 50 000 handshakes so
//! that it never fills up. Goal: PORT >= 2x the TLS handshake rate.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use port_core::Config;

use benches::compare::{self, Entry, Plan};
use benches::pair::{Pair, Setups};
use benches::sys;
use benches::tls::{self, TlsConfigs};

/// Handshakes between two renewals of the server's replay filter.
const RENEW_EVERY: u64 = 50_000;

/// One PORT handshake per call.
fn port(setups: &mut Setups) -> impl FnMut() + '_ {
    let mut count = 0u64;
    move || {
        count += 1;
        if count.is_multiple_of(RENEW_EVERY) {
            setups.renew_replay_filter();
        }
        let mut pair = Pair::new(setups);
        black_box(pair.handshake());
        black_box(pair);
    }
}

/// One TLS 1.3 handshake per call.
fn tls13(configs: &TlsConfigs) -> impl FnMut() + '_ {
    let mut wire = Vec::with_capacity(4096);
    move || {
        black_box(tls::handshake(configs, &mut wire));
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut setups = Setups::new(Config::default());
    let configs = TlsConfigs::generate(benches::tls::CHACHA);

    if !compare::compare_only() {
        let mut group = criterion.benchmark_group("handshake");
        group.throughput(Throughput::Elements(1));
        group.bench_function("port", |b| b.iter(port(&mut setups)));
        group.bench_function("tls13", |b| b.iter(tls13(&configs)));
        group.finish();
        criterion.final_summary();
    }

    if compare::skip_comparisons() {
        return;
    }
    println!("\n{}", sys::machine());
    let port_bytes = Pair::new(&setups).handshake();
    let (_, _, tls_bytes) = tls::handshake(&configs, &mut Vec::new());
    println!(
        "bytes on the wire per handshake: PORT {port_bytes} (random padding), TLS {tls_bytes}"
    );

    let plan = Plan {
        rounds: 15,
        slice: Duration::from_millis(100),
    };
    let mut entries = vec![
        Entry::new("tls13 (rustls, ring)", tls13(&configs)),
        Entry::new("port", port(&mut setups)),
    ];
    let outcomes = compare::interleaved(plan, &mut entries);
    compare::print(
        "== handshake: complete handshakes per second, interleaved in this process",
        &outcomes,
        None,
    );
    let speed = compare::find(&outcomes, "port").speed;
    println!(
        "  -> PORT {speed:.3}x the TLS 1.3 handshake rate, {}",
        compare::verdict(speed, 2.0)
    );
}
