//! Building blocks of the scenarios: keys, configurations, payloads, a hang detector, an echo
//! server and a TCP relay that can cut or blackhole a path.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use port_core::{ClientConfig, Config, ServerConfig, ServerKey, Status};
use port_driver::{Acceptor, Listener, Options, Socket};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::Harness;

/// Ceiling of one whole scenario: only a hang gets anywhere near it.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

/// Slack allowed on top of a protocol deadline before an observation counts as late: far
/// above any scheduling delay on a loaded machine, yet a deadline that is missed, not merely
/// observed a little late, still fails.
pub const MARGIN: Duration = Duration::from_secs(3);

/// The token the [`EchoServer`] rejects.
pub const REJECTED_TOKEN: &[u8] = b"please reject me";

/// The status the [`EchoServer`] rejects [`REJECTED_TOKEN`] with.
pub const REJECTION: Status = Status::Application(4242);

/// The user id the [`EchoServer`] gives every client it accepts.
pub const USER_ID: u32 = 7;

/// A server key generated from a fixed seed.
pub fn server_key(seed: u8) -> ServerKey {
    ServerKey::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
}

/// Short protocol timers for scenarios that wait on one: handshake 2 s, drain 1–2 s,
/// keepalive every 1–2 s, PONG waits of 0.5/1/1 s, 2 retries (a silent peer is detected at
/// most 4 s after its last sign of life).
pub fn fast_config() -> Config {
    Config::builder()
        .handshake_timeout(Duration::from_secs(2))
        .drain_min(Duration::from_secs(1))
        .drain_max(Duration::from_secs(2))
        .min_next_in(Duration::from_secs(1))
        .max_next_in(Duration::from_secs(2))
        .min_timeout(Duration::from_millis(500))
        .default_timeout(Duration::from_secs(1))
        .max_timeout(Duration::from_secs(1))
        .max_retries(2)
        .build()
        .expect("a valid configuration")
}

/// The default configuration: its timers are far longer than any scenario needs, so a busy
/// machine cannot time out a handshake or a keepalive, and nothing a scenario observes is
/// caused by a timer.
pub fn patient_config() -> Config {
    Config::default()
}

/// A client setup for `key` with `token`.
pub fn client_setup(config: &Config, key: &ServerKey, token: &[u8]) -> ClientConfig {
    ClientConfig::new(config.clone(), key.client_key(), token.to_vec()).expect("a valid token")
}

/// `len` pseudo-random bytes determined by `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// A slice of `len` bytes (at most 64 KiB) of a fixed pseudo-random block, at an offset
/// determined by `seed`: distinct contents per seed without generating bulk data each time.
pub fn sample(seed: u64, len: usize) -> Vec<u8> {
    const BLOCK: usize = 128 * 1024;
    static CORPUS: LazyLock<Vec<u8>> = LazyLock::new(|| payload(0xc0de, BLOCK));
    assert!(len <= BLOCK / 2, "samples are at most 64 KiB");
    let offset = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % (BLOCK - len + 1);
    CORPUS[offset..offset + len].to_vec()
}

/// A pseudo-random number generator for sizes, determined by `seed`.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A uniform draw in `0..=max` from `rng`.
pub fn below_or_eq(rng: &mut ChaCha20Rng, max: usize) -> usize {
    rng.next_u32() as usize % (max + 1)
}

/// Where every listener of the suite binds.
pub const LOOPBACK: &str = "127.0.0.1:0";

/// A PORT listener on `H`'s runtime, on loopback.
pub async fn bind<H: Harness>(server: ServerConfig) -> io::Result<Listener> {
    Listener::bind(&H::runtime(), LOOPBACK, server).await
}

/// Waits for `duration` on `H`'s clock.
pub async fn sleep<H: Harness>(duration: Duration) {
    port_driver::sleep(&*H::runtime(), duration).await;
}

