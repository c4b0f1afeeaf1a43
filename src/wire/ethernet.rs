//! Ethernet II frames with at most one IEEE 802.1Q tag.
//!
//! A tag stays inline where the capture delivered it (veth, many NICs) and is kept as it is when
//! the frame is relayed: the view only reads past it. [`FrameRepr`] is the header as plain values,
//! for building frames (tests, the load generator) and reading them back.

use super::{Error, Result};
use core::fmt;

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HEADER_LEN: usize = 14;
    /// With an 802.1Q tag: TCI, then the inner EtherType.
    pub const VLAN_TCI: Range<usize> = 14..16;
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
    pub const VLAN_HEADER_LEN: usize = 18;
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// PTP over Ethernet, all messages but peer delay (IEEE 1588-2019 Annex E.3).
    pub const PTP_PRIMARY: EthernetAddress = EthernetAddress([0x01, 0x1B, 0x19, 0, 0, 0]);
    /// PTP peer delay: link-local, never forwarded by a bridge or a relay (Annex E.3).
    pub const PTP_PDELAY: EthernetAddress = EthernetAddress([0x01, 0x80, 0xC2, 0, 0, 0x0E]);
    /// 224.0.1.129 mapped to a MAC (RFC 1112 §6.4: 01-00-5E + low 23 bits of the group).
    pub const PTP_IPV4: EthernetAddress = EthernetAddress([0x01, 0x00, 0x5E, 0, 0x01, 0x81]);
    /// 224.0.0.107 (peer delay, Annex C.3) mapped to a MAC.
    pub const PTP_IPV4_PDELAY: EthernetAddress = EthernetAddress([0x01, 0x00, 0x5E, 0, 0, 0x6B]);
    /// FF0E::181 mapped to a MAC (RFC 2464 §7: 33-33 + low 32 bits of the group).
    pub const PTP_IPV6: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0x01, 0x81]);
    /// FF02::6B (peer delay, Annex D.3) mapped to a MAC.
    pub const PTP_IPV6_PDELAY: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0, 0x6B]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The EtherTypes ptpproxy looks at; everything else survives as `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Ipv6,
    Ptp,
    Vlan,
    ServiceVlan,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x86DD => EtherType::Ipv6,
            0x88F7 => EtherType::Ptp,
            0x8100 => EtherType::Vlan,
            0x88A8 => EtherType::ServiceVlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Ipv6 => 0x86DD,
            EtherType::Ptp => 0x88F7,
            EtherType::Vlan => 0x8100,
            EtherType::ServiceVlan => 0x88A8,
            EtherType::Unknown(other) => other,
        }
    }
}

/// Read/write view of an Ethernet II frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    let s = &b[r];
    u16::from_be_bytes([s[0], s[1]])
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap without checks; accessors may panic on a short buffer. Use `new_checked` on input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wrap a received frame. After `Ok`, no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Check the header (and tag, if any) fits; reject stacked tags.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        match EtherType::from(be16(b, field::ETHERTYPE)) {
            EtherType::ServiceVlan => Err(Error::StackedVlan),
            EtherType::Vlan => {
                if b.len() < field::VLAN_HEADER_LEN {
                    return Err(Error::Truncated);
                }
                match EtherType::from(be16(b, field::VLAN_ETHERTYPE)) {
                    EtherType::Vlan | EtherType::ServiceVlan => Err(Error::StackedVlan),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    pub fn dst(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    pub fn src(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    fn outer_ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), if tagged.
    pub fn vlan(&self) -> Option<u16> {
        match self.outer_ethertype() {
            EtherType::Vlan => Some(be16(self.buffer.as_ref(), field::VLAN_TCI)),
            _ => None,
        }
    }

    /// The EtherType of the payload (the inner one of a tagged frame).
    pub fn ethertype(&self) -> EtherType {
        match self.outer_ethertype() {
            EtherType::Vlan => EtherType::from(be16(self.buffer.as_ref(), field::VLAN_ETHERTYPE)),
            other => other,
        }
    }

    /// Length of the Ethernet header including the tag.
    pub fn header_len(&self) -> usize {
        match self.outer_ethertype() {
            EtherType::Vlan => field::VLAN_HEADER_LEN,
            _ => field::HEADER_LEN,
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    pub fn set_src(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }
}

/// The Ethernet header as plain values: addresses, the 802.1Q tag if any, the payload's
/// EtherType (the inner one of a tagged frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRepr {
    pub dst: EthernetAddress,
    pub src: EthernetAddress,
    /// Tag control information (PCP, DEI, VID) of an 802.1Q tag; `None` for an untagged frame.
    pub vlan: Option<u16>,
    pub ethertype: EtherType,
}

impl FrameRepr {
    /// Read the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<FrameRepr> {
        frame.check_len()?;
        Ok(FrameRepr {
            dst: frame.dst(),
            src: frame.src(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// 14 bytes, 18 with the tag.
    pub const fn header_len(&self) -> usize {
        match self.vlan {
            Some(_) => field::VLAN_HEADER_LEN,
            None => field::HEADER_LEN,
        }
    }

    /// Write the header into the first [`header_len`](Self::header_len) bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..self.header_len()];
        b[field::DESTINATION].copy_from_slice(&self.dst.0);
        b[field::SOURCE].copy_from_slice(&self.src.0);
        let inner = u16::from(self.ethertype).to_be_bytes();
        match self.vlan {
            Some(tci) => {
                b[field::ETHERTYPE].copy_from_slice(&u16::from(EtherType::Vlan).to_be_bytes());
                b[field::VLAN_TCI].copy_from_slice(&tci.to_be_bytes());
                b[field::VLAN_ETHERTYPE].copy_from_slice(&inner);
            }
            None => b[field::ETHERTYPE].copy_from_slice(&inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header bytes and the representation they stand for.
    const REPRS: [(&[u8], FrameRepr); 3] = [
        (
            &UNTAGGED,
            FrameRepr {
                dst: EthernetAddress::PTP_PRIMARY,
                src: EthernetAddress([2, 0, 0, 0, 0, 1]),
                vlan: None,
                ethertype: EtherType::Ptp,
            },
        ),
        (
            &[
                0x33, 0x33, 0, 0, 1, 0x81, 2, 0, 0, 0, 1, 1, 0x81, 0x00, 0xa0, 0x05, 0x86, 0xdd,
            ],
            FrameRepr {
                dst: EthernetAddress::PTP_IPV6,
                src: EthernetAddress([2, 0, 0, 0, 1, 1]),
                vlan: Some(0xa005),
                ethertype: EtherType::Ipv6,
            },
        ),
        (
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 1, 1, 0x08, 0x06,
            ],
            FrameRepr {
                dst: EthernetAddress([0xff; 6]),
                src: EthernetAddress([2, 0, 0, 0, 1, 1]),
                vlan: None,
                ethertype: EtherType::Unknown(0x0806),
            },
        ),
    ];

    #[test]
    fn repr_parse_and_emit_match_the_bytes() {
        for (bytes, repr) in REPRS {
            let f = Frame::new_checked(bytes).unwrap();
            assert_eq!(FrameRepr::parse(&f), Ok(repr));
            assert_eq!(repr.header_len(), f.header_len());
            let mut out = [0u8; 18];
            repr.emit(&mut out);
            assert_eq!(&out[..repr.header_len()], &bytes[..repr.header_len()]);
        }
    }

    #[test]
    fn ethertype_codes_round_trip() {
        for v in [0x0800u16, 0x86dd, 0x88f7, 0x8100, 0x88a8, 0x0806, 0] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
    }

    const UNTAGGED: [u8; 16] = [
        0x01, 0x1b, 0x19, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xf7, 0xaa, 0xbb,
    ];

    #[test]
    fn untagged_fields() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), EthernetAddress::PTP_PRIMARY);
        assert_eq!(f.src(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), EtherType::Ptp);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn one_tag_is_read_past() {
        let mut b = [0u8; 20];
        b[..12].copy_from_slice(&UNTAGGED[..12]);
        b[12..18].copy_from_slice(&[0x81, 0x00, 0x20, 0x0a, 0x88, 0xf7]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan(), Some(0x200a));
        assert_eq!(f.ethertype(), EtherType::Ptp);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload().len(), 2);
    }

    #[test]
    fn stacked_tags_and_short_frames_are_rejected() {
        let mut b = [0u8; 24];
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        b[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(Frame::new_checked(&b[..]).unwrap_err(), Error::StackedVlan);
        b[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(Frame::new_checked(&b[..]).unwrap_err(), Error::StackedVlan);
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        for n in 0..18 {
            assert_eq!(Frame::new_checked(&b[..n]).unwrap_err(), Error::Truncated);
        }
    }

    #[test]
    fn set_dst_rewrites_only_the_destination() {
        let mut b = UNTAGGED;
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_dst(EthernetAddress([2, 0, 0, 0, 1, 1]));
        assert_eq!(&b[..6], &[2, 0, 0, 0, 1, 1]);
        assert_eq!(&b[6..], &UNTAGGED[6..]);
    }
}
