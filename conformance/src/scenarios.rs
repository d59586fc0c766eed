//! The scenarios, each a plain function generic over the [`Harness`]; the test files
//! instantiate every one of them per runtime with [`conformance_tests!`](crate::conformance_tests).
//!
//! Each scenario runs on its own fresh listener (loopback, port 0), panics on any deviation,
//! and is bounded by [`SCENARIO_LIMIT`](crate::support::SCENARIO_LIMIT).

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_core::{CloseReason, ServerConfig, ServerKey, Shape};
use port_driver::{Error, ReadHalf, Stream, WriteHalf};

use crate::Harness;
use crate::support::{
    EchoServer, MARGIN, REJECTED_TOKEN, REJECTION, Relay, USER_ID, below_or_eq, bind, client_setup,
    fast_config, patient_config, payload, read_until_closed, rng, run, run_alone, sample,
    server_key, sleep, with_timeout,
};

/// The sizes of the echo scenarios: empty, one byte, 1 KiB, 64 KiB and 1 MiB.
pub const SIZES: [usize; 5] = [0, 1, 1024, 64 * 1024, 1024 * 1024];

/// True for the errors of a transport that ended without TERM.
fn is_transport_end(error: &Error) -> bool {
    matches!(error, Error::TransportClosed | Error::Io(_))
}

/// `len` sample bytes drawn from `seed`, the first 8 of them `i` (big-endian): message `i`
/// of a run, recognisable if one goes missing or comes out of order.
fn numbered(seed: u64, len: usize, i: u64) -> Vec<u8> {
    let mut m = sample(seed, len);
    m[..8].copy_from_slice(&i.to_be_bytes());
    m
}

/// Receives the next message, which must be `expected`.
async fn expect_message(stream: &mut Stream, expected: &[u8], what: &str) {
    let message = stream
        .recv()
        .await
        .unwrap_or_else(|e| panic!("{what}: recv failed: {e}"))
        .unwrap_or_else(|| panic!("{what}: the stream ended early"));
    assert_eq!(message.len(), expected.len(), "{what}: length");
    assert!(message[..] == expected[..], "{what}: contents differ");
}

/// Echo round trips of 0 B, 1 B, 1 KiB, 64 KiB and 1 MiB through the message API, one at a
/// time and then all queued at once: contents byte for byte, boundaries kept; then a clean
/// close on both sides.
pub fn message_echo_sizes<H: Harness>() {
    echo_sizes_with::<H>("message_echo_sizes", server_key(1));
}

/// [`message_echo_sizes`] over a shaped key (`docs/PROTOCOL.md` §18): a TLS prefix, the client
/// INIT popcount-encoded, and records of drawn sizes both ways, gathered into writes by the
/// driver.
pub fn shaped_message_echo_sizes<H: Harness>() {
    let shape = Shape::from_params("prefix=@tls&popcount=low&lengths=shaped").expect("a shape");
    echo_sizes_with::<H>("shaped_message_echo_sizes", server_key(1).with_shape(shape));
}

fn echo_sizes_with<H: Harness>(name: &'static str, key: ServerKey) {
    run::<H, _>(name, async {
        let config = patient_config();
        let server = EchoServer::start::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let mut client = port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &key, b"echo"),
        )
        .await
        .expect("connect");
        assert_eq!(client.user_id(), Some(USER_ID));
        for (i, &len) in SIZES.iter().enumerate() {
            let message = payload(i as u64, len);
            client.send(message.clone()).await.expect("send");
            expect_message(&mut client, &message, &format!("echo of {len} B")).await;
        }
        let burst: Vec<Vec<u8>> = SIZES
            .iter()
            .enumerate()
            .map(|(i, &len)| payload(100 + i as u64, len))
            .collect();
        for message in &burst {
            client.send(message.clone()).await.expect("send");
        }
        for message in &burst {
            let what = format!("queued echo of {} B", message.len());
            expect_message(&mut client, message, &what).await;
        }
        client.close().await.expect("a clean close");
        assert_eq!(client.close_reason(), Some(CloseReason::Local));
        server.wait_clean::<H>(1).await;
    });
}

