//! The typed configuration: [`Config`], its field types, the keys a file may hold, the defaults
//! and the accepted ranges.
//!
//! Plain data and constants only. This module never reads JSON and never judges a value; the
//! reader and the rules build a `Config` from it, and the error texts quote its ranges, so that
//! a limit changed here changes the check and the message together.

use crate::board;
use core::ops::RangeInclusive;

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Most PTP domains one relay serves.
pub const MAX_DOMAINS: usize = 8;
/// Longest status-file path.
pub const PATH_MAX: usize = 255;
/// Longest user name (useradd's limit).
pub const USER_MAX: usize = 32;
/// Most downstream ports the board supports (one port is the upstream).
pub(super) const MAX_DOWNSTREAM: usize = board::MAX_PORTS - 1;

pub type IfName = heapless::String<IFNAME_MAX>;

/// Where a Delay_Resp goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayRespMode {
    /// Only to the downstream port of the client that asked (default).
    Steer,
    /// As `Steer`, and the destination MAC becomes the client's own MAC.
    Unicast,
    /// To every downstream port (for comparison and diagnosis).
    Flood,
}

/// What ptpproxy does about a bridge that also forwards PTP between the ports it relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgePorts {
    /// Install a filter that stops the bridge forwarding PTP between relayed ports (default).
    Filter,
    /// Leave the bridge alone: the operator handles it (frames may reach clients twice).
    Leave,
}

/// How the bridge filter of `"bridge_ports": "filter"` is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeFilter {
    /// tc trap filters on switchdev members (nftables if the kernel lacks them), nftables on a
    /// software bridge (default).
    Auto,
    /// tc trap filters on every relayed member, switchdev or not.
    Tc,
    /// The nftables table, also on switchdev members (whose hardware forwarding it cannot stop).
    Nftables,
}

/// Residence-time correction of relayed event messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Frames keep their correctionField.
    None,
    /// ptpproxy adds its residence time (a software end-to-end transparent clock).
    Residence,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub upstream: IfName,
    pub downstream: heapless::Vec<IfName, { board::MAX_PORTS - 1 }>,
    pub domains: heapless::Vec<u8, MAX_DOMAINS>,
    /// The sdoId of the PTP domains served (majorSdoId << 8 | minorSdoId, IEEE 1588-2019
    /// §7.1.4): frames of another sdoId are not relayed, whatever their domainNumber.
    pub sdo_id: u16,
    pub delay_resp: DelayRespMode,
    pub correction: Correction,
    /// With `"correction": "residence"`: the longest a frame waits for the next batch, in
    /// microseconds (0: every frame leaves as soon as it is read, as with `"none"`).
    pub max_hold_us: u32,
    /// With `"correction": "residence"`: the longest residence taken for a measurement, in
    /// microseconds; a longer one is a fault (a stalled loop, a clock step not seen) and its
    /// event frame is not sent. Absent from the file: `max_hold_us` + 50 ms.
    pub max_residence_us: u32,
    pub allow_downstream_masters: bool,
    pub client_timeout_s: u32,
    pub max_delay_req_rate: u32,
    /// Delay_Req per second towards the upstream port, all clients together (`None`: not
    /// paced); above it they wait, evenly spaced ([`crate::pacing`]).
    pub upstream_max_delay_req_rate: Option<u32>,
    /// The longest a paced Delay_Req may wait, milliseconds; one that would wait longer is
    /// dropped.
    pub max_delay_req_hold_ms: u32,
    /// Identities (clients) one source MAC may hold in the client table.
    pub max_identities_per_mac: u32,
    pub status_file: heapless::String<PATH_MAX>,
    pub status_interval_s: u32,
    /// The Prometheus text file (node_exporter's textfile collector format), rewritten with the
    /// status file; `None`: not written.
    pub metrics_file: Option<heapless::String<PATH_MAX>>,
    /// Capture in promiscuous mode instead of joining the PTP multicast groups.
    pub promiscuous: bool,
    /// Unprivileged user to run as once the ports are open (CAP_NET_RAW is kept).
    pub user: Option<heapless::String<USER_MAX>>,
    /// SCHED_FIFO priority (1..=99) with memory locked, or 0 for the normal scheduler.
    pub realtime_priority: u32,
    /// A CPU wake-up latency limit in microseconds to hold while running (the kernel's PM QoS
    /// request, /dev/cpu_dma_latency): idle CPUs then stay in states they leave that fast.
    /// `None`: the system's idle policy is left alone.
    pub cpu_latency_us: Option<u32>,
    /// Relayed ports that are members of one bridge: filter PTP out of its forwarding, or not.
    pub bridge_ports: BridgePorts,
    /// A pcapng dump of the frames handled, with what was done with each; `None`: none.
    pub dump: Option<super::dump::DumpConfig>,
    /// Which mechanism filters the bridge.
    pub bridge_filter: BridgeFilter,
}

