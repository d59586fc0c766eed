//! The echo logic driven in-process through the library: every stack on every runtime, a
//! rejecting server, and the demo.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use echo::client::{Client, Summary};
use echo::runtime::{AsyncStdRuntime, Runtime, SmolRuntime, TokioRuntime};
use echo::server::{ConnectionReport, Server};
use echo::setup::{ClientSetup, ServerSetup, StackChoice};
use port_core::{CloseReason, Config, ServerKey};
use stack::Registry;

const STACKS: [&str; 3] = ["passthrough", "port", "port+passthrough"];

/// Runs `future` on `runtime`, failing the test if it takes longer than a minute.
fn bounded<R: Runtime, F: Future>(runtime: R, future: F) -> F::Output {
    runtime
        .block_on(async {
            let limit = async {
                runtime.sleep(Duration::from_secs(60)).await;
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
fn echo_over<R: Runtime>(runtime: R, spec: &str) {
    let key = echo::keygen::generate().unwrap();
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
    let (report_tx, report_rx) = smol::channel::unbounded::<ConnectionReport>();
    let big = Bytes::from(
        (0..200_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut reports: Vec<ConnectionReport> = bounded(runtime, async {
        let server = Server::bind(runtime, server_setup, loopback())
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        runtime.spawn(server.run_until(
            move |report| {
                let _ = report_tx.try_send(report);
            },
            async move {
                let _ = stop_rx.recv().await;
            },
        ));
        for expected_user in [1u32, 2] {
            let mut client = Client::connect(runtime, &client_setup, &addr)
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
        let _ = stop_tx.try_send(());
        // Inside the runtime: the server's tasks end (and report) after the clients did.
        let mut reports = Vec::new();
        for _ in 0..2 {
            reports.push(report_rx.recv().await.expect("a server report"));
        }
        reports
    });
    reports.sort_by_key(|r| r.user_id);
    for (report, user) in reports.iter().zip([1u32, 2]) {
        assert_eq!(report.user_id, user, "{spec}: {report:?}");
        assert!(report.error.is_none(), "{spec}: {report:?}");
        assert_eq!(report.bytes, 5 + 16 + 5 + 200_000, "{spec}: {report:?}");
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
    for spec in STACKS {
        echo_over(TokioRuntime, spec);
    }
}

#[test]
fn echo_every_stack_on_smol() {
    for spec in STACKS {
        echo_over(SmolRuntime::default(), spec);
    }
}

#[test]
fn echo_every_stack_on_async_std() {
    for spec in STACKS {
        echo_over(AsyncStdRuntime::default(), spec);
    }
}

#[test]
fn a_rejected_token_is_one_clear_message() {
    let key = echo::keygen::generate().unwrap();
    let server_key: ServerKey = key.clone();
    let stack = StackChoice::new(Registry::with_builtins(), "port").unwrap();
    let setup = ClientSetup::new(stack, Config::default(), Some(key.client_key()), "bad").unwrap();
    let error = bounded(TokioRuntime, async move {
        let listener = port_tokio::Listener::bind(
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
        match Client::connect(TokioRuntime, &setup, &addr).await {
            Ok(_) => panic!("the server rejects every token"),
            Err(e) => e,
        }
    });
    assert_eq!(
        error.to_string(),
        "server rejected the token: application status (4242)"
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
    fn demo<R: Runtime>(runtime: R) {
        let mut out = Vec::new();
        let totals = bounded(runtime, async {
            let mut sink: Vec<u8> = Vec::new();
            let totals = echo::demo::run(runtime, &mut sink).await.unwrap();
            out = sink;
            totals
        });
        let text = String::from_utf8(out).unwrap();
        let frames = (echo::demo::STACKS.len() * echo::demo::MESSAGES.len()) as u64;
        let payload: usize = echo::demo::MESSAGES.iter().map(|m| m.len()).sum();
        assert_eq!(totals.payload, (payload * echo::demo::STACKS.len()) as u64);
        assert_eq!(
            totals.wire,
            totals.payload + frames * echo::demo::FRAME_OVERHEAD as u64 + totals.padding,
            "{text}"
        );
        assert!(text.contains(runtime.name()), "{text}");
        assert!(!text.contains("DIFFERENT"), "{text}");
    }
    demo(TokioRuntime);
    demo(SmolRuntime::default());
    demo(AsyncStdRuntime::default());
}
