//! Differential: `ClientTable` against a plain `HashMap` model of the rules in README.md and
//! clients.rs (admission, per-port share, per-MAC limit, identity ownership and its hold time,
//! GCRA rate, aging, remapping), under
//! arbitrary Delay_Req, floods of new identities, known clients moving, expiry, remaps and new
//! limits.
//!
//! After every operation the table must equal the model: the same answer, the same entries
//! (port, MAC, IP, last seen, Delay_Req count), per-port counts equal to a recount, at most
//! `capacity()` entries, no MAC with more than max_identities_per_mac identities, a refused
//! Delay_Req changing nothing. And, as
//! long as the shares have not been changed by a remap or new limits, the fairness guarantee
//! itself: the free entries cover every port's unused share, so a port below its share is
//! never refused for lack of room.
//!
//! `PTPPROXY_FUZZ_KNOWN` (comma-separated) lets a long run go past reported findings:
//! `mac-change` keeps a known client's MAC as it was; `share-move` stops checking the fairness
//! guarantee once a client has moved between ports. See `fuzz/README.md`, "Findings".
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ptpproxy::board;
use ptpproxy::clients::{ClientIp, ClientTable, Learned, Limits, HOLD_INTERVALS, MIN_HOLD};
use ptpproxy::port::{PortId, PortMap};
use ptpproxy::stats::DropReason;
use ptpproxy::time::{Duration, Instant};
use ptpproxy::wire::{EthernetAddress, PortIdentity};
use ptpproxy_fuzz::{start_time, step, Map};
use std::sync::OnceLock;

const MAX_DOWNSTREAM: u8 = (board::MAX_PORTS - 1) as u8;

#[derive(Arbitrary, Debug)]
struct Input {
    limits: LimitBytes,
    seed: u64,
    start: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct LimitBytes {
    ports: u8,
    timeout: u8,
    rate: u8,
    mac_limit: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A Delay_Req from a pooled identity and MAC (64 identities, 32 MACs).
    DelayReq {
        step: u8,
        id: u8,
        port: u8,
        mac: u8,
        ip: u8,
    },
    /// A known client again, by index in the table's order, from `port`.
    Known {
        step: u8,
        pick: u16,
        port: u8,
        new_mac: Option<u8>,
    },
    /// Many new identities on one port at one instant.
    Flood {
        step: u8,
        port: u8,
        count: u8,
        mac_mode: u8,
        base: u8,
    },
    Expire {
        step: u8,
    },
    /// Per old port 1..=8: keep, forget, or move to another port.
    Remap {
        map: [u8; 8],
    },
    SetLimits {
        limits: LimitBytes,
    },
}

fn known(what: &str) -> bool {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| std::env::var("PTPPROXY_FUZZ_KNOWN").unwrap_or_default())
        .split(',')
        .any(|s| s == what)
}

fn limits(b: LimitBytes) -> Limits {
    const RATES: [u32; 8] = [1, 2, 3, 8, 16, 128, 1024, 1_000_000];
    Limits {
        timeout: Duration::from_secs(2 + u64::from(b.timeout % 16)),
        max_rate: RATES[usize::from(b.rate % 8)],
        downstream_ports: usize::from(b.ports % MAX_DOWNSTREAM) + 1,
        max_identities_per_mac: u16::from(b.mac_limit % 16) + 1,
    }
}

/// The hold time of a client whose observed interval is `interval_us`.
fn hold(interval_us: u32) -> Duration {
    Duration(
        MIN_HOLD
            .0
            .max(u64::from(interval_us) * 1_000 * HOLD_INTERVALS),
    )
}

