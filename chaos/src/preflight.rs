//! What the harness needs from the machine, checked up front so that a run on a machine
//! without it fails with one line naming what is missing instead of passing or failing oddly.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// Checks for root, `/dev/net/tun` and the `ip` command (iproute2).
pub fn check() -> Result<(), Error> {
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    verdict(
        nix::unistd::geteuid().is_root(),
        Path::new("/dev/net/tun").exists(),
        ip.is_ok_and(|s| s.success()),
    )
}

/// The one line for what is missing, given what was found.
fn verdict(root: bool, tun: bool, ip: bool) -> Result<(), Error> {
    let mut missing = Vec::new();
    if !root {
        missing.push("root (namespaces and TUN devices need CAP_NET_ADMIN; run as root)");
    }
    if !tun {
        missing.push("/dev/net/tun (the TUN driver)");
    }
    if !ip {
        missing.push("the `ip` command (install iproute2)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error(format!("chaos needs {}", missing.join(", and "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_piece_on_one_line() {
        assert!(verdict(true, true, true).is_ok());
        let e = verdict(false, true, true).unwrap_err().to_string();
        assert!(e.starts_with("chaos needs root"), "{e}");
        let e = verdict(true, false, false).unwrap_err().to_string();
        assert!(e.contains("/dev/net/tun") && e.contains("iproute2"), "{e}");
        assert!(!e.contains("root"));
        assert!(!verdict(false, false, false).unwrap_err().0.contains('\n'));
    }
}
