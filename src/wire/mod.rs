//! Zero-copy views of the frames ptpproxy relays: Ethernet with at most one 802.1Q tag, IPv4/UDP,
//! IPv6/UDP, and the PTPv2 messages inside (IEEE 1588-2019 §13).
//!
//! Each view wraps a byte buffer; `new_checked` validates every length the view relies on, after
//! which no accessor panics. [`PtpFrame::parse`] walks a whole captured frame down to the PTP
//! message and records where each layer starts, so the relay can judge the frame and the shell
//! can rewrite fields in place. Bad input is an [`Error`] value, never a panic; nothing here
//! allocates.

pub mod ethernet;
pub mod ip;
pub mod ptp;

#[cfg(test)]
pub(crate) mod samples;

use core::fmt;

pub use ethernet::{EtherType, EthernetAddress};
pub use ptp::{MessageType, PortIdentity};

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
    /// messageLength smaller than the message type needs, or larger than the bytes present.
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
        let header = ptp::Header::new_checked(&frame[ptp_offset..ptp_end])?;
        Ok(PtpFrame {
            dst,
            src,
            vlan,
            transport,
            udp_offset,
            ptp_offset,
            ptp_len: usize::from(header.message_length()),
        })
    }

    /// The PTP message of the frame this was parsed from.
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
