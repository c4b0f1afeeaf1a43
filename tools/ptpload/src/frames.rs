//! The frames ptpload sends and how it recognises what comes back.
//!
//! Built and read with `ptpproxy::wire` (the same views the relay uses): the PTP common header
//! through [`HeaderRepr::emit`], received frames through [`PtpFrame::parse`]. Every emulated
//! party has a clockIdentity that says who it is (`02:70:XX:ff:fe:NN:NN:NN`, XX = `l` client,
//! `f` foreign client, `m` master, `x` a `--flood` sender) and a MAC derived from it, so a
//! received frame is mapped back to its sender without a table.

use ptpproxy::wire::ip::{checksum_fold, sum_words};
use ptpproxy::wire::ptp::{Header, HeaderRepr};
use ptpproxy::wire::{MessageType, PortIdentity, PtpFrame, PTP_EVENT_PORT, PTP_GENERAL_PORT};

/// Largest frame built or kept (UDPv4 Announce is 106 bytes).
pub const FRAME_MAX: usize = 128;

/// EtherTypes of what ptpload sends.
pub const ETH_P_1588: u16 = 0x88F7;
pub const ETH_P_IP: u16 = 0x0800;

const PTP_MAC: [u8; 6] = [0x01, 0x1B, 0x19, 0, 0, 0];
const UDP4_MAC: [u8; 6] = [0x01, 0x00, 0x5E, 0, 0x01, 0x81];
const UDP4_GROUP: [u8; 4] = [224, 0, 1, 129];

const KIND_CLIENT: u8 = b'l';
const KIND_FOREIGN: u8 = b'f';
const KIND_MASTER: u8 = b'm';
const KIND_FLOOD: u8 = b'x';

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    L2,
    Udp4,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::L2 => "l2",
            Transport::Udp4 => "udp4",
        }
    }

    /// Where the PTP header starts in the frames [`Builder`] makes.
    pub fn ptp_offset(self) -> u32 {
        match self {
            Transport::L2 => 14,
            Transport::Udp4 => 14 + 20 + 8,
        }
    }

    pub fn ethertype(self) -> u16 {
        match self {
            Transport::L2 => ETH_P_1588,
            Transport::Udp4 => ETH_P_IP,
        }
    }
}

/// An emulated party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Master,
    Client(u32),
    Foreign(u32),
    /// A `--flood` sender (flood.rs).
    Flood(u32),
    /// Not one of ours.
    Other,
}

impl Who {
    fn code(self) -> (u8, u32) {
        match self {
            Who::Master => (KIND_MASTER, 1),
            Who::Client(n) => (KIND_CLIENT, n),
            Who::Foreign(n) => (KIND_FOREIGN, n),
            Who::Flood(n) => (KIND_FLOOD, n),
            Who::Other => (0, 0),
        }
    }

    pub fn identity(self) -> PortIdentity {
        let (k, n) = self.code();
        let b = n.to_be_bytes();
        PortIdentity {
            clock_identity: [0x02, 0x70, k, 0xff, 0xfe, b[1], b[2], b[3]],
            port_number: 1,
        }
    }

    /// The EUI-48 the clockIdentity was derived from (as ptp4l derives one from the other).
    pub fn mac(self) -> [u8; 6] {
        let c = self.identity().clock_identity;
        [c[0], c[1], c[2], c[5], c[6], c[7]]
    }

    pub fn ip(self) -> [u8; 4] {
        let (k, n) = self.code();
        let b = n.to_be_bytes();
        let net = match k {
            KIND_MASTER => 98,
            KIND_FOREIGN => 97,
            KIND_FLOOD => 96,
            _ => 100 + b[1],
        };
        [10, net, b[2], b[3]]
    }

