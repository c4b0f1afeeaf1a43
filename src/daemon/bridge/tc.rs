//! The switchdev filter: on each relayed bridge member, a clsact qdisc and flower filters on its
//! ingress whose action is `trap` (TC_ACT_TRAP), sent over rtnetlink from this binary.
//!
//! Why tc and not nftables here: a switch ASIC (lan966x, sparx5, ocelot/felix) forwards between
//! its ports in hardware, so the software bridge, and its nftables forward hook, never sees those
//! frames. Flower filters are what these drivers offload to the switch's ingress classifier;
//! TC_ACT_TRAP there means "send to the CPU and stop hardware processing" (pkt_cls.h), and in
//! software it acts as TC_ACT_STOLEN: the bridge never gets the frame, while the port's
//! AF_PACKET capture has already seen it (packet taps run before tc ingress). Filters are added
//! without skip_sw/skip_hw: offloaded where the driver can, in software everywhere.
//!
//! Ownership: only chain 0 priorities [`PRIO_BASE`].. (one per [`MATCHES`] entry) on the ingress
//! of the ports it is given. Installing deletes each of those priorities before adding it, so a
//! crashed run's leftovers are replaced; removing deletes exactly them. A clsact qdisc that exists
//! is kept, and the qdisc is never deleted: other filters may hang on it, and an empty clsact
//! costs nothing. Messages are built by hand in fixed buffers; every request asks for an ACK and
//! the kernel's answer becomes a [`TcError`]. This module never allocates per frame (it is not on
//! the frame path at all) and never touches a priority outside its range.

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

/// rtnetlink.h / netlink.h
const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_CHAIN: u16 = 11;
/// pkt_sched.h: the clsact qdisc's parent and handle, and its ingress hook as a filter parent.
const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
const CLSACT_HANDLE: u32 = 0xFFFF_0000;
const TC_H_INGRESS_PARENT: u32 = 0xFFFF_FFF2;
/// pkt_cls.h: flower keys and the action nest.
const TCA_FLOWER_ACT: u16 = 3;
const TCA_FLOWER_KEY_ETH_TYPE: u16 = 8;
const TCA_FLOWER_KEY_IP_PROTO: u16 = 9;
const TCA_FLOWER_KEY_IPV4_DST: u16 = 12;
const TCA_FLOWER_KEY_IPV4_DST_MASK: u16 = 13;
const TCA_FLOWER_KEY_IPV6_DST: u16 = 16;
const TCA_FLOWER_KEY_IPV6_DST_MASK: u16 = 17;
const TCA_FLOWER_KEY_UDP_DST: u16 = 21;
const TCA_FLOWER_FLAGS: u16 = 22;
const TCA_FLOWER_KEY_VLAN_ETH_TYPE: u16 = 25;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
/// tc_act/tc_gact.h, and TC_ACT_TRAP from pkt_cls.h.
const TCA_GACT_PARMS: u16 = 2;
const TC_ACT_TRAP: i32 = 8;

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_1588: u16 = 0x88F7;
const IPPROTO_UDP: u8 = 17;

/// The first of ptpproxy's priorities on chain 0 of a port's ingress.
pub const PRIO_BASE: u16 = 0xC0DE;

/// The last of them: one priority per [`MATCHES`] entry.
pub const PRIO_LAST: u16 = PRIO_BASE + MATCHES.len() as u16 - 1;

/// How long the kernel may take to answer one request.
const ANSWER_TIMEOUT_MS: i64 = 2000;

/// What one filter matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Untagged PTP over Ethernet.
    EtherType,
    /// PTP over Ethernet under one 802.1Q tag.
    Vlan,
    /// UDPv4 to `group`, destination port `port`; under one 802.1Q tag if `tagged`.
    V4 {
        group: [u8; 4],
        port: u16,
        tagged: bool,
    },
    /// UDPv6 to `group` under `mask`, destination port `port`; under one 802.1Q tag if `tagged`.
    V6 {
        group: [u8; 16],
        mask: [u8; 16],
        port: u16,
        tagged: bool,
    },
}

/// ff0X::181, every scope (IEEE 1588 Annex D): the scope nibble is masked out.
const V6_PRIMARY: [u8; 16] = [0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x81];
const V6_PRIMARY_MASK: [u8; 16] = [
    0xff, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];
/// ff02::6b, the peer-delay group (exact).
const V6_PDELAY: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x6b];
const FULL_V6: [u8; 16] = [0xff; 16];

