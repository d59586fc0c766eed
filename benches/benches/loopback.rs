//! Real sockets over 127.0.0.1 on a multi-threaded tokio runtime (one worker per CPU):
//! port-tokio against plain tokio `TcpStream` and tokio-rustls (TLS 1.3, ring, X25519, Ed25519
//! certificate), cipher for cipher: `tls13` is `TLS13_CHACHA20_POLY1305_SHA256` against PORT's
//! default ChaCha20-Poly1305, `tls13-aes` is `TLS13_AES_256_GCM_SHA384` against the `port-aes-*`
//! pairs (a key with `cipher=aes-256-gcm`). `TCP_NODELAY` on all.
//!
//! - `loopback/bulk/*`: 64 MiB one way in 64 KiB writes, timed until the receiver has every
//!   byte; sender and receiver are separate tasks. `port-bytes` uses the `AsyncWrite`/
//!   `AsyncRead` byte stream, `port-msg` the message API (`send` of a shared 64 KiB `Bytes`,
//!   `recv`), `port-msg-16k` the message API with 16 KiB messages (one frame each under the
//!   default 16 KiB frame payload; 64 KiB messages are cut into four frames and reassembled).
//! - `loopback/rtt/*`: a 64-byte request echoed back by a server task, one at a time.
//! - `*-shaped`: the same over a key with shaped lengths (`lengths=shaped`): records of drawn
//!   sizes, one write each, instead of frames with random padding.
//!
//! PORT runs with `Config::default()` (random padding of 0..=512 bytes per frame). At the end
//! the same transfers run interleaved and the bench prints PORT's throughput relative to
//! tokio-rustls with the same cipher (goal >= 1.2x, with no more CPU per byte) and to plain TCP
//! (goal >= 0.4x).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use port_core::{Cipher, Config, Lengths, Shape};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Runtime;

use benches::compare::{self, Entry, Outcome, Plan};
use benches::net;
use benches::pair::{Setups, server_key};
use benches::sys;
use benches::tls::{self, TlsConfigs};

/// Bytes of one bulk transfer.
const TOTAL: usize = 64 * 1024 * 1024;
/// Bytes of one write.
const WRITE: usize = 64 * 1024;
/// Bytes of one ping.
const PING: usize = 64;
/// Round trips per call in the interleaved comparison.
const BATCH: u64 = 200;
/// Transfers per CPU-time reading.
const CPU_RUNS: usize = 5;

/// `n` round trips per call over a byte stream; the server side echoes on its own task.
fn rtt_stream<C, S>(rt: &Runtime, client: C, mut server: S) -> impl FnMut(u64) + '_
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    rt.spawn(async move {
        let mut buf = [0u8; PING];
        while server.read_exact(&mut buf).await.is_ok() {
            if server.write_all(&buf).await.is_err() || server.flush().await.is_err() {
                break;
            }
        }
    });
    let mut slot = Some(client);
    move |n| {
        let mut client = slot.take().expect("stream");
        let task = rt.spawn(async move {
            let mut buf = [0x33u8; PING];
            for _ in 0..n {
                client.write_all(&buf).await.expect("write");
                client.flush().await.expect("flush");
                client.read_exact(&mut buf).await.expect("read");
            }
            client
        });
        slot = Some(rt.block_on(task).expect("client task"));
    }
}

