//! Long-term key material for PORT and its one-line text forms.
//!
//! A server owns a [`ServerKey`]: an X25519 static secret and a 32-byte
//! obfuscation seed. A client is given the matching [`ClientKey`]: the X25519
//! public key and the same seed.
//!
//! Both keys have a single-line text form: a prefix naming the kind of key,
//! followed by the URL-safe base64 encoding, without padding, of the 64 bytes
//! `key ‖ seed`:
//!
//! - server: `port1-secret:` + base64url(secret ‖ seed)
//! - client: `port1-public:` + base64url(public ‖ seed)
//!
//! A server whose connections are shaped (see [`Shape`]) carries its shape in
//! both lines, after a `?`: `port1-public:<86 characters>?prefix=R0VUIC8g&popcount=low`.
//! The client learns the shape from the line it is given, never from the wire. A server whose
//! connections use AES-256-GCM instead of ChaCha20-Poly1305 (see [`Cipher`]) says so the same
//! way, last: `?cipher=aes-256-gcm`.
//!
//! Parsing ignores surrounding whitespace and reports a distinct [`KeyError`]
//! for each kind of mistake. Error messages never echo text that could be
//! secret key material.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::cipher::{Cipher, UnknownCipher};
use crate::shape::{Shape, ShapeError};

/// Length in bytes of the obfuscation seed shared by server and client.
pub const SEED_LEN: usize = 32;

/// Length in bytes of an X25519 key (secret or public).
const KEY_LEN: usize = 32;

/// Length in bytes of the encoded payload: key followed by seed.
const PAYLOAD_BYTES: usize = KEY_LEN + SEED_LEN;

/// Number of base64url characters (no padding) encoding [`PAYLOAD_BYTES`].
const PAYLOAD_CHARS: usize = 86;

/// Text prefix of a server secret key.
const SERVER_PREFIX: &str = "port1-secret:";

/// Text prefix of a client public key.
const CLIENT_PREFIX: &str = "port1-public:";

/// Maximum number of characters of unrecognised input echoed in an error.
const MAX_ECHO_CHARS: usize = 16;

/// The two kinds of key text, used to say what was expected or found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A server secret key, text prefix `port1-secret:`.
    Server,
    /// A client public key, text prefix `port1-public:`.
    Client,
}

impl KeyKind {
    /// The text prefix that starts a key of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Server => SERVER_PREFIX,
            KeyKind::Client => CLIENT_PREFIX,
        }
    }

    /// The other kind of key.
    fn other(self) -> KeyKind {
        match self {
            KeyKind::Server => KeyKind::Client,
            KeyKind::Client => KeyKind::Server,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Server => "server secret key",
            KeyKind::Client => "client public key",
        })
    }
}

/// Writes the expected text form of a key of `kind`, e.g.
/// `` `port1-public:<86 base64url characters>` ``.
fn write_expected_form(f: &mut fmt::Formatter<'_>, kind: KeyKind) -> fmt::Result {
    write!(
        f,
        "expected a {kind} `{}<{PAYLOAD_CHARS} base64url characters>`",
        kind.prefix()
    )
}

/// Why a key text could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is empty or contains only whitespace.
    Empty {
        /// The kind of key that was being parsed.
        expected: KeyKind,
    },
    /// The text is a key of the other kind: a server secret key where a client
    /// public key is expected, or the reverse.
    WrongKind {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// The kind of key the text actually is.
        found: KeyKind,
    },
    /// The text does not start with a known key prefix.
    MissingPrefix {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// At most the first 16 characters of the text, followed by `…` when
        /// cut. Always empty when a server secret key was expected, and empty
        /// when the text looks like bare key material, so that secrets are
        /// never echoed.
        found: String,
    },
    /// A character outside the base64url alphabet follows the prefix.
    Alphabet {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// Position of the character, counted in characters after the prefix,
        /// starting at 0.
        position: usize,
        /// The offending character.
        character: char,
    },
    /// The text after the prefix does not decode to exactly 64 bytes.
    Length {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// The number of whole bytes the text after the prefix decodes (or
        /// would decode) to.
        found_bytes: usize,
    },
    /// The last base64url character has unused low bits set, so the text is
    /// not the canonical encoding of any key (often a sign of corruption).
    NonCanonical {
        /// The kind of key that was being parsed.
        expected: KeyKind,
    },
    /// The shape after the `?` cannot be read.
    Shape {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// What is wrong with it.
        error: ShapeError,
    },
    /// The `cipher=` parameter after the `?` names no cipher, or is given twice.
    Cipher {
        /// The kind of key that was being parsed.
        expected: KeyKind,
        /// What is wrong with it.
        error: UnknownCipher,
    },
}

