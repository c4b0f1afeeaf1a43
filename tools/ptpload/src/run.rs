//! The emulation and the meter: one thread, one loop.
//!
//! Each iteration sends what is due (the master's Sync + Follow_Up, Announce and foreign frames
//! on its timers, every client's Delay_Req from a heap of deadlines), drains every receive ring
//! (the master answers each Delay_Req it finds with a Delay_Resp, sent in the same iteration),
//! and sleeps in `ppoll` until the next deadline or a frame when there was nothing to do.
//! Latency never depends on this loop's own delays: both ends are kernel timestamps (net.rs).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::io;

use ptpproxy::wire::{MessageType, PortIdentity};

use crate::flood::Flood;
use crate::frames::{self, Builder, Msg, Seen, Transport, Who};
use crate::hist::Hist;
use crate::net::{self, Batch, RxRing, TxSocket};

/// `NETNS:IFNAME` (NETNS empty: the current namespace).
#[derive(Clone, Debug)]
pub struct Iface {
    pub netns: String,
    pub name: String,
}

impl Iface {
    pub fn parse(s: &str) -> Option<Iface> {
        let (ns, name) = s.rsplit_once(':').unwrap_or(("", s));
        if name.is_empty() || name.len() > 15 || ns.contains('/') || ns.starts_with('.') {
            return None;
        }
        Some(Iface {
            netns: ns.into(),
            name: name.into(),
        })
    }
}

impl std::fmt::Display for Iface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.netns.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}:{}", self.netns, self.name)
        }
    }
}

/// Most downstream interfaces.
pub const MAX_DOWN: usize = 8;

#[derive(Clone, Debug)]
pub struct Options {
    pub upstream: Iface,
    pub downstream: Vec<Iface>,
    pub clients: u32,
    /// Delay_Req per second per client.
    pub rate: f64,
    pub sync_rate: f64,
    pub announce_rate: f64,
    /// Delay_Req k of a client goes at k periods + uniform [0, jitter) periods.
    pub jitter: f64,
    /// Foreign Delay_Req and foreign Delay_Resp, each this share of the Delay_Req rate.
    pub foreign: f64,
    pub transport: Transport,
    pub domain: u8,
    pub duration_s: f64,
    pub drain_ms: u64,
    pub max_frames: u64,
    pub batch: usize,
    pub ring_bytes: usize,
    /// Latency of Delay_Req/Delay_Resp sampled on every `tap_every`-th sequenceId (power of 2).
    pub tap_every: u32,
    pub seed: u64,
    /// Misbehaving senders (`--flood`), if any.
    pub flood: Vec<Flood>,
    /// Silences of at least this long in a port's arrivals are listed (ns).
    pub gap_ns: u64,
}

/// Sequence numbers a client may have in flight before a late frame counts as lost.
const WINDOW: usize = 128;
/// Sync / Follow_Up / Announce sequence numbers tracked.
const MASTER_WINDOW: usize = 1024;
/// Frames read from one ring, or sent, per loop iteration.
const BUDGET: usize = 4096;
/// A send later than this after its deadline counts as late (the generator fell behind).
const LATE_NS: u64 = 1_000_000;
/// Gaps listed per port (the longest is always in `max_gap_ns`).
const MAX_GAPS: usize = 64;
/// The flood is sent in bursts of at most this much time's worth (fewer wake-ups).
const FLOOD_SLACK_NS: u64 = 500_000;

/// One message class in one direction.
#[derive(Default, Clone)]
pub struct Flow {
    pub sent: u64,
    /// Arrivals expected per frame sent (downstream ports for Sync, else 1).
    pub fanout: u64,
    /// First arrivals where expected.
    pub received: u64,
    pub duplicate: u64,
    /// Arrivals too late to match (sequence window passed) or never sent.
    pub unmatched: u64,
    /// Arrivals on a port where the frame should not go (Delay_Resp on another client's port).
    pub wrong_port: u64,
    pub latency: Hist,
}

impl Flow {
    fn new(fanout: u64) -> Flow {
        Flow {
            fanout,
            ..Flow::default()
        }
    }

    pub fn expected(&self) -> u64 {
        self.sent * self.fanout
    }
}

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

#[derive(Default, Clone, Copy)]
pub struct ClientCounts {
    pub delay_req_sent: u64,
    pub delay_resp_own: u64,
    /// Own Delay_Resp that came group-addressed (so every host on the port saw it).
    own_group: u64,
    /// Delay_Resp for others unicast to this client's MAC.
    unicast_for_others: u64,
}