/// The UDP filters, untagged or under one 802.1Q tag: both PTP groups of each family, event
/// (319) and general (320) port.
const fn udp(tagged: bool) -> [Match; 8] {
    const fn v4(group: [u8; 4], port: u16, tagged: bool) -> Match {
        Match::V4 {
            group,
            port,
            tagged,
        }
    }
    const fn v6(group: [u8; 16], mask: [u8; 16], port: u16, tagged: bool) -> Match {
        Match::V6 {
            group,
            mask,
            port,
            tagged,
        }
    }
    const V4_PRIMARY: [u8; 4] = [224, 0, 1, 129];
    const V4_PDELAY: [u8; 4] = [224, 0, 0, 107];
    [
        v4(V4_PRIMARY, 319, tagged),
        v4(V4_PRIMARY, 320, tagged),
        v4(V4_PDELAY, 319, tagged),
        v4(V4_PDELAY, 320, tagged),
        v6(V6_PRIMARY, V6_PRIMARY_MASK, 319, tagged),
        v6(V6_PRIMARY, V6_PRIMARY_MASK, 320, tagged),
        v6(V6_PDELAY, FULL_V6, 319, tagged),
        v6(V6_PDELAY, FULL_V6, 320, tagged),
    ]
}

/// Every filter, in priority order ([`PRIO_BASE`] + index): PTP over Ethernet untagged and
/// tagged, then UDP untagged, then UDP tagged (a VLAN-aware bridge's trunk ports carry PTP
/// tagged). Flower matches one UDP port per filter in hardware (port ranges are not offloaded
/// by every driver), hence one per port.
pub const MATCHES: [Match; 18] = {
    let (untagged, tagged) = (udp(false), udp(true));
    let mut all = [Match::EtherType; 18];
    all[1] = Match::Vlan;
    let mut i = 0;
    while i < 8 {
        all[2 + i] = untagged[i];
        all[10 + i] = tagged[i];
        i += 1;
    }
    all
};

/// Which request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Qdisc,
    Filter,
    Remove,
}

/// Why a port's filters were not changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcError {
    /// The kernel lacks clsact (sch_ingress), flower (cls_flower) or trap (act_gact), or the
    /// port refuses them: the caller falls back to nftables.
    Unsupported(Step, Errno),
    /// CAP_NET_ADMIN was not effective.
    Permission(Step),
    /// The port has no ifindex (it is gone).
    NoPort,
    /// Any other answer of the kernel.
    Kernel(Step, Errno),
    /// The netlink socket could not be opened or used.
    Socket(Errno),
    /// No answer in time, or an answer that is not netlink.
    NoAnswer,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Qdisc => "adding the clsact qdisc",
            Step::Filter => "adding a flower trap filter",
            Step::Remove => "deleting a flower trap filter",
        })
    }
}

impl fmt::Display for TcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcError::Unsupported(s, e) => write!(
                f,
                "tc {s}: {} (kernel without sch_ingress, cls_flower or act_gact?)",
                e.desc()
            ),
            TcError::Permission(s) => write!(f, "tc {s}: CAP_NET_ADMIN needed"),
            TcError::NoPort => f.write_str("tc: the port does not exist"),
            TcError::Kernel(s, e) => write!(f, "tc {s}: {}", e.desc()),
            TcError::Socket(e) => write!(f, "tc: netlink socket: {}", e.desc()),
            TcError::NoAnswer => f.write_str("tc: the kernel did not answer"),
        }
    }
}

/// One netlink request in a fixed buffer (the longest, an IPv6 filter, is 180 bytes).
pub struct Request {
    buf: [u8; 256],
    len: usize,
}

impl Request {
    fn new(kind: u16, flags: u16) -> Request {
        let mut r = Request {
            buf: [0; 256],
            len: 16,
        };
        r.buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        r.buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        r
    }

    /// struct tcmsg: family, padding, ifindex, handle, parent, info.
    fn tcmsg(mut self, ifindex: u32, handle: u32, parent: u32, info: u32) -> Request {
        self.put(&[0; 4]);
        for word in [ifindex, handle, parent, info] {
            self.put(&word.to_ne_bytes());
        }
        self
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// An attribute, padded to 4 bytes.
    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.put(&(len as u16).to_ne_bytes());
        self.put(&kind.to_ne_bytes());
        self.put(value);
        self.len = (self.len + 3) & !3;
    }

