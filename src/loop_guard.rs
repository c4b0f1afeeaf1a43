//! The loop guard: a frame the relay sent moments ago that comes back in, on any port, is not
//! relayed again.
//!
//! A downstream segment patched back into the grandmaster's segment (or two downstream
//! segments joined) returns every relayed Sync, Follow_Up and Announce on the upstream port (a
//! relayed Delay_Req on a downstream port), and the relay would send it again, forever: the
//! frames multiply, the clients see each one several times, and a client's Delay_Req coming
//! back on another port would move it there. Spanning tree cannot see such a loop, because the
//! relay does not forward BPDUs.
//!
//! A frame is known by a 64-bit keyed fingerprint of what identifies a PTP message:
//! messageType, domainNumber, sourcePortIdentity and sequenceId, and for a Delay_Resp also
//! the requestingPortIdentity (a grandmaster answers many clients' Delay_Req that carry the
//! same sequenceIds). [`LoopGuard::record`] notes the fingerprint of every frame relayed, with
//! the ports it went to; [`LoopGuard::check`] runs on every frame received, before anything else
//! is decided about it (a looped Delay_Req must not move its client to the port it came back on).
//!
//! The table is set-associative: [`BUCKETS`] buckets of [`WAYS`] entries, a fingerprint's top
//! bits choosing the bucket, each entry holding a fingerprint, the port its frame came in on,
//! the ports it went to and when. O(1) (one cache line of fingerprints per check) and no
//! allocation per frame. A full bucket gives its oldest entry to a new frame; a frame is only
//! ever dropped for a 64-bit fingerprint that equals one recorded within the entry's lifetime.
//!
//! Why more than one entry per bucket: frames travel a loop together. A Sync and its Follow_Up
//! whose fingerprints share a bucket would, in a table of one entry per bucket, take it from each
//! other on every round: the Sync is recorded, the Follow_Up overwrites it, the Sync comes back
//! unrecognised, is relayed and recorded again, overwriting the Follow_Up, which then comes back
//! unrecognised too, and so on for as long as the loop stands (one pair in 4096 on average, so
//! by estimate one field run of 160 pairs in 25; one CI run met it and relayed 8,386 Syncs and
//! as many Follow_Ups in 20 s instead of 160). With [`WAYS`] entries, such a cycle needs more than [`WAYS`] frames
//! in the loop at once in the one bucket.

use crate::port::{PortId, PortSet};
use crate::time::{Duration, Instant};
use crate::wire::PtpFrame;

/// Entries of the table (a power of two): 24 bytes each, 96 KiB in all. A looped frame comes
/// back within a few holds (ms); at 256k relayed frames per second (1000 clients x 128
/// Delay_Req/s each way) some 1000–1500 frames are recorded meanwhile, and a full bucket gives up
/// its oldest entry first, so most entries are still there when their frame returns, and the few
/// that are not are caught on the next round.
pub const SLOTS: usize = BUCKETS * WAYS;

/// Entries per bucket: the fingerprints of one bucket fill 32 bytes, half a cache line.
pub const WAYS: usize = 4;

/// Buckets of the table (a power of two).
pub const BUCKETS: usize = 1024;

/// The shortest lifetime of an entry: far longer than a frame takes to come back through a loop
/// (a batch hold plus the wire, a few ms), far shorter than it takes a sender to reuse a
/// sequenceId (65536 messages: 512 s at 128 Delay_Req/s, the fastest rate a client may have).
pub const LIFETIME_MIN: Duration = Duration::from_millis(50);

/// How long an entry is kept with frames held for up to `max_hold_us` before they are sent:
/// a frame recorded as it is read leaves up to a hold later, and its echo waits up to another
/// hold in the ring, so four holds, and never less than [`LIFETIME_MIN`].
pub fn lifetime(max_hold_us: u32) -> Duration {
    let holds = Duration(u64::from(max_hold_us) * 4_000);
    if holds > LIFETIME_MIN {
        holds
    } else {
        LIFETIME_MIN
    }
}

