//! The fully-encrypted-traffic rule a passive censor applies to a connection's first client
//! data packet, as Wu et al. measured it on the Great Firewall of China ("How the Great Firewall
//! of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023). A packet is
//! exempt, and the connection let through, if any of five exemptions holds; a packet that meets
//! none is treated as fully encrypted, and then blocked with some probability.
//!
//! - Ex1: the mean number of set bits per byte is at most 3.4 or at least 4.6;
//! - Ex2: the first six bytes are printable ASCII (0x20–0x7e);
//! - Ex3: more than half of the bytes are printable;
//! - Ex4: more than 20 contiguous bytes are printable;
//! - Ex5: the first bytes match a common protocol (a TLS record header, an HTTP method and a
//!   space).
//!
//! Uniformly random bytes (what PORT/1's first flight looks like by default) average 4 set bits
//! per byte and are printable less than 40 % of the time, so they meet none.

/// The printable range of Ex2–Ex4.
fn printable(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// The mean number of set bits per byte of `packet` (0 for an empty one).
pub fn bits_per_byte(packet: &[u8]) -> f64 {
    if packet.is_empty() {
        return 0.0;
    }
    let bits: u64 = packet.iter().map(|b| u64::from(b.count_ones())).sum();
    bits as f64 / packet.len() as f64
}

/// The methods an HTTP request line starts with (Ex5).
const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"CONNECT ",
    b"OPTIONS ",
    b"TRACE ",
    b"PATCH ",
];

/// True if `packet` starts like a known protocol (Ex5): a TLS record header (content type 20–23,
/// version 3.0–3.4) or an HTTP method and a space.
fn known_protocol(packet: &[u8]) -> bool {
    let tls = matches!(packet, [0x14..=0x17, 0x03, 0x00..=0x04, ..]);
    tls || HTTP_METHODS.iter().any(|m| packet.starts_with(m))
}

/// The exemptions a first packet meets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// Ex1: set bits per byte at most 3.4 or at least 4.6.
    pub popcount: bool,
    /// Ex2: the first six bytes printable.
    pub printable_start: bool,
    /// Ex3: more than half of the bytes printable.
    pub mostly_printable: bool,
    /// Ex4: more than 20 contiguous printable bytes.
    pub printable_run: bool,
    /// Ex5: a known protocol's first bytes.
    pub known_protocol: bool,
}

impl Exemptions {
    /// The exemptions `packet` meets. An empty packet is nothing to judge and meets all.
    pub fn of(packet: &[u8]) -> Exemptions {
        if packet.is_empty() {
            return Exemptions {
                popcount: true,
                printable_start: true,
                mostly_printable: true,
                printable_run: true,
                known_protocol: true,
            };
        }
        let bits = bits_per_byte(packet);
        let printables = packet.iter().filter(|&&b| printable(b)).count();
        let longest_run = packet
            .split(|&b| !printable(b))
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        Exemptions {
            popcount: bits <= 3.4 || bits >= 4.6,
            printable_start: packet.len() >= 6 && packet[..6].iter().all(|&b| printable(b)),
            mostly_printable: printables * 2 > packet.len(),
            printable_run: longest_run > 20,
            known_protocol: known_protocol(packet),
        }
    }

    /// True if any exemption holds: the packet is let through.
    pub fn any(&self) -> bool {
        self.popcount
            || self.printable_start
            || self.mostly_printable
            || self.printable_run
            || self.known_protocol
    }
}

/// True if the rule treats `packet`, a connection's first client data packet, as fully
/// encrypted: no exemption holds.
pub fn flagged(packet: &[u8]) -> bool {
    !Exemptions::of(packet).any()
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    use super::*;

    fn random(seed: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
        bytes
    }

    /// The start of a real TLS 1.3 ClientHello: a handshake record header, then random and
    /// structured bytes.
    fn client_hello() -> Vec<u8> {
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        hello.extend(random(7, 500));
        hello
    }

    #[test]
    fn random_bytes_are_flagged() {
        let flagged_share = (0..1000u64)
            .filter(|&seed| flagged(&random(seed, 300 + (seed as usize % 700))))
            .count();
        // Random bytes almost never meet an exemption by chance (a printable start, for one,
        // comes once in about 18 000 packets).
        assert!(flagged_share >= 995, "{flagged_share} of 1000");
        let bits = bits_per_byte(&random(1, 100_000));
        assert!((3.98..=4.02).contains(&bits), "{bits}");
    }

    #[test]
    fn known_protocols_and_printable_text_are_exempt() {
        let tls = Exemptions::of(&client_hello());
        assert!(tls.known_protocol && tls.any(), "{tls:?}");
        let http = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n";
        let e = Exemptions::of(http);
        assert!(e.known_protocol && e.printable_start && e.mostly_printable && e.printable_run);
        let mut prefixed = b"Hello!".to_vec();
        prefixed.extend(random(3, 600));
        let e = Exemptions::of(&prefixed);
        assert!(
            e.printable_start && !e.known_protocol && !e.mostly_printable,
            "{e:?}"
        );
        assert!(!flagged(&prefixed));
    }

    #[test]
    fn each_exemption_on_its_own() {
        // Ex1: zeros pull the mean down, 0xff bytes push it up.
        let mut low = random(4, 400);
        low.extend(vec![0u8; 120]);
        assert!(Exemptions::of(&low).popcount, "{}", bits_per_byte(&low));
        let mut high = random(5, 400);
        high.extend(vec![0xffu8; 120]);
        assert!(Exemptions::of(&high).popcount, "{}", bits_per_byte(&high));
        assert!(!Exemptions::of(&random(6, 400)).popcount);
        // Ex3 without Ex2 or Ex4: printable bytes, never more than 20 in a row, not first.
        let mostly: Vec<u8> = (0..400)
            .map(|i| if i % 10 == 0 { 0x01 } else { b'a' })
            .collect();
        let e = Exemptions::of(&mostly);
        assert!(
            e.mostly_printable && !e.printable_start && !e.printable_run,
            "{e:?}"
        );
        // Ex4 without Ex3: one run of 21 printable bytes in random ones.
        let mut run = vec![0x00u8];
        run.extend(random(8, 300).into_iter().map(|b| b | 0x80));
        run.splice(100..100, std::iter::repeat_n(b'x', 21));
        let e = Exemptions::of(&run);
        assert!(e.printable_run && !e.mostly_printable, "{e:?}");
        run[110] = 0x80;
        assert!(!Exemptions::of(&run).printable_run);
        // Ex5: each TLS content type of a record header, not a version outside 3.0–3.4.
        for kind in 0x14..=0x17u8 {
            assert!(known_protocol(&[kind, 3, 3, 0, 5]), "{kind:#x}");
        }
        assert!(!known_protocol(&[0x16, 3, 9]));
        assert!(!known_protocol(b"GETX"));
    }
}
