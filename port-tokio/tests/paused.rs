//! Timing through real sockets on tokio's paused clock: the driver reads time only from the
//! runtime, so a keepalive that gives up after minutes, a handshake timeout and a prober's
//! drain all run in a few milliseconds of wall time, at exactly the virtual instants the
//! protocol defines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use port_core::{ClientConfig, CloseReason, Config, ServerConfig, ServerKey};
use port_tokio::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Slack on a virtual deadline: the driver fires timers at the instant they are due, but
/// the paused clock may jump past it to the next timer of another task.
const SLACK: Duration = Duration::from_millis(50);

fn key() -> ServerKey {
    ServerKey::from_parts([3; 32], [4; 32])
}

/// An echo server on the runtime under test.
async fn echo_server(config: Config) -> SocketAddr {
    let rt = port_tokio::runtime();
    let listener = port_tokio::Listener::bind(&rt, "127.0.0.1:0", ServerConfig::new(config, key()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            let mut stream = incoming.accept(1).unwrap();
            tokio::spawn(async move {
                while let Ok(Some(m)) = stream.recv().await {
                    if stream.send(m).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A TCP relay to `target` that forwards until `stale` is set, then swallows everything in
/// both directions with the sockets left open: a peer that is gone without a FIN.
async fn relay(target: SocketAddr, stale: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(target).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::spawn(pump(client_read, server_write, stale.clone()));
        pump(server_read, client_write, stale).await;
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stale: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            // A stale path carries no FIN either: hold the other socket open.
            Ok(0) | Err(_) if stale.load(Ordering::SeqCst) => std::future::pending().await,
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !stale.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_stale_peer_is_found_by_the_keepalive_within_its_bound() {
    let config = Config::default();
    let bound = config.max_keepalive_detection();
    assert!(
        bound >= Duration::from_secs(60),
        "minutes of protocol time: {bound:?}"
    );
    let stale = Arc::new(AtomicBool::new(false));
    let addr = relay(echo_server(config.clone()).await, stale.clone()).await;
    let rt = port_tokio::runtime();
    let setup = ClientConfig::new(config, key().client_key(), "t").unwrap();
    let mut stream = port_tokio::connect(&rt, addr, &setup).await.unwrap();
    stream.send("before").await.unwrap();
    assert_eq!(stream.recv().await.unwrap().unwrap(), "before");

    stale.store(true, Ordering::SeqCst);
    let since = Instant::now();
    let end = stream.recv().await;
    let waited = since.elapsed();
    assert!(
        matches!(end, Err(Error::Closed(CloseReason::KeepaliveTimeout))),
        "{end:?}"
    );
    // Found on the keepalive's own schedule: after at least one attempt's wait, at most the
    // detection bound after the peer's last sign of life.
    assert!(waited > config_min_wait(), "{waited:?}");
    assert!(waited <= bound + SLACK, "{waited:?} > {bound:?}");
}

/// The shortest a keepalive can take to give up: the first PING comes no sooner than
/// `min_next_in`, and its wait is at least `min_timeout`.
fn config_min_wait() -> Duration {
    let config = Config::default();
    config.min_next_in() + config.min_timeout()
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_the_handshake_out_at_the_configured_instant() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        // Accepts and reads, never answers.
        let (mut socket, _) = silent.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let config = Config::default();
    let timeout = config.handshake_timeout();
    let setup = ClientConfig::new(config, key().client_key(), "t").unwrap();
    let since = Instant::now();
    let result = port_tokio::connect(&port_tokio::runtime(), addr, &setup).await;
    let waited = since.elapsed();
    assert!(
        matches!(result, Err(Error::Unanswered { closed: false })),
        "{:?}",
        result.err()
    );
    assert!(
        waited >= timeout && waited <= timeout + SLACK,
        "{waited:?} against {timeout:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_prober_is_drained_until_a_deadline_between_drain_min_and_drain_max() {
    let config = Config::default();
    let (lo, hi) = (config.drain_min(), config.drain_max());
    let addr = echo_server(config).await;
    let mut prober = TcpStream::connect(addr).await.unwrap();
    prober.write_all(&[0x42; 300]).await.unwrap();
    let since = Instant::now();
    let mut buf = [0u8; 64];
    let read = prober.read(&mut buf).await;
    let waited = since.elapsed();
    assert!(matches!(read, Ok(0)), "no answer, only the end: {read:?}");
    assert!(
        waited >= lo && waited <= hi + SLACK,
        "{waited:?} outside {lo:?}..={hi:?}"
    );
}
