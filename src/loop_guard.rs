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
//! The table is direct-mapped: [`SLOTS`] slots, one per fingerprint's top bits, each holding the
//! last fingerprint recorded there, the port it came in on, the ports it went to and when. O(1)
//! and no allocation per frame; a slot taken over by another frame only loses the older entry (a
//! loop is then caught one round later), and a frame is only ever dropped for a 64-bit
//! fingerprint that equals one recorded within the entry's lifetime.

use crate::port::{PortId, PortSet};
use crate::time::{Duration, Instant};
use crate::wire::PtpFrame;

/// Slots of the table (a power of two): 24 bytes each, 96 KiB in all. A looped frame comes back
/// within a few holds (ms); at 256k relayed frames per second (1000 clients x 128 Delay_Req/s
/// each way) some 1000–1500 frames are recorded meanwhile, so most entries are still there when
/// their frame returns, and the few that are not are caught on the next round.
pub const SLOTS: usize = 4096;

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

#[derive(Clone, Copy, Default)]
struct Slot {
    fingerprint: u64,
    /// When it was sent (the core's clock).
    sent: Instant,
    /// Where the frame was sent.
    sent_on: PortSet,
    /// Where it came in.
    received_on: PortId,
}

/// A frame's identity under the guard's key, from [`LoopGuard::fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

pub struct LoopGuard {
    /// A fixed-size array, so that a fingerprint's top bits index it without a bounds check.
    slots: Box<[Slot; SLOTS]>,
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
        let slots: Box<[Slot]> = vec![Slot::default(); SLOTS].into_boxed_slice();
        let Ok(slots) = slots.try_into() else {
            unreachable!("a boxed slice of SLOTS slots")
        };
        LoopGuard {
            slots,
            lifetime,
            key: [next(), next(), next()],
        }
    }

    /// Forget every entry (a reload renumbers the ports they name) and take a new lifetime.
    pub fn reset(&mut self, lifetime: Duration) {
        self.slots.fill(Slot::default());
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

    /// The slot of `f`: its top bits (below SLOTS, so indexing cannot fail).
    #[inline]
    fn slot(f: Fingerprint) -> usize {
        (f.0 >> (64 - SLOTS.trailing_zeros())) as usize % SLOTS
    }

    /// If a frame of this fingerprint was sent within the lifetime: the port it had come in on
    /// and the ports it was sent on.
    #[inline]
    pub fn check(&self, now: Instant, f: Fingerprint) -> Option<(PortId, PortSet)> {
        let s = &self.slots[Self::slot(f)];
        (s.fingerprint == f.0 && now.saturating_since(s.sent) < self.lifetime)
            .then_some((s.received_on, s.sent_on))
    }

    /// Note that the frame of fingerprint `f`, received on `from`, is being sent on `to` at
    /// `now`.
    #[inline]
    pub fn record(&mut self, now: Instant, f: Fingerprint, from: PortId, to: PortSet) {
        self.slots[Self::slot(f)] = Slot {
            fingerprint: f.0,
            sent: now,
            sent_on: to,
            received_on: from,
        };
    }

    /// Entries that have not expired at `now` (a scan: for tests and diagnosis, not per frame).
    pub fn live(&self, now: Instant) -> usize {
        self.slots
            .iter()
            .filter(|s| s.fingerprint != 0 && now.saturating_since(s.sent) < self.lifetime)
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
        g.record(T0, f, PortId(0), to);
        assert_eq!(g.check(T0, f), Some((PortId(0), to)));
        assert_eq!(
            g.check(T0 + Duration(LIFETIME_MIN.0 - 1), f),
            Some((PortId(0), to))
        );
        assert_eq!(g.check(T0 + LIFETIME_MIN, f), None);
        assert_eq!(g.live(T0 + LIFETIME_MIN), 0);
        g.record(T0, f, PortId(0), to);
        g.reset(LIFETIME_MIN);
        assert_eq!(g.check(T0, f), None);
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
        for &f in &prints {
            g.record(T0, f, PortId(2), to);
        }
        assert!(g.live(T0) <= SLOTS);
        let kept = prints.iter().filter(|&&f| g.check(T0, f).is_some()).count();
        // The last SLOTS recorded are mostly still there.
        let recent = prints[prints.len() - SLOTS..]
            .iter()
            .filter(|&&f| g.check(T0, f).is_some())
            .count();
        assert!(recent > SLOTS / 2, "{recent}");
        assert_eq!(kept, g.live(T0));
        // Frames never recorded never match.
        let unseen = (0..n)
            .filter(|i| {
                let f = fp(&g, &frame(0x1, id((i % 1000) as u16 + 2000), 0, None));
                g.check(T0, f).is_some()
            })
            .count();
        assert_eq!(unseen, 0);
    }
}
