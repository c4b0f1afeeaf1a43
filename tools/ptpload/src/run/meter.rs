//! The meter: latency and loss accounting, fed one frame at a time.
//!
//! For every frame sent it opens a slot (per client and sequenceId, or per master message and
//! sequenceId); the transmit tap gives the slot its send stamp, the arrival through the forwarder
//! its receive stamp, in either order, and the difference is the one-way latency. It also counts
//! what should not have arrived (duplicates, late or unknown frames, leaks, floods) and the
//! silences in each port's arrivals. It never sends, reads a socket or looks at a clock: every
//! stamp comes from the kernel with the frame.

use std::collections::HashSet;

use ptpproxy::wire::{MessageType, PortIdentity};

use super::master_load::MasterLoad;
use super::BUDGET;
use crate::args::{Options, MAX_DOWN};
use crate::flood::Flood;
use crate::frames::{Seen, Who};
use crate::results::{ClientCounts, Flow, Foreign, PortCounts};

/// Sequence numbers a client may have in flight before a late frame counts as lost.
const WINDOW: usize = 128;
/// Sync / Follow_Up / Announce sequence numbers tracked.
const MASTER_WINDOW: usize = 1024;
/// Gaps listed per port (the longest is always in `max_gap_ns`).
const MAX_GAPS: usize = 64;

#[derive(Default, Clone, Copy)]
struct Slot {
    seq: u16,
    valid: bool,
    req_rx: bool,
    resp_sent: bool,
    resp_rx: bool,
    req_tx_ts: u64,
    req_rx_ts: u64,
    resp_tx_ts: u64,
    resp_rx_ts: u64,
}

#[derive(Default, Clone, Copy)]
struct MasterSlot {
    seq: u16,
    valid: bool,
    tx_ts: u64,
    rx_mask: u8,
    /// Arrival stamps that came before the transmit tap was read (rare), per port.
    early: [u64; MAX_DOWN],
}

/// The meter's state (separate from the ports so a ring can be drained into it). The counts
/// that end up in the report are visible to the rest of the run, which adds what it sent.
pub(super) struct Meter {
    /// The domain of the emulated master and clients.
    domain: u8,
    ndown: usize,
    clients: usize,
    slots: Vec<Slot>,
    master: [Vec<MasterSlot>; 3],
    pub(super) delay_req: Flow,
    pub(super) delay_resp: Flow,
    pub(super) master_flows: [Flow; 3],
    pub(super) foreign_req: Foreign,
    pub(super) foreign_resp: Foreign,
    pub(super) counts: Vec<ClientCounts>,
    pub(super) ports: Vec<PortCounts>,
    /// Delay_Req the master read and must answer: (who asked, sequenceId, arrival stamp).
    pub(super) answer: Vec<(PortIdentity, u16, u64)>,
    pub(super) negative: u64,
    gap_ns: u64,
    /// Per `--flood` source: its Delay_Req at the master and the identities they came from.
    pub(super) flood_req_at_master: Vec<u64>,
    pub(super) flood_ids_at_master: Vec<HashSet<u32>>,
    /// What the master reads per window, and what its capacity lets it answer.
    pub(super) master_load: MasterLoad,
}

/// Where the master's messages sit in `master` and `master_flows`: Sync, Follow_Up, Announce.
fn master_index(kind: MessageType) -> Option<usize> {
    match kind {
        MessageType::Sync => Some(0),
        MessageType::FollowUp => Some(1),
        MessageType::Announce => Some(2),
        _ => None,
    }
}

impl Meter {
    pub(super) fn new(o: &Options) -> Meter {
        let ndown = o.downstream.len();
        let n = o.clients as usize;
        Meter {
            domain: o.domain,
            ndown,
            clients: n,
            slots: vec![Slot::default(); n * WINDOW],
            master: [
                vec![MasterSlot::default(); MASTER_WINDOW],
                vec![MasterSlot::default(); MASTER_WINDOW],
                vec![MasterSlot::default(); MASTER_WINDOW],
            ],
            delay_req: Flow::new(1),
            delay_resp: Flow::new(1),
            master_flows: [
                Flow::new(ndown as u64),
                Flow::new(ndown as u64),
                Flow::new(ndown as u64),
            ],
            foreign_req: Foreign::default(),
            foreign_resp: Foreign::default(),
            counts: vec![ClientCounts::default(); n],
            ports: std::iter::once(&o.upstream)
                .chain(&o.downstream)
                .map(|i| PortCounts {
                    name: i.to_string(),
                    ..PortCounts::default()
                })
                .collect(),
            answer: Vec::with_capacity(BUDGET * (ndown + 1)),
            negative: 0,
            gap_ns: o.gap_ns,
            flood_req_at_master: vec![0; o.flood.len()],
            flood_ids_at_master: vec![HashSet::new(); o.flood.len()],
            master_load: MasterLoad::new(o.master_capacity),
        }
    }

