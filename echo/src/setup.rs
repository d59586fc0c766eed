//! What a server or a client is made of before any socket exists: the stack (from the
//! registry), the keys (from files), the PORT configuration, and a factory that builds one
//! [`Session`] per connection.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use port_core::{ClientConfig, ClientKey, Config, ServerConfig, ServerKey, Session, Side, seaside};
use port_driver::SessionFactory;
use stack::{LayerContext, Registry};

use crate::error::Error;
use crate::tap::{Tap, Tapped};

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
    registry: Arc<Registry>,
    spec: String,
    layers: Vec<String>,
}

impl StackChoice {
    /// Resolves `spec` (a stack name, or layer names joined by `+`, top first).
    pub fn new(registry: Registry, spec: &str) -> Result<StackChoice, Error> {
        let layers = registry.resolve(spec).map_err(Error::msg)?;
        Ok(StackChoice {
            registry: Arc::new(registry),
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

    fn build(&self, context: &LayerContext) -> Result<Box<dyn Session + Send>, Error> {
        let stack = self
            .registry
            .build(&self.spec, context)
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
    stack::keyfile::read_server_key(path).map_err(Error::msg)
}

/// Reads a client key file (a `port1-public:` line, as `echotest keygen` writes it).
pub fn read_client_key(path: &Path) -> Result<ClientKey, Error> {
    stack::keyfile::read_client_key(path).map_err(Error::msg)
}

/// Reads a seaside listener key file (standard base64 of 40 bytes, as upstream's
/// `SEASIDE_PRIVATE_KEY` holds it, or as `echotest keygen --seaside` writes it).
pub fn read_seaside_server_key(path: &Path) -> Result<seaside::ServerKey, Error> {
    stack::keyfile::read_seaside_server_key(path).map_err(Error::msg)
}

/// Reads a seaside client key file (standard base64 of 40 bytes, as an upstream certificate's
/// `typhoon_public` holds it, or as `echotest keygen --seaside` writes it).
pub fn read_seaside_client_key(path: &Path) -> Result<seaside::ClientKey, Error> {
    stack::keyfile::read_seaside_client_key(path).map_err(Error::msg)
}

/// The PORT configuration from the `PORT_*` environment variables.
pub fn config_from_env() -> Result<Config, Error> {
    Config::from_env().map_err(|e| Error::msg(format!("bad configuration: {e}")))
}

/// What both sides build a session from: the stack, the side's PORT setup (if the stack
/// has a `port` layer), and optional byte counters.
#[derive(Clone, Debug)]
struct Recipe {
    stack: StackChoice,
    side: Side,
    client: Option<ClientConfig>,
    server: Option<ServerConfig>,
    seaside_client: Option<seaside::ClientConfig>,
    seaside_server: Option<seaside::ServerConfig>,
    /// Bounds the TCP connect and the linger after a connection's last handle.
    limit: Duration,
    meter: Option<Meter>,
    recorder: Option<crate::recorder::Recorder>,
}

impl Recipe {
    /// Builds one session; checked once at setup, so a stack that cannot be built fails
    /// before any socket exists.
    fn build(&self) -> Result<Box<dyn Session + Send>, Error> {
        let mut context = LayerContext::fresh(self.side).map_err(|e| Error::msg(e.to_string()))?;
        context.client = self.client.clone();
        context.server = self.server.clone();
        context.seaside_client = self.seaside_client.clone();
        context.seaside_server = self.seaside_server.clone();
        let session = self.stack.build(&context)?;
        let session: Box<dyn Session + Send> = match &self.meter {
            Some(meter) => Box::new(Metered::new(session, meter.clone())),
            None => session,
        };
        Ok(match &self.recorder {
            Some(r) => Box::new(crate::recorder::Recorded::recording(session, r.clone())),
            None => session,
        })
    }

    fn checked(self) -> Result<Self, Error> {
        self.build()?;
        Ok(self)
    }
}

/// The one-line error for a `port` stack given no key.
fn missing_key(stack: &StackChoice, needs: &str) -> Error {
    Error::msg(format!(
        "stack {:?} contains port and needs {needs}",
        stack.spec()
    ))
}

/// Everything a server needs to build a session for each accepted connection.
#[derive(Clone, Debug)]
pub struct ServerSetup(Recipe);

impl ServerSetup {
    /// A server running `stack`; `key` is required when the stack holds a PORT layer and
    /// ignored otherwise.
    pub fn new(stack: StackChoice, config: Config, key: Option<ServerKey>) -> Result<Self, Error> {
        let limit = config.handshake_timeout();
        let server = match (stack.has_port(), key) {
            (true, Some(key)) => Some(ServerConfig::new(config, key)),
            (true, None) => {
                return Err(missing_key(
                    &stack,
                    "a server key: pass --key FILE (a port1-secret: file from `echotest keygen`)",
                ));
            }
            (false, _) => None,
        };
        let recipe = Recipe {
            stack,
            side: Side::Server,
            client: None,
            server,
            seaside_client: None,
            seaside_server: None,
            limit,
            meter: None,
            recorder: None,
        };
        Ok(ServerSetup(recipe.checked()?))
    }

    /// A server running a stack with a `seaside` layer (upstream SeasideVPN's PORT), with the
    /// listener key `key`.
    pub fn seaside(
        stack: StackChoice,
        config: Config,
        key: seaside::ServerKey,
    ) -> Result<Self, Error> {
        let recipe = Recipe {
            stack,
            side: Side::Server,
            client: None,
            server: None,
            limit: config.handshake_timeout(),
            seaside_client: None,
            seaside_server: Some(seaside::ServerConfig::new(config, key)),
            meter: None,
            recorder: None,
        };
        Ok(ServerSetup(recipe.checked()?))
    }

    /// Counts the bytes every connection of this server writes and reads in `meter`.
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.0.meter = Some(meter);
        self
    }

    /// Records the PORT messages every connection sends in `recorder` (`--record`).
    pub fn with_recorder(mut self, recorder: crate::recorder::Recorder) -> Self {
        self.0.recorder = Some(recorder);
        self
    }

    /// The stack.
    pub fn stack(&self) -> &StackChoice {
        &self.0.stack
    }

    /// How long a connection whose handles were all dropped waits for a clean end.
    pub fn linger(&self) -> Duration {
        self.0.limit
    }

    /// Builds the server session of one connection.
    pub fn build(&self) -> Result<Box<dyn Session + Send>, Error> {
        self.0.build()
    }

    /// The factory a listener calls for every accepted TCP connection.
    pub fn factory(&self) -> SessionFactory {
        let recipe = self.0.clone();
        Arc::new(move |_peer| {
            recipe
                .build()
                .map_err(|e| port_driver::Error::from(io::Error::other(e.to_string())))
        })
    }
}

/// Everything a client needs to build its session.
#[derive(Clone, Debug)]
pub struct ClientSetup(Recipe);

impl ClientSetup {
    /// A client running `stack`, presenting `token`; `key` is required when the stack holds
    /// a PORT layer and ignored otherwise.
    pub fn new(
        stack: StackChoice,
        config: Config,
        key: Option<ClientKey>,
        token: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let limit = config.handshake_timeout();
        let client = match (stack.has_port(), key) {
            (true, Some(key)) => Some(
                ClientConfig::new(config, key, token)
                    .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?,
            ),
            (true, None) => {
                return Err(missing_key(
                    &stack,
                    "the server's client key: pass --key FILE (a port1-public: file from \
                     `echotest keygen`)",
                ));
            }
            (false, _) => None,
        };
        let recipe = Recipe {
            stack,
            side: Side::Client,
            client,
            server: None,
            seaside_client: None,
            seaside_server: None,
            limit,
            meter: None,
            recorder: None,
        };
        Ok(ClientSetup(recipe.checked()?))
    }

    /// A client running a stack with a `seaside` layer (upstream SeasideVPN's PORT) to the
    /// listener whose key is `key`, presenting `token` (an upstream certificate's token).
    pub fn seaside(
        stack: StackChoice,
        config: Config,
        key: seaside::ClientKey,
        token: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        let limit = config.handshake_timeout();
        let setup = seaside::ClientConfig::new(config, key, token)
            .map_err(|e| Error::msg(format!("cannot use this key and token: {e}")))?;
        let recipe = Recipe {
            stack,
            side: Side::Client,
            client: None,
            server: None,
            seaside_client: Some(setup),
            seaside_server: None,
            limit,
            meter: None,
            recorder: None,
        };
        Ok(ClientSetup(recipe.checked()?))
    }

    /// Counts the bytes the connection writes and reads in `meter`.
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.0.meter = Some(meter);
        self
    }

    /// Records the PORT messages the client sends in `recorder` (`--record`).
    pub fn with_recorder(mut self, recorder: crate::recorder::Recorder) -> Self {
        self.0.recorder = Some(recorder);
        self
    }

    /// The stack.
    pub fn stack(&self) -> &StackChoice {
        &self.0.stack
    }

    /// The bound on the TCP connect (and on the linger after the last handle).
    pub fn limit(&self) -> Duration {
        self.0.limit
    }

    /// Builds the client session.
    pub fn build(&self) -> Result<Box<dyn Session + Send>, Error> {
        self.0.build()
    }
}

/// Byte counters shared between a metered session and whoever reads them.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    written: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
}

impl Meter {
    /// Fresh counters at zero.
    pub fn new() -> Meter {
        Meter::default()
    }

    /// Bytes the session handed to the transport (what crossed the socket outward).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes the transport handed to the session (what crossed the socket inward).
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

/// A session that counts the bytes crossing its transport in a [`Meter`].
pub type Metered = Tapped<Meter>;

impl Tap for Meter {
    fn input(&mut self, data: &[u8]) {
        self.read.fetch_add(data.len() as u64, Ordering::Relaxed);
    }
    fn transmit(&mut self, _session: &mut dyn Session, bytes: Option<&Bytes>) {
        if let Some(bytes) = bytes {
            self.written
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    }
}
