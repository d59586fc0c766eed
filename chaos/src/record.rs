//! The bridge's record of every packet it saw: when, which way, how big, which TCP flags, and
//! what the faults did to it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which way a packet went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client's namespace to the server's.
    ToServer,
    /// From the server's namespace to the client's.
    ToClient,
}

impl Direction {
    /// `c→s` or `s→c`.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ToServer => "c→s",
            Direction::ToClient => "s→c",
        }
    }
}

/// One packet read from a TUN device, and its fate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PacketRecord {
    /// When the bridge read it, since the bridge started.
    pub at: Duration,
    /// Which way it went.
    pub direction: Direction,
    /// IP packet size in bytes.
    pub size: usize,
    /// TCP payload bytes (0 for a bare segment or a packet that is not TCP).
    pub payload: usize,
    /// TCP flags (0 when not TCP).
    pub flags: u8,
    /// TCP sequence number of the first payload byte (0 when not TCP).
    pub seq: u32,
    /// Dropped by `loss`.
    pub dropped: bool,
    /// Dropped by the blackhole.
    pub blackholed: bool,
    /// Sent twice.
    pub duplicated: bool,
    /// The delay it was held for.
    pub delay: Duration,
    /// Sent at once past packets held back (`reorder`).
    pub reordered: bool,
    /// A byte flipped, the TCP checksum left wrong.
    pub corrupted: bool,
    /// Payload altered with a fixed TCP checksum.
    pub tampered: bool,
}

impl PacketRecord {
    /// True when the packet reached the other side (possibly altered).
    pub fn delivered(&self) -> bool {
        !self.dropped && !self.blackholed
    }
}

/// Counts over a record, for one-line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets seen.
    pub packets: usize,
    /// Dropped by loss.
    pub dropped: usize,
    /// Dropped by the blackhole.
    pub blackholed: usize,
    /// Sent twice.
    pub duplicated: usize,
    /// Overtook held-back packets.
    pub reordered: usize,
    /// Corrupted.
    pub corrupted: usize,
    /// Tampered with.
    pub tampered: usize,
}

impl Tally {
    /// Counts `records`.
    pub fn of(records: &[PacketRecord]) -> Tally {
        let mut t = Tally::default();
        for r in records {
            t.packets += 1;
            t.dropped += usize::from(r.dropped);
            t.blackholed += usize::from(r.blackholed);
            t.duplicated += usize::from(r.duplicated);
            t.reordered += usize::from(r.reordered);
            t.corrupted += usize::from(r.corrupted);
            t.tampered += usize::from(r.tampered);
        }
        t
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packets, {} lost, {} blackholed, {} duplicated, {} reordered, {} corrupted, {} tampered",
            self.packets,
            self.dropped,
            self.blackholed,
            self.duplicated,
            self.reordered,
            self.corrupted,
            self.tampered
        )
    }
}
