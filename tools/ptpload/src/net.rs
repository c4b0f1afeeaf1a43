//! AF_PACKET plumbing: entering a network namespace, a send socket with `sendmmsg` batches, and a
//! TPACKET_V2 receive ring that also taps what ptpload itself sends.
//!
//! Timing rests on one clock (CLOCK_REALTIME, which the kernel stamps packet-ring frames with):
//! the receive socket of an interface is bound to ETH_P_ALL, so the kernel's transmit tap
//! (`dev_queue_xmit_nit`) hands it a copy of every frame the *send* socket puts on that
//! interface, stamped just before the driver's transmit; frames arriving from the forwarder are
//! stamped on reception. A frame's one-way latency is the difference of the two stamps; neither
//! depends on when ptpload gets around to reading its rings, nor on a frame's place in a batch.
//!
//! All of ptpload's `unsafe` is here, each block with its reason. It moves bytes and stamps only:
//! it must never build or interpret a frame (frames.rs, flood.rs and the meter do).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::frames::FRAME_MAX;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Run `f` inside network namespace `netns` (a name under /var/run/netns; "" = the current
/// one) and return to the original namespace. Sockets keep the namespace they were made in.
pub fn in_netns<T>(netns: &str, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    if netns.is_empty() {
        return f();
    }
    let orig: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| context(e, "/proc/thread-self/ns/net"))?
        .into();
    let path = format!("/var/run/netns/{netns}");
    let target: OwnedFd = std::fs::File::open(&path)
        .map_err(|e| context(e, &path))?
        .into();
    // SAFETY: both fds are open namespace files; setns only changes this thread's namespace.
    cvt(unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) })
        .map_err(|e| context(e, &format!("setns {path}")))?;
    let r = f();
    // SAFETY: as above; `orig` is the namespace this thread was in.
    if unsafe { libc::setns(orig.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // Carrying on in the wrong namespace would open later sockets in the wrong place.
        eprintln!(
            "ptpload: cannot return to the original network namespace: {}",
            io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    r
}

pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::other("interface name has a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(context(io::Error::last_os_error(), name))
    } else {
        Ok(i as i32)
    }
}

fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); protocol 0 receives nothing until bound with a protocol.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed; the kernel copies it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn sockaddr_ll(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
    let mut a: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = protocol.to_be();
    a.sll_ifindex = ifindex;
    a.sll_halen = 6;
    a
}

/// Frames queued for one `sendmmsg`.
pub struct Batch {
    frames: Vec<[u8; FRAME_MAX]>,
    lens: Vec<usize>,
}

impl Batch {
    pub fn new(capacity: usize) -> Batch {
        Batch {
            frames: vec![[0; FRAME_MAX]; capacity],
            lens: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    pub fn is_full(&self) -> bool {
        self.lens.len() == self.frames.len()
    }

    /// Let `build` write the next frame; it returns the length.
    pub fn push(&mut self, build: impl FnOnce(&mut [u8; FRAME_MAX]) -> usize) {
        let i = self.lens.len();
        let n = build(&mut self.frames[i]);
        self.lens.push(n);
    }
}

/// Result of sending a batch.
#[derive(Default, Clone, Copy)]
pub struct Sent {
    pub ok: u64,
    pub errors: u64,
}

/// A send-only AF_PACKET socket on one interface.
pub struct TxSocket {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    pub last_error: Option<io::Error>,
}

impl TxSocket {
    /// Open in the current namespace. Frames carry `ethertype` (all of one transport).
    pub fn open(ifname: &str, ethertype: u16, batch: usize) -> io::Result<TxSocket> {
        let index = ifindex(ifname)?;
        let fd = packet_socket()?;
        // Room for a whole batch in flight (the kernel doubles the value).
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &(4 << 20));
        Ok(TxSocket {
            fd,
            addr: sockaddr_ll(index, ethertype),
            iovs: Vec::with_capacity(batch),
            hdrs: Vec::with_capacity(batch),
            last_error: None,
        })
    }

    /// Send every frame of `b` (one `sendmmsg`, more if the kernel takes part), then empty it.
    pub fn send(&mut self, b: &mut Batch) -> Sent {
        let n = b.len();
        let mut out = Sent::default();
        if n == 0 {
            return out;
        }
        self.iovs.clear();
        self.hdrs.clear();
        for i in 0..n {
            self.iovs.push(libc::iovec {
                iov_base: b.frames[i].as_mut_ptr().cast(),
                iov_len: b.lens[i],
            });
        }
        let addr = (&mut self.addr as *mut libc::sockaddr_ll).cast();
        for i in 0..n {
            // SAFETY: msghdr is plain old data; zeroes are valid, the fields are set below.
            let mut h: libc::mmsghdr = unsafe { core::mem::zeroed() };
            h.msg_hdr.msg_name = addr;
            h.msg_hdr.msg_namelen = core::mem::size_of::<libc::sockaddr_ll>() as u32;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let mut at = 0;
        let mut stalls = 0;
        while at < n {
            // SAFETY: hdrs[at..n] are initialised mmsghdrs whose iovecs point into `b`'s frames
            // and whose names point to `self.addr`, all alive and unmoved during the call.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr().add(at),
                    (n - at) as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                at += r as usize;
                out.ok += r as u64;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) if stalls < 100 => {
                    // Socket buffer full: wait for the kernel to free some (bounded).
                    stalls += 1;
                    wait_writable(&self.fd);
                }
                _ => {
                    // ENOBUFS (a queue dropped it) and the like: count, skip the frame.
                    out.errors += 1;
                    at += 1;
                    self.last_error = Some(e);
                }
            }
        }
        b.lens.clear();
        out
    }
}

