//! Settings from three places, in order of precedence: command-line flags, then `PORT_*`
//! environment variables, then a TOML file (`--config FILE`).
//!
//! Each tunnel setting has a flag, a `PORT_TUNNEL_*` variable and a key in the file's
//! `[server]` or `[client]` table; PORT protocol settings (padding, keepalive, timeouts) come
//! from the `PORT_*` variables `port_core::Config::from_vars` knows, or from the file's `[port]`
//! table, where `tail_length = 0` stands for `PORT_TAIL_LENGTH=0`. Keys and tokens are only
//! ever read from files: the settings name the files. Relative paths in the TOML file are
//! relative to the file's directory, so a config file can sit next to its keys.
//!
//! ```toml
//! log_level = "info"
//!
//! [server]
//! listen = "0.0.0.0:9000"
//! key_file = "keys/server.key"
//! forward = "127.0.0.1:22"
//! tokens_file = "tokens"
//! stack = "port"
//! # stacks_file = "stacks.toml"   (named stacks for `stack` and the client's `server` URL)
//!
//! [client]
//! listen = "127.0.0.1:2222"
//! server = "port://tunnel.example.org:9000"
//! key_file = "keys/client.key"
//! token_file = "token"
//! # early_data = "on"   (an application's first bytes in the INIT: see --early-data)
//!
//! [port]
//! tail_length = 512
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use port_core::Config;
use port_stack::{Address, Registry};

use crate::allow::{ALLOW_FORM, AllowList};
use crate::config_file::{self, ConfigFile, ENV_PREFIX, FileValues};
use crate::error::Error;
use crate::stacks::{
    DEFAULT_STACK, RegistryLoadError, STACK_FORM, STACKS_FILE_FORM, TunnelStack, load_registry,
};

/// Which table of the file a setting lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Top,
    Server,
    Client,
}

impl Section {
    fn table(self) -> &'static str {
        match self {
            Section::Top => "top level",
            Section::Server => "[server]",
            Section::Client => "[client]",
        }
    }
}

/// One setting: its flag, its variable, its key in the file.
struct Field {
    flag: &'static str,
    env: &'static str,
    key: &'static str,
    section: Section,
    /// What a valid value looks like, for the missing-setting error.
    expected: &'static str,
    /// Its value in the file, if there.
    in_file: fn(&ConfigFile) -> Option<&String>,
}

const LOG_LEVEL: Field = Field {
    flag: "--log-level",
    env: "PORT_TUNNEL_LOG_LEVEL",
    key: "log_level",
    section: Section::Top,
    expected: "a level (error, warn, info, debug, trace) or tracing directives",
    in_file: |file| file.log_level.as_ref(),
};

macro_rules! field {
    ($name:ident, $section:ident, $table:ident, $flag:literal, $env:literal, $key:ident, $expected:literal) => {
        const $name: Field = Field {
            flag: $flag,
            env: $env,
            key: stringify!($key),
            section: Section::$section,
            expected: $expected,
            in_file: |file| file.$table.$key.as_ref(),
        };
    };
}

