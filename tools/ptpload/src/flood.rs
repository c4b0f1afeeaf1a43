//! The misbehaving senders of `--flood`: fake clients and masters on one interface, for the
//! hardening tests (tests/hardening.sh).
//!
//! Every flood frame comes from a [`Who::Flood`] identity (clockIdentity `02:70:78:ff:fe:NN:NN:NN`,
//! MAC `02:70:78:NN:NN:NN`, so the meter recognises what gets through), either a fresh identity
//! per frame or a cycle of `--flood-identities` of them; each `--flood` source has its own range
//! of [`PER_SOURCE`] identities. Kinds:
//! - `delay_req`: Delay_Req (a flood of fake clients, or with one identity a client far above its
//!   rate);
//! - `rogue`: Sync, Follow_Up and Announce in turn (a master on the client side);
//! - `signaling`: Signaling (relayed upstream by the forwarding rules);
//! - `malformed`: the frames of [`MALFORMED`] in turn, each named with the reason ptpproxy counts
//!   it under.
//!
//! This module owns what the flood senders send: their identities and MACs, the rotation of
//! kinds, and each malformed frame with the drop reason it is expected under. It never decides
//! when a frame goes out (run/flood_tx.rs does), never allocates (frames go into reused
//! buffers), and never writes a frame from scratch: every frame is the nearest valid one from
//! the `ptpproxy::wire` builders, with header fields set to the lie before emit (the checksums
//! then cover it) or bytes changed after emit where the builders cannot express the fault.

use ptpproxy::wire::ip::{checksum_fold, sum_words};
use ptpproxy::wire::ptp::{MessageBody, MessageRepr};
use ptpproxy::wire::{EthernetAddress, MessageType, PtpFrameRepr};

use crate::args::Iface;
use crate::frames::{Builder, Msg, Transport, Who, FRAME_MAX};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodMsg {
    DelayReq,
    Rogue,
    Signaling,
    Malformed,
}

impl FloodMsg {
    pub fn parse(s: &str) -> Option<FloodMsg> {
        Some(match s {
            "delay_req" => FloodMsg::DelayReq,
            "rogue" => FloodMsg::Rogue,
            "signaling" => FloodMsg::Signaling,
            "malformed" => FloodMsg::Malformed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FloodMsg::DelayReq => "delay_req",
            FloodMsg::Rogue => "rogue",
            FloodMsg::Signaling => "signaling",
            FloodMsg::Malformed => "malformed",
        }
    }

    /// Names of the frame kinds sent, in rotation order (counted per kind in the report).
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            FloodMsg::DelayReq => &["delay_req"],
            FloodMsg::Rogue => &["sync", "follow_up", "announce"],
            FloodMsg::Signaling => &["signaling"],
            FloodMsg::Malformed => &MALFORMED_NAMES,
        }
    }
}

/// `--flood` and its modifiers.
#[derive(Clone, Debug)]
pub struct Flood {
    pub iface: Iface,
    /// Frames per second.
    pub rate: f64,
    /// Start, seconds relative to the clients' first Delay_Req (negative: before it).
    pub at_s: f64,
    /// Length in seconds; 0: until the end of the run.
    pub for_s: f64,
    /// Identities cycled through; 0: a fresh one for every frame.
    pub identities: u32,
    /// Every frame from one source MAC (the identities still differ).
    pub single_mac: bool,
    pub msg: FloodMsg,
    pub transport: Transport,
    pub domain: u8,
    /// Which `--flood` this is (0..MAX_SOURCES): picks the identity range and the single MAC.
    pub source: u32,
}

/// `--flood` sources at most.
pub const MAX_SOURCES: usize = 4;

/// Identities of one source: fresh ones repeat after this many frames (42 s at 100k/s).
pub const PER_SOURCE: u32 = 1 << 22;

/// The MAC of `--flood-single-mac` for source 0 (the last byte counts the source up).
pub const SINGLE_MAC: [u8; 6] = [0x02, 0x70, b'x', 0xFF, 0xFF, 0xF0];

