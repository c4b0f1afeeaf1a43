//! IPv4 (RFC 791), IPv6 (RFC 8200) and UDP (RFC 768) headers, as far as PTP needs them, and the
//! one's-complement checksum arithmetic (RFC 1071, RFC 1624) for rewriting UDP payloads.
//!
//! The views read received packets; [`Ipv4Repr`], [`Ipv6Repr`] and [`UdpRepr`] are the headers as
//! plain values, parsed from a view or emitted into a caller's buffer (the IPv4 header checksum is
//! computed on emit, the UDP checksum as [`UdpChecksum`] says). IPv4 options are neither kept nor
//! emitted: PTP senders do not use them.

use super::{Error, Result};

pub const PROTOCOL_UDP: u8 = 17;
pub const IPV6_HEADER_LEN: usize = 40;
pub const UDP_HEADER_LEN: usize = 8;

mod v4 {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    /// DSCP and ECN (RFC 2474, RFC 3168), the old type of service.
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const MIN_HEADER_LEN: usize = 20;
}

mod v6 {
    use core::ops::Range;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VERSION: usize = 0;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

mod udp {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read view of an IPv4 header.
#[derive(Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without checks; accessors may panic on a short buffer. Use `new_checked` on input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Validate version, header length, total length, header checksum and fragmentation.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < v4::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let ihl = usize::from(b[v4::VER_IHL] & 0x0F) * 4;
        if b[v4::VER_IHL] >> 4 != 4 || ihl < v4::MIN_HEADER_LEN {
            return Err(Error::BadIpHeader);
        }
        if b.len() < ihl {
            return Err(Error::Truncated);
        }
        let total = usize::from(be16(b, v4::TOTAL_LEN.start));
        if total < ihl {
            return Err(Error::BadIpHeader);
        }
        if total > b.len() {
            return Err(Error::Truncated);
        }
        // RFC 1071: the one's-complement sum over a valid header is 0xFFFF.
        if checksum_fold(sum_words(&b[..ihl])) != 0xFFFF {
            return Err(Error::BadIpHeader);
        }
        // More-fragments set or a non-zero offset: a fragment.
        if be16(b, v4::FLAGS_FRAG.start) & 0x3FFF != 0 {
            return Err(Error::Fragmented);
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[v4::VER_IHL] & 0x0F) * 4
    }

    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), v4::TOTAL_LEN.start))
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[v4::PROTOCOL]
    }

    /// DSCP and ECN.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[v4::TOS]
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), v4::IDENT.start)
    }

    /// The DF flag.
    pub fn dont_fragment(&self) -> bool {
        self.buffer.as_ref()[v4::FLAGS_FRAG.start] & 0x40 != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[v4::TTL]
    }

    pub fn src(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[v4::SRC]);
        a
    }

    pub fn dst(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[v4::DST]);
        a
    }
}

/// Read view of an IPv6 fixed header.
#[derive(Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap without checks; accessors may panic on a short buffer. Use `new_checked` on input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < IPV6_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[v6::VERSION] >> 4 != 6 {
            return Err(Error::BadIpHeader);
        }
        if IPV6_HEADER_LEN + usize::from(be16(b, v6::PAYLOAD_LEN.start)) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), v6::PAYLOAD_LEN.start))
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[v6::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[v6::HOP_LIMIT]
    }

    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// The 20-bit flow label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000F_FFFF
    }

    fn ver_tc_flow(&self) -> u32 {
        let b = &self.buffer.as_ref()[v6::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[v6::SRC]);
        a
    }

    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[v6::DST]);
        a
    }
}

/// IPv6 extension headers (RFC 8200 §4, RFC 7045): hop-by-hop, routing, fragment, ESP, AH,
/// destination options, mobility, HIP, shim6.
pub fn is_ipv6_extension(next_header: u8) -> bool {
    matches!(next_header, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140)
}

