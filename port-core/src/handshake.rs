//! The two INIT messages of PORT/1: building them, and opening them in two steps (a fixed-size
//! prefix whose header says how long the rest is, then the rest).
//!
//! Layouts are in `docs/PROTOCOL.md`; the order of random draws matters for test vectors and is
//! written down there too.

use bytes::Bytes;
use rand_core::Rng;
use x25519_dalek::StaticSecret;

use crate::cipher::Cipher;
use crate::config::{MAX_PADDING, MIN_FRAME_PAYLOAD};
use crate::crypto::{self, Aead, KEY_LEN, SessionInput, SessionKeys, TAG_LEN};
use crate::keys::{ClientKey, ServerKey};
use crate::x25519::{PeerPoint, ServerPoint};

/// Protocol version carried in the client INIT header.
pub const VERSION: u8 = 1;
/// Length of the random salt that opens a client INIT.
pub const SALT_LEN: usize = 16;
/// Plaintext length of the client INIT header.
pub const CLIENT_HEADER_LEN: usize = 24;
/// Bytes a server reads before it can tell how long a client INIT is.
pub const CLIENT_PREFIX_LEN: usize = SALT_LEN + KEY_LEN + CLIENT_HEADER_LEN + TAG_LEN;
/// Plaintext length of the server INIT header.
pub const SERVER_HEADER_LEN: usize = 20;
/// Bytes a client reads before it can tell how long a server INIT is.
pub const SERVER_PREFIX_LEN: usize = KEY_LEN + SERVER_HEADER_LEN + TAG_LEN;
/// Longest token a client INIT may carry.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most bytes of early data a client INIT may carry: the client's first message, sent before
/// the server answered (`docs/PROTOCOL.md` §5.8).
pub const MAX_EARLY_DATA: usize = 16 * 1024;

/// The client INIT header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientHeader {
    pub(crate) client_type: u8,
    pub(crate) timestamp: u64,
    pub(crate) token_len: u16,
    pub(crate) pad_len: u16,
    pub(crate) max_payload: u16,
    pub(crate) max_message: u32,
    /// Bytes of early data in the body, after the token.
    pub(crate) early_len: u16,
}

impl ClientHeader {
    fn encode(&self) -> [u8; CLIENT_HEADER_LEN] {
        let mut out = [0u8; CLIENT_HEADER_LEN];
        out[0] = VERSION;
        out[2] = self.client_type;
        out[4..12].copy_from_slice(&self.timestamp.to_be_bytes());
        out[12..14].copy_from_slice(&self.token_len.to_be_bytes());
        out[14..16].copy_from_slice(&self.pad_len.to_be_bytes());
        out[16..18].copy_from_slice(&self.max_payload.to_be_bytes());
        out[18..22].copy_from_slice(&self.max_message.to_be_bytes());
        out[22..24].copy_from_slice(&self.early_len.to_be_bytes());
        out
    }

    /// Any unexpected value means "not a PORT/1 INIT we accept", which is handled like garbage.
    fn decode(raw: &[u8]) -> Option<Self> {
        let u16_at = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
        let header = ClientHeader {
            client_type: raw[2],
            timestamp: u64::from_be_bytes(raw[4..12].try_into().ok()?),
            token_len: u16_at(12),
            pad_len: u16_at(14),
            max_payload: u16_at(16),
            max_message: u32::from_be_bytes(raw[18..22].try_into().ok()?),
            early_len: u16_at(22),
        };
        let reserved_clear = raw[1] == 0 && raw[3] == 0;
        let valid = raw[0] == VERSION
            && reserved_clear
            && usize::from(header.token_len) <= MAX_TOKEN_LEN
            && usize::from(header.early_len) <= MAX_EARLY_DATA
            && usize::from(header.pad_len) <= MAX_PADDING
            && usize::from(header.max_payload) >= MIN_FRAME_PAYLOAD
            && header.max_message >= u32::from(header.max_payload);
        valid.then_some(header)
    }

