//! The command line: argument parsing (with the Go-style `-stack=NAME` spelling accepted) and
//! the four commands.

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};

use crate::client::{Client, Summary};
use crate::error::Error;
use crate::runtime::RuntimeKind;
use crate::server::{Server, log_report};
use crate::setup::{
    ClientSetup, ServerSetup, StackChoice, config_from_env, load_registry, read_client_key,
    read_seaside_client_key, read_seaside_server_key, read_server_key,
};
use port_stack::tokens::{SharedTokens, Tokens};

/// `echotest`: an echo server and client over any PORT stack.
#[derive(Debug, Parser)]
#[command(
    name = "echotest",
    version,
    about = "An echo server and client over any PORT stack",
    long_about = "An echo server and client over any PORT stack.\n\n\
                  New here? Run `echotest demo`: a server and a client in one process, no setup.\n\
                  PORT settings come from the PORT_* environment variables (PORT_TAIL_LENGTH, \
                  PORT_TIMEOUT, PORT_MIN_NEXT_IN, ...)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a server key and its client key.
    ///
    /// With --out DIR, writes DIR/server.key (the secret, mode 0600) and DIR/client.key (what
    /// clients need). Without it, prints both lines, the client key first.
    Keygen(KeygenArgs),
    /// Run an echo server: accept clients, echo every message.
    ///
    /// With --tokens FILE, a client is accepted only if its token is listed, with the user id
    /// of its line (the tokens file of port-tunnel); others are refused with "unknown token".
    /// Without it every client that authenticates is accepted, with user ids 1, 2, 3, ... in
    /// order (under the seaside profile a client's user id is the port of its per-user socket).
    /// Every message is sent back; each connection is logged to stderr. Prints `listening on
    /// ADDR` on stdout once bound. SIGINT or SIGTERM ends every connection with TERM and exits
    /// 0. The Go-style `-stack=NAME`, `-listen=ADDR`, `-key=FILE` and `-runtime=NAME` are
    /// accepted too.
    Server(ServerArgs),
    /// Send messages to an echo server and print the echoes and round-trip times.
    ///
    /// The target is a URL such as port+passthrough://127.0.0.1:9000 (the stack, then the
    /// address), or HOST:PORT together with --stack NAME. Messages come from --message
    /// (repeatable), else from the lines of stdin. Each echo is printed as `< text`, then a
    /// summary with the round-trip times.
    Client(ClientArgs),
    /// Run a server and a client in this process and show what happens (start here).
    ///
    /// A PORT echo server and client on 127.0.0.1 with fresh keys in memory, first over
    /// `port`, then over `port+passthrough`: the handshake, a few echoes, the padding on the
    /// wire and how each side closed. Needs no setup and no files.
    Demo(DemoArgs),
    /// Run the network-in-chaos scenarios: server and client in two network namespaces
    /// joined by a fault-injecting bridge (needs root, /dev/net/tun and iproute2).
    Chaos(crate::chaos::ChaosArgs),
    /// Show a stack's first flights as a passive censor judges them.
    ///
    /// Runs a server with fresh keys behind a recording relay on 127.0.0.1 and connects
    /// through it --connections times per stack and shape, echoing one 64-byte random message
    /// each time; each first flight is judged by the fully-encrypted-traffic rule (Ex1-Ex5 of
    /// Wu et al., USENIX Security 2023). Prints one line per stack and shape.
    Flights(crate::flights::FlightsArgs),
    /// Show the record sizes of keystrokes and of bulk, default padding against shaped lengths.
    ///
    /// One in-memory connection per mode types (5-byte messages) then transfers (1000-byte
    /// messages); prints the two-sample Kolmogorov-Smirnov distance between the two kinds of
    /// records and the wire bytes per payload byte.
    Lengths(crate::lengths::LengthsArgs),
    /// Show what an active prober sees of a PORT server with a fallback, against the fallback
    /// alone.
    ///
    /// A stand-in web service and a PORT server handing it whatever does not authenticate
    /// run on 127.0.0.1; an HTTP GET, a TLS ClientHello and random bytes go to both,
    /// interleaved, --rounds times each. Prints the time to the answer's first byte either
    /// way (the answers must be the same bytes).
    Probes(crate::probes::ProbesArgs),
}

