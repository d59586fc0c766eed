//! What the harness needs from the machine, checked up front so that a run on a machine
//! without it fails with one line naming what is missing instead of passing or failing oddly.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// Checks for root, `/dev/net/tun` and the `ip` command (iproute2).
pub fn check() -> Result<(), Error> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (namespaces and TUN devices need CAP_NET_ADMIN; run as root)");
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun (the TUN driver)");
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|s| s.success()) {
        missing.push("the `ip` command (install iproute2)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error(format!("chaos needs {}", missing.join(", and "))))
    }
}
