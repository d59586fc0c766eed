//! The one sans-IO session interface: what a driver runs over a TCP stream, and what a layer of
//! a stack is. A PORT/1 [`Connection`](crate::Connection) and a
//! [`seaside::Connection`](crate::seaside::Connection) implement it; so do the layers and the
//! stacks of the `port-stack` crate, so one driver runs any of them.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{CloseReason, Error, Status};
use crate::event::Event;

/// A sans-IO session: bytes in from below, bytes out toward below, messages in from above,
/// events out toward above, and deadlines.
///
/// What lies below a session is its **link**: the TCP stream, when a driver runs it; the layer
/// under it, when it is a layer of a stack. What lies above is the application, or the layer
/// over it.
///
/// The drive loop (see the crate documentation for a compiled example): tell the session its
/// link is up ([`handle_link_up`](Session::handle_link_up)); feed it what the link delivers
/// ([`handle_input`](Session::handle_input)) and its end
/// ([`handle_link_end`](Session::handle_link_end)); after every input or timeout drain
/// [`poll_transmit`](Session::poll_transmit) to the link, then
/// [`poll_event`](Session::poll_event) (events may call `send`, `accept` or `close`, which
/// queue more output, so loop); sleep until [`poll_timeout`](Session::poll_timeout) and call
/// [`handle_timeout`](Session::handle_timeout); shut the link's sending side once
/// [`is_send_finished`](Session::is_send_finished) holds, and stop once
/// [`is_closed`](Session::is_closed) does.
///
/// Every method that can change state takes the current `now`; a session never reads a clock.
pub trait Session: Send {
    // ----- from below --------------------------------------------------------------------

    /// The link is up. A driver calls it once the TCP stream is connected
    /// ([`Link::STREAM`]); a stack calls it when the layer below reported
    /// [`Event::Connected`], with that user id and the layer's message limit. A session that
    /// continues on a second link (see [`redirect`](Session::redirect)) hears it again once
    /// that link is up. Sessions whose first bytes are queued at construction (a PORT
    /// client's INIT) need not act on it.
    fn handle_link_up(&mut self, now: Instant, link: Link) {
        let _ = (now, link);
    }

    /// Bytes the link delivered, in any chunking. Never fails: whatever the bytes, the outcome
    /// shows in events and in `poll_transmit`.
    fn handle_input(&mut self, now: Instant, data: &[u8]);

    /// The same as [`handle_input`](Session::handle_input), for bytes the caller owns and
    /// gives away (a message from the layer below): sessions that keep input as it is (a
    /// pass-through layer) take it without a copy.
    fn handle_input_owned(&mut self, now: Instant, data: Bytes) {
        self.handle_input(now, &data);
    }

    /// The link ended: `None` when the peer ended its direction of it (a TCP FIN, the layer
    /// below reporting [`Event::Finished`]); `Some(reason)` when it went down for `reason`.
    /// Whether that ends this session cleanly is the session's call: a PORT connection
    /// without the peer's TERM closes with [`CloseReason::TransportClosed`].
    fn handle_link_end(&mut self, now: Instant, reason: Option<CloseReason>);

    // ----- toward below ------------------------------------------------------------------

    /// Bytes for the link, if any. Call until it returns `None`.
    #[must_use]
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes>;

    /// True once nothing at all will be handed out any more: the link's sending side can be
    /// shut (TCP FIN).
    fn is_send_finished(&self) -> bool;

    // ----- from above --------------------------------------------------------------------

    /// Queues one message. A session that keeps message boundaries delivers it as one
    /// [`Event::Data`]; one larger than [`max_message`](Session::max_message) is refused.
    fn send(&mut self, data: Bytes) -> Result<(), Error>;

    /// Ends this side's sending direction gracefully, after everything queued. Calling it
    /// again does nothing.
    fn close(&mut self);

    /// Server: accepts the pending [`Event::Authenticate`] with `user_id`.
    fn accept(&mut self, user_id: u32) -> Result<(), Error> {
        let _ = user_id;
        Err(Error::NoPendingAuthentication)
    }

    /// Server: rejects the pending [`Event::Authenticate`] with a failure `status`.
    fn reject(&mut self, status: Status) -> Result<(), Error> {
        let _ = status;
        Err(Error::NoPendingAuthentication)
    }

    /// Bytes accepted by `send` but not yet handed out by `poll_transmit` (for backpressure).
    fn send_buffered(&self) -> usize;

    /// The largest message `send` accepts now.
    fn max_message(&self) -> usize;

    // ----- toward above ------------------------------------------------------------------

    /// The next event, if any.
    #[must_use]
    fn poll_event(&mut self) -> Option<Event>;

    /// True once this side's direction ended and everything before its end was handed out
    /// (what a byte-stream `shutdown` waits for).
    fn is_send_closed(&self) -> bool;

