//! A listener before authentication, over real sockets: the fallback service that answers
//! whatever does not authenticate (`docs/PROTOCOL.md` §19), the cap on unauthenticated
//! connections, and the prober's FIN that ends a drain.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_core::{ClientConfig, Connection, ServerConfig, Session};
use port_driver::Options;

use crate::Harness;
use crate::support::{
    EchoServer, USER_ID, client_setup, patient_config, payload, read_until_closed, run, server_key,
    sleep, tcp_accept, tcp_bind, with_timeout,
};

/// A stand-in for the web server behind a PORT port: reads a request until a blank line or
/// the client's FIN, records it, and answers with a response that quotes it, then closes.
struct Fallback {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// The response a [`Fallback`] gives to `request`.
fn response_to(request: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        request.len()
    )
    .into_bytes();
    response.extend_from_slice(request);
    response
}

impl Fallback {
    async fn start<H: Harness>() -> Fallback {
        let listener = tcp_bind::<H>().expect("bind the fallback");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        drop(H::spawn(async move {
            while let Ok(mut socket) = tcp_accept(&*listener).await {
                let record = record.clone();
                drop(H::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket.write_all(&response_to(&request)).await;
                    let _ = socket.close().await;
                    record.lock().expect("not poisoned").push(request);
                }));
            }
        }));
        Fallback { addr, seen }
    }

    fn seen(&self) -> Vec<Vec<u8>> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

/// Sends `bytes` on a raw connection to `addr` (then its FIN, with `fin`) and reads what
/// comes back until the server ends the connection.
async fn probe<H: Harness>(addr: SocketAddr, bytes: &[u8], fin: bool) -> Vec<u8> {
    let mut socket = H::runtime().connect(addr).await.expect("raw connect");
    socket.write_all(bytes).await.expect("write the probe");
    socket.flush().await.expect("flush the probe");
    if fin {
        socket.close().await.expect("half-close the probe");
    }
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    answer
}

/// The client INIT a PORT client of `key` sends first (for a replay).
fn client_init(setup: &ClientConfig) -> Vec<u8> {
    let now = Instant::now();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let mut client = Connection::client(setup, now, unix, [9; 32]);
    client.poll_transmit(now).expect("a client INIT").to_vec()
}

/// An HTTP GET (shorter than an INIT's first 88 bytes), 1000 random bytes and a replayed
/// INIT each reach the fallback byte for byte and get its answer byte for byte, while a PORT
/// client on the same port connects and echoes; none reaches the application.
pub fn probes_get_the_fallbacks_answer<H: Harness>() {
    run::<H, _>("probes_get_the_fallbacks_answer", async {
        let key = server_key(21);
        let config = patient_config();
        let fallback = Fallback::start::<H>().await;
        let options = Options::for_config(&config).with_fallback(fallback.addr);
        let server =
            EchoServer::start_with::<H>(ServerConfig::new(config.clone(), key.clone()), options)
                .await;
        let limit = Duration::from_secs(10);

        let get = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
        let answer = with_timeout::<H, _>("GET", limit, probe::<H>(server.addr, &get, false)).await;
        assert_eq!(answer, response_to(&get), "{}: the GET's answer", H::NAME);

        let random = payload(21, 1000);
        let answer =
            with_timeout::<H, _>("random", limit, probe::<H>(server.addr, &random, true)).await;
        assert_eq!(
            answer,
            response_to(&random),
            "{}: random bytes' answer",
            H::NAME
        );

        // A real client connects and echoes; its INIT, sent again, goes to the fallback.
        let setup = client_setup(&config, &key, b"real");
        let init = client_init(&setup);
        let mut first = H::runtime()
            .connect(server.addr)
            .await
            .expect("raw connect");
        first.write_all(&init).await.expect("write the INIT");
        let mut reply = [0u8; 1];
        with_timeout::<H, _>("server INIT", limit, first.read_exact(&mut reply))
            .await
            .expect("the server answers the genuine INIT");
        let answer =
            with_timeout::<H, _>("replay", limit, probe::<H>(server.addr, &init, true)).await;
        assert_eq!(
            answer,
            response_to(&init),
            "{}: the replay's answer",
            H::NAME
        );

        let mut client = port_driver::connect(&H::runtime(), server.addr, &setup)
            .await
            .expect("a PORT client beside the fallback");
        assert_eq!(client.user_id(), Some(USER_ID));
        client.send("hello").await.expect("send");
        let echo = client.recv().await.expect("recv").expect("an echo");
        assert_eq!(&echo[..], b"hello");
        client.close().await.expect("a clean close");

        let mut seen = fallback.seen();
        seen.sort();
        let mut expected = vec![get, random, init];
        expected.sort();
        assert_eq!(seen, expected, "{}: what the fallback read", H::NAME);
        assert_eq!(
            server.incomings(),
            2,
            "the raw INIT and the client, no probe"
        );
    });
}

