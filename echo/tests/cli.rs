//! The `echotest` binary, run as a process: every command, every runtime, every bad input.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use port_core::{ClientKey, ServerKey};

/// Generous bound on any one process run.
const LIMIT: Duration = Duration::from_secs(60);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_echotest")
}

/// A fresh, empty directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "echotest-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished process left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The `< text` lines, without the marker.
    fn echoes(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("< "))
            .collect()
    }

    /// Asserts a failure reported as exactly one `echotest: ` line on stderr, and returns it.
    fn one_error_line(&self) -> &str {
        assert!(!self.ok(), "expected a failure: {self:?}");
        assert!(self.code.is_some(), "killed by a signal: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:?}");
        assert!(lines[0].starts_with("echotest: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        lines[0]
    }
}

fn reader<R: Read + Send + 'static>(mut from: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `echotest ARGS` with `stdin`, killing it after [`LIMIT`].
fn run_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(bin());
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("PORT_STACKS_FILE");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn echotest");
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_owned();
    let writer = thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("echotest {args:?} did not finish within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn run(args: &[&str]) -> Run {
    run_env(args, "", &[])
}

/// A running `echotest server`, killed on drop.
struct ServerProcess {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_env(args, &[])
    }

    /// The server with `env` set.
    fn start_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(bin());
        command.arg("server").args(args).envs(env.iter().copied());
        ServerProcess::spawn(command, args)
    }

    /// The server with at most `max_files` open descriptors (`ulimit -n`).
    fn start_with_file_limit(max_files: u32, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -n {max_files} && exec \"$0\" server \"$@\""
            ))
            .arg(bin())
            .args(args);
        ServerProcess::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> ServerProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("PORT_STACKS_FILE")
            .spawn()
            .expect("spawn echotest server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut server = ServerProcess {
            child,
            addr: String::new(),
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => server.addr = addr,
            Err(_) => panic!(
                "server {args:?} did not report its address; stderr: {}",
                server.stderr()
            ),
        }
        server
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (within [`LIMIT`]) for the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", "TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -s TERM {pid}");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < LIMIT,
                "the server did not exit on SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the server's log contains `needle` (it logs after the client is gone).
    fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.stderr();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "server log never showed {needle:?}: {log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a fresh key pair with `echotest keygen --out` and returns (server.key, client.key).
fn keys(dir: &TempDir) -> (String, String) {
    keys_with(dir, &[])
}