field!(
    SERVER_LISTEN,
    Server,
    server,
    "--listen",
    "PORT_TUNNEL_LISTEN",
    listen,
    "the HOST:PORT to accept PORT clients on"
);
field!(
    SERVER_KEY,
    Server,
    server,
    "--key",
    "PORT_TUNNEL_KEY_FILE",
    key_file,
    "the server key file (server.key from `port-tunnel keygen`)"
);
field!(
    SERVER_FORWARD,
    Server,
    server,
    "--forward",
    "PORT_TUNNEL_FORWARD",
    forward,
    "the HOST:PORT each carried connection is forwarded to"
);
field!(
    SERVER_TOKENS,
    Server,
    server,
    "--tokens",
    "PORT_TUNNEL_TOKENS_FILE",
    tokens_file,
    "the tokens file"
);
field!(
    SERVER_STACK,
    Server,
    server,
    "--stack",
    "PORT_TUNNEL_STACK",
    stack,
    "the stack to serve (port, or port under other layers: port+passthrough)"
);
field!(
    SERVER_STACKS_FILE,
    Server,
    server,
    "--stacks-file",
    "PORT_TUNNEL_STACKS_FILE",
    stacks_file,
    "a stacks file"
);
field!(
    SERVER_FALLBACK,
    Server,
    server,
    "--fallback",
    "PORT_TUNNEL_FALLBACK",
    fallback,
    "the HOST:PORT of the service that gets connections which do not authenticate"
);
field!(
    SERVER_MAX_UNAUTHENTICATED,
    Server,
    server,
    "--max-unauthenticated",
    "PORT_TUNNEL_MAX_UNAUTHENTICATED",
    max_unauthenticated,
    "the most connections not authenticated yet (an integer of at least 1)"
);
field!(
    SERVER_ALLOW,
    Server,
    server,
    "--allow",
    "PORT_TUNNEL_ALLOW",
    allow,
    "the targets clients may name"
);
field!(
    CLIENT_SOCKS5,
    Client,
    client,
    "--socks5",
    "PORT_TUNNEL_SOCKS5",
    socks5,
    "the HOST:PORT to accept SOCKS5 clients on"
);
field!(
    CLIENT_EARLY_DATA,
    Client,
    client,
    "--early-data",
    "PORT_TUNNEL_EARLY_DATA",
    early_data,
    "on or off"
);
field!(
    CLIENT_SOCKS5_AUTH,
    Client,
    client,
    "--socks5-auth",
    "PORT_TUNNEL_SOCKS5_AUTH_FILE",
    socks5_auth_file,
    "a file with one USER:PASSWORD line"
);
field!(
    SERVER_METRICS,
    Server,
    server,
    "--metrics",
    "PORT_TUNNEL_METRICS",
    metrics,
    "the HOST:PORT to serve metrics on"
);
field!(
    CLIENT_METRICS,
    Client,
    client,
    "--metrics",
    "PORT_TUNNEL_METRICS",
    metrics,
    "the HOST:PORT to serve metrics on"
);
field!(
    CLIENT_LISTEN,
    Client,
    client,
    "--listen",
    "PORT_TUNNEL_LISTEN",
    listen,
    "the HOST:PORT to accept local TCP connections on"
);
field!(
    CLIENT_SERVER,
    Client,
    client,
    "--server",
    "PORT_TUNNEL_SERVER",
    server,
    "the tunnel server as STACK://HOST:PORT (e.g. port://198.51.100.7:9000)"
);
field!(
    CLIENT_KEY,
    Client,
    client,
    "--key",
    "PORT_TUNNEL_KEY_FILE",
    key_file,
    "the server's client key file (client.key from `port-tunnel keygen`)"
);
field!(
    CLIENT_TOKEN,
    Client,
    client,
    "--token",
    "PORT_TUNNEL_TOKEN_FILE",
    token_file,
    "the file holding this client's token"
);
field!(
    CLIENT_STACKS_FILE,
    Client,
    client,
    "--stacks-file",
    "PORT_TUNNEL_STACKS_FILE",
    stacks_file,
    "a stacks file"
);

/// A value and where it came from (for errors, and to resolve relative paths).
#[derive(Clone, Debug)]
struct Value {
    text: String,
    origin: String,
    /// Set for values from the file: relative paths are relative to this directory.
    base: Option<PathBuf>,
}

impl Value {
    fn bad(&self, expected: &str) -> Error {
        Error::msg(format!(
            "bad {} {:?}: expected {expected}",
            self.origin, self.text
        ))
    }

    fn path(&self) -> PathBuf {
        let path = PathBuf::from(&self.text);
        match &self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    }
}

/// Everything settings are drawn from besides the flags: the `PORT_*` environment variables
/// (captured once) and the TOML file, if any.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    env: Vec<(String, String)>,
    file: Option<FileValues>,
}

impl Sources {
    /// The `PORT_*` variables of the process environment and, if given, the TOML file.
    pub fn gather(config_file: Option<&Path>) -> Result<Sources, Error> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            let value = value
                .into_string()
                .map_err(|_| Error::msg(format!("bad {name}: expected valid UTF-8 text")))?;
            env.push((name.to_owned(), value));
        }
        let file = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::msg(format!("cannot read --config file {}: {e}", path.display()))
                })?;
                Some((text, path.to_owned()))
            }
            None => None,
        };
        Sources::new(env, file.as_ref().map(|(t, p)| (t.as_str(), p.as_path())))
    }

    /// Sources from explicit variables and file text (`(text, path)`); what
    /// [`gather`](Self::gather) builds from the process.
    pub fn new(env: Vec<(String, String)>, file: Option<(&str, &Path)>) -> Result<Sources, Error> {
        let file = file
            .map(|(text, path)| config_file::parse(text, path))
            .transpose()?;
        Ok(Sources { env, file })
    }

    fn env_value(&self, name: &str) -> Option<&str> {
        // The last occurrence wins, as in the environment itself.
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `field`: the flag, else the variable, else the file.
    fn lookup(&self, field: &Field, flag: Option<String>) -> Option<Value> {
        if let Some(text) = flag {
            return Some(Value {
                text,
                origin: field.flag.to_owned(),
                base: None,
            });
        }
        if let Some(text) = self.env_value(field.env) {
            return Some(Value {
                text: text.to_owned(),
                origin: field.env.to_owned(),
                base: None,
            });
        }
        let file = self.file.as_ref()?;
        let text = (field.in_file)(&file.values)?.clone();
        let origin = format!(
            "{} in the {} of {}",
            field.key,
            field.section.table(),
            file.origin
        );
        Some(Value {
            text,
            origin,
            base: Some(file.base.clone()),
        })
    }

    fn require(&self, field: &Field, flag: Option<String>) -> Result<Value, Error> {
        self.lookup(field, flag).ok_or_else(|| {
            let table = match field.section {
                Section::Top => "the top level".to_owned(),
                section => format!("the {} table", section.table()),
            };
            Error::msg(format!(
                "missing {}: {} (or set {}, or {} in {table} of --config FILE)",
                field.flag, field.expected, field.env, field.key
            ))
        })
    }

    /// The log filter: `--log-level`, `PORT_TUNNEL_LOG_LEVEL`, `log_level`, else `info`.
    pub fn log_level(&self, flag: Option<String>) -> (String, String) {
        match self.lookup(&LOG_LEVEL, flag) {
            Some(v) => (v.text, v.origin),
            None => ("info".to_owned(), LOG_LEVEL.flag.to_owned()),
        }
    }

    /// The PORT protocol settings: the file's `[port]` table, overridden by `PORT_*`
    /// variables.
    pub fn port_config(&self) -> Result<Config, Error> {
        let file = self.file.iter().flat_map(|f| f.port.iter());
        let known: Vec<&str> = Config::variables().collect();
        let env = self
            .env
            .iter()
            .filter(|(name, _)| known.contains(&name.as_str()));
        Config::from_vars(file.chain(env).map(|(n, v)| (n.as_str(), v.as_str())))
            .map_err(|e| Error::msg(format!("bad PORT setting: {e}")))
    }
}

