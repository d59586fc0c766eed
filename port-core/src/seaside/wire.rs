//! The seaside wire format, byte for byte as upstream SeasideVPN writes it (see
//! `docs/PROTOCOL.md`, "The seaside profile"). Pure functions: the caller supplies keys and a
//! random generator, so test vectors are reproduced by passing a generator of zeros.
//!
//! Every encrypted piece is `nonce(24) ‖ ciphertext ‖ tag(16)`; integers are big-endian; a
//! length field counts the sealed size (plaintext + 40).
//!
//! | message | layout |
//! |---|---|
//! | client INIT | `N(2) ‖ e_pub ⊕ BLAKE2b-256(N ‖ seed) (32) ‖ seal(header 7, AD = e_pub) ‖ seal(token) ‖ tail` |
//! | server INIT | `seal(flags, status, user_id u16, tail_len u16) ‖ tail` |
//! | DATA | `seal(flags, data_len u16, tail_len u16) ‖ seal(payload) ‖ tail` |
//! | TERM | `seal(flags, 0 u16, tail_len u16) ‖ tail` |

use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;

use super::crypto::{self, OVERHEAD, Sealer};
use super::keys::{ClientKey, SEED_LEN, ServerKey};
use crate::error::ProtocolError;
use crate::x25519::PeerPoint;

/// Flags of an INIT (client or server).
pub const FLAG_INIT: u8 = 0x80;
/// Flags of a DATA message.
pub const FLAG_DATA: u8 = 0x20;
/// Flags of a TERM message.
pub const FLAG_TERM: u8 = 0x10;
/// The client version sent (upstream's major version; listeners refuse lower ones).
pub const CLIENT_VERSION: u8 = 0;

/// Length of the hidden ephemeral key: `N` and the masked key.
pub const HIDDEN_KEY_LEN: usize = 2 + 32;
/// Length of the fixed part of a client INIT: hidden key and sealed 7-byte header.
pub const CLIENT_INIT_HEADER_LEN: usize = HIDDEN_KEY_LEN + 7 + OVERHEAD;
/// Length of a sealed server INIT header.
pub const SERVER_INIT_HEADER_LEN: usize = 6 + OVERHEAD;
/// Length of a sealed DATA or TERM header.
pub const MESSAGE_HEADER_LEN: usize = 5 + OVERHEAD;
/// The largest payload of one DATA message: its sealed length must fit the u16 `data_len`.
pub const MAX_PAYLOAD: usize = u16::MAX as usize - OVERHEAD;
/// The largest token: its sealed length must fit the u16 `token_len`.
pub const MAX_TOKEN_LEN: usize = MAX_PAYLOAD;
/// The longest tail sent (upstream peers send 0..=512, or 0..=511; any u16 is accepted).
pub const MAX_TAIL_SENT: u16 = 512;

/// The authenticated header of a client INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInitHeader {
    /// 0 custom, 65 (`'A'`) the Python client, 82 (`'R'`) the Rust client.
    pub client_type: u8,
    /// The client's major version.
    pub client_version: u8,
    /// Sealed length of the token piece (token + 40).
    pub token_len: u16,
    /// Length of the tail after the token piece.
    pub tail_len: u16,
}

/// The authenticated header of a server INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerInitHeader {
    /// 0 success; 1 token parse error, 2 connection error, 3 registration error, 4 unknown.
    pub status: u8,
    /// The port of the per-user socket (0 on failure).
    pub user_id: u16,
    /// Length of the tail.
    pub tail_len: u16,
}

/// The authenticated header of a DATA or TERM message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// [`FLAG_DATA`] or [`FLAG_TERM`].
    pub flags: u8,
    /// Sealed length of the body (payload + 40); 0 for TERM.
    pub data_len: u16,
    /// Length of the tail after the body.
    pub tail_len: u16,
}

impl MessageHeader {
    /// True for DATA (the other kind a receiver accepts is TERM).
    pub fn is_data(&self) -> bool {
        self.flags == FLAG_DATA
    }
}

/// A client INIT ready to send, and the session key it commits to.
#[derive(Clone, Debug)]
pub struct ClientInit {
    /// The whole message.
    pub wire: Vec<u8>,
    /// The session key `K` both sides derive.
    pub session_key: [u8; 32],
}