/// Arguments of `echotest keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write server.key and client.key into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace existing key files in --out.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Keys for the `seaside` stack: standard base64 of 40 bytes, the form upstream
    /// SeasideVPN deployments use (`SEASIDE_PRIVATE_KEY`, certificate field `typhoon_public`).
    #[arg(long)]
    pub seaside: bool,
    /// What the server's connections look like on the wire, carried in both key lines:
    /// `prefix=@http|@tls|<base64url>`, `popcount=low|high`, `lengths=shaped`, joined by `&`
    /// (e.g. 'prefix=@tls&popcount=low&lengths=shaped'). Default: PORT/1 unchanged.
    #[arg(long, value_name = "SHAPE", value_parser = shape_arg, conflicts_with = "seaside")]
    pub shape: Option<port_core::Shape>,
    /// The AEAD of the server's connections, carried in both key lines and never visible on
    /// the wire: `chacha20-poly1305` (the default) or `aes-256-gcm` (faster where both ends
    /// have AES instructions; see docs/PROTOCOL.md §20).
    #[arg(long, value_name = "CIPHER", conflicts_with = "seaside", default_value_t = port_core::Cipher::default())]
    pub cipher: port_core::Cipher,
}

/// Arguments of `echotest server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The stack to serve: a name (`port`, `secure`, ...) or layers joined by `+`, top first.
    #[arg(long, value_name = "NAME")]
    pub stack: String,
    /// The address to listen on, e.g. 127.0.0.1:9000 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The server key file (a `port1-secret:` line); required when the stack contains port.
    /// For a stack with `seaside`: the listener's seaside key (standard base64 of 40 bytes,
    /// upstream's SEASIDE_PRIVATE_KEY, or `keygen --seaside`).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Hand every connection that does not authenticate (garbage, another key, a replay, a
    /// probe) to the service at HOST:PORT, with every byte it sent, instead of draining it in
    /// silence: a prober sees that service (docs/PROTOCOL.md §19).
    #[arg(long, value_name = "HOST:PORT")]
    pub fallback: Option<String>,
    /// The most connections that have not authenticated yet; at the cap the oldest of them
    /// is closed. Authenticated clients never count.
    #[arg(long, value_name = "N", default_value_t = port_driver::MAX_UNAUTHENTICATED)]
    pub max_unauthenticated: usize,
    /// Serve metrics (connections by state, handshakes by outcome, probes, bytes by kind,
    /// keepalive round trips) in the Prometheus text format at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Accept only the tokens listed in FILE: one `TOKEN [NAME]` per line, `#` comments (the
    /// format of port-tunnel's --tokens). Others are refused with "unknown token".
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// The runtime, the stack files and the message record.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `echotest server` and `echotest client` both take.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The async runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,
    /// A file of extra stack definitions.
    #[arg(long, value_name = "FILE")]
    pub stacks_file: Option<PathBuf>,
    /// Write one JSON line per PORT message sent (kind, sizes, time) to FILE.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// Arguments of `echotest client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// STACK://HOST:PORT, or HOST:PORT with --stack.
    #[arg(value_name = "URL")]
    pub target: String,
    /// The stack, when the target is a bare HOST:PORT.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The server's client key file (a `port1-public:` line); required when the stack
    /// contains port. For a stack with `seaside`: the listener's seaside key (standard base64
    /// of 40 bytes, a certificate's typhoon_public, or `keygen --seaside`).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The token presented to the server.
    #[arg(long, value_name = "TEXT", default_value = "echotest")]
    pub token: String,
    /// A message to send (repeatable); without any, lines are read from stdin.
    #[arg(long = "message", value_name = "TEXT")]
    pub messages: Vec<String>,
    /// Send every message this many times (all messages in order, then again).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,
    /// The runtime, the stack files and the message record.
    #[command(flatten)]
    pub run: RunArgs,
    /// A checked numbered sequence instead of --message or stdin.
    #[command(flatten)]
    pub sequence: crate::sequence::SequenceArgs,
}

/// Arguments of `echotest demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The async runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,
}