/// The same sizes through the byte-stream API: `write_all` + `flush` on the client while it
/// `read_exact`s the echo, which the server produces with a byte copy loop; then the client
/// shuts its direction down and reads the server's end as EOF.
pub fn byte_stream_echo_sizes<H: Harness>() {
    run::<H, _>("byte_stream_echo_sizes", async {
        let key = server_key(2);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut bytes = incoming.accept(USER_ID).expect("admit");
            // An odd buffer size, so reads do not line up with the client's writes.
            let mut buf = vec![0u8; 5000];
            let mut echoed = 0;
            loop {
                let n = bytes.read(&mut buf).await.expect("server read");
                if n == 0 {
                    break;
                }
                bytes.write_all(&buf[..n]).await.expect("server write");
                bytes.flush().await.expect("server flush");
                echoed += n;
            }
            bytes.close().await.expect("server close");
            echoed
        });
        let client =
            port_driver::connect(&H::runtime(), addr, &client_setup(&config, &key, b"bytes"))
                .await
                .expect("connect");
        let (mut reader, mut writer) = futures_lite::io::split(client);
        for (i, &len) in SIZES.iter().enumerate() {
            let data = payload(200 + i as u64, len);
            let mut back = vec![0u8; len];
            let (written, read) = future::zip(
                async {
                    writer.write_all(&data).await?;
                    writer.flush().await
                },
                reader.read_exact(&mut back),
            )
            .await;
            written.expect("client write");
            read.expect("client read_exact");
            assert!(back == data, "byte echo of {len} B differs");
        }
        writer.close().await.expect("client close");
        let mut rest = Vec::new();
        let n = reader.read_to_end(&mut rest).await.expect("read to EOF");
        assert_eq!(n, 0, "bytes after the echo");
        assert_eq!(server.await, SIZES.iter().sum::<usize>());
    });
}

/// 200 concurrent clients, each echoing 100 messages of varied sizes up to 4 KiB: every echo
/// is correct and every connection ends cleanly on both sides.
///
/// Most messages are small and padding is short, so that unoptimized builds get through the
/// 20 000 round trips quickly; every tenth message is up to 4 KiB.
pub fn many_concurrent_clients<H: Harness>() {
    const CLIENTS: u64 = 200;
    const MESSAGES: u64 = 100;
    const SMALL: usize = 256;
    const LARGE: usize = 4096;
    run_alone::<H, _>("many_concurrent_clients", async {
        let key = server_key(3);
        let config = patient_config()
            .to_builder()
            .tail_length(64)
            .build()
            .expect("a valid configuration");
        let server = EchoServer::start::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let setup = Arc::new(client_setup(&config, &key, b"one of many"));
        let addr = server.addr;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let setup = setup.clone();
                H::spawn(async move {
                    let mut stream = port_driver::connect(&H::runtime(), addr, &setup)
                        .await
                        .unwrap_or_else(|e| panic!("client {c}: connect: {e}"));
                    let mut sizes = rng(c);
                    for m in 0..MESSAGES {
                        let max = if m % 10 == 9 { LARGE } else { SMALL };
                        let message = sample(c * MESSAGES + m, below_or_eq(&mut sizes, max));
                        stream.send(message.clone()).await.expect("send");
                        expect_message(&mut stream, &message, &format!("client {c} #{m}")).await;
                    }
                    stream
                        .close()
                        .await
                        .unwrap_or_else(|e| panic!("client {c}: close: {e}"));
                })
            })
            .collect();
        for client in clients {
            client.await;
        }
        server.wait_clean::<H>(CLIENTS as usize).await;
        assert_eq!(server.incomings(), CLIENTS as usize);
    });
}

