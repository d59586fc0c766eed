//! Just enough IPv4 and TCP to record a packet, corrupt it and tamper with it.
//!
//! Corruption flips a byte after the IP header and leaves the TCP checksum as it was, so the
//! receiving kernel drops the segment and TCP retransmits it. Tampering flips payload bytes and
//! then recomputes the TCP checksum, so the kernel accepts the altered bytes and only the
//! layer above TCP can notice.

/// TCP flag bits as they appear in the header's 13th byte.
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
}

/// What the bridge needs to know about one IPv4 packet carrying TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpView {
    /// Length of the IP header in bytes.
    pub ip_header: usize,
    /// Length of the TCP header in bytes.
    pub tcp_header: usize,
    /// TCP payload bytes.
    pub payload: usize,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number of the first payload byte.
    pub seq: u32,
}

/// Parses an IPv4 packet carrying TCP; `None` for anything else (or a truncated packet).
pub fn tcp_view(packet: &[u8]) -> Option<TcpView> {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != 6 {
        return None;
    }
    let ip_header = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
    let tcp = packet.get(ip_header..total)?;
    if tcp.len() < 20 {
        return None;
    }
    let tcp_header = usize::from(tcp[12] >> 4) * 4;
    let payload = tcp.len().checked_sub(tcp_header)?;
    Some(TcpView {
        ip_header,
        tcp_header,
        payload,
        flags: tcp[13],
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    })
}

/// The ones' complement sum of `data` folded into 16 bits, starting from `initial`.
fn ones_complement_sum(initial: u32, data: &[u8]) -> u32 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The TCP checksum `packet` should carry (computed with its checksum field taken as zero).
pub fn tcp_checksum(packet: &[u8]) -> Option<u16> {
    let view = tcp_view(packet)?;
    let total = view.ip_header + view.tcp_header + view.payload;
    let segment = &packet[view.ip_header..total];
    let length = u32::try_from(segment.len()).ok()?;
    // Pseudo-header: source, destination, protocol, TCP length.
    let mut sum = ones_complement_sum(0, &packet[12..20]);
    sum = ones_complement_sum(sum + 6 + length, &[]);
    sum = ones_complement_sum(sum, &segment[..16]);
    sum = ones_complement_sum(sum, &segment[18..]);
    Some(!(sum as u16))
}

/// The checksum the packet carries now.
pub fn stored_tcp_checksum(packet: &[u8]) -> Option<u16> {
    let view = tcp_view(packet)?;
    let at = view.ip_header + 16;
    Some(u16::from_be_bytes([packet[at], packet[at + 1]]))
}

/// Flips the byte at `offset` (taken modulo the bytes after the IP header) with `mask`
/// (never zero), leaving the IP header and the TCP checksum alone. Returns false for a packet
/// that is not TCP over IPv4.
pub fn corrupt(packet: &mut [u8], offset: usize, mask: u8) -> bool {
    let Some(view) = tcp_view(packet) else {
        return false;
    };
    let span = view.tcp_header + view.payload;
    let at = view.ip_header + offset % span;
    packet[at] ^= mask.max(1);
    true
}

/// Flips the payload byte at `offset` (modulo the payload length) with `mask` (never zero)
/// and rewrites the TCP checksum so the segment is accepted. Returns false when there is no
/// payload to alter.
pub fn tamper(packet: &mut [u8], offset: usize, mask: u8) -> bool {
    let Some(view) = tcp_view(packet) else {
        return false;
    };
    if view.payload == 0 {
        return false;
    }
    let at = view.ip_header + view.tcp_header + offset % view.payload;
    packet[at] ^= mask.max(1);
    let Some(sum) = tcp_checksum(packet) else {
        return false;
    };
    let field = view.ip_header + 16;
    packet[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TCP/IPv4 packet from 10.213.0.1:40000 to 10.213.0.2:9000 with a correct checksum.
    pub(crate) fn segment(payload: &[u8], tcp_flags: u8) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 213, 0, 1]);
        p[16..20].copy_from_slice(&[10, 213, 0, 2]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&9000u16.to_be_bytes());
        p[24..28].copy_from_slice(&1234u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = tcp_flags;
        p[40..].copy_from_slice(payload);
        let sum = tcp_checksum(&p).unwrap();
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn views_a_segment() {
        let p = segment(b"hello", flags::ACK | flags::PSH);
        let v = tcp_view(&p).unwrap();
        assert_eq!((v.ip_header, v.tcp_header, v.payload), (20, 20, 5));
        assert_eq!(v.flags, flags::ACK | flags::PSH);
        assert_eq!(v.seq, 1234);
        assert!(tcp_view(&p[..30]).is_none());
        let mut udp = p.clone();
        udp[9] = 17;
        assert!(tcp_view(&udp).is_none());
    }

    #[test]
    fn checksum_matches_a_known_segment() {
        // The same algorithm from scratch: a sum over a one-byte-odd payload verifies to zero
        // when the stored checksum is included.
        let p = segment(b"odd", flags::ACK);
        let mut sum = ones_complement_sum(0, &p[12..20]);
        sum = ones_complement_sum(sum + 6 + (p.len() as u32 - 20), &p[20..]);
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn corruption_breaks_the_checksum_and_keeps_the_ip_header() {
        for offset in 0..45 {
            let mut p = segment(b"some payload bytes here!", flags::ACK);
            let ip_header = p[..20].to_vec();
            assert!(corrupt(&mut p, offset, 0x5a));
            assert_eq!(&p[..20], &ip_header[..]);
            assert_ne!(tcp_checksum(&p), stored_tcp_checksum(&p), "offset {offset}");
        }
    }

    #[test]
    fn tampering_changes_the_payload_and_fixes_the_checksum() {
        let original = segment(b"attack at dawn", flags::ACK | flags::PSH);
        let mut p = original.clone();
        assert!(tamper(&mut p, 3, 0x01));
        assert_ne!(p[40..], original[40..]);
        assert_eq!(p[..36], original[..36]);
        assert_eq!(tcp_checksum(&p), stored_tcp_checksum(&p));
        let mut bare = segment(b"", flags::ACK);
        assert!(!tamper(&mut bare, 0, 1));
    }
}
