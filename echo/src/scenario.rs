//! The network-in-chaos scenarios: the notebook's conditions (ideal, jitter, loss, duplicate,
//! reorder, corrupt, stale peer) plus tamper, each run with the real `echotest` server and
//! client in two namespaces joined by the `chaos` bridge, and what each must show.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use port_chaos::label::{self, Kind, SentMessage};
use port_chaos::netns::{Netns, SERVER_ADDR};
use port_chaos::record::Tally;
use port_chaos::{Faults, Link, PacketRecord};
use port_core::Config;

use crate::error::Error;

/// The PORT settings every scenario runs with: the notebook's knobs scaled to seconds so that
/// a keepalive cycle fits in a scenario, with timeouts wide enough that 30 % loss or 175 ms of
/// jitter (and the TCP retransmissions they cause) do not end a healthy connection.
pub const ENV: [(&str, &str); 9] = [
    ("PORT_TIMEOUT", "8"),
    ("PORT_MIN_TIMEOUT", "3"),
    ("PORT_DEFAULT_TIMEOUT", "3"),
    ("PORT_MAX_TIMEOUT", "5"),
    ("PORT_MIN_NEXT_IN", "1"),
    ("PORT_MAX_NEXT_IN", "2"),
    ("PORT_MAX_RETRIES", "3"),
    // A server closes a connection that has not authenticated at this deadline: under loss the
    // INIT's retransmissions may take seconds.
    ("PORT_DRAIN_MIN", "10"),
    ("PORT_DRAIN_MAX", "12"),
];

/// The port the server listens on inside its namespace.
const PORT: u16 = 9000;
/// No scenario may take longer than this (all of them finish well within it).
pub const CEILING: Duration = Duration::from_secs(90);
/// Allowance for process scheduling and logging on top of the computed keepalive bound.
const BOUND_SLACK: Duration = Duration::from_millis(500);

/// What a scenario must show besides every message echoed once, in order, unaltered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The faults are TCP's business: the PORT connection never breaks.
    Clean,
    /// Corruption TCP's checksum misses must close the PORT connection with a clean reason
    /// (a protocol error); a reconnect then completes the rest.
    FailClosedIfSlipped,
    /// The first altered frame closes the PORT connection with a protocol error; a reconnect
    /// completes the rest.
    Tamper,
    /// The client goes silent and disappears: the server's keepalive gives up within its
    /// bound and the connection is released.
    Stale,
}

/// One scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Its name (`--scenario NAME`).
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// The faults, in netem's vocabulary.
    pub netem: &'static str,
    /// Messages the client sends.
    pub messages: u64,
    /// What it must show.
    pub expect: Expect,
}

/// Every scenario, in the notebook's order.
pub const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "ideal",
        about: "no faults",
        netem: "",
        messages: 40,
        expect: Expect::Clean,
    },
    Scenario {
        name: "jitter",
        about: "random delay of 25-175 ms per packet",
        netem: "delay 100ms 75ms",
        messages: 24,
        expect: Expect::Clean,
    },
    Scenario {
        name: "loss",
        about: "30 % of the client's packets lost",
        netem: "loss 30% direction to-server",
        messages: 24,
        expect: Expect::Clean,
    },
    Scenario {
        name: "duplicate",
        about: "30 % of packets sent twice",
        netem: "duplicate 30%",
        messages: 40,
        expect: Expect::Clean,
    },
    Scenario {
        name: "reorder",
        about: "125 ms delay, 30 % of packets sent at once past the others",
        netem: "delay 125ms reorder 30% 50%",
        messages: 24,
        expect: Expect::Clean,
    },
    Scenario {
        name: "corrupt",
        about: "a byte flipped in 30 % of the client's packets (TCP's checksum catches it)",
        netem: "corrupt 30% direction to-server",
        messages: 24,
        expect: Expect::FailClosedIfSlipped,
    },
    Scenario {
        name: "stale",
        about: "the client goes silent and disappears; the server's keepalive gives up",
        netem: "",
        messages: 6,
        expect: Expect::Stale,
    },
    Scenario {
        name: "tamper",
        about: "a middlebox alters a payload byte and fixes the TCP checksum",
        netem: "tamper 100% after 6 limit 1",
        messages: 24,
        expect: Expect::Tamper,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Result<Scenario, Error> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
            Error::msg(format!(
                "no scenario {name:?}; there are {}",
                names.join(", ")
            ))
        })
}