impl KeyError {
    /// The kind of key that was being parsed when the error occurred.
    pub fn expected(&self) -> KeyKind {
        match self {
            KeyError::Empty { expected }
            | KeyError::WrongKind { expected, .. }
            | KeyError::MissingPrefix { expected, .. }
            | KeyError::Alphabet { expected, .. }
            | KeyError::Length { expected, .. }
            | KeyError::NonCanonical { expected }
            | KeyError::Shape { expected, .. }
            | KeyError::Cipher { expected, .. } => *expected,
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty { expected } => {
                f.write_str("key text is empty: ")?;
                write_expected_form(f, *expected)
            }
            KeyError::WrongKind { expected, found } => write!(
                f,
                "this is a {found} (prefix `{}`), but a {expected} (prefix `{}`) is expected",
                found.prefix(),
                expected.prefix()
            ),
            KeyError::MissingPrefix { expected, found } => {
                write!(f, "key text does not start with `{}`", expected.prefix())?;
                if found.is_empty() {
                    f.write_str(" (prefix missing or misspelled)")?;
                } else {
                    write!(f, " (found `{}`)", found.escape_debug())?;
                }
                f.write_str(": ")?;
                write_expected_form(f, *expected)
            }
            KeyError::Alphabet {
                expected,
                position,
                character,
            } => {
                write!(
                    f,
                    "invalid character `{}` at position {position} after `{}` in the {expected}",
                    character.escape_debug(),
                    expected.prefix()
                )?;
                match character {
                    '+' | '/' => f.write_str(
                        " (this looks like standard base64: use `-` instead of `+` and `_` instead of `/`)",
                    )?,
                    '=' => f.write_str(" (base64 padding `=` is not used: remove it)")?,
                    _ => {}
                }
                f.write_str(": ")?;
                write_expected_form(f, *expected)
            }
            KeyError::Length {
                expected,
                found_bytes,
            } => {
                write!(
                    f,
                    "wrong length for a {expected}: the text after `{}` decodes to {found_bytes} bytes instead of {PAYLOAD_BYTES}: ",
                    expected.prefix()
                )?;
                write_expected_form(f, *expected)
            }
            KeyError::NonCanonical { expected } => {
                write!(
                    f,
                    "{expected} text is not canonical: the last character after `{}` has unused bits set (corrupted or truncated?): ",
                    expected.prefix()
                )?;
                write_expected_form(f, *expected)
            }
            KeyError::Shape { expected, error } => {
                write!(
                    f,
                    "the shape after `?` in the {expected} cannot be read: {error}"
                )
            }
            KeyError::Cipher { expected, error } => {
                write!(f, "the `cipher=` after `?` in the {expected}: {error}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// What follows a key's payload after `?`: the shape's parameters and `cipher=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Params {
    shape: Shape,
    cipher: Cipher,
}

/// Splits a trimmed key line into its key text and its parameters (after `?`, if any).
fn split_params(text: &str, expected: KeyKind) -> Result<(&str, Params), KeyError> {
    let text = text.trim();
    let Some((key, params)) = text.split_once('?') else {
        return Ok((text, Params::default()));
    };
    let shape_error = |error| KeyError::Shape { expected, error };
    let mut cipher = None;
    let mut shape = Vec::new();
    for param in params.split('&') {
        match param.strip_prefix("cipher=") {
            Some(_) if cipher.is_some() => {
                return Err(shape_error(ShapeError::Repeated("cipher".to_owned())));
            }
            Some(name) => {
                let parsed = name
                    .parse()
                    .map_err(|error| KeyError::Cipher { expected, error })?;
                cipher = Some(parsed);
            }
            None => shape.push(param),
        }
    }
    let shape = match (shape.is_empty(), cipher) {
        // `?cipher=…` alone: no shape. A bare `?` is still an error of the shape's.
        (true, Some(_)) => Shape::none(),
        _ => Shape::from_params(&shape.join("&")).map_err(shape_error)?,
    };
    let cipher = cipher.unwrap_or_default();
    Ok((key, Params { shape, cipher }))
}

/// Appends `?params` to a key's text when its shape is not PORT/1 unchanged or its cipher is not
/// the default: the shape's parameters first, then `cipher=`.
fn with_params(mut text: String, params: &Params) -> String {
    let mut parts = Vec::new();
    if !params.shape.is_none() {
        parts.push(params.shape.to_params());
    }
    if !params.cipher.is_default() {
        parts.push(format!("cipher={}", params.cipher));
    }
    if !parts.is_empty() {
        text.push('?');
        text.push_str(&parts.join("&"));
    }
    text
}

/// Whether `c` belongs to the URL-safe base64 alphabet.
fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Number of whole bytes that `chars` base64 characters encode.
fn decoded_len(chars: usize) -> usize {
    chars / 4 * 3 + (chars % 4) * 3 / 4
}

/// A short excerpt of unrecognised input that is safe to show in an error.
fn echo_excerpt(text: &str, expected: KeyKind) -> String {
    if expected == KeyKind::Server {
        return String::new();
    }
    // Cut right after the first ':' so that a misspelled prefix is shown
    // without any of the key material that follows it.
    let head: String = match text.find(':') {
        Some(colon) => text.get(..=colon).unwrap_or(text),
        None => {
            // Bare base64 could be anything, including a secret key.
            if text.chars().all(is_base64url) {
                return String::new();
            }
            text
        }
    }
    .chars()
    .take(MAX_ECHO_CHARS)
    .collect();
    if head.len() < text.len() {
        head + "…"
    } else {
        head
    }
}

/// Maps a base64 decoding error of `payload` onto a [`KeyError`].
fn map_decode_error(expected: KeyKind, payload: &str, err: base64::DecodeSliceError) -> KeyError {
    use base64::{DecodeError, DecodeSliceError};
    match err {
        DecodeSliceError::DecodeError(DecodeError::InvalidByte(offset, byte)) => {
            let (position, character) = match payload.get(offset..) {
                Some(rest) => (
                    payload.get(..offset).map_or(offset, |s| s.chars().count()),
                    rest.chars().next().unwrap_or(char::from(byte)),
                ),
                None => (offset, char::from(byte)),
            };
            KeyError::Alphabet {
                expected,
                position,
                character,
            }
        }
        DecodeSliceError::DecodeError(DecodeError::InvalidLength(len)) => KeyError::Length {
            expected,
            found_bytes: decoded_len(len),
        },
        DecodeSliceError::DecodeError(DecodeError::InvalidLastSymbol { .. }) => {
            KeyError::NonCanonical { expected }
        }
        DecodeSliceError::DecodeError(DecodeError::InvalidPadding) => KeyError::Alphabet {
            expected,
            position: payload
                .chars()
                .position(|c| c == '=')
                .unwrap_or_else(|| payload.chars().count()),
            character: '=',
        },
        DecodeSliceError::OutputSliceTooSmall => KeyError::Length {
            expected,
            found_bytes: decoded_len(payload.chars().count()),
        },
    }
}

/// Parses the text form of a key of kind `expected` into its 64-byte payload.
fn decode_text(text: &str, expected: KeyKind) -> Result<[u8; PAYLOAD_BYTES], KeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty { expected });
    }
    let Some(payload) = text.strip_prefix(expected.prefix()) else {
        let other = expected.other();
        if text.starts_with(other.prefix()) {
            return Err(KeyError::WrongKind {
                expected,
                found: other,
            });
        }
        return Err(KeyError::MissingPrefix {
            expected,
            found: echo_excerpt(text, expected),
        });
    };
    if let Some((position, character)) =
        payload.chars().enumerate().find(|&(_, c)| !is_base64url(c))
    {
        return Err(KeyError::Alphabet {
            expected,
            position,
            character,
        });
    }
    // Only ASCII is left, so bytes and characters coincide.
    if payload.len() != PAYLOAD_CHARS {
        return Err(KeyError::Length {
            expected,
            found_bytes: decoded_len(payload.len()),
        });
    }
    let mut out = [0u8; PAYLOAD_BYTES];
    match URL_SAFE_NO_PAD.decode_slice(payload, &mut out) {
        Ok(PAYLOAD_BYTES) => Ok(out),
        Ok(n) => Err(KeyError::Length {
            expected,
            found_bytes: n,
        }),
        Err(err) => Err(map_decode_error(expected, payload, err)),
    }
}

/// Builds the text form `prefix ‖ base64url(key ‖ seed)`.
fn encode_text(kind: KeyKind, key: &[u8; KEY_LEN], seed: &[u8; SEED_LEN]) -> String {
    let mut payload = [0u8; PAYLOAD_BYTES];
    payload[..KEY_LEN].copy_from_slice(key);
    payload[KEY_LEN..].copy_from_slice(seed);
    let mut text = String::with_capacity(kind.prefix().len() + PAYLOAD_CHARS);
    text.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string(payload, &mut text);
    payload.fill(0);
    text
}

/// Splits a 64-byte payload into key and seed.
fn split_payload(payload: &[u8; PAYLOAD_BYTES]) -> ([u8; KEY_LEN], [u8; SEED_LEN]) {
    let mut key = [0u8; KEY_LEN];
    let mut seed = [0u8; SEED_LEN];
    key.copy_from_slice(&payload[..KEY_LEN]);
    seed.copy_from_slice(&payload[KEY_LEN..]);
    (key, seed)
}

/// The long-term secret of a PORT server: an X25519 static secret and the
/// 32-byte obfuscation seed.
///
/// `Debug` shows only a short prefix of the public key, and `Display` is
/// deliberately not implemented so that the secret is not printed by
/// accident; use [`ServerKey::to_text`] to export it on purpose.
#[derive(Clone)]
pub struct ServerKey {
    secret: StaticSecret,
    seed: [u8; SEED_LEN],
    // Cached: deriving it is a scalar multiplication, and servers need it on every INIT.
    public: [u8; 32],
    params: Params,
}

impl ServerKey {
    /// Generates a fresh server key from `rng`.
    ///
    /// Draw order, which fixed test vectors rely on: first 32 bytes for the
    /// X25519 secret (one `fill_bytes` call via
    /// [`StaticSecret::random_from_rng`]), then 32 bytes for the seed (one
    /// `fill_bytes` call).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> ServerKey {
        let secret = StaticSecret::random_from_rng(rng);
        let mut seed = [0u8; SEED_LEN];
        rng.fill_bytes(&mut seed);
        Self::with_secret(secret, seed)
    }

