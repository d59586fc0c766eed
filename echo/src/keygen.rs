//! `echotest keygen`: a fresh server key from the operating system's entropy, and its client
//! key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use port_core::{ClientKey, ServerKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::error::Error;

/// File name of the server's secret key inside the output directory.
pub const SERVER_KEY_FILE: &str = "server.key";
/// File name of the client key inside the output directory.
pub const CLIENT_KEY_FILE: &str = "client.key";

/// A fresh server key: 32 bytes from `getrandom` seed a ChaCha20 generator that draws it.
pub fn generate() -> Result<ServerKey, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| Error::msg(format!("no entropy from the operating system: {e}")))?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    Ok(ServerKey::generate(&mut rng))
}

/// A fresh seaside listener key (upstream's 40-byte form), drawn the same way.
pub fn generate_seaside() -> Result<port_core::seaside::ServerKey, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| Error::msg(format!("no entropy from the operating system: {e}")))?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    Ok(port_core::seaside::ServerKey::generate(&mut rng))
}

/// The keygen output for stdout: the client key first, then the secret, each labelled.
pub fn render(server: &ServerKey, client: &ClientKey) -> String {
    render_texts(&server.to_text(), &client.to_text())
}

/// [`render`] for keys already in text form (either profile).
pub fn render_texts(server: &str, client: &str) -> String {
    format!(
        "# client key (public: give it to clients, `echotest client --key FILE`)\n{client}\n\
         # server key (SECRET: keep it on the server only, `echotest server --key FILE`)\n{server}\n"
    )
}

/// Writes `server.key` (mode 0600 on Unix) and `client.key` into `dir`, creating `dir` if
/// needed; existing key files are replaced only with `overwrite`. Returns both paths.
pub fn write_files(
    dir: &Path,
    server: &ServerKey,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), Error> {
    write_texts(
        dir,
        &server.to_text(),
        &server.client_key().to_text(),
        overwrite,
    )
}

/// [`write_files`] for keys already in text form (either profile).
pub fn write_texts(
    dir: &Path,
    server_text: &str,
    client_text: &str,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), Error> {
    fs::create_dir_all(dir)
        .map_err(|e| Error::msg(format!("cannot create directory {}: {e}", dir.display())))?;
    let server_path = dir.join(SERVER_KEY_FILE);
    let client_path = dir.join(CLIENT_KEY_FILE);
    if !overwrite {
        for path in [&server_path, &client_path] {
            if path.exists() {
                return Err(Error::msg(format!(
                    "{} already exists (pass --force to replace it)",
                    path.display()
                )));
            }
        }
    }
    write_key(&server_path, server_text, 0o600)?;
    write_key(&client_path, client_text, 0o644)?;
    Ok((server_path, client_path))
}

fn write_key(path: &Path, line: &str, mode: u32) -> Result<(), Error> {
    let fail = |e: io::Error| Error::msg(format!("cannot write {}: {e}", path.display()));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let mut file = options.open(path).map_err(fail)?;
        // `mode` only applies to a file this call created; tighten a replaced one too.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(fail)?;
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(fail)?;
        file.sync_all().map_err(fail)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(fail)?;
        file.sync_all().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.public(), b.public());
        let text = render(&a, &a.client_key());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with('#') && lines[2].contains("SECRET"));
        assert_eq!(ClientKey::from_text(lines[1]).unwrap(), a.client_key());
        assert_eq!(ServerKey::from_text(lines[3]).unwrap().public(), a.public());
    }
}
