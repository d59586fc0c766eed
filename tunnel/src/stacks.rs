//! The stack a tunnel speaks: `port` alone (the default), or PORT under other layers of the
//! stack registry, such as `port+passthrough`. Both ends must name the same
//! stack: the server with `--stack`, the client in its `--server` URL
//! (`port+passthrough://HOST:PORT`).
//!
//! Stack names are looked up among the built-in stacks, then in the stack files on the stack
//! crate's search path (`$PORT_STACKS_FILE`, `./port-stacks.toml`, `~/.config/port/stacks.toml`;
//! see [`Registry::search_path`]), then in `--stacks-file`, each replacing what came before.
//!
//! Every tunnel stack holds exactly what the tunnel's keys and tokens are for: a `port` layer.
//! A `seaside` layer is refused (it takes other keys and a second TCP connection per client).

use std::path::Path;
use std::sync::Arc;

use port_core::{ClientConfig, ServerConfig};
use port_driver::SessionFactory;
use port_stack::{LayerFactory, Registry, RegistryError, layers};

/// The default stack: PORT directly over TCP.
pub const DEFAULT_STACK: &str = "port";

/// What a tunnel stack must look like, for error messages.
pub const STACK_FORM: &str =
    "a stack with one port layer and no seaside layer (e.g. port or port+passthrough)";

/// What a stacks file looks like, for error messages.
pub const STACKS_FILE_FORM: &str = "a TOML file of named stacks ([stack.NAME] layers = [\"port\", ...]) and [alias] NAME = \"STACK\"";

/// Why the stacks a tunnel resolves names in could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryLoadError {
    /// A file on the search path is broken (the message names it).
    SearchPath(String),
    /// The extra file is broken (the message names it).
    Extra(String),
}

impl std::fmt::Display for RegistryLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryLoadError::SearchPath(e) => {
                write!(f, "cannot load the stack files on the search path: {e}")
            }
            RegistryLoadError::Extra(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for RegistryLoadError {}

/// The built-in stacks, the stack files on the search path, then `extra` (`--stacks-file`).
pub fn load_registry(extra: Option<&Path>) -> Result<Arc<Registry>, RegistryLoadError> {
    let mut registry = Registry::with_builtins();
    let loaded = registry
        .load_search_path()
        .map_err(|e| RegistryLoadError::SearchPath(e.to_string()))?;
    for path in loaded {
        tracing::debug!(path = %path.display(), "loaded stack definitions");
    }
    if let Some(path) = extra {
        registry
            .load_file(path)
            .map_err(|e| RegistryLoadError::Extra(e.to_string()))?;
    }
    Ok(Arc::new(registry))
}

/// A checked tunnel stack.
#[derive(Clone)]
pub struct TunnelStack {
    registry: Arc<Registry>,
    spec: String,
    /// `port` alone: the tunnel then runs PORT connections directly, without a stack around
    /// them.
    plain: bool,
}

impl TunnelStack {
    /// Resolves `spec` in `registry` (see [`load_registry`]); the error says why it cannot
    /// carry a tunnel.
    pub fn resolve(registry: &Arc<Registry>, spec: &str) -> Result<TunnelStack, String> {
        let layers = registry.resolve(spec).map_err(|e| e.to_string())?;
        let ports = layers.iter().filter(|l| *l == "port").count();
        if ports != 1 || layers.iter().any(|l| l == "seaside") {
            return Err(format!(
                "the stack {spec:?} has the layers {}",
                layers.join("+")
            ));
        }
        Ok(TunnelStack {
            registry: registry.clone(),
            spec: spec.to_owned(),
            plain: layers == ["port"],
        })
    }

    /// The stack as it was named.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// True for `port` alone.
    pub fn is_plain_port(&self) -> bool {
        self.plain
    }

    /// The factory of the client's sessions, with `setup` (key, token, configuration).
    pub fn client_factory(&self, setup: ClientConfig) -> SessionFactory {
        self.factory(layers::port::client(setup))
    }

    /// The factory of the server's sessions, with `setup` (key, configuration, replay filter).
    pub fn server_factory(&self, setup: ServerConfig) -> SessionFactory {
        self.factory(layers::port::server(setup))
    }

    /// Sessions with `port` as their PORT layer: the connection itself for `port` alone, a
    /// stack around it otherwise.
    fn factory(&self, port: LayerFactory) -> SessionFactory {
        let cannot = |spec: &str, e: RegistryError| {
            let e = format!("cannot build the stack {spec:?}: {e}");
            port_driver::Error::from(std::io::Error::other(e))
        };
        let spec = self.spec.clone();
        if self.plain {
            return Arc::new(move |start, _peer| port(start, 0).map_err(|e| cannot(&spec, e)));
        }
        let mut registry = (*self.registry).clone();
        registry
            .configure("port", port)
            .expect("every tunnel stack has the built-in port layer");
        Arc::new(move |start, _peer| match registry.build(&spec, start) {
            Ok(stack) => Ok(Box::new(stack)),
            Err(e) => Err(cannot(&spec, e)),
        })
    }
}

impl std::fmt::Debug for TunnelStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStack")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(spec: &str) -> Result<TunnelStack, String> {
        TunnelStack::resolve(&Arc::new(Registry::with_builtins()), spec)
    }

    #[test]
    fn port_alone_is_plain_and_layers_over_port_are_not() {
        let plain = builtin("port").unwrap();
        assert!(plain.is_plain_port());
        let layered = builtin("port+passthrough").unwrap();
        assert!(!layered.is_plain_port());
        assert_eq!(layered.spec(), "port+passthrough");
    }

    #[test]
    fn stacks_without_exactly_one_port_layer_are_refused_with_their_layers() {
        for spec in ["passthrough", "port+port", "seaside", "port+seaside"] {
            let e = builtin(spec).unwrap_err();
            assert!(e.contains(spec), "{spec}: {e}");
        }
        let e = builtin("no-such-layer").unwrap_err();
        assert!(e.contains("no-such-layer"), "{e}");
    }
}
