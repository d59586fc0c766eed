//! # port-tunnel: forward TCP ports over PORT
//!
//! The `port-tunnel` binary is a pair of small daemons. The client listens on a local port
//! and carries every TCP connection it accepts to the server over PORT; the server checks
//! the client's token and connects each carried connection to one fixed target:
//!
//! ```text
//! app ──TCP──▶ port-tunnel client ══PORT══▶ port-tunnel server ──TCP──▶ target
//! ```
//!
//! ```text
//! port-tunnel keygen --out keys
//! echo "$(head -c 24 /dev/urandom | base64) laptop" > tokens     # on the server
//! head -n1 tokens > token                                        # give it to the client
//! port-tunnel server --listen 0.0.0.0:9000 --key keys/server.key --forward 127.0.0.1:22 --tokens tokens
//! port-tunnel client --listen 127.0.0.1:2222 --server port://SERVER:9000 --key keys/client.key --token token
//! ssh -p 2222 127.0.0.1
//! ```
//!
//! Or the client is a **SOCKS5 proxy** (`--socks5 ADDR`, [`socks`]): each CONNECT names its
//! target, which travels to the server with the token inside the sealed INIT ([`target`]);
//! the server connects only where its `--allow` list permits ([`allow`]) and otherwise
//! refuses with a status the client turns into the SOCKS5 reply that says why ([`refusal`]).
//!
//! **One PORT connection per TCP connection.** Multiplexing streams over a shared PORT
//! connection would put every stream behind the slowest one (head-of-line blocking inside
//! one TCP connection and one send window); the PORT handshake is cheap (one round trip, a
//! few X25519 operations); and each connection gets its own padding, keepalive schedule and
//! lifetime, so nothing ties one stream's traffic to another's.
//!
//! **Half-close** is carried: the local side's FIN becomes a TERM after the data queued before
//! it, and the peer's TERM becomes `shutdown(Write)` on the TCP socket, so protocols that end
//! their request with a FIN and then read the answer work.
//!
//! **A cut stays a cut**: when a carried connection ends without TERM (the other tunnel
//! process died, the path broke, the far application reset its socket), the local
//! application's socket is reset (`ECONNRESET`), never closed with a FIN, so a cut transfer
//! cannot pass for a finished one.
//!
//! **Backpressure** holds end to end: each direction holds one read buffer of up to 128 KiB,
//! and PORT's send and receive windows (256 KiB each) make a slow reader on either side stop
//! the reads at the far end, so memory per carried connection is bounded. A direction idle for a
//! second gives its read buffer back.
//!
//! **Tokens**: the server's `--tokens` file holds one `TOKEN [NAME]` per line (`#`
//! comments) and is reloaded on SIGHUP; an unknown token is refused with the status
//! `registration error` ([`port_stack::tokens::UNKNOWN_TOKEN`]), a target that is not allowed
//! or cannot be reached with the status of its [`refusal::Refusal`]; the client logs it in
//! words (a SOCKS5 client gets the matching reply) and closes the local connection with a
//! FIN.
//!
//! **Stacks**: the server's `--stack` may put layers of the stack registry over PORT
//! (`port+passthrough`), and the client names the same stack in its URL
//! (`port+passthrough://SERVER:9000`); see [`stacks`]. Stacks may also be named in stack
//! files: `--stacks-file FILE` on either side, after the stack crate's search path. The
//! default, `port`, runs PORT connections directly.
//!
//! **Settings** come from flags, else `PORT_TUNNEL_*` and `PORT_*` environment variables, else a
//! TOML file (`--config FILE`, see [`config`]). SIGINT or SIGTERM stops accepting, gives open
//! connections up to 30 s to finish, and prints a summary line of connections and bytes.
//!
//! Modules: [`config`] (settings; token files are read by [`port_stack::tokens`]), [`copy`]
//! (carrying one connection), [`stacks`], [`server`], [`client`], [`shutdown`], [`summary`], [`cli`].
#![forbid(unsafe_code)]

pub mod allow;
pub mod cli;
pub mod client;
pub mod config;
mod config_file;
pub mod copy;
pub mod error;
pub mod refusal;
pub mod server;
pub mod shutdown;
pub mod socks;
pub mod stacks;
pub mod summary;
pub mod target;

pub use error::Error;
