//! The status file's schema: one type per JSON object, written by [`super::render`] and read back
//! by [`super::table::format_table`], so the two cannot drift apart. Writing streams the file
//! object by object (the client table is never held whole); reading takes the file as one slice
//! and parses each part from it (serde-json-core skips the keys a part does not name).

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the file starts with: who wrote it, and the client table's summary.
#[derive(Serialize, Deserialize)]
pub struct Head<'a> {
    pub version: &'a str,
    pub board: &'a str,
    /// The writer's process: `ptpproxy status` checks that it still runs.
    pub pid: u32,
    /// How often the file is rewritten (`status_interval_s`): a file much older is stale.
    /// Absent (0) in files of older versions.
    #[serde(default)]
    pub status_interval_s: u32,
    pub uptime_s: u64,
    /// The configuration file's path, JSON-escaped as it stands in the file.
    pub config: &'a str,
    pub delay_resp_mode: &'a str,
    pub clients: ClientsSummary,
    pub udp_checksums_completed: u64,
}

#[derive(Serialize, Deserialize)]
pub struct ClientsSummary {
    pub count: u64,
    pub capacity: u64,
    pub learned: u64,
    pub aged: u64,
    pub moved: u64,
}

/// One element of `"ports"`, in port order (upstream first).
#[derive(Serialize, Deserialize)]
pub struct PortRow<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub up: bool,
    pub rx: u64,
    pub tx: u64,
    pub tx_errors: u64,
    pub kernel_drops: u64,
    pub opens: u64,
    /// Its place in a Linux bridge: "member of br0", "bridge device", "" if none. Absent in
    /// files of older versions.
    #[serde(default)]
    pub bridge: &'a str,
    /// Whether ptpproxy's bridge filter (the bridge forwards no PTP between relayed ports)
    /// names this port.
    #[serde(default)]
    pub ptp_filter: bool,
    /// How: "tc" (trap filters on the port's ingress), "nftables" (the bridge's forward hook),
    /// "" without a filter. Absent in files of older versions.
    #[serde(default)]
    pub ptp_filter_kind: &'a str,
    /// Only the reasons this port saw.
    #[serde(borrow)]
    pub dropped: Counters<'a>,
}

/// The counters after the ports.
#[derive(Serialize, Deserialize)]
pub struct Totals<'a> {
    #[serde(borrow)]
    pub forwarded: Counters<'a>,
    #[serde(borrow)]
    pub delay_resp: Counters<'a>,
    #[serde(borrow)]
    pub dropped: Counters<'a>,
    pub correction_mode: &'a str,
    /// `pending`, `capacity`, then the correction's own counters.
    #[serde(borrow)]
    pub correction: Counters<'a>,
    /// How the loop woke up and sent: wake-ups, frames per wake-up, system calls, the hold.
    #[serde(borrow)]
    pub io: Counters<'a>,
    /// The log: whether syslog is connected, lines it did not take (counted, then reported in
    /// the log once it takes lines again). Absent in files of older versions.
    #[serde(borrow, default)]
    pub log: Counters<'a>,
    /// Delay_Req paced towards the grandmaster (`upstream_max_delay_req_rate`): the rate, the
    /// queue's depth (now, most), the wait (mean, longest) and what was sent or dropped. Empty
    /// without pacing; absent in files of older versions.
    #[serde(borrow, default)]
    pub upstream_pacing: Counters<'a>,
    /// The pcapng dump: enabled, frames written and not written, bytes of the current file,
    /// rotations, write errors. Absent in files of older versions.
    #[serde(borrow, default)]
    pub dump: Counters<'a>,
}

/// One element of `"client_table"`.
#[derive(Serialize, Deserialize)]
pub struct ClientRow<'a> {
    pub identity: &'a str,
    pub port: &'a str,
    pub mac: &'a str,
    pub idle_s: u64,
    pub delay_req: u64,
    /// Delay_Resp relayed to it, and its moves to another port (absent in older files).
    #[serde(default)]
    pub delay_resp: u64,
    #[serde(default)]
    pub moved: u64,
}

/// The names of the two lists, as the writer opens them and [`Lists`] reads them.
pub const PORTS: &str = "ports";
pub const CLIENT_TABLE: &str = "client_table";

/// The two lists, read back.
#[derive(Deserialize)]
pub struct Lists<'a> {
    #[serde(borrow)]
    pub ports: Seq<PortRow<'a>>,
    #[serde(borrow)]
    pub client_table: Seq<ClientRow<'a>>,
}

/// A JSON object of named counters, in file order.
#[derive(Default)]
pub struct Counters<'a>(pub Vec<(&'a str, u64)>);

impl Serialize for Counters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

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

/// A JSON array read into a `Vec` (serde-json-core itself only fills fixed-capacity types).
pub struct Seq<T>(pub Vec<T>);

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
