//! # port-chaos: a network in chaos for PORT's scenarios
//!
//! Kernel netem is not available everywhere (many container and CI kernels have no netem qdisc
//! and cannot load it), so this crate builds its own: two network namespaces, one for a client
//! and one for a server, each with a TUN device routing the peer's address, and a user-space
//! bridge in the harness's own namespace that reads every IP packet from one TUN device and writes it
//! to the other after applying faults: delay with jitter, loss, duplication, reordering,
//! corruption, tampering and a blackhole. Real kernel TCP and the real adapters face the
//! faults.
//!
//! TUN rather than NFQUEUE verdicts: a TUN bridge needs no nftables or iptables rules and no
//! kernel modules beyond TUN itself, and since the bridge owns every packet it controls timing
//! (delay, jitter, holding packets back), duplication and rewriting completely; an NFQUEUE
//! verdict can only accept, drop or replace a packet at the moment it is queued.
//!
//! - [`fully_encrypted`]: the passive censor's fully-encrypted-traffic rule, judging a first
//!   packet.
//! - [`faults`]: the netem vocabulary (`delay 100ms 75ms`, `loss 30%`, ...) and its parser.
//! - [`inject`]: the decisions, seeded and free of devices, so they are unit-tested.
//! - [`packet`]: IPv4/TCP parsing, corruption, tampering with a fixed checksum.
//! - [`netns`]: the harness's own user and network namespaces (no root needed), and the
//!   client's and server's, gone whenever the harness goes, even killed outright.
//! - [`link`]: the TUN devices and the bridge.
//! - [`record`], [`label`], [`plot`]: every packet, its PORT message kind, one SVG per run.
//! - [`histogram`]: distributions a passive observer measures (popcounts, record sizes) as SVG.
//! - [`preflight`]: one clear line when the machine lacks what the harness needs.
#![forbid(unsafe_code)]

pub mod faults;
pub mod fully_encrypted;
pub mod histogram;
pub mod inject;
pub mod label;
pub mod link;
pub mod netns;
pub mod packet;
pub mod plot;
pub mod preflight;
pub mod record;

pub use faults::Faults;
pub use link::Link;
pub use record::{Direction, PacketRecord};

/// A harness failure, as one line for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<faults::ParseError> for Error {
    fn from(e: faults::ParseError) -> Error {
        Error(e.to_string())
    }
}
