//! Sequences of frames, time steps, expiry ticks and reloads driven into `Proxy`, checked
//! against an oracle of the README's forwarding table and a shadow copy of the client table.
//!
//! Input (read with `ptpproxy_fuzz::Cursor`, zeros past the end; `fuzz/README.md` has the
//! layout): 4 configuration bytes, a hash-seed byte, a start-time byte, then events until the
//! input ends. Events: a frame built from a structured description, a raw frame, an expiry
//! tick, a reload, a flood of Delay_Req from many identities, a Delay_Resp for a known client,
//! a resend of the previous frame on another port.
//!
//! Checked on every frame: no panic; the decision equals the oracle's (rate limiting aside: a
//! known client's Delay_Req may pass or be `rate_limited`); a forwarded frame never goes back
//! out of its ingress port nor to a port that is not configured; a rewritten copy differs from
//! the input only in the destination MAC (unicast Delay_Resp, to the client's MAC) and the UDP
//! checksum (completed only when the input's was partial, and then it verifies), and parses
//! again with the same PTP message; the counters move by exactly one drop reason or one
//! forwarded class, plus what goes with it (rx of the ingress port, Delay_Resp mode, learned,
//! moved, checksums completed, the last rogue master, the upstream's Sync/Announce count). A
//! message relayed within the loop guard's lifetime may come back as `loop` (the guard may also
//! have lost it to a newer frame: then the rules decide); any other frame never does. With `"correction": "residence"`, each forwarded copy also goes
//! through `Proxy::handle_egress` per egress port: it parses as the same frame, differs only in
//! correctionField and UDP checksum, and a checksum that verified still does. After each event: the client table equals the shadow (same
//! identities, ports, MACs, last-seen times), holds at most `capacity()`, per-port counts equal
//! a recount, no MAC holds more than max_identities_per_mac identities; a refused Delay_Req
//! (rate, share, MAC limit, identity conflict) leaves its client as it was.
//!
//! And, until a reload changes the shares, the fairness guarantee: the free entries cover every
//! downstream port's unused share.
//!
//! `PTPPROXY_FUZZ_KNOWN` (comma-separated) lets a long run go past reported findings:
//! `mac-change` skips Delay_Req that change a known client's MAC; `share-move` stops checking
//! the fairness guarantee once a client has moved between ports. See `fuzz/README.md`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptpproxy::board;
use ptpproxy::clients::ClientIp;
use ptpproxy::config::{Config, Correction, DelayRespMode};
use ptpproxy::correction::Timing;
use ptpproxy::loop_guard;
use ptpproxy::port::{PortId, PortSet};
use ptpproxy::proxy::{Action, Proxy};
use ptpproxy::stats::{DropReason, Forwarded, LoopSeen, Stats};
use ptpproxy::time::{Duration, Instant, Timestamp};
use ptpproxy::wire::{EthernetAddress, MessageType, PortIdentity, PtpFrame, Transport};
use ptpproxy_fuzz::{
    build_frame, config, start_time, step, udp_checksum_verifies, udp_of, Cursor, Map,
    PTP_L2_PRIMARY,
};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| run(data));

/// Is `what` listed in PTPPROXY_FUZZ_KNOWN (a finding to go past, see fuzz/README.md)?
fn known(what: &str) -> bool {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| std::env::var("PTPPROXY_FUZZ_KNOWN").unwrap_or_default())
        .split(',')
        .any(|s| s == what)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Shadow {
    port: PortId,
    mac: EthernetAddress,
    ip: ClientIp,
    last_seen: Instant,
}

struct Harness {
    cfg: Config,
    relay: Proxy,
    now: Instant,
    shadow: Map<PortIdentity, Shadow>,
    per_port: [usize; board::MAX_PORTS],
    per_mac: Map<EthernetAddress, usize>,
    frames: u64,
    scratch: Vec<u8>,
    last_frame: Vec<u8>,
    /// Frames sent by floods so far (at most FLOOD_BUDGET).
    flooded: usize,
    /// The fairness guarantee (free entries cover every port's unused share) holds from the
    /// start until a reload changes the shares.
    fair_valid: bool,
    /// A known client's Delay_Req came from another MAC: that MAC may now hold more than the
    /// limit, which is for admitting new identities.
    mac_changed: bool,
    /// The largest max_identities_per_mac configured so far (a reload that lowers it leaves
    /// MACs above the new limit until their identities age out).
    mac_limit: usize,
    /// What was relayed (the loop guard's key), when, from where, to where: the same message
    /// again within the guard's lifetime may be dropped as `loop` (or relayed, if a later frame
    /// took its slot); any other frame never is.
    relayed: Map<LoopKey, (Instant, PortId, PortSet)>,
    /// The grandmasterIdentity of the last Announce relayed from upstream, per served domain.
    grandmasters: Map<u8, [u8; 8]>,
}