/// Builds a client INIT to the listener of `key`, with the ephemeral secret `ephemeral`,
/// presenting `token`, with a tail of `tail_len` bytes. Draws from `rng`, in order: `N` (2
/// bytes), the header nonce, the token nonce (24 bytes each), the tail.
///
/// `None` if the listener's key is a low-order point or the token is longer than
/// [`MAX_TOKEN_LEN`].
pub fn client_init<R: CryptoRng + ?Sized>(
    key: &ClientKey,
    ephemeral: &StaticSecret,
    client_type: u8,
    token: &[u8],
    tail_len: u16,
    rng: &mut R,
) -> Option<ClientInit> {
    let token_len = u16::try_from(token.len().checked_add(OVERHEAD)?).ok()?;
    let (e_pub, shared) = PeerPoint::new(key.public()).public_and_dh(ephemeral);
    let shared = shared?;
    let session_key = crypto::session_key(&shared, &e_pub, key.public());
    let sealer = Sealer::new(&session_key);
    let mut n = [0u8; 2];
    rng.fill_bytes(&mut n);
    let mask = crypto::mask(&n, key.seed());
    let mut wire = Vec::with_capacity(CLIENT_INIT_HEADER_LEN + token.len() + OVERHEAD + 512);
    wire.extend_from_slice(&n);
    wire.extend(e_pub.iter().zip(mask).map(|(e, m)| e ^ m));
    let [tl0, tl1] = token_len.to_be_bytes();
    let [ta0, ta1] = tail_len.to_be_bytes();
    let header = [FLAG_INIT, client_type, CLIENT_VERSION, tl0, tl1, ta0, ta1];
    // The header's AD is the unmasked ephemeral key: it binds the header to the key exchange.
    sealer.seal(rng, &header, &e_pub, &mut wire);
    sealer.seal(rng, token, &[], &mut wire);
    push_tail(rng, tail_len, &mut wire);
    Some(ClientInit { wire, session_key })
}

/// A client INIT's fixed part, opened by the listener: the header and the session key.
#[derive(Clone, Debug)]
pub struct OpenedClientInit {
    /// The authenticated header.
    pub header: ClientInitHeader,
    /// The session key `K`.
    pub session_key: [u8; 32],
}

/// Opens the first [`CLIENT_INIT_HEADER_LEN`] bytes of a client INIT with the listener's key.
/// `None` when they do not authenticate, the ephemeral key is a low-order point (its shared
/// secret would be known to anyone), the flags are not INIT, the version is below
/// [`CLIENT_VERSION`], or the token piece is shorter than a sealed empty token.
// Upstream refuses clients below its own major version, 0 today: the check is always true
// now and stays so that a new major version is a one-constant change.
#[allow(clippy::absurd_extreme_comparisons)]
pub fn open_client_init(
    key: &ServerKey,
    wire: &[u8; CLIENT_INIT_HEADER_LEN],
) -> Option<OpenedClientInit> {
    let n = [wire[0], wire[1]];
    let mask = crypto::mask(&n, key.seed());
    let mut e_pub = [0u8; 32];
    for (i, byte) in e_pub.iter_mut().enumerate() {
        *byte = wire[2 + i] ^ mask[i];
    }
    let shared = PeerPoint::new(&e_pub).dh(key.secret())?;
    let session_key = crypto::session_key(&shared, &e_pub, key.public());
    let mut sealed = wire[HIDDEN_KEY_LEN..].to_vec();
    let plain = Sealer::new(&session_key).open(&mut sealed, &e_pub)?;
    let header = ClientInitHeader {
        client_type: plain[1],
        client_version: plain[2],
        token_len: u16::from_be_bytes([plain[3], plain[4]]),
        tail_len: u16::from_be_bytes([plain[5], plain[6]]),
    };
    let valid = plain[0] == FLAG_INIT
        && header.client_version >= CLIENT_VERSION
        && usize::from(header.token_len) >= OVERHEAD;
    valid.then_some(OpenedClientInit {
        header,
        session_key,
    })
}