    /// On-wire length of the INIT body (token ‖ early data ‖ padding ‖ tag).
    pub(crate) fn body_wire_len(&self) -> usize {
        usize::from(self.token_len)
            + usize::from(self.early_len)
            + usize::from(self.pad_len)
            + TAG_LEN
    }
}

/// The server INIT header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerHeader {
    pub(crate) status: u16,
    pub(crate) user_id: u32,
    pub(crate) next_in_ms: u32,
    pub(crate) pad_len: u16,
    pub(crate) max_payload: u16,
    pub(crate) max_message: u32,
}

impl ServerHeader {
    fn encode(&self) -> [u8; SERVER_HEADER_LEN] {
        let mut out = [0u8; SERVER_HEADER_LEN];
        out[0..2].copy_from_slice(&self.status.to_be_bytes());
        out[2..6].copy_from_slice(&self.user_id.to_be_bytes());
        out[6..10].copy_from_slice(&self.next_in_ms.to_be_bytes());
        out[10..12].copy_from_slice(&self.pad_len.to_be_bytes());
        out[12..14].copy_from_slice(&self.max_payload.to_be_bytes());
        out[14..18].copy_from_slice(&self.max_message.to_be_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        let u16_at = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let header = ServerHeader {
            status: u16_at(0),
            user_id: u32_at(2),
            next_in_ms: u32_at(6),
            pad_len: u16_at(10),
            max_payload: u16_at(12),
            max_message: u32_at(14),
        };
        let valid = raw[18] == 0
            && raw[19] == 0
            && usize::from(header.pad_len) <= MAX_PADDING
            && usize::from(header.max_payload) >= MIN_FRAME_PAYLOAD
            && header.max_message >= u32::from(header.max_payload);
        valid.then_some(header)
    }

    pub(crate) fn body_wire_len(&self) -> usize {
        usize::from(self.pad_len) + TAG_LEN
    }
}

/// Fills a fresh array from the RNG (one draw of `N` bytes).
pub(crate) fn random_array<const N: usize, R: Rng + ?Sized>(rng: &mut R) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

fn transcript_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for part in parts {
        h.update(part);
    }
    *h.finalize().as_bytes()
}

/// What a client remembers between sending its INIT and reading the server's.
pub(crate) struct ClientInitiator {
    ephemeral: StaticSecret,
    ephemeral_public: [u8; 32],
    es: [u8; 32],
    transcript: [u8; 32],
    seed: [u8; 32],
    server_public: [u8; 32],
    cipher: Cipher,
}

/// A client INIT whose keys are known and whose header and body are not sealed yet, so that
/// the client's first message can still join it as early data.
pub(crate) struct UnsealedInit {
    salt: [u8; SALT_LEN],
    masked: [u8; KEY_LEN],
    aead: Aead,
}

/// Prepares a client INIT: random draws, in order, salt (16 bytes) and ephemeral secret (32
/// bytes); the two X25519 products and the INIT key. [`UnsealedInit::seal`] builds the wire.
///
/// Returns `None` only if the server key is a low-order point, which [`ClientKey`] parsing
/// already refuses.
pub(crate) fn client_init<R: Rng + ?Sized>(
    key: &ClientKey,
    server: &ServerPoint,
    rng: &mut R,
) -> Option<(UnsealedInit, ClientInitiator)> {
    let salt: [u8; SALT_LEN] = random_array(rng);
    let ephemeral = StaticSecret::from(random_array::<32, _>(rng));
    let (ephemeral_public, es) = server.public_and_dh(&ephemeral);
    let es = es?;
    let masked = crypto::xor32(&ephemeral_public, &crypto::client_mask(key.seed(), &salt));
    let aead = Aead::new(
        key.cipher(),
        &crypto::init_key(
            key.cipher(),
            key.seed(),
            key.public(),
            &salt,
            &ephemeral_public,
            &es,
        ),
    );
    let initiator = ClientInitiator {
        ephemeral,
        ephemeral_public,
        es,
        // Set when the INIT is sealed: the hash of the INIT as sent.
        transcript: [0; 32],
        seed: *key.seed(),
        server_public: *key.public(),
        cipher: key.cipher(),
    };
    Some((UnsealedInit { salt, masked, aead }, initiator))
}

