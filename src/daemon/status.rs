//! The status file: a JSON snapshot of ports, counters and the client table, rewritten
//! atomically (write a temporary file, then rename) every `status_interval_s` and at exit; and
//! `ptpproxy status`, which reads it back and prints it as tables.

use super::capture::Capture;
use super::sender::Sender;
use ptpproxy::board;
use ptpproxy::clients::ClientTable;
use ptpproxy::config::{Config, Correction, DelayRespMode};
use ptpproxy::proxy::Proxy;
use ptpproxy::stats::{DropReason, Forwarded};
use ptpproxy::time::Instant;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// JSON string contents: escape what JSON requires (paths may hold anything).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
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
}

/// Write the snapshot to `out`, piece by piece: the status file is streamed, so memory does not
/// grow with the client table.
pub fn render<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    let stats = s.proxy.stats();
    let clients: &ClientTable = s.proxy.clients();
    write!(
        out,
        "{{\"version\":\"{}\",\"board\":\"{}\",\"pid\":{},\"uptime_s\":{},\"config\":\"{}\",\
         \"delay_resp_mode\":\"{}\",\n\"clients\":{{\"count\":{},\"capacity\":{},\"learned\":{},\
         \"aged\":{},\"moved\":{}}},\n\"udp_checksums_completed\":{},\n\"ports\":[",
        env!("CARGO_PKG_VERSION"),
        board::NAME,
        std::process::id(),
        s.uptime_s,
        Escaped(s.config_path),
        mode_name(s.config.delay_resp),
        clients.len(),
        clients.capacity(),
        stats.clients_learned,
        stats.clients_aged,
        stats.clients_moved,
        stats.udp_checksums_completed,
    )?;
    for (i, (p, tx)) in s.captures.iter().zip(s.senders).enumerate() {
        write!(
            out,
            "{}\n {{\"name\":\"{}\",\"role\":\"{}\",\"up\":{},\"rx\":{},\"tx\":{},\"tx_errors\":{},\
             \"kernel_drops\":{},\"opens\":{},\"dropped\":{{",
            if i == 0 { "" } else { "," },
            Escaped(&p.name),
            if i == 0 { "upstream" } else { "downstream" },
            p.is_up(),
            stats.rx[i],
            tx.tx_count,
            tx.tx_errors,
            p.kernel_drops,
            p.opens,
        )?;
        // Only the reasons this port saw: where a flood or a rogue comes from, and why.
        let mut sep = "";
        for r in DropReason::ALL {
            let n = stats.dropped_on(i, *r);
            if n > 0 {
                write!(out, "{sep}\"{}\":{n}", r.name())?;
                sep = ",";
            }
        }
        out.write_str("}}")?;
    }
    out.write_str("],\n\"forwarded\":{")?;
    for (i, f) in Forwarded::ALL.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}\"{}\":{}", f.name(), stats.forwarded(*f))?;
    }
    write!(
        out,
        "}},\n\"delay_resp\":{{\"steered\":{},\"unicast\":{},\"flooded\":{}}},\n\"dropped\":{{",
        stats.delay_resp_steered, stats.delay_resp_unicast, stats.delay_resp_flooded
    )?;
    for (i, r) in DropReason::ALL.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}\"{}\":{}", r.name(), stats.dropped(*r))?;
    }
    write!(
        out,
        "}},\n\"correction_mode\":\"{}\",\n\"correction\":{{\"pending\":{},\"capacity\":{}",
        correction_name(s.config.correction),
        s.proxy.pending().0,
        s.proxy.pending().1,
    )?;
    for (name, value) in s.proxy.correction_stats().named() {
        write!(out, ",\"{name}\":{value}")?;
    }
    out.write_char('}')?;
    out.write_str(",\n\"client_table\":[")?;
    for (i, (id, c)) in clients.iter().enumerate() {
        let port = s
            .captures
            .get(c.port.index())
            .map_or("?", |p| p.name.as_str());
        write!(
            out,
            "{}\n {{\"identity\":\"{id}\",\"port\":\"{}\",\"mac\":\"{}\",\"idle_s\":{},\"delay_req\":{}}}",
            if i == 0 { "" } else { "," },
            Escaped(port),
            c.mac,
            s.now.saturating_since(c.last_seen).as_secs(),
            c.delay_req,
        )?;
    }
    out.write_str("]}\n")?;
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

// ---- reading it back: `ptpproxy status` ----

