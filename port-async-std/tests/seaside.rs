//! The seaside profile over real loopback sockets on smol (and one run on async-std): echo
//! over the second connection, a rejection status, the per-user socket's deadline.

use std::net::SocketAddr;
use std::time::Duration;

use port_async_std::{AsyncStd, Error, Smol};
use port_core::seaside::{ClientConfig, ServerConfig, ServerKey};
use port_core::{CloseReason, Config, Status};
use port_driver::Runtime;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key() -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([12; 32]))
}

fn config(timeout: Duration) -> Config {
    Config::builder()
        .handshake_timeout(timeout)
        .build()
        .unwrap()
}

/// Echoes for token `good`, rejects `bad` with `TokenParseError`, and sends each accepted
/// stream's end to `ends`.
fn listener(
    runtime: impl Runtime + Clone,
    timeout: Duration,
) -> (SocketAddr, async_channel_like::Receiver) {
    let listener = port_async_std::Listener::bind_seaside_on(
        runtime.clone(),
        "127.0.0.1:0",
        ServerConfig::new(config(timeout), key()),
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = async_channel_like::channel();
    runtime.spawn(Box::pin(async move {
        while let Ok(incoming) = listener.accept().await {
            if &incoming.token()[..] == b"bad" {
                incoming.reject(Status::TokenParseError).unwrap();
                continue;
            }
            let mut stream = incoming.accept(1).unwrap();
            let tx = tx.clone();
            smol::spawn(async move {
                let end = loop {
                    match stream.recv().await {
                        Ok(Some(m)) => stream.send(m).await.unwrap(),
                        Ok(None) => break stream.close().await,
                        Err(e) => break Err(e),
                    }
                };
                tx.send(end);
            })
            .detach();
        }
    }));
    (addr, rx)
}

/// A tiny unbounded channel on std primitives and a smol timer poll, so the test needs no
/// extra dependency.
mod async_channel_like {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use port_async_std::Error;

    type Slot = Arc<Mutex<Vec<Result<(), Error>>>>;

    #[derive(Clone)]
    pub struct Sender(Slot);
    pub struct Receiver(Slot);

    pub fn channel() -> (Sender, Receiver) {
        let slot = Slot::default();
        (Sender(slot.clone()), Receiver(slot))
    }

    impl Sender {
        pub fn send(&self, value: Result<(), Error>) {
            self.0.lock().unwrap().push(value);
        }
    }

    impl Receiver {
        /// The next value, waiting at most `limit`.
        pub async fn recv(&self, limit: Duration) -> Option<Result<(), Error>> {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                if let Some(v) = self.0.lock().unwrap().pop() {
                    return Some(v);
                }
                smol::Timer::after(Duration::from_millis(10)).await;
            }
            None
        }
    }
}

fn echo_on(runtime: impl Runtime + Clone) {
    smol::block_on(async {
        let timeout = Duration::from_secs(5);
        let (addr, ends) = listener(runtime.clone(), timeout);
        let setup = ClientConfig::new(config(timeout), key().client_key(), "good").unwrap();
        let mut stream = port_async_std::connect_seaside_on(runtime, addr, &setup)
            .await
            .unwrap();
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
        stream.close().await.unwrap();
        let end = ends
            .recv(Duration::from_secs(5))
            .await
            .expect("the listener side ended");
        assert!(end.is_ok(), "{end:?}");
    });
}

#[test]
fn echo_over_the_second_connection_on_smol() {
    echo_on(Smol);
}

#[test]
fn echo_over_the_second_connection_on_async_std() {
    echo_on(AsyncStd);
}

#[test]
fn a_rejection_status_surfaces_on_the_client_on_smol() {
    smol::block_on(async {
        let timeout = Duration::from_secs(5);
        let (addr, _ends) = listener(Smol, timeout);
        let setup = ClientConfig::new(config(timeout), key().client_key(), "bad").unwrap();
        match port_async_std::connect_seaside_on(Smol, addr, &setup).await {
            Err(Error::Rejected(Status::TokenParseError)) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a rejected client connected"),
        }
    });
}

#[test]
fn the_per_user_socket_closes_when_nobody_comes_on_smol() {
    use port_core::Event;
    use port_core::seaside::Connection;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use std::time::Instant;

    smol::block_on(async {
        let timeout = Duration::from_millis(400);
        let (addr, ends) = listener(Smol, timeout);
        // A client that completes the INIT but never opens the second connection.
        let setup = ClientConfig::new(config(timeout), key().client_key(), "good").unwrap();
        let mut client = Connection::client(&setup, Instant::now(), [6; 32]);
        let mut first = smol::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(&client.poll_transmit(Instant::now()).unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let port = loop {
            let n = first.read(&mut buf).await.unwrap();
            assert!(n > 0);
            client.handle_input(Instant::now(), &buf[..n]);
            if let Some(Event::Redirect { port }) = client.poll_event() {
                break port;
            }
        };
        let end = ends
            .recv(Duration::from_secs(5))
            .await
            .expect("the session ends by itself");
        assert!(
            matches!(end, Err(Error::Closed(CloseReason::HandshakeTimeout))),
            "{end:?}"
        );
        assert!(
            smol::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        );
    });
}

#[test]
fn the_per_user_socket_only_takes_the_clients_address_on_smol() {
    use port_core::Event;
    use port_core::seaside::Connection;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use std::io::Read;
    use std::time::Instant;

    smol::block_on(async {
        let timeout = Duration::from_secs(5);
        let (addr, _ends) = listener(Smol, timeout);
        let setup = ClientConfig::new(config(timeout), key().client_key(), "good").unwrap();
        let mut client = Connection::client(&setup, Instant::now(), [7; 32]);
        let mut first = smol::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(&client.poll_transmit(Instant::now()).unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let port = loop {
            let n = first.read(&mut buf).await.unwrap();
            assert!(n > 0);
            client.handle_input(Instant::now(), &buf[..n]);
            if let Some(Event::Redirect { port }) = client.poll_event() {
                break port;
            }
        };
        // Someone else (another source address) reaches the port first: turned away at once.
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let refused = smol::unblock(move || {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            socket.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())?;
            socket.connect(&target.into())?;
            let mut intruder: std::net::TcpStream = socket.into();
            intruder.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut byte = [0u8; 1];
            Ok::<_, std::io::Error>(intruder.read(&mut byte))
        })
        .await
        .unwrap();
        assert!(
            matches!(refused, Ok(0))
                || refused
                    .as_ref()
                    .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut),
            "{refused:?}"
        );
        // The client's place is still there.
        let mut second = smol::net::TcpStream::connect(target).await.unwrap();
        client.handle_redirected(Instant::now());
        client.send("mine").unwrap();
        while let Some(bytes) = client.poll_transmit(Instant::now()) {
            second.write_all(&bytes).await.unwrap();
        }
        let echoed = loop {
            if let Some(Event::Data(m)) = client.poll_event() {
                break m;
            }
            let n = second.read(&mut buf).await.unwrap();
            assert!(n > 0, "the listener closed the second connection");
            client.handle_input(Instant::now(), &buf[..n]);
        };
        assert_eq!(&echoed[..], b"mine");
    });
}
