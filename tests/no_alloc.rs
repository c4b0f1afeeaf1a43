//! The core allocates nothing after construction: a counting global allocator watches
//! `Proxy::handle_frame`, `handle_timeout` and `poll_timeout` over a realistic mix — thousands
//! of clients on four downstream ports (more than the table holds, so admission refuses some),
//! L2 and UDPv4 with checksums left partial by the sender (rewritten in the scratch buffer),
//! unicast Delay_Resp (destination MAC rewritten), rate limiting, aging, clients moving between
//! ports, Delay_Resp for unknown clients, malformed frames, other domains and peer delay.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ptpproxy::board;
use ptpproxy::config::Config;
use ptpproxy::correction::Timing;
use ptpproxy::port::{PortId, PortSet};
use ptpproxy::proxy::{Action, Proxy};
use ptpproxy::stats::DropReason;
use ptpproxy::time::{Instant, Timestamp};
use ptpproxy::wire::build::PTP_PRIMARY_IPV4;
use ptpproxy::wire::ip::{Ipv4Repr, UdpChecksum};
use ptpproxy::wire::{
    EthernetAddress, MessageRepr, MessageType, PortIdentity, PtpFrame, PtpFrameRepr, TransportRepr,
};

struct Counting;

thread_local! {
    /// Only this test's thread, only while armed: the harness's own threads allocate freely.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Allocator calls on this thread while armed.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to the system allocator unchanged; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: `ptr` came from System through us with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from System through us with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const DOWNSTREAM: u32 = 4;
/// More identities than the table holds (board::MAX_CLIENTS on this board).
const CLIENTS: u32 = board::MAX_CLIENTS as u32 + board::MAX_CLIENTS as u32 / 2;

fn mac(kind: u8, n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x70, kind, b[1], b[2], b[3]]
}

fn identity(kind: u8, n: u32) -> [u8; 10] {
    let m = mac(kind, n);
    [m[0], m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5], 0, 1]
}

/// A PTPv2 message, L2 or UDPv4 (with the UDP checksum left partial, as a veth sender leaves it),
/// to the primary group whatever its type: the body zero but for the requesting identity, the
/// header zero but for type, version, length and source (DF off over IPv4).
fn frame(udp: bool, kind: u8, src: [u8; 6], id: [u8; 10], requesting: Option<[u8; 10]>) -> Vec<u8> {
    let len: usize = match kind {
        0xB => 64,
        0x9 | 0x2 | 0x3 | 0xA => 54,
        _ => 44,
    };
    let id = PortIdentity::from_bytes(&id);
    let requesting = requesting.map(|r| PortIdentity::from_bytes(&r));
    let m = MessageRepr::bare(MessageType::from_nibble(kind), id, 0, requesting, len);
    let built = if udp {
        let port = if matches!(kind, 0x0 | 0x1) { 319 } else { 320 };
        let ip = Ipv4Repr {
            dont_fragment: false,
            ..Ipv4Repr::udp([10, 100, src[4], src[5]], PTP_PRIMARY_IPV4, 0)
        };
        let transport = TransportRepr::Udp4 {
            ip,
            src_port: port,
            dst_port: port,
            checksum: UdpChecksum::Partial,
        };
        PtpFrameRepr::with_transport(transport, m).with_dst(EthernetAddress::PTP_IPV4)
    } else {
        PtpFrameRepr::l2(m).with_dst(EthernetAddress::PTP_PRIMARY)
    };
    let built = built.with_src(EthernetAddress(src));
    let mut f = vec![0u8; built.buffer_len()];
    built.emit(&mut f);
    f
}

/// Give the PTP message of `f` another sequenceId: every step sends new messages, as real
/// senders do (the same message again, moments later, would be a loop).
fn set_seq(f: &mut [u8], seq: u16) {
    if let Ok(p) = PtpFrame::parse(f) {
        let at = p.ptp_offset + 30;
        f[at..at + 2].copy_from_slice(&seq.to_be_bytes());
    }
}

/// What the sender does per egress port: copy the frame out and apply its residence correction.
fn egress(c: &mut Proxy, to: PortSet, frame: &[u8], timing: &Timing, now: u64, tx: &mut [u8]) {
    for port in to.iter() {
        let copy = &mut tx[..frame.len()];
        copy.copy_from_slice(frame);
        c.handle_egress(timing, port, Timestamp(now as i64 + 20_000), copy);
    }
}