/// The interval estimate after a gap of `gap` (a moving average, weight 1/4; the first gap as is).
fn observe(interval_us: u32, gap: Duration) -> u32 {
    let sample = i64::from(u32::try_from(gap.0 / 1_000).unwrap_or(u32::MAX));
    let old = i64::from(interval_us);
    let new = if interval_us == 0 {
        sample
    } else {
        old + (sample - old) / 4
    };
    u32::try_from(new).unwrap_or(u32::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct MClient {
    port: PortId,
    mac: EthernetAddress,
    ip: ClientIp,
    last_seen: Instant,
    delay_req: u32,
    tat: Instant,
    interval_us: u32,
}

struct Model {
    clients: Map<PortIdentity, MClient>,
    per_port: [usize; board::MAX_PORTS],
    per_mac: Map<EthernetAddress, usize>,
    limits: Limits,
    cap: usize,
}

impl Model {
    fn share(&self) -> usize {
        self.cap / self.limits.downstream_ports.max(1)
    }

    fn insert(&mut self, id: PortIdentity, c: MClient) {
        self.per_port[c.port.index()] += 1;
        *self.per_mac.entry(c.mac).or_default() += 1;
        self.clients.insert(id, c);
    }

    fn remove(&mut self, id: &PortIdentity) -> MClient {
        let c = self.clients.remove(id).unwrap();
        self.per_port[c.port.index()] -= 1;
        let n = self.per_mac.get_mut(&c.mac).unwrap();
        *n -= 1;
        if *n == 0 {
            self.per_mac.remove(&c.mac);
        }
        c
    }

    fn delay_req(
        &mut self,
        now: Instant,
        id: PortIdentity,
        port: PortId,
        mac: EthernetAddress,
        ip: ClientIp,
    ) -> Result<Learned, DropReason> {
        let rate = u64::from(self.limits.max_rate.max(1));
        let interval = Duration(1_000_000_000 / rate);
        let tolerance = Duration(interval.0 * (rate - 1));
        if let Some(&known) = self.clients.get(&id) {
            let moved = known.port != port;
            let new_mac = known.mac != mac;
            // Another port or MAC gets a live identity only after its hold time of silence.
            if (moved || new_mac) && now.saturating_since(known.last_seen) < hold(known.interval_us)
            {
                return Err(DropReason::IdentityConflict);
            }
            // A move must fit the new port's share (counted as if the client had left its old
            // port); a new MAC must be under its identity limit. Refused: nothing changes.
            if moved {
                let mut counts = self.per_port;
                counts[known.port.index()] -= 1;
                counts[port.index()] += 1;
                let share = self.share();
                let unused: usize = (1..=self.limits.downstream_ports)
                    .map(|p| share.saturating_sub(counts[p]))
                    .sum();
                if self.cap - self.clients.len() < unused {
                    return Err(DropReason::PortShareFull);
                }
            }
            if new_mac
                && self.per_mac.get(&mac).copied().unwrap_or(0)
                    >= usize::from(self.limits.max_identities_per_mac)
            {
                return Err(DropReason::MacLimit);
            }
            if now < known.tat - tolerance {
                return Err(DropReason::RateLimited);
            }
            let mut c = self.remove(&id);
            if !moved && !new_mac {
                c.interval_us = observe(c.interval_us, now.saturating_since(c.last_seen));
            }
            c.port = port;
            c.mac = mac;
            c.ip = ip;
            c.last_seen = now;
            c.tat = c.tat.max(now) + interval;
            c.delay_req = c.delay_req.saturating_add(1);
            self.insert(id, c);
            return Ok(if moved {
                Learned::Moved
            } else {
                Learned::Refreshed
            });
        }
        let free = self.cap - self.clients.len();
        if free == 0 {
            return Err(DropReason::TableFull);
        }
        if self.per_mac.get(&mac).copied().unwrap_or(0)
            >= usize::from(self.limits.max_identities_per_mac)
        {
            return Err(DropReason::MacLimit);
        }
        let share = self.share();
        if self.per_port[port.index()] >= share {
            let reserved: usize = (1..=self.limits.downstream_ports)
                .filter(|&p| p != port.index())
                .map(|p| share.saturating_sub(self.per_port[p]))
                .sum();
            if free <= reserved {
                return Err(DropReason::PortShareFull);
            }
        }
        let c = MClient {
            port,
            mac,
            ip,
            last_seen: now,
            delay_req: 1,
            tat: now + interval,
            interval_us: 0,
        };
        self.insert(id, c);
        Ok(Learned::New)
    }

    /// Free entries cover every port's unused share.
    fn fair(&self) -> bool {
        let share = self.share();
        let unused: usize = (1..=self.limits.downstream_ports)
            .map(|p| share.saturating_sub(self.per_port[p]))
            .sum();
        self.cap - self.clients.len() >= unused
    }
}

struct Harness {
    table: ClientTable,
    model: Model,
    now: Instant,
    /// The fairness guarantee holds from the start until shares are changed.
    fair_valid: bool,
    /// A known client changed its MAC: a MAC may then hold more than the limit (the limit is
    /// for admitting new identities).
    mac_changed: bool,
    /// The largest max_identities_per_mac set so far (a lowered limit leaves MACs above it).
    mac_limit: u16,
}

fuzz_target!(|input: Input| {
    let l = limits(input.limits);
    let table = ClientTable::new(l, input.seed);
    let cap = table.capacity();
    let mut h = Harness {
        table,
        model: Model {
            clients: Map::default(),
            per_port: [0; board::MAX_PORTS],
            per_mac: Map::default(),
            limits: l,
            cap,
        },
        now: Instant(start_time(input.start)),
        fair_valid: true,
        mac_changed: false,
        mac_limit: l.max_identities_per_mac,
    };
    for op in input.ops.iter().take(512) {
        h.op(op);
        // The full walk visits every slot (twice the capacity): after each operation only the
        // counts, the walk after the operations that touch many entries and at the end.
        if matches!(op, Op::DelayReq { .. } | Op::Known { .. }) {
            h.check_counts();
        } else {
            h.check();
        }
    }
    h.check();
});

fn pool_id(b: u8) -> PortIdentity {
    PortIdentity {
        clock_identity: [0x0c, 0, 0, 0xff, 0xfe, 0, 0, b & 0x3f],
        port_number: u16::from(b >> 6),
    }
}

fn pool_mac(b: u8) -> EthernetAddress {
    EthernetAddress([0x06, 0, 0, 0, 0, b & 0x1f])
}

fn pool_ip(b: u8) -> ClientIp {
    match b % 3 {
        0 => ClientIp::None,
        1 => ClientIp::V4([10, 0, 0, b]),
        _ => ClientIp::V6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b]),
    }
}

