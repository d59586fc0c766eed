//! Fixed keys, configurations, scenarios and chunking shared by the targets and the corpus
//! generator. Everything here is deterministic: the generator and the targets build the same
//! connections, so a recorded byte stream authenticates when a target replays it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::Session;
use port_core::frame::HEADER_WIRE_LEN;
use port_core::{
    ClientConfig, Config, Connection, Event, MAX_PADDING, MAX_TOKEN_LEN, Padding, Seed,
    ServerConfig, ServerKey, Status,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Wall-clock time of every connection (the test vectors' Unix time, 2027-01-15).
pub const UNIX: Duration = Duration::from_secs(1_800_000_000);
/// Key generator seed of the test vectors (`key-rng-seed`).
pub const KEY_RNG_SEED: [u8; 32] = [0x11; 32];
/// Client connection seed of the test vectors.
pub const CLIENT_SEED: Seed = [0xc1; 32];
/// Server connection seed of the test vectors.
pub const SERVER_SEED: Seed = [0x5e; 32];
/// The user id a scripted server accepts with.
pub const USER_ID: u32 = 0x0102_0304;
/// The three answers a scripted server gives to a client INIT: each yields one genuine server
/// INIT per scenario.
pub const DECISIONS: [Decision; 3] = [
    Decision::Accept(USER_ID),
    Decision::Reject(Status::TokenParseError),
    Decision::Reject(Status::Application(0x1234)),
];
/// Bytes of the authentication tag of an AEAD seal.
pub const TAG_LEN: usize = 16;

/// The server application's answer to `Authenticate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `accept(user_id)`.
    Accept(u32),
    /// `reject(status)`.
    Reject(Status),
}

impl Decision {
    /// Applies the decision.
    pub fn apply(self, server: &mut Connection) -> Result<(), port_core::Error> {
        match self {
            Decision::Accept(id) => server.accept(id),
            Decision::Reject(status) => server.reject(status),
        }
    }
}

/// One instant shared by every connection of the process (`Instant::now` once).
pub fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The server key of the test vectors.
pub fn server_key() -> &'static ServerKey {
    static KEY: OnceLock<ServerKey> = OnceLock::new();
    KEY.get_or_init(|| ServerKey::generate(&mut ChaCha20Rng::from_seed(KEY_RNG_SEED)))
}

/// Number of configuration presets.
pub const PRESETS: usize = 5;

fn fast() -> port_core::ConfigBuilder {
    Config::builder()
        .handshake_timeout(Duration::from_secs(5))
        .min_timeout(Duration::from_millis(500))
        .default_timeout(Duration::from_secs(1))
        .max_timeout(Duration::from_secs(2))
        .min_next_in(Duration::from_secs(2))
        .max_next_in(Duration::from_secs(4))
        .max_retries(3)
        .drain_min(Duration::from_secs(10))
        .drain_max(Duration::from_secs(20))
}

/// Configuration preset `i % PRESETS`:
///
/// 0. the test vectors' (defaults, padding up to 16 bytes);
/// 1. the defaults;
/// 2. short timers (seconds), default sizes;
/// 3. short timers, the smallest frame payload (256), 4 KiB messages, padding up to 8192;
/// 4. short timers, the largest frame payload (65535), 1 MiB messages, no padding.
pub fn preset(i: u8) -> &'static Config {
    static PRESET: OnceLock<Vec<Config>> = OnceLock::new();
    let all = PRESET.get_or_init(|| {
        vec![
            Config::builder()
                .tail_length(16)
                .build()
                .expect("vector config"),
            Config::default(),
            fast().build().expect("fast config"),
            fast()
                .max_frame_payload(256)
                .max_message(4096)
                .tail_length(MAX_PADDING as u16)
                .build()
                .expect("small config"),
            fast()
                .max_frame_payload(65_535)
                .max_message(1 << 20)
                .padding(Padding::NONE)
                .build()
                .expect("wide config"),
        ]
    });
    &all[usize::from(i) % PRESETS]
}

/// One maximum frame, `28 + max_frame_payload + 8192 + 16` bytes: the most a connection holds
/// once it reads nothing but frames.
pub fn frame_bound(config: &Config) -> usize {
    HEADER_WIRE_LEN + config.max_frame_payload() + MAX_PADDING + TAG_LEN
}

/// Checks `receive_buffered()`: never above `max_receive_buffered()`, which must be
/// `28 + max(max_frame_payload, 4096) + 8192 + 16` bytes as documented (a server holds a whole
/// client INIT body, up to `4096 + 8192 + 16` bytes), and never above one maximum frame once
/// `past_init` (a client always is: a server INIT body is at most `8192 + 16` bytes).
pub fn check_receive_buffered(conn: &Connection, config: &Config, past_init: bool) {
    let side = conn.side();
    let held = conn.receive_buffered();
    let max = conn.max_receive_buffered();
    let documented =
        HEADER_WIRE_LEN + config.max_frame_payload().max(MAX_TOKEN_LEN) + MAX_PADDING + TAG_LEN;
    assert_eq!(max, documented, "{side:?}: max_receive_buffered()");
    assert!(
        held <= max,
        "{side:?}: receive_buffered() = {held} above max_receive_buffered() = {max}"
    );
    if past_init {
        let frame = frame_bound(config);
        assert!(
            held <= frame,
            "{side:?}: receive_buffered() = {held} above one maximum frame ({frame})"
        );
    }
}

