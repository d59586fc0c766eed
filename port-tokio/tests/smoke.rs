//! Smoke test of the tokio adapter: echo of several sizes and a rejection.

use port_core::{ClientConfig, Config, ServerConfig, ServerKey, Status};

fn key() -> ServerKey {
    ServerKey::from_parts([7; 32], [9; 32])
}

#[tokio::test]
async fn echo_and_reject() {
    let server_key = key();
    let client_key = server_key.client_key();
    let listener = port_tokio::Listener::bind(
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
    let setup = ClientConfig::new(Config::default(), client_key, "good").unwrap();
    let mut s = port_tokio::connect(addr, &setup).await.unwrap();
    assert_eq!(s.user_id(), Some(5));
    for len in [0usize, 1, 1024, 65536, 1 << 20] {
        let m = vec![(len % 251) as u8; len];
        s.send(m.clone()).await.unwrap();
        assert_eq!(s.recv().await.unwrap().unwrap(), m);
    }
    s.close().await.unwrap();
    let bad = ClientConfig::new(Config::default(), client_key, "bad").unwrap();
    match port_tokio::connect(addr, &bad).await {
        Err(port_tokio::Error::Rejected(Status::Application(777))) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("rejected client connected"),
    }
}
