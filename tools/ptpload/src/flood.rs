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

use ptpproxy::wire::ip::{checksum_fold, sum_words};
use ptpproxy::wire::MessageType;

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
        let from = self.who(k);
        // sequenceId: per identity, as a real sender counts.
        let seq = if self.identities == 0 {
            0
        } else {
            (k / u64::from(self.identities)) as u16
        };
        let msg = |kind| Msg {
            kind,
            from,
            dst: None,
            seq,
            timestamp_ns,
            requesting: None,
            log_interval: 0x7F,
        };
        let b = Builder {
            transport: self.transport,
            domain: self.domain,
        };
        let kinds = self.msg.kinds().len();
        let which = (k % kinds as u64) as usize;
        let len = match self.msg {
            FloodMsg::DelayReq => b.build(&msg(MessageType::DelayReq), buf),
            FloodMsg::Signaling => b.build(&msg(MessageType::Signaling), buf),
            FloodMsg::Rogue => {
                let kind = [
                    MessageType::Sync,
                    MessageType::FollowUp,
                    MessageType::Announce,
                ][which];
                b.build(&msg(kind), buf)
            }
            FloodMsg::Malformed => malformed(which, &msg(MessageType::DelayReq), self.domain, buf),
        };
        if self.single_mac {
            buf[6..12].copy_from_slice(&SINGLE_MAC);
            buf[11] += self.source as u8;
        }
        (len, which)
    }
}

/// Malformed frame `which` (an index of [`MALFORMED`]), made from the Delay_Req `m`.
fn malformed(which: usize, m: &Msg, domain: u8, buf: &mut [u8; FRAME_MAX]) -> usize {
    let l2 = Builder {
        transport: Transport::L2,
        domain,
    };
    let udp = Builder {
        transport: Transport::Udp4,
        domain,
    };
    const PTP: usize = 14;
    const IP: usize = 14;
    match MALFORMED[which].0 {
        "truncated" => {
            l2.build(m, buf);
            // 30 of the 34 bytes of the common header.
            PTP + 30
        }
        "bad_version" => {
            let n = l2.build(m, buf);
            buf[PTP + 1] = (buf[PTP + 1] & 0xF0) | 1;
            n
        }
        "short_length" => {
            let n = l2.build(m, buf);
            be16(buf, PTP + 2, 30);
            n
        }
        "long_length" => {
            let n = l2.build(m, buf);
            be16(buf, PTP + 2, 1000);
            n
        }
        "reserved_type" => {
            let n = l2.build(m, buf);
            buf[PTP] = (buf[PTP] & 0xF0) | 0x5;
            n
        }
        "qinq_88a8" | "qinq_8100" => {
            let n = l2.build(m, buf);
            let outer: u16 = if MALFORMED[which].0 == "qinq_88a8" {
                0x88A8
            } else {
                0x8100
            };
            // dst, src | outer tag (TPID, VID 10) | inner tag (0x8100, VID 20) | 0x88F7 | PTP
            buf.copy_within(12..n, 20);
            be16(buf, 12, outer);
            be16(buf, 14, 10);
            be16(buf, 16, 0x8100);
            be16(buf, 18, 20);
            n + 8
        }
        "bad_ip_checksum" => {
            let n = udp.build(m, buf);
            buf[IP + 10] ^= 0x5A;
            n
        }
        "bad_ip_version" => {
            let n = udp.build(m, buf);
            buf[IP] = 0x55;
            ip_checksum(buf, IP);
            n
        }
        "ip_fragment" => {
            let n = udp.build(m, buf);
            be16(buf, IP + 6, 0x2000); // more fragments, offset 0
            ip_checksum(buf, IP);
            n
        }
        "bad_udp_length" => {
            let n = udp.build(m, buf);
            be16(buf, IP + 20 + 4, 8 + 44 + 100);
            n
        }
        "ip_truncated" => {
            let n = udp.build(m, buf);
            be16(buf, IP + 2, 20 + 8 + 44 + 200);
            ip_checksum(buf, IP);
            n
        }
        "huge_tlv" => {
            // Signaling: header, targetPortIdentity (all ones), then one TLV whose lengthField
            // claims 65535 bytes where 6 follow. messageLength covers what is present.
            let n = l2.build(
                &Msg {
                    kind: MessageType::Signaling,
                    ..*m
                },
                buf,
            );
            debug_assert!(n >= PTP + 44);
            buf[PTP + 34..PTP + 44].fill(0xFF);
            be16(buf, PTP + 44, 0x0003); // ORGANIZATION_EXTENSION
            be16(buf, PTP + 46, 0xFFFF);
            buf[PTP + 48..PTP + 54].copy_from_slice(&[0x00, 0x1B, 0x19, 0, 0, 1]);
            be16(buf, PTP + 2, 54);
            (PTP + 54).max(60)
        }
        "wrong_domain" => {
            let n = l2.build(m, buf);
            buf[PTP + 4] = domain.wrapping_add(99);
            n
        }
        _ => unreachable!("every MALFORMED entry is built above"),
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