    pub fn of(id: &PortIdentity) -> Who {
        let c = id.clock_identity;
        if c[0] != 0x02 || c[1] != 0x70 || c[3] != 0xff || c[4] != 0xfe || id.port_number != 1 {
            return Who::Other;
        }
        let n = u32::from_be_bytes([0, c[5], c[6], c[7]]);
        match c[2] {
            KIND_CLIENT => Who::Client(n),
            KIND_FOREIGN => Who::Foreign(n),
            KIND_FLOOD => Who::Flood(n),
            KIND_MASTER if n == 1 => Who::Master,
            _ => Who::Other,
        }
    }
}

/// One message to build.
pub struct Msg {
    pub kind: MessageType,
    pub from: Who,
    /// Destination MAC; `None` is the PTP group of the transport.
    pub dst: Option<[u8; 6]>,
    pub seq: u16,
    /// originTimestamp / preciseOriginTimestamp / receiveTimestamp, ns since the epoch.
    pub timestamp_ns: u64,
    /// Delay_Resp only.
    pub requesting: Option<PortIdentity>,
    pub log_interval: i8,
}

/// Builds frames of one transport and domain.
#[derive(Clone, Copy)]
pub struct Builder {
    pub transport: Transport,
    pub domain: u8,
}

fn body_len(kind: MessageType) -> usize {
    match kind {
        MessageType::DelayResp => 54,
        MessageType::Announce => 64,
        _ => 44,
    }
}

/// controlField (IEEE 1588-2019 Table 42, kept for v1 hardware).
fn control(kind: MessageType) -> u8 {
    match kind {
        MessageType::Sync => 0,
        MessageType::DelayReq => 1,
        MessageType::FollowUp => 2,
        MessageType::DelayResp => 3,
        _ => 5,
    }
}

fn type_code(kind: MessageType) -> u8 {
    match kind {
        MessageType::Sync => 0x0,
        MessageType::DelayReq => 0x1,
        MessageType::FollowUp => 0x8,
        MessageType::DelayResp => 0x9,
        MessageType::Announce => 0xB,
        MessageType::Signaling => 0xC,
        _ => 0xD,
    }
}

/// A PTP Timestamp (§5.3.3): 48-bit seconds, 32-bit nanoseconds.
fn put_timestamp(b: &mut [u8], ns: u64) {
    let s = (ns / 1_000_000_000).to_be_bytes();
    b[..6].copy_from_slice(&s[2..]);
    b[6..10].copy_from_slice(&((ns % 1_000_000_000) as u32).to_be_bytes());
}

impl Builder {
    /// Write `m` into `buf`; returns the frame length (padded to the Ethernet minimum).
    pub fn build(&self, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        let ptp_len = body_len(m.kind);
        let (ptp_at, end) = match self.transport {
            Transport::L2 => (14, 14 + ptp_len),
            Transport::Udp4 => (14 + 20 + 8, 14 + 20 + 8 + ptp_len),
        };
        let len = end.max(60);
        buf[..len].fill(0);
        let group = match self.transport {
            Transport::L2 => PTP_MAC,
            Transport::Udp4 => UDP4_MAC,
        };
        buf[..6].copy_from_slice(&m.dst.unwrap_or(group));
        buf[6..12].copy_from_slice(&m.from.mac());
        buf[12..14].copy_from_slice(&self.transport.ethertype().to_be_bytes());
        if self.transport == Transport::Udp4 {
            let ip = &mut buf[14..34];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + 8 + ptp_len) as u16).to_be_bytes());
            ip[8] = 1; // TTL 1: PTP multicast stays on the link (Annex C)
            ip[9] = 17;
            ip[12..16].copy_from_slice(&m.from.ip());
            ip[16..20].copy_from_slice(&UDP4_GROUP);
            let c = !checksum_fold(sum_words(ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let port = if m.kind.is_event() {
                PTP_EVENT_PORT
            } else {
                PTP_GENERAL_PORT
            };
            let udp = &mut buf[34..42];
            udp[0..2].copy_from_slice(&port.to_be_bytes());
            udp[2..4].copy_from_slice(&port.to_be_bytes());
            udp[4..6].copy_from_slice(&((8 + ptp_len) as u16).to_be_bytes());
            // Checksum 0: none (allowed over IPv4, RFC 768), so no relay has to complete one.
        }
        let flags: u16 = match m.kind {
            MessageType::Sync => 0x0200, // twoStepFlag
            _ => 0,
        };
        HeaderRepr {
            sdo_and_type: type_code(m.kind),
            version: 0x02,
            message_length: ptp_len as u16,
            domain_number: self.domain,
            minor_sdo_id: 0,
            flags,
            correction: 0,
            message_type_specific: [0; 4],
            source_port_identity: m.from.identity(),
            sequence_id: m.seq,
            control: control(m.kind),
            log_message_interval: m.log_interval,
        }
        .emit(&mut buf[ptp_at..]);
        let body = &mut buf[ptp_at..end];
        put_timestamp(&mut body[34..44], m.timestamp_ns);
        match m.kind {
            MessageType::DelayResp => {
                let r = m.requesting.unwrap_or_default();
                body[44..52].copy_from_slice(&r.clock_identity);
                body[52..54].copy_from_slice(&r.port_number.to_be_bytes());
            }
            MessageType::Announce => {
                body[44..46].copy_from_slice(&37u16.to_be_bytes()); // currentUtcOffset
                body[47] = 128; // grandmasterPriority1
                body[48..52].copy_from_slice(&[248, 0xFE, 0xFF, 0xFF]); // clockQuality
                body[52] = 128; // grandmasterPriority2
                body[53..61].copy_from_slice(&m.from.identity().clock_identity);
                body[63] = 0xA0; // timeSource INTERNAL_OSCILLATOR
            }
            _ => {}
        }
        len
    }
}

