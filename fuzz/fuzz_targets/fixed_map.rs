//! Differential: `FixedMap` (open addressing, linear probing, backward-shift deletion) against
//! `std::collections::HashMap` under arbitrary insert / remove / get / get_mut / retain
//! sequences, with small capacities so that full tables, long probe runs and runs that wrap
//! around the end of the slot array are common.
//!
//! After every operation: the same answer, the same length, and iteration yields exactly the
//! reference's entries. `retain` must call `removed` once for each entry it drops, return how
//! many, and ask `keep` about every entry.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ptpproxy::fixed_map::FixedMap;
use std::collections::{HashMap, HashSet};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Capacity 2^(log2 % 7): 1 ..= 64.
    log2: u8,
    seed: u64,
    /// Keys are taken modulo this (+1), to make collisions and re-inserts likely.
    key_space: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    GetMut(u16, u32),
    /// Keep the entries whose key has bit `k % 16` equal to `v`; `flip` inverts for odd values.
    Retain {
        bit: u8,
        v: bool,
        flip: bool,
    },
    Fill(u8),
}

fuzz_target!(|input: Input| {
    let cap = 1usize << (input.log2 % 7);
    let mut m: FixedMap<u16, u32> = FixedMap::new(cap, input.seed);
    let mut r: HashMap<u16, u32> = HashMap::new();
    let space = u32::from(input.key_space) + 1;
    let key = |k: u16| (u32::from(k) % space) as u16;
    assert_eq!(m.capacity(), cap);
    for op in input.ops.iter().take(1024) {
        match *op {
            Op::Insert(k, v) => insert(&mut m, &mut r, key(k), v, cap),
            Op::Fill(base) => {
                for i in 0..cap as u16 + 2 {
                    let k = key(u16::from(base).wrapping_add(i.wrapping_mul(7)));
                    insert(&mut m, &mut r, k, u32::from(i), cap);
                }
            }
            Op::Remove(k) => assert_eq!(m.remove(&key(k)), r.remove(&key(k))),
            Op::Get(k) => assert_eq!(m.get(&key(k)), r.get(&key(k))),
            Op::GetMut(k, v) => {
                let k = key(k);
                match (m.get_mut(&k), r.get_mut(&k)) {
                    (Some(a), Some(b)) => {
                        assert_eq!(a, b);
                        *a = v;
                        *b = v;
                    }
                    (None, None) => {}
                    (a, b) => panic!("get_mut({k}): {a:?} vs {b:?}"),
                }
            }
            Op::Retain { bit, v, flip } => {
                let keep = |k: &u16, val: &u32| {
                    ((k >> (bit % 16)) & 1 == 1) == v || (flip && val % 2 == 1)
                };
                let mut asked = HashSet::new();
                let mut removed = Vec::new();
                let n = m.retain(
                    |k, val| {
                        asked.insert(*k);
                        keep(k, val)
                    },
                    |k, val| removed.push((k, val)),
                );
                let mut want: Vec<(u16, u32)> = r
                    .iter()
                    .filter(|(k, v)| !keep(k, v))
                    .map(|(k, v)| (*k, *v))
                    .collect();
                r.retain(|k, v| keep(k, v));
                want.sort();
                removed.sort();
                assert_eq!(removed, want, "retain removed");
                assert_eq!(n, want.len());
                let all: HashSet<u16> = want.iter().map(|e| e.0).chain(r.keys().copied()).collect();
                assert_eq!(asked, all, "retain must ask about every entry");
            }
        }
        assert_eq!(m.len(), r.len());
        assert_eq!(m.is_empty(), r.is_empty());
        assert!(m.len() <= cap);
        let mut got: Vec<(u16, u32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        got.sort();
        let mut want: Vec<(u16, u32)> = r.iter().map(|(k, v)| (*k, *v)).collect();
        want.sort();
        assert_eq!(got, want);
    }
    // Every key the reference holds is found; iter_mut visits each once.
    for (k, v) in &r {
        assert_eq!(m.get(k), Some(v));
    }
    assert_eq!(m.iter_mut().count(), r.len());
});

fn insert(m: &mut FixedMap<u16, u32>, r: &mut HashMap<u16, u32>, k: u16, v: u32, cap: usize) {
    if r.contains_key(&k) {
        // insert's contract: the key must not be present (callers look it up first).
        assert!(m.get(&k).is_some());
        return;
    }
    let got = m.insert(k, v);
    if r.len() < cap {
        assert_eq!(got, Ok(()));
        r.insert(k, v);
    } else {
        assert_eq!(got, Err((k, v)), "a full map gives the entry back");
    }
}
