//! The client table: who asked for delay measurements, and on which downstream port they live.
//!
//! Keyed by sourcePortIdentity (clockIdentity + portNumber), capacity fixed by the board profile,
//! never allocating. It owns the admission rules that keep a flood of fake identities from
//! hurting real clients:
//! - a known client is never evicted by a newcomer; entries leave only by aging;
//! - each downstream port is guaranteed `capacity / downstream ports` entries: a port may borrow
//!   beyond its share only from space no other port's unused share needs;
//! - one source MAC holds at most [`MAX_IDENTITIES_PER_MAC`] identities;
//! - each client's Delay_Req rate is limited by a GCRA token bucket (RFC 2697-like, one deadline
//!   per client), with one second's worth of burst.

use crate::board;
use crate::fixed_map::FixedMap;
use crate::gcra::Gcra;
use crate::port::{PortId, PortMap};
use crate::stats::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::{EthernetAddress, PortIdentity};

/// Identities one MAC address may hold. A PTP port has its own MAC; a few more allow for
/// multi-port ordinary clocks or devices that restart with a new identity.
pub const MAX_IDENTITIES_PER_MAC: u8 = 8;

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
    /// Delay_Req accepted from this client.
    pub delay_req: u64,
    /// GCRA theoretical arrival time of the next Delay_Req.
    tat: Instant,
}

/// The limits the table enforces, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    /// Delay_Req per second per client.
    pub max_rate: u32,
    /// Downstream ports sharing the table.
    pub downstream_ports: usize,
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
    macs: FixedMap<EthernetAddress, u8>,
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

    /// A Delay_Req from `id` arrived on `port` from `mac`: admit, refresh and rate-limit.
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
            // A known identity on another port, or behind another MAC, is admitted there by the
            // same rules as a newcomer; refused, it is not refreshed and ages out where it was.
            let mut counts = self.per_port;
            counts[known.port.index()] -= 1;
            counts[port.index()] += 1;
            if moved && !self.shares_covered(&counts) {
                return Err(DropReason::PortShareFull);
            }
            let new_mac = known.mac != mac;
            if new_mac && self.macs.get(&mac).copied().unwrap_or(0) >= MAX_IDENTITIES_PER_MAC {
                return Err(DropReason::MacLimit);
            }
            self.per_port = counts;
            if new_mac {
                release_mac(&mut self.macs, &known.mac);
                count_mac(&mut self.macs, mac);
            }
            let Some(c) = self.clients.get_mut(&id) else {
                return Err(DropReason::UnknownClient);
            };
            c.last_seen = now;
            c.port = port;
            c.mac = mac;
            c.ip = ip;
            if !limit.allow(&mut c.tat, now) {
                return Err(DropReason::RateLimited);
            }
            c.delay_req += 1;
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
            tat: limit.first(now),
        };
        if self.clients.insert(id, client).is_err() {
            return Err(DropReason::TableFull);
        }
        self.per_port[port.index()] += 1;
        count_mac(&mut self.macs, mac);
        Ok(Learned::New)
    }

    /// The admission rule for a new identity (see the module documentation).
    fn admit(&self, port: PortId, mac: EthernetAddress) -> Result<(), DropReason> {
        let free = board::MAX_CLIENTS - self.clients.len();
        if free == 0 {
            return Err(DropReason::TableFull);
        }
        if self.macs.get(&mac).copied().unwrap_or(0) >= MAX_IDENTITIES_PER_MAC {
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
    macs: &mut FixedMap<EthernetAddress, u8>,
    c: &Client,
) {
    per_port[c.port.index()] -= 1;
    release_mac(macs, &c.mac);
}

fn count_mac(macs: &mut FixedMap<EthernetAddress, u8>, mac: EthernetAddress) {
    match macs.get_mut(&mac) {
        Some(n) => *n += 1,
        // Cannot fail: the MAC map has as many slots as the client map.
        None => {
            let _ = macs.insert(mac, 1);
        }
    }
}

fn release_mac(macs: &mut FixedMap<EthernetAddress, u8>, mac: &EthernetAddress) {
    if let Some(n) = macs.get_mut(mac) {
        *n -= 1;
        if *n == 0 {
            macs.remove(mac);
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
        assert_eq!(
            t.handle_delay_req(
                later + Duration::from_secs(1),
                a,
                p2,
                mac(1),
                ClientIp::None
            ),
            Ok(Learned::Moved)
        );
        assert_eq!(t.get(&a).unwrap().port, p2);
        assert_eq!((t.on_port(p1), t.on_port(p2), t.len()), (0, 1, 1));
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
        let t1 = T0 + Duration::from_secs(1);
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
