//! Whole PTP frames as plain values: Ethernet (with an optional 802.1Q tag), the transport
//! (Ethernet, UDP over IPv4 or over IPv6) and the PTP message, emitted into a caller's buffer in
//! one call, or parsed back from captured bytes.
//!
//! The constructors pick what a PTP sender would (IEEE 1588-2019 Annex C for UDP/IPv4, Annex D
//! for UDP/IPv6, Annex E for Ethernet): the PTP multicast group (224.0.1.129, FF0E::181,
//! 01-1B-19-00-00-00; peer-delay messages their link-local groups 224.0.0.107, FF02::6B,
//! 01-80-C2-00-00-0E) and its MAC, UDP port 319 for event messages and 320 for general ones, TTL
//! or hop limit 1, a complete UDP checksum, and a source MAC derived from the sender's
//! clockIdentity (EUI-64 back to EUI-48 by dropping FF-FE, as ptp4l derives one from the other).
//! Every field stays public, and `with_*` methods change the common ones, so a test can build
//! the odd frame as easily as the usual one. Nothing allocates: a load generator can emit
//! thousands of frames into one buffer.
//!
//! On emit, the IP and UDP lengths are derived from the message, the trailer and the header
//! sizes, and the IPv4 header checksum is computed; messageLength is the message header's own
//! (see [`MessageRepr`]). [`PtpFrameRepr::parse`] reads a frame [`PtpFrame::parse`] accepts; emit
//! then reproduces it byte for byte when it is canonical: no IPv4 options, the UDP datagram
//! filling the IP payload, zero Ethernet padding.
//!
//! ```
//! use ptpproxy::wire::build::PtpFrameRepr;
//! use ptpproxy::wire::ptp::{MessageRepr, Timestamp};
//! use ptpproxy::wire::{PortIdentity, PtpFrame};
//!
//! let client = PortIdentity { clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, 1], port_number: 1 };
//! let req = MessageRepr::delay_req(client, 7, Timestamp::default());
//! let mut buf = [0u8; 128];
//! let n = PtpFrameRepr::udp4([10, 0, 0, 11], req).with_vlan(5).emit(&mut buf);
//! let frame = PtpFrame::parse(&buf[..n]).unwrap();
//! assert_eq!(frame.vlan, Some(5));
//! assert_eq!(frame.src.0, [2, 0, 0, 0, 1, 1]);
//! assert_eq!(frame.ptp(&buf[..n]).unwrap().sequence_id(), 7);
//! ```

use super::ethernet::{self, EtherType, EthernetAddress, FrameRepr};
use super::ip::{
    self, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpChecksum, UdpDatagram, UdpRepr,
};
use super::ptp::{MessageRepr, MessageType};
use super::{Error, PtpFrame, Result, Transport, PTP_EVENT_PORT, PTP_GENERAL_PORT};

/// The PTP primary group over IPv4 (Annex C.3).
pub const PTP_PRIMARY_IPV4: [u8; 4] = [224, 0, 1, 129];
/// The peer-delay group over IPv4 (Annex C.3).
pub const PTP_PDELAY_IPV4: [u8; 4] = [224, 0, 0, 107];
/// The PTP primary group over IPv6, global scope: FF0E::181 (Annex D.3).
pub const PTP_PRIMARY_IPV6: [u8; 16] = [0xFF, 0x0E, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x81];
/// The peer-delay group over IPv6, link-local: FF02::6B (Annex D.3).
pub const PTP_PDELAY_IPV6: [u8; 16] = [0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x6B];

/// The smallest Ethernet frame without its FCS: shorter ones are padded on the wire (IEEE
/// 802.3 §3.2.7; a capture on a veth shows them unpadded).
pub const ETHERNET_MIN_LEN: usize = 60;

/// The UDP port a message of this type goes to (Annex C.2, D.2): 319 for event messages,
/// 320 for general ones.
pub fn ptp_port(message_type: MessageType) -> u16 {
    if message_type.is_event() {
        PTP_EVENT_PORT
    } else {
        PTP_GENERAL_PORT
    }
}

/// The EUI-48 a clockIdentity was derived from by inserting FF-FE in the middle (IEEE
/// 1588-2019 §7.5.2.2.2; what ptp4l does with the interface MAC).
pub fn mac_of_clock_identity(id: &[u8; 8]) -> EthernetAddress {
    EthernetAddress([id[0], id[1], id[2], id[5], id[6], id[7]])
}