    /// The master sends message `m` (index of [`master_index`]) with sequenceId `seq`.
    pub(super) fn master_sent(&mut self, m: usize, seq: u16) {
        self.master[m][usize::from(seq) % MASTER_WINDOW] = MasterSlot {
            seq,
            valid: true,
            ..MasterSlot::default()
        };
        self.master_flows[m].sent += 1;
    }

    /// Client `c` sends its Delay_Req `seq`: a fresh slot (the window's oldest is forgotten).
    pub(super) fn delay_req_sent(&mut self, c: usize, seq: u16) {
        self.slots[c * WINDOW + usize::from(seq) % WINDOW] = Slot {
            seq,
            valid: true,
            ..Slot::default()
        };
        self.delay_req.sent += 1;
        self.counts[c].delay_req_sent += 1;
    }

    /// The master answers `id`'s Delay_Req `seq`. Answers to `--flood` identities are counted
    /// by their sender, not as Delay_Resp of the well-behaved flow.
    pub(super) fn delay_resp_sent(&mut self, id: &PortIdentity, seq: u16) {
        let who = Who::of(id);
        if let Some(c) = self.client(who) {
            if let Some(slot) = self.slot(c, seq) {
                slot.resp_sent = true;
            }
        }
        if !matches!(who, Who::Flood(_)) {
            self.delay_resp.sent += 1;
        }
    }

    fn latency(&mut self, flow: Which, tx: u64, rx: u64) {
        if rx < tx {
            self.negative += 1;
            return;
        }
        let f = match flow {
            Which::Req => &mut self.delay_req,
            Which::Resp => &mut self.delay_resp,
            Which::Master(i) => &mut self.master_flows[i],
        };
        f.latency.record(rx - tx);
    }

    fn slot(&mut self, c: usize, seq: u16) -> Option<&mut Slot> {
        let s = &mut self.slots[c * WINDOW + usize::from(seq) % WINDOW];
        (s.valid && s.seq == seq).then_some(s)
    }

    fn client(&self, who: Who) -> Option<usize> {
        match who {
            Who::Client(c) if (c as usize) < self.clients => Some(c as usize),
            _ => None,
        }
    }

    /// A copy of a frame we sent on `port` (the transmit tap): its send stamp.
    pub(super) fn on_tap(&mut self, port: usize, s: &Seen, ts: u64) {
        self.ports[port].taps += 1;
        match (s.kind, port) {
            (MessageType::DelayReq, p) if p > 0 => {
                let Some(c) = self.client(s.from) else { return };
                let Some(slot) = self.slot(c, s.seq) else {
                    return;
                };
                slot.req_tx_ts = ts;
                let rx = slot.req_rx_ts;
                if rx != 0 {
                    self.latency(Which::Req, ts, rx);
                }
            }
            (MessageType::DelayResp, 0) => {
                let Some(c) = self.client(s.requesting) else {
                    return;
                };
                let Some(slot) = self.slot(c, s.seq) else {
                    return;
                };
                slot.resp_tx_ts = ts;
                let rx = slot.resp_rx_ts;
                if rx != 0 {
                    self.latency(Which::Resp, ts, rx);
                }
            }
            (kind, 0) => {
                let Some(m) = master_index(kind) else { return };
                if s.from != Who::Master {
                    return;
                }
                let slot = &mut self.master[m][usize::from(s.seq) % MASTER_WINDOW];
                if !(slot.valid && slot.seq == s.seq) {
                    return;
                }
                slot.tx_ts = ts;
                let early = slot.early;
                for rx in early.into_iter().filter(|&t| t != 0) {
                    self.latency(Which::Master(m), ts, rx);
                }
            }
            _ => {}
        }
    }

    /// A frame that arrived on `port` through the forwarder.
    pub(super) fn on_arrival(&mut self, port: usize, s: &Seen, ts: u64) {
        self.ports[port].rx += 1;
        if port == 0 {
            self.at_master(s, ts);
        } else {
            self.at_clients(port - 1, s, ts);
        }
    }

    /// A well-behaved flow arrived on `port` at `ts`: track first, last and the silences.
    fn alive(&mut self, port: usize, ts: u64) {
        let p = &mut self.ports[port];
        if p.first_rx_ns == 0 {
            p.first_rx_ns = ts;
        } else if ts > p.last_rx_ns {
            let gap = ts - p.last_rx_ns;
            p.max_gap_ns = p.max_gap_ns.max(gap);
            if gap >= self.gap_ns && p.gaps.len() < MAX_GAPS {
                p.gaps.push((p.last_rx_ns, ts));
            }
        }
        p.last_rx_ns = p.last_rx_ns.max(ts);
    }

