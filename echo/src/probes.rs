//! `echotest probes`: what an active prober sees of a PORT server with a fallback, against the
//! fallback service alone. A stand-in web service (it answers an HTTP request at its blank
//! line, a TLS ClientHello with a TLS alert, anything else with `400 Bad Request` at once) and
//! a PORT echo server handing whatever does not authenticate to it run on loopback; probes of
//! each kind go to both, interleaved, and the time from the start of the connect to the
//! answer's first byte is compared. The answers must be the same bytes.

use std::fmt;
use std::future::poll_fn;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_driver::{Acceptor, Runtime};
use port_stack::Registry;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::cli::{runtime_failed, say};
use crate::error::Error;
use crate::runtime::RuntimeKind;
use crate::server::Server;
use crate::setup::{ServerSetup, StackChoice, config_from_env};

/// Arguments of `echotest probes`.
#[derive(Debug, Args)]
pub struct ProbesArgs {
    /// Probes of each kind to each target.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rounds: usize,
    /// The async runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,
}

/// The kinds of probe.
pub const KINDS: [ProbeKind; 3] = [ProbeKind::HttpGet, ProbeKind::TlsHello, ProbeKind::Random];

/// What a prober sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// `GET / HTTP/1.1` with a few headers (about 80 bytes: shorter than an INIT's prefix).
    HttpGet,
    /// A TLS 1.3 ClientHello record (517 bytes).
    TlsHello,
    /// 600 random bytes (not starting with 0x16, a TLS record's first byte).
    Random,
}

impl ProbeKind {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::HttpGet => "HTTP GET",
            ProbeKind::TlsHello => "TLS ClientHello",
            ProbeKind::Random => "600 random bytes",
        }
    }

    /// The bytes of probe number `n`.
    pub fn bytes(self, n: u64) -> Vec<u8> {
        let mut rng = ChaCha20Rng::seed_from_u64(n);
        match self {
            ProbeKind::HttpGet => b"GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".to_vec(),
            ProbeKind::TlsHello => {
                // Record header, handshake header, version, 32 random bytes, a 32-byte session
                // id, then cipher suites and extensions stood in for by random bytes.
                let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
                let mut rest = vec![0u8; 512 - 6];
                rng.fill_bytes(&mut rest);
                hello.extend_from_slice(&rest);
                hello
            }
            ProbeKind::Random => {
                let mut bytes = vec![0u8; 600];
                rng.fill_bytes(&mut bytes);
                // A leading 0x16 would read as a TLS record longer than the probe, which any
                // TLS service (the stand-in too) waits out rather than answers.
                if bytes[0] == 0x16 {
                    bytes[0] = 0x96;
                }
                bytes
            }
        }
    }
}

