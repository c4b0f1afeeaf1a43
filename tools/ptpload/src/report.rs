//! The results as a table for people and as JSON for scripts (tests/bench.sh).

use std::fmt::Write as _;

use crate::flood::{Flood, FloodMsg, MALFORMED};
use crate::hist::Hist;
use crate::results::{FloodReport, Flow, Report};

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

fn row(out: &mut String, name: &str, dir: &str, t: &Total) {
    let _ = writeln!(
        out,
        "{:<11}{:<5}{:>10}{:>10}{:>10}{:>9}{:>9.4}{:>6}{:>7}{:>7}{:>9.1}{:>9.1}{:>9.1}{:>9.1}",
        name,
        dir,
        t.sent,
        t.expected,
        t.received,
        t.lost(),
        100.0 * t.loss_ratio(),
        t.duplicate,
        t.unmatched,
        t.wrong_port,
        us(t.latency.quantile(0.5)),
        us(t.latency.quantile(0.99)),
        us(t.latency.quantile(0.999)),
        us(t.latency.max),
    );
}

pub fn table(r: &Report) -> String {
    let o = &r.opts;
    let mut out = String::new();
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
    let _ = writeln!(
        out,
        "{:<11}{:<5}{:>10}{:>10}{:>10}{:>9}{:>9}{:>6}{:>7}{:>7}{:>9}{:>9}{:>9}{:>9}",
        "flow",
        "dir",
        "sent",
        "expected",
        "received",
        "lost",
        "lost%",
        "dup",
        "late",
        "wrong",
        "p50_us",
        "p99_us",
        "p99.9_us",
        "max_us"
    );
    for (name, dir, f) in flows(r) {
        row(&mut out, name, dir, &total(&[f]));
    }
    row(&mut out, "ALL", "up", &up(r));
    row(&mut out, "ALL", "down", &down(r));
    let _ = writeln!(
        out,
        "foreign    delay_req sent {} leaked {}; delay_resp sent {} leaked {} (a selective relay leaks none)",
        r.foreign_req.sent,
        r.foreign_req.leaked,
        r.foreign_resp.sent, r.foreign_resp.leaked
    );
    let secs = r.elapsed_s.max(1e-9);
    let (own_min, own_med, own_max) = spread(r.clients.iter().map(|c| c.delay_resp_own).collect());
    let (oth_min, oth_med, oth_max) = spread(
        (0..r.clients.len())
            .map(|c| r.delay_resp_others(c))
            .collect(),
    );
    let _ = writeln!(
        out,
        "per client Delay_Resp for it: min {own_min} median {own_med} max {own_max} ({:.1}/s median); \
         for others: min {oth_min} median {oth_med} max {oth_max} ({:.1}/s median)",
        own_med as f64 / secs,
        oth_med as f64 / secs
    );
    let _ = writeln!(
        out,
        "{:<28}{:>10}{:>10}{:>10}{:>8}{:>10}{:>10}{:>8}",
        "port", "tx", "rx", "taps", "tx_err", "ring_drop", "req_flood", "other"
    );
    for p in &r.ports {
        let _ = writeln!(
            out,
            "{:<28}{:>10}{:>10}{:>10}{:>8}{:>10}{:>10}{:>8}",
            p.name, p.tx, p.rx, p.taps, p.tx_errors, p.ring_drops, p.delay_req_flooded, p.other
        );
    }
    for p in &r.ports {
        if !p.gaps.is_empty() {
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
                o.gap_ns / 1_000_000,
                list.join(", ")
            );
        }
    }
    for (f, fl) in r.flood.iter().zip(&o.flood) {
        let kinds: Vec<String> = fl
            .msg
            .kinds()
            .iter()
            .zip(&f.by_kind)
            .map(|(k, n)| format!("{k} {n}"))
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
            r.ports
                .iter()
                .map(|p| format!("{} {}+{} resp", p.name, p.flood_rx, p.flood_delay_resp))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
    out
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn latency_json(h: &Hist) -> String {
    format!(
        "{{\"samples\":{},\"p50_us\":{:.2},\"p99_us\":{:.2},\"p999_us\":{:.2},\"max_us\":{:.2},\"mean_us\":{:.2}}}",
        h.count,
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max),
        us(h.mean())
    )
}

