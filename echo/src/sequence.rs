//! `echotest client --sequence N`: numbered messages of varied sizes, each echo checked byte
//! for byte, with optional reconnects after a lost connection and an optional silent hold at
//! the end. The chaos scenarios read its stdout, one machine-readable line per event:
//!
//! ```text
//! seq connected ATTEMPT
//! seq echo INDEX SIZE MICROSECONDS
//! seq mismatch INDEX
//! seq lost INDEX REASON
//! seq done ECHOED RECONNECTS
//! seq holding
//! seq closed REASON
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use port_driver::Runtime;

use crate::client::Client;
use crate::error::Error;
use crate::setup::ClientSetup;

/// Message sizes, cycled: small and large, some above one TCP segment, some above several.
pub const SIZES: [usize; 8] = [1, 37, 300, 1000, 1460, 2900, 700, 5000];

/// How long to wait before reconnecting after a lost connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// The flags of `echotest client` for a checked numbered sequence.
#[derive(Clone, Debug, Default, Args)]
pub struct SequenceArgs {
    /// Send N numbered messages of varied sizes (instead of --message or stdin) and check
    /// that each echo is byte-identical; prints one `seq ...` line per event.
    #[arg(long, value_name = "N")]
    pub sequence: Option<u64>,
    /// With --sequence: after a lost connection, reconnect up to N times and send the rest.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "sequence")]
    pub reconnect: u32,
    /// With --sequence: after the last echo, keep the connection open and silent until killed.
    #[arg(long, requires = "sequence")]
    pub hold: bool,
}

/// Message `index` of a sequence: `#INDEX:` then bytes that depend on the index and position.
pub fn message(index: u64) -> Bytes {
    let size = SIZES[(index % SIZES.len() as u64) as usize];
    let mut bytes = format!("#{index}:").into_bytes();
    let mut k = 0u64;
    while bytes.len() < size {
        bytes.push((index.wrapping_mul(7).wrapping_add(k.wrapping_mul(13)) % 251) as u8);
        k += 1;
    }
    bytes.truncate(size.max(1));
    Bytes::from(bytes)
}

fn line(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "seq {text}");
    let _ = out.flush();
}

/// Runs a checked sequence of `count` messages against `addr`.
pub async fn run(
    runtime: Arc<dyn Runtime>,
    setup: ClientSetup,
    addr: String,
    args: SequenceArgs,
) -> Result<(), Error> {
    let count = args.sequence.unwrap_or(0);
    let mut next = 0u64;
    let mut reconnects = 0u32;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = async {
            let mut client = Client::connect(&runtime, &setup, &addr).await?;
            line(format_args!("connected {attempt}"));
            while next < count {
                let sent = message(next);
                let echo = client.echo(sent.clone()).await?;
                if echo.reply != sent {
                    line(format_args!("mismatch {next}"));
                    return Err(Error::msg(format!(
                        "echo {next} differed from what was sent"
                    )));
                }
                line(format_args!(
                    "echo {next} {} {}",
                    sent.len(),
                    echo.round_trip.as_micros()
                ));
                next += 1;
            }
            Ok(client)
        }
        .await;
        match outcome {
            Ok(mut client) => {
                line(format_args!("done {next} {reconnects}"));
                if args.hold {
                    line(format_args!("holding"));
                    loop {
                        port_driver::sleep(&*runtime, Duration::from_secs(3600)).await;
                    }
                }
                let reason = client.close().await?;
                let reason = reason.map_or_else(|| "closed".to_owned(), |r| r.to_string());
                line(format_args!("closed {reason}"));
                return Ok(());
            }
            Err(e) if e.message().contains("differed") => return Err(e),
            Err(e) => {
                line(format_args!("lost {next} {e}"));
                if reconnects >= args.reconnect {
                    return Err(e);
                }
                reconnects += 1;
                port_driver::sleep(&*runtime, RECONNECT_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_numbered_sized_and_distinct() {
        for i in 0..32 {
            let m = message(i);
            assert_eq!(m.len(), SIZES[(i % 8) as usize].max(1));
            if m.len() > 4 {
                assert!(m.starts_with(format!("#{i}:").as_bytes()));
            }
            assert_eq!(m, message(i));
        }
        assert_ne!(message(3), message(11));
    }
}
