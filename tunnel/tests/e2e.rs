//! The real `port-tunnel` binaries on loopback: data both ways, many connections, half-close,
//! tokens, keys, SIGHUP, a forward target that is down, and shutdown.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread;

use common::*;
use rustix::process::Signal;

#[test]
fn megabytes_both_ways_byte_for_byte_and_a_summary_on_sigterm() {
    let files = Files::new("bulk", "alpha alice", "alpha");
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    let data = pattern(1, 6 * 1024 * 1024 + 123);
    echo_through(client.addr, &data);

    let (status, lines) = client.stop();
    assert!(status.success(), "{status:?}");
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary: "))
        .expect("a summary line");
    let expected = format!(
        "1 connections carried (0 ended by an error), 0 refused, 0 failed to start; {n} bytes up, {n} bytes down",
        n = data.len()
    );
    assert!(summary.ends_with(&expected), "{summary}");
    let (status, lines) = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(lines.iter().any(|l| l.contains(&expected)), "{lines:?}");
}

#[test]
fn shaped_aes_keys_carry_data_both_ways() {
    let shape = "prefix=@http&popcount=high&lengths=shaped";
    let args = ["--shape", shape, "--cipher", "aes-256-gcm"];
    let files = Files::with_keygen("shaped", "alpha", "alpha", &args);
    for key in [&files.server_key, &files.client_key] {
        let text = fs::read_to_string(key).unwrap();
        assert!(
            text.contains("&popcount=high&lengths=shaped&cipher=aes-256-gcm"),
            "{text}"
        );
    }
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    let data = pattern(3, 1024 * 1024 + 7);
    echo_through(client.addr, &data);
    let (status, lines) = client.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1 connections carried (0 ended")),
        "{lines:?}"
    );
    server.stop();
}

#[test]
fn early_data_carries_the_first_bytes_with_the_handshake_and_the_rest_after() {
    let files = Files::new("early", "alpha", "alpha");
    let server = files.server(echo_target());
    let env = [
        ("PORT_TUNNEL_LOG_LEVEL", "debug"),
        ("PORT_TUNNEL_EARLY_DATA", "on"),
    ];
    let client = files.client_with(server.addr, &files.client_key, &env);
    // One connection through the tunnel: `first` written at once, the rest after a pause,
    // everything echoed back in order.
    let carry = |first: &[u8], seed: u64| {
        let mut tcp = connect(client.addr);
        tcp.write_all(first).unwrap();
        thread::sleep(std::time::Duration::from_millis(20));
        let rest = pattern(seed, 100_000);
        tcp.write_all(&rest).unwrap();
        tcp.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        tcp.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), first.len() + rest.len());
        assert!(back[..first.len()] == *first && back[first.len()..] == rest[..]);
    };
    // The application speaks first and at once, so its first bytes are normally in the socket
    // when the tunnel takes the connection up (a busy machine may be slower: try again).
    let request = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    let big = [7u8; 20_000];
    for (first, taken) in [(&request[..], request.len()), (&big[..], 16384)] {
        let logged = format!("bytes={taken}\n");
        let taken = (0..20).any(|i| {
            carry(first, i);
            client.log().contains(&logged)
        });
        assert!(taken, "no early data {logged}: {}", client.log());
    }
    // An application that waits before it speaks sends no early data, and works the same.
    let mut tcp = connect(client.addr);
    thread::sleep(std::time::Duration::from_millis(100));
    tcp.write_all(b"late").unwrap();
    tcp.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"late");
    client.stop();
    server.stop();
}

