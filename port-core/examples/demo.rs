//! Runs a PORT client and server core against each other in memory and prints the exchange:
//! every write on the simulated TCP streams (size and first bytes, which look random) and every
//! event each side reports.
//!
//! `cargo run -p port-core --example demo`

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use port_core::Session;
use port_core::{ClientConfig, Config, Connection, Event, ServerConfig, ServerKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The core takes its randomness from the caller. Seed from the clock so each run differs;
    // a real application seeds from the operating system's CSPRNG.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let mut rng = ChaCha20Rng::seed_from_u64(nanos.as_nanos() as u64);
    let server_key = ServerKey::generate(&mut rng);
    let client_key = server_key.client_key();
    println!("server key: port1-secret:… (kept secret)");
    println!("client key: {client_key}\n");

    let config = Config::default();
    let client_setup = ClientConfig::new(config.clone(), client_key, "demo-token")?;
    let server_setup = ServerConfig::new(config, server_key);
    let seed = |rng: &mut ChaCha20Rng| {
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        s
    };
    let start = Instant::now();
    let mut client = Connection::client(&client_setup, start, nanos, seed(&mut rng));
    let mut server = Connection::server(&server_setup, start, nanos, seed(&mut rng));

    let greetings = ["hello, PORT", "padding hides sizes", "bye"];
    let mut next = 0;
    let mut now = start;
    for _ in 0..1000 {
        let mut busy = false;
        while let Some(bytes) = client.poll_transmit(now) {
            show(now - start, "client → server", &bytes);
            server.handle_input(now, &bytes);
            busy = true;
        }
        while let Some(bytes) = server.poll_transmit(now) {
            show(now - start, "server → client", &bytes);
            client.handle_input(now, &bytes);
            busy = true;
        }
        while let Some(event) = server.poll_event() {
            println!("    server event: {}", describe(&event));
            match event {
                Event::Authenticate { .. } => server.accept(1001)?,
                Event::Data(message) => server.send(message)?,
                Event::Finished => server.close(),
                _ => {}
            }
            busy = true;
        }
        while let Some(event) = client.poll_event() {
            println!("    client event: {}", describe(&event));
            match event {
                Event::Connected { .. } | Event::Data(_) if next < greetings.len() => {
                    client.send(greetings[next].into())?;
                    next += 1;
                }
                Event::Data(_) => client.close(),
                _ => {}
            }
            busy = true;
        }
        if client.is_closed() && server.is_closed() {
            println!("\nboth sides closed: {:?}", client.close_reason());
            return Ok(());
        }
        if !busy {
            let deadlines = [client.poll_timeout(), server.poll_timeout()];
            let Some(t) = deadlines.into_iter().flatten().min() else {
                break;
            };
            now = t;
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    Err("the exchange did not finish".into())
}

fn show(at: Duration, direction: &str, bytes: &[u8]) {
    let head: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    println!(
        "[{:>7.3}s] {direction}: {:>4} bytes  {head}…",
        at.as_secs_f64(),
        bytes.len()
    );
}

fn describe(event: &Event) -> String {
    match event {
        Event::Authenticate { token, client_type } => format!(
            "authenticate (token {:?}, client type {client_type})",
            String::from_utf8_lossy(token)
        ),
        Event::Connected { user_id } => format!("connected (user id {user_id})"),
        Event::Data(m) => format!("message {:?}", String::from_utf8_lossy(m)),
        Event::Finished => "peer finished sending (TERM)".to_string(),
        Event::Closed(reason) => format!("closed: {reason}"),
        other => format!("{other:?}"),
    }
}