#[test]
fn handle_frame_and_timeout_do_not_allocate() {
    let config = Config::parse(
        br#"{"upstream":"up","downstream":["d1","d2","d3","d4"],"delay_resp":"unicast",
             "client_timeout_s":2,"max_delay_req_rate":8,"correction":"residence"}"#,
    )
    .expect("config");
    let gm_mac = mac(b'm', 1);
    let gm = identity(b'm', 1);
    // Every frame is built before the allocator is armed.
    let mut reqs: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|c| frame(c % 3 == 0, 0x1, mac(b'l', c), identity(b'l', c), None))
        .collect();
    let mut resps: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|c| frame(c % 3 == 0, 0x9, gm_mac, gm, Some(identity(b'l', c))))
        .collect();
    let mut master: Vec<Vec<u8>> = [0x0, 0x8, 0xB, 0xC]
        .into_iter()
        .map(|k| frame(false, k, gm_mac, gm, None))
        .collect();
    // A two-step Sync (over UDP; its checksum is the partial one, which the flag does not
    // change), whose residence the Follow_Up picks up.
    let mut two_step = frame(true, 0x0, gm_mac, gm, None);
    two_step[42 + 6] = 0x02;
    master.push(two_step);
    let mut odd = vec![
        frame(false, 0x2, gm_mac, gm, None), // Pdelay_Req
        frame(false, 0x9, gm_mac, gm, Some(identity(b'f', 1))), // unknown client
        frame(false, 0x1, mac(b'f', 2), identity(b'f', 2), None), // Delay_Req upstream
        frame(false, 0x0, mac(b'l', 5), identity(b'l', 5), None), // rogue master
        frame(true, 0x1, mac(b'l', 7), identity(b'l', 7), None)[..30].to_vec(), // truncated
    ];
    let mut other_domain = frame(false, 0x0, gm_mac, gm, None);
    other_domain[14 + 4] = 99;
    odd.push(other_domain);
    let mut v1 = frame(false, 0x1, mac(b'l', 9), identity(b'l', 9), None);
    v1[14 + 1] = 0x01;
    odd.push(v1);

    let t0 = 1_000_000_000_000u64;
    let mut relay = Proxy::with_pending_capacity(&config, Instant(t0), 42, 256);
    let mut scratch = vec![0u8; board::SNAPLEN];
    let mut tx = vec![0u8; board::SNAPLEN];
    let mut forwarded = 0u64;
    let mut rewritten = 0u64;

    ARMED.with(|a| a.set(true));
    // 12 simulated seconds in 50 ms steps. Seconds 0-4: every client asks (the table fills and
    // refuses the rest); the first third asks twice per step (over 8/s: rate-limited); from
    // second 5 the upper half goes silent for 4 s (ages out after 2 s, then comes back as new
    // clients), and from second 7 the clients between a third and a half move to another port.
    for step in 0..240u64 {
        let now = t0 + step * 50_000_000;
        let sec = step / 20;
        for c in 0..CLIENTS {
            if sec >= 5 && c >= CLIENTS / 2 && sec < 9 {
                continue;
            }
            if (c as u64 + step) % 4 != 0 && c >= CLIENTS / 3 {
                continue;
            }
            let moved = u32::from(sec >= 7 && (CLIENTS / 3..CLIENTS / 2).contains(&c));
            let port = PortId(1 + ((c + moved) % DOWNSTREAM) as u8);
            let times = if c < CLIENTS / 3 { 2 } else { 1 };
            for k in 0..times {
                let seq = (step * 2 + k) as u16;
                set_seq(&mut reqs[c as usize], seq);
                set_seq(&mut resps[c as usize], seq);
                let (req, resp) = (&reqs[c as usize], &resps[c as usize]);
                let at = Timestamp(now as i64);
                match relay.handle_frame(Instant(now), port, req, at, &mut scratch) {
                    Action::Forward { to, frame, timing } => {
                        forwarded += 1;
                        rewritten += u64::from(frame.as_ptr() != req.as_ptr());
                        egress(&mut relay, to, frame, &timing, now, &mut tx);
                    }
                    Action::Drop(_) | Action::Held => {}
                }
                match relay.handle_frame(Instant(now), PortId::UPSTREAM, resp, at, &mut scratch) {
                    Action::Forward { to, frame, timing } => {
                        forwarded += 1;
                        rewritten += u64::from(frame.as_ptr() != resp.as_ptr());
                        egress(&mut relay, to, frame, &timing, now, &mut tx);
                    }
                    Action::Drop(_) | Action::Held => {}
                }
            }
        }
        for (i, f) in master.iter_mut().chain(&mut odd).enumerate() {
            for port in [PortId::UPSTREAM, PortId(2)] {
                // The one-step Sync apart from the two-step one, whose Follow_Up (sent before
                // it here) comes a step later; what port 2 sends apart from what upstream sends.
                let s = if i == 1 { step.wrapping_sub(1) } else { step };
                let seq =
                    (s as u16 & 0x3fff) | u16::from(i == 0) << 15 | u16::from(port.0 == 2) << 14;
                set_seq(f, seq);
                let f = &*f;
                let at = Timestamp(now as i64);
                if let Action::Forward { to, frame, timing } =
                    relay.handle_frame(Instant(now), port, f, at, &mut scratch)
                {
                    egress(&mut relay, to, frame, &timing, now, &mut tx);
                }
            }
        }
        if relay.poll_timeout() <= Instant(now) {
            relay.handle_timeout(Instant(now));
        }
    }
    ARMED.with(|a| a.set(false));

    let allocations = allocations();
    let s = relay.stats();
    // The mix did exercise what it claims to.
    assert!(s.clients_learned >= board::MAX_CLIENTS as u64, "{s:?}");
    assert!(s.clients_aged > 0, "aging: {s:?}");
    assert!(s.clients_moved > 0, "moves: {s:?}");
    assert!(s.dropped(DropReason::RateLimited) > 0, "{s:?}");
    assert!(
        s.dropped(DropReason::TableFull) + s.dropped(DropReason::PortShareFull) > 0,
        "admission: {s:?}"
    );
    assert!(s.dropped(DropReason::UnknownClient) > 0, "{s:?}");
    assert!(
        s.delay_resp_unicast > 0 && s.udp_checksums_completed > 0,
        "{s:?}"
    );
    assert!(
        forwarded > 100_000 && rewritten > 0,
        "{forwarded} {rewritten}"
    );
    // And the residence correction ran: remembered, applied, evicted when its table was full.
    let c = relay.correction_stats();
    assert!(
        c.remembered > 0 && c.delay_resp > 0 && c.follow_up > 0,
        "{c:?}"
    );
    assert_eq!(
        allocations, 0,
        "the relay allocated {allocations} times after construction"
    );
}