    fn with_secret(secret: StaticSecret, seed: [u8; SEED_LEN]) -> ServerKey {
        let public = PublicKey::from(&secret).to_bytes();
        ServerKey {
            secret,
            seed,
            public,
            params: Params::default(),
        }
    }

    /// Builds a server key from raw X25519 secret bytes and a seed.
    pub fn from_parts(secret: [u8; 32], seed: [u8; SEED_LEN]) -> ServerKey {
        Self::with_secret(StaticSecret::from(secret), seed)
    }

    /// The same key with `shape` for its connections (carried by its text form and by
    /// [`client_key`](Self::client_key)).
    pub fn with_shape(mut self, shape: Shape) -> ServerKey {
        self.params.shape = shape;
        self
    }

    /// The shape of this server's connections.
    pub fn shape(&self) -> &Shape {
        &self.params.shape
    }

    /// The same key with `cipher` for its connections (carried by its text form and by
    /// [`client_key`](Self::client_key)).
    pub fn with_cipher(mut self, cipher: Cipher) -> ServerKey {
        self.params.cipher = cipher;
        self
    }

    /// The AEAD of this server's connections.
    pub fn cipher(&self) -> Cipher {
        self.params.cipher
    }

    /// The client key to hand out for this server: its public key, the
    /// same seed, the same shape and the same cipher.
    pub fn client_key(&self) -> ClientKey {
        ClientKey {
            public: self.public(),
            seed: self.seed,
            params: self.params.clone(),
        }
    }

