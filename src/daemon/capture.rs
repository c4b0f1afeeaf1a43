//! The receiving side of a port: a libpcap handle on one interface. With the sending side
//! ([`super::sender`]) the only code of ptpproxy that touches frames' sockets.
//!
//! Capture runs on the kernel's PACKET_MMAP ring in immediate mode (TPACKET_V2: one wake-up per
//! frame, no block timer), sized by the board profile, with a kernel BPF filter that passes only
//! inbound PTP, so the proxy never sees what it sends and the kernel drops everything else before
//! it reaches the ring. A capture also tracks its interface (index, link state), so a deleted and
//! re-created interface is noticed and reopened.

use super::error::Error;
use super::sys::setsockopt;
use ptpproxy::board;
use ptpproxy::time::Timestamp;
use std::os::fd::BorrowedFd;

/// Kernel filter: inbound multicast PTP over Ethernet, UDPv4 or UDPv6, untagged, with one
/// 802.1Q tag, or with two (QinQ: not relayed, but let in so the core counts it as
/// `stacked_vlan` instead of it vanishing in the kernel). Each `vlan` shifts the offsets of
/// everything after it, so the tagged cases nest: untagged, else one tag then PTP, else a
/// second tag then PTP. (The kernel may hold the outer tag as metadata; libpcap's `vlan` checks
/// that first, and puts the tag back inline in the captured frame.)
/// `inbound` compiles to the kernel's packet-type check (SKF_AD_PKTTYPE): unlike
/// pcap_setdirection, it drops our own transmissions before they reach the ring.
pub const FILTER: &str = "inbound and ether multicast and \
    (ether proto 0x88f7 or (udp and (dst port 319 or dst port 320)) or \
    (vlan and (ether proto 0x88f7 or (udp and (dst port 319 or dst port 320)) or \
    (vlan and (ether proto 0x88f7 or (udp and (dst port 319 or dst port 320)))))))";

/// The PTP multicast groups' MAC addresses (IEEE 1588-2019 Annex C–E): primary L2, UDPv4
/// 224.0.1.129, UDPv6 FF0X::181. Peer delay (01-80-C2-00-00-0E, 224.0.0.107) is never relayed.
const GROUPS: [[u8; 6]; 3] = [
    [0x01, 0x1B, 0x19, 0x00, 0x00, 0x00],
    [0x01, 0x00, 0x5E, 0x00, 0x01, 0x81],
    [0x33, 0x33, 0x00, 0x00, 0x01, 0x81],
];

/// A captured frame and when the kernel received it (its software receive timestamp, reported
/// through the ring at nanosecond precision; CLOCK_REALTIME, which the loop moves onto the
/// monotonic clock: `sys::WallClock`).
pub struct Received<'a> {
    pub data: &'a [u8],
    pub captured: Timestamp,
    /// The frame's length on the wire (`data` stops at the snap length).
    pub wire_len: u32,
}

pub struct Capture {
    pub name: String,
    cap: Option<pcap::Capture<pcap::Active>>,
    promiscuous: bool,
    /// Interface index the open handle is bound to: a deleted and re-created interface gets a
    /// new one, and the old socket never becomes readable again.
    ifindex: u32,
    /// Administrative and operational state at the last check (`None`: not checked yet).
    pub link_up: Option<bool>,
    /// Frames the kernel dropped because the ring was full (pcap_stats ps_drop), summed over
    /// every handle this port had.
    pub kernel_drops: u64,
    /// Kernel drops of the current handle, already folded into `kernel_drops`.
    drops_seen: u64,
    /// How many times the port was (re)opened.
    pub opens: u64,
}