/// [`WAYS`] entries, field by field, so that a check reads the fingerprints alone (0: empty).
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Bucket {
    fingerprint: [u64; WAYS],
    /// When each was sent (the core's clock).
    sent: [Instant; WAYS],
    /// Where each frame was sent.
    sent_on: [PortSet; WAYS],
    /// Where each came in.
    received_on: [PortId; WAYS],
}

/// What [`LoopGuard::probe`] found for a fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Sent within the lifetime: the port it had come in on, the ports it went to.
    Seen(PortId, PortSet),
    /// Not: the entry [`LoopGuard::record`] should take if it is sent.
    New(Entry),
}

/// An entry of the table: a bucket and one of its ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    bucket: usize,
    way: usize,
}

/// A frame's identity under the guard's key, from [`LoopGuard::fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

pub struct LoopGuard {
    /// A fixed-size array, so that a fingerprint's top bits index it without a bounds check.
    buckets: Box<[Bucket; BUCKETS]>,
    lifetime: Duration,
    key: [u64; 3],
}

/// The 128-bit product of `a` and `b`, folded to 64 bits (wyhash's mixing step).
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl LoopGuard {
    /// An empty table whose entries live `lifetime`; `seed` keys the fingerprints (draw it at
    /// random, so that nobody can craft frames whose fingerprints collide with others').
    pub fn new(lifetime: Duration, seed: u64) -> LoopGuard {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            fold_mul(s ^ 0xA076_1D64_78BD_642F, s ^ 0xE703_7ED1_A0B4_28DB) | 1
        };
        // Built on the heap (96 KiB would be a large stack frame on a small board).
        let buckets: Box<[Bucket]> = vec![Bucket::default(); BUCKETS].into_boxed_slice();
        let Ok(buckets) = buckets.try_into() else {
            unreachable!("a boxed slice of BUCKETS buckets")
        };
        LoopGuard {
            buckets,
            lifetime,
            key: [next(), next(), next()],
        }
    }

    /// Forget every entry (a reload renumbers the ports they name) and take a new lifetime.
    pub fn reset(&mut self, lifetime: Duration) {
        self.buckets.fill(Bucket::default());
        self.lifetime = lifetime;
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The fingerprint of the PTP message of `frame` (read as `parsed`): messageType,
    /// domainNumber, sourcePortIdentity, sequenceId, and a Delay_Resp's requestingPortIdentity.
    #[inline]
    pub fn fingerprint(&self, parsed: &PtpFrame, frame: &[u8]) -> Fingerprint {
        let o = parsed.ptp_offset;
        // The common header: messageType (octet 0), domainNumber (4), sourcePortIdentity
        // (20..30), sequenceId (30..32). Every message parse() accepts holds at least 44 octets.
        let Some(h) = frame
            .get(o..o + 32)
            .and_then(|h| <&[u8; 32]>::try_from(h).ok())
        else {
            return Fingerprint(0);
        };
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&h[at..at + 8]);
            u64::from_le_bytes(w)
        };
        // messageType (the low nibble of octet 0) and domainNumber (octet 4), where they stand.
        let kind_domain = word(0) & 0x0000_00FF_0000_000F;
        let clock = word(20);
        let mut port_seq = u64::from(u32::from_le_bytes([h[28], h[29], h[30], h[31]]));
        let mut requesting = 0;
        if h[0] & 0x0F == 0x9 {
            // Delay_Resp body: receiveTimestamp (10), requestingPortIdentity (10).
            if let Some(r) = frame
                .get(o + 44..o + 54)
                .and_then(|r| <&[u8; 10]>::try_from(r).ok())
            {
                let mut id = [0u8; 8];
                id.copy_from_slice(&r[..8]);
                requesting = u64::from_le_bytes(id);
                port_seq |= u64::from(u16::from_le_bytes([r[8], r[9]])) << 32;
            }
        }
        let h = fold_mul(clock ^ self.key[0], port_seq ^ self.key[1]);
        Fingerprint(fold_mul(h ^ requesting, kind_domain ^ self.key[2]))
    }

    /// The bucket of `f`: its top bits (below BUCKETS, so indexing cannot fail).
    #[inline]
    fn bucket(f: Fingerprint) -> usize {
        (f.0 >> (64 - BUCKETS.trailing_zeros())) as usize % BUCKETS
    }

    /// If a frame of this fingerprint was sent within the lifetime: [`Probe::Seen`], with the
    /// port it had come in on and the ports it was sent on; else where to record it: its own
    /// (expired) entry, or the bucket's oldest (an empty or expired one is older than any live
    /// one). One pass over the bucket serves both.
    #[inline]
    pub fn probe(&self, now: Instant, f: Fingerprint) -> Probe {
        let bucket = Self::bucket(f);
        let b = &self.buckets[bucket];
        let mut way = 0;
        for w in 0..WAYS {
            if b.fingerprint[w] == f.0 {
                if now.saturating_since(b.sent[w]) < self.lifetime {
                    return Probe::Seen(b.received_on[w], b.sent_on[w]);
                }
                way = w;
                break;
            }
            if b.sent[w] < b.sent[way] {
                way = w;
            }
        }
        Probe::New(Entry { bucket, way })
    }

    /// If a frame of this fingerprint was sent within the lifetime: the port it had come in on
    /// and the ports it was sent on (tests; the relay uses [`LoopGuard::probe`]).
    #[cfg(test)]
    pub fn check(&self, now: Instant, f: Fingerprint) -> Option<(PortId, PortSet)> {
        match self.probe(now, f) {
            Probe::Seen(from, to) => Some((from, to)),
            Probe::New(_) => None,
        }
    }

    /// Note in `entry` (from [`LoopGuard::probe`] of `f`) that the frame of fingerprint `f`,
    /// received on `from`, is being sent on `to` at `now`.
    #[inline]
    pub fn record(
        &mut self,
        entry: Entry,
        now: Instant,
        f: Fingerprint,
        from: PortId,
        to: PortSet,
    ) {
        let Some(b) = self.buckets.get_mut(entry.bucket) else {
            return;
        };
        let w = entry.way % WAYS;
        b.fingerprint[w] = f.0;
        b.sent[w] = now;
        b.sent_on[w] = to;
        b.received_on[w] = from;
    }

    /// Entries that have not expired at `now` (a scan: for tests and diagnosis, not per frame).
    pub fn live(&self, now: Instant) -> usize {
        self.buckets
            .iter()
            .flat_map(|b| b.fingerprint.iter().zip(&b.sent))
            .filter(|&(&p, &sent)| p != 0 && now.saturating_since(sent) < self.lifetime)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MessageType;
    use crate::wire::{MessageRepr, PortIdentity, PtpFrameRepr};

    const T0: Instant = Instant(5_000_000_000);

    fn id(n: u16) -> PortIdentity {
        PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, (n >> 8) as u8, n as u8],
            port_number: 1,
        }
    }

    fn frame(
        kind: u8,
        source: PortIdentity,
        seq: u16,
        requesting: Option<PortIdentity>,
    ) -> Vec<u8> {
        let len = match kind {
            0xB => 64,
            0x9 => 54,
            0xD => 48,
            _ => 44,
        };
        let m = MessageRepr::bare(MessageType::from_nibble(kind), source, seq, requesting, len);
        let r = PtpFrameRepr::l2(m);
        let mut f = vec![0u8; r.buffer_len()];
        r.emit(&mut f);
        f
    }

    /// Probe `f` and record it, as the relay does with a frame it sends.
    fn note(g: &mut LoopGuard, now: Instant, f: Fingerprint, from: PortId, to: PortSet) {
        let Probe::New(e) = g.probe(now, f) else {
            panic!("{f:?} is recorded and live");
        };
        g.record(e, now, f, from, to);
    }

    fn fp(g: &LoopGuard, f: &[u8]) -> Fingerprint {
        g.fingerprint(&PtpFrame::parse(f).unwrap(), f)
    }

    #[test]
    fn the_key_is_type_domain_source_sequence_and_requesting_identity() {
        let g = LoopGuard::new(LIFETIME_MIN, 7);
        let base = frame(0x9, id(1), 5, Some(id(100)));
        let same = fp(&g, &base);
        assert_eq!(fp(&g, &frame(0x9, id(1), 5, Some(id(100)))), same);
        for other in [
            frame(0x9, id(1), 5, Some(id(101))),
            frame(0x9, id(1), 6, Some(id(100))),
            frame(0x9, id(2), 5, Some(id(100))),
            frame(0x0, id(1), 5, None),
        ] {
            assert_ne!(fp(&g, &other), same);
        }
        let mut domain = base.clone();
        domain[14 + 4] = 1;
        assert_ne!(fp(&g, &domain), same);
        // Fields outside the key (correctionField, the timestamp) do not matter.
        let mut corrected = base.clone();
        corrected[14 + 8..14 + 16].copy_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0]);
        corrected[14 + 34] = 9;
        assert_eq!(fp(&g, &corrected), same);
        // Another seed, other fingerprints.
        assert_ne!(fp(&LoopGuard::new(LIFETIME_MIN, 8), &base), same);
    }

    #[test]
    fn entries_expire_after_their_lifetime() {
        let mut g = LoopGuard::new(LIFETIME_MIN, 1);
        let f = fp(&g, &frame(0x0, id(1), 1, None));
        let to = PortSet::range(1, 2);
        assert_eq!(g.check(T0, f), None);
        note(&mut g, T0, f, PortId(0), to);
        assert_eq!(g.check(T0, f), Some((PortId(0), to)));
        assert_eq!(
            g.check(T0 + Duration(LIFETIME_MIN.0 - 1), f),
            Some((PortId(0), to))
        );
        assert_eq!(g.check(T0 + LIFETIME_MIN, f), None);
        assert_eq!(g.live(T0 + LIFETIME_MIN), 0);
        note(&mut g, T0 + LIFETIME_MIN, f, PortId(0), to);
        assert!(g.check(T0 + LIFETIME_MIN, f).is_some());
        g.reset(LIFETIME_MIN);
        assert_eq!(g.check(T0 + LIFETIME_MIN, f), None);
    }

    #[test]
    fn the_lifetime_covers_four_holds() {
        assert_eq!(lifetime(0), LIFETIME_MIN);
        assert_eq!(lifetime(2000), LIFETIME_MIN);
        assert_eq!(lifetime(100_000), Duration::from_millis(400));
    }

    #[test]
    fn a_full_table_loses_old_entries_never_matches_wrongly() {
        let mut g = LoopGuard::new(LIFETIME_MIN, 3);
        let to = PortSet::single(PortId(1));
        // Far more frames than slots: each slot keeps its last.
        let n = 4 * SLOTS as u32;
        let prints: Vec<Fingerprint> = (0..n)
            .map(|i| {
                fp(
                    &g,
                    &frame(0x1, id((i % 1000) as u16), (i / 1000) as u16, None),
                )
            })
            .collect();
        for (i, &f) in prints.iter().enumerate() {
            note(&mut g, T0 + Duration(i as u64), f, PortId(2), to);
        }
        let now = T0 + Duration(u64::from(n));
        assert!(g.live(now) <= SLOTS);
        let kept = prints
            .iter()
            .filter(|&&f| g.check(now, f).is_some())
            .count();
        // The last SLOTS recorded are mostly still there, the last BUCKETS nearly all.
        let kept_of = |last: usize| {
            prints[prints.len() - last..]
                .iter()
                .filter(|&&f| g.check(now, f).is_some())
                .count()
        };
        assert!(kept_of(SLOTS) > SLOTS / 2, "{}", kept_of(SLOTS));
        assert!(
            kept_of(BUCKETS) > BUCKETS * 95 / 100,
            "{}",
            kept_of(BUCKETS)
        );
        assert_eq!(kept, g.live(now));
        // Frames never recorded never match.
        let unseen = (0..n)
            .filter(|i| {
                let f = fp(&g, &frame(0x1, id((i % 1000) as u16 + 2000), 0, None));
                g.check(T0, f).is_some()
            })
            .count();
        assert_eq!(unseen, 0);
    }

    /// Sync fingerprints of source `id(1)` whose bucket is that of the first: `n` of them.
    fn same_bucket(g: &LoopGuard, n: usize) -> Vec<Fingerprint> {
        let first = fp(g, &frame(0x0, id(1), 0, None));
        let mut prints = vec![first];
        for seq in 1..=u16::MAX {
            if prints.len() == n {
                break;
            }
            let f = fp(g, &frame(0x0, id(1), seq, None));
            if LoopGuard::bucket(f) == LoopGuard::bucket(first) {
                prints.push(f);
            }
        }
        assert_eq!(prints.len(), n, "not enough sequenceIds share a bucket");
        prints
    }

    /// Frames that go around a loop together, as a Sync and its Follow_Up do, and share a
    /// bucket: each is recorded as it is relayed, the next one's record must not make the
    /// relay forget it, or each would come back unrecognised on every round, for ever.
    #[test]
    fn frames_looping_together_in_one_bucket_are_all_caught() {
        let mut g = LoopGuard::new(LIFETIME_MIN, 11);
        let to = PortSet::single(PortId(1));
        let prints = same_bucket(&g, WAYS);
        let mut t = T0;
        // Round one: each relayed (recorded) in turn; round two: each comes back.
        for &f in &prints {
            assert_eq!(g.check(t, f), None);
            note(&mut g, t, f, PortId(0), to);
            t = t + Duration(100_000);
        }
        for &f in &prints {
            assert_eq!(g.check(t, f), Some((PortId(0), to)));
            t = t + Duration(100_000);
        }
    }

    #[test]
    fn a_full_bucket_gives_its_oldest_entry_to_a_new_frame() {
        let mut g = LoopGuard::new(LIFETIME_MIN, 12);
        let to = PortSet::single(PortId(1));
        let prints = same_bucket(&g, WAYS + 1);
        // Recorded newest first: the last of them is the oldest.
        for (i, &f) in prints[..WAYS].iter().enumerate() {
            note(&mut g, T0 + Duration(10 - i as u64), f, PortId(0), to);
        }
        assert_eq!(g.live(T0 + Duration(20)), WAYS);
        note(&mut g, T0 + Duration(21), prints[WAYS], PortId(0), to);
        let now = T0 + Duration(22);
        for (i, &f) in prints.iter().enumerate() {
            assert_eq!(g.check(now, f).is_some(), i != WAYS - 1, "entry {i}");
        }
        // A frame whose own entry expired takes it again, not the bucket's oldest.
        let mut g = LoopGuard::new(LIFETIME_MIN, 12);
        for (i, &f) in prints[..WAYS].iter().enumerate() {
            note(&mut g, T0 + Duration(i as u64), f, PortId(0), to);
        }
        let own = g.buckets[LoopGuard::bucket(prints[1])]
            .fingerprint
            .iter()
            .position(|&p| p == prints[1].0);
        let Probe::New(e) = g.probe(T0 + LIFETIME_MIN + Duration(1), prints[1]) else {
            panic!("expired, yet seen");
        };
        assert_eq!(Some(e.way), own);
        // An expired entry goes before any live one, however recent the others.
        let mut g = LoopGuard::new(LIFETIME_MIN, 12);
        note(&mut g, T0, prints[0], PortId(0), to);
        let later = T0 + LIFETIME_MIN + Duration(1);
        for &f in &prints[1..WAYS] {
            note(&mut g, later, f, PortId(0), to);
        }
        note(&mut g, later, prints[WAYS], PortId(0), to);
        assert!(prints[1..].iter().all(|&f| g.check(later, f).is_some()));
    }
}