/// [`keys`] with more `keygen` arguments.
fn keys_with(dir: &TempDir, extra: &[&str]) -> (String, String) {
    let out = dir.file("keys");
    let mut args = vec!["keygen", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = run(&args);
    assert!(result.ok(), "{result:?}");
    (
        out.join("server.key").to_str().unwrap().to_owned(),
        out.join("client.key").to_str().unwrap().to_owned(),
    )
}

#[test]
fn demo_shows_the_exchange_and_exits_zero() {
    let result = run(&["demo"]);
    assert!(result.ok(), "{result:?}");
    let out = &result.stdout;
    for marker in [
        "echotest demo:",
        "== stack \"port\"",
        "== stack \"port+passthrough\"",
        "server listening on 127.0.0.1:",
        "handshake: connected as user 1",
        "> \"hello\" (5 bytes) went out as ",
        "random padding; < \"hello\"",
        "close: client: closed locally; server: closed by the peer",
        "3 messages, 33 bytes echoed; round trip min",
        "done: 66 payload bytes went out in ",
    ] {
        assert!(out.contains(marker), "no {marker:?} in:\n{out}");
    }
    assert!(!out.contains("DIFFERENT"), "{out}");
    let lines = out.lines().count();
    assert!((12..=30).contains(&lines), "{lines} lines:\n{out}");
    assert_eq!(result.stderr, "", "{result:?}");
}

#[test]
fn demo_padding_numbers_add_up() {
    let result = run(&["demo"]);
    assert!(result.ok(), "{result:?}");
    // "> "hello" (5 bytes) went out as W bytes: 5 payload + 44 framing + P random padding; ..."
    let mut frames = 0;
    for line in result.stdout.lines().filter(|l| l.starts_with("> ")) {
        let number_after = |key: &str| -> u64 {
            let at = line
                .find(key)
                .unwrap_or_else(|| panic!("{key:?} in {line}"))
                + key.len();
            line[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let wire = number_after("went out as ");
        let payload = number_after("bytes: ");
        let padding = number_after("framing + ");
        assert_eq!(wire, payload + 44 + padding, "{line}");
        assert!(padding <= 512, "{line}");
        frames += 1;
    }
    assert_eq!(frames, 6, "{}", result.stdout);
}

#[test]
fn demo_without_padding_shows_none() {
    let result = run_env(&["demo"], "", &[("PORT_TAIL_LENGTH", "0")]);
    assert!(result.ok(), "{result:?}");
    assert!(
        result.stdout.contains("of them random padding") && result.stdout.contains(", 0 of them"),
        "{}",
        result.stdout
    );
}

#[test]
fn keygen_out_writes_two_matching_files() {
    let dir = TempDir::new();
    let out = dir.file("keys");
    let result = run(&["keygen", "--out", out.to_str().unwrap()]);
    assert!(result.ok(), "{result:?}");
    let server_text = std::fs::read_to_string(out.join("server.key")).unwrap();
    let client_text = std::fs::read_to_string(out.join("client.key")).unwrap();
    assert!(server_text.starts_with("port1-secret:"));
    assert!(client_text.starts_with("port1-public:"));
    let server = ServerKey::from_text(&server_text).unwrap();
    let client = ClientKey::from_text(&client_text).unwrap();
    assert_eq!(server.client_key(), client);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The secret is never printed.
    assert!(!result.stdout.contains(server_text.trim()));

    // No silent overwrite; --force replaces both with a new pair.
    let again = run(&["keygen", "--out", out.to_str().unwrap()]);
    assert!(again.one_error_line().contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(out.join("server.key")).unwrap(),
        server_text
    );
    let forced = run(&["keygen", "--out", out.to_str().unwrap(), "--force"]);
    assert!(forced.ok(), "{forced:?}");
    let new_server =
        ServerKey::from_text(&std::fs::read_to_string(out.join("server.key")).unwrap()).unwrap();
    let new_client =
        ClientKey::from_text(&std::fs::read_to_string(out.join("client.key")).unwrap()).unwrap();
    assert_eq!(new_server.client_key(), new_client);
    assert_ne!(new_client, client);
}

#[test]
fn keygen_prints_the_client_key_first_and_labels_the_secret() {
    let result = run(&["keygen"]);
    assert!(result.ok(), "{result:?}");
    let lines: Vec<&str> = result.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", result.stdout);
    assert!(lines[0].starts_with('#') && lines[0].contains("client key"));
    let client = ClientKey::from_text(lines[1]).unwrap();
    assert!(lines[2].starts_with('#') && lines[2].contains("SECRET"));
    let server = ServerKey::from_text(lines[3]).unwrap();
    assert_eq!(server.client_key(), client);
}

/// Runs a server on `runtime` and a client on `runtime` over `stack`, and checks the echoes.
fn echo_over(stack: &str, runtime: &str) {
    let dir = TempDir::new();
    echo_with_keys(stack, runtime, keys(&dir));
}

/// A server and a client over `stack` with the key files `(server.key, client.key)`.
fn echo_with_keys(stack: &str, runtime: &str, (server_key, client_key): (String, String)) {
    let server = ServerProcess::start(&[
        "--stack",
        stack,
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--runtime",
        runtime,
    ]);
    let url = format!("{stack}://{}", server.addr);
    let result = run(&[
        "client",
        &url,
        "--key",
        &client_key,
        "--message",
        "hello",
        "--message",
        "two words, ünïcödé",
        "--count",
        "2",
        "--runtime",
        runtime,
    ]);
    assert!(result.ok(), "{stack} on {runtime}: {result:?}");
    assert_eq!(
        result.echoes(),
        ["hello", "two words, ünïcödé", "hello", "two words, ünïcödé"],
        "{stack} on {runtime}: {result:?}"
    );
    let summary = result
        .stdout
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary: {result:?}"));
    assert!(
        summary.starts_with("summary: 4 messages, 54 bytes echoed; round trip min "),
        "{summary}"
    );
    assert!(
        summary.contains(" median ") && summary.contains(" max "),
        "{summary}"
    );
    assert_eq!(result.stderr, "", "{result:?}");
    let log = server.wait_log("connection closed");
    assert!(log.contains("user_id=1"), "{log}");
    assert!(log.contains("messages=4"), "{log}");
}

/// `echotest keygen --seaside` keys (upstream's standard base64 of 40 bytes), a server and a
/// client over `stack` (which holds `seaside`): the echo crosses the second connection.
fn echo_seaside(stack: &str, runtime: &str) {
    let dir = TempDir::new();
    let out = dir.file("keys");
    let made = run(&["keygen", "--seaside", "--out", out.to_str().unwrap()]);
    assert!(made.ok(), "{made:?}");
    let server_key = out.join("server.key").to_str().unwrap().to_owned();
    let client_key = out.join("client.key").to_str().unwrap().to_owned();
    let client_text = std::fs::read_to_string(&client_key).unwrap();
    let parsed = port_core::seaside::ClientKey::from_text(&client_text).expect("a seaside key");
    let server_text = std::fs::read_to_string(&server_key).unwrap();
    let secret = port_core::seaside::ServerKey::from_text(&server_text).expect("a seaside key");
    assert_eq!(secret.client_key(), parsed);
    let server = ServerProcess::start(&[
        "--stack",
        stack,
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--runtime",
        runtime,
    ]);
    let listen_port: u32 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let result = run(&[
        "client",
        "--stack",
        stack,
        &server.addr,
        "--key",
        &client_key,
        "--token",
        "sample user token",
        "--message",
        "hello",
        "--count",
        "3",
        "--runtime",
        runtime,
    ]);
    assert!(result.ok(), "{stack} on {runtime}: {result:?}");
    assert_eq!(result.echoes(), ["hello", "hello", "hello"], "{result:?}");
    // The user id is the port of the per-user socket, not the listener's.
    let user_id: u32 = result
        .stdout
        .lines()
        .find_map(|l| l.split(" as user ").nth(1))
        .unwrap_or_else(|| panic!("no user id: {result:?}"))
        .trim()
        .parse()
        .unwrap();
    assert!(user_id != 0 && user_id != listen_port, "{user_id}");
    let log = server.wait_log("connection closed");
    assert!(log.contains(&format!("user_id={user_id}")), "{log}");
    assert!(log.contains("messages=3"), "{log}");
}

#[test]
fn echo_seaside_on_tokio() {
    echo_seaside("seaside", "tokio");
}

#[test]
fn echo_seaside_on_smol() {
    echo_seaside("seaside", "smol");
}

#[test]
fn echo_frame_over_seaside_on_async_std() {
    echo_seaside("frame+seaside", "async-std");
}

#[test]
fn seaside_needs_a_seaside_key() {
    let dir = TempDir::new();
    let (server_key, _) = keys(&dir);
    // A PORT/1 key is not a seaside key: one clear line naming the expected form.
    let result = run(&[
        "server",
        "--stack",
        "seaside",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
    ]);
    let line = result.one_error_line();
    assert!(
        line.contains("seaside") && line.contains("base64"),
        "{line}"
    );
    let result = run(&["client", "--stack", "seaside", "127.0.0.1:9"]);
    let line = result.one_error_line();
    assert!(line.contains("--key"), "{line}");
}

#[test]
fn echo_port_with_a_shaped_key_line() {
    let dir = TempDir::new();
    let shape = "prefix=@tls&popcount=high&lengths=shaped";
    let files = keys_with(&dir, &["--shape", shape]);
    for file in [&files.0, &files.1] {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = "?prefix=FgMBAgABAAH8AwM&popcount=high&lengths=shaped";
        assert!(text.trim_end().ends_with(expected), "{text}");
    }
    echo_with_keys("port", "tokio", files);
    let bad = run(&["keygen", "--shape", "popcount=sideways"]);
    assert!(
        !bad.ok() && bad.stderr.contains("popcount=low|high"),
        "{bad:?}"
    );
}

#[test]
fn echo_port_with_an_aes_key_line_and_a_cipher_mismatch_goes_unanswered() {
    let dir = TempDir::new();
    let files = keys_with(&dir, &["--cipher", "aes-256-gcm"]);
    let client_line = std::fs::read_to_string(&files.1).unwrap();
    for file in [&files.0, &files.1] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.trim_end().ends_with("?cipher=aes-256-gcm"), "{text}");
    }
    echo_with_keys("port", "tokio", files.clone());
    echo_with_keys("port", "smol", files.clone());

    // The same key without the cipher: the server sees a stranger and never answers.
    let chacha = dir.file("chacha-client.key");
    let plain = client_line
        .trim_end()
        .trim_end_matches("?cipher=aes-256-gcm");
    std::fs::write(&chacha, format!("{plain}\n")).unwrap();
    let server = ServerProcess::start(&[
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &files.0,
    ]);
    let url = format!("port://{}", server.addr);
    let result = run_env(
        &[
            "client",
            &url,
            "--key",
            chacha.to_str().unwrap(),
            "--message",
            "x",
        ],
        "",
        &[("PORT_TIMEOUT", "1")],
    );
    let line = result.one_error_line();
    assert!(
        line.contains("the server never answered the handshake"),
        "{line}"
    );
    assert!(!server.stderr().contains("accepted"), "{}", server.stderr());
    let bad = run(&["keygen", "--cipher", "aes-128-gcm"]);
    assert!(!bad.ok() && bad.stderr.contains("aes-256-gcm"), "{bad:?}");
}

#[test]
fn a_client_gets_through_400_silent_connections_at_256_descriptors() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let server = ServerProcess::start_with_file_limit(
        256,
        &[
            "--stack",
            "port",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &server_key,
        ],
    );
    let silent: Vec<std::net::TcpStream> = (0..400)
        .map(|_| std::net::TcpStream::connect(&server.addr).expect("a silent connection"))
        .collect();
    // The server runs out of descriptors and evicts the oldest silent connections.
    server.wait_log("evicting unauthenticated connections");
    let url = format!("port://{}", server.addr);
    let start = Instant::now();
    let result = run(&["client", &url, "--key", &client_key, "--message", "through"]);
    let took = start.elapsed();
    println!("echo through 400 silent connections at ulimit -n 256: {took:?}");
    assert!(result.ok(), "{result:?}; server: {}", server.stderr());
    assert_eq!(result.echoes(), ["through"]);
    assert!(took < Duration::from_secs(1), "the echo took {took:?}");
    drop(silent);
}

