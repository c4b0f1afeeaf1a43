//! The sending side of a port: an AF_PACKET socket of its own (protocol 0: it receives
//! nothing) bound to the port's interface, and the queue of frames waiting to leave through it,
//! sent in sendmmsg(2) batches.
//!
//! Being separate from the capture socket lets it ask for the kernel's transmit timestamp of an
//! event frame (SO_TIMESTAMPING, per message) for the residence correction: those come back on
//! the socket's error queue, which on the capture socket libpcap would take for a socket error
//! (POLLERR with SO_ERROR 0) and fail the handle. Each timestamp goes back to the core with the
//! [`PendingKey`] the frame's send carried, matched against the frame the error queue returns.

use super::error::Error;
use super::sys::{egress_clock, setsockopt, WallClock};
use ptpproxy::board;
use ptpproxy::correction::{Event, PendingKey, Timing};
use ptpproxy::port::{PortId, PortSet};
use ptpproxy::proxy::Proxy;
use ptpproxy::time::{Duration, Instant, Timestamp};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The longest a Follow_Up or Delay_Resp waits in the queue for its event's transmit timestamp
/// (an event held in a qdisc behind other frames, a driver that stamps late) before it leaves
/// with the clock read instead: below any PTP client's wait for it (a Delay_Resp is expected
/// before the next Delay_Req; ptp4l matches a Follow_Up with any later arrival), and long enough
/// for a qdisc draining a batch at 10 Mbit/s.
pub const TX_TIMESTAMP_WAIT: Duration = Duration(20_000_000);

/// Event frames sent whose transmit timestamp may still come back (the oldest is forgotten
/// first): the error queue is read right after each batch, so one batch's worth is the need.
const IN_FLIGHT: usize = 2 * board::RX_BATCH;

pub struct Sender {
    /// Open while the port's capture is.
    socket: Option<OwnedFd>,
    tx: TxQueue,
    /// Keys of the remembered events sent, oldest first, with where their PTP message starts.
    in_flight: heapless::Deque<(PendingKey, u16), IN_FLIGHT>,
    /// Frames sent, and frames that could not be.
    pub tx_count: u64,
    pub tx_errors: u64,
    /// The most recent send error, for the (rate-limited) log.
    pub last_error: Option<std::io::Error>,
    /// sendmmsg(2) and recvmmsg(2) calls made.
    pub syscalls: u64,
    /// Transmit timestamps read back: this port's driver stamps what it sends.
    pub tx_timestamps: u64,
    /// Follow_Up and Delay_Resp held for a later batch because their event's transmit
    /// timestamp had not come back yet (each counted once).
    pub tx_timestamp_waits: u64,
}

/// What a flush may hold back for a later one: a general message whose event left through a port
/// of `stamping` (its driver stamps) and whose stamp has not come back, queued less than
/// [`TX_TIMESTAMP_WAIT`] before `now`.
#[derive(Clone, Copy)]
pub struct Hold {
    pub now: Instant,
    pub stamping: PortSet,
}

/// Queue slots, in the order they are sent.
type Slots = heapless::Vec<usize, { board::RX_BATCH }>;

/// Frames waiting to leave through this port, sent together with one sendmmsg(2) when the loop
/// has drained what was ready (or the queue is full): one system call per port and batch
/// instead of one per frame. The buffers are allocated once, at start.
struct TxQueue {
    /// `board::RX_BATCH` slots of `board::SNAPLEN` bytes.
    buf: Box<[u8]>,
    lens: Vec<usize>,
    /// What each queued frame needs as it leaves (residence correction).
    timings: Vec<Timing>,
    /// When each frame was queued, and whether it was already held back once.
    queued: Vec<(Instant, bool)>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// The control message asking for a frame's software transmit timestamp.
    ts_request: TsRequest,
    /// Control buffers for reading the error queue, [`ERRQUEUE_BATCH`] at a time, and the
    /// frames read with them (apart from `buf`: frames still queued wait there).
    ctrl: Box<[[u64; CTRL_WORDS]]>,
    errbuf: Box<[u8]>,
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

/// Error-queue entries read per recvmmsg(2) (as many calls as it takes): one queue's worth, so a
/// batch's transmit timestamps usually come back in one call (the buffers, ~700 bytes an entry,
/// are touched only with the residence correction).
const ERRQUEUE_BATCH: usize = board::RX_BATCH;

impl TxQueue {
    fn new() -> TxQueue {
        TxQueue {
            buf: vec![0; board::RX_BATCH * board::SNAPLEN].into_boxed_slice(),
            lens: Vec::with_capacity(board::RX_BATCH),
            timings: Vec::with_capacity(board::RX_BATCH),
            queued: Vec::with_capacity(board::RX_BATCH),
            iov: Vec::with_capacity(board::RX_BATCH),
            msgs: Vec::with_capacity(board::RX_BATCH),
            ts_request: ts_request(),
            ctrl: vec![[0u64; CTRL_WORDS]; ERRQUEUE_BATCH].into_boxed_slice(),
            errbuf: vec![0; ERRQUEUE_BATCH * board::SNAPLEN].into_boxed_slice(),
        }
    }

