//! What each connection reports through the [`metrics`] facade. Nothing is recorded unless
//! the program installs a recorder (for instance a Prometheus exporter); the names:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `port_connections` | gauge | `side` (client, server), `state` (handshaking, authenticating, connected) |
//! | `port_handshakes_total` | counter | `side`, `outcome` (accepted, rejected, refused, timed_out, closed, evicted, spliced), `reason` (for refused) |
//! | `port_probes_total` | counter | `outcome` (drained, spliced): server connections that sent bytes and never authenticated |
//! | `port_bytes_total` | counter | `side`, `direction` (sent, received), `kind` (payload, padding, framing: frame headers, tags and the handshake) |
//! | `port_keepalive_rtt_seconds` | histogram | `side` |

use port_core::{CloseReason, InitRefusal, Stats};

use crate::shared::{Inner, Phase, Traffic};

/// A connection's state as the `port_connections` gauge counts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Authenticating,
    Connected,
}

impl State {
    fn of(phase: &Phase) -> State {
        match phase {
            Phase::Handshaking => State::Handshaking,
            Phase::Authenticating => State::Authenticating,
            Phase::Connected(_) => State::Connected,
        }
    }

    fn label(self) -> &'static str {
        match self {
            State::Handshaking => "handshaking",
            State::Authenticating => "authenticating",
            State::Connected => "connected",
        }
    }
}

/// One connection's contribution: what it reported so far, so that each update adds only
/// what changed.
pub(crate) struct ConnectionMetrics {
    side: &'static str,
    state: Option<State>,
    stats: Stats,
    traffic: Traffic,
    connected: bool,
}

impl ConnectionMetrics {
    /// A connection of `side` (`"client"` or `"server"`), handshaking.
    pub(crate) fn start(side: &'static str) -> ConnectionMetrics {
        let mut metrics = ConnectionMetrics {
            side,
            state: None,
            stats: Stats::default(),
            traffic: Traffic::default(),
            connected: false,
        };
        metrics.enter(State::Handshaking);
        metrics
    }

    fn enter(&mut self, state: State) {
        if let Some(old) = self.state.replace(state) {
            metrics::gauge!("port_connections", "side" => self.side, "state" => old.label())
                .decrement(1.0);
        }
        metrics::gauge!("port_connections", "side" => self.side, "state" => state.label())
            .increment(1.0);
    }

    /// Adds what changed since the last update.
    pub(crate) fn update(&mut self, inner: &Inner) {
        let state = State::of(&inner.phase);
        if self.state != Some(state) {
            self.enter(state);
        }
        if state == State::Connected && !self.connected {
            self.connected = true;
            self.handshake("accepted", None);
        }
        let stats = inner.session.stats();
        let traffic = inner.traffic;
        if stats == self.stats && traffic == self.traffic {
            return;
        }
        let (old, new) = (&self.stats, &stats);
        self.bytes(
            "sent",
            traffic.written - self.traffic.written,
            new.payload_bytes_sent - old.payload_bytes_sent,
            new.padding_bytes_sent - old.padding_bytes_sent,
        );
        self.bytes(
            "received",
            traffic.read - self.traffic.read,
            new.payload_bytes_received - old.payload_bytes_received,
            new.padding_bytes_received - old.padding_bytes_received,
        );
        if let Some(rtt) = new
            .last_rtt
            .filter(|_| new.pongs_received > old.pongs_received)
        {
            metrics::histogram!("port_keepalive_rtt_seconds", "side" => self.side)
                .record(rtt.as_secs_f64());
        }
        self.stats = stats;
        self.traffic = traffic;
    }

    fn bytes(&self, direction: &'static str, wire: u64, payload: u64, padding: u64) {
        let side = self.side;
        for (kind, n) in [
            ("payload", payload),
            ("padding", padding),
            ("framing", wire.saturating_sub(payload + padding)),
        ] {
            if n > 0 {
                metrics::counter!("port_bytes_total", "side" => side, "direction" => direction,
                    "kind" => kind)
                .increment(n);
            }
        }
    }

    fn handshake(&self, outcome: &'static str, reason: Option<&'static str>) {
        let side = self.side;
        match reason {
            Some(reason) => metrics::counter!("port_handshakes_total", "side" => side,
                "outcome" => outcome, "reason" => reason)
            .increment(1),
            None => metrics::counter!("port_handshakes_total", "side" => side,
                "outcome" => outcome)
            .increment(1),
        }
    }

    /// The connection ended (`spliced`: handed to the listener's fallback).
    pub(crate) fn finish(mut self, inner: &Inner, spliced: bool) {
        self.update(inner);
        if let Some(state) = self.state.take() {
            metrics::gauge!("port_connections", "side" => self.side, "state" => state.label())
                .decrement(1.0);
        }
        if self.connected {
            return;
        }
        let sent_bytes = inner.traffic.read > 0;
        let (outcome, reason) = match (spliced, inner.evicted, inner.close_reason) {
            (true, _, _) => ("spliced", None),
            (_, true, _) => ("evicted", None),
            (_, _, Some(CloseReason::Rejected(_))) => ("rejected", None),
            (_, _, Some(CloseReason::Refused(refusal))) => ("refused", Some(label(refusal))),
            (_, _, Some(CloseReason::HandshakeTimeout)) => ("timed_out", None),
            _ => ("closed", None),
        };
        self.handshake(outcome, reason);
        if self.side == "server" && sent_bytes {
            let probe = match outcome {
                "spliced" => Some("spliced"),
                "refused" | "timed_out" | "closed" => Some("drained"),
                _ => None,
            };
            if let Some(probe) = probe {
                metrics::counter!("port_probes_total", "outcome" => probe).increment(1);
            }
        }
    }
}

fn label(refusal: InitRefusal) -> &'static str {
    match refusal {
        InitRefusal::Unauthenticated => "unauthenticated",
        InitRefusal::Stale => "stale",
        InitRefusal::Replayed => "replayed",
        InitRefusal::ReplayFilterFull => "replay_filter_full",
        _ => "other",
    }
}