/// Options that may be spelled Go-style, with one dash: `-stack=port`.
const SINGLE_DASH: [&str; 10] = [
    "stack",
    "listen",
    "key",
    "runtime",
    "token",
    "message",
    "count",
    "stacks-file",
    "log-level",
    "out",
];

/// Rewrites `-stack=X` (and `-listen=`, `-key=`, `-runtime=`, ...) to `--stack=X`, and
/// `-stack X` to `--stack X`, as Go's flag package spells them, leaving everything after `--`
/// and the value of a preceding option alone.
pub fn normalize_args<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    let mut value_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_str().map(str::to_owned);
        let verbatim = i == 0 || rest_verbatim || value_next;
        value_next = false;
        match text {
            Some(text) if !verbatim => {
                if text == "--" {
                    rest_verbatim = true;
                    out.push(arg);
                    continue;
                }
                if let Some(rest) = text.strip_prefix("--") {
                    value_next = SINGLE_DASH.contains(&rest);
                    out.push(arg);
                    continue;
                }
                let rewritten = text.strip_prefix('-').and_then(|rest| {
                    let name = rest.split_once('=').map_or(rest, |(name, _)| name);
                    let known = SINGLE_DASH.contains(&name);
                    // `-stack NAME`: the next argument is the value.
                    value_next = known && !rest.contains('=');
                    known.then(|| format!("-{text}"))
                });
                out.push(rewritten.map_or(arg, OsString::from));
            }
            _ => out.push(arg),
        }
    }
    out
}

/// Turns a clap error into one line (without the usage block).
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    format!("{} (try --help)", parts.join(" "))
}

/// Sets up `tracing` to stderr with `filter`.
pub fn init_logging(filter: &str) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::msg(format!("bad --log-level {filter:?}: {e}")))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
    Ok(())
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Keygen(args) => keygen(args),
        Command::Server(args) => {
            init_logging(&args.log_level)?;
            server(args)
        }
        Command::Client(args) => {
            init_logging(&args.log_level)?;
            client(args)
        }
        Command::Demo(args) => {
            init_logging(&args.log_level)?;
            demo(args)
        }
        Command::Chaos(args) => crate::chaos::run(args),
        Command::Flights(args) => crate::flights::run(args),
        Command::Lengths(args) => crate::lengths::run(args),
        Command::Probes(args) => {
            init_logging(&args.log_level)?;
            crate::probes::run(args)
        }
    }
}

/// Reads a `--shape` value: the shape text of a key line, or `none` for PORT/1 unchanged.
pub fn shape_arg(text: &str) -> Result<port_core::Shape, port_core::ShapeError> {
    match text {
        "none" => Ok(port_core::Shape::none()),
        _ => port_core::Shape::from_params(text),
    }
}

/// Writes one line to stdout and flushes it (a closed stdout is an error, not a panic).
pub(crate) fn say(line: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::msg(format!("cannot write to stdout: {e}")))
}

pub(crate) fn runtime_failed(e: io::Error) -> Error {
    Error::msg(format!("cannot start the async runtime: {e}"))
}

fn keygen(args: KeygenArgs) -> Result<(), Error> {
    let (server_text, client_text) = if args.seaside {
        let server = crate::keygen::generate_seaside()?;
        (server.to_text(), server.client_key().to_text())
    } else {
        let server = crate::keygen::generate()?
            .with_shape(args.shape.unwrap_or_default())
            .with_cipher(args.cipher);
        (server.to_text(), server.client_key().to_text())
    };
    match args.out {
        Some(dir) => {
            let (server_path, client_path) =
                crate::keygen::write_texts(&dir, &server_text, &client_text, args.force)?;
            say(format_args!(
                "wrote {} (secret, mode 0600)",
                server_path.display()
            ))?;
            say(format_args!(
                "wrote {} (give it to clients)",
                client_path.display()
            ))?;
        }
        None => {
            let text = crate::keygen::render_texts(&server_text, &client_text);
            say(format_args!("{}", text.trim_end()))?;
        }
    }
    Ok(())
}

/// Resolves a listen address (`host:port`).
pub fn listen_addr(text: &str) -> Result<SocketAddr, Error> {
    let bad = |why: String| Error::msg(format!("bad listen address {text:?}: {why}"));
    let mut addrs = text.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| bad("it resolves to no address".to_owned()))
}