/// Resolves a listen address.
fn listen_addr(value: &Value) -> Result<SocketAddr, Error> {
    const FORM: &str = "HOST:PORT to listen on (e.g. 127.0.0.1:9000; port 0 picks a free one)";
    let mut addrs = value.text.to_socket_addrs().map_err(|_| value.bad(FORM))?;
    addrs.next().ok_or_else(|| value.bad(FORM))
}

/// Resolves `--metrics`, if given.
fn metrics_addr(value: Option<Value>) -> Result<Option<SocketAddr>, Error> {
    value.map(|v| listen_addr(&v)).transpose()
}

/// Resolves the fallback's `HOST:PORT` once, at start.
fn fallback_addr(value: &Value) -> Result<SocketAddr, Error> {
    const FORM: &str = "HOST:PORT of a service that resolves now (e.g. 127.0.0.1:8080)";
    let mut addrs = value.text.to_socket_addrs().map_err(|_| value.bad(FORM))?;
    addrs.next().ok_or_else(|| value.bad(FORM))
}

/// Reads an integer of at least 1.
fn positive(value: &Value) -> Result<usize, Error> {
    const FORM: &str = "an integer of at least 1 (e.g. 1024)";
    match value.text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(value.bad(FORM)),
    }
}

/// Checks a `HOST:PORT` that is resolved at each connect (the forward target).
fn host_port(value: &Value) -> Result<String, Error> {
    const FORM: &str = "HOST:PORT with a port in 1..=65535 (e.g. 127.0.0.1:22)";
    let (host, port) = value.text.rsplit_once(':').ok_or_else(|| value.bad(FORM))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match port.parse::<u16>() {
        Ok(p) if p != 0 && !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(value.text.clone())
        }
        _ => Err(value.bad(FORM)),
    }
}

/// Parses the server URL: `STACK://HOST:PORT`, or a bare `HOST:PORT` for the `port` stack.
fn server_url(value: &Value, registry: &Arc<Registry>) -> Result<(Address, TunnelStack), Error> {
    const FORM: &str = "STACK://HOST:PORT (e.g. port://198.51.100.7:9000)";
    let parsed = if value.text.contains("://") {
        value.text.parse::<Address>()
    } else {
        Address::from_parts(DEFAULT_STACK, &value.text)
    };
    // The text is not repeated: a mistyped address may hold a secret.
    let address =
        parsed.map_err(|e| Error::msg(format!("bad {}: {e}; expected {FORM}", value.origin)))?;
    let stack = TunnelStack::resolve(registry, &address.stack).map_err(|e| {
        Error::msg(format!(
            "bad {}: {e}; expected {FORM} with {STACK_FORM}",
            value.origin
        ))
    })?;
    Ok((address, stack))
}

/// Parses the server's `--stack`.
fn stack_spec(value: Option<Value>, registry: &Arc<Registry>) -> Result<TunnelStack, Error> {
    let Some(value) = value else {
        return TunnelStack::resolve(registry, DEFAULT_STACK).map_err(Error::msg);
    };
    TunnelStack::resolve(registry, &value.text)
        .map_err(|e| Error::msg(format!("bad {}: {e}; expected {STACK_FORM}", value.origin)))
}

