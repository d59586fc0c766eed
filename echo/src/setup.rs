//! What a server or a client is made of before any socket exists: the stack (from the
//! registry, with the layers that need keys given theirs), the PORT configuration, the
//! connection options, and the factory that builds one session per connection.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use port_core::{ClientConfig, ClientKey, Config, Connection, ServerConfig, ServerKey, seaside};
use port_core::{Session, Start};
use port_driver::{Options, SessionFactory};
use port_stack::registry::factory;
use port_stack::{LayerFactory, Registry, layers};

use crate::error::Error;
use crate::recorder::Recorder;

/// The name of the PORT layer: a stack containing it needs keys.
pub const PORT_LAYER: &str = "port";
/// The name of the seaside layer (upstream SeasideVPN's PORT): it needs seaside keys.
pub const SEASIDE_LAYER: &str = "seaside";

/// The built-in registry, plus the stack files on the search path and, if given, `extra`.
pub fn load_registry(extra: Option<&Path>) -> Result<Registry, Error> {
    let mut registry = Registry::with_builtins();
    let loaded = registry.load_search_path().map_err(|e| {
        Error::msg(format!(
            "cannot load the stack files on the search path: {e}"
        ))
    })?;
    for path in loaded {
        tracing::debug!(path = %path.display(), "loaded stack definitions");
    }
    if let Some(path) = extra {
        registry
            .load_file(path)
            .map_err(|e| Error::msg(format!("bad stacks file {}: {e}", path.display())))?;
    }
    Ok(registry)
}

/// A stack chosen by name (or by the `a+b` form of an address), resolved against a registry.
#[derive(Clone)]
pub struct StackChoice {
    registry: Registry,
    spec: String,
    layers: Vec<String>,
}

impl StackChoice {
    /// Resolves `spec` (a stack name, or layer names joined by `+`, top first).
    pub fn new(registry: Registry, spec: &str) -> Result<StackChoice, Error> {
        let layers = registry.resolve(spec).map_err(Error::msg)?;
        Ok(StackChoice {
            registry,
            spec: spec.to_owned(),
            layers,
        })
    }

    /// The stack as it was asked for.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The layers it resolves to, top first.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// True if the stack holds a PORT layer, which needs keys.
    pub fn has_port(&self) -> bool {
        self.layers.iter().any(|layer| layer == PORT_LAYER)
    }

    /// True if the stack holds a seaside layer, which needs seaside keys.
    pub fn has_seaside(&self) -> bool {
        self.layers.iter().any(|layer| layer == SEASIDE_LAYER)
    }

    /// Gives the layer `name` the factory that holds its keys.
    fn configure(&mut self, name: &str, factory: LayerFactory) {
        // The built-in names are always registered; a stack file cannot shadow them.
        self.registry
            .configure(name, factory)
            .expect("a built-in layer");
    }

    fn build(&self, start: &Start) -> Result<Box<dyn Session + Send>, Error> {
        let stack = self
            .registry
            .build(&self.spec, start)
            .map_err(|e| Error::msg(format!("cannot build stack {:?}: {e}", self.spec)))?;
        Ok(Box::new(stack))
    }
}

impl std::fmt::Debug for StackChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackChoice")
            .field("spec", &self.spec)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

/// Reads a server key file (a `port1-secret:` line, as `echotest keygen` writes it).
pub fn read_server_key(path: &Path) -> Result<ServerKey, Error> {
    port_stack::keyfile::read_server_key(path).map_err(Error::msg)
}

/// Reads a client key file (a `port1-public:` line, as `echotest keygen` writes it).
pub fn read_client_key(path: &Path) -> Result<ClientKey, Error> {
    port_stack::keyfile::read_client_key(path).map_err(Error::msg)
}

/// Reads a seaside listener key file (standard base64 of 40 bytes, as upstream's
/// `SEASIDE_PRIVATE_KEY` holds it, or as `echotest keygen --seaside` writes it).
pub fn read_seaside_server_key(path: &Path) -> Result<seaside::ServerKey, Error> {
    port_stack::keyfile::read_seaside_server_key(path).map_err(Error::msg)
}

