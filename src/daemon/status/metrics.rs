//! The metrics file (`metrics_file`): the status file's figures in the Prometheus text
//! exposition format (version 0.0.4), which node_exporter's textfile collector reads, so that a
//! fleet of switches is scraped without a listening socket on any of them.
//!
//! Written from the same [`Snapshot`] and the same objects as the status file, right after it:
//! every counter of the status file becomes a `ptpproxy_*_total` counter, labelled by `port`,
//! `message`, `reason` (or `delivery`, `domain`) where the status file has one object per
//! label; figures that go down (clients, capacities, means, ages) are gauges, in seconds where
//! the status file counts micro- or nanoseconds. Per-client rows stay in the status file only:
//! a label per client identity would make a new series for every client ever seen. This module
//! never runs per frame and never decides anything; it only formats.

use super::schema::Counters;
use super::{head, port_row, totals, Snapshot};
use ptpproxy::time::Instant;
use ptpproxy::upstream::{ClockId, Upstream};
use std::fmt::{self, Write as _};

/// Prefix of every metric name.
const PREFIX: &str = "ptpproxy_";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample's value: a count, or seconds.
#[derive(Clone, Copy)]
enum Value {
    Count(u64),
    Seconds(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            // Rust prints f64 without an exponent, which the format accepts.
            Value::Seconds(s) => write!(f, "{s}"),
        }
    }
}

/// A label value with `\`, `"` and newlines escaped as the format requires.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The `# HELP` and `# TYPE` lines of a family (every sample of it follows them at once).
fn family<W: fmt::Write + ?Sized>(out: &mut W, name: &str, kind: Kind, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {PREFIX}{name} {help}")?;
    writeln!(out, "# TYPE {PREFIX}{name} {}", kind.name())
}

fn sample<W: fmt::Write + ?Sized>(
    out: &mut W,
    name: &str,
    labels: &[(&str, &str)],
    value: Value,
) -> fmt::Result {
    write!(out, "{PREFIX}{name}")?;
    for (i, (k, v)) in labels.iter().enumerate() {
        let sep = if i == 0 { '{' } else { ',' };
        write!(out, "{sep}{k}=\"{}\"", Escaped(v))?;
    }
    if !labels.is_empty() {
        out.write_char('}')?;
    }
    writeln!(out, " {value}")
}

/// A family of one sample.
fn single<W: fmt::Write + ?Sized>(
    out: &mut W,
    name: &str,
    kind: Kind,
    help: &str,
    value: Value,
) -> fmt::Result {
    family(out, name, kind, help)?;
    sample(out, name, &[], value)
}

/// How a figure of the status file's `correction`, `io` and `log` objects is exposed: its
/// metric name (without the prefix and group), kind and value. Names ending in `_ns` or `_us`
/// are gauges in seconds; the listed figures are gauges; every other one is a counter.
fn exposed(name: &str, v: u64) -> (String, Kind, Value) {
    const GAUGES: [&str; 8] = [
        "pending",
        "capacity",
        "wakeups_per_s",
        "frames_per_wakeup",
        "syscalls_per_1000_frames",
        "syslog_connected",
        "lines_waiting",
        "lines_dropped_unreported",
    ];
    for (unit, scale) in [("_ns", 1e-9), ("_us", 1e-6)] {
        if let Some(base) = name.strip_suffix(unit) {
            let value = Value::Seconds(v as f64 * scale);
            return (format!("{base}_seconds"), Kind::Gauge, value);
        }
    }
    if GAUGES.contains(&name) {
        (name.to_owned(), Kind::Gauge, Value::Count(v))
    } else {
        (format!("{name}_total"), Kind::Counter, Value::Count(v))
    }
}

/// One family per figure of a status-file object (`group`: its name).
fn figures<W: fmt::Write + ?Sized>(out: &mut W, group: &str, c: &Counters<'_>) -> fmt::Result {
    for (name, v) in &c.0 {
        let (metric, kind, value) = exposed(name, *v);
        let metric = format!("{group}_{metric}");
        let help = format!("The status file's {group}.{name}.");
        single(out, &metric, kind, &help, value)?;
    }
    Ok(())
}

/// One counter family labelled `label` with one sample per entry of `c`.
fn labelled<W: fmt::Write + ?Sized>(
    out: &mut W,
    name: &str,
    help: &str,
    label: &str,
    c: &Counters<'_>,
) -> fmt::Result {
    family(out, name, Kind::Counter, help)?;
    for (k, v) in &c.0 {
        sample(out, name, &[(label, k)], Value::Count(*v))?;
    }
    Ok(())
}

