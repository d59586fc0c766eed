//! Key files: the one-line text form of PORT and seaside keys, read with clear errors and
//! written with the right permissions. Every binary that takes `--key FILE` shares this code,
//! so one key file works with all of them.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use port_core::{ClientKey, ServerKey, seaside};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// File name of the server's secret key inside a key directory.
pub const SERVER_KEY_FILE: &str = "server.key";
/// File name of the client key inside a key directory.
pub const CLIENT_KEY_FILE: &str = "client.key";

/// Why a key file could not be read or written: one line naming the file and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileError(String);

impl KeyFileError {
    fn new(message: String) -> KeyFileError {
        KeyFileError(message)
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyFileError {}

/// A ChaCha20 generator seeded with 32 bytes of the operating system's entropy.
fn fresh_rng() -> Result<ChaCha20Rng, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| KeyFileError::new(format!("no entropy from the operating system: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// A fresh server key drawn from the operating system's entropy.
pub fn generate() -> Result<ServerKey, KeyFileError> {
    Ok(ServerKey::generate(&mut fresh_rng()?))
}

/// A fresh seaside listener key (upstream's 40-byte form), drawn the same way.
pub fn generate_seaside() -> Result<seaside::ServerKey, KeyFileError> {
    Ok(seaside::ServerKey::generate(&mut fresh_rng()?))
}

/// Reads the one key line of a key file: blank lines and lines starting with `#` are skipped.
fn key_line(path: &Path, what: &str) -> Result<String, KeyFileError> {
    let text = fs::read_to_string(path).map_err(|e| {
        KeyFileError::new(format!("cannot read {what} file {}: {e}", path.display()))
    })?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    match (lines.next(), lines.next()) {
        (Some(line), None) => Ok(line.to_owned()),
        (None, _) => Err(KeyFileError::new(format!(
            "bad {what} file {}: it holds no key",
            path.display()
        ))),
        (Some(_), Some(_)) => Err(KeyFileError::new(format!(
            "bad {what} file {}: expected one key line, found several",
            path.display()
        ))),
    }
}

/// Reads a server key file (a `port1-secret:` line, as a keygen writes it).
pub fn read_server_key(path: &Path) -> Result<ServerKey, KeyFileError> {
    let line = key_line(path, "server key")?;
    ServerKey::from_text(&line)
        .map_err(|e| KeyFileError::new(format!("bad server key file {}: {e}", path.display())))
}

/// Reads a client key file (a `port1-public:` line, as a keygen writes it).
pub fn read_client_key(path: &Path) -> Result<ClientKey, KeyFileError> {
    let line = key_line(path, "client key")?;
    ClientKey::from_text(&line)
        .map_err(|e| KeyFileError::new(format!("bad client key file {}: {e}", path.display())))
}

/// Reads a seaside listener key file (standard base64 of 40 bytes, as upstream's
/// `SEASIDE_PRIVATE_KEY` holds it).
pub fn read_seaside_server_key(path: &Path) -> Result<seaside::ServerKey, KeyFileError> {
    let line = key_line(path, "seaside server key")?;
    seaside::ServerKey::from_text(&line).map_err(|e| {
        KeyFileError::new(format!(
            "bad seaside server key file {}: {e}",
            path.display()
        ))
    })
}

/// Reads a seaside client key file (standard base64 of 40 bytes, as an upstream
/// certificate's `typhoon_public` holds it).
pub fn read_seaside_client_key(path: &Path) -> Result<seaside::ClientKey, KeyFileError> {
    let line = key_line(path, "seaside client key")?;
    seaside::ClientKey::from_text(&line).map_err(|e| {
        KeyFileError::new(format!(
            "bad seaside client key file {}: {e}",
            path.display()
        ))
    })
}

/// Writes [`SERVER_KEY_FILE`] (mode 0600 on Unix) and [`CLIENT_KEY_FILE`] for `server` into
/// `dir`, creating `dir` if needed; existing key files are replaced only with `overwrite`.
/// Returns both paths.
pub fn write_files(
    dir: &Path,
    server: &ServerKey,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), KeyFileError> {
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
) -> Result<(PathBuf, PathBuf), KeyFileError> {
    fs::create_dir_all(dir).map_err(|e| {
        KeyFileError::new(format!("cannot create directory {}: {e}", dir.display()))
    })?;
    let server_path = dir.join(SERVER_KEY_FILE);
    let client_path = dir.join(CLIENT_KEY_FILE);
    if !overwrite {
        for path in [&server_path, &client_path] {
            if path.exists() {
                return Err(KeyFileError::new(format!(
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

fn write_key(path: &Path, line: &str, mode: u32) -> Result<(), KeyFileError> {
    let fail = |e: io::Error| KeyFileError::new(format!("cannot write {}: {e}", path.display()));
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stack-keyfile-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn written_keys_read_back() {
        let dir = temp_dir("round-trip");
        let key = generate().unwrap();
        let (server, client) = write_files(&dir, &key, false).unwrap();
        assert_eq!(read_server_key(&server).unwrap().public(), key.public());
        assert_eq!(read_client_key(&client).unwrap(), key.client_key());
        let again = write_files(&dir, &key, false).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        write_files(&dir, &generate().unwrap(), true).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        fs::write(&path, "# only a comment\n\n").unwrap();
        let e = read_server_key(&path).unwrap_err().to_string();
        assert!(
            e.contains("holds no key") && e.contains("server key file"),
            "{e}"
        );
        fs::write(&path, "a\nb\n").unwrap();
        let e = read_client_key(&path).unwrap_err().to_string();
        assert!(e.contains("found several"), "{e}");
        fs::write(&path, "port1-public:!!!\n").unwrap();
        let e = read_client_key(&path).unwrap_err().to_string();
        assert!(e.starts_with("bad client key file"), "{e}");
        let e = read_server_key(&dir.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read server key file"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
