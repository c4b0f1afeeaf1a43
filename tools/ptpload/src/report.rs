//! The results as a table for people (report/table.rs) and as JSON for scripts (report/json.rs,
//! read by tests/bench.sh, tests/hardening.sh and tests/soak.sh), from the same totals.
//!
//! It only formats a finished [`Report`]: it must never measure, and its columns, field names
//! and number formats are an interface the test scripts parse.

mod json;
mod table;

pub use json::json;
pub use table::table;

use crate::hist::Hist;
use crate::results::{Flow, Report};

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Sent, expected, received, lost and the latency of several flows taken together.
struct Total {
    sent: u64,
    expected: u64,
    received: u64,
    duplicate: u64,
    unmatched: u64,
    wrong_port: u64,
    latency: Hist,
}

fn total(flows: &[&Flow]) -> Total {
    let mut t = Total {
        sent: 0,
        expected: 0,
        received: 0,
        duplicate: 0,
        unmatched: 0,
        wrong_port: 0,
        latency: Hist::default(),
    };
    for f in flows {
        t.sent += f.sent;
        t.expected += f.expected();
        t.received += f.received;
        t.duplicate += f.duplicate;
        t.unmatched += f.unmatched;
        t.wrong_port += f.wrong_port;
        t.latency.merge(&f.latency);
    }
    t
}

impl Total {
    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost() as f64 / self.expected as f64
        }
    }
}

/// Every flow: (name, direction, flow), in the order both outputs list them.
fn flows(r: &Report) -> [(&'static str, &'static str, &Flow); 5] {
    [
        ("delay_req", "up", &r.delay_req),
        ("delay_resp", "down", &r.delay_resp),
        ("sync", "down", &r.sync),
        ("follow_up", "down", &r.follow_up),
        ("announce", "down", &r.announce),
    ]
}

fn up(r: &Report) -> Total {
    total(&[&r.delay_req])
}

fn down(r: &Report) -> Total {
    total(&[&r.delay_resp, &r.sync, &r.follow_up, &r.announce])
}

/// min, median, max.
fn spread(mut v: Vec<u64>) -> (u64, u64, u64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// The spread over the clients of the Delay_Resp for each (own) and for others.
fn per_client(r: &Report) -> [(u64, u64, u64); 2] {
    [
        spread(r.clients.iter().map(|c| c.delay_resp_own).collect()),
        spread(
            (0..r.clients.len())
                .map(|c| r.delay_resp_others(c))
                .collect(),
        ),
    ]
}