/// How the message travels, and the fields of the headers that carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportRepr {
    /// Directly over Ethernet, EtherType 0x88F7 (Annex E).
    L2,
    /// UDP over IPv4 (Annex C). `ip.payload_len` is not read on emit, which derives it (the
    /// `PtpFrameRepr` constructors and `with_*` methods keep it equal to the derived value).
    Udp4 {
        ip: Ipv4Repr,
        src_port: u16,
        dst_port: u16,
        checksum: UdpChecksum,
    },
    /// UDP over IPv6 (Annex D). `ip.payload_len` is derived on emit, as for `Udp4`. A
    /// [`UdpChecksum::Zero`] is emitted as `Complete`: IPv6 has no "no checksum" (RFC 8200 §8.1).
    Udp6 {
        ip: Ipv6Repr,
        src_port: u16,
        dst_port: u16,
        checksum: UdpChecksum,
    },
}

impl TransportRepr {
    /// UDP/IPv4 from `src` to the group of `message_type`, TTL 1, both ports the type's.
    pub fn udp4(src: [u8; 4], message_type: MessageType) -> TransportRepr {
        let dst = if message_type.is_pdelay() {
            PTP_PDELAY_IPV4
        } else {
            PTP_PRIMARY_IPV4
        };
        let port = ptp_port(message_type);
        TransportRepr::Udp4 {
            ip: Ipv4Repr::udp(src, dst, 0),
            src_port: port,
            dst_port: port,
            checksum: UdpChecksum::Complete,
        }
    }

    /// UDP/IPv6 from `src` to the group of `message_type`, hop limit 1, both ports the type's.
    pub fn udp6(src: [u8; 16], message_type: MessageType) -> TransportRepr {
        let dst = if message_type.is_pdelay() {
            PTP_PDELAY_IPV6
        } else {
            PTP_PRIMARY_IPV6
        };
        let port = ptp_port(message_type);
        TransportRepr::Udp6 {
            ip: Ipv6Repr::udp(src, dst, 0),
            src_port: port,
            dst_port: port,
            checksum: UdpChecksum::Complete,
        }
    }

    pub fn ethertype(&self) -> EtherType {
        match self {
            TransportRepr::L2 => EtherType::Ptp,
            TransportRepr::Udp4 { .. } => EtherType::Ipv4,
            TransportRepr::Udp6 { .. } => EtherType::Ipv6,
        }
    }

    /// IP and UDP header bytes in front of the message (0 for L2).
    pub fn header_len(&self) -> usize {
        match self {
            TransportRepr::L2 => 0,
            TransportRepr::Udp4 { .. } => Ipv4Repr::HEADER_LEN + UdpRepr::HEADER_LEN,
            TransportRepr::Udp6 { .. } => Ipv6Repr::HEADER_LEN + UdpRepr::HEADER_LEN,
        }
    }

    /// The multicast MAC of the IP destination group, as RFC 1112 §6.4 and RFC 2464 §7 map it;
    /// for L2 the PTP group of the message type (Annex E.3).
    pub fn group_mac(&self, message_type: MessageType) -> EthernetAddress {
        match self {
            TransportRepr::L2 if message_type.is_pdelay() => EthernetAddress::PTP_PDELAY,
            TransportRepr::L2 => EthernetAddress::PTP_PRIMARY,
            TransportRepr::Udp4 { ip, .. } => {
                EthernetAddress([0x01, 0x00, 0x5E, ip.dst[1] & 0x7F, ip.dst[2], ip.dst[3]])
            }
            TransportRepr::Udp6 { ip, .. } => {
                EthernetAddress([0x33, 0x33, ip.dst[12], ip.dst[13], ip.dst[14], ip.dst[15]])
            }
        }
    }
}

/// A whole Ethernet frame carrying one PTP message, as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtpFrameRepr<'a> {
    pub dst: EthernetAddress,
    pub src: EthernetAddress,
    /// Tag control information of an 802.1Q tag; `None` for an untagged frame.
    pub vlan: Option<u16>,
    pub transport: TransportRepr,
    pub message: MessageRepr<'a>,
    /// UDP payload after the PTP message (ignored for L2). ptp4l appends two zero octets over
    /// UDP/IPv6, room to fix up the UDP checksum after a one-step timestamp (Annex D): use
    /// `with_trailer(&[0, 0])` to build what it sends.
    pub trailer: &'a [u8],
    /// Zero bytes after the IP packet (L2: after the message): Ethernet padding.
    pub padding: usize,
}

impl<'a> PtpFrameRepr<'a> {
    /// `message` over Ethernet to the PTP group of its type, from the MAC its source
    /// clockIdentity was derived from.
    pub fn l2(message: MessageRepr<'a>) -> Self {
        PtpFrameRepr::with_transport(TransportRepr::L2, message)
    }