    fn is_full(&self) -> bool {
        self.lens.len() == board::RX_BATCH
    }

    fn clear(&mut self) {
        self.lens.clear();
        self.timings.clear();
        self.queued.clear();
    }

    /// Keep only the frames `kept` (ascending slot numbers), moved to the front in order.
    fn keep(&mut self, kept: &[usize]) {
        for (to, &from) in kept.iter().enumerate() {
            if to != from {
                let len = self.lens[from];
                self.buf.copy_within(
                    from * board::SNAPLEN..from * board::SNAPLEN + len,
                    to * board::SNAPLEN,
                );
                self.lens[to] = len;
                self.timings[to] = self.timings[from];
                self.queued[to] = self.queued[from];
            }
        }
        self.lens.truncate(kept.len());
        self.timings.truncate(kept.len());
        self.queued.truncate(kept.len());
    }
}

impl Sender {
    pub fn new() -> Sender {
        Sender {
            socket: None,
            tx: TxQueue::new(),
            in_flight: heapless::Deque::new(),
            tx_count: 0,
            tx_errors: 0,
            last_error: None,
            syscalls: 0,
            tx_timestamps: 0,
            tx_timestamp_waits: 0,
        }
    }

    /// Open the sending socket on interface `ifindex` (`name` for the error).
    pub fn open(&mut self, name: &str, ifindex: u32) -> Result<(), Error> {
        self.socket =
            Some(open_tx_socket(ifindex).map_err(|e| Error::port(name, "sending socket", e))?);
        Ok(())
    }

    pub fn close(&mut self) {
        self.socket = None;
        self.in_flight.clear();
    }

    /// No room for another frame: [`Sender::flush`] first.
    pub fn is_full(&self) -> bool {
        self.tx.is_full()
    }

    /// Frames held back by the last flush for their event's transmit timestamp.
    pub fn holds_frames(&self) -> bool {
        !self.tx.lens.is_empty()
    }

    /// Frames that can be queued before the queue is full.
    pub fn room(&self) -> usize {
        board::RX_BATCH - self.tx.lens.len()
    }

    /// Queue one frame for [`Sender::flush`], to leave with `timing` applied. Frames are copied
    /// (they live in the capture ring, whose slot goes back to the kernel when the dispatch
    /// callback returns). The caller flushes a full queue first.
    pub fn queue(&mut self, frame: &[u8], timing: Timing, now: Instant) {
        if frame.len() > board::SNAPLEN || self.tx.is_full() {
            // Cannot happen with frames captured at SNAPLEN; never truncate one.
            self.tx_errors += 1;
            return;
        }
        let at = self.tx.lens.len() * board::SNAPLEN;
        self.tx.buf[at..at + frame.len()].copy_from_slice(frame);
        self.tx.lens.push(frame.len());
        self.tx.timings.push(timing);
        self.tx.queued.push((now, false));
    }

    /// Send what is queued; errors are counted, never fatal.
    ///
    /// Frames go in as few sendmmsg(2) calls as the correction allows; each call starts right
    /// after the clock is read for its frames. A one-step Sync carries that time, so it always
    /// starts a call of its own. A remembered residence (two-step Sync, Delay_Req) is made exact
    /// with the kernel's transmit timestamp, read back from the error queue after the sends: in
    /// immediate mode each also starts a call (the clock read stays close where a driver gives
    /// no timestamp); `batched`, they share one. A Follow_Up whose Sync is in the same queue
    /// leaves after that Sync's timestamp was read, so it carries the exact residence; with
    /// `hold`, a Follow_Up or Delay_Resp whose event's timestamp is still missing stays queued
    /// for a later flush (at most [`TX_TIMESTAMP_WAIT`], and half the queue).
    ///
    /// Egress times are read on the monotonic clock; the kernel's transmit timestamps are moved
    /// onto it with `clock` (and not used if the wall clock stepped since `clock` was read).
    pub fn flush(
        &mut self,
        id: PortId,
        proxy: &mut Proxy,
        batched: bool,
        clock: &WallClock,
        hold: Option<Hold>,
    ) {
        let n = self.tx.lens.len();
        if n == 0 {
            return;
        }
        let Some(fd) = self.socket.as_ref().map(|s| s.as_raw_fd()) else {
            // Closed (interface gone or down): already logged when it closed.
            self.tx_errors += n as u64;
            self.tx.clear();
            return;
        };
        let (mut first, mut after_timestamps) = (Slots::new(), Slots::new());
        for k in 0..n {
            let pass = if self.waits_for_its_sync(k) {
                &mut after_timestamps
            } else {
                &mut first
            };
            let _ = pass.push(k);
        }
        let mut held = Slots::new();
        self.hold_back(&mut first, &mut held, id, proxy, hold);
        self.send_groups(fd, id, proxy, &first, batched);
        let mut stamped = false;
        for &k in &first {
            if self.tx.lens[k] == 0 {
                continue; // not sent
            }
            if let Timing::Remember {
                key, ptp_offset, ..
            } = self.tx.timings[k]
            {
                // Its transmit timestamp comes back on the error queue: remember what it was.
                if self.in_flight.is_full() {
                    self.in_flight.pop_front();
                }
                let _ = self.in_flight.push_back((key, ptp_offset));
                stamped = true;
            }
        }
        if stamped {
            self.read_tx_timestamps(fd, id, proxy, clock);
        }
        self.hold_back(&mut after_timestamps, &mut held, id, proxy, hold);
        self.send_groups(fd, id, proxy, &after_timestamps, batched);
        held.sort_unstable();
        self.tx.keep(&held);
    }

