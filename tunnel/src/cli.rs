//! The command line: `server`, `client` and `keygen`.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ClientFlags, ClientSettings, ServerFlags, ServerSettings, Sources};
use crate::error::Error;
use crate::server::announce;

/// `port-tunnel`: forward TCP ports over PORT.
#[derive(Debug, Parser)]
#[command(
    name = "port-tunnel",
    version,
    about = "Forward TCP ports over PORT",
    long_about = "Forward TCP ports over PORT.\n\n\
                  `port-tunnel client` listens on a local port and carries every connection \
                  it accepts, each over its own PORT connection, to `port-tunnel server`, which \
                  connects it to a fixed target.\n\n\
                  Settings come from flags, else from PORT_TUNNEL_* environment variables, \
                  else from a TOML file (--config). PORT protocol settings (PORT_TAIL_LENGTH, \
                  PORT_MIN_NEXT_IN, ...) come from the environment or the file's [port] \
                  table. Keys and tokens are only read from files."
)]
pub struct Cli {
    /// A TOML file of settings (tables server, client and port); flags and PORT_*
    /// variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing
    /// directives [env: PORT_TUNNEL_LOG_LEVEL] [default: info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept PORT clients and connect each carried connection to --forward.
    ///
    /// Prints `listening on ADDR` on stdout once bound, and a summary of connections and
    /// bytes when stopped (SIGINT or SIGTERM; open connections get up to 30 s to finish).
    /// SIGHUP reloads the tokens file.
    Server(ServerArgs),
    /// Accept local TCP connections and carry each to the tunnel server.
    ///
    /// Prints `listening on ADDR` on stdout once bound, and a summary of connections and
    /// bytes when stopped (SIGINT or SIGTERM; open connections get up to 30 s to finish).
    Client(ClientArgs),
    /// Generate a server key (server.key, secret) and its client key (client.key).
    Keygen(KeygenArgs),
}

/// Arguments of `port-tunnel server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where to accept PORT clients, HOST:PORT [env: PORT_TUNNEL_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The server key file (server.key from `port-tunnel keygen`)
    /// [env: PORT_TUNNEL_KEY_FILE].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Where each carried connection goes unless its client names a target, HOST:PORT
    /// [env: PORT_TUNNEL_FORWARD].
    #[arg(long, value_name = "HOST:PORT")]
    pub forward: Option<String>,
    /// The targets clients may name (port-tunnel client --socks5): HOST:PORTS rules, HOST
    /// one of *, an IP address (IPv6 in brackets), a CIDR network, a host name or *.suffix,
    /// PORTS one of *, N or N-M; repeat the flag or separate rules with commas. Nothing is
    /// allowed unless listed [env: PORT_TUNNEL_ALLOW].
    #[arg(long, value_name = "RULES")]
    pub allow: Vec<String>,
    /// Serve metrics in the Prometheus text format at http://ADDR/metrics
    /// [env: PORT_TUNNEL_METRICS].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The tokens file: one `TOKEN [NAME]` per line, `#` comments; reloaded on SIGHUP.
    /// Without it every client holding the client key is accepted
    /// [env: PORT_TUNNEL_TOKENS_FILE].
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// The stack to serve: `port` (the default), or port under other layers, such as
    /// `port+passthrough` or a stack named in a stacks file; clients name the same stack in
    /// their --server URL [env: PORT_TUNNEL_STACK].
    #[arg(long, value_name = "STACK")]
    pub stack: Option<String>,
    /// A TOML file of named stacks and aliases, read after the built-in stacks and the stack
    /// files on the search path ($PORT_STACKS_FILE, ./port-stacks.toml,
    /// ~/.config/port/stacks.toml) [env: PORT_TUNNEL_STACKS_FILE].
    #[arg(long, value_name = "FILE")]
    pub stacks_file: Option<PathBuf>,
    /// Hand every connection that does not authenticate (garbage, another key, a replay, a
    /// probe) to the service at HOST:PORT, with every byte it sent, instead of draining it in
    /// silence: a prober sees that service [env: PORT_TUNNEL_FALLBACK].
    #[arg(long, value_name = "HOST:PORT")]
    pub fallback: Option<String>,
    /// The most connections that have not authenticated yet; at the cap the oldest of them
    /// is closed (default 1024) [env: PORT_TUNNEL_MAX_UNAUTHENTICATED].
    #[arg(long, value_name = "N")]
    pub max_unauthenticated: Option<usize>,
}