/// Reads a seaside client key file (standard base64 of 40 bytes, as an upstream certificate's
/// `typhoon_public` holds it, or as `echotest keygen --seaside` writes it).
pub fn read_seaside_client_key(path: &Path) -> Result<seaside::ClientKey, Error> {
    port_stack::keyfile::read_seaside_client_key(path).map_err(Error::msg)
}

/// The PORT configuration from the `PORT_*` environment variables.
pub fn config_from_env() -> Result<Config, Error> {
    Config::from_vars(std::env::vars_os())
        .map_err(|e| Error::msg(format!("bad configuration: {e}")))
}

/// The `port` layer's set-up on one side.
#[derive(Clone, Debug)]
enum PortSide {
    Client(Box<ClientConfig>),
    Server(ServerConfig),
}

impl PortSide {
    /// The factory of the `port` layer; with a recorder, every connection's sent messages go
    /// to it.
    fn factory(&self, recorder: Option<&Recorder>) -> LayerFactory {
        let Some(recorder) = recorder.cloned() else {
            return match self.clone() {
                PortSide::Client(setup) => layers::port::client(*setup),
                PortSide::Server(setup) => layers::port::server(setup),
            };
        };
        let side = self.clone();
        factory(move |start, _index| {
            let mut conn = match &side {
                PortSide::Client(s) => {
                    Connection::client(s, start.now, start.unix_time, start.seed)
                }
                PortSide::Server(s) => {
                    Connection::server(s, start.now, start.unix_time, start.seed)
                }
            };
            // Before anything was sent, so a client's INIT is recorded too.
            conn.record_to(Some(recorder.sink()));
            Ok(Box::new(conn) as Box<dyn Session + Send>)
        })
    }
}

/// What both sides build a session from: the stack with its keys, and the options of the
/// connections it runs on.
#[derive(Clone, Debug)]
struct Recipe {
    stack: StackChoice,
    options: Options,
    port: Option<PortSide>,
}

impl Recipe {
    fn new(stack: StackChoice, config: &Config, port: Option<PortSide>) -> Recipe {
        let mut recipe = Recipe {
            stack,
            options: Options::for_config(config),
            port,
        };
        recipe.configure_port(None);
        recipe
    }

    fn configure_port(&mut self, recorder: Option<&Recorder>) {
        if let Some(port) = &self.port {
            let factory = port.factory(recorder);
            self.stack.configure(PORT_LAYER, factory);
        }
    }

    /// Checked once at set-up, so a stack that cannot be built fails before any socket exists.
    fn checked(self) -> Result<Self, Error> {
        let start = Start {
            now: std::time::Instant::now(),
            unix_time: std::time::Duration::ZERO,
            seed: [0; 32],
        };
        self.stack.build(&start)?;
        Ok(self)
    }

    fn factory(&self) -> SessionFactory {
        let stack = self.stack.clone();
        Arc::new(move |start, _peer| {
            stack
                .build(start)
                .map_err(|e| port_driver::Error::from(std::io::Error::other(e.to_string())))
        })
    }
}

/// The one-line error for a `port` stack given no key.
fn missing_key(stack: &StackChoice, needs: &str) -> Error {
    Error::msg(format!(
        "stack {:?} contains port and needs {needs}",
        stack.spec()
    ))
}

/// The side a [`Setup`] builds sessions for: a server's (one per accepted connection).
#[derive(Clone, Copy, Debug)]
pub enum ServerSide {}

/// The side a [`Setup`] builds sessions for: a client's.
#[derive(Clone, Copy, Debug)]
pub enum ClientSide {}

/// Everything one side needs to build its sessions: the stack with its keys, and the options of
/// the connections.
#[derive(Clone, Debug)]
pub struct Setup<S> {
    recipe: Recipe,
    side: PhantomData<S>,
}