impl UnsealedInit {
    /// Seals the INIT: salt ‖ masked key ‖ AEAD(header) ‖ AEAD(token ‖ early ‖ padding), the
    /// padding zeros inside the AEAD (the caller chose `header.pad_len`, and `header`'s lengths
    /// must be those of `token` and `early`). The INIT's transcript hash goes to `initiator`.
    pub(crate) fn seal(
        mut self,
        header: &ClientHeader,
        token: &[u8],
        early: &[u8],
        initiator: &mut ClientInitiator,
    ) -> Option<Vec<u8>> {
        let mut wire = Vec::with_capacity(CLIENT_PREFIX_LEN + header.body_wire_len());
        wire.extend_from_slice(&self.salt);
        wire.extend_from_slice(&self.masked);
        wire.extend_from_slice(&header.encode());
        wire.extend_from_slice(&[0u8; TAG_LEN]);
        let (ad, sealed) = wire.split_at_mut(SALT_LEN + KEY_LEN);
        self.aead.seal_in_place(ad, sealed).ok()?;
        let body = wire.len();
        wire.extend_from_slice(token);
        wire.extend_from_slice(early);
        wire.resize(body + header.body_wire_len(), 0);
        self.aead.seal_in_place(&[], &mut wire[body..]).ok()?;
        initiator.transcript = transcript_of(&[&wire]);
        Some(wire)
    }
}

/// A server's view of a client INIT whose prefix authenticated.
pub(crate) struct InitPrefix {
    pub(crate) header: ClientHeader,
    pub(crate) salt: [u8; SALT_LEN],
    aead: Aead,
    ephemeral_public: [u8; 32],
    /// The client's ephemeral key, decoded once for both products with it.
    ephemeral_point: PeerPoint,
    es: [u8; 32],
    transcript: blake3::Hasher,
    /// The early data of the body, once opened: delivered if the application accepts.
    pub(crate) early: Bytes,
}

/// Opens the fixed-size prefix of a client INIT (modified in place). `None` for anything that
/// is not a valid prefix under this server's key.
pub(crate) fn open_client_prefix(key: &ServerKey, wire: &mut [u8]) -> Option<InitPrefix> {
    if wire.len() != CLIENT_PREFIX_LEN {
        return None;
    }
    let mut transcript = blake3::Hasher::new();
    transcript.update(wire);
    let salt: [u8; SALT_LEN] = wire[..SALT_LEN].try_into().ok()?;
    let masked: [u8; KEY_LEN] = wire[SALT_LEN..SALT_LEN + KEY_LEN].try_into().ok()?;
    let ephemeral_public = crypto::xor32(&masked, &crypto::client_mask(key.seed(), &salt));
    let ephemeral_point = PeerPoint::new(&ephemeral_public);
    let es = ephemeral_point.dh(key.secret())?;
    let mut aead = Aead::new(
        key.cipher(),
        &crypto::init_key(
            key.cipher(),
            key.seed(),
            &key.public(),
            &salt,
            &ephemeral_public,
            &es,
        ),
    );
    let (ad, sealed) = wire.split_at_mut(SALT_LEN + KEY_LEN);
    aead.open_in_place(ad, sealed).ok()?;
    let header = ClientHeader::decode(&sealed[..CLIENT_HEADER_LEN])?;
    Some(InitPrefix {
        header,
        salt,
        aead,
        ephemeral_public,
        ephemeral_point,
        es,
        transcript,
        early: Bytes::new(),
    })
}