    /// Open a nested attribute; [`Request::end`] writes its length.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.len;
        self.attr(kind, &[]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.len - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The message with its length and sequence number.
    pub fn bytes(&mut self, seq: u32) -> &[u8] {
        let len = self.len as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf[..self.len]
    }
}

/// tcm_info of a filter: priority in the high half, protocol (network order) in the low half.
fn info(prio: u16, protocol: u16) -> u32 {
    u32::from(prio) << 16 | u32::from(u16::from_ne_bytes(protocol.to_be_bytes()))
}

/// Add the clsact qdisc (EEXIST: one is there, kept).
pub fn qdisc_request(ifindex: u32) -> Request {
    let mut r = Request::new(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL).tcmsg(
        ifindex,
        CLSACT_HANDLE,
        TC_H_CLSACT,
        0,
    );
    r.attr(TCA_KIND, b"clsact\0");
    r
}

/// Add the flower filter `index` of [`MATCHES`] with action trap, in the same attribute order
/// as iproute2's `tc filter add ... flower ... action trap`.
pub fn filter_request(ifindex: u32, index: usize) -> Request {
    let m = MATCHES[index];
    // The outer EtherType, and under a tag the inner one.
    let (protocol, inner) = match m {
        Match::EtherType => (ETH_P_1588, None),
        Match::Vlan => (ETH_P_8021Q, Some(ETH_P_1588)),
        Match::V4 { tagged: false, .. } => (ETH_P_IP, None),
        Match::V4 { tagged: true, .. } => (ETH_P_8021Q, Some(ETH_P_IP)),
        Match::V6 { tagged: false, .. } => (ETH_P_IPV6, None),
        Match::V6 { tagged: true, .. } => (ETH_P_8021Q, Some(ETH_P_IPV6)),
    };
    let prio = PRIO_BASE + index as u16;
    let mut r = Request::new(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL).tcmsg(
        ifindex,
        0,
        TC_H_INGRESS_PARENT,
        info(prio, protocol),
    );
    r.attr(TCA_CHAIN, &0u32.to_ne_bytes());
    r.attr(TCA_KIND, b"flower\0");
    let options = r.begin(TCA_OPTIONS);
    if let Some(inner) = inner {
        r.attr(TCA_FLOWER_KEY_VLAN_ETH_TYPE, &inner.to_be_bytes());
    }
    match m {
        Match::EtherType | Match::Vlan => {}
        Match::V4 { group, port, .. } => {
            r.attr(TCA_FLOWER_KEY_IP_PROTO, &[IPPROTO_UDP]);
            r.attr(TCA_FLOWER_KEY_IPV4_DST, &group);
            r.attr(TCA_FLOWER_KEY_IPV4_DST_MASK, &[0xff; 4]);
            r.attr(TCA_FLOWER_KEY_UDP_DST, &port.to_be_bytes());
        }
        Match::V6 {
            group, mask, port, ..
        } => {
            r.attr(TCA_FLOWER_KEY_IP_PROTO, &[IPPROTO_UDP]);
            r.attr(TCA_FLOWER_KEY_IPV6_DST, &group);
            r.attr(TCA_FLOWER_KEY_IPV6_DST_MASK, &mask);
            r.attr(TCA_FLOWER_KEY_UDP_DST, &port.to_be_bytes());
        }
    }
    trap_action(&mut r);
    r.attr(TCA_FLOWER_FLAGS, &0u32.to_ne_bytes());
    r.attr(TCA_FLOWER_KEY_ETH_TYPE, &protocol.to_be_bytes());
    r.end(options);
    r
}

/// The action list: one gact action (order 1) whose verdict is TC_ACT_TRAP.
fn trap_action(r: &mut Request) {
    let list = r.begin(TCA_FLOWER_ACT);
    let first = r.begin(1);
    r.attr(TCA_ACT_KIND, b"gact\0");
    let options = r.begin(TCA_ACT_OPTIONS | NLA_F_NESTED);
    // struct tc_gact: index, capab, action, refcnt, bindcnt.
    let mut parms = [0u8; 20];
    parms[8..12].copy_from_slice(&TC_ACT_TRAP.to_ne_bytes());
    r.attr(TCA_GACT_PARMS, &parms);
    r.end(options);
    r.end(first);
    r.end(list);
}

/// Delete every filter at priority `PRIO_BASE + index` on chain 0 of the port's ingress.
pub fn delete_request(ifindex: u32, index: usize) -> Request {
    let prio = PRIO_BASE + index as u16;
    let mut r =
        Request::new(RTM_DELTFILTER, 0).tcmsg(ifindex, 0, TC_H_INGRESS_PARENT, info(prio, 0));
    r.attr(TCA_CHAIN, &0u32.to_ne_bytes());
    r
}

/// A NETLINK_ROUTE socket with a bounded wait for answers.
struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    fn open() -> Result<Socket, TcError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(TcError::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(TcError::Socket)?;
        let timeout = TimeVal::new(ANSWER_TIMEOUT_MS / 1000, (ANSWER_TIMEOUT_MS % 1000) * 1000);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(TcError::Socket)?;
        Ok(Socket { fd, seq: 1 })
    }