#[derive(Default, Clone)]
pub struct PortCounts {
    pub name: String,
    pub tx: u64,
    pub tx_errors: u64,
    pub rx: u64,
    pub taps: u64,
    pub ring_drops: u64,
    /// Group-addressed Delay_Resp that arrived (every host on the port has to look at them).
    pub delay_resp_group: u64,
    /// Our clients' Delay_Req arriving on a downstream port (a flooding forwarder).
    pub delay_req_flooded: u64,
    /// Frames not ours or not expected here.
    pub other: u64,
    /// Frames from `--flood` identities that arrived here (a relay's leaks or admissions).
    pub flood_rx: u64,
    /// Delay_Resp for `--flood` identities that arrived here.
    pub flood_delay_resp: u64,
    /// Arrivals of the well-behaved flows (the master's frames and our clients' Delay_Resp on a
    /// client port, our clients' Delay_Req on the master's): first and last kernel stamp
    /// (CLOCK_REALTIME ns), the longest silence between two, and every silence of at least
    /// `--gap-ms` as (last arrival before, first after).
    pub first_rx_ns: u64,
    pub last_rx_ns: u64,
    pub max_gap_ns: u64,
    pub gaps: Vec<(u64, u64)>,
}

#[derive(Default, Clone)]
pub struct Foreign {
    pub sent: u64,
    /// Arrivals on the far side (a selective relay drops them all).
    pub leaked: u64,
}

/// Everything measured.
pub struct Report {
    pub opts: Options,
    pub delay_req: Flow,
    pub delay_resp: Flow,
    pub sync: Flow,
    pub follow_up: Flow,
    pub announce: Flow,
    pub foreign_req: Foreign,
    pub foreign_resp: Foreign,
    pub clients: Vec<ClientCounts>,
    pub ports: Vec<PortCounts>,
    /// Sending time actually used, s.
    pub elapsed_s: f64,
    pub cpu_s: f64,
    pub late_sends: u64,
    pub max_lag_ns: u64,
    pub stopped_by_max_frames: bool,
    /// Latency samples dropped because the arrival stamp preceded the send stamp.
    pub negative: u64,
    /// One per `--flood`.
    pub flood: Vec<FloodReport>,
}

/// What the `--flood` senders did and what of it reached the master.
#[derive(Default, Clone)]
pub struct FloodReport {
    pub sent: u64,
    pub tx_errors: u64,
    /// Frames sent per kind (FloodMsg::kinds order).
    pub by_kind: Vec<u64>,
    /// From the first flood frame to the last, s.
    pub elapsed_s: f64,
    /// Flood Delay_Req that reached the master, and how many identities they came from.
    pub delay_req_at_master: u64,
    pub identities_at_master: u64,
    /// Delay_Resp the master sent to flood identities.
    pub answered: u64,
}

impl Report {
    pub fn client_port(&self, c: usize) -> usize {
        c % self.opts.downstream.len()
    }

    /// Delay_Resp for other clients that client `c`'s host would have had to process.
    pub fn delay_resp_others(&self, c: usize) -> u64 {
        let k = &self.clients[c];
        let port = &self.ports[1 + self.client_port(c)];
        port.delay_resp_group - k.own_group + k.unicast_for_others
    }

    pub fn total_sent(&self) -> u64 {
        self.delay_req.sent
            + self.delay_resp.sent
            + self.sync.sent
            + self.follow_up.sent
            + self.announce.sent
            + self.foreign_req.sent
            + self.foreign_resp.sent
    }

    pub fn tx_errors(&self) -> u64 {
        self.ports.iter().map(|p| p.tx_errors).sum()
    }

    pub fn ring_drops(&self) -> u64 {
        self.ports.iter().map(|p| p.ring_drops).sum()
    }

    /// Why the numbers may describe ptpload rather than the forwarder; empty if they do not.
    pub fn generator_limits(&self) -> Vec<String> {
        let mut why = Vec::new();
        let due = self.delay_req.sent.max(1);
        if self.late_sends * 100 > due {
            why.push(format!(
                "{} of {} Delay_Req left over 1 ms late (max lag {:.1} ms): the generator fell behind",
                self.late_sends,
                self.delay_req.sent,
                self.max_lag_ns as f64 / 1e6
            ));
        }
        if self.ring_drops() > 0 {
            why.push(format!(
                "{} frames lost in ptpload's own receive rings",
                self.ring_drops()
            ));
        }
        if self.tx_errors() > 0 {
            why.push(format!("{} send errors in ptpload", self.tx_errors()));
        }
        if self.elapsed_s > 0.0 && self.cpu_s / self.elapsed_s > 0.95 {
            why.push(format!(
                "ptpload used {:.0}% of a CPU",
                100.0 * self.cpu_s / self.elapsed_s
            ));
        }
        why
    }
}