/// A malformed frame: its name and the ptpproxy drop reason (status file `dropped`) it is
/// expected under, or `forwarded.<class>` for one the forwarding rules relay.
pub const MALFORMED: [(&str, &str); 14] = [
    ("truncated", "truncated"),
    ("bad_version", "bad_version"),
    ("short_length", "bad_length"),
    ("long_length", "truncated"),
    ("reserved_type", "unknown_message"),
    ("qinq_88a8", "stacked_vlan"),
    ("qinq_8100", "stacked_vlan"),
    ("bad_ip_checksum", "bad_ip"),
    ("bad_ip_version", "bad_ip"),
    ("ip_fragment", "fragment"),
    ("bad_udp_length", "bad_udp"),
    ("ip_truncated", "truncated"),
    ("huge_tlv", "forwarded.signaling"),
    ("wrong_domain", "wrong_domain"),
];

const MALFORMED_NAMES: [&str; 14] = {
    let mut n = [""; 14];
    let mut i = 0;
    while i < n.len() {
        n[i] = MALFORMED[i].0;
        i += 1;
    }
    n
};

/// The untagged Ethernet header in front of the IPv4 header of a UDP frame.
const IP: usize = 14;
/// Where the EtherType (or the first tag) starts: after the two MACs.
const TAG_AT: usize = 12;

/// The one TLV of `huge_tlv`: ORGANIZATION_EXTENSION whose lengthField claims 65535 bytes, with
/// 6 present (an organizationId and subtype).
const HUGE_TLV: [u8; 10] = [0x00, 0x03, 0xFF, 0xFF, 0x00, 0x1B, 0x19, 0, 0, 1];