/// messageType, domainNumber, sourcePortIdentity, sequenceId, a Delay_Resp's
/// requestingPortIdentity: what the loop guard knows a message by.
type LoopKey = (u8, u8, PortIdentity, u16, Option<PortIdentity>);

/// What the README's table says happens to a frame.
#[derive(Debug, PartialEq)]
enum Expect {
    Drop(DropReason),
    Forward(PortSet),
    /// A known client's Delay_Req: to upstream, or `rate_limited`.
    KnownDelayReq,
}

/// Flood frames per input: enough to fill the table (4096 on the generic board) once and more.
const FLOOD_BUDGET: usize = 6000;

const PARSE_REASONS: [DropReason; 8] = [
    DropReason::Truncated,
    DropReason::NotPtp,
    DropReason::StackedVlan,
    DropReason::BadIp,
    DropReason::Fragment,
    DropReason::BadUdp,
    DropReason::BadVersion,
    DropReason::BadLength,
];

fn run(data: &[u8]) {
    let mut c = Cursor::new(data);
    let cfg = config(c.u8(), c.u8(), c.u8(), c.u8());
    let mac_limit = cfg.max_identities_per_mac as usize;
    let seed = u64::from(c.u8()).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let now = Instant(start_time(c.u8()));
    let mut h = Harness {
        relay: Proxy::with_pending_capacity(&cfg, now, seed, 16),
        cfg,
        now,
        shadow: Map::default(),
        per_port: [0; board::MAX_PORTS],
        per_mac: Map::default(),
        frames: 0,
        scratch: vec![0u8; board::SNAPLEN],
        last_frame: Vec::new(),
        mac_changed: false,
        mac_limit,
        fair_valid: true,
        flooded: 0,
        relayed: Map::default(),
        grandmasters: Map::default(),
    };
    let mut events = 0;
    while !c.done() && events < 256 {
        events += 1;
        let tag = c.u8();
        match tag % 16 {
            0..=6 => {
                let port = h.port(c.u8());
                h.advance(c.u8());
                let f = build_frame(&mut c);
                h.frame(port, &f);
            }
            7..=9 => {
                let port = h.port(c.u8());
                h.advance(c.u8());
                let len = usize::from(c.u16() & 0x3FF);
                let f = c.bytes(len).to_vec();
                h.frame(port, &f);
            }
            10 => {
                h.advance(c.u8());
                h.timeout();
            }
            11 => {
                let new = config(c.u8(), c.u8(), c.u8(), c.u8());
                h.reconfigure(new);
            }
            12 => {
                let port = h.port(c.u8());
                h.advance(c.u8());
                let (count, mac_mode, base) = (c.u8(), c.u8(), c.u8());
                h.flood(port, count, mac_mode, base);
            }
            13 => {
                h.advance(c.u8());
                let (pick, b) = (c.u8(), c.u8());
                h.delay_resp_for_known(pick, b);
            }
            14 => {
                let port = h.port(c.u8());
                h.advance(c.u8());
                let f = std::mem::take(&mut h.last_frame);
                h.frame(port, &f);
            }
            _ => {
                // Straight to the relay's own deadline, then the tick.
                h.now = h.now.max(h.relay.poll_timeout());
                h.timeout();
            }
        }
        // The full table walk visits every slot (twice the capacity): after each event only
        // the counts, the walk after ticks, reloads, floods and at the end.
        h.check_counts();
    }
    h.check_table();
}

impl Harness {
    fn downstream(&self) -> usize {
        self.cfg.downstream.len()
    }

    fn port(&self, b: u8) -> PortId {
        PortId(b % (self.downstream() as u8 + 1))
    }

    fn advance(&mut self, b: u8) {
        self.now = self.now + step(b);
    }

    fn downstream_set(&self) -> PortSet {
        PortSet::range(1, self.downstream())
    }

    fn timeout_d(&self) -> Duration {
        Duration::from_secs(u64::from(self.cfg.client_timeout_s))
    }

    fn forget(&mut self, id: &PortIdentity) {
        let s = self.shadow.remove(id).unwrap();
        self.per_port[s.port.index()] -= 1;
        let n = self.per_mac.get_mut(&s.mac).unwrap();
        *n -= 1;
        if *n == 0 {
            self.per_mac.remove(&s.mac);
        }
    }