impl InitPrefix {
    /// Opens the INIT body (modified in place) and returns the token; the early data is kept
    /// in [`early`](Self::early).
    pub(crate) fn open_body<'a>(&mut self, body: &'a mut [u8]) -> Option<&'a [u8]> {
        if body.len() != self.header.body_wire_len() {
            return None;
        }
        self.transcript.update(body);
        self.aead.open_in_place(&[], body).ok()?;
        let token = usize::from(self.header.token_len);
        let early = token + usize::from(self.header.early_len);
        self.early = Bytes::copy_from_slice(&body[token..early]);
        Some(&body[..token])
    }

    /// Picks the server's ephemeral key (one 32-byte draw) and derives the session keys.
    pub(crate) fn respond<R: Rng + ?Sized>(
        &self,
        key: &ServerKey,
        rng: &mut R,
    ) -> Option<ServerResponder> {
        let transcript = *self.transcript.finalize().as_bytes();
        let ephemeral = StaticSecret::from(random_array::<32, _>(rng));
        let (ephemeral_public, ee) = self.ephemeral_point.public_and_dh(&ephemeral);
        let ee = ee?;
        let masked = crypto::xor32(
            &ephemeral_public,
            &crypto::server_mask(key.seed(), &transcript),
        );
        let keys = crypto::session_keys(&SessionInput {
            cipher: key.cipher(),
            seed: key.seed(),
            server_public: &key.public(),
            client_ephemeral: &self.ephemeral_public,
            server_ephemeral: &ephemeral_public,
            transcript: &transcript,
            es: &self.es,
            ee: &ee,
        });
        Some(ServerResponder { masked, keys })
    }
}

/// A server's session, known before the application decides on the token.
pub(crate) struct ServerResponder {
    masked: [u8; KEY_LEN],
    pub(crate) keys: SessionKeys,
}

impl ServerResponder {
    /// Builds the server INIT: masked key ‖ AEAD(header) ‖ AEAD(padding).
    pub(crate) fn server_init(&self, header: &ServerHeader) -> Option<Vec<u8>> {
        let mut aead = Aead::new(self.keys.cipher, &self.keys.server_init);
        let mut wire = Vec::with_capacity(SERVER_PREFIX_LEN + header.body_wire_len());
        wire.extend_from_slice(&self.masked);
        wire.extend_from_slice(&header.encode());
        wire.extend_from_slice(&[0u8; TAG_LEN]);
        let (ad, sealed) = wire.split_at_mut(KEY_LEN);
        aead.seal_in_place(ad, sealed).ok()?;
        let body = wire.len();
        wire.resize(body + header.body_wire_len(), 0);
        aead.seal_in_place(&[], &mut wire[body..]).ok()?;
        Some(wire)
    }
}

/// A client's view of a server INIT whose prefix authenticated.
pub(crate) struct ServerPrefix {
    pub(crate) header: ServerHeader,
    pub(crate) keys: SessionKeys,
    aead: Aead,
}

impl ClientInitiator {
    /// Opens the fixed-size prefix of the server INIT (modified in place).
    pub(crate) fn open_server_prefix(&self, wire: &mut [u8]) -> Option<ServerPrefix> {
        if wire.len() != SERVER_PREFIX_LEN {
            return None;
        }
        let seed = &self.seed;
        let masked: [u8; KEY_LEN] = wire[..KEY_LEN].try_into().ok()?;
        let server_ephemeral = crypto::xor32(&masked, &crypto::server_mask(seed, &self.transcript));
        let ee = PeerPoint::new(&server_ephemeral).dh(&self.ephemeral)?;
        let keys = crypto::session_keys(&SessionInput {
            cipher: self.cipher,
            seed,
            server_public: &self.server_public,
            client_ephemeral: &self.ephemeral_public,
            server_ephemeral: &server_ephemeral,
            transcript: &self.transcript,
            es: &self.es,
            ee: &ee,
        });
        let mut aead = Aead::new(keys.cipher, &keys.server_init);
        let (ad, sealed) = wire.split_at_mut(KEY_LEN);
        aead.open_in_place(ad, sealed).ok()?;
        let header = ServerHeader::decode(&sealed[..SERVER_HEADER_LEN])?;
        Some(ServerPrefix { header, keys, aead })
    }
}