/// The stand-in service's answer to a request that starts with `head`, once it can tell.
fn answer(request: &[u8]) -> Option<&'static [u8]> {
    const METHODS: [&[u8]; 4] = [b"GET ", b"POST ", b"HEAD ", b"PUT "];
    if METHODS.iter().any(|m| request.starts_with(m)) {
        let complete = request.windows(4).any(|w| w == b"\r\n\r\n");
        return complete.then_some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    if request.first() == Some(&0x16) {
        let complete = request.len() >= 5
            && request.len() >= 5 + usize::from(u16::from_be_bytes([request[3], request[4]]));
        // A fatal handshake_failure alert.
        return complete.then_some(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    }
    (!request.is_empty()).then_some(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
}

/// Runs the stand-in service on `acceptor` forever.
async fn serve_stand_in(runtime: Arc<dyn Runtime>, acceptor: Box<dyn Acceptor>) {
    while let Ok((mut socket, _)) = poll_fn(|cx| acceptor.poll_accept(cx)).await {
        runtime.spawn(Box::pin(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if let Some(reply) = answer(&request) {
                    let _ = socket.write_all(reply).await;
                    let _ = socket.close().await;
                    return;
                }
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
        }));
    }
}

/// Runs a plain TCP relay to `target` on `acceptor` forever: what a reverse proxy in front of
/// the service adds, the yardstick for what PORT's judging adds.
async fn relay(runtime: Arc<dyn Runtime>, acceptor: Box<dyn Acceptor>, target: SocketAddr) {
    while let Ok((client, _)) = poll_fn(|cx| acceptor.poll_accept(cx)).await {
        let connect = runtime.connect(target);
        runtime.spawn(Box::pin(async move {
            let Ok(service) = connect.await else { return };
            let (mut client_in, mut client_out) = futures_lite::io::split(client);
            let (mut service_in, mut service_out) = futures_lite::io::split(service);
            let up = async {
                let _ = futures_lite::io::copy(&mut client_in, &mut service_out).await;
                let _ = service_out.close().await;
            };
            let down = async {
                let _ = futures_lite::io::copy(&mut service_in, &mut client_out).await;
                let _ = client_out.close().await;
            };
            futures_lite::future::zip(up, down).await;
        }));
    }
}

/// Sends `bytes` to `target`: the time to the answer's first byte, and the whole answer.
async fn probe(
    runtime: &Arc<dyn Runtime>,
    target: SocketAddr,
    bytes: &[u8],
) -> Result<(Duration, Vec<u8>), Error> {
    let io = |e: std::io::Error| Error::msg(format!("probe of {target}: {e}"));
    let start = Instant::now();
    let mut socket = runtime.connect(target).await.map_err(io)?;
    socket.write_all(bytes).await.map_err(io)?;
    let mut first = [0u8; 1];
    socket.read_exact(&mut first).await.map_err(io)?;
    let took = start.elapsed();
    let mut all = first.to_vec();
    socket.read_to_end(&mut all).await.map_err(io)?;
    Ok((took, all))
}

/// The delays of one kind of probe.
#[derive(Clone, Debug)]
pub struct Delays {
    /// The kind.
    pub kind: ProbeKind,
    /// To the service alone.
    pub direct: Vec<Duration>,
    /// Through a plain TCP relay to the service.
    pub via_relay: Vec<Duration>,
    /// To the PORT server, which hands the probe to the service.
    pub via_port: Vec<Duration>,
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn p90(values: &mut [Duration]) -> Duration {
    values.sort();
    values
        .get(values.len() * 9 / 10)
        .copied()
        .unwrap_or_default()
}

/// The median over rounds of `after − before`, the two taken in the same round.
fn added(before: &[Duration], after: &[Duration]) -> Duration {
    let mut diffs: Vec<f64> = before
        .iter()
        .zip(after)
        .map(|(b, a)| a.as_secs_f64() - b.as_secs_f64())
        .collect();
    diffs.sort_by(f64::total_cmp);
    Duration::from_secs_f64(
        diffs
            .get(diffs.len() / 2)
            .copied()
            .unwrap_or_default()
            .max(0.0),
    )
}

impl Delays {
    /// What PORT adds over the service alone (median of per-round differences).
    pub fn added(&self) -> Duration {
        added(&self.direct, &self.via_port)
    }

    /// What PORT adds over a plain relay in front of the service.
    pub fn added_over_relay(&self) -> Duration {
        added(&self.via_relay, &self.via_port)
    }
}

impl fmt::Display for Delays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        write!(f, "{}:", self.kind.name())?;
        for (name, values) in [
            ("direct", &self.direct),
            ("relay", &self.via_relay),
            ("PORT", &self.via_port),
        ] {
            let mut values = values.clone();
            let (m, p) = (median(&mut values), p90(&mut values));
            write!(f, " {name} {:.0} us (p90 {:.0});", us(m), us(p))?;
        }
        write!(
            f,
            " PORT adds {:.0} us over direct, {:.0} us over the relay (medians of {} rounds)",
            us(self.added()),
            us(self.added_over_relay()),
            self.direct.len()
        )
    }
}

/// Measures `rounds` probes of each kind to the stand-in service and to a PORT server (stack
/// `port`, a fresh key) with the service as its fallback. Call inside `runtime`.
pub async fn measure(runtime: &Arc<dyn Runtime>, rounds: usize) -> Result<Vec<Delays>, Error> {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let bind = |e: std::io::Error| Error::msg(format!("cannot bind the stand-in service: {e}"));
    let service = runtime.bind(loopback).map_err(bind)?;
    let service_addr = service.local_addr().map_err(bind)?;
    runtime.spawn(Box::pin(serve_stand_in(runtime.clone(), service)));
    let key = crate::keygen::generate()?;
    let stack = StackChoice::new(Registry::with_builtins(), "port")?;
    let setup = ServerSetup::new(stack, config_from_env()?, Some(key))?.with_fallback(service_addr);
    let server = Server::bind(runtime.clone(), setup, loopback).await?;
    let port_addr = server.local_addr();
    let _running = server.spawn();
    let relay_acceptor = runtime.bind(loopback).map_err(bind)?;
    let relay_addr = relay_acceptor.local_addr().map_err(bind)?;
    runtime.spawn(Box::pin(relay(
        runtime.clone(),
        relay_acceptor,
        service_addr,
    )));
    let mut all: Vec<Delays> = KINDS
        .iter()
        .map(|&kind| Delays {
            kind,
            direct: Vec::new(),
            via_relay: Vec::new(),
            via_port: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for delays in &mut all {
            let bytes = delays.kind.bytes(round as u64);
            // Rotate which goes first, so none always finds the caches warm.
            let mut order = [service_addr, relay_addr, port_addr];
            order.rotate_left(round % 3);
            let mut answers = Vec::new();
            for target in order {
                let (took, answer) = probe(runtime, target, &bytes).await?;
                let into = match target {
                    t if t == port_addr => &mut delays.via_port,
                    t if t == relay_addr => &mut delays.via_relay,
                    _ => &mut delays.direct,
                };
                into.push(took);
                answers.push(answer);
            }
            if answers.iter().any(|a| *a != answers[0]) {
                return Err(Error::msg(format!(
                    "{}: the answer through PORT differs from the service's",
                    delays.kind.name()
                )));
            }
        }
    }
    Ok(all)
}

/// Runs `echotest probes`.
pub fn run(args: ProbesArgs) -> Result<(), Error> {
    let kind = args.runtime;
    let all = kind
        .block_on(async { measure(&kind.runtime(), args.rounds).await })
        .map_err(runtime_failed)??;
    for delays in &all {
        say(format_args!("{delays}"))?;
    }
    Ok(())
}
