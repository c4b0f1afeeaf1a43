//! The client table: who asked for delay measurements, and on which downstream port they live.
//!
//! Keyed by sourcePortIdentity (clockIdentity + portNumber), capacity fixed by the board profile,
//! never allocating. It owns the admission rules that keep a flood of fake identities from
//! hurting real clients:
//! - a known client is never evicted by a newcomer; entries leave only by aging;
//! - each downstream port is guaranteed `capacity / downstream ports` entries: a port may borrow
//!   beyond its share only from space no other port's unused share needs;
//! - one source MAC holds at most `max_identities_per_mac` identities (default
//!   [`MAX_IDENTITIES_PER_MAC`]);
//! - each client's Delay_Req rate is limited by a GCRA token bucket (RFC 2697-like, one deadline
//!   per client), with one second's worth of burst;
//! - an identity belongs to the port and MAC it was learned on: from another port or MAC it is
//!   served only once it has been silent where it was for its hold time, max([`MIN_HOLD`],
//!   [`HOLD_INTERVALS`] of its observed Delay_Req intervals); until then those Delay_Req are
//!   refused as `identity_conflict` (a spoofer cannot take a live client's Delay_Resp);
//! - a refused Delay_Req, whatever the reason, changes nothing in the table.
//!
//! Only Delay_Req of the served sdoId reach the table (the relay drops the others as
//! `wrong_domain`), so its key needs no sdoId.

use crate::board;
use crate::fixed_map::FixedMap;
use crate::gcra::Gcra;
use crate::port::{PortId, PortMap};
use crate::stats::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, PortIdentity};
use core::num::NonZeroU16;

/// Identities one MAC address may hold by default (`max_identities_per_mac`). A PTP port has its
/// own MAC; a few more allow for multi-port ordinary clocks or devices that restart with a new
/// identity.
pub const MAX_IDENTITIES_PER_MAC: u16 = 8;

/// The least time a known identity must have been silent on its port and MAC before it is
/// served from another.
pub const MIN_HOLD: Duration = Duration::from_secs(2);

/// A known identity's hold time is at least this many of its observed Delay_Req intervals.
pub const HOLD_INTERVALS: u64 = 4;

/// The client's IP address, learned from a UDP Delay_Req.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIp {
    None,
    V4([u8; 4]),
    V6([u8; 16]),
}

/// One known client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub port: PortId,
    pub mac: EthernetAddress,
    pub ip: ClientIp,
    pub last_seen: Instant,
    /// Delay_Req accepted from this client (saturating: at 128/s it would take a year to).
    pub delay_req: u32,
    /// Delay_Resp relayed to it (saturating): far fewer than `delay_req` means its answers are
    /// lost upstream.
    pub delay_resp: u32,
    /// Times its Delay_Req came in on another port than before (a cable moved).
    pub moved: u32,
    /// GCRA theoretical arrival time of the next Delay_Req.
    tat: Instant,
    /// The observed interval between its accepted Delay_Req, microseconds: a moving average
    /// (weight 1/4 for each new gap), 0 until the second one.
    interval_us: u32,
}

impl Client {
    /// The observed Delay_Req interval (zero until two were accepted).
    pub fn interval(&self) -> Duration {
        Duration(u64::from(self.interval_us) * 1_000)
    }

    /// How long this client must have been silent on its port and MAC before its identity is
    /// served from another: max(MIN_HOLD, HOLD_INTERVALS × its observed interval).
    pub fn hold(&self) -> Duration {
        Duration(
            MIN_HOLD
                .0
                .max(self.interval().0.saturating_mul(HOLD_INTERVALS)),
        )
    }

    /// Fold the gap `gap` since the last accepted Delay_Req into the interval estimate.
    fn observe(&mut self, gap: Duration) {
        let sample = i64::from(u32::try_from(gap.0 / 1_000).unwrap_or(u32::MAX));
        let old = i64::from(self.interval_us);
        let new = if self.interval_us == 0 {
            sample
        } else {
            old + (sample - old) / 4
        };
        self.interval_us = u32::try_from(new).unwrap_or(u32::MAX);
    }
}

