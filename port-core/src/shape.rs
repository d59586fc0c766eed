//! What a server's connections look like on the wire beyond PORT/1's defaults: a [`Shape`],
//! chosen by the server's operator and carried in both key lines, so that a client learns it
//! from what it is given and never from anything on the wire.
//!
//! - A **prefix**: bytes the client sends before its INIT, imitating the first bytes of a
//!   protocol a censor lets through (an HTTP request line, a TLS record header).
//! - **Popcount** shaping: the client INIT is re-encoded 3 bytes to 4, each output byte taken
//!   from the 64 byte values with the fewest (or the most) set bits, so that the first packet
//!   averages far below 3.4 (or above 4.6) set bits per byte, out of the band a censor flags.
//! - **Length** shaping: every frame's size on the wire is drawn from a distribution of the
//!   connection's own, whatever the messages in it.
//!
//! The default shape is none of these: the bytes of PORT/1 as they always were. The text form
//! follows a key's payload after a `?`: `prefix=<base64url>&popcount=low&lengths=shaped`
//! (`docs/PROTOCOL.md` §18 gives every byte).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

/// The longest prefix a shape may have, in bytes.
pub const MAX_PREFIX_LEN: usize = 255;

/// An HTTP/1.1 request head: a method and a space first, printable throughout.
pub const HTTP_PREFIX: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/octet-stream\r\n\r\n";

/// The first bytes of a TLS 1.2/1.3 ClientHello: a handshake record header (`16 03 01`, length
/// 512) and the handshake header (ClientHello, length 508, version `03 03`).
pub const TLS_PREFIX: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// The prefixes the text form names as `prefix=@name`.
pub const NAMED_PREFIXES: [(&str, &[u8]); 2] = [("http", HTTP_PREFIX), ("tls", TLS_PREFIX)];

/// Which side of the flagged band popcount shaping moves the client INIT to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Popcount {
    /// About 2.3 set bits per byte (the 64 byte values with the fewest set bits).
    Low,
    /// About 5.7 set bits per byte (the 64 byte values with the most set bits).
    High,
}

/// How the sizes of a connection's frames are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lengths {
    /// A frame is its payload and a random padding ([`Config::padding`](crate::Config::padding)):
    /// its size follows the message's.
    #[default]
    Padded,
    /// A frame's whole size is drawn from a distribution of the connection's own (drawn from
    /// its seed), independent of the messages: a message is split across frames and padded
    /// into them.
    Shaped,
}

/// A server's shape (see the [module documentation](self)). The default is PORT/1 unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Shape {
    prefix: Bytes,
    popcount: Option<Popcount>,
    lengths: Lengths,
}

impl Shape {
    /// PORT/1 unchanged.
    pub fn none() -> Shape {
        Shape::default()
    }

