//! Two PORT cores joined in memory: what one side's `poll_transmit` returns is the other
//! side's `handle_input`, on one fixed instant (no timer ever fires).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use port_core::Session;
use port_core::{ClientConfig, Config, Connection, Event, Seed, ServerConfig, ServerKey, Shape};

/// The token every benchmark client presents.
pub const TOKEN: &[u8] = b"bench token";
/// The user id every benchmark server assigns.
pub const USER_ID: u32 = 7;

/// A fresh seed from the operating system, as the driver draws one per connection.
pub fn fresh_seed() -> Seed {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source failed");
    seed
}

/// Wall-clock time since the Unix epoch, as the driver passes it to the cores.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A fresh server key (random secret and seed).
pub fn server_key() -> ServerKey {
    ServerKey::from_parts(fresh_seed(), fresh_seed())
}

/// The client and server setups of one server key.
#[derive(Clone, Debug)]
pub struct Setups {
    /// What clients connect with.
    pub client: ClientConfig,
    /// What the server accepts with (it holds the replay filter).
    pub server: ServerConfig,
}

impl Setups {
    /// Setups for a fresh key, both sides with `config`.
    pub fn new(config: Config) -> Setups {
        Setups::shaped(config, Shape::none())
    }

    /// Setups for a fresh key with `shape`, both sides with `config`.
    pub fn shaped(config: Config, shape: Shape) -> Setups {
        Setups::for_key(config, server_key().with_shape(shape))
    }

    /// Setups for `key` (its shape, its cipher), both sides with `config`.
    pub fn for_key(config: Config, key: ServerKey) -> Setups {
        let client = ClientConfig::new(config.clone(), key.client_key(), TOKEN)
            .expect("a generated key is never weak");
        Setups {
            client,
            server: ServerConfig::new(config, key),
        }
    }

    /// Replaces the server setup by a fresh one with the same key and configuration: an empty
    /// replay filter. The filter refuses new clients once it holds `replay_capacity` salts
    /// younger than the replay window, so a loop of handshakes must start over from time to time.
    pub fn renew_replay_filter(&mut self) {
        let key = self.server.key().clone();
        self.server = ServerConfig::new(self.server.config().clone(), key);
    }
}

/// A client and a server core joined in memory.
pub struct Pair {
    /// The client side.
    pub client: Connection,
    /// The server side.
    pub server: Connection,
    /// The instant every call uses.
    pub now: Instant,
}

impl Pair {
    /// Both cores created now with fresh seeds, before the handshake.
    pub fn new(setups: &Setups) -> Pair {
        let now = Instant::now();
        let unix = unix_now();
        Pair {
            client: Connection::client(&setups.client, now, unix, fresh_seed()),
            server: Connection::server(&setups.server, now, unix, fresh_seed()),
            now,
        }
    }

    /// A pair that completed its handshake, with no byte or event left over.
    pub fn connected(setups: &Setups) -> Pair {
        let mut pair = Pair::new(setups);
        pair.handshake();
        pair
    }

    /// Shuttles bytes until both sides are connected: client INIT, the server's
    /// `Authenticate` (accepted), server INIT, the client's `Connected`. Returns the bytes
    /// both sides sent.
    ///
    /// # Panics
    /// If the handshake fails or does not finish within a few rounds.
    pub fn handshake(&mut self) -> usize {
        let now = self.now;
        let mut wire = 0;
        for _round in 0..8 {
            while let Some(bytes) = self.client.poll_transmit(now) {
                wire += bytes.len();
                self.server.handle_input(now, &bytes);
            }
            while let Some(event) = self.server.poll_event() {
                match event {
                    Event::Authenticate { .. } => self.server.accept(USER_ID).expect("accept"),
                    Event::Connected { .. } => {}
                    other => panic!("server: unexpected {other:?} in the handshake"),
                }
            }
            while let Some(bytes) = self.server.poll_transmit(now) {
                wire += bytes.len();
                self.client.handle_input(now, &bytes);
            }
            let mut connected = false;
            while let Some(event) = self.client.poll_event() {
                match event {
                    Event::Connected { .. } => connected = true,
                    other => panic!("client: unexpected {other:?} in the handshake"),
                }
            }
            if connected && self.server.is_connected() {
                return wire;
            }
        }
        panic!("the handshake did not complete");
    }

    /// Client to server: sends `message`, moves the bytes, returns what the server delivers.
    ///
    /// # Panics
    /// If the server does not deliver exactly that message.
    pub fn client_to_server(&mut self, message: Bytes) -> Bytes {
        one_way(&mut self.client, &mut self.server, self.now, message)
    }

    /// Lets the connection go idle for one keepalive cycle: the clock jumps past both sides'
    /// next timer (`max_next_in` later), the timers fire, and the PINGs and PONGs they cause
    /// are moved until both sides are quiet. Idle connections give back buffer capacity then.
    ///
    /// # Panics
    /// If either side closes.
    pub fn idle_cycle(&mut self, max_next_in: Duration) {
        self.now += max_next_in + Duration::from_secs(1);
        let now = self.now;
        self.client.handle_timeout(now);
        self.server.handle_timeout(now);
        loop {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit(now) {
                self.server.handle_input(now, &bytes);
                moved = true;
            }
            while let Some(bytes) = self.server.poll_transmit(now) {
                self.client.handle_input(now, &bytes);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        assert!(
            self.client.is_connected() && self.server.is_connected(),
            "a keepalive cycle closed the connection"
        );
    }

    /// Server to client: the mirror of [`client_to_server`](Self::client_to_server).
    ///
    /// # Panics
    /// If the client does not deliver exactly that message.
    pub fn server_to_client(&mut self, message: Bytes) -> Bytes {
        one_way(&mut self.server, &mut self.client, self.now, message)
    }
}

/// `from` sends `message`, its bytes go to `to`, and `to` must deliver it.
fn one_way(from: &mut Connection, to: &mut Connection, now: Instant, message: Bytes) -> Bytes {
    from.send(message).expect("send");
    while let Some(bytes) = from.poll_transmit(now) {
        to.handle_input(now, &bytes);
    }
    match to.poll_event() {
        Some(Event::Data(data)) => data,
        other => panic!("expected data, got {other:?}"),
    }
}
