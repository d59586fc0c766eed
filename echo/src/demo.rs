//! `echotest demo`: a server and a client in one process on loopback, with fresh keys, first
//! over `port`, then over `port+passthrough`. Needs no setup and no files.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use port_driver::Runtime;
use port_stack::Registry;

use crate::client::{Client, Summary, millis};
use crate::error::Error;
use crate::runtime::RuntimeKind;
use crate::server::{ConnectionReport, Server};
use crate::setup::{ClientSetup, ServerSetup, StackChoice, config_from_env};

/// The stacks the demo runs, in order.
pub const STACKS: [&str; 2] = ["port", "port+passthrough"];

/// The token the demo client presents.
pub const TOKEN: &str = "echotest demo";

/// The messages the demo echoes on each stack (the first one twice: same payload, different
/// size on the wire).
pub const MESSAGES: [&str; 3] = ["hello", "PORT pads every message", "hello"];

pub use port_core::frame::FRAME_OVERHEAD;

/// How long the demo waits for the server's report on a connection.
const REPORT_WAIT: Duration = Duration::from_secs(5);

fn io(e: std::io::Error) -> Error {
    Error::msg(format!("cannot write the demo output: {e}"))
}

/// What the demo measured, for the closing line and for tests.
#[derive(Clone, Debug, Default)]
pub struct DemoTotals {
    /// Payload bytes the clients sent.
    pub payload: u64,
    /// Bytes the clients' data frames took on the wire.
    pub wire: u64,
    /// Of those, random padding.
    pub padding: u64,
    /// Bytes the clients wrote to their sockets (each connection whole: handshake, data,
    /// TERM).
    pub client_written: u64,
    /// Bytes the servers wrote to their sockets.
    pub server_written: u64,
}

/// Runs the demo on `kind` (call inside [`RuntimeKind::block_on`]), writing a few readable
/// lines per step to `out`.
pub async fn run(kind: RuntimeKind, out: &mut (dyn Write + Send)) -> Result<DemoTotals, Error> {
    let runtime = kind.runtime();
    let config = config_from_env()?;
    let server_key = crate::keygen::generate()?;
    let client_key = server_key.client_key();
    let shown = client_key.to_text();
    writeln!(
        out,
        "echotest demo: a PORT echo server and client in this process on 127.0.0.1 ({}), fresh keys in memory",
        kind.name()
    )
    .map_err(io)?;
    writeln!(
        out,
        "client key: {}... (the server keeps the secret half)",
        &shown[..shown.len().min(24)]
    )
    .map_err(io)?;
    let mut totals = DemoTotals::default();
    for spec in STACKS {
        let stack = StackChoice::new(Registry::with_builtins(), spec)?;
        writeln!(out).map_err(io)?;
        writeln!(
            out,
            "== stack {spec:?} (layers, top first: {}) ==",
            stack.layers().join(", ")
        )
        .map_err(io)?;
        let server_setup =
            ServerSetup::new(stack.clone(), config.clone(), Some(server_key.clone()))?;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = Server::bind(runtime.clone(), server_setup, loopback).await?;
        let addr = server.local_addr();
        writeln!(out, "server listening on {addr}").map_err(io)?;
        let running = server.spawn();

        let client_setup =
            ClientSetup::new(stack, config.clone(), Some(client_key.clone()), TOKEN)?;
        let start = Instant::now();
        let mut client = Client::connect(&runtime, &client_setup, &addr.to_string()).await?;
        let handshake = client.traffic();
        writeln!(
            out,
            "handshake: connected as user {} in {} (client INIT {} bytes for a {}-byte token, server answer {} bytes)",
            client.user_id().unwrap_or(0),
            millis(start.elapsed()),
            handshake.written,
            TOKEN.len(),
            handshake.read,
        )
        .map_err(io)?;

        let mut summary = Summary::new();
        for message in MESSAGES {
            let before = client.traffic().written;
            let echo = client.echo(Bytes::from_static(message.as_bytes())).await?;
            summary.record(message.as_bytes(), &echo);
            let wire = client.traffic().written - before;
            let payload = message.len() as u64;
            let framing = FRAME_OVERHEAD as u64;
            totals.payload += payload;
            totals.wire += wire;
            let detail = match wire.checked_sub(payload + framing) {
                Some(padding) => {
                    totals.padding += padding;
                    format!("{payload} payload + {framing} framing + {padding} random padding")
                }
                None => "unexpectedly small".to_owned(),
            };
            let verdict = if echo.reply == message.as_bytes() {
                String::new()
            } else {
                " (DIFFERENT)".to_owned()
            };
            writeln!(
                out,
                "> {message:?} ({payload} bytes) went out as {wire} bytes: {detail}; < {:?}{verdict} in {}",
                String::from_utf8_lossy(&echo.reply),
                millis(echo.round_trip)
            )
            .map_err(io)?;
        }
        let reason = client.close().await?;
        let client_traffic = client.traffic();
        let reason = reason.map_or_else(|| "closed".to_owned(), |r| r.to_string());
        let report = wait_report(&runtime, &running.reports).await;
        let server_side = describe(report.as_ref());
        writeln!(out, "close: client: {reason}; server: {server_side}").map_err(io)?;
        let server_written = report.map_or(0, |r| r.traffic.written);
        totals.client_written += client_traffic.written;
        totals.server_written += server_written;
        let summary = summary.to_string();
        writeln!(
            out,
            "{}; the client wrote {} bytes to its socket and read {}, the server wrote {}",
            summary.strip_prefix("summary: ").unwrap_or(&summary),
            client_traffic.written,
            client_traffic.read,
            server_written
        )
        .map_err(io)?;
        drop(running);
    }
    writeln!(out).map_err(io)?;
    writeln!(
        out,
        "done: {} payload bytes went out in {} bytes of data frames, {} of them random padding",
        totals.payload, totals.wire, totals.padding
    )
    .map_err(io)?;
    writeln!(
        out,
        "next, across processes: `echotest keygen --out keys`, then `echotest server --stack port --listen 127.0.0.1:9000 --key keys/server.key` and `echotest client port://127.0.0.1:9000 --key keys/client.key --message hi`"
    )
    .map_err(io)?;
    Ok(totals)
}

/// The server's report on the demo's connection, if it comes within [`REPORT_WAIT`].
async fn wait_report(
    runtime: &Arc<dyn Runtime>,
    reports: &smol::channel::Receiver<ConnectionReport>,
) -> Option<ConnectionReport> {
    let report = async { reports.recv().await.ok() };
    let timeout = async {
        port_driver::sleep(&**runtime, REPORT_WAIT).await;
        None
    };
    futures_lite::future::or(report, timeout).await
}

fn describe(report: Option<&ConnectionReport>) -> String {
    match report {
        Some(report) => match (report.reason, &report.error) {
            (Some(reason), _) => format!(
                "{reason} (user {} echoed {} messages)",
                report.user_id, report.messages
            ),
            (None, Some(error)) => error.clone(),
            (None, None) => "closed".to_owned(),
        },
        None => "did not report within 5 s".to_owned(),
    }
}