    /// The same shape with the client's first flight starting with `prefix` (at most
    /// [`MAX_PREFIX_LEN`] bytes; empty means none).
    pub fn with_prefix(mut self, prefix: impl Into<Bytes>) -> Result<Shape, ShapeError> {
        let prefix = prefix.into();
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(ShapeError::PrefixTooLong { len: prefix.len() });
        }
        self.prefix = prefix;
        Ok(self)
    }

    /// The same shape with popcount shaping of the client INIT (`None`: off).
    pub fn with_popcount(mut self, popcount: Option<Popcount>) -> Shape {
        self.popcount = popcount;
        self
    }

    /// The same shape with `lengths`.
    pub fn with_lengths(mut self, lengths: Lengths) -> Shape {
        self.lengths = lengths;
        self
    }

    /// The bytes the client sends before its INIT.
    pub fn prefix(&self) -> &Bytes {
        &self.prefix
    }

    /// Popcount shaping of the client INIT, if on.
    pub fn popcount(&self) -> Option<Popcount> {
        self.popcount
    }

    /// How frame sizes are chosen.
    pub fn lengths(&self) -> Lengths {
        self.lengths
    }

    /// True for PORT/1 unchanged.
    pub fn is_none(&self) -> bool {
        *self == Shape::none()
    }

    /// The readable form: `none` for PORT/1 unchanged, else [`to_params`](Self::to_params)
    /// with a named prefix as `@name`. [`from_params`](Self::from_params) reads it back (except
    /// `none`); key lines use `to_params`, which spells every byte.
    fn readable(&self) -> String {
        if self.is_none() {
            return "none".to_owned();
        }
        let canonical = self.to_params();
        match NAMED_PREFIXES
            .iter()
            .find(|(_, p)| *p == self.prefix.as_ref())
        {
            Some((name, _)) => {
                let spelled = format!("prefix={}", URL_SAFE_NO_PAD.encode(&self.prefix));
                canonical.replacen(&spelled, &format!("prefix=@{name}"), 1)
            }
            None => canonical,
        }
    }

    /// The text form that follows a key's payload after `?`: `key=value` pairs joined by `&`,
    /// in the order `prefix`, `popcount`, `lengths`, each only when it is not the default.
    /// Empty for [`Shape::none`].
    pub fn to_params(&self) -> String {
        let mut params = Vec::new();
        if !self.prefix.is_empty() {
            params.push(format!("prefix={}", URL_SAFE_NO_PAD.encode(&self.prefix)));
        }
        match self.popcount {
            Some(Popcount::Low) => params.push("popcount=low".to_owned()),
            Some(Popcount::High) => params.push("popcount=high".to_owned()),
            None => {}
        }
        if self.lengths == Lengths::Shaped {
            params.push("lengths=shaped".to_owned());
        }
        params.join("&")
    }

    /// Parses the text form of [`to_params`](Self::to_params). Each name may appear once;
    /// unknown names, values and a prefix that is not base64url (RFC 4648 §5, no padding) are
    /// errors naming them. A prefix may also be one of [`NAMED_PREFIXES`], as `prefix=@http`
    /// or `prefix=@tls`.
    pub fn from_params(text: &str) -> Result<Shape, ShapeError> {
        let mut shape = Shape::none();
        let mut seen: Vec<&str> = Vec::new();
        for param in text.split('&') {
            let (name, value) = param
                .split_once('=')
                .ok_or_else(|| ShapeError::Malformed(param.to_owned()))?;
            if seen.contains(&name) {
                return Err(ShapeError::Repeated(name.to_owned()));
            }
            seen.push(name);
            let bad = || ShapeError::BadValue {
                name: name.to_owned(),
                value: value.to_owned(),
            };
            match name {
                "prefix" => {
                    let bytes = match value.strip_prefix('@') {
                        Some(name) => named_prefix(name).ok_or_else(bad)?.to_vec(),
                        None => URL_SAFE_NO_PAD.decode(value).map_err(|_| bad())?,
                    };
                    if bytes.is_empty() {
                        return Err(bad());
                    }
                    shape = shape.with_prefix(bytes)?;
                }
                "popcount" => {
                    shape.popcount = Some(match value {
                        "low" => Popcount::Low,
                        "high" => Popcount::High,
                        _ => return Err(bad()),
                    });
                }
                "lengths" => {
                    shape.lengths = match value {
                        "shaped" => Lengths::Shaped,
                        "padded" => Lengths::Padded,
                        _ => return Err(bad()),
                    };
                }
                _ => return Err(ShapeError::UnknownName(name.to_owned())),
            }
        }
        Ok(shape)
    }
}

/// The prefix [`NAMED_PREFIXES`] gives `name`.
fn named_prefix(name: &str) -> Option<&'static [u8]> {
    NAMED_PREFIXES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

impl fmt::Display for Shape {
    /// `none` for PORT/1 unchanged, else the text form with a named prefix as `@name`
    /// (`prefix=@tls&popcount=low`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.readable())
    }
}