/// What a received frame is, as far as the meter cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: MessageType,
    pub from: Who,
    /// sourcePortIdentity as sent (for a sender that is not ours too).
    pub source: PortIdentity,
    pub seq: u16,
    pub domain: u8,
    /// Delay_Resp: whom it answers.
    pub requesting: Who,
    /// The destination MAC is a group address.
    pub group_dst: bool,
    pub dst: [u8; 6],
}

/// Read a captured frame; `None` if it is not a well-formed PTPv2 message.
pub fn parse(frame: &[u8]) -> Option<Seen> {
    let p = PtpFrame::parse(frame).ok()?;
    let h: Header<&[u8]> = p.ptp(frame).ok()?;
    let source = h.source_port_identity();
    Some(Seen {
        kind: h.message_type(),
        from: Who::of(&source),
        source,
        seq: h.sequence_id(),
        domain: h.domain_number(),
        requesting: h
            .requesting_port_identity()
            .map_or(Who::Other, |r| Who::of(&r)),
        group_dst: p.dst.is_multicast(),
        dst: p.dst.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_parse_back() {
        for transport in [Transport::L2, Transport::Udp4] {
            let b = Builder {
                transport,
                domain: 0,
            };
            for (kind, from, req) in [
                (MessageType::Sync, Who::Master, None),
                (MessageType::FollowUp, Who::Master, None),
                (MessageType::Announce, Who::Master, None),
                (MessageType::DelayReq, Who::Client(70_000), None),
                (MessageType::DelayReq, Who::Foreign(3), None),
                (
                    MessageType::DelayResp,
                    Who::Master,
                    Some(Who::Client(999).identity()),
                ),
            ] {
                let mut buf = [0u8; FRAME_MAX];
                let n = b.build(
                    &Msg {
                        kind,
                        from,
                        dst: None,
                        seq: 4242,
                        timestamp_ns: 1_700_000_000_123_456_789,
                        requesting: req,
                        log_interval: 0,
                    },
                    &mut buf,
                );
                let s = parse(&buf[..n]).unwrap_or_else(|| panic!("{transport:?} {kind:?}"));
                assert_eq!((s.kind, s.from, s.seq), (kind, from, 4242));
                assert!(s.group_dst);
                if req.is_some() {
                    assert_eq!(s.requesting, Who::Client(999));
                }
            }
        }
    }
}
