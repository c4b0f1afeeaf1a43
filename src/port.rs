//! Port numbering shared by the core and the shell: [`PortId`] (0 is upstream, 1.. the
//! downstream ports in configuration order), [`PortSet`] (a bit set of ports) and [`PortMap`]
//! (how a reload renumbers them).
//!
//! A leaf module: it knows the configuration's port names, nothing of frames or tables.

use crate::board;
use crate::config::Config;

/// Index of a port: 0 is upstream, 1.. are the downstream ports in configuration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u8);

impl PortId {
    pub const UPSTREAM: PortId = PortId(0);

    pub const fn index(self) -> usize {
        self.0 as usize
    }

    pub const fn is_upstream(self) -> bool {
        self.0 == 0
    }
}

/// A set of ports, one bit each (board::MAX_PORTS <= 32, checked by build.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortSet(pub u32);

impl PortSet {
    pub const EMPTY: PortSet = PortSet(0);

    pub const fn single(p: PortId) -> PortSet {
        PortSet(1 << p.0)
    }

    /// Ports `first..first + count`.
    pub const fn range(first: u8, count: usize) -> PortSet {
        PortSet((((1u64 << count) - 1) << first) as u32)
    }

    pub const fn contains(self, p: PortId) -> bool {
        self.0 & (1 << p.0) != 0
    }

    #[must_use]
    pub const fn without(self, p: PortId) -> PortSet {
        PortSet(self.0 & !(1 << p.0))
    }

    #[must_use]
    pub const fn with(self, p: PortId) -> PortSet {
        PortSet(self.0 | (1 << p.0))
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn iter(self) -> impl Iterator<Item = PortId> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let p = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(PortId(p))
        })
    }
}

/// How a reload renumbers the ports: a port keeps its state (clients, counters, open handles,
/// remembered residences) if its interface name and role (upstream or downstream) stay; every
/// other port of the old configuration is gone. Computed once per reload and applied by the
/// core and the shell alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// `map.0[old index] = Some(new index)`.
pub struct PortMap(pub [Option<PortId>; board::MAX_PORTS]);

impl PortMap {
    /// The map from `old`'s port indices to `new`'s.
    pub fn between(old: &Config, new: &Config) -> PortMap {
        let mut map = [None; board::MAX_PORTS];
        if old.upstream == new.upstream {
            map[0] = Some(PortId::UPSTREAM);
        }
        for (i, name) in old.downstream.iter().enumerate() {
            if let Some(j) = new.downstream.iter().position(|n| n == name) {
                map[i + 1] = Some(PortId(j as u8 + 1));
            }
        }
        PortMap(map)
    }

    /// Every port stays where it is.
    pub fn identity() -> PortMap {
        PortMap(core::array::from_fn(|i| Some(PortId(i as u8))))
    }

    /// Where old port `old` went, if it stayed.
    pub fn get(&self, old: PortId) -> Option<PortId> {
        self.0.get(old.index()).copied().flatten()
    }

    /// The ports of `set` under their new numbers (ports that went are left out).
    pub fn apply_set(&self, set: PortSet) -> PortSet {
        set.iter()
            .filter_map(|p| self.get(p))
            .fold(PortSet::EMPTY, PortSet::with)
    }

    /// Move per-port values to their new indices; ports that went get `T::default()`.
    pub fn apply<T: Copy + Default>(
        &self,
        values: &[T; board::MAX_PORTS],
    ) -> [T; board::MAX_PORTS] {
        let mut out = [T::default(); board::MAX_PORTS];
        for (i, v) in values.iter().enumerate() {
            if let Some(to) = self.get(PortId(i as u8)) {
                out[to.index()] = *v;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_set_iterates_in_port_order() {
        let s = PortSet::range(1, 3)
            .without(PortId(2))
            .with(PortId::UPSTREAM);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [PortId(0), PortId(1), PortId(3)]
        );
        assert_eq!(s.len(), 3);
        assert!(!s.contains(PortId(2)));
        assert!(PortSet::EMPTY.is_empty());
    }

    #[test]
    fn a_reload_keeps_ports_by_name_and_role() {
        let old = Config::parse(br#"{"upstream": "eth0", "downstream": ["lan1", "lan2", "lan3"]}"#)
            .unwrap();
        let new =
            Config::parse(br#"{"upstream": "lan1", "downstream": ["lan3", "lan2"]}"#).unwrap();
        let map = PortMap::between(&old, &new);
        // eth0 is gone; lan1 became upstream: a new role, so a new port.
        assert_eq!(map.get(PortId(0)), None);
        assert_eq!(map.get(PortId(1)), None);
        assert_eq!(map.get(PortId(2)), Some(PortId(2)));
        assert_eq!(map.get(PortId(3)), Some(PortId(1)));
        let mut counts = [0u64; board::MAX_PORTS];
        counts[..4].copy_from_slice(&[10, 11, 12, 13]);
        assert_eq!(map.apply(&counts)[..3], [0, 13, 12]);
    }
}