    /// True once the peer ended its direction: no more messages will arrive.
    fn is_peer_finished(&self) -> bool;

    /// True when the session is over and everything it produced was handed out.
    fn is_closed(&self) -> bool;

    // ----- time --------------------------------------------------------------------------

    /// The earliest instant at which [`handle_timeout`](Session::handle_timeout) has work.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// Fires whatever is due at `now`. Calling it early, late or twice is harmless.
    fn handle_timeout(&mut self, now: Instant);

    // ----- elsewhere ----------------------------------------------------------------------

    /// What the session asks of its driver beyond bytes and timers: a second TCP connection
    /// after the handshake (the seaside profile), or handing a peer it refused to the
    /// listener's fallback. `None` for a session that asks nothing. See [`Redirect`].
    fn redirect(&self) -> Option<Redirect> {
        None
    }

    /// The PORT connection's counters (frames, payload and padding bytes, keepalive round
    /// trips), for metrics; a session without one reports zeros.
    fn stats(&self) -> crate::Stats {
        crate::Stats::default()
    }
}

/// What a session learns about its link when the link comes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The user id the layer below reported (0 for a TCP stream).
    pub user_id: u32,
    /// The largest message the link takes in one `send` (`usize::MAX` for a byte stream). A
    /// session that hands messages down as they are bounds its own
    /// [`max_message`](Session::max_message) by it.
    pub max_message: usize,
    /// True when each [`handle_input`](Session::handle_input) is one read of a TCP socket the
    /// peer writes to directly (a driver's own connection). A server may then judge the
    /// peer's first write by its first input: a PORT/1 client writes its INIT at once, so its
    /// first read holds at least the INIT's first 88 bytes (`docs/PROTOCOL.md` §19).
    pub whole_reads: bool,
}

impl Link {
    /// A byte stream in any chunking: no user id, writes of any size.
    pub const STREAM: Link = Link {
        user_id: 0,
        max_message: usize::MAX,
        whole_reads: false,
    };

    /// A TCP connection that a driver reads from directly: a byte stream whose inputs are
    /// whole socket reads (see [`whole_reads`](Link::whole_reads)).
    pub const TCP: Link = Link {
        whole_reads: true,
        ..Link::STREAM
    };

    /// A layer below that reported `Connected { user_id }` and takes messages of up to
    /// `max_message` bytes.
    pub fn new(user_id: u32, max_message: usize) -> Link {
        Link {
            user_id,
            max_message,
            whole_reads: false,
        }
    }
}

/// What a session asks of its driver beyond bytes and timers, through
/// [`Session::redirect`]: a second TCP connection, or the listener's fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redirect {
    /// Server, from [`Event::Authenticate`] until the decision: the session will continue on
    /// a connection accepted on a listening socket of its own, and must be accepted with that
    /// socket's port as its user id. The driver opens the socket now, before the application
    /// decides.
    Listen,
    /// Both sides: move now. A client connects to the peer's host at `port`; a server takes
    /// the connection its own socket (listening on `port`) accepts from the client's address.
    /// Once everything queued for the first link was written, the driver moves the session to
    /// the new link and calls [`Session::handle_link_up`]. The session's own deadline bounds
    /// the wait.
    Move {
        /// The TCP port of the second connection.
        port: u16,
    },
    /// Server, before authentication: the session refused its peer (garbage, another key or
    /// shape, a replay, a first read too short to be an INIT, an INIT still incomplete at the
    /// drain deadline or cut by the peer's FIN). A listener with a fallback service hands the
    /// connection to it, every byte the session was given first; without one the driver
    /// carries on, and the session drains and closes as it always does. Once asked, asked for
    /// good (the session does not authenticate anyone after a refusal).
    Fallback,
}

/// The 32 bytes from which a session draws all of its randomness (keys, salts, padding,
/// timers). Give each session a fresh seed from a CSPRNG; tests use fixed seeds.
pub type Seed = [u8; 32];

/// What a new session is made from besides its configuration: the moment it starts, the
/// wall clock, and fresh entropy. Drivers make one per connection (from their runtime's clock
/// and the operating system's CSPRNG) and hand it to session factories; tests make them by
/// hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The instant the session starts.
    pub now: Instant,
    /// Wall-clock time since the Unix epoch at `now`.
    pub unix_time: Duration,
    /// The session's randomness.
    pub seed: Seed,
}

impl Start {
    /// A start with an independent seed for part `index` of a composite session (a layer of
    /// a stack): derived from this seed with a BLAKE3 key derivation, so two parts never share
    /// randomness.
    pub fn derive(&self, index: usize) -> Start {
        let mut material = [0u8; 40];
        material[..32].copy_from_slice(&self.seed);
        material[32..].copy_from_slice(&(index as u64).to_le_bytes());
        Start {
            seed: blake3::derive_key("PORT stack 2026-11 layer seed", &material),
            ..*self
        }
    }
}