/// A plain TCP listener of `H`'s runtime, on loopback.
pub fn tcp_bind<H: Harness>() -> io::Result<Box<dyn Acceptor>> {
    H::runtime().bind(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The next plain TCP connection of `listener`.
pub async fn tcp_accept(listener: &dyn Acceptor) -> io::Result<Box<dyn Socket>> {
    let (socket, _peer) = poll_fn(|cx| listener.poll_accept(cx)).await?;
    Ok(socket)
}

/// `future`, or a panic naming `what` if it has not finished within `limit`.
pub async fn with_timeout<H: Harness, F: Future>(what: &str, limit: Duration, f: F) -> F::Output {
    let outcome = future::or(async { Some(f.await) }, async {
        sleep::<H>(limit).await;
        None
    })
    .await;
    match outcome {
        Some(output) => output,
        None => panic!("{}: {what} did not finish within {limit:?}", H::NAME),
    }
}

/// Scenarios that load every core hold it exclusively, all others shared: a scenario
/// checking a protocol timer never shares the machine with a CPU-bound one, so scheduling
/// delays stay far below the margins it allows.
static MACHINE: RwLock<()> = RwLock::new(());

/// Runs a scenario body on `H`, bounded by [`SCENARIO_LIMIT`]; other scenarios may run at the
/// same time, except [`run_alone`] ones.
pub fn run<H: Harness, F: Future>(name: &str, body: F) -> F::Output {
    let _shared = MACHINE.read().unwrap_or_else(PoisonError::into_inner);
    H::block_on(with_timeout::<H, _>(name, SCENARIO_LIMIT, body))
}

/// [`run`], for a scenario that loads every core: no other scenario runs meanwhile.
pub fn run_alone<H: Harness, F: Future>(name: &str, body: F) -> F::Output {
    let _exclusive = MACHINE.write().unwrap_or_else(PoisonError::into_inner);
    H::block_on(with_timeout::<H, _>(name, SCENARIO_LIMIT, body))
}

/// What an [`EchoServer`] saw.
#[derive(Debug, Default)]
pub struct EchoStats {
    /// Clients whose token authenticated (accepted or rejected).
    pub incomings: AtomicUsize,
    /// Connections that echoed until the client's clean end and then closed cleanly.
    pub clean: AtomicUsize,
    /// Descriptions of connections that ended any other way.
    pub failures: Mutex<Vec<String>>,
}

/// A PORT echo server: accepts every token but [`REJECTED_TOKEN`] with [`USER_ID`], echoes
/// every message until the client's clean end, then closes its side.
#[derive(Debug)]
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub stats: Arc<EchoStats>,
}

impl EchoServer {
    /// Binds on loopback and starts accepting on `H`.
    pub async fn start<H: Harness>(server: ServerConfig) -> EchoServer {
        let options = Options::for_config(server.config());
        EchoServer::start_with::<H>(server, options).await
    }

    /// [`start`](Self::start) with listener `options` (a fallback, a cap).
    pub async fn start_with<H: Harness>(server: ServerConfig, options: Options) -> EchoServer {
        let listener = Listener::bind_with(&H::runtime(), LOOPBACK, server, options)
            .await
            .expect("bind a PORT listener");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let stats = Arc::new(EchoStats::default());
        let accepting = stats.clone();
        drop(H::spawn(async move {
            while let Ok(incoming) = listener.accept().await {
                accepting.incomings.fetch_add(1, Ordering::SeqCst);
                if &incoming.token()[..] == REJECTED_TOKEN {
                    incoming.reject(REJECTION).expect("reject");
                    continue;
                }
                let stream = incoming.accept(USER_ID).expect("accept");
                let stats = accepting.clone();
                drop(H::spawn(async move {
                    match echo_messages(stream).await {
                        Ok(()) => stats.clean.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            let mut failures = stats.failures.lock().expect("not poisoned");
                            failures.push(e.to_string());
                            0
                        }
                    };
                }));
            }
        }));
        EchoServer { addr, stats }
    }

    /// Waits until `n` connections ended cleanly; panics as soon as one ended otherwise.
    pub async fn wait_clean<H: Harness>(&self, n: usize) {
        loop {
            {
                let failures = self.stats.failures.lock().expect("not poisoned");
                assert!(
                    failures.is_empty(),
                    "{}: echo server failures: {failures:?}",
                    H::NAME
                );
            }
            if self.stats.clean.load(Ordering::SeqCst) >= n {
                return;
            }
            sleep::<H>(Duration::from_millis(10)).await;
        }
    }

    /// Clients whose token authenticated so far.
    pub fn incomings(&self) -> usize {
        self.stats.incomings.load(Ordering::SeqCst)
    }
}

