//! The AEAD a PORT/1 server's connections use, chosen by its operator and carried in both key
//! lines (`?cipher=aes-256-gcm`), so that a client learns it from what it is given and never
//! from the wire: both ciphers have a 16-byte tag, so no length, byte or timing of the wire
//! format tells them apart.
//!
//! ChaCha20-Poly1305 is the default and what every key line without `cipher=` means.
//! AES-256-GCM is for servers and clients whose CPUs have AES and carry-less multiply
//! instructions (x86-64 AES-NI with PCLMULQDQ, ARMv8 crypto extensions): there ring's assembly
//! seals faster than it seals ChaCha20-Poly1305, and where those instructions are missing it
//! is several times slower, which is why it is never the default.

use std::fmt;
use std::str::FromStr;

/// An AEAD cipher for PORT/1 (`docs/PROTOCOL.md` §2.1 and §20).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// ChaCha20-Poly1305 (RFC 8439), the default.
    #[default]
    ChaCha20Poly1305,
    /// AES-256-GCM (NIST SP 800-38D) with a 96-bit nonce and a 128-bit tag.
    Aes256Gcm,
}

impl Cipher {
    /// Every cipher, the default first.
    pub const ALL: [Cipher; 2] = [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm];

    /// The name in key lines and on command lines: `chacha20-poly1305` or `aes-256-gcm`.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// The cipher [`name`](Self::name) gives `name`, if any.
    pub fn from_name(name: &str) -> Option<Cipher> {
        Cipher::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True for the default, ChaCha20-Poly1305.
    pub fn is_default(self) -> bool {
        self == Cipher::default()
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cipher name that is neither `chacha20-poly1305` nor `aes-256-gcm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCipher(pub String);

impl fmt::Display for UnknownCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown cipher {:?} (expected chacha20-poly1305 or aes-256-gcm)",
            self.0
        )
    }
}

impl std::error::Error for UnknownCipher {}

impl FromStr for Cipher {
    type Err = UnknownCipher;

    fn from_str(s: &str) -> Result<Cipher, UnknownCipher> {
        Cipher::from_name(s).ok_or_else(|| UnknownCipher(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_chacha_is_the_default() {
        for cipher in Cipher::ALL {
            assert_eq!(cipher.name().parse::<Cipher>(), Ok(cipher));
            assert_eq!(cipher.to_string(), cipher.name());
        }
        assert_eq!(Cipher::default(), Cipher::ChaCha20Poly1305);
        assert!(Cipher::ChaCha20Poly1305.is_default() && !Cipher::Aes256Gcm.is_default());
        let err = "aes-128-gcm".parse::<Cipher>().unwrap_err();
        assert!(err.to_string().contains("\"aes-128-gcm\""));
        assert!(err.to_string().contains("aes-256-gcm"));
    }
}
