//! The table for people: a headline, the flows, the ports, then one line per finding (foreign
//! frames, per-client Delay_Resp, silences, floods, the generator itself).
//!
//! Column layouts are data ([`FLOW_COLUMNS`], [`PORT_COLUMNS`]); it must never compute a result
//! the JSON does not also carry.

use std::fmt::Write as _;

use super::{down, flows, per_client, total, up, us, Total};
use crate::flood::Flood;
use crate::results::{FloodReport, Report};

/// A column: its header and width. The first `left` columns of a table are left-aligned, the
/// others right-aligned.
type Column = (&'static str, usize);

const FLOW_COLUMNS: [Column; 14] = [
    ("flow", 11),
    ("dir", 5),
    ("sent", 10),
    ("expected", 10),
    ("received", 10),
    ("lost", 9),
    ("lost%", 9),
    ("dup", 6),
    ("late", 7),
    ("wrong", 7),
    ("p50_us", 9),
    ("p99_us", 9),
    ("p99.9_us", 9),
    ("max_us", 9),
];

const PORT_COLUMNS: [Column; 8] = [
    ("port", 28),
    ("tx", 10),
    ("rx", 10),
    ("taps", 10),
    ("tx_err", 8),
    ("ring_drop", 10),
    ("req_flood", 10),
    ("other", 8),
];

/// One line of a table: `cells` padded to `columns`, the first `left` of them left-aligned.
fn line<S: AsRef<str>>(out: &mut String, columns: &[Column], left: usize, cells: &[S]) {
    for (i, ((_, width), cell)) in columns.iter().zip(cells).enumerate() {
        let cell = cell.as_ref();
        let _ = if i < left {
            write!(out, "{cell:<width$}")
        } else {
            write!(out, "{cell:>width$}")
        };
    }
    out.push('\n');
}

fn header(out: &mut String, columns: &[Column], left: usize) {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    line(out, columns, left, &names);
}

fn flow_row(out: &mut String, name: &str, dir: &str, t: &Total) {
    let cells = [
        name.to_string(),
        dir.to_string(),
        t.sent.to_string(),
        t.expected.to_string(),
        t.received.to_string(),
        t.lost().to_string(),
        format!("{:.4}", 100.0 * t.loss_ratio()),
        t.duplicate.to_string(),
        t.unmatched.to_string(),
        t.wrong_port.to_string(),
        format!("{:.1}", us(t.latency.quantile(0.5))),
        format!("{:.1}", us(t.latency.quantile(0.99))),
        format!("{:.1}", us(t.latency.quantile(0.999))),
        format!("{:.1}", us(t.latency.max)),
    ];
    line(out, &FLOW_COLUMNS, 2, &cells);
}

pub fn table(r: &Report) -> String {
    let mut out = String::new();
    headline(&mut out, r);
    header(&mut out, &FLOW_COLUMNS, 2);
    for (name, dir, f) in flows(r) {
        flow_row(&mut out, name, dir, &total(&[f]));
    }
    flow_row(&mut out, "ALL", "up", &up(r));
    flow_row(&mut out, "ALL", "down", &down(r));
    foreign_and_clients(&mut out, r);
    master_line(&mut out, r);
    ports(&mut out, r);
    gaps(&mut out, r);
    for (f, fl) in r.flood.iter().zip(&r.opts.flood) {
        flood_line(&mut out, r, f, fl);
    }
    generator_line(&mut out, r);
    out
}

fn headline(out: &mut String, r: &Report) {
    let o = &r.opts;
    let _ = writeln!(
        out,
        "ptpload: {} clients on {} downstream port(s), {} Delay_Req/s each ({:.0}/s in all), \
         Sync {}/s, Announce {}/s, foreign {}%, {}, {:.2} s of sending{}",
        o.clients,
        o.downstream.len(),
        o.rate,
        o.rate * f64::from(o.clients),
        o.sync_rate,
        o.announce_rate,
        100.0 * o.foreign,
        o.transport.name(),
        r.elapsed_s,
        if r.stopped_by_max_frames {
            " (stopped at --max-frames)"
        } else {
            ""
        }
    );
}

fn master_line(out: &mut String, r: &Report) {
    let m = &r.master;
    let capacity = if m.capacity > 0.0 {
        format!("capacity {:.0}/s, {} not answered", m.capacity, m.refused)
    } else {
        "answers all".to_string()
    };
    let _ = writeln!(
        out,
        "master: {} Delay_Req read, per 10 ms max {} p99 {}; {capacity}",
        m.delay_req_seen, m.per_10ms_max, m.per_10ms_p99
    );
}

fn foreign_and_clients(out: &mut String, r: &Report) {
    let (req, resp) = (&r.foreign_req, &r.foreign_resp);
    let _ = writeln!(
        out,
        "foreign    delay_req sent {} leaked {}; delay_resp sent {} leaked {} (a selective relay leaks none)",
        req.sent, req.leaked, resp.sent, resp.leaked
    );
    let secs = r.elapsed_s.max(1e-9);
    let [(own_min, own_med, own_max), (oth_min, oth_med, oth_max)] = per_client(r);
    let _ = writeln!(
        out,
        "per client Delay_Resp for it: min {own_min} median {own_med} max {own_max} ({:.1}/s median); \
         for others: min {oth_min} median {oth_med} max {oth_max} ({:.1}/s median)",
        own_med as f64 / secs,
        oth_med as f64 / secs
    );
}

fn ports(out: &mut String, r: &Report) {
    header(out, &PORT_COLUMNS, 1);
    for p in &r.ports {
        let numbers = [
            p.tx,
            p.rx,
            p.taps,
            p.tx_errors,
            p.ring_drops,
            p.delay_req_flooded,
            p.other,
        ];
        let cells: Vec<String> = std::iter::once(p.name.clone())
            .chain(numbers.iter().map(u64::to_string))
            .collect();
        line(out, &PORT_COLUMNS, 1, &cells);
    }
}

fn gaps(out: &mut String, r: &Report) {
    for p in r.ports.iter().filter(|p| !p.gaps.is_empty()) {
        let list: Vec<String> = p
            .gaps
            .iter()
            .map(|&(a, b)| format!("{:.0} ms", (b - a) as f64 / 1e6))
            .collect();
        let _ = writeln!(
            out,
            "gaps       {}: {} silence(s) of at least {} ms: {}",
            p.name,
            p.gaps.len(),
            r.opts.gap_ns / 1_000_000,
            list.join(", ")
        );
    }
}

fn flood_line(out: &mut String, r: &Report, f: &FloodReport, fl: &Flood) {
    let kinds: Vec<String> = fl
        .msg
        .kinds()
        .iter()
        .zip(&f.by_kind)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let arrivals: Vec<String> = r
        .ports
        .iter()
        .map(|p| format!("{} {}+{} resp", p.name, p.flood_rx, p.flood_delay_resp))
        .collect();
    let _ = writeln!(
        out,
        "flood      {} on {} at {}/s{}: sent {} ({:.0}/s over {:.2} s, {} send errors; {}); \
         at the master: {} Delay_Req from {} identities, {} answered; arrivals per port: {}",
        fl.msg.name(),
        fl.iface,
        fl.rate,
        if fl.single_mac { ", one MAC" } else { "" },
        f.sent,
        f.sent as f64 / f.elapsed_s.max(1e-9),
        f.elapsed_s,
        f.tx_errors,
        kinds.join(", "),
        f.delay_req_at_master,
        f.identities_at_master,
        f.answered,
        arrivals.join(", ")
    );
}

fn generator_line(out: &mut String, r: &Report) {
    let limits = r.generator_limits();
    let _ = writeln!(
        out,
        "generator  cpu {:.0}% of a core, {} late sends (max lag {:.2} ms), {} negative latencies: {}",
        100.0 * r.cpu_s / r.elapsed_s.max(1e-9),
        r.late_sends,
        r.max_lag_ns as f64 / 1e6,
        r.negative,
        if limits.is_empty() {
            "not the limit".to_string()
        } else {
            format!("LIMIT: {}", limits.join("; "))
        }
    );
}
