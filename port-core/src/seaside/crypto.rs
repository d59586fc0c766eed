//! The seaside profile's primitives, exactly as upstream uses them: BLAKE2b with a 32-byte
//! digest for the session key and the key mask, and XChaCha20-Poly1305 with a fresh random
//! 24-byte nonce per sealed piece, laid out as `nonce ‖ ciphertext ‖ tag`.

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand_core::CryptoRng;

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: nonce and tag.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// BLAKE2b with a 32-byte digest: upstream's hash. This is the BLAKE2b-256 parameter set (the
/// digest length is part of the parameter block), not BLAKE2b-512 cut short.
type Blake2b256 = Blake2b<U32>;

/// BLAKE2b-256 over the concatenation of `parts`.
pub(crate) fn blake2b_256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Blake2b256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// The session key `K = BLAKE2b-256(X25519(e, S) ‖ e_pub ‖ S_pub)`; the shared secret is the
/// raw X25519 output.
pub(crate) fn session_key(shared: &[u8; 32], ephemeral: &[u8; 32], server: &[u8; 32]) -> [u8; 32] {
    blake2b_256(&[shared, ephemeral, server])
}

/// The mask over the ephemeral public key: `BLAKE2b-256(N ‖ seed)`.
pub(crate) fn mask(n: &[u8; 2], seed: &[u8]) -> [u8; 32] {
    blake2b_256(&[n, seed])
}

/// XChaCha20-Poly1305 under one session key (the same key seals both directions upstream).
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// A sealer for `key`.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Appends `nonce ‖ XChaCha20-Poly1305(plaintext, ad) ‖ tag` to `out`, with a nonce of
    /// 24 bytes drawn from `rng`.
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        plaintext: &[u8],
        ad: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(&nonce, plaintext, ad, out);
    }

    /// [`seal`](Self::seal) with a given nonce (for test vectors).
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        ad: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(&XNonce::from(*nonce), ad, (&mut out[start..]).into())
            // The only failure is a plaintext beyond 256 GiB, which no caller can pass.
            .unwrap_or_default();
        out.extend_from_slice(&tag);
    }

    /// Opens a sealed piece (`nonce ‖ ciphertext ‖ tag`) in place; returns the plaintext, or
    /// `None` if it is too short or does not authenticate.
    pub fn open<'a>(&self, sealed: &'a mut [u8], ad: &[u8]) -> Option<&'a mut [u8]> {
        if sealed.len() < OVERHEAD {
            return None;
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag = Tag::try_from(&*tag).ok()?;
        let nonce = XNonce::try_from(&*nonce).ok()?;
        self.cipher
            .decrypt_inout_detached(&nonce, ad, (&mut *body).into(), &tag)
            .ok()?;
        Some(body)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}