/// A JSON array read into a `Vec` (serde-json-core itself only fills fixed-capacity types).
struct Seq<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Seq<T>, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Seq(v))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A JSON object of counters, in file order.
struct Counters<'a>(Vec<(&'a str, u64)>);

impl<'de: 'a, 'a> Deserialize<'de> for Counters<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counters<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Counters<'de>, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Counters(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
struct ClientsSummary {
    count: u64,
    capacity: u64,
    learned: u64,
    aged: u64,
}

#[derive(serde::Deserialize)]
struct PortRow<'a> {
    name: &'a str,
    role: &'a str,
    up: bool,
    rx: u64,
    tx: u64,
    tx_errors: u64,
    kernel_drops: u64,
    #[serde(borrow)]
    dropped: Counters<'a>,
}

#[derive(serde::Deserialize)]
struct ClientRow<'a> {
    identity: &'a str,
    port: &'a str,
    mac: &'a str,
    idle_s: u64,
    delay_req: u64,
}

#[derive(serde::Deserialize)]
struct StatusFile<'a> {
    version: &'a str,
    board: &'a str,
    pid: u32,
    uptime_s: u64,
    config: &'a str,
    delay_resp_mode: &'a str,
    clients: ClientsSummary,
    udp_checksums_completed: u64,
    #[serde(borrow)]
    ports: Seq<PortRow<'a>>,
    #[serde(borrow)]
    forwarded: Counters<'a>,
    #[serde(borrow)]
    delay_resp: Counters<'a>,
    #[serde(borrow)]
    dropped: Counters<'a>,
    correction_mode: &'a str,
    #[serde(borrow)]
    correction: Counters<'a>,
    #[serde(borrow)]
    client_table: Seq<ClientRow<'a>>,
}

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

/// Format a status file's contents as tables; an error names what is wrong with the file.
pub fn format_table(json: &[u8]) -> Result<String, String> {
    let (s, _): (StatusFile, usize) = serde_json_core::from_slice(json)
        .map_err(|e| format!("not a ptpproxy status file: {e}"))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ptpproxy {} (board {}), pid {}, up {} s, config {}, delay_resp {}",
        s.version, s.board, s.pid, s.uptime_s, s.config, s.delay_resp_mode
    );
    let c = &s.clients;
    let _ = writeln!(
        out,
        "clients    {} of {} (learned {}, aged {})\n",
        c.count, c.capacity, c.learned, c.aged
    );
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:>4} {:>12} {:>12} {:>9} {:>12}",
        "PORT", "ROLE", "UP", "RX", "TX", "TX_ERR", "KERNEL_DROP"
    );
    for p in &s.ports.0 {
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
    out.push('\n');
    counters_line(&mut out, "forwarded", &s.forwarded, false);
    counters_line(&mut out, "delay_resp", &s.delay_resp, false);
    let _ = writeln!(out, "udp_checksums_completed {}", s.udp_checksums_completed);
    counters_line(&mut out, "dropped", &s.dropped, true);
    for p in &s.ports.0 {
        if !p.dropped.0.is_empty() {
            counters_line(&mut out, &format!("  on {}", p.name), &p.dropped, true);
        }
    }
    if s.correction_mode != "none" {
        counters_line(
            &mut out,
            &format!("correction ({})", s.correction_mode),
            &s.correction,
            false,
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<24} {:<16} {:<17} {:>7} {:>10}",
        "CLIENT", "PORT", "MAC", "IDLE_S", "DELAY_REQ"
    );
    for r in &s.client_table.0 {
        let _ = writeln!(
            out,
            "{:<24} {:<16} {:<17} {:>7} {:>10}",
            r.identity, r.port, r.mac, r.idle_s, r.delay_req
        );
    }
    Ok(out)
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
            br#"{"upstream":"eth0","downstream":["lan1","lan2"],"delay_resp":"unicast"}"#,
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
        let captures: Vec<Capture> = config
            .port_names()
            .map(|n| Capture::new(n, false))
            .collect();
        let senders: Vec<Sender> = captures.iter().map(|_| Sender::new()).collect();
        let snap = Snapshot {
            config: &config,
            config_path: "/etc/ptp\"proxy/config.json",
            uptime_s: 7,
            now: Instant(5_000_000_000),
            proxy: &proxy,
            captures: &captures,
            senders: &senders,
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
            ["eth0", "upstream", "no", "1", "0", "0", "0"]
        );
        assert!(format_table(b"{\"version\":1}").is_err());
    }
}
