//! Where a carried connection goes, and how a client names it to the server.
//!
//! A client that picks the target itself (the SOCKS5 mode) appends it to its token, after one
//! space: `TOKEN HOST:PORT`. Tokens never hold blanks, so the split is unambiguous, and the
//! target travels inside the client INIT's sealed body: the server sees it, with the token,
//! before it decides, and can refuse with a status that says why. A token without a target
//! asks for the server's fixed `--forward` target.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The longest host name a target may hold (DNS's limit, and SOCKS5's).
pub const MAX_HOST_LEN: usize = 255;

/// A target's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A host name, resolved by the server (lower case, without a trailing dot).
    Name(String),
}

/// A host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The port (never 0).
    pub port: u16,
}

impl Target {
    /// Parses `HOST:PORT`: an IPv4 address, an IPv6 address in brackets, or a host name of
    /// letters, digits, `-`, `_` and `.`; the port in 1..=65535.
    pub fn parse(text: &str) -> Result<Target, String> {
        let bad =
            |why: &str| format!("{why} (expected HOST:PORT, e.g. example.org:443 or [::1]:22)");
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(bad("the port is not in 1..=65535")),
        };
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => Host::Ip(IpAddr::V6(
                v6.parse()
                    .map_err(|_| bad("not an IPv6 address in brackets"))?,
            )),
            None => match host.parse::<std::net::Ipv4Addr>() {
                Ok(v4) => Host::Ip(IpAddr::V4(v4)),
                Err(_) => Host::Name(host_name(host).map_err(|why| bad(&why))?),
            },
        };
        Ok(Target { host, port })
    }

    /// The target of a SOCKS5 request's address.
    pub fn from_socks(address: &socks5_proto::Address) -> Result<Target, String> {
        match address {
            socks5_proto::Address::SocketAddress(addr) if addr.port() != 0 => Ok(Target {
                host: Host::Ip(addr.ip()),
                port: addr.port(),
            }),
            socks5_proto::Address::DomainAddress(name, port) if *port != 0 => {
                let name = std::str::from_utf8(name).map_err(|_| "a host name that is not text")?;
                // Some clients send an address literal as a name.
                let host = match name.parse::<IpAddr>() {
                    Ok(ip) => Host::Ip(ip),
                    Err(_) => Host::Name(host_name(name)?),
                };
                Ok(Target { host, port: *port })
            }
            _ => Err("port 0".to_owned()),
        }
    }

    /// The socket address of an IP target.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

/// Checks and normalises a host name.
fn host_name(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_HOST_LEN || !name.chars().all(valid) {
        return Err("not a host name (letters, digits, '-', '_' and '.', at most 255)".to_owned());
    }
    Ok(name)
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// The token a client sends to have the server connect to `target`.
pub fn token_with_target(token: &[u8], target: &Target) -> Vec<u8> {
    let mut out = token.to_vec();
    out.push(b' ');
    out.extend_from_slice(target.to_string().as_bytes());
    out
}

/// Splits a received token into the token proper and the target text after it, if any.
pub fn split_token(raw: &[u8]) -> (&[u8], Option<&[u8]>) {
    match raw.iter().position(|&b| b == b' ') {
        Some(at) => (&raw[..at], Some(&raw[at + 1..])),
        None => (raw, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for text in [
            "example.org:443",
            "10.1.2.3:22",
            "[2001:db8::1]:8080",
            "a_b-c.d:1",
        ] {
            let target = Target::parse(text).unwrap();
            assert_eq!(target.to_string(), text);
            assert_eq!(Target::parse(&target.to_string()).unwrap(), target);
        }
        assert_eq!(
            Target::parse("Example.ORG.:80").unwrap().host,
            Host::Name("example.org".into())
        );
        for bad in [
            "example.org",
            "x:0",
            "x:65536",
            ":80",
            "[::1:80",
            "a b:80",
            "2001:db8::1:80",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_carries_its_target_after_one_space() {
        let target = Target::parse("[::1]:22").unwrap();
        let raw = token_with_target(b"s3cr3t", &target);
        assert_eq!(raw, b"s3cr3t [::1]:22");
        assert_eq!(split_token(&raw), (&b"s3cr3t"[..], Some(&b"[::1]:22"[..])));
        assert_eq!(split_token(b"plain"), (&b"plain"[..], None));
    }

    #[test]
    fn socks_addresses_become_targets() {
        let name = socks5_proto::Address::DomainAddress(b"Host.Example".to_vec(), 80);
        assert_eq!(
            Target::from_socks(&name).unwrap().to_string(),
            "host.example:80"
        );
        let ip = socks5_proto::Address::SocketAddress("[::1]:9".parse().unwrap());
        assert_eq!(Target::from_socks(&ip).unwrap().to_string(), "[::1]:9");
        let literal = socks5_proto::Address::DomainAddress(b"10.0.0.1".to_vec(), 80);
        assert_eq!(
            Target::from_socks(&literal).unwrap().host,
            Host::Ip([10, 0, 0, 1].into())
        );
        let bad = socks5_proto::Address::DomainAddress(b"a b".to_vec(), 80);
        assert!(Target::from_socks(&bad).is_err());
    }
}
