//! The `Layer` trait: one sans-IO protocol layer with a side below (toward the transport) and a
//! side above (toward the application).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use port_core::{ClientConfig, CloseReason, Error, Event, Seed, ServerConfig, Side, Status};

/// One protocol layer, driven like a [`Connection`](port_core::Connection) but with explicit
/// inputs from both sides.
///
/// From below a layer gets [`link_up`](Layer::link_up) (the layer below, or the transport, is
/// ready), [`input`](Layer::input) (bytes or messages), [`link_finished`](Layer::link_finished)
/// (the peer ended its direction) and [`link_down`](Layer::link_down). From above it gets
/// [`send`](Layer::send) and [`close`](Layer::close). It answers toward below with
/// [`poll_transmit`](Layer::poll_transmit), and toward above with
/// [`poll_event`](Layer::poll_event): `Connected` once *its own* handshake completed (so the
/// application's "connected" comes only when every layer below is ready), `Data`,
/// `Finished`, and `Closed` with a reason, which always reaches the top.
pub trait Layer: Send {
    /// The layer's registered name, for logs.
    fn name(&self) -> &str;
    /// The layer below is up; `user_id` is what it reported (0 if it has none).
    fn link_up(&mut self, now: Instant, user_id: u32);
    /// Bytes (or one message) from the layer below.
    fn input(&mut self, now: Instant, data: Bytes);
    /// The peer ended its direction below this layer.
    fn link_finished(&mut self, now: Instant);
    /// The layer below went down for `reason`.
    fn link_down(&mut self, now: Instant, reason: CloseReason);
    /// One message from above.
    fn send(&mut self, data: Bytes) -> Result<(), Error>;
    /// Ends this layer's sending direction (after everything queued).
    fn close(&mut self);
    /// Server: accepts a pending authentication this layer reported.
    fn accept(&mut self, _user_id: u32) -> Result<(), Error> {
        Err(Error::NoPendingAuthentication)
    }
    /// Server: rejects a pending authentication this layer reported.
    fn reject(&mut self, _status: Status) -> Result<(), Error> {
        Err(Error::NoPendingAuthentication)
    }
    /// Bytes for the layer below.
    fn poll_transmit(&mut self, now: Instant) -> Option<Bytes>;
    /// The next event for the layer above.
    fn poll_event(&mut self) -> Option<Event>;
    /// The earliest deadline of this layer.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires what is due.
    fn handle_timeout(&mut self, now: Instant);
    /// This layer's direction ended and everything before the end was handed out.
    fn is_send_closed(&self) -> bool;
    /// Nothing more will be handed out by this layer, ever.
    fn is_send_finished(&self) -> bool;
    /// The layer is over and everything it produced was handed out.
    fn is_closed(&self) -> bool;
    /// Bytes accepted from above not yet handed below.
    fn send_buffered(&self) -> usize;
    /// The largest message `send` accepts.
    fn max_message(&self) -> usize;
    /// True for a layer that moves to a second TCP connection after its handshake (the
    /// seaside profile). It owns the transport, so it only works at the bottom of a stack.
    fn needs_redirect(&self) -> bool {
        false
    }
    /// The second connection this layer's `Redirect` event asked for is up.
    fn link_redirected(&mut self, _now: Instant) {}
    /// Starts or stops a record of the PORT messages this layer sends (see
    /// `Connection::record_messages`); layers without PORT messages ignore it.
    fn record_messages(&mut self, _on: bool) {}
    /// Appends the messages recorded since the last call to `out`, oldest first.
    fn drain_records(&mut self, _out: &mut Vec<port_core::record::MessageRecord>) {}
}

/// What a layer factory may need to build one side of a connection.
#[derive(Clone, Debug)]
pub struct LayerContext {
    /// Which side is being built.
    pub side: Side,
    /// The client setup (key, token, configuration), for client-side layers that need it.
    pub client: Option<ClientConfig>,
    /// The server setup (key, configuration, replay filter), for server-side layers.
    pub server: Option<ServerConfig>,
    /// The seaside client setup (upstream key and token), for a client-side `seaside` layer.
    pub seaside_client: Option<port_core::seaside::ClientConfig>,
    /// The seaside listener setup (upstream key), for a server-side `seaside` layer.
    pub seaside_server: Option<port_core::seaside::ServerConfig>,
    /// The instant the connection starts.
    pub now: Instant,
    /// Wall-clock time since the Unix epoch at `now`.
    pub unix_time: Duration,
    /// Entropy for this connection; layers that need randomness derive theirs from it.
    pub seed: Seed,
}

impl LayerContext {
    /// A context for `side` at `now`, with no PORT setup.
    pub fn new(side: Side, now: Instant, unix_time: Duration, seed: Seed) -> Self {
        LayerContext {
            side,
            client: None,
            server: None,
            seaside_client: None,
            seaside_server: None,
            now,
            unix_time,
            seed,
        }
    }

    /// A context for `side` at this moment, with a fresh seed from the operating system: what
    /// a program that builds one stack per connection wants for each.
    pub fn fresh(side: Side) -> std::io::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            std::io::Error::other(format!("no entropy from the operating system: {e}"))
        })?;
        let unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Self::new(side, Instant::now(), unix_time, seed))
    }

    /// The seed for the layer at `index` (0 = bottom): independent per layer (a BLAKE3
    /// key derivation), so two PORT layers in one stack never share randomness.
    pub fn seed_for(&self, index: usize) -> Seed {
        let mut material = [0u8; 40];
        material[..32].copy_from_slice(&self.seed);
        material[32..].copy_from_slice(&(index as u64).to_le_bytes());
        blake3::derive_key("PORT stack 2026-11 layer seed", &material)
    }
}
