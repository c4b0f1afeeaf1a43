//! Replay: real captures through the core, one line per decision, diffed against a reviewed
//! expected file.
//!
//! `tests/data/replay/<transport>/{up,dn1,dn2}.pcap` hold what arrived on each of a relay's three
//! ports while a ptp4l grandmaster served four ptp4l clients (see tests/data/README.md). The
//! frames are merged by capture time and handed to `Proxy::handle_frame` with that time; each
//! decision becomes one line. Set `PTPPROXY_BLESS=1` to rewrite the expected files after a
//! deliberate behaviour change (and review the diff).

use ptpproxy::board;
use ptpproxy::config::Config;
use ptpproxy::port::PortId;
use ptpproxy::proxy::{Action, Proxy};
use ptpproxy::time::{Instant, Timestamp};
use ptpproxy::wire::PtpFrame;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PORTS: [&str; 3] = ["up", "dn1", "dn2"];

fn read_port(path: &Path, port: u8, out: &mut Vec<(u64, u8, Vec<u8>)>) {
    let mut cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_usec as u64;
                out.push((ns, port, p.data.to_vec()));
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

fn describe(frame: &[u8]) -> String {
    match PtpFrame::parse(frame).and_then(|p| p.ptp(frame).map(|h| (p, h))) {
        Ok((p, h)) => {
            let transport = match p.transport {
                ptpproxy::wire::Transport::L2 => "l2",
                ptpproxy::wire::Transport::Udp4 { .. } => "udp4",
                ptpproxy::wire::Transport::Udp6 { .. } => "udp6",
            };
            let mut s = format!(
                "{transport} {:?} seq={} from={}",
                h.message_type(),
                h.sequence_id(),
                h.source_port_identity()
            );
            if let Some(r) = h.requesting_port_identity() {
                let _ = write!(s, " for={r}");
            }
            s
        }
        Err(e) => format!("unparsed ({e})"),
    }
}

fn replay(transport: &str, config_json: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/replay")
        .join(transport);
    let mut frames = Vec::new();
    for (i, name) in PORTS.iter().enumerate() {
        read_port(&dir.join(format!("{name}.pcap")), i as u8, &mut frames);
    }
    // Stable merge by capture time; ties keep port order.
    frames.sort_by_key(|(t, port, _)| (*t, *port));
    let config = Config::parse(config_json.as_bytes()).expect("test config");
    let t0 = frames.first().map_or(0, |f| f.0);
    let mut relay = Proxy::new(&config, Instant(t0), 1);
    let mut scratch = vec![0u8; board::SNAPLEN];
    let mut out = String::new();
    for (t, port, data) in &frames {
        let now = Instant(*t);
        relay.handle_timeout(now);
        let what = describe(data);
        let ms = (t - t0) / 1_000_000;
        let _ = match relay.handle_frame(
            now,
            PortId(*port),
            data,
            Timestamp(*t as i64),
            &mut scratch,
        ) {
            Action::Forward { to, frame, .. } => {
                let names: Vec<&str> = to.iter().map(|p| PORTS[p.index()]).collect();
                let rewrite = if frame != &data[..] {
                    format!(" dst={:02x?}", &frame[..6])
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{ms:>6} {:<3} {what} -> {}{rewrite}",
                    PORTS[*port as usize],
                    names.join(",")
                )
            }
            Action::Held => writeln!(out, "{ms:>6} {:<3} {what} -> held", PORTS[*port as usize]),
            Action::Drop(r) => writeln!(
                out,
                "{ms:>6} {:<3} {what} -> drop {}",
                PORTS[*port as usize],
                r.name()
            ),
        };
    }
    let s = relay.stats();
    let _ = writeln!(
        out,
        "# clients={} learned={} steered={} unicast={} dropped={}",
        relay.clients().len(),
        s.clients_learned,
        s.delay_resp_steered,
        s.delay_resp_unicast,
        s.dropped_total()
    );
    out
}

fn check(transport: &str, mode: &str) {
    let json = format!(r#"{{"upstream":"up","downstream":["dn1","dn2"],"delay_resp":"{mode}"}}"#);
    let got = replay(transport, &json);
    let expected_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/replay")
        .join(transport)
        .join(format!("expected-{mode}.txt"));
    if std::env::var_os("PTPPROXY_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (PTPPROXY_BLESS=1 creates it)",
            expected_path.display()
        )
    });
    if got != expected {
        let first = got
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(expected.lines().count()));
        panic!(
            "{transport}/{mode}: replay differs from {} at line {}:\n  got:      {}\n  expected: {}",
            expected_path.display(),
            first + 1,
            got.lines().nth(first).unwrap_or("<end>"),
            expected.lines().nth(first).unwrap_or("<end>")
        );
    }
}

#[test]
fn replay_l2_steer() {
    check("l2", "steer");
}

#[test]
fn replay_l2_unicast() {
    check("l2", "unicast");
}

#[test]
fn replay_udp4_steer() {
    check("udp4", "steer");
}

#[test]
fn replay_udp6_steer() {
    check("udp6", "steer");
}