fn wait_writable(fd: &OwnedFd) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 1) };
}

/// Kernel filter of the receive socket. Arrivals: PTP over Ethernet, anything 802.1Q-tagged
/// (parsed in user space) and unfragmented UDPv4 to port 319 or 320. Copies of our own
/// transmissions (the tap): Sync, Follow_Up and Announce all, Delay_Req and Delay_Resp only when
/// `sequenceId % tap_every == 0`, so the latency of those is sampled and the ring and the meter
/// do not carry one extra frame for every frame sent; none of the `--flood` senders' (source MAC
/// 02:70:78:…), which are not timed. `ptp_at`: offset of the PTP header in the frames we send.
/// Classic BPF; jump offsets are relative to the next instruction.
fn ptp_filter(ptp_at: u32, tap_every: u32) -> [libc::sock_filter; 25] {
    const LDW_ABS: u16 = 0x20;
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const LDH_IND: u16 = 0x48;
    const LDX_MSH: u16 = 0xb1;
    const AND: u16 = 0x54;
    const JEQ: u16 = 0x15;
    const JSET: u16 = 0x45;
    const RET: u16 = 0x06;
    /// SKF_AD_OFF + SKF_AD_PKTTYPE: the packet type, as an ancillary load.
    const PKTTYPE: u32 = 0xFFFF_F000 + 4;
    let i = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        i(LDW_ABS, 0, 0, PKTTYPE),     // 0
        i(JEQ, 0, 9, 4),               // 1: not PACKET_OUTGOING -> 11
        i(LDB_ABS, 0, 0, 8),           // 2: source MAC, third byte
        i(JEQ, 19, 0, 0x78),           // 3: 'x', a --flood sender -> drop (23)
        i(LDB_ABS, 0, 0, ptp_at),      // 4: messageType
        i(AND, 0, 0, 0x0F),            // 5
        i(JEQ, 1, 0, 1),               // 6: Delay_Req -> 8
        i(JEQ, 0, 16, 9),              // 7: not Delay_Resp -> accept (24)
        i(LDB_ABS, 0, 0, ptp_at + 31), // 8: sequenceId, low byte
        i(AND, 0, 0, tap_every - 1),   // 9
        i(JEQ, 13, 12, 0),             // 10: sampled -> accept (24), else drop (23)
        i(LDH_ABS, 0, 0, 12),          // 11: EtherType
        i(JEQ, 11, 0, 0x88F7),         // 12: PTP -> accept
        i(JEQ, 10, 0, 0x8100),         // 13: tagged -> accept
        i(JEQ, 0, 8, 0x0800),          // 14: not IPv4 -> drop
        i(LDB_ABS, 0, 0, 23),          // 15: IP protocol
        i(JEQ, 0, 6, 17),              // 16: not UDP -> drop
        i(LDH_ABS, 0, 0, 20),          // 17: flags + fragment offset
        i(JSET, 4, 0, 0x1FFF),         // 18: fragment -> drop
        i(LDX_MSH, 0, 0, 14),          // 19: X = IP header length
        i(LDH_IND, 0, 0, 14 + 2),      // 20: UDP destination port
        i(JEQ, 2, 0, 319),             // 21: event -> accept
        i(JEQ, 1, 0, 320),             // 22: general -> accept
        i(RET, 0, 0, 0),               // 23: drop
        i(RET, 0, 0, 0xFFFF),          // 24: accept
    ]
}

/// One frame read from a ring.
pub struct RxFrame<'a> {
    pub data: &'a [u8],
    /// Kernel timestamp, ns since the epoch (CLOCK_REALTIME).
    pub ts_ns: u64,
    /// A copy of a frame this host sent on the interface (the transmit tap).
    pub outgoing: bool,
}

const FRAME_SIZE: usize = 256;
const BLOCK_SIZE: usize = 1 << 16;
/// sockaddr_ll follows the TPACKET_ALIGN(16)-aligned tpacket2_hdr (32 bytes).
const SLL_OFFSET: usize = 32;
const TP_STATUS_USER: u32 = 1;