/// The limits the table enforces, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    /// Delay_Req per second per client.
    pub max_rate: u32,
    /// Downstream ports sharing the table.
    pub downstream_ports: usize,
    /// Identities one source MAC may hold.
    pub max_identities_per_mac: u16,
}

/// What a Delay_Req did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A known client, same port.
    Refreshed,
    /// A new client.
    New,
    /// A known client seen on another port than before.
    Moved,
}

pub struct ClientTable {
    clients: FixedMap<PortIdentity, Client>,
    macs: FixedMap<EthernetAddress, NonZeroU16>,
    per_port: [usize; board::MAX_PORTS],
    limits: Limits,
}

impl ClientTable {
    /// Allocates the table once; `seed` keys its hash (draw it at random at start).
    pub fn new(limits: Limits, seed: u64) -> Self {
        ClientTable {
            clients: FixedMap::new(board::MAX_CLIENTS, seed),
            macs: FixedMap::new(board::MAX_CLIENTS, seed.rotate_left(32)),
            per_port: [0; board::MAX_PORTS],
            limits,
        }
    }

    pub const fn capacity(&self) -> usize {
        board::MAX_CLIENTS
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn get(&self, id: &PortIdentity) -> Option<&Client> {
        self.clients.get(id)
    }

    /// A Delay_Resp for `id` is relayed: counted on the client, which is returned (`None`: not
    /// in the table).
    pub fn note_delay_resp(&mut self, id: &PortIdentity) -> Option<&Client> {
        let c = self.clients.get_mut(id)?;
        c.delay_resp = c.delay_resp.saturating_add(1);
        Some(c)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PortIdentity, &Client)> {
        self.clients.iter()
    }

    /// Entries on `port`.
    pub fn on_port(&self, port: PortId) -> usize {
        self.per_port.get(port.index()).copied().unwrap_or(0)
    }

    /// Entries each downstream port is guaranteed.
    pub fn port_share(&self) -> usize {
        board::MAX_CLIENTS / self.limits.downstream_ports.max(1)
    }

    /// A Delay_Req from `id` arrived on `port` from `mac`: admit, refresh and rate-limit. A
    /// refused one (the `Err`) changes nothing in the table.
    pub fn handle_delay_req(
        &mut self,
        now: Instant,
        id: PortIdentity,
        port: PortId,
        mac: EthernetAddress,
        ip: ClientIp,
    ) -> Result<Learned, DropReason> {
        let limit = Gcra::per_second(self.limits.max_rate);
        if let Some(known) = self.clients.get(&id).copied() {
            let moved = known.port != port;
            let new_mac = known.mac != mac;
            // The identity stays where it lives while it is heard there: another port or MAC
            // gets it only once it has been silent for its hold time.
            if (moved || new_mac) && now.saturating_since(known.last_seen) < known.hold() {
                return Err(DropReason::IdentityConflict);
            }
            // Moved, it must fit the new port's share and MAC's limit like a newcomer.
            let mut counts = self.per_port;
            counts[known.port.index()] -= 1;
            counts[port.index()] += 1;
            if moved && !self.shares_covered(&counts) {
                return Err(DropReason::PortShareFull);
            }
            if new_mac && self.mac_full(&mac) {
                return Err(DropReason::MacLimit);
            }
            let mut tat = known.tat;
            if !limit.allow(&mut tat, now) {
                return Err(DropReason::RateLimited);
            }
            // Accepted: only now is the table changed.
            let Some(c) = self.clients.get_mut(&id) else {
                return Err(DropReason::UnknownClient);
            };
            if !moved && !new_mac {
                c.observe(now.saturating_since(known.last_seen));
            }
            c.last_seen = now;
            c.port = port;
            c.mac = mac;
            c.ip = ip;
            c.tat = tat;
            c.delay_req = c.delay_req.saturating_add(1);
            if moved {
                c.moved = c.moved.saturating_add(1);
            }
            self.per_port = counts;
            if new_mac {
                release_mac(&mut self.macs, &known.mac);
                count_mac(&mut self.macs, mac);
            }
            return Ok(if moved {
                Learned::Moved
            } else {
                Learned::Refreshed
            });
        }
        self.admit(port, mac)?;
        let client = Client {
            port,
            mac,
            ip,
            last_seen: now,
            delay_req: 1,
            delay_resp: 0,
            moved: 0,
            tat: limit.first(now),
            interval_us: 0,
        };
        if self.clients.insert(id, client).is_err() {
            return Err(DropReason::TableFull);
        }
        self.per_port[port.index()] += 1;
        count_mac(&mut self.macs, mac);
        Ok(Learned::New)
    }

    /// True if `mac` already holds as many identities as one MAC may.
    fn mac_full(&self, mac: &EthernetAddress) -> bool {
        self.macs.get(mac).map_or(0, |n| n.get()) >= self.limits.max_identities_per_mac
    }

    /// The admission rule for a new identity (see the module documentation).
    fn admit(&self, port: PortId, mac: EthernetAddress) -> Result<(), DropReason> {
        let free = board::MAX_CLIENTS - self.clients.len();
        if free == 0 {
            return Err(DropReason::TableFull);
        }
        if self.mac_full(&mac) {
            return Err(DropReason::MacLimit);
        }
        let share = self.port_share();
        if self.per_port[port.index()] < share {
            return Ok(());
        }
        // Borrow beyond the share only from space that other ports' unused shares leave.
        let reserved: usize = (1..=self.limits.downstream_ports)
            .filter(|&p| p != port.index())
            .map(|p| share.saturating_sub(self.per_port.get(p).copied().unwrap_or(0)))
            .sum();
        if free > reserved {
            Ok(())
        } else {
            Err(DropReason::PortShareFull)
        }
    }

    /// The fairness invariant for per-port `counts`: the free entries cover what every
    /// downstream port still has of its guaranteed share.
    fn shares_covered(&self, counts: &[usize; board::MAX_PORTS]) -> bool {
        let share = self.port_share();
        let unused: usize = (1..=self.limits.downstream_ports)
            .map(|p| share.saturating_sub(counts.get(p).copied().unwrap_or(0)))
            .sum();
        board::MAX_CLIENTS - self.clients.len() >= unused
    }

    /// Remove clients silent for longer than the timeout; returns how many left.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.limits.timeout;
        let (per_port, macs) = (&mut self.per_port, &mut self.macs);
        self.clients.retain(
            |_, c| now.saturating_since(c.last_seen) <= timeout,
            |_, c| forget(per_port, macs, &c),
        )
    }