/// Upstream pacing: bursts of Delay_Req from four ports held, released, expired and refused
/// allocate nothing either (the queue is allocated when the proxy is built).
#[test]
fn paced_delay_req_do_not_allocate() {
    let config = Config::parse(
        br#"{"upstream":"up","downstream":["d1","d2","d3","d4"],"max_delay_req_rate":64,
             "upstream_max_delay_req_rate":20000,"max_delay_req_hold_ms":60}"#,
    )
    .expect("config");
    let n = 2000u32;
    let mut reqs: Vec<Vec<u8>> = (0..n)
        .map(|c| frame(c % 2 == 0, 0x1, mac(b'p', c), identity(b'p', c), None))
        .collect();
    let t0 = 1_000_000_000_000u64;
    let mut proxy = Proxy::new(&config, Instant(t0), 7);
    let mut scratch = vec![0u8; board::SNAPLEN];
    let mut tx = vec![0u8; board::SNAPLEN];
    let (mut held, mut sent) = (0u64, 0u64);
    ARMED.with(|a| a.set(true));
    // 3 s: every client asks at once each 250 ms (a burst of 2000 at 20000/s needs 100 ms, more
    // than the 60 ms hold: some expire), the loop wakes each millisecond in between.
    for ms in 0..3000u64 {
        let now = t0 + ms * 1_000_000;
        if ms % 250 == 0 {
            for (c, f) in reqs.iter_mut().enumerate() {
                set_seq(f, ms as u16);
                let port = PortId(1 + (c as u32 % DOWNSTREAM) as u8);
                let at = Timestamp(now as i64);
                match proxy.handle_frame(Instant(now), port, f, at, &mut scratch) {
                    Action::Held => held += 1,
                    Action::Forward { to, frame, timing } => {
                        sent += 1;
                        egress(&mut proxy, to, frame, &timing, now, &mut tx);
                    }
                    Action::Drop(_) => {}
                }
            }
        }
        let mut released = 0u64;
        proxy.release_paced(Instant(now), usize::MAX, |frame, timing| {
            released += 1;
            let copy = &mut tx[..frame.len()];
            copy.copy_from_slice(frame);
            let _ = timing;
        });
        sent += released;
        let _ = proxy.poll_timeout();
    }
    ARMED.with(|a| a.set(false));
    let allocations = allocations();
    let p = *proxy.pacing_stats().expect("pacing on");
    assert!(held > 10_000 && sent > 10_000, "{held} {sent} {p:?}");
    assert!(p.paced > 0 && p.expired > 0, "{p:?}");
    assert_eq!(
        allocations, 0,
        "the pacing allocated {allocations} times after construction"
    );
}

#[test]
fn the_counter_sees_an_allocation() {
    let before = allocations();
    ARMED.with(|a| a.set(true));
    let v = std::hint::black_box(vec![1u8; 64]);
    drop(v);
    ARMED.with(|a| a.set(false));
    assert!(allocations() >= before + 2);
}
