//! The status file's `"upstream"` list: per served domain, the grandmaster being relayed (from
//! its last Announce on the upstream port), the master port announcing it, and how long ago the
//! last Sync, Follow_Up and Announce arrived; and how `ptpproxy status` prints it. Read from the
//! core's [`UpstreamTable`](ptpproxy::upstream::UpstreamTable) once per status write, never
//! per frame.

use super::schema::Seq;
use super::{put, Snapshot};
use ptpproxy::time::Instant;
use ptpproxy::upstream::{ClockId, Upstream};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// The name of the list in the file.
pub const UPSTREAM: &str = "upstream";

/// One element of `"upstream"`.
#[derive(Serialize, Deserialize)]
pub struct UpstreamRow<'a> {
    pub domain: u8,
    /// `None` until an Announce arrived in the domain.
    #[serde(borrow)]
    pub grandmaster: Option<GrandmasterRow<'a>>,
    /// The sourcePortIdentity of the last Announce, e.g. `aabbcc.fffe.ddeeff-1`.
    pub master_port: Option<&'a str>,
    /// Milliseconds since the last one arrived; `None`: none yet.
    pub sync_age_ms: Option<u64>,
    pub follow_up_age_ms: Option<u64>,
    pub announce_age_ms: Option<u64>,
    pub grandmaster_changes: u64,
}

/// The grandmaster an Announce names, with the field names of IEEE 1588 in snake case.
#[derive(Serialize, Deserialize)]
pub struct GrandmasterRow<'a> {
    pub identity: &'a str,
    pub clock_class: u8,
    pub clock_accuracy: u8,
    pub offset_scaled_log_variance: u16,
    pub priority1: u8,
    pub priority2: u8,
    pub steps_removed: u16,
    pub time_source: u8,
}

/// The list read back (absent in files of older versions).
#[derive(Deserialize)]
pub struct UpstreamList<'a> {
    #[serde(borrow, default)]
    pub upstream: Option<Seq<UpstreamRow<'a>>>,
}

fn age_ms(now: Instant, then: Option<Instant>) -> Option<u64> {
    then.map(|t| now.saturating_since(t).0 / 1_000_000)
}

/// Write `"upstream":[...]` (no separator before or after).
pub fn write<W: fmt::Write + ?Sized>(out: &mut W, s: &Snapshot<'_>) -> fmt::Result {
    write!(out, "\"{UPSTREAM}\":[")?;
    for (i, u) in s.proxy.upstream().iter().enumerate() {
        out.write_str(if i == 0 { "\n " } else { ",\n " })?;
        row(out, s.now, u)?;
    }
    out.write_str("]")
}

fn row<W: fmt::Write + ?Sized>(out: &mut W, now: Instant, u: &Upstream) -> fmt::Result {
    let (mut gm_id, mut master) = (heapless::String::<24>::new(), heapless::String::<40>::new());
    let grandmaster = match &u.grandmaster {
        Some(g) => {
            write!(gm_id, "{}", ClockId(g.identity))?;
            Some(GrandmasterRow {
                identity: &gm_id,
                clock_class: g.clock_class,
                clock_accuracy: g.clock_accuracy,
                offset_scaled_log_variance: g.offset_scaled_log_variance,
                priority1: g.priority1,
                priority2: g.priority2,
                steps_removed: g.steps_removed,
                time_source: g.time_source,
            })
        }
        None => None,
    };
    if let Some(m) = u.master {
        write!(master, "{m}")?;
    }
    let r = UpstreamRow {
        domain: u.domain,
        grandmaster,
        master_port: u.master.map(|_| master.as_str()),
        sync_age_ms: age_ms(now, u.last_sync),
        follow_up_age_ms: age_ms(now, u.last_follow_up),
        announce_age_ms: age_ms(now, u.last_announce),
        grandmaster_changes: u.grandmaster_changes,
    };
    put(out, &r, true)
}

/// An age for the table: `0.250 s`, or `never`.
struct Age(Option<u64>);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ms) => write!(f, "{}.{:03} s ago", ms / 1000, ms % 1000),
            None => f.write_str("never"),
        }
    }
}

/// The upstream section of `ptpproxy status`, the way pmc names the fields; nothing for a file
/// without the list.
pub fn format(out: &mut String, json: &[u8], port: &str) -> Result<(), String> {
    let (l, _): (UpstreamList, usize) = serde_json_core::from_slice(json)
        .map_err(|e| format!("not a ptpproxy status file: {e}"))?;
    for u in l.upstream.iter().flat_map(|s| &s.0) {
        let _ = write!(out, "upstream   {port} domain {}: ", u.domain);
        match &u.grandmaster {
            Some(g) => {
                let _ = writeln!(
                    out,
                    "grandmasterIdentity {} via {} (changes {})",
                    g.identity,
                    u.master_port.unwrap_or("?"),
                    u.grandmaster_changes
                );
                let _ = writeln!(
                    out,
                    "           clockClass {} clockAccuracy {:#04x} offsetScaledLogVariance {:#06x} priority1 {} priority2 {} stepsRemoved {} timeSource {:#04x}",
                    g.clock_class,
                    g.clock_accuracy,
                    g.offset_scaled_log_variance,
                    g.priority1,
                    g.priority2,
                    g.steps_removed,
                    g.time_source
                );
            }
            None => out.push_str("no Announce heard\n"),
        }
        let _ = writeln!(
            out,
            "           last Sync {}, Follow_Up {}, Announce {}",
            Age(u.sync_age_ms),
            Age(u.follow_up_age_ms),
            Age(u.announce_age_ms)
        );
    }
    Ok(())
}
