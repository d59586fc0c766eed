//! Memory and idle cost, measured with a counting global allocator (`stats_alloc`, a safe
//! wrapper around the system allocator: the workspace forbids `unsafe`, which a hand-written
//! `GlobalAlloc` would need) and `/proc`:
//!
//! 1. core state of one idle established `Connection`, client and server: its inline size plus
//!    the heap it owns, right after the handshake and again after traffic;
//! 2. allocations per message and per frame on the send and the receive path of two in-memory
//!    cores in steady state, of the bare frame codec, and of whole port-tokio transfers over
//!    loopback (plain TCP and tokio-rustls alongside);
//! 3. 10 000 idle port-tokio connections over loopback: the clients in this process, the
//!    server in a child process (this binary again, `PORT_BENCH_MEMORY_ROLE=server`), resident
//!    memory (`VmRSS`) and live heap of each, then the CPU time (`utime + stime`) both spend
//!    over an idle period.
//!
//! Goals: <= 2 KiB of core state per connection, <= 200 MiB for 10 000 connections, idle CPU
//! near zero. `PORT_BENCH_CONNECTIONS` and `PORT_BENCH_IDLE_SECS` change the defaults of part 3
//! (10 000 and 10).
#![forbid(unsafe_code)]

use std::alloc::System;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use port_core::Session;
use port_core::frame::{FLAG_DATA, FrameHeader, FrameOpener, FrameSealer, HEADER_WIRE_LEN};
use port_core::{
    Cipher, ClientConfig, ClientKey, Config, Connection, Event, ServerConfig, ServerKey,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use benches::compare::Entry;
use benches::pair::{Pair, Setups, TOKEN, USER_ID, fresh_seed};
use benches::sys::{self, mib};
use benches::{net, tls::TlsConfigs};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROLE_VAR: &str = "PORT_BENCH_MEMORY_ROLE";
const KEY_VAR: &str = "PORT_BENCH_SERVER_KEY";

/// Heap bytes live now (allocated minus freed, over the whole process).
fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Allocation calls so far (`alloc`, `alloc_zeroed` and `realloc`).
fn allocations() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ----- 1. core state ----------------------------------------------------------------------

/// Average heap owned per connection of `clients` and of `servers`, measured by dropping them.
fn owned_heap(clients: &mut Vec<Connection>, servers: &mut Vec<Connection>) -> (f64, f64) {
    let n = clients.len() as f64;
    let before = live_heap();
    servers.clear();
    let after_servers = live_heap();
    clients.clear();
    let after_clients = live_heap();
    (
        (before - after_servers) as f64 / n,
        (after_servers - after_clients) as f64 / n,
    )
}

fn core_state() {
    const N: usize = 200;
    let setups = Setups::new(Config::default());
    let inline = size_of::<Connection>();
    println!("== 1. core state per idle established Connection (mean of {N} pairs)");
    println!("  size_of::<Connection>() = {inline} B (inline, wherever the caller keeps it)");

    let mut clients = Vec::with_capacity(N);
    let mut servers = Vec::with_capacity(N);
    let report = |label: &str, clients: &mut Vec<Connection>, servers: &mut Vec<Connection>| {
        let (server, client) = owned_heap(clients, servers);
        for (side, heap) in [("client", client), ("server", server)] {
            let total = inline as f64 + heap;
            let verdict = if total <= 2048.0 {
                "goal <= 2 KiB: met".to_owned()
            } else {
                format!("goal <= 2 KiB: MISSED ({:.1}x)", total / 2048.0)
            };
            println!(
                "  {label:<34} {side}: heap {heap:>8.0} B + inline {inline} B = {total:>8.0} B  {verdict}"
            );
        }
    };

    for _ in 0..N {
        let pair = Pair::connected(&setups);
        clients.push(pair.client);
        servers.push(pair.server);
    }
    report("after the handshake", &mut clients, &mut servers);
    for _ in 0..N {
        let mut pair = Pair::connected(&setups);
        pair.idle_cycle(setups.client.config().max_next_in());
        clients.push(pair.client);
        servers.push(pair.server);
    }
    report("handshake, one keepalive cycle", &mut clients, &mut servers);

    let max_next_in = setups.client.config().max_next_in();
    for (label, size, count, idle) in [
        ("after 100 x 1400 B each way", 1400, 100, false),
        ("after 10 x 1 MiB each way", 1024 * 1024, 10, false),
        ("the same, then one keepalive cycle", 1024 * 1024, 10, true),
        ("100 x 1400 B, one keepalive cycle", 1400, 100, true),
        ("100 x 16 KiB, one keepalive cycle", 16 * 1024, 100, true),
    ] {
        let message = Bytes::from(vec![7u8; size]);
        for _ in 0..N {
            let mut pair = Pair::connected(&setups);
            for _ in 0..count {
                drop(pair.client_to_server(message.clone()));
                drop(pair.server_to_client(message.clone()));
            }
            if idle {
                pair.idle_cycle(max_next_in);
            }
            clients.push(pair.client);
            servers.push(pair.server);
        }
        report(label, &mut clients, &mut servers);
    }
}

// ----- 2. allocations per frame -----------------------------------------------------------

fn frames_for(size: usize, config: &Config) -> usize {
    size.div_ceil(config.max_frame_payload()).max(1)
}

fn core_allocations() {
    println!("\n== 2. allocations in steady state (after 1000 warm-up messages)");
    const MESSAGES: usize = 20_000;

    // The bare codec, one reused buffer.
    let mut sealer = FrameSealer::new(Cipher::default(), &[1; 32]);
    let mut opener = FrameOpener::new(Cipher::default(), &[1; 32], 65535);
    let mut wire = BytesMut::new();
    let payload = vec![0u8; 1400];
    let header = FrameHeader {
        flags: FLAG_DATA,
        payload_len: 1400,
        pad_len: 256,
        ..FrameHeader::default()
    };
    let mut codec_round = || {
        wire.clear();
        sealer.seal(&header, &payload, &mut wire).expect("seal");
        let h = opener
            .open_header(&mut wire[..HEADER_WIRE_LEN])
            .expect("header");
        let mut body = wire.split_off(HEADER_WIRE_LEN);
        opener.open_body(&h, &mut body).expect("body");
        wire.unsplit(body);
    };
    for _ in 0..1000 {
        codec_round();
    }
    let a0 = allocations();
    for _ in 0..MESSAGES {
        codec_round();
    }
    println!(
        "  frame codec (seal + open, reused BytesMut, 1400 B): {:.3} allocations per frame",
        (allocations() - a0) as f64 / MESSAGES as f64
    );

    // Two cores, default configuration (16 KiB frames, padding 0..=512).
    let config = Config::default();
    let setups = Setups::new(config.clone());
    for held in [0usize, 16] {
        match held {
            0 => println!(
                "  two in-memory cores, Config::default(), each message dropped once delivered:"
            ),
            n => println!(
                "  the same, the receiver holding the last {n} messages (a reader that lags):"
            ),
        }
        println!(
            "  {:>8} {:>6} {:>16} {:>16} {:>16} {:>16} {:>10}",
            "message",
            "frames",
            "send allocs/msg",
            "send bytes/msg",
            "recv allocs/msg",
            "recv bytes/msg",
            "allocs/frame"
        );
        for size in [64usize, 1400, 16 * 1024, 64 * 1024] {
            let tally = steady_state(&setups, size, held);
            let frames = frames_for(size, &config) as f64;
            println!(
                "  {size:>8} {frames:>6} {:>16.3} {:>16.0} {:>16.3} {:>16.0} {:>10.3}",
                tally.send_allocs,
                tally.send_bytes,
                tally.recv_allocs,
                tally.recv_bytes,
                (tally.send_allocs + tally.recv_allocs) / frames
            );
        }
    }
}

/// Per-message means of one steady-state run.
struct Tally {
    send_allocs: f64,
    send_bytes: f64,
    recv_allocs: f64,
    recv_bytes: f64,
}

/// Sends messages of `size` bytes from client to server through two cores, the receiver
/// keeping the last `held` messages alive, and counts what each side allocates.
fn steady_state(setups: &Setups, size: usize, held: usize) -> Tally {
    let mut pair = Pair::connected(setups);
    let message = Bytes::from(vec![9u8; size]);
    let now = pair.now;
    // Reused between messages, so that the harness itself allocates nothing.
    let mut out: Vec<Bytes> = Vec::with_capacity(16);
    let mut kept: std::collections::VecDeque<Bytes> =
        std::collections::VecDeque::with_capacity(held + 1);
    let mut run = |count: usize| {
        let (mut sa, mut sb, mut ra, mut rb) = (0u64, 0u64, 0u64, 0u64);
        for _ in 0..count {
            let s0 = GLOBAL.stats();
            pair.client.send(message.clone()).expect("send");
            while let Some(bytes) = pair.client.poll_transmit(now) {
                out.push(bytes);
            }
            let s1 = GLOBAL.stats();
            for bytes in out.drain(..) {
                pair.server.handle_input(now, &bytes);
            }
            match pair.server.poll_event() {
                Some(Event::Data(data)) => {
                    assert_eq!(data.len(), size);
                    kept.push_back(data);
                    if kept.len() > held {
                        kept.pop_front();
                    }
                }
                other => panic!("expected data, got {other:?}"),
            }
            let s2 = GLOBAL.stats();
            let allocs = |s: stats_alloc::Stats| (s.allocations + s.reallocations) as u64;
            sa += allocs(s1) - allocs(s0);
            sb += (s1.bytes_allocated - s0.bytes_allocated) as u64;
            ra += allocs(s2) - allocs(s1);
            rb += (s2.bytes_allocated - s1.bytes_allocated) as u64;
        }
        let n = count as f64;
        Tally {
            send_allocs: sa as f64 / n,
            send_bytes: sb as f64 / n,
            recv_allocs: ra as f64 / n,
            recv_bytes: rb as f64 / n,
        }
    };
    run(1000);
    run((64 * 1024 * 1024 / size.max(1024)).min(20_000))
}

/// Allocations per 64 KiB write over loopback, whole process (both ends, runtime included).
fn loopback_allocations() {
    const TOTAL: usize = 64 * 1024 * 1024;
    const WRITE: usize = 64 * 1024;
    let writes = (TOTAL / WRITE) as f64;
    let rt = net::runtime();
    let tls = TlsConfigs::generate(benches::tls::CHACHA);
    println!("\n  over loopback, 64 MiB in 64 KiB writes, whole process (both ends, runtime):");

    let measure = |label: &str, f: &mut dyn FnMut()| {
        f(); // warm-up transfer
        let a = allocations();
        f();
        let per_write = (allocations() - a) as f64 / writes;
        // Default frames are 16 KiB: four per write, plus padding.
        println!(
            "  {label:<44} {per_write:>8.2} allocations per write, {:>6.2} per 16 KiB",
            per_write / 4.0
        );
    };

    let (tcp_w, tcp_r) = rt.block_on(net::tcp_pair()).expect("tcp pair");
    let (tls_w, tls_r) = rt.block_on(net::tls_pair(&tls)).expect("tls pair");
    let port = || {
        rt.block_on(net::port_pair(Config::default()))
            .expect("port pair")
    };
    let ((pb_w, pb_r), (pm_c, pm_s)) = (port(), port());
    let runs = [
        Entry::new(
            "plain TCP",
            net::bulk_stream(&rt, tcp_w, tcp_r, TOTAL, WRITE),
        ),
        Entry::new(
            "tokio-rustls",
            net::bulk_stream(&rt, tls_w, tls_r, TOTAL, WRITE),
        ),
        Entry::new(
            "port-tokio byte stream (AsyncWrite/AsyncRead)",
            net::bulk_stream(&rt, pb_w, pb_r, TOTAL, WRITE),
        ),
        Entry::new(
            "port-tokio messages (send/recv)",
            net::bulk_messages(&rt, pm_c, pm_s, TOTAL, WRITE),
        ),
    ];
    for mut entry in runs {
        measure(&entry.name, &mut entry.run);
    }
}

// ----- 3. many idle connections -----------------------------------------------------------

/// A snapshot of one process.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    connections: usize,
    rss: u64,
    heap: i64,
    cpu: Duration,
}

