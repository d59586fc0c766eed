//! The network namespaces of a run: the harness's own, and one each for a client and a
//! server inside it.
//!
//! The harness first enters a user namespace with a network namespace of its own
//! ([`enter_own_network`]), where an ordinary user holds `CAP_NET_ADMIN` over that network
//! and nothing else: creating TUN devices and namespaces there needs no root and touches
//! nothing of the machine's own network. The client's and the server's namespaces are
//! created with `unshare --net` around a holder process (no `ip netns add`, which needs
//! `/run/netns`), addressed by its pid, and entered with `nsenter`. A holder reads its stdin
//! until the harness goes: however the harness ends, even killed outright, its pipe closes,
//! the holder exits, and its namespace is gone with it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// The client's address (inside its namespace only).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// The server's address (inside its namespace only).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);

/// Set in the environment of a harness that runs inside its own user and network
/// namespaces.
pub const INSIDE_VAR: &str = "PORT_CHAOS_OWN_NETWORK";

/// Runs `program` with `args`; an error carries its stderr.
fn run(program: &str, args: &[&str]) -> Result<Output, Error> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error(format!("cannot run `{program}`: {e}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Runs `ip` with `args` in the harness's own namespace.
pub fn ip(args: &[&str]) -> Result<Output, Error> {
    run("ip", args)
}

/// The arguments of `unshare` that give a process a user namespace in which it is root (its
/// own uid mapped to 0) and a network namespace owned by it.
pub const UNSHARE_OWN_NETWORK: [&str; 3] = ["--user", "--map-root-user", "--net"];

/// Runs this program again, with the same arguments, inside a user namespace with its own
/// network namespace, and returns its exit status; `None` when this process already runs
/// inside one (then it goes on).
pub fn enter_own_network() -> Result<Option<ExitStatus>, Error> {
    if std::env::var_os(INSIDE_VAR).is_some() {
        return Ok(None);
    }
    let exe =
        std::env::current_exe().map_err(|e| Error(format!("cannot find this program: {e}")))?;
    let status = Command::new("unshare")
        .args(UNSHARE_OWN_NETWORK)
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INSIDE_VAR, "1")
        .status()
        .map_err(|e| Error(format!("cannot run `unshare`: {e}")))?;
    Ok(Some(status))
}

/// A network namespace held open by a holder process.
#[derive(Debug)]
pub struct Netns {
    holder: Child,
    pid: u32,
}

impl Netns {
    /// A fresh namespace with its loopback up.
    fn create() -> Result<Netns, Error> {
        let holder = Command::new("unshare")
            .args(["--net", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error(format!("cannot run `unshare --net`: {e}")))?;
        let pid = holder.id();
        let mut ns = Netns { holder, pid };
        ns.wait_unshared()?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Waits until the holder left this process's network namespace (`unshare` has run).
    fn wait_unshared(&mut self) -> Result<(), Error> {
        let ours = std::fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let theirs = std::fs::read_link(format!("/proc/{}/ns/net", self.pid)).ok();
            if theirs.is_some() && theirs != ours {
                return Ok(());
            }
            if let Ok(Some(status)) = self.holder.try_wait() {
                let mut why = String::new();
                if let Some(mut err) = self.holder.stderr.take() {
                    use std::io::Read;
                    let _ = err.read_to_string(&mut why);
                }
                return Err(Error(format!(
                    "`unshare --net` ended ({status}): {}",
                    why.trim()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error("`unshare --net` did not start".to_owned()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The holder's pid, which names the namespace (`ip link set DEV netns PID`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args(["--target", &self.pid.to_string(), "--net", "--"])
            .arg(program);
        command
    }

    /// Runs `ip` with `args` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<Output, Error> {
        let pid = self.pid.to_string();
        let mut all = vec!["--target", &pid, "--net", "--", "ip"];
        all.extend_from_slice(args);
        run("nsenter", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A client namespace and a server namespace, removed on drop.
#[derive(Debug)]
pub struct Namespaces {
    /// The client's.
    pub client: Netns,
    /// The server's.
    pub server: Netns,
}

impl Namespaces {
    /// Creates both namespaces with their loopback up.
    pub fn create() -> Result<Namespaces, Error> {
        Ok(Namespaces {
            client: Netns::create()?,
            server: Netns::create()?,
        })
    }
}