/// Everything a server needs to build a session for each accepted connection.
pub type ServerSetup = Setup<ServerSide>;

/// Everything a client needs to build its session.
pub type ClientSetup = Setup<ClientSide>;

impl<S> Setup<S> {
    fn checked(recipe: Recipe) -> Result<Self, Error> {
        Ok(Setup {
            recipe: recipe.checked()?,
            side: PhantomData,
        })
    }

    /// Records the PORT messages every connection sends in `recorder` (`--record`).
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recipe.configure_port(Some(&recorder));
        self
    }

    /// The stack.
    pub fn stack(&self) -> &StackChoice {
        &self.recipe.stack
    }

    /// The options of the connections (the handshake timeout bounds a client's TCP connect).
    pub fn options(&self) -> Options {
        self.recipe.options
    }

    /// The factory that builds one session per connection, once its TCP connection is up.
    pub fn factory(&self) -> SessionFactory {
        self.recipe.factory()
    }
}

impl Setup<ServerSide> {
    /// A server running `stack`; `key` is required when the stack holds a PORT layer and
    /// ignored otherwise.
    pub fn new(stack: StackChoice, config: Config, key: Option<ServerKey>) -> Result<Self, Error> {
        let port = match (stack.has_port(), key) {
            (true, Some(key)) => Some(PortSide::Server(ServerConfig::new(config.clone(), key))),
            (true, None) => {
                return Err(missing_key(
                    &stack,
                    "a server key: pass --key FILE (a port1-secret: file from `echotest keygen`)",
                ));
            }
            (false, _) => None,
        };
        Setup::checked(Recipe::new(stack, &config, port))
    }

    /// The same server, handing peers its sessions refused to `fallback` (every byte they
    /// sent first) instead of draining them in silence.
    pub fn with_fallback(mut self, fallback: SocketAddr) -> Self {
        self.recipe.options = self.recipe.options.with_fallback(fallback);
        self
    }

    /// The same server, with at most `max` unauthenticated connections (the oldest goes).
    pub fn with_max_unauthenticated(mut self, max: usize) -> Self {
        self.recipe.options = self.recipe.options.with_max_unauthenticated(max);
        self
    }

    /// A server running a stack with a `seaside` layer (upstream SeasideVPN's PORT), with the
    /// listener key `key`.
    pub fn seaside(
        mut stack: StackChoice,
        config: Config,
        key: seaside::ServerKey,
    ) -> Result<Self, Error> {
        let setup = seaside::ServerConfig::new(config.clone(), key);
        stack.configure(SEASIDE_LAYER, layers::seaside::server(setup));
        Setup::checked(Recipe::new(stack, &config, None))
    }
}

impl Setup<ClientSide> {
    /// A client running `stack`, presenting `token`; `key` is required when the stack holds
    /// a PORT layer and ignored otherwise.
    pub fn new(
        stack: StackChoice,
        config: Config,
        key: Option<ClientKey>,
        token: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let port = match (stack.has_port(), key) {
            (true, Some(key)) => Some(PortSide::Client(Box::new(
                ClientConfig::new(config.clone(), key, token)
                    .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?,
            ))),
            (true, None) => {
                return Err(missing_key(
                    &stack,
                    "the server's client key: pass --key FILE (a port1-public: file from \
                     `echotest keygen`)",
                ));
            }
            (false, _) => None,
        };
        Setup::checked(Recipe::new(stack, &config, port))
    }

    /// A client running a stack with a `seaside` layer (upstream SeasideVPN's PORT) to the
    /// listener whose key is `key`, presenting `token` (an upstream certificate's token).
    pub fn seaside(
        mut stack: StackChoice,
        config: Config,
        key: seaside::ClientKey,
        token: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let setup = seaside::ClientConfig::new(config.clone(), key, token)
            .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?;
        stack.configure(SEASIDE_LAYER, layers::seaside::client(setup));
        Setup::checked(Recipe::new(stack, &config, None))
    }
}
