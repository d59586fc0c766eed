//! The client's first flight under a [`Shape`]: `prefix ‖ INIT`, the INIT re-encoded with
//! a popcount alphabet when the shape asks for it, and the server's reader that undoes it.
//!
//! The popcount encoding takes the INIT 3 bytes at a time, splits their 24 bits (most
//! significant first) into four 6-bit symbols and writes, for each, the byte of that rank in
//! the server's 64-value alphabet. The last group is completed with zero bytes, which the
//! server checks. The alphabet is the 64 byte values with the fewest set bits (or the most),
//! the ties among the values with 3 (or 5) set bits broken by a hash of the key's seed, and
//! ranked by the same hash: each server's alphabet is its own, and known only to holders of
//! its key. `docs/PROTOCOL.md` §18 gives the derivation byte by byte.

use std::sync::Arc;

use bytes::Bytes;

use crate::shape::{Popcount, Shape};

/// The context of the BLAKE3 key derivation that orders a server's alphabet.
const ALPHABET_CONTEXT: &str = "PORT/1 2026-12-07 popcount alphabet";

/// Marks a byte value that is not a symbol in [`Alphabet::ranks`].
const NOT_A_SYMBOL: u8 = 0xff;

/// A server's 64 symbols and, for decoding, each byte value's rank.
pub(crate) struct Alphabet {
    symbols: [u8; 64],
    ranks: [u8; 256],
}

impl Alphabet {
    /// The alphabet of the server with obfuscation `seed`, on the `popcount` side.
    pub(crate) fn new(seed: &[u8; 32], popcount: Popcount) -> Alphabet {
        let mut hasher = blake3::Hasher::new_derive_key(ALPHABET_CONTEXT);
        hasher.update(seed);
        let mut stream = [0u8; 256 * 8];
        hasher.finalize_xof().fill(&mut stream);
        let order = |value: u8| {
            let at = usize::from(value) * 8;
            u64::from_be_bytes(stream[at..at + 8].try_into().expect("8 bytes"))
        };
        let mut values: Vec<u8> = (0..=255).collect();
        values.sort_by_key(|&v| {
            let ones = v.count_ones();
            let side = match popcount {
                Popcount::Low => ones,
                Popcount::High => 8 - ones,
            };
            (side, order(v))
        });
        values.truncate(64);
        values.sort_by_key(|&v| order(v));
        let mut symbols = [0u8; 64];
        symbols.copy_from_slice(&values);
        let mut ranks = [NOT_A_SYMBOL; 256];
        for (rank, &value) in symbols.iter().enumerate() {
            ranks[usize::from(value)] = rank as u8;
        }
        Alphabet { symbols, ranks }
    }

    /// The symbols, by rank.
    #[cfg(test)]
    pub(crate) fn symbols(&self) -> &[u8; 64] {
        &self.symbols
    }

    /// Appends the encoding of `bytes` to `out`: 4 symbols per 3 bytes, the last group
    /// completed with zeros.
    pub(crate) fn encode(&self, bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
            for shift in [18, 12, 6, 0] {
                out.push(self.symbols[(bits >> shift) as usize & 0x3f]);
            }
        }
    }

    /// The 3 bytes 4 symbols stand for; `None` if one of them is not a symbol.
    fn decode(&self, group: [u8; 4]) -> Option<[u8; 3]> {
        let mut bits = 0u32;
        for symbol in group {
            let rank = self.ranks[usize::from(symbol)];
            if rank == NOT_A_SYMBOL {
                return None;
            }
            bits = bits << 6 | u32::from(rank);
        }
        let [_, a, b, c] = bits.to_be_bytes();
        Some([a, b, c])
    }
}

/// A shape's first flight, ready for one server's key: built once per configuration and
/// shared by its connections.
pub(crate) struct FirstFlight {
    prefix: Bytes,
    alphabet: Option<Alphabet>,
}

impl FirstFlight {
    /// The first flight of `shape` under the key with `seed`; `None` when the shape leaves
    /// the first flight as PORT/1 sends it.
    pub(crate) fn new(shape: &Shape, seed: &[u8; 32]) -> Option<Arc<FirstFlight>> {
        // Only these two touch the first flight.
        if shape.prefix().is_empty() && shape.popcount().is_none() {
            return None;
        }
        Some(Arc::new(FirstFlight {
            prefix: shape.prefix().clone(),
            alphabet: shape.popcount().map(|side| Alphabet::new(seed, side)),
        }))
    }

    /// How many bytes of the first flight carry the INIT's first `n` bytes.
    pub(crate) fn wire_len_of(&self, n: usize) -> usize {
        let encoded = match self.alphabet {
            Some(_) => n.div_ceil(3) * 4,
            None => n,
        };
        self.prefix.len() + encoded
    }

    /// What the client sends for the INIT `init`.
    pub(crate) fn wrap(&self, init: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + init.len().div_ceil(3) * 4);
        out.extend_from_slice(&self.prefix);
        match &self.alphabet {
            Some(alphabet) => alphabet.encode(init, &mut out),
            None => out.extend_from_slice(init),
        }
        out
    }
}

impl std::fmt::Debug for FirstFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstFlight")
            .field("prefix_len", &self.prefix.len())
            .field("popcount", &self.alphabet.is_some())
            .finish()
    }
}

