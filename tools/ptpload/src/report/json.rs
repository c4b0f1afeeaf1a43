//! The JSON for scripts: one object, one top-level group of fields per line, written with a
//! minimal field writer ([`Fields`]) so each object reads as its list of fields.
//!
//! Field names, their order and number formats are what the test scripts read: it must never
//! rename, reorder or reformat one without them.

use std::fmt::{Display, Write as _};

use super::{down, flows, per_client, total, up, us, Total};
use crate::flood::{Flood, FloodMsg, MALFORMED};
use crate::hist::Hist;
use crate::results::{FloodReport, PortCounts, Report};

/// The `"key":value` pairs of an object, comma-separated; values are JSON text already.
#[derive(Default)]
struct Fields(String);

impl Fields {
    fn add(mut self, key: &str, value: impl Display) -> Fields {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{key}\":{value}");
        self
    }

    fn obj(self) -> String {
        format!("{{{}}}", self.0)
    }
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

/// A JSON string.
fn string(s: &str) -> String {
    format!("\"{}\"", esc(s))
}

fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// A number with `digits` decimals.
fn fixed(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn latency_json(h: &Hist) -> String {
    Fields::default()
        .add("samples", h.count)
        .add("p50_us", fixed(us(h.quantile(0.5)), 2))
        .add("p99_us", fixed(us(h.quantile(0.99)), 2))
        .add("p999_us", fixed(us(h.quantile(0.999)), 2))
        .add("max_us", fixed(us(h.max), 2))
        .add("mean_us", fixed(us(h.mean()), 2))
        .obj()
}

/// The fields of a total, after those already in `f`.
fn total_fields(f: Fields, t: &Total) -> Fields {
    f.add("sent", t.sent)
        .add("expected", t.expected)
        .add("received", t.received)
        .add("lost", t.lost())
        .add("loss_ratio", fixed(t.loss_ratio(), 6))
        .add("duplicate", t.duplicate)
        .add("late", t.unmatched)
        .add("wrong_port", t.wrong_port)
        .add("latency", latency_json(&t.latency))
}

fn options_json(r: &Report) -> String {
    let o = &r.opts;
    Fields::default()
        .add("upstream", string(&o.upstream.to_string()))
        .add(
            "downstream",
            array(o.downstream.iter().map(|i| string(&i.to_string()))),
        )
        .add("clients", o.clients)
        .add("rate", o.rate)
        .add("sync_rate", o.sync_rate)
        .add("announce_rate", o.announce_rate)
        .add("jitter", o.jitter)
        .add("foreign", o.foreign)
        .add("transport", string(o.transport.name()))
        .add("domain", o.domain)
        .add("duration_s", o.duration_s)
        .add("max_frames", o.max_frames)
        .add("batch", o.batch)
        .add("tap_every", o.tap_every)
        .add("gap_ms", o.gap_ns / 1_000_000)
        .obj()
}

fn flows_json(r: &Report) -> String {
    flows(r)
        .into_iter()
        .fold(Fields::default(), |all, (name, dir, f)| {
            let one = Fields::default().add("direction", string(dir));
            all.add(name, total_fields(one, &total(&[f])).obj())
        })
        .obj()
}

fn master_json(r: &Report) -> String {
    let m = &r.master;
    Fields::default()
        .add("capacity_per_s", fixed(m.capacity, 1))
        .add("delay_req_seen", m.delay_req_seen)
        .add("refused", m.refused)
        .add("per_10ms_max", m.per_10ms_max)
        .add("per_10ms_p99", m.per_10ms_p99)
        .obj()
}

fn foreign_json(r: &Report) -> String {
    let (req, resp) = (&r.foreign_req, &r.foreign_resp);
    Fields::default()
        .add(
            "delay_req",
            Fields::default()
                .add("sent", req.sent)
                .add("leaked", req.leaked)
                .obj(),
        )
        .add(
            "delay_resp",
            Fields::default()
                .add("sent", resp.sent)
                .add("leaked", resp.leaked)
                .obj(),
        )
        .obj()
}

fn per_client_json(r: &Report) -> String {
    let [own, others] = per_client(r).map(|(min, median, max)| {
        Fields::default()
            .add("min", min)
            .add("median", median)
            .add("max", max)
            .obj()
    });
    Fields::default()
        .add("own", own)
        .add("others", others)
        .obj()
}

fn port_json(i: usize, p: &PortCounts) -> String {
    Fields::default()
        .add("name", string(&p.name))
        .add(
            "role",
            string(if i == 0 { "upstream" } else { "downstream" }),
        )
        .add("tx", p.tx)
        .add("tx_errors", p.tx_errors)
        .add("rx", p.rx)
        .add("taps", p.taps)
        .add("ring_drops", p.ring_drops)
        .add("delay_resp_group", p.delay_resp_group)
        .add("delay_req_flooded", p.delay_req_flooded)
        .add("other", p.other)
        .add("flood_rx", p.flood_rx)
        .add("flood_delay_resp", p.flood_delay_resp)
        .add("first_rx_ns", p.first_rx_ns)
        .add("last_rx_ns", p.last_rx_ns)
        .add("max_gap_ms", fixed(p.max_gap_ns as f64 / 1e6, 1))
        .add(
            "gaps",
            array(p.gaps.iter().map(|(a, b)| format!("[{a},{b}]"))),
        )
        .obj()
}

fn flood_json(f: &FloodReport, fl: &Flood) -> String {
    let kinds = fl.msg.kinds().iter().zip(&f.by_kind);
    let by_kind = kinds.fold(Fields::default(), |all, (k, n)| all.add(k, n));
    // What ptpproxy is expected to do with each kind (a drop reason of its status file, or
    // "forwarded.<class>"): malformed frames only.
    let mut expected = Fields::default();
    if fl.msg == FloodMsg::Malformed {
        for (k, reason) in MALFORMED {
            expected = expected.add(k, format!("\"{reason}\""));
        }
    }
    Fields::default()
        .add("iface", string(&fl.iface.to_string()))
        .add("msg", string(fl.msg.name()))
        .add("rate", fl.rate)
        .add("at_s", fl.at_s)
        .add("for_s", fl.for_s)
        .add("identities", fl.identities)
        .add("single_mac", fl.single_mac)
        .add("sent", f.sent)
        .add("tx_errors", f.tx_errors)
        .add("elapsed_s", fixed(f.elapsed_s, 3))
        .add("by_kind", by_kind.obj())
        .add("expected", expected.obj())
        .add("delay_req_at_master", f.delay_req_at_master)
        .add("identities_at_master", f.identities_at_master)
        .add("answered", f.answered)
        .obj()
}

fn generator_json(r: &Report) -> String {
    let limits = r.generator_limits();
    Fields::default()
        .add("cpu_s", fixed(r.cpu_s, 3))
        .add("cpu_share", fixed(r.cpu_s / r.elapsed_s.max(1e-9), 3))
        .add("late_sends", r.late_sends)
        .add("max_lag_us", fixed(us(r.max_lag_ns), 1))
        .add("negative_latencies", r.negative)
        .add("limited", !limits.is_empty())
        .add("reasons", array(limits.iter().map(|s| string(s))))
        .obj()
}

/// One client per line.
fn clients_json(r: &Report) -> String {
    let clients = r.clients.iter().enumerate().map(|(c, k)| {
        let one = Fields::default()
            .add("client", c)
            .add("port", r.client_port(c))
            .add("delay_req_sent", k.delay_req_sent)
            .add("delay_resp_own", k.delay_resp_own)
            .add("delay_resp_others", r.delay_resp_others(c));
        format!("\n{}", one.obj())
    });
    array(clients)
}

pub fn json(r: &Report) -> String {
    let summary = Fields::default()
        .add("elapsed_s", fixed(r.elapsed_s, 3))
        .add(
            "offered_delay_req_per_s",
            fixed(r.delay_req.sent as f64 / r.elapsed_s.max(1e-9), 1),
        )
        .add("total_sent", r.total_sent())
        .add("stopped_by_max_frames", r.stopped_by_max_frames);
    let floods = r.flood.iter().zip(&r.opts.flood);
    // One group of top-level fields per line.
    let lines = [
        Fields::default().add("options", options_json(r)),
        summary,
        Fields::default().add("up", total_fields(Fields::default(), &up(r)).obj()),
        Fields::default().add("down", total_fields(Fields::default(), &down(r)).obj()),
        Fields::default().add("flows", flows_json(r)),
        Fields::default().add("foreign", foreign_json(r)),
        Fields::default().add("delay_resp_per_client", per_client_json(r)),
        Fields::default().add(
            "ports",
            array(r.ports.iter().enumerate().map(|(i, p)| port_json(i, p))),
        ),
        Fields::default().add("flood", array(floods.map(|(f, fl)| flood_json(f, fl)))),
        Fields::default().add("master", master_json(r)),
        Fields::default().add("generator", generator_json(r)),
        Fields::default().add("clients", clients_json(r)),
    ];
    let lines: Vec<String> = lines.into_iter().map(|f| f.0).collect();
    format!("{{{}}}\n", lines.join(",\n"))
}