/// A token the listener rejects with `Status::Application(4242)`: the client's connect
/// fails with exactly that status; the same listener still accepts other tokens.
pub fn rejection_status_reaches_client<H: Harness>() {
    run::<H, _>("rejection_status_reaches_client", async {
        let key = server_key(4);
        let config = patient_config();
        let server = EchoServer::start::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        match port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &key, REJECTED_TOKEN),
        )
        .await
        {
            Err(Error::Rejected(status)) => assert_eq!(status, REJECTION),
            Err(e) => panic!("expected a rejection with {REJECTION}, got {e:?}"),
            Ok(_) => panic!("a rejected client connected"),
        }
        let mut client = port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &key, b"welcome"),
        )
        .await
        .expect("connect with another token");
        client.send("still serving").await.expect("send");
        expect_message(&mut client, b"still serving", "echo after a rejection").await;
        client.close().await.expect("a clean close");
        server.wait_clean::<H>(1).await;
        assert_eq!(server.incomings(), 2);
    });
}

/// A client holding another server's key: the server stays silent, so the client's connect
/// fails with `Unanswered { closed: false }` after the handshake timeout (and not much later),
/// and the listener never yields an `Incoming` for it.
///
/// The server drains such a connection until a random deadline in `drain_min..=drain_max`
/// and then closes the TCP connection, which the client would see first as
/// `Unanswered { closed: true }`; here the drain starts after the client's handshake timeout.
pub fn unknown_key_times_out_silently<H: Harness>() {
    run::<H, _>("unknown_key_times_out_silently", async {
        let key = server_key(5);
        let stranger = server_key(55);
        let config = fast_config();
        let draining = config
            .to_builder()
            .drain_min(config.handshake_timeout() + MARGIN)
            .drain_max(config.handshake_timeout() + MARGIN * 2)
            .build()
            .expect("a valid configuration");
        let server = EchoServer::start::<H>(ServerConfig::new(draining, key.clone())).await;
        let start = Instant::now();
        let outcome = port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &stranger, b"wrong key"),
        )
        .await;
        let elapsed = start.elapsed();
        match outcome {
            Err(Error::Unanswered { closed: false }) => {}
            Err(e) => panic!("expected Unanswered (timed out), got {e:?}"),
            Ok(_) => panic!("a client with the wrong key connected"),
        }
        let limit = config.handshake_timeout();
        assert!(
            elapsed >= limit,
            "gave up after {elapsed:?}, before {limit:?}"
        );
        assert!(
            elapsed <= limit + MARGIN,
            "gave up after {elapsed:?}, limit {limit:?}"
        );
        assert_eq!(server.incomings(), 0, "an Incoming for an unknown key");
        // The listener itself works: the right key gets through.
        let mut client = port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &key, b"right key"),
        )
        .await
        .expect("connect with the right key");
        client.send("hello").await.expect("send");
        expect_message(&mut client, b"hello", "echo").await;
        client.close().await.expect("a clean close");
        server.wait_clean::<H>(1).await;
        assert_eq!(server.incomings(), 1);
    });
}

/// A raw TCP client that sends nothing and one that sends 5000 bytes of garbage, opened just
/// before a good client: the good client connects and echoes while they hang; each raw socket
/// receives nothing and is closed by the server between `drain_min` and `drain_max` (plus a
/// margin) after its connect; neither ever reaches the application.
pub fn probes_drained_without_blocking_others<H: Harness>() {
    run::<H, _>("probes_drained_without_blocking_others", async {
        let key = server_key(6);
        let config = fast_config();
        let server = EchoServer::start::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let silent_start = Instant::now();
        let mut silent = H::runtime()
            .connect(server.addr)
            .await
            .expect("raw connect");
        let garbage_start = Instant::now();
        let mut garbage = H::runtime()
            .connect(server.addr)
            .await
            .expect("raw connect");
        garbage
            .write_all(&payload(66, 5000))
            .await
            .expect("write garbage");
        garbage.flush().await.expect("flush garbage");
        let silent = H::spawn(async move { read_until_closed(&mut silent).await });
        let garbage = H::spawn(async move { read_until_closed(&mut garbage).await });

        let mut client = port_driver::connect(
            &H::runtime(),
            server.addr,
            &client_setup(&config, &key, b"good"),
        )
        .await
        .expect("connect next to probes");
        for i in 0..3 {
            let message = payload(600 + i, 1000);
            client.send(message.clone()).await.expect("send");
            expect_message(&mut client, &message, "echo next to probes").await;
        }
        let good_done = Instant::now();
        client.close().await.expect("a clean close");

        for (name, task, start) in [
            ("silent", silent, silent_start),
            ("garbage", garbage, garbage_start),
        ] {
            let (received, closed_at) = task.await;
            assert_eq!(received, 0, "{name} probe received bytes");
            let open = closed_at - start;
            assert!(
                open >= config.drain_min(),
                "{name} probe closed after {open:?}, before drain_min"
            );
            assert!(
                open <= config.drain_max() + MARGIN,
                "{name} probe closed after {open:?}, drain_max {:?}",
                config.drain_max()
            );
            assert!(
                good_done < closed_at,
                "the good client finished only after the {name} probe was closed"
            );
        }
        server.wait_clean::<H>(1).await;
        assert_eq!(server.incomings(), 1, "a probe reached the application");
    });
}

