//! IPv4 (RFC 791), IPv6 (RFC 8200) and UDP (RFC 768) headers, as far as PTP needs them, and the
//! one's-complement checksum arithmetic (RFC 1071, RFC 1624) for rewriting UDP payloads.

use super::{Error, Result};

pub const PROTOCOL_UDP: u8 = 17;
pub const IPV6_HEADER_LEN: usize = 40;
pub const UDP_HEADER_LEN: usize = 8;

mod v4 {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const MIN_HEADER_LEN: usize = 20;
}

mod v6 {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

mod udp {
    use core::ops::Range;
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

    #[test]
    fn fold_carries() {
        assert_eq!(checksum_fold(0x1_FFFF), 0x0001);
        assert_eq!(checksum_fold(0xFFFF), 0xFFFF);
        assert_eq!(sum_words(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }
}
