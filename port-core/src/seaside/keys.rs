//! Seaside key material and its text forms, as upstream deployments hold them.
//!
//! Upstream keys are 40 bytes: an X25519 key (32) followed by an 8-byte obfuscation seed. The
//! listener's private key (`SEASIDE_PRIVATE_KEY`) is `secret ‖ seed`; what clients are given
//! (the certificate field `typhoon_public`) is `public ‖ seed`, the same seed. Both are written
//! as standard base64 (with `=` padding; input without padding is accepted too), so a key
//! from an upstream deployment can be pasted in as it is.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, PAD_INDIFFERENT};
use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes of the obfuscation seed.
pub const SEED_LEN: usize = 8;
/// Bytes of a key: X25519 key (32) and seed (8).
pub const KEY_BYTES: usize = 32 + SEED_LEN;

/// Standard alphabet; padding written, and optional when read (some tools strip it).
const BASE64: GeneralPurpose = GeneralPurpose::new(&STANDARD, PAD_INDIFFERENT);

/// Which seaside key a text was parsed as, to name it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The listener's private key (`SEASIDE_PRIVATE_KEY`): X25519 secret ‖ seed.
    Private,
    /// The key clients are given (certificate field `typhoon_public`): X25519 public ‖ seed.
    Public,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Private => "seaside private key (SEASIDE_PRIVATE_KEY)",
            KeyKind::Public => "seaside public key (certificate field typhoon_public)",
        })
    }
}

/// Why a seaside key text could not be parsed. Messages never echo key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is empty or only whitespace.
    Empty {
        /// The key being parsed.
        kind: KeyKind,
    },
    /// A character outside the standard base64 alphabet (or misplaced `=` padding).
    Alphabet {
        /// The key being parsed.
        kind: KeyKind,
        /// Position of the character in the trimmed text, from 0.
        position: usize,
    },
    /// The text is not well-formed base64 (a bad length, or stray bits in its last character).
    Encoding {
        /// The key being parsed.
        kind: KeyKind,
    },
    /// The text decodes to something other than 40 bytes.
    Length {
        /// The key being parsed.
        kind: KeyKind,
        /// The number of bytes it decodes to.
        found_bytes: usize,
    },
}

impl KeyError {
    fn kind(&self) -> KeyKind {
        match self {
            KeyError::Empty { kind }
            | KeyError::Alphabet { kind, .. }
            | KeyError::Encoding { kind }
            | KeyError::Length { kind, .. } => *kind,
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {}: ", self.kind())?;
        match self {
            KeyError::Empty { .. } => f.write_str("the text is empty")?,
            KeyError::Alphabet { position, .. } => write!(
                f,
                "character {position} is not in the standard base64 alphabet"
            )?,
            KeyError::Encoding { .. } => f.write_str("the text is not well-formed base64")?,
            KeyError::Length { found_bytes, .. } => write!(f, "it decodes to {found_bytes} bytes")?,
        }
        write!(
            f,
            "; expected standard base64 of {KEY_BYTES} bytes (X25519 key, then the {SEED_LEN}-byte seed)"
        )
    }
}

impl std::error::Error for KeyError {}

fn decode(text: &str, kind: KeyKind) -> Result<[u8; KEY_BYTES], KeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty { kind });
    }
    let bytes = BASE64.decode(text).map_err(|e| match e {
        base64::DecodeError::InvalidByte(position, _) => KeyError::Alphabet { kind, position },
        _ => KeyError::Encoding { kind },
    })?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length {
        kind,
        found_bytes: bytes.len(),
    })
}

fn split(bytes: &[u8; KEY_BYTES]) -> ([u8; 32], [u8; SEED_LEN]) {
    let mut key = [0u8; 32];
    let mut seed = [0u8; SEED_LEN];
    key.copy_from_slice(&bytes[..32]);
    seed.copy_from_slice(&bytes[32..]);
    (key, seed)
}

fn join(key: &[u8; 32], seed: &[u8; SEED_LEN]) -> [u8; KEY_BYTES] {
    let mut bytes = [0u8; KEY_BYTES];
    bytes[..32].copy_from_slice(key);
    bytes[32..].copy_from_slice(seed);
    bytes
}

/// A seaside listener's key: X25519 static secret and obfuscation seed.
#[derive(Clone)]
pub struct ServerKey {
    secret: StaticSecret,
    public: [u8; 32],
    seed: [u8; SEED_LEN],
}

