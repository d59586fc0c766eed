//! The key schedule and the AEAD wrapper: every cryptographic step of PORT/1 lives here, built
//! only from BLAKE3, X25519 and the server's [`Cipher`] (ChaCha20-Poly1305 or AES-256-GCM) as
//! provided by their crates.

use ring::aead::{
    AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey,
};

use crate::cipher::Cipher;

/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of an X25519 public key (and of its masked form on the wire).
pub(crate) const KEY_LEN: usize = 32;

const CTX_CLIENT_MASK: &[u8] = b"PORT/1 client mask";
const CTX_SERVER_MASK: &[u8] = b"PORT/1 server mask";

/// The contexts of the key schedule's two derivations, one pair per cipher, so that no key is
/// ever used with two ciphers (`docs/PROTOCOL.md` §2.2).
struct Contexts {
    init_key: &'static str,
    session_keys: &'static str,
}

fn contexts(cipher: Cipher) -> Contexts {
    match cipher {
        Cipher::ChaCha20Poly1305 => Contexts {
            init_key: "PORT/1 2026-11 client INIT key",
            session_keys: "PORT/1 2026-11 session keys",
        },
        Cipher::Aes256Gcm => Contexts {
            init_key: "PORT/1 2026-12 AES-256-GCM client INIT key",
            session_keys: "PORT/1 2026-12 AES-256-GCM session keys",
        },
    }
}

/// AES-256-GCM blocks one key may seal: 2^34 (256 GiB), counting each seal as its 16-byte
/// blocks plus one. Below it, by the usual bound of about `σ² / 2^128` on telling GCM's output
/// from random, an observer's advantage stays under 2^-60 (TLS 1.3 stops at a similar point,
/// 2^24.5 records of 16 KiB, and updates its key). ChaCha20-Poly1305 needs no such budget.
const AES_GCM_BLOCK_BUDGET: u64 = 1 << 34;

/// The per-salt mask hiding the client's ephemeral public key:
/// `BLAKE3-keyed(seed, "PORT/1 client mask" ‖ salt)`.
pub(crate) fn client_mask(seed: &[u8; 32], salt: &[u8]) -> [u8; KEY_LEN] {
    let mut h = blake3::Hasher::new_keyed(seed);
    h.update(CTX_CLIENT_MASK).update(salt);
    *h.finalize().as_bytes()
}

/// The mask hiding the server's ephemeral public key, unique per client INIT because it covers
/// the INIT's transcript hash: `BLAKE3-keyed(seed, "PORT/1 server mask" ‖ th)`.
pub(crate) fn server_mask(seed: &[u8; 32], transcript: &[u8; 32]) -> [u8; KEY_LEN] {
    let mut h = blake3::Hasher::new_keyed(seed);
    h.update(CTX_SERVER_MASK).update(transcript);
    *h.finalize().as_bytes()
}

/// XORs `mask` into `key`, which both masks and unmasks.
pub(crate) fn xor32(key: &[u8; KEY_LEN], mask: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    std::array::from_fn(|i| key[i] ^ mask[i])
}

/// The key sealing the client INIT's header and body.
pub(crate) fn init_key(
    cipher: Cipher,
    seed: &[u8; 32],
    server_public: &[u8; 32],
    salt: &[u8],
    client_ephemeral: &[u8; 32],
    es: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(contexts(cipher).init_key);
    h.update(seed)
        .update(server_public)
        .update(salt)
        .update(client_ephemeral)
        .update(es);
    *h.finalize().as_bytes()
}

/// The three keys that follow the client INIT: one for the server INIT, one per direction.
pub(crate) struct SessionKeys {
    pub(crate) cipher: Cipher,
    pub(crate) server_init: [u8; 32],
    pub(crate) client_to_server: [u8; 32],
    pub(crate) server_to_client: [u8; 32],
}

/// Everything both sides agree on once the server's ephemeral key is known.
pub(crate) struct SessionInput<'a> {
    pub(crate) cipher: Cipher,
    pub(crate) seed: &'a [u8; 32],
    pub(crate) server_public: &'a [u8; 32],
    pub(crate) client_ephemeral: &'a [u8; 32],
    pub(crate) server_ephemeral: &'a [u8; 32],
    pub(crate) transcript: &'a [u8; 32],
    pub(crate) es: &'a [u8; 32],
    pub(crate) ee: &'a [u8; 32],
}

