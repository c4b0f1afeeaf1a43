//! The status file: a JSON snapshot of ports, counters and the client table, rewritten
//! atomically (write a temporary file, then rename) every `status_interval_s` and at exit; and
//! `ptpproxy status`, which reads it back and prints it as tables ([`table`]). Both directions
//! go through the one schema of [`schema`].

pub mod metrics;
pub mod schema;
pub mod stale;
pub mod table;
pub mod upstream;

pub use table::format_table;

use super::capture::Capture;
use super::sender::Sender;
use ptpproxy::board;
use ptpproxy::config::{Config, Correction, DelayRespMode};
use ptpproxy::proxy::Proxy;
use ptpproxy::stats::{DropReason, Forwarded};
use ptpproxy::time::Instant;
use schema::{ClientRow, ClientsSummary, Counters, Head, PortRow, Totals, CLIENT_TABLE, PORTS};
use serde::Serialize;
use std::fmt::Write as _;
use std::{fmt, fs, io, path::Path};

pub fn mode_name(m: DelayRespMode) -> &'static str {
    match m {
        DelayRespMode::Steer => "steer",
        DelayRespMode::Unicast => "unicast",
        DelayRespMode::Flood => "flood",
    }
}

pub fn correction_name(c: Correction) -> &'static str {
    match c {
        Correction::None => "none",
        Correction::Residence => "residence",
    }
}

/// What the snapshot is made of.
pub struct Snapshot<'a> {
    pub config: &'a Config,
    pub config_path: &'a str,
    pub uptime_s: u64,
    pub now: Instant,
    pub proxy: &'a Proxy,
    /// Both sides of each port, by port index.
    pub captures: &'a [Capture],
    pub senders: &'a [Sender],
    /// The loop's batching figures, by name ([`super::Daemon::io_report`]).
    pub io: super::IoReport,
    /// Whether syslog takes the log's lines, and how many it did not.
    pub log: super::log::SyslogStats,
    /// The ports' bridging and the bridge filter.
    pub bridges: &'a super::bridge::Bridges,
    /// The pcapng dump's counters by name ([`super::dump::Dump::report`]).
    pub dump: [(&'static str, u64); 7],
}

/// The largest single object written: the head (a configuration path of 255 bytes, each
/// escaped to at most 6) and the totals (every counter by name) fit with room to spare.
const OBJECT_MAX: usize = 4096;

/// Write `value` as JSON into `out` through a stack buffer; `braces: false` drops the object's
/// own braces, so its fields continue the object being written.
fn put<T: Serialize, W: fmt::Write + ?Sized>(out: &mut W, value: &T, braces: bool) -> fmt::Result {
    let mut buf = [0u8; OBJECT_MAX];
    let n = serde_json_core::to_slice(value, &mut buf).map_err(|_| fmt::Error)?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?;
    let text = if braces {
        text
    } else {
        &text[1..text.len() - 1]
    };
    out.write_str(text)
}

/// Write the snapshot to `out`, object by object: the status file is streamed, so memory does
/// not grow with the client table.
pub fn render<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    out.write_char('{')?;
    put(out, &head(s), false)?;
    out.write_str(",\n")?;
    upstream::write(out, s)?;
    write!(out, ",\n\"{PORTS}\":[")?;
    for i in 0..s.captures.len().min(s.senders.len()) {
        let bridge = s.bridges.describe(&s.captures[i].name);
        out.write_str(if i == 0 {
            "
 "
        } else {
            ",
 "
        })?;
        put(out, &port_row(s, i, &bridge), true)?;
    }
    out.write_str("],\n")?;
    put(out, &totals(s), false)?;
    write!(out, ",\n\"{CLIENT_TABLE}\":[")?;
    client_rows(out, s)?;
    out.write_str("]}\n")
}