    /// The X25519 static secret.
    pub fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// The obfuscation seed.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The X25519 public key matching the secret, as bytes.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The text form `port1-secret:<base64url(secret ‖ seed)>`, followed by `?`, the shape
    /// and the cipher when either is not the default.
    ///
    /// The result contains the secret: store it as carefully as the key.
    pub fn to_text(&self) -> String {
        let text = encode_text(KeyKind::Server, self.secret.as_bytes(), &self.seed);
        with_params(text, &self.params)
    }

    /// Parses the text form produced by [`ServerKey::to_text`]; surrounding
    /// whitespace is ignored.
    ///
    /// # Errors
    ///
    /// Returns a [`KeyError`] describing the first problem found in the text.
    pub fn from_text(s: &str) -> Result<ServerKey, KeyError> {
        let (s, params) = split_params(s, KeyKind::Server)?;
        let mut payload = decode_text(s, KeyKind::Server)?;
        let (mut secret, seed) = split_payload(&payload);
        // Best-effort wiping of temporary copies; the `StaticSecret` itself
        // is wiped on drop.
        payload.fill(0);
        let mut key = ServerKey::from_parts(secret, seed);
        key.params = params;
        secret.fill(0);
        Ok(key)
    }
}

impl FromStr for ServerKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerKey::from_text(s)
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = self.public();
        f.write_str("ServerKey { public: ")?;
        for byte in &public[..4] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…, .. }")
    }
}

/// What a PORT client is given to reach a server: the server's X25519 public
/// key and the 32-byte obfuscation seed.
///
/// Neither part is secret from the server's point of view, so `Debug` and
/// `Display` both show the full text form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    public: [u8; 32],
    seed: [u8; SEED_LEN],
    params: Params,
}

impl ClientKey {
    /// Builds a client key from raw X25519 public key bytes and a seed (no shape, the default
    /// cipher).
    pub fn from_parts(public: [u8; 32], seed: [u8; SEED_LEN]) -> ClientKey {
        ClientKey {
            public,
            seed,
            params: Params::default(),
        }
    }

    /// The same key with `shape`, which must be the server's.
    pub fn with_shape(mut self, shape: Shape) -> ClientKey {
        self.params.shape = shape;
        self
    }

    /// The shape of the server's connections.
    pub fn shape(&self) -> &Shape {
        &self.params.shape
    }

    /// The same key with `cipher`, which must be the server's.
    pub fn with_cipher(mut self, cipher: Cipher) -> ClientKey {
        self.params.cipher = cipher;
        self
    }

    /// The AEAD of the server's connections.
    pub fn cipher(&self) -> Cipher {
        self.params.cipher
    }

    /// The server's X25519 public key, as bytes.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The obfuscation seed.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The server's X25519 public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.public)
    }

    /// The text form `port1-public:<base64url(public ‖ seed)>`, followed by `?`, the shape
    /// and the cipher when either is not the default.
    pub fn to_text(&self) -> String {
        let text = encode_text(KeyKind::Client, &self.public, &self.seed);
        with_params(text, &self.params)
    }

    /// Parses the text form produced by [`ClientKey::to_text`]; surrounding
    /// whitespace is ignored.
    ///
    /// # Errors
    ///
    /// Returns a [`KeyError`] describing the first problem found in the text.
    pub fn from_text(s: &str) -> Result<ClientKey, KeyError> {
        let (s, params) = split_params(s, KeyKind::Client)?;
        let payload = decode_text(s, KeyKind::Client)?;
        let (public, seed) = split_payload(&payload);
        Ok(ClientKey {
            public,
            seed,
            params,
        })
    }
}