/// What a server-side connection ended with, and when.
type Ending = (Result<Option<Bytes>, Error>, Instant);

/// Accepts one client on a fresh listener and echoes until anything but a message arrives.
async fn spawn_one_echo<H: Harness>(
    server: ServerConfig,
) -> (std::net::SocketAddr, crate::Task<Ending>) {
    let listener = bind::<H>(server).await.expect("bind");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let task = H::spawn(async move {
        let incoming = listener.accept().await.expect("accept");
        let mut stream = incoming.accept(USER_ID).expect("admit");
        loop {
            match stream.recv().await {
                Ok(Some(message)) => {
                    if let Err(e) = stream.send(message).await {
                        return (Err(e), Instant::now());
                    }
                }
                ending => return (ending, Instant::now()),
            }
        }
    });
    (addr, task)
}

/// The TCP connection under a connected stream vanishes without TERM (a relay drops both of
/// its sockets): the server's `recv` fails with `TransportClosed` (or an I/O error) promptly,
/// long before any keepalive could notice, and so does the client's.
pub fn vanished_peer_is_transport_closed<H: Harness>() {
    run::<H, _>("vanished_peer_is_transport_closed", async {
        let key = server_key(7);
        let config = patient_config();
        let (addr, server) =
            spawn_one_echo::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let relay = Relay::start::<H>(addr).await;
        let mut client = port_driver::connect(
            &H::runtime(),
            relay.addr,
            &client_setup(&config, &key, b"vanishing"),
        )
        .await
        .expect("connect through the relay");
        client.send("before").await.expect("send");
        expect_message(&mut client, b"before", "echo through the relay").await;

        let cut = Instant::now();
        relay.abort();
        let prompt = Duration::from_secs(10);
        assert!(prompt < config.max_keepalive_detection());
        let (ending, at) = with_timeout::<H, _>("the server noticing", prompt, server).await;
        match ending {
            Err(ref e) if is_transport_end(e) => {}
            other => panic!("server: expected TransportClosed or Io, got {other:?}"),
        }
        assert!(at - cut <= prompt);
        match with_timeout::<H, _>("the client noticing", prompt, client.recv()).await {
            Err(ref e) if is_transport_end(e) => {}
            other => panic!("client: expected TransportClosed or Io, got {other:?}"),
        }
    });
}

/// A stream cut by its application (`abort`): the peer's `recv` fails with `TransportClosed`
/// (or an I/O error) promptly, never `Ok(None)`, which would pass the cut off as a clean end;
/// the aborting side's own calls fail with `Aborted`, whichever half makes them.
pub fn abort_reaches_the_peer_as_a_cut<H: Harness>() {
    run::<H, _>("abort_reaches_the_peer_as_a_cut", async {
        let key = server_key(8);
        let config = patient_config();
        let (addr, server) =
            spawn_one_echo::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let client =
            port_driver::connect(&H::runtime(), addr, &client_setup(&config, &key, b"cut"))
                .await
                .expect("connect");
        let (mut reader, mut writer) = client.split();
        writer.send("before").await.expect("send");
        let echo = reader.recv().await.expect("the echo");
        assert_eq!(echo.as_deref(), Some(&b"before"[..]));
        // Queued but never sent: an abort drops what was queued.
        writer.send(sample(80, 60_000)).await.expect("queue");
        let cut = Instant::now();
        writer.abort();
        let prompt = Duration::from_secs(10);
        let (ending, at) = with_timeout::<H, _>("the server noticing", prompt, server).await;
        match ending {
            Err(ref e) if is_transport_end(e) => {}
            other => panic!("server: expected TransportClosed or Io, got {other:?}"),
        }
        assert!(at - cut <= prompt);
        assert!(matches!(writer.send("after").await, Err(Error::Aborted)));
        // Even without waiting for the window first.
        let skipped = writer.start_send(bytes::Bytes::from_static(b"after"));
        assert!(matches!(skipped, Err(Error::Aborted)), "{skipped:?}");
        // Whatever had arrived unread went with the cut.
        let ending = reader.recv().await;
        assert!(matches!(ending, Err(Error::Aborted)), "{ending:?}");
    });
}