impl Harness {
    fn port(&self, b: u8) -> PortId {
        PortId((b as usize % self.model.limits.downstream_ports) as u8 + 1)
    }

    fn delay_req(
        &mut self,
        id: PortIdentity,
        port: PortId,
        mut mac: EthernetAddress,
        ip: ClientIp,
    ) {
        let before = self.model.clients.get(&id).copied();
        if let Some(c) = before {
            if known("mac-change") {
                mac = c.mac;
            }
            self.mac_changed |= c.mac != mac;
        }
        let got = self.table.handle_delay_req(self.now, id, port, mac, ip);
        let want = self.model.delay_req(self.now, id, port, mac, ip);
        assert_eq!(got, want, "Delay_Req of {id} on {port:?} from {mac}");
        if let Some(c) = before {
            if c.port != port && known("share-move") {
                self.fair_valid = false;
            }
        }
        if matches!(got, Err(DropReason::TableFull | DropReason::PortShareFull)) && self.fair_valid
        {
            assert!(
                self.model.per_port[port.index()] >= self.model.share(),
                "{port:?} holds {} of its share {} and was refused {got:?}",
                self.model.per_port[port.index()],
                self.model.share()
            );
        }
        if got.is_ok() {
            let c = self.table.get(&id).expect("in the table");
            let m = self.model.clients[&id];
            assert_eq!(
                (c.port, c.mac, c.ip, c.last_seen, c.delay_req, c.interval()),
                (
                    m.port,
                    m.mac,
                    m.ip,
                    m.last_seen,
                    m.delay_req,
                    Duration(u64::from(m.interval_us) * 1_000)
                )
            );
        } else if let Some(b) = before {
            // A refused Delay_Req of a known client changes nothing, whatever the reason.
            let c = self.table.get(&id).expect("a refused known client stays");
            assert_eq!(
                (c.port, c.mac, c.ip, c.last_seen, c.delay_req, c.hold()),
                (
                    b.port,
                    b.mac,
                    b.ip,
                    b.last_seen,
                    b.delay_req,
                    hold(b.interval_us)
                )
            );
        } else {
            assert!(self.table.get(&id).is_none());
        }
    }

