//! The `--flood` senders while they run: each paces its own frames (flood.rs builds them) on
//! its own socket, in bursts, between its start and end.
//!
//! It only sends and counts what it sent; it must never read a ring or judge what got through
//! (the meter does, from the arrivals).

use std::io;

use crate::flood::Flood;
use crate::net::{self, Batch, TxSocket};
use crate::results::FloodReport;

/// The flood is sent in bursts of at most this much time's worth (fewer wake-ups).
const FLOOD_SLACK_NS: u64 = 500_000;

/// The `--flood` sender while it runs.
pub(super) struct FloodState {
    opts: Flood,
    tx: TxSocket,
    batch: Batch,
    next: u64,
    end: u64,
    period: u64,
    k: u64,
    first: u64,
    last: u64,
    pub(super) report: FloodReport,
}

impl FloodState {
    pub(super) fn open(f: &Flood, batch: usize) -> io::Result<FloodState> {
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

    /// Its first frame and its end, from the run's clock: `t0` is the first possible send (a
    /// flood starting before the clients has its lead there), `start` the clients' first
    /// Delay_Req, `end` when sending stops.
    pub(super) fn arm(&mut self, t0: u64, start: u64, end: u64) {
        let f = &self.opts;
        self.next = (start as i64 + (f.at_s * 1e9) as i64).max(t0 as i64) as u64;
        self.end = if f.for_s > 0.0 {
            (self.next + (f.for_s * 1e9) as u64).min(end)
        } else {
            end
        };
    }

    /// Send what is due at `now` (at most `budget` frames); returns how many.
    pub(super) fn send_due(&mut self, now: u64, wall: u64, budget: usize) -> usize {
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
    pub(super) fn wake(&self) -> u64 {
        if self.next >= self.end {
            u64::MAX
        } else {
            self.next.saturating_add(
                (self.period * (self.batch.capacity() as u64 - 1)).min(FLOOD_SLACK_NS),
            )
        }
    }

    /// What it did, with what of it the meter saw reach the master; its last send error, if
    /// any, goes to stderr.
    pub(super) fn finish(self, delay_req_at_master: u64, identities_at_master: u64) -> FloodReport {
        if let Some(e) = &self.tx.last_error {
            eprintln!("ptpload: --flood {}: last send error: {e}", self.opts.iface);
        }
        FloodReport {
            elapsed_s: self.last.saturating_sub(self.first) as f64 / 1e9,
            delay_req_at_master,
            identities_at_master,
            ..self.report
        }
    }
}