/// Builds a server INIT. Draws from `rng`: the nonce, then the tail.
pub fn server_init<R: CryptoRng + ?Sized>(
    sealer: &Sealer,
    header: &ServerInitHeader,
    rng: &mut R,
    out: &mut Vec<u8>,
) {
    let [u0, u1] = header.user_id.to_be_bytes();
    let [t0, t1] = header.tail_len.to_be_bytes();
    let plain = [FLAG_INIT, header.status, u0, u1, t0, t1];
    sealer.seal(rng, &plain, &[], out);
    push_tail(rng, header.tail_len, out);
}

/// Opens a server INIT header. `None` if it does not authenticate or its flags are not INIT.
pub fn open_server_init(
    sealer: &Sealer,
    wire: &[u8; SERVER_INIT_HEADER_LEN],
) -> Option<ServerInitHeader> {
    let mut sealed = *wire;
    let plain = sealer.open(&mut sealed, &[])?;
    (plain[0] == FLAG_INIT).then(|| ServerInitHeader {
        status: plain[1],
        user_id: u16::from_be_bytes([plain[2], plain[3]]),
        tail_len: u16::from_be_bytes([plain[4], plain[5]]),
    })
}

/// Appends a DATA message carrying `payload` (at most [`MAX_PAYLOAD`] bytes, else `None`
/// and nothing is appended: a length is never truncated). Draws from `rng`: the header
/// nonce, the body nonce, the tail.
pub fn data<R: CryptoRng + ?Sized>(
    sealer: &Sealer,
    payload: &[u8],
    tail_len: u16,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Option<()> {
    let data_len = u16::try_from(payload.len() + OVERHEAD).ok()?;
    seal_header(sealer, FLAG_DATA, data_len, tail_len, rng, out);
    sealer.seal(rng, payload, &[], out);
    push_tail(rng, tail_len, out);
    Some(())
}

/// Appends a TERM message. Draws from `rng`: the header nonce, the tail.
pub fn term<R: CryptoRng + ?Sized>(sealer: &Sealer, tail_len: u16, rng: &mut R, out: &mut Vec<u8>) {
    seal_header(sealer, FLAG_TERM, 0, tail_len, rng, out);
    push_tail(rng, tail_len, out);
}

fn seal_header<R: CryptoRng + ?Sized>(
    sealer: &Sealer,
    flags: u8,
    data_len: u16,
    tail_len: u16,
    rng: &mut R,
    out: &mut Vec<u8>,
) {
    let [d0, d1] = data_len.to_be_bytes();
    let [t0, t1] = tail_len.to_be_bytes();
    sealer.seal(rng, &[flags, d0, d1, t0, t1], &[], out);
}

/// Opens a DATA or TERM header. Fails with [`ProtocolError::Authentication`] when it does not
/// authenticate, and with [`ProtocolError::Malformed`] for other flags, a DATA body shorter
/// than a sealed empty payload, or a TERM with a body.
pub fn open_message_header(
    sealer: &Sealer,
    wire: &[u8; MESSAGE_HEADER_LEN],
) -> Result<MessageHeader, ProtocolError> {
    let mut sealed = *wire;
    let plain = sealer
        .open(&mut sealed, &[])
        .ok_or(ProtocolError::Authentication)?;
    let header = MessageHeader {
        flags: plain[0],
        data_len: u16::from_be_bytes([plain[1], plain[2]]),
        tail_len: u16::from_be_bytes([plain[3], plain[4]]),
    };
    match header.flags {
        FLAG_DATA if usize::from(header.data_len) < OVERHEAD => {
            Err(ProtocolError::Malformed("DATA body shorter than its seal"))
        }
        FLAG_TERM if header.data_len != 0 => Err(ProtocolError::Malformed("TERM with a body")),
        FLAG_DATA | FLAG_TERM => Ok(header),
        _ => Err(ProtocolError::Malformed("flags neither DATA nor TERM")),
    }
}

/// Opens a sealed body (a token or a DATA payload) in place; `None` if it does not
/// authenticate.
pub fn open_body<'a>(sealer: &Sealer, sealed: &'a mut [u8]) -> Option<&'a mut [u8]> {
    sealer.open(sealed, &[])
}

fn push_tail<R: CryptoRng + ?Sized>(rng: &mut R, tail_len: u16, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + usize::from(tail_len), 0);
    rng.fill_bytes(&mut out[start..]);
}

// The seed length is part of the format: a change here would break every deployed key.
const _: () = assert!(SEED_LEN == 8);
