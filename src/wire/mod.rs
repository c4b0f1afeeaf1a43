//! Zero-copy views of the frames ptpproxy relays: Ethernet with at most one 802.1Q tag, IPv4/UDP,
//! IPv6/UDP, and the PTPv2 messages inside (IEEE 1588-2019 §13).
//!
//! Each view wraps a byte buffer; `new_checked` validates every length the view relies on, after
//! which no accessor panics. [`PtpFrame::parse`] walks a whole captured frame down to the PTP
//! message and records where each layer starts, so the relay can judge the frame and the shell
//! can rewrite fields in place. Bad input is an [`Error`] value, never a panic; nothing here
//! allocates.

pub mod build;
pub mod ethernet;
pub mod ip;
pub mod pcapng;
pub mod ptp;

#[cfg(test)]
pub(crate) mod samples;

use core::fmt;

pub use build::{PtpFrameRepr, TransportRepr};
pub use ethernet::{EtherType, EthernetAddress};
pub use ptp::{MessageRepr, MessageType, PortIdentity};

/// Why a frame could not be read as a PTP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header it claims to carry.
    Truncated,
    /// Not PTP: another EtherType, IP protocol or UDP port.
    NotPtp,
    /// More than one VLAN tag (QinQ); only one 802.1Q tag is supported.
    StackedVlan,
    /// IP header malformed (version, header length, total length, header checksum).
    BadIpHeader,
    /// IPv4 fragment: PTP messages are never fragmented.
    Fragmented,
    /// IPv6 extension headers before UDP: not used by PTP.
    Ipv6Extension,
    /// UDP length outside the IP payload or shorter than the UDP header.
    BadUdpLength,
    /// versionPTP is not 2.
    UnsupportedVersion(u8),
    /// messageLength smaller than the message type needs (larger than the bytes present is
    /// `Truncated`).
    BadMessageLength(u16),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "frame truncated"),
            Error::NotPtp => write!(f, "not a PTP frame"),
            Error::StackedVlan => write!(f, "more than one VLAN tag"),
            Error::BadIpHeader => write!(f, "malformed IP header"),
            Error::Fragmented => write!(f, "fragmented IPv4 packet"),
            Error::Ipv6Extension => write!(f, "IPv6 extension header"),
            Error::BadUdpLength => write!(f, "bad UDP length"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported PTP version {v}"),
            Error::BadMessageLength(n) => write!(f, "bad PTP messageLength {n}"),
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;

/// How the PTP message travels (IEEE 1588-2019 Annex C, D, E).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Directly over Ethernet, EtherType 0x88F7 (Annex E).
    L2,
    /// UDP over IPv4, ports 319/320 (Annex C).
    Udp4 { src: [u8; 4], dst: [u8; 4] },
    /// UDP over IPv6, ports 319/320 (Annex D).
    Udp6 { src: [u8; 16], dst: [u8; 16] },
}

impl Transport {
    /// True if the IP destination is a multicast group (always true for L2; the MAC decides).
    pub fn is_multicast(&self) -> bool {
        match self {
            Transport::L2 => true,
            Transport::Udp4 { dst, .. } => (dst[0] & 0xF0) == 0xE0,
            Transport::Udp6 { dst, .. } => dst[0] == 0xFF,
        }
    }
}

/// UDP ports of PTP (IEEE 1588-2019 Annex C.2).
pub const PTP_EVENT_PORT: u16 = 319;
pub const PTP_GENERAL_PORT: u16 = 320;

/// A captured frame read down to its PTP message: the layers found and where they start.
/// All offsets index the frame buffer that was parsed; every range they imply was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtpFrame {
    pub dst: EthernetAddress,
    pub src: EthernetAddress,
    /// The 802.1Q tag control information, if the frame carries a tag inline.
    pub vlan: Option<u16>,
    pub transport: Transport,
    /// Offset of the UDP header (UDP transports only).
    pub udp_offset: Option<usize>,
    /// Offset of the PTP common header.
    pub ptp_offset: usize,
    /// The PTP message's messageLength (validated against the bytes present).
    pub ptp_len: usize,
    /// The common-header fields every frame is judged by (§13.3), read once here; the few
    /// that only some messages need are read on demand through [`PtpFrame::message`].
    pub message_type: MessageType,
    pub domain_number: u8,
    /// sdoId: majorSdoId (transportSpecific in IEEE 1588-2008) << 8 | minorSdoId. With
    /// domainNumber it names the PTP domain (IEEE 1588-2019 §7.1.4).
    pub sdo_id: u16,
}