/// A TPACKET_V2 receive ring on one interface, promiscuous, bound to every protocol.
pub struct RxRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    frames: usize,
    head: usize,
}

impl RxRing {
    /// Open in the current namespace with about `ring_bytes` of ring; see [`ptp_filter`] for
    /// `ptp_at` and `tap_every` (a power of two).
    pub fn open(
        ifname: &str,
        ring_bytes: usize,
        ptp_at: u32,
        tap_every: u32,
    ) -> io::Result<RxRing> {
        let index = ifindex(ifname)?;
        let fd = packet_socket()?;
        let filter = ptp_filter(ptp_at, tap_every);
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(|e| context(e, "SO_ATTACH_FILTER"))?;
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
        )
        .map_err(|e| context(e, "PACKET_VERSION"))?;
        // Turns on the kernel's receive timestamps (taken when the frame enters the stack,
        // before any queueing), which the ring then reports.
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32);
        let blocks = (ring_bytes / BLOCK_SIZE).max(1);
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (blocks * (BLOCK_SIZE / FRAME_SIZE)) as u32,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| context(e, "PACKET_RX_RING"))?;
        let map_len = blocks * BLOCK_SIZE;
        // SAFETY: maps the ring the kernel just allocated for this socket; checked below.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(context(io::Error::last_os_error(), "mmap of the ring"));
        }
        let ring = RxRing {
            fd,
            map: map.cast(),
            map_len,
            frames: blocks * (BLOCK_SIZE / FRAME_SIZE),
            head: 0,
        };
        let addr = sockaddr_ll(index, libc::ETH_P_ALL as u16);
        // SAFETY: `addr` is a valid sockaddr_ll of the size passed.
        cvt(unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                core::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map_err(|e| context(e, "bind"))?;
        // Promiscuous: the emulated hosts have MACs of their own (unicast Delay_Resp).
        let mreq = libc::packet_mreq {
            mr_ifindex: index,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            &ring.fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
        .map_err(|e| context(e, "PACKET_ADD_MEMBERSHIP"))?;
        Ok(ring)
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn status(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: slot < frames, so the frame lies inside the mapping; tp_status is the first,
        // 4-byte aligned u32 of the frame, which the kernel and we hand over atomically.
        unsafe { AtomicU32::from_ptr(self.map.add(slot * FRAME_SIZE).cast()) }
    }

    /// Hand up to `budget` frames to `f`, oldest first; returns how many.
    pub fn drain(&mut self, budget: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        let mut n = 0;
        while n < budget {
            let slot = self.head;
            if self.status(slot).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the kernel filled this frame and published it with TP_STATUS_USER (the
            // Acquire load above orders our reads after its writes); it does not touch the
            // frame again until we store TP_STATUS_KERNEL. Offsets come from the kernel's own
            // header and stay within the frame (tp_mac + tp_snaplen <= FRAME_SIZE).
            let frame = unsafe {
                let base = self.map.add(slot * FRAME_SIZE);
                let hdr = &*(base as *const libc::tpacket2_hdr);
                let mac = usize::from(hdr.tp_mac);
                let len = (hdr.tp_snaplen as usize).min(FRAME_SIZE.saturating_sub(mac));
                let pkttype = *base.add(SLL_OFFSET + 10);
                RxFrame {
                    data: core::slice::from_raw_parts(base.add(mac), len),
                    ts_ns: u64::from(hdr.tp_sec) * 1_000_000_000 + u64::from(hdr.tp_nsec),
                    outgoing: pkttype == libc::PACKET_OUTGOING,
                }
            };
            f(frame);
            self.status(slot).store(0, Ordering::Release);
            self.head = (slot + 1) % self.frames;
            n += 1;
        }
        n
    }

    /// Frames the kernel dropped because the ring was full, since the last call.
    pub fn take_drops(&self) -> u64 {
        // SAFETY: tpacket_stats is plain old data; the kernel fills it.
        let mut st: libc::tpacket_stats = unsafe { core::mem::zeroed() };
        let mut len = core::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for the kernel to write.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r == 0 {
            u64::from(st.tp_drops)
        } else {
            0
        }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `map` and `map_len` are the mapping made in `open`, not used after this.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// Wait until one of `fds` is readable or `timeout_ns` passed.
pub fn wait_readable(fds: &[i32], timeout_ns: u64) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `p` holds valid pollfds, `ts` a valid timespec, no signal mask.
    unsafe {
        libc::ppoll(
            p.as_mut_ptr(),
            p.len() as libc::nfds_t,
            &ts,
            core::ptr::null(),
        )
    };
}

/// CLOCK_MONOTONIC / CLOCK_REALTIME in ns.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to fill.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// This process's user + system CPU time in ns.
pub fn cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Timer slack of 1 µs instead of 50 µs: the schedule's sleeps end when asked.
pub fn tight_timers() {
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
}