/// View of a UDP datagram whose buffer is exactly the IP payload.
#[derive(Debug)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Wrap without checks; accessors may panic on a short buffer. Use `new_checked` on input.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpDatagram { buffer }
    }

    /// The UDP length must cover the header and fit the IP payload.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < UDP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(be16(b, udp::LENGTH.start));
        if len < UDP_HEADER_LEN || len > b.len() {
            return Err(Error::BadUdpLength);
        }
        Ok(UdpDatagram { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), udp::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), udp::DST_PORT.start)
    }

    pub fn len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), udp::LENGTH.start))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == UDP_HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), udp::CHECKSUM.start)
    }
}

/// An IPv4 header as plain values. `payload_len` is what follows the header (total length minus
/// 20); options are not represented, so [`emit`](Self::emit) writes a 20-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    /// DSCP and ECN (the old type of service).
    pub tos: u8,
    /// Identification (RFC 6864: meaningless with DF set, but Linux fills it in).
    pub ident: u16,
    pub dont_fragment: bool,
}

impl Ipv4Repr {
    pub const HEADER_LEN: usize = v4::MIN_HEADER_LEN;

    /// A UDP packet as PTP sends it: TTL 1 (PTP multicast stays on the link, IEEE 1588-2019
    /// Annex C), DF set (the messages are far smaller than any MTU), TOS and ident zero.
    pub const fn udp(src: [u8; 4], dst: [u8; 4], payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol: PROTOCOL_UDP,
            payload_len,
            ttl: 1,
            tos: 0,
            ident: 0,
            dont_fragment: true,
        }
    }

    /// Read a checked header (options are skipped).
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        Ok(Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_fragment: p.dont_fragment(),
        })
    }

    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    pub const fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Write the 20-byte header, header checksum included, into the start of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than 20 bytes or the total length exceeds 65535.
    pub fn emit(&self, buf: &mut [u8]) {
        let total = u16::try_from(self.buffer_len()).expect("IPv4 packet over 65535 bytes");
        let b = &mut buf[..Self::HEADER_LEN];
        b[v4::VER_IHL] = 0x45; // version 4, 5 words
        b[v4::TOS] = self.tos;
        b[v4::TOTAL_LEN].copy_from_slice(&total.to_be_bytes());
        b[v4::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let flags: u16 = if self.dont_fragment { 0x4000 } else { 0 };
        b[v4::FLAGS_FRAG].copy_from_slice(&flags.to_be_bytes());
        b[v4::TTL] = self.ttl;
        b[v4::PROTOCOL] = self.protocol;
        b[v4::CHECKSUM].fill(0);
        b[v4::SRC].copy_from_slice(&self.src);
        b[v4::DST].copy_from_slice(&self.dst);
        // RFC 791 §3.1: the complement of the one's-complement sum, taken with the field zero.
        let c = !checksum_fold(sum_words(b));
        b[v4::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// The IPv6 fixed header as plain values (no extension headers: PTP does not use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits (RFC 6437); the upper bits are ignored on emit.
    pub flow_label: u32,
}

impl Ipv6Repr {
    pub const HEADER_LEN: usize = IPV6_HEADER_LEN;

    /// A UDP packet as PTP sends it: hop limit 1 (Annex D), traffic class and flow label zero.
    pub const fn udp(src: [u8; 16], dst: [u8; 16], payload_len: usize) -> Ipv6Repr {
        Ipv6Repr {
            src,
            dst,
            next_header: PROTOCOL_UDP,
            payload_len,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        Ok(Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    pub const fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Write the 40-byte header into the start of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than 40 bytes or the payload exceeds 65535 bytes (no jumbograms).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = u16::try_from(self.payload_len).expect("IPv6 payload over 65535 bytes");
        let b = &mut buf[..Self::HEADER_LEN];
        let word = (6 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xF_FFFF);
        b[v6::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
        b[v6::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
        b[v6::NEXT_HEADER] = self.next_header;
        b[v6::HOP_LIMIT] = self.hop_limit;
        b[v6::SRC].copy_from_slice(&self.src);
        b[v6::DST].copy_from_slice(&self.dst);
    }
}

/// What [`UdpRepr::emit`] puts in the UDP checksum field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpChecksum {
    /// The full checksum over pseudo-header, header and payload; a computed zero is sent as
    /// 0xFFFF (RFC 768).
    Complete,
    /// Zero: "no checksum". IPv4 only: over IPv6 a zero checksum is not allowed (RFC 8200 §8.1).
    Zero,
    /// The folded pseudo-header sum alone: what a Linux sender with checksum offload leaves for
    /// its NIC to complete (CHECKSUM_PARTIAL), and what a capture on a veth then shows.
    Partial,
    /// This exact value (a wrong checksum, or one read back that none of the above produce).
    Fixed(u16),
}

impl UdpChecksum {
    /// Which of the variants the checksum field of `datagram` (header and payload, as long as
    /// its length field says) is, given the pseudo-header sum ([`pseudo_header_sum`]). Zero
    /// reads as [`UdpChecksum::Zero`]; an IPv6 reader wants `Fixed(0)` instead.
    pub fn classify(datagram: &[u8], pseudo_sum: u32) -> UdpChecksum {
        let field = be16(datagram, udp::CHECKSUM.start);
        if field == 0 {
            return UdpChecksum::Zero;
        }
        if field == udp_checksum_value(datagram, pseudo_sum) {
            UdpChecksum::Complete
        } else if field == checksum_fold(pseudo_sum) {
            UdpChecksum::Partial
        } else {
            UdpChecksum::Fixed(field)
        }
    }
}

/// The complete UDP checksum of `datagram`, its own checksum field taken as zero.
fn udp_checksum_value(datagram: &[u8], pseudo_sum: u32) -> u16 {
    let sum = pseudo_sum
        + sum_words(&datagram[..udp::CHECKSUM.start])
        + sum_words(&datagram[udp::CHECKSUM.end..]);
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    match !checksum_fold(sum) {
        0 => 0xFFFF,
        c => c,
    }
}

/// One's-complement sum of the pseudo-header UDP's checksum covers: addresses, protocol and
/// UDP length (RFC 768 for IPv4 with 4-byte addresses, RFC 8200 §8.1 for IPv6 with 16-byte ones;
/// below 64 KiB the 32-bit IPv6 length sums the same as the 16-bit one).
pub fn pseudo_header_sum(src: &[u8], dst: &[u8], protocol: u8, udp_len: usize) -> u32 {
    sum_words(src) + sum_words(dst) + u32::from(protocol) + udp_len as u32
}

/// A UDP header as plain values; `payload_len` is what follows the 8-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl UdpRepr {
    pub const HEADER_LEN: usize = UDP_HEADER_LEN;

    pub fn parse<T: AsRef<[u8]>>(d: &UdpDatagram<T>) -> Result<UdpRepr> {
        Ok(UdpRepr {
            src_port: d.src_port(),
            dst_port: d.dst_port(),
            payload_len: d.len() - UDP_HEADER_LEN,
        })
    }

    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The UDP length: header and payload.
    pub const fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Write the header into `datagram`, whose first [`buffer_len`](Self::buffer_len) bytes are
    /// the datagram with its payload already in place (the checksum covers it), and set the
    /// checksum as `checksum` says. `pseudo_sum` is [`pseudo_header_sum`] for this datagram.
    ///
    /// # Panics
    /// If `datagram` is shorter than `buffer_len()` or that exceeds 65535.
    pub fn emit(&self, datagram: &mut [u8], pseudo_sum: u32, checksum: UdpChecksum) {
        let len = u16::try_from(self.buffer_len()).expect("UDP datagram over 65535 bytes");
        let d = &mut datagram[..self.buffer_len()];
        d[udp::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        d[udp::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        d[udp::LENGTH].copy_from_slice(&len.to_be_bytes());
        let c = match checksum {
            UdpChecksum::Complete => udp_checksum_value(d, pseudo_sum),
            UdpChecksum::Zero => 0,
            UdpChecksum::Partial => checksum_fold(pseudo_sum),
            UdpChecksum::Fixed(c) => c,
        };
        d[udp::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Sum of big-endian 16-bit words, odd trailing byte padded with zero (RFC 1071).
pub fn sum_words(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u32 = 0;
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// The Internet checksum `checksum` of a message after the bytes `old` in it became `new`
/// (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')), without reading the rest of the message. `old`
/// and `new` have the same even length and start at an even offset from the start of what the
/// checksum covers. For UDP, a result of zero is returned as 0xFFFF (RFC 768: zero means "no
/// checksum"; both are negative zero in one's complement).
pub fn checksum_update(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert!(old.len() == new.len() && old.len() % 2 == 0);
    let old_complement: u32 = old
        .chunks_exact(2)
        .map(|c| u32::from(!u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = u32::from(!checksum) + old_complement + sum_words(new);
    match !checksum_fold(sum) {
        0 => 0xFFFF,
        c => c,
    }
}

/// Fold a 32-bit one's-complement accumulator to 16 bits.
pub fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::super::samples;
    use super::*;

    // An IPv4 header with a valid checksum: 10.98.0.1 -> 224.0.1.129, UDP, total length 72.
    const V4: [u8; 20] = [
        0x45, 0x00, 0x00, 0x48, 0x00, 0x00, 0x40, 0x00, 0x01, 0x11, 0x00, 0x00, 10, 98, 0, 1, 224,
        0, 1, 129,
    ];

    fn with_checksum(mut h: [u8; 20]) -> [u8; 20] {
        h[10] = 0;
        h[11] = 0;
        let c = !checksum_fold(sum_words(&h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    #[test]
    fn ipv4_checks() {
        let h = with_checksum(V4);
        let mut buf = [0u8; 72];
        buf[..20].copy_from_slice(&h);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.dst(), [224, 0, 1, 129]);
        assert_eq!(p.protocol(), PROTOCOL_UDP);
        assert_eq!(p.total_len(), 72);
        // total length beyond the buffer
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..71]).unwrap_err(),
            Error::Truncated
        );
        // corrupt checksum
        let mut bad = buf;
        bad[8] = 2;
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::BadIpHeader
        );
        // fragment
        let mut frag = V4;
        frag[6] = 0x20; // MF
        let mut fbuf = buf;
        fbuf[..20].copy_from_slice(&with_checksum(frag));
        assert_eq!(
            Ipv4Packet::new_checked(&fbuf[..]).unwrap_err(),
            Error::Fragmented
        );
        // version 5, ihl 4
        for b0 in [0x55u8, 0x44] {
            let mut v = V4;
            v[0] = b0;
            let mut vbuf = buf;
            vbuf[..20].copy_from_slice(&with_checksum(v));
            assert_eq!(
                Ipv4Packet::new_checked(&vbuf[..]).unwrap_err(),
                Error::BadIpHeader
            );
        }
    }

    #[test]
    fn udp_length_must_fit() {
        let mut d = [0u8; 16];
        d[2..4].copy_from_slice(&319u16.to_be_bytes());
        d[4..6].copy_from_slice(&16u16.to_be_bytes());
        assert_eq!(UdpDatagram::new_checked(&d[..]).unwrap().dst_port(), 319);
        d[4..6].copy_from_slice(&17u16.to_be_bytes());
        assert_eq!(
            UdpDatagram::new_checked(&d[..]).unwrap_err(),
            Error::BadUdpLength
        );
        d[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpDatagram::new_checked(&d[..]).unwrap_err(),
            Error::BadUdpLength
        );
    }

    /// IPv4 headers and what they stand for: ptp4l's (ident and DF as Linux sets them) and one
    /// with TOS, no DF and a larger TTL.
    #[test]
    fn ipv4_repr_matches_the_bytes() {
        let ptp4l = Ipv4Repr {
            ident: 0x4d0e,
            ..Ipv4Repr::udp([10, 99, 0, 1], [224, 0, 1, 129], 52)
        };
        let other = Ipv4Repr {
            src: [192, 0, 2, 1],
            dst: [192, 0, 2, 200],
            protocol: 6,
            payload_len: 0,
            ttl: 64,
            tos: 0xb8,
            ident: 0xffff,
            dont_fragment: false,
        };
        let cases: [(&[u8], Ipv4Repr); 2] = [
            (&samples::UDP4_SYNC[14..34], ptp4l),
            (
                &with_checksum([
                    0x45, 0xb8, 0x00, 0x14, 0xff, 0xff, 0x00, 0x00, 64, 6, 0, 0, 192, 0, 2, 1, 192,
                    0, 2, 200,
                ]),
                other,
            ),
        ];
        for (bytes, repr) in cases {
            let mut packet = [0u8; 20 + 52];
            packet[..20].copy_from_slice(bytes);
            let p = Ipv4Packet::new_checked(&packet[..repr.buffer_len()]).unwrap();
            assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
            let mut out = [0xa5u8; 20];
            repr.emit(&mut out);
            assert_eq!(&out[..], bytes);
        }
    }

    #[test]
    fn ipv6_repr_matches_the_bytes() {
        let f = &samples::UDP6_SYNC;
        let p = Ipv6Packet::new_checked(&f[14..]).unwrap();
        let mut src = [0u8; 16];
        src[..2].copy_from_slice(&[0xfd, 0x99]);
        src[15] = 1;
        let mut dst = [0u8; 16];
        dst[..2].copy_from_slice(&[0xff, 0x0e]);
        dst[14..].copy_from_slice(&[0x01, 0x81]);
        let repr = Ipv6Repr {
            flow_label: 0x2_0c4c,
            ..Ipv6Repr::udp(src, dst, 54)
        };
        assert_eq!(Ipv6Repr::parse(&p), Ok(repr));
        let mut out = [0u8; 40];
        repr.emit(&mut out);
        assert_eq!(out, f[14..54]);
        let tc = Ipv6Repr {
            traffic_class: 0xb8,
            flow_label: 0xF_FFFF,
            ..repr
        };
        tc.emit(&mut out);
        assert_eq!(out[..4], [0x6b, 0x8f, 0xff, 0xff]);
        let mut packet = f[14..].to_vec();
        packet[..40].copy_from_slice(&out);
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_checked(&packet[..]).unwrap()),
            Ok(tc)
        );
    }

    #[test]
    fn udp_repr_and_every_checksum_kind() {
        for (f, l3) in [(&samples::UDP4_SYNC[..], 34), (&samples::UDP6_SYNC[..], 54)] {
            let (src, dst) = if l3 == 34 {
                (&f[26..30], &f[30..34])
            } else {
                (&f[22..38], &f[38..54])
            };
            let datagram = &f[l3..];
            let d = UdpDatagram::new_checked(datagram).unwrap();
            let repr = UdpRepr::parse(&d).unwrap();
            // ptp4l appends two octets to a message over UDPv6 (see `build`).
            let payload_len = if l3 == 34 { 44 } else { 46 };
            assert_eq!(
                repr,
                UdpRepr {
                    src_port: 319,
                    dst_port: 319,
                    payload_len
                }
            );
            let pseudo = pseudo_header_sum(src, dst, PROTOCOL_UDP, repr.buffer_len());
            assert_eq!(
                UdpChecksum::classify(datagram, pseudo),
                UdpChecksum::Complete
            );
            let mut out = datagram.to_vec();
            out[..8].fill(0);
            repr.emit(&mut out, pseudo, UdpChecksum::Complete);
            assert_eq!(out, datagram);
            for (kind, field) in [
                (UdpChecksum::Zero, 0),
                (UdpChecksum::Partial, checksum_fold(pseudo)),
                (UdpChecksum::Fixed(0x1234), 0x1234),
            ] {
                repr.emit(&mut out, pseudo, kind);
                assert_eq!(u16::from_be_bytes([out[6], out[7]]), field);
                assert_eq!(out[8..], datagram[8..]);
                assert_eq!(UdpChecksum::classify(&out, pseudo), kind);
            }
        }
    }

    #[test]
    fn fold_carries() {
        assert_eq!(checksum_fold(0x1_FFFF), 0x0001);
        assert_eq!(checksum_fold(0xFFFF), 0xFFFF);
        assert_eq!(sum_words(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }
}
