//! Labels each recorded TCP segment with the kind of PORT message it carries.
//!
//! The bridge cannot decrypt, so it matches byte offsets: an endpoint started with
//! `--record FILE` writes one JSON line per PORT message it sent, in order, with its size on
//! the wire. Summing those sizes gives each message's offset in the TCP stream; a segment's
//! sequence number, taken relative to its connection's SYN, gives the bytes it carries, and
//! the segment gets the kind of the first message that starts in it (or of the message it
//! continues). Without such a record the first payload segment of a connection in each
//! direction is taken for INIT and the rest for DATA.

use serde::{Deserialize, Serialize};

use crate::packet::flags;
use crate::record::{Direction, PacketRecord};

/// What a segment carries, as the plot colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The handshake (client or server INIT).
    Init,
    /// Application data.
    Data,
    /// The end of the connection.
    Term,
    /// Keepalive (HDSK) requests and answers.
    Keepalive,
    /// Bare TCP segments (handshake, acknowledgements, FIN, RST) and anything else.
    Other,
}

impl Kind {
    /// The legend's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Init => "INIT",
            Kind::Data => "DATA",
            Kind::Term => "TERM",
            Kind::Keepalive => "keepalive",
            Kind::Other => "other",
        }
    }

    /// Every kind, in legend order.
    pub const ALL: [Kind; 5] = [
        Kind::Init,
        Kind::Data,
        Kind::Term,
        Kind::Keepalive,
        Kind::Other,
    ];
}

/// One PORT message an endpoint sent, as `--record` writes it (one JSON object per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Which connection of the endpoint (0, 1, ... in the order they were opened).
    pub connection: u32,
    /// What it was.
    pub kind: Kind,
    /// Application payload bytes.
    pub payload: usize,
    /// Padding bytes.
    pub padding: usize,
    /// Bytes on the wire (headers, tags, payload and padding).
    pub wire: usize,
    /// Milliseconds since the endpoint started.
    pub at_ms: u64,
}

/// Parses `--record` output; lines that do not parse are skipped.
pub fn parse_sent(text: &str) -> Vec<SentMessage> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The message kinds of one direction of one connection, by stream offset.
struct Stream {
    /// (start offset, end offset, kind), in order.
    spans: Vec<(u64, u64, Kind)>,
}

impl Stream {
    fn new(messages: &[&SentMessage]) -> Stream {
        let mut offset = 0u64;
        let spans = messages
            .iter()
            .map(|m| {
                let start = offset;
                offset += m.wire as u64;
                (start, offset, m.kind)
            })
            .collect();
        Stream { spans }
    }

    /// The kind of the first message starting in `[from, to)`, else of the one covering `from`.
    fn kind(&self, from: u64, to: u64) -> Option<Kind> {
        let starting = self
            .spans
            .iter()
            .find(|(start, _, _)| (from..to).contains(start));
        let covering = self
            .spans
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&from));
        starting.or(covering).map(|(_, _, kind)| *kind)
    }
}

/// Labels `records`. `client` and `server` are the messages each endpoint sent (empty when
/// not recorded).
pub fn label(
    records: &[PacketRecord],
    client: &[SentMessage],
    server: &[SentMessage],
) -> Vec<Kind> {
    let streams = |sent: &[SentMessage]| -> Vec<Stream> {
        let count = sent.iter().map(|m| m.connection + 1).max().unwrap_or(0);
        (0..count)
            .map(|c| {
                let of: Vec<&SentMessage> = sent.iter().filter(|m| m.connection == c).collect();
                Stream::new(&of)
            })
            .collect()
    };
    let (to_server, to_client) = (streams(client), streams(server));
    // Per direction: the connection index (count of SYNs seen) and its initial sequence.
    let mut state = [(None::<usize>, 0u32, false), (None, 0u32, false)];
    records
        .iter()
        .map(|r| {
            let side = usize::from(r.direction == Direction::ToClient);
            let (connection, isn, seen_payload) = &mut state[side];
            if r.flags & flags::SYN != 0 {
                // A retransmitted SYN carries the same sequence: the same connection.
                if connection.is_none() || *isn != r.seq {
                    *connection = Some(connection.map_or(0, |c| c + 1));
                    *isn = r.seq;
                    *seen_payload = false;
                }
                return Kind::Other;
            }
            if r.payload == 0 {
                return Kind::Other;
            }
            let streams = if side == 0 { &to_server } else { &to_client };
            let from = u64::from(r.seq.wrapping_sub(isn.wrapping_add(1)));
            let known = connection
                .and_then(|c| streams.get(c))
                .and_then(|s| s.kind(from, from + r.payload as u64));
            let first = !*seen_payload;
            *seen_payload = true;
            known.unwrap_or(if first && from == 0 {
                Kind::Init
            } else {
                Kind::Data
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(direction: Direction, seq: u32, payload: usize, tcp_flags: u8) -> PacketRecord {
        PacketRecord {
            at: Duration::ZERO,
            direction,
            size: 40 + payload,
            payload,
            flags: tcp_flags,
            seq,
            dropped: false,
            blackholed: false,
            duplicated: false,
            delay: Duration::ZERO,
            reordered: false,
            corrupted: false,
            tampered: false,
        }
    }

    fn sent(kind: Kind, wire: usize) -> SentMessage {
        SentMessage {
            connection: 0,
            kind,
            payload: 0,
            padding: 0,
            wire,
            at_ms: 0,
        }
    }

    #[test]
    fn offsets_pick_the_message_kind() {
        use Direction::*;
        let records = [
            packet(ToServer, 1000, 0, flags::SYN),
            packet(ToServer, 1001, 300, flags::ACK),
            packet(ToServer, 1301, 100, flags::ACK),
            packet(ToServer, 1401, 80, flags::ACK),
            packet(ToServer, 1301, 100, flags::ACK), // a retransmission
            packet(ToServer, 1481, 60, flags::ACK),
            packet(ToServer, 1541, 0, flags::ACK | flags::FIN),
        ];
        let client = [
            sent(Kind::Init, 300),
            sent(Kind::Data, 150),
            sent(Kind::Keepalive, 30),
            sent(Kind::Term, 60),
        ];
        let kinds = label(&records, &client, &[]);
        use Kind::*;
        // 1401..1481 covers the DATA's tail and the keepalive starting at 450: the keepalive.
        assert_eq!(kinds, [Other, Init, Data, Keepalive, Data, Term, Other]);
        let client = [
            sent(Kind::Init, 300),
            sent(Kind::Data, 110),
            sent(Kind::Keepalive, 70),
        ];
        assert_eq!(label(&records[..4], &client, &[])[3], Keepalive);
    }

    #[test]
    fn without_a_record_the_first_payload_is_init() {
        use Direction::*;
        let records = [
            packet(ToClient, 5000, 0, flags::SYN | flags::ACK),
            packet(ToClient, 5001, 120, flags::ACK),
            packet(ToClient, 5121, 90, flags::ACK),
            packet(ToClient, 7000, 0, flags::SYN | flags::ACK),
            packet(ToClient, 7001, 120, flags::ACK),
        ];
        use Kind::*;
        assert_eq!(label(&records, &[], &[]), [Other, Init, Data, Other, Init]);
    }

    #[test]
    fn records_parse_from_json_lines() {
        let text = "{\"connection\":0,\"kind\":\"init\",\"payload\":0,\"padding\":12,\"wire\":140,\"at_ms\":3}\nnot json\n";
        let parsed = parse_sent(text);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].kind, Kind::Init);
        assert_eq!(parsed[0].wire, 140);
    }
}
