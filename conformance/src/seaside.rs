//! The seaside profile (upstream SeasideVPN's PORT, over two TCP connections) over real
//! loopback sockets: echo over the second connection, a rejection status, the per-user
//! socket's source rule and deadline, a second connection that fails or hangs, and many
//! clients at once. Written once, run on every runtime by
//! [`conformance_tests!`](crate::conformance_tests).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_core::seaside::{ClientConfig, Connection, ServerConfig, ServerKey};
use port_core::{CloseReason, Config, Event, Link, Redirect, Session, Status};
use port_driver::{
    Acceptor, BoxFuture, Error, Listener, Runtime, Socket, Stream, Timer, connect_seaside,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::Harness;
use crate::support::{LOOPBACK, MARGIN, run, sleep, tcp_accept, tcp_bind, with_timeout};

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([11; 32]))
}

fn config(timeout: Duration) -> Config {
    Config::builder()
        .handshake_timeout(timeout)
        .build()
        .expect("a valid configuration")
}

fn setup(timeout: Duration, token: &'static str) -> ClientConfig {
    ClientConfig::new(config(timeout), key().client_key(), token).expect("a valid token")
}

/// How an accepted stream of the [`listener`] ended: its user id, or the error.
type End = Result<u32, Error>;

/// A seaside listener on `H` that echoes for token `good`, rejects `bad` with
/// `RegistrationError`, and reports each accepted stream's end.
async fn listener<H: Harness>(timeout: Duration) -> (SocketAddr, smol::channel::Receiver<End>) {
    let listener = Listener::bind_seaside(
        &H::runtime(),
        LOOPBACK,
        ServerConfig::new(config(timeout), key()),
    )
    .await
    .expect("bind a seaside listener");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (ends, ended) = smol::channel::unbounded();
    drop(H::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            if &incoming.token()[..] == b"bad" {
                incoming.reject(Status::RegistrationError).expect("reject");
                continue;
            }
            let port = incoming.assigned_user_id().expect("a per-user socket");
            let stream = incoming.accept(1).expect("accept");
            let ends = ends.clone();
            drop(H::spawn(async move {
                let _ = ends.send(echo(stream, port).await).await;
            }));
        }
    }));
    (addr, ended)
}

async fn echo(mut stream: Stream, port: u16) -> End {
    loop {
        match stream.recv().await? {
            Some(m) => {
                // The id given to `accept` was replaced by the per-user port.
                assert_eq!(stream.user_id(), Some(port.into()));
                stream.send(m).await?;
            }
            None => return stream.close().await.map(|()| u32::from(port)),
        }
    }
}

/// The next end the listener reports, within a generous ceiling.
async fn next_end<H: Harness>(ended: &smol::channel::Receiver<End>) -> End {
    with_timeout::<H, _>("the listener's end", Duration::from_secs(20), ended.recv())
        .await
        .expect("the listener is running")
}

/// Echo of 0 B, 1 B, 1400 B and the largest seaside message over the second connection, a
/// message one byte too large refused at once, a clean close on both sides, and the
/// per-user socket gone once it took its one connection.
pub fn echo_over_the_second_connection<H: Harness>() {
    run::<H, _>("seaside echo", async {
        let (addr, ended) = listener::<H>(Duration::from_secs(5)).await;
        let rt = H::runtime();
        let mut stream = connect_seaside(&rt, addr, &setup(Duration::from_secs(5), "good"))
            .await
            .expect("connect");
        let user_id = stream.user_id().expect("a user id");
        assert!(
            user_id != 0 && user_id != u32::from(addr.port()),
            "{user_id}"
        );
        for len in [0usize, 1, 1400, 65_495] {
            let m = vec![(len % 251) as u8; len];
            stream.send(m.clone()).await.expect("send");
            assert_eq!(stream.recv().await.expect("recv").expect("a message"), m);
        }
        assert!(matches!(
            stream.send(vec![0u8; 65_496]).await,
            Err(Error::Session(port_core::Error::MessageTooLarge { .. }))
        ));
        stream.close().await.expect("a clean close");
        assert_eq!(next_end::<H>(&ended).await.expect("a clean end"), user_id);
        let port = u16::try_from(user_id).expect("a port");
        assert!(
            rt.connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .is_err()
        );
    });
}

/// The listener's rejection status reaches the client.
pub fn rejection_status_reaches_client<H: Harness>() {
    run::<H, _>("seaside rejection", async {
        let (addr, _ended) = listener::<H>(Duration::from_secs(5)).await;
        let result =
            connect_seaside(&H::runtime(), addr, &setup(Duration::from_secs(5), "bad")).await;
        match result {
            Err(Error::Rejected(Status::RegistrationError)) => {}
            Err(e) => panic!("{}: unexpected error {e}", H::NAME),
            Ok(_) => panic!("{}: a rejected client connected", H::NAME),
        }
    });
}