    /// `message` over UDP/IPv4 from `src` to the PTP group of its type.
    pub fn udp4(src: [u8; 4], message: MessageRepr<'a>) -> Self {
        PtpFrameRepr::with_transport(TransportRepr::udp4(src, message.message_type()), message)
    }

    /// `message` over UDP/IPv6 from `src` to the PTP group of its type.
    pub fn udp6(src: [u8; 16], message: MessageRepr<'a>) -> Self {
        PtpFrameRepr::with_transport(TransportRepr::udp6(src, message.message_type()), message)
    }

    /// `message` over `transport`, to the group MAC of the transport's destination and from
    /// the MAC of the source clockIdentity; untagged, no trailer, no padding.
    pub fn with_transport(transport: TransportRepr, message: MessageRepr<'a>) -> Self {
        PtpFrameRepr {
            dst: transport.group_mac(message.message_type()),
            src: mac_of_clock_identity(&message.header.source_port_identity.clock_identity),
            vlan: None,
            transport,
            message,
            trailer: &[],
            padding: 0,
        }
        .with_derived_lengths()
    }

    /// The same frame with `ip.payload_len` set to what emit writes, so that a frame built here
    /// compares equal to the one [`parse`](Self::parse) reads back.
    pub fn with_derived_lengths(mut self) -> Self {
        let udp_len = UdpRepr::HEADER_LEN + self.message.buffer_len() + self.trailer().len();
        match &mut self.transport {
            TransportRepr::L2 => {}
            TransportRepr::Udp4 { ip, .. } => ip.payload_len = udp_len,
            TransportRepr::Udp6 { ip, .. } => ip.payload_len = udp_len,
        }
        self
    }

    /// Tagged with this 802.1Q tag control information (PCP, DEI, VID).
    pub fn with_vlan(mut self, tci: u16) -> Self {
        self.vlan = Some(tci);
        self
    }

    pub fn with_dst(mut self, dst: EthernetAddress) -> Self {
        self.dst = dst;
        self
    }

    pub fn with_src(mut self, src: EthernetAddress) -> Self {
        self.src = src;
        self
    }

    /// The UDP checksum to emit (no effect for L2).
    pub fn with_udp_checksum(mut self, c: UdpChecksum) -> Self {
        if let TransportRepr::Udp4 { checksum, .. } | TransportRepr::Udp6 { checksum, .. } =
            &mut self.transport
        {
            *checksum = c;
        }
        self
    }

    /// Both UDP ports (no effect for L2).
    pub fn with_udp_ports(mut self, src: u16, dst: u16) -> Self {
        if let TransportRepr::Udp4 {
            src_port, dst_port, ..
        }
        | TransportRepr::Udp6 {
            src_port, dst_port, ..
        } = &mut self.transport
        {
            (*src_port, *dst_port) = (src, dst);
        }
        self
    }

    /// The IPv4 destination, and the destination MAC with it (the group's MAC for a multicast
    /// group, else `dst_mac`).
    ///
    /// # Panics
    /// If the transport is not UDP/IPv4.
    pub fn with_ipv4_dst(mut self, dst: [u8; 4], dst_mac: EthernetAddress) -> Self {
        let TransportRepr::Udp4 { ip, .. } = &mut self.transport else {
            panic!("with_ipv4_dst on a frame that is not UDP/IPv4");
        };
        ip.dst = dst;
        self.dst = if dst[0] & 0xF0 == 0xE0 {
            self.transport.group_mac(self.message.message_type())
        } else {
            dst_mac
        };
        self
    }

    /// The IPv6 destination, and the destination MAC with it (the group's MAC for a multicast
    /// group, else `dst_mac`).
    ///
    /// # Panics
    /// If the transport is not UDP/IPv6.
    pub fn with_ipv6_dst(mut self, dst: [u8; 16], dst_mac: EthernetAddress) -> Self {
        let TransportRepr::Udp6 { ip, .. } = &mut self.transport else {
            panic!("with_ipv6_dst on a frame that is not UDP/IPv6");
        };
        ip.dst = dst;
        self.dst = if dst[0] == 0xFF {
            self.transport.group_mac(self.message.message_type())
        } else {
            dst_mac
        };
        self
    }

