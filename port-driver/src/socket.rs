//! Socket options the adapters apply to every TCP connection.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// Options for the TCP sockets under PORT connections. `TCP_NODELAY` is always set: PORT
/// frames messages itself, and Nagle's algorithm would only add latency to keepalives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Enables TCP keepalive probes after this idle time (off by default: PORT's own keepalive
    /// always runs, and detects a dead peer on its own schedule).
    pub tcp_keepalive: Option<Duration>,
}

impl SocketOptions {
    /// Options with TCP keepalive after `idle`.
    pub fn with_tcp_keepalive(mut self, idle: Duration) -> Self {
        self.tcp_keepalive = Some(idle);
        self
    }

    /// Applies the options to a connected socket.
    pub fn apply<'s, S>(&self, socket: &'s S) -> io::Result<()>
    where
        SockRef<'s>: From<&'s S>,
    {
        let sock = SockRef::from(socket);
        sock.set_tcp_nodelay(true)?;
        if let Some(idle) = self.tcp_keepalive {
            // The kernel counts the idle time in whole seconds and refuses zero.
            let idle = idle.max(Duration::from_secs(1));
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_second_keepalive_idle_is_rounded_up_not_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let options = SocketOptions::default().with_tcp_keepalive(Duration::from_millis(300));
        options.apply(&stream).unwrap();
        let sock = SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
    }
}