impl ServerPrefix {
    /// Authenticates the server INIT's padding body.
    pub(crate) fn open_body(&mut self, body: &mut [u8]) -> Option<()> {
        if body.len() != self.header.body_wire_len() {
            return None;
        }
        self.aead.open_in_place(&[], body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn client_header(token_len: usize, pad_len: u16) -> ClientHeader {
        ClientHeader {
            client_type: 0x52,
            timestamp: 1_700_000_000,
            token_len: token_len as u16,
            pad_len,
            max_payload: 16384,
            max_message: 1 << 24,
            early_len: 0,
        }
    }

    /// A sealed client INIT and its initiator.
    fn sealed_init(
        key: &ClientKey,
        header: &ClientHeader,
        token: &[u8],
        early: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> (Vec<u8>, ClientInitiator) {
        let (unsealed, mut initiator) = client_init(key, &ServerPoint::new(key.public()), rng)
            .expect("a key of a generated server");
        let wire = unsealed.seal(header, token, early, &mut initiator).unwrap();
        (wire, initiator)
    }

    #[test]
    fn full_handshake_derives_matching_keys() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let server = ServerKey::generate(&mut rng);
        let (token, early) = (b"opaque token", b"early bytes");
        let header = ClientHeader {
            early_len: early.len() as u16,
            ..client_header(token.len(), 33)
        };
        let key = server.client_key();
        let (mut wire, initiator) = sealed_init(&key, &header, token, early, &mut rng);
        let len = CLIENT_PREFIX_LEN + token.len() + early.len() + 33 + TAG_LEN;
        assert_eq!(wire.len(), len);
        assert_eq!(initiator.transcript, transcript_of(&[&wire]));

        let (prefix, body) = wire.split_at_mut(CLIENT_PREFIX_LEN);
        let mut opened = open_client_prefix(&server, prefix).unwrap();
        assert_eq!(opened.header, header);
        assert_eq!(opened.open_body(body).unwrap(), token);
        assert_eq!(opened.early, &early[..]);
        let responder = opened.respond(&server, &mut rng).unwrap();

        let sh = ServerHeader {
            status: 0,
            user_id: 42,
            next_in_ms: 1234,
            pad_len: 9,
            max_payload: 1024,
            max_message: 4096,
        };
        let mut reply = responder.server_init(&sh).unwrap();
        let (prefix, body) = reply.split_at_mut(SERVER_PREFIX_LEN);
        let mut got = initiator.open_server_prefix(prefix).unwrap();
        assert_eq!(got.header, sh);
        got.open_body(body).unwrap();
        assert_eq!(got.keys.client_to_server, responder.keys.client_to_server);
        assert_eq!(got.keys.server_to_client, responder.keys.server_to_client);
        assert_ne!(got.keys.client_to_server, got.keys.server_to_client);
    }

    #[test]
    fn prefix_under_another_key_does_not_open() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let server = ServerKey::generate(&mut rng);
        let other = ServerKey::generate(&mut rng);
        let key = other.client_key();
        let (mut wire, _) = sealed_init(&key, &client_header(0, 0), b"", b"", &mut rng);
        assert!(open_client_prefix(&server, &mut wire[..CLIENT_PREFIX_LEN]).is_none());
    }

    #[test]
    fn header_decode_refuses_out_of_range_fields() {
        let good = client_header(10, 10);
        assert_eq!(ClientHeader::decode(&good.encode()), Some(good));
        for bad in [
            ClientHeader {
                token_len: (MAX_TOKEN_LEN + 1) as u16,
                ..good
            },
            ClientHeader {
                max_payload: 10,
                ..good
            },
            ClientHeader {
                max_message: 10,
                ..good
            },
            ClientHeader {
                early_len: (MAX_EARLY_DATA + 1) as u16,
                ..good
            },
        ] {
            assert_eq!(ClientHeader::decode(&bad.encode()), None);
        }
        let most = ClientHeader {
            early_len: MAX_EARLY_DATA as u16,
            ..good
        };
        assert_eq!(ClientHeader::decode(&most.encode()), Some(most));
        let mut raw = good.encode();
        raw[0] = 2;
        assert_eq!(ClientHeader::decode(&raw), None);
    }
}