#[test]
fn a_probe_gets_the_fallbacks_answer() {
    let dir = TempDir::new();
    let (server_key, _) = keys(&dir);
    let fallback = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = fallback.local_addr().unwrap().to_string();
    let response = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let service = thread::spawn(move || {
        let (mut socket, _) = fallback.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(response).unwrap();
        request
    });
    let server = ServerProcess::start(&[
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--fallback",
        &target,
    ]);
    let get = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let mut probe = std::net::TcpStream::connect(&server.addr).unwrap();
    probe.write_all(get).unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, response, "server: {}", server.stderr());
    assert_eq!(service.join().unwrap(), get);
    let bad = run(&[
        "server",
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--fallback",
        "no-port",
    ]);
    assert!(
        !bad.ok() && bad.stderr.contains("bad --fallback"),
        "{bad:?}"
    );
}

/// `echotest probes` exits non-zero when an answer through PORT differs from the service's
/// own; its report names every kind with the three delays.
#[test]
fn probes_get_the_services_own_answers_through_port() {
    for runtime in ["tokio", "smol"] {
        let result = run(&["probes", "--rounds", "3", "--runtime", runtime]);
        assert!(result.ok(), "{runtime}: {result:?}");
        let lines: Vec<&str> = result.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", result.stdout);
        for (line, kind) in lines
            .iter()
            .zip(["HTTP GET", "TLS ClientHello", "600 random bytes"])
        {
            assert!(line.starts_with(kind), "{line}");
            for part in ["direct ", "relay ", "PORT ", "medians of 3 rounds"] {
                assert!(line.contains(part), "{line}");
            }
        }
    }
}

