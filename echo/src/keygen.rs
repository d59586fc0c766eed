//! `echotest keygen`: a fresh server key from the operating system's entropy, and its client
//! key.

use std::path::{Path, PathBuf};

use port_core::{ClientKey, ServerKey};

use crate::error::Error;

pub use port_stack::keyfile::{CLIENT_KEY_FILE, SERVER_KEY_FILE};

/// A fresh server key from the operating system's entropy.
pub fn generate() -> Result<ServerKey, Error> {
    port_stack::keyfile::generate().map_err(Error::msg)
}

/// A fresh seaside listener key (upstream's 40-byte form), drawn the same way.
pub fn generate_seaside() -> Result<port_core::seaside::ServerKey, Error> {
    port_stack::keyfile::generate_seaside().map_err(Error::msg)
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
    port_stack::keyfile::write_files(dir, server, overwrite).map_err(Error::msg)
}

/// [`write_files`] for keys already in text form (either profile).
pub fn write_texts(
    dir: &Path,
    server_text: &str,
    client_text: &str,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), Error> {
    port_stack::keyfile::write_texts(dir, server_text, client_text, overwrite).map_err(Error::msg)
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