/// A path that silently stops forwarding in both directions (sockets kept open): both ends
/// report `Closed(KeepaliveTimeout)` no later than `max_keepalive_detection` (plus a margin)
/// after the blackhole started. Before that, an idle period longer than the detection bound
/// shows keepalives keep a healthy idle connection alive.
pub fn blackholed_path_is_keepalive_timeout<H: Harness>() {
    run::<H, _>("blackholed_path_is_keepalive_timeout", async {
        let key = server_key(8);
        let config = fast_config();
        let detection = config.max_keepalive_detection();
        let (addr, server) =
            spawn_one_echo::<H>(ServerConfig::new(config.clone(), key.clone())).await;
        let relay = Relay::start::<H>(addr).await;
        let mut client = port_driver::connect(
            &H::runtime(),
            relay.addr,
            &client_setup(&config, &key, b"blackholed"),
        )
        .await
        .expect("connect through the relay");
        client.send("first").await.expect("send");
        expect_message(&mut client, b"first", "echo through the relay").await;
        sleep::<H>(detection + Duration::from_secs(1)).await;
        client.send("after idle").await.expect("send after idle");
        expect_message(&mut client, b"after idle", "echo after an idle period").await;

        let start = Instant::now();
        relay.blackhole();
        let bound = detection + MARGIN;
        let client_ending =
            with_timeout::<H, _>("the client's detection", bound * 2, client.recv()).await;
        let client_at = Instant::now();
        let (server_ending, server_at) =
            with_timeout::<H, _>("the server's detection", bound * 2, server).await;
        for (side, ending, at) in [
            ("client", client_ending, client_at),
            ("server", server_ending, server_at),
        ] {
            match ending {
                Err(Error::Closed(CloseReason::KeepaliveTimeout)) => {}
                other => panic!("{side}: expected Closed(KeepaliveTimeout), got {other:?}"),
            }
            let took = at - start;
            assert!(
                took <= bound,
                "{side} detected the blackhole after {took:?}, bound {detection:?} + {MARGIN:?}"
            );
        }
    });
}

/// The client sends N messages then `close()`s: the server receives all N in order, then
/// `Ok(None)`; it closes too, and both ends report a graceful close (the client's TERM first).
pub fn graceful_close_delivers_everything<H: Harness>() {
    const N: u64 = 100;
    run::<H, _>("graceful_close_delivers_everything", async {
        let key = server_key(9);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let message = |i: u64| sample(900 + i, (i as usize * 37) % 3000);
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept(USER_ID).expect("admit");
            for i in 0..N {
                expect_message(&mut stream, &message(i), &format!("message {i}")).await;
            }
            match stream.recv().await {
                Ok(None) => {}
                other => panic!("expected the clean end after {N} messages, got {other:?}"),
            }
            stream.close().await.expect("server close");
            stream.close_reason()
        });
        let mut client = port_driver::connect(
            &H::runtime(),
            addr,
            &client_setup(&config, &key, b"graceful"),
        )
        .await
        .expect("connect");
        for i in 0..N {
            client.send(message(i)).await.expect("send");
        }
        client.close().await.expect("a clean close");
        assert_eq!(client.close_reason(), Some(CloseReason::Local));
        assert_eq!(server.await, Some(CloseReason::Peer));
    });
}