    /// After a reload: move each client to its port's new index, or forget it if its port is gone.
    pub fn remap_ports(&mut self, map: &PortMap) {
        let (per_port, macs) = (&mut self.per_port, &mut self.macs);
        self.clients.retain(
            |_, c| map.get(c.port).is_some(),
            |_, c| forget(per_port, macs, &c),
        );
        self.per_port = [0; board::MAX_PORTS];
        for (_, c) in self.clients.iter_mut() {
            if let Some(new) = map.get(c.port) {
                c.port = new;
            }
            self.per_port[c.port.index()] += 1;
        }
    }
}

/// Release what a removed client held in the per-port and per-MAC counts.
fn forget(
    per_port: &mut [usize; board::MAX_PORTS],
    macs: &mut FixedMap<EthernetAddress, NonZeroU16>,
    c: &Client,
) {
    per_port[c.port.index()] -= 1;
    release_mac(macs, &c.mac);
}

fn count_mac(macs: &mut FixedMap<EthernetAddress, NonZeroU16>, mac: EthernetAddress) {
    match macs.get_mut(&mac) {
        // Cannot saturate: `mac_full` stops a MAC at max_identities_per_mac (a u16).
        Some(n) => *n = n.saturating_add(1),
        // Cannot fail: the MAC map has as many slots as the client map.
        None => {
            let _ = macs.insert(mac, NonZeroU16::MIN);
        }
    }
}