/// Every key a configuration file may contain, in the order of the documentation.
pub const KEYS: [&str; 24] = [
    "upstream",
    "downstream",
    "domains",
    "sdo_id",
    "delay_resp",
    "correction",
    "max_hold_us",
    "max_residence_us",
    "allow_downstream_masters",
    "client_timeout_s",
    "max_delay_req_rate",
    "upstream_max_delay_req_rate",
    "max_delay_req_hold_ms",
    "max_identities_per_mac",
    "status_file",
    "status_interval_s",
    "metrics_file",
    "promiscuous",
    "user",
    "realtime_priority",
    "cpu_latency_us",
    "bridge_ports",
    "dump",
    "bridge_filter",
];

/// The keys, as an enum; the discriminant indexes [`KEYS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Upstream,
    Downstream,
    Domains,
    SdoId,
    DelayResp,
    Correction,
    MaxHoldUs,
    MaxResidenceUs,
    AllowDownstreamMasters,
    ClientTimeoutS,
    MaxDelayReqRate,
    UpstreamMaxDelayReqRate,
    MaxDelayReqHoldMs,
    MaxIdentitiesPerMac,
    StatusFile,
    StatusIntervalS,
    MetricsFile,
    Promiscuous,
    User,
    RealtimePriority,
    CpuLatencyUs,
    BridgePorts,
    Dump,
    BridgeFilter,
}

impl Key {
    const ALL: [Key; KEYS.len()] = [
        Key::Upstream,
        Key::Downstream,
        Key::Domains,
        Key::SdoId,
        Key::DelayResp,
        Key::Correction,
        Key::MaxHoldUs,
        Key::MaxResidenceUs,
        Key::AllowDownstreamMasters,
        Key::ClientTimeoutS,
        Key::MaxDelayReqRate,
        Key::UpstreamMaxDelayReqRate,
        Key::MaxDelayReqHoldMs,
        Key::MaxIdentitiesPerMac,
        Key::StatusFile,
        Key::StatusIntervalS,
        Key::MetricsFile,
        Key::Promiscuous,
        Key::User,
        Key::RealtimePriority,
        Key::CpuLatencyUs,
        Key::BridgePorts,
        Key::Dump,
        Key::BridgeFilter,
    ];

    /// The key as written in the file.
    pub fn name(self) -> &'static str {
        KEYS[self as usize]
    }

    /// The key written as `name` (exactly: keys are case-sensitive).
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

