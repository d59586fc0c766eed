//! `seaside`: a session of the seaside wire profile (upstream SeasideVPN's PORT) as a layer.
//! A [`seaside::Connection`](Connection) is a [`Session`] of its own; this file holds the
//! factories that give it its keys. It moves to a second TCP connection after its handshake,
//! which only the bottom layer can ask its driver for, so it is refused anywhere else.

use port_core::Session;
use port_core::seaside::{ClientConfig, Connection, ServerConfig};

use crate::error::RegistryError;
use crate::factory::{LayerFactory, factory};
use crate::names::quoted;

/// What an unconfigured `seaside` layer needs, for [`RegistryError::MissingSetup`].
pub const NEEDS: &str = "upstream keys: configure it with \
     port_stack::layers::seaside::client(seaside::ClientConfig) or \
     port_stack::layers::seaside::server(seaside::ServerConfig)";

/// Builds client sessions with `setup` (the listener's key and the token).
pub fn client(setup: ClientConfig) -> LayerFactory {
    factory(move |start, index| {
        bottom_only(index)?;
        let conn = Connection::client(&setup, start.now, start.seed);
        Ok(Box::new(conn) as Box<dyn Session + Send>)
    })
}

/// Builds listener sessions with `setup` (the listener's private key).
pub fn server(setup: ServerConfig) -> LayerFactory {
    factory(move |start, index| {
        bottom_only(index)?;
        let conn = Connection::server(&setup, start.now, start.seed);
        Ok(Box::new(conn) as Box<dyn Session + Send>)
    })
}

/// The built-in `seaside` before the application configured it.
pub(crate) fn unconfigured() -> LayerFactory {
    factory(|_, index| {
        bottom_only(index)?;
        Err(RegistryError::MissingSetup {
            layer: "seaside".to_owned(),
            needs: NEEDS,
        })
    })
}

/// Refuses a layer that owns the transport anywhere but at the bottom.
fn bottom_only(index: usize) -> Result<(), RegistryError> {
    if index == 0 {
        return Ok(());
    }
    Err(RegistryError::Invalid {
        what: format!("layer {}", quoted("seaside")),
        why: "it moves to a second TCP connection, so it must be the bottom (rightmost) layer"
            .to_owned(),
    })
}