fn server(args: ServerArgs) -> Result<(), Error> {
    if let Some(text) = &args.metrics {
        port_stack::prometheus::serve(listen_addr(text)?).map_err(Error::msg)?;
    }
    let tokens = match &args.tokens {
        Some(path) => Some(Tokens::load(path).map_err(Error::msg)?),
        None => None,
    };
    let registry = load_registry(args.run.stacks_file.as_deref())?;
    let stack = StackChoice::new(registry, &args.stack)?;
    if stack.has_seaside() {
        let path = args.key.as_ref().ok_or_else(|| {
            Error::msg(format!(
                "stack {:?} contains seaside and needs a seaside server key: pass --key FILE \
                 (upstream's SEASIDE_PRIVATE_KEY, or `echotest keygen --seaside`)",
                stack.spec()
            ))
        })?;
        let setup =
            ServerSetup::seaside(stack, config_from_env()?, read_seaside_server_key(path)?)?;
        let setup = listener_options(setup, &args)?;
        let addr = listen_addr(&args.listen)?;
        return args
            .run
            .runtime
            .block_on(serve(args.run.runtime, setup, addr, tokens))
            .map_err(runtime_failed)?;
    }
    let key = match (&args.key, stack.has_port()) {
        (Some(path), true) => Some(read_server_key(path)?),
        (Some(_), false) => {
            tracing::debug!(stack = %args.stack, "no port layer: --key ignored");
            None
        }
        (None, _) => None,
    };
    let mut setup = listener_options(ServerSetup::new(stack, config_from_env()?, key)?, &args)?;
    if let Some(path) = &args.run.record {
        setup = setup.with_recorder(crate::recorder::Recorder::create(path)?);
    }
    let addr = listen_addr(&args.listen)?;
    args.run
        .runtime
        .block_on(serve(args.run.runtime, setup, addr, tokens))
        .map_err(runtime_failed)?
}

/// `--fallback` and `--max-unauthenticated` on a server's setup.
fn listener_options(setup: ServerSetup, args: &ServerArgs) -> Result<ServerSetup, Error> {
    let setup = setup.with_max_unauthenticated(args.max_unauthenticated);
    Ok(match &args.fallback {
        Some(target) => setup.with_fallback(fallback_addr(target)?),
        None => setup,
    })
}

/// Resolves a `--fallback` target (`host:port`) once, at start.
pub fn fallback_addr(text: &str) -> Result<SocketAddr, Error> {
    let bad = |why: String| {
        Error::msg(format!(
            "bad --fallback {text:?}: {why} (expected HOST:PORT)"
        ))
    };
    let mut addrs = text.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| bad("it resolves to no address".to_owned()))
}

async fn serve(
    kind: RuntimeKind,
    setup: ServerSetup,
    addr: SocketAddr,
    tokens: Option<Tokens>,
) -> Result<(), Error> {
    let stop = stop_signal()?;
    let mut server = Server::bind(kind.runtime(), setup, addr).await?;
    if let Some(tokens) = tokens {
        tracing::info!(tokens = tokens.len(), "tokens loaded");
        server = server.with_tokens(SharedTokens::new(tokens));
    }
    let local = server.local_addr();
    let stack = server.setup().stack();
    say(format_args!("listening on {local}"))?;
    tracing::info!(
        addr = %local,
        stack = stack.spec(),
        layers = %stack.layers().join("+"),
        runtime = kind.name(),
        "listening"
    );
    let stopped = async move {
        let _ = stop.recv().await;
    };
    server
        .run_until(stopped, |report| log_report(&report))
        .await;
    Ok(())
}

