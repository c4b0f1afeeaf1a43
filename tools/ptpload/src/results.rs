//! What a run measured: per flow, per client, per port and per `--flood`, with the judgements
//! drawn from it (what was expected, whether ptpload itself was the limit).
//!
//! Plain data filled in by the meter (run/meter.rs) and read by the report (report.rs): it must
//! never measure, format or print anything itself.

use crate::args::Options;
use crate::hist::Hist;

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
    pub fn new(fanout: u64) -> Flow {
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
pub struct ClientCounts {
    pub delay_req_sent: u64,
    pub delay_resp_own: u64,
    /// Own Delay_Resp that came group-addressed (so every host on the port saw it).
    pub own_group: u64,
    /// Delay_Resp for others unicast to this client's MAC.
    pub unicast_for_others: u64,
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
    /// The master's load.
    pub master: MasterReport,
}

/// The Delay_Req the emulated master read: how many, the most in one 10 ms window (and the 99th
/// percentile over the windows from the first to the last), and those it did not answer for
/// `--master-capacity`.
#[derive(Default, Clone)]
pub struct MasterReport {
    /// Delay_Req answered per second (0: all).
    pub capacity: f64,
    pub delay_req_seen: u64,
    pub refused: u64,
    pub per_10ms_max: u64,
    pub per_10ms_p99: u64,
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