/// Write the whole metrics file for `s`.
pub fn render<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    general(out, s)?;
    ports(out, s)?;
    let t = totals(s);
    labelled(
        out,
        "forwarded_total",
        "PTP messages relayed, by message type (once per frame, whatever the number of ports).",
        "message",
        &t.forwarded,
    )?;
    labelled(
        out,
        "delay_resp_total",
        "Delay_Resp relayed, by how: to the client's port (steered), also to its MAC (unicast), to every port (flooded).",
        "delivery",
        &t.delay_resp,
    )?;
    labelled(
        out,
        "dropped_total",
        "Frames not relayed, by reason (every dropped frame has exactly one).",
        "reason",
        &t.dropped,
    )?;
    if t.correction_mode != "none" {
        figures(out, "correction", &t.correction)?;
    }
    figures(out, "io", &t.io)?;
    figures(out, "log", &t.log)?;
    upstream(out, s)
}

/// Who writes, since when, and the client table.
fn general<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    let h = head(s);
    family(
        out,
        "info",
        Kind::Gauge,
        "Always 1: the version, board profile and modes as labels.",
    )?;
    let labels = [
        ("version", h.version),
        ("board", h.board),
        ("delay_resp", h.delay_resp_mode),
        ("correction", super::correction_name(s.config.correction)),
    ];
    sample(out, "info", &labels, Value::Count(1))?;
    let c = &h.clients;
    let figures = [
        (
            "uptime_seconds",
            Kind::Gauge,
            "Seconds since ptpproxy started.",
            h.uptime_s,
        ),
        (
            "clients",
            Kind::Gauge,
            "Clients in the client table.",
            c.count,
        ),
        (
            "clients_capacity",
            Kind::Gauge,
            "Size of the client table (the board profile's max_clients).",
            c.capacity,
        ),
        (
            "clients_learned_total",
            Kind::Counter,
            "Clients added to the table.",
            c.learned,
        ),
        (
            "clients_aged_total",
            Kind::Counter,
            "Clients removed after client_timeout_s of silence.",
            c.aged,
        ),
        (
            "clients_moved_total",
            Kind::Counter,
            "Known clients heard on another port than before.",
            c.moved,
        ),
        (
            "udp_checksums_completed_total",
            Kind::Counter,
            "UDP checksums left for the NIC by the sender, completed before relaying.",
            h.udp_checksums_completed,
        ),
    ];
    for (name, kind, help, v) in figures {
        single(out, name, kind, help, Value::Count(v))?;
    }
    Ok(())
}

/// Per port, metric by metric (the format wants a family's samples together).
fn ports<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    let n = s.captures.len().min(s.senders.len());
    let bridges: Vec<String> = (0..n)
        .map(|i| s.bridges.describe(&s.captures[i].name))
        .collect();
    let rows: Vec<_> = (0..n).map(|i| port_row(s, i, &bridges[i])).collect();
    family(
        out,
        "port_up",
        Kind::Gauge,
        "1 while the port's interface is up and open.",
    )?;
    for r in &rows {
        let labels = [("port", r.name), ("role", r.role)];
        sample(out, "port_up", &labels, Value::Count(u64::from(r.up)))?;
    }
    type Field = fn(&super::schema::PortRow<'_>) -> u64;
    let fields: [(&str, &str, Field); 5] = [
        (
            "port_rx_frames_total",
            "PTP frames captured on the port.",
            |r| r.rx,
        ),
        ("port_tx_frames_total", "Frames sent on the port.", |r| r.tx),
        (
            "port_tx_errors_total",
            "Frames the port failed to send.",
            |r| r.tx_errors,
        ),
        (
            "port_kernel_drops_total",
            "Frames the kernel dropped because the port's capture ring was full.",
            |r| r.kernel_drops,
        ),
        (
            "port_opens_total",
            "Times the port was opened (more than 1: it went away and came back).",
            |r| r.opens,
        ),
    ];
    for (name, help, field) in fields {
        family(out, name, Kind::Counter, help)?;
        for r in &rows {
            sample(out, name, &[("port", r.name)], Value::Count(field(r)))?;
        }
    }
    let name = "port_dropped_total";
    family(
        out,
        name,
        Kind::Counter,
        "Frames not relayed, by ingress port and reason (only the reasons the port saw).",
    )?;
    for r in &rows {
        for (reason, v) in &r.dropped.0 {
            let labels = [("port", r.name), ("reason", *reason)];
            sample(out, name, &labels, Value::Count(*v))?;
        }
    }
    Ok(())
}

