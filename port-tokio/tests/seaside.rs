//! The seaside profile over real loopback sockets on tokio: echo over the second connection,
//! a rejection status, the per-user socket's deadline and its source rule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey};
use port_core::{CloseReason, Config, Event, Status};
use port_tokio::Error;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([11; 32]))
}

fn config(timeout: Duration) -> Config {
    Config::builder()
        .handshake_timeout(timeout)
        .build()
        .unwrap()
}

/// A listener that echoes for token `good`, rejects `bad` with `RegistrationError`, and
/// reports each accepted stream's end on `ends`.
async fn listener(
    timeout: Duration,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Result<u32, Error>>,
) {
    let listener = port_tokio::Listener::bind_seaside(
        "127.0.0.1:0",
        ServerConfig::new(config(timeout), key()),
    )
    .await
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            if &incoming.token()[..] == b"bad" {
                incoming.reject(Status::RegistrationError).unwrap();
                continue;
            }
            let port = incoming.assigned_user_id().expect("a per-user socket");
            let mut stream = incoming.accept(1).unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let end = loop {
                    match stream.recv().await {
                        Ok(Some(m)) => {
                            // The id given to `accept` was replaced by the per-user port.
                            assert_eq!(stream.user_id(), Some(port.into()));
                            stream.send(m).await.unwrap()
                        }
                        Ok(None) => break stream.close().await.map(|()| u32::from(port)),
                        Err(e) => break Err(e),
                    }
                };
                let _ = tx.send(end);
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn echo_over_the_second_connection() {
    let (addr, mut ends) = listener(Duration::from_secs(5)).await;
    let setup =
        ClientConfig::new(config(Duration::from_secs(5)), key().client_key(), "good").unwrap();
    let mut stream = port_tokio::connect_seaside(addr, &setup).await.unwrap();
    let user_id = stream.user_id().unwrap();
    assert!(
        user_id != 0 && user_id != u32::from(addr.port()),
        "{user_id}"
    );
    for len in [0usize, 1, 1400, 65_495] {
        let m = vec![(len % 251) as u8; len];
        stream.send(m.clone()).await.unwrap();
        assert_eq!(stream.recv().await.unwrap().unwrap(), m);
    }
    assert!(matches!(
        stream.send(vec![0u8; 65_496]).await,
        Err(Error::Session(port_core::Error::MessageTooLarge { .. }))
    ));
    stream.close().await.unwrap();
    assert_eq!(ends.recv().await.unwrap().unwrap(), user_id);
    // The per-user socket took its one connection and is gone.
    let port = u16::try_from(user_id).unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_rejection_status_surfaces_on_the_client() {
    let (addr, _ends) = listener(Duration::from_secs(5)).await;
    let setup =
        ClientConfig::new(config(Duration::from_secs(5)), key().client_key(), "bad").unwrap();
    match port_tokio::connect_seaside(addr, &setup).await {
        Err(Error::Rejected(Status::RegistrationError)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a rejected client connected"),
    }
}

/// Runs a client core by hand over connection 1 until it asks for the second connection.
async fn handshake_by_hand(addr: SocketAddr, timeout: Duration) -> (Connection, TcpStream, u16) {
    let setup = ClientConfig::new(config(timeout), key().client_key(), "good").unwrap();
    let mut client = Connection::client(&setup, Instant::now(), [5; 32]);
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(&client.poll_transmit(Instant::now()).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = first.read(&mut buf).await.unwrap();
        assert!(n > 0, "the listener closed before answering");
        client.handle_input(Instant::now(), &buf[..n]);
        if let Some(Event::Redirect { port }) = client.poll_event() {
            return (client, first, port);
        }
    }
}

/// Sends `message` over `second` with the hand-driven client and returns its echo.
async fn echo_by_hand(client: &mut Connection, second: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    client.handle_redirected(Instant::now());
    client.send(message.to_vec()).unwrap();
    while let Some(bytes) = client.poll_transmit(Instant::now()) {
        second.write_all(&bytes).await.unwrap();
    }
    let mut buf = [0u8; 4096];
    loop {
        while let Some(event) = client.poll_event() {
            if let Event::Data(m) = event {
                return m.to_vec();
            }
        }
        let n = second.read(&mut buf).await.unwrap();
        assert!(n > 0, "the listener closed the second connection");
        client.handle_input(Instant::now(), &buf[..n]);
    }
}

#[tokio::test]
async fn the_per_user_socket_only_takes_the_clients_address() {
    let (addr, _ends) = listener(Duration::from_secs(5)).await;
    let (mut client, _first, port) = handshake_by_hand(addr, Duration::from_secs(5)).await;
    // Someone else (another source address) reaches the port first: turned away at once.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut intruder = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), intruder.read(&mut buf))
        .await
        .expect("the intruder is closed at once, not left waiting");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The client's place is still there.
    let mut second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert_eq!(
        echo_by_hand(&mut client, &mut second, b"mine").await,
        b"mine"
    );
}

#[tokio::test]
async fn the_per_user_socket_closes_when_nobody_comes() {
    let timeout = Duration::from_millis(400);
    let (addr, mut ends) = listener(timeout).await;
    let (_client, _first, port) = handshake_by_hand(addr, timeout).await;
    let end = tokio::time::timeout(Duration::from_secs(5), ends.recv())
        .await
        .expect("the listener's session ends by itself")
        .unwrap();
    assert!(
        matches!(end, Err(Error::Closed(CloseReason::HandshakeTimeout))),
        "{end:?}"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_client_whose_second_connection_fails_reports_it() {
    // A listener that answers the INIT with a port where nothing listens: the client's connect
    // is refused and `connect_seaside` fails instead of hanging.
    let key = key();
    let server = ServerConfig::new(config(Duration::from_secs(5)), key.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    tokio::spawn(async move {
        let (mut sock, _) = tcp.accept().await.unwrap();
        let mut conn = Connection::server(&server, Instant::now(), [3; 32]);
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            conn.handle_input(Instant::now(), &buf[..n]);
            if let Some(Event::Authenticate { .. }) = conn.poll_event() {
                conn.accept(dead_port.into()).unwrap();
                let reply = conn.poll_transmit(Instant::now()).unwrap();
                sock.write_all(&reply).await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                return;
            }
        }
    });
    let setup =
        ClientConfig::new(config(Duration::from_secs(5)), key.client_key(), "good").unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(4),
        port_tokio::connect_seaside(addr, &setup),
    )
    .await
    .expect("no hang");
    assert!(matches!(result, Err(Error::Io(_))), "{:?}", result.err());
}

#[tokio::test]
async fn a_driver_without_a_redirector_says_so() {
    use tokio_util::compat::TokioAsyncReadCompatExt;

    let (addr, _ends) = listener(Duration::from_secs(5)).await;
    let setup =
        ClientConfig::new(config(Duration::from_secs(5)), key().client_key(), "good").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let session = Box::new(Connection::client(&setup, Instant::now(), [8; 32]));
    let result = port_driver::connect_session(
        &port_tokio::Tokio,
        tcp.compat(),
        addr,
        session,
        Duration::from_secs(5),
    )
    .await;
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected without a second connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_each_get_their_own_per_user_socket() {
    let (addr, mut ends) = listener(Duration::from_secs(10)).await;
    // Every client holds its session open until all are connected, so the ids (ports) are
    // of sockets alive at the same time and must differ.
    let all_up = std::sync::Arc::new(tokio::sync::Barrier::new(40));
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let all_up = all_up.clone();
        tasks.push(tokio::spawn(async move {
            let setup =
                ClientConfig::new(config(Duration::from_secs(10)), key().client_key(), "good")
                    .unwrap();
            let mut stream = port_tokio::connect_seaside(addr, &setup).await.unwrap();
            let message = format!("client {i}").into_bytes();
            stream.send(message.clone()).await.unwrap();
            assert_eq!(stream.recv().await.unwrap().unwrap(), message);
            let user_id = stream.user_id().unwrap();
            all_up.wait().await;
            stream.close().await.unwrap();
            user_id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        40,
        "two clients shared a per-user socket: {ids:?}"
    );
    for _ in 0..40 {
        assert!(ends.recv().await.unwrap().is_ok());
    }
}

/// A connect that never completes (a second connection whose SYN gets no answer).
struct Hanging;

impl port_driver::Redirector<tokio_util::compat::Compat<TcpStream>> for Hanging {
    fn connect(
        &self,
        _addr: SocketAddr,
    ) -> port_driver::BoxFuture<std::io::Result<tokio_util::compat::Compat<TcpStream>>> {
        Box::pin(std::future::pending())
    }
    fn bind_one(
        &self,
        _local: std::net::IpAddr,
        _peer: std::net::IpAddr,
    ) -> std::io::Result<(
        u16,
        port_driver::BoxFuture<std::io::Result<tokio_util::compat::Compat<TcpStream>>>,
    )> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[tokio::test]
async fn a_second_connect_that_hangs_ends_at_the_handshake_timeout() {
    use tokio_util::compat::TokioAsyncReadCompatExt;

    let timeout = Duration::from_millis(300);
    let (addr, _ends) = listener(Duration::from_secs(5)).await;
    let setup = ClientConfig::new(config(timeout), key().client_key(), "good").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let session = Box::new(Connection::client(&setup, Instant::now(), [9; 32]));
    let start = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        port_driver::connect_session_with(
            &port_tokio::Tokio,
            tcp.compat(),
            addr,
            session,
            timeout,
            Some(std::sync::Arc::new(Hanging)),
        ),
    )
    .await
    .expect("the session's deadline ends the wait");
    assert!(
        matches!(result, Err(Error::Closed(CloseReason::HandshakeTimeout))),
        "{:?}",
        result.err()
    );
    // The server INIT came first, then a full timeout for the connect.
    assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
}
