//! Stack addresses: `NAME(+NAME)*://HOST:PORT`, the stack's names leftmost on top, as in
//! `git+ssh://`.
//!
//! ```
//! use port_stack::Address;
//!
//! let address: Address = "port+passthrough://[::1]:9000".parse()?;
//! assert_eq!(address.layers(), ["port", "passthrough"]);
//! assert_eq!(address.host, "::1");
//! assert_eq!(address.host_port(), "[::1]:9000");
//! assert_eq!(address.to_string(), "port+passthrough://[::1]:9000");
//!
//! // Keys and tokens never go in an address.
//! assert!("port://example.com:9000?token=abc".parse::<Address>().is_err());
//! # Ok::<(), port_stack::AddressError>(())
//! ```
//!
//! The names follow the registry's rules (`[a-z0-9_-]+`, see [`crate::registry`]); whether they
//! are defined is for [`Registry::resolve`](crate::Registry::resolve) to say. The host is an
//! IPv4 address, an IPv6 address in brackets, or a host name (ASCII labels of letters, digits,
//! `-` and `_`, separated by dots). The port is required and not 0. Nothing may follow
//! `HOST:PORT` but one optional `/`.
//!
//! **Keys and tokens never go in an address**: user info (`user@`), queries (`?token=...`) and
//! fragments (`#...`) are refused, and error messages never repeat the address (it may hold a
//! secret put there by mistake).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::names::{SpecProblem, quoted, split_spec};

/// The expected form, as error messages show it.
pub const ADDRESS_FORM: &str = "NAME(+NAME)*://HOST:PORT";

/// `NAME(+NAME)*://host:port`, leftmost name on top, as in `git+ssh`. Keys and tokens never go
/// in an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The stack spec: names joined by `+`, top first.
    pub stack: String,
    /// The host: a name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    /// The TCP port (not 0).
    pub port: u16,
}

impl Address {
    /// The stack's names, top first.
    pub fn layers(&self) -> Vec<&str> {
        self.stack.split('+').collect()
    }

    /// `host:port`, with brackets around an IPv6 host (`[::1]:9000`): what a socket address
    /// parser or resolver takes.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// An address from a stack spec and a `HOST:PORT` given separately (as in
    /// `--stack NAME HOST:PORT`), checked like a parsed one.
    pub fn from_parts(stack: &str, host_port: &str) -> Result<Address, AddressError> {
        check_secrets(host_port)?;
        check_stack(stack)?;
        let (host, port) = parse_authority(host_port)?;
        Ok(Address {
            stack: stack.to_owned(),
            host,
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.stack, self.host_port())
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        check_secrets(s)?;
        let Some((stack, rest)) = s.split_once("://") else {
            return Err(AddressError::MissingScheme);
        };
        check_stack(stack)?;
        // One trailing '/' is tolerated; anything else after HOST:PORT is a path.
        let (authority, after) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(AddressError::UserInfo);
        }
        if !after.is_empty() && after != "/" {
            return Err(AddressError::Path);
        }
        let (host, port) = parse_authority(authority)?;
        Ok(Address {
            stack: stack.to_owned(),
            host,
            port,
        })
    }
}

/// Refuses anything that looks like a key or token.
fn check_secrets(s: &str) -> Result<(), AddressError> {
    match s.find(['?', '#']) {
        Some(i) if s[i..].starts_with('?') => Err(AddressError::Query),
        Some(_) => Err(AddressError::Fragment),
        None => Ok(()),
    }
}

fn check_stack(stack: &str) -> Result<(), AddressError> {
    match split_spec(stack) {
        Ok(_) => Ok(()),
        Err(SpecProblem::Empty) => Err(AddressError::EmptyStack),
        Err(SpecProblem::EmptyComponent) => Err(AddressError::EmptyName),
        Err(SpecProblem::BadName(name, why)) => Err(AddressError::InvalidName {
            name: name.to_owned(),
            why,
        }),
    }
}