/// The grandmaster side per domain: ages, quality, identity, changes.
fn upstream<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    let domains: Vec<(String, &Upstream)> = s
        .proxy
        .upstream()
        .iter()
        .map(|u| (u.domain.to_string(), u))
        .collect();
    type Age = fn(&Upstream) -> Option<Instant>;
    let ages: [(&str, &str, Age); 3] = [
        (
            "upstream_last_sync_age_seconds",
            "Seconds since the last Sync on the upstream port (absent: none yet).",
            |u| u.last_sync,
        ),
        (
            "upstream_last_follow_up_age_seconds",
            "Seconds since the last Follow_Up on the upstream port (absent: none yet).",
            |u| u.last_follow_up,
        ),
        (
            "upstream_last_announce_age_seconds",
            "Seconds since the last Announce on the upstream port (absent: none yet).",
            |u| u.last_announce,
        ),
    ];
    for (name, help, at) in ages {
        family(out, name, Kind::Gauge, help)?;
        for (d, u) in &domains {
            if let Some(t) = at(u) {
                let age = s.now.saturating_since(t).0 as f64 * 1e-9;
                sample(out, name, &[("domain", d)], Value::Seconds(age))?;
            }
        }
    }
    grandmaster(out, &domains)?;
    let name = "upstream_grandmaster_changes_total";
    family(
        out,
        name,
        Kind::Counter,
        "Announces naming another grandmaster than the one before.",
    )?;
    for (d, u) in &domains {
        let v = Value::Count(u.grandmaster_changes);
        sample(out, name, &[("domain", d)], v)?;
    }
    Ok(())
}

/// The grandmaster's identity (an info metric) and the quality its last Announce gave.
fn grandmaster<W: fmt::Write + ?Sized>(
    out: &mut W,
    domains: &[(String, &Upstream)],
) -> fmt::Result {
    let known: Vec<_> = domains
        .iter()
        .filter_map(|(d, u)| Some((d, u.grandmaster?, u.master?)))
        .collect();
    let name = "upstream_grandmaster_info";
    family(
        out,
        name,
        Kind::Gauge,
        "Always 1: the grandmaster of the last Announce and the master port that sent it.",
    )?;
    for (d, gm, master) in &known {
        let (id, port) = (ClockId(gm.identity).to_string(), master.to_string());
        let labels = [
            ("domain", d.as_str()),
            ("grandmaster_identity", &id),
            ("master_port", &port),
        ];
        sample(out, name, &labels, Value::Count(1))?;
    }
    type Field = fn(&ptpproxy::upstream::Grandmaster) -> u64;
    let fields: [(&str, &str, Field); 6] = [
        ("upstream_clock_class", "The grandmaster's clockClass (6: locked to a primary reference; 248: default).", |g| g.clock_class.into()),
        ("upstream_clock_accuracy", "The grandmaster's clockAccuracy (IEEE 1588 Table 5 code; 0xFE: unknown).", |g| g.clock_accuracy.into()),
        ("upstream_offset_scaled_log_variance", "The grandmaster's offsetScaledLogVariance.", |g| g.offset_scaled_log_variance.into()),
        ("upstream_priority1", "The grandmaster's priority1.", |g| g.priority1.into()),
        ("upstream_priority2", "The grandmaster's priority2.", |g| g.priority2.into()),
        ("upstream_steps_removed", "stepsRemoved of the last Announce: boundary clocks between the grandmaster and ptpproxy.", |g| g.steps_removed.into()),
    ];
    for (name, help, field) in fields {
        family(out, name, Kind::Gauge, help)?;
        for (d, gm, _) in &known {
            sample(
                out,
                name,
                &[("domain", d.as_str())],
                Value::Count(field(gm)),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_in_micro_and_nanoseconds_become_seconds() {
        let (name, kind, v) = exposed("residence_max_ns", 1_500);
        assert_eq!(
            (name.as_str(), kind == Kind::Gauge),
            ("residence_max_seconds", true)
        );
        assert_eq!(v.to_string(), "0.0000015");
        let (name, kind, v) = exposed("hold_mean_us", 250);
        assert_eq!(
            (name.as_str(), kind == Kind::Gauge),
            ("hold_mean_seconds", true)
        );
        assert_eq!(v.to_string(), "0.00025");
        let (name, kind, _) = exposed("one_step", 3);
        assert_eq!(
            (name.as_str(), kind == Kind::Counter),
            ("one_step_total", true)
        );
        let (name, kind, _) = exposed("lines_waiting", 3);
        assert_eq!(
            (name.as_str(), kind == Kind::Gauge),
            ("lines_waiting", true)
        );
    }

    #[test]
    fn samples_escape_their_label_values() {
        let mut out = String::new();
        sample(
            &mut out,
            "x_total",
            &[("port", "a\"b\\c\nd"), ("reason", "loop")],
            Value::Count(7),
        )
        .unwrap();
        assert_eq!(
            out,
            "ptpproxy_x_total{port=\"a\\\"b\\\\c\\nd\",reason=\"loop\"} 7\n"
        );
        out.clear();
        single(
            &mut out,
            "clients",
            Kind::Gauge,
            "Clients.",
            Value::Count(2),
        )
        .unwrap();
        assert_eq!(
            out,
            "# HELP ptpproxy_clients Clients.\n# TYPE ptpproxy_clients gauge\nptpproxy_clients 2\n"
        );
    }
}
