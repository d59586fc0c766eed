//! The README's ten-line tokio client and server, runnable:
//! `cargo run -p port-tokio --example readme`.

use port_core::{ClientConfig, Config, ServerConfig, ServerKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[tokio::main]
#[rustfmt::skip] // kept as dense as the README shows it
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    let server_key = ServerKey::generate(&mut ChaCha20Rng::from_seed(seed));

    // --- the README's lines ---
    let rt = port_tokio::runtime();
    let listener = port_tokio::Listener::bind(&rt, "127.0.0.1:0", ServerConfig::new(Config::default(), server_key.clone())).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { while let Ok(incoming) = listener.accept().await {     // server: echo
        let mut s = incoming.accept(1).unwrap();
        tokio::spawn(async move { while let Ok(Some(m)) = s.recv().await { s.send(m).await.unwrap(); } });
    } });
    let setup = ClientConfig::new(Config::default(), server_key.client_key(), "my token")?;   // client
    let mut stream = port_tokio::connect(&rt, addr, &setup).await?;
    stream.send("hello").await?;
    println!("{:?}", stream.recv().await?);
    // ---
    stream.close().await?;
    Ok(())
}
