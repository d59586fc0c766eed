//! How the driver runs connections, besides the sessions themselves.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use port_core::Config;
use socket2::{SockRef, TcpKeepalive};

use crate::runtime::AsSocketHandle;

/// Options of the connections a [`connect`](crate::connect) or a
/// [`Listener`](crate::Listener) opens. `TCP_NODELAY` is always set: PORT frames messages
/// itself, and Nagle's algorithm would only add latency to keepalives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Bounds the TCP connect (name resolution included), and how long a connection whose
    /// handles were all dropped waits for a clean end before it is dropped.
    pub timeout: Duration,
    /// Enables TCP keepalive probes after this idle time (off by default: PORT's own keepalive
    /// always runs, and detects a dead peer on its own schedule).
    pub tcp_keepalive: Option<Duration>,
    /// Listeners: the service that peers the session refused before authentication are
    /// handed to, with every byte they sent (`docs/PROTOCOL.md` §19). `None` (the default):
    /// they are drained and closed in silence.
    pub fallback: Option<SocketAddr>,
    /// Listeners: the most connections that have not authenticated yet; at the cap, the
    /// oldest of them is closed to make room (default [`MAX_UNAUTHENTICATED`]). Connections
    /// that authenticated never count and are never closed for it.
    pub max_unauthenticated: usize,
}

/// The default cap on a listener's unauthenticated connections.
pub const MAX_UNAUTHENTICATED: usize = 1024;

impl Options {
    /// Options with `timeout` and no TCP keepalive.
    pub fn new(timeout: Duration) -> Self {
        Options {
            timeout,
            tcp_keepalive: None,
            fallback: None,
            max_unauthenticated: MAX_UNAUTHENTICATED,
        }
    }

    /// The options PORT/1 connections of `config` run with: its handshake timeout bounds the
    /// TCP connect and the wait for a clean end.
    pub fn for_config(config: &Config) -> Self {
        Options::new(config.handshake_timeout())
    }

    /// The same options, with TCP keepalive after `idle`.
    pub fn with_tcp_keepalive(mut self, idle: Duration) -> Self {
        self.tcp_keepalive = Some(idle);
        self
    }

    /// The same options, handing refused peers to `fallback` (listeners).
    pub fn with_fallback(mut self, fallback: SocketAddr) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// The same options, with at most `max` unauthenticated connections (listeners; at least
    /// 1).
    pub fn with_max_unauthenticated(mut self, max: usize) -> Self {
        self.max_unauthenticated = max.max(1);
        self
    }

    /// Applies the socket options to a connected socket.
    pub(crate) fn apply<S: AsSocketHandle + ?Sized>(&self, socket: &S) -> io::Result<()> {
        #[cfg(unix)]
        let handle = socket.as_fd();
        #[cfg(windows)]
        let handle = socket.as_socket();
        let sock = SockRef::from(&handle);
        sock.set_tcp_nodelay(true)?;
        if let Some(idle) = self.tcp_keepalive {
            // The kernel counts the idle time in whole seconds and refuses zero.
            let idle = idle.max(Duration::from_secs(1));
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }
}

impl Default for Options {
    /// The options of PORT/1 with the default configuration.
    fn default() -> Self {
        Options::for_config(&Config::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_second_keepalive_idle_is_rounded_up_not_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let options = Options::default().with_tcp_keepalive(Duration::from_millis(300));
        options.apply(&stream).unwrap();
        let sock = SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert!(sock.tcp_nodelay().unwrap());
    }
}
