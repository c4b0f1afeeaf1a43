//! The forwarding rules: one pure decision per captured frame.
//!
//! [`Relay::receive`] checks a frame once into a typed view ([`PtpFrame`]), and
//! [`Relay::handle_frame`] applies the rules table of ARCHITECTURE.md to it for L2, UDPv4 and
//! UDPv6 multicast PTP: where it goes (or why it does not, counted under one [`DropReason`]),
//! and the rewritten copy a unicast Delay_Resp or a partial UDP checksum needs. Port 0 is the upstream port (towards the
//! grandmaster); ports `1..=downstream` face the clients, in the order of the configuration. A
//! frame is never sent back out of the port it came in on.
//!
//! The relay owns the client table and the counters, and knows nothing of the residence
//! correction ([`crate::proxy::Proxy`] joins the two). It reads no clock: `now` is passed in,
//! and [`Relay::poll_timeout`] says when [`Relay::handle_timeout`] wants to run next (aging).

use crate::board;
use crate::clients::{ClientIp, ClientTable, Learned, Limits};
use crate::config::{Config, DelayRespMode};
use crate::gcra::Gcra;
use crate::loop_guard::{self, LoopGuard, Probe};
use crate::port::{PortId, PortMap, PortSet};
use crate::stats::{DropReason, Forwarded, LoopSeen, Stats};
use crate::time::{Duration, Instant};
use crate::upstream::UpstreamTable;
use crate::wire::{ethernet, EthernetAddress, MessageType, PortIdentity, PtpFrame, Transport};

/// How often the client table is aged.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// The part of the configuration the engine applies per frame.
#[derive(Clone, Copy, Debug)]
struct Policy {
    downstream: PortSet,
    domains: [u64; 4],
    sdo_id: u16,
    delay_resp: DelayRespMode,
    allow_downstream_masters: bool,
    /// Signaling and Management from each downstream port: at most max_delay_req_rate per
    /// second (what one client may send of Delay_Req), so no port floods the upstream with them.
    general_limit: Gcra,
}

impl Policy {
    fn from_config(config: &Config) -> Policy {
        let mut domains = [0u64; 4];
        for &d in &config.domains {
            domains[usize::from(d / 64)] |= 1 << (d % 64);
        }
        Policy {
            downstream: PortSet::range(1, config.downstream.len()),
            domains,
            sdo_id: config.sdo_id,
            delay_resp: config.delay_resp,
            allow_downstream_masters: config.allow_downstream_masters,
            general_limit: Gcra::per_second(config.max_delay_req_rate),
        }
    }

    /// A PTP domain is its (sdoId, domainNumber) pair (IEEE 1588-2019 §7.1.4).
    fn serves_domain(&self, sdo_id: u16, d: u8) -> bool {
        sdo_id == self.sdo_id && self.domains[usize::from(d / 64)] & (1 << (d % 64)) != 0
    }
}

fn limits(config: &Config) -> Limits {
    Limits {
        timeout: Duration::from_secs(u64::from(config.client_timeout_s)),
        max_rate: config.max_delay_req_rate,
        downstream_ports: config.downstream.len(),
        max_identities_per_mac: u16::try_from(config.max_identities_per_mac).unwrap_or(u16::MAX),
    }
}

pub struct Relay {
    policy: Policy,
    clients: ClientTable,
    stats: Stats,
    next_expiry: Instant,
    /// GCRA state of `Policy::general_limit`, per port.
    general_tat: [Instant; board::MAX_PORTS],
    /// What was relayed moments ago, so that it is not relayed again if it comes back.
    guard: LoopGuard,
    /// The grandmaster side per domain, as heard on the upstream port.
    upstream: UpstreamTable,
}