    fn op(&mut self, op: &Op) {
        match *op {
            Op::DelayReq {
                step: s,
                id,
                port,
                mac,
                ip,
            } => {
                self.now = self.now + step(s);
                let port = self.port(port);
                self.delay_req(pool_id(id), port, pool_mac(mac), pool_ip(ip));
            }
            Op::Known {
                step: s,
                pick,
                port,
                new_mac,
            } => {
                self.now = self.now + step(s);
                let len = self.table.len();
                if len == 0 {
                    return;
                }
                let (id, c) = self.table.iter().nth(usize::from(pick) % len).unwrap();
                let (id, mac, ip) = (*id, new_mac.map_or(c.mac, pool_mac), c.ip);
                let port = self.port(port);
                self.delay_req(id, port, mac, ip);
            }
            Op::Flood {
                step: s,
                port,
                count,
                mac_mode,
                base,
            } => {
                self.now = self.now + step(s);
                let port = self.port(port);
                let cap = self.model.cap;
                let share = self.model.share();
                let n = match count % 16 {
                    0..=9 => usize::from(count % 16) + 1,
                    10 => share.saturating_sub(1),
                    11 => share,
                    12 => share + 1,
                    13 => cap - 1,
                    14 => cap,
                    _ => cap + 8,
                };
                for i in 0..n as u32 {
                    let b = i.to_be_bytes();
                    let id = PortIdentity {
                        clock_identity: [0x0b, base, b[1], 0xff, 0xfe, b[2], b[3], 0],
                        port_number: 1,
                    };
                    let mac = match mac_mode % 3 {
                        0 => EthernetAddress([0x06, base, 1, b[1], b[2], b[3]]),
                        1 => EthernetAddress([0x06, base, 2, 0, 0, 0]),
                        _ => {
                            let k = (i / 8).to_be_bytes();
                            EthernetAddress([0x06, base, 3, k[1], k[2], k[3]])
                        }
                    };
                    self.delay_req(id, port, mac, ClientIp::None);
                }
            }
            Op::Expire { step: s } => {
                self.now = self.now + step(s);
                let got = self.table.expire(self.now);
                let (now, timeout) = (self.now, self.model.limits.timeout);
                let gone: Vec<PortIdentity> = self
                    .model
                    .clients
                    .iter()
                    .filter(|(_, c)| now.saturating_since(c.last_seen) > timeout)
                    .map(|(id, _)| *id)
                    .collect();
                for id in &gone {
                    self.model.remove(id);
                }
                assert_eq!(got, gone.len(), "expired");
            }
            Op::Remap { map } => {
                let ports = self.model.limits.downstream_ports;
                let mut m = [None; board::MAX_PORTS];
                m[0] = Some(PortId(0));
                for (i, &b) in map.iter().enumerate().take(board::MAX_PORTS - 1) {
                    m[i + 1] = match b % 3 {
                        0 => Some(PortId(i as u8 + 1)),
                        1 => None,
                        _ => Some(PortId((usize::from(b / 3) % ports) as u8 + 1)),
                    };
                }
                self.table.remap_ports(&PortMap(m));
                let ids: Vec<PortIdentity> = self.model.clients.keys().copied().collect();
                for id in ids {
                    let c = self.model.remove(&id);
                    if let Some(p) = m[c.port.index()] {
                        self.model.insert(id, MClient { port: p, ..c });
                    }
                }
                self.fair_valid = false;
            }
            Op::SetLimits { limits: b } => {
                let l = limits(b);
                self.table.set_limits(l);
                self.mac_limit = self.mac_limit.max(l.max_identities_per_mac);
                if l.downstream_ports != self.model.limits.downstream_ports {
                    self.fair_valid = false;
                }
                // Clients on ports beyond the new count stay where they are (a reload forgets
                // them first, through remap_ports): the model keeps them as well.
                self.model.limits = l;
                assert_eq!(self.table.limits(), l);
            }
        }
    }

    fn check_counts(&self) {
        let (t, m) = (&self.table, &self.model);
        assert!(t.len() <= t.capacity());
        assert_eq!(t.len(), m.clients.len());
        for (p, &count) in m.per_port.iter().enumerate() {
            assert_eq!(t.on_port(PortId(p as u8)), count, "on_port({p})");
        }
        if self.fair_valid {
            assert!(
                m.fair(),
                "the free entries no longer cover the ports' unused shares: {:?}",
                &m.per_port[..=m.limits.downstream_ports]
            );
        }
    }

    fn check(&self) {
        self.check_counts();
        let t = &self.table;
        let m = &self.model;
        assert!(t.len() <= t.capacity());
        assert_eq!(t.len(), m.clients.len());
        assert_eq!(t.is_empty(), m.clients.is_empty());
        assert_eq!(t.port_share(), m.share());
        let mut per_port = [0usize; board::MAX_PORTS];
        let mut per_mac: Map<EthernetAddress, usize> = Map::default();
        let mut n = 0;
        for (id, c) in t.iter() {
            n += 1;
            let mc = m
                .clients
                .get(id)
                .unwrap_or_else(|| panic!("{id} not in the model"));
            assert_eq!(
                (c.port, c.mac, c.ip, c.last_seen, c.delay_req),
                (mc.port, mc.mac, mc.ip, mc.last_seen, mc.delay_req),
                "{id}"
            );
            per_port[c.port.index()] += 1;
            *per_mac.entry(c.mac).or_default() += 1;
        }
        assert_eq!(n, t.len());
        assert_eq!(per_port, m.per_port);
        for (p, &count) in per_port.iter().enumerate() {
            assert_eq!(t.on_port(PortId(p as u8)), count, "on_port({p})");
        }
        assert_eq!(per_mac, m.per_mac);
        if !self.mac_changed {
            for (mac, &k) in &per_mac {
                assert!(
                    k <= usize::from(self.mac_limit),
                    "{mac} holds {k} identities"
                );
            }
        }
        if self.fair_valid {
            assert!(
                m.fair(),
                "the free entries no longer cover the ports' unused shares: {:?}",
                &m.per_port[..=m.limits.downstream_ports]
            );
        }
    }
}