/// Loads the stacks names are resolved in: the built-ins, the search path, then the stacks
/// file named by `value`, if any.
fn stacks(value: Option<Value>) -> Result<Arc<Registry>, Error> {
    let path = value.as_ref().map(Value::path);
    load_registry(path.as_deref()).map_err(|e| match (e, value) {
        // The registry's message names the file.
        (RegistryLoadError::Extra(e), Some(value)) => Error::msg(format!(
            "bad {}: {e}; expected {STACKS_FILE_FORM}",
            value.origin
        )),
        (e, _) => Error::msg(e.to_string()),
    })
}

/// The flags of `port-tunnel server` (each may also come from the environment or the file).
#[derive(Clone, Debug, Default)]
pub struct ServerFlags {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--forward`.
    pub forward: Option<String>,
    /// `--tokens`.
    pub tokens: Option<PathBuf>,
    /// `--stack`.
    pub stack: Option<String>,
    /// `--stacks-file`.
    pub stacks_file: Option<PathBuf>,
    /// `--fallback`.
    pub fallback: Option<String>,
    /// `--max-unauthenticated`.
    pub max_unauthenticated: Option<usize>,
    /// `--allow` (rules joined by commas).
    pub allow: Option<String>,
    /// `--metrics`.
    pub metrics: Option<String>,
}

/// Everything the server runs with, checked.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Where PORT clients are accepted.
    pub listen: SocketAddr,
    /// The server key file.
    pub key_file: PathBuf,
    /// Where a carried connection goes when its client names no target (`HOST:PORT`,
    /// resolved at each connect).
    pub forward: Option<String>,
    /// The targets clients may name.
    pub allow: AllowList,
    /// Where metrics are served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The tokens file; without one, every client holding the client key is accepted.
    pub tokens_file: Option<PathBuf>,
    /// The stack served.
    pub stack: TunnelStack,
    /// The service connections that do not authenticate are handed to (resolved at start).
    pub fallback: Option<SocketAddr>,
    /// The most connections not authenticated yet.
    pub max_unauthenticated: usize,
    /// PORT protocol settings.
    pub port: Config,
}

fn path_of(value: Option<PathBuf>) -> Option<String> {
    value.map(|p| p.to_string_lossy().into_owned())
}

impl ServerSettings {
    /// Resolves the server's settings from `flags` and `sources`.
    pub fn resolve(flags: ServerFlags, sources: &Sources) -> Result<ServerSettings, Error> {
        let listen = listen_addr(&sources.require(&SERVER_LISTEN, flags.listen)?)?;
        let key_file = sources.require(&SERVER_KEY, path_of(flags.key))?.path();
        let forward = sources
            .lookup(&SERVER_FORWARD, flags.forward)
            .map(|v| host_port(&v))
            .transpose()?;
        let allow = match sources.lookup(&SERVER_ALLOW, flags.allow) {
            Some(v) => AllowList::parse(&v.text).map_err(|why| {
                Error::msg(format!("bad {}: {why}; expected {ALLOW_FORM}", v.origin))
            })?,
            None => AllowList::default(),
        };
        if forward.is_none() && allow.is_empty() {
            return Err(Error::msg(
                "missing --forward or --allow: a HOST:PORT every carried connection goes to, or                  the targets clients may name (or set PORT_TUNNEL_FORWARD or PORT_TUNNEL_ALLOW,                  or forward or allow in the [server] table of --config FILE)",
            ));
        }
        let tokens_file = sources
            .lookup(&SERVER_TOKENS, path_of(flags.tokens))
            .map(|v| v.path());
        let registry = stacks(sources.lookup(&SERVER_STACKS_FILE, path_of(flags.stacks_file)))?;
        let stack = stack_spec(sources.lookup(&SERVER_STACK, flags.stack), &registry)?;
        let fallback = sources
            .lookup(&SERVER_FALLBACK, flags.fallback)
            .map(|v| fallback_addr(&v))
            .transpose()?;
        let max_unauthenticated = sources
            .lookup(
                &SERVER_MAX_UNAUTHENTICATED,
                flags.max_unauthenticated.map(|n| n.to_string()),
            )
            .map(|v| positive(&v))
            .transpose()?
            .unwrap_or(port_driver::MAX_UNAUTHENTICATED);
        Ok(ServerSettings {
            listen,
            key_file,
            forward,
            allow,
            metrics: metrics_addr(sources.lookup(&SERVER_METRICS, flags.metrics))?,
            tokens_file,
            stack,
            fallback,
            max_unauthenticated,
            port: sources.port_config()?,
        })
    }
}

/// The flags of `port-tunnel client` (each may also come from the environment or the file).
#[derive(Clone, Debug, Default)]
pub struct ClientFlags {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--socks5`.
    pub socks5: Option<String>,
    /// `--socks5-auth`.
    pub socks5_auth: Option<PathBuf>,
    /// `--metrics`.
    pub metrics: Option<String>,
    /// `--server`.
    pub server: Option<String>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--token`.
    pub token: Option<PathBuf>,
    /// `--stacks-file`.
    pub stacks_file: Option<PathBuf>,
    /// `--early-data`.
    pub early_data: bool,
}

/// Everything the client runs with, checked.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Where local TCP connections for the server's forward target are accepted.
    pub listen: Option<SocketAddr>,
    /// Where SOCKS5 clients are accepted.
    pub socks5: Option<SocketAddr>,
    /// The file of the `USER:PASSWORD` SOCKS5 clients must give, if any.
    pub socks5_auth_file: Option<PathBuf>,
    /// Where metrics are served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The tunnel server.
    pub server: Address,
    /// The stack its URL names.
    pub stack: TunnelStack,
    /// The server's client key file.
    pub key_file: PathBuf,
    /// The file holding this client's token.
    pub token_file: PathBuf,
    /// Whether what a local application sent before its connection was taken up travels in
    /// the PORT INIT as early data (`docs/PROTOCOL.md` §5.8): a round trip sooner, without
    /// forward secrecy for those bytes.
    pub early_data: bool,
    /// PORT protocol settings.
    pub port: Config,
}

impl ClientSettings {
    /// Resolves the client's settings from `flags` and `sources`.
    pub fn resolve(flags: ClientFlags, sources: &Sources) -> Result<ClientSettings, Error> {
        let listen = sources
            .lookup(&CLIENT_LISTEN, flags.listen)
            .map(|v| listen_addr(&v))
            .transpose()?;
        let socks5 = sources
            .lookup(&CLIENT_SOCKS5, flags.socks5)
            .map(|v| listen_addr(&v))
            .transpose()?;
        if listen.is_none() && socks5.is_none() {
            return Err(Error::msg(
                "missing --listen or --socks5: a HOST:PORT to accept local TCP connections on,                  or one to accept SOCKS5 clients on (or set PORT_TUNNEL_LISTEN or                  PORT_TUNNEL_SOCKS5, or listen or socks5 in the [client] table of --config FILE)",
            ));
        }
        let socks5_auth_file = sources
            .lookup(&CLIENT_SOCKS5_AUTH, path_of(flags.socks5_auth))
            .map(|v| v.path());
        let registry = stacks(sources.lookup(&CLIENT_STACKS_FILE, path_of(flags.stacks_file)))?;
        let (server, stack) =
            server_url(&sources.require(&CLIENT_SERVER, flags.server)?, &registry)?;
        let key_file = sources.require(&CLIENT_KEY, path_of(flags.key))?.path();
        let token_file = sources.require(&CLIENT_TOKEN, path_of(flags.token))?.path();
        let early_data = sources
            .lookup(
                &CLIENT_EARLY_DATA,
                flags.early_data.then(|| "on".to_owned()),
            )
            .map(|v| on_off(&v))
            .transpose()?
            .unwrap_or(false);
        Ok(ClientSettings {
            listen,
            socks5,
            socks5_auth_file,
            metrics: metrics_addr(sources.lookup(&CLIENT_METRICS, flags.metrics))?,
            server,
            stack,
            key_file,
            token_file,
            early_data,
            port: sources.port_config()?,
        })
    }
}

/// Reads a switch: `on`, `off`, `true`, `false`, `1` or `0`.
fn on_off(value: &Value) -> Result<bool, Error> {
    match value.text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(value.bad("on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const FILE: &str = r#"
log_level = "debug"
[server]
listen = "127.0.0.1:7000"
key_file = "keys/server.key"
forward = "127.0.0.1:22"
[client]
listen = "127.0.0.1:7001"
server = "port://127.0.0.1:7000"
key_file = "/abs/client.key"
token_file = "token"
[port]
tail_length = 100
min_next_in = 1.5
"#;

    fn sources(vars: &[(&str, &str)], file: Option<&str>) -> Result<Sources, Error> {
        Sources::new(
            env(vars),
            file.map(|t| (t, Path::new("/etc/pt/tunnel.toml"))),
        )
    }

    #[test]
    fn the_stack_is_port_unless_named_and_a_client_url_names_its_own() {
        let s = sources(&[], Some(FILE)).unwrap();
        let server = ServerSettings::resolve(ServerFlags::default(), &s).unwrap();
        assert_eq!(server.stack.spec(), "port");
        assert!(server.stack.is_plain_port());
        let layered = FILE.replace("[client]", "stack = \"port+passthrough\"\n[client]");
        let s = sources(&[], Some(&layered)).unwrap();
        let server = ServerSettings::resolve(ServerFlags::default(), &s).unwrap();
        assert_eq!(server.stack.spec(), "port+passthrough");
        assert!(!server.stack.is_plain_port());
        let flags = ClientFlags {
            server: Some("port+passthrough://127.0.0.1:9".into()),
            ..Default::default()
        };
        let client = ClientSettings::resolve(flags, &s).unwrap();
        assert_eq!(client.stack.spec(), "port+passthrough");
        assert_eq!(client.server.host_port(), "127.0.0.1:9");
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let s = sources(&[("PORT_TUNNEL_LISTEN", "127.0.0.1:8000")], Some(FILE)).unwrap();
        let from_env = ServerSettings::resolve(ServerFlags::default(), &s).unwrap();
        assert_eq!(from_env.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(from_env.forward.as_deref(), Some("127.0.0.1:22"));
        // Relative paths in the file are relative to the file.
        assert_eq!(from_env.key_file, Path::new("/etc/pt/keys/server.key"));
        let flags = ServerFlags {
            listen: Some("127.0.0.1:9000".into()),
            key: Some("k".into()),
            ..ServerFlags::default()
        };
        let from_flags = ServerSettings::resolve(flags, &s).unwrap();
        assert_eq!(from_flags.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(from_flags.key_file, Path::new("k"));
        let client = ClientSettings::resolve(ClientFlags::default(), &s).unwrap();
        assert_eq!(client.server.host_port(), "127.0.0.1:7000");
        assert_eq!(client.key_file, Path::new("/abs/client.key"));
        assert_eq!(client.token_file, Path::new("/etc/pt/token"));
        assert_eq!(s.log_level(None).0, "debug");
        let s = sources(&[("PORT_TUNNEL_LOG_LEVEL", "warn")], Some(FILE)).unwrap();
        assert_eq!(s.log_level(None).0, "warn");
        assert_eq!(s.log_level(Some("trace".into())).0, "trace");
        assert_eq!(sources(&[], None).unwrap().log_level(None).0, "info");
    }

    #[test]
    fn early_data_is_off_unless_switched_on_and_a_bad_switch_is_named() {
        let s = sources(&[], Some(FILE)).unwrap();
        assert!(
            !ClientSettings::resolve(ClientFlags::default(), &s)
                .unwrap()
                .early_data
        );
        let on = ClientFlags {
            early_data: true,
            ..Default::default()
        };
        assert!(ClientSettings::resolve(on, &s).unwrap().early_data);
        let s = sources(&[("PORT_TUNNEL_EARLY_DATA", "on")], Some(FILE)).unwrap();
        assert!(
            ClientSettings::resolve(ClientFlags::default(), &s)
                .unwrap()
                .early_data
        );
        let file = FILE.replace("[client]", "[client]\nearly_data = \"off\"");
        let s = sources(&[], Some(&file)).unwrap();
        assert!(
            !ClientSettings::resolve(ClientFlags::default(), &s)
                .unwrap()
                .early_data
        );
        let s = sources(&[("PORT_TUNNEL_EARLY_DATA", "maybe")], Some(FILE)).unwrap();
        let err = ClientSettings::resolve(ClientFlags::default(), &s).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("PORT_TUNNEL_EARLY_DATA") && text.contains("on or off"),
            "{text}"
        );
    }

    #[test]
    fn fallback_and_cap_from_flags_env_and_file() {
        let file = format!("{FILE}\n");
        let file = file.replace(
            "forward = \"127.0.0.1:22\"",
            "forward = \"127.0.0.1:22\"\nfallback = \"127.0.0.1:8080\"\nmax_unauthenticated = 64",
        );
        let s = sources(&[], Some(&file)).unwrap();
        let from_file = ServerSettings::resolve(ServerFlags::default(), &s).unwrap();
        assert_eq!(from_file.fallback, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(from_file.max_unauthenticated, 64);
        let s = sources(&[("PORT_TUNNEL_MAX_UNAUTHENTICATED", "9")], Some(&file)).unwrap();
        let flags = ServerFlags {
            fallback: Some("127.0.0.1:8443".into()),
            ..ServerFlags::default()
        };
        let mixed = ServerSettings::resolve(flags, &s).unwrap();
        assert_eq!(mixed.fallback, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(mixed.max_unauthenticated, 9);
        let plain =
            ServerSettings::resolve(ServerFlags::default(), &sources(&[], Some(FILE)).unwrap());
        let plain = plain.unwrap();
        assert_eq!(plain.fallback, None);
        assert_eq!(plain.max_unauthenticated, port_driver::MAX_UNAUTHENTICATED);
        for (var, value) in [
            ("PORT_TUNNEL_MAX_UNAUTHENTICATED", "0"),
            ("PORT_TUNNEL_MAX_UNAUTHENTICATED", "many"),
            ("PORT_TUNNEL_FALLBACK", "no-port"),
        ] {
            let s = sources(&[(var, value)], Some(FILE)).unwrap();
            let e = ServerSettings::resolve(ServerFlags::default(), &s).unwrap_err();
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn port_settings_from_the_file_and_the_environment() {
        let s = sources(&[], Some(FILE)).unwrap();
        let config = s.port_config().unwrap();
        assert_eq!(config.padding().max(), 100);
        assert_eq!(config.min_next_in(), std::time::Duration::from_millis(1500));
        let s = sources(&[("PORT_TAIL_LENGTH", "0")], Some(FILE)).unwrap();
        assert_eq!(s.port_config().unwrap().padding().max(), 0);
        let e = sources(&[("PORT_TAIL_LENGTH", "x")], None)
            .unwrap()
            .port_config()
            .unwrap_err();
        assert!(
            e.message()
                .starts_with("bad PORT setting: PORT_TAIL_LENGTH"),
            "{e}"
        );
    }

    #[test]
    fn missing_settings_name_every_way_to_give_them() {
        let s = sources(&[], None).unwrap();
        let e = ServerSettings::resolve(ServerFlags::default(), &s).unwrap_err();
        assert_eq!(
            e.message(),
            "missing --listen: the HOST:PORT to accept PORT clients on (or set \
             PORT_TUNNEL_LISTEN, or listen in the [server] table of --config FILE)"
        );
        let flags = ClientFlags {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let e = ClientSettings::resolve(flags, &s).unwrap_err();
        assert!(e.message().starts_with("missing --server"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field_and_the_form() {
        let s = sources(&[], Some(FILE)).unwrap();
        let bad = |flags: ServerFlags| ServerSettings::resolve(flags, &s).unwrap_err().to_string();
        let e = bad(ServerFlags {
            listen: Some("nowhere".into()),
            ..Default::default()
        });
        assert!(
            e.starts_with("bad --listen \"nowhere\": expected HOST:PORT"),
            "{e}"
        );
        for forward in ["host", "host:0", ":22", "host:99999", "a b:1"] {
            let e = bad(ServerFlags {
                forward: Some(forward.into()),
                ..Default::default()
            });
            assert!(e.starts_with("bad --forward"), "{e}");
            assert!(e.contains("expected HOST:PORT"), "{e}");
        }
        let e = sources(&[("PORT_TUNNEL_FORWARD", "x")], Some(FILE)).unwrap();
        let e = ServerSettings::resolve(ServerFlags::default(), &e).unwrap_err();
        assert!(
            e.message().starts_with("bad PORT_TUNNEL_FORWARD \"x\""),
            "{e}"
        );
        let e = sources(&[("PORT_TUNNEL_STACK", "passthrough")], Some(FILE)).unwrap();
        let e = ServerSettings::resolve(ServerFlags::default(), &e).unwrap_err();
        assert!(
            e.message()
                .starts_with("bad PORT_TUNNEL_STACK: the stack \"passthrough\" has the layers"),
            "{e}"
        );
        assert!(
            e.message().contains("expected a stack with one port layer"),
            "{e}"
        );
        let client = |server: &str| {
            let flags = ClientFlags {
                server: Some(server.into()),
                ..Default::default()
            };
            ClientSettings::resolve(flags, &s).unwrap_err().to_string()
        };
        let e = client("tls://h:1");
        assert!(e.starts_with("bad --server:"), "{e}");
        assert!(e.contains("tls"), "{e}");
        assert!(e.contains("expected STACK://HOST:PORT"), "{e}");
        let e = client("passthrough://h:1");
        assert!(
            e.contains("the stack \"passthrough\" has the layers passthrough"),
            "{e}"
        );
        assert!(e.contains("with a stack with one port layer"), "{e}");
        assert!(client("port://h").starts_with("bad --server:"));
        assert!(
            ClientSettings::resolve(
                ClientFlags {
                    server: Some("127.0.0.1:9".into()),
                    ..Default::default()
                },
                &s
            )
            .is_ok()
        );
    }

    /// A stacks file with `text` in a fresh directory; returns its path.
    fn stacks_file(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("port-tunnel-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stacks.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const STACKS: &str = "[stack.wrapped]\nlayers = [\"port\", \"passthrough\"]\n\
                          [stack.bare]\nlayers = [\"passthrough\"]\n[alias]\nw = \"wrapped\"\n";

    #[test]
    fn a_stacks_file_names_stacks_for_the_server_and_the_client_url() {
        let path = stacks_file("named", STACKS);
        let s = sources(&[], Some(FILE)).unwrap();
        let server = ServerSettings::resolve(
            ServerFlags {
                stack: Some("wrapped".into()),
                stacks_file: Some(path.clone()),
                ..Default::default()
            },
            &s,
        )
        .unwrap();
        assert_eq!(server.stack.spec(), "wrapped");
        assert!(!server.stack.is_plain_port());
        let vars = [("PORT_TUNNEL_STACKS_FILE", path.to_str().unwrap())];
        let s = sources(&vars, Some(FILE)).unwrap();
        let flags = ClientFlags {
            server: Some("w://127.0.0.1:7000".into()),
            ..Default::default()
        };
        let client = ClientSettings::resolve(flags, &s).unwrap();
        assert_eq!(client.stack.spec(), "w");
        assert!(!client.stack.is_plain_port());
        // Without the file the names are unknown.
        let s = sources(&[], Some(FILE)).unwrap();
        let flags = ServerFlags {
            stack: Some("wrapped".into()),
            ..Default::default()
        };
        let e = ServerSettings::resolve(flags, &s).unwrap_err().to_string();
        assert!(e.starts_with("bad --stack:"), "{e}");
        assert!(e.contains("wrapped"), "{e}");
    }

    #[test]
    fn a_stacks_file_in_the_config_file_is_relative_to_it() {
        let path = stacks_file("relative", STACKS);
        let dir = path.parent().unwrap();
        let text = FILE.replace(
            "[client]",
            "stack = \"w\"\nstacks_file = \"stacks.toml\"\n[client]",
        );
        let s = Sources::new(Vec::new(), Some((&text, &dir.join("tunnel.toml")))).unwrap();
        let server = ServerSettings::resolve(ServerFlags::default(), &s).unwrap();
        assert_eq!(server.stack.spec(), "w");
        assert!(!server.stack.is_plain_port());
    }

    #[test]
    fn bad_stacks_files_and_stacks_from_them_are_refused_with_the_field() {
        let s = sources(&[], Some(FILE)).unwrap();
        let server = |stack: &str, path: &Path| {
            let flags = ServerFlags {
                stack: Some(stack.into()),
                stacks_file: Some(path.to_owned()),
                ..Default::default()
            };
            ServerSettings::resolve(flags, &s).unwrap_err().to_string()
        };
        let missing = std::env::temp_dir().join("port-tunnel-config-no-such-stacks.toml");
        let e = server("port", &missing);
        assert!(e.starts_with("bad --stacks-file: "), "{e}");
        assert!(e.contains("no-such-stacks.toml"), "{e}");
        assert!(e.contains("expected a TOML file of named stacks"), "{e}");
        let broken = stacks_file("broken", "[stack.x]\nlayer = [\"port\"]\n");
        let e = server("port", &broken);
        assert!(e.starts_with("bad --stacks-file: "), "{e}");
        assert!(e.contains("layer"), "{e}");
        let named = stacks_file("no-port", STACKS);
        let e = server("bare", &named);
        assert!(
            e.contains("the stack \"bare\" has the layers passthrough"),
            "{e}"
        );
        let vars = [("PORT_TUNNEL_STACKS_FILE", missing.to_str().unwrap())];
        let s = sources(&vars, Some(FILE)).unwrap();
        let flags = ClientFlags::default();
        let e = ClientSettings::resolve(flags, &s).unwrap_err().to_string();
        assert!(e.starts_with("bad PORT_TUNNEL_STACKS_FILE: "), "{e}");
    }

    #[test]
    fn bad_files_are_refused_with_the_file_the_line_and_the_key() {
        let refused = |text: &str| sources(&[], Some(text)).unwrap_err().message().to_owned();
        assert_eq!(
            refused("[server]\nlisten = 1\n"),
            "bad --config file /etc/pt/tunnel.toml, line 2, column 10 (server.listen): invalid \
             type: integer `1`, expected a string"
        );
        let e = refused("[server]\nlisten_on = \"x\"\n");
        assert!(
            e.starts_with("bad --config file /etc/pt/tunnel.toml, line 2"),
            "{e}"
        );
        assert!(
            e.contains("unknown field `listen_on`, expected one of `listen`"),
            "{e}"
        );
        let e = refused("[port]\n\npadding = 3\n");
        assert!(
            e.contains("line 3, column 11 (port.padding): unknown key \"padding\" in the [port]"),
            "{e}"
        );
        assert!(e.contains("tail_length"), "{e}");
        let e = refused("[port]\ntail_length = true\n");
        assert!(
            e.contains("line 2, column 15 (port.tail_length): expected a number or a string"),
            "{e}"
        );
        let e = refused("colour = \"red\"\n");
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = refused("\n\n[server\n");
        assert!(
            e.starts_with("bad --config file /etc/pt/tunnel.toml, line 3"),
            "{e}"
        );
        let e = refused("server = 3\n");
        assert!(
            e.contains("line 1, column 10 (server): invalid type: integer `3`"),
            "{e}"
        );
    }
}
