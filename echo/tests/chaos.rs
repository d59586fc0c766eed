//! The network-in-chaos scenarios through the real binary: each runs `echotest chaos
//! --scenario NAME --check` (server and client in two namespaces, faults injected by the
//! bridge) and must pass. No root is needed: the harness runs in a user namespace of its
//! own. Where the machine cannot give it one (or /dev/net/tun is closed to this user, or
//! iproute2 or util-linux is missing), each test prints `skipped: <what is missing>` and
//! passes, unless `PORT_CHAOS=require` (as CI sets it), under which a skip is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// The echotest binary: `PORT_ECHOTEST_BIN`, else the one cargo built.
fn echotest() -> PathBuf {
    std::env::var_os("PORT_ECHOTEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_echotest")))
}

/// False (after saying why) when this machine cannot run the scenarios and that is allowed.
fn runnable() -> bool {
    let Err(missing) = port_chaos::preflight::check() else {
        return true;
    };
    if std::env::var("PORT_CHAOS").is_ok_and(|v| v == "require") {
        panic!("PORT_CHAOS=require, but {missing}");
    }
    // Straight to stderr: the test harness captures `println!` of a passing test, and a skip
    // must be seen.
    let _ = writeln!(std::io::stderr(), "skipped: {missing}");
    false
}

fn scenario(name: &str) {
    if !runnable() {
        return;
    }
    let output = Command::new(echotest())
        .args(["chaos", "--scenario", name, "--check"])
        .output()
        .expect("run echotest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chaos {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("PASS {name} in")),
        "no PASS line for {name}:\n{stdout}"
    );
    assert!(stdout.contains("chaos: 1 passed, 0 failed"), "{stdout}");
}

#[test]
fn ideal_with_a_labelled_plot() {
    if !runnable() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("echotest-chaos-plot-{}", std::process::id()));
    let plot = dir.join("ideal.svg");
    let output = Command::new(echotest())
        .args(["chaos", "--scenario", "ideal", "--check", "--plot"])
        .arg(&plot)
        .output()
        .expect("run echotest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("PASS ideal in"), "{stdout}");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // The endpoints' message records label the bars: INIT, DATA and TERM bars of the client
    // (each colour appears once in the legend, so more means bars).
    for (kind, colour) in [
        ("INIT", "#1f77b4"),
        ("DATA", "#2ca02c"),
        ("TERM", "#d62728"),
    ] {
        let bars = svg.matches(&format!("fill=\"{colour}\"/>")).count();
        assert!(bars >= 2, "no {kind} bar in the plot");
    }
}

#[test]
fn jitter() {
    scenario("jitter");
}

#[test]
fn loss() {
    scenario("loss");
}

#[test]
fn duplicate() {
    scenario("duplicate");
}

#[test]
fn reorder() {
    scenario("reorder");
}

#[test]
fn corrupt() {
    scenario("corrupt");
}

#[test]
fn stale_peer() {
    if !runnable() {
        return;
    }
    let output = Command::new(echotest())
        .args(["chaos", "--scenario", "stale", "--check"])
        .output()
        .expect("run echotest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("peer stopped answering keepalives"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the server released the connection"),
        "{stdout}"
    );
}

#[test]
fn tamper() {
    scenario("tamper");
}

#[test]
fn a_bad_spec_names_the_token() {
    let output = Command::new(echotest())
        .args(["chaos", "--scenario", "ideal", "--netem", "loss lots"])
        .output()
        .expect("run echotest");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("\"lots\"") && stderr.contains("loss 30%"),
        "{stderr}"
    );
}

#[test]
fn the_list_names_every_scenario() {
    let output = Command::new(echotest())
        .args(["chaos", "--list"])
        .output()
        .expect("run echotest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in [
        "ideal",
        "jitter",
        "loss",
        "duplicate",
        "reorder",
        "corrupt",
        "stale",
        "tamper",
    ] {
        assert!(stdout.contains(name), "{stdout}");
    }
}
