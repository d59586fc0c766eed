//! Upstream SeasideVPN's own PORT test vectors (`viridian/algae/tests/test_unit_protocol_port.py`
//! and the shared AEAD vector), reproduced byte for byte with the randomness they were made
//! with (every random byte zero), and parsed back.

use std::convert::Infallible;

use port_core::seaside::crypto::{OVERHEAD, Sealer};
use port_core::seaside::wire::{
    self, CLIENT_INIT_HEADER_LEN, ClientInitHeader, FLAG_DATA, FLAG_TERM, MESSAGE_HEADER_LEN,
    SERVER_INIT_HEADER_LEN, ServerInitHeader,
};
use port_core::seaside::{ClientKey, KEY_BYTES, ServerKey};
use rand_core::{TryCryptoRng, TryRng};
use x25519_dalek::StaticSecret;

/// The mocked randomness of the upstream tests: every byte zero.
struct Zeros;

impl TryRng for Zeros {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(0);
        Ok(())
    }
}

impl TryCryptoRng for Zeros {}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().expect("length")
}

const PRIVATE: &str = "70fac7af9eb807167b520391b7bb49035fdd23598b1ad3267a96d49b25aea7bc";
const PUBLIC: &str = "0d6e533d06bc0e5e9b0353770248af3d1e10e214b1f9fc015770e2d44c219e26";
const SESSION_KEY: &str = "00e99ffccd507e3928a920f5f2da2702464868e22352ff8dad78010d591f7031";
const TOKEN: &str = "53616d706c65207573657220746f6b656e";
const USER_ID: u16 = 2023;
const DATA: &str = "7375706572207365637265742064617461206d657373616765207061796c6f6164";
const TAIL_LEN: u16 = 16;
const CLIENT_INIT: &str = "000087ed6c0c84b5fad4f85cdcaa1a2d9223680e469c5a41c21740b60e99df652f8f0000000000000000000000000000000000000000000000006867846d237e2761dcafb7e6d8afa2b45846b9ba6c8e7c000000000000000000000000000000000000000000000000bb47e91d761b17993da443e005f9700ea7f604347f4c029e2b645ad77a9d53124000000000000000000000000000000000";
const SERVER_INIT: &str = "000000000000000000000000000000000000000000000000f89e916ee530c84b1489084eaf0dcc82d7e1204b2ef300000000000000000000000000000000";
const DATA_MESSAGE: &str = "000000000000000000000000000000000000000000000000589edf89f53e0ce14843f9ca97148ae123f653d1d80000000000000000000000000000000000000000000000000bebe6ec9700fe1aba9396b195507e3c8e38cc5b32faf9cabffde7c21056f71eea9b540e15a3897637c62c576f95c315ad00000000000000000000000000000000";
const TERM_MESSAGE: &str = "000000000000000000000000000000000000000000000000689e9689f5bc61b4466e5147abe6d6f63ade82362300000000000000000000000000000000";
const AEAD_VECTOR: &str = "0000000000000000000000000000000000000000000000002bfffbf98945ad1bb89592e5d35b6d688a76c24c38f9ecc4b5b3d697267c8d56566d687dd3beb60569e5";

/// The listener's key of the INIT vector: the sample pair with the seed of zeros the mocked
/// fixture produced.
fn server_key() -> ServerKey {
    let mut bytes = [0u8; KEY_BYTES];
    bytes[..32].copy_from_slice(&hex(PRIVATE));
    ServerKey::from_bytes(&bytes)
}

fn zero_key_sealer() -> Sealer {
    Sealer::new(&[0u8; 32])
}

#[test]
fn the_sample_public_key_belongs_to_the_sample_private_key() {
    assert_eq!(server_key().public(), &arr::<32>(PUBLIC));
}

#[test]
fn client_init_vector_is_reproduced_and_parsed_back() {
    let key = server_key();
    // The fixture's ephemeral pair is the static sample pair.
    let ephemeral = StaticSecret::from(arr::<32>(PRIVATE));
    let init = wire::client_init(
        &key.client_key(),
        &ephemeral,
        65,
        &hex(TOKEN),
        TAIL_LEN,
        &mut Zeros,
    )
    .expect("a valid key");
    assert_eq!(init.wire, hex(CLIENT_INIT));
    assert_eq!(init.wire.len(), 154);
    assert_eq!(init.session_key, arr::<32>(SESSION_KEY));

    let wire = hex(CLIENT_INIT);
    let fixed: &[u8; CLIENT_INIT_HEADER_LEN] = wire[..CLIENT_INIT_HEADER_LEN].try_into().unwrap();
    let opened = wire::open_client_init(&key, fixed).expect("the vector authenticates");
    assert_eq!(opened.session_key, arr::<32>(SESSION_KEY));
    assert_eq!(
        opened.header,
        ClientInitHeader {
            client_type: 65,
            client_version: 0,
            token_len: 57,
            tail_len: TAIL_LEN,
        }
    );
    let token_end = CLIENT_INIT_HEADER_LEN + usize::from(opened.header.token_len);
    let mut sealed = wire[CLIENT_INIT_HEADER_LEN..token_end].to_vec();
    let sealer = Sealer::new(&opened.session_key);
    let token = wire::open_body(&sealer, &mut sealed).expect("the token authenticates");
    assert_eq!(token, &hex(TOKEN)[..]);
    assert_eq!(wire.len() - token_end, usize::from(TAIL_LEN));
}