#[test]
fn a_probe_reaches_the_fallback_and_clients_still_tunnel() {
    let files = Files::new("fallback", "alpha", "alpha");
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let web_addr = web.local_addr().unwrap().to_string();
    let response = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\n\r\n";
    let service = thread::spawn(move || {
        let (mut socket, _) = web.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(response).unwrap();
        request
    });
    let server = files.server_env(
        echo_target(),
        "port",
        &[("PORT_TUNNEL_FALLBACK", &web_addr)],
    );
    let get = b"GET / HTTP/1.1\r\nHost: tunnel.example\r\n\r\n";
    let mut probe = std::net::TcpStream::connect(server.addr).unwrap();
    probe.write_all(get).unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, response);
    assert_eq!(service.join().unwrap(), get);
    let client = files.client(server.addr);
    echo_through(client.addr, &pattern(5, 100_000));
    client.stop();
    server.stop();
}

#[test]
fn fifty_concurrent_connections() {
    let files = Files::new("fifty", "alpha", "alpha");
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    let addr = client.addr;
    let threads: Vec<_> = (0..50u64)
        .map(|i| thread::spawn(move || echo_through(addr, &pattern(100 + i, 200_000 + i as usize))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (status, lines) = client.stop();
    assert!(status.success());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("summary: 50 connections carried (0 ended")),
        "{lines:?}"
    );
}

#[test]
fn half_close_is_carried_both_ways() {
    let files = Files::new("half", "alpha", "alpha");
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = files.server(target.local_addr().unwrap());
    let client = files.client(server.addr);

    // Client ends its request with a FIN, then reads the answer: the target sees the FIN.
    let mut app = connect(client.addr);
    let (mut far, _) = target.accept().unwrap();
    far.set_read_timeout(Some(HANG)).unwrap();
    app.write_all(b"request").unwrap();
    app.shutdown(Shutdown::Write).unwrap();
    let mut request = Vec::new();
    far.read_to_end(&mut request).unwrap();
    assert_eq!(request, b"request");
    far.write_all(b"answer after the FIN").unwrap();
    far.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    app.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"answer after the FIN");

    // The reverse: the target ends first, the app keeps sending afterwards.
    let mut app = connect(client.addr);
    let (mut far, _) = target.accept().unwrap();
    far.set_read_timeout(Some(HANG)).unwrap();
    far.write_all(b"banner").unwrap();
    far.shutdown(Shutdown::Write).unwrap();
    let mut banner = Vec::new();
    app.read_to_end(&mut banner).unwrap();
    assert_eq!(banner, b"banner");
    let late = pattern(7, 300_000);
    app.write_all(&late).unwrap();
    app.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    far.read_to_end(&mut got).unwrap();
    assert!(
        got == late,
        "data after the far side's FIN was not carried intact"
    );
}

#[test]
fn unknown_token_is_refused() {
    let files = Files::new("unknown", "alpha", "beta");
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    expect_clean_close(client.addr);
    client.wait_log("the server does not know this token");
    server.wait_log("unknown token: refused");
    let (_, lines) = server.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("0 connections carried (0 ended by an error), 1 refused")),
        "{lines:?}"
    );
}

/// `--stack` with layers over PORT: the tunnel runs the registry's stack on both ends, data
/// crosses it intact, and the tokens still decide (the PORT layer's authentication reaches the
/// server through the stack).
#[test]
fn a_stack_of_layers_over_port_carries_data_and_checks_tokens() {
    const STACK: &str = "port+passthrough";
    let files = Files::new("stack", "alpha", "alpha");
    let server = files.server_on(echo_target(), STACK);
    let client = files.client_on(server.addr, STACK, &files.client_key, &[]);
    echo_through(client.addr, &pattern(7, 3 * 1024 * 1024 + 5));
    server.wait_log("stack=\"port+passthrough\"");

    let refused = Files::new("stack-refused", "alpha", "beta");
    let refused_server = refused.server_on(echo_target(), STACK);
    let refused_client = refused.client_on(refused_server.addr, STACK, &refused.client_key, &[]);
    expect_clean_close(refused_client.addr);
    refused_client.wait_log("the server does not know this token");
    refused_server.wait_log("unknown token: refused");

    let (status, lines) = client.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("summary: 1 connections carried (0 ended")),
        "{lines:?}"
    );
}

