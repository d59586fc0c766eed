//! `echotest flights`: a stack's first flights as a passive censor sees them. A server with
//! fresh keys, a recording TCP relay in front of it and a client that connects through the
//! relay again and again, echoing one 64-byte random message (what a tunnel carries: already
//! encrypted packets) each time; the relay keeps the first bytes each client sent, and
//! [`port_chaos::fully_encrypted`] judges them.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_chaos::fully_encrypted::{Exemptions, bits_per_byte};
use port_core::Shape;
use port_driver::{Runtime, Socket};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use std::path::PathBuf;

use clap::Args;
use port_chaos::histogram::{Histogram, Panel, Series};

use crate::cli::{runtime_failed, say, shape_arg};
use crate::client::Client;
use crate::error::Error;
use crate::runtime::RuntimeKind;
use crate::server::Server;
use crate::setup::{ClientSetup, ServerSetup, StackChoice, load_registry};

/// The token the census clients present.
const TOKEN: &str = "echotest flights";
/// The size of the message each census connection echoes.
const MESSAGE_LEN: usize = 64;
/// The most the relay reads as one first packet (a loopback segment is up to 64 KiB).
const FIRST_READ: usize = 64 * 1024;

/// The stacks `echotest flights` judges when none is named: every built-in one.
pub const BUILT_IN_STACKS: [&str; 5] = ["passthrough", "frame", "port", "secure", "seaside"];

/// Arguments of `echotest flights`.
#[derive(Debug, Args)]
pub struct FlightsArgs {
    /// A stack to judge (repeatable); default: passthrough, frame, port, secure and seaside.
    #[arg(long, value_name = "NAME")]
    pub stack: Vec<String>,
    /// A shape for the server's key (repeatable; `none` for PORT/1 unchanged, the default):
    /// the shape text of a key line, e.g. 'prefix=@tls&popcount=low'. Stacks without port
    /// are judged once, without a shape.
    #[arg(long, value_name = "SHAPE", value_parser = shape_arg)]
    pub shape: Vec<Shape>,
    /// Connections per stack and shape.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub connections: usize,
    /// Also draw the first flights' set bits per byte as an SVG histogram into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// A TOML file of named stacks, read after the built-in stacks.
    #[arg(long, value_name = "FILE")]
    pub stacks_file: Option<PathBuf>,
    /// The async runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,
}

/// Runs `echotest flights`.
pub fn run(args: FlightsArgs) -> Result<(), Error> {
    let registry = load_registry(args.stacks_file.as_deref())?;
    let stacks = match args.stack.is_empty() {
        true => BUILT_IN_STACKS.iter().map(|s| s.to_string()).collect(),
        false => args.stack.clone(),
    };
    let shapes = match args.shape.is_empty() {
        true => vec![Shape::none()],
        false => args.shape.clone(),
    };
    let kind = args.runtime;
    let censuses = kind
        .block_on(async {
            let runtime = kind.runtime();
            let mut censuses = Vec::new();
            for spec in &stacks {
                let stack = StackChoice::new(registry.clone(), spec)?;
                for shape in &shapes {
                    if !shape.is_none() && !stack.has_port() {
                        continue;
                    }
                    let census = census(&runtime, stack.clone(), shape, args.connections).await?;
                    say(format_args!("{census}"))?;
                    censuses.push(census);
                }
            }
            Ok::<_, Error>(censuses)
        })
        .map_err(runtime_failed)??;
    if let Some(path) = &args.svg {
        std::fs::write(path, figure(&censuses).render())
            .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
        say(format_args!("wrote {}", path.display()))?;
    }
    Ok(())
}

/// The first flights' set bits per byte, one panel per shape, one series per stack.
pub fn figure(censuses: &[Census]) -> Histogram {
    let mut panels: Vec<Panel> = Vec::new();
    for census in censuses {
        let title = format!("shape: {}", census.shape);
        let series = Series {
            label: format!("{}: {} flagged", census.stack, census.flagged()),
            group: census.stack.clone(),
            values: census.bits_per_byte(),
        };
        match panels.iter_mut().find(|p| p.title == title) {
            Some(panel) => panel.series.push(series),
            None => panels.push(Panel {
                title,
                series: vec![series],
            }),
        }
    }
    Histogram {
        title: "First client flights: mean set bits per byte".to_owned(),
        x_label: "set bits per byte in the first flight".to_owned(),
        range: (0.0, 8.0),
        bins: 160,
        band: Some((3.4, 4.6, "flagged (Ex1 not met)".to_owned())),
        panels,
    }
}

/// The first flights of one stack and shape.
#[derive(Clone, Debug)]
pub struct Census {
    /// The stack, as given.
    pub stack: String,
    /// The shape of the server's key, readable (`none` for PORT/1 unchanged, or a stack
    /// without `port`).
    pub shape: String,
    /// The first bytes each connection's client sent, as the relay read them.
    pub first_flights: Vec<Vec<u8>>,
}

impl Census {
    /// How many first flights meet none of the exemptions.
    pub fn flagged(&self) -> usize {
        self.first_flights
            .iter()
            .filter(|f| !Exemptions::of(f).any())
            .count()
    }

