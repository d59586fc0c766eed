//! The second TCP connection of sessions that ask for one through
//! [`Session::redirect`](port_core::Session::redirect) (the seaside profile): opened with the
//! runtime's own sockets, so every runtime supports it and nothing else in the driver or the
//! user API knows about it.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use port_core::Redirect;

use crate::options::Options;
use crate::runtime::{BoxFuture, Runtime, Socket};

/// The second connection a driver is opening (client) or awaiting (listener).
#[derive(Default)]
pub(crate) struct SecondLink {
    next: Option<BoxFuture<io::Result<Box<dyn Socket>>>>,
}

impl SecondLink {
    /// Listener: opens the per-user socket a session asked for with [`Redirect::Listen`], on
    /// `local`, accepting exactly one connection from `peer` (anyone else who finds the port
    /// first is turned away). Returns its port, which is the session's user id. Dropping the
    /// link closes the socket.
    pub(crate) fn listen(
        &mut self,
        runtime: &Arc<dyn Runtime>,
        local: IpAddr,
        peer: IpAddr,
        options: Options,
    ) -> io::Result<u16> {
        let acceptor = runtime.bind(SocketAddr::new(local, 0))?;
        let port = acceptor.local_addr()?.port();
        self.next = Some(Box::pin(async move {
            loop {
                let (socket, from) = poll_fn(|cx| acceptor.poll_accept(cx)).await?;
                if from.ip() == peer {
                    options.apply(&*socket)?;
                    return Ok(socket);
                }
            }
        }));
        Ok(port)
    }

    /// Once the session asks to move: a client starts its connect to `peer`'s host at the
    /// port named; both sides return the new socket once it is up and `idle` (everything meant
    /// for the first connection was written).
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        runtime: &Arc<dyn Runtime>,
        ask: Option<Redirect>,
        peer: SocketAddr,
        options: Options,
    ) -> Poll<io::Result<Box<dyn Socket>>> {
        let Some(Redirect::Move { port }) = ask else {
            return Poll::Pending;
        };
        let next = self.next.get_or_insert_with(|| {
            tracing::debug!(port, "opening the second connection");
            let connect = runtime.connect(SocketAddr::new(peer.ip(), port));
            Box::pin(async move {
                let socket = connect.await?;
                options.apply(&*socket)?;
                Ok(socket)
            })
        });
        let socket = std::task::ready!(next.as_mut().poll(cx));
        self.next = None;
        Poll::Ready(socket)
    }

    /// The session gave up (its deadline passed, or it was rejected): close the per-user
    /// socket or abandon the connect now.
    pub(crate) fn abandon(&mut self) {
        self.next = None;
    }

    /// A connect or an accept is under way.
    pub(crate) fn is_pending(&self) -> bool {
        self.next.is_some()
    }
}
