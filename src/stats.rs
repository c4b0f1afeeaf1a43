//! Counters of the core. Plain `u64`s the relay bumps and the shell only reads; every dropped
//! frame is counted under exactly one [`DropReason`].

use crate::board;
use crate::port::{PortId, PortSet};
use crate::upstream::GrandmasterChange;
use crate::wire::{self, MessageType, PortIdentity};

macro_rules! named_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)+];
            pub const COUNT: usize = Self::ALL.len();
            /// The snake_case name used in logs and the status file.
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }
        }
    };
}

named_enum! {
    /// Why a frame was not relayed.
    pub enum DropReason {
        /// Shorter than a header it claims to carry.
        Truncated => "truncated",
        /// Not PTP (EtherType, IP protocol or UDP port).
        NotPtp => "not_ptp",
        /// QinQ: more than one VLAN tag.
        StackedVlan => "stacked_vlan",
        /// Malformed IPv4/IPv6 header or IPv6 extension headers.
        BadIp => "bad_ip",
        /// IPv4 fragment.
        Fragment => "fragment",
        /// UDP length inconsistent with the IP packet.
        BadUdp => "bad_udp",
        /// versionPTP other than 2.
        BadVersion => "bad_version",
        /// messageLength shorter than its message type needs (a messageLength beyond the bytes
        /// present counts as `truncated`).
        BadLength => "bad_length",
        /// Unicast PTP: the kernel's own IP/bridge path delivers it.
        Unicast => "unicast",
        /// Sent to the peer-delay address 01-80-C2-00-00-0E, which is never relayed.
        LinkLocal => "link_local",
        /// A domainNumber the relay does not serve.
        WrongDomain => "wrong_domain",
        /// Pdelay_Req/Pdelay_Resp/Pdelay_Resp_Follow_Up: peer delay is per link.
        PeerDelay => "peer_delay",
        /// Reserved messageType.
        UnknownMessage => "unknown_message",
        /// A frame the relay sent moments ago, back in on a port: a cabling loop (see
        /// `loop_guard`).
        Loop => "loop",
        /// Sync/Follow_Up/Announce from a downstream port (a master on the client side).
        RogueMaster => "rogue_master",
        /// Delay_Req from upstream: another relay's client, not ours.
        DelayReqFromUpstream => "delay_req_from_upstream",
        /// Delay_Resp arriving on a downstream port.
        DelayRespFromDownstream => "delay_resp_from_downstream",
        /// Delay_Resp for a client not in the table.
        UnknownClient => "unknown_client",
        /// Delay_Req of a new client while the table is full.
        TableFull => "table_full",
        /// Delay_Req of a new client whose ingress port already holds its share of the table.
        PortShareFull => "port_share_full",
        /// Delay_Req of a new client whose source MAC already holds its share of identities.
        MacLimit => "mac_limit",
        /// Delay_Req of a known identity from another port or MAC than the one it lives on,
        /// while it is still heard there (before its hold time of silence).
        IdentityConflict => "identity_conflict",
        /// Delay_Req above the client's max_delay_req_rate.
        RateLimited => "rate_limited",
        /// Delay_Req above upstream_max_delay_req_rate that found the pacing queue full (or lost
        /// its place to a port with a shorter queue).
        UpstreamRateQueueFull => "upstream_rate_queue_full",
        /// Delay_Req above upstream_max_delay_req_rate that would have waited longer than
        /// max_delay_req_hold_ms.
        UpstreamRateExpired => "upstream_rate_expired",
        /// Signaling or Management from a downstream port above max_delay_req_rate per port.
        SignalingRateLimited => "signaling_rate_limited",
        /// No port to send to (e.g. the only candidate is the ingress port).
        NoEgress => "no_egress",
    }
}

impl From<wire::Error> for DropReason {
    fn from(e: wire::Error) -> Self {
        match e {
            wire::Error::Truncated => DropReason::Truncated,
            wire::Error::NotPtp => DropReason::NotPtp,
            wire::Error::StackedVlan => DropReason::StackedVlan,
            wire::Error::BadIpHeader | wire::Error::Ipv6Extension => DropReason::BadIp,
            wire::Error::Fragmented => DropReason::Fragment,
            wire::Error::BadUdpLength => DropReason::BadUdp,
            wire::Error::UnsupportedVersion(_) => DropReason::BadVersion,
            wire::Error::BadMessageLength(_) => DropReason::BadLength,
        }
    }
}

