//! One relay port: a libpcap handle on one interface to capture, and an AF_PACKET socket of its
//! own to send.
//!
//! The only pcap code of ptpproxy. Capture runs on the kernel's PACKET_MMAP ring in immediate
//! mode (TPACKET_V2: one wake-up per frame, no block timer), sized by the board profile, with a
//! kernel BPF filter that passes only inbound PTP, so the proxy never sees what it injects and
//! the kernel drops everything else before it reaches the ring.
//!
//! Frames leave through a second socket (protocol 0: it receives nothing) bound to the same
//! interface, in sendmmsg(2) batches. Being separate lets it ask for the kernel's transmit
//! timestamp of an event frame (SO_TIMESTAMPING, per message) for the residence correction:
//! those come back on the socket's error queue, which on the capture socket libpcap would take
//! for a socket error (POLLERR with SO_ERROR 0) and fail the handle.

use ptpproxy::board;
use ptpproxy::correction::{Corrector, Timing};
use ptpproxy::relay::PortId;
use ptpproxy::time::Timestamp;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Per-port counters kept by the shell (the core counts what it receives).
#[derive(Clone, Copy, Debug, Default)]
pub struct PortCounters {
    pub tx: u64,
    pub tx_errors: u64,
    /// Frames the kernel dropped because the ring was full (pcap_stats ps_drop), summed over
    /// every handle this port had.
    pub kernel_drops: u64,
    /// How many times the port was (re)opened.
    pub opens: u64,
}

/// A captured frame and when the kernel received it (libpcap's timestamp, nanosecond precision,
/// CLOCK_REALTIME: the clock [`now`] reads).
pub struct Received<'a> {
    pub data: &'a [u8],
    pub captured: Timestamp,
}

/// The clock of the capture timestamps, read right before frames that need it are sent.
pub fn now() -> Timestamp {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available");
    // tv_nsec is a C long: 32 bits on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    Timestamp::from_parts(t.tv_sec() as i64, t.tv_nsec() as i64)
}

pub struct Port {
    pub name: String,
    cap: Option<pcap::Capture<pcap::Active>>,
    /// The sending socket, open while `cap` is.
    tx_socket: Option<OwnedFd>,
    promiscuous: bool,
    pub counters: PortCounters,
    /// Kernel drops of the current handle, already folded into `counters.kernel_drops`.
    drops_seen: u64,
    /// The most recent send error, for the (rate-limited) log.
    pub last_tx_error: Option<std::io::Error>,
    tx: TxQueue,
    /// Interface index the open handle is bound to: a deleted and re-created interface gets a
    /// new one, and the old socket never becomes readable again.
    ifindex: u32,
    /// Administrative and operational state at the last check (`None`: not checked yet).
    pub link_up: Option<bool>,
}

/// Frames waiting to leave through this port, sent together with one sendmmsg(2) when the loop
/// has drained what was ready (or the queue is full): one system call per port and batch
/// instead of one per frame. The buffers are allocated once, at start.
struct TxQueue {
    /// `board::RX_BATCH` slots of `board::SNAPLEN` bytes.
    buf: Box<[u8]>,
    lens: Vec<usize>,
    /// What each queued frame needs as it leaves (residence correction).
    timings: Vec<Timing>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// The control message asking for a frame's software transmit timestamp.
    ts_request: TsRequest,
    /// Control buffers for reading the error queue, [`ERRQUEUE_BATCH`] at a time.
    ctrl: Box<[[u64; CTRL_WORDS]]>,
}

/// One SOL_SOCKET/SO_TIMESTAMPING control message with its flags: how one sendmsg asks for the
/// transmit timestamp of its frame alone. (Data follows the header unpadded on every Linux ABI:
/// the header's size is a multiple of the alignment, CMSG_ALIGN.)
#[repr(C)]
#[derive(Clone, Copy)]
struct TsRequest {
    hdr: libc::cmsghdr,
    flags: u32,
}

/// Room for the control messages of one error-queue entry (SCM_TIMESTAMPING and the
/// sock_extended_err that comes with it), in u64 for alignment.
const CTRL_WORDS: usize = 32;

/// Error-queue entries read per recvmmsg(2) (as many calls as it takes): the control buffers
/// are touched memory of every port, needed only with the residence correction.
const ERRQUEUE_BATCH: usize = if board::RX_BATCH < 16 {
    board::RX_BATCH
} else {
    16
};

