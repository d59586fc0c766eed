//! Per-endpoint setup of the seaside profile: what a client needs to open sessions to one
//! listener, and what a listener shares between its sessions.

use std::sync::Arc;

use bytes::Bytes;

use super::keys::{ClientKey, ServerKey};
use super::wire::MAX_TOKEN_LEN;
use crate::config::Config;
use crate::error::Error;
use crate::x25519::PeerPoint;

/// Everything a seaside client needs to connect to one listener.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    config: Config,
    key: ClientKey,
    token: Bytes,
    client_type: u8,
}

impl ClientConfig {
    /// A client of the listener whose key is `key`, presenting `token` (opaque: an upstream
    /// certificate's `token` field, as it is).
    ///
    /// Fails with [`Error::TokenTooLarge`] above [`MAX_TOKEN_LEN`] bytes (the sealed length
    /// must fit a u16) and with [`Error::WeakServerKey`] if the key's public part is a
    /// low-order point.
    pub fn new(config: Config, key: ClientKey, token: impl Into<Bytes>) -> Result<Self, Error> {
        let token = token.into();
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenTooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if PeerPoint::new(key.public()).is_low_order() {
            return Err(Error::WeakServerKey);
        }
        Ok(ClientConfig {
            config,
            key,
            token,
            client_type: 0,
        })
    }

    /// Sets the client type byte (0 = custom, the default; upstream's Python client sends
    /// 65, its Rust client 82). Upstream listeners only log it.
    pub fn with_client_type(mut self, client_type: u8) -> Self {
        self.client_type = client_type;
        self
    }

    /// The configuration: `handshake_timeout` (`PORT_TIMEOUT`) bounds the wait for the server
    /// INIT and the second connection; the padding maximum (`PORT_TAIL_LENGTH`, capped at 512)
    /// bounds the tails.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The listener's key.
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// The token.
    pub fn token(&self) -> &Bytes {
        &self.token
    }

    /// The client type byte.
    pub fn client_type(&self) -> u8 {
        self.client_type
    }
}

/// A seaside listener's key and configuration, cheaply cloned into each session.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    config: Config,
    key: Arc<ServerKey>,
}

impl ServerConfig {
    /// A listener with `key`, applying `config` to every session: `handshake_timeout`
    /// (`PORT_TIMEOUT`) bounds the decision and the second connection, `drain_min`..`drain_max`
    /// the life of a connection that never authenticates.
    pub fn new(config: Config, key: ServerKey) -> Self {
        ServerConfig {
            config,
            key: Arc::new(key),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The listener's key.
    pub fn key(&self) -> &ServerKey {
        &self.key
    }
}