    fn at_master(&mut self, s: &Seen, ts: u64) {
        if let Who::Flood(n) = s.from {
            self.ports[0].flood_rx += 1;
            let src = Flood::source_of(n);
            if s.kind == MessageType::DelayReq && src < self.flood_req_at_master.len() {
                self.flood_req_at_master[src] += 1;
                self.flood_ids_at_master[src].insert(n);
                self.answer.push((s.source, s.seq, ts));
            }
            return;
        }
        if s.kind != MessageType::DelayReq || s.domain != self.domain {
            self.ports[0].other += 1;
            return;
        }
        // The master answers every Delay_Req of its domain it receives (another domain's
        // clients, e.g. real PTP clients sharing the segment, are not its own).
        self.answer.push((s.source, s.seq, ts));
        let Some(c) = self.client(s.from) else {
            self.ports[0].other += 1;
            return;
        };
        let Some(slot) = self.slot(c, s.seq) else {
            self.delay_req.unmatched += 1;
            return;
        };
        if slot.req_rx {
            self.delay_req.duplicate += 1;
            return;
        }
        slot.req_rx = true;
        slot.req_rx_ts = ts;
        let tx = slot.req_tx_ts;
        self.delay_req.received += 1;
        self.alive(0, ts);
        if tx != 0 {
            self.latency(Which::Req, tx, ts);
        }
    }

    fn at_clients(&mut self, d: usize, s: &Seen, ts: u64) {
        let port = d + 1;
        if let Who::Flood(_) = s.from {
            self.ports[port].flood_rx += 1;
            return;
        }
        match s.kind {
            MessageType::DelayResp => self.delay_resp_at_client(d, s, ts),
            MessageType::DelayReq => match s.from {
                Who::Foreign(_) => self.foreign_req.leaked += 1,
                Who::Client(_) => self.ports[port].delay_req_flooded += 1,
                _ => self.ports[port].other += 1,
            },
            kind => match master_index(kind).filter(|_| s.from == Who::Master) {
                Some(m) => self.master_at_client(d, m, s.seq, ts),
                None => self.ports[port].other += 1,
            },
        }
    }

    /// A Delay_Resp on downstream port `d`: for one of our clients, on its port, once, after
    /// the master sent it; and who else had to look at it.
    fn delay_resp_at_client(&mut self, d: usize, s: &Seen, ts: u64) {
        let port = d + 1;
        if s.group_dst {
            self.ports[port].delay_resp_group += 1;
        }
        if let Who::Flood(_) = s.requesting {
            self.ports[port].flood_delay_resp += 1;
            return;
        }
        if let Who::Foreign(_) = s.requesting {
            self.foreign_resp.leaked += 1;
            return;
        }
        let Some(c) = self.client(s.requesting) else {
            self.ports[port].other += 1;
            return;
        };
        if !s.group_dst && s.dst != Who::Client(c as u32).mac() {
            // Unicast to some other host: that host processes it.
            if let Some(k) = self.client(Who::of_mac(&s.dst)) {
                self.counts[k].unicast_for_others += 1;
            }
        }
        if c % self.ndown != d {
            self.delay_resp.wrong_port += 1;
            return;
        }
        let Some(slot) = self.slot(c, s.seq) else {
            self.delay_resp.unmatched += 1;
            return;
        };
        if !slot.resp_sent || slot.resp_rx {
            self.delay_resp.duplicate += 1;
            return;
        }
        slot.resp_rx = true;
        slot.resp_rx_ts = ts;
        let tx = slot.resp_tx_ts;
        self.delay_resp.received += 1;
        self.alive(port, ts);
        self.counts[c].delay_resp_own += 1;
        if s.group_dst {
            self.counts[c].own_group += 1;
        }
        if tx != 0 {
            self.latency(Which::Resp, tx, ts);
        }
    }

    /// The master's message `m` (Sync, Follow_Up, Announce) `seq` on downstream port `d`: once
    /// per port. An arrival read before its tap keeps its stamp until the tap comes.
    fn master_at_client(&mut self, d: usize, m: usize, seq: u16, ts: u64) {
        let slot = &mut self.master[m][usize::from(seq) % MASTER_WINDOW];
        if !(slot.valid && slot.seq == seq) {
            self.master_flows[m].unmatched += 1;
            return;
        }
        if slot.rx_mask & (1 << d) != 0 {
            self.master_flows[m].duplicate += 1;
            return;
        }
        slot.rx_mask |= 1 << d;
        let tx = slot.tx_ts;
        if tx == 0 {
            slot.early[d] = ts;
        }
        self.master_flows[m].received += 1;
        self.alive(d + 1, ts);
        if tx != 0 {
            self.latency(Which::Master(m), tx, ts);
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Req,
    Resp,
    Master(usize),
}

impl Who {
    /// The client whose MAC this is (inverse of [`Who::mac`]).
    pub(crate) fn of_mac(mac: &[u8; 6]) -> Who {
        Who::of(&PortIdentity {
            clock_identity: [mac[0], mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]],
            port_number: 1,
        })
    }
}
