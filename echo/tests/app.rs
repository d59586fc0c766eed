//! The echo logic driven in-process through the library: every stack on every runtime, a
//! rejecting server, and the demo.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use port_core::{CloseReason, Config, ServerKey};
use port_echo::client::{Client, Summary};
use port_echo::runtime::RuntimeKind;
use port_echo::server::{ConnectionReport, Server};
use port_echo::setup::{ClientSetup, ServerSetup, StackChoice};
use port_stack::Registry;

const STACKS: [&str; 3] = ["passthrough", "port", "port+passthrough"];

/// Runs `future` on `kind`, failing the test if it takes longer than a minute.
fn bounded<F: Future>(kind: RuntimeKind, future: F) -> F::Output {
    kind.block_on(async {
        let limit = async {
            port_driver::sleep(&*kind.runtime(), Duration::from_secs(60)).await;
            None
        };
        futures_lite::future::or(async { Some(future.await) }, limit).await
    })
    .expect("runtime")
    .expect("the test took longer than a minute")
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// One server and two clients over `spec` on `runtime`: echoes, user ids, close reasons and
/// the server's reports.
fn echo_over(kind: RuntimeKind, spec: &str) {
    let key = port_echo::keygen::generate().unwrap();
    let stack = StackChoice::new(Registry::with_builtins(), spec).unwrap();
    assert_eq!(stack.has_port(), spec.contains("port"));
    let server_setup =
        ServerSetup::new(stack.clone(), Config::default(), Some(key.clone())).unwrap();
    let client_setup = ClientSetup::new(
        stack.clone(),
        Config::default(),
        Some(key.client_key()),
        "token",
    )
    .unwrap();
    let big = Bytes::from(
        (0..200_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let runtime = kind.runtime();
    let mut reports: Vec<ConnectionReport> = bounded(kind, async {
        let server = Server::bind(runtime.clone(), server_setup, loopback())
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let running = server.spawn();
        for expected_user in [1u32, 2] {
            let mut client = Client::connect(&runtime, &client_setup, &addr)
                .await
                .unwrap();
            if stack.has_port() {
                assert_eq!(client.user_id(), Some(expected_user), "{spec}");
            }
            let mut summary = Summary::new();
            for message in ["hello", "a second message", "hello"] {
                let echo = client
                    .echo(Bytes::from_static(message.as_bytes()))
                    .await
                    .unwrap();
                assert_eq!(&echo.reply[..], message.as_bytes(), "{spec}");
                summary.record(message.as_bytes(), &echo);
            }
            // Larger than a TCP segment and a PORT frame: reassembled on byte-stream stacks,
            // split into frames and rejoined on PORT.
            let echo = client.echo(big.clone()).await.unwrap();
            assert!(echo.reply == big, "{spec}: the large echo differs");
            summary.record(&big, &echo);
            assert_eq!(summary.messages, 4);
            assert_eq!(summary.mismatches, 0);
            assert!(summary.round_trip_stats().is_some());
            let reason = client.close().await.unwrap();
            if stack.has_port() {
                assert_eq!(reason, Some(CloseReason::Local), "{spec}");
            }
        }
        // Inside the runtime: the server's tasks end (and report) after the clients did.
        let mut reports = Vec::new();
        for _ in 0..2 {
            reports.push(running.reports.recv().await.expect("a server report"));
        }
        reports
    });
    reports.sort_by_key(|r| r.user_id);
    for (report, user) in reports.iter().zip([1u32, 2]) {
        assert_eq!(report.user_id, user, "{spec}: {report:?}");
        assert!(report.error.is_none(), "{spec}: {report:?}");
        assert_eq!(report.bytes, 5 + 16 + 5 + 200_000, "{spec}: {report:?}");
        // What crossed the socket is at least what was echoed, plus PORT's own bytes.
        assert!(report.traffic.written >= report.bytes, "{spec}: {report:?}");
        assert!(report.traffic.read >= report.bytes, "{spec}: {report:?}");
        if stack.has_port() {
            assert_eq!(report.messages, 4, "{spec}: {report:?}");
            assert_eq!(report.token_len, 5, "{spec}: {report:?}");
            assert_eq!(report.reason, Some(CloseReason::Peer), "{spec}: {report:?}");
        } else {
            // A byte stream: the server sees chunks, not messages.
            assert!(report.messages >= 4, "{spec}: {report:?}");
            assert_eq!(report.token_len, 0, "{spec}: {report:?}");
        }
    }
}

#[test]
fn echo_every_stack_on_tokio() {
    STACKS
        .iter()
        .for_each(|spec| echo_over(RuntimeKind::Tokio, spec));
}

#[test]
fn echo_every_stack_on_smol() {
    STACKS
        .iter()
        .for_each(|spec| echo_over(RuntimeKind::Smol, spec));
}

#[test]
fn echo_every_stack_on_async_std() {
    STACKS
        .iter()
        .for_each(|spec| echo_over(RuntimeKind::AsyncStd, spec));
}

#[test]
fn a_rejected_token_is_one_clear_message() {
    let key = port_echo::keygen::generate().unwrap();
    let server_key: ServerKey = key.clone();
    let stack = StackChoice::new(Registry::with_builtins(), "port").unwrap();
    let setup = ClientSetup::new(stack, Config::default(), Some(key.client_key()), "bad").unwrap();
    let error = bounded(RuntimeKind::Tokio, async move {
        let rt = port_tokio::runtime();
        let listener = port_tokio::Listener::bind(
            &rt,
            "127.0.0.1:0",
            port_core::ServerConfig::new(Config::default(), server_key),
        )
        .await
        .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok(incoming) = listener.accept().await {
                let _ = incoming.reject(port_core::Status::Application(4242));
            }
        });
        match Client::connect(&rt, &setup, &addr).await {
            Ok(_) => panic!("the server rejects every token"),
            Err(e) => e,
        }
    });
    assert_eq!(
        error.to_string(),
        "the server refused the token: application status (4242)"
    );
}

#[test]
fn setups_refuse_a_port_stack_without_keys() {
    let stack = StackChoice::new(Registry::with_builtins(), "secure").unwrap();
    assert_eq!(stack.layers(), ["port", "passthrough"]);
    let server = ServerSetup::new(stack.clone(), Config::default(), None).unwrap_err();
    assert!(server.message().contains("needs a server key"), "{server}");
    let client = ClientSetup::new(stack, Config::default(), None, "t").unwrap_err();
    assert!(client.message().contains("client key"), "{client}");
    let unknown = StackChoice::new(Registry::with_builtins(), "port+nope").unwrap_err();
    assert!(unknown.message().contains("\"nope\""), "{unknown}");
}

#[test]
fn the_demo_runs_on_every_runtime_and_its_numbers_add_up() {
    fn demo(kind: RuntimeKind) {
        let mut out = Vec::new();
        let totals = bounded(kind, async {
            let mut sink: Vec<u8> = Vec::new();
            let totals = port_echo::demo::run(kind, &mut sink).await.unwrap();
            out = sink;
            totals
        });
        let text = String::from_utf8(out).unwrap();
        let frames = (port_echo::demo::STACKS.len() * port_echo::demo::MESSAGES.len()) as u64;
        let payload: usize = port_echo::demo::MESSAGES.iter().map(|m| m.len()).sum();
        assert_eq!(
            totals.payload,
            (payload * port_echo::demo::STACKS.len()) as u64
        );
        assert_eq!(
            totals.wire,
            totals.payload + frames * port_echo::demo::FRAME_OVERHEAD as u64 + totals.padding,
            "{text}"
        );
        // What the driver counted at the sockets: the clients wrote their INITs and TERMs
        // besides their data frames; the servers at least echoed every payload in a frame.
        assert!(totals.client_written > totals.wire, "{text}");
        let echoed = totals.payload + frames * port_echo::demo::FRAME_OVERHEAD as u64;
        assert!(totals.server_written > echoed, "{text}");
        assert!(text.contains(kind.name()), "{text}");
        assert!(!text.contains("DIFFERENT"), "{text}");
    }
    for kind in RuntimeKind::ALL {
        demo(kind);
    }
}