// Defaults for the optional keys (`upstream` and `downstream` have none).
pub const DEFAULT_DOMAINS: [u8; 1] = [0];
pub const DEFAULT_DELAY_RESP: DelayRespMode = DelayRespMode::Steer;
pub const DEFAULT_CORRECTION: Correction = Correction::Residence;
pub const DEFAULT_MAX_HOLD_US: u32 = 2000;
/// What `max_residence_us` adds to `max_hold_us` when absent: a loop turn under load on a slow
/// board.
pub const DEFAULT_RESIDENCE_MARGIN_US: u32 = 50_000;
pub const DEFAULT_ALLOW_DOWNSTREAM_MASTERS: bool = false;
pub const DEFAULT_CLIENT_TIMEOUT_S: u32 = 60;
pub const DEFAULT_MAX_DELAY_REQ_RATE: u32 = 128;
/// Half a second: far below ptp4l's 5 s for a Delay_Resp, and a wait statime's next Delay_Req
/// (after 0 to 2 x its interval, 1 s by default) overtakes for at most a quarter of the samples
/// that waited that long (README.md, "Protecting the grandmaster").
pub const DEFAULT_MAX_DELAY_REQ_HOLD_MS: u32 = 500;
/// sdoId 0: the default PTP profile (IEEE 1588-2008's transportSpecific 0).
pub const DEFAULT_SDO_ID: u32 = 0;
pub const DEFAULT_MAX_IDENTITIES_PER_MAC: u32 = crate::clients::MAX_IDENTITIES_PER_MAC as u32;
pub const DEFAULT_STATUS_FILE: &str = "/var/run/ptpproxy/status.json";
pub const DEFAULT_STATUS_INTERVAL_S: u32 = 5;
pub const DEFAULT_PROMISCUOUS: bool = false;
pub const DEFAULT_REALTIME_PRIORITY: u32 = 0;
pub const DEFAULT_BRIDGE_PORTS: BridgePorts = BridgePorts::Filter;
pub const DEFAULT_BRIDGE_FILTER: BridgeFilter = BridgeFilter::Auto;

// Accepted ranges. The error texts print these constants, so check and message cannot drift.
/// SCHED_FIFO priorities (0: the normal scheduler).
pub const REALTIME_PRIORITY_RANGE: RangeInclusive<u32> = 0..=99;
/// Longest hold of a frame for a batch, microseconds (0: none; 100 ms is far beyond any use).
pub const MAX_HOLD_US_RANGE: RangeInclusive<u32> = 0..=100_000;
/// Residence ceilings, microseconds: at most a second (no relay holds an event longer), and at
/// least `max_hold_us` + [`MIN_RESIDENCE_ABOVE_HOLD_US`] (checked with the hold).
pub const MAX_RESIDENCE_US_RANGE: RangeInclusive<u32> = 1_000..=1_000_000;
/// How far the residence ceiling must stay above the hold: a batch's send takes time too.
pub const MIN_RESIDENCE_ABOVE_HOLD_US: u32 = 1_000;
/// CPU wake-up latency limits, microseconds (0: idle CPUs poll instead of sleeping).
pub const CPU_LATENCY_US_RANGE: RangeInclusive<u32> = 0..=1_000_000;
/// Seconds of silence after which a client is forgotten.
pub const CLIENT_TIMEOUT_S_RANGE: RangeInclusive<u32> = 2..=3600;
/// Delay_Req per second per client; PTP profiles send at most 128.
pub const MAX_DELAY_REQ_RATE_RANGE: RangeInclusive<u32> = 1..=1024;
/// Delay_Req per second towards the upstream port, all clients together.
pub const UPSTREAM_MAX_DELAY_REQ_RATE_RANGE: RangeInclusive<u32> = 10..=1_000_000;
/// Milliseconds a paced Delay_Req may wait: the residence ceiling (1 s) less a loop's margin.
pub const MAX_DELAY_REQ_HOLD_MS_RANGE: RangeInclusive<u32> = 1..=900;
/// sdoId: majorSdoId (4 bits) << 8 | minorSdoId (8 bits).
pub const SDO_ID_RANGE: RangeInclusive<u32> = 0..=0xFFF;
/// Identities per source MAC: at least one, at most the whole client table.
pub const MAX_IDENTITIES_PER_MAC_RANGE: RangeInclusive<u32> = 1..=board::MAX_CLIENTS as u32;
/// Seconds between status-file writes.
pub const STATUS_INTERVAL_S_RANGE: RangeInclusive<u32> = 1..=3600;
/// Largest domainNumber. All of 0..=255 is accepted: IEEE 1588 (Table 2) reserves 128..=255,
/// but profiles use them (IEEE C37.238-2017, the power profile, defaults to 254; linuxptp
/// accepts 0..=255), and a relay only compares the number, it gives it no meaning.
pub const DOMAIN_MAX: u32 = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_agree() {
        for (i, name) in KEYS.iter().enumerate() {
            let key = Key::from_name(name).unwrap();
            assert_eq!(key as usize, i);
            assert_eq!(key.name(), *name);
        }
        assert_eq!(Key::from_name("Upstream"), None);
    }
}