/// Byte-stream writes of assorted sizes, then `close` (shutdown): the peer reads everything,
/// then EOF; it closes too and the client reads EOF.
pub fn graceful_close_byte_stream<H: Harness>() {
    run::<H, _>("graceful_close_byte_stream", async {
        let key = server_key(10);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut bytes = incoming.accept(USER_ID).expect("admit");
            let mut data = Vec::new();
            bytes.read_to_end(&mut data).await.expect("read to EOF");
            bytes.close().await.expect("server close");
            data
        });
        let client = port_driver::connect(
            &H::runtime(),
            addr,
            &client_setup(&config, &key, b"bytes then EOF"),
        )
        .await
        .expect("connect");
        let mut bytes = client;
        let chunks = [1usize, 0, 10, 1000, 70_000, 65_536, 3, 150_000, 4096];
        let mut expected = Vec::new();
        for (i, &len) in chunks.iter().enumerate() {
            let chunk = payload(1000 + i as u64, len);
            bytes.write_all(&chunk).await.expect("write");
            expected.extend_from_slice(&chunk);
        }
        bytes.close().await.expect("client close");
        let mut rest = Vec::new();
        let n = bytes
            .read_to_end(&mut rest)
            .await
            .expect("read the server's EOF");
        assert_eq!(n, 0, "unexpected bytes from the server");
        let received = server.await;
        assert_eq!(received.len(), expected.len(), "bytes received");
        assert!(received == expected, "contents differ");
    });
}

/// Half-close: the client ends its direction (and can no longer send), the server still
/// sends several messages which the client receives, then the server closes: both ends finish
/// cleanly.
pub fn half_close_server_keeps_sending<H: Harness>() {
    const REPLIES: u64 = 5;
    run::<H, _>("half_close_server_keeps_sending", async {
        let key = server_key(11);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let reply = |i: u64| sample(1100 + i, 2000 + i as usize);
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept(USER_ID).expect("admit");
            expect_message(&mut stream, b"request", "the request").await;
            match stream.recv().await {
                Ok(None) => {}
                other => panic!("expected the client's end of direction, got {other:?}"),
            }
            for i in 0..REPLIES {
                stream
                    .send(reply(i))
                    .await
                    .expect("reply after the client's half-close");
            }
            stream.close().await.expect("server close");
            stream.close_reason()
        });
        let mut client =
            port_driver::connect(&H::runtime(), addr, &client_setup(&config, &key, b"half"))
                .await
                .expect("connect");
        client.send("request").await.expect("send");
        poll_fn(|cx| client.write_half().poll_shutdown(cx))
            .await
            .expect("shutdown");
        // Closing while the server still sends; Closed(Local) if it already ended too.
        match client.send("too late").await {
            Err(Error::Session(port_core::Error::Closing) | Error::Closed(CloseReason::Local)) => {}
            other => panic!("send after shutdown: expected Session(Closing), got {other:?}"),
        }
        for i in 0..REPLIES {
            expect_message(&mut client, &reply(i), &format!("reply {i}")).await;
        }
        match client.recv().await {
            Ok(None) => {}
            other => panic!("expected the server's clean end, got {other:?}"),
        }
        client.close().await.expect("client close");
        assert_eq!(client.close_reason(), Some(CloseReason::Local));
        assert_eq!(server.await, Some(CloseReason::Peer));
    });
}

/// The messages of one side of [`split_halves_run_concurrently`].
fn split_message(side: u64, i: u64) -> Vec<u8> {
    sample(side << 20 | i, (i as usize * 13) % 1500)
}

/// Sends `COUNT` messages of `side` on a write half, then ends the direction.
async fn send_all(mut half: WriteHalf, side: u64) {
    for i in 0..SPLIT_COUNT {
        half.send(split_message(side, i))
            .await
            .expect("send on a half");
    }
    poll_fn(|cx| half.poll_shutdown(cx))
        .await
        .expect("shutdown on a half");
}

