//! Per-endpoint setup shared by many connections: what a client needs to open one, and what a
//! server shares between all of its connections (its key and the replay filter).

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::config::Config;
use crate::error::Error;
use crate::first_flight::FirstFlight;
use crate::handshake::MAX_TOKEN_LEN;
use crate::keys::{ClientKey, ServerKey};
use crate::replay::ReplayFilter;
use crate::x25519::ServerPoint;

/// Everything a client needs to open connections to one server.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    config: Config,
    key: ClientKey,
    /// The server key decoded for X25519, shared by clones.
    server: Arc<ServerPoint>,
    token: Bytes,
    client_type: u8,
    /// The key's first-flight shape, if any, ready to apply.
    flight: Option<Arc<FirstFlight>>,
}

impl ClientConfig {
    /// A client of the server identified by `key`, presenting `token`.
    ///
    /// Fails with [`Error::TokenTooLarge`] if the token exceeds [`MAX_TOKEN_LEN`], and with
    /// [`Error::WeakServerKey`] if the key's public part is a low-order point.
    pub fn new(config: Config, key: ClientKey, token: impl Into<Bytes>) -> Result<Self, Error> {
        let token = token.into();
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenTooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let server = ServerPoint::new(key.public());
        if server.point().is_low_order() {
            return Err(Error::WeakServerKey);
        }
        Ok(ClientConfig {
            config,
            flight: FirstFlight::new(key.shape(), key.seed()),
            key,
            server: Arc::new(server),
            token,
            client_type: 0,
        })
    }

    /// Sets the client type byte sent in the INIT (0 = custom, the default).
    pub fn with_client_type(mut self, client_type: u8) -> Self {
        self.client_type = client_type;
        self
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The server's client key.
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// The server key as the handshake multiplies by it.
    pub(crate) fn server_point(&self) -> &ServerPoint {
        &self.server
    }

    pub(crate) fn first_flight(&self) -> Option<&Arc<FirstFlight>> {
        self.flight.as_ref()
    }

    /// The token sent in the INIT.
    pub fn token(&self) -> &Bytes {
        &self.token
    }

    /// The client type byte sent in the INIT.
    pub fn client_type(&self) -> u8 {
        self.client_type
    }
}

/// A server's key, configuration and replay filter, shared (cheaply cloned) by all of its
/// connections. Use one `ServerConfig` per listening key: replay protection only covers INITs
/// seen by connections made from the same value or its clones.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    shared: Arc<ServerShared>,
}

#[derive(Debug)]
struct ServerShared {
    config: Config,
    key: ServerKey,
    replay: Mutex<ReplayFilter>,
    flight: Option<Arc<FirstFlight>>,
}

impl ServerConfig {
    /// A server with `key`, applying `config` to every connection.
    pub fn new(config: Config, key: ServerKey) -> Self {
        let replay = ReplayFilter::new(config.replay_window().as_secs(), config.replay_capacity());
        ServerConfig {
            shared: Arc::new(ServerShared {
                config,
                flight: FirstFlight::new(key.shape(), key.seed()),
                key,
                replay: Mutex::new(replay),
            }),
        }
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The server key.
    pub fn key(&self) -> &ServerKey {
        &self.shared.key
    }

    pub(crate) fn first_flight(&self) -> Option<&Arc<FirstFlight>> {
        self.shared.flight.as_ref()
    }

    pub(crate) fn replay(&self) -> MutexGuard<'_, ReplayFilter> {
        // The filter is consistent after every call, so a panic elsewhere cannot leave it
        // half-updated: recover from poisoning instead of propagating it.
        self.shared
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