/// Derives the session keys from both DH results and the transcript, Noise-NK style: `es`
/// authenticates the server, `ee` gives forward secrecy.
pub(crate) fn session_keys(input: &SessionInput<'_>) -> SessionKeys {
    let mut h = blake3::Hasher::new_derive_key(contexts(input.cipher).session_keys);
    h.update(input.seed)
        .update(input.server_public)
        .update(input.client_ephemeral)
        .update(input.server_ephemeral)
        .update(input.transcript)
        .update(input.es)
        .update(input.ee);
    let mut okm = [0u8; 96];
    h.finalize_xof().fill(&mut okm);
    let part = |i: usize| -> [u8; 32] { std::array::from_fn(|j| okm[32 * i + j]) };
    SessionKeys {
        cipher: input.cipher,
        server_init: part(0),
        client_to_server: part(1),
        server_to_client: part(2),
    }
}

/// One direction of the connection's AEAD with a counter nonce that is never sent: the nonce is
/// the little-endian counter in the first 8 bytes, zeros after. Each seal or open uses the next
/// value.
///
/// The ciphers are ring's. Its ChaCha20-Poly1305 picks its SIMD code at run time with a per-call
/// cost of a few hundred nanoseconds, where RustCrypto's `chacha20poly1305` in a portable build
/// spends microseconds per call (its run-time-detected AVX2 Poly1305 cannot inline its
/// intrinsics), which PORT, at two AEAD calls per frame, would pay twice; its AES-256-GCM uses
/// AES-NI, VAES and carry-less multiplication where the CPU has them. `BENCHMARKS.md` has the
/// figures.
pub(crate) struct Aead {
    key: Key,
    counter: u64,
}

/// The key as each cipher keeps it best.
enum Key {
    /// The raw key: ring's `LessSafeKey` is sized for AES key schedules (over 500 bytes), and
    /// building one for ChaCha20-Poly1305 only copies these 32 bytes, so each call builds its
    /// own and a connection keeps two keys in 80 bytes instead of two ciphers in 1 KiB.
    ChaCha([u8; 32]),
    /// The expanded key (round keys and GHASH powers), built once: expanding it costs more than
    /// sealing a small frame. Boxed, so that only AES connections pay for its size.
    Aes {
        cipher: Box<LessSafeKey>,
        /// What is left of [`AES_GCM_BLOCK_BUDGET`].
        blocks_left: u64,
    },
}

/// The AEAD failed to authenticate, or the nonce space or the key's budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadError;

fn less_safe_key(algorithm: &'static Algorithm, key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(algorithm, key).expect("a 32-byte AEAD key"))
}

impl Aead {
    pub(crate) fn new(cipher: Cipher, key: &[u8; 32]) -> Self {
        let key = match cipher {
            Cipher::ChaCha20Poly1305 => Key::ChaCha(*key),
            Cipher::Aes256Gcm => Key::Aes {
                cipher: Box::new(less_safe_key(&AES_256_GCM, key)),
                blocks_left: AES_GCM_BLOCK_BUDGET,
            },
        };
        Aead { key, counter: 0 }
    }

    /// Runs `f` with the cipher; `sealing` is the length about to be sealed, charged to the
    /// AES-GCM budget (`None` when opening).
    fn with_cipher<T>(
        &mut self,
        sealing: Option<usize>,
        f: impl FnOnce(&LessSafeKey) -> Result<T, AeadError>,
    ) -> Result<T, AeadError> {
        match &mut self.key {
            Key::ChaCha(raw) => f(&less_safe_key(&CHACHA20_POLY1305, raw)),
            Key::Aes {
                cipher,
                blocks_left,
            } => {
                if let Some(len) = sealing {
                    let blocks = (len as u64).div_ceil(16) + 1;
                    *blocks_left = blocks_left.checked_sub(blocks).ok_or(AeadError)?;
                }
                f(cipher)
            }
        }
    }