/// A client core run by hand on `H`'s sockets, for scenarios that need to stand between
/// the two connections.
struct ByHand {
    client: Connection,
    first: Box<dyn Socket>,
    port: u16,
}

impl ByHand {
    /// Runs the handshake over connection 1 until the client asks for the second connection.
    async fn handshake<H: Harness>(addr: SocketAddr, timeout: Duration) -> ByHand {
        let rt = H::runtime();
        let mut client = Connection::client(&setup(timeout, "good"), rt.now(), [5; 32]);
        let mut first = rt.connect(addr).await.expect("connect");
        let init = client.poll_transmit(rt.now()).expect("the INIT");
        first.write_all(&init).await.expect("write the INIT");
        let mut buf = [0u8; 4096];
        loop {
            let n = first.read(&mut buf).await.expect("read");
            assert!(n > 0, "the listener closed before answering");
            client.handle_input(rt.now(), &buf[..n]);
            if let Some(Redirect::Move { port }) = client.redirect() {
                return ByHand {
                    client,
                    first,
                    port,
                };
            }
        }
    }

    /// Sends `message` over `second` and returns its echo.
    async fn echo<H: Harness>(&mut self, second: &mut Box<dyn Socket>, message: &[u8]) -> Vec<u8> {
        let rt = H::runtime();
        self.client.handle_link_up(rt.now(), Link::STREAM);
        self.client.send(message.to_vec().into()).expect("send");
        while let Some(bytes) = self.client.poll_transmit(rt.now()) {
            second.write_all(&bytes).await.expect("write");
        }
        let mut buf = [0u8; 4096];
        loop {
            while let Some(event) = self.client.poll_event() {
                if let Event::Data(m) = event {
                    return m.to_vec();
                }
            }
            let n = second.read(&mut buf).await.expect("read");
            assert!(n > 0, "the listener closed the second connection");
            self.client.handle_input(rt.now(), &buf[..n]);
        }
    }
}

/// Someone else (another source address) who reaches the per-user port first is turned away
/// at once, and the client's place is still there.
pub fn per_user_socket_only_takes_the_clients_address<H: Harness>() {
    run::<H, _>("seaside per-user source rule", async {
        let (addr, _ended) = listener::<H>(Duration::from_secs(5)).await;
        let mut hand = ByHand::handshake::<H>(addr, Duration::from_secs(5)).await;
        let port = hand.port;
        // A blocking socket from 127.0.0.2: loopback answers at once, so it blocks no one.
        let turned_away = std::thread::spawn(move || intruder(port))
            .join()
            .expect("intruder");
        assert!(turned_away, "the intruder was not closed at once");
        let mut second = H::runtime()
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("the client's connect");
        assert_eq!(hand.echo::<H>(&mut second, b"mine").await, b"mine");
        drop(hand.first);
    });
}

/// Connects to `port` from 127.0.0.2 and reports whether the connection was closed (or reset)
/// within 2 s without a byte.
fn intruder(port: u16) -> bool {
    use std::io::Read;

    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .expect("bind 127.0.0.2");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("reach the port");
    let mut tcp = std::net::TcpStream::from(socket);
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a timeout");
    let mut buf = [0u8; 16];
    match tcp.read(&mut buf) {
        Ok(0) => true,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ),
        Ok(_) => false,
    }
}

/// A client that never comes to its per-user socket: the listener's session ends with a
/// handshake timeout and the socket is closed.
pub fn per_user_socket_closes_when_nobody_comes<H: Harness>() {
    run::<H, _>("seaside per-user deadline", async {
        let timeout = Duration::from_millis(400);
        let (addr, ended) = listener::<H>(timeout).await;
        let hand = ByHand::handshake::<H>(addr, timeout).await;
        let end = next_end::<H>(&ended).await;
        assert!(
            matches!(end, Err(Error::Closed(CloseReason::HandshakeTimeout))),
            "{end:?}"
        );
        let port = hand.port;
        assert!(
            H::runtime()
                .connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .is_err()
        );
    });
}

/// A listener that answers the INIT with a port where nothing listens: the client's connect is
/// refused and `connect_seaside` fails instead of hanging.
pub fn failed_second_connection_is_reported<H: Harness>() {
    run::<H, _>("seaside refused second connection", async {
        let rt = H::runtime();
        let tcp = tcp_bind::<H>().expect("bind");
        let addr = tcp.local_addr().expect("an address");
        let dead_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("an address").port()
        };
        let server = ServerConfig::new(config(Duration::from_secs(5)), key());
        drop(H::spawn(answer_with_port::<H>(tcp, server, dead_port)));
        let result = with_timeout::<H, _>(
            "connect_seaside",
            Duration::from_secs(4),
            connect_seaside(&rt, addr, &setup(Duration::from_secs(5), "good")),
        )
        .await;
        assert!(matches!(result, Err(Error::Io(_))), "{:?}", result.err());
    });
}

