//! The two network namespaces of a run, named `portc-<pid>` (client) and `ports-<pid>`
//! (server). Their addresses live only inside them, so nothing outside is ever targeted.
//!
//! They are removed (and every process left inside them killed) when [`Namespaces`] is
//! dropped, when the process gets SIGINT, SIGTERM or SIGHUP, and by the next run when an
//! earlier one was killed outright (its pid no longer exists).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, Once};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// Prefix of the client namespace's name.
pub const CLIENT_PREFIX: &str = "portc-";
/// Prefix of the server namespace's name.
pub const SERVER_PREFIX: &str = "ports-";
/// The client's address (inside its namespace only).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// The server's address (inside its namespace only).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);

/// Namespaces to remove if a signal ends the process.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `ip` with `args`; an error carries its stderr.
pub fn ip(args: &[&str]) -> Result<Output, Error> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| Error(format!("cannot run `ip`: {e}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Kills every process inside namespace `name`, then deletes it. Errors are ignored: this
/// runs on the way out.
fn remove(name: &str) {
    if let Ok(out) = ip(&["netns", "pids", name]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    let _ = ip(&["netns", "del", name]);
}

/// Removes namespaces with this harness's prefixes whose run's process is gone.
pub fn clean_stale() {
    let Ok(out) = ip(&["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let pid = name
            .strip_prefix(CLIENT_PREFIX)
            .or_else(|| name.strip_prefix(SERVER_PREFIX));
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
            && !running(pid)
        {
            remove(name);
        }
    }
}

/// True while process `pid` runs (a killed process its parent has not reaped yet is a
/// zombie: its `/proc` entry stays, but it will never clean up after itself).
fn running(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    !status
        .lines()
        .any(|line| line.starts_with("State:") && line.contains("Z"))
}

/// Removes the live namespaces and exits when SIGINT, SIGTERM or SIGHUP arrives.
fn install_signal_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let names = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
                for name in names {
                    remove(&name);
                }
                eprintln!("chaos: interrupted; namespaces removed");
                std::process::exit(128 + signal);
            }
        });
    });
}

/// A client namespace and a server namespace, removed on drop.
#[derive(Debug)]
pub struct Namespaces {
    /// The client namespace's name.
    pub client: String,
    /// The server namespace's name.
    pub server: String,
}

impl Namespaces {
    /// Creates both namespaces (after removing stale ones) with their loopback up.
    pub fn create() -> Result<Namespaces, Error> {
        install_signal_cleanup();
        clean_stale();
        let pid = std::process::id();
        let ns = Namespaces {
            client: format!("{CLIENT_PREFIX}{pid}"),
            server: format!("{SERVER_PREFIX}{pid}"),
        };
        for name in [&ns.client, &ns.server] {
            // A namespace left by this very pid (a rerun in the same process) is replaced.
            remove(name);
            if let Ok(mut live) = LIVE.lock() {
                live.push(name.clone());
            }
            ip(&["netns", "add", name])?;
            ip(&["-n", name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// A command that runs `program` inside namespace `name`.
    pub fn command(name: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", name]).arg(program);
        command
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.client, &self.server] {
            remove(name);
            if let Ok(mut live) = LIVE.lock() {
                live.retain(|n| n != name);
            }
        }
    }
}
