//! A fixed-capacity hash map for the hot path: open addressing with linear probing and
//! backward-shift deletion, at most two-thirds full, its slots allocated once at start.
//!
//! heapless's `IndexMap` would do the job, but it lives inline: a table of thousands of clients
//! is built on the stack and moved (hundreds of KiB to MiB, more than a thread's stack on some
//! boards). Here the slots are one boxed slice allocated by `new` and never resized, so lookups,
//! inserts and removals never allocate. Hashing is FNV-1a keyed with a seed the caller draws at
//! start, so a flood of crafted identities cannot aim at one probe chain.

use core::hash::{Hash, Hasher};

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        // Murmur3's finalizer: spread the low bits the mask keeps.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The table's hash of `k` under `seed` (FNV-1a, then a finalizer), for other fixed tables.
pub fn keyed_hash<K: Hash>(seed: u64, k: &K) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325 ^ seed);
    k.hash(&mut h);
    h.finish()
}

pub struct FixedMap<K, V> {
    slots: Box<[Option<(K, V)>]>,
    len: usize,
    capacity: usize,
    seed: u64,
}

impl<K: Copy + Eq + Hash, V: Copy> FixedMap<K, V> {
    /// Room for `capacity` entries (at least 1), in `1.5 * capacity + 1` slots: even full, a
    /// probe run ends at an empty slot, and stays short (linear probing at load 2/3: about 2
    /// probes to find a key, 5 to miss).
    pub fn new(capacity: usize, seed: u64) -> Self {
        assert!(capacity >= 1, "capacity must be at least 1");
        FixedMap {
            slots: vec![None; capacity + capacity / 2 + 1].into_boxed_slice(),
            len: 0,
            capacity,
            seed,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The slot after `i`, cyclically.
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// The slot `k` hashes to: the hash scaled to the table's length (multiply and keep the
    /// high half), which spreads evenly over any length, not only powers of two.
    fn home(&self, k: &K) -> usize {
        ((u128::from(keyed_hash(self.seed, k)) * self.slots.len() as u128) >> 64) as usize
    }

    fn find(&self, k: &K) -> Option<usize> {
        let mut i = self.home(k);
        loop {
            match &self.slots[i] {
                None => return None,
                Some((kk, _)) if kk == k => return Some(i),
                Some(_) => i = self.next(i),
            }
        }
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k)
            .and_then(|i| self.slots[i].as_ref())
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.find(k)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Insert a new key; gives the entry back if the map is full. The key must not be present.
    pub fn insert(&mut self, k: K, v: V) -> Result<(), (K, V)> {
        if self.len == self.capacity {
            return Err((k, v));
        }
        let mut i = self.home(&k);
        while self.slots[i].is_some() {
            i = self.next(i);
        }
        self.slots[i] = Some((k, v));
        self.len += 1;
        Ok(())
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.find(k)?;
        Some(self.remove_at(i))
    }

    /// Empty slot `i` and shift back the entries of its probe run that may move into it.
    fn remove_at(&mut self, mut i: usize) -> V {
        let (_, v) = self.slots[i].take().expect("remove_at on an occupied slot");
        self.len -= 1;
        let mut j = i;
        loop {
            j = self.next(j);
            let Some((kj, _)) = &self.slots[j] else { break };
            let home = self.home(kj);
            // The entry at j may fill the hole at i if its home is not cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = self.slots[j].take();
                i = j;
            }
        }
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|(k, v)| (k, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.as_mut().map(|(k, v)| (&*k, v)))
    }

    /// Remove every entry for which `keep` is false, calling `removed` with it; returns how many.
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&K, &V) -> bool,
        mut removed: impl FnMut(K, V),
    ) -> usize {
        let mut n = 0;
        let mut i = 0;
        // A removal may shift a later entry into slot i: look at i again before moving on.
        // Entries only ever move backwards, so none is skipped; one wrapped from the start to
        // the end is looked at twice, which `keep` answers the same way.
        while i < self.slots.len() {
            match &self.slots[i] {
                Some((k, v)) if !keep(k, v) => {
                    let k = *k;
                    let v = self.remove_at(i);
                    removed(k, v);
                    n += 1;
                }
                _ => i += 1,
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map_under_churn() {
        let mut m: FixedMap<u32, u32> = FixedMap::new(256, 42);
        let mut reference = HashMap::new();
        let mut x: u32 = 12345;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = x % 600;
            match x % 3 {
                0 | 1 if !reference.contains_key(&k) => {
                    let r = m.insert(k, step);
                    if reference.len() < 256 {
                        assert!(r.is_ok());
                        reference.insert(k, step);
                    } else {
                        assert_eq!(r, Err((k, step)));
                    }
                }
                _ => assert_eq!(m.remove(&k), reference.remove(&k)),
            }
            assert_eq!(m.len(), reference.len());
        }
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(v));
        }
        assert_eq!(m.iter().count(), reference.len());
    }

    #[test]
    fn retain_removes_exactly_the_rejected() {
        let mut m: FixedMap<u32, u32> = FixedMap::new(1024, 7);
        for k in 0..1024 {
            m.insert(k, k).unwrap();
        }
        let mut gone = Vec::new();
        assert_eq!(m.retain(|k, _| k % 3 != 0, |k, _| gone.push(k)), 342);
        gone.sort();
        assert_eq!(gone, (0..1024).filter(|k| k % 3 == 0).collect::<Vec<_>>());
        for k in 0..1024 {
            assert_eq!(m.get(&k).is_some(), k % 3 != 0, "{k}");
        }
    }
}
