//! What builds a layer: a [`LayerFactory`], holding whatever set-up its layer needs.

use std::sync::Arc;

use port_core::{Session, Start};

use crate::error::RegistryError;

/// Builds one layer of one connection from the connection's [`Start`] (its seed already
/// derived for this layer) and the layer's index in the stack (0 = bottom).
pub type LayerFactory =
    Arc<dyn Fn(&Start, usize) -> Result<Box<dyn Session + Send>, RegistryError> + Send + Sync>;

/// Wraps a closure into a [`LayerFactory`].
pub fn factory<F>(f: F) -> LayerFactory
where
    F: Fn(&Start, usize) -> Result<Box<dyn Session + Send>, RegistryError> + Send + Sync + 'static,
{
    Arc::new(f)
}