/// Recompute the IPv4 header checksum of the header at `ip`.
fn ip_checksum(buf: &mut [u8], ip: usize) {
    buf[ip + 10..ip + 12].fill(0);
    let c = !checksum_fold(sum_words(&buf[ip..ip + 20]));
    buf[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
}

fn be16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

impl Flood {
    /// Who sends frame `k`.
    pub fn who(&self, k: u64) -> Who {
        let cycle = if self.identities == 0 {
            PER_SOURCE
        } else {
            self.identities.min(PER_SOURCE)
        };
        Who::Flood(self.source * PER_SOURCE + (k % u64::from(cycle)) as u32)
    }

    /// The source whose range identity number `n` belongs to.
    pub fn source_of(n: u32) -> usize {
        (n / PER_SOURCE) as usize
    }

    /// Build flood frame `k` into `buf`; returns its length and the index of its kind in
    /// [`FloodMsg::kinds`].
    pub fn build(&self, k: u64, timestamp_ns: u64, buf: &mut [u8; FRAME_MAX]) -> (usize, usize) {
        let m = self.delay_req(k, timestamp_ns);
        let which = (k % self.msg.kinds().len() as u64) as usize;
        let kind = match self.msg {
            FloodMsg::Malformed => return (self.malformed(which, &m, buf), which),
            FloodMsg::DelayReq => MessageType::DelayReq,
            FloodMsg::Signaling => MessageType::Signaling,
            FloodMsg::Rogue => [
                MessageType::Sync,
                MessageType::FollowUp,
                MessageType::Announce,
            ][which],
        };
        let m = Msg { kind, ..m };
        (self.with_frame(self.transport, &m, |f| f.emit(buf)), which)
    }

    /// The Delay_Req of frame `k`, the message every flood frame is made from.
    fn delay_req(&self, k: u64, timestamp_ns: u64) -> Msg {
        // sequenceId: per identity, as a real sender counts.
        let seq = if self.identities == 0 {
            0
        } else {
            (k / u64::from(self.identities)) as u16
        };
        Msg {
            kind: MessageType::DelayReq,
            from: self.who(k),
            dst: None,
            seq,
            timestamp_ns,
            requesting: None,
            log_interval: 0x7F,
        }
    }

    /// `m` over `transport` in this flood's domain, from its single MAC if it has one, handed to
    /// `f` (see [`Builder::with_frame`]).
    fn with_frame<R>(
        &self,
        transport: Transport,
        m: &Msg,
        f: impl FnOnce(PtpFrameRepr<'_>) -> R,
    ) -> R {
        let b = Builder {
            transport,
            domain: self.domain,
        };
        b.with_frame(m, |frame| {
            if self.single_mac {
                let mut mac = SINGLE_MAC;
                mac[5] = mac[5].wrapping_add(self.source as u8);
                f(frame.with_src(EthernetAddress(mac)))
            } else {
                f(frame)
            }
        })
    }

    /// Malformed frame `which` (an index of [`MALFORMED`]), made from the Delay_Req `m`.
    fn malformed(&self, which: usize, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        match MALFORMED[which].0 {
            "qinq_88a8" => self.stacked_vlan(0x88A8, m, buf),
            "qinq_8100" => self.stacked_vlan(0x8100, m, buf),
            "huge_tlv" => self.huge_tlv(m, buf),
            name @ ("bad_ip_checksum" | "bad_ip_version" | "ip_fragment" | "bad_udp_length"
            | "ip_truncated") => self.bad_ip(name, m, buf),
            name => self.bad_ptp_header(name, m, buf),
        }
    }

    /// An L2 Delay_Req cut short or whose PTP header lies (set before emit).
    fn bad_ptp_header(&self, name: &str, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        self.with_frame(Transport::L2, m, |mut f| {
            let h = &mut f.message.header;
            match name {
                // 30 of the 34 bytes of the common header.
                "truncated" => {
                    f.emit(buf);
                    return f.ptp_offset() + 30;
                }
                "bad_version" => h.version = (h.version & 0xF0) | 1,
                "short_length" => h.message_length = 30,
                "long_length" => h.message_length = 1000,
                "reserved_type" => h.sdo_and_type = (h.sdo_and_type & 0xF0) | 0x5,
                "wrong_domain" => h.domain_number = self.domain.wrapping_add(99),
                _ => unreachable!("every MALFORMED entry is built"),
            }
            f.emit(buf)
        })
    }

    /// An L2 Delay_Req with two VLAN tags: dst, src | outer tag (`outer_tpid`, VID 10) | inner
    /// tag (0x8100, VID 20) | 0x88F7 | PTP, and the padding of the untagged frame. The builder
    /// writes the inner tag; the outer one is inserted after emit.
    fn stacked_vlan(&self, outer_tpid: u16, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        // with_frame padded the untagged frame; with_vlan keeps that padding.
        let n = self.with_frame(Transport::L2, m, |f| f.with_vlan(20).emit(buf));
        buf.copy_within(TAG_AT..n, TAG_AT + 4);
        be16(buf, TAG_AT, outer_tpid);
        be16(buf, TAG_AT + 2, 10);
        n + 4
    }

    /// A UDP/IPv4 Delay_Req with a bad IPv4 or UDP header, changed after emit (the builders
    /// always write a consistent one); the IPv4 header checksum is recomputed where it should
    /// still pass.
    fn bad_ip(&self, name: &str, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        let n = self.with_frame(Transport::Udp4, m, |f| f.emit(buf));
        match name {
            "bad_ip_checksum" => buf[IP + 10] ^= 0x5A,
            "bad_ip_version" => buf[IP] = 0x55,
            "ip_fragment" => be16(buf, IP + 6, 0x2000), // more fragments, offset 0
            "bad_udp_length" => be16(buf, IP + 20 + 4, 8 + 44 + 100),
            "ip_truncated" => be16(buf, IP + 2, 20 + 8 + 44 + 200),
            _ => unreachable!("every MALFORMED entry is built"),
        }
        if matches!(name, "bad_ip_version" | "ip_fragment" | "ip_truncated") {
            ip_checksum(buf, IP);
        }
        n
    }

    /// An L2 Signaling: header, targetPortIdentity (all ones), then one TLV whose lengthField
    /// claims 65535 bytes where 6 follow. messageLength covers what is present.
    fn huge_tlv(&self, m: &Msg, buf: &mut [u8; FRAME_MAX]) -> usize {
        let m = Msg {
            kind: MessageType::Signaling,
            ..*m
        };
        self.with_frame(Transport::L2, &m, |f| {
            let message = MessageRepr {
                body: MessageBody::Other(&[0xFF; 10]),
                ..f.message
            };
            let f = PtpFrameRepr {
                message: message.with_suffix(&HUGE_TLV),
                ..f
            };
            f.padded_to_minimum().emit(buf)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::config::Config;
    use ptpproxy::port::PortId;
    use ptpproxy::proxy::{Action, Proxy};
    use ptpproxy::time::Instant;

    /// Each malformed frame is judged by ptpproxy's core as MALFORMED says.
    #[test]
    fn malformed_frames_are_dropped_for_the_reason_named() {
        let config = Config::parse(br#"{"upstream":"eth0","downstream":["lan1","lan2"]}"#).unwrap();
        let mut relay = Proxy::new(&config, Instant(1_000_000_000), 1);
        let f = Flood {
            iface: Iface::parse("x").unwrap(),
            rate: 1.0,
            at_s: 0.0,
            for_s: 0.0,
            identities: 0,
            single_mac: false,
            msg: FloodMsg::Malformed,
            transport: Transport::L2,
            domain: 0,
            source: 0,
        };
        let mut scratch = vec![0u8; 2048];
        for k in 0..MALFORMED.len() as u64 {
            let mut buf = [0u8; FRAME_MAX];
            let (n, which) = f.build(k, 0, &mut buf);
            let (name, expected) = MALFORMED[which];
            let got = match relay.handle_frame(
                Instant(2_000_000_000),
                PortId(1),
                &buf[..n],
                ptpproxy::time::Timestamp(0),
                &mut scratch,
            ) {
                Action::Drop(r) => r.name().to_string(),
                Action::Held => "held".to_string(),
                Action::Forward { to, .. } => {
                    assert_eq!(to.0, 1, "{name}: relayed upstream only");
                    "forwarded.signaling".to_string()
                }
            };
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn identities_and_macs() {
        let mut f = Flood {
            iface: Iface::parse("x").unwrap(),
            rate: 1.0,
            at_s: 0.0,
            for_s: 0.0,
            identities: 0,
            single_mac: false,
            msg: FloodMsg::DelayReq,
            transport: Transport::L2,
            domain: 0,
            source: 0,
        };
        let mut a = [0u8; FRAME_MAX];
        let mut b = [0u8; FRAME_MAX];
        f.build(1, 0, &mut a);
        f.build(2, 0, &mut b);
        assert_ne!(a[6..12], b[6..12]);
        assert_eq!(Who::of_mac(&a[6..12].try_into().unwrap()), Who::Flood(1));
        f.single_mac = true;
        f.build(1, 0, &mut a);
        f.build(2, 0, &mut b);
        assert_eq!(a[6..12], SINGLE_MAC);
        assert_eq!(b[6..12], SINGLE_MAC);
        let (sa, sb) = (
            crate::frames::parse(&a[..60]).unwrap(),
            crate::frames::parse(&b[..60]).unwrap(),
        );
        assert_eq!((sa.from, sb.from), (Who::Flood(1), Who::Flood(2)));
        f.identities = 1;
        f.build(7, 0, &mut a);
        assert_eq!(crate::frames::parse(&a[..60]).unwrap().from, Who::Flood(0));
        f.source = 2;
        f.build(7, 0, &mut a);
        let who = crate::frames::parse(&a[..60]).unwrap().from;
        assert_eq!(who, Who::Flood(2 * PER_SOURCE));
        assert_eq!(a[6..12], [0x02, 0x70, b'x', 0xFF, 0xFF, 0xF2]);
        let Who::Flood(n) = who else { unreachable!() };
        assert_eq!(Flood::source_of(n), 2);
    }
}
