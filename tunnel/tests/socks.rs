//! The client's SOCKS5 mode through the real binaries: curl through both processes to a local
//! HTTP server, by name and by address, with and without authentication; the server's
//! `--allow` list decides, and a refusal comes back as the SOCKS5 reply that says why.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;

use common::*;

/// A local HTTP server answering every request with `body`, forever.
fn http_server(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    tcp,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

/// `curl -sS PROXY_ARGS URL`: its exit code, stdout and stderr.
fn curl(proxy: &[&str], url: &str) -> (Option<i32>, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(proxy)
        .arg(url)
        .output()
        .expect("curl must be installed for this test (apt-get install curl)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_reaches_a_local_web_server_through_both_processes() {
    let web = http_server("hello through socks5");
    let files = Files::new("socks-curl", "alpha", "alpha");
    let server = files.server_args(&["--allow", "localhost:*,127.0.0.0/8:1-65535"]);
    let client = files.client_args(server.addr, &["--socks5", "127.0.0.1:0"]);
    let proxy = client.addr.to_string();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("http://{host}:{}/", web.port());
        let (code, body, err) = curl(&["--socks5-hostname", &proxy], &url);
        assert_eq!(code, Some(0), "{url}: {err}\nclient: {}", client.log());
        assert_eq!(body, "hello through socks5");
    }
    server.wait_log(&format!("target=localhost:{}", web.port()));
    server.wait_log(&format!("target=127.0.0.1:{}", web.port()));
}

#[test]
fn socks5_authentication_is_required_when_configured() {
    let web = http_server("authenticated");
    let files = Files::new("socks-auth", "alpha", "alpha");
    let auth = files.dir.join("socks5-auth");
    std::fs::write(&auth, "# proxy users\nalice:open sesame\n").unwrap();
    let server = files.server_args(&["--allow", "127.0.0.1:*"]);
    let client = files.client_args(
        server.addr,
        &[
            "--socks5",
            "127.0.0.1:0",
            "--socks5-auth",
            auth.to_str().unwrap(),
        ],
    );
    let url = format!("http://127.0.0.1:{}/", web.port());
    let good = format!("socks5h://alice:open%20sesame@{}", client.addr);
    let (code, body, err) = curl(&["--proxy", &good], &url);
    assert_eq!((code, body.as_str()), (Some(0), "authenticated"), "{err}");
    let wrong = format!("socks5h://alice:guess@{}", client.addr);
    let (code, _, _) = curl(&["--proxy", &wrong], &url);
    assert_ne!(code, Some(0));
    let anonymous = format!("socks5h://{}", client.addr);
    let (code, _, _) = curl(&["--proxy", &anonymous], &url);
    assert_ne!(code, Some(0));
}

/// A raw SOCKS5 request for a host name (`host`) and `port` through `proxy`: the reply code.
fn socks_reply(proxy: SocketAddr, command: u8, host: &[u8], port: u16) -> u8 {
    let mut address = vec![3, host.len() as u8];
    address.extend_from_slice(host);
    socks_request(proxy, command, &address, port).1
}

/// A raw SOCKS5 request for `address` (its type byte first) and `port` through `proxy`: the
/// open connection and the reply code.
fn socks_request(proxy: SocketAddr, command: u8, address: &[u8], port: u16) -> (TcpStream, u8) {
    let mut tcp = TcpStream::connect(proxy).unwrap();
    tcp.set_read_timeout(Some(HANG)).unwrap();
    tcp.write_all(&[5, 1, 0]).unwrap();
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).unwrap();
    assert_eq!(choice, [5, 0]);
    let mut request = vec![5, command, 0];
    request.extend_from_slice(address);
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request).unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply).unwrap();
    assert_eq!((reply[0], reply[2]), (5, 0));
    (tcp, reply[1])
}

/// An IPv6 target (address type 4) through both processes, data both ways.
#[test]
fn an_ipv6_target_is_carried() {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(listener) => listener,
        Err(e) => panic!("this test needs IPv6 on loopback: {e}"),
    };
    let port = listener.local_addr().unwrap().port();
    let echo = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        echo_connection(tcp);
    });
    let files = Files::new("socks-v6", "alpha", "alpha");
    let server = files.server_args(&["--allow", "[::1]:*"]);
    let client = files.client_args(server.addr, &["--socks5", "127.0.0.1:0"]);
    let mut v6 = vec![4];
    v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    let (mut tcp, code) = socks_request(client.addr, 1, &v6, port);
    assert_eq!(code, 0);
    tcp.write_all(b"over v6").unwrap();
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"over v6");
    echo.join().unwrap();
    server.wait_log(&format!("target=[::1]:{port}"));
}

