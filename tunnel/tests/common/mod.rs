//! Running the real `port-tunnel` binary on loopback, and small TCP peers for it to carry.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// The ceiling on any wait: generous, so a loaded machine is slow, never flaky.
pub const HANG: Duration = Duration::from_secs(60);

pub const BIN: &str = env!("CARGO_BIN_EXE_port-tunnel");

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("port-tunnel-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `port-tunnel keygen --out DIR`.
pub fn keygen(dir: &Path) {
    keygen_with(dir, &[]);
}

/// `port-tunnel keygen --out DIR` with more arguments.
pub fn keygen_with(dir: &Path, extra: &[&str]) {
    let out = Command::new(BIN)
        .arg("keygen")
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The binary with the test's environment free of PORT_* variables.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("PORT_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A running `port-tunnel server` or `client`.
pub struct Daemon {
    child: Option<Child>,
    /// Where it listens (from its `listening on ADDR` line).
    pub addr: SocketAddr,
    lines: Receiver<String>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (stderr to `log`) and waits for its `listening on` line.
    pub fn start(mut cmd: Command, log: PathBuf) -> Daemon {
        let err = fs::File::create(&log).unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(HANG).unwrap_or_else(|_| {
            panic!(
                "no `listening on` line; log: {}",
                fs::read_to_string(&log).unwrap()
            )
        });
        // `listening on ADDR`, or `socks5 listening on ADDR` for a SOCKS5-only client.
        assert!(first.contains("listening on "), "{first}");
        let addr = first.rsplit(' ').next().unwrap().parse().unwrap();
        Daemon {
            child: Some(child),
            addr,
            lines,
            log,
        }
    }

    pub fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().unwrap();
        kill_process(Pid::from_child(child), signal).unwrap();
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the log holds `needle`.
    pub fn wait_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < HANG,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status and the stdout lines after `listening on`.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        self.signal(Signal::TERM);
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < HANG, "did not stop:\n{}", self.log());
            thread::sleep(Duration::from_millis(20));
        };
        let rest = self.lines.try_iter().collect();
        (status, rest)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Keys, a tokens file and a token file in `dir`.
pub struct Files {
    pub dir: PathBuf,
    pub server_key: PathBuf,
    pub client_key: PathBuf,
    pub tokens: PathBuf,
    pub token: PathBuf,
}

impl Files {
    /// Fresh keys; the server lists `listed`, the client presents `presented`.
    pub fn new(name: &str, listed: &str, presented: &str) -> Files {
        Files::with_keygen(name, listed, presented, &[])
    }

    /// [`Files::new`] with more `keygen` arguments (`--shape …`).
    pub fn with_keygen(name: &str, listed: &str, presented: &str, extra: &[&str]) -> Files {
        let dir = temp_dir(name);
        keygen_with(&dir, extra);
        let tokens = dir.join("tokens");
        fs::write(&tokens, format!("# tokens\n{listed}\n")).unwrap();
        let token = dir.join("token");
        fs::write(&token, format!("{presented}\n")).unwrap();
        Files {
            server_key: dir.join("server.key"),
            client_key: dir.join("client.key"),
            dir,
            tokens,
            token,
        }
    }

    pub fn server(&self, forward: SocketAddr) -> Daemon {
        self.server_on(forward, "port")
    }

    /// A server serving `stack`.
    pub fn server_on(&self, forward: SocketAddr, stack: &str) -> Daemon {
        self.server_env(forward, stack, &[])
    }

    /// A server serving `stack`, with `env` set.
    pub fn server_env(&self, forward: SocketAddr, stack: &str, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = command();
        cmd.args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            &forward.to_string(),
            "--stack",
            stack,
        ])
        .arg("--key")
        .arg(&self.server_key)
        .arg("--tokens")
        .arg(&self.tokens)
        .envs(env.iter().copied());
        Daemon::start(cmd, self.dir.join("server.log"))
    }

    /// A server with `args` after its key and tokens (`--forward`, `--allow`, ...).
    pub fn server_args(&self, args: &[&str]) -> Daemon {
        let mut cmd = command();
        cmd.args(["server", "--listen", "127.0.0.1:0"])
            .arg("--key")
            .arg(&self.server_key)
            .arg("--tokens")
            .arg(&self.tokens)
            .args(args);
        Daemon::start(cmd, self.dir.join("server.log"))
    }

    /// A client of `server` with `args` instead of `--listen` (`--socks5`, ...).
    pub fn client_args(&self, server: SocketAddr, args: &[&str]) -> Daemon {
        let mut cmd = command();
        cmd.args(["client", "--server", &format!("port://{server}")])
            .arg("--key")
            .arg(&self.client_key)
            .arg("--token")
            .arg(&self.token)
            .args(args);
        Daemon::start(cmd, self.dir.join("client.log"))
    }

    pub fn client_with(&self, server: SocketAddr, key: &Path, env: &[(&str, &str)]) -> Daemon {
        self.client_on(server, "port", key, env)
    }

    /// A client of a server serving `stack`.
    pub fn client_on(
        &self,
        server: SocketAddr,
        stack: &str,
        key: &Path,
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = command();
        cmd.args([
            "client",
            "--listen",
            "127.0.0.1:0",
            "--server",
            &format!("{stack}://{server}"),
        ])
        .arg("--key")
        .arg(key)
        .arg("--token")
        .arg(&self.token)
        .envs(env.iter().copied());
        Daemon::start(cmd, self.dir.join("client.log"))
    }

    pub fn client(&self, server: SocketAddr) -> Daemon {
        self.client_with(server, &self.client_key, &[])
    }
}

/// Copies everything a connection sends back to it, FIN included.
pub fn echo_connection(mut tcp: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tcp.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tcp.shutdown(Shutdown::Write);
}

/// An echo server on 127.0.0.1:0, every connection on its own thread.
pub fn echo_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { break };
            thread::spawn(move || echo_connection(tcp));
        }
    });
    addr
}

/// Deterministic bytes that differ from stream to stream.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A client connection with read and write timeouts at the hang ceiling.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(HANG)).unwrap();
    tcp.set_write_timeout(Some(HANG)).unwrap();
    tcp
}

/// Sends `data` through `addr` (an echo behind a tunnel) while reading the echo; checks it
/// byte for byte, then half-closes and expects the echo's FIN.
pub fn echo_through(addr: SocketAddr, data: &[u8]) {
    let tcp = connect(addr);
    let mut writer = tcp.try_clone().unwrap();
    let sent = data.to_vec();
    let send = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    let mut reader = tcp;
    reader.read_to_end(&mut back).unwrap();
    send.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs from what was sent");
}

/// Expects the connection to be closed by the tunnel with a FIN (not a reset), no data.
pub fn expect_clean_close(addr: SocketAddr) {
    let mut tcp = connect(addr);
    let _ = tcp.write_all(b"hello?");
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => {}
        other => panic!("expected a clean end of stream, got {other:?}"),
    }
}
