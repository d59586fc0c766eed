//! The inverse of `arbitrary`'s decoding, for the types the targets decode: the corpus
//! generator builds structured inputs as values and writes the bytes from which the targets
//! decode exactly those values (the generator checks the round trip of every file it writes).
//!
//! The layout is the one of `arbitrary` 1.x: integers little-endian, `bool` one byte (odd is
//! true), enum variant `i` of `n` as a `u32` `v` with `(v * n) >> 32 == i`, `Option` a `bool`
//! then the value, arrays element by element, a `Vec` each element after a `true` byte then a
//! `false` byte.

/// Bytes in `arbitrary`'s layout.
#[derive(Default)]
pub struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// An `i16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// The variant tag of variant `index` of an enum with `count` variants.
    pub fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        assert!(index < count);
        let v = (u64::from(index) << 32).div_ceil(u64::from(count));
        let v = u32::try_from(v).expect("variant tag fits in u32");
        debug_assert_eq!((u64::from(v) * u64::from(count)) >> 32, u64::from(index));
        self.u32(v)
    }

    /// Raw bytes (a `[u8; N]` array, or the rest of an input).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// A `Vec<u8>`.
    pub fn byte_vec(&mut self, bytes: &[u8]) -> &mut Self {
        self.vec(bytes, |e, &b| {
            e.u8(b);
        })
    }

    /// A `Vec<T>` whose elements `each` encodes.
    pub fn vec<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) -> &mut Self {
        for item in items {
            self.bool(true);
            each(self, item);
        }
        self.bool(false)
    }

    /// An `Option<T>` whose value `each` encodes.
    pub fn option<T>(&mut self, v: Option<&T>, each: impl FnOnce(&mut Self, &T)) -> &mut Self {
        self.bool(v.is_some());
        if let Some(v) = v {
            each(self, v);
        }
        self
    }
}
