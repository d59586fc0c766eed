//! Where to connect or what to bind: a socket address, or a host name and port that the
//! runtime resolves without blocking.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::runtime::Runtime;

/// A TCP address: a socket address, or `host:port` resolved through the runtime.
///
/// Anything that names an address converts into one, borrowed or owned: a [`SocketAddr`], an
/// `(IpAddr, u16)` pair, or text such as `"127.0.0.1:9000"` or `"example.net:9000"` (text
/// that parses as a socket address is used as it is; anything else is resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpAddr {
    /// A socket address.
    Addr(SocketAddr),
    /// `host:port`, resolved when used.
    Host(String),
}

impl TcpAddr {
    /// The socket addresses this names, in the order to try them.
    pub async fn resolve(&self, runtime: &dyn Runtime) -> io::Result<Vec<SocketAddr>> {
        let addrs = match self {
            TcpAddr::Addr(addr) => return Ok(vec![*addr]),
            TcpAddr::Host(host) => runtime.resolve(host.clone()).await?,
        };
        if addrs.is_empty() {
            let e = format!("{self} resolves to no address");
            return Err(io::Error::new(io::ErrorKind::NotFound, e));
        }
        Ok(addrs)
    }
}

impl fmt::Display for TcpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpAddr::Addr(addr) => addr.fmt(f),
            TcpAddr::Host(host) => f.write_str(host),
        }
    }
}

impl From<SocketAddr> for TcpAddr {
    fn from(addr: SocketAddr) -> Self {
        TcpAddr::Addr(addr)
    }
}

impl<I: Into<IpAddr>> From<(I, u16)> for TcpAddr {
    fn from((ip, port): (I, u16)) -> Self {
        TcpAddr::Addr(SocketAddr::new(ip.into(), port))
    }
}

impl From<&str> for TcpAddr {
    fn from(text: &str) -> Self {
        match text.parse() {
            Ok(addr) => TcpAddr::Addr(addr),
            Err(_) => TcpAddr::Host(text.to_owned()),
        }
    }
}

impl From<String> for TcpAddr {
    fn from(text: String) -> Self {
        match text.parse() {
            Ok(addr) => TcpAddr::Addr(addr),
            Err(_) => TcpAddr::Host(text),
        }
    }
}

impl From<&String> for TcpAddr {
    fn from(text: &String) -> Self {
        TcpAddr::from(text.as_str())
    }
}

impl From<&TcpAddr> for TcpAddr {
    fn from(addr: &TcpAddr) -> Self {
        addr.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn text_that_is_an_address_is_not_resolved() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(TcpAddr::from("127.0.0.1:9000"), TcpAddr::Addr(addr));
        assert_eq!(
            TcpAddr::from(String::from("[::1]:9")).to_string(),
            "[::1]:9"
        );
        assert_eq!(
            TcpAddr::from((Ipv4Addr::LOCALHOST, 9000)),
            TcpAddr::Addr(addr)
        );
        let owned = String::from("example.net:9000");
        assert_eq!(
            TcpAddr::from(&owned),
            TcpAddr::Host("example.net:9000".to_owned())
        );
    }
}
