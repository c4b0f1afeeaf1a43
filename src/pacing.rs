//! Pacing of Delay_Req towards the upstream port (`upstream_max_delay_req_rate`): what protects
//! a grandmaster that answers a bounded rate from clients that all ask at once.
//!
//! A Delay_Req the relay sends upstream goes at once while the rate allows; above it, it waits
//! in a fixed pool of [`board::DELAY_REQ_QUEUE`] frames, one FIFO per ingress port, and leaves
//! evenly spaced (one every 1/rate s), the ports served in turn so that one port's burst cannot
//! starve another's clients. A request that would wait longer than `max_delay_req_hold_ms`, or
//! that finds the pool full while its port holds at least as many as any other, is dropped and
//! counted. The wait is part of the frame's residence: its [`Timing`] keeps the capture time, so
//! the Delay_Resp's correctionField carries the wait and the client's path delay does not move.
//!
//! This module owns the queue and the spacing arithmetic. It never reads a clock, never
//! allocates after [`Pacer::new`], and never reorders the requests of one port.

use crate::board;
use crate::correction::Timing;
use crate::port::{PortId, PortMap};
use crate::stats::DropReason;
use crate::time::{Duration, Instant};

/// Sending time the pacer may bank while idle: after a quiet spell, this much of the rate
/// leaves back to back before the spacing starts (a loop turn's worth, so that a wake-up a
/// little late does not cost the grandmaster's budget).
pub const SLACK: Duration = Duration(2_000_000);

/// The loop wakes for paced frames at most this often: each wake-up releases every frame due
/// by then, so spacing is exact over this period, never a wake-up per frame.
pub const TICK: Duration = Duration(1_000_000);

/// "No entry" in the links.
const NIL: u16 = u16::MAX;

const _: () = assert!(board::DELAY_REQ_QUEUE < NIL as usize);

/// What [`Pacer::admit`] did with a Delay_Req.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Within the rate: send it now.
    Now,
    /// Queued; [`Pacer::release`] hands it out when its turn comes. To make room, the newest
    /// frame of a longer queue may have been dropped: its port (counted here as queue full).
    Held { evicted: Option<PortId> },
    /// Not sent (counted): `upstream_rate_queue_full` or `upstream_rate_expired`.
    Dropped(DropReason),
}

/// What [`Pacer::release`] hands out, oldest first per port, ports in turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Released<'a> {
    /// Send this frame upstream now, with its timing.
    Send { frame: &'a [u8], timing: Timing },
    /// A frame from `from` was dropped (counted here; the caller counts it as a drop too).
    Dropped { from: PortId, reason: DropReason },
}

/// Counters and gauges of the pacing (all zero without it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacingStats {
    /// Delay_Req sent at once (within the rate).
    pub immediate: u64,
    /// Delay_Req that waited in the queue, then were sent.
    pub paced: u64,
    /// Dropped: the queue was full.
    pub queue_full: u64,
    /// Dropped: it would have waited longer than the hold.
    pub expired: u64,
    /// Frames queued now, and the most ever.
    pub depth: u64,
    pub depth_max: u64,
    /// Total and longest wait of the paced frames, nanoseconds.
    pub wait_sum_ns: u64,
    pub wait_max_ns: u64,
}

impl PacingStats {
    /// Mean wait of the paced frames, nanoseconds.
    pub fn wait_mean_ns(&self) -> u64 {
        self.wait_sum_ns.checked_div(self.paced).unwrap_or(0)
    }

    /// The figures by name, as the status file and the log give them.
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("immediate", self.immediate),
            ("paced", self.paced),
            ("queue_full", self.queue_full),
            ("expired", self.expired),
            ("depth", self.depth),
            ("depth_max", self.depth_max),
            ("wait_mean_us", self.wait_mean_ns() / 1000),
            ("wait_max_us", self.wait_max_ns / 1000),
        ]
    }
}

/// One queued frame's bookkeeping; its bytes are slot `index` of [`Pacer::frames`].
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    len: u16,
    prev: u16,
    next: u16,
    enqueued: Instant,
    timing: Timing,
}

/// One port's FIFO: a doubly linked list through the entries (the tail can be evicted).
#[derive(Clone, Copy, Debug)]
struct Fifo {
    head: u16,
    tail: u16,
    len: u16,
}

const EMPTY: Fifo = Fifo {
    head: NIL,
    tail: NIL,
    len: 0,
};

