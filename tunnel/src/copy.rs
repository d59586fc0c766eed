//! Carrying one TCP connection over one PORT connection, both ways, with half-close.
//!
//! Each direction is one loop that holds at most one read buffer, and waits whenever the
//! other side is not keeping up, so a slow reader anywhere slows the writer at the far end:
//!
//! - TCP → PORT: a read of up to [`READ_CHUNK`] bytes becomes one PORT message. The PORT
//!   stream's send waits while its send window (256 KiB) is full, and TCP's own window then
//!   pushes back on the local writer. The message is the read buffer itself (no copy): the
//!   buffer is split off and frozen, and its memory is reused once the PORT connection has
//!   sealed it. A connection idle for a second gives the buffer back until data arrives.
//! - PORT → TCP: each received message is written as it is. While the local socket does not
//!   drain, no message is taken, the PORT connection's receive window (256 KiB) fills, its
//!   driver stops reading the server's socket, and TCP pushes back on the far end.
//!
//! Half-close: the local side's FIN becomes a TERM after everything queued, and the peer's
//! TERM becomes a FIN (`shutdown(Write)`) after everything received; each direction ends on
//! its own, and the carried connection ends when both did.
//!
//! A cut is passed on as a cut: when the PORT connection ends without the peer's TERM (the
//! far process died, the path broke), the local socket is reset (RST), never closed with a
//! FIN the application would take for the end of the data; when the local socket fails (the
//! application reset it), the PORT connection is aborted, so the far tunnel resets its own
//! socket in turn.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The largest TCP read, and so the largest PORT message a read becomes. Large enough that a
/// bulk transfer costs few reads and few messages; PORT splits it into frames itself.
pub const READ_CHUNK: usize = 128 * 1024;

/// How long a direction waits for data before it gives its read buffer back.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// How long [`close_gently`] waits for the peer's FIN.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// Why a carried connection ended badly, and on which side.
#[derive(Debug)]
pub enum CarryError {
    /// The TCP side failed (a reset, say).
    Tcp(io::Error),
    /// The PORT side failed.
    Port(port_tokio::Error),
}

impl std::fmt::Display for CarryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CarryError::Tcp(e) => write!(f, "TCP side: {e}"),
            CarryError::Port(e) => write!(f, "PORT side: {}", crate::error::describe(e)),
        }
    }
}

/// Carries `tcp` over `port` until both directions ended; `tcp_to_port` and `port_to_tcp`
/// count the payload bytes as they pass. On an error the connection is cut on the other side
/// too (see the module docs).
pub async fn carry(
    tcp: TcpStream,
    port: port_tokio::Stream,
    tcp_to_port: &AtomicU64,
    port_to_tcp: &AtomicU64,
) -> Result<(), CarryError> {
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (mut port_read, mut port_write) = port.split();
    // `try_join`: an error in one direction stops the other at once instead of leaving it
    // waiting for a peer that will never speak again.
    let result = tokio::try_join!(
        tcp_into_port(&mut tcp_read, &mut port_write, tcp_to_port),
        port_into_tcp(&mut port_read, &mut tcp_write, port_to_tcp),
    );
    if let Err(e) = &result {
        match e {
            // Before the halves drop, which would end the PORT connection with a TERM.
            CarryError::Tcp(_) => port_write.abort(),
            CarryError::Port(_) => {
                if let Ok(tcp) = tcp_read.reunite(tcp_write) {
                    reset(&tcp);
                }
            }
        }
    }
    result.map(|_| ())
}

/// Makes the close of `tcp` a reset: with a zero linger time, closing sends RST and drops
/// whatever was not yet delivered, and the application's next read fails with
/// `ECONNRESET`. A zero linger never blocks the close.
fn reset(tcp: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(error = %e, "cannot arrange a reset: the socket closes with a FIN");
    }
}

async fn tcp_into_port(
    tcp: &mut OwnedReadHalf,
    port: &mut port_tokio::WriteHalf,
    counter: &AtomicU64,
) -> Result<(), CarryError> {
    let mut buf = BytesMut::new();
    loop {
        if tokio::time::timeout(IDLE_RELEASE, tcp.readable())
            .await
            .is_err()
        {
            // Idle: an idle carried connection holds no read buffer.
            buf = BytesMut::new();
            tcp.readable().await.map_err(CarryError::Tcp)?;
        }
        // Reclaims the buffer in place once the messages split off it were sealed; otherwise
        // allocates a fresh one (at most one per read of up to READ_CHUNK bytes).
        buf.reserve(READ_CHUNK);
        let n = match tcp.try_read_buf(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(CarryError::Tcp(e)),
        };
        if n == 0 {
            // FIN from the TCP side: TERM after everything queued.
            return port
                .shutdown()
                .await
                .map_err(|e| CarryError::Port(port_tokio::Error::Io(std::sync::Arc::new(e))));
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        port.send(buf.split().freeze())
            .await
            .map_err(CarryError::Port)?;
    }
}

async fn port_into_tcp(
    port: &mut port_tokio::ReadHalf,
    tcp: &mut OwnedWriteHalf,
    counter: &AtomicU64,
) -> Result<(), CarryError> {
    loop {
        match port.recv().await.map_err(CarryError::Port)? {
            Some(message) => {
                tcp.write_all(&message).await.map_err(CarryError::Tcp)?;
                counter.fetch_add(message.len() as u64, Ordering::Relaxed);
            }
            None => {
                // The peer's TERM: FIN on the TCP side, after everything received.
                return tcp.shutdown().await.map_err(CarryError::Tcp);
            }
        }
    }
}

/// Closes a TCP connection that carried nothing (the tunnel could not be set up) without a
/// reset: FIN, then what the peer still sends is read and dropped until its FIN, for at most
/// a few seconds. Dropping a socket with unread bytes would send a RST instead.
pub async fn close_gently(mut tcp: TcpStream) {
    if tcp.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let drain = async {
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}
