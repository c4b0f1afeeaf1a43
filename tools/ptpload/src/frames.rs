//! The frames ptpload sends and how it recognises what comes back.
//!
//! This module owns the identities of the emulated parties and the frames they send: every
//! emulated party has a clockIdentity that says who it is (`02:70:XX:ff:fe:NN:NN:NN`, XX = `l`
//! client, `f` foreign client, `m` master, `x` a `--flood` sender) and a MAC derived from it, so a
//! received frame is mapped back to its sender without a table. Frames are built with the
//! whole-frame builders of `ptpproxy::wire` ([`PtpFrameRepr`], [`MessageRepr`]) and read with
//! [`PtpFrame::parse`], the views the relay itself uses. It must never write a header byte by
//! hand, allocate or block on the send path (frames go into reused buffers many thousand times a
//! second), nor change a byte of what it emits for the same inputs: runs are compared across
//! versions.

use ptpproxy::wire::build::{mac_of_clock_identity, TransportRepr};
use ptpproxy::wire::ip::{Ipv4Repr, UdpChecksum, UdpRepr};
use ptpproxy::wire::ptp::{AnnounceBody, Header, MessageBody, MessageRepr, Timestamp};
use ptpproxy::wire::{
    EtherType, EthernetAddress, MessageType, PortIdentity, PtpFrame, PtpFrameRepr,
};

/// Largest frame built or kept (UDPv4 Announce is 106 bytes).
pub const FRAME_MAX: usize = 128;

/// An untagged Ethernet header: what precedes the IP header or the PTP message.
const ETH_HEADER_LEN: usize = 14;

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
        let ip_udp = match self {
            Transport::L2 => 0,
            Transport::Udp4 => Ipv4Repr::HEADER_LEN + UdpRepr::HEADER_LEN,
        };
        (ETH_HEADER_LEN + ip_udp) as u32
    }

    pub fn ethertype(self) -> u16 {
        u16::from(match self {
            Transport::L2 => EtherType::Ptp,
            Transport::Udp4 => EtherType::Ipv4,
        })
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
        mac_of_clock_identity(&self.identity().clock_identity).0
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

impl Msg {
    /// The PTP message, in `domain`. `opaque` is the fixed body of a type without a typed one
    /// (Signaling: its targetPortIdentity): ptpload fills it with the timestamp's bytes.
    fn message<'a>(&self, domain: u8, opaque: &'a [u8; Timestamp::LEN]) -> MessageRepr<'a> {
        let (src, seq) = (self.from.identity(), self.seq);
        let ts = Timestamp::from_nanos(self.timestamp_ns);
        let m = match self.kind {
            MessageType::Sync => MessageRepr::sync(src, seq, ts),
            MessageType::DelayReq => MessageRepr::delay_req(src, seq, ts),
            MessageType::FollowUp => MessageRepr::follow_up(src, seq, ts),
            MessageType::DelayResp => {
                MessageRepr::delay_resp(src, seq, ts, self.requesting.unwrap_or_default())
            }
            // A free-running grandmaster, as ptp4l announces one by default.
            MessageType::Announce => MessageRepr::announce(
                src,
                seq,
                AnnounceBody {
                    origin_timestamp: ts,
                    ..AnnounceBody::new(src.clock_identity)
                },
            ),
            kind => MessageRepr::other(kind, src, seq, MessageBody::Other(opaque)),
        };
        m.with_domain(domain)
            .with_log_message_interval(self.log_interval)
    }
}

/// UDP/IPv4 from `src` to the PTP group, with no UDP checksum (zero: allowed over IPv4, RFC 768,
/// so no relay has to complete one) and DF clear.
fn udp4_transport(src: [u8; 4], kind: MessageType) -> TransportRepr {
    let mut t = TransportRepr::udp4(src, kind);
    if let TransportRepr::Udp4 { ip, checksum, .. } = &mut t {
        ip.dont_fragment = false;
        *checksum = UdpChecksum::Zero;
    }
    t
}

impl Builder {
    /// `m` as a whole frame (padded to the Ethernet minimum), handed to `f`: the frame borrows
    /// a body that lives only for the call. Change fields before emitting to build an odd one.
    pub fn with_frame<R>(&self, m: &Msg, f: impl FnOnce(PtpFrameRepr<'_>) -> R) -> R {
        let opaque = Timestamp::from_nanos(m.timestamp_ns).to_bytes();
        let message = m.message(self.domain, &opaque);
        let transport = match self.transport {
            Transport::L2 => TransportRepr::L2,
            Transport::Udp4 => udp4_transport(m.from.ip(), m.kind),
        };
        let mut frame = PtpFrameRepr::with_transport(transport, message);
        if let Some(dst) = m.dst {
            frame = frame.with_dst(EthernetAddress(dst));
        }
        f(frame.padded_to_minimum())
    }

    /// Write `m` into `buf`; returns the frame length (padded to the Ethernet minimum).
    pub fn build(&self, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        self.with_frame(m, |f| f.emit(buf))
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