async fn echo_messages(mut stream: port_driver::Stream) -> Result<(), port_driver::Error> {
    while let Some(message) = stream.recv().await? {
        stream.send(message).await?;
    }
    stream.close().await
}

/// Reads a raw TCP socket until the server ends it: returns how many bytes arrived and when
/// the end (EOF, or a reset) was seen. Other errors panic.
pub async fn read_until_closed<S: AsyncRead + Unpin>(socket: &mut S) -> (usize, Instant) {
    let mut buf = [0u8; 4096];
    let mut received = 0;
    loop {
        match socket.read(&mut buf).await {
            Ok(0) => return (received, Instant::now()),
            Ok(n) => received += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return (received, Instant::now());
            }
            Err(e) => panic!("unexpected error on a raw socket: {e}"),
        }
    }
}

/// Shared state of a [`Relay`].
#[derive(Debug)]
struct RelayControl {
    blackhole: AtomicBool,
    abort: Mutex<Option<smol::channel::Sender<()>>>,
    aborted: smol::channel::Receiver<()>,
}

impl RelayControl {
    /// Completes once the relay was aborted.
    async fn aborted(&self) {
        // Nothing is ever sent: the channel closes when the sender is dropped.
        let _ = self.aborted.recv().await;
    }
}

/// A TCP relay between clients and a target, which can cut every path it carries at once
/// (dropping both sockets of each, as a vanished peer would) or silently stop forwarding in
/// both directions while keeping the sockets open.
#[derive(Debug)]
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    control: Arc<RelayControl>,
}

impl Relay {
    /// Starts relaying connections to `target` on `H`.
    pub async fn start<H: Harness>(target: SocketAddr) -> Relay {
        let listener = tcp_bind::<H>().expect("bind the relay");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (abort, aborted) = smol::channel::bounded(1);
        let control = Arc::new(RelayControl {
            blackhole: AtomicBool::new(false),
            abort: Mutex::new(Some(abort)),
            aborted,
        });
        let ctl = control.clone();
        drop(H::spawn(async move {
            let accepting = async {
                loop {
                    let Ok(client) = tcp_accept(&*listener).await else {
                        return;
                    };
                    let server = H::runtime()
                        .connect(target)
                        .await
                        .expect("relay to the target");
                    drop(H::spawn(relay_pair(client, server, ctl.clone())));
                }
            };
            future::or(accepting, ctl.aborted()).await;
        }));
        Relay { addr, control }
    }

    /// Drops both sockets of every relayed path, without any further byte.
    pub fn abort(&self) {
        self.control.abort.lock().expect("not poisoned").take();
    }

    /// Stops forwarding in both directions; the sockets stay open and everything read from
    /// them is discarded.
    pub fn blackhole(&self) {
        self.control.blackhole.store(true, Ordering::SeqCst);
    }
}

async fn relay_pair<C, S>(client: C, server: S, control: Arc<RelayControl>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = futures_lite::io::split(client);
    let (server_read, server_write) = futures_lite::io::split(server);
    let up = pump(client_read, server_write, &control);
    let down = pump(server_read, client_write, &control);
    future::or(
        async {
            future::zip(up, down).await;
        },
        control.aborted(),
    )
    .await;
    // Everything (both sockets included) is dropped here.
}

async fn pump<R, W>(mut from: R, mut to: W, control: &RelayControl)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if control.blackhole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    if !control.blackhole.load(Ordering::SeqCst) {
        let _ = to.close().await;
    }
}
