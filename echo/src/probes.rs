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
    /// 600 random bytes.
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
    /// To the PORT server, which hands the probe to the service.
    pub via_port: Vec<Duration>,
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn p90(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() * 9 / 10).copied().unwrap_or_default()
}

impl Delays {
    /// The median over rounds of (through PORT − direct), the two taken one after the other.
    pub fn added(&self) -> f64 {
        let mut diffs: Vec<f64> = self
            .direct
            .iter()
            .zip(&self.via_port)
            .map(|(d, p)| p.as_secs_f64() - d.as_secs_f64())
            .collect();
        diffs.sort_by(f64::total_cmp);
        diffs.get(diffs.len() / 2).copied().unwrap_or_default()
    }
}

impl fmt::Display for Delays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut direct, mut port) = (self.direct.clone(), self.via_port.clone());
        write!(
            f,
            "{}: first answer byte after {:.0} us direct (p90 {:.0}), {:.0} us through PORT (p90 {:.0}); added {:+.0} us (median of {} pairs)",
            self.kind.name(),
            median(&mut direct).as_secs_f64() * 1e6,
            p90(&mut direct).as_secs_f64() * 1e6,
            median(&mut port).as_secs_f64() * 1e6,
            p90(&mut port).as_secs_f64() * 1e6,
            self.added() * 1e6,
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
    let mut all: Vec<Delays> = KINDS
        .iter()
        .map(|&kind| Delays {
            kind,
            direct: Vec::new(),
            via_port: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for delays in &mut all {
            let bytes = delays.kind.bytes(round as u64);
            // Alternate which goes first, so neither always finds the caches warm.
            let order = match round % 2 {
                0 => [service_addr, port_addr],
                _ => [port_addr, service_addr],
            };
            let mut answers = Vec::new();
            for target in order {
                let (took, answer) = probe(runtime, target, &bytes).await?;
                match target == port_addr {
                    true => delays.via_port.push(took),
                    false => delays.direct.push(took),
                }
                answers.push(answer);
            }
            if answers[0] != answers[1] {
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
