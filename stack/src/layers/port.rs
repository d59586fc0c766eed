//! `port`: a PORT/1 connection as a layer. A [`Connection`] is a [`Session`] of its own, so the
//! layer is the connection itself: its "up" is the end of the PORT handshake, its "down"
//! carries PORT's close reason. What this file adds is the factories that hold its keys.

use port_core::{ClientConfig, Connection, ServerConfig, Session};

use crate::error::RegistryError;
use crate::factory::{LayerFactory, factory};

/// What an unconfigured `port` layer needs, for [`RegistryError::MissingSetup`].
pub const NEEDS: &str = "its keys: configure it with port_stack::layers::port::client(ClientConfig) \
     or port_stack::layers::port::server(ServerConfig)";

/// Builds client connections with `setup` (the server's client key, the token, the
/// configuration); the INIT goes out once the layer below is up.
pub fn client(setup: ClientConfig) -> LayerFactory {
    factory(move |start, _| {
        let conn = Connection::client(&setup, start.now, start.unix_time, start.seed);
        Ok(Box::new(conn) as Box<dyn Session + Send>)
    })
}

/// Builds server connections with `setup` (the server key, the configuration, the replay
/// filter all its connections share).
pub fn server(setup: ServerConfig) -> LayerFactory {
    factory(move |start, _| {
        let conn = Connection::server(&setup, start.now, start.unix_time, start.seed);
        Ok(Box::new(conn) as Box<dyn Session + Send>)
    })
}

/// The built-in `port` before the application configured it: names resolve, building fails
/// with [`RegistryError::MissingSetup`].
pub(crate) fn unconfigured() -> LayerFactory {
    factory(|_, _| {
        Err(RegistryError::MissingSetup {
            layer: "port".to_owned(),
            needs: NEEDS,
        })
    })
}