/// `--tokens FILE` (port-tunnel's format): a listed token is accepted with its line's user id
/// and name; another is refused, and the client says so in words.
#[test]
fn server_tokens_accept_the_listed_and_refuse_the_rest() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let tokens = dir.file("tokens");
    std::fs::write(&tokens, "# who may connect\nalpha alice\nbeta bob\n").unwrap();
    let tokens = tokens.to_str().unwrap().to_owned();
    let server = ServerProcess::start(&[
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--tokens",
        &tokens,
    ]);
    let url = format!("port://{}", server.addr);
    let client = |token: &str| {
        run(&[
            "client",
            &url,
            "--key",
            &client_key,
            "--token",
            token,
            "--message",
            "hi",
        ])
    };
    let bob = client("beta");
    assert!(bob.ok(), "{bob:?}");
    assert_eq!(bob.echoes(), ["hi"]);
    assert!(bob.stdout.contains("as user 2"), "{bob:?}");
    server.wait_log("client=bob");
    let stranger = client("gamma");
    let line = stranger.one_error_line();
    assert!(
        line.contains("the server does not know this token"),
        "{line}"
    );
    server.wait_log("unknown token: refused");
    let missing = run(&[
        "server",
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--tokens",
        "/nonexistent/tokens",
    ]);
    assert!(
        missing
            .one_error_line()
            .contains("cannot read tokens file /nonexistent/tokens"),
        "{missing:?}"
    );
}