#[test]
fn client_init_for_another_key_or_seed_does_not_open() {
    let wire = hex(CLIENT_INIT);
    let fixed: &[u8; CLIENT_INIT_HEADER_LEN] = wire[..CLIENT_INIT_HEADER_LEN].try_into().unwrap();
    let mut bytes = server_key().to_bytes();
    bytes[39] = 1; // another seed unmasks another ephemeral key
    assert!(wire::open_client_init(&ServerKey::from_bytes(&bytes), fixed).is_none());
    let mut bytes = server_key().to_bytes();
    bytes[0] ^= 0x40; // another secret
    assert!(wire::open_client_init(&ServerKey::from_bytes(&bytes), fixed).is_none());
}

#[test]
fn server_init_vector_is_reproduced_and_parsed_back() {
    let header = ServerInitHeader {
        status: 0,
        user_id: USER_ID,
        tail_len: TAIL_LEN,
    };
    let mut out = Vec::new();
    wire::server_init(&zero_key_sealer(), &header, &mut Zeros, &mut out);
    assert_eq!(out, hex(SERVER_INIT));
    assert_eq!(out.len(), 62);
    let fixed: &[u8; SERVER_INIT_HEADER_LEN] = out[..SERVER_INIT_HEADER_LEN].try_into().unwrap();
    assert_eq!(
        wire::open_server_init(&zero_key_sealer(), fixed),
        Some(header)
    );
}

#[test]
fn data_vector_is_reproduced_and_parsed_back() {
    let mut out = Vec::new();
    wire::data(
        &zero_key_sealer(),
        &hex(DATA),
        TAIL_LEN,
        &mut Zeros,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, hex(DATA_MESSAGE));
    assert_eq!(out.len(), 134);
    let fixed: &[u8; MESSAGE_HEADER_LEN] = out[..MESSAGE_HEADER_LEN].try_into().unwrap();
    let header = wire::open_message_header(&zero_key_sealer(), fixed).unwrap();
    assert_eq!(
        (header.flags, header.data_len, header.tail_len),
        (FLAG_DATA, 73, TAIL_LEN)
    );
    let end = MESSAGE_HEADER_LEN + usize::from(header.data_len);
    let mut body = out[MESSAGE_HEADER_LEN..end].to_vec();
    assert_eq!(
        wire::open_body(&zero_key_sealer(), &mut body).unwrap(),
        &hex(DATA)[..]
    );
    assert_eq!(out.len() - end, usize::from(TAIL_LEN));
}

#[test]
fn term_vector_is_reproduced_and_parsed_back() {
    let mut out = Vec::new();
    wire::term(&zero_key_sealer(), TAIL_LEN, &mut Zeros, &mut out);
    assert_eq!(out, hex(TERM_MESSAGE));
    assert_eq!(out.len(), 61);
    let fixed: &[u8; MESSAGE_HEADER_LEN] = out[..MESSAGE_HEADER_LEN].try_into().unwrap();
    let header = wire::open_message_header(&zero_key_sealer(), fixed).unwrap();
    assert_eq!(
        (header.flags, header.data_len, header.tail_len),
        (FLAG_TERM, 0, TAIL_LEN)
    );
}

#[test]
fn aead_vector_is_reproduced_and_opened() {
    let plain = b"Sample data for encryption";
    let ad = b"Sample additional data for encryption";
    let mut out = Vec::new();
    zero_key_sealer().seal(&mut Zeros, plain, ad, &mut out);
    assert_eq!(out, hex(AEAD_VECTOR));
    assert_eq!(out.len(), plain.len() + OVERHEAD);
    assert_eq!(zero_key_sealer().open(&mut out.clone(), ad).unwrap(), plain);
    // The AD is authenticated: without it the piece does not open.
    assert!(zero_key_sealer().open(&mut out, b"").is_none());
}