impl PtpFrame {
    /// Parse a whole Ethernet frame. `Ok` only for a well-formed PTPv2 message.
    pub fn parse(frame: &[u8]) -> Result<PtpFrame> {
        let eth = ethernet::Frame::new_checked(frame)?;
        let (dst, src, vlan, ethertype) = (eth.dst(), eth.src(), eth.vlan(), eth.ethertype());
        let l3 = eth.header_len();
        let (transport, udp_offset, ptp_offset, ptp_end) = match ethertype {
            EtherType::Ptp => (Transport::L2, None, l3, frame.len()),
            EtherType::Ipv4 => {
                let ip = ip::Ipv4Packet::new_checked(&frame[l3..])?;
                if ip.protocol() != ip::PROTOCOL_UDP {
                    return Err(Error::NotPtp);
                }
                let udp = l3 + ip.header_len();
                let end = l3 + ip.total_len();
                let (src, dst) = (ip.src(), ip.dst());
                let (payload, payload_end) = udp_payload(frame, udp, end)?;
                (
                    Transport::Udp4 { src, dst },
                    Some(udp),
                    payload,
                    payload_end,
                )
            }
            EtherType::Ipv6 => {
                let ip = ip::Ipv6Packet::new_checked(&frame[l3..])?;
                if ip.next_header() != ip::PROTOCOL_UDP {
                    return Err(if ip::is_ipv6_extension(ip.next_header()) {
                        Error::Ipv6Extension
                    } else {
                        Error::NotPtp
                    });
                }
                let udp = l3 + ip::IPV6_HEADER_LEN;
                let end = udp + ip.payload_len();
                let (src, dst) = (ip.src(), ip.dst());
                let (payload, payload_end) = udp_payload(frame, udp, end)?;
                (
                    Transport::Udp6 { src, dst },
                    Some(udp),
                    payload,
                    payload_end,
                )
            }
            _ => return Err(Error::NotPtp),
        };
        let header = ptp::Header::new_unchecked(&frame[ptp_offset..ptp_end]);
        let message_type = header.check()?;
        Ok(PtpFrame {
            dst,
            src,
            vlan,
            transport,
            udp_offset,
            ptp_offset,
            ptp_len: usize::from(header.message_length()),
            message_type,
            domain_number: header.domain_number(),
            sdo_id: header.sdo_id(),
        })
    }

    /// The PTP message of `frame`, the buffer this was parsed from (or a copy of it), without
    /// checking it again: every accessor of the view reads inside the range [`PtpFrame::parse`]
    /// checked. (Given a shorter buffer, an empty view, whose accessors then panic: a caller bug.)
    #[inline]
    pub fn message<'a>(&self, frame: &'a [u8]) -> ptp::Header<&'a [u8]> {
        let bytes = frame
            .get(self.ptp_offset..self.ptp_offset + self.ptp_len)
            .unwrap_or_default();
        ptp::Header::new_unchecked(bytes)
    }

    /// The UDP checksum field of `frame` (the buffer this was parsed from); `None` for L2.
    pub fn udp_checksum(&self, frame: &[u8]) -> Option<u16> {
        let at = self.udp_offset? + 6;
        Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
    }

    /// The PTP message of the frame this was parsed from, checked again.
    ///
    /// `frame` must be the buffer given to [`PtpFrame::parse`] (or a copy of it); a shorter
    /// buffer yields a header view that reports `Truncated` through [`ptp::Header::new_checked`].
    pub fn ptp<'a>(&self, frame: &'a [u8]) -> Result<ptp::Header<&'a [u8]>> {
        let bytes = frame
            .get(self.ptp_offset..self.ptp_offset + self.ptp_len)
            .ok_or(Error::Truncated)?;
        ptp::Header::new_checked(bytes)
    }
}

impl PtpFrame {
    /// The UDP datagram's byte range in the frame (UDP transports only).
    fn udp_range(&self, frame: &[u8]) -> Option<core::ops::Range<usize>> {
        let at = self.udp_offset?;
        let len = usize::from(u16::from_be_bytes([
            *frame.get(at + 4)?,
            *frame.get(at + 5)?,
        ]));
        (at + len <= frame.len()).then_some(at..at + len)
    }