/// SIGTERM: the server ends every connection with TERM (a clean end the client can tell
/// from a cut) and exits 0.
#[test]
fn sigterm_ends_every_client_with_term_and_exits_zero() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let mut server = ServerProcess::start(&[
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
    ]);
    let mut client = Command::new(bin())
        .args([
            "client",
            &format!("port://{}", server.addr),
            "--key",
            &client_key,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let mut output = BufReader::new(client.stdout.take().unwrap());
    input.write_all(b"one\n").unwrap();
    let mut line = String::new();
    while !line.starts_with("< one") {
        line.clear();
        assert!(output.read_line(&mut line).unwrap() > 0, "no echo");
    }
    assert_eq!(server.terminate(), Some(0), "{}", server.stderr());
    assert!(
        server
            .stderr()
            .contains("TERM to every client connections=1"),
        "{}",
        server.stderr()
    );
    // The client took the TERM as the server's clean end, answered with its own and exited
    // 0 while still waiting for a line, which let the server stop before its grace ran out.
    let mut rest = String::new();
    output.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = client.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest} {stderr}");
    assert!(rest.contains("the server ended the connection"), "{rest}");
    assert!(rest.contains("closed: "), "{rest}");
    let log = server.stderr();
    assert!(
        log.contains("connection closed") && log.contains("reason=closed locally"),
        "{log}"
    );
    drop(input);
}

/// A refused connection is logged at debug level when it is refused, not when its drain
/// ends (here 10 minutes later).
#[test]
fn a_refusal_is_logged_when_it_happens() {
    let dir = TempDir::new();
    let (server_key, _) = keys(&dir);
    let server = ServerProcess::start_env(
        &[
            "--stack",
            "port",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &server_key,
            "--log-level",
            "debug",
        ],
        &[("PORT_DRAIN_MIN", "600"), ("PORT_DRAIN_MAX", "700")],
    );
    let mut probe = std::net::TcpStream::connect(&server.addr).unwrap();
    probe.write_all(&[0x5a; 300]).unwrap();
    server.wait_log("refused before authentication");
    drop(probe);
}