impl ServerKey {
    /// A fresh key from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> ServerKey {
        let mut bytes = [0u8; KEY_BYTES];
        rng.fill_bytes(&mut bytes);
        ServerKey::from_bytes(&bytes)
    }

    /// The key from its 40 bytes, `secret ‖ seed`.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> ServerKey {
        let (secret, seed) = split(bytes);
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        ServerKey {
            secret,
            public,
            seed,
        }
    }

    /// The 40 bytes `secret ‖ seed`.
    pub fn to_bytes(&self) -> [u8; KEY_BYTES] {
        join(&self.secret.to_bytes(), &self.seed)
    }

    /// The X25519 static secret.
    pub fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// The X25519 public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The obfuscation seed.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// What clients are given: the public key and the same seed.
    pub fn client_key(&self) -> ClientKey {
        ClientKey {
            public: self.public,
            seed: self.seed,
        }
    }

    /// Standard base64 of the 40 bytes, as `SEASIDE_PRIVATE_KEY` holds it.
    pub fn to_text(&self) -> String {
        BASE64.encode(self.to_bytes())
    }

    /// Parses [`to_text`](Self::to_text)'s form (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<ServerKey, KeyError> {
        decode(text, KeyKind::Private).map(|bytes| ServerKey::from_bytes(&bytes))
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("seaside::ServerKey")
            .field("public", &self.client_key().to_text())
            .finish_non_exhaustive()
    }
}

impl FromStr for ServerKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerKey::from_text(s)
    }
}

/// What a seaside client is given: the listener's X25519 public key and its seed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    public: [u8; 32],
    seed: [u8; SEED_LEN],
}

impl ClientKey {
    /// The key from its 40 bytes, `public ‖ seed`.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> ClientKey {
        let (public, seed) = split(bytes);
        ClientKey { public, seed }
    }

    /// The 40 bytes `public ‖ seed`.
    pub fn to_bytes(&self) -> [u8; KEY_BYTES] {
        join(&self.public, &self.seed)
    }

    /// The listener's X25519 public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The obfuscation seed.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// Standard base64 of the 40 bytes, as upstream certificates carry it.
    pub fn to_text(&self) -> String {
        BASE64.encode(self.to_bytes())
    }

    /// Parses [`to_text`](Self::to_text)'s form (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<ClientKey, KeyError> {
        decode(text, KeyKind::Public).map(|bytes| ClientKey::from_bytes(&bytes))
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seaside::ClientKey({})", self.to_text())
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for ClientKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientKey::from_text(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        let mut bytes = [0u8; KEY_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        ServerKey::from_bytes(&bytes)
    }

    #[test]
    fn text_forms_round_trip_as_standard_base64() {
        let server = key();
        let text = server.to_text();
        assert_eq!(text.len(), 56);
        assert!(text.ends_with('='), "{text}");
        assert_eq!(
            ServerKey::from_text(&text).unwrap().to_bytes(),
            server.to_bytes()
        );
        let client = server.client_key();
        let parsed = ClientKey::from_text(&format!("  {}\n", client.to_text())).unwrap();
        assert_eq!(parsed, client);
        // Without the padding, as some tools write it.
        let bare = client.to_text().trim_end_matches('=').to_owned();
        assert_eq!(ClientKey::from_text(&bare).unwrap(), client);
        assert_eq!(&client.to_bytes()[32..], server.seed());
    }

    #[test]
    fn bad_texts_name_the_key_and_the_expected_form() {
        let e = ClientKey::from_text("   ").unwrap_err();
        assert_eq!(
            e,
            KeyError::Empty {
                kind: KeyKind::Public
            }
        );
        assert!(e.to_string().contains("typhoon_public"), "{e}");
        let mut text = key().to_text();
        text.replace_range(3..4, "_");
        let e = ServerKey::from_text(&text).unwrap_err();
        assert_eq!(
            e,
            KeyError::Alphabet {
                kind: KeyKind::Private,
                position: 3
            }
        );
        let shown = e.to_string();
        assert!(
            shown.contains("SEASIDE_PRIVATE_KEY") && shown.contains("40 bytes"),
            "{shown}"
        );
        let short = BASE64.encode([7u8; 32]);
        let e = ClientKey::from_text(&short).unwrap_err();
        assert_eq!(
            e,
            KeyError::Length {
                kind: KeyKind::Public,
                found_bytes: 32
            }
        );
        assert!(e.to_string().contains("decodes to 32 bytes"), "{e}");
        assert!(matches!(
            ClientKey::from_text("abcde").unwrap_err(),
            KeyError::Encoding { .. }
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let server = key();
        let shown = format!("{server:?}");
        assert!(!shown.contains(&server.to_text()), "{shown}");
    }
}