#[test]
fn stacks_named_in_a_stacks_file_carry_data() {
    let files = Files::new("stacks-file", "alpha", "alpha");
    let stacks = files.dir.join("stacks.toml");
    fs::write(
        &stacks,
        "[stack.wrapped]\nlayers = [\"port\", \"passthrough\"]\n[alias]\nw = \"wrapped\"\n",
    )
    .unwrap();
    let env = [("PORT_TUNNEL_STACKS_FILE", stacks.to_str().unwrap())];
    let server = files.server_env(echo_target(), "wrapped", &env);
    // The client names the same stack by its alias.
    let client = files.client_on(server.addr, "w", &files.client_key, &env);
    echo_through(client.addr, &pattern(11, 1024 * 1024 + 3));
    server.wait_log("stack=\"wrapped\"");
}

#[test]
fn wrong_server_key_fails_with_a_clear_message() {
    let files = Files::new("wrongkey", "alpha", "alpha");
    let other = files.dir.join("other");
    keygen(&other);
    let server = files.server(echo_target());
    let client = files.client_with(
        server.addr,
        &other.join("client.key"),
        &[("PORT_TIMEOUT", "2")],
    );
    expect_clean_close(client.addr);
    client.wait_log("the server never answered the handshake");
    client.wait_log("client key of that server (--key)");
    let (_, lines) = client.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("0 refused, 1 failed to start")),
        "{lines:?}"
    );
}

#[test]
fn sighup_reloads_the_tokens() {
    let files = Files::new("sighup", "alpha", "beta");
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    expect_clean_close(client.addr);
    server.wait_log("unknown token: refused");

    fs::write(&files.tokens, "alpha\nbeta bob\n").unwrap();
    server.signal(Signal::HUP);
    server.wait_log("tokens reloaded");
    echo_through(client.addr, b"now beta is listed");
    server.wait_log("client=bob");

    // A bad file keeps the tokens in force.
    fs::write(&files.tokens, "beta x y\n").unwrap();
    server.signal(Signal::HUP);
    server.wait_log("tokens not reloaded");
    echo_through(client.addr, b"still listed");
}

#[test]
fn forward_target_down_closes_that_connection_only() {
    let files = Files::new("down", "alpha", "alpha");
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    let server = files.server(target_addr);
    let client = files.client(server.addr);

    // One carried connection is up ...
    let mut open = connect(client.addr);
    let (far, _) = target.accept().unwrap();
    let echo = thread::spawn(move || echo_connection(far));
    // ... then the target stops listening: a new connection is closed cleanly.
    drop(target);
    expect_clean_close(client.addr);
    server.wait_log("the server cannot reach the target: connection refused");
    client.wait_log("the server cannot reach the target: connection refused");

    // The open one still works.
    open.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    open.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    echo.join().unwrap();

    // And the target coming back is served again.
    let target = TcpListener::bind(target_addr).unwrap();
    thread::spawn(move || {
        for tcp in target.incoming().flatten() {
            thread::spawn(move || echo_connection(tcp));
        }
    });
    echo_through(client.addr, &pattern(9, 100_000));
}

