//! Tests of the pacing queue: spacing, fairness between ports, expiry, a full pool, and a
//! randomized run checked against the invariants.

use super::*;

const MS: u64 = 1_000_000;

/// A frame that names its port and its number within the port.
fn frame(port: u8, n: u16) -> [u8; 4] {
    let [a, b] = n.to_be_bytes();
    [0xAA, port, a, b]
}

fn id_of(f: &[u8]) -> (u8, u16) {
    (f[1], u16::from_be_bytes([f[2], f[3]]))
}

/// Release everything due at each step of `step` ns from `from` to `to`; (time, port, n) of
/// each frame sent.
fn drain(p: &mut Pacer, from: u64, to: u64, step: u64) -> Vec<(u64, u8, u16)> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        p.release(Instant(t), usize::MAX, |r| {
            if let Released::Send { frame, .. } = r {
                let (port, n) = id_of(frame);
                out.push((t, port, n));
            }
        });
        t += step;
    }
    out
}

/// Most frames sent within any window of `window` ns.
fn most_in_window(sent: &[(u64, u8, u16)], window: u64) -> usize {
    (0..sent.len())
        .map(|i| {
            sent[i..]
                .iter()
                .take_while(|s| s.0 < sent[i].0 + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn within_the_rate_frames_go_at_once_then_wait_evenly_spaced() {
    // 1000/s: one every 1 ms; the slack lets 2 ms' worth go back to back after a quiet spell.
    let mut p = Pacer::new(1000, Duration::from_millis(500));
    let t0 = 10_000 * MS;
    let mut now = 0;
    for n in 0..100 {
        match p.admit(Instant(t0), PortId(1), &frame(1, n), Timing::None) {
            Admit::Now => now += 1,
            a => assert_eq!(a, Admit::Held { evicted: None }, "frame {n}"),
        }
    }
    assert_eq!(now, 3, "one, plus the slack's two");
    assert_eq!(p.len(), 97);
    let sent = drain(&mut p, t0, t0 + 200 * MS, 100_000);
    assert_eq!(sent.len(), 97);
    // In order, one per millisecond from where the slack left off.
    for (k, s) in sent.iter().enumerate() {
        assert_eq!(s.2, 3 + k as u16);
        assert_eq!(s.0, t0 - 2 * MS + (3 + k as u64) * MS, "frame {}", s.2);
    }
    assert_eq!(most_in_window(&sent, 10 * MS), 10);
    let st = p.stats();
    assert_eq!(
        (st.immediate, st.paced, st.depth, st.depth_max),
        (3, 97, 0, 97)
    );
    // The last left at t0 - 2 ms + 99 ms.
    assert_eq!(st.wait_max_ns, 97 * MS);
    assert_eq!(p.next_release(), None);
}

#[test]
fn the_wake_up_comes_once_per_tick_not_per_frame() {
    // 4000/s: 0.25 ms apart; the loop is asked to wake when a tick's worth (4) is due.
    let mut p = Pacer::new(4000, Duration::from_millis(500));
    let t0 = Instant(10_000 * MS);
    for n in 0..100 {
        let _ = p.admit(t0, PortId(1), &frame(1, n), Timing::None);
    }
    let wake = p.next_release().unwrap();
    let mut sent = 0;
    p.release(wake, usize::MAX, |_| sent += 1);
    assert_eq!(sent, 4);
    assert!(p.next_release().unwrap() >= wake + Duration(TICK.0 - 250_000));
    // `max` bounds one call (the sender's room); the rest stays due. A loop 10 ms late gets
    // the slack's worth (2 ms: 8 + 1), not the 40 it missed: the master never sees them bunched.
    let later = wake + Duration(10 * MS);
    assert_eq!(p.release(later, 5, |_| {}), 5);
    assert_eq!(p.release(later, usize::MAX, |_| {}), 4);
}

#[test]
fn one_ports_burst_does_not_starve_another_port() {
    let mut p = Pacer::new(1000, Duration::from_millis(900));
    let t0 = 10_000 * MS;
    for n in 0..600 {
        let _ = p.admit(Instant(t0), PortId(1), &frame(1, n), Timing::None);
    }
    // Port 2's clients ask 5 ms later, behind ~600 of port 1's requests.
    for n in 0..5 {
        let r = p.admit(Instant(t0 + 5 * MS), PortId(2), &frame(2, n), Timing::None);
        assert_eq!(r, Admit::Held { evicted: None });
    }
    let sent = drain(&mut p, t0, t0 + 1000 * MS, MS / 2);
    let last_of_2 = sent.iter().rposition(|s| s.1 == 2).unwrap();
    let first_of_2 = sent.iter().position(|s| s.1 == 2).unwrap();
    // Served in turn: port 2's five leave within the next ten sends, not after 600.
    assert!(last_of_2 - first_of_2 <= 9, "{first_of_2}..{last_of_2}");
    assert!(
        sent[last_of_2].0 <= t0 + 20 * MS,
        "{}",
        sent[last_of_2].0 - t0
    );
    // Each port's own order is kept.
    for port in [1, 2] {
        let ns: Vec<u16> = sent.iter().filter(|s| s.1 == port).map(|s| s.2).collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "port {port}");
    }
}

#[test]
fn a_request_that_would_wait_past_the_hold_is_dropped() {
    // 1000/s and 50 ms: about 50 can wait, the rest of a burst of 100 is dropped at once.
    let mut p = Pacer::new(1000, Duration::from_millis(50));
    let t0 = Instant(10_000 * MS);
    let mut held = 0;
    let mut expired = 0;
    for n in 0..100 {
        match p.admit(t0, PortId(1), &frame(1, n), Timing::None) {
            Admit::Held { .. } => held += 1,
            Admit::Dropped(DropReason::UpstreamRateExpired) => expired += 1,
            Admit::Now => {}
            a => panic!("{a:?}"),
        }
    }
    assert!((48..=52).contains(&held), "{held}");
    assert_eq!(p.stats().expired, expired);
    let sent = drain(&mut p, t0.0, t0.0 + 100 * MS, MS / 4);
    assert_eq!(sent.len(), held);
    assert!(sent.iter().all(|s| s.0 - t0.0 <= 50 * MS));
    // A frame still queued when the loop comes back too late is dropped on release.
    let t1 = Instant(t0.0 + 1000 * MS);
    for n in 0..20 {
        let _ = p.admit(t1, PortId(1), &frame(1, n), Timing::None);
    }
    let mut dropped = 0;
    let sent = p.release(t1 + Duration(60 * MS), usize::MAX, |r| {
        dropped += usize::from(matches!(r, Released::Dropped { .. }));
    });
    assert_eq!(sent, 0);
    assert_eq!(dropped, 17, "all but the 3 sent at once");
    assert!(p.is_empty());
}

#[test]
fn a_full_pool_drops_the_newest_of_the_longest_queue() {
    // Fast enough that nothing expires before the pool is full.
    let mut p = Pacer::new(1_000_000, Duration::from_millis(900));
    let t0 = Instant(10_000 * MS);
    let cap = board::DELAY_REQ_QUEUE;
    let mut n = 0u16;
    while p.len() < cap {
        let _ = p.admit(t0, PortId(1), &frame(1, n), Timing::None);
        n += 1;
    }
    let full = p.admit(t0, PortId(1), &frame(1, n), Timing::None);
    assert_eq!(full, Admit::Dropped(DropReason::UpstreamRateQueueFull));
    // Another port still gets in: port 1's newest makes room.
    let r = p.admit(t0, PortId(2), &frame(2, 0), Timing::None);
    assert_eq!(
        r,
        Admit::Held {
            evicted: Some(PortId(1))
        }
    );
    assert_eq!(p.len(), cap);
    assert_eq!(p.stats().queue_full, 2);
    let sent = drain(&mut p, t0.0, t0.0 + 100 * MS, MS);
    assert_eq!(sent.len(), cap);
    assert!(sent.iter().any(|s| s.1 == 2));
    // Port 1 lost its newest frame, not its oldest.
    let last_of_1 = sent.iter().filter(|s| s.1 == 1).map(|s| s.2).max().unwrap();
    assert_eq!(last_of_1, n - 2);
}

#[test]
fn a_reload_keeps_queues_with_their_ports_and_drops_the_others() {
    let mut p = Pacer::new(100, Duration::from_millis(900));
    let t0 = Instant(10_000 * MS);
    for port in [1u8, 2] {
        for n in 0..10 {
            let _ = p.admit(t0, PortId(port), &frame(port, n), Timing::None);
        }
    }
    // Port 1's first went at once (an idle pacer); 9 + 10 wait.
    let before = p.len();
    assert_eq!(before, 19);
    // Port 1 is gone, port 2 became port 1.
    let mut map = PortMap([None; board::MAX_PORTS]);
    map.0[0] = Some(PortId(0));
    map.0[2] = Some(PortId(1));
    let mut gone = Vec::new();
    p.renumber(&map, |port| gone.push(port));
    assert_eq!(gone.len(), 9);
    assert!(gone.iter().all(|&g| g == PortId(1)));
    assert_eq!(p.len(), 10);
    let sent = drain(&mut p, t0.0, t0.0 + 900 * MS, MS);
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|s| s.1 == 2), "port 2's frames, kept");
}

/// xorshift64*: a small deterministic generator for the randomized run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_bursts_keep_every_invariant() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed * 0x9E37_79B9);
        let rate = [500u32, 4000, 20_000][rng.below(3) as usize];
        let hold = Duration::from_millis(1 + rng.below(300));
        let mut p = Pacer::new(rate, hold);
        let interval = 1_000_000_000 / u64::from(rate);
        let mut t = 10_000 * MS;
        let mut next_n = [0u16; board::MAX_PORTS];
        let (mut admitted, mut at_once, mut dropped) = (0u64, 0u64, 0u64);
        let mut sent: Vec<(u64, u8, u16)> = Vec::new();
        for _ in 0..400 {
            // A burst on a random port, or a quiet spell with releases.
            if rng.below(3) == 0 {
                let port = 1 + rng.below(board::MAX_PORTS as u64 - 1) as u8;
                for _ in 0..rng.below(200) {
                    let n = next_n[usize::from(port)];
                    next_n[usize::from(port)] += 1;
                    admitted += 1;
                    match p.admit(Instant(t), PortId(port), &frame(port, n), Timing::None) {
                        Admit::Now => {
                            at_once += 1;
                            sent.push((t, port, n));
                        }
                        Admit::Held { evicted } => dropped += u64::from(evicted.is_some()),
                        Admit::Dropped(_) => dropped += 1,
                    }
                }
            }
            let step = rng.below(3 * MS);
            let end = t + step;
            let mut now = t;
            while now <= end {
                let wake = p.next_release().map_or(end + 1, |w| w.0.max(now));
                now = wake.min(end);
                p.release(Instant(now), usize::MAX, |r| match r {
                    Released::Send { frame, .. } => {
                        let (port, n) = id_of(frame);
                        sent.push((now, port, n));
                    }
                    Released::Dropped { .. } => dropped += 1,
                });
                now += 1;
            }
            t = end + 1;
            assert!(p.len() <= board::DELAY_REQ_QUEUE);
        }
        // Let everything leave or expire.
        p.release(Instant(t + 2000 * MS), usize::MAX, |r| match r {
            Released::Send { .. } => panic!("seed {seed}: sent after its hold"),
            Released::Dropped { .. } => dropped += 1,
        });
        let st = *p.stats();
        // Every frame is accounted for exactly once.
        assert_eq!(admitted, sent.len() as u64 + dropped, "seed {seed}");
        assert_eq!(st.immediate, at_once, "seed {seed}");
        assert_eq!(st.immediate + st.paced, sent.len() as u64, "seed {seed}");
        assert_eq!(st.expired + st.queue_full, dropped, "seed {seed}");
        assert!(st.wait_max_ns <= hold.0, "seed {seed}");
        // Per port, in order.
        for port in 1..board::MAX_PORTS as u8 {
            let ns: Vec<u16> = sent.iter().filter(|s| s.1 == port).map(|s| s.2).collect();
            assert!(
                ns.windows(2).all(|w| w[0] < w[1]),
                "seed {seed} port {port}"
            );
        }
        // The rate, over any 10 ms: at most its share, the slack and one tick's rounding.
        let window = 10 * MS;
        let most = most_in_window(&sent, window) as u64;
        let bound = (window + SLACK.0) / interval + 2;
        assert!(
            most <= bound,
            "seed {seed}: {most} in 10 ms at {rate}/s (bound {bound})"
        );
    }
}