    /// Each first flight's mean set bits per byte.
    pub fn bits_per_byte(&self) -> Vec<f64> {
        self.first_flights
            .iter()
            .map(|f| bits_per_byte(f))
            .collect()
    }

    /// How many first flights meet each exemption, Ex1 to Ex5.
    pub fn exempt_by(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for flight in &self.first_flights {
            let e = Exemptions::of(flight);
            let met = [
                e.popcount,
                e.printable_start,
                e.mostly_printable,
                e.printable_run,
                e.known_protocol,
            ];
            for (count, met) in counts.iter_mut().zip(met) {
                *count += usize::from(met);
            }
        }
        counts
    }
}

impl fmt::Display for Census {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.first_flights.len();
        let bits = self.bits_per_byte();
        let mean = bits.iter().sum::<f64>() / n.max(1) as f64;
        let [ex1, ex2, ex3, ex4, ex5] = self.exempt_by();
        write!(
            f,
            "{} (shape {}): {} of {n} first flights flagged ({:.1} %), {mean:.2} set bits per byte \
             on average; exempt by Ex1 {ex1}, Ex2 {ex2}, Ex3 {ex3}, Ex4 {ex4}, Ex5 {ex5}",
            self.stack,
            self.shape,
            self.flagged(),
            self.flagged() as f64 * 100.0 / n.max(1) as f64,
        )
    }
}

/// The first flights of `connections` connections over `stack`, its server keyed with
/// `shape` (which needs a stack with `port`). Call inside `runtime`.
pub async fn census(
    runtime: &Arc<dyn Runtime>,
    stack: StackChoice,
    shape: &Shape,
    connections: usize,
) -> Result<Census, Error> {
    let config = crate::setup::config_from_env()?;
    if !shape.is_none() && !stack.has_port() {
        return Err(Error::msg(format!(
            "a shape applies to stacks with port, and {:?} has none",
            stack.spec()
        )));
    }
    let (server_setup, client_setup) = if stack.has_seaside() {
        let key = crate::keygen::generate_seaside()?;
        let client = key.client_key();
        (
            ServerSetup::seaside(stack.clone(), config.clone(), key)?,
            ClientSetup::seaside(stack.clone(), config, client, TOKEN)?,
        )
    } else {
        let key = crate::keygen::generate()?.with_shape(shape.clone());
        let client = key.client_key();
        (
            ServerSetup::new(stack.clone(), config.clone(), Some(key))?,
            ClientSetup::new(stack.clone(), config, Some(client), TOKEN)?,
        )
    };
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::bind(runtime.clone(), server_setup, loopback).await?;
    let upstream = server.local_addr();
    let _running = server.spawn();
    let relay = runtime
        .bind(loopback)
        .map_err(|e| Error::msg(format!("cannot bind the recording relay: {e}")))?;
    let relay_addr = relay
        .local_addr()
        .map_err(|e| Error::msg(format!("cannot bind the recording relay: {e}")))?
        .to_string();
    let (seen, flights) = smol::channel::unbounded();
    let rt = runtime.clone();
    runtime.spawn(Box::pin(async move {
        for _ in 0..connections {
            let Ok((client, _)) = poll_fn(|cx| relay.poll_accept(cx)).await else {
                return;
            };
            let (rt2, seen) = (rt.clone(), seen.clone());
            rt.spawn(Box::pin(async move {
                let _ = relay_one(rt2, client, upstream, seen).await;
            }));
        }
    }));

    let mut rng = ChaCha20Rng::seed_from_u64(connections as u64);
    let mut first_flights = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut client = Client::connect(runtime, &client_setup, &relay_addr).await?;
        let mut message = vec![0u8; MESSAGE_LEN];
        rng.fill_bytes(&mut message);
        let echo = client.echo(Bytes::from(message.clone())).await?;
        if echo.reply != message {
            return Err(Error::msg("an echo came back different"));
        }
        client.close().await?;
        // The relay read the first flight before anything could come back.
        let flight = flights
            .try_recv()
            .map_err(|_| Error::msg("the relay kept no first flight"))?;
        first_flights.push(flight);
    }
    Ok(Census {
        stack: stack.spec().to_owned(),
        shape: shape.to_string(),
        first_flights,
    })
}

/// Relays one connection to `upstream`, handing its first read to `seen`.
async fn relay_one(
    runtime: Arc<dyn Runtime>,
    mut client: Box<dyn Socket>,
    upstream: SocketAddr,
    seen: smol::channel::Sender<Vec<u8>>,
) -> io::Result<()> {
    let mut server = runtime.connect(upstream).await?;
    let mut first = vec![0u8; FIRST_READ];
    let n = client.read(&mut first).await?;
    first.truncate(n);
    let _ = seen.try_send(first.clone());
    server.write_all(&first).await?;
    let (client_read, mut client_write) = futures_lite::io::split(client);
    let (server_read, mut server_write) = futures_lite::io::split(server);
    let up = async {
        let _ = futures_lite::io::copy(client_read, &mut server_write).await;
        let _ = server_write.close().await;
    };
    let down = async {
        let _ = futures_lite::io::copy(server_read, &mut client_write).await;
        let _ = client_write.close().await;
    };
    futures_lite::future::zip(up, down).await;
    Ok(())
}