    /// The client `id` sent a Delay_Req the table accepted (admitted, refreshed or moved): it
    /// now lives on `port` behind `mac`.
    fn learn(&mut self, id: PortIdentity, port: PortId, mac: EthernetAddress, ip: ClientIp) {
        if let Some(s) = self.shadow.get(&id) {
            self.mac_changed |= s.mac != mac;
            if s.port != port && known("share-move") {
                self.fair_valid = false;
            }
            self.forget(&id);
        }
        self.shadow.insert(
            id,
            Shadow {
                port,
                mac,
                ip,
                last_seen: self.now,
            },
        );
        self.per_port[port.index()] += 1;
        *self.per_mac.entry(mac).or_default() += 1;
    }

    /// The admission rule for a new identity, from the README and clients.rs's documentation.
    fn admission(&self, port: PortId, mac: EthernetAddress) -> Option<DropReason> {
        let cap = self.relay.clients().capacity();
        let len = self.shadow.len();
        if len == cap {
            return Some(DropReason::TableFull);
        }
        if self.per_mac.get(&mac).copied().unwrap_or(0) >= self.cfg.max_identities_per_mac as usize
        {
            return Some(DropReason::MacLimit);
        }
        let n = self.downstream();
        let share = cap / n;
        if self.per_port[port.index()] < share {
            return None;
        }
        let reserved: usize = (1..=n)
            .filter(|&p| p != port.index())
            .map(|p| share.saturating_sub(self.per_port[p]))
            .sum();
        (cap - len <= reserved).then_some(DropReason::PortShareFull)
    }

    /// A known client on another port must fit that port's share (counted as if it had left
    /// its old one); behind another MAC, that MAC's identity limit. Refused: nothing changes.
    fn readmission(
        &self,
        known: &Shadow,
        port: PortId,
        mac: EthernetAddress,
    ) -> Option<DropReason> {
        if known.port != port {
            let cap = self.relay.clients().capacity();
            let n = self.downstream();
            let share = cap / n;
            let mut counts = self.per_port;
            counts[known.port.index()] -= 1;
            counts[port.index()] += 1;
            let unused: usize = (1..=n).map(|p| share.saturating_sub(counts[p])).sum();
            if cap - self.shadow.len() < unused {
                return Some(DropReason::PortShareFull);
            }
        }
        if known.mac != mac
            && self.per_mac.get(&mac).copied().unwrap_or(0)
                >= self.cfg.max_identities_per_mac as usize
        {
            return Some(DropReason::MacLimit);
        }
        None
    }

    fn oracle(&self, from: PortId, frame: &[u8]) -> Expect {
        let p = match PtpFrame::parse(frame) {
            Ok(p) => p,
            Err(e) => return Expect::Drop(e.into()),
        };
        if p.dst == EthernetAddress::PTP_PDELAY {
            return Expect::Drop(DropReason::LinkLocal);
        }
        if !p.dst.is_multicast() || !p.transport.is_multicast() {
            return Expect::Drop(DropReason::Unicast);
        }
        let h = p.ptp(frame).unwrap();
        let kind = h.message_type();
        match kind {
            MessageType::PdelayReq | MessageType::PdelayResp | MessageType::PdelayRespFollowUp => {
                return Expect::Drop(DropReason::PeerDelay)
            }
            MessageType::Unknown(_) => return Expect::Drop(DropReason::UnknownMessage),
            _ => {}
        }
        if !self.cfg.domains.contains(&h.domain_number()) || h.sdo_id() != self.cfg.sdo_id {
            return Expect::Drop(DropReason::WrongDomain);
        }
        let up = PortSet::single(PortId::UPSTREAM);
        let from_up = from.is_upstream();
        let to = match kind {
            MessageType::Sync | MessageType::FollowUp | MessageType::Announce => {
                if from_up {
                    self.downstream_set()
                } else if self.cfg.allow_downstream_masters {
                    PortSet(self.downstream_set().0 | up.0).without(from)
                } else {
                    return Expect::Drop(DropReason::RogueMaster);
                }
            }
            MessageType::Signaling | MessageType::Management => {
                if from_up {
                    self.downstream_set()
                } else {
                    up
                }
            }
            MessageType::DelayReq => {
                if from_up {
                    return Expect::Drop(DropReason::DelayReqFromUpstream);
                }
                let id = h.source_port_identity();
                if let Some(known) = self.shadow.get(&id) {
                    // From another port or MAC while still heard where it lives (its hold
                    // time, from the interval the table observed): a conflict.
                    let hold = self.relay.clients().get(&id).map(|c| c.hold());
                    if (known.port != from || known.mac != p.src)
                        && hold.is_some_and(|h| self.now.saturating_since(known.last_seen) < h)
                    {
                        return Expect::Drop(DropReason::IdentityConflict);
                    }
                    if let Some(r) = self.readmission(known, from, p.src) {
                        return Expect::Drop(r);
                    }
                    return Expect::KnownDelayReq;
                }
                if let Some(r) = self.admission(from, p.src) {
                    return Expect::Drop(r);
                }
                up
            }
            MessageType::DelayResp => {
                if !from_up {
                    return Expect::Drop(DropReason::DelayRespFromDownstream);
                }
                if self.cfg.delay_resp == DelayRespMode::Flood {
                    self.downstream_set()
                } else {
                    match h
                        .requesting_port_identity()
                        .and_then(|r| self.shadow.get(&r))
                    {
                        Some(s) => PortSet::single(s.port),
                        None => return Expect::Drop(DropReason::UnknownClient),
                    }
                }
            }
            _ => unreachable!(),
        };
        if to.is_empty() {
            return Expect::Drop(DropReason::NoEgress);
        }
        Expect::Forward(to)
    }