    pub fn with_trailer<'b>(self, trailer: &'b [u8]) -> PtpFrameRepr<'b>
    where
        'a: 'b,
    {
        PtpFrameRepr { trailer, ..self }.with_derived_lengths()
    }

    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    /// Padded to at least [`ETHERNET_MIN_LEN`], as a NIC sends a short frame.
    pub fn padded_to_minimum(mut self) -> Self {
        self.padding = 0;
        self.padding = ETHERNET_MIN_LEN.saturating_sub(self.buffer_len());
        self
    }

    fn eth(&self) -> FrameRepr {
        FrameRepr {
            dst: self.dst,
            src: self.src,
            vlan: self.vlan,
            ethertype: self.transport.ethertype(),
        }
    }

    fn trailer(&self) -> &'a [u8] {
        match self.transport {
            TransportRepr::L2 => &[],
            _ => self.trailer,
        }
    }

    /// Where the PTP message starts in the emitted frame.
    pub fn ptp_offset(&self) -> usize {
        self.eth().header_len() + self.transport.header_len()
    }

    /// Where the UDP header starts in the emitted frame (UDP transports only).
    pub fn udp_offset(&self) -> Option<usize> {
        let l3 = self.eth().header_len();
        match self.transport {
            TransportRepr::L2 => None,
            TransportRepr::Udp4 { .. } => Some(l3 + Ipv4Repr::HEADER_LEN),
            TransportRepr::Udp6 { .. } => Some(l3 + Ipv6Repr::HEADER_LEN),
        }
    }

    /// Bytes [`emit`](Self::emit) writes: headers, message, trailer and padding.
    pub fn buffer_len(&self) -> usize {
        self.ptp_offset() + self.message.buffer_len() + self.trailer().len() + self.padding
    }

    /// Write the frame into the start of `buf`; returns its length, which is
    /// [`buffer_len`](Self::buffer_len).
    ///
    /// # Panics
    /// If `buf` is shorter than the frame.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let f = &mut buf[..len];
        let eth = self.eth();
        eth.emit(f);
        let l3 = eth.header_len();
        let at = self.ptp_offset();
        let msg_end = at + self.message.buffer_len();
        self.message.emit(&mut f[at..]);
        let udp_end = msg_end + self.trailer().len();
        f[msg_end..udp_end].copy_from_slice(self.trailer());
        f[udp_end..].fill(0);
        let (src_port, dst_port) = match self.transport {
            TransportRepr::L2 => return len,
            TransportRepr::Udp4 {
                src_port, dst_port, ..
            }
            | TransportRepr::Udp6 {
                src_port, dst_port, ..
            } => (src_port, dst_port),
        };
        let udp_at = at - UdpRepr::HEADER_LEN;
        let udp = UdpRepr {
            src_port,
            dst_port,
            payload_len: udp_end - at,
        };
        let datagram = &mut f[udp_at..udp_end];
        match self.transport {
            TransportRepr::L2 => {}
            TransportRepr::Udp4 { ip, checksum, .. } => {
                let ip = Ipv4Repr {
                    payload_len: udp.buffer_len(),
                    ..ip
                };
                let pseudo = ip::pseudo_header_sum(&ip.src, &ip.dst, ip.protocol, udp.buffer_len());
                udp.emit(datagram, pseudo, checksum);
                ip.emit(&mut f[l3..]);
            }
            TransportRepr::Udp6 { ip, checksum, .. } => {
                let ip = Ipv6Repr {
                    payload_len: udp.buffer_len(),
                    ..ip
                };
                let checksum = match checksum {
                    UdpChecksum::Zero => UdpChecksum::Complete,
                    c => c,
                };
                let pseudo =
                    ip::pseudo_header_sum(&ip.src, &ip.dst, ip.next_header, udp.buffer_len());
                udp.emit(datagram, pseudo, checksum);
                ip.emit(&mut f[l3..]);
            }
        }
        len
    }

    /// Read a frame that [`PtpFrame::parse`] accepts into its parts (see the module
    /// documentation for when emit gives back the same bytes).
    pub fn parse(frame: &'a [u8]) -> Result<PtpFrameRepr<'a>> {
        let p = PtpFrame::parse(frame)?;
        let eth = FrameRepr::parse(&ethernet::Frame::new_checked(frame)?)?;
        let l3 = eth.header_len();
        let message = MessageRepr::parse(&p.ptp(frame)?)?;
        let msg_end = p.ptp_offset + p.ptp_len;
        let (transport, packet_end) = match p.transport {
            Transport::L2 => (TransportRepr::L2, msg_end),
            Transport::Udp4 { .. } => {
                let v4 = Ipv4Packet::new_checked(&frame[l3..])?;
                let ip = Ipv4Repr::parse(&v4)?;
                let (src_port, dst_port, checksum) = udp_fields(
                    frame,
                    &p,
                    ip::pseudo_header_sum(&ip.src, &ip.dst, ip.protocol, 0),
                )?;
                let t = TransportRepr::Udp4 {
                    ip,
                    src_port,
                    dst_port,
                    checksum,
                };
                (t, l3 + v4.total_len())
            }
            Transport::Udp6 { .. } => {
                let ip = Ipv6Repr::parse(&Ipv6Packet::new_checked(&frame[l3..])?)?;
                let pseudo = ip::pseudo_header_sum(&ip.src, &ip.dst, ip.next_header, 0);
                let (src_port, dst_port, checksum) = udp_fields(frame, &p, pseudo)?;
                let checksum = match checksum {
                    // "No checksum" exists over IPv4 only; over IPv6 zero is a (wrong) value.
                    UdpChecksum::Zero => UdpChecksum::Fixed(0),
                    c => c,
                };
                let t = TransportRepr::Udp6 {
                    ip,
                    src_port,
                    dst_port,
                    checksum,
                };
                (t, l3 + ip.buffer_len())
            }
        };
        let trailer = match p.udp_offset {
            Some(at) => {
                let udp_len = UdpDatagram::new_checked(&frame[at..packet_end])?.len();
                frame.get(msg_end..at + udp_len).ok_or(Error::Truncated)?
            }
            None => &[],
        };
        Ok(PtpFrameRepr {
            dst: eth.dst,
            src: eth.src,
            vlan: eth.vlan,
            transport,
            message,
            trailer,
            padding: frame.len() - packet_end.min(frame.len()),
        })
    }

    /// The frame in a new vector (for tests).
    #[cfg(test)]
    pub(crate) fn to_vec(self) -> std::vec::Vec<u8> {
        let mut v = std::vec![0; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

/// Ports and checksum kind of the UDP datagram of a parsed frame; `pseudo_sum` is the
/// pseudo-header sum without the UDP length, which is added here.
fn udp_fields(frame: &[u8], p: &PtpFrame, pseudo_sum: u32) -> Result<(u16, u16, UdpChecksum)> {
    let at = p.udp_offset.ok_or(Error::NotPtp)?;
    let d = UdpDatagram::new_checked(&frame[at..])?;
    let datagram = &frame[at..at + d.len()];
    let checksum = UdpChecksum::classify(datagram, pseudo_sum + d.len() as u32);
    Ok((d.src_port(), d.dst_port(), checksum))
}

#[cfg(test)]
mod tests {
    use super::super::ptp::{AnnounceBody, ClockQuality, MessageBody, Timestamp};
    use super::super::samples::*;
    use super::super::PortIdentity;
    use super::*;

    const ALL: [(&str, &[u8]); 21] = [
        ("L2_SYNC", &L2_SYNC),
        ("L2_FOLLOW_UP", &L2_FOLLOW_UP),
        ("L2_ANNOUNCE", &L2_ANNOUNCE),
        ("L2_DELAY_REQ", &L2_DELAY_REQ),
        ("L2_DELAY_RESP", &L2_DELAY_RESP),
        ("L2_MANAGEMENT", &L2_MANAGEMENT),
        ("L2_MANAGEMENT_RESPONSE", &L2_MANAGEMENT_RESPONSE),
        ("UDP4_SYNC", &UDP4_SYNC),
        ("UDP4_FOLLOW_UP", &UDP4_FOLLOW_UP),
        ("UDP4_ANNOUNCE", &UDP4_ANNOUNCE),
        ("UDP4_DELAY_REQ", &UDP4_DELAY_REQ),
        ("UDP4_DELAY_RESP", &UDP4_DELAY_RESP),
        ("UDP4_MANAGEMENT", &UDP4_MANAGEMENT),
        ("UDP4_MANAGEMENT_RESPONSE", &UDP4_MANAGEMENT_RESPONSE),
        ("UDP6_SYNC", &UDP6_SYNC),
        ("UDP6_FOLLOW_UP", &UDP6_FOLLOW_UP),
        ("UDP6_ANNOUNCE", &UDP6_ANNOUNCE),
        ("UDP6_DELAY_REQ", &UDP6_DELAY_REQ),
        ("UDP6_DELAY_RESP", &UDP6_DELAY_RESP),
        ("UDP6_MANAGEMENT", &UDP6_MANAGEMENT),
        ("UDP6_MANAGEMENT_RESPONSE", &UDP6_MANAGEMENT_RESPONSE),
    ];

    const GM: PortIdentity = PortIdentity {
        clock_identity: [0x02, 0, 0, 0xff, 0xfe, 0, 0, 0x01],
        port_number: 1,
    };
    const C11: PortIdentity = PortIdentity {
        clock_identity: [0x02, 0, 0, 0xff, 0xfe, 0, 0x01, 0x01],
        port_number: 1,
    };

    fn fd99(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&[0xfd, 0x99]);
        a[15] = last;
        a
    }

    #[test]
    fn every_capture_parses_and_emits_the_same_bytes() {
        for (name, f) in ALL {
            let repr = PtpFrameRepr::parse(f).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(repr.buffer_len(), f.len(), "{name}");
            assert_eq!(repr.to_vec(), f, "{name}");
            let p = PtpFrame::parse(f).unwrap();
            assert_eq!(repr.ptp_offset(), p.ptp_offset, "{name}");
            assert_eq!(repr.udp_offset(), p.udp_offset, "{name}");
            assert_eq!(repr.message.buffer_len(), p.ptp_len, "{name}");
            // ptp4l's checksums are complete, its header fields the defaults of the type, its
            // MAC the one its clockIdentity was made from.
            if let TransportRepr::Udp4 { checksum, .. } | TransportRepr::Udp6 { checksum, .. } =
                repr.transport
            {
                assert_eq!(checksum, UdpChecksum::Complete, "{name}");
            }
            let h = &repr.message.header;
            assert_eq!(h.control, h.message_type().control_field(), "{name}");
            assert_eq!(
                repr.src,
                mac_of_clock_identity(&h.source_port_identity.clock_identity)
            );
            // Emitting over other bytes leaves no trace of them.
            let mut dirty = [0xa5u8; 160];
            assert_eq!(repr.emit(&mut dirty), f.len());
            assert_eq!(&dirty[..f.len()], f, "{name}");
        }
    }

    /// The constructors with ptp4l's few non-default values give its frames byte for byte.
    #[test]
    fn constructors_rebuild_captures() {
        let announce = AnnounceBody {
            grandmaster_priority1: 100,
            ..AnnounceBody::new(GM.clock_identity)
        };
        let cases: [(&str, &[u8], PtpFrameRepr); 6] = [
            (
                "L2_SYNC",
                &L2_SYNC,
                PtpFrameRepr::l2(
                    MessageRepr::sync(GM, 48, Timestamp::default()).with_log_message_interval(-3),
                ),
            ),
            (
                "L2_DELAY_REQ",
                &L2_DELAY_REQ,
                PtpFrameRepr::l2(MessageRepr::delay_req(C11, 38, Timestamp::default())),
            ),
            (
                "L2_DELAY_RESP",
                &L2_DELAY_RESP,
                PtpFrameRepr::l2(
                    MessageRepr::delay_resp(
                        GM,
                        38,
                        Timestamp {
                            seconds: 0x6b07_917c,
                            nanoseconds: 0x244a_f7be,
                        },
                        C11,
                    )
                    .with_log_message_interval(-3),
                ),
            ),
            (
                "L2_ANNOUNCE",
                &L2_ANNOUNCE,
                PtpFrameRepr::l2(
                    MessageRepr::announce(GM, 25, announce).with_log_message_interval(-2),
                ),
            ),
            (
                "UDP4_SYNC",
                &UDP4_SYNC,
                PtpFrameRepr {
                    transport: TransportRepr::Udp4 {
                        ip: Ipv4Repr {
                            ident: 0x4d0e,
                            ..Ipv4Repr::udp([10, 99, 0, 1], PTP_PRIMARY_IPV4, 0)
                        },
                        src_port: 319,
                        dst_port: 319,
                        checksum: UdpChecksum::Complete,
                    },
                    ..PtpFrameRepr::udp4(
                        [10, 99, 0, 1],
                        MessageRepr::sync(GM, 45, Timestamp::default())
                            .with_log_message_interval(-3),
                    )
                }
                .with_derived_lengths(),
            ),
            (
                "UDP6_SYNC",
                &UDP6_SYNC,
                PtpFrameRepr {
                    transport: TransportRepr::Udp6 {
                        ip: Ipv6Repr {
                            flow_label: 0x2_0c4c,
                            ..Ipv6Repr::udp(fd99(1), PTP_PRIMARY_IPV6, 0)
                        },
                        src_port: 319,
                        dst_port: 319,
                        checksum: UdpChecksum::Complete,
                    },
                    ..PtpFrameRepr::udp6(
                        fd99(1),
                        MessageRepr::sync(GM, 45, Timestamp::default())
                            .with_log_message_interval(-3),
                    )
                }
                .with_trailer(&[0, 0]),
            ),
        ];
        for (name, f, repr) in cases {
            assert_eq!(PtpFrameRepr::parse(f), Ok(repr), "{name}");
            assert_eq!(repr.to_vec(), f, "{name}");
        }
    }

    #[test]
    fn typed_bodies_read_what_the_captures_carry() {
        let m = PtpFrameRepr::parse(&L2_ANNOUNCE).unwrap().message;
        let MessageBody::Announce(a) = m.body else {
            panic!("{m:?}")
        };
        assert_eq!(
            (
                a.current_utc_offset,
                a.grandmaster_priority2,
                a.steps_removed
            ),
            (37, 128, 0)
        );
        assert_eq!(
            a.grandmaster_clock_quality,
            ClockQuality {
                clock_class: 248,
                clock_accuracy: 0xfe,
                offset_scaled_log_variance: 0xffff
            }
        );
        assert_eq!(a.grandmaster_identity, GM.clock_identity);
        let m = PtpFrameRepr::parse(&UDP4_FOLLOW_UP).unwrap().message;
        assert!(matches!(
            m.body,
            MessageBody::FollowUp { precise_origin_timestamp: t } if t.seconds > 1_700_000_000
        ));
        // Management: an opaque 14-byte body, the management TLV as the suffix.
        let m = PtpFrameRepr::parse(&L2_MANAGEMENT).unwrap().message;
        assert_eq!(m.message_type(), MessageType::Management);
        assert!(matches!(m.body, MessageBody::Other(b) if b.len() == 14));
        assert_eq!(m.suffix.len(), 72 - 48);
        assert_eq!(&m.suffix[..4], &[0x00, 0x01, 0x00, 0x14]); // MANAGEMENT TLV, length 20
    }

    fn message(t: MessageType, seq: u16) -> MessageRepr<'static> {
        const PDELAY_BODY: [u8; 20] = [7; 20];
        const MGMT_BODY: [u8; 14] = [0xff; 14];
        let ts = Timestamp::from_nanos(1_700_000_000_123_456_789);
        match t {
            MessageType::Sync => MessageRepr::sync(GM, seq, ts),
            MessageType::DelayReq => MessageRepr::delay_req(C11, seq, ts),
            MessageType::FollowUp => MessageRepr::follow_up(GM, seq, ts),
            MessageType::DelayResp => MessageRepr::delay_resp(GM, seq, ts, C11),
            MessageType::Announce => {
                MessageRepr::announce(GM, seq, AnnounceBody::new(GM.clock_identity))
            }
            MessageType::Management => MessageRepr::new(C11, seq, MessageBody::Other(&MGMT_BODY))
                .with_suffix(&[0, 1, 0, 2, 0x20, 0x01]),
            _ => MessageRepr::other(t, GM, seq, MessageBody::Other(&PDELAY_BODY)),
        }
    }

    /// Every transport, with and without a tag, every message type: what `PtpFrame::parse` finds
    /// is what was built, and the frame parses back into the same representation.
    #[test]
    fn built_frames_parse_back() {
        let types = [
            MessageType::Sync,
            MessageType::DelayReq,
            MessageType::FollowUp,
            MessageType::DelayResp,
            MessageType::Announce,
            MessageType::Management,
            MessageType::PdelayReq,
            MessageType::PdelayResp,
            MessageType::PdelayRespFollowUp,
        ];
        for (i, t) in types.into_iter().enumerate() {
            let m = message(t, i as u16);
            assert_eq!(m.buffer_len(), t.min_len() + m.suffix.len(), "{t:?}");
            assert_eq!(
                usize::from(m.header.message_length),
                m.buffer_len(),
                "{t:?}"
            );
            for base in [
                PtpFrameRepr::l2(m),
                PtpFrameRepr::udp4([10, 0, 0, 1], m),
                PtpFrameRepr::udp6(fd99(2), m).with_trailer(&[0, 0]),
            ] {
                for repr in [base, base.with_vlan(0x2005), base.padded_to_minimum()] {
                    let f = repr.to_vec();
                    let p = PtpFrame::parse(&f).unwrap_or_else(|e| panic!("{t:?} {repr:?}: {e}"));
                    assert_eq!((p.dst, p.src, p.vlan), (repr.dst, repr.src, repr.vlan));
                    assert_eq!(p.ptp_offset, repr.ptp_offset());
                    assert_eq!(p.udp_offset, repr.udp_offset());
                    assert_eq!(p.ptp_len, m.buffer_len());
                    assert!(f.len() >= ETHERNET_MIN_LEN || repr.padding == 0);
                    let h = p.ptp(&f).unwrap();
                    assert_eq!((h.message_type(), h.sequence_id()), (t, i as u16));
                    assert_eq!(h.source_port_identity(), m.header.source_port_identity);
                    assert_eq!(
                        h.requesting_port_identity().is_some(),
                        matches!(t, MessageType::DelayResp | MessageType::PdelayResp)
                    );
                    let group = match (&p.transport, t.is_pdelay()) {
                        (Transport::L2, false) => EthernetAddress::PTP_PRIMARY,
                        (Transport::L2, true) => EthernetAddress::PTP_PDELAY,
                        (Transport::Udp4 { dst, .. }, false) => {
                            assert_eq!(*dst, PTP_PRIMARY_IPV4);
                            EthernetAddress::PTP_IPV4
                        }
                        (Transport::Udp4 { dst, .. }, true) => {
                            assert_eq!(*dst, PTP_PDELAY_IPV4);
                            EthernetAddress::PTP_IPV4_PDELAY
                        }
                        (Transport::Udp6 { dst, .. }, false) => {
                            assert_eq!(*dst, PTP_PRIMARY_IPV6);
                            EthernetAddress::PTP_IPV6
                        }
                        (Transport::Udp6 { dst, .. }, true) => {
                            assert_eq!(*dst, PTP_PDELAY_IPV6);
                            EthernetAddress::PTP_IPV6_PDELAY
                        }
                    };
                    assert_eq!(p.dst, group, "{t:?}");
                    if let Some(at) = p.udp_offset {
                        let port = u16::from_be_bytes([f[at + 2], f[at + 3]]);
                        assert_eq!(port, if t.is_event() { 319 } else { 320 });
                        assert!(!p.udp_checksum_is_partial(&f));
                        let mut completed = f.clone();
                        p.complete_udp_checksum(&mut completed);
                        assert_eq!(completed, f, "{t:?}: checksum not complete");
                    }
                    assert_eq!(PtpFrameRepr::parse(&f), Ok(repr), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn udp_checksum_kinds_and_lies() {
        let m = message(MessageType::DelayReq, 1);
        for base in [
            PtpFrameRepr::udp4([10, 0, 0, 1], m),
            PtpFrameRepr::udp6(fd99(1), m),
        ] {
            let v6 = matches!(base.transport, TransportRepr::Udp6 { .. });
            let complete = base.to_vec();
            let at = base.udp_offset().unwrap() + 6;
            let field = |f: &[u8]| u16::from_be_bytes([f[at], f[at + 1]]);
            let p = PtpFrame::parse(&complete).unwrap();
            let partial = base.with_udp_checksum(UdpChecksum::Partial).to_vec();
            assert!(p.udp_checksum_is_partial(&partial));
            let zero = base.with_udp_checksum(UdpChecksum::Zero).to_vec();
            // No "no checksum" over IPv6.
            assert_eq!(field(&zero), if v6 { field(&complete) } else { 0 });
            let wrong = base.with_udp_checksum(UdpChecksum::Fixed(0x1234)).to_vec();
            assert_eq!(field(&wrong), 0x1234);
            assert_eq!(wrong[..at], complete[..at]);
            for f in [&partial, &wrong] {
                assert_eq!(PtpFrameRepr::parse(f).unwrap().to_vec(), *f);
            }
            // A port that is not PTP's is not a PTP frame; a lying messageLength is caught.
            let other = base.with_udp_ports(319, 123).to_vec();
            assert_eq!(PtpFrame::parse(&other), Err(Error::NotPtp));
            let mut lie = base;
            lie.message.header.message_length = 43;
            assert_eq!(
                PtpFrame::parse(&lie.to_vec()),
                Err(Error::BadMessageLength(43))
            );
            lie.message.header.version = 0x12;
            lie.message.header.message_length = 44;
            assert_eq!(PtpFrame::parse(&lie.to_vec()).map(|_| ()), Ok(()));
        }
    }

    #[test]
    fn unicast_destinations() {
        let m = message(MessageType::DelayResp, 3);
        let mac = EthernetAddress([2, 0, 0, 0, 1, 1]);
        let f = PtpFrameRepr::udp4([10, 0, 0, 1], m).with_ipv4_dst([10, 0, 0, 11], mac);
        let p = PtpFrame::parse(&f.to_vec()).unwrap();
        assert_eq!(p.dst, mac);
        assert_eq!(
            p.transport,
            Transport::Udp4 {
                src: [10, 0, 0, 1],
                dst: [10, 0, 0, 11]
            }
        );
        assert!(!p.transport.is_multicast());
        let f = PtpFrameRepr::udp6(fd99(1), m).with_ipv6_dst(fd99(11), mac);
        let p = PtpFrame::parse(&f.to_vec()).unwrap();
        assert_eq!(p.dst, mac);
        assert!(!p.transport.is_multicast());
        let f = PtpFrameRepr::l2(m)
            .with_dst(mac)
            .with_src(EthernetAddress([2, 9, 9, 9, 9, 9]));
        let p = PtpFrame::parse(&f.to_vec()).unwrap();
        assert_eq!((p.dst, p.src), (mac, EthernetAddress([2, 9, 9, 9, 9, 9])));
    }
}
