//! Regression tests for cases found by the fuzz targets in `fuzz/` (see `fuzz/README.md`).

use std::time::{Duration, Instant};

use port_core::Session;
use port_core::frame::{BODY_TAG_LEN, HEADER_WIRE_LEN};
use port_core::{
    CLIENT_PREFIX_LEN, ClientConfig, Config, Connection, Event, MAX_PADDING, MAX_TOKEN_LEN,
    ServerConfig, ServerKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const UNIX: Duration = Duration::from_secs(1_800_000_000);

/// A server holds a client INIT body (token, padding and tag: up to `4096 + 8192 + 16` bytes)
/// until all of it arrived, which is more than one maximum frame of a server whose
/// `max_frame_payload` is below 4068. `max_receive_buffered()` accounts for it, and
/// `receive_buffered()` never exceeds it.
#[test]
fn server_reading_a_client_init_buffers_at_most_one_maximum_frame() {
    let key = ServerKey::generate(&mut ChaCha20Rng::from_seed([0x11; 32]));
    let server_config = Config::builder().max_frame_payload(256).build().unwrap();
    let ceiling = HEADER_WIRE_LEN + server_config.max_frame_payload() + MAX_PADDING + BODY_TAG_LEN;

    // A legitimate client: the largest token, padding of up to 8192 bytes.
    let client_config = Config::builder()
        .tail_length(MAX_PADDING as u16)
        .build()
        .unwrap();
    let setup =
        ClientConfig::new(client_config, key.client_key(), vec![7u8; MAX_TOKEN_LEN]).unwrap();
    let now = Instant::now();
    // The first connection seed whose padding draw makes the INIT body longer than the ceiling.
    let init = (0..=u8::MAX)
        .find_map(|s| {
            let mut client = Connection::client(&setup, now, UNIX, [s; 32]);
            let init = client.poll_transmit(now).unwrap();
            (init.len() - CLIENT_PREFIX_LEN > ceiling + 1).then_some(init)
        })
        .expect("a client INIT body longer than one maximum frame of the server");

    let mut server = Connection::server(
        &ServerConfig::new(server_config, key),
        now,
        UNIX,
        [0x5e; 32],
    );
    let mut held = 0;
    for byte in init.chunks(1) {
        server.handle_input(now, byte);
        held = held.max(server.receive_buffered());
    }
    assert!(matches!(
        server.poll_event(),
        Some(Event::Authenticate { .. })
    ));
    assert!(
        held > ceiling,
        "the case needs an INIT body above one frame"
    );
    let bound = server.max_receive_buffered();
    assert!(
        held <= bound,
        "the server held {held} bytes of a client INIT; max_receive_buffered() is {bound}"
    );
}