/// What the next bytes of a shaped first flight gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unshaped {
    /// All the input was taken; more is needed.
    Pending,
    /// The prefix matched and the INIT follows unencoded: the rest of the input is raw.
    Raw,
    /// Three INIT bytes (the last group's may end with padding zeros).
    Group([u8; 3]),
    /// Not this server's first flight.
    Garbage,
}

/// The server's reader of a shaped first flight: checks the prefix, then decodes symbols.
pub(crate) struct FlightReader {
    flight: Arc<FirstFlight>,
    matched: usize,
    group: [u8; 4],
    filled: usize,
}

impl FlightReader {
    /// A reader of `flight`, at its first byte.
    pub(crate) fn new(flight: Arc<FirstFlight>) -> FlightReader {
        FlightReader {
            flight,
            matched: 0,
            group: [0; 4],
            filled: 0,
        }
    }

    /// Takes bytes from the front of `data` until it has something to say.
    pub(crate) fn next(&mut self, data: &mut &[u8]) -> Unshaped {
        let prefix = &self.flight.prefix[self.matched..];
        if !prefix.is_empty() {
            let n = prefix.len().min(data.len());
            if data[..n] != prefix[..n] {
                return Unshaped::Garbage;
            }
            self.matched += n;
            *data = &data[n..];
            if n < prefix.len() {
                return Unshaped::Pending;
            }
        }
        let Some(alphabet) = &self.flight.alphabet else {
            return Unshaped::Raw;
        };
        let n = (4 - self.filled).min(data.len());
        self.group[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        *data = &data[n..];
        if self.filled < 4 {
            return Unshaped::Pending;
        }
        self.filled = 0;
        match alphabet.decode(self.group) {
            Some(bytes) => Unshaped::Group(bytes),
            None => Unshaped::Garbage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(prefix: &[u8], popcount: Option<Popcount>) -> Shape {
        Shape::none()
            .with_prefix(prefix.to_vec())
            .unwrap()
            .with_popcount(popcount)
    }

    /// Reads `wire` in chunks of `chunk` bytes; the decoded bytes, or `None` on garbage.
    fn read_all(flight: &Arc<FirstFlight>, wire: &[u8], chunk: usize) -> Option<Vec<u8>> {
        let mut reader = FlightReader::new(flight.clone());
        let mut out = Vec::new();
        for mut piece in wire.chunks(chunk) {
            while !piece.is_empty() {
                match reader.next(&mut piece) {
                    Unshaped::Pending => {}
                    Unshaped::Raw => {
                        out.extend_from_slice(piece);
                        piece = &[];
                    }
                    Unshaped::Group(bytes) => out.extend_from_slice(&bytes),
                    Unshaped::Garbage => return None,
                }
            }
        }
        Some(out)
    }

    #[test]
    fn alphabets_sit_outside_the_flagged_band_and_differ_per_seed() {
        for (side, mean) in [
            (Popcount::Low, 145.0 / 64.0),
            (Popcount::High, 367.0 / 64.0),
        ] {
            let a = Alphabet::new(&[1; 32], side);
            let ones: u32 = a.symbols().iter().map(|s| s.count_ones()).sum();
            assert_eq!(f64::from(ones) / 64.0, mean);
            let mut sorted = a.symbols().to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 64, "64 distinct symbols");
            assert_ne!(a.symbols(), Alphabet::new(&[2; 32], side).symbols());
        }
    }

    #[test]
    fn encoding_round_trips_in_any_chunking() {
        let init: Vec<u8> = (0..=255u8).cycle().take(301).collect();
        let flight =
            FirstFlight::new(&shape(b"GET / HTTP/1.1\r\n", Some(Popcount::Low)), &[7; 32]).unwrap();
        let wire = flight.wrap(&init);
        assert_eq!(wire.len(), 16 + 101 * 4);
        for chunk in [1, 3, 5, 64, wire.len()] {
            let got = read_all(&flight, &wire, chunk).unwrap();
            assert_eq!(&got[..301], &init[..], "chunk {chunk}");
            assert_eq!(
                &got[301..],
                &[0, 0],
                "the last group is completed with zeros"
            );
        }
    }

    #[test]
    fn a_prefix_alone_leaves_the_init_raw() {
        let flight = FirstFlight::new(&shape(&[0x16, 0x03, 0x01], None), &[7; 32]).unwrap();
        assert_eq!(flight.wrap(b"init"), b"\x16\x03\x01init");
        assert_eq!(read_all(&flight, b"\x16\x03\x01init", 2).unwrap(), b"init");
        assert!(FirstFlight::new(&Shape::none(), &[7; 32]).is_none());
    }

    #[test]
    fn wrong_prefixes_and_foreign_symbols_are_garbage() {
        let flight = FirstFlight::new(&shape(b"GET /", Some(Popcount::High)), &[7; 32]).unwrap();
        assert_eq!(read_all(&flight, b"GET !xxxx", 3), None);
        let wire = flight.wrap(&[0xab; 9]);
        let mut foreign = wire.clone();
        // A value with few set bits is never in a high alphabet.
        foreign[7] = 0x01;
        assert_eq!(read_all(&flight, &foreign, 4), None);
        // Another server's alphabet does not decode to the same bytes, if at all.
        let other = FirstFlight::new(&shape(b"GET /", Some(Popcount::High)), &[8; 32]).unwrap();
        assert_ne!(read_all(&other, &wire, 4), Some([0xab; 9].to_vec()));
    }
}