/// The pacing queue and its clock arithmetic (a GCRA whose deadline is the next send).
pub struct Pacer {
    interval: Duration,
    hold: Duration,
    /// When the next frame may leave (theoretical arrival time).
    next_send: Instant,
    /// `DELAY_REQ_QUEUE` slots of `SNAPLEN` bytes.
    frames: Box<[u8]>,
    entries: Box<[Entry]>,
    fifos: [Fifo; board::MAX_PORTS],
    /// Head of the free list (linked through `next`).
    free: u16,
    /// The port served first at the next release (round robin).
    turn: usize,
    stats: PacingStats,
}

impl Pacer {
    /// A pacer for `rate` Delay_Req per second (at least 1), dropping what would wait longer
    /// than `hold`. Allocates its pool once, here.
    pub fn new(rate: u32, hold: Duration) -> Pacer {
        let n = board::DELAY_REQ_QUEUE;
        let mut entries = vec![Entry::default(); n].into_boxed_slice();
        for (i, e) in entries.iter_mut().enumerate() {
            e.next = if i + 1 < n { (i + 1) as u16 } else { NIL };
        }
        let mut p = Pacer {
            interval: Duration(1),
            hold,
            next_send: Instant(0),
            frames: vec![0; n * board::SNAPLEN].into_boxed_slice(),
            entries,
            fifos: [EMPTY; board::MAX_PORTS],
            free: if n > 0 { 0 } else { NIL },
            turn: 0,
            stats: PacingStats::default(),
        };
        p.set_rate(rate, hold);
        p
    }

    /// A new rate and hold (a reload); what is queued stays.
    pub fn set_rate(&mut self, rate: u32, hold: Duration) {
        self.interval = Duration(1_000_000_000 / u64::from(rate.max(1)));
        self.hold = hold;
    }

    pub fn stats(&self) -> &PacingStats {
        &self.stats
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.stats.depth as usize
    }

    pub fn is_empty(&self) -> bool {
        self.stats.depth == 0
    }

    /// A Delay_Req from `from` (a downstream port) at `now`, on its way upstream with `timing`.
    pub fn admit(&mut self, now: Instant, from: PortId, frame: &[u8], timing: Timing) -> Admit {
        // Idle time banked beyond the slack is forgotten: the rate is what the master sees over
        // any window, not an average since the last burst.
        if self.next_send + SLACK < now {
            self.next_send = now - SLACK;
        }
        if self.is_empty() && self.next_send <= now {
            self.next_send = self.next_send + self.interval;
            self.stats.immediate += 1;
            return Admit::Now;
        }
        let Some(fifo) = self.fifos.get(from.index()).copied() else {
            return self.count(DropReason::UpstreamRateQueueFull);
        };
        // The least it could wait: its own port's queue ahead of it, at the full rate.
        let ahead = self.next_send.saturating_since(now).0
            + u64::from(fifo.len).saturating_mul(self.interval.0);
        if ahead > self.hold.0 {
            return self.count(DropReason::UpstreamRateExpired);
        }
        // Cannot happen with frames captured at SNAPLEN; never truncate one.
        if frame.len() > board::SNAPLEN {
            return self.count(DropReason::UpstreamRateQueueFull);
        }
        let mut evicted = None;
        if self.free == NIL {
            evicted = self.evict_for(from);
            if evicted.is_none() {
                return self.count(DropReason::UpstreamRateQueueFull);
            }
        }
        self.push(from, now, frame, timing);
        Admit::Held { evicted }
    }

