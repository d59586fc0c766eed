//! X25519 with the peer's point decoded once, computed through curve25519-dalek's Edwards
//! arithmetic where that is faster than x25519-dalek's Montgomery ladder.
//!
//! X25519(k, u) is the u-coordinate of clamp(k)·P for a point P with that u-coordinate. The
//! ladder works on u alone with portable 64-bit field arithmetic; curve25519-dalek's
//! variable-base Edwards multiplication uses its AVX2 backend when the CPU has one (detected at
//! run time), and a multiplication by a fixed point can use a precomputed table. Both routes
//! are constant-time in the secret scalar. A u-coordinate with no point on the curve (it lies on
//! the twist) or u = −1 has no Edwards form; those take the ladder, so every 32-byte input gives
//! exactly X25519's answer (the tests check the two routes against each other).

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::traits::BasepointTable;
use x25519_dalek::StaticSecret;

/// A peer's X25519 public key, decoded for repeated multiplication.
#[derive(Clone, Copy)]
pub(crate) struct PeerPoint {
    u: MontgomeryPoint,
    edwards: Option<EdwardsPoint>,
}

/// Refuses non-contributory results (a low-order peer point), so that an attacker cannot force
/// a known shared secret.
fn contributory(shared: MontgomeryPoint) -> Option<[u8; 32]> {
    let bytes = shared.to_bytes();
    (bytes != [0u8; 32]).then_some(bytes)
}

/// A product before its conversion to a u-coordinate: the Edwards route leaves one field
/// inversion to do, which can be shared with another product's.
enum Product {
    Edwards(EdwardsPoint),
    Montgomery(MontgomeryPoint),
}

impl Product {
    fn shared(self) -> Option<[u8; 32]> {
        contributory(match self {
            Product::Edwards(point) => point.to_montgomery(),
            Product::Montgomery(u) => u,
        })
    }

    /// The public key of `secret` and this product of it, with one inversion for both where
    /// the product is in Edwards form: a handshake side needs its ephemeral public key and a
    /// shared secret of the same scalar at the same moment, and each inversion costs about a
    /// tenth of a multiplication.
    fn with_public(self, secret: &StaticSecret) -> ([u8; 32], Option<[u8; 32]>) {
        let public = EdwardsPoint::mul_base_clamped(secret.to_bytes());
        match self {
            Product::Edwards(shared) => {
                // Batch inversion skips a zero denominator (the identity, from a low-order
                // peer), so the public key comes out right in every case.
                let both = EdwardsPoint::to_montgomery_batch(&[public, shared]);
                (both[0].to_bytes(), contributory(both[1]))
            }
            Product::Montgomery(u) => (public.to_montgomery().to_bytes(), contributory(u)),
        }
    }
}

impl PeerPoint {
    /// Decodes `u` (any 32 bytes).
    pub(crate) fn new(u: &[u8; 32]) -> PeerPoint {
        let u = MontgomeryPoint(*u);
        // The sign is irrelevant: ±P have the same u-coordinate, and so do their multiples.
        PeerPoint {
            u,
            edwards: u.to_edwards(0),
        }
    }

    fn product(&self, secret: &StaticSecret) -> Product {
        let k = secret.to_bytes();
        match &self.edwards {
            Some(point) => Product::Edwards(point.mul_clamped(k)),
            None => Product::Montgomery(self.u.mul_clamped(k)),
        }
    }

    /// X25519 of `secret` and this point; `None` when the result is all zeros.
    pub(crate) fn dh(&self, secret: &StaticSecret) -> Option<[u8; 32]> {
        self.product(secret).shared()
    }

    /// `secret`'s public key, and X25519 of `secret` and this point (`None` when all zeros).
    pub(crate) fn public_and_dh(&self, secret: &StaticSecret) -> ([u8; 32], Option<[u8; 32]>) {
        self.product(secret).with_public(secret)
    }

    /// True when every clamped scalar gives the all-zero result: the point is of low order.
    pub(crate) fn is_low_order(&self) -> bool {
        // Every clamped scalar is a multiple of the cofactor, so one probe with any scalar
        // tells whether the point is of low order.
        self.dh(&StaticSecret::from([1u8; 32])).is_none()
    }
}

/// The server's static public key as a client uses it for every connection: decoded once and,
/// from the second handshake on, with a precomputed multiplication table (about 30 KiB, built
/// in about as much time as 20 plain multiplications, so a client that connects only once never
/// pays for it).
pub(crate) struct ServerPoint {
    point: PeerPoint,
    used: AtomicBool,
    table: OnceLock<Option<Box<EdwardsBasepointTable>>>,
}

impl ServerPoint {
    /// Decodes the server's public key.
    pub(crate) fn new(u: &[u8; 32]) -> ServerPoint {
        ServerPoint {
            point: PeerPoint::new(u),
            used: AtomicBool::new(false),
            table: OnceLock::new(),
        }
    }

    /// The decoded point.
    pub(crate) fn point(&self) -> &PeerPoint {
        &self.point
    }

    fn product(&self, secret: &StaticSecret) -> Product {
        if !self.used.swap(true, Ordering::Relaxed) {
            return self.point.product(secret);
        }
        let table = self.table.get_or_init(|| {
            self.point
                .edwards
                .map(|point| Box::new(EdwardsBasepointTable::create(&point)))
        });
        match table {
            Some(table) => Product::Edwards(table.mul_base_clamped(secret.to_bytes())),
            None => self.point.product(secret),
        }
    }

