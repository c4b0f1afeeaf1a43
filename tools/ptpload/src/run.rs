//! The run: one thread, one loop over the scheduler, the flood senders and the receivers.
//!
//! Each iteration sends what is due (schedule.rs, flood_tx.rs), drains every receive ring into
//! the meter (receive.rs, meter.rs; the master answers each Delay_Req it finds with a Delay_Resp,
//! sent in the same iteration), and sleeps in `ppoll` until the next deadline or a frame when
//! there was nothing to do. Latency never depends on this loop's own delays: both ends are kernel
//! timestamps (net.rs). This file only orchestrates: it must never build, judge or time a frame
//! itself.

mod flood_tx;
mod master_load;
mod meter;
mod receive;
mod schedule;

use std::io;

use crate::args::Options;
use crate::frames::{Builder, Msg};
use crate::net::{self, Batch, RxRing, TxSocket};
use crate::results::{PortCounts, Report};
use flood_tx::FloodState;
use meter::Meter;
use schedule::Schedule;

/// Frames read from one ring, or sent, per loop iteration.
const BUDGET: usize = 4096;
/// From opening the sockets to the first send: time to settle before the clock starts.
const SETTLE_NS: u64 = 20_000_000;

/// One interface: its send socket and batch, and its receive ring (arrivals and our taps).
struct Port {
    tx: TxSocket,
    rx: RxRing,
    batch: Batch,
}

impl Port {
    /// Queue one frame, sending the batch first when it is full.
    fn queue(&mut self, counts: &mut PortCounts, b: &Builder, msg: &Msg) {
        if self.batch.is_full() {
            self.flush(counts);
        }
        self.batch.push(|buf| b.build(msg, buf));
    }

    fn flush(&mut self, counts: &mut PortCounts) {
        let s = self.tx.send(&mut self.batch);
        counts.tx += s.ok;
        counts.tx_errors += s.errors;
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

/// Everything the loop drives.
struct Run {
    ports: Vec<Port>,
    flood: Vec<FloodState>,
    meter: Meter,
    schedule: Schedule,
    /// The rings, for the sleep.
    fds: Vec<i32>,
    max_frames: u64,
    drain_ns: u64,
}

/// How the sending ended: when (CLOCK_MONOTONIC ns), and whether by `--max-frames`.
struct Stop {
    at: Option<u64>,
    by_max: bool,
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
    let meter = Meter::new(&o);
    let t0 = net::clock_ns(libc::CLOCK_MONOTONIC) + SETTLE_NS;
    let schedule = Schedule::new(&o, t0);
    for fs in &mut flood {
        fs.arm(t0, schedule.start, schedule.end);
    }
    let mut r = Run {
        fds: ports.iter().map(|p| p.rx.raw_fd()).collect(),
        ports,
        flood,
        meter,
        schedule,
        max_frames: o.max_frames,
        drain_ns: o.drain_ms * 1_000_000,
    };
    let cpu0 = net::cpu_ns();
    let stop = r.pump();
    let cpu = net::cpu_ns() - cpu0;
    Ok(r.finish(o, stop, cpu))
}

impl Run {
    /// The loop, until the drain after the end of sending is over.
    fn pump(&mut self) -> Stop {
        let mut stop = Stop {
            at: None,
            by_max: false,
        };
        let mut sent_total = 0u64;
        loop {
            let now = net::clock_ns(libc::CLOCK_MONOTONIC);
            let wall = net::clock_ns(libc::CLOCK_REALTIME);
            if stop.at.is_none() && (now >= self.schedule.end || sent_total >= self.max_frames) {
                stop.by_max = now < self.schedule.end;
                stop.at = Some(now);
            }
            if let Some(t) = stop.at {
                if now >= t + self.drain_ns {
                    return stop;
                }
            }
            let mut work = 0usize;
            if stop.at.is_none() {
                work = self.send(now, wall);
            }
            for (p, counts) in self.ports.iter_mut().zip(&mut self.meter.ports) {
                p.flush(counts);
            }
            work += receive::drain(&mut self.ports, &mut self.meter);
            let s = &self.schedule;
            receive::answer(
                &mut self.ports,
                &mut self.meter,
                &mut self.flood,
                &s.builder,
                s.delay_log,
            );
            sent_total = self.meter.ports.iter().map(|p| p.tx).sum::<u64>()
                + self.flood.iter().map(|f| f.report.sent).sum::<u64>();
            if work == 0 {
                self.sleep(stop.at);
            }
        }
    }

    /// Send what is due at `now`: the floods first, then (from the start on) the schedule.
    /// Returns the frames sent.
    fn send(&mut self, now: u64, wall: u64) -> usize {
        let mut work = 0;
        for fs in &mut self.flood {
            work += fs.send_due(now, wall, BUDGET);
        }
        if now >= self.schedule.start {
            work = self
                .schedule
                .send_due(now, wall, &mut self.ports, &mut self.meter, work);
        }
        work
    }

    /// Nothing to do: wait for a frame or the next deadline (at most 1 ms).
    fn sleep(&self, stopped_at: Option<u64>) {
        let now = net::clock_ns(libc::CLOCK_MONOTONIC);
        let next = match stopped_at {
            Some(t) => t + self.drain_ns,
            None => self
                .flood
                .iter()
                .map(FloodState::wake)
                .fold(self.schedule.next_due(), u64::min),
        };
        if next > now {
            net::wait_readable(&self.fds, (next - now).min(1_000_000));
        }
    }

    /// The report, with what the rings and the senders say at the end.
    fn finish(self, o: Options, stop: Stop, cpu_ns: u64) -> Report {
        let mut m = self.meter;
        for (p, counts) in self.ports.iter().zip(&mut m.ports) {
            counts.ring_drops += p.rx.take_drops();
            if let Some(e) = &p.tx.last_error {
                eprintln!("ptpload: {}: last send error: {e}", counts.name);
            }
        }
        let flood = self
            .flood
            .into_iter()
            .enumerate()
            .map(|(i, fs)| {
                let ids = m.flood_ids_at_master[i].len() as u64;
                fs.finish(m.flood_req_at_master[i], ids)
            })
            .collect();
        let s = &self.schedule;
        let stopped = stop.at.unwrap_or(s.end);
        let [sync, follow_up, announce] = m.master_flows;
        Report {
            elapsed_s: stopped.saturating_sub(s.start) as f64 / 1e9,
            cpu_s: cpu_ns as f64 / 1e9,
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
            late_sends: s.late,
            max_lag_ns: s.max_lag,
            stopped_by_max_frames: stop.by_max,
            negative: m.negative,
            flood,
            master: m.master_load.report(),
        }
    }
}
