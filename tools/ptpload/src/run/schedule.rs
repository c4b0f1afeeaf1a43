//! The scheduler: who sends what when. The master's Sync + Follow_Up, Announce and foreign
//! frames on their timers, every client's Delay_Req from a heap of deadlines.
//!
//! Each frame it queues is first announced to the meter (which opens the slot its tap and
//! arrivals will fill). It never reads a ring, answers a Delay_Req (receive.rs does) or waits:
//! it sends what is due when asked and says when the next thing is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ptpproxy::wire::MessageType;

use super::meter::Meter;
use super::{Port, BUDGET};
use crate::args::Options;
use crate::frames::{Builder, Msg, Who};

/// A send later than this after its deadline counts as late (the generator fell behind).
const LATE_NS: u64 = 1_000_000;

/// xorshift64*: enough randomness for send offsets, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// log2 of a message interval, as the logMessageInterval field carries it.
fn log_interval(rate: f64) -> i8 {
    if rate <= 0.0 {
        return 0x7F;
    }
    (-rate.log2().round()).clamp(-7.0, 7.0) as i8
}

/// The send timetable (CLOCK_MONOTONIC ns).
pub(super) struct Schedule {
    pub(super) builder: Builder,
    ndown: usize,
    /// The clients' first Delay_Req, and when sending stops.
    pub(super) start: u64,
    pub(super) end: u64,
    period: u64,
    jitter: u64,
    sync_period: u64,
    announce_period: u64,
    foreign_period: u64,
    sync_log: i8,
    /// logMessageInterval of Delay_Req and Delay_Resp.
    pub(super) delay_log: i8,
    announce_log: i8,
    next_sync: u64,
    next_announce: u64,
    next_foreign: u64,
    sync_seq: u16,
    announce_seq: u16,
    foreign_seq: u32,
    /// Every client's next Delay_Req: (deadline, client).
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    next_k: Vec<u64>,
    next_seq: Vec<u16>,
    rng: Rng,
    /// Delay_Req sent more than [`LATE_NS`] after their deadline, and the largest lag.
    pub(super) late: u64,
    pub(super) max_lag: u64,
}

impl Schedule {
    /// `t0`: the first moment anything may be sent. The clients start there, or later by the
    /// lead of a flood that starts before them (`--flood-at` < 0).
    pub(super) fn new(o: &Options, t0: u64) -> Schedule {
        let n = o.clients as usize;
        let mut rng = Rng(o.seed | 1);
        let period = (1e9 / o.rate) as u64;
        let jitter = (o.jitter * period as f64) as u64;
        let foreign_rate = 2.0 * o.foreign * o.rate * n as f64;
        let lead = o
            .flood
            .iter()
            .map(|f| (-f.at_s * 1e9).max(0.0) as u64)
            .max()
            .unwrap_or(0);
        let start = t0 + lead;
        let mut heap = BinaryHeap::with_capacity(n);
        for c in 0..n {
            let due = start + (rng.next_f64() * jitter as f64) as u64;
            heap.push(Reverse((due, c as u32)));
        }
        Schedule {
            builder: Builder {
                transport: o.transport,
                domain: o.domain,
            },
            ndown: o.downstream.len(),
            start,
            end: start + (o.duration_s * 1e9) as u64,
            period,
            jitter,
            sync_period: (1e9 / o.sync_rate.max(1e-3)) as u64,
            announce_period: (1e9 / o.announce_rate.max(1e-3)) as u64,
            foreign_period: if foreign_rate > 0.0 {
                (1e9 / foreign_rate) as u64
            } else {
                u64::MAX
            },
            sync_log: log_interval(o.sync_rate),
            delay_log: log_interval(o.rate),
            announce_log: log_interval(o.announce_rate),
            next_sync: start,
            next_announce: start,
            // No foreign frame at all without --foreign (not even the first one).
            next_foreign: if foreign_rate > 0.0 { start } else { u64::MAX },
            sync_seq: 0,
            announce_seq: 0,
            foreign_seq: 0,
            heap,
            next_k: vec![0; n],
            next_seq: vec![0; n],
            rng,
            late: 0,
            max_lag: 0,
        }
    }

    /// Queue everything due at `now` (`wall`: the timestamp the frames carry) while `work`, the
    /// frames of this iteration so far, is under [`BUDGET`]; returns the new `work`.
    pub(super) fn send_due(
        &mut self,
        now: u64,
        wall: u64,
        ports: &mut [Port],
        m: &mut Meter,
        mut work: usize,
    ) -> usize {
        work = self.sync(now, wall, &mut ports[0], m, work);
        work = self.announce(now, &mut ports[0], m, work);
        work = self.foreign(now, wall, &mut ports[0], m, work);
        self.clients(now, wall, ports, m, work)
    }