    /// One's-complement sum of the UDP pseudo-header (RFC 768; RFC 8200 §8.1).
    fn pseudo_header_sum(&self, udp_len: usize) -> u32 {
        let addrs = match &self.transport {
            Transport::L2 => 0,
            Transport::Udp4 { src, dst } => ip::sum_words(src) + ip::sum_words(dst),
            Transport::Udp6 { src, dst } => ip::sum_words(src) + ip::sum_words(dst),
        };
        addrs + u32::from(ip::PROTOCOL_UDP) + udp_len as u32
    }

    /// True if the UDP checksum field holds only the pseudo-header sum: what a Linux sender
    /// leaves for its NIC to complete (CHECKSUM_PARTIAL). Captured on a veth, a VM's or a
    /// container's interface, such a frame would be dropped by every receiver if relayed as is.
    /// (A complete checksum that happens to equal that value is recomputed unchanged.)
    pub fn udp_checksum_is_partial(&self, frame: &[u8]) -> bool {
        let Some(r) = self.udp_range(frame) else {
            return false;
        };
        let field = u16::from_be_bytes([frame[r.start + 6], frame[r.start + 7]]);
        field != 0 && field == ip::checksum_fold(self.pseudo_header_sum(r.len()))
    }

    /// Compute the full UDP checksum of the datagram in `frame` (the frame this was parsed
    /// from, or a copy) and store it.
    pub fn complete_udp_checksum(&self, frame: &mut [u8]) {
        let Some(r) = self.udp_range(frame) else {
            return;
        };
        frame[r.start + 6..r.start + 8].fill(0);
        let sum = self.pseudo_header_sum(r.len()) + ip::sum_words(&frame[r.clone()]);
        // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
        let c = match !ip::checksum_fold(sum) {
            0 => 0xFFFF,
            c => c,
        };
        frame[r.start + 6..r.start + 8].copy_from_slice(&c.to_be_bytes());
    }
}

/// Validate the UDP header at `udp` inside an IP packet ending at `ip_end` and return where the
/// UDP payload starts and ends. Only PTP's ports pass.
fn udp_payload(frame: &[u8], udp: usize, ip_end: usize) -> Result<(usize, usize)> {
    let datagram = frame.get(udp..ip_end).ok_or(Error::Truncated)?;
    let u = ip::UdpDatagram::new_checked(datagram)?;
    if !matches!(u.dst_port(), PTP_EVENT_PORT | PTP_GENERAL_PORT) {
        return Err(Error::NotPtp);
    }
    Ok((udp + ip::UDP_HEADER_LEN, udp + u.len()))
}