impl Snapshot {
    fn here(connections: usize) -> Snapshot {
        Snapshot {
            connections,
            rss: sys::rss_bytes(None).unwrap_or(0),
            heap: live_heap(),
            cpu: sys::cpu_time(None).unwrap_or_default(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.connections,
            self.rss,
            self.heap,
            self.cpu.as_millis()
        )
    }

    fn parse(line: &str) -> Option<Snapshot> {
        let mut it = line.split_whitespace().map(str::parse::<i64>);
        Some(Snapshot {
            connections: it.next()?.ok()? as usize,
            rss: it.next()?.ok()? as u64,
            heap: it.next()?.ok()?,
            cpu: Duration::from_millis(it.next()?.ok()? as u64),
        })
    }
}

/// The child: a port-tokio server that accepts every client and echoes its messages, answering
/// `stats` lines on stdin with a snapshot line on stdout.
fn serve() {
    let key = ServerKey::from_text(&std::env::var(KEY_VAR).expect("server key")).expect("key");
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = net::runtime();
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = rt
        .block_on(port_tokio::Listener::bind(
            &port_tokio::runtime(),
            "127.0.0.1:0",
            ServerConfig::new(Config::default(), key),
        ))
        .expect("bind");
    println!("listening {}", listener.local_addr().expect("address"));
    let counter = accepted.clone();
    rt.spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            if let Ok(mut stream) = incoming.accept(USER_ID) {
                counter.fetch_add(1, Ordering::SeqCst);
                // Echo whatever comes, and otherwise sit idle.
                tokio::spawn(async move {
                    while let Ok(Some(message)) = stream.recv().await {
                        if stream.send(message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok("stats") => {
                println!("{}", Snapshot::here(accepted.load(Ordering::SeqCst)).line());
                std::io::stdout().flush().expect("stdout");
            }
            _ => break,
        }
    }
    // Exit without tearing 10 000 connections down one by one.
    std::process::exit(0);
}

/// CPU time of this process and of the child `pid` over `idle`.
fn idle_cpu(pid: u32, idle: Duration) {
    let (c0, s0, t0) = (
        sys::cpu_time(None).unwrap_or_default(),
        sys::cpu_time(Some(pid)).unwrap_or_default(),
        Instant::now(),
    );
    std::thread::sleep(idle);
    let (c1, s1, wall) = (
        sys::cpu_time(None).unwrap_or_default(),
        sys::cpu_time(Some(pid)).unwrap_or_default(),
        t0.elapsed(),
    );
    for (side, spent) in [("clients", c1 - c0), ("server", s1 - s0)] {
        println!(
            "    idle CPU over {:.1} s, {side:<8}: {} ms = {:.2}% of one CPU",
            wall.as_secs_f64(),
            spent.as_millis(),
            spent.as_secs_f64() / wall.as_secs_f64() * 100.0
        );
    }
}

fn many_idle_connections() {
    let count = env_or("PORT_BENCH_CONNECTIONS", 10_000) as usize;
    let idle = Duration::from_secs(env_or("PORT_BENCH_IDLE_SECS", 10));
    println!("\n== 3. {count} idle port-tokio connections over loopback, Config::default()");
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if limit < count as u64 + 64 {
        println!("  RLIMIT_NOFILE is {limit}: raise it (ulimit -n) to hold {count} sockets");
        return;
    }

    let key = ServerKey::from_parts(fresh_seed(), fresh_seed());
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE_VAR, "server")
        .env(KEY_VAR, key.to_text())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the server process");
    let pid = child.id();
    let mut to_child = child.stdin.take().expect("child stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("child stdout"));
    let mut read_line = || {
        let mut line = String::new();
        from_child.read_line(&mut line).expect("child stdout");
        line
    };
    let first = read_line();
    let addr = first
        .strip_prefix("listening ")
        .expect("listening line")
        .trim()
        .to_owned();
    let mut child_stats = |to_child: &mut std::process::ChildStdin| {
        writeln!(to_child, "stats").expect("child stdin");
        to_child.flush().expect("child stdin");
        Snapshot::parse(&read_line()).expect("snapshot line")
    };

    let rt = net::runtime();
    let setup = ClientConfig::new(
        Config::default(),
        ClientKey::from_text(&key.client_key().to_text()).expect("client key"),
        TOKEN,
    )
    .expect("client config");
    let client_base = Snapshot::here(0);
    let server_base = child_stats(&mut to_child);

    let started = Instant::now();
    let streams = rt.block_on(async {
        let mut streams = Vec::with_capacity(count);
        let mut pending: tokio::task::JoinSet<Result<port_tokio::Stream, port_tokio::Error>> =
            tokio::task::JoinSet::new();
        for _ in 0..count {
            if pending.len() >= 256
                && let Some(done) = pending.join_next().await
            {
                streams.push(done.expect("task").expect("connect"));
            }
            let (addr, setup) = (addr.clone(), setup.clone());
            pending.spawn(async move {
                port_tokio::connect(&port_tokio::runtime(), addr.as_str(), &setup).await
            });
        }
        while let Some(done) = pending.join_next().await {
            streams.push(done.expect("task").expect("connect"));
        }
        streams
    });
    let connect_time = started.elapsed();
    let mut server_now = child_stats(&mut to_child);
    while server_now.connections < count {
        std::thread::sleep(Duration::from_millis(50));
        server_now = child_stats(&mut to_child);
    }
    println!(
        "  {count} handshakes in {:.2} s ({:.0}/s, 256 in flight)",
        connect_time.as_secs_f64(),
        count as f64 / connect_time.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));

    let mut report = |label: &str, to_child: &mut std::process::ChildStdin, connections: usize| {
        let client_now = Snapshot::here(connections);
        let server_now = child_stats(to_child);
        println!("  {label}:");
        let mut total_rss = 0;
        for (side, base, now) in [
            ("clients (this process)", client_base, client_now),
            ("server (child process)", server_base, server_now),
        ] {
            let rss = now.rss.saturating_sub(base.rss);
            total_rss += rss;
            let heap = now.heap - base.heap;
            let verdict = if rss <= 200 * 1024 * 1024 {
                "goal <= 200 MiB: met".to_owned()
            } else {
                format!(
                    "goal <= 200 MiB: MISSED by {:.0}%",
                    (rss as f64 / (200.0 * 1024.0 * 1024.0) - 1.0) * 100.0
                )
            };
            println!(
                "    {side:<24} RSS {} -> {} (+{}, {:.1} KiB/conn), heap +{} ({:.1} KiB/conn)  {verdict}",
                mib(base.rss),
                mib(now.rss),
                mib(rss),
                rss as f64 / count as f64 / 1024.0,
                mib(heap.max(0) as u64),
                heap as f64 / count as f64 / 1024.0,
            );
        }
        println!(
            "    both ends together: +{} for {count} connections ({} sockets)",
            mib(total_rss),
            2 * count
        );
    };
    report("idle after the handshake", &mut to_child, streams.len());
    idle_cpu(pid, idle);

    // Each connection carries one 64 KiB message each way, then all are idle again.
    let message = Bytes::from(vec![3u8; 64 * 1024]);
    let streams = rt.block_on(async {
        let mut done = Vec::with_capacity(count);
        let mut pending = tokio::task::JoinSet::new();
        for mut stream in streams {
            if pending.len() >= 256
                && let Some(finished) = pending.join_next().await
            {
                done.push(finished.expect("task"));
            }
            let message = message.clone();
            pending.spawn(async move {
                stream.send(message).await.expect("send");
                stream.recv().await.expect("recv").expect("echo");
                stream
            });
        }
        while let Some(finished) = pending.join_next().await {
            done.push(finished.expect("task"));
        }
        done
    });
    std::thread::sleep(Duration::from_secs(2));
    report(
        "idle after one 64 KiB message each way on every connection",
        &mut to_child,
        streams.len(),
    );
    idle_cpu(pid, idle);
    drop(to_child); // the child exits on end of input
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("child status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    // Leave without closing every client gracefully: the child is gone already.
    std::mem::forget(streams);
    std::mem::forget(rt);
}

fn main() {
    if std::env::var(ROLE_VAR).as_deref() == Ok("server") {
        return serve();
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!("{}", sys::machine());
    core_state();
    core_allocations();
    loopback_allocations();
    many_idle_connections();
}