/// SIGINT and SIGTERM as a channel that receives once either arrives (a thread waits for
/// them, so this works on every runtime).
fn stop_signal() -> Result<smol::channel::Receiver<()>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::msg(format!("cannot handle SIGINT and SIGTERM: {e}")))?;
    let (tx, rx) = smol::channel::bounded(1);
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            tracing::info!(signal = name, "stopping: no new connections");
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// Splits a client target into (stack, `host:port`): a URL, or `HOST:PORT` with `--stack`.
/// Errors do not repeat the target (an address may hold a secret put there by mistake).
pub fn client_target(target: &str, stack: Option<&str>) -> Result<(String, String), Error> {
    let address = match stack {
        Some(_) if target.contains("://") => {
            return Err(Error::msg(
                "give either a URL or --stack NAME with HOST:PORT, not both",
            ));
        }
        Some(stack) => port_stack::Address::from_parts(stack, target)
            .map_err(|e| Error::msg(format!("bad HOST:PORT: {}", address_problem(&e))))?,
        None => target.parse::<port_stack::Address>().map_err(|e| {
            Error::msg(format!(
                "bad URL: {} (or give --stack NAME with HOST:PORT)",
                address_problem(&e)
            ))
        })?,
    };
    Ok((address.stack.clone(), address.host_port()))
}

/// An address error without its generic `invalid address: ` opening.
fn address_problem(e: &port_stack::AddressError) -> String {
    let text = e.to_string();
    match text.strip_prefix("invalid address: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn client(args: ClientArgs) -> Result<(), Error> {
    let (spec, addr) = client_target(&args.target, args.stack.as_deref())?;
    let registry = load_registry(args.run.stacks_file.as_deref())?;
    let stack = StackChoice::new(registry, &spec)?;
    let setup = if stack.has_seaside() {
        let path = args.key.as_ref().ok_or_else(|| {
            Error::msg(format!(
                "stack {:?} contains seaside and needs the listener's seaside key: pass --key \
                 FILE (a certificate's typhoon_public, or `echotest keygen --seaside`)",
                stack.spec()
            ))
        })?;
        let key = read_seaside_client_key(path)?;
        ClientSetup::seaside(stack, config_from_env()?, key, args.token.clone())?
    } else {
        let key = match (&args.key, stack.has_port()) {
            (Some(path), true) => Some(read_client_key(path)?),
            _ => None,
        };
        ClientSetup::new(stack, config_from_env()?, key, args.token.clone())?
    };
    let setup = match &args.run.record {
        Some(path) => setup.with_recorder(crate::recorder::Recorder::create(path)?),
        None => setup,
    };
    if args.sequence.sequence.is_some() {
        let sequence = args.sequence.clone();
        let kind = args.run.runtime;
        let run = crate::sequence::run(kind.runtime(), setup, addr, sequence);
        return kind.block_on(run).map_err(runtime_failed)?;
    }
    if args.messages.iter().any(String::is_empty) {
        return Err(Error::msg("--message must not be empty"));
    }
    let source = if args.messages.is_empty() {
        Source::Stdin
    } else {
        Source::Given(args.messages.clone())
    };
    let kind = args.run.runtime;
    let talk = talk(kind, setup, addr, source, args.count);
    kind.block_on(talk).map_err(runtime_failed)?
}

/// Where the client's messages come from.
enum Source {
    Given(Vec<String>),
    Stdin,
}

/// Reads the next line of stdin off the executor; `None` at the end.
async fn stdin_line() -> Result<Option<String>, Error> {
    smol::unblock(|| {
        let mut line = String::new();
        match io::stdin().lock().read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => {
                let trimmed = line.trim_end_matches(['\n', '\r']).len();
                line.truncate(trimmed);
                Ok(Some(line))
            }
            Err(e) => Err(Error::msg(format!("cannot read stdin: {e}"))),
        }
    })
    .await
}