/// The configuration the endpoints run with.
pub fn config() -> Result<Config, Error> {
    Config::from_vars(ENV).map_err(|e| Error::msg(format!("scenario settings: {e}")))
}

/// What a run showed.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// The faults applied.
    pub faults: Faults,
    /// What failed (empty when it passed).
    pub failures: Vec<String>,
    /// Facts worth printing (detection time, reasons, reconnects).
    pub notes: Vec<String>,
    /// Wall time of the run.
    pub duration: Duration,
    /// Counts over the packet record.
    pub tally: Tally,
    /// Every packet.
    pub records: Vec<PacketRecord>,
    /// What each packet carried.
    pub kinds: Vec<Kind>,
}

impl Outcome {
    /// True when every assertion held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Where a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// A line (or the end of a stream, as `None`) from a child, with when it arrived.
type Event = (Side, Option<String>, Instant);

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forward<R: Read + Send + 'static>(from: Side, stream: R, tx: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send((from, Some(line), Instant::now())).is_err() {
                return;
            }
        }
        let _ = tx.send((from, None, Instant::now()));
    });
}

fn spawn(
    namespace: &Netns,
    exe: &Path,
    args: &[String],
    tx: &mpsc::Sender<Event>,
    from: Side,
) -> Result<Guard, Error> {
    let mut child = namespace
        .command(exe)
        .args(args)
        .envs(ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::msg(format!("cannot start {}: {e}", exe.display())))?;
    if let Some(out) = child.stdout.take() {
        forward(from, out, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        // stderr lines are tagged like stdout lines; both are read the same way.
        forward(from, err, tx.clone());
    }
    Ok(Guard(child))
}

/// Files a run needs: keys, and the endpoints' message records.
pub struct Files {
    /// The server key file.
    pub server_key: PathBuf,
    /// The client key file.
    pub client_key: PathBuf,
    /// The directory holding them.
    pub dir: PathBuf,
}

/// Runs `scenario` with `faults`, starting `exe` (the `echotest` binary) as server and client.
pub fn run(
    exe: &Path,
    scenario: Scenario,
    faults: Faults,
    seed: u64,
    files: &Files,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let config = config()?;
    let link = Link::up(faults.clone(), seed).map_err(|e| Error::msg(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<Event>();
    let listen = format!("{SERVER_ADDR}:{PORT}");
    let tag = scenario.name;
    let client_record = files.dir.join(format!("{tag}.client.jsonl"));
    let server_record = files.dir.join(format!("{tag}.server.jsonl"));
    let server_args: Vec<String> = [
        "server",
        "--stack",
        "port",
        "--listen",
        &listen,
        "--log-level",
        "info",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--key".to_owned(),
        files.server_key.display().to_string(),
        "--record".to_owned(),
        server_record.display().to_string(),
    ])
    .collect();
    let ns = link.namespaces();
    let mut server = spawn(&ns.server, exe, &server_args, &tx, Side::Server)?;
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut server_lines = Vec::new();
    let mut client_lines = Vec::new();
    // Wait for the server to listen.
    let ready_by = Instant::now() + Duration::from_secs(10);
    loop {
        let left = ready_by.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((Side::Server, Some(line), _)) => {
                let ready = line.starts_with("listening on");
                server_lines.push(line);
                if ready {
                    break;
                }
            }
            Ok((Side::Server, None, _)) => {
                let status = server.0.wait().ok();
                return Err(Error::msg(format!(
                    "the server did not start ({status:?}): {}",
                    server_lines.join(" | ")
                )));
            }
            Ok(_) => {}
            Err(_) => return Err(Error::msg("the server did not start within 10 s")),
        }
    }
    let reconnect = match scenario.expect {
        Expect::Clean | Expect::Stale => 0,
        Expect::FailClosedIfSlipped | Expect::Tamper => 3,
    };
    let mut client_args = vec![
        "client".to_owned(),
        format!("port://{listen}"),
        "--key".to_owned(),
        files.client_key.display().to_string(),
        "--sequence".to_owned(),
        scenario.messages.to_string(),
        "--reconnect".to_owned(),
        reconnect.to_string(),
        "--record".to_owned(),
        client_record.display().to_string(),
    ];
    if scenario.expect == Expect::Stale {
        client_args.push("--hold".to_owned());
    }
    let mut client = Some(spawn(&ns.client, exe, &client_args, &tx, Side::Client)?);
    let deadline = started + CEILING;
    let mut client_streams_open = 2;
    let mut client_status: Option<ExitStatus> = None;
    let mut silent_since: Option<Instant> = None;
    let mut server_report: Option<(String, Instant)> = None;
    let bound = config.max_keepalive_detection();
    loop {
        let done = match scenario.expect {
            Expect::Stale => server_report.is_some(),
            _ => client_streams_open == 0,
        };
        if done {
            break;
        }
        let now = Instant::now();
        let mut wait_until = deadline;
        if let Some(t0) = silent_since {
            wait_until = wait_until.min(t0 + bound + Duration::from_secs(5));
        }
        let Ok((from, line, at)) = rx.recv_timeout(wait_until.saturating_duration_since(now))
        else {
            failures.push(match silent_since {
                Some(_) => format!(
                    "the server did not report the silent client within {} s",
                    (bound + Duration::from_secs(5)).as_secs()
                ),
                None => format!("did not finish within {} s", CEILING.as_secs()),
            });
            break;
        };
        match (from, line) {
            (Side::Client, Some(line)) => {
                if line == "seq holding" && scenario.expect == Expect::Stale {
                    // Silence from here: nothing passes, then the client vanishes without a
                    // word (its kernel's RST is swallowed by the blackhole too).
                    link.blackhole_now();
                    silent_since = Some(at);
                    drop(client.take());
                }
                client_lines.push(line);
            }
            (Side::Client, None) => {
                client_streams_open -= 1;
                if client_streams_open == 0 {
                    client_status = client.as_mut().and_then(|c| c.0.wait().ok());
                }
            }
            (Side::Server, Some(line)) => {
                if line.contains("connection ended") || line.contains("connection closed") {
                    server_report.get_or_insert((line.clone(), at));
                }
                server_lines.push(line);
            }
            (Side::Server, None) => {}
        }
    }
    // Let the server report a connection the client just closed.
    if scenario.expect != Expect::Stale {
        let by = Instant::now() + Duration::from_secs(3);
        while server_report.is_none() {
            let Ok((from, line, at)) =
                rx.recv_timeout(by.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            if let (Side::Server, Some(line)) = (from, line) {
                if line.contains("connection ended") || line.contains("connection closed") {
                    server_report = Some((line.clone(), at));
                }
                server_lines.push(line);
            }
        }
    }
    if scenario.expect == Expect::Stale
        && let (Some(t0), Some((line, t1))) = (silent_since, &server_report)
    {
        let detection = t1.saturating_duration_since(t0);
        notes.push(format!(
            "server gave up {:.2} s after the client went silent (bound {} s)",
            detection.as_secs_f64(),
            bound.as_secs_f64()
        ));
        if !line.contains("keepalive") {
            failures.push(format!(
                "the server's report names no keepalive timeout: {line}"
            ));
        }
        if detection > bound + BOUND_SLACK {
            failures.push(format!(
                "keepalive timeout after {:.2} s, above the bound of {} s",
                detection.as_secs_f64(),
                bound.as_secs_f64()
            ));
        }
        if let Some(open) = established(&ns.server) {
            if open > 0 {
                failures.push(format!(
                    "{open} TCP connection(s) still established on the server"
                ));
            } else {
                notes.push("the server released the connection".to_owned());
            }
        }
    }
    drop(client);
    drop(server);
    let records = link.down();
    // The packet record beside the message records, for a look after `--keep`.
    let packets: String = records
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|line| line + "\n")
        .collect();
    let _ = std::fs::write(files.dir.join(format!("{tag}.packets.jsonl")), packets);
    check_sequence(
        scenario,
        &client_lines,
        client_status,
        server_report.as_ref().map(|(l, _)| l.as_str()),
        &records,
        &mut failures,
        &mut notes,
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let client_sent: Vec<SentMessage> = label::parse_sent(&read(&client_record));
    let server_sent: Vec<SentMessage> = label::parse_sent(&read(&server_record));
    let kinds = label::label(&records, &client_sent, &server_sent);
    Ok(Outcome {
        scenario,
        faults,
        failures,
        notes,
        duration: started.elapsed(),
        tally: Tally::of(&records),
        records,
        kinds,
    })
}

/// TCP connections established on the server's port inside `namespace` (`None` when `ss`
/// cannot tell).
fn established(namespace: &Netns) -> Option<usize> {
    let output = namespace
        .command(Path::new("ss"))
        .args(["-Htn", "state", "established"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let port = format!(":{PORT}");
    Some(text.lines().filter(|l| l.contains(&port)).count())
}

/// Checks the client's `seq` lines against what the scenario must show.
fn check_sequence(
    scenario: Scenario,
    lines: &[String],
    status: Option<ExitStatus>,
    server_report: Option<&str>,
    records: &[PacketRecord],
    failures: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let mut echoed = Vec::new();
    let mut lost = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        if words.next() != Some("seq") {
            continue;
        }
        match words.next() {
            Some("echo") => echoed.extend(words.next().and_then(|w| w.parse::<u64>().ok())),
            Some("mismatch") => failures.push(format!("altered data delivered: {line}")),
            Some("lost") => lost.push(line.clone()),
            _ => {}
        }
    }
    let expected: Vec<u64> = (0..scenario.messages).collect();
    if echoed != expected {
        let shown: Vec<String> = echoed.iter().take(60).map(u64::to_string).collect();
        failures.push(format!(
            "echoes were not 0..{} exactly once in order: got [{}]",
            scenario.messages,
            shown.join(" ")
        ));
    }
    if scenario.expect != Expect::Stale && !status.is_some_and(|s| s.success()) {
        let tail: Vec<&str> = lines.iter().rev().take(3).map(String::as_str).collect();
        failures.push(format!(
            "the client failed ({status:?}): {}",
            tail.join(" | ")
        ));
    }
    let tally = Tally::of(records);
    let protocol_error = |text: &str| text.contains("protocol error");
    let reasons: Vec<&str> = lost
        .iter()
        .map(String::as_str)
        .chain(server_report)
        .collect();
    match scenario.expect {
        Expect::Clean | Expect::Stale => {
            if !lost.is_empty() {
                failures.push(format!("the PORT connection broke: {}", lost.join(" | ")));
            }
        }
        Expect::FailClosedIfSlipped => {
            if !lost.is_empty() {
                notes.push(format!(
                    "corruption slipped past TCP {} time(s); reconnected",
                    lost.len()
                ));
                if !reasons.iter().any(|r| protocol_error(r)) {
                    failures.push(format!(
                        "a broken connection named no protocol error: {}",
                        reasons.join(" | ")
                    ));
                }
            }
        }
        Expect::Tamper => {
            if tally.tampered != 1 {
                failures.push(format!(
                    "{} segments tampered with, expected 1",
                    tally.tampered
                ));
            }
            if lost.len() != 1 {
                failures.push(format!(
                    "expected the connection to fail closed once, it broke {} time(s)",
                    lost.len()
                ));
            }
            if !reasons.iter().any(|r| protocol_error(r)) {
                failures.push(format!(
                    "the altered frame was not reported as a protocol error: {}",
                    reasons.join(" | ")
                ));
            } else {
                notes.push("failed closed on the altered frame; reconnected".to_owned());
            }
        }
    }
    if let Some(report) = server_report
        && let Some(reason) = report.split("reason=").nth(1)
    {
        notes.push(format!("server: {}", reason.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_specs_are_valid() {
        let config = config().unwrap();
        assert_eq!(config.max_keepalive_detection(), Duration::from_secs(17));
        for s in SCENARIOS {
            Faults::parse(s.netem).unwrap();
            assert_eq!(find(s.name).unwrap().name, s.name);
        }
        assert!(find("nope").unwrap_err().message().contains("ideal"));
    }
}
