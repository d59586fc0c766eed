//! Smoke test of the tokio adapter: echo of several sizes through the message API and through
//! tokio's `AsyncRead`/`AsyncWrite`, and a rejection.

use port_core::{ClientConfig, Config, ServerConfig, ServerKey, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn key() -> ServerKey {
    ServerKey::from_parts([7; 32], [9; 32])
}

#[tokio::test]
async fn echo_and_reject() {
    let server_key = key();
    let client_key = server_key.client_key();
    let rt = port_tokio::runtime();
    let listener = port_tokio::Listener::bind(
        &rt,
        "127.0.0.1:0",
        ServerConfig::new(Config::default(), server_key),
    )
    .await
    .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(incoming) = listener.accept().await {
            if &incoming.token()[..] == b"bad" {
                incoming.reject(Status::Application(777)).unwrap();
                continue;
            }
            let mut stream = incoming.accept(5).unwrap();
            tokio::spawn(async move {
                while let Ok(Some(m)) = stream.recv().await {
                    stream.send(m).await.unwrap();
                }
                stream.close().await.unwrap();
            });
        }
    });
    let setup = ClientConfig::new(Config::default(), client_key.clone(), "good").unwrap();
    let mut s = port_tokio::connect(&rt, addr, &setup).await.unwrap();
    assert_eq!(s.user_id(), Some(5));
    for len in [0usize, 1, 1024, 65536, 1 << 20] {
        let m = vec![(len % 251) as u8; len];
        s.send(m.clone()).await.unwrap();
        assert_eq!(s.recv().await.unwrap().unwrap(), m);
    }
    // The same stream as a tokio byte stream: what goes in comes back, boundaries aside.
    let bulk: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    s.write_all(&bulk).await.unwrap();
    let mut back = vec![0u8; bulk.len()];
    s.read_exact(&mut back).await.unwrap();
    assert!(back == bulk);
    s.shutdown().await.unwrap();
    assert_eq!(
        s.read(&mut back).await.unwrap(),
        0,
        "EOF after the server's TERM"
    );
    let bad = ClientConfig::new(Config::default(), client_key, "bad").unwrap();
    match port_tokio::connect(&rt, addr, &bad).await {
        Err(port_tokio::Error::Rejected(Status::Application(777))) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("rejected client connected"),
    }
}
