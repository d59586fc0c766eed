//! `echotest lengths`: the sizes of the records a connection writes, for keystrokes (5-byte
//! messages) and for bulk (1000-byte messages), one message at a time, under default
//! padding and under shaped lengths, and how far apart the two look (the two-sample
//! Kolmogorov–Smirnov distance). The connections run in memory, each `poll_transmit` one
//! write: the sizes are exactly what the sender hands its socket, free of the kernel's
//! coalescing.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use port_chaos::histogram::ks_distance;
use port_core::{
    ClientConfig, Config, Connection, Event, Lengths, ServerConfig, ServerKey, Session, Shape,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use std::path::PathBuf;

use clap::Args;
use port_chaos::histogram::{Histogram, Panel, Series};

use crate::cli::say;
use crate::error::Error;

/// Arguments of `echotest lengths`.
#[derive(Debug, Args)]
pub struct LengthsArgs {
    /// Records of each kind of traffic, per mode.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub records: usize,
    /// Seeds the keys, the connections and the messages.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Also draw the record sizes as an SVG histogram into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// Runs `echotest lengths`.
pub fn run(args: LengthsArgs) -> Result<(), Error> {
    let mut all = Vec::new();
    for lengths in [Lengths::Padded, Lengths::Shaped] {
        let sizes = measure(lengths, args.records, args.seed)?;
        say(format_args!("{sizes}"))?;
        all.push(sizes);
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, figure(&all).render())
            .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
        say(format_args!("wrote {}", path.display()))?;
    }
    Ok(())
}

/// Record sizes, one panel per mode, keystrokes and bulk in each.
pub fn figure(all: &[Sizes]) -> Histogram {
    let as_f64 = |v: &[usize]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
    let panels = all
        .iter()
        .map(|sizes| Panel {
            title: format!(
                "{} (KS distance {:.3})",
                mode_name(sizes.lengths),
                sizes.ks_distance()
            ),
            series: vec![
                Series {
                    label: "5-byte messages".to_owned(),
                    group: "5".to_owned(),
                    values: as_f64(&sizes.keystrokes),
                },
                Series {
                    label: "1000-byte messages".to_owned(),
                    group: "1000".to_owned(),
                    values: as_f64(&sizes.bulk),
                },
            ],
        })
        .collect();
    Histogram {
        title: "Sizes of the records a connection writes".to_owned(),
        x_label: "record size on the wire (bytes)".to_owned(),
        range: (0.0, 1600.0),
        bins: 160,
        band: None,
        panels,
    }
}

fn mode_name(lengths: Lengths) -> &'static str {
    match lengths {
        Lengths::Shaped => "shaped lengths",
        _ => "default padding",
    }
}

/// A pattern of sending: messages of one size, a batch at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Bytes per message.
    pub message_len: usize,
    /// Messages sent before waiting for their delivery.
    pub batch: usize,
}

/// Typing: 5-byte messages, each delivered before the next.
pub const KEYSTROKES: Pattern = Pattern {
    message_len: 5,
    batch: 1,
};

/// A transfer: 1000-byte messages, each delivered before the next (so that under default
/// padding each write is one frame, as with keystrokes).
pub const BULK: Pattern = Pattern {
    message_len: 1000,
    batch: 1,
};

/// A stream: 64 KiB messages, 16 queued at a time (a file transfer); measured for its
/// wire bytes per payload byte only.
pub const STREAM: Pattern = Pattern {
    message_len: 64 * 1024,
    batch: 16,
};

/// The record sizes of one connection that first types, then transfers.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// How frame sizes were chosen.
    pub lengths: Lengths,
    /// The client's records while it typed.
    pub keystrokes: Vec<usize>,
    /// The client's records while it transferred.
    pub bulk: Vec<usize>,
    /// Payload bytes the client sent while it typed, then while it transferred.
    pub payload: [u64; 2],
    /// Wire bytes per payload byte of a [`STREAM`] of 64 MiB on a fresh connection.
    pub stream_expansion: f64,
}

impl Sizes {
    /// The Kolmogorov–Smirnov distance between the two kinds of records.
    pub fn ks_distance(&self) -> f64 {
        let as_f64 = |v: &[usize]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
        ks_distance(&as_f64(&self.keystrokes), &as_f64(&self.bulk))
    }

    /// Wire bytes per payload byte while it typed, then while it transferred.
    pub fn expansion(&self) -> [f64; 2] {
        let ratio = |records: &[usize], payload: u64| {
            records.iter().sum::<usize>() as f64 / payload.max(1) as f64
        };
        [
            ratio(&self.keystrokes, self.payload[0]),
            ratio(&self.bulk, self.payload[1]),
        ]
    }
}

impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [typing, bulk] = self.expansion();
        write!(
            f,
            "{}: {} keystroke records, {} bulk records, Kolmogorov-Smirnov distance {:.4}; \
             wire bytes per payload byte {typing:.2} typing, {bulk:.3} in bulk, {:.4} streaming",
            mode_name(self.lengths),
            self.keystrokes.len(),
            self.bulk.len(),
            self.ks_distance(),
            self.stream_expansion,
        )
    }
}

/// Measures `records` records of each kind of traffic on one in-memory connection whose key
/// has `lengths`; `seed` seeds the keys, the connection and the messages.
pub fn measure(lengths: Lengths, records: usize, seed: u64) -> Result<Sizes, Error> {
    let mut pair = Pair::new(lengths, seed)?;
    let keystrokes = pair.records_of(KEYSTROKES, records)?;
    let typed = pair.payload;
    let bulk = pair.records_of(BULK, records)?;
    let mut stream = Pair::new(lengths, seed)?;
    while stream.payload < 64 << 20 {
        stream.records_of(STREAM, 1)?;
    }
    let wire: usize = stream.writes.iter().sum();
    Ok(Sizes {
        lengths,
        keystrokes,
        bulk,
        payload: [typed, pair.payload - typed],
        stream_expansion: wire as f64 / stream.payload as f64,
    })
}

/// A client and a server joined in memory.
struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    rng: ChaCha20Rng,
    /// The size of every client write after its INIT.
    writes: Vec<usize>,
    delivered: usize,
    payload: u64,
}

impl Pair {
    fn new(lengths: Lengths, seed: u64) -> Result<Pair, Error> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = ServerKey::generate(&mut rng).with_shape(Shape::none().with_lengths(lengths));
        let config = Config::default();
        let client = ClientConfig::new(config.clone(), key.client_key(), "lengths")
            .map_err(|e| Error::msg(e.to_string()))?;
        let server = ServerConfig::new(config, key);
        let now = Instant::now();
        let unix = Duration::from_secs(1_800_000_000);
        let mut seeds = [[0u8; 32]; 2];
        for s in &mut seeds {
            rng.fill_bytes(s);
        }
        let mut pair = Pair {
            client: Connection::client(&client, now, unix, seeds[0]),
            server: Connection::server(&server, now, unix, seeds[1]),
            now,
            rng,
            writes: Vec::new(),
            delivered: 0,
            payload: 0,
        };
        pair.settle()?;
        if !pair.client.is_connected() {
            return Err(Error::msg("the in-memory handshake did not complete"));
        }
        // The INIT is not a record.
        pair.writes.clear();
        Ok(pair)
    }

    /// The sizes of the next `records` client records while it sends `traffic`.
    fn records_of(&mut self, traffic: Pattern, records: usize) -> Result<Vec<usize>, Error> {
        let first = self.writes.len();
        while self.writes.len() < first + records {
            for _ in 0..traffic.batch {
                let mut message = vec![0u8; traffic.message_len];
                self.rng.fill_bytes(&mut message);
                self.client
                    .send(Bytes::from(message))
                    .map_err(|e| Error::msg(e.to_string()))?;
                self.payload += traffic.message_len as u64;
            }
            let expected = self.delivered + traffic.batch;
            self.settle()?;
            if self.delivered != expected {
                return Err(Error::msg("a message was not delivered in memory"));
            }
        }
        Ok(self.writes[first..first + records].to_vec())
    }

    /// Moves bytes and events both ways until nothing moves.
    fn settle(&mut self) -> Result<(), Error> {
        let now = self.now;
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(bytes) = self.client.poll_transmit(now) {
                self.writes.push(bytes.len());
                self.server.handle_input(now, &bytes);
                moved = true;
            }
            while let Some(bytes) = self.server.poll_transmit(now) {
                self.client.handle_input(now, &bytes);
                moved = true;
            }
            while let Some(event) = self.server.poll_event() {
                match event {
                    Event::Authenticate { .. } => self
                        .server
                        .accept(1)
                        .map_err(|e| Error::msg(e.to_string()))?,
                    Event::Data(_) => self.delivered += 1,
                    Event::Closed(reason) => {
                        return Err(Error::msg(format!("the server closed: {reason}")));
                    }
                    _ => {}
                }
                moved = true;
            }
            while self.client.poll_event().is_some() {
                moved = true;
            }
        }
        Ok(())
    }
}