fn total_json(t: &Total) -> String {
    format!(
        "{{\"sent\":{},\"expected\":{},\"received\":{},\"lost\":{},\"loss_ratio\":{:.6},\"duplicate\":{},\"late\":{},\"wrong_port\":{},\"latency\":{}}}",
        t.sent,
        t.expected,
        t.received,
        t.lost(),
        t.loss_ratio(),
        t.duplicate,
        t.unmatched,
        t.wrong_port,
        latency_json(&t.latency)
    )
}

fn flood_json(r: &Report) -> String {
    let all: Vec<String> = r
        .flood
        .iter()
        .zip(&r.opts.flood)
        .map(|(f, fl)| one_flood_json(f, fl))
        .collect();
    format!("[{}]", all.join(","))
}

fn one_flood_json(f: &FloodReport, fl: &Flood) -> String {
    let kinds: Vec<String> = fl
        .msg
        .kinds()
        .iter()
        .zip(&f.by_kind)
        .map(|(k, n)| format!("\"{k}\":{n}"))
        .collect();
    // What ptpproxy is expected to do with each kind (a drop reason of its status file, or
    // "forwarded.<class>"): malformed frames only.
    let expected: Vec<String> = if fl.msg == FloodMsg::Malformed {
        MALFORMED
            .iter()
            .map(|(k, reason)| format!("\"{k}\":\"{reason}\""))
            .collect()
    } else {
        Vec::new()
    };
    format!(
        "{{\"iface\":\"{}\",\"msg\":\"{}\",\"rate\":{},\"at_s\":{},\"for_s\":{},\"identities\":{},\"single_mac\":{},\"sent\":{},\"tx_errors\":{},\"elapsed_s\":{:.3},\"by_kind\":{{{}}},\"expected\":{{{}}},\"delay_req_at_master\":{},\"identities_at_master\":{},\"answered\":{}}}",
        esc(&fl.iface.to_string()),
        fl.msg.name(),
        fl.rate,
        fl.at_s,
        fl.for_s,
        fl.identities,
        fl.single_mac,
        f.sent,
        f.tx_errors,
        f.elapsed_s,
        kinds.join(","),
        expected.join(","),
        f.delay_req_at_master,
        f.identities_at_master,
        f.answered
    )
}