impl Relay {
    /// `seed` keys the client table's hash: draw it at random at start.
    pub fn new(config: &Config, now: Instant, seed: u64) -> Relay {
        Relay {
            policy: Policy::from_config(config),
            clients: ClientTable::new(limits(config), seed),
            stats: Stats::default(),
            next_expiry: now + EXPIRY_INTERVAL,
            general_tat: [Instant(0); board::MAX_PORTS],
            guard: LoopGuard::new(
                loop_guard::lifetime(config.max_hold_us),
                seed.rotate_left(23) ^ 0x2545_F491_4F6C_DD1D,
            ),
            upstream: UpstreamTable::new(config),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn clients(&self) -> &ClientTable {
        &self.clients
    }

    pub fn loop_guard(&self) -> &LoopGuard {
        &self.guard
    }

    pub fn upstream(&self) -> &UpstreamTable {
        &self.upstream
    }

    /// Apply a reloaded configuration, its ports renumbered by `map`: clients and per-port
    /// counters follow their port; those of removed ports are forgotten.
    pub fn reconfigure(&mut self, map: &PortMap, new: &Config) {
        self.clients.remap_ports(map);
        self.clients.set_limits(limits(new));
        self.stats.rx = map.apply(&self.stats.rx);
        self.stats.dropped_on = map.apply(&self.stats.dropped_on);
        self.stats.last_conflict = self
            .stats
            .last_conflict
            .and_then(|(port, id)| Some((map.get(port)?, id)));
        self.stats.last_loop = self.stats.last_loop.and_then(|l| {
            Some(LoopSeen {
                received_on: map.get(l.received_on)?,
                sent_on: map.apply_set(l.sent_on),
                returned_on: map.get(l.returned_on)?,
            })
        });
        self.stats.last_rogue = self
            .stats
            .last_rogue
            .and_then(|(port, id)| Some((map.get(port)?, id)));
        self.general_tat = [Instant(0); board::MAX_PORTS];
        self.guard.reset(loop_guard::lifetime(new.max_hold_us));
        self.policy = Policy::from_config(new);
        self.upstream.reconfigure(new);
    }

    /// When `handle_timeout` wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_expiry
    }

    /// Periodic work: age out silent clients.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_expiry {
            self.stats.clients_aged += self.clients.expire(now) as u64;
            self.next_expiry = now + EXPIRY_INTERVAL;
        }
    }

    /// Read a frame that arrived on `from`: counted as received, and checked down to its PTP
    /// message once ([`PtpFrame::parse`]); a malformed one is counted under its reason.
    #[inline]
    pub fn receive(&mut self, from: PortId, frame: &[u8]) -> Result<PtpFrame, DropReason> {
        if let Some(rx) = self.stats.rx.get_mut(from.index()) {
            *rx += 1;
        }
        PtpFrame::parse(frame).map_err(|e| self.drop(from, e.into()))
    }

    /// Decide where `frame`, received on `from` at `now` (the core's monotonic time) and read as
    /// `parsed`, goes: the ports, and the bytes to send there — the input, or a rewritten copy
    /// in `scratch` (unicast Delay_Resp, a UDP checksum left for the NIC to fill in; `scratch`
    /// should hold `board::SNAPLEN` bytes, a frame that does not fit is forwarded unmodified).
    /// Counted as forwarded, or under the one reason it is dropped for.
    ///
    /// First of all, a frame the relay sent moments ago (the same PTP message: see
    /// [`crate::loop_guard`]) is dropped as [`DropReason::Loop`], before it can change any
    /// state; every frame relayed is remembered for that.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        from: PortId,
        parsed: &PtpFrame,
        frame: &'a [u8],
        scratch: &'a mut [u8],
    ) -> Result<(PortSet, &'a [u8]), DropReason> {
        let print = self.guard.fingerprint(parsed, frame);
        let entry = match self.guard.probe(now, print) {
            Probe::New(entry) => entry,
            Probe::Seen(received_on, sent_on) => {
                self.stats.last_loop = Some(LoopSeen {
                    received_on,
                    sent_on,
                    returned_on: from,
                });
                return Err(self.drop(from, DropReason::Loop));
            }
        };
        let verdict = match self.decide(now, from, parsed, frame) {
            Ok(v) if v.to.is_empty() => Err(DropReason::NoEgress),
            v => v,
        }
        .map_err(|reason| self.drop(from, reason))?;
        let to = verdict.to;
        self.guard.record(entry, now, print, from, to);
        let complete_checksum = parsed.udp_checksum_is_partial(frame);
        if verdict.dst.is_none() && !complete_checksum {
            return Ok((to, frame));
        }
        let Some(copy) = scratch.get_mut(..frame.len()) else {
            return Ok((to, frame));
        };
        copy.copy_from_slice(frame);
        if let Some(dst) = verdict.dst {
            ethernet::Frame::new_unchecked(&mut *copy).set_dst(dst);
        }
        if complete_checksum {
            parsed.complete_udp_checksum(copy);
            self.stats.udp_checksums_completed += 1;
        }
        Ok((to, copy))
    }

    /// A Delay_Req this relay forwarded upstream that the pacing then dropped: counted once, as
    /// a drop for `reason`, no longer as forwarded.
    pub(crate) fn count_paced_drop(&mut self, from: PortId, reason: DropReason) {
        let f = &mut self.stats.forwarded[Forwarded::DelayReq as usize];
        *f = f.saturating_sub(1);
        self.drop(from, reason);
    }

    /// Count a drop of a frame from `from`; returns the reason, for `?`.
    fn drop(&mut self, from: PortId, reason: DropReason) -> DropReason {
        self.stats.dropped[reason as usize] += 1;
        if let Some(d) = self.stats.dropped_on.get_mut(from.index()) {
            d[reason as usize] += 1;
        }
        reason
    }

    /// The forwarding rules: where a well-formed PTP frame goes, or why it does not.
    fn decide(
        &mut self,
        now: Instant,
        from: PortId,
        parsed: &PtpFrame,
        frame: &[u8],
    ) -> Result<Verdict, DropReason> {
        self.admissible(parsed)?;
        let kind = parsed.message_type;
        let verdict = match kind {
            MessageType::Sync | MessageType::FollowUp | MessageType::Announce => {
                self.route_master(now, from, parsed, frame)?
            }
            MessageType::Signaling | MessageType::Management => self.route_general(now, from)?,
            MessageType::DelayReq => self.route_delay_req(now, from, parsed, frame)?,
            MessageType::DelayResp => {
                if !from.is_upstream() {
                    return Err(DropReason::DelayRespFromDownstream);
                }
                self.route_delay_resp(parsed, parsed.message(frame).requesting_port_identity())?
            }
            // Peer delay and reserved types were refused by `admissible`.
            _ => return Err(DropReason::UnknownMessage),
        };
        if let Some(f) = Forwarded::of(kind) {
            if !verdict.to.is_empty() {
                self.stats.forwarded[f as usize] += 1;
            }
        }
        Ok(verdict)
    }

    /// What no port relays: link-local and unicast frames, peer delay, reserved message
    /// types, domains not served.
    fn admissible(&self, parsed: &PtpFrame) -> Result<(), DropReason> {
        if parsed.dst == EthernetAddress::PTP_PDELAY {
            return Err(DropReason::LinkLocal);
        }
        if !parsed.dst.is_multicast() || !parsed.transport.is_multicast() {
            return Err(DropReason::Unicast);
        }
        match parsed.message_type {
            MessageType::PdelayReq | MessageType::PdelayResp | MessageType::PdelayRespFollowUp => {
                return Err(DropReason::PeerDelay)
            }
            MessageType::Unknown(_) => return Err(DropReason::UnknownMessage),
            _ => {}
        }
        if !self
            .policy
            .serves_domain(parsed.sdo_id, parsed.domain_number)
        {
            return Err(DropReason::WrongDomain);
        }
        Ok(())
    }

    /// Sync, Follow_Up, Announce: downstream from the grandmaster's side (noting that it is
    /// alive, and its announce interval); from a client's side only with
    /// `allow_downstream_masters`, else dropped, noting who sent it.
    fn route_master(
        &mut self,
        now: Instant,
        from: PortId,
        parsed: &PtpFrame,
        frame: &[u8],
    ) -> Result<Verdict, DropReason> {
        let downstream = self.policy.downstream;
        if from.is_upstream() {
            match parsed.message_type {
                MessageType::Sync => self.stats.upstream_sync_announce += 1,
                MessageType::Announce => {
                    self.stats.upstream_sync_announce += 1;
                    let interval = parsed.message(frame).log_message_interval();
                    self.stats.upstream_announce_interval = Some(interval);
                }
                _ => {}
            }
            let message = parsed.message(frame);
            if let Some(change) = self.upstream.note(now, parsed.domain_number, &message) {
                self.stats.grandmaster_changes += 1;
                self.stats.last_grandmaster_change = Some(change);
            }
            Ok(Verdict::to(downstream))
        } else if self.policy.allow_downstream_masters {
            Ok(Verdict::to(downstream.with(PortId::UPSTREAM).without(from)))
        } else {
            let id = parsed.message(frame).source_port_identity();
            self.stats.last_rogue = Some((from, id));
            Err(DropReason::RogueMaster)
        }
    }

    /// Signaling, Management: downstream, or upstream within each downstream port's rate.
    fn route_general(&mut self, now: Instant, from: PortId) -> Result<Verdict, DropReason> {
        if from.is_upstream() {
            return Ok(Verdict::to(self.policy.downstream));
        }
        let tat = &mut self.general_tat[from.index()];
        if !self.policy.general_limit.allow(tat, now) {
            return Err(DropReason::SignalingRateLimited);
        }
        Ok(Verdict::to(PortSet::single(PortId::UPSTREAM)))
    }

    /// Delay_Req: learn (or refresh) the client, within its rate and the table's admission
    /// rules, and send it upstream; another relay's client's (from upstream) is dropped.
    fn route_delay_req(
        &mut self,
        now: Instant,
        from: PortId,
        parsed: &PtpFrame,
        frame: &[u8],
    ) -> Result<Verdict, DropReason> {
        if from.is_upstream() {
            return Err(DropReason::DelayReqFromUpstream);
        }
        let ip = match parsed.transport {
            Transport::L2 => ClientIp::None,
            Transport::Udp4 { src, .. } => ClientIp::V4(src),
            Transport::Udp6 { src, .. } => ClientIp::V6(src),
        };
        let id = parsed.message(frame).source_port_identity();
        match self.clients.handle_delay_req(now, id, from, parsed.src, ip) {
            Ok(Learned::New) => self.stats.clients_learned += 1,
            Ok(Learned::Moved) => self.stats.clients_moved += 1,
            Ok(Learned::Refreshed) => {}
            Err(reason) => {
                if reason == DropReason::IdentityConflict {
                    self.stats.last_conflict = Some((from, id));
                }
                return Err(reason);
            }
        }
        Ok(Verdict::to(PortSet::single(PortId::UPSTREAM)))
    }

    fn route_delay_resp(
        &mut self,
        parsed: &PtpFrame,
        requesting: Option<PortIdentity>,
    ) -> Result<Verdict, DropReason> {
        let known = requesting.and_then(|id| self.clients.note_delay_resp(&id));
        if self.policy.delay_resp == DelayRespMode::Flood {
            self.stats.delay_resp_flooded += 1;
            return Ok(Verdict::to(self.policy.downstream));
        }
        let client = known.ok_or(DropReason::UnknownClient)?;
        let to = PortSet::single(client.port);
        if self.policy.delay_resp == DelayRespMode::Unicast {
            self.stats.delay_resp_unicast += 1;
            let dst = (parsed.dst != client.mac).then_some(client.mac);
            return Ok(Verdict { to, dst });
        }
        self.stats.delay_resp_steered += 1;
        Ok(Verdict::to(to))
    }
}