impl FromStr for ClientKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientKey::from_text(s)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({})", self.to_text())
    }
}

/// Generates a server key from `rng` (see [`ServerKey::generate`] for the draw
/// order) and returns it together with its client key.
pub fn generate_pair<R: CryptoRng + ?Sized>(rng: &mut R) -> (ServerKey, ClientKey) {
    let server = ServerKey::generate(rng);
    let client = server.client_key();
    (server, client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    fn sample() -> (ServerKey, ClientKey) {
        generate_pair(&mut rng(7))
    }

    /// Client text whose payload is `bytes` (any length).
    fn client_text_of(bytes: &[u8]) -> String {
        format!("{CLIENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn text_forms_round_trip() {
        let (server, client) = sample();
        let s_text = server.to_text();
        let c_text = client.to_text();
        assert!(s_text.starts_with("port1-secret:"));
        assert!(c_text.starts_with("port1-public:"));
        assert_eq!(s_text.len(), SERVER_PREFIX.len() + PAYLOAD_CHARS);
        assert_eq!(c_text.len(), CLIENT_PREFIX.len() + PAYLOAD_CHARS);

        let server2 = ServerKey::from_text(&s_text).unwrap();
        assert_eq!(server2.secret().to_bytes(), server.secret().to_bytes());
        assert_eq!(server2.seed(), server.seed());
        assert_eq!(server2.to_text(), s_text);
        let server3: ServerKey = s_text.parse().unwrap();
        assert_eq!(server3.to_text(), s_text);

        let client2 = ClientKey::from_text(&c_text).unwrap();
        assert_eq!(client2, client);
        let client3: ClientKey = c_text.parse().unwrap();
        assert_eq!(client3, client);
        assert_eq!(client.to_string(), c_text);
    }

    #[test]
    fn the_key_lines_carry_the_cipher_after_the_shape() {
        let (server, client) = sample();
        assert_eq!(client.cipher(), Cipher::ChaCha20Poly1305);
        assert!(
            !client.to_text().contains('?'),
            "the default is not spelled"
        );
        let aes = server.clone().with_cipher(Cipher::Aes256Gcm);
        let line = aes.client_key().to_text();
        assert_eq!(line, format!("{}?cipher=aes-256-gcm", client.to_text()));
        let back = ClientKey::from_text(&line).unwrap();
        assert_eq!(back.cipher(), Cipher::Aes256Gcm);
        assert_eq!(back, aes.client_key());
        let secret = ServerKey::from_text(&aes.to_text()).unwrap();
        assert_eq!(secret.cipher(), Cipher::Aes256Gcm);
        assert!(secret.shape().is_none());

        // With a shape, the cipher comes last, and any order reads back.
        let shaped = aes.with_shape(Shape::from_params("popcount=low").unwrap());
        let line = shaped.client_key().to_text();
        assert!(line.ends_with("?popcount=low&cipher=aes-256-gcm"), "{line}");
        let reordered = line.replace(
            "?popcount=low&cipher=aes-256-gcm",
            "?cipher=aes-256-gcm&popcount=low",
        );
        assert_eq!(
            ClientKey::from_text(&reordered).unwrap(),
            shaped.client_key()
        );
        let spelled = format!("{}?cipher=chacha20-poly1305", client.to_text());
        assert_eq!(ClientKey::from_text(&spelled).unwrap(), client);
    }

    #[test]
    fn a_bad_cipher_parameter_is_named() {
        let (_, client) = sample();
        let err = ClientKey::from_text(&format!("{client}?cipher=aes-128-gcm")).unwrap_err();
        assert!(matches!(err, KeyError::Cipher { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("\"aes-128-gcm\"") && text.contains("aes-256-gcm"),
            "{text}"
        );
        let twice = format!("{client}?cipher=aes-256-gcm&cipher=aes-256-gcm");
        assert_eq!(
            ClientKey::from_text(&twice).unwrap_err(),
            KeyError::Shape {
                expected: KeyKind::Client,
                error: ShapeError::Repeated("cipher".into())
            }
        );
        assert!(matches!(
            ClientKey::from_text(&format!("{client}?")),
            Err(KeyError::Shape { .. })
        ));
    }

    #[test]
    fn from_parts_and_getters() {
        let server = ServerKey::from_parts([1; 32], [2; 32]);
        assert_eq!(server.secret().to_bytes(), [1; 32]);
        assert_eq!(server.seed(), &[2; 32]);
        let client = ClientKey::from_parts([3; 32], [4; 32]);
        assert_eq!(client.public(), &[3; 32]);
        assert_eq!(client.seed(), &[4; 32]);
        assert_eq!(client.public_key().to_bytes(), [3; 32]);
        let parsed = ClientKey::from_text(&client.to_text()).unwrap();
        assert_eq!(parsed, client);
    }

    #[test]
    fn generate_is_deterministic_and_draws_secret_then_seed() {
        let (a, _) = generate_pair(&mut rng(1));
        let b = ServerKey::generate(&mut rng(1));
        assert_eq!(a.to_text(), b.to_text());

        let c = ServerKey::generate(&mut rng(2));
        assert_ne!(a.secret().to_bytes(), c.secret().to_bytes());
        assert_ne!(a.seed(), c.seed());

        let mut r = rng(1);
        let mut first = [0u8; 32];
        let mut second = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut r, &mut first);
        rand_core::Rng::fill_bytes(&mut r, &mut second);
        assert_eq!(a.secret().to_bytes(), first);
        assert_eq!(a.seed(), &second);
    }

    #[test]
    fn generate_accepts_unsized_rng() {
        let mut r = rng(3);
        let dyn_rng: &mut dyn CryptoRng = &mut r;
        let (server, client) = generate_pair(dyn_rng);
        assert_eq!(&server.public(), client.public());
    }

    #[test]
    fn client_key_matches_x25519_public() {
        let (server, client) = sample();
        let expected = PublicKey::from(server.secret()).to_bytes();
        assert_eq!(client.public(), &expected);
        assert_eq!(server.public(), expected);
        assert_eq!(client.public_key().as_bytes(), &expected);
        assert_eq!(client.seed(), server.seed());
        assert_eq!(server.client_key(), client);
    }

    #[test]
    fn server_debug_hides_secret() {
        let (server, client) = sample();
        let debug = format!("{server:?}");
        let text = server.to_text();
        let secret_b64 = URL_SAFE_NO_PAD.encode(server.secret().as_bytes());
        let secret_b64_prefix = &secret_b64[..16];
        let seed_b64 = URL_SAFE_NO_PAD.encode(server.seed());
        assert!(!debug.contains(&text));
        assert!(!debug.contains(&text[SERVER_PREFIX.len()..]));
        assert!(!debug.contains(&secret_b64));
        assert!(!debug.contains(secret_b64_prefix));
        assert!(!debug.contains(&seed_b64[..16]));
        let hex: String = client.public()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(debug, format!("ServerKey {{ public: {hex}…, .. }}"));
    }

    #[test]
    fn client_debug_and_display_show_text() {
        let (_, client) = sample();
        assert!(format!("{client:?}").contains(&client.to_text()));
        assert_eq!(format!("{client}"), client.to_text());
    }

    #[test]
    fn surrounding_whitespace_accepted() {
        let (server, client) = sample();
        let s = format!("{}\n", server.to_text());
        assert_eq!(
            ServerKey::from_text(&s).unwrap().to_text(),
            server.to_text()
        );
        let c = format!("  \t{}\r\n", client.to_text());
        assert_eq!(ClientKey::from_text(&c).unwrap(), client);
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert_eq!(
            ClientKey::from_text(""),
            Err(KeyError::Empty {
                expected: KeyKind::Client
            })
        );
        assert_eq!(
            ServerKey::from_text(" \n\t ").unwrap_err(),
            KeyError::Empty {
                expected: KeyKind::Server
            }
        );
    }

    #[test]
    fn wrong_kind_both_ways() {
        let (server, client) = sample();
        let err = ClientKey::from_text(&server.to_text()).unwrap_err();
        assert_eq!(
            err,
            KeyError::WrongKind {
                expected: KeyKind::Client,
                found: KeyKind::Server
            }
        );
        let msg = err.to_string();
        assert_eq!(
            msg,
            "this is a server secret key (prefix `port1-secret:`), \
             but a client public key (prefix `port1-public:`) is expected"
        );
        assert!(!msg.contains(&server.to_text()[SERVER_PREFIX.len()..]));

        let err = ServerKey::from_text(&client.to_text()).unwrap_err();
        assert_eq!(
            err,
            KeyError::WrongKind {
                expected: KeyKind::Server,
                found: KeyKind::Client
            }
        );
    }

    #[test]
    fn missing_prefix() {
        let (server, client) = sample();
        let c_text = client.to_text();
        let bare = &c_text[CLIENT_PREFIX.len()..];

        // Bare base64 is not echoed: it might be a secret.
        let err = ClientKey::from_text(bare).unwrap_err();
        assert_eq!(
            err,
            KeyError::MissingPrefix {
                expected: KeyKind::Client,
                found: String::new()
            }
        );

        // A misspelled prefix is echoed up to its colon only.
        let typo = format!("port1-secrte:{}", &server.to_text()[SERVER_PREFIX.len()..]);
        let err = ClientKey::from_text(&typo).unwrap_err();
        assert_eq!(
            err,
            KeyError::MissingPrefix {
                expected: KeyKind::Client,
                found: "port1-secrte:…".to_string()
            }
        );

        // Other junk is echoed, at most 16 characters.
        let err = ClientKey::from_text("hello world, this is not a key").unwrap_err();
        assert_eq!(
            err,
            KeyError::MissingPrefix {
                expected: KeyKind::Client,
                found: "hello world, thi…".to_string()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("`port1-public:`"));
        assert!(msg.contains("hello world, thi"));
        assert!(!msg.contains("this is not"));

        // Nothing is echoed when a server secret key was expected.
        let err = ServerKey::from_text(&typo).unwrap_err();
        assert_eq!(
            err,
            KeyError::MissingPrefix {
                expected: KeyKind::Server,
                found: String::new()
            }
        );
        let err = ServerKey::from_text("hello world").unwrap_err();
        assert!(!err.to_string().contains("hello"));
    }

    #[test]
    fn alphabet_errors() {
        let (_, client) = sample();
        let text = client.to_text();
        let at = CLIENT_PREFIX.len() + 10;

        let mut plus = text.clone();
        plus.replace_range(at..=at, "+");
        let err = ClientKey::from_text(&plus).unwrap_err();
        assert_eq!(
            err,
            KeyError::Alphabet {
                expected: KeyKind::Client,
                position: 10,
                character: '+'
            }
        );
        assert!(err.to_string().contains("standard base64"));

        let mut slash = text.clone();
        slash.replace_range(at..=at, "/");
        assert!(matches!(
            ClientKey::from_text(&slash),
            Err(KeyError::Alphabet { character: '/', .. })
        ));

        let padded = format!("{text}==");
        let err = ClientKey::from_text(&padded).unwrap_err();
        assert_eq!(
            err,
            KeyError::Alphabet {
                expected: KeyKind::Client,
                position: PAYLOAD_CHARS,
                character: '='
            }
        );
        assert!(err.to_string().contains("padding"));

        // Positions count characters, not bytes.
        let mut wide = text.clone();
        wide.replace_range(at..=at, "é");
        let mut wide2 = wide.clone();
        wide2.replace_range(at + 4..=at + 4, "!");
        assert_eq!(
            ClientKey::from_text(&wide2).unwrap_err(),
            KeyError::Alphabet {
                expected: KeyKind::Client,
                position: 10,
                character: 'é'
            }
        );
        let mut mid = text.clone();
        mid.insert(at, '\n');
        let err = ClientKey::from_text(&mid).unwrap_err();
        assert!(matches!(
            err,
            KeyError::Alphabet {
                character: '\n',
                ..
            }
        ));
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn length_errors() {
        let err = ClientKey::from_text(&client_text_of(&[0u8; 63])).unwrap_err();
        assert_eq!(
            err,
            KeyError::Length {
                expected: KeyKind::Client,
                found_bytes: 63
            }
        );
        assert!(err.to_string().contains("63"));
        assert!(err.to_string().contains("64"));
        assert_eq!(
            ClientKey::from_text(&client_text_of(&[0u8; 65])).unwrap_err(),
            KeyError::Length {
                expected: KeyKind::Client,
                found_bytes: 65
            }
        );
        assert_eq!(
            ClientKey::from_text(CLIENT_PREFIX).unwrap_err(),
            KeyError::Length {
                expected: KeyKind::Client,
                found_bytes: 0
            }
        );
        // Impossible base64 length (85 characters).
        let (_, client) = sample();
        let mut text = client.to_text();
        text.pop();
        assert_eq!(
            ClientKey::from_text(&text).unwrap_err(),
            KeyError::Length {
                expected: KeyKind::Client,
                found_bytes: 63
            }
        );
        let server_short = format!("{SERVER_PREFIX}{}", URL_SAFE_NO_PAD.encode([9u8; 32]));
        assert_eq!(
            ServerKey::from_text(&server_short).unwrap_err(),
            KeyError::Length {
                expected: KeyKind::Server,
                found_bytes: 32
            }
        );
    }

    #[test]
    fn non_canonical_last_character() {
        let (server, client) = sample();
        for (text, kind) in [
            (client.to_text(), KeyKind::Client),
            (server.to_text(), KeyKind::Server),
        ] {
            let last = text.chars().last().unwrap();
            // The last character carries 2 data bits and 4 unused ones.
            let replacement = if last == 'B' { 'C' } else { 'B' };
            let mut bad = text.clone();
            bad.pop();
            bad.push(replacement);
            let err = match kind {
                KeyKind::Client => ClientKey::from_text(&bad).unwrap_err(),
                KeyKind::Server => ServerKey::from_text(&bad).unwrap_err(),
            };
            assert_eq!(err, KeyError::NonCanonical { expected: kind });
        }
    }

    #[test]
    fn decode_errors_map_onto_key_errors() {
        use base64::{DecodeError, DecodeSliceError};
        let k = KeyKind::Client;
        assert_eq!(
            map_decode_error(
                k,
                "ab+c",
                DecodeSliceError::DecodeError(DecodeError::InvalidByte(2, b'+'))
            ),
            KeyError::Alphabet {
                expected: k,
                position: 2,
                character: '+'
            }
        );
        assert_eq!(
            map_decode_error(
                k,
                "éa+",
                DecodeSliceError::DecodeError(DecodeError::InvalidByte(3, b'+'))
            ),
            KeyError::Alphabet {
                expected: k,
                position: 2,
                character: '+'
            }
        );
        // Out-of-range offsets do not panic.
        assert!(matches!(
            map_decode_error(
                k,
                "é",
                DecodeSliceError::DecodeError(DecodeError::InvalidByte(1, 0xa9))
            ),
            KeyError::Alphabet { .. }
        ));
        assert!(matches!(
            map_decode_error(
                k,
                "",
                DecodeSliceError::DecodeError(DecodeError::InvalidByte(usize::MAX, 0))
            ),
            KeyError::Alphabet { .. }
        ));
        assert_eq!(
            map_decode_error(
                k,
                "",
                DecodeSliceError::DecodeError(DecodeError::InvalidLength(85))
            ),
            KeyError::Length {
                expected: k,
                found_bytes: 63
            }
        );
        assert_eq!(
            map_decode_error(
                k,
                "",
                DecodeSliceError::DecodeError(DecodeError::InvalidLastSymbol {
                    offset: 0,
                    symbol: b'B',
                    symbol_value: 1
                })
            ),
            KeyError::NonCanonical { expected: k }
        );
        assert_eq!(
            map_decode_error(
                k,
                "abc=",
                DecodeSliceError::DecodeError(DecodeError::InvalidPadding)
            ),
            KeyError::Alphabet {
                expected: k,
                position: 3,
                character: '='
            }
        );
        assert!(matches!(
            map_decode_error(k, "abcd", DecodeSliceError::OutputSliceTooSmall),
            KeyError::Length { found_bytes: 3, .. }
        ));
    }

    #[test]
    fn decoded_len_matches_base64() {
        for n in 0..200usize {
            let encoded = URL_SAFE_NO_PAD.encode(vec![0u8; n]);
            assert_eq!(decoded_len(encoded.len()), n);
        }
        assert_eq!(decoded_len(usize::MAX), usize::MAX / 4 * 3 + 2);
    }

    #[test]
    fn error_messages_name_expected_prefix() {
        let (server, client) = sample();
        let mut client_bad = client.to_text();
        client_bad.pop();
        client_bad.push('B');
        let inputs = [
            "",
            "   ",
            "nonsense",
            "port1-public:a+b",
            "port1-public:abc=",
            "port1-public:AAAA",
            client_bad.as_str(),
        ];
        let server_text = server.to_text();
        for input in inputs {
            let err = ClientKey::from_text(input).unwrap_err();
            assert_eq!(err.expected(), KeyKind::Client);
            assert!(err.to_string().contains("`port1-public:"), "{err}");
            let first = err.to_string().chars().next().unwrap();
            assert!(first.is_lowercase(), "{err}");
        }
        let err = ClientKey::from_text(&server_text).unwrap_err();
        assert!(err.to_string().contains("`port1-public:`"));

        let client_text = client.to_text();
        let server_inputs = [
            "",
            "nonsense",
            "port1-secret:a/b",
            "port1-secret:",
            client_text.as_str(),
        ];
        for input in server_inputs {
            let err = ServerKey::from_text(input).unwrap_err();
            assert_eq!(err.expected(), KeyKind::Server);
            assert!(err.to_string().contains("`port1-secret:"), "{err}");
        }
        assert_eq!(
            KeyError::Empty {
                expected: KeyKind::Client
            }
            .to_string(),
            "key text is empty: expected a client public key \
             `port1-public:<86 base64url characters>`"
        );
    }

    #[test]
    fn kind_display_and_prefix() {
        assert_eq!(KeyKind::Server.to_string(), "server secret key");
        assert_eq!(KeyKind::Client.to_string(), "client public key");
        assert_eq!(KeyKind::Server.prefix(), "port1-secret:");
        assert_eq!(KeyKind::Client.prefix(), "port1-public:");
        assert_eq!(KeyKind::Server.other(), KeyKind::Client);
    }

    #[test]
    fn garbage_never_panics() {
        let mut r = rng(9);
        let samples = [
            "port1-public:",
            "port1-secret:",
            "port1-",
            ":",
            "é:é",
            "port1-public:\u{0}",
            "\u{feff}port1-public:AAAA",
        ];
        for s in samples {
            let _ = ClientKey::from_text(s);
            let _ = ServerKey::from_text(s);
        }
        for len in 0..200 {
            let mut bytes = vec![0u8; len];
            rand_core::Rng::fill_bytes(&mut r, &mut bytes);
            let s = String::from_utf8_lossy(&bytes);
            let _ = ClientKey::from_text(&s);
            let _ = ServerKey::from_text(&format!("{SERVER_PREFIX}{s}"));
            let _ = ClientKey::from_text(&format!("{CLIENT_PREFIX}{s}"));
        }
    }
}