pub fn json(r: &Report) -> String {
    let o = &r.opts;
    let mut out = String::new();
    let ifaces: Vec<String> = o
        .downstream
        .iter()
        .map(|i| format!("\"{}\"", esc(&i.to_string())))
        .collect();
    let _ = writeln!(
        out,
        "{{\"options\":{{\"upstream\":\"{}\",\"downstream\":[{}],\"clients\":{},\"rate\":{},\"sync_rate\":{},\"announce_rate\":{},\"jitter\":{},\"foreign\":{},\"transport\":\"{}\",\"domain\":{},\"duration_s\":{},\"max_frames\":{},\"batch\":{},\"tap_every\":{},\"gap_ms\":{}}},",
        esc(&o.upstream.to_string()),
        ifaces.join(","),
        o.clients,
        o.rate,
        o.sync_rate,
        o.announce_rate,
        o.jitter,
        o.foreign,
        o.transport.name(),
        o.domain,
        o.duration_s,
        o.max_frames,
        o.batch,
        o.tap_every,
        o.gap_ns / 1_000_000
    );
    let _ = writeln!(
        out,
        "\"elapsed_s\":{:.3},\"offered_delay_req_per_s\":{:.1},\"total_sent\":{},\"stopped_by_max_frames\":{},",
        r.elapsed_s,
        r.delay_req.sent as f64 / r.elapsed_s.max(1e-9),
        r.total_sent(),
        r.stopped_by_max_frames
    );
    let _ = write!(
        out,
        "\"up\":{},\n\"down\":{},\n\"flows\":{{",
        total_json(&up(r)),
        total_json(&down(r))
    );
    for (i, (name, dir, f)) in flows(r).into_iter().enumerate() {
        let t = total(&[f]);
        let body = total_json(&t);
        let _ = write!(
            out,
            "{}\"{name}\":{{\"direction\":\"{dir}\",{}",
            if i == 0 { "" } else { "," },
            &body[1..]
        );
    }
    let _ = write!(
        out,
        "}},\n\"foreign\":{{\"delay_req\":{{\"sent\":{},\"leaked\":{}}},\"delay_resp\":{{\"sent\":{},\"leaked\":{}}}}},\n",
        r.foreign_req.sent, r.foreign_req.leaked, r.foreign_resp.sent, r.foreign_resp.leaked
    );
    let (own_min, own_med, own_max) = spread(r.clients.iter().map(|c| c.delay_resp_own).collect());
    let (oth_min, oth_med, oth_max) = spread(
        (0..r.clients.len())
            .map(|c| r.delay_resp_others(c))
            .collect(),
    );
    let _ = writeln!(
        out,
        "\"delay_resp_per_client\":{{\"own\":{{\"min\":{own_min},\"median\":{own_med},\"max\":{own_max}}},\"others\":{{\"min\":{oth_min},\"median\":{oth_med},\"max\":{oth_max}}}}},"
    );
    out.push_str("\"ports\":[");
    for (i, p) in r.ports.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"name\":\"{}\",\"role\":\"{}\",\"tx\":{},\"tx_errors\":{},\"rx\":{},\"taps\":{},\"ring_drops\":{},\"delay_resp_group\":{},\"delay_req_flooded\":{},\"other\":{},\"flood_rx\":{},\"flood_delay_resp\":{},\"first_rx_ns\":{},\"last_rx_ns\":{},\"max_gap_ms\":{:.1},\"gaps\":[{}]}}",
            if i == 0 { "" } else { "," },
            esc(&p.name),
            if i == 0 { "upstream" } else { "downstream" },
            p.tx,
            p.tx_errors,
            p.rx,
            p.taps,
            p.ring_drops,
            p.delay_resp_group,
            p.delay_req_flooded,
            p.other,
            p.flood_rx,
            p.flood_delay_resp,
            p.first_rx_ns,
            p.last_rx_ns,
            p.max_gap_ns as f64 / 1e6,
            p.gaps
                .iter()
                .map(|(a, b)| format!("[{a},{b}]"))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let _ = writeln!(out, "],\n\"flood\":{},", flood_json(r));
    let limits = r.generator_limits();
    let reasons: Vec<String> = limits.iter().map(|s| format!("\"{}\"", esc(s))).collect();
    let _ = writeln!(
        out,
        "\"generator\":{{\"cpu_s\":{:.3},\"cpu_share\":{:.3},\"late_sends\":{},\"max_lag_us\":{:.1},\"negative_latencies\":{},\"limited\":{},\"reasons\":[{}]}},",
        r.cpu_s,
        r.cpu_s / r.elapsed_s.max(1e-9),
        r.late_sends,
        us(r.max_lag_ns),
        r.negative,
        !limits.is_empty(),
        reasons.join(",")
    );
    out.push_str("\"clients\":[");
    for (c, k) in r.clients.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{{\"client\":{c},\"port\":{},\"delay_req_sent\":{},\"delay_resp_own\":{},\"delay_resp_others\":{}}}",
            if c == 0 { "" } else { "," },
            r.client_port(c),
            k.delay_req_sent,
            k.delay_resp_own,
            r.delay_resp_others(c)
        );
    }
    out.push_str("]}\n");
    out
}