/// A token of `len` bytes (at most `MAX_TOKEN_LEN`), distinct per `tag`.
pub fn token(len: usize, tag: u8) -> Bytes {
    let len = len.min(MAX_TOKEN_LEN);
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag))
        .collect::<Vec<u8>>()
        .into()
}

/// A handshake scenario: both sides' configurations, the token and the client type.
pub struct Scenario {
    /// Client configuration preset.
    pub client_preset: u8,
    /// Server configuration preset.
    pub server_preset: u8,
    /// The client's token.
    pub token: Bytes,
    /// The client type byte.
    pub client_type: u8,
    client_setup: ClientConfig,
}

/// Number of scenarios.
pub const SCENARIOS: usize = 4;

/// Scenario `i % SCENARIOS`:
///
/// 0. the test vectors' parameters (token, client type, configuration);
/// 1. defaults, an empty token;
/// 2. small frames and padding up to 8192 on both sides, the largest token (4096 bytes);
/// 3. a wide client against a short-timer server, a 300-byte token.
pub fn scenario(i: u8) -> &'static Scenario {
    static ALL: OnceLock<Vec<Scenario>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        [
            (0, 0, Bytes::from_static(b"PORT/1 test vector token"), 0x2a),
            (1, 1, Bytes::new(), 0),
            (3, 3, token(MAX_TOKEN_LEN, 0xa5), 0xff),
            (4, 2, token(300, 7), 7),
        ]
        .into_iter()
        .map(|(client_preset, server_preset, token, client_type)| {
            let client_setup = ClientConfig::new(
                preset(client_preset).clone(),
                server_key().client_key(),
                token.clone(),
            )
            .expect("scenario client setup")
            .with_client_type(client_type);
            Scenario {
                client_preset,
                server_preset,
                token,
                client_type,
                client_setup,
            }
        })
        .collect()
    });
    &all[usize::from(i) % SCENARIOS]
}

impl Scenario {
    /// The client setup.
    pub fn client_setup(&self) -> &ClientConfig {
        &self.client_setup
    }

    /// A fresh server setup (its own replay filter).
    pub fn server_setup(&self) -> ServerConfig {
        ServerConfig::new(preset(self.server_preset).clone(), server_key().clone())
    }

    /// The scenario's client at `now`, with the vectors' client seed.
    pub fn client(&self, now: Instant) -> Connection {
        Connection::client(&self.client_setup, now, UNIX, CLIENT_SEED)
    }

    /// The scenario's server at `now` (fresh setup), with the vectors' server seed.
    pub fn server(&self, now: Instant) -> Connection {
        Connection::server(&self.server_setup(), now, UNIX, SERVER_SEED)
    }

    /// The client INIT the scenario's client sends.
    pub fn client_init(&self) -> Vec<u8> {
        let mut client = self.client(base());
        let init = client.poll_transmit(base()).expect("client INIT");
        assert!(client.poll_transmit(base()).is_none());
        init.to_vec()
    }

    /// The server INIT the scenario's server answers with under `decision`.
    pub fn server_init(&self, decision: Decision) -> Vec<u8> {
        let now = base();
        let mut server = self.server(now);
        server.handle_input(now, &self.client_init());
        assert!(matches!(
            server.poll_event(),
            Some(Event::Authenticate { .. })
        ));
        decision
            .apply(&mut server)
            .expect("a decision on a pending INIT");
        server.poll_transmit(now).expect("server INIT").to_vec()
    }
}

/// Every genuine client INIT: one per scenario.
pub fn client_inits() -> &'static [Vec<u8>] {
    static INITS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    INITS.get_or_init(|| {
        (0..SCENARIOS as u8)
            .map(|i| scenario(i).client_init())
            .collect()
    })
}

/// Every genuine server INIT of scenario `i`: one per entry of [`DECISIONS`].
pub fn server_inits(i: u8) -> &'static [Vec<u8>] {
    static INITS: OnceLock<Vec<Vec<Vec<u8>>>> = OnceLock::new();
    let all = INITS.get_or_init(|| {
        (0..SCENARIOS as u8)
            .map(|s| {
                DECISIONS
                    .iter()
                    .map(|&d| scenario(s).server_init(d))
                    .collect()
            })
            .collect()
    });
    &all[usize::from(i) % SCENARIOS]
}

/// Cuts a byte stream into pieces, as chosen by two input bytes.
#[derive(Clone, Debug)]
pub struct Chunker {
    kind: u8,
    param: u8,
    state: u32,
}

impl Chunker {
    /// `mode % 4` picks the kind: 0 whole, 1 one byte at a time, 2 pieces of `param + 1` bytes,
    /// 3 pseudo-random pieces of 1..=512 bytes seeded by `param`.
    pub fn new(mode: u8, param: u8) -> Self {
        Chunker {
            kind: mode % 4,
            param,
            state: 0x9e37_79b9 ^ u32::from(param),
        }
    }

    /// The size of the next piece, in `1..=remaining` (`remaining` > 0).
    pub fn next(&mut self, remaining: usize) -> usize {
        let n = match self.kind {
            0 => remaining,
            1 => 1,
            2 => usize::from(self.param) + 1,
            _ => {
                // xorshift32
                self.state ^= self.state << 13;
                self.state ^= self.state >> 17;
                self.state ^= self.state << 5;
                1 + (self.state % 512) as usize
            }
        };
        n.clamp(1, remaining)
    }
}