/// A port free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET /metrics` from `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample of `name` carrying every label of `labels`, if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `--metrics ADDR` serves the Prometheus text format while a client is connected: its
/// state, its handshake, its payload and padding bytes, keepalive round trips, and a probe.
#[test]
fn metrics_are_served_while_traffic_flows() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let metrics = format!("127.0.0.1:{}", free_port());
    let keepalive = [("PORT_MIN_NEXT_IN", "0.1"), ("PORT_MAX_NEXT_IN", "0.2")];
    let server = ServerProcess::start_env(
        &[
            "--stack",
            "port",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &server_key,
            "--metrics",
            &metrics,
        ],
        &keepalive,
    );
    let mut client = Command::new(bin())
        .args([
            "client",
            &format!("port://{}", server.addr),
            "--key",
            &client_key,
        ])
        .envs(keepalive)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let mut output = BufReader::new(client.stdout.take().unwrap());
    input.write_all(b"one\n").unwrap();
    let mut line = String::new();
    while !line.starts_with("< one") {
        line.clear();
        assert!(output.read_line(&mut line).unwrap() > 0, "no echo");
    }
    let mut probe = std::net::TcpStream::connect(&server.addr).unwrap();
    probe.write_all(&[0x5a; 300]).unwrap();
    probe.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = probe.read_to_end(&mut Vec::new());
    let server_side = ("side", "server");
    let start = Instant::now();
    let text = loop {
        let text = scrape(&metrics);
        let rtt = sample(&text, "port_keepalive_rtt_seconds_count", &[server_side]);
        let probes = sample(&text, "port_probes_total", &[("outcome", "drained")]);
        if rtt.is_some_and(|n| n >= 1.0) && probes == Some(1.0) {
            break text;
        }
        assert!(start.elapsed() < LIMIT, "{text}");
        thread::sleep(Duration::from_millis(50));
    };
    let connected = [server_side, ("state", "connected")];
    assert_eq!(
        sample(&text, "port_connections", &connected),
        Some(1.0),
        "{text}"
    );
    let accepted = [server_side, ("outcome", "accepted")];
    assert_eq!(
        sample(&text, "port_handshakes_total", &accepted),
        Some(1.0),
        "{text}"
    );
    let refused = [("outcome", "refused"), ("reason", "unauthenticated")];
    assert_eq!(
        sample(&text, "port_handshakes_total", &refused),
        Some(1.0),
        "{text}"
    );
    for direction in ["received", "sent"] {
        let payload = [server_side, ("direction", direction), ("kind", "payload")];
        assert_eq!(
            sample(&text, "port_bytes_total", &payload),
            Some(3.0),
            "{text}"
        );
        for kind in ["padding", "framing"] {
            let labels = [server_side, ("direction", direction), ("kind", kind)];
            let bytes = sample(&text, "port_bytes_total", &labels);
            assert!(bytes.is_some_and(|n| n > 0.0), "{text}");
        }
    }
    assert!(
        text.contains("port_keepalive_rtt_seconds_bucket{"),
        "{text}"
    );
    drop(input);
    let _ = client.wait();
}

#[test]
fn echo_passthrough_on_tokio() {
    echo_over("passthrough", "tokio");
}

#[test]
fn echo_port_on_tokio() {
    echo_over("port", "tokio");
}

#[test]
fn echo_port_passthrough_on_tokio() {
    echo_over("port+passthrough", "tokio");
}

#[test]
fn echo_passthrough_on_smol() {
    echo_over("passthrough", "smol");
}

#[test]
fn echo_port_on_smol() {
    echo_over("port", "smol");
}

#[test]
fn echo_port_passthrough_on_smol() {
    echo_over("port+passthrough", "smol");
}

#[test]
fn echo_port_passthrough_on_async_std() {
    echo_over("port+passthrough", "async-std");
}

#[test]
fn go_style_single_dash_options_work() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let server = ServerProcess::start(&[
        "-stack=port",
        "-listen=127.0.0.1:0",
        &format!("-key={server_key}"),
        "-runtime=smol",
    ]);
    let result = run(&[
        "client",
        "-stack",
        "port",
        &server.addr,
        &format!("-key={client_key}"),
        "-message=single dash",
        "-runtime=tokio",
    ]);
    assert!(result.ok(), "{result:?}");
    assert_eq!(result.echoes(), ["single dash"]);
}

#[test]
fn client_reads_stdin_lines_and_the_server_logs_users_and_token_lengths() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let server = ServerProcess::start(&[
        "--stack",
        "secure",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
    ]);
    let token = "very-secret-token-value";
    let first = run_env(
        &[
            "client",
            "--stack",
            "secure",
            &server.addr,
            "--key",
            &client_key,
            "--token",
            token,
        ],
        "line one\n\nline two\r\n",
        &[],
    );
    assert!(first.ok(), "{first:?}");
    assert_eq!(first.echoes(), ["line one", "line two"]);
    assert!(first.stdout.contains("as user 1"), "{first:?}");
    let second = run(&[
        "client",
        &format!("port+passthrough://{}", server.addr),
        "--key",
        &client_key,
        "--message",
        "again",
    ]);
    assert!(second.ok(), "{second:?}");
    assert!(second.stdout.contains("as user 2"), "{second:?}");
    let log = server.wait_log("user_id=2 messages=1");
    assert!(log.contains("user_id=1 token_len=23"), "{log}");
    assert!(log.contains("user_id=2 token_len=8"), "{log}");
    assert!(log.contains("reason=closed by the peer"), "{log}");
    assert!(!log.contains(token), "the token leaked into the log: {log}");
}