fn release_mac(macs: &mut FixedMap<EthernetAddress, NonZeroU16>, mac: &EthernetAddress) {
    if let Some(n) = macs.get_mut(mac) {
        match NonZeroU16::new(n.get() - 1) {
            Some(less) => *n = less,
            None => {
                macs.remove(mac);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> PortIdentity {
        let b = n.to_be_bytes();
        PortIdentity {
            clock_identity: [0x02, 0, 0, 0xff, 0xfe, b[1], b[2], b[3]],
            port_number: 1,
        }
    }

    fn mac(n: u32) -> EthernetAddress {
        let b = n.to_be_bytes();
        EthernetAddress([0x02, 0, b[0], b[1], b[2], b[3]])
    }

    fn table(ports: usize) -> ClientTable {
        ClientTable::new(
            Limits {
                timeout: Duration::from_secs(60),
                max_rate: 8,
                downstream_ports: ports,
                max_identities_per_mac: MAX_IDENTITIES_PER_MAC,
            },
            0x5eed,
        )
    }

    const T0: Instant = Instant(1_000_000_000_000);

    #[test]
    fn learn_refresh_move() {
        let mut t = table(2);
        let (a, p1, p2) = (id(1), PortId(1), PortId(2));
        assert_eq!(
            t.handle_delay_req(T0, a, p1, mac(1), ClientIp::None),
            Ok(Learned::New)
        );
        let later = T0 + Duration::from_secs(1);
        assert_eq!(
            t.handle_delay_req(later, a, p1, mac(1), ClientIp::None),
            Ok(Learned::Refreshed)
        );
        // Heard every second: its hold is 4 s. Moved after that much silence.
        let moved = later + Duration::from_secs(4);
        assert_eq!(
            t.handle_delay_req(moved, a, p2, mac(1), ClientIp::None),
            Ok(Learned::Moved)
        );
        assert_eq!(t.get(&a).unwrap().port, p2);
        assert_eq!((t.on_port(p1), t.on_port(p2), t.len()), (0, 1, 1));
    }

    /// Client `c` heard on `port` (from its own MAC) every `every` from T0, `count` times;
    /// returns the time of the last request.
    fn heard(t: &mut ClientTable, c: u32, port: PortId, every: Duration, count: u64) -> Instant {
        let mut now = T0;
        for i in 0..count {
            now = T0 + Duration(every.0 * i);
            t.handle_delay_req(now, id(c), port, mac(c), ClientIp::None)
                .unwrap();
        }
        now
    }

    #[test]
    fn an_entry_stays_as_small_as_the_board_profiles_say() {
        // 72 bytes a client (its Delay_Resp and moves counted since 64) and 8 a MAC:
        // (72 + 8) x 1.5 (maps at most two-thirds full) = 120.
        assert!(core::mem::size_of::<Option<(PortIdentity, Client)>>() <= 72);
        assert!(core::mem::size_of::<Option<(EthernetAddress, NonZeroU16)>>() <= 8);
    }

    #[test]
    fn a_live_identity_keeps_its_port_against_a_spoofer() {
        // The spoofing measured on the wire, in miniature: the victim on port 1 at 8/s for 20 s,
        // a spoofer on port 2 (its own MAC) sending the victim's identity at 2000/s.
        let mut t = table(2);
        let (victim, p1, p2, spoofer_mac) = (id(1), PortId(1), PortId(2), mac(666));
        let (mut served, mut refused) = (0, 0);
        for ms in 0..20_000u64 {
            let now = T0 + Duration::from_millis(ms);
            if ms % 125 == 0 {
                assert!(t
                    .handle_delay_req(now, victim, p1, mac(1), ClientIp::None)
                    .is_ok());
                served += 1;
            }
            for k in 0..2u64 {
                let now = now + Duration(k * 500_000);
                assert_eq!(
                    t.handle_delay_req(now, victim, p2, spoofer_mac, ClientIp::None),
                    Err(DropReason::IdentityConflict)
                );
                refused += 1;
            }
            assert_eq!(t.get(&victim).unwrap().port, p1);
        }
        assert_eq!((served, refused), (160, 40_000));
        let c = t.get(&victim).unwrap();
        assert_eq!((c.port, c.mac, c.delay_req), (p1, mac(1), 160));
        assert_eq!(c.interval(), Duration::from_millis(125));
        // Not one of them took a table or MAC slot.
        assert_eq!((t.len(), t.on_port(p2)), (1, 0));
        assert!(t.macs.get(&spoofer_mac).is_none());
    }

    #[test]
    fn another_mac_on_the_same_port_is_a_conflict_too() {
        let mut t = table(1);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 16);
        let now = last + Duration::from_millis(10);
        assert_eq!(
            t.handle_delay_req(now, id(1), PortId(1), mac(2), ClientIp::None),
            Err(DropReason::IdentityConflict)
        );
        assert_eq!(t.get(&id(1)).unwrap().mac, mac(1));
        // Its own MAC is still served.
        assert_eq!(
            t.handle_delay_req(now, id(1), PortId(1), mac(1), ClientIp::None),
            Ok(Learned::Refreshed)
        );
    }

    #[test]
    fn the_hold_is_four_observed_intervals_and_at_least_two_seconds() {
        let mut t = table(2);
        // One request only: no interval yet, the hold is 2 s.
        t.handle_delay_req(T0, id(1), PortId(1), mac(1), ClientIp::None)
            .unwrap();
        assert_eq!(t.get(&id(1)).unwrap().hold(), MIN_HOLD);
        // 8/s: 4 intervals are 0.5 s, the hold stays 2 s.
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 40);
        assert_eq!(t.get(&id(1)).unwrap().hold(), MIN_HOLD);
        let p2 = PortId(2);
        let just_before = last + Duration::from_millis(1999);
        assert_eq!(
            t.handle_delay_req(just_before, id(1), p2, mac(1), ClientIp::None),
            Err(DropReason::IdentityConflict)
        );
        assert_eq!(
            t.handle_delay_req(last + MIN_HOLD, id(1), p2, mac(1), ClientIp::None),
            Ok(Learned::Moved)
        );
        // Every 2 s (logMinDelayReqInterval 1): the hold is 8 s.
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_secs(2), 10);
        assert_eq!(t.get(&id(1)).unwrap().hold(), Duration::from_secs(8));
        for (after, want) in [
            (Duration::from_secs(3), Err(DropReason::IdentityConflict)),
            (
                Duration::from_millis(7999),
                Err(DropReason::IdentityConflict),
            ),
            (Duration::from_secs(8), Ok(Learned::Moved)),
        ] {
            assert_eq!(
                t.handle_delay_req(last + after, id(1), p2, mac(1), ClientIp::None),
                want,
                "{after:?}"
            );
        }
    }

    #[test]
    fn the_interval_estimate_follows_the_client_and_nothing_else() {
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 20);
        assert_eq!(
            t.get(&id(1)).unwrap().interval(),
            Duration::from_millis(125)
        );
        // Refused requests (another port, above the rate) are not observed.
        let now = last + Duration::from_millis(1);
        t.handle_delay_req(now, id(1), PortId(2), mac(9), ClientIp::None)
            .unwrap_err();
        assert_eq!(
            t.get(&id(1)).unwrap().interval(),
            Duration::from_millis(125)
        );
        // The client slows to every 1 s: the estimate follows within a few requests.
        let mut now = last;
        for _ in 0..12 {
            now = now + Duration::from_secs(1);
            t.handle_delay_req(now, id(1), PortId(1), mac(1), ClientIp::None)
                .unwrap();
        }
        let i = t.get(&id(1)).unwrap().interval();
        assert!(
            i > Duration::from_millis(950) && i <= Duration::from_secs(1),
            "{i:?}"
        );
        // The silence before a move is not an interval.
        let moved = now + Duration::from_secs(10);
        t.handle_delay_req(moved, id(1), PortId(2), mac(1), ClientIp::None)
            .unwrap();
        assert_eq!(t.get(&id(1)).unwrap().interval(), i);
    }

    #[test]
    fn a_client_that_really_moved_is_served_within_three_seconds() {
        // Cable moved: heard at 8/s on port 1, then only on port 2 from 125 ms later.
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 80);
        let mut first = None;
        for i in 1..=40u64 {
            let now = last + Duration::from_millis(125 * i);
            match t.handle_delay_req(now, id(1), PortId(2), mac(1), ClientIp::None) {
                Ok(Learned::Moved) => {
                    first = Some(now);
                    break;
                }
                Err(DropReason::IdentityConflict) => {}
                other => panic!("{other:?}"),
            }
        }
        let served_after = first.unwrap().saturating_since(last);
        assert_eq!(served_after, MIN_HOLD);
        assert!(served_after < Duration::from_secs(3));
        assert_eq!(t.get(&id(1)).unwrap().port, PortId(2));
        assert_eq!((t.on_port(PortId(1)), t.on_port(PortId(2))), (0, 1));
    }

    #[test]
    fn a_refused_delay_req_changes_nothing() {
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 8);
        let before = *t.get(&id(1)).unwrap();
        let ip = ClientIp::V4([10, 0, 0, 9]);
        // Above the rate (max_rate 8/s, one second's burst): back to back until refused.
        let now = last + Duration::from_millis(1);
        let mut c = 0;
        let refused = loop {
            match t.handle_delay_req(now, id(1), PortId(1), mac(1), ip) {
                Ok(_) => c += 1,
                Err(r) => break r,
            }
            assert!(c < 100);
        };
        assert_eq!(refused, DropReason::RateLimited);
        let after_ok = *t.get(&id(1)).unwrap();
        for _ in 0..10 {
            assert_eq!(
                t.handle_delay_req(now, id(1), PortId(1), mac(1), ClientIp::None),
                Err(DropReason::RateLimited)
            );
        }
        assert_eq!(*t.get(&id(1)).unwrap(), after_ok, "rate-limited: untouched");
        // Conflict: port, MAC, IP, last_seen, counters untouched.
        let mut t = table(2);
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 8);
        assert_eq!(*t.get(&id(1)).unwrap(), before);
        let now = last + Duration::from_millis(100);
        assert_eq!(
            t.handle_delay_req(now, id(1), PortId(2), mac(7), ip),
            Err(DropReason::IdentityConflict)
        );
        assert_eq!(*t.get(&id(1)).unwrap(), before);
        assert_eq!((t.on_port(PortId(1)), t.on_port(PortId(2))), (1, 0));
        // A MAC-limit refusal of a move after the hold: untouched too.
        let mut t = ClientTable::new(
            Limits {
                max_identities_per_mac: 1,
                ..t.limits()
            },
            1,
        );
        let last = heard(&mut t, 1, PortId(1), Duration::from_millis(125), 8);
        t.handle_delay_req(last, id(2), PortId(1), mac(2), ClientIp::None)
            .unwrap();
        let before = *t.get(&id(1)).unwrap();
        let now = last + Duration::from_secs(3);
        assert_eq!(
            t.handle_delay_req(now, id(1), PortId(1), mac(2), ip),
            Err(DropReason::MacLimit)
        );
        assert_eq!(*t.get(&id(1)).unwrap(), before);
    }

    #[test]
    fn aging_removes_only_silent_clients() {
        let mut t = table(1);
        for n in 0..100 {
            t.handle_delay_req(T0, id(n), PortId(1), mac(n), ClientIp::None)
                .unwrap();
        }
        let t1 = T0 + Duration::from_secs(30);
        t.handle_delay_req(t1, id(7), PortId(1), mac(7), ClientIp::None)
            .unwrap();
        assert_eq!(t.expire(T0 + Duration::from_secs(60)), 0);
        assert_eq!(t.expire(T0 + Duration::from_secs(61)), 99);
        assert_eq!(t.len(), 1);
        assert!(t.get(&id(7)).is_some());
        assert_eq!(t.on_port(PortId(1)), 1);
        assert_eq!(t.expire(t1 + Duration::from_secs(61)), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_never_evicts() {
        let mut t = table(1);
        let cap = t.capacity() as u32;
        for n in 0..cap {
            assert_eq!(
                t.handle_delay_req(T0, id(n), PortId(1), mac(n), ClientIp::None),
                Ok(Learned::New)
            );
        }
        assert_eq!(
            t.handle_delay_req(T0, id(cap), PortId(1), mac(cap), ClientIp::None),
            Err(DropReason::TableFull)
        );
        // Known clients keep being served.
        let t1 = T0 + Duration::from_secs(1);
        assert_eq!(
            t.handle_delay_req(t1, id(0), PortId(1), mac(0), ClientIp::None),
            Ok(Learned::Refreshed)
        );
        assert_eq!(t.len(), t.capacity());
    }

    #[test]
    fn a_flooded_port_cannot_take_another_ports_share() {
        let mut t = table(2);
        let cap = t.capacity() as u32;
        let mut refused = 0;
        for n in 0..cap {
            match t.handle_delay_req(T0, id(n), PortId(1), mac(n), ClientIp::None) {
                Ok(_) => {}
                Err(r) => {
                    assert_eq!(r, DropReason::PortShareFull);
                    refused += 1;
                }
            }
        }
        assert_eq!(t.on_port(PortId(1)), t.port_share());
        assert_eq!(refused, cap as usize - t.port_share());
        // Port 2 gets its whole share.
        for n in 0..t.port_share() as u32 {
            let k = cap + n;
            assert_eq!(
                t.handle_delay_req(T0, id(k), PortId(2), mac(k), ClientIp::None),
                Ok(Learned::New)
            );
        }
        assert_eq!(t.len(), t.capacity());
    }

    #[test]
    fn a_port_borrows_unused_space_of_others_only_beyond_their_shares() {
        let mut t = table(2);
        let share = t.port_share() as u32;
        // Port 2 uses 10 of its share; port 1 may borrow everything but port 2's unused share.
        for n in 0..10 {
            t.handle_delay_req(
                T0,
                id(100_000 + n),
                PortId(2),
                mac(100_000 + n),
                ClientIp::None,
            )
            .unwrap();
        }
        let mut admitted = 0;
        for n in 0..2 * share {
            if t.handle_delay_req(T0, id(n), PortId(1), mac(n), ClientIp::None)
                .is_ok()
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, share);
        assert_eq!(t.port_share(), share as usize);
    }

    #[test]
    fn one_mac_holds_a_few_identities() {
        let mut t = table(1);
        for n in 0..u32::from(MAX_IDENTITIES_PER_MAC) {
            t.handle_delay_req(T0, id(n), PortId(1), mac(0), ClientIp::None)
                .unwrap();
        }
        assert_eq!(
            t.handle_delay_req(T0, id(999), PortId(1), mac(0), ClientIp::None),
            Err(DropReason::MacLimit)
        );
        // Aging frees the MAC's slots.
        t.expire(T0 + Duration::from_secs(61));
        assert!(t
            .handle_delay_req(
                T0 + Duration::from_secs(61),
                id(999),
                PortId(1),
                mac(0),
                ClientIp::None
            )
            .is_ok());
    }

    #[test]
    fn the_identities_per_mac_are_configurable() {
        for limit in [1u16, 32] {
            let mut t = ClientTable::new(
                Limits {
                    max_identities_per_mac: limit,
                    ..table(1).limits()
                },
                7,
            );
            for n in 0..u32::from(limit) {
                t.handle_delay_req(T0, id(n), PortId(1), mac(0), ClientIp::None)
                    .unwrap();
            }
            assert_eq!(
                t.handle_delay_req(T0, id(999), PortId(1), mac(0), ClientIp::None),
                Err(DropReason::MacLimit)
            );
            assert_eq!(t.len(), usize::from(limit));
        }
    }

    #[test]
    fn rate_limit_allows_one_second_burst_then_the_rate() {
        let mut t = table(1);
        let a = id(1);
        // max_rate 8/s: 8 back to back pass, the 9th is limited.
        for i in 0..8 {
            assert!(
                t.handle_delay_req(T0, a, PortId(1), mac(1), ClientIp::None)
                    .is_ok(),
                "{i}"
            );
        }
        assert_eq!(
            t.handle_delay_req(T0, a, PortId(1), mac(1), ClientIp::None),
            Err(DropReason::RateLimited)
        );
        // Sustained at 16/s for 10 s: about 8/s pass.
        let mut ok = 0;
        for i in 1..=160u64 {
            let now = T0 + Duration::from_millis(i * 1000 / 16);
            if t.handle_delay_req(now, a, PortId(1), mac(1), ClientIp::None)
                .is_ok()
            {
                ok += 1;
            }
        }
        assert!((79..=81).contains(&ok), "{ok}");
        // A client at exactly its rate is never limited.
        let b = id(2);
        for i in 0..1000u64 {
            let now = T0 + Duration::from_millis(i * 125);
            assert!(t
                .handle_delay_req(now, b, PortId(1), mac(2), ClientIp::None)
                .is_ok());
        }
    }

    #[test]
    fn a_move_must_fit_the_new_ports_share_and_a_new_mac_its_limit() {
        let mut t = table(2);
        let share = t.port_share() as u32;
        for n in 0..share {
            t.handle_delay_req(T0, id(n), PortId(2), mac(n), ClientIp::None)
                .unwrap();
        }
        // Port 1 may fill its own share; port 2's clients then cannot move onto it.
        for n in 0..share {
            let k = 100_000 + n;
            t.handle_delay_req(T0, id(k), PortId(1), mac(k), ClientIp::None)
                .unwrap();
        }
        // Silent past its hold (one request: 2 s), so the share is what refuses the move.
        let t1 = T0 + MIN_HOLD;
        assert_eq!(
            t.handle_delay_req(t1, id(0), PortId(1), mac(0), ClientIp::None),
            Err(DropReason::PortShareFull)
        );
        assert_eq!(t.get(&id(0)).unwrap().port, PortId(2));
        assert_eq!(
            t.get(&id(0)).unwrap().last_seen,
            T0,
            "a refused move is not a refresh"
        );
        // A known identity behind another MAC moves that MAC's count.
        let other = mac(999_999);
        t.handle_delay_req(t1, id(1), PortId(2), other, ClientIp::None)
            .unwrap();
        assert_eq!(t.get(&id(1)).unwrap().mac, other);
        t.expire(T0 + Duration::from_secs(61)); // all but id(1) go
        assert_eq!(t.len(), 1);
        // mac(1) holds nothing any more: 8 new identities fit behind it.
        for n in 0..u32::from(MAX_IDENTITIES_PER_MAC) {
            let k = 200_000 + n;
            let now = T0 + Duration::from_secs(62);
            assert!(
                t.handle_delay_req(now, id(k), PortId(2), mac(1), ClientIp::None)
                    .is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn remap_keeps_clients_of_kept_ports() {
        let mut t = table(2);
        t.handle_delay_req(T0, id(1), PortId(1), mac(1), ClientIp::None)
            .unwrap();
        t.handle_delay_req(T0, id(2), PortId(2), mac(2), ClientIp::None)
            .unwrap();
        let mut map = [None; board::MAX_PORTS];
        map[0] = Some(PortId(0));
        map[2] = Some(PortId(1)); // old port 2 is now port 1, old port 1 removed
        t.remap_ports(&PortMap(map));
        assert!(t.get(&id(1)).is_none());
        assert_eq!(t.get(&id(2)).unwrap().port, PortId(1));
        assert_eq!((t.on_port(PortId(1)), t.on_port(PortId(2))), (1, 0));
    }
}