    /// Move from `slots` to `held` the general messages `hold` lets wait for their event's
    /// transmit timestamp (leaving port `id`).
    fn hold_back(
        &mut self,
        slots: &mut Slots,
        held: &mut Slots,
        id: PortId,
        proxy: &Proxy,
        hold: Option<Hold>,
    ) {
        let Some(hold) = hold else {
            return;
        };
        let q = &mut self.tx;
        slots.retain(|&k| {
            let waits = proxy
                .awaits_tx_timestamp(&q.timings[k], id)
                .is_some_and(|p| hold.stamping.contains(p));
            let (queued, waited) = q.queued[k];
            if !waits
                || hold.now.saturating_since(queued) >= TX_TIMESTAMP_WAIT
                || held.len() >= board::RX_BATCH / 2
            {
                return true;
            }
            let _ = held.push(k);
            if !waited {
                q.queued[k].1 = true;
                self.tx_timestamp_waits += 1;
            }
            false
        });
    }

    /// Events sent here whose transmit timestamp has not come back (none where the kernel
    /// stamps within the send, as veth and most drivers do).
    pub fn awaits_tx_timestamps(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The ports whose transmit timestamps the general messages queued here (leaving port `id`)
    /// still wait for, added to `ports`; a Follow_Up whose Sync is in this queue waits within
    /// [`Sender::flush`] instead.
    pub fn awaited_ports(&self, id: PortId, proxy: &Proxy, ports: &mut PortSet) {
        for (k, t) in self.tx.timings.iter().enumerate() {
            if let Some(p) = proxy.awaits_tx_timestamp(t, id) {
                if !self.waits_for_its_sync(k) {
                    *ports = ports.with(p);
                }
            }
        }
    }

    /// Read the transmit timestamps that came back on this port (`id`) since its last batch
    /// was sent: a driver may hand them in after the send returned (a frame held in the qdisc).
    pub fn collect_tx_timestamps(&mut self, id: PortId, proxy: &mut Proxy, clock: &WallClock) {
        if self.in_flight.is_empty() {
            return;
        }
        if let Some(fd) = self.socket.as_ref().map(|s| s.as_raw_fd()) {
            self.read_tx_timestamps(fd, id, proxy, clock);
        }
    }

    /// True if queued frame `k` is a Follow_Up whose two-step Sync is queued before it.
    fn waits_for_its_sync(&self, k: usize) -> bool {
        let t = &self.tx.timings;
        let Timing::Apply { key, .. } = t[k] else {
            return false;
        };
        // A Delay_Resp answers a Delay_Req sent upstream, never in this port's queue.
        if key.event != Event::Sync {
            return false;
        }
        t[..k]
            .iter()
            .any(|e| matches!(e, Timing::Remember { key: r, .. } if *r == key))
    }

    /// Send queued frames `slots`, in that order, in as few calls as [`Sender::flush`] says.
    fn send_groups(
        &mut self,
        fd: RawFd,
        id: PortId,
        proxy: &mut Proxy,
        slots: &[usize],
        batched: bool,
    ) {
        let starts_call = |t: &Timing| match t {
            Timing::OneStep { .. } => true,
            Timing::Remember { .. } => !batched,
            _ => false,
        };
        let mut start = 0;
        while start < slots.len() {
            let end = (start + 1..slots.len())
                .find(|&i| starts_call(&self.tx.timings[slots[i]]))
                .unwrap_or(slots.len());
            let group = &slots[start..end];
            let q = &mut self.tx;
            if group.iter().any(|&k| q.timings[k] != Timing::None) {
                let egress = egress_clock();
                for &k in group {
                    let slot = &mut q.buf[k * board::SNAPLEN..k * board::SNAPLEN + q.lens[k]];
                    if !proxy.handle_egress(&q.timings[k], id, egress, slot) {
                        q.lens[k] = 0; // its residence is unknown: not sent (counted)
                    }
                }
            }
            self.send(fd, group);
            start = end;
        }
    }

    /// Hand the kernel's transmit timestamps waiting on the error queue of the sending socket
    /// `fd` to the core, each with the key its send carried.
    fn read_tx_timestamps(&mut self, fd: RawFd, id: PortId, proxy: &mut Proxy, clock: &WallClock) {
        let (q, in_flight, stamps) = (&mut self.tx, &mut self.in_flight, &mut self.tx_timestamps);
        // A step of the wall clock since the loop read `clock` would misplace these stamps.
        let stepped = clock.stepped_since();
        loop {
            q.iov.clear();
            q.msgs.clear();
            let base = q.errbuf.as_mut_ptr();
            for k in 0..ERRQUEUE_BATCH {
                q.iov.push(libc::iovec {
                    // SAFETY: slot k lies within `errbuf` (ERRQUEUE_BATCH slots of SNAPLEN).
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
            self.syscalls += 1;
            // SAFETY: `msgs` holds ERRQUEUE_BATCH initialised mmsghdrs whose buffers (`errbuf`
            // slots and `ctrl` entries, of the lengths given) outlive the call; `fd` is the open
            // socket.
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
                let frame = &q.errbuf[k * board::SNAPLEN..k * board::SNAPLEN + len];
                match take_in_flight(in_flight, frame) {
                    Some(_) if stepped => proxy.tx_timestamp_untimed(),
                    Some(key) => {
                        *stamps += 1;
                        proxy.handle_tx_timestamp(id, &key, clock.to_monotonic(tx));
                    }
                    None => {}
                }
            }
            if (n as usize) < ERRQUEUE_BATCH {
                return;
            }
        }
    }

    /// sendmmsg(2) the queued frames `slots` on `fd`; count what went and what failed.
    fn send(&mut self, fd: RawFd, slots: &[usize]) {
        let q = &mut self.tx;
        q.iov.clear();
        q.msgs.clear();
        let base = q.buf.as_mut_ptr();
        // Frames the correction held back (length 0) are not sent.
        let slots = slots.iter().copied().filter(|&k| q.lens[k] > 0);
        let slots: Slots = slots.collect();
        for &k in &slots {
            q.iov.push(libc::iovec {
                // SAFETY: slot k lies within `buf` (k < RX_BATCH, len <= SNAPLEN).
                iov_base: unsafe { base.add(k * board::SNAPLEN) }.cast(),
                iov_len: q.lens[k],
            });
        }
        let n = slots.len();
        let request: *mut TsRequest = &mut q.ts_request;
        for (k, &slot) in slots.iter().enumerate() {
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
            self.syscalls += 1;
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
                self.tx_count += rc as u64;
            } else {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // The frame at `sent` failed: count it, go on with the rest.
                self.tx_errors += 1;
                self.last_error = Some(e);
                sent += 1;
            }
        }
    }
}

/// The key of the oldest in-flight event that `frame` (read back from the error queue) is;
/// entries before it lost their timestamp and are forgotten with it.
fn take_in_flight(
    in_flight: &mut heapless::Deque<(PendingKey, u16), IN_FLIGHT>,
    frame: &[u8],
) -> Option<PendingKey> {
    let at = in_flight.iter().position(|(key, offset)| {
        frame
            .get(usize::from(*offset)..)
            .is_some_and(|m| key.is_event_of(m))
    })?;
    for _ in 0..at {
        in_flight.pop_front();
    }
    in_flight.pop_front().map(|(key, _)| key)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::correction::Timing;

    #[test]
    fn the_frames_kept_move_to_the_front_in_order() {
        let mut q = TxQueue::new();
        for k in 0..5u8 {
            let at = usize::from(k) * board::SNAPLEN;
            q.buf[at..at + 3].copy_from_slice(&[k, k, k]);
            q.lens.push(3 + usize::from(k));
            q.timings.push(Timing::None);
            q.queued.push((Instant(u64::from(k)), k == 3));
        }
        q.keep(&[1, 3]);
        assert_eq!(q.lens, [4, 6]);
        assert_eq!(q.queued, [(Instant(1), false), (Instant(3), true)]);
        assert_eq!(&q.buf[..3], &[1, 1, 1]);
        assert_eq!(&q.buf[board::SNAPLEN..board::SNAPLEN + 3], &[3, 3, 3]);
        q.keep(&[]);
        assert!(q.lens.is_empty() && q.timings.is_empty() && q.queued.is_empty());
    }
}