/// Serves one client INIT by hand, accepting it with `port` as the user id, then waits.
async fn answer_with_port<H: Harness>(tcp: Box<dyn Acceptor>, server: ServerConfig, port: u16) {
    let rt = H::runtime();
    let mut sock = tcp_accept(&*tcp).await.expect("accept");
    let mut conn = Connection::server(&server, rt.now(), [3; 32]);
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.read(&mut buf).await.expect("read");
        conn.handle_input(rt.now(), &buf[..n]);
        if let Some(Event::Authenticate { .. }) = conn.poll_event() {
            conn.accept(port.into()).expect("accept");
            let reply = conn.poll_transmit(rt.now()).expect("the server INIT");
            sock.write_all(&reply).await.expect("write");
            sleep::<H>(Duration::from_secs(2)).await;
            return;
        }
    }
}

/// A runtime whose connects hang unless they go to `open` (a second connection whose SYN
/// gets no answer); everything else is `inner`'s.
#[derive(Debug)]
struct HangingConnects {
    inner: Arc<dyn Runtime>,
    open: SocketAddr,
}

impl Runtime for HangingConnects {
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn new_timer(&self, deadline: Instant) -> std::pin::Pin<Box<dyn Timer>> {
        self.inner.new_timer(deadline)
    }
    fn spawn(&self, future: BoxFuture<()>) {
        self.inner.spawn(future);
    }
    fn resolve(&self, host: String) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        self.inner.resolve(host)
    }
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Socket>>> {
        if addr == self.open {
            return self.inner.connect(addr);
        }
        Box::pin(std::future::pending())
    }
    fn bind(&self, addr: SocketAddr) -> io::Result<Box<dyn Acceptor>> {
        self.inner.bind(addr)
    }
}

/// The second connect never completes: the session's own deadline (a full handshake timeout
/// after the server INIT) ends the wait.
pub fn hanging_second_connect_ends_at_the_handshake_timeout<H: Harness>() {
    run::<H, _>("seaside hanging second connect", async {
        let timeout = Duration::from_millis(300);
        let (addr, _ended) = listener::<H>(Duration::from_secs(5)).await;
        let rt: Arc<dyn Runtime> = Arc::new(HangingConnects {
            inner: H::runtime(),
            open: addr,
        });
        let start = Instant::now();
        let result = with_timeout::<H, _>(
            "the session's deadline",
            Duration::from_secs(5),
            connect_seaside(&rt, addr, &setup(timeout, "good")),
        )
        .await;
        assert!(
            matches!(result, Err(Error::Closed(CloseReason::HandshakeTimeout))),
            "{:?}",
            result.err()
        );
        // The server INIT came first, then a full timeout for the connect.
        let waited = start.elapsed();
        assert!(waited >= timeout && waited < timeout + MARGIN, "{waited:?}");
    });
}

/// Many clients at once, each holding its session open until all are connected: every one
/// gets a per-user socket of its own (the user ids, ports of sockets alive at the same time,
/// all differ) and ends cleanly.
pub fn many_clients_get_their_own_per_user_sockets<H: Harness>() {
    const CLIENTS: usize = 40;
    run::<H, _>("seaside many clients", async {
        let (addr, ended) = listener::<H>(Duration::from_secs(10)).await;
        let (connected, all) = smol::channel::unbounded::<()>();
        let (release, released) = smol::channel::bounded::<()>(1);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (connected, released) = (connected.clone(), released.clone());
                H::spawn(async move {
                    let rt = H::runtime();
                    let mut stream =
                        connect_seaside(&rt, addr, &setup(Duration::from_secs(10), "good"))
                            .await
                            .expect("connect");
                    let message = format!("client {i}").into_bytes();
                    stream.send(message.clone()).await.expect("send");
                    assert_eq!(
                        stream.recv().await.expect("recv").expect("a message"),
                        message
                    );
                    let user_id = stream.user_id().expect("a user id");
                    connected.send(()).await.expect("the test is waiting");
                    // Hold the session until every client is connected.
                    let _ = released.recv().await;
                    stream.close().await.expect("a clean close");
                    user_id
                })
            })
            .collect();
        for _ in 0..CLIENTS {
            all.recv().await.expect("a client connected");
        }
        drop(release);
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            CLIENTS,
            "two clients shared a per-user socket: {ids:?}"
        );
        for _ in 0..CLIENTS {
            assert!(next_end::<H>(&ended).await.is_ok());
        }
    });
}