    fn next_nonce(&mut self) -> Result<Nonce, AeadError> {
        // Stop well before wrap-around: a reused nonce would break confidentiality.
        if self.counter == u64::MAX {
            return Err(AeadError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        // Unique by construction: the counter never repeats under one key.
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    /// Encrypts `buf[..len - TAG_LEN]` in place and writes the tag into the last `TAG_LEN` bytes.
    pub(crate) fn seal_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<(), AeadError> {
        let nonce = self.next_nonce()?;
        let split = buf.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        let (msg, tag_out) = buf.split_at_mut(split);
        let tag = self.with_cipher(Some(split), |cipher| {
            cipher
                .seal_in_place_separate_tag(nonce, Aad::from(ad), msg)
                .map_err(|_| AeadError)
        })?;
        tag_out.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Authenticates and decrypts `buf` (ciphertext ‖ tag) in place; on success the plaintext is
    /// `buf[..len - TAG_LEN]`. On failure the buffer content is unspecified.
    pub(crate) fn open_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<(), AeadError> {
        let nonce = self.next_nonce()?;
        let split = buf.len().checked_sub(TAG_LEN).ok_or(AeadError)?;
        let (msg, tag) = buf.split_at_mut(split);
        let tag = Tag::try_from(&*tag).map_err(|_| AeadError)?;
        self.with_cipher(None, |cipher| {
            cipher
                .open_in_place_separate_tag(nonce, Aad::from(ad), tag, msg, 0..)
                .map(|_| ())
                .map_err(|_| AeadError)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_counters_advance() {
        let key = [7u8; 32];
        for cipher in Cipher::ALL {
            let (mut tx, mut rx) = (Aead::new(cipher, &key), Aead::new(cipher, &key));
            for msg in [&b""[..], b"a", b"hello world"] {
                let mut buf = msg.to_vec();
                buf.resize(msg.len() + TAG_LEN, 0);
                tx.seal_in_place(b"ad", &mut buf).unwrap();
                rx.open_in_place(b"ad", &mut buf).unwrap();
                assert_eq!(&buf[..msg.len()], msg);
            }
        }
    }

    #[test]
    fn open_rejects_wrong_ad_and_wrong_counter() {
        let key = [1u8; 32];
        for cipher in Cipher::ALL {
            let mut tx = Aead::new(cipher, &key);
            let mut buf = vec![0u8; 4 + TAG_LEN];
            tx.seal_in_place(b"x", &mut buf).unwrap();
            assert_eq!(
                Aead::new(cipher, &key).open_in_place(b"y", &mut buf.clone()),
                Err(AeadError)
            );
            let mut skipped = Aead::new(cipher, &key);
            skipped.counter = 1;
            assert_eq!(
                skipped.open_in_place(b"x", &mut buf.clone()),
                Err(AeadError)
            );
            let other = Cipher::ALL.into_iter().find(|&c| c != cipher).unwrap();
            assert_eq!(
                Aead::new(other, &key).open_in_place(b"x", &mut buf),
                Err(AeadError),
                "{cipher}'s seal must not open under {other}"
            );
        }
    }

    #[test]
    fn exhausted_counter_refuses_to_seal() {
        for cipher in Cipher::ALL {
            let mut tx = Aead::new(cipher, &[0u8; 32]);
            tx.counter = u64::MAX;
            assert_eq!(tx.seal_in_place(b"", &mut [0u8; TAG_LEN]), Err(AeadError));
        }
    }

    #[test]
    fn aes_gcm_stops_at_its_block_budget() {
        let mut tx = Aead::new(Cipher::Aes256Gcm, &[0u8; 32]);
        let Key::Aes { blocks_left, .. } = &mut tx.key else {
            panic!("an AES key")
        };
        // 33 bytes are 3 blocks, plus one for the call.
        *blocks_left = 4 + 3;
        let mut buf = [0u8; 33 + TAG_LEN];
        assert_eq!(tx.seal_in_place(b"", &mut buf), Ok(()));
        assert_eq!(tx.seal_in_place(b"", &mut buf), Err(AeadError));
        // What is left still seals something smaller.
        assert_eq!(tx.seal_in_place(b"", &mut [0u8; 16 + TAG_LEN]), Ok(()));
    }

    #[test]
    fn each_cipher_has_its_own_key_schedule() {
        let derive = |cipher| init_key(cipher, &[1; 32], &[2; 32], &[3; 16], &[4; 32], &[5; 32]);
        assert_ne!(derive(Cipher::ChaCha20Poly1305), derive(Cipher::Aes256Gcm));
        let input = |cipher| SessionInput {
            cipher,
            seed: &[1; 32],
            server_public: &[2; 32],
            client_ephemeral: &[3; 32],
            server_ephemeral: &[4; 32],
            transcript: &[5; 32],
            es: &[6; 32],
            ee: &[7; 32],
        };
        let chacha = session_keys(&input(Cipher::ChaCha20Poly1305));
        let aes = session_keys(&input(Cipher::Aes256Gcm));
        assert_eq!(aes.cipher, Cipher::Aes256Gcm);
        assert_ne!(chacha.client_to_server, aes.client_to_server);
    }

    #[test]
    fn masks_depend_on_seed_and_salt() {
        let a = client_mask(&[1; 32], &[2; 16]);
        assert_ne!(a, client_mask(&[1; 32], &[3; 16]));
        assert_ne!(a, client_mask(&[4; 32], &[2; 16]));
        assert_ne!(server_mask(&[1; 32], &[2; 32]), a);
        let key = [0x55; 32];
        assert_eq!(xor32(&xor32(&key, &a), &a), key);
    }
}