/// `n` round trips per call through the PORT message API.
fn rtt_messages(
    rt: &Runtime,
    client: port_tokio::Stream,
    mut server: port_tokio::Stream,
) -> impl FnMut(u64) + '_ {
    rt.spawn(async move {
        while let Ok(Some(message)) = server.recv().await {
            if server.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut slot = Some(client);
    let ping = Bytes::from(vec![0x33u8; PING]);
    move |n| {
        let mut client = slot.take().expect("stream");
        let ping = ping.clone();
        let task = rt.spawn(async move {
            for _ in 0..n {
                client.send(ping.clone()).await.expect("send");
                client.recv().await.expect("recv").expect("echo");
            }
            client
        });
        slot = Some(rt.block_on(task).expect("client task"));
    }
}

/// A named round-trip routine: `run(n)` makes `n` round trips.
type Rtt<'a> = (&'static str, Box<dyn FnMut(u64) + 'a>);

/// The transports under comparison, each connected once.
struct Transports {
    rt: Runtime,
    tls: TlsConfigs,
    tls_aes: TlsConfigs,
}

impl Transports {
    fn bulk(&self) -> Vec<Entry<'_>> {
        let rt = &self.rt;
        let (tcp_c, tcp_s) = rt.block_on(net::tcp_pair()).expect("tcp pair");
        let (tls_c, tls_s) = rt.block_on(net::tls_pair(&self.tls)).expect("tls pair");
        let (ta_c, ta_s) = rt.block_on(net::tls_pair(&self.tls_aes)).expect("tls pair");
        let port = || {
            rt.block_on(net::port_pair(Config::default()))
                .expect("port pair")
        };
        let (pb_c, pb_s) = port();
        let (pm_c, pm_s) = port();
        let (p16_c, p16_s) = port();
        let (pab_c, pab_s) = aes_port(rt);
        let (pam_c, pam_s) = aes_port(rt);
        let (ps_c, ps_s) = shaped_port(rt);
        vec![
            Entry::new("tls13", net::bulk_stream(rt, tls_c, tls_s, TOTAL, WRITE)),
            Entry::new("tls13-aes", net::bulk_stream(rt, ta_c, ta_s, TOTAL, WRITE)),
            Entry::new(
                "plain-tcp",
                net::bulk_stream(rt, tcp_c, tcp_s, TOTAL, WRITE),
            ),
            Entry::new("port-bytes", net::bulk_stream(rt, pb_c, pb_s, TOTAL, WRITE)),
            Entry::new("port-msg", net::bulk_messages(rt, pm_c, pm_s, TOTAL, WRITE)),
            Entry::new(
                "port-msg-16k",
                net::bulk_messages(rt, p16_c, p16_s, TOTAL, 16 * 1024),
            ),
            Entry::new(
                "port-aes-bytes",
                net::bulk_stream(rt, pab_c, pab_s, TOTAL, WRITE),
            ),
            Entry::new(
                "port-aes-msg",
                net::bulk_messages(rt, pam_c, pam_s, TOTAL, WRITE),
            ),
            Entry::new(
                "port-msg-shaped",
                net::bulk_messages(rt, ps_c, ps_s, TOTAL, WRITE),
            ),
        ]
    }

    fn rtt(&self) -> Vec<Rtt<'_>> {
        let rt = &self.rt;
        let (tcp_c, tcp_s) = rt.block_on(net::tcp_pair()).expect("tcp pair");
        let (tls_c, tls_s) = rt.block_on(net::tls_pair(&self.tls)).expect("tls pair");
        let (pm_c, pm_s) = rt
            .block_on(net::port_pair(Config::default()))
            .expect("port pair");
        let (pb_c, pb_s) = rt
            .block_on(net::port_pair(Config::default()))
            .expect("port pair");
        let (ps_c, ps_s) = shaped_port(rt);
        vec![
            ("tls13", Box::new(rtt_stream(rt, tls_c, tls_s))),
            ("plain-tcp", Box::new(rtt_stream(rt, tcp_c, tcp_s))),
            ("port-bytes", Box::new(rtt_stream(rt, pb_c, pb_s))),
            ("port-msg", Box::new(rtt_messages(rt, pm_c, pm_s))),
            ("port-msg-shaped", Box::new(rtt_messages(rt, ps_c, ps_s))),
        ]
    }
}

/// A PORT pair whose key has shaped lengths.
fn shaped_port(rt: &Runtime) -> (port_tokio::Stream, port_tokio::Stream) {
    let shape = Shape::none().with_lengths(Lengths::Shaped);
    let setups = Setups::shaped(Config::default(), shape);
    rt.block_on(net::keyed_port_pair(setups))
        .expect("shaped port pair")
}

/// A PORT pair whose key has `cipher=aes-256-gcm`.
fn aes_port(rt: &Runtime) -> (port_tokio::Stream, port_tokio::Stream) {
    let key = server_key().with_cipher(Cipher::Aes256Gcm);
    let setups = Setups::for_key(Config::default(), key);
    rt.block_on(net::keyed_port_pair(setups))
        .expect("AES port pair")
}