/// Writes 64 KiB chunks until a write makes no progress for 2 s (the pipe is full) or
/// `cap` bytes went in; returns how many went in.
fn write_until_stalled(tcp: &mut std::net::TcpStream, cap: usize) -> usize {
    tcp.set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let chunk = pattern(3, 64 * 1024);
    let mut total = 0;
    while total < cap {
        match tcp.write(&chunk) {
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    tcp.set_write_timeout(Some(HANG)).unwrap();
    total
}

/// Reads exactly `n` bytes and drops them.
fn read_exactly(tcp: &mut std::net::TcpStream, mut n: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let got = tcp.read(&mut buf[..n.min(64 * 1024)]).unwrap();
        assert!(got > 0, "end of stream with {n} bytes still due");
        n -= got;
    }
}

#[test]
fn a_slow_reader_stalls_the_writer_on_either_side() {
    // Without backpressure the tunnel would take everything; with it, the writer stalls once
    // the socket buffers and the PORT windows on the way are full (tens of MiB at most on
    // loopback, where receive buffers may grow to 32 MiB).
    const CAP: usize = 1024 * 1024 * 1024;
    let files = Files::new("backpressure", "alpha", "alpha");
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = files.server(target.local_addr().unwrap());
    let client = files.client(server.addr);
    let mut app = connect(client.addr);
    let (mut far, _) = target.accept().unwrap();
    far.set_read_timeout(Some(HANG)).unwrap();

    // Up: the target does not read.
    let up = write_until_stalled(&mut app, CAP);
    assert!(
        up < CAP / 4,
        "{up} bytes taken while the target read nothing"
    );
    read_exactly(&mut far, up);

    // Down: the application does not read.
    let down = write_until_stalled(&mut far, CAP);
    assert!(
        down < CAP / 4,
        "{down} bytes taken while the application read nothing"
    );
    read_exactly(&mut app, down);
    eprintln!("taken before the writer stalled: {up} bytes up, {down} bytes down");

    // And the connection still carries data both ways afterwards.
    app.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    far.read_exact(&mut buf).unwrap();
    far.write_all(b"pong").unwrap();
    app.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    drop(server);
    drop(client);
}

#[test]
fn an_idle_connection_carries_data_again() {
    let files = Files::new("idle", "alpha", "alpha");
    let server = files.server(echo_target());
    let client = files.client(server.addr);
    let mut app = connect(client.addr);
    let mut buf = [0u8; 6];
    app.write_all(b"first!").unwrap();
    app.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"first!");
    // Past the second after which an idle direction gives its read buffer back.
    thread::sleep(std::time::Duration::from_millis(1500));
    app.write_all(b"again!").unwrap();
    app.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again!");
}

/// Writes `chunk` to `tcp` until a write fails (the far end was cut).
fn stream_until_cut(mut tcp: std::net::TcpStream) {
    let chunk = pattern(11, 64 * 1024);
    while tcp.write_all(&chunk).is_ok() {}
}

/// Reads `tcp` until it ends: the bytes read, and the error it ended with (`None` for EOF).
fn read_until_end(tcp: &mut std::net::TcpStream) -> (usize, Option<std::io::ErrorKind>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (total, None),
            Ok(n) => total += n,
            Err(e) => return (total, Some(e.kind())),
        }
    }
}

/// `kill -9` of either tunnel process in the middle of a transfer: the application at the far
/// end gets a reset, not an EOF that would pass a cut transfer off as a finished one. The
/// victim's own peer (the server for a killed client, the client for a killed server) sees
/// its PORT connection end without TERM and resets its socket.
#[test]
fn a_killed_tunnel_process_resets_the_far_application() {
    for victim in ["server", "client"] {
        let files = Files::new(&format!("cut-{victim}"), "alpha", "alpha");
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = files.server(target.local_addr().unwrap());
        let client = files.client(server.addr);
        let app = connect(client.addr);
        let (far, _) = target.accept().unwrap();
        far.set_read_timeout(Some(HANG)).unwrap();
        // The data flows towards the far application, from the side that is not cut off.
        let (sender, mut reader, killed) = match victim {
            "server" => (far, app, &server),
            _ => (app, far, &client),
        };
        let writer = thread::spawn(move || stream_until_cut(sender));
        read_exactly(&mut reader, 1 << 20);
        killed.signal(Signal::KILL);
        let (more, ended) = read_until_end(&mut reader);
        assert_eq!(
            ended,
            Some(std::io::ErrorKind::ConnectionReset),
            "killed the {victim}: the far application read {more} more bytes and then {}",
            match ended {
                None => "an EOF".to_owned(),
                Some(kind) => format!("{kind:?}"),
            }
        );
        let survivor = match victim {
            "server" => &client,
            _ => &server,
        };
        survivor.wait_log("connection ended");
        drop(reader);
        writer.join().unwrap();
    }
}