#[test]
fn refusals_come_back_as_the_socks5_replies_that_say_why() {
    let web = http_server("allowed");
    // A port nothing listens on (bound, then closed).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let files = Files::new("socks-deny", "alpha", "alpha");
    let server = files.server_args(&[
        "--allow",
        &format!("127.0.0.1:{}", web.port()),
        "--allow",
        &format!("127.0.0.1:{closed}"),
    ]);
    let client = files.client_args(server.addr, &["--socks5", "127.0.0.1:0"]);
    // Allowed: succeeded (0).
    assert_eq!(socks_reply(client.addr, 1, b"127.0.0.1", web.port()), 0);
    // Another port of an allowed host: connection not allowed by ruleset (2).
    assert_eq!(socks_reply(client.addr, 1, b"127.0.0.1", web.port() ^ 1), 2);
    // A name no rule allows, even if it resolves to an allowed address: not allowed (2).
    assert_eq!(socks_reply(client.addr, 1, b"localhost", web.port() ^ 1), 2);
    // Allowed, but nothing listens: connection refused (5).
    assert_eq!(socks_reply(client.addr, 1, b"127.0.0.1", closed), 5);
    // BIND is not carried: command not supported (7).
    assert_eq!(socks_reply(client.addr, 2, b"127.0.0.1", web.port()), 7);
    client.wait_log("the server does not allow this target");
    client.wait_log("connection refused");

    // A server with --forward only lets no client choose a target.
    let files = Files::new("socks-forward-only", "alpha", "alpha");
    let server = files.server_args(&["--forward", &web.to_string()]);
    let client = files.client_args(server.addr, &["--socks5", "127.0.0.1:0"]);
    assert_eq!(socks_reply(client.addr, 1, b"127.0.0.1", web.port()), 2);
}

#[test]
fn a_server_needs_a_forward_target_or_an_allow_list() {
    let files = Files::new("socks-neither", "alpha", "alpha");
    let out = command()
        .args(["server", "--listen", "127.0.0.1:0"])
        .arg("--key")
        .arg(&files.server_key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("missing --forward or --allow"), "{err}");
    let bad = command()
        .args(["server", "--listen", "127.0.0.1:0", "--allow", "10.0.0.0/8"])
        .arg("--key")
        .arg(&files.server_key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("bad --allow: rule \"10.0.0.0/8\": no :PORTS"),
        "{err}"
    );
}

/// A port free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` from `addr`: the response.
fn scrape(addr: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(HANG)).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    response
}

/// Both tunnel processes serve metrics while a connection is carried: each side's connected
/// PORT connection, and the server's refusals by reason.
#[test]
fn both_processes_serve_metrics_while_carrying() {
    let web = http_server("metered");
    let files = Files::new("metrics", "alpha", "alpha");
    let (server_metrics, client_metrics) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let server = files.server_args(&["--allow", "127.0.0.1:*", "--metrics", &server_metrics]);
    let client = files.client_args(
        server.addr,
        &["--socks5", "127.0.0.1:0", "--metrics", &client_metrics],
    );
    // A carried connection held open, and a refused one.
    let (held, code) = socks_request(client.addr, 1, &[1, 127, 0, 0, 1], web.port());
    assert_eq!(code, 0);
    assert_eq!(socks_reply(client.addr, 1, b"10.0.0.1", 80), 2);
    let server_text = scrape(&server_metrics);
    let client_text = scrape(&client_metrics);
    for (text, side) in [(&server_text, "server"), (&client_text, "client")] {
        let line = format!("port_connections{{side=\"{side}\",state=\"connected\"}} 1");
        assert!(text.contains(&line), "{side}: {text}");
    }
    assert!(
        server_text.contains("port_tunnel_refusals_total{reason=\"not_allowed\"} 1"),
        "{server_text}"
    );
    assert!(
        client_text.contains("port_handshakes_total{side=\"client\",outcome=\"rejected\"} 1"),
        "{client_text}"
    );
    drop(held);
}
