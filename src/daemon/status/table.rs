//! `ptpproxy status`: the status file read back through its schema and printed as tables.

use super::schema::{Counters, Head, Lists, Totals};
use std::fmt::Write as _;

fn counters_line(out: &mut String, label: &str, c: &Counters<'_>, skip_zero: bool) {
    let _ = write!(out, "{label:<11}");
    let mut any = false;
    for (k, v) in &c.0 {
        if !(skip_zero && *v == 0) {
            let _ = write!(out, " {k} {v}");
            any = true;
        }
    }
    if !any {
        out.push_str(" none");
    }
    out.push('\n');
}

/// The ports in a bridge, one line each, if any is: what the bridge filter covers.
fn bridging(out: &mut String, l: &Lists<'_>) {
    let bridged: Vec<_> = l.ports.0.iter().filter(|p| !p.bridge.is_empty()).collect();
    if bridged.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{:<16} {:<40} PTP_FILTER", "PORT", "BRIDGE");
    for p in bridged {
        let filter = match (p.ptp_filter, p.ptp_filter_kind) {
            (false, _) => "none".to_owned(),
            (true, "") => "installed".to_owned(),
            (true, kind) => format!("installed ({kind})"),
        };
        let _ = writeln!(out, "{:<16} {:<40} {filter}", p.name, p.bridge);
    }
}

/// Format a status file's contents as tables; an error names what is wrong with the file.
pub fn format_table(json: &[u8]) -> Result<String, String> {
    let bad = |e: serde_json_core::de::Error| format!("not a ptpproxy status file: {e}");
    let (s, _): (Head, usize) = serde_json_core::from_slice(json).map_err(bad)?;
    let (t, _): (Totals, usize) = serde_json_core::from_slice(json).map_err(bad)?;
    let (l, _): (Lists, usize) = serde_json_core::from_slice(json).map_err(bad)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ptpproxy {} (board {}), pid {}, up {} s, config {}, delay_resp {}",
        s.version, s.board, s.pid, s.uptime_s, s.config, s.delay_resp_mode
    );
    let c = &s.clients;
    let _ = writeln!(
        out,
        "clients    {} of {} (learned {}, aged {}, moved {})",
        c.count, c.capacity, c.learned, c.aged, c.moved
    );
    let upstream = l.ports.0.first().map_or("?", |p| p.name);
    super::upstream::format(&mut out, json, upstream)?;
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:>4} {:>12} {:>12} {:>9} {:>12}",
        "PORT", "ROLE", "UP", "RX", "TX", "TX_ERR", "KERNEL_DROP"
    );
    for p in &l.ports.0 {
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>4} {:>12} {:>12} {:>9} {:>12}",
            p.name,
            p.role,
            if p.up { "yes" } else { "no" },
            p.rx,
            p.tx,
            p.tx_errors,
            p.kernel_drops
        );
    }
    bridging(&mut out, &l);
    out.push('\n');
    counters_line(&mut out, "forwarded", &t.forwarded, false);
    counters_line(&mut out, "delay_resp", &t.delay_resp, false);
    let _ = writeln!(out, "udp_checksums_completed {}", s.udp_checksums_completed);
    counters_line(&mut out, "dropped", &t.dropped, true);
    for p in &l.ports.0 {
        if !p.dropped.0.is_empty() {
            counters_line(&mut out, &format!("  on {}", p.name), &p.dropped, true);
        }
    }
    if t.correction_mode != "none" {
        counters_line(
            &mut out,
            &format!("correction ({})", t.correction_mode),
            &t.correction,
            false,
        );
    }
    if !t.upstream_pacing.0.is_empty() {
        counters_line(&mut out, "pacing", &t.upstream_pacing, false);
    }
    counters_line(&mut out, "io", &t.io, false);
    if !t.log.0.is_empty() {
        counters_line(&mut out, "log", &t.log, false);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<24} {:<16} {:<17} {:>7} {:>10} {:>10} {:>5}",
        "CLIENT", "PORT", "MAC", "IDLE_S", "DELAY_REQ", "DELAY_RESP", "MOVED"
    );
    for r in &l.client_table.0 {
        let _ = writeln!(
            out,
            "{:<24} {:<16} {:<17} {:>7} {:>10} {:>10} {:>5}",
            r.identity, r.port, r.mac, r.idle_s, r.delay_req, r.delay_resp, r.moved
        );
    }
    Ok(out)
}