    /// Send `request` and wait for its ACK: `Ok(())`, or the kernel's errno.
    fn call(&mut self, request: &mut Request) -> Result<Result<(), Errno>, TcError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        send(self.fd.as_raw_fd(), request.bytes(seq), MsgFlags::empty())
            .map_err(TcError::Socket)?;
        let mut buf = [0u8; 4096];
        // Bounded: other answers (none are expected on this socket) are skipped a few times.
        for _ in 0..8 {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => return Err(TcError::NoAnswer),
                Err(e) => return Err(TcError::Socket(e)),
            };
            if let Some(answer) = ack(&buf[..n], seq) {
                return Ok(answer);
            }
        }
        Err(TcError::NoAnswer)
    }
}

/// The answer to `seq` among the messages in `buf`: `Some(Ok)` for an ACK, `Some(Err)` for an
/// error, `None` if `buf` holds no NLMSG_ERROR for `seq`.
pub fn ack(buf: &[u8], seq: u32) -> Option<Result<(), Errno>> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = word(at)? as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < 16 || at + len > buf.len() {
            return None;
        }
        if kind == NLMSG_ERROR && word(at + 8)? == seq {
            let code = word(at + 16)? as i32;
            return Some(if code == 0 {
                Ok(())
            } else {
                Err(Errno::from_raw(-code))
            });
        }
        at += (len + 3) & !3;
    }
    None
}

/// The port's ifindex (the capture finds it the same way).
fn ifindex(port: &str) -> Result<u32, TcError> {
    nix::net::if_::if_nametoindex(port).map_err(|_| TcError::NoPort)
}

fn classify(step: Step, e: Errno) -> TcError {
    match e {
        Errno::ENOENT | Errno::EOPNOTSUPP => TcError::Unsupported(step, e),
        Errno::EPERM | Errno::EACCES => TcError::Permission(step),
        Errno::ENODEV => TcError::NoPort,
        e => TcError::Kernel(step, e),
    }
}

/// Install the trap filters on `port`'s ingress, replacing any a previous run left. On an
/// error, the filters added so far are deleted again.
pub fn install(port: &str) -> Result<(), TcError> {
    let ifindex = ifindex(port)?;
    let mut socket = Socket::open()?;
    match socket.call(&mut qdisc_request(ifindex))? {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(classify(Step::Qdisc, e)),
    }
    for index in 0..MATCHES.len() {
        let added = delete(&mut socket, ifindex, index).and_then(|()| {
            socket
                .call(&mut filter_request(ifindex, index))?
                .map_err(|e| classify(Step::Filter, e))
        });
        if let Err(e) = added {
            for undo in 0..index {
                let _ = delete(&mut socket, ifindex, undo);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Delete ptpproxy's filters from `port` (none there, or no port: nothing to do).
pub fn remove(port: &str) -> Result<(), TcError> {
    let ifindex = match ifindex(port) {
        Ok(i) => i,
        Err(TcError::NoPort) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut socket = Socket::open()?;
    let mut result = Ok(());
    for index in 0..MATCHES.len() {
        match delete(&mut socket, ifindex, index) {
            Ok(()) | Err(TcError::NoPort) => {}
            Err(e) => result = Err(e),
        }
    }
    result
}

/// Delete one priority; absent (ENOENT, or EINVAL: no ingress qdisc) counts as deleted.
fn delete(socket: &mut Socket, ifindex: u32, index: usize) -> Result<(), TcError> {
    match socket.call(&mut delete_request(ifindex, index))? {
        Ok(()) | Err(Errno::ENOENT | Errno::EINVAL) => Ok(()),
        Err(e) => Err(classify(Step::Remove, e)),
    }
}

#[cfg(test)]
mod tests;