/// Receives `COUNT` messages of `side` on a read half, then the clean end.
async fn receive_all(mut half: ReadHalf, side: u64) {
    for i in 0..SPLIT_COUNT {
        let message = half
            .recv()
            .await
            .expect("recv on a half")
            .unwrap_or_else(|| panic!("side {side}: ended after {i} messages"));
        assert!(
            message[..] == split_message(side, i)[..],
            "side {side}: message {i} differs"
        );
    }
    match half.recv().await {
        Ok(None) => {}
        other => panic!("side {side}: expected the clean end, got {other:?}"),
    }
}

/// Messages each way in [`split_halves_run_concurrently`].
const SPLIT_COUNT: u64 = 1000;

/// On both ends, a reader task and a writer task use the two halves of one stream
/// concurrently: 1000 messages each way, in order, then a clean end each way.
pub fn split_halves_run_concurrently<H: Harness>() {
    const CLIENT: u64 = 1;
    const SERVER: u64 = 2;
    run::<H, _>("split_halves_run_concurrently", async {
        let key = server_key(12);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let (read, write) = incoming.accept(USER_ID).expect("admit").split();
            let reader = H::spawn(receive_all(read, CLIENT));
            let writer = H::spawn(send_all(write, SERVER));
            reader.await;
            writer.await;
        });
        let client =
            port_driver::connect(&H::runtime(), addr, &client_setup(&config, &key, b"split"))
                .await
                .expect("connect");
        let (read, write) = client.split();
        let reader = H::spawn(receive_all(read, SERVER));
        let writer = H::spawn(send_all(write, CLIENT));
        reader.await;
        writer.await;
        server.await;
    });
}

/// Backpressure: the server accepts but does not read while the client sends 64 KiB
/// messages: `send` soon stops completing (well under 8 MiB in flight); once the server
/// reads, everything arrives intact and in order.
pub fn backpressure_bounds_the_sender<H: Harness>() {
    const MESSAGE: usize = 64 * 1024;
    const TOTAL: u64 = 160;
    const BOUND: usize = 8 * 1024 * 1024;
    run::<H, _>("backpressure_bounds_the_sender", async {
        let key = server_key(13);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let message = |i: u64| numbered(1300, MESSAGE, i);
        let (go, start_reading) = smol::channel::bounded::<()>(1);
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept(USER_ID).expect("admit");
            start_reading.recv().await.expect("the go signal");
            for i in 0..TOTAL {
                expect_message(&mut stream, &message(i), &format!("message {i}")).await;
            }
            match stream.recv().await {
                Ok(None) => {}
                other => panic!("expected the clean end, got {other:?}"),
            }
            stream.close().await.expect("server close");
        });
        let mut client = port_driver::connect(
            &H::runtime(),
            addr,
            &client_setup(&config, &key, b"firehose"),
        )
        .await
        .expect("connect");
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let sender = H::spawn(async move {
            for i in 0..TOTAL {
                client.send(message(i)).await.expect("send");
                counter.fetch_add(1, Ordering::SeqCst);
            }
            client.close().await.expect("client close");
        });
        sleep::<H>(Duration::from_secs(1)).await;
        let stalled = with_timeout::<H, _>("the sender stalling", Duration::from_secs(30), async {
            loop {
                let before = sent.load(Ordering::SeqCst);
                sleep::<H>(Duration::from_millis(500)).await;
                let after = sent.load(Ordering::SeqCst);
                if after == before {
                    return after;
                }
            }
        })
        .await;
        assert!(
            (stalled as u64) < TOTAL,
            "all {TOTAL} sends completed while nobody read"
        );
        assert!(
            stalled * MESSAGE < BOUND,
            "{stalled} messages of 64 KiB accepted while nobody read"
        );
        go.send(()).await.expect("signal the server");
        server.await;
        sender.await;
        assert_eq!(sent.load(Ordering::SeqCst), TOTAL as usize);
    });
}