    /// Hand out the frames due at `now`, at most `max` (and drop those that waited past the
    /// hold), one port after the other, each port's oldest first. Returns how many were sent.
    pub fn release(
        &mut self,
        now: Instant,
        max: usize,
        mut out: impl FnMut(Released<'_>),
    ) -> usize {
        let mut sent = 0;
        // A loop that comes back late does not send the time it missed on top of the rate:
        // what the grandmaster receives in any window stays within the rate and the slack.
        if self.next_send + SLACK < now {
            self.next_send = now - SLACK;
        }
        while sent < max && !self.is_empty() && self.next_send <= now {
            let Some((from, i)) = self.pop_next() else {
                break;
            };
            let e = self.entries[usize::from(i)];
            let waited = now.saturating_since(e.enqueued);
            if waited > self.hold {
                self.stats.expired += 1;
                let reason = DropReason::UpstreamRateExpired;
                out(Released::Dropped { from, reason });
            } else {
                self.next_send = self.next_send + self.interval;
                self.stats.paced += 1;
                sent += 1;
                self.stats.wait_sum_ns = self.stats.wait_sum_ns.saturating_add(waited.0);
                self.stats.wait_max_ns = self.stats.wait_max_ns.max(waited.0);
                let at = usize::from(i) * board::SNAPLEN;
                let frame = &self.frames[at..at + usize::from(e.len)];
                out(Released::Send {
                    frame,
                    timing: e.timing,
                });
            }
            self.free_entry(i);
        }
        sent
    }

    /// When [`Pacer::release`] next has something to do: when a tick's worth of frames is due
    /// (one wake-up per [`TICK`], not per frame). A frame that waited past the hold is found
    /// and dropped by the release that would have sent it.
    pub fn next_release(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        let batch = Duration(TICK.0.saturating_sub(self.interval.0));
        Some(self.next_send + batch)
    }

    /// A reload renumbered the ports: queues follow their port; those of ports that went are
    /// dropped (counted as expired: their clients are gone from the table too).
    pub fn renumber(&mut self, map: &PortMap, mut dropped: impl FnMut(PortId)) {
        let old = self.fifos;
        self.fifos = [EMPTY; board::MAX_PORTS];
        for (i, fifo) in old.iter().enumerate() {
            match map.get(PortId(i as u8)) {
                Some(to) if to.index() < board::MAX_PORTS => self.fifos[to.index()] = *fifo,
                _ => {
                    let mut k = fifo.head;
                    while k != NIL {
                        let next = self.entries[usize::from(k)].next;
                        self.stats.expired += 1;
                        dropped(PortId(i as u8));
                        self.stats.depth -= 1;
                        self.entries[usize::from(k)].next = self.free;
                        self.free = k;
                        k = next;
                    }
                }
            }
        }
    }

    fn count(&mut self, reason: DropReason) -> Admit {
        match reason {
            DropReason::UpstreamRateExpired => self.stats.expired += 1,
            _ => self.stats.queue_full += 1,
        }
        Admit::Dropped(reason)
    }

    /// The pool is full: make room for a frame of `from` by dropping the newest frame of the
    /// longest queue, if that queue is longer than `from`'s would be; the port it came from.
    fn evict_for(&mut self, from: PortId) -> Option<PortId> {
        let mine = self.fifos[from.index()].len;
        let (victim, fifo) = self
            .fifos
            .iter()
            .enumerate()
            .max_by_key(|(_, f)| f.len)
            .map(|(i, f)| (i, *f))?;
        if fifo.len <= mine.saturating_add(1) {
            return None;
        }
        let i = fifo.tail;
        let prev = self.entries[usize::from(i)].prev;
        let f = &mut self.fifos[victim];
        f.tail = prev;
        f.len -= 1;
        if prev == NIL {
            f.head = NIL;
        } else {
            self.entries[usize::from(prev)].next = NIL;
        }
        self.stats.queue_full += 1;
        self.free_entry(i);
        Some(PortId(victim as u8))
    }

    fn push(&mut self, from: PortId, now: Instant, frame: &[u8], timing: Timing) {
        let i = self.free;
        let k = usize::from(i);
        self.free = self.entries[k].next;
        let at = k * board::SNAPLEN;
        self.frames[at..at + frame.len()].copy_from_slice(frame);
        let f = &mut self.fifos[from.index()];
        self.entries[k] = Entry {
            len: frame.len() as u16,
            prev: f.tail,
            next: NIL,
            enqueued: now,
            timing,
        };
        if f.tail == NIL {
            f.head = i;
        } else {
            self.entries[usize::from(f.tail)].next = i;
        }
        f.tail = i;
        f.len += 1;
        self.stats.depth += 1;
        self.stats.depth_max = self.stats.depth_max.max(self.stats.depth);
    }

    /// Unlink the head of the next non-empty port's FIFO, in turn.
    fn pop_next(&mut self) -> Option<(PortId, u16)> {
        let n = self.fifos.len();
        let port = (0..n)
            .map(|k| (self.turn + k) % n)
            .find(|&p| self.fifos[p].len > 0)?;
        self.turn = (port + 1) % n;
        let f = &mut self.fifos[port];
        let i = f.head;
        let next = self.entries[usize::from(i)].next;
        f.head = next;
        f.len -= 1;
        if next == NIL {
            f.tail = NIL;
        } else {
            self.entries[usize::from(next)].prev = NIL;
        }
        Some((PortId(port as u8), i))
    }

    /// Entry `i`, unlinked from its FIFO, back to the free list.
    fn free_entry(&mut self, i: u16) {
        self.entries[usize::from(i)].next = self.free;
        self.free = i;
        self.stats.depth -= 1;
    }
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;