struct Port {
    tx: TxSocket,
    rx: RxRing,
    batch: Batch,
}

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

/// The meter's state (separate from the ports so a ring can be drained into it).
struct Meter {
    /// The domain of the emulated master and clients.
    domain: u8,
    ndown: usize,
    clients: usize,
    slots: Vec<Slot>,
    master: [Vec<MasterSlot>; 3],
    delay_req: Flow,
    delay_resp: Flow,
    master_flows: [Flow; 3],
    foreign_req: Foreign,
    foreign_resp: Foreign,
    counts: Vec<ClientCounts>,
    ports: Vec<PortCounts>,
    /// Delay_Req the master read and must answer: (who asked, sequenceId, arrival stamp).
    answer: Vec<(PortIdentity, u16, u64)>,
    negative: u64,
    gap_ns: u64,
    /// Per `--flood` source: its Delay_Req at the master and the identities they came from.
    flood_req_at_master: Vec<u64>,
    flood_ids_at_master: Vec<HashSet<u32>>,
}

fn master_index(kind: MessageType) -> Option<usize> {
    match kind {
        MessageType::Sync => Some(0),
        MessageType::FollowUp => Some(1),
        MessageType::Announce => Some(2),
        _ => None,
    }
}

impl Meter {
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
    fn on_tap(&mut self, port: usize, s: &Seen, ts: u64) {
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
    fn on_arrival(&mut self, port: usize, s: &Seen, ts: u64) {
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
            MessageType::DelayResp => {
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
            MessageType::DelayReq => match s.from {
                Who::Foreign(_) => self.foreign_req.leaked += 1,
                Who::Client(_) => self.ports[port].delay_req_flooded += 1,
                _ => self.ports[port].other += 1,
            },
            kind => {
                let Some(m) = master_index(kind).filter(|_| s.from == Who::Master) else {
                    self.ports[port].other += 1;
                    return;
                };
                let slot = &mut self.master[m][usize::from(s.seq) % MASTER_WINDOW];
                if !(slot.valid && slot.seq == s.seq) {
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
                self.alive(port, ts);
                if tx != 0 {
                    self.latency(Which::Master(m), tx, ts);
                }
            }
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

fn open_ports(o: &Options) -> io::Result<Vec<Port>> {
    let ethertype = o.transport.ethertype();
    std::iter::once(&o.upstream)
        .chain(&o.downstream)
        .map(|i| {
            net::in_netns(&i.netns, || {
                Ok(Port {
                    tx: TxSocket::open(&i.name, ethertype, o.batch)?,
                    rx: RxRing::open(&i.name, o.ring_bytes, o.transport.ptp_offset(), o.tap_every)?,
                    batch: Batch::new(o.batch),
                })
            })
            .map_err(|e| io::Error::new(e.kind(), format!("{i}: {e}")))
        })
        .collect()
}

/// log2 of a message interval, as the logMessageInterval field carries it.
fn log_interval(rate: f64) -> i8 {
    if rate <= 0.0 {
        return 0x7F;
    }
    (-rate.log2().round()).clamp(-7.0, 7.0) as i8
}

/// The `--flood` sender while it runs.
struct FloodState {
    opts: Flood,
    tx: TxSocket,
    batch: Batch,
    next: u64,
    end: u64,
    period: u64,
    k: u64,
    first: u64,
    last: u64,
    report: FloodReport,
}

impl FloodState {
    fn open(f: &Flood, batch: usize) -> io::Result<FloodState> {
        let tx = net::in_netns(&f.iface.netns, || {
            TxSocket::open(&f.iface.name, f.transport.ethertype(), batch)
        })
        .map_err(|e| io::Error::new(e.kind(), format!("--flood {}: {e}", f.iface)))?;
        Ok(FloodState {
            opts: f.clone(),
            tx,
            batch: Batch::new(batch),
            next: u64::MAX,
            end: 0,
            period: (1e9 / f.rate) as u64,
            k: 0,
            first: 0,
            last: 0,
            report: FloodReport {
                by_kind: vec![0; f.msg.kinds().len()],
                ..FloodReport::default()
            },
        })
    }

    /// Send what is due at `now` (at most `budget` frames); returns how many.
    fn send_due(&mut self, now: u64, wall: u64, budget: usize) -> usize {
        let mut n = 0;
        while self.next <= now && self.next < self.end && n < budget {
            if self.batch.is_full() {
                self.flush();
            }
            let (f, k) = (&self.opts, self.k);
            let mut which = 0;
            self.batch.push(|buf| {
                let (len, w) = f.build(k, wall, buf);
                which = w;
                len
            });
            self.report.by_kind[which] += 1;
            if self.first == 0 {
                self.first = now;
            }
            self.last = now;
            self.k += 1;
            self.next += self.period;
            n += 1;
        }
        self.flush();
        n
    }

    fn flush(&mut self) {
        let s = self.tx.send(&mut self.batch);
        self.report.sent += s.ok;
        self.report.tx_errors += s.errors;
    }

    /// When the loop should wake for the flood next (a burst's worth later than due).
    fn wake(&self) -> u64 {
        if self.next >= self.end {
            u64::MAX
        } else {
            self.next.saturating_add(
                (self.period * (self.batch.capacity() as u64 - 1)).min(FLOOD_SLACK_NS),
            )
        }
    }
}

pub fn run(o: Options) -> io::Result<Report> {
    let mut ports = open_ports(&o)?;
    let mut flood = o
        .flood
        .iter()
        .map(|f| FloodState::open(f, o.batch))
        .collect::<io::Result<Vec<_>>>()?;
    net::tight_timers();
    // Frames that reached the rings between bind and now are not part of the run.
    for p in &mut ports {
        p.rx.drain(usize::MAX, |_| {});
        let _ = p.rx.take_drops();
    }
    let ndown = o.downstream.len();
    let n = o.clients as usize;
    let b = Builder {
        transport: o.transport,
        domain: o.domain,
    };
    let mut m = Meter {
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
    };

    let mut rng = Rng(o.seed | 1);
    let period = (1e9 / o.rate) as u64;
    let jitter = (o.jitter * period as f64) as u64;
    let sync_period = (1e9 / o.sync_rate.max(1e-3)) as u64;
    let announce_period = (1e9 / o.announce_rate.max(1e-3)) as u64;
    let foreign_rate = 2.0 * o.foreign * o.rate * n as f64;
    let foreign_period = if foreign_rate > 0.0 {
        (1e9 / foreign_rate) as u64
    } else {
        u64::MAX
    };
    let (sync_log, delay_log, announce_log) = (
        log_interval(o.sync_rate),
        log_interval(o.rate),
        log_interval(o.announce_rate),
    );

    // The clients' first Delay_Req: a flood that starts before them (--flood-at < 0) gets its
    // lead first.
    let t0 = net::clock_ns(libc::CLOCK_MONOTONIC) + 20_000_000;
    let lead = o
        .flood
        .iter()
        .map(|f| (-f.at_s * 1e9).max(0.0) as u64)
        .max()
        .unwrap_or(0);
    let start = t0 + lead;
    let end = start + (o.duration_s * 1e9) as u64;
    for (fs, f) in flood.iter_mut().zip(&o.flood) {
        fs.next = (start as i64 + (f.at_s * 1e9) as i64).max(t0 as i64) as u64;
        fs.end = if f.for_s > 0.0 {
            (fs.next + (f.for_s * 1e9) as u64).min(end)
        } else {
            end
        };
    }
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::with_capacity(n);
    let mut next_k = vec![0u64; n];
    let mut next_seq = vec![0u16; n];
    for c in 0..n {
        let due = start + (rng.next_f64() * jitter as f64) as u64;
        heap.push(Reverse((due, c as u32)));
    }
    // No foreign frame at all without --foreign (not even the first one).
    let first_foreign = if foreign_rate > 0.0 { start } else { u64::MAX };
    let (mut next_sync, mut next_announce, mut next_foreign) = (start, start, first_foreign);
    let (mut sync_seq, mut announce_seq, mut foreign_seq) = (0u16, 0u16, 0u32);
    let fds: Vec<i32> = ports.iter().map(|p| p.rx.raw_fd()).collect();
    let cpu0 = net::cpu_ns();
    let mut sent_total = 0u64;
    let mut late = 0u64;
    let mut max_lag = 0u64;
    let mut stopped_at: Option<u64> = None;
    let mut by_max = false;
    let drain_ns = o.drain_ms * 1_000_000;

    loop {
        let now = net::clock_ns(libc::CLOCK_MONOTONIC);
        let wall = net::clock_ns(libc::CLOCK_REALTIME);
        if stopped_at.is_none() && (now >= end || sent_total >= o.max_frames) {
            by_max = now < end;
            stopped_at = Some(now);
        }
        if let Some(t) = stopped_at {
            if now >= t + drain_ns {
                break;
            }
        }
        let mut work = 0usize;
        if stopped_at.is_none() {
            for fs in &mut flood {
                work += fs.send_due(now, wall, BUDGET);
            }
        }
        if stopped_at.is_none() && now >= start {
            let up = &mut ports[0];
            let mut put = |msg: Msg, port: &mut Port| {
                if port.batch.is_full() {
                    flush(port, &mut m.ports, 0);
                }
                port.batch.push(|buf| b.build(&msg, buf));
            };
            while next_sync <= now && work < BUDGET {
                let seq = sync_seq;
                sync_seq = sync_seq.wrapping_add(1);
                for (i, kind) in [MessageType::Sync, MessageType::FollowUp]
                    .into_iter()
                    .enumerate()
                {
                    m.master[i][usize::from(seq) % MASTER_WINDOW] = MasterSlot {
                        seq,
                        valid: true,
                        ..MasterSlot::default()
                    };
                    m.master_flows[i].sent += 1;
                    put(
                        Msg {
                            kind,
                            from: Who::Master,
                            dst: None,
                            seq,
                            timestamp_ns: wall,
                            requesting: None,
                            log_interval: sync_log,
                        },
                        up,
                    );
                }
                next_sync += sync_period;
                work += 2;
            }
            while next_announce <= now && work < BUDGET {
                let seq = announce_seq;
                announce_seq = announce_seq.wrapping_add(1);
                m.master[2][usize::from(seq) % MASTER_WINDOW] = MasterSlot {
                    seq,
                    valid: true,
                    ..MasterSlot::default()
                };
                m.master_flows[2].sent += 1;
                put(
                    Msg {
                        kind: MessageType::Announce,
                        from: Who::Master,
                        dst: None,
                        seq,
                        timestamp_ns: 0,
                        requesting: None,
                        log_interval: announce_log,
                    },
                    up,
                );
                next_announce += announce_period;
                work += 1;
            }
            while next_foreign <= now && work < BUDGET {
                // Alternately a Delay_Req of another relay's client heard on the upstream
                // side, and the master's Delay_Resp to a client that never asked here.
                let f = Who::Foreign(foreign_seq / 2 % 64);
                let seq = (foreign_seq / 128) as u16;
                let msg = if foreign_seq % 2 == 0 {
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
                        kind: MessageType::DelayResp,
                        from: Who::Master,
                        dst: None,
                        seq,
                        timestamp_ns: wall,
                        requesting: Some(f.identity()),
                        log_interval: delay_log,
                    }
                };
                put(msg, up);
                foreign_seq = foreign_seq.wrapping_add(1);
                next_foreign = next_foreign.saturating_add(foreign_period);
                work += 1;
            }
            while let Some(&Reverse((due, c))) = heap.peek() {
                if due > now || work >= BUDGET {
                    break;
                }
                heap.pop();
                let c = c as usize;
                let lag = now - due;
                if lag > LATE_NS {
                    late += 1;
                }
                max_lag = max_lag.max(lag);
                let seq = next_seq[c];
                next_seq[c] = seq.wrapping_add(1);
                m.slots[c * WINDOW + usize::from(seq) % WINDOW] = Slot {
                    seq,
                    valid: true,
                    ..Slot::default()
                };
                m.delay_req.sent += 1;
                m.counts[c].delay_req_sent += 1;
                let port = 1 + c % ndown;
                let p = &mut ports[port];
                if p.batch.is_full() {
                    flush(p, &mut m.ports, port);
                }
                p.batch.push(|buf| {
                    b.build(
                        &Msg {
                            kind: MessageType::DelayReq,
                            from: Who::Client(c as u32),
                            dst: None,
                            seq,
                            timestamp_ns: wall,
                            requesting: None,
                            log_interval: 0x7F,
                        },
                        buf,
                    )
                });
                next_k[c] += 1;
                let due = start + next_k[c] * period + (rng.next_f64() * jitter as f64) as u64;
                heap.push(Reverse((due, c as u32)));
                work += 1;
            }
        }
        for (i, p) in ports.iter_mut().enumerate() {
            flush(p, &mut m.ports, i);
        }
        // Receive: taps first within each ring; arrivals may precede their tap across rings,
        // which the meter handles in both orders.
        for (i, p) in ports.iter_mut().enumerate() {
            work += p.rx.drain(BUDGET, |f| {
                let Some(s) = frames::parse(f.data) else {
                    m.ports[i].other += 1;
                    return;
                };
                if f.outgoing {
                    m.on_tap(i, &s, f.ts_ns);
                } else {
                    m.on_arrival(i, &s, f.ts_ns);
                }
            });
        }
        if !m.answer.is_empty() {
            let wall = net::clock_ns(libc::CLOCK_REALTIME);
            let answers = std::mem::take(&mut m.answer);
            for &(id, seq, rx_ts) in &answers {
                if let Some(c) = m.client(Who::of(&id)) {
                    if let Some(slot) = m.slot(c, seq) {
                        slot.resp_sent = true;
                    }
                }
                if let Who::Flood(n) = Who::of(&id) {
                    if let Some(fs) = flood.get_mut(Flood::source_of(n)) {
                        fs.report.answered += 1;
                    }
                } else {
                    m.delay_resp.sent += 1;
                }
                let up = &mut ports[0];
                if up.batch.is_full() {
                    flush(up, &mut m.ports, 0);
                }
                up.batch.push(|buf| {
                    b.build(
                        &Msg {
                            kind: MessageType::DelayResp,
                            from: Who::Master,
                            dst: None,
                            seq,
                            timestamp_ns: if rx_ts != 0 { rx_ts } else { wall },
                            requesting: Some(id),
                            log_interval: delay_log,
                        },
                        buf,
                    )
                });
            }
            m.answer = answers;
            m.answer.clear();
            flush(&mut ports[0], &mut m.ports, 0);
        }
        sent_total = m.ports.iter().map(|p| p.tx).sum::<u64>()
            + flood.iter().map(|f| f.report.sent).sum::<u64>();
        if work == 0 {
            let now = net::clock_ns(libc::CLOCK_MONOTONIC);
            let next = match stopped_at {
                Some(t) => t + drain_ns,
                None => {
                    let mut next = next_sync.min(next_announce).min(next_foreign).min(end);
                    if let Some(&Reverse((due, _))) = heap.peek() {
                        next = next.min(due);
                    }
                    for fs in &flood {
                        next = next.min(fs.wake());
                    }
                    next
                }
            };
            if next > now {
                net::wait_readable(&fds, (next - now).min(1_000_000));
            }
        }
    }
    let cpu = net::cpu_ns() - cpu0;
    for (i, p) in ports.iter().enumerate() {
        m.ports[i].ring_drops += p.rx.take_drops();
        if let Some(e) = &p.tx.last_error {
            eprintln!("ptpload: {}: last send error: {e}", m.ports[i].name);
        }
    }
    let stop = stopped_at.unwrap_or(end);
    let flood = flood
        .into_iter()
        .enumerate()
        .map(|(i, fs)| {
            if let Some(e) = &fs.tx.last_error {
                eprintln!("ptpload: --flood {}: last send error: {e}", fs.opts.iface);
            }
            FloodReport {
                elapsed_s: fs.last.saturating_sub(fs.first) as f64 / 1e9,
                delay_req_at_master: m.flood_req_at_master[i],
                identities_at_master: m.flood_ids_at_master[i].len() as u64,
                ..fs.report
            }
        })
        .collect();
    let [sync, follow_up, announce] = m.master_flows;
    Ok(Report {
        elapsed_s: stop.saturating_sub(start) as f64 / 1e9,
        cpu_s: cpu as f64 / 1e9,
        opts: o,
        delay_req: m.delay_req,
        delay_resp: m.delay_resp,
        sync,
        follow_up,
        announce,
        foreign_req: m.foreign_req,
        foreign_resp: m.foreign_resp,
        clients: m.counts,
        ports: m.ports,
        late_sends: late,
        max_lag_ns: max_lag,
        stopped_by_max_frames: by_max,
        negative: m.negative,
        flood,
    })
}

fn flush(p: &mut Port, counts: &mut [PortCounts], i: usize) {
    let s = p.tx.send(&mut p.batch);
    counts[i].tx += s.ok;
    counts[i].tx_errors += s.errors;
}