async fn talk(
    kind: RuntimeKind,
    setup: ClientSetup,
    addr: String,
    source: Source,
    count: u64,
) -> Result<(), Error> {
    let mut client = Client::connect(&kind.runtime(), &setup, &addr).await?;
    let stack = setup.stack();
    match client.user_id() {
        Some(id) if stack.has_port() || stack.has_seaside() => say(format_args!(
            "connected to {} over {} as user {id}",
            client.peer_addr(),
            stack.spec()
        ))?,
        _ => say(format_args!(
            "connected to {} over {}",
            client.peer_addr(),
            stack.spec()
        ))?,
    }
    let mut summary = Summary::new();
    let outcome = async {
        match source {
            Source::Given(messages) => {
                for _ in 0..count {
                    for message in &messages {
                        echo_one(&mut client, &mut summary, message).await?;
                    }
                }
            }
            Source::Stdin => {
                if io::stdin().is_terminal() {
                    eprintln!("echotest: type messages, one per line; end with Ctrl-D");
                }
                loop {
                    // The server may end the connection while this waits for a line (it
                    // stops, say): then this ends too, answering its TERM with ours.
                    let next =
                        futures_lite::future::or(async { stdin_line().await.map(Some) }, async {
                            client.ended().await.map(|()| None)
                        });
                    let Some(line) = next.await? else {
                        say(format_args!("the server ended the connection"))?;
                        break;
                    };
                    let Some(line) = line else { break };
                    if line.is_empty() {
                        continue;
                    }
                    for _ in 0..count {
                        echo_one(&mut client, &mut summary, &line).await?;
                    }
                }
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    say(format_args!("{summary}"))?;
    outcome?;
    let reason = client.close().await?;
    if let Some(reason) = reason {
        say(format_args!("closed: {reason}"))?;
    }
    if summary.mismatches > 0 {
        return Err(Error::msg(format!(
            "{} of {} echoes differed from what was sent",
            summary.mismatches, summary.messages
        )));
    }
    Ok(())
}

async fn echo_one(client: &mut Client, summary: &mut Summary, message: &str) -> Result<(), Error> {
    let echo = client
        .echo(Bytes::copy_from_slice(message.as_bytes()))
        .await?;
    summary.record(message.as_bytes(), &echo);
    say(format_args!("< {}", String::from_utf8_lossy(&echo.reply)))
}

fn demo(args: DemoArgs) -> Result<(), Error> {
    let kind = args.runtime;
    kind.block_on(async {
        let mut out = io::stdout();
        crate::demo::run(kind, &mut out).await.map(|_| ())
    })
    .map_err(runtime_failed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn go_style_options_are_rewritten() {
        let got = normalize_args(strings(&[
            "echotest",
            "server",
            "-stack=port",
            "-listen=127.0.0.1:0",
            "-key=k",
            "-runtime=smol",
            "-x=1",
            "--stack=a",
            "-token",
            "-key=not-rewritten",
        ]));
        assert_eq!(
            got,
            strings(&[
                "echotest",
                "server",
                "--stack=port",
                "--listen=127.0.0.1:0",
                "--key=k",
                "--runtime=smol",
                "-x=1",
                "--stack=a",
                "--token",
                "-key=not-rewritten",
            ])
        );
    }

    #[test]
    fn values_and_the_rest_after_double_dash_stay() {
        let got = normalize_args(strings(&[
            "echotest",
            "client",
            "--message",
            "-stack=x",
            "--",
            "-key=y",
        ]));
        assert_eq!(
            got,
            strings(&[
                "echotest",
                "client",
                "--message",
                "-stack=x",
                "--",
                "-key=y"
            ])
        );
    }

    #[test]
    fn every_subcommand_parses() {
        Cli::command_for_tests().debug_assert();
        let cli = Cli::try_parse_from(normalize_args(strings(&[
            "echotest",
            "server",
            "-stack=port",
            "-listen=127.0.0.1:0",
        ])))
        .unwrap();
        match cli.command {
            Command::Server(args) => {
                assert_eq!(args.stack, "port");
                assert_eq!(args.listen, "127.0.0.1:0");
                assert_eq!(args.run.runtime, RuntimeKind::Tokio);
            }
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = Cli::try_parse_from(["echotest", "server", "--stack", "port"]).unwrap_err();
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--listen"), "{line}");
    }

    #[test]
    fn client_targets() {
        assert_eq!(
            client_target("127.0.0.1:9000", Some("port")).unwrap(),
            ("port".to_owned(), "127.0.0.1:9000".to_owned())
        );
        assert!(client_target("127.0.0.1", Some("port")).is_err());
        assert!(client_target("port://127.0.0.1:9000", Some("port")).is_err());
        assert!(client_target("not a url", None).is_err());
    }

    impl Cli {
        fn command_for_tests() -> clap::Command {
            <Cli as clap::CommandFactory>::command()
        }
    }
}
