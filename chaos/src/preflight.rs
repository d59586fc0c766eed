//! What the harness needs from the machine, checked up front so that a run on a machine
//! without it fails with one line naming what is missing instead of passing or failing oddly.

use std::process::{Command, Stdio};

use crate::Error;

/// Checks for what a run needs: `/dev/net/tun` open for reading and writing by this user,
/// the `ip`, `unshare` and `nsenter` commands, and a user namespace with its own network
/// namespace (which ordinary users get unless the kernel forbids it). No root is needed.
pub fn check() -> Result<(), Error> {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| e.to_string());
    let has = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let userns = if std::env::var_os(crate::netns::INSIDE_VAR).is_some() {
        Ok(())
    } else {
        own_network()
    };
    verdict(
        tun,
        has("ip", "-V"),
        has("unshare", "--version") && has("nsenter", "--version"),
        userns,
    )
}

/// Tries `unshare --user --map-root-user --net true`.
fn own_network() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(crate::netns::UNSHARE_OWN_NETWORK)
        .arg("true")
        .output()
        .map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
    }
}

/// The one line for what is missing, given what was found.
fn verdict(
    tun: Result<(), String>,
    ip: bool,
    util_linux: bool,
    userns: Result<(), String>,
) -> Result<(), Error> {
    let mut missing = Vec::new();
    if let Err(e) = tun {
        missing.push(format!(
            "/dev/net/tun open for reading and writing ({e}; most distributions make it \
             world-accessible: chmod 0666 /dev/net/tun)"
        ));
    }
    if !ip {
        missing.push("the `ip` command (install iproute2)".to_owned());
    }
    if !util_linux {
        missing.push("the `unshare` and `nsenter` commands (install util-linux)".to_owned());
    }
    if let Err(e) = userns {
        missing.push(format!(
            "a user namespace of its own ({e}; the kernel must allow unprivileged user \
             namespaces)"
        ));
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
        assert!(verdict(Ok(()), true, true, Ok(())).is_ok());
        let denied = || Err("Permission denied (os error 13)".to_owned());
        let e = verdict(denied(), true, true, Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("chaos needs /dev/net/tun open"), "{e}");
        assert!(e.contains("Permission denied"), "{e}");
        let e = verdict(Ok(()), false, false, Err("Operation not permitted".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("iproute2") && e.contains("util-linux"), "{e}");
        assert!(
            e.contains("user namespace") && !e.contains("/dev/net/tun"),
            "{e}"
        );
        let all = verdict(denied(), false, false, Err("no".into())).unwrap_err();
        assert!(!all.0.contains('\n'));
    }
}