named_enum! {
    /// Message classes counted when relayed.
    pub enum Forwarded {
        Sync => "sync",
        FollowUp => "follow_up",
        Announce => "announce",
        DelayReq => "delay_req",
        DelayResp => "delay_resp",
        Signaling => "signaling",
        Management => "management",
    }
}

impl Forwarded {
    pub fn of(t: MessageType) -> Option<Forwarded> {
        Some(match t {
            MessageType::Sync => Forwarded::Sync,
            MessageType::FollowUp => Forwarded::FollowUp,
            MessageType::Announce => Forwarded::Announce,
            MessageType::DelayReq => Forwarded::DelayReq,
            MessageType::DelayResp => Forwarded::DelayResp,
            MessageType::Signaling => Forwarded::Signaling,
            MessageType::Management => Forwarded::Management,
            _ => return None,
        })
    }
}

/// A frame dropped as `loop`: where the relay had received it and sent it, moments before, and
/// where it came in again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopSeen {
    pub received_on: PortId,
    pub sent_on: PortSet,
    pub returned_on: PortId,
}

/// The core's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the relay, per port (PortId index).
    pub rx: [u64; board::MAX_PORTS],
    /// Frames relayed, per message class (once per frame, whatever the number of ports).
    pub forwarded: [u64; Forwarded::COUNT],
    pub dropped: [u64; DropReason::COUNT],
    /// The same, per ingress port (PortId index): where a flood or a rogue comes from.
    pub dropped_on: [[u64; DropReason::COUNT]; board::MAX_PORTS],
    /// Delay_Resp sent to the requesting client's port only.
    pub delay_resp_steered: u64,
    /// Delay_Resp steered and rewritten to the client's unicast MAC.
    pub delay_resp_unicast: u64,
    /// Delay_Resp sent to every downstream port.
    pub delay_resp_flooded: u64,
    pub clients_learned: u64,
    pub clients_aged: u64,
    /// Known clients whose Delay_Req arrived on another port than before.
    pub clients_moved: u64,
    /// The last `identity_conflict`: the port it came in on and the identity it claimed (for
    /// the log; the counts are in `dropped` and `dropped_on`).
    pub last_conflict: Option<(PortId, PortIdentity)>,
    /// UDP frames whose checksum the sender left for its NIC to fill in (veth, VMs,
    /// containers: the kernel's CHECKSUM_PARTIAL), completed before relaying.
    pub udp_checksums_completed: u64,
    /// The last frame dropped as `loop`.
    pub last_loop: Option<LoopSeen>,
    /// The last frame dropped as `rogue_master`: its port and sourcePortIdentity.
    pub last_rogue: Option<(PortId, PortIdentity)>,
    /// Sync and Announce received on the upstream port in a served domain (relayed or not):
    /// the grandmaster's side is alive while this moves.
    pub upstream_sync_announce: u64,
    /// logMessageInterval of the last Announce received on the upstream port (log2 seconds).
    pub upstream_announce_interval: Option<i8>,
    /// Announces on the upstream port naming another grandmaster than before in their domain.
    pub grandmaster_changes: u64,
    /// The last of them (for the log).
    pub last_grandmaster_change: Option<GrandmasterChange>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            rx: [0; board::MAX_PORTS],
            forwarded: [0; Forwarded::COUNT],
            dropped: [0; DropReason::COUNT],
            dropped_on: [[0; DropReason::COUNT]; board::MAX_PORTS],
            delay_resp_steered: 0,
            delay_resp_unicast: 0,
            delay_resp_flooded: 0,
            clients_learned: 0,
            clients_aged: 0,
            clients_moved: 0,
            last_conflict: None,
            udp_checksums_completed: 0,
            last_loop: None,
            last_rogue: None,
            upstream_sync_announce: 0,
            upstream_announce_interval: None,
            grandmaster_changes: 0,
            last_grandmaster_change: None,
        }
    }
}

impl Stats {
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.dropped[r as usize]
    }

    /// Frames from port index `port` dropped for `r`.
    pub fn dropped_on(&self, port: usize, r: DropReason) -> u64 {
        self.dropped_on.get(port).map_or(0, |d| d[r as usize])
    }

    pub fn forwarded(&self, f: Forwarded) -> u64 {
        self.forwarded[f as usize]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}
