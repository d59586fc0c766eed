//! Bad input: one line on stderr naming the problem, a non-zero exit, never a panic.

mod common;

use std::fs;

use common::*;

/// Runs the binary and returns (exit code, stderr), checking stderr is one line.
fn fails(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = command()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let code = out.status.code().expect("exited, not killed");
    assert_ne!(code, 0, "{args:?} succeeded");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr:?}"
    );
    assert!(stderr.starts_with("port-tunnel: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (code, stderr)
}

#[test]
fn help_everywhere() {
    for args in [
        &["--help"][..],
        &["server", "--help"],
        &["client", "--help"],
        &["keygen", "--help"],
    ] {
        let out = command().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: port-tunnel"));
    }
}

#[test]
fn usage_errors_are_one_line() {
    let (code, e) = fails(&[], &[]);
    assert_eq!(code, 2);
    assert!(e.contains("missing command"), "{e}");
    let (code, e) = fails(&["server", "--listen"], &[]);
    assert_eq!(code, 2);
    assert!(e.contains("--listen"), "{e}");
    let (_, e) = fails(&["tunnel"], &[]);
    assert!(e.contains("unrecognized subcommand"), "{e}");
    let (_, e) = fails(&["client", "--token-text", "x"], &[]);
    assert!(e.contains("--token-text"), "{e}");
}

#[test]
fn bad_settings_name_the_field() {
    let dir = temp_dir("cli");
    keygen(&dir);
    let key = dir.join("server.key").display().to_string();
    let ckey = dir.join("client.key").display().to_string();
    let (code, e) = fails(&["server", "--key", &key, "--forward", "127.0.0.1:1"], &[]);
    assert_eq!(code, 1);
    assert!(e.contains("missing --listen"), "{e}");
    let (_, e) = fails(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--forward",
            "nohost",
        ],
        &[],
    );
    assert!(
        e.contains("bad --forward \"nohost\": expected HOST:PORT"),
        "{e}"
    );
    let (_, e) = fails(
        &["server", "--key", &key, "--forward", "127.0.0.1:1"],
        &[("PORT_TUNNEL_LISTEN", "nowhere")],
    );
    assert!(e.contains("bad PORT_TUNNEL_LISTEN \"nowhere\""), "{e}");
    let (_, e) = fails(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--forward",
            "127.0.0.1:1",
        ],
        &[("PORT_TAIL_LENGTH", "lots")],
    );
    assert!(e.contains("PORT_TAIL_LENGTH"), "{e}");
    let (_, e) = fails(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &ckey,
            "--forward",
            "127.0.0.1:1",
        ],
        &[],
    );
    assert!(e.contains("bad server key file"), "{e}");
    let (_, e) = fails(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--forward",
            "127.0.0.1:1",
            "--log-level",
            "loud==",
        ],
        &[],
    );
    assert!(e.contains("bad --log-level"), "{e}");
    let tokens = dir.join("tokens");
    fs::write(&tokens, "a b c\n").unwrap();
    let (_, e) = fails(
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--forward",
            "127.0.0.1:1",
            "--tokens",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("line 1: expected TOKEN [NAME]"), "{e}");
    let (_, e) = fails(
        &[
            "client",
            "--listen",
            "127.0.0.1:0",
            "--server",
            "tls://127.0.0.1:9",
            "--key",
            &ckey,
            "--token",
            "t",
        ],
        &[],
    );
    assert!(e.contains("bad --server"), "{e}");
    let (_, e) = fails(
        &[
            "client",
            "--listen",
            "127.0.0.1:0",
            "--server",
            "port://127.0.0.1:9",
            "--key",
            &ckey,
            "--token",
            "/nonexistent/token",
        ],
        &[],
    );
    assert!(
        e.contains("cannot read token file /nonexistent/token"),
        "{e}"
    );
    let config = dir.join("bad.toml");
    fs::write(&config, "[client]\nsrever = \"x\"\n").unwrap();
    let (_, e) = fails(&["client", "--config", config.to_str().unwrap()], &[]);
    assert!(
        e.contains(
            "line 2, column 1 (client.srever): unknown field `srever`, expected one of `listen`"
        ),
        "{e}"
    );
    let (_, e) = fails(&["keygen", "--out", dir.to_str().unwrap()], &[]);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn bad_stacks_files_are_one_line_naming_the_field_and_the_file() {
    let dir = temp_dir("cli-stacks");
    keygen(&dir);
    let key = dir.join("server.key").display().to_string();
    let broken = dir.join("stacks.toml");
    fs::write(&broken, "[stack.x]\nlayer = [\"port\"]\n").unwrap();
    let broken = broken.display().to_string();
    let server = [
        "server",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &key,
        "--forward",
        "127.0.0.1:1",
    ];
    let (code, e) = fails(&[&server[..], &["--stacks-file", &broken]].concat(), &[]);
    assert_eq!(code, 1);
    assert!(e.contains("bad --stacks-file: "), "{e}");
    assert!(e.contains(&format!("{broken}: line 2")), "{e}");
    assert!(e.contains("(stack.x.layer): unknown field `layer`"), "{e}");
    // The stack crate's search path is read too, and a broken file there is named.
    let (_, e) = fails(&server, &[("PORT_STACKS_FILE", &broken)]);
    assert!(
        e.contains("cannot load the stack files on the search path"),
        "{e}"
    );
    assert!(e.contains(&broken), "{e}");
}

#[test]
fn a_config_file_is_enough() {
    let dir = temp_dir("config");
    keygen(&dir);
    fs::write(dir.join("tokens"), "alpha\n").unwrap();
    let config = dir.join("tunnel.toml");
    fs::write(
        &config,
        format!(
            "log_level = \"info\"\n[server]\nlisten = \"127.0.0.1:0\"\nkey_file = \"server.key\"\n\
             forward = \"{}\"\ntokens_file = \"tokens\"\n[port]\ntail_length = 0\n",
            echo_target()
        ),
    )
    .unwrap();
    let mut cmd = command();
    cmd.arg("server").arg("--config").arg(&config);
    let server = Daemon::start(cmd, dir.join("server.log"));
    let (status, lines) = server.stop();
    assert!(status.success());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("summary: 0 connections carried")),
        "{lines:?}"
    );
}