    /// `secret`'s public key, and X25519 of `secret` and the server key (`None` when all zeros).
    pub(crate) fn public_and_dh(&self, secret: &StaticSecret) -> ([u8; 32], Option<[u8; 32]>) {
        self.product(secret).with_public(secret)
    }
}

impl fmt::Debug for ServerPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerPoint")
            .field("table", &self.table.get().is_some_and(Option::is_some))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use x25519_dalek::PublicKey;

    /// x25519-dalek's own answer, with the same low-order rule.
    fn reference(secret: &[u8; 32], u: &[u8; 32]) -> Option<[u8; 32]> {
        let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*u));
        shared.was_contributory().then(|| shared.to_bytes())
    }

    /// The u-coordinates of the points of order 1, 2, 4 and 8 (RFC 7748 and the usual
    /// blocklist), and the same values plus p, which decode to the same field elements.
    const LOW_ORDER: [[u8; 32]; 7] = {
        let mut v = [[0u8; 32]; 7];
        v[1][0] = 1;
        v[2] = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        v[3] = [
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83,
            0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd,
            0xd0, 0x9f, 0x11, 0x57,
        ];
        // p - 1, p, p + 1
        let mut i = 4;
        while i < 7 {
            let mut x = [0xffu8; 32];
            x[31] = 0x7f;
            x[0] = 0xec + (i as u8 - 4);
            v[i] = x;
            i += 1;
        }
        v
    };

    #[test]
    fn low_order_points_are_refused_like_x25519() {
        let secret = StaticSecret::from([9u8; 32]);
        for u in LOW_ORDER {
            let point = PeerPoint::new(&u);
            assert_eq!(point.dh(&secret), reference(&[9u8; 32], &u), "{u:02x?}");
            let server = ServerPoint::new(&u);
            assert_eq!(server.public_and_dh(&secret).1, reference(&[9u8; 32], &u));
            assert_eq!(server.public_and_dh(&secret).1, reference(&[9u8; 32], &u));
        }
        assert!(PeerPoint::new(&[0u8; 32]).is_low_order());
        assert!(PeerPoint::new(&LOW_ORDER[2]).is_low_order());
        let good = PublicKey::from(&StaticSecret::from([3u8; 32])).to_bytes();
        assert!(!PeerPoint::new(&good).is_low_order());
    }

    #[test]
    fn both_routes_are_taken() {
        let on_curve = PublicKey::from(&StaticSecret::from([3u8; 32])).to_bytes();
        assert!(PeerPoint::new(&on_curve).edwards.is_some());
        // u = 2 is not on the curve: its point lies on the twist.
        let mut twist = [0u8; 32];
        twist[0] = 2;
        assert!(PeerPoint::new(&twist).edwards.is_none());
        let secret = [5u8; 32];
        assert_eq!(
            PeerPoint::new(&twist).dh(&StaticSecret::from(secret)),
            reference(&secret, &twist)
        );
    }

    #[test]
    fn the_table_route_matches_from_the_second_use() {
        let u = PublicKey::from(&StaticSecret::from([0x21u8; 32])).to_bytes();
        let server = ServerPoint::new(&u);
        for i in 0..4u8 {
            let secret = [i.wrapping_mul(37).wrapping_add(1); 32];
            assert_eq!(
                server.public_and_dh(&StaticSecret::from(secret)).1,
                reference(&secret, &u)
            );
        }
        assert!(format!("{server:?}").contains("table: true"));
    }

    /// What `public_and_dh` must give: x25519-dalek's public key and its shared secret.
    fn reference_pair(secret: &[u8; 32], u: &[u8; 32]) -> ([u8; 32], Option<[u8; 32]>) {
        let public = PublicKey::from(&StaticSecret::from(*secret)).to_bytes();
        (public, reference(secret, u))
    }

    #[test]
    fn public_and_dh_shares_an_inversion_without_changing_either_answer() {
        let secret = [0x5au8; 32];
        // A curve point, a twist point (the ladder route) and every low-order point (the
        // product is the identity: a zero denominator in the batch).
        let mut twist = [0u8; 32];
        twist[0] = 2;
        let on_curve = PublicKey::from(&StaticSecret::from([3u8; 32])).to_bytes();
        for u in LOW_ORDER.iter().chain([&on_curve, &twist]) {
            let want = reference_pair(&secret, u);
            assert_eq!(
                PeerPoint::new(u).public_and_dh(&StaticSecret::from(secret)),
                want
            );
            let server = ServerPoint::new(u);
            for _ in 0..2 {
                assert_eq!(server.public_and_dh(&StaticSecret::from(secret)), want);
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_give_x25519s_answer(secret: [u8; 32], u: [u8; 32]) {
            prop_assert_eq!(PeerPoint::new(&u).dh(&StaticSecret::from(secret)), reference(&secret, &u));
            prop_assert_eq!(PeerPoint::new(&u).public_and_dh(&StaticSecret::from(secret)), reference_pair(&secret, &u));
        }

        #[test]
        fn any_curve_point_gives_x25519s_answer(secret: [u8; 32], other: [u8; 32]) {
            let u = PublicKey::from(&StaticSecret::from(other)).to_bytes();
            let server = ServerPoint::new(&u);
            let want = reference(&secret, &u);
            prop_assert_eq!(PeerPoint::new(&u).dh(&StaticSecret::from(secret)), want);
            prop_assert_eq!(server.public_and_dh(&StaticSecret::from(secret)).1, want);
            prop_assert_eq!(server.public_and_dh(&StaticSecret::from(secret)).1, want);
            prop_assert_eq!(server.public_and_dh(&StaticSecret::from(secret)), reference_pair(&secret, &u));
        }
    }
}
