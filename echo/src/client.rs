//! The echo client: sends one message at a time, waits for its echo, and measures each round
//! trip.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use port_core::CloseReason;

use port_driver::{Runtime, Stream, Traffic};

use crate::error::Error;
use crate::setup::ClientSetup;

/// A connected echo client.
pub struct Client {
    stream: Stream,
    peer: SocketAddr,
    user_id: Option<u32>,
    /// Bytes received beyond the echo being waited for (byte-stream stacks may merge).
    leftover: BytesMut,
}

/// One echoed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    /// What came back.
    pub reply: Bytes,
    /// From just before the send to the last byte of the echo.
    pub round_trip: Duration,
}

impl Client {
    /// Connects to `addr` (`host:port`) on `runtime` and completes every layer's handshake.
    pub async fn connect(
        runtime: &Arc<dyn Runtime>,
        setup: &ClientSetup,
        addr: &str,
    ) -> Result<Self, Error> {
        let stream = port_driver::connect_session(runtime, addr, setup.factory(), setup.options())
            .await
            .map_err(|e| match e {
                // Only a TCP connection that could not be made is a failure to connect.
                port_driver::Error::Io(_) | port_driver::Error::ConnectTimeout => {
                    Error::msg(format!("cannot connect to {addr}: {e}"))
                }
                port_driver::Error::Rejected(status) => {
                    Error::msg(port_stack::tokens::describe_refusal(status))
                }
                e => Error::msg(format!("the handshake with {addr} failed: {e}")),
            })?;
        let peer = stream.peer_addr();
        let user_id = stream.user_id();
        Ok(Client {
            stream,
            peer,
            user_id,
            leftover: BytesMut::new(),
        })
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The user id the server assigned (0 for stacks without PORT).
    pub fn user_id(&self) -> Option<u32> {
        self.user_id
    }

    /// What crossed the TCP socket so far: handshake, framing and padding included.
    pub fn traffic(&self) -> Traffic {
        self.stream.traffic()
    }

    /// Sends `message` and waits for all of its echo. Stacks that keep message boundaries
    /// return it as one message; byte-stream stacks (`passthrough` alone) may split or merge
    /// it, so bytes are gathered until the echo is complete.
    pub async fn echo(&mut self, message: Bytes) -> Result<Echo, Error> {
        if message.is_empty() {
            return Err(Error::msg("cannot echo an empty message"));
        }
        let stream = &mut self.stream;
        let start = Instant::now();
        stream
            .send(message.clone())
            .await
            .map_err(|e| Error::msg(format!("send failed: {e}")))?;
        while self.leftover.len() < message.len() {
            match stream.recv().await {
                Ok(Some(chunk)) => self.leftover.extend_from_slice(&chunk),
                Ok(None) => {
                    return Err(Error::msg(
                        "the server ended the connection before echoing everything",
                    ));
                }
                Err(e) => {
                    return Err(Error::msg(format!("connection lost: {e}")));
                }
            }
        }
        let round_trip = start.elapsed();
        let reply = self.leftover.split_to(message.len()).freeze();
        Ok(Echo { reply, round_trip })
    }

    /// Waits until the server ends its direction (its TERM: `Ok`) or the connection fails.
    /// Meant for while no echo is due; anything that arrives meanwhile is kept for the next.
    pub async fn ended(&mut self) -> Result<(), Error> {
        loop {
            match self.stream.recv().await {
                Ok(Some(chunk)) => self.leftover.extend_from_slice(&chunk),
                Ok(None) => return Ok(()),
                Err(e) => return Err(Error::msg(format!("connection lost: {e}"))),
            }
        }
    }

    /// Ends the connection cleanly and returns its close reason.
    pub async fn close(&mut self) -> Result<Option<CloseReason>, Error> {
        match self.stream.close().await {
            Ok(()) => Ok(self.stream.close_reason()),
            Err(e) => Err(Error::msg(format!(
                "the connection did not end cleanly: {e}"
            ))),
        }
    }
}

/// Counts and round-trip times over a run of echoes.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Messages echoed.
    pub messages: u64,
    /// Payload bytes echoed (each way).
    pub bytes: u64,
    /// Echoes that differed from what was sent.
    pub mismatches: u64,
    round_trips: Vec<Duration>,
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Records one echo of `sent`.
    pub fn record(&mut self, sent: &[u8], echo: &Echo) {
        self.messages += 1;
        self.bytes += sent.len() as u64;
        if echo.reply != sent {
            self.mismatches += 1;
        }
        self.round_trips.push(echo.round_trip);
    }

    /// The fastest, median and slowest round trip (`None` before the first echo).
    pub fn round_trip_stats(&self) -> Option<(Duration, Duration, Duration)> {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        let min = *sorted.first()?;
        let max = *sorted.last()?;
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2
        } else {
            sorted[mid]
        };
        Some((min, median, max))
    }
}

/// `1 one` or `n many`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A duration in milliseconds with three decimals.
pub fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: {}, {} echoed",
            plural(self.messages, "message", "messages"),
            plural(self.bytes, "byte", "bytes")
        )?;
        if let Some((min, median, max)) = self.round_trip_stats() {
            write!(
                f,
                "; round trip min {}, median {}, max {}",
                millis(min),
                millis(median),
                millis(max)
            )?;
        }
        if self.mismatches > 0 {
            write!(
                f,
                "; {} DIFFERED from what was sent",
                plural(self.mismatches, "echo", "echoes")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(reply: &'static [u8], ms: u64) -> Echo {
        Echo {
            reply: Bytes::from_static(reply),
            round_trip: Duration::from_millis(ms),
        }
    }

    #[test]
    fn summary_counts_and_orders_round_trips() {
        let mut summary = Summary::new();
        assert_eq!(summary.round_trip_stats(), None);
        summary.record(b"ab", &echo(b"ab", 3));
        summary.record(b"cd", &echo(b"cd", 1));
        summary.record(b"ef", &echo(b"xx", 2));
        assert_eq!(summary.messages, 3);
        assert_eq!(summary.bytes, 6);
        assert_eq!(summary.mismatches, 1);
        let ms = Duration::from_millis;
        assert_eq!(summary.round_trip_stats(), Some((ms(1), ms(2), ms(3))));
        summary.record(b"gh", &echo(b"gh", 4));
        assert_eq!(
            summary.round_trip_stats(),
            Some((ms(1), Duration::from_micros(2500), ms(4)))
        );
        let text = summary.to_string();
        assert!(text.starts_with("summary: 4 messages, 8 bytes echoed; round trip min 1.000 ms"));
        assert!(text.contains("1 echo DIFFERED"));
    }
}