#[test]
fn key_is_ignored_for_stacks_without_port() {
    let server = ServerProcess::start(&[
        "--stack",
        "frame+pass",
        "--listen",
        "127.0.0.1:0",
        "--key",
        "/nonexistent/server.key",
    ]);
    let result = run(&[
        "client",
        &format!("frame+pass://{}", server.addr),
        "--message",
        "framed",
    ]);
    assert!(result.ok(), "{result:?}");
    assert_eq!(result.echoes(), ["framed"]);
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let garbage = dir.file("garbage.key");
    std::fs::write(&garbage, "port1-secret:not!base64\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let missing = dir.file("missing.key");
    let missing = missing.to_str().unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["server", "--stack", "nope", "--listen", "127.0.0.1:0"],
            "unknown stack or layer \"nope\"",
        ),
        (
            vec!["client", "nope://127.0.0.1:9", "--message", "x"],
            "unknown stack or layer \"nope\"",
        ),
        (
            vec!["client", "127.0.0.1:9000", "--message", "x"],
            "bad URL",
        ),
        (
            vec!["client", "port://127.0.0.1:notaport", "--key", &client_key],
            "bad URL",
        ),
        (
            vec![
                "client",
                "--stack",
                "port",
                "127.0.0.1",
                "--key",
                &client_key,
            ],
            "bad HOST:PORT",
        ),
        (
            vec!["server", "--stack", "port", "--listen", "127.0.0.1:0"],
            "needs a server key",
        ),
        (
            vec!["client", "port://127.0.0.1:9", "--message", "x"],
            "needs the server's client key",
        ),
        (
            vec![
                "server",
                "--stack",
                "port",
                "--listen",
                "127.0.0.1:0",
                "--key",
                garbage,
            ],
            "bad server key file",
        ),
        (
            vec![
                "server",
                "--stack",
                "port",
                "--listen",
                "127.0.0.1:0",
                "--key",
                &client_key,
            ],
            "bad server key file",
        ),
        (
            vec![
                "server",
                "--stack",
                "port",
                "--listen",
                "127.0.0.1:0",
                "--key",
                missing,
            ],
            "cannot read server key file",
        ),
        (
            vec![
                "client",
                "port://127.0.0.1:9",
                "--key",
                &server_key,
                "--message",
                "x",
            ],
            "bad client key file",
        ),
        (
            vec!["server", "--stack", "pass", "--listen", "no-port-here"],
            "bad listen address",
        ),
        (
            vec![
                "server",
                "--stack",
                "pass",
                "--listen",
                "127.0.0.1:0",
                "--runtime",
                "tokyo",
            ],
            "invalid value 'tokyo'",
        ),
        (vec!["client", "--message", "x"], "required"),
        (vec!["launch"], "unrecognized subcommand"),
        (vec![], "missing command"),
        (
            vec!["client", "pass://127.0.0.1:9", "--message", ""],
            "--message must not be empty",
        ),
    ];
    for (args, expected) in cases {
        let result = run(&args);
        let line = result.one_error_line();
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    // A secret put in a URL by mistake is not repeated.
    let result = run(&["client", "port://127.0.0.1:9000?token=hunter2"]);
    let line = result.one_error_line();
    assert!(
        line.contains("bad URL") && !line.contains("hunter2"),
        "{line}"
    );
    // A bad PORT_* variable names itself.
    let result = run_env(&["demo"], "", &[("PORT_MAX_RETRIES", "0")]);
    assert!(result.one_error_line().contains("PORT_MAX_RETRIES"));
}

#[test]
fn connection_refused_fails_with_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for runtime in ["tokio", "smol", "async-std"] {
        let result = run(&[
            "client",
            &format!("pass://127.0.0.1:{port}"),
            "--message",
            "x",
            "--runtime",
            runtime,
        ]);
        let line = result.one_error_line();
        assert!(
            line.starts_with(&format!("echotest: cannot connect to 127.0.0.1:{port}: "))
                && line.to_lowercase().contains("refused"),
            "{runtime}: {line}"
        );
    }
}

#[test]
fn port_in_use_fails_with_one_line() {
    let server = ServerProcess::start(&["--stack", "pass", "--listen", "127.0.0.1:0"]);
    for runtime in ["tokio", "smol"] {
        let result = run(&[
            "server",
            "--stack",
            "pass",
            "--listen",
            &server.addr,
            "--runtime",
            runtime,
        ]);
        let line = result.one_error_line();
        assert!(
            line.starts_with(&format!("echotest: cannot listen on {}: ", server.addr))
                && line.to_lowercase().contains("in use"),
            "{runtime}: {line}"
        );
    }
}