impl TxQueue {
    fn new() -> TxQueue {
        TxQueue {
            buf: vec![0; board::RX_BATCH * board::SNAPLEN].into_boxed_slice(),
            lens: Vec::with_capacity(board::RX_BATCH),
            timings: Vec::with_capacity(board::RX_BATCH),
            iov: Vec::with_capacity(board::RX_BATCH),
            msgs: Vec::with_capacity(board::RX_BATCH),
            ts_request: ts_request(),
            ctrl: vec![[0u64; CTRL_WORDS]; ERRQUEUE_BATCH].into_boxed_slice(),
        }
    }

    fn is_full(&self) -> bool {
        self.lens.len() == board::RX_BATCH
    }
}

impl Port {
    /// A port not yet open; call [`Port::open`].
    pub fn new(name: &str, promiscuous: bool) -> Port {
        Port {
            name: name.to_owned(),
            cap: None,
            tx_socket: None,
            promiscuous,
            counters: PortCounters::default(),
            drops_seen: 0,
            last_tx_error: None,
            tx: TxQueue::new(),
            ifindex: 0,
            link_up: None,
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

    /// Open (or reopen) the capture handle.
    pub fn open(&mut self) -> Result<(), String> {
        self.close();
        let cap = pcap::Capture::from_device(self.name.as_str())
            .and_then(|c| {
                c.immediate_mode(true)
                    .buffer_size(board::RING_BYTES as i32)
                    .snaplen(board::SNAPLEN as i32)
                    .promisc(self.promiscuous)
                    .precision(pcap::Precision::Nano)
                    .open()
            })
            .map_err(|e| format!("{}: cannot open: {e}", self.name))?;
        let cap = cap
            .setnonblock()
            .map_err(|e| format!("{}: non-blocking mode: {e}", self.name))?;
        let program = cap
            .compile(FILTER, true)
            .map_err(|e| format!("{}: compiling the filter: {e}", self.name))?;
        attach_kernel_filter(&cap, &program)
            .map_err(|e| format!("{}: kernel filter: {e}", self.name))?;
        ignore_outgoing(&cap).map_err(|e| format!("{}: ignoring outgoing: {e}", self.name))?;
        let index = nix::net::if_::if_nametoindex(self.name.as_str())
            .map_err(|e| format!("{}: interface index: {e}", self.name))?;
        if !self.promiscuous {
            join_ptp_groups(&cap, index)
                .map_err(|e| format!("{}: joining multicast group: {e}", self.name))?;
        }
        let tx =
            open_tx_socket(index).map_err(|e| format!("{}: sending socket: {e}", self.name))?;
        self.cap = Some(cap);
        self.tx_socket = Some(tx);
        self.ifindex = index;
        self.drops_seen = 0;
        self.counters.opens += 1;
        Ok(())
    }

    /// Drop the handle (interface gone or down); the caller reopens it later.
    pub fn close(&mut self) {
        self.update_kernel_drops();
        self.cap = None;
        self.tx_socket = None;
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

    /// Queue one frame for [`Port::flush`], to leave as port `id` with `timing` applied. Frames
    /// are copied (they live in the capture ring, whose slot goes back to the kernel when the
    /// dispatch callback returns).
    pub fn queue(&mut self, frame: &[u8], timing: Timing, id: PortId, corrector: &mut Corrector) {
        if frame.len() > board::SNAPLEN {
            // Cannot happen with frames captured at SNAPLEN; never truncate one.
            self.counters.tx_errors += 1;
            return;
        }
        if self.tx.is_full() {
            self.flush(id, corrector);
        }
        let at = self.tx.lens.len() * board::SNAPLEN;
        self.tx.buf[at..at + frame.len()].copy_from_slice(frame);
        self.tx.lens.push(frame.len());
        self.tx.timings.push(timing);
    }

    /// Send what is queued; errors are counted, never fatal.
    ///
    /// Frames go in as few sendmmsg(2) calls as the correction allows: each event frame whose
    /// residence is measured starts a new call, right after the clock is read for it (and for
    /// the frames of that call). A one-step Sync carries that time; a remembered residence
    /// (two-step Sync, Delay_Req) is then made exact with the kernel's transmit timestamp, read
    /// back from the error queue after the sends.
    pub fn flush(&mut self, id: PortId, corrector: &mut Corrector) {
        let n = self.tx.lens.len();
        if n == 0 {
            return;
        }
        let Some(fd) = self.tx_socket.as_ref().map(|s| s.as_raw_fd()) else {
            // Closed (interface gone or down): already logged when it closed.
            self.counters.tx_errors += n as u64;
            self.tx.lens.clear();
            self.tx.timings.clear();
            return;
        };
        let mut start = 0;
        while start < n {
            let end = (start + 1..n)
                .find(|&k| self.tx.timings[k].is_event())
                .unwrap_or(n);
            let q = &mut self.tx;
            if q.timings[start..end].iter().any(|t| *t != Timing::None) {
                let egress = now();
                for k in start..end {
                    let slot = &mut q.buf[k * board::SNAPLEN..k * board::SNAPLEN + q.lens[k]];
                    corrector.on_egress(&q.timings[k], id, egress, slot);
                }
            }
            self.send(fd, start..end);
            start = end;
        }
        let stamped = self
            .tx
            .timings
            .iter()
            .any(|t| matches!(t, Timing::Remember { .. }));
        self.tx.lens.clear();
        self.tx.timings.clear();
        if stamped {
            self.read_tx_timestamps(fd, id, corrector);
        }
    }

    /// Hand the kernel's transmit timestamps waiting on the error queue of the sending socket
    /// `fd` to the corrector (the sent frames' slots are free again: they hold what is read).
    fn read_tx_timestamps(&mut self, fd: RawFd, id: PortId, corrector: &mut Corrector) {
        let q = &mut self.tx;
        loop {
            q.iov.clear();
            q.msgs.clear();
            let base = q.buf.as_mut_ptr();
            for k in 0..ERRQUEUE_BATCH {
                q.iov.push(libc::iovec {
                    // SAFETY: slot k lies within `buf` (k < ERRQUEUE_BATCH <= RX_BATCH).
                    iov_base: unsafe { base.add(k * board::SNAPLEN) }.cast(),
                    iov_len: board::SNAPLEN,
                });
            }
            for k in 0..ERRQUEUE_BATCH {
                // SAFETY: mmsghdr is plain data; all-zero is a valid value.
                let mut m: libc::mmsghdr = unsafe { core::mem::zeroed() };
                m.msg_hdr.msg_iov = &mut q.iov[k];
                m.msg_hdr.msg_iovlen = 1;
                m.msg_hdr.msg_control = q.ctrl[k].as_mut_ptr().cast();
                m.msg_hdr.msg_controllen = (CTRL_WORDS * 8) as _;
                q.msgs.push(m);
            }
            // SAFETY: `msgs` holds ERRQUEUE_BATCH initialised mmsghdrs whose buffers (`buf` slots and
            // `ctrl` entries, of the lengths given) outlive the call; `fd` is the open socket.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    q.msgs.as_mut_ptr(),
                    ERRQUEUE_BATCH as libc::c_uint,
                    // c_int on glibc, c_uint on musl.
                    (libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) as _,
                    core::ptr::null_mut(),
                )
            };
            if n <= 0 {
                return;
            }
            for k in 0..n as usize {
                let m = &q.msgs[k];
                let len = (m.msg_len as usize).min(board::SNAPLEN);
                // SAFETY: the kernel filled msg_control up to msg_controllen with complete
                // control messages, inside `ctrl[k]`.
                let Some(tx) = (unsafe { software_tx_timestamp(&m.msg_hdr) }) else {
                    continue;
                };
                let frame = &q.buf[k * board::SNAPLEN..k * board::SNAPLEN + len];
                corrector.on_tx_timestamp(id, frame, tx);
            }
            if (n as usize) < ERRQUEUE_BATCH {
                return;
            }
        }
    }

    /// sendmmsg(2) the queued frames `range` on `fd`; count what went and what failed.
    fn send(&mut self, fd: std::os::fd::RawFd, range: std::ops::Range<usize>) {
        let q = &mut self.tx;
        q.iov.clear();
        q.msgs.clear();
        let base = q.buf.as_mut_ptr();
        for k in range.clone() {
            q.iov.push(libc::iovec {
                // SAFETY: slot k lies within `buf` (k < RX_BATCH, len <= SNAPLEN).
                iov_base: unsafe { base.add(k * board::SNAPLEN) }.cast(),
                iov_len: q.lens[k],
            });
        }
        let n = range.len();
        let request: *mut TsRequest = &mut q.ts_request;
        for (k, slot) in range.clone().enumerate() {
            // SAFETY: mmsghdr is plain data; all-zero is a valid value (no name, no control).
            let mut m: libc::mmsghdr = unsafe { core::mem::zeroed() };
            m.msg_hdr.msg_iov = &mut q.iov[k];
            m.msg_hdr.msg_iovlen = 1;
            if matches!(q.timings[slot], Timing::Remember { .. }) {
                // Its residence is remembered: ask for the time it really leaves.
                m.msg_hdr.msg_control = request.cast();
                m.msg_hdr.msg_controllen = core::mem::size_of::<TsRequest>() as _;
            }
            q.msgs.push(m);
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: `msgs[sent..n]` are initialised mmsghdrs whose iovecs point into `buf`
            // and whose control data (if any) is `ts_request`, which outlive the call and are
            // not touched during it; the fd is this port's open sending socket, bound to its
            // interface.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    q.msgs.as_mut_ptr().add(sent),
                    (n - sent) as libc::c_uint,
                    0,
                )
            };
            if rc > 0 {
                sent += rc as usize;
                self.counters.tx += rc as u64;
            } else {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // The frame at `sent` failed: count it, go on with the rest.
                self.counters.tx_errors += 1;
                self.last_tx_error = Some(e);
                sent += 1;
            }
        }
    }

    /// Fold the kernel's ring-overflow count of the current handle into the counters.
    pub fn update_kernel_drops(&mut self) {
        if let Some(cap) = self.cap.as_mut() {
            if let Ok(s) = cap.stats() {
                let now = u64::from(s.dropped);
                self.counters.kernel_drops += now.saturating_sub(self.drops_seen);
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

/// setsockopt(2) with a plain-data option value on the open socket `fd` (the capture handle's or
/// the sending socket).
fn setsockopt<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> std::io::Result<()> {
    // SAFETY: `fd` is an open socket that outlives the call; `value` is a valid, initialised
    // T and the length passed is its size; the kernel only reads it (and copies what it keeps,
    // including anything it points to).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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

/// The sending socket of a port: AF_PACKET, SOCK_RAW, protocol 0 (it receives no frames),
/// non-blocking, bound to interface `index`; it reports software transmit timestamps, which each
/// send asks for per frame ([`TsRequest`]).
fn open_tx_socket(index: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned right below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; all-zero is valid before the fields are set.
    let mut addr: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_ifindex = index as libc::c_int;
    // SAFETY: `addr` is an initialised sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let report = libc::SOF_TIMESTAMPING_SOFTWARE;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, &report)?;
    Ok(fd)
}

/// The control message that asks for one frame's software transmit timestamp.
fn ts_request() -> TsRequest {
    // SAFETY: cmsghdr is plain data; all-zero is a valid value before the fields are set.
    let mut hdr: libc::cmsghdr = unsafe { core::mem::zeroed() };
    hdr.cmsg_level = libc::SOL_SOCKET;
    hdr.cmsg_type = libc::SO_TIMESTAMPING;
    // SAFETY: CMSG_LEN only computes a length.
    hdr.cmsg_len = unsafe { libc::CMSG_LEN(core::mem::size_of::<u32>() as u32) } as _;
    TsRequest {
        hdr,
        flags: libc::SOF_TIMESTAMPING_TX_SOFTWARE,
    }
}

/// SO_TIMESTAMPING_NEW: the 64-bit-time variant 32-bit kernels may deliver.
const SO_TIMESTAMPING_NEW: libc::c_int = 65;

/// The software timestamp (the first of scm_timestamping's three) among the control messages
/// of `msg`, read from an error queue. Its timespecs are 64-bit pairs (64-bit kernels,
/// SO_TIMESTAMPING_NEW) or 32-bit pairs (SO_TIMESTAMPING on 32-bit kernels): told by length.
///
/// # Safety
/// `msg.msg_control` points to `msg.msg_controllen` bytes of complete control messages, as
/// recvmsg(2) leaves them.
unsafe fn software_tx_timestamp(msg: &libc::msghdr) -> Option<Timestamp> {
    // SAFETY (for the CMSG_* calls and reads below): the caller's guarantee; every read stays
    // inside one control message's data, of the length its header gives.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        let hdr = unsafe { &*c };
        if hdr.cmsg_level == libc::SOL_SOCKET
            && (hdr.cmsg_type == libc::SO_TIMESTAMPING || hdr.cmsg_type == SO_TIMESTAMPING_NEW)
        {
            let data = unsafe { libc::CMSG_DATA(c) };
            let len = hdr.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            let t = if len >= 48 {
                let s = unsafe { core::ptr::read_unaligned(data.cast::<i64>()) };
                let ns = unsafe { core::ptr::read_unaligned(data.add(8).cast::<i64>()) };
                Timestamp::from_parts(s, ns)
            } else if len >= 24 {
                let s = unsafe { core::ptr::read_unaligned(data.cast::<i32>()) };
                let ns = unsafe { core::ptr::read_unaligned(data.add(4).cast::<i32>()) };
                Timestamp::from_parts(i64::from(s), i64::from(ns))
            } else {
                return None;
            };
            return (t.0 != 0).then_some(t);
        }
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    None
}