/// Arguments of `port-tunnel client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Where to accept local TCP connections, each carried to the server's --forward target,
    /// HOST:PORT [env: PORT_TUNNEL_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where to accept SOCKS5 clients, HOST:PORT: each CONNECT (IPv4, IPv6 or a host name)
    /// is carried to the server, which connects to the target if its --allow list permits
    /// [env: PORT_TUNNEL_SOCKS5].
    #[arg(long, value_name = "ADDR")]
    pub socks5: Option<String>,
    /// Require SOCKS5 username/password authentication with the `USER:PASSWORD` line of FILE
    /// (without it, SOCKS5 clients need no authentication) [env: PORT_TUNNEL_SOCKS5_AUTH_FILE].
    #[arg(long, value_name = "FILE")]
    pub socks5_auth: Option<PathBuf>,
    /// Serve metrics in the Prometheus text format at http://ADDR/metrics
    /// [env: PORT_TUNNEL_METRICS].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Send what a local application already sent in the PORT INIT (early data): its first
    /// bytes reach the server a round trip sooner, without forward secrecy for them (see
    /// docs/PROTOCOL.md §5.8) [env: PORT_TUNNEL_EARLY_DATA=on|off].
    #[arg(long)]
    pub early_data: bool,
    /// The tunnel server, STACK://HOST:PORT with the stack the server serves
    /// (port://HOST:PORT unless it was given --stack) [env: PORT_TUNNEL_SERVER].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The server's client key file (client.key from `port-tunnel keygen`)
    /// [env: PORT_TUNNEL_KEY_FILE].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The file holding this client's token (one `TOKEN [NAME]` line)
    /// [env: PORT_TUNNEL_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
    /// A TOML file of named stacks and aliases for the --server URL, read after the built-in
    /// stacks and the stack files on the search path [env: PORT_TUNNEL_STACKS_FILE].
    #[arg(long, value_name = "FILE")]
    pub stacks_file: Option<PathBuf>,
}

/// Arguments of `port-tunnel keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The directory to write server.key (mode 0600) and client.key into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
    /// What the server's connections look like on the wire, carried in both key files:
    /// `prefix=@http|@tls|<base64url>`, `popcount=low|high`, `lengths=shaped`, joined by `&`
    /// (e.g. 'prefix=@tls&popcount=low&lengths=shaped'). Default: PORT/1 unchanged.
    #[arg(long, value_name = "SHAPE", value_parser = port_core::Shape::from_params)]
    pub shape: Option<port_core::Shape>,
    /// The AEAD of the server's connections, carried in both key lines and never visible on
    /// the wire: `chacha20-poly1305` (the default) or `aes-256-gcm` (faster where both ends
    /// have AES instructions; see docs/PROTOCOL.md §20).
    #[arg(long, value_name = "CIPHER", default_value_t = port_core::Cipher::default())]
    pub cipher: port_core::Cipher,
}

/// Turns a clap error into one line, without the usage block.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let text: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty())
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect();
    format!("{} (try --help)", text.join(" "))
}

/// Sets up `tracing` to stderr with `filter`; `origin` names where the filter came from.
fn init_logging(filter: &str, origin: &str) -> Result<(), Error> {
    let parsed = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        Error::msg(format!(
            "bad {origin} {filter:?}: expected a level (error, warn, info, debug, trace) or \
             tracing directives ({e})"
        ))
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}")))
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<(), Error> {
    if let Command::Keygen(args) = &cli.command {
        return keygen(args);
    }
    let sources = Sources::gather(cli.config.as_deref())?;
    let (filter, origin) = sources.log_level(cli.log_level);
    init_logging(&filter, &origin)?;
    let summary = match cli.command {
        Command::Server(args) => {
            let flags = ServerFlags {
                listen: args.listen,
                key: args.key,
                forward: args.forward,
                tokens: args.tokens,
                stack: args.stack,
                stacks_file: args.stacks_file,
                fallback: args.fallback,
                max_unauthenticated: args.max_unauthenticated,
                allow: (!args.allow.is_empty()).then(|| args.allow.join(",")),
                metrics: args.metrics,
            };
            let settings = ServerSettings::resolve(flags, &sources)?;
            runtime()?.block_on(crate::server::run(settings))?
        }
        Command::Client(args) => {
            let flags = ClientFlags {
                listen: args.listen,
                socks5: args.socks5,
                socks5_auth: args.socks5_auth,
                metrics: args.metrics,
                server: args.server,
                key: args.key,
                token: args.token,
                stacks_file: args.stacks_file,
                early_data: args.early_data,
            };
            let settings = ClientSettings::resolve(flags, &sources)?;
            runtime()?.block_on(crate::client::run(settings))?
        }
        Command::Keygen(_) => unreachable!("handled above"),
    };
    announce(&format!("summary: {summary}"))
}

fn keygen(args: &KeygenArgs) -> Result<(), Error> {
    let key = port_stack::keyfile::generate()
        .map_err(Error::msg)?
        .with_shape(args.shape.clone().unwrap_or_default())
        .with_cipher(args.cipher);
    let (server, client) =
        port_stack::keyfile::write_files(&args.out, &key, args.force).map_err(Error::msg)?;
    announce(&format!(
        "wrote {} (secret: keep it on the server)",
        server.display()
    ))?;
    announce(&format!("wrote {} (give it to clients)", client.display()))
}