/// Port `i`'s row (`i` below both `captures` and `senders`' lengths); `bridge` is its place in
/// a Linux bridge.
fn port_row<'a>(s: &'a Snapshot<'_>, i: usize, bridge: &'a str) -> PortRow<'a> {
    let stats = s.proxy.stats();
    let (p, tx) = (&s.captures[i], &s.senders[i]);
    // Only the reasons this port saw: where a flood or a rogue comes from, and why.
    let dropped = DropReason::ALL
        .iter()
        .map(|r| (r.name(), stats.dropped_on(i, *r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    PortRow {
        name: &p.name,
        role: if i == 0 { "upstream" } else { "downstream" },
        up: p.is_up(),
        rx: stats.rx[i],
        tx: tx.tx_count,
        tx_errors: tx.tx_errors,
        kernel_drops: p.kernel_drops,
        opens: p.opens,
        bridge,
        ptp_filter: s.bridges.filtered(&p.name),
        ptp_filter_kind: s.bridges.filter_kind(&p.name),
        dropped: Counters(dropped),
    }
}

fn head<'a>(s: &'a Snapshot<'_>) -> Head<'a> {
    let stats = s.proxy.stats();
    let clients = s.proxy.clients();
    Head {
        version: env!("CARGO_PKG_VERSION"),
        board: board::NAME,
        pid: std::process::id(),
        status_interval_s: s.config.status_interval_s,
        uptime_s: s.uptime_s,
        config: s.config_path,
        delay_resp_mode: mode_name(s.config.delay_resp),
        clients: ClientsSummary {
            count: clients.len() as u64,
            capacity: clients.capacity() as u64,
            learned: stats.clients_learned,
            aged: stats.clients_aged,
            moved: stats.clients_moved,
        },
        udp_checksums_completed: stats.udp_checksums_completed,
    }
}

fn totals<'a>(s: &'a Snapshot<'_>) -> Totals<'a> {
    let stats = s.proxy.stats();
    let (pending, capacity) = s.proxy.pending();
    let mut correction = vec![("pending", pending as u64), ("capacity", capacity as u64)];
    correction.extend(s.proxy.correction_stats().named());
    Totals {
        forwarded: Counters(
            Forwarded::ALL
                .iter()
                .map(|f| (f.name(), stats.forwarded(*f)))
                .collect(),
        ),
        delay_resp: Counters(vec![
            ("steered", stats.delay_resp_steered),
            ("unicast", stats.delay_resp_unicast),
            ("flooded", stats.delay_resp_flooded),
        ]),
        dropped: Counters(
            DropReason::ALL
                .iter()
                .map(|r| (r.name(), stats.dropped(*r)))
                .collect(),
        ),
        correction_mode: correction_name(s.config.correction),
        correction: Counters(correction),
        io: Counters(s.io.to_vec()),
        log: Counters(vec![
            ("syslog_connected", u64::from(s.log.connected)),
            ("syslog_connects", s.log.connects),
            ("lines_waiting", s.log.waiting),
            ("lines_dropped", s.log.dropped),
            ("lines_dropped_unreported", s.log.unreported),
        ]),
        upstream_pacing: Counters(pacing_counters(s.config, s.proxy)),
        dump: Counters(s.dump.to_vec()),
    }
}

/// The pacing's figures, the configured rate and hold first; none without pacing.
pub fn pacing_counters(config: &Config, proxy: &Proxy) -> Vec<(&'static str, u64)> {
    let (Some(rate), Some(stats)) = (config.upstream_max_delay_req_rate, proxy.pacing_stats())
    else {
        return Vec::new();
    };
    let mut v = vec![
        ("rate", u64::from(rate)),
        ("hold_ms", u64::from(config.max_delay_req_hold_ms)),
        ("queue_capacity", board::DELAY_REQ_QUEUE as u64),
    ];
    v.extend(stats.named());
    v
}

/// The client table, one row at a time.
fn client_rows<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    for (i, (id, c)) in s.proxy.clients().iter().enumerate() {
        let (mut identity, mut mac) =
            (heapless::String::<40>::new(), heapless::String::<24>::new());
        write!(identity, "{id}")?;
        write!(mac, "{}", c.mac)?;
        let row = ClientRow {
            identity: &identity,
            port: s
                .captures
                .get(c.port.index())
                .map_or("?", |p| p.name.as_str()),
            mac: &mac,
            idle_s: s.now.saturating_since(c.last_seen).as_secs(),
            delay_req: u64::from(c.delay_req),
            delay_resp: u64::from(c.delay_resp),
            moved: u64::from(c.moved),
        };
        out.write_str(if i == 0 { "\n " } else { ",\n " })?;
        put(out, &row, true)?;
    }
    Ok(())
}

/// Replace `path` with what `fill` writes, atomically: readers see the old or the new file,
/// never half. The text goes through a small buffer straight into the temporary file.
pub fn write_atomically<F>(path: &str, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn fmt::Write) -> fmt::Result,
{
    let path = Path::new(path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut sink = Sink {
        out: io::BufWriter::with_capacity(8192, fs::File::create(&tmp)?),
        error: None,
    };
    let formatted = fill(&mut sink);
    if let Some(e) = sink.error {
        return Err(e);
    }
    formatted.map_err(|_| io::Error::other("formatting the status failed"))?;
    sink.out
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    fs::rename(&tmp, path)
}

/// `fmt::Write` into a buffered file, keeping the first I/O error (`fmt::Error` carries none).
struct Sink {
    out: io::BufWriter<fs::File>,
    error: Option<io::Error>,
}

impl fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        use std::io::Write as _;
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.error.get_or_insert(e);
            fmt::Error
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::port::PortId;
    use ptpproxy::wire::{ptp, MessageRepr, PortIdentity, PtpFrameRepr};

    /// An L2 Delay_Req from `mac` (clockIdentity derived from it, like ptp4l does).
    fn delay_req(mac: [u8; 6]) -> Vec<u8> {
        let client = PortIdentity {
            clock_identity: [mac[0], mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]],
            port_number: 1,
        };
        let repr = PtpFrameRepr::l2(MessageRepr::delay_req(client, 0, ptp::Timestamp::default()));
        let mut f = vec![0u8; repr.buffer_len()];
        repr.emit(&mut f);
        f
    }

    #[test]
    fn the_status_file_reads_back_as_tables() {
        let config = Config::parse(
            br#"{"upstream":"eth0","downstream":["lan1","lan\"2"],"delay_resp":"unicast"}"#,
        );
        // Names with quotes are rejected by the config; use plain ones.
        assert!(config.is_err());
        let config = Config::parse(
            br#"{"upstream":"eth0","downstream":["lan1","lan2"],"delay_resp":"unicast","correction":"none"}"#,
        )
        .unwrap();
        let mut proxy = Proxy::with_pending_capacity(&config, Instant(0), 3, 16);
        let mut scratch = vec![0u8; board::SNAPLEN];
        let t = ptpproxy::time::Timestamp(0);
        let _ = proxy.handle_frame(
            Instant(1),
            PortId(1),
            &delay_req([2, 0, 0, 0, 1, 1]),
            t,
            &mut scratch,
        );
        let _ = proxy.handle_frame(
            Instant(2),
            PortId(2),
            &delay_req([2, 0, 0, 0, 2, 1]),
            t,
            &mut scratch,
        );
        let _ = proxy.handle_frame(
            Instant(3),
            PortId(0),
            &delay_req([2, 0, 0, 0, 9, 9]),
            t,
            &mut scratch,
        );
        // The grandmaster: a Sync at 1 s, an Announce at 1.5 s (clockClass 6), on the upstream.
        let gm = PortIdentity {
            clock_identity: [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0xff],
            port_number: 1,
        };
        let mut body = ptp::AnnounceBody::new(gm.clock_identity);
        body.grandmaster_clock_quality.clock_class = 6;
        let sync = PtpFrameRepr::l2(MessageRepr::sync(gm, 1, ptp::Timestamp::default()));
        let announce = PtpFrameRepr::l2(MessageRepr::announce(gm, 1, body));
        for (at, repr) in [(1_000_000_000, sync), (1_500_000_000, announce)] {
            let mut f = vec![0u8; repr.buffer_len()];
            repr.emit(&mut f);
            let _ = proxy.handle_frame(Instant(at), PortId(0), &f, t, &mut scratch);
        }
        let captures: Vec<Capture> = config
            .port_names()
            .map(|n| Capture::new(n, false))
            .collect();
        let senders: Vec<Sender> = captures.iter().map(|_| Sender::new()).collect();
        use crate::daemon::bridge::{detect::Bridging, Bridges};
        let bridges = Bridges::reported(
            vec![
                ("eth0".into(), Bridging::Standalone),
                (
                    "lan1".into(),
                    Bridging::Member {
                        bridge: "br0".into(),
                        offloaded: false,
                    },
                ),
                (
                    "lan2".into(),
                    Bridging::Member {
                        bridge: "br0".into(),
                        offloaded: false,
                    },
                ),
            ],
            &["lan1", "lan2"],
            crate::daemon::bridge::Kind::Nftables,
        );
        let snap = Snapshot {
            config: &config,
            config_path: "/etc/ptp\"proxy/config.json",
            uptime_s: 7,
            now: Instant(5_000_000_000),
            proxy: &proxy,
            captures: &captures,
            senders: &senders,
            io: [
                ("wakeups", 12),
                ("frames", 340),
                ("a", 0),
                ("b", 0),
                ("c", 0),
                ("d", 0),
                ("e", 0),
                ("f", 0),
                ("g", 0),
                ("h", 0),
                ("i", 0),
            ],
            log: crate::daemon::log::SyslogStats {
                connected: true,
                connects: 2,
                waiting: 0,
                dropped: 5,
                unreported: 0,
            },
            bridges: &bridges,
            dump: crate::daemon::dump::Dump::new().report(),
        };
        let mut out = String::new();
        render(&mut out, &snap).unwrap();
        let table = format_table(out.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{out}"));
        // The quote is escaped in the JSON (which stays valid) and shown as written there.
        assert!(
            table.contains(r#"up 7 s, config /etc/ptp\"proxy/config.json, delay_resp unicast"#),
            "{table}"
        );
        assert!(table.contains("clients    2 of"), "{table}");
        assert!(table.contains("delay_req_from_upstream 1"), "{table}");
        assert!(
            table.contains("  on eth0   delay_req_from_upstream 1\n"),
            "{table}"
        );
        assert!(!table.contains("  on lan1"), "{table}");
        assert!(!table.contains("correction"), "{table}");
        assert!(table.contains("delay_req 2"), "{table}");
        assert!(
            table.contains("io          wakeups 12 frames 340"),
            "{table}"
        );
        let lan2 = table
            .lines()
            .find(|l| l.starts_with("020000.fffe.000201-1"))
            .unwrap();
        assert!(
            lan2.contains("lan2") && lan2.contains("02:00:00:00:02:01"),
            "{lan2}"
        );
        let eth0 = table.lines().find(|l| l.starts_with("eth0")).unwrap();
        assert_eq!(
            eth0.split_whitespace().collect::<Vec<_>>(),
            ["eth0", "upstream", "no", "3", "0", "0", "0"]
        );
        assert!(
            table.contains(
                "log         syslog_connected 1 syslog_connects 2 lines_waiting 0 lines_dropped 5 lines_dropped_unreported 0"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "upstream   eth0 domain 0: grandmasterIdentity aabbcc.fffe.ddeeff via aabbcc.fffe.ddeeff-1 (changes 0)\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "PORT             BRIDGE                                   PTP_FILTER\n\
                 lan1             member of br0                            installed (nftables)\n\
                 lan2             member of br0                            installed (nftables)\n"
            ),
            "{table}"
        );
        assert!(
            table.contains("clockClass 6 clockAccuracy 0xfe offsetScaledLogVariance 0xffff priority1 128 priority2 128 stepsRemoved 0 timeSource 0xa0"),
            "{table}"
        );
        assert!(
            table.contains("last Sync 4.000 s ago, Follow_Up never, Announce 3.500 s ago"),
            "{table}"
        );
        assert_eq!(
            lan2.split_whitespace().collect::<Vec<_>>(),
            [
                "020000.fffe.000201-1",
                "lan2",
                "02:00:00:00:02:01",
                "4",
                "1",
                "0",
                "0"
            ]
        );
        assert!(
            out.contains(
                r#""bridge":"member of br0","ptp_filter":true,"ptp_filter_kind":"nftables""#
            ),
            "{out}"
        );
        assert!(format_table(b"{\"version\":1}").is_err());

        let mut prom = String::new();
        metrics::render(&mut prom, &snap).unwrap();
        for line in [
            "ptpproxy_dropped_total{reason=\"delay_req_from_upstream\"} 1",
            "ptpproxy_port_dropped_total{port=\"eth0\",reason=\"delay_req_from_upstream\"} 1",
            "ptpproxy_port_rx_frames_total{port=\"lan2\"} 1",
            "ptpproxy_clients 2",
            "ptpproxy_upstream_clock_class{domain=\"0\"} 6",
            "ptpproxy_upstream_last_sync_age_seconds{domain=\"0\"} 4",
            "ptpproxy_upstream_last_announce_age_seconds{domain=\"0\"} 3.5",
            "ptpproxy_upstream_grandmaster_info{domain=\"0\",grandmaster_identity=\"aabbcc.fffe.ddeeff\",master_port=\"aabbcc.fffe.ddeeff-1\"} 1",
            "ptpproxy_io_wakeups_total 12",
            "ptpproxy_log_lines_dropped_total 5",
            "ptpproxy_log_syslog_connected 1",
        ] {
            assert!(prom.lines().any(|l| l == line), "{line}\n{prom}");
        }
        // No Follow_Up yet: no sample; with "correction": "none", no correction figures.
        assert!(!prom.contains("ptpproxy_upstream_last_follow_up_age_seconds{"));
        assert!(!prom.contains("ptpproxy_correction_"));
        // Each family's samples follow its TYPE line, all together.
        let mut seen = std::collections::HashSet::new();
        let mut current = "";
        for l in prom.lines() {
            if let Some(t) = l.strip_prefix("# TYPE ") {
                current = t.split(' ').next().unwrap();
                assert!(seen.insert(current), "{current} twice");
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{l}");
            }
        }
    }
}