/// Through the whole core: a Delay_Req held by the pacing leaves later, and the Delay_Resp that
/// answers it carries the whole residence, wait included, in its correctionField.
mod through_the_proxy {
    use crate::config::Config;
    use crate::proxy::{Action, Proxy};
    use crate::time::{Instant, Timestamp};
    use crate::wire::ptp::MessageType;
    use crate::wire::{EthernetAddress, MessageRepr, PortIdentity, PtpFrameRepr};
    use crate::{board, port::PortId, port::PortSet, stats::DropReason, stats::Forwarded};

    const MS: u64 = 1_000_000;

    fn l2(kind: MessageType, n: u8, seq: u16, requesting: Option<PortIdentity>) -> Vec<u8> {
        let id = PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, n],
            port_number: 1,
        };
        let len = if kind == MessageType::DelayResp {
            54
        } else {
            44
        };
        let m = MessageRepr::bare(kind, id, seq, requesting, len);
        let frame = PtpFrameRepr::l2(m).with_src(EthernetAddress([2, 0, 0, 0, 1, n]));
        let mut f = vec![0u8; frame.buffer_len()];
        frame.emit(&mut f);
        f
    }

    fn client(n: u8) -> PortIdentity {
        PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, n],
            port_number: 1,
        }
    }

    fn correction_ns(frame: &[u8]) -> i64 {
        // L2: the PTP header at 14, correctionField 8 bytes into it, in ns x 2^16.
        i64::from_be_bytes(frame[22..30].try_into().unwrap()) >> 16
    }

    #[test]
    fn the_wait_is_in_the_delay_resp() {
        let config = Config::parse(
            br#"{"upstream": "eth0", "downstream": ["lan1", "lan2"], "max_hold_us": 0,
                 "upstream_max_delay_req_rate": 100, "max_delay_req_hold_ms": 900}"#,
        )
        .unwrap();
        let t0 = Instant(10_000 * MS);
        let mut proxy = Proxy::new(&config, t0, 7);
        let mut scratch = [0u8; board::SNAPLEN];
        // 10 clients at once at 100/s: the first goes, the others wait 10 ms apart.
        let mut held = 0;
        for n in 0..10 {
            let req = l2(MessageType::DelayReq, n, 1, None);
            let captured = Timestamp(t0.0 as i64);
            match proxy.handle_frame(t0, PortId(1), &req, captured, &mut scratch) {
                Action::Forward { to, timing, .. } => {
                    assert_eq!(to, PortSet::single(PortId::UPSTREAM));
                    let mut copy = req.clone();
                    let egress = Timestamp(t0.0 as i64 + 20_000);
                    assert!(proxy.handle_egress(&timing, PortId::UPSTREAM, egress, &mut copy));
                }
                Action::Held => held += 1,
                Action::Drop(r) => panic!("{r:?}"),
            }
        }
        assert_eq!(held, 9);
        assert!(proxy.poll_timeout() <= t0 + crate::time::Duration(10 * MS));
        // The loop wakes when the core asks; each frame leaves when its turn comes.
        let mut left = Vec::new();
        let mut now = t0;
        while left.len() < 9 && now < t0 + crate::time::Duration(200 * MS) {
            now = proxy.poll_timeout().max(now);
            let mut out = Vec::new();
            proxy.release_paced(now, usize::MAX, |f, t| out.push((f.to_vec(), t)));
            for (f, t) in &mut out {
                let egress = Timestamp(now.0 as i64);
                assert!(proxy.handle_egress(t, PortId::UPSTREAM, egress, f));
                left.push((f[11], now));
            }
            now = now + crate::time::Duration(1);
        }
        assert_eq!(left.len(), 9);
        // 10 ms apart, client 1 first (the frames carry their client's number in their MAC).
        for (k, (n, at)) in left.iter().enumerate() {
            assert_eq!(usize::from(*n), k + 1);
            assert!(
                at.0 - t0.0 <= (k as u64 + 1) * 10 * MS,
                "{k}: {}",
                at.0 - t0.0
            );
        }
        let (_, left_5) = left[4];
        // The grandmaster answers client 5.
        let resp = l2(MessageType::DelayResp, 200, 1, Some(client(5)));
        let captured = Timestamp(left_5.0 as i64 + 1_000_000);
        let action = proxy.handle_frame(now, PortId::UPSTREAM, &resp, captured, &mut scratch);
        let Action::Forward { to, frame, timing } = action else {
            panic!("{action:?}");
        };
        assert_eq!(to, PortSet::single(PortId(1)));
        let mut copy = frame.to_vec();
        assert!(proxy.handle_egress(&timing, PortId(1), captured, &mut copy));
        assert_eq!(correction_ns(&copy), (left_5.0 - t0.0) as i64);
        assert!(correction_ns(&copy) >= 40 * MS as i64);
        let s = proxy.stats();
        assert_eq!(s.forwarded(Forwarded::DelayReq), 10);
        assert_eq!(s.dropped(DropReason::UpstreamRateExpired), 0);
        let p = proxy.pacing_stats().unwrap();
        assert_eq!((p.immediate, p.paced, p.depth_max), (1, 9, 9));
    }

    #[test]
    fn a_dropped_request_is_counted_once_as_a_drop() {
        let config = Config::parse(
            br#"{"upstream": "eth0", "downstream": ["lan1"],
                 "upstream_max_delay_req_rate": 10, "max_delay_req_hold_ms": 250}"#,
        )
        .unwrap();
        let t0 = Instant(10_000 * MS);
        let mut proxy = Proxy::new(&config, t0, 7);
        let mut scratch = [0u8; board::SNAPLEN];
        let mut dropped = 0;
        for n in 0..10 {
            let req = l2(MessageType::DelayReq, n, 1, None);
            let captured = Timestamp(t0.0 as i64);
            if let Action::Drop(r) = proxy.handle_frame(t0, PortId(1), &req, captured, &mut scratch)
            {
                assert_eq!(r, DropReason::UpstreamRateExpired);
                dropped += 1;
            }
        }
        // 10/s and 250 ms: one at once, two more can wait (100 and 200 ms).
        assert_eq!(dropped, 7);
        let s = proxy.stats();
        assert_eq!(s.dropped(DropReason::UpstreamRateExpired), 7);
        assert_eq!(s.dropped_on(1, DropReason::UpstreamRateExpired), 7);
        assert_eq!(s.forwarded(Forwarded::DelayReq), 3);
        // At a stop, the two waiting are dropped the same way, and nothing is left to release.
        proxy.drop_paced();
        let s = proxy.stats();
        assert_eq!(s.dropped(DropReason::UpstreamRateExpired), 9);
        assert_eq!(s.forwarded(Forwarded::DelayReq), 1);
        assert_eq!(proxy.pacing_stats().unwrap().depth, 0);
        let later = t0 + crate::time::Duration(300 * MS);
        assert_eq!(proxy.release_paced(later, usize::MAX, |_, _| {}), 0);
    }
}