impl Capture {
    /// A capture not yet open; call [`Capture::open`].
    pub fn new(name: &str, promiscuous: bool) -> Capture {
        Capture {
            name: name.to_owned(),
            cap: None,
            promiscuous,
            ifindex: 0,
            link_up: None,
            kernel_drops: 0,
            drops_seen: 0,
            opens: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.cap.is_some()
    }

    /// True if the open handle's interface was deleted (and maybe re-created under the same
    /// name): the handle is useless and must be reopened.
    pub fn interface_replaced(&self) -> bool {
        self.is_open()
            && nix::net::if_::if_nametoindex(self.name.as_str()).ok() != Some(self.ifindex)
    }

    /// Open and its link up (as far as known): what the status file reports as "up".
    pub fn is_up(&self) -> bool {
        self.is_open() && self.link_up != Some(false)
    }

    /// Open (or reopen) the handle; the interface index it is bound to.
    pub fn open(&mut self) -> Result<u32, Error> {
        self.close();
        let name = self.name.as_str();
        let cap = pcap::Capture::from_device(name)
            .and_then(|c| {
                c.immediate_mode(true)
                    .buffer_size(board::RING_BYTES as i32)
                    .snaplen(board::SNAPLEN as i32)
                    .promisc(self.promiscuous)
                    .precision(pcap::Precision::Nano)
                    .open()
            })
            .map_err(|e| Error::port(name, "cannot open", e))?;
        let cap = cap
            .setnonblock()
            .map_err(|e| Error::port(name, "non-blocking mode", e))?;
        let program = cap
            .compile(FILTER, true)
            .map_err(|e| Error::port(name, "compiling the filter", e))?;
        attach_kernel_filter(&cap, &program).map_err(|e| Error::port(name, "kernel filter", e))?;
        ignore_outgoing(&cap).map_err(|e| Error::port(name, "ignoring outgoing", e))?;
        stamp_on_arrival(&cap).map_err(|e| Error::port(name, "receive time stamps", e))?;
        let index = nix::net::if_::if_nametoindex(name)
            .map_err(|e| Error::port(name, "interface index", e))?;
        if !self.promiscuous {
            join_ptp_groups(&cap, index)
                .map_err(|e| Error::port(name, "joining multicast group", e))?;
        }
        self.cap = Some(cap);
        self.ifindex = index;
        self.drops_seen = 0;
        self.opens += 1;
        Ok(index)
    }

    /// Drop the handle (interface gone or down); the caller reopens it later.
    pub fn close(&mut self) {
        self.update_kernel_drops();
        self.cap = None;
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.cap.as_ref().map(|c| c.as_fd())
    }

    /// Hand up to `max` captured frames, those the ring holds now, to `f`; how many. One
    /// pcap_dispatch: after poll() reported the port readable it makes no system call (reading
    /// frame by frame, libpcap polls the ring once more to find it empty, and copies each frame).
    pub fn dispatch(
        &mut self,
        max: usize,
        mut f: impl FnMut(Received<'_>),
    ) -> Result<usize, pcap::Error> {
        let Some(cap) = self.cap.as_mut() else {
            return Ok(0);
        };
        // time_t and suseconds_t are narrower than i64 on some 32-bit targets.
        #[allow(clippy::unnecessary_cast)]
        let result = cap.dispatch(Some(max), |p| {
            f(Received {
                data: p.data,
                wire_len: p.header.len,
                // With nanosecond precision requested, tv_usec holds nanoseconds.
                captured: Timestamp::from_parts(
                    p.header.ts.tv_sec as i64,
                    p.header.ts.tv_usec as i64,
                ),
            })
        });
        match result {
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => Ok(0),
            r => r,
        }
    }

    /// Fold the kernel's ring-overflow count of the current handle into the counters.
    pub fn update_kernel_drops(&mut self) {
        if let Some(cap) = self.cap.as_mut() {
            if let Ok(s) = cap.stats() {
                let now = u64::from(s.dropped);
                self.kernel_drops += now.saturating_sub(self.drops_seen);
                self.drops_seen = now;
            }
        }
    }
}

/// Attach the compiled filter to the socket ourselves rather than through pcap_setfilter:
/// libpcap then also runs the filter in user space on the next frame read from the ring (for
/// frames that may predate the kernel filter), where `inbound` cannot be evaluated, so the first
/// PTP frame after every open would be lost. Only frames that arrived in the microseconds
/// between activation and this call bypass the filter; the core judges those like any other.
fn attach_kernel_filter(
    cap: &pcap::Capture<pcap::Active>,
    program: &pcap::BpfProgram,
) -> std::io::Result<()> {
    let insns = program.get_instructions();
    let fprog = libc::sock_fprog {
        len: insns.len() as libc::c_ushort,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // pcap::BpfInstruction is repr(transparent) over libpcap's struct bpf_insn {u16 code;
    // u8 jt; u8 jf; u32 k}: the layout of the kernel's struct sock_filter, which `fprog` points
    // to while `program` is borrowed; the kernel copies the program during the call.
    setsockopt(cap, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Keep the kernel from offering the capture socket every frame sent on the interface
/// (PACKET_IGNORE_OUTGOING, Linux 4.20): the `inbound` filter would reject each one, but only
/// after the kernel ran it per frame sent, on the sender's time. Older kernels lack the option
/// (ENOPROTOOPT): the filter alone keeps them out there.
fn ignore_outgoing(cap: &pcap::Capture<pcap::Active>) -> std::io::Result<()> {
    match setsockopt(
        cap,
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        &1 as &libc::c_int,
    ) {
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(()),
        r => r,
    }
}

/// Stamp each frame with the time the kernel received it from the driver (the skb's software
/// receive time stamp, taken before the frame waits in the CPU's backlog), not the time the
/// capture socket was offered it: by then the frame may have queued behind a whole batch of our
/// own sends to other ports, which the residence correction would not see. SO_TIMESTAMPNS makes the
/// kernel take receive time stamps (ptp4l does the same); PACKET_TIMESTAMP with
/// SOF_TIMESTAMPING_SOFTWARE makes the ring report that stamp (libpcap sets it only for adapter
/// time stamps). A frame without one still gets the ring's own clock read.
fn stamp_on_arrival(cap: &pcap::Capture<pcap::Active>) -> std::io::Result<()> {
    setsockopt(
        cap,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &1 as &libc::c_int,
    )?;
    setsockopt(
        cap,
        libc::SOL_PACKET,
        libc::PACKET_TIMESTAMP,
        &(libc::SOF_TIMESTAMPING_SOFTWARE as libc::c_int),
    )
}

/// Receive the PTP groups without promiscuous mode: PACKET_ADD_MEMBERSHIP on the capture socket
/// (the membership lives as long as the socket).
fn join_ptp_groups(cap: &pcap::Capture<pcap::Active>, index: u32) -> std::io::Result<()> {
    for group in GROUPS {
        let mut mr_address = [0u8; 8];
        mr_address[..6].copy_from_slice(&group);
        let mreq = libc::packet_mreq {
            mr_ifindex: index as libc::c_int,
            mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
            mr_alen: 6,
            mr_address,
        };
        setsockopt(cap, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
    }
    Ok(())
}