/// With a cap of 4 unauthenticated connections, 10 silent ones opened one after the other:
/// the oldest 6 are closed, the newest 4 stay open, and a PORT client still connects (the
/// oldest remaining one makes room for it) and echoes.
pub fn the_oldest_unauthenticated_connection_goes_first<H: Harness>() {
    run::<H, _>("the_oldest_unauthenticated_connection_goes_first", async {
        let key = server_key(22);
        let config = patient_config();
        let options = Options::for_config(&config).with_max_unauthenticated(4);
        let server =
            EchoServer::start_with::<H>(ServerConfig::new(config.clone(), key.clone()), options)
                .await;
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(
                H::runtime()
                    .connect(server.addr)
                    .await
                    .expect("raw connect"),
            );
            // Accepted in this order.
            sleep::<H>(Duration::from_millis(20)).await;
        }
        // Boxed: the checks would make this future too large for a debug build's test stack.
        let _open = Box::pin(oldest_closed_newest_open::<H>(silent, 6)).await;
        let setup = client_setup(&config, &key, b"after the flood");
        let mut client = Box::pin(port_driver::connect(&H::runtime(), server.addr, &setup))
            .await
            .expect("a PORT client past the cap");
        client.send("hello").await.expect("send");
        let echo = client.recv().await.expect("recv").expect("an echo");
        assert_eq!(&echo[..], b"hello");
        client.close().await.expect("a clean close");
    });
}

/// Checks that the first `closed` of `sockets` were closed by the server (receiving
/// nothing) and the others are still open; returns the open ones.
async fn oldest_closed_newest_open<H: Harness>(
    sockets: Vec<Box<dyn port_driver::Socket>>,
    closed: usize,
) -> Vec<Box<dyn port_driver::Socket>> {
    let limit = Duration::from_secs(10);
    let mut open = Vec::new();
    for (i, mut socket) in sockets.into_iter().enumerate() {
        if i < closed {
            let (received, _) =
                with_timeout::<H, _>("eviction", limit, read_until_closed(&mut socket)).await;
            assert_eq!(received, 0, "{}: an evicted connection got bytes", H::NAME);
        } else {
            open.push(socket);
        }
    }
    let mut buf = [0u8; 1];
    for socket in &mut open {
        let still = futures_lite::future::or(
            async { socket.read(&mut buf).await.map(Some).unwrap_or(Some(0)) },
            async {
                sleep::<H>(Duration::from_millis(200)).await;
                None
            },
        )
        .await;
        assert_eq!(still, None, "{}: a newer connection was closed", H::NAME);
    }
    open
}

/// A prober that sends a few bytes and then its FIN is closed at once, long before the drain
/// deadline, and gets nothing.
pub fn a_probers_fin_ends_its_drain<H: Harness>() {
    run::<H, _>("a_probers_fin_ends_its_drain", async {
        let config = patient_config();
        let server =
            EchoServer::start::<H>(ServerConfig::new(config.clone(), server_key(23))).await;
        let start = Instant::now();
        let limit = config.drain_min() / 2;
        let answer = with_timeout::<H, _>(
            "a closed drain",
            limit,
            probe::<H>(server.addr, b"hi", true),
        )
        .await;
        assert!(answer.is_empty(), "{}: the prober got {answer:?}", H::NAME);
        assert!(start.elapsed() < config.drain_min(), "{}", H::NAME);
    });
}