#[test]
fn every_single_bit_flip_of_the_message_vectors_is_refused() {
    let sealer = zero_key_sealer();
    let message = hex(DATA_MESSAGE);
    for bit in 0..(MESSAGE_HEADER_LEN * 8) {
        let mut wire: [u8; MESSAGE_HEADER_LEN] = message[..MESSAGE_HEADER_LEN].try_into().unwrap();
        wire[bit / 8] ^= 1 << (bit % 8);
        assert!(
            wire::open_message_header(&sealer, &wire).is_err(),
            "bit {bit}"
        );
    }
    let server = hex(SERVER_INIT);
    for bit in 0..(SERVER_INIT_HEADER_LEN * 8) {
        let mut wire: [u8; SERVER_INIT_HEADER_LEN] =
            server[..SERVER_INIT_HEADER_LEN].try_into().unwrap();
        wire[bit / 8] ^= 1 << (bit % 8);
        assert!(
            wire::open_server_init(&sealer, &wire).is_none(),
            "bit {bit}"
        );
    }
}

#[test]
fn oversized_payloads_are_refused_never_truncated() {
    let mut out = Vec::new();
    let max = wire::MAX_PAYLOAD;
    assert_eq!(max, 65_495);
    assert!(
        wire::data(
            &zero_key_sealer(),
            &vec![0; max + 1],
            0,
            &mut Zeros,
            &mut out
        )
        .is_none()
    );
    assert!(out.is_empty());
    wire::data(&zero_key_sealer(), &vec![0; max], 0, &mut Zeros, &mut out).unwrap();
    assert_eq!(out.len(), MESSAGE_HEADER_LEN + max + OVERHEAD);
    let too_long_token = vec![0u8; wire::MAX_TOKEN_LEN + 1];
    let ephemeral = StaticSecret::from(arr::<32>(PRIVATE));
    let key = server_key().client_key();
    assert!(wire::client_init(&key, &ephemeral, 0, &too_long_token, 0, &mut Zeros).is_none());
}

/// A client INIT built by hand around the ephemeral public key `e_pub` and the shared secret
/// `shared` a client would compute with it (N = 0, the vector key's seed of zeros).
fn hand_made_init(
    key: &ServerKey,
    e_pub: &[u8; 32],
    shared: &[u8; 32],
) -> [u8; CLIENT_INIT_HEADER_LEN] {
    use blake2::digest::Digest;
    let mask: [u8; 32] = blake2::Blake2b::<blake2::digest::consts::U32>::new()
        .chain_update([0u8, 0])
        .chain_update(key.seed())
        .finalize()
        .into();
    let session_key: [u8; 32] = blake2::Blake2b::<blake2::digest::consts::U32>::new()
        .chain_update(shared)
        .chain_update(e_pub)
        .chain_update(key.public())
        .finalize()
        .into();
    let mut wire = vec![0u8, 0];
    wire.extend(e_pub.iter().zip(mask).map(|(e, m)| e ^ m));
    let header = [wire::FLAG_INIT, 0, 0, 0, 40, 0, 0];
    Sealer::new(&session_key).seal(&mut Zeros, &header, e_pub, &mut wire);
    wire.try_into().unwrap()
}

#[test]
fn low_order_ephemeral_keys_are_refused_by_the_listener() {
    let key = server_key();
    // Control: a real ephemeral key with its real shared secret opens.
    let e = StaticSecret::from([5u8; 32]);
    let e_pub = x25519_dalek::PublicKey::from(&e).to_bytes();
    let shared = e.diffie_hellman(&x25519_dalek::PublicKey::from(*key.public()));
    assert!(
        wire::open_client_init(&key, &hand_made_init(&key, &e_pub, shared.as_bytes())).is_some()
    );
    // u = 0 and u = 1 are small-order points: X25519 with them is all zeros for every secret,
    // so anyone could seal a valid header under the resulting key. The listener refuses them.
    let mut one = [0u8; 32];
    one[0] = 1;
    for low in [[0u8; 32], one] {
        let wire = hand_made_init(&key, &low, &[0u8; 32]);
        assert!(wire::open_client_init(&key, &wire).is_none(), "{low:02x?}");
    }
}

#[test]
fn a_low_order_listener_key_is_refused_by_the_client_setup() {
    let weak = ClientKey::from_bytes(&[0u8; KEY_BYTES]);
    let refused = port_core::seaside::ClientConfig::new(port_core::Config::default(), weak, "t");
    assert_eq!(refused.unwrap_err(), port_core::Error::WeakServerKey);
}