#[cfg(test)]
mod tests {
    use super::ptp::HeaderRepr;
    use super::samples::*;
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        L2,
        Udp4,
        Udp6,
    }

    const CASES: [(&str, &[u8], Kind, MessageType); 15] = [
        ("L2_SYNC", &L2_SYNC, Kind::L2, MessageType::Sync),
        (
            "L2_FOLLOW_UP",
            &L2_FOLLOW_UP,
            Kind::L2,
            MessageType::FollowUp,
        ),
        ("L2_ANNOUNCE", &L2_ANNOUNCE, Kind::L2, MessageType::Announce),
        (
            "L2_DELAY_REQ",
            &L2_DELAY_REQ,
            Kind::L2,
            MessageType::DelayReq,
        ),
        (
            "L2_DELAY_RESP",
            &L2_DELAY_RESP,
            Kind::L2,
            MessageType::DelayResp,
        ),
        ("UDP4_SYNC", &UDP4_SYNC, Kind::Udp4, MessageType::Sync),
        (
            "UDP4_FOLLOW_UP",
            &UDP4_FOLLOW_UP,
            Kind::Udp4,
            MessageType::FollowUp,
        ),
        (
            "UDP4_ANNOUNCE",
            &UDP4_ANNOUNCE,
            Kind::Udp4,
            MessageType::Announce,
        ),
        (
            "UDP4_DELAY_REQ",
            &UDP4_DELAY_REQ,
            Kind::Udp4,
            MessageType::DelayReq,
        ),
        (
            "UDP4_DELAY_RESP",
            &UDP4_DELAY_RESP,
            Kind::Udp4,
            MessageType::DelayResp,
        ),
        ("UDP6_SYNC", &UDP6_SYNC, Kind::Udp6, MessageType::Sync),
        (
            "UDP6_FOLLOW_UP",
            &UDP6_FOLLOW_UP,
            Kind::Udp6,
            MessageType::FollowUp,
        ),
        (
            "UDP6_ANNOUNCE",
            &UDP6_ANNOUNCE,
            Kind::Udp6,
            MessageType::Announce,
        ),
        (
            "UDP6_DELAY_REQ",
            &UDP6_DELAY_REQ,
            Kind::Udp6,
            MessageType::DelayReq,
        ),
        (
            "UDP6_DELAY_RESP",
            &UDP6_DELAY_RESP,
            Kind::Udp6,
            MessageType::DelayResp,
        ),
    ];

    fn kind(t: &Transport) -> Kind {
        match t {
            Transport::L2 => Kind::L2,
            Transport::Udp4 { .. } => Kind::Udp4,
            Transport::Udp6 { .. } => Kind::Udp6,
        }
    }

    /// Bytes a frame needs: through the PTP message, and through the IP packet for UDP.
    fn needed(f: &[u8], p: &PtpFrame) -> usize {
        let ptp_end = p.ptp_offset + p.ptp_len;
        match p.transport {
            Transport::L2 => ptp_end,
            Transport::Udp4 { .. } => {
                ptp_end.max(14 + usize::from(u16::from_be_bytes([f[16], f[17]])))
            }
            Transport::Udp6 { .. } => {
                ptp_end.max(14 + 40 + usize::from(u16::from_be_bytes([f[18], f[19]])))
            }
        }
    }

    #[test]
    fn real_frames_parse_with_the_expected_fields() {
        for (name, f, k, t) in CASES {
            let p = PtpFrame::parse(f).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(kind(&p.transport), k, "{name}");
            assert!(p.transport.is_multicast(), "{name}");
            assert!(p.dst.is_multicast(), "{name}");
            assert_eq!(&p.src.0[..], &f[6..12], "{name}");
            assert_eq!(p.vlan, None, "{name}");
            assert_eq!(p.udp_offset.is_some(), k != Kind::L2, "{name}");
            let h = p.ptp(f).unwrap();
            assert_eq!(h.message_type(), t, "{name}");
            assert_eq!((h.version(), h.domain_number()), (2, 0), "{name}");
            assert_eq!(usize::from(h.message_length()), p.ptp_len, "{name}");
            assert!(p.ptp_len >= t.min_len(), "{name}");
            // ptp4l derives its clockIdentity from the MAC (EUI-48 -> EUI-64 with FF-FE).
            let id = h.source_port_identity().clock_identity;
            assert_eq!(
                [id[0], id[1], id[2], id[5], id[6], id[7]],
                p.src.0,
                "{name}"
            );
            assert_eq!([id[3], id[4]], [0xff, 0xfe], "{name}");
        }
    }

    #[test]
    fn delay_resp_names_the_client_of_the_delay_req() {
        for (req, resp) in [
            (&L2_DELAY_REQ[..], &L2_DELAY_RESP[..]),
            (&UDP4_DELAY_REQ, &UDP4_DELAY_RESP),
            (&UDP6_DELAY_REQ, &UDP6_DELAY_RESP),
        ] {
            let q = PtpFrame::parse(req).unwrap();
            let r = PtpFrame::parse(resp).unwrap();
            let (q, r) = (q.ptp(req).unwrap(), r.ptp(resp).unwrap());
            assert_eq!(r.requesting_port_identity(), Some(q.source_port_identity()));
            assert_eq!(r.sequence_id(), q.sequence_id());
            assert_eq!(q.requesting_port_identity(), None);
        }
    }

    #[test]
    fn every_prefix_short_of_the_message_is_rejected() {
        for (name, f, ..) in CASES {
            let p = PtpFrame::parse(f).unwrap();
            for n in 0..needed(f, &p) {
                assert!(
                    PtpFrame::parse(&f[..n]).is_err(),
                    "{name}: prefix {n} accepted"
                );
            }
            for n in needed(f, &p)..=f.len() {
                assert_eq!(PtpFrame::parse(&f[..n]), Ok(p), "{name}: padding {n}");
            }
        }
    }

    #[test]
    fn version_and_length_mutations_are_rejected() {
        for (name, f, ..) in CASES {
            let p = PtpFrame::parse(f).unwrap();
            let at = p.ptp_offset;
            for v in [0u8, 1, 3, 0xf] {
                let mut m = f.to_vec();
                m[at + 1] = (m[at + 1] & 0xf0) | v;
                assert_eq!(
                    PtpFrame::parse(&m),
                    Err(Error::UnsupportedVersion(v)),
                    "{name}"
                );
            }
            // messageLength below the type's minimum.
            let mut m = f.to_vec();
            let short = (p.ptp_len - 1) as u16;
            m[at + 2..at + 4].copy_from_slice(&short.to_be_bytes());
            if p.ptp_len == MessageType::from_nibble(f[at]).min_len() {
                assert_eq!(
                    PtpFrame::parse(&m),
                    Err(Error::BadMessageLength(short)),
                    "{name}"
                );
            }
            // messageLength beyond the bytes present (a lying length, e.g. a huge TLV).
            for len in [needed(f, &p) as u16 + 1, 0xffff] {
                let mut m = f.to_vec();
                m[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
                assert_eq!(
                    PtpFrame::parse(&m),
                    Err(Error::Truncated),
                    "{name} len {len}"
                );
            }
        }
    }

    #[test]
    fn header_parse_emit_round_trip() {
        for (name, f, ..) in CASES {
            let p = PtpFrame::parse(f).unwrap();
            let repr = HeaderRepr::parse(&p.ptp(f).unwrap());
            let mut out = f.to_vec();
            out[p.ptp_offset..p.ptp_offset + ptp::HEADER_LEN].fill(0);
            repr.emit(&mut out[p.ptp_offset..]);
            assert_eq!(&out[..], f, "{name}");
            let again = PtpFrame::parse(&out).unwrap();
            assert_eq!(HeaderRepr::parse(&again.ptp(&out).unwrap()), repr, "{name}");
        }
    }

    #[test]
    fn one_vlan_tag_is_kept_and_read_past() {
        for (name, f, ..) in CASES {
            let mut tagged = f[..12].to_vec();
            tagged.extend_from_slice(&[0x81, 0x00, 0x60, 0x64]);
            tagged.extend_from_slice(&f[12..]);
            let p = PtpFrame::parse(&tagged).unwrap_or_else(|e| panic!("{name}: {e}"));
            let plain = PtpFrame::parse(f).unwrap();
            assert_eq!(p.vlan, Some(0x6064), "{name}");
            assert_eq!(p.ptp_offset, plain.ptp_offset + 4, "{name}");
            assert_eq!(
                p.ptp(&tagged).unwrap().sequence_id(),
                plain.ptp(f).unwrap().sequence_id()
            );
            let mut stacked = f[..12].to_vec();
            stacked.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2]);
            stacked.extend_from_slice(&f[12..]);
            assert_eq!(PtpFrame::parse(&stacked), Err(Error::StackedVlan), "{name}");
        }
    }

    /// The verification a receiver does: the sum over pseudo-header and datagram is 0xFFFF.
    fn udp_checksum_ok(f: &[u8]) -> bool {
        let p = PtpFrame::parse(f).unwrap();
        let r = p.udp_range(f).unwrap();
        ip::checksum_fold(p.pseudo_header_sum(r.len()) + ip::sum_words(&f[r])) == 0xFFFF
    }

    #[test]
    fn partial_udp_checksums_are_recognised_and_completed() {
        for (name, f, k, _) in CASES {
            let p = PtpFrame::parse(f).unwrap();
            if k == Kind::L2 {
                assert!(!p.udp_checksum_is_partial(f), "{name}");
                continue;
            }
            // The captures carry complete checksums (the capture turned offload off).
            assert!(udp_checksum_ok(f), "{name}");
            assert!(!p.udp_checksum_is_partial(f), "{name}");
            // What a sender with checksum offload puts on a veth: the folded pseudo-header sum.
            let mut partial = f.to_vec();
            let at = p.udp_offset.unwrap() + 6;
            let len = p.udp_range(f).unwrap().len();
            let pseudo = ip::checksum_fold(p.pseudo_header_sum(len));
            partial[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
            assert!(!udp_checksum_ok(&partial), "{name}");
            assert!(p.udp_checksum_is_partial(&partial), "{name}");
            p.complete_udp_checksum(&mut partial);
            assert_eq!(
                &partial[..],
                f,
                "{name}: completed checksum differs from the real one"
            );
        }
    }

    #[test]
    fn not_ptp_is_recognised() {
        let mut arp = L2_SYNC.to_vec();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(PtpFrame::parse(&arp), Err(Error::NotPtp));
        // UDPv4 to another port: change the destination port (UDP checksum is not checked).
        let mut other = UDP4_SYNC.to_vec();
        other[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&123u16.to_be_bytes());
        assert_eq!(PtpFrame::parse(&other), Err(Error::NotPtp));
        // IPv6 with a hop-by-hop extension header in front of UDP.
        let mut ext = UDP6_SYNC.to_vec();
        ext[14 + 6] = 0;
        assert_eq!(PtpFrame::parse(&ext), Err(Error::Ipv6Extension));
    }
}