fn criterion_benches(c: &mut Criterion, transports: &Transports) {
    let mut group = c.benchmark_group("loopback/bulk");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(TOTAL as u64));
    for mut entry in transports.bulk() {
        group.bench_function(entry.name.as_str(), |b| b.iter(&mut entry.run));
    }
    group.finish();

    let mut group = c.benchmark_group("loopback/rtt");
    for (name, mut run) in transports.rtt() {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                run(iters);
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn summary(transports: &Transports) {
    let mut entries = transports.bulk();
    let plan = Plan {
        rounds: 9,
        slice: Duration::from_millis(200),
    };
    let bulk = compare::interleaved(plan, &mut entries);
    drop(entries);
    compare::print(
        "== loopback bulk: 64 MiB one way in 64 KiB writes, interleaved in this process",
        &bulk,
        Some(TOTAL as u64),
    );
    let plain = compare::find(&bulk, "plain-tcp");
    for (name, tls) in [
        ("port-bytes", "tls13"),
        ("port-msg", "tls13"),
        ("port-msg-16k", "tls13"),
        ("port-aes-bytes", "tls13-aes"),
        ("port-aes-msg", "tls13-aes"),
    ] {
        let (port, tls) = (compare::find(&bulk, name), compare::find(&bulk, tls));
        let vs_tls = port.speed_vs(tls);
        let vs_plain = port.speed_vs(plain);
        println!(
            "  -> {name}: {vs_tls:.3}x tokio-rustls, same cipher ({}), {vs_plain:.3}x plain TCP ({})",
            compare::verdict(vs_tls, 1.2),
            compare::verdict(vs_plain, 0.4)
        );
    }
    let shaped = compare::find(&bulk, "port-msg-shaped");
    println!(
        "  -> port-msg-shaped: {:.3}x port-msg (the throughput left by shaped lengths)",
        shaped.speed_vs(compare::find(&bulk, "port-msg"))
    );

    // Process CPU time (both ends, all threads) per transfer, against the wall time.
    println!("\n== loopback bulk: CPU time of the whole process (both ends) per 64 MiB");
    for entry in transports.bulk().iter_mut() {
        (entry.run)();
        let (cpu0, wall0) = (sys::cpu_time(None).unwrap_or_default(), Instant::now());
        for _ in 0..CPU_RUNS {
            (entry.run)();
        }
        let cpu = (sys::cpu_time(None).unwrap_or_default() - cpu0).as_secs_f64() / CPU_RUNS as f64;
        let wall = wall0.elapsed().as_secs_f64() / CPU_RUNS as f64;
        println!(
            "  {:<34} {:>8.1} ms CPU, {:>8.1} ms wall, {:.2} CPUs busy",
            entry.name,
            cpu * 1e3,
            wall * 1e3,
            cpu / wall
        );
    }

    let mut rtts = transports.rtt();
    let mut entries: Vec<Entry<'_>> = rtts
        .iter_mut()
        .map(|(name, run)| Entry::new(*name, move || run(BATCH)))
        .collect();
    let plan = Plan {
        rounds: 9,
        slice: Duration::from_millis(100),
    };
    let rtt: Vec<Outcome> = compare::interleaved(plan, &mut entries)
        .into_iter()
        .map(|mut o| {
            o.secs /= BATCH as f64;
            o.rounds.iter_mut().for_each(|r| *r /= BATCH as f64);
            o
        })
        .collect();
    compare::print(
        "== loopback rtt: 64-byte request and echo, interleaved in this process",
        &rtt,
        None,
    );
    let (plain, shaped) = (
        compare::find(&rtt, "port-msg"),
        compare::find(&rtt, "port-msg-shaped"),
    );
    println!(
        "  -> port-msg-shaped: round trip {:.1} us against {:.1} us for port-msg (+{:.1} us)",
        shaped.secs * 1e6,
        plain.secs * 1e6,
        (shaped.secs - plain.secs) * 1e6
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let transports = Transports {
        rt: net::runtime(),
        tls: TlsConfigs::generate(tls::CHACHA),
        tls_aes: TlsConfigs::generate(tls::AES),
    };
    if !compare::compare_only() {
        criterion_benches(&mut criterion, &transports);
        criterion.final_summary();
    }
    if !compare::skip_comparisons() {
        println!("\n{}", sys::machine());
        summary(&transports);
    }
}