/// A writer fills the socket and its send window while nobody reads, and then only waits for
/// the peer's answer, never writing again: every message it queued still arrives once the
/// peer reads. Its messages are written in its own task while the socket takes them; what a
/// full socket left behind is the driver's to write, woken by the socket.
pub fn queued_messages_leave_after_the_writer_stops<H: Harness>() {
    const MESSAGE: usize = 64 * 1024;
    const STALL: Duration = Duration::from_millis(300);
    run::<H, _>("queued_messages_leave_after_the_writer_stops", async {
        let key = server_key(14);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let message = |i: u64| numbered(1400, MESSAGE, i);
        let (go, count) = smol::channel::bounded::<u64>(1);
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept(USER_ID).expect("admit");
            let total = count.recv().await.expect("the count");
            for i in 0..total {
                expect_message(&mut stream, &message(i), &format!("message {i}")).await;
            }
            stream
                .send(total.to_be_bytes().to_vec())
                .await
                .expect("answer");
            stream.close().await.expect("server close");
        });
        let mut client = port_driver::connect(
            &H::runtime(),
            addr,
            &client_setup(&config, &key, b"firehose"),
        )
        .await
        .expect("connect");
        // Send until a send waits: the socket is full and so is the window behind it.
        let mut sent = 0u64;
        loop {
            let send = client.send(message(sent));
            let stalled = async {
                sleep::<H>(STALL).await;
                None
            };
            match future::or(async { Some(send.await) }, stalled).await {
                Some(result) => result.expect("send"),
                None => break,
            }
            sent += 1;
            assert!(sent < 100_000, "sends never stalled while nobody read");
        }
        go.send(sent).await.expect("the count");
        let answer = with_timeout::<H, _>("the answer", Duration::from_secs(30), client.recv())
            .await
            .expect("recv")
            .expect("an answer");
        assert_eq!(answer[..], sent.to_be_bytes(), "messages the server read");
        assert!(client.recv().await.expect("the clean end").is_none());
        client.close().await.expect("client close");
        server.await;
    });
}

/// A client stream dropped mid-connection (messages sent, echoes unread) without `close`:
/// dropping does not block, and the server's `recv` soon ends, with `Ok(None)` after every
/// message sent (a clean end) or with an error.
pub fn drop_without_close_ends_peer<H: Harness>() {
    const SENT: u64 = 10;
    const READ: u64 = 5;
    run::<H, _>("drop_without_close_ends_peer", async {
        let key = server_key(14);
        let config = patient_config();
        let listener = bind::<H>(ServerConfig::new(config.clone(), key.clone()))
            .await
            .expect("bind");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = H::spawn(async move {
            let incoming = listener.accept().await.expect("accept");
            let mut stream = incoming.accept(USER_ID).expect("admit");
            let mut received = 0u64;
            let ending = loop {
                match stream.recv().await {
                    Ok(Some(message)) => {
                        received += 1;
                        // The client reads only some of the echoes; the rest are discarded.
                        let _ = stream.send(message).await;
                    }
                    ending => break ending,
                }
            };
            let at = Instant::now();
            let closed = match ending {
                Ok(None) => Some(stream.close().await),
                _ => None,
            };
            (ending, at, received, closed)
        });
        let mut client = port_driver::connect(
            &H::runtime(),
            addr,
            &client_setup(&config, &key, b"dropped"),
        )
        .await
        .expect("connect");
        for i in 0..SENT {
            client.send(sample(1400 + i, 3000)).await.expect("send");
        }
        for i in 0..READ {
            expect_message(&mut client, &sample(1400 + i, 3000), "echo").await;
        }
        let dropped = Instant::now();
        drop(client);
        let dropping = dropped.elapsed();
        assert!(
            dropping < Duration::from_secs(1),
            "dropping the stream blocked for {dropping:?}"
        );
        let soon = Duration::from_secs(5);
        let (ending, at, received, closed) =
            with_timeout::<H, _>("the server noticing the drop", soon * 2, server).await;
        assert!(
            at - dropped <= soon,
            "the server noticed after {:?}",
            at - dropped
        );
        match ending {
            Ok(None) => {
                assert_eq!(received, SENT, "a clean end after losing messages");
                let closed = closed.expect("closed after a clean end");
                closed.expect("the server's close after the client's clean end");
            }
            Err(_) => {}
            Ok(Some(_)) => unreachable!("the loop only ends without a message"),
        }
    });
}