/// Why a shape could not be read or built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// A parameter is not `name=value`.
    Malformed(String),
    /// A parameter name other than `prefix`, `popcount` and `lengths` (and, in a key line,
    /// `cipher`).
    UnknownName(String),
    /// A parameter given twice.
    Repeated(String),
    /// A value the parameter does not take.
    BadValue {
        /// The parameter.
        name: String,
        /// The value, as given.
        value: String,
    },
    /// A prefix longer than [`MAX_PREFIX_LEN`] bytes.
    PrefixTooLong {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "prefix=<base64url, 1 to 255 bytes>|@http|@tls, popcount=low|high, \
                            lengths=shaped|padded, and in a key line \
                            cipher=chacha20-poly1305|aes-256-gcm, joined by '&'";
        match self {
            ShapeError::Malformed(p) => {
                write!(f, "shape parameter {p:?} is not name=value ({FORM})")
            }
            ShapeError::UnknownName(n) => write!(f, "unknown shape parameter {n:?} ({FORM})"),
            ShapeError::Repeated(n) => write!(f, "shape parameter {n:?} is given twice"),
            ShapeError::BadValue { name, value } => {
                write!(
                    f,
                    "bad value {value:?} for shape parameter {name:?} ({FORM})"
                )
            }
            ShapeError::PrefixTooLong { len } => {
                write!(
                    f,
                    "a shape prefix has at most {MAX_PREFIX_LEN} bytes, not {len}"
                )
            }
        }
    }
}

impl std::error::Error for ShapeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_in_canonical_order() {
        let shape = Shape::none()
            .with_prefix(&b"GET / HTTP/1.1\r\n"[..])
            .unwrap()
            .with_popcount(Some(Popcount::Low))
            .with_lengths(Lengths::Shaped);
        let text = shape.to_params();
        assert_eq!(
            text,
            "prefix=R0VUIC8gSFRUUC8xLjENCg&popcount=low&lengths=shaped"
        );
        assert_eq!(Shape::from_params(&text).unwrap(), shape);
        let reordered = "lengths=shaped&popcount=low&prefix=R0VUIC8gSFRUUC8xLjENCg";
        assert_eq!(Shape::from_params(reordered).unwrap(), shape);
        assert_eq!(Shape::none().to_params(), "");
        assert!(Shape::none().is_none() && !shape.is_none());
    }

    #[test]
    fn bad_params_name_what_is_wrong() {
        let err = |text: &str| Shape::from_params(text).unwrap_err();
        assert_eq!(err("popcount"), ShapeError::Malformed("popcount".into()));
        assert_eq!(err("colour=red"), ShapeError::UnknownName("colour".into()));
        assert_eq!(
            err("popcount=low&popcount=high"),
            ShapeError::Repeated("popcount".into())
        );
        assert!(matches!(
            err("popcount=middle"),
            ShapeError::BadValue { .. }
        ));
        assert!(matches!(err("prefix=a+b"), ShapeError::BadValue { .. }));
        assert!(matches!(err("prefix="), ShapeError::BadValue { .. }));
        let long = URL_SAFE_NO_PAD.encode([b'x'; 256]);
        assert_eq!(
            err(&format!("prefix={long}")),
            ShapeError::PrefixTooLong { len: 256 }
        );
        assert!(
            err("lengths=wavy")
                .to_string()
                .contains("lengths=shaped|padded")
        );
        assert!(matches!(err("prefix=@ftp"), ShapeError::BadValue { .. }));
    }

    #[test]
    fn named_prefixes_read_as_their_bytes() {
        let tls = Shape::from_params("prefix=@tls").unwrap();
        assert_eq!(tls.prefix().as_ref(), TLS_PREFIX);
        let http = Shape::from_params("prefix=@http&lengths=shaped").unwrap();
        assert_eq!(http.prefix().as_ref(), HTTP_PREFIX);
        // The canonical form spells the bytes out.
        assert_eq!(Shape::from_params(&http.to_params()).unwrap(), http);
        assert!(HTTP_PREFIX.len() <= MAX_PREFIX_LEN);
        assert_eq!(http.to_string(), "prefix=@http&lengths=shaped");
        assert_eq!(Shape::from_params(&http.to_string()).unwrap(), http);
        assert_eq!(Shape::none().to_string(), "none");
        let own = Shape::from_params("prefix=R0VU").unwrap();
        assert_eq!(own.to_string(), "prefix=R0VU");
    }
}