    fn frame(&mut self, from: PortId, frame: &[u8]) {
        let parsed = PtpFrame::parse(frame).ok();
        let msg = parsed.and_then(|p| p.ptp(frame).ok().map(|h| (p, h)));
        let kind = msg.as_ref().map(|(_, h)| h.message_type());
        let source = msg.as_ref().map(|(_, h)| h.source_port_identity());
        if known("mac-change") && kind == Some(MessageType::DelayReq) {
            if let (Some(p), Some(s)) = (parsed, source.and_then(|id| self.shadow.get(&id))) {
                if s.mac != p.src {
                    return;
                }
            }
        }
        self.last_frame = frame.to_vec();
        let key: Option<LoopKey> = msg.as_ref().map(|(_, h)| {
            let requesting = (h.message_type() == MessageType::DelayResp)
                .then(|| h.requesting_port_identity())
                .flatten();
            (
                h.message_type().nibble(),
                h.domain_number(),
                h.source_port_identity(),
                h.sequence_id(),
                requesting,
            )
        });
        let lifetime = loop_guard::lifetime(self.cfg.max_hold_us);
        let looped = key
            .and_then(|k| self.relayed.get(&k).copied())
            .filter(|(t, _, _)| self.now.saturating_since(*t) < lifetime);
        let expect = self.oracle(from, frame);
        let before = self.relay.stats().clone();
        let known_before = source.and_then(|id| self.shadow.get(&id).copied());
        let now = self.now;
        let action =
            self.relay
                .handle_frame(now, from, frame, Timestamp(now.0 as i64), &mut self.scratch);
        self.frames += 1;
        // Copy out what the action borrows, to check it with `self` free again.
        let outcome = match action {
            Action::Drop(r) => Err(r),
            // The configurations fuzzed here never pace.
            Action::Held => panic!("a Delay_Req held without upstream_max_delay_req_rate"),
            Action::Forward {
                to,
                frame: out,
                timing,
            } => {
                let same = std::ptr::eq(out, frame);
                Ok((to, out.to_vec(), same, timing))
            }
        };
        let after = self.relay.stats().clone();
        counters_common(&before, &after, from);

        match outcome {
            Err(DropReason::Loop) => {
                let (_, received_on, sent_on) =
                    looped.expect("dropped as a loop, but not relayed within the lifetime");
                let mut b = before.clone();
                b.dropped[DropReason::Loop as usize] += 1;
                b.dropped_on[from.index()][DropReason::Loop as usize] += 1;
                b.rx = after.rx;
                b.last_loop = Some(LoopSeen {
                    received_on,
                    sent_on,
                    returned_on: from,
                });
                assert_eq!(
                    b, after,
                    "a loop bumps its counter, notes itself, nothing else"
                );
            }
            Err(r) => {
                // Signaling and Management from downstream go upstream within the port's
                // rate limit (not modelled: either outcome is right).
                let general =
                    matches!(kind, Some(MessageType::Signaling | MessageType::Management))
                        && !from.is_upstream()
                        && expect == Expect::Forward(PortSet::single(PortId::UPSTREAM));
                assert!(
                    expect == Expect::Drop(r)
                        || (expect == Expect::KnownDelayReq && r == DropReason::RateLimited)
                        || (general && r == DropReason::SignalingRateLimited),
                    "dropped {r:?}, expected {expect:?}"
                );
                let mut b = before.clone();
                b.dropped[r as usize] += 1;
                b.dropped_on[from.index()][r as usize] += 1;
                b.rx = after.rx;
                if r == DropReason::IdentityConflict {
                    assert_eq!(after.last_conflict, Some((from, source.unwrap())));
                    b.last_conflict = after.last_conflict;
                }
                if r == DropReason::RogueMaster {
                    b.last_rogue = Some((from, source.unwrap()));
                }
                assert_eq!(b, after, "a drop bumps exactly one counter: {r:?}");
                if parsed.is_some() {
                    assert!(!PARSE_REASONS.contains(&r));
                }
                if r == DropReason::RateLimited {
                    // Refused: the client stays as it was.
                    assert!(known_before.is_some());
                    self.check_client(&source.unwrap());
                } else if let (Some(MessageType::DelayReq), Some(id)) = (kind, source) {
                    assert!(self.relay.clients().get(&id).is_none() || known_before.is_some());
                }
            }
            Ok((to, out, same, timing)) => {
                self.relayed.insert(key.unwrap(), (now, from, to));
                self.egress(to, &out, &timing);
                let Expect::Forward(want) = expect else {
                    assert_eq!(
                        expect,
                        Expect::KnownDelayReq,
                        "forwarded to {to:?}, expected {expect:?}"
                    );
                    assert_eq!(to, PortSet::single(PortId::UPSTREAM));
                    self.forwarded(from, frame, &out, same, to, &before, &after, known_before);
                    return;
                };
                assert_eq!(to, want, "forwarded to {to:?}, expected {want:?}");
                self.forwarded(from, frame, &out, same, to, &before, &after, known_before);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn forwarded(
        &mut self,
        from: PortId,
        frame: &[u8],
        out: &[u8],
        same: bool,
        to: PortSet,
        before: &Stats,
        after: &Stats,
        known_before: Option<Shadow>,
    ) {
        let p = PtpFrame::parse(frame).expect("forwarded frames are PTP");
        let h = p.ptp(frame).unwrap();
        let kind = h.message_type();
        let n = self.downstream();
        let configured = PortSet::range(0, n + 1);
        assert!(!to.is_empty());
        assert!(!to.contains(from), "back out of the ingress port");
        assert_eq!(
            to.0 & !configured.0,
            0,
            "to a port that is not configured: {to:?}"
        );

        // Counters: one forwarded class, plus what goes with the message.
        let class = Forwarded::of(kind).expect("forwarded kinds are counted");
        let mut b = before.clone();
        b.forwarded[class as usize] += 1;
        b.rx = after.rx;
        let partial = p.udp_checksum_is_partial(frame);
        let fits = frame.len() <= self.scratch.len();
        if partial && fits {
            b.udp_checksums_completed += 1;
        }
        let mut want_dst = None;
        if from.is_upstream() && matches!(kind, MessageType::Sync | MessageType::Announce) {
            b.upstream_sync_announce += 1;
        }
        if from.is_upstream() && kind == MessageType::Announce {
            b.upstream_announce_interval = Some(h.log_message_interval());
            let gm = h.announce().expect("a forwarded Announce has a body");
            let (domain, id) = (h.domain_number(), gm.grandmaster_identity);
            match self.grandmasters.insert(domain, id) {
                Some(old) if old != id => {
                    b.grandmaster_changes += 1;
                    let c = after.last_grandmaster_change.expect("a change is kept");
                    assert_eq!((c.domain, c.from, c.to.identity), (domain, old, id));
                    b.last_grandmaster_change = after.last_grandmaster_change;
                }
                _ => {}
            }
        }
        match kind {
            MessageType::DelayResp => match self.cfg.delay_resp {
                DelayRespMode::Flood => {
                    b.delay_resp_flooded += 1;
                    assert_eq!(to, PortSet::range(1, n));
                }
                mode => {
                    let r = h.requesting_port_identity().unwrap();
                    let client = *self.shadow.get(&r).expect("steered to a known client");
                    assert_eq!(
                        to,
                        PortSet::single(client.port),
                        "not where the client was seen"
                    );
                    assert_eq!(to.len(), 1);
                    if mode == DelayRespMode::Unicast {
                        b.delay_resp_unicast += 1;
                        if client.mac != p.dst && fits {
                            want_dst = Some(client.mac);
                        }
                    } else {
                        b.delay_resp_steered += 1;
                    }
                }
            },
            MessageType::DelayReq => {
                let id = h.source_port_identity();
                match known_before {
                    None => b.clients_learned += 1,
                    Some(s) if s.port != from => b.clients_moved += 1,
                    Some(_) => {}
                }
                self.learn(id, from, p.src, client_ip(&p.transport));
                self.check_client(&id);
            }
            _ => {}
        }
        assert_eq!(&b, after, "counters of a forwarded {kind:?}");

        // The bytes: the input itself, or a copy that differs in dst MAC and UDP checksum only.
        assert_eq!(out.len(), frame.len());
        let csum = udp_of(&p, frame).map(|(r, _)| r.start + 6..r.start + 8);
        if same {
            assert_eq!(out, frame);
            assert!(
                want_dst.is_none() && !(partial && fits),
                "a rewrite was due"
            );
        } else {
            assert!(
                fits && (want_dst.is_some() || partial),
                "a copy without a reason"
            );
            let q = PtpFrame::parse(out).expect("the rewritten frame parses");
            assert_eq!(q, PtpFrame { dst: q.dst, ..p });
            assert_eq!(
                out[q.ptp_offset..q.ptp_offset + q.ptp_len],
                frame[p.ptp_offset..p.ptp_offset + p.ptp_len]
            );
            match want_dst {
                Some(mac) => assert_eq!(out[..6], mac.0),
                None => assert_eq!(out[..6], frame[..6]),
            }
            for (i, (a, b)) in out.iter().zip(frame).enumerate().skip(6) {
                if a != b {
                    assert!(
                        csum.as_ref().is_some_and(|r| r.contains(&i)),
                        "byte {i} rewritten"
                    );
                }
            }
            if partial {
                assert!(
                    udp_checksum_verifies(&q, out),
                    "completed checksum does not verify"
                );
            } else if let Some(r) = csum {
                assert_eq!(out[r.clone()], frame[r]);
            }
        }
    }

    /// Send `out` through the residence correction on every port of `to`: each corrected copy
    /// parses as the same frame, differs only in correctionField and UDP checksum, and a
    /// checksum that verified still does.
    fn egress(&mut self, to: PortSet, out: &[u8], timing: &Timing) {
        if self.cfg.correction == Correction::None {
            assert_eq!(*timing, Timing::None);
            return;
        }
        let p = PtpFrame::parse(out).expect("forwarded frames parse");
        let field = p.ptp_offset + 8..p.ptp_offset + 16;
        let csum = udp_of(&p, out).map(|(r, _)| r.start + 6..r.start + 8);
        let verified = udp_checksum_verifies(&p, out);
        for (k, port) in to.iter().enumerate() {
            let mut copy = out.to_vec();
            // Egress a few µs to a few ms after capture (sometimes before: a clock step).
            let spread = (self.frames as i64 * 7919 + k as i64 * 104_729) % 3_000_000 - 10_000;
            let egress = Timestamp(self.now.0 as i64 + spread);
            self.relay.handle_egress(timing, port, egress, &mut copy);
            let q = PtpFrame::parse(&copy).expect("a corrected frame parses");
            assert_eq!(q, p);
            for (i, (a, b)) in copy.iter().zip(out).enumerate() {
                if a != b {
                    assert!(
                        field.contains(&i) || csum.as_ref().is_some_and(|r| r.contains(&i)),
                        "byte {i} changed by the correction"
                    );
                }
            }
            if verified {
                assert!(
                    udp_checksum_verifies(&q, &copy),
                    "the correction broke the UDP checksum"
                );
            }
        }
    }

    /// The table's entry for `id` is the shadow's.
    fn check_client(&self, id: &PortIdentity) {
        let s = self.shadow.get(id).unwrap();
        let c = self.relay.clients().get(id).expect("client in the table");
        assert_eq!(
            (c.port, c.mac, c.ip, c.last_seen),
            (s.port, s.mac, s.ip, s.last_seen)
        );
    }

    fn check_counts(&self) {
        let t = self.relay.clients();
        assert!(t.len() <= t.capacity());
        if self.fair_valid {
            let n = self.downstream();
            let share = t.capacity() / n;
            let unused: usize = (1..=n)
                .map(|p| share.saturating_sub(self.per_port[p]))
                .sum();
            assert!(
                t.capacity() - t.len() >= unused,
                "the free entries no longer cover the ports' unused shares: {:?}",
                &self.per_port[..=n]
            );
        }
        assert_eq!(t.len(), self.shadow.len());
        for (p, &count) in self.per_port.iter().enumerate() {
            assert_eq!(t.on_port(PortId(p as u8)), count, "on_port({p})");
        }
        let st = self.relay.stats();
        assert_eq!(
            st.dropped.iter().sum::<u64>() + st.forwarded.iter().sum::<u64>(),
            self.frames,
            "every frame is dropped once or forwarded once"
        );
    }

    fn check_table(&self) {
        self.check_counts();
        let t = self.relay.clients();
        assert!(t.len() <= t.capacity());
        assert_eq!(t.len(), self.shadow.len());
        let mut per_port = [0usize; board::MAX_PORTS];
        let mut per_mac: Map<EthernetAddress, usize> = Map::default();
        let mut n = 0;
        for (id, c) in t.iter() {
            n += 1;
            let s = self
                .shadow
                .get(id)
                .expect("a client the shadow does not know");
            assert_eq!(
                (c.port, c.mac, c.ip, c.last_seen),
                (s.port, s.mac, s.ip, s.last_seen)
            );
            assert!(
                (1..=self.downstream()).contains(&c.port.index()),
                "client on {:?}",
                c.port
            );
            per_port[c.port.index()] += 1;
            *per_mac.entry(c.mac).or_default() += 1;
        }
        assert_eq!(n, t.len());
        assert_eq!(per_port, self.per_port);
        for (p, &count) in per_port.iter().enumerate() {
            assert_eq!(t.on_port(PortId(p as u8)), count, "on_port({p})");
        }
        assert_eq!(per_mac, self.per_mac);
        if !self.mac_changed {
            for (mac, &k) in &per_mac {
                assert!(k <= self.mac_limit, "{mac} holds {k} identities");
            }
        }
        let st = self.relay.stats();
        assert_eq!(
            st.dropped.iter().sum::<u64>() + st.forwarded.iter().sum::<u64>(),
            self.frames,
            "every frame is dropped once or forwarded once"
        );
    }

    fn timeout(&mut self) {
        let deadline = self.relay.poll_timeout();
        let before = self.relay.stats().clone();
        self.relay.handle_timeout(self.now);
        let after = self.relay.stats().clone();
        if self.now >= deadline {
            let timeout = self.timeout_d();
            let now = self.now;
            let gone: Vec<PortIdentity> = self
                .shadow
                .iter()
                .filter(|(_, s)| now.saturating_since(s.last_seen) > timeout)
                .map(|(id, _)| *id)
                .collect();
            for id in &gone {
                self.forget(id);
            }
            let mut b = before;
            b.clients_aged += gone.len() as u64;
            assert_eq!(b, after);
            assert_eq!(self.relay.poll_timeout(), now + Duration::from_secs(1));
            if !gone.is_empty() {
                self.check_table();
            }
        } else {
            assert_eq!(before, after);
            assert_eq!(self.relay.poll_timeout(), deadline);
        }
    }

    fn reconfigure(&mut self, new: Config) {
        let old = std::mem::replace(&mut self.cfg, new);
        self.fair_valid = false;
        self.mac_limit = self.mac_limit.max(self.cfg.max_identities_per_mac as usize);
        // Ports keep their clients if their name and role stay (README: reload).
        let mut map = [None; board::MAX_PORTS];
        if old.upstream == self.cfg.upstream {
            map[0] = Some(0usize);
        }
        for (i, name) in old.downstream.iter().enumerate() {
            map[i + 1] = self
                .cfg
                .downstream
                .iter()
                .position(|n| n == name)
                .map(|j| j + 1);
        }
        // A domain no longer served forgets its grandmaster.
        let domains = self.cfg.domains.clone();
        self.grandmasters.retain(|d, _| domains.contains(d));
        let before = self.relay.stats().clone();
        self.relay.reconfigure(&old, &self.cfg);
        let after = self.relay.stats().clone();
        let mut b = before.clone();
        b.rx = [0; board::MAX_PORTS];
        b.dropped_on = [[0; DropReason::COUNT]; board::MAX_PORTS];
        for (i, to) in map.iter().enumerate() {
            if let Some(j) = to {
                b.rx[*j] = before.rx[i];
                b.dropped_on[*j] = before.dropped_on[i];
            }
        }
        if let Some((port, id)) = before.last_conflict {
            b.last_conflict = map[port.index()].map(|j| (PortId(j as u8), id));
        }
        let moved = |p: PortId| map[p.index()].map(|j| PortId(j as u8));
        b.last_rogue = before.last_rogue.and_then(|(p, id)| Some((moved(p)?, id)));
        b.last_loop = before.last_loop.and_then(|l| {
            Some(LoopSeen {
                received_on: moved(l.received_on)?,
                sent_on: l
                    .sent_on
                    .iter()
                    .filter_map(moved)
                    .fold(PortSet::EMPTY, PortSet::with),
                returned_on: moved(l.returned_on)?,
            })
        });
        // The guard forgets everything (its entries name the old ports).
        self.relayed.clear();
        assert_eq!(
            b, after,
            "a reload moves rx, drop counters and the last loop and rogue with their ports, nothing else"
        );
        let ids: Vec<PortIdentity> = self.shadow.keys().copied().collect();
        for id in ids {
            let s = self.shadow[&id];
            self.forget(&id);
            if let Some(j) = map[s.port.index()] {
                let moved = Shadow {
                    port: PortId(j as u8),
                    ..s
                };
                self.shadow.insert(id, moved);
                self.per_port[j] += 1;
                *self.per_mac.entry(s.mac).or_default() += 1;
            }
        }
        self.check_table();
    }

    /// `count` Delay_Req from distinct identities on `port`, at the same instant.
    fn flood(&mut self, port: PortId, count: u8, mac_mode: u8, base: u8) {
        let cap = self.relay.clients().capacity();
        let share = cap / self.downstream();
        // Mostly a few: filling the table through frames is slow, and the client_table target
        // does it directly. Byte values 250..=255 reach the share and the capacity.
        let n = match count {
            250 => share - 1,
            251 => share,
            252 => share + 1,
            253 => cap - 1,
            254 => cap,
            255 => cap + 8,
            k => usize::from(k % 32) + 1,
        };
        // A budget of flood frames per input keeps executions fast enough to explore.
        let n = n.min(FLOOD_BUDGET.saturating_sub(self.flooded));
        self.flooded += n;
        for i in 0..n as u32 {
            let b = i.to_be_bytes();
            let clock = [0x0b, base, b[1], 0xff, 0xfe, b[2], b[3], mac_mode];
            let mac = match mac_mode % 4 {
                0 => [0x06, base, 0, b[1], b[2], b[3]],
                1 => [0x06, base, 0xff, 0, 0, 0],
                2 => {
                    let k = (i / 8).to_be_bytes();
                    [0x06, base, 0x08, k[1], k[2], k[3]]
                }
                _ => {
                    let k = (i / 9).to_be_bytes();
                    [0x06, base, 0x09, k[1], k[2], k[3]]
                }
            };
            let mut f = vec![0u8; 14 + 44];
            f[..6].copy_from_slice(&PTP_L2_PRIMARY);
            f[6..12].copy_from_slice(&mac);
            f[12..14].copy_from_slice(&[0x88, 0xf7]);
            f[14] = 0x01;
            f[15] = 0x02;
            f[16..18].copy_from_slice(&44u16.to_be_bytes());
            f[18] = self.cfg.domains[0];
            f[34..42].copy_from_slice(&clock);
            f[42..44].copy_from_slice(&1u16.to_be_bytes());
            self.frame(port, &f);
        }
        self.check_table();
    }

    /// A Delay_Resp from upstream for the `pick`-th known client (in the table's order).
    fn delay_resp_for_known(&mut self, pick: u8, b: u8) {
        let len = self.relay.clients().len();
        if len == 0 {
            return;
        }
        let (id, _) = self
            .relay
            .clients()
            .iter()
            .nth(usize::from(pick) % len)
            .unwrap();
        let id = *id;
        let mut f = vec![0u8; 14 + 54];
        f[..6].copy_from_slice(if b & 1 != 0 {
            &PTP_L2_PRIMARY
        } else {
            &[0x02, 0, 0, 0, 0x01, 0x01]
        });
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        f[12..14].copy_from_slice(&[0x88, 0xf7]);
        f[14] = 0x09;
        f[15] = 0x02;
        f[16..18].copy_from_slice(&54u16.to_be_bytes());
        f[18] = self.cfg.domains[usize::from(b >> 1) % self.cfg.domains.len()];
        f[34..42].copy_from_slice(&[0x02, 0, 0, 0xff, 0xfe, 0, 0, 0x01]);
        f[42..44].copy_from_slice(&1u16.to_be_bytes());
        f[58..66].copy_from_slice(&id.clock_identity);
        f[66..68].copy_from_slice(&id.port_number.to_be_bytes());
        self.frame(PortId::UPSTREAM, &f);
    }
}

fn client_ip(t: &Transport) -> ClientIp {
    match *t {
        Transport::L2 => ClientIp::None,
        Transport::Udp4 { src, .. } => ClientIp::V4(src),
        Transport::Udp6 { src, .. } => ClientIp::V6(src),
    }
}

/// What every frame does to the counters: rx of its port, one more, nothing else in rx/tx.
fn counters_common(before: &Stats, after: &Stats, from: PortId) {
    let mut rx = before.rx;
    rx[from.index()] += 1;
    assert_eq!(after.rx, rx);
    let total = |s: &Stats| s.dropped.iter().sum::<u64>() + s.forwarded.iter().sum::<u64>();
    assert_eq!(total(after), total(before) + 1);
}