/// Parses `HOST:PORT` (the host possibly a bracketed IPv6 address).
fn parse_authority(authority: &str) -> Result<(String, u16), AddressError> {
    if authority.contains('@') {
        return Err(AddressError::UserInfo);
    }
    if authority.contains('/') {
        return Err(AddressError::Path);
    }
    if authority.is_empty() {
        return Err(AddressError::MissingHost);
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(invalid_host(
                authority,
                "an IPv6 address needs its closing ']'",
            ));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(invalid_host(inside, "not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => return Err(AddressError::MissingPort),
            None => return Err(invalid_host(authority, "only ':PORT' may follow ']'")),
        };
        (inside, port)
    } else {
        let Some((host, port)) = authority.rsplit_once(':') else {
            return Err(AddressError::MissingPort);
        };
        if host.contains(':') {
            return Err(invalid_host(
                host,
                "an IPv6 address goes in brackets, as in [::1]:9000",
            ));
        }
        check_host(host)?;
        (host, port)
    };
    if host.is_empty() {
        return Err(AddressError::MissingHost);
    }
    Ok((host.to_owned(), parse_port(port)?))
}

fn invalid_host(host: &str, why: &'static str) -> AddressError {
    AddressError::InvalidHost {
        host: host.to_owned(),
        why,
    }
}

/// Checks an unbracketed host: an IPv4 address or a host name.
fn check_host(host: &str) -> Result<(), AddressError> {
    if host.is_empty() {
        return Err(AddressError::MissingHost);
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(invalid_host(host, "not an IPv4 address")),
        };
    }
    if host.len() > 253 {
        return Err(invalid_host(host, "a host name has at most 253 characters"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid_host(host, "empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(invalid_host(host, "a label has at most 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid_host(
                host,
                "a host name has ASCII letters, digits, '-', '_' and '.' only",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid_host(host, "a label cannot start or end with '-'"));
        }
    }
    Ok(())
}

fn parse_port(port: &str) -> Result<u16, AddressError> {
    if port.is_empty() {
        return Err(AddressError::MissingPort);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort {
            port: port.to_owned(),
        });
    }
    match port.parse::<u16>() {
        Ok(0) => Err(AddressError::ZeroPort),
        Ok(n) => Ok(n),
        Err(_) => Err(AddressError::InvalidPort {
            port: port.to_owned(),
        }),
    }
}

/// Why a text is not an [`Address`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The text is empty.
    Empty,
    /// No `NAME://` in front.
    MissingScheme,
    /// Nothing before `://`.
    EmptyStack,
    /// An empty name in the stack (`port++frame://`, `+port://`).
    EmptyName,
    /// A name with characters other than `a-z`, `0-9`, `_` and `-`, or too long.
    InvalidName {
        /// The name.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Nothing between `://` and `:PORT`.
    MissingHost,
    /// A host that is not an IPv4 address, a bracketed IPv6 address or a host name.
    InvalidHost {
        /// The host as written.
        host: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// No `:PORT` after the host.
    MissingPort,
    /// A port that is not a number from 1 to 65535.
    InvalidPort {
        /// The port as written.
        port: String,
    },
    /// Port 0.
    ZeroPort,
    /// User info (`user@` or `user:password@`) before the host.
    UserInfo,
    /// A path after `HOST:PORT` (only one trailing `/` is allowed).
    Path,
    /// A query (`?...`).
    Query,
    /// A fragment (`#...`).
    Fragment,
}

impl AddressError {
    /// True for the errors about secrets (user info, queries, fragments).
    pub fn is_secret(&self) -> bool {
        matches!(
            self,
            AddressError::UserInfo | AddressError::Query | AddressError::Fragment
        )
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SECRETS: &str =
            "keys and tokens never go in addresses; give them through the key and token settings";
        f.write_str("invalid address: ")?;
        match self {
            AddressError::Empty => f.write_str("it is empty")?,
            AddressError::MissingScheme => f.write_str("no stack name and \"://\" in front")?,
            AddressError::EmptyStack => f.write_str("no stack name before \"://\"")?,
            AddressError::EmptyName => f.write_str(
                "empty name in the stack ('+' at the start, at the end, or twice in a row)",
            )?,
            AddressError::InvalidName { name, why } => {
                write!(f, "bad stack name {}: {why}", quoted(name))?
            }
            AddressError::MissingHost => f.write_str("no host")?,
            AddressError::InvalidHost { host, why } => {
                write!(f, "bad host {}: {why}", quoted(host))?
            }
            AddressError::MissingPort => f.write_str("no port after the host")?,
            AddressError::InvalidPort { port } => {
                write!(f, "bad port {}: ports are 1 to 65535", quoted(port))?
            }
            AddressError::ZeroPort => f.write_str("port 0 cannot be connected to")?,
            AddressError::UserInfo => write!(f, "it has user info (\"user@\"); {SECRETS}")?,
            AddressError::Path => {
                f.write_str("something follows HOST:PORT (paths are not allowed)")?
            }
            AddressError::Query => write!(f, "it has a query (\"?...\"); {SECRETS}")?,
            AddressError::Fragment => write!(f, "it has a fragment (\"#...\"); {SECRETS}")?,
        }
        write!(
            f,
            "; expected {ADDRESS_FORM}, as in port+passthrough://127.0.0.1:9000"
        )
    }
}

impl std::error::Error for AddressError {}