    /// The next deadline of anything (the end included), for the loop's sleep.
    pub(super) fn next_due(&self) -> u64 {
        let mut next = self
            .next_sync
            .min(self.next_announce)
            .min(self.next_foreign)
            .min(self.end);
        if let Some(&Reverse((due, _))) = self.heap.peek() {
            next = next.min(due);
        }
        next
    }

    fn master_msg(&self, kind: MessageType, seq: u16, timestamp_ns: u64, log: i8) -> Msg {
        Msg {
            kind,
            from: Who::Master,
            dst: None,
            seq,
            timestamp_ns,
            requesting: None,
            log_interval: log,
        }
    }

    fn sync(
        &mut self,
        now: u64,
        wall: u64,
        up: &mut Port,
        m: &mut Meter,
        mut work: usize,
    ) -> usize {
        while self.next_sync <= now && work < BUDGET {
            let seq = self.sync_seq;
            self.sync_seq = seq.wrapping_add(1);
            for (i, kind) in [MessageType::Sync, MessageType::FollowUp]
                .into_iter()
                .enumerate()
            {
                m.master_sent(i, seq);
                let msg = self.master_msg(kind, seq, wall, self.sync_log);
                up.queue(&mut m.ports[0], &self.builder, &msg);
            }
            self.next_sync += self.sync_period;
            work += 2;
        }
        work
    }

    fn announce(&mut self, now: u64, up: &mut Port, m: &mut Meter, mut work: usize) -> usize {
        while self.next_announce <= now && work < BUDGET {
            let seq = self.announce_seq;
            self.announce_seq = seq.wrapping_add(1);
            m.master_sent(2, seq);
            let msg = self.master_msg(MessageType::Announce, seq, 0, self.announce_log);
            up.queue(&mut m.ports[0], &self.builder, &msg);
            self.next_announce += self.announce_period;
            work += 1;
        }
        work
    }

    /// Alternately a Delay_Req of another relay's client heard on the upstream side, and the
    /// master's Delay_Resp to a client that never asked here.
    fn foreign(
        &mut self,
        now: u64,
        wall: u64,
        up: &mut Port,
        m: &mut Meter,
        mut work: usize,
    ) -> usize {
        while self.next_foreign <= now && work < BUDGET {
            let f = Who::Foreign(self.foreign_seq / 2 % 64);
            let seq = (self.foreign_seq / 128) as u16;
            let msg = if self.foreign_seq % 2 == 0 {
                m.foreign_req.sent += 1;
                Msg {
                    kind: MessageType::DelayReq,
                    from: f,
                    dst: None,
                    seq,
                    timestamp_ns: wall,
                    requesting: None,
                    log_interval: 0x7F,
                }
            } else {
                m.foreign_resp.sent += 1;
                Msg {
                    requesting: Some(f.identity()),
                    ..self.master_msg(MessageType::DelayResp, seq, wall, self.delay_log)
                }
            };
            up.queue(&mut m.ports[0], &self.builder, &msg);
            self.foreign_seq = self.foreign_seq.wrapping_add(1);
            self.next_foreign = self.next_foreign.saturating_add(self.foreign_period);
            work += 1;
        }
        work
    }

    /// Every client whose deadline has come sends its next Delay_Req on its port; its next
    /// deadline is period k plus a fresh random offset, never relative to when this one went.
    fn clients(
        &mut self,
        now: u64,
        wall: u64,
        ports: &mut [Port],
        m: &mut Meter,
        mut work: usize,
    ) -> usize {
        while let Some(&Reverse((due, c))) = self.heap.peek() {
            if due > now || work >= BUDGET {
                break;
            }
            self.heap.pop();
            let c = c as usize;
            let lag = now - due;
            if lag > LATE_NS {
                self.late += 1;
            }
            self.max_lag = self.max_lag.max(lag);
            let seq = self.next_seq[c];
            self.next_seq[c] = seq.wrapping_add(1);
            m.delay_req_sent(c, seq);
            let port = 1 + c % self.ndown;
            let msg = Msg {
                kind: MessageType::DelayReq,
                from: Who::Client(c as u32),
                dst: None,
                seq,
                timestamp_ns: wall,
                requesting: None,
                log_interval: 0x7F,
            };
            ports[port].queue(&mut m.ports[port], &self.builder, &msg);
            self.next_k[c] += 1;
            let due = self.start
                + self.next_k[c] * self.period
                + (self.rng.next_f64() * self.jitter as f64) as u64;
            self.heap.push(Reverse((due, c as u32)));
            work += 1;
        }
        work
    }
}