/// Where a frame goes, and the destination MAC it goes with if that changes.
struct Verdict {
    to: PortSet,
    dst: Option<EthernetAddress>,
}

impl Verdict {
    fn to(to: PortSet) -> Verdict {
        Verdict { to, dst: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Correction, IfName};
    use crate::wire::ptp::MessageType;
    use crate::wire::{MessageRepr, PortIdentity, PtpFrameRepr};

    const UP: PortId = PortId(0);
    const D1: PortId = PortId(1);
    const D2: PortId = PortId(2);
    const T0: Instant = Instant(5_000_000_000);

    fn name(s: &str) -> IfName {
        IfName::try_from(s).unwrap()
    }

    fn config(mode: DelayRespMode) -> Config {
        let mut downstream = heapless::Vec::new();
        downstream.push(name("lan1")).unwrap();
        downstream.push(name("lan2")).unwrap();
        let mut domains = heapless::Vec::new();
        domains.push(0).unwrap();
        Config {
            upstream: name("eth0"),
            downstream,
            domains,
            sdo_id: 0,
            delay_resp: mode,
            correction: Correction::None,
            max_hold_us: 0,
            max_residence_us: 50_000,
            allow_downstream_masters: false,
            client_timeout_s: 60,
            max_delay_req_rate: 128,
            upstream_max_delay_req_rate: None,
            max_delay_req_hold_ms: 500,
            max_identities_per_mac: 8,
            status_file: heapless::String::try_from("/tmp/s.json").unwrap(),
            status_interval_s: 5,
            metrics_file: None,
            promiscuous: false,
            user: None,
            realtime_priority: 0,
            cpu_latency_us: None,
            bridge_ports: crate::config::BridgePorts::Filter,
            dump: None,
            bridge_filter: crate::config::BridgeFilter::Auto,
        }
    }

    fn client(n: u8) -> (PortIdentity, EthernetAddress) {
        let id = PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, n],
            port_number: 1,
        };
        (id, EthernetAddress([2, 0, 0, 0, 1, n]))
    }

    const GM_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const GM: PortIdentity = PortIdentity {
        clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 0, 1],
        port_number: 1,
    };

    /// A minimal L2 PTPv2 message of `kind` from `src`: the body zero but for the requesting
    /// identity, controlField, logMessageInterval and flags zero, to the group of its type.
    fn l2(
        kind: u8,
        src: EthernetAddress,
        id: PortIdentity,
        seq: u16,
        requesting: Option<PortIdentity>,
    ) -> Vec<u8> {
        let len: usize = match kind {
            0xB => 64,
            0x9 | 0x2 | 0x3 | 0xA => 54,
            0xD => 48,
            _ => 44,
        };
        let m = MessageRepr::bare(MessageType::from_nibble(kind), id, seq, requesting, len);
        let frame = PtpFrameRepr::l2(m).with_src(src);
        let mut f = vec![0u8; frame.buffer_len()];
        frame.emit(&mut f);
        f
    }

    fn run(
        relay: &mut Relay,
        now: Instant,
        from: PortId,
        frame: &[u8],
    ) -> Result<(PortSet, Vec<u8>), DropReason> {
        let mut scratch = [0u8; board::SNAPLEN];
        let parsed = relay.receive(from, frame)?;
        relay
            .handle_frame(now, from, &parsed, frame, &mut scratch)
            .map(|(to, frame)| (to, frame.to_vec()))
    }

    fn downstream() -> PortSet {
        PortSet::single(D1).with(D2)
    }

    #[test]
    fn master_messages_from_upstream_go_to_every_downstream_port() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        for kind in [0x0, 0x8, 0xB, 0xC, 0xD] {
            let f = l2(kind, GM_MAC, GM, 1, None);
            assert_eq!(
                run(&mut r, T0, UP, &f),
                Ok((downstream(), f.clone())),
                "type {kind:#x}"
            );
        }
        assert_eq!(r.stats().forwarded(Forwarded::Sync), 1);
        assert_eq!(r.stats().rx[0], 5);
    }

    #[test]
    fn master_messages_from_downstream_are_rogue_unless_allowed() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (id, mac) = client(9);
        for kind in [0x0, 0x8, 0xB] {
            assert_eq!(
                run(&mut r, T0, D1, &l2(kind, mac, id, 1, None)),
                Err(DropReason::RogueMaster)
            );
        }
        assert_eq!(r.stats().dropped(DropReason::RogueMaster), 3);
        let mut c = config(DelayRespMode::Steer);
        c.allow_downstream_masters = true;
        let mut r = Relay::new(&c, T0, 1);
        let (to, _) = run(&mut r, T0, D1, &l2(0x0, mac, id, 1, None)).unwrap();
        assert_eq!(
            to,
            PortSet::single(UP).with(D2),
            "all ports but the ingress"
        );
    }

    #[test]
    fn signaling_and_management_from_a_downstream_port_are_rate_limited() {
        // max_delay_req_rate 128: a burst of 128 per port, then 128/s.
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (id, mac) = client(1);
        // Each a new message (sequenceId): the same one again would be a loop.
        let f = |seq: u16| l2(0xD, mac, id, seq, None);
        let passed = (0..1000)
            .filter(|&i| run(&mut r, T0, D1, &f(i)).is_ok())
            .count();
        assert_eq!(passed, 128);
        assert_eq!(r.stats().dropped(DropReason::SignalingRateLimited), 872);
        assert_eq!(
            r.stats().dropped_on(1, DropReason::SignalingRateLimited),
            872
        );
        // Another port has its own budget; upstream has none.
        assert!(run(&mut r, T0, D2, &f(1000)).is_ok());
        let g = |seq: u16| l2(0xC, GM_MAC, GM, seq, None);
        assert!((0..1000).all(|i| run(&mut r, T0, UP, &g(i)).is_ok()));
        // A second later, 128 more.
        let later = T0 + Duration::from_secs(1);
        let passed = (2000..3000)
            .filter(|&i| run(&mut r, later, D1, &f(i)).is_ok())
            .count();
        assert_eq!(passed, 128);
    }

    #[test]
    fn signaling_and_management_from_downstream_go_upstream_only() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (id, mac) = client(1);
        for kind in [0xC, 0xD] {
            assert_eq!(
                run(&mut r, T0, D2, &l2(kind, mac, id, 1, None)).unwrap().0,
                PortSet::single(UP)
            );
        }
    }

    #[test]
    fn delay_req_learns_and_goes_upstream_foreign_ones_are_dropped() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (id, mac) = client(1);
        let req = l2(0x1, mac, id, 7, None);
        assert_eq!(
            run(&mut r, T0, D1, &req),
            Ok((PortSet::single(UP), req.clone()))
        );
        assert_eq!(r.clients().get(&id).unwrap().port, D1);
        assert_eq!(r.stats().clients_learned, 1);
        // (Another sequenceId: the one relayed would be a loop.)
        assert_eq!(
            run(&mut r, T0, UP, &l2(0x1, mac, id, 8, None)),
            Err(DropReason::DelayReqFromUpstream)
        );
        assert_eq!(r.clients().len(), 1);
    }

    #[test]
    fn steer_sends_delay_resp_to_the_requesting_clients_port_only() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (a, amac) = client(1);
        let (b, bmac) = client(2);
        run(&mut r, T0, D1, &l2(0x1, amac, a, 1, None)).unwrap();
        run(&mut r, T0, D2, &l2(0x1, bmac, b, 1, None)).unwrap();
        let resp_a = l2(0x9, GM_MAC, GM, 1, Some(a));
        let resp_b = l2(0x9, GM_MAC, GM, 1, Some(b));
        assert_eq!(
            run(&mut r, T0, UP, &resp_a),
            Ok((PortSet::single(D1), resp_a.clone()))
        );
        assert_eq!(
            run(&mut r, T0, UP, &resp_b),
            Ok((PortSet::single(D2), resp_b.clone()))
        );
        let (stranger, _) = client(3);
        assert_eq!(
            run(&mut r, T0, UP, &l2(0x9, GM_MAC, GM, 1, Some(stranger))),
            Err(DropReason::UnknownClient)
        );
        assert_eq!(
            run(&mut r, T0, D1, &l2(0x9, GM_MAC, GM, 2, Some(a))),
            Err(DropReason::DelayRespFromDownstream)
        );
        assert_eq!(r.stats().delay_resp_steered, 2);
    }

    #[test]
    fn unicast_rewrites_only_the_destination_mac() {
        let mut r = Relay::new(&config(DelayRespMode::Unicast), T0, 1);
        let (a, amac) = client(1);
        run(&mut r, T0, D2, &l2(0x1, amac, a, 1, None)).unwrap();
        let resp = l2(0x9, GM_MAC, GM, 1, Some(a));
        let (to, out) = run(&mut r, T0, UP, &resp).unwrap();
        assert_eq!(to, PortSet::single(D2));
        assert_eq!(&out[..6], &amac.0);
        assert_eq!(&out[6..], &resp[6..]);
        assert_eq!(r.stats().delay_resp_unicast, 1);
        assert_eq!(r.stats().forwarded(Forwarded::DelayResp), 1);
    }

    #[test]
    fn flood_sends_delay_resp_everywhere_downstream() {
        let mut r = Relay::new(&config(DelayRespMode::Flood), T0, 1);
        let (a, _) = client(1);
        let resp = l2(0x9, GM_MAC, GM, 1, Some(a));
        assert_eq!(run(&mut r, T0, UP, &resp).unwrap().0, downstream());
        assert_eq!(r.stats().delay_resp_flooded, 1);
    }

    #[test]
    fn peer_delay_unicast_and_other_domains_are_dropped() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        for kind in [0x2, 0x3, 0xA] {
            // Peer delay goes to the link-local address, which is never relayed.
            assert_eq!(
                run(&mut r, T0, UP, &l2(kind, GM_MAC, GM, 1, None)),
                Err(DropReason::LinkLocal)
            );
            let mut f = l2(kind, GM_MAC, GM, 1, None);
            f[..6].copy_from_slice(&EthernetAddress::PTP_PRIMARY.0);
            assert_eq!(run(&mut r, T0, UP, &f), Err(DropReason::PeerDelay));
        }
        let mut f = l2(0x0, GM_MAC, GM, 1, None);
        f[..6].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
        assert_eq!(run(&mut r, T0, UP, &f), Err(DropReason::Unicast));
        let mut f = l2(0x0, GM_MAC, GM, 1, None);
        f[14 + 4] = 24;
        assert_eq!(run(&mut r, T0, UP, &f), Err(DropReason::WrongDomain));
        let mut f = l2(0x0, GM_MAC, GM, 1, None);
        f[14] = 0x5;
        assert_eq!(run(&mut r, T0, UP, &f), Err(DropReason::UnknownMessage));
        let mut f = l2(0x0, GM_MAC, GM, 1, None);
        f[15] = 0x01;
        assert_eq!(run(&mut r, T0, UP, &f), Err(DropReason::BadVersion));
        assert_eq!(run(&mut r, T0, UP, &f[..30]), Err(DropReason::Truncated));
        assert_eq!(r.stats().dropped_total(), 11);
    }

    #[test]
    fn a_spoofed_identity_on_another_port_is_refused_and_never_forwarded() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (victim, vmac) = client(1);
        let spoofer_mac = EthernetAddress([2, 0, 0, 0, 6, 6]);
        let (mut victim_ok, mut spoofed_out) = (0, 0);
        // The victim on D1 at 8/s, the spoofer on D2 at 2000/s, for 20 s (in miniature: every
        // 0.5 ms a spoofed request, every 125 ms the victim's; each answered from upstream).
        for tick in 0..40_000u64 {
            let now = T0 + Duration(tick * 500_000);
            let seq = tick as u16;
            if tick % 250 == 0 {
                if run(&mut r, now, D1, &l2(0x1, vmac, victim, seq, None)).is_ok() {
                    victim_ok += 1;
                }
                let resp = l2(0x9, GM_MAC, GM, seq, Some(victim));
                assert_eq!(run(&mut r, now, UP, &resp).unwrap().0, PortSet::single(D1));
            }
            // Its own sequenceIds: a copy of the victim's request would be the loop guard's.
            let spoofed = l2(0x1, spoofer_mac, victim, seq ^ 0x8000, None);
            if run(&mut r, now, D2, &spoofed).is_ok() {
                spoofed_out += 1;
            }
        }
        assert_eq!((victim_ok, spoofed_out), (160, 0));
        assert_eq!(r.stats().forwarded(Forwarded::DelayReq), 160);
        assert_eq!(r.stats().dropped(DropReason::IdentityConflict), 40_000);
        assert_eq!(
            r.stats().dropped_on(2, DropReason::IdentityConflict),
            40_000
        );
        assert_eq!(r.stats().dropped_on(1, DropReason::IdentityConflict), 0);
        assert_eq!(r.stats().last_conflict, Some((D2, victim)));
        assert_eq!(r.clients().get(&victim).unwrap().port, D1);
        assert_eq!(r.stats().clients_moved, 0);
    }

    #[test]
    fn a_client_that_moved_is_served_on_its_new_port_after_its_hold() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (a, amac) = client(1);
        let mut now = T0;
        for i in 0..40u64 {
            now = T0 + Duration::from_millis(125 * i);
            run(&mut r, now, D1, &l2(0x1, amac, a, i as u16, None)).unwrap();
        }
        let last = now;
        let resp = l2(0x9, GM_MAC, GM, 1, Some(a));
        let mut served = None;
        for i in 1..=40u64 {
            now = last + Duration::from_millis(125 * i);
            if run(&mut r, now, D2, &l2(0x1, amac, a, i as u16, None)).is_ok() {
                served = Some(now);
                break;
            }
        }
        let served = served.expect("never served on its new port");
        assert!(served.saturating_since(last) <= Duration::from_secs(3));
        assert_eq!(run(&mut r, now, UP, &resp).unwrap().0, PortSet::single(D2));
        assert_eq!(r.stats().clients_moved, 1);
        assert_eq!(r.stats().dropped_on(2, DropReason::IdentityConflict), 15);
    }

    #[test]
    fn another_sdo_id_is_another_domain() {
        // 802.1AS (majorSdoId 1) and a minorSdoId other than 0 are not the default profile.
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (a, amac) = client(1);
        for (major, minor) in [(0x10u8, 0u8), (0, 1), (0xF0, 0xFF)] {
            let mut sync = l2(0x0, GM_MAC, GM, 1, None);
            sync[14] |= major;
            sync[14 + 5] = minor;
            assert_eq!(run(&mut r, T0, UP, &sync), Err(DropReason::WrongDomain));
            let mut req = l2(0x1, amac, a, 1, None);
            req[14] |= major;
            req[14 + 5] = minor;
            assert_eq!(run(&mut r, T0, D1, &req), Err(DropReason::WrongDomain));
        }
        assert!(r.clients().is_empty());
        // Configured for sdoId 0x100, it serves those frames and no others.
        let mut c = config(DelayRespMode::Steer);
        c.sdo_id = 0x100;
        let mut r = Relay::new(&c, T0, 1);
        let mut req = l2(0x1, amac, a, 1, None);
        req[14] |= 0x10;
        assert!(run(&mut r, T0, D1, &req).is_ok());
        let mut resp = l2(0x9, GM_MAC, GM, 1, Some(a));
        assert_eq!(run(&mut r, T0, UP, &resp), Err(DropReason::WrongDomain));
        resp[14] |= 0x10;
        assert_eq!(run(&mut r, T0, UP, &resp).unwrap().0, PortSet::single(D1));
        let sync = l2(0x0, GM_MAC, GM, 1, None);
        assert_eq!(run(&mut r, T0, UP, &sync), Err(DropReason::WrongDomain));
    }

    #[test]
    fn table_full_drops_newcomers_and_keeps_serving_known_clients() {
        let mut c = config(DelayRespMode::Steer);
        c.downstream.truncate(1);
        let mut r = Relay::new(&c, T0, 1);
        let cap = r.clients().capacity();
        for n in 0..cap as u32 {
            let id = PortIdentity {
                clock_identity: [3, 0, 0, 0, 0, 0, 0, 0],
                port_number: 0,
            };
            let mut id = id;
            id.clock_identity[4..].copy_from_slice(&n.to_be_bytes());
            let mac = EthernetAddress([
                2,
                1,
                (n >> 24) as u8,
                (n >> 16) as u8,
                (n >> 8) as u8,
                n as u8,
            ]);
            assert!(run(&mut r, T0, D1, &l2(0x1, mac, id, 1, None)).is_ok());
        }
        let (late, late_mac) = client(200);
        assert_eq!(
            run(&mut r, T0, D1, &l2(0x1, late_mac, late, 1, None)),
            Err(DropReason::TableFull)
        );
        let mut first = PortIdentity {
            clock_identity: [3, 0, 0, 0, 0, 0, 0, 0],
            port_number: 0,
        };
        first.clock_identity[4..].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            run(&mut r, T0, UP, &l2(0x9, GM_MAC, GM, 1, Some(first)))
                .unwrap()
                .0,
            PortSet::single(D1)
        );
        assert_eq!(r.stats().dropped(DropReason::TableFull), 1);
    }

    #[test]
    fn clients_age_out_after_the_timeout() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (a, amac) = client(1);
        run(&mut r, T0, D1, &l2(0x1, amac, a, 1, None)).unwrap();
        assert!(r.poll_timeout() > T0);
        r.handle_timeout(T0 + Duration::from_secs(60));
        assert_eq!(r.clients().len(), 1);
        r.handle_timeout(T0 + Duration::from_secs(62));
        assert_eq!(r.clients().len(), 0);
        assert_eq!(r.stats().clients_aged, 1);
        let resp = l2(0x9, GM_MAC, GM, 1, Some(a));
        assert_eq!(
            run(&mut r, T0 + Duration::from_secs(62), UP, &resp),
            Err(DropReason::UnknownClient)
        );
    }

    #[test]
    fn delay_req_rate_is_limited_per_client() {
        let mut c = config(DelayRespMode::Steer);
        c.max_delay_req_rate = 16;
        let mut r = Relay::new(&c, T0, 1);
        let (a, amac) = client(1);
        let (b, bmac) = client(2);
        let mut passed = 0;
        for i in 0..1000u64 {
            // a: 1000/s for one second; b: 8/s, interleaved.
            let now = T0 + Duration::from_millis(i);
            if run(&mut r, now, D1, &l2(0x1, amac, a, i as u16, None)).is_ok() {
                passed += 1;
            }
            if i % 125 == 0 {
                assert!(run(&mut r, now, D2, &l2(0x1, bmac, b, i as u16, None)).is_ok());
            }
        }
        assert!((16..=33).contains(&passed), "{passed}");
        assert_eq!(r.stats().dropped(DropReason::RateLimited), 1000 - passed);
    }

    #[test]
    fn reconfigure_keeps_clients_of_ports_that_stay() {
        let old = config(DelayRespMode::Steer);
        let mut r = Relay::new(&old, T0, 1);
        let (a, amac) = client(1);
        let (b, bmac) = client(2);
        run(&mut r, T0, D1, &l2(0x1, amac, a, 1, None)).unwrap();
        run(&mut r, T0, D2, &l2(0x1, bmac, b, 1, None)).unwrap();
        let mut new = old.clone();
        new.downstream.remove(0); // lan1 goes, lan2 becomes port 1
        new.delay_resp = DelayRespMode::Unicast;
        r.reconfigure(&PortMap::between(&old, &new), &new);
        assert!(r.clients().get(&a).is_none());
        assert_eq!(r.clients().get(&b).unwrap().port, D1);
        let (to, out) = run(&mut r, T0, UP, &l2(0x9, GM_MAC, GM, 1, Some(b))).unwrap();
        assert_eq!((to, &out[..6]), (PortSet::single(D1), &bmac.0[..]));
    }

    #[test]
    fn udp_checksums_left_to_the_nic_are_completed() {
        use crate::wire::samples::{UDP4_SYNC, UDP6_DELAY_REQ};
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        for (f, from) in [(&UDP4_SYNC[..], UP), (&UDP6_DELAY_REQ[..], D1)] {
            // Complete checksums pass untouched.
            assert_eq!(run(&mut r, T0, from, f).unwrap().1, f);
            // The folded pseudo-header sum a veth sender leaves in the field.
            let p = PtpFrame::parse(f).unwrap();
            let at = p.udp_offset.unwrap() + 6;
            let mut partial = f.to_vec();
            let mut found = false;
            for v in 0..=u16::MAX {
                partial[at..at + 2].copy_from_slice(&v.to_be_bytes());
                if p.udp_checksum_is_partial(&partial) {
                    found = true;
                    break;
                }
            }
            assert!(found);
            assert_eq!(
                run(&mut r, T0 + Duration::from_secs(1), from, &partial)
                    .unwrap()
                    .1,
                f
            );
        }
        assert_eq!(r.stats().udp_checksums_completed, 2);
    }

    #[test]
    fn a_relayed_frame_that_comes_back_is_a_loop_for_every_class() {
        let mut c = config(DelayRespMode::Steer);
        c.allow_downstream_masters = true;
        let mut r = Relay::new(&c, T0, 1);
        let (a, amac) = client(1);
        let t = T0 + Duration::from_millis(2);
        // From upstream: back on a downstream port, or upstream itself.
        for (kind, back) in [(0x0, D1), (0x8, D2), (0xB, UP), (0xC, D1), (0xD, D2)] {
            let f = l2(kind, GM_MAC, GM, 40, None);
            let (to, _) = run(&mut r, T0, UP, &f).unwrap();
            assert_eq!(
                run(&mut r, t, back, &f),
                Err(DropReason::Loop),
                "type {kind:#x}"
            );
            let seen = LoopSeen {
                received_on: UP,
                sent_on: to,
                returned_on: back,
            };
            assert_eq!(r.stats().last_loop, Some(seen));
        }
        // Delay_Req going up, back on a downstream port: the client stays where it was.
        let req = l2(0x1, amac, a, 9, None);
        run(&mut r, T0, D1, &req).unwrap();
        assert_eq!(run(&mut r, t, D2, &req), Err(DropReason::Loop));
        assert_eq!(r.clients().get(&a).unwrap().port, D1);
        assert_eq!(r.stats().clients_moved, 0);
        let seen = LoopSeen {
            received_on: D1,
            sent_on: PortSet::single(UP),
            returned_on: D2,
        };
        assert_eq!(r.stats().last_loop, Some(seen));
        // Delay_Resp going down, back upstream.
        let resp = l2(0x9, GM_MAC, GM, 9, Some(a));
        run(&mut r, T0, UP, &resp).unwrap();
        assert_eq!(run(&mut r, t, UP, &resp), Err(DropReason::Loop));
        // A downstream master's Sync (allowed), back on the other downstream port.
        let (m, mmac) = client(7);
        let sync = l2(0x0, mmac, m, 3, None);
        run(&mut r, T0, D1, &sync).unwrap();
        assert_eq!(run(&mut r, t, D2, &sync), Err(DropReason::Loop));
        assert_eq!(r.stats().dropped(DropReason::Loop), 8);
        assert_eq!(r.stats().dropped_on(2, DropReason::Loop), 4);
        assert_eq!(r.stats().forwarded(Forwarded::Sync), 2);
    }

    #[test]
    fn a_loop_is_forgotten_after_the_lifetime_and_not_relayed_twice_meanwhile() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let f = l2(0x0, GM_MAC, GM, 1, None);
        run(&mut r, T0, UP, &f).unwrap();
        let life = r.loop_guard().lifetime();
        // Every return within the lifetime is dropped; the copies are not recorded again.
        for ms in [1, 10, 49] {
            let t = T0 + Duration::from_millis(ms);
            assert_eq!(run(&mut r, t, UP, &f), Err(DropReason::Loop));
        }
        assert!(run(&mut r, T0 + life, UP, &f).is_ok());
    }

    #[test]
    fn delay_resp_of_many_clients_with_the_same_sequence_ids_are_never_dropped() {
        let mut c = config(DelayRespMode::Steer);
        c.max_delay_req_rate = 1024;
        let mut r = Relay::new(&c, T0, 1);
        let clients: Vec<PortIdentity> = (0..1000u32)
            .map(|n| PortIdentity {
                clock_identity: [2, 0x70, 0x6c, 0xff, 0xfe, 0, (n >> 8) as u8, n as u8],
                port_number: 1,
            })
            .collect();
        let mac = |n: usize| EthernetAddress([2, 0x70, 0x6c, 0, (n >> 8) as u8, n as u8]);
        // Every client sends sequenceIds 0..8 within the lifetime; the grandmaster answers each.
        for seq in 0..8u16 {
            let t = T0 + Duration::from_millis(u64::from(seq));
            for (n, id) in clients.iter().enumerate() {
                let port = if n % 2 == 0 { D1 } else { D2 };
                let req = l2(0x1, mac(n), *id, seq, None);
                assert!(run(&mut r, t, port, &req).is_ok(), "client {n} seq {seq}");
                let resp = l2(0x9, GM_MAC, GM, seq, Some(*id));
                assert_eq!(run(&mut r, t, UP, &resp).unwrap().0, PortSet::single(port));
            }
        }
        assert_eq!(r.stats().dropped(DropReason::Loop), 0);
        assert_eq!(r.stats().forwarded(Forwarded::DelayResp), 8000);
    }

    #[test]
    fn a_rogue_master_and_the_upstream_announce_interval_are_noted() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let (id, mac) = client(9);
        let _ = run(&mut r, T0, D2, &l2(0xB, mac, id, 1, None));
        assert_eq!(r.stats().last_rogue, Some((D2, id)));
        assert_eq!(r.stats().upstream_sync_announce, 0);
        run(&mut r, T0, UP, &l2(0x0, GM_MAC, GM, 1, None)).unwrap();
        run(&mut r, T0, UP, &l2(0x8, GM_MAC, GM, 1, None)).unwrap();
        let mut announce = l2(0xB, GM_MAC, GM, 1, None);
        announce[14 + 33] = (-2i8) as u8;
        run(&mut r, T0, UP, &announce).unwrap();
        assert_eq!(r.stats().upstream_sync_announce, 2);
        assert_eq!(r.stats().upstream_announce_interval, Some(-2));
    }

    #[test]
    fn the_grandmaster_and_each_clients_answers_are_noted() {
        let mut r = Relay::new(&config(DelayRespMode::Steer), T0, 1);
        let t1 = T0 + Duration::from_secs(1);
        run(&mut r, T0, UP, &l2(0x0, GM_MAC, GM, 1, None)).unwrap();
        run(&mut r, t1, UP, &l2(0xB, GM_MAC, GM, 1, None)).unwrap();
        let up = r.upstream().get(0).unwrap();
        assert_eq!((up.last_sync, up.last_announce), (Some(T0), Some(t1)));
        assert_eq!(up.master, Some(GM));
        assert_eq!(up.grandmaster.unwrap().identity, [0; 8]);
        // Another grandmaster announced by the same master port: a change, counted once.
        let mut other = l2(0xB, GM_MAC, GM, 2, None);
        other[14 + 53] = 0x42;
        run(&mut r, t1, UP, &other).unwrap();
        run(&mut r, t1, UP, &l2(0xB, GM_MAC, GM, 3, None)).unwrap();
        assert_eq!(r.stats().grandmaster_changes, 2);
        let change = r.stats().last_grandmaster_change.unwrap();
        assert_eq!((change.from[0], change.to.identity[0]), (0x42, 0));
        // A client's answers, and its move to another port once silent for its hold time.
        let (a, amac) = client(1);
        run(&mut r, T0, D1, &l2(0x1, amac, a, 1, None)).unwrap();
        run(&mut r, T0, UP, &l2(0x9, GM_MAC, GM, 1, Some(a))).unwrap();
        run(&mut r, T0, UP, &l2(0x9, GM_MAC, GM, 2, Some(a))).unwrap();
        let later = T0 + Duration::from_secs(30);
        run(&mut r, later, D2, &l2(0x1, amac, a, 2, None)).unwrap();
        let c = r.clients().get(&a).unwrap();
        assert_eq!((c.delay_req, c.delay_resp, c.moved), (2, 2, 1));
    }

    #[test]
    fn never_back_out_of_the_ingress_port() {
        let mut c = config(DelayRespMode::Steer);
        c.allow_downstream_masters = true;
        let mut r = Relay::new(&c, T0, 1);
        let (a, amac) = client(1);
        for kind in [0x0, 0x8, 0xB, 0xC, 0xD, 0x1] {
            for from in [UP, D1, D2] {
                if let Ok((to, _)) = run(&mut r, T0, from, &l2(kind, amac, a, 1, None)) {
                    assert!(!to.contains(from), "type {kind:#x} from {from:?}");
                }
            }
        }
    }
}