/// A wrong key gets silence from the server, whichever ends it first: the client's
/// handshake timeout or the server's drain deadline. Either way the client says the handshake
/// failed (not that it could not connect) and points at the key.
#[test]
fn a_client_with_the_wrong_key_is_told_to_check_the_key() {
    let dir = TempDir::new();
    let (server_key, _) = keys(&dir);
    let other = TempDir::new();
    let (_, wrong_client_key) = keys(&other);
    let args = [
        "--stack",
        "port",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
    ];
    for (server_env, client_timeout, how) in [
        (&[][..], "1", "nothing within the handshake timeout"),
        (
            &[("PORT_DRAIN_MIN", "0.2"), ("PORT_DRAIN_MAX", "0.3")][..],
            "20",
            "it closed the connection",
        ),
    ] {
        let server = ServerProcess::start_env(&args, server_env);
        let url = format!("port://{}", server.addr);
        let result = run_env(
            &["client", &url, "--key", &wrong_client_key, "--message", "x"],
            "",
            &[("PORT_TIMEOUT", client_timeout)],
        );
        let line = result.one_error_line();
        assert!(
            line.starts_with(&format!(
                "echotest: the handshake with {} failed: the server never answered the handshake ({how})",
                server.addr
            )) && line.contains("client key"),
            "{line}"
        );
        assert!(!server.stderr().contains("accepted"), "{}", server.stderr());
    }
}

#[test]
fn help_works_for_every_subcommand() {
    for sub in [
        "keygen", "server", "client", "demo", "flights", "lengths", "probes",
    ] {
        let result = run(&[sub, "--help"]);
        assert!(result.ok(), "{sub}: {result:?}");
        assert!(
            result.stdout.contains(&format!("Usage: echotest {sub}")),
            "{sub}: {}",
            result.stdout
        );
        let short = run(&["help", sub]);
        assert!(short.ok(), "{sub}: {short:?}");
    }
    let top = run(&["--help"]);
    assert!(top.ok() && top.stdout.contains("echotest demo"), "{top:?}");
    for sub in ["keygen", "server", "client", "demo"] {
        assert!(top.stdout.contains(sub), "{top:?}");
    }
    let server_help = run(&["server", "--help"]).stdout;
    for option in [
        "--stack",
        "--listen",
        "--key",
        "--runtime",
        "--stacks-file",
        "--log-level",
        "--fallback",
        "--max-unauthenticated",
    ] {
        assert!(server_help.contains(option), "{option}: {server_help}");
    }
    let client_help = run(&["client", "--help"]).stdout;
    for option in [
        "--stack",
        "--key",
        "--token",
        "--message",
        "--count",
        "--runtime",
    ] {
        assert!(client_help.contains(option), "{option}: {client_help}");
    }
}

#[test]
fn a_stacks_file_defines_new_stack_names() {
    let dir = TempDir::new();
    let (server_key, client_key) = keys(&dir);
    let stacks = dir.file("stacks.toml");
    std::fs::write(&stacks, "[stack.tunnel]\nlayers = [\"frame\", \"port\"]\n").unwrap();
    let stacks = stacks.to_str().unwrap();
    let server = ServerProcess::start(&[
        "--stack",
        "tunnel",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &server_key,
        "--stacks-file",
        stacks,
    ]);
    let result = run(&[
        "client",
        &format!("tunnel://{}", server.addr),
        "--key",
        &client_key,
        "--stacks-file",
        stacks,
        "--message",
        "through a named stack",
    ]);
    assert!(result.ok(), "{result:?}");
    assert_eq!(result.echoes(), ["through a named stack"]);
    let bad = dir.file("bad.toml");
    std::fs::write(&bad, "[stack.x]\nlayer = [\"port\"]\n").unwrap();
    let result = run(&[
        "server",
        "--stack",
        "x",
        "--listen",
        "127.0.0.1:0",
        "--stacks-file",
        bad.to_str().unwrap(),
    ]);
    assert!(result.one_error_line().contains("bad stacks file"));
}
