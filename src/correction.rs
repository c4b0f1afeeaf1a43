//! Residence-time correction (`"correction": "residence"`): ptpproxy as a software end-to-end
//! transparent clock (IEEE 1588-2019 §10.2).
//!
//! Every forwarded frame is tagged with a [`Timing`] ([`Corrector::timing_of`], from the frame as
//! parsed once by the relay); the sender calls [`Corrector::handle_egress`] for each copy of the
//! frame just before it leaves a port, with the time read at that moment on the clock of the
//! capture timestamps. Residence = that time − the frame's capture time.
//! - One-step Sync: its residence is added to its own correctionField.
//! - Two-step Sync and Delay_Req: the residence is remembered per egress port under
//!   (message, domain, sourcePortIdentity, sequenceId) in a fixed table, and added to the
//!   matching Follow_Up (same port) or Delay_Resp (requestingPortIdentity + sequenceId; the
//!   residence of the Delay_Req on the upstream port) — two-step TC semantics, which work with
//!   any master. A general message without its event is sent unchanged and counted. The
//!   kernel's transmit timestamp of a remembered event, when the sender gets one, replaces the
//!   clock read ([`Corrector::handle_tx_timestamp`], matched by the [`PendingKey`] the send
//!   carried).
//!
//! correctionField is signed 64-bit nanoseconds × 2^16; additions saturate, never wrap. A UDP
//! checksum that covers the field is updated incrementally (RFC 1624): IPv4's unless it is
//! zero ("no checksum"), IPv6's always (it must stay valid).

use crate::board;
use crate::config::Correction;
use crate::fixed_map::keyed_hash;
use crate::port::{PortId, PortMap};
use crate::time::Timestamp;
use crate::wire::{ip, ptp, MessageType, PortIdentity, PtpFrame, Transport};

/// No residence is ever longer: the most a configured ceiling ([`Corrector::set_max_residence`])
/// may be.
pub const MAX_RESIDENCE_NS: i64 = 1_000_000_000;

/// A remembered residence older than this (egress to egress) no longer matches: sequenceIds
/// wrap, and a general message that late is not the event's.
pub const MAX_PENDING_AGE_NS: i64 = 2_000_000_000;

/// Entries per set of the pending table: a new entry replaces a used or the oldest one of its set.
const WAYS: usize = 4;

/// The event message whose residence a general message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A two-step Sync, matched by its Follow_Up.
    Sync,
    /// A Delay_Req, matched by the Delay_Resp that answers it.
    DelayReq,
}

/// What identifies an event and its general message (§11.3.2, §11.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PendingKey {
    pub event: Event,
    pub domain: u8,
    /// sdoId (majorSdoId << 8 | minorSdoId): with `domain`, the PTP domain of the message.
    pub sdo_id: u16,
    /// The event's sourcePortIdentity (Follow_Up: its own sourcePortIdentity; Delay_Resp: its
    /// requestingPortIdentity).
    pub port_identity: PortIdentity,
    pub sequence_id: u16,
}

impl PendingKey {
    /// True if `message` (a PTP message as sent, e.g. read back from a socket's error queue)
    /// is this key's event: compares the few header fields the key holds, nothing else.
    pub fn is_event_of(&self, message: &[u8]) -> bool {
        if message.len() < ptp::HEADER_LEN {
            return false;
        }
        let h = ptp::Header::new_unchecked(message);
        let kind = match self.event {
            Event::Sync => MessageType::Sync,
            Event::DelayReq => MessageType::DelayReq,
        };
        h.message_type() == kind
            && h.domain_number() == self.domain
            && h.sdo_id() == self.sdo_id
            && h.sequence_id() == self.sequence_id
            && h.source_port_identity() == self.port_identity
    }
}

/// Where the correctionField of a frame is, and the UDP checksum that covers it if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// Offset of the 8-byte correctionField in the frame.
    pub correction_at: u16,
    /// Offset of the UDP checksum, if one covers the field (and is not IPv4's "no checksum").
    pub checksum_at: Option<u16>,
}

impl Rewrite {
    /// Add `residence_ns` to the correctionField of `frame`, saturating, and keep the checksum
    /// valid. `false` (nothing written) if the frame is too short for the offsets.
    pub fn add(&self, frame: &mut [u8], residence_ns: i64) -> bool {
        let at = usize::from(self.correction_at);
        let Some(field) = frame.get(at..at + 8) else {
            return false;
        };
        let mut old = [0u8; 8];
        old.copy_from_slice(field);
        let value = i64::from_be_bytes(old).saturating_add(residence_ns.saturating_mul(1 << 16));
        let new = value.to_be_bytes();
        if let Some(c) = self.checksum_at.map(usize::from) {
            let Some(bytes) = frame.get(c..c + 2) else {
                return false;
            };
            let sum = ip::checksum_update(u16::from_be_bytes([bytes[0], bytes[1]]), &old, &new);
            frame[c..c + 2].copy_from_slice(&sum.to_be_bytes());
        }
        frame[at..at + 8].copy_from_slice(&new);
        true
    }
}

/// What the sender does with a forwarded frame as it leaves a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timing {
    /// Sent as it is.
    #[default]
    None,
    /// One-step Sync: add its residence to its own correctionField.
    OneStep {
        captured: Timestamp,
        rewrite: Rewrite,
    },
    /// Two-step Sync or Delay_Req: sent as it is; its residence is remembered under `key`. The
    /// PTP message starts `ptp_offset` bytes into the frame (for matching the frame's transmit
    /// timestamp to `key`: [`PendingKey::is_event_of`]).
    Remember {
        captured: Timestamp,
        key: PendingKey,
        ptp_offset: u16,
    },
    /// Follow_Up or Delay_Resp: add the residence remembered under `key`.
    Apply { key: PendingKey, rewrite: Rewrite },
    /// An event message captured while the wall clock stepped ([`Corrector::set_captures_timed`]):
    /// its residence cannot be measured, so it is not sent (a lost Sync or Delay_Req costs a
    /// client one sample; a wrong residence would enter its clock).
    Untimed,
}

impl Timing {
    /// True for event messages, whose residence is measured: the sender reads its clock
    /// right before sending them.
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Timing::OneStep { .. } | Timing::Remember { .. } | Timing::Untimed
        )
    }
}

impl Timing {
    /// The residence correction `frame`, parsed as `parsed` and captured at `captured`, needs
    /// as it leaves.
    pub fn of(parsed: &PtpFrame, frame: &[u8], captured: Timestamp) -> Timing {
        let message = parsed.message(frame);
        let key = |event, port_identity| PendingKey {
            event,
            domain: parsed.domain_number,
            sdo_id: parsed.sdo_id,
            port_identity,
            sequence_id: message.sequence_id(),
        };
        // The field is 8 bytes into the header; IPv4's checksum may be absent (zero).
        let ipv4_unchecked = matches!(parsed.transport, Transport::Udp4 { .. })
            && parsed.udp_checksum(frame) == Some(0);
        let checksum_at = match parsed.udp_offset {
            Some(u) if !ipv4_unchecked => Some((u + 6) as u16),
            _ => None,
        };
        let rewrite = Rewrite {
            correction_at: (parsed.ptp_offset + 8) as u16,
            checksum_at,
        };
        let spi = message.source_port_identity();
        let ptp_offset = parsed.ptp_offset as u16;
        match parsed.message_type {
            MessageType::Sync if message.two_step() => Timing::Remember {
                captured,
                key: key(Event::Sync, spi),
                ptp_offset,
            },
            MessageType::Sync => Timing::OneStep { captured, rewrite },
            MessageType::DelayReq => Timing::Remember {
                captured,
                key: key(Event::DelayReq, spi),
                ptp_offset,
            },
            MessageType::FollowUp => Timing::Apply {
                key: key(Event::Sync, spi),
                rewrite,
            },
            MessageType::DelayResp => match message.requesting_port_identity() {
                Some(requesting) => Timing::Apply {
                    key: key(Event::DelayReq, requesting),
                    rewrite,
                },
                None => Timing::None,
            },
            _ => Timing::None,
        }
    }
}

/// Counters of the correction (all zero with `"correction": "none"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CorrectionStats {
    /// One-step Sync whose own correctionField got its residence.
    pub one_step: u64,
    /// Residences remembered (two-step Sync and Delay_Req, per egress port).
    pub remembered: u64,
    /// Follow_Up that got their Sync's residence.
    pub follow_up: u64,
    /// Delay_Resp that got their Delay_Req's residence.
    pub delay_resp: u64,
    /// Follow_Up sent unchanged: no residence of their Sync was found.
    pub follow_up_unmatched: u64,
    /// Delay_Resp without a residence of their Delay_Req: sent unchanged, or, with
    /// [`Corrector::set_unmatched_delay_resp_sent`] false, not sent (also counted below).
    pub delay_resp_unmatched: u64,
    /// Of those, the ones not sent: their Delay_Req may have waited in the upstream pacing,
    /// up to `max_delay_req_hold_ms`, which the client would have taken for path delay.
    pub delay_resp_unmatched_dropped: u64,
    /// Remembered residences replaced before their general message came (table too small).
    pub evicted: u64,
    /// Residences below zero or above the ceiling (a stalled loop, a clock step not seen):
    /// their event frame was not sent.
    pub out_of_range: u64,
    /// Event frames not sent, and transmit timestamps not used, because the wall clock stepped
    /// while they were in the relay.
    pub clock_step: u64,
    /// Remembered residences made exact with the kernel's transmit timestamp of the event
    /// ([`Corrector::handle_tx_timestamp`]), and the sum of what that added to the clock read before
    /// the send, nanoseconds.
    pub tx_timestamped: u64,
    pub tx_timestamp_added_ns: u64,
    /// Follow_Up and Delay_Resp that got a residence measured up to the clock read before their
    /// event's send: its transmit timestamp had not come back (yet) when they left.
    pub tx_timestamp_missing: u64,
    /// Sum, count and maximum of the residences measured (event messages), nanoseconds.
    pub residence_sum_ns: u64,
    pub residence_count: u64,
    pub residence_max_ns: u64,
}

impl CorrectionStats {
    /// Mean residence of the event messages measured, nanoseconds.
    pub fn residence_mean_ns(&self) -> u64 {
        self.residence_sum_ns
            .checked_div(self.residence_count)
            .unwrap_or(0)
    }

    /// Every counter and figure with its name, as the log and the status file show them.
    pub fn named(&self) -> [(&'static str, u64); 15] {
        [
            ("residence_mean_ns", self.residence_mean_ns()),
            ("residence_max_ns", self.residence_max_ns),
            ("one_step", self.one_step),
            ("remembered", self.remembered),
            ("follow_up", self.follow_up),
            ("delay_resp", self.delay_resp),
            ("follow_up_unmatched", self.follow_up_unmatched),
            ("delay_resp_unmatched", self.delay_resp_unmatched),
            (
                "delay_resp_unmatched_dropped",
                self.delay_resp_unmatched_dropped,
            ),
            ("evicted", self.evicted),
            ("out_of_range", self.out_of_range),
            ("clock_step", self.clock_step),
            ("tx_timestamped", self.tx_timestamped),
            ("tx_timestamp_missing", self.tx_timestamp_missing),
            (
                "tx_timestamp_mean_added_ns",
                self.tx_timestamp_mean_added_ns(),
            ),
        ]
    }

    /// Mean time from the clock read before a send to the kernel's transmit timestamp.
    pub fn tx_timestamp_mean_added_ns(&self) -> u64 {
        self.tx_timestamp_added_ns
            .checked_div(self.tx_timestamped)
            .unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: PendingKey,
    port: PortId,
    /// When the event left (the age of the entry).
    sent: Timestamp,
    /// At most [`MAX_RESIDENCE_NS`] (1 s): 32 bits hold it, and keep an entry 32 bytes.
    residence_ns: i32,
    /// Applied at least once: the first to go when its set needs room.
    used: bool,
    /// The residence ends at the kernel's transmit timestamp, not at the clock read before the
    /// send.
    stamped: bool,
}

/// The port the event of a general message leaving `port` under `key` left through: a Delay_Req
/// always the upstream port, whichever port its Delay_Resp takes; a Sync the Follow_Up's port.
fn event_port(key: &PendingKey, port: PortId) -> PortId {
    match key.event {
        Event::Sync => port,
        Event::DelayReq => PortId::UPSTREAM,
    }
}

/// Pending-table entries `mode` needs.
fn capacity_for(mode: Correction) -> usize {
    match mode {
        Correction::Residence => board::PENDING_CORRECTIONS,
        Correction::None => 0,
    }
}

/// The pending-residence table and the per-egress arithmetic. Its slots are allocated when it
/// is made, or by a reload that switches the mode ([`Corrector::reconfigure`]); never per frame.
pub struct Corrector {
    mode: Correction,
    slots: Box<[Option<Slot>]>,
    seed: u64,
    stats: CorrectionStats,
    /// The longest residence applied; a longer one is a fault.
    max_residence_ns: i64,
    /// False while the capture timestamps of the frames being handled cannot be trusted.
    captures_timed: bool,
    /// Whether a Delay_Resp whose Delay_Req's residence is unknown still leaves (unchanged).
    unmatched_delay_resp_sent: bool,
}

impl Corrector {
    /// What `mode` needs: the table with `"residence"`, none at all with `"none"` (the relay
    /// then tags no frame to correct, and the memory is not spent).
    pub fn for_mode(mode: Correction, seed: u64) -> Corrector {
        Corrector::for_mode_with_capacity(mode, capacity_for(mode), seed)
    }

    /// `mode` with a table of `capacity` entries whatever the mode (tests and fuzzing use small
    /// tables to reach eviction quickly).
    pub fn for_mode_with_capacity(mode: Correction, capacity: usize, seed: u64) -> Corrector {
        Corrector {
            mode,
            ..Corrector::with_capacity(capacity, seed)
        }
    }

    /// A reload: the table is allocated or freed as a new `mode` needs it; a table that stays keeps
    /// the residences remembered on ports that stay, under their new numbers (`map`), and
    /// forgets the others. Counters are kept.
    pub fn reconfigure(&mut self, mode: Correction, map: &PortMap) {
        let wanted = if mode == self.mode {
            self.slots.len()
        } else {
            capacity_for(mode)
        };
        self.mode = mode;
        // A slot's set depends on its port: re-insert each under its new number (a reload may
        // allocate; frames never do).
        let old = core::mem::replace(&mut self.slots, vec![None; wanted].into_boxed_slice());
        if old.len() != wanted {
            return;
        }
        for s in old.iter().flatten() {
            if let Some(port) = map.get(s.port) {
                self.insert(Slot { port, ..*s });
            }
        }
    }

    /// A table of `capacity` entries (a power of two, at least `WAYS`; or 0: no table, every
    /// general message is sent unchanged as unmatched).
    pub fn with_capacity(capacity: usize, seed: u64) -> Corrector {
        assert!(capacity == 0 || (capacity.is_power_of_two() && capacity >= WAYS));
        Corrector {
            mode: Correction::Residence,
            slots: vec![None; capacity].into_boxed_slice(),
            seed,
            stats: CorrectionStats::default(),
            max_residence_ns: MAX_RESIDENCE_NS,
            captures_timed: true,
            unmatched_delay_resp_sent: true,
        }
    }

    /// The ceiling on any residence measured: longer ones are faults (counted `out_of_range`;
    /// the event frame is not sent). At most [`MAX_RESIDENCE_NS`].
    pub fn set_max_residence(&mut self, ns: i64) {
        self.max_residence_ns = ns.clamp(0, MAX_RESIDENCE_NS);
    }

    /// Whether a Delay_Resp whose Delay_Req's residence is unknown (its entry evicted from a
    /// full table, or too old) is sent unchanged (true, the default: without pacing the
    /// residence is at most a batch hold) or not sent (with upstream pacing, where the
    /// request may have waited up to `max_delay_req_hold_ms`: a lost sample costs the client
    /// less than one that is wrong by that much).
    pub fn set_unmatched_delay_resp_sent(&mut self, sent: bool) {
        self.unmatched_delay_resp_sent = sent;
    }

    /// Whether the capture timestamps of the frames handled from now on measure their arrival on
    /// the clock the egress times are read on. The shell says `false` for the frames captured
    /// while the wall clock (the kernel's timestamps) stepped: their event messages become
    /// [`Timing::Untimed`].
    pub fn set_captures_timed(&mut self, timed: bool) {
        self.captures_timed = timed;
    }

    /// The port whose transmit timestamp `timing` (a Follow_Up or Delay_Resp leaving `port`)
    /// still waits for: its event was remembered with the clock read before the send, and the
    /// kernel's timestamp has not been handed in yet. The shell reads that port's error queue
    /// once more before it sends the general message.
    pub fn awaits_tx_timestamp(&self, timing: &Timing, port: PortId) -> Option<PortId> {
        let Timing::Apply { key, .. } = timing else {
            return None;
        };
        let event_port = event_port(key, port);
        self.slots[self.set_of(key, event_port)]
            .iter()
            .flatten()
            .any(|s| s.key == *key && s.port == event_port && !s.used && !s.stamped)
            .then_some(event_port)
    }

    /// A transmit timestamp that came back while the wall clock stepped: not used (the clock
    /// read before the send stays), counted.
    pub fn tx_timestamp_untimed(&mut self) {
        self.stats.clock_step += 1;
    }

    pub fn stats(&self) -> &CorrectionStats {
        &self.stats
    }

    /// Entries in use (for the status file).
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// What a frame the relay forwards needs as it leaves: [`Timing::of`] with
    /// `"correction": "residence"`, nothing with `"none"`.
    pub fn timing_of(&self, parsed: &PtpFrame, frame: &[u8], captured: Timestamp) -> Timing {
        match self.mode {
            Correction::Residence => match Timing::of(parsed, frame, captured) {
                t if t.is_event() && !self.captures_timed => Timing::Untimed,
                t => t,
            },
            Correction::None => Timing::None,
        }
    }

    /// Carry out `timing` for the copy of a frame, `frame`, that leaves `port` now, at `egress`
    /// (read just before the send, on the clock of the capture timestamps). False if the copy
    /// must not be sent: an event message whose residence could not be measured (a clock step,
    /// or longer than the ceiling), which a client would otherwise take as a wrong sample.
    pub fn handle_egress(
        &mut self,
        timing: &Timing,
        port: PortId,
        egress: Timestamp,
        frame: &mut [u8],
    ) -> bool {
        match *timing {
            Timing::None => {}
            Timing::Untimed => {
                self.stats.clock_step += 1;
                return false;
            }
            Timing::OneStep { captured, rewrite } => {
                let Some(r) = self.residence(captured, egress) else {
                    return false;
                };
                if rewrite.add(frame, r) {
                    self.stats.one_step += 1;
                }
            }
            Timing::Remember { captured, key, .. } => {
                let Some(r) = self.residence(captured, egress) else {
                    return false;
                };
                self.remember(key, port, egress, r);
            }
            Timing::Apply { key, rewrite } => {
                let found = self.take(&key, event_port(&key, port), egress);
                let applied = found.is_some_and(|(r, _)| rewrite.add(frame, r));
                if applied && found.is_some_and(|(_, stamped)| !stamped) {
                    self.stats.tx_timestamp_missing += 1;
                }
                let counter = match (key.event, applied) {
                    (Event::Sync, true) => &mut self.stats.follow_up,
                    (Event::Sync, false) => &mut self.stats.follow_up_unmatched,
                    (Event::DelayReq, true) => &mut self.stats.delay_resp,
                    (Event::DelayReq, false) => &mut self.stats.delay_resp_unmatched,
                };
                *counter += 1;
                if key.event == Event::DelayReq && !applied && !self.unmatched_delay_resp_sent {
                    self.stats.delay_resp_unmatched_dropped += 1;
                    return false;
                }
            }
        }
        true
    }

    /// The kernel's transmit timestamp `tx` of the event remembered under `key` that left
    /// `port`: its residence (measured with the clock read before the send) becomes
    /// `tx - capture time`, the time the frame really left. Anything else is ignored: an entry
    /// already used or gone, a timestamp before the clock read (a clock step).
    pub fn handle_tx_timestamp(&mut self, port: PortId, key: &PendingKey, tx: Timestamp) {
        let key = *key;
        let range = self.set_of(&key, port);
        let Some(slot) = self.slots[range]
            .iter_mut()
            .flatten()
            .find(|s| s.key == key && s.port == port && !s.used)
        else {
            return;
        };
        let added = tx.nanos_since(slot.sent);
        let residence = i64::from(slot.residence_ns).saturating_add(added);
        let Ok(residence) = i32::try_from(residence) else {
            return;
        };
        if added < 0 || i64::from(residence) > self.max_residence_ns {
            return;
        }
        slot.residence_ns = residence;
        slot.sent = tx;
        slot.stamped = true;
        self.stats.tx_timestamped += 1;
        self.stats.tx_timestamp_added_ns = self
            .stats
            .tx_timestamp_added_ns
            .saturating_add(added as u64);
    }

    /// `egress - captured` if it is a plausible residence; counts it either way.
    fn residence(&mut self, captured: Timestamp, egress: Timestamp) -> Option<i64> {
        let r = egress.nanos_since(captured);
        if !(0..=self.max_residence_ns).contains(&r) {
            self.stats.out_of_range += 1;
            return None;
        }
        let s = &mut self.stats;
        s.residence_sum_ns = s.residence_sum_ns.saturating_add(r as u64);
        s.residence_count += 1;
        s.residence_max_ns = s.residence_max_ns.max(r as u64);
        Some(r)
    }

    /// The slots `key` may take on `port` (none without a table).
    fn set_of(&self, key: &PendingKey, port: PortId) -> core::ops::Range<usize> {
        let sets = self.slots.len() / WAYS;
        if sets == 0 {
            return 0..0;
        }
        let set = keyed_hash(self.seed, &(key, port)) as usize & (sets - 1);
        set * WAYS..(set + 1) * WAYS
    }

    fn remember(&mut self, key: PendingKey, port: PortId, sent: Timestamp, residence_ns: i64) {
        // Measured within 0..=MAX_RESIDENCE_NS by `residence`.
        let Ok(residence_ns) = i32::try_from(residence_ns) else {
            return;
        };
        self.insert(Slot {
            key,
            port,
            sent,
            residence_ns,
            used: false,
            stamped: false,
        });
        self.stats.remembered += 1;
    }

    /// Put `new` in its set: over the same key, else a free slot, else a used one, else the
    /// oldest (counted as evicted).
    fn insert(&mut self, new: Slot) {
        let (key, port) = (new.key, new.port);
        let range = self.set_of(&key, port);
        if range.is_empty() {
            return;
        }
        let set = &mut self.slots[range];
        // The same key again (a repeated sequenceId), else a free slot, else a used one, else
        // the oldest.
        let same = |s: &Slot| s.key == key && s.port == port;
        let victim = set
            .iter()
            .position(|s| s.is_some_and(|s| same(&s)))
            .or_else(|| set.iter().position(Option::is_none))
            .or_else(|| set.iter().position(|s| s.is_some_and(|s| s.used)))
            .unwrap_or_else(|| {
                (0..WAYS)
                    .min_by_key(|&i| set[i].map_or(i64::MIN, |s| s.sent.0))
                    .unwrap_or(0)
            });
        if set[victim].is_some_and(|s| !s.used && !same(&s)) {
            self.stats.evicted += 1;
        }
        set[victim] = Some(new);
    }

    /// The residence remembered for `key` on `port`, if recent; marks it used (a Delay_Resp
    /// flooded to every port finds it again).
    /// The residence remembered under `key` for `port`, and whether it ends at the kernel's
    /// transmit timestamp.
    fn take(&mut self, key: &PendingKey, port: PortId, now: Timestamp) -> Option<(i64, bool)> {
        let range = self.set_of(key, port);
        let slot = self.slots[range]
            .iter_mut()
            .flatten()
            .find(|s| s.key == *key && s.port == port)?;
        let age = now.nanos_since(slot.sent);
        if !(0..=MAX_PENDING_AGE_NS).contains(&age) {
            return None;
        }
        slot.used = true;
        Some((i64::from(slot.residence_ns), slot.stamped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: PortId = PortId(0);
    const D1: PortId = PortId(1);
    const D2: PortId = PortId(2);

    /// A remembered event (`Timing::Remember`) captured at `captured`.
    fn remember(event: Event, seq: u16, captured: i64) -> Timing {
        Timing::Remember {
            captured: Timestamp(captured),
            key: key(event, seq),
            ptp_offset: 0,
        }
    }

    /// Its general message (`Timing::Apply`), the correctionField at [`AT`].
    fn apply(event: Event, seq: u16) -> Timing {
        Timing::Apply {
            key: key(event, seq),
            rewrite: AT,
        }
    }

    fn key(event: Event, seq: u16) -> PendingKey {
        PendingKey {
            event,
            domain: 0,
            sdo_id: 0,
            port_identity: PortIdentity {
                clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 0, 1],
                port_number: 1,
            },
            sequence_id: seq,
        }
    }

    /// A 44-byte PTP header inside a bare buffer: correctionField at 8, no checksum.
    fn message(correction: i64) -> Vec<u8> {
        let mut m = vec![0u8; 44];
        m[8..16].copy_from_slice(&correction.to_be_bytes());
        m
    }

    fn correction(m: &[u8]) -> i64 {
        i64::from_be_bytes(m[8..16].try_into().unwrap())
    }

    const AT: Rewrite = Rewrite {
        correction_at: 8,
        checksum_at: None,
    };

    #[test]
    fn one_step_sync_gets_its_residence_in_scaled_nanoseconds() {
        let mut c = Corrector::with_capacity(16, 1);
        let mut m = message(5 << 16);
        let t = Timing::OneStep {
            captured: Timestamp(1_000_000),
            rewrite: AT,
        };
        c.handle_egress(&t, D1, Timestamp(1_012_345), &mut m);
        assert_eq!(correction(&m), (5 + 12_345) << 16);
        assert_eq!(c.stats().one_step, 1);
        assert_eq!(c.stats().residence_max_ns, 12_345);
    }

    #[test]
    fn follow_up_gets_the_residence_of_its_sync_on_the_same_port() {
        let mut c = Corrector::with_capacity(16, 1);
        let sync = remember(Event::Sync, 7, 100);
        c.handle_egress(&sync, D1, Timestamp(1_100), &mut message(0));
        c.handle_egress(&sync, D2, Timestamp(3_100), &mut message(0));
        let fup = apply(Event::Sync, 7);
        let (mut m1, mut m2) = (message(1), message(1));
        c.handle_egress(&fup, D1, Timestamp(5_000), &mut m1);
        c.handle_egress(&fup, D2, Timestamp(5_000), &mut m2);
        assert_eq!(correction(&m1), 1 + (1_000 << 16));
        assert_eq!(correction(&m2), 1 + (3_000 << 16));
        assert_eq!(c.stats().follow_up, 2);
        // Another sequenceId finds nothing and goes unchanged.
        let mut m3 = message(1);
        let other = apply(Event::Sync, 8);
        c.handle_egress(&other, D1, Timestamp(5_000), &mut m3);
        assert_eq!(correction(&m3), 1);
        assert_eq!(c.stats().follow_up_unmatched, 1);
    }

    #[test]
    fn delay_resp_gets_the_residence_of_the_delay_req_on_the_upstream_port() {
        let mut c = Corrector::with_capacity(16, 1);
        let req = remember(Event::DelayReq, 3, 0);
        c.handle_egress(&req, UP, Timestamp(20_000), &mut message(0));
        let resp = apply(Event::DelayReq, 3);
        // Flooded to two ports: both get it.
        for p in [D1, D2] {
            let mut m = message(0);
            c.handle_egress(&resp, p, Timestamp(90_000), &mut m);
            assert_eq!(correction(&m), 20_000 << 16);
        }
        assert_eq!(c.stats().delay_resp, 2);
    }

    #[test]
    fn another_sdo_id_is_another_domain_for_the_pending_table() {
        use crate::wire::{MessageRepr, PtpFrameRepr};
        let client = PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, 1],
            port_number: 1,
        };
        let frame = |kind: MessageType, major: u8, minor: u8| {
            let requesting = (kind == MessageType::DelayResp).then_some(client);
            let len = if requesting.is_some() { 54 } else { 44 };
            let m = MessageRepr::bare(kind, client, 7, requesting, len).with_major_sdo_id(major);
            let mut f = vec![0u8; PtpFrameRepr::l2(m).buffer_len()];
            PtpFrameRepr::l2(m).emit(&mut f);
            f[14 + 5] = minor;
            f
        };
        let key_of = |f: &[u8]| match Timing::of(&PtpFrame::parse(f).unwrap(), f, Timestamp(0)) {
            Timing::Remember { key, .. } | Timing::Apply { key, .. } => key,
            t => panic!("{t:?}"),
        };
        let default = frame(MessageType::DelayReq, 0, 0);
        let gptp = frame(MessageType::DelayReq, 1, 0);
        let minor = frame(MessageType::DelayReq, 0, 3);
        assert_eq!(key_of(&default).sdo_id, 0);
        assert_eq!(key_of(&gptp).sdo_id, 0x100);
        assert_eq!(key_of(&minor).sdo_id, 0x003);
        assert!(key_of(&default).is_event_of(&default[14..]));
        assert!(!key_of(&default).is_event_of(&gptp[14..]));
        assert!(!key_of(&gptp).is_event_of(&minor[14..]));
        // A Delay_Resp of sdoId 0x100 finds only the Delay_Req of sdoId 0x100.
        let mut c = Corrector::with_capacity(16, 1);
        let req = Timing::of(&PtpFrame::parse(&gptp).unwrap(), &gptp, Timestamp(0));
        c.handle_egress(&req, UP, Timestamp(20_000), &mut gptp.clone());
        let mut resp = frame(MessageType::DelayResp, 0, 0);
        let t = Timing::of(&PtpFrame::parse(&resp).unwrap(), &resp, Timestamp(30_000));
        c.handle_egress(&t, D1, Timestamp(40_000), &mut resp);
        assert_eq!(c.stats().delay_resp_unmatched, 1);
        let mut resp = frame(MessageType::DelayResp, 1, 0);
        let t = Timing::of(&PtpFrame::parse(&resp).unwrap(), &resp, Timestamp(30_000));
        c.handle_egress(&t, D1, Timestamp(40_000), &mut resp);
        assert_eq!(c.stats().delay_resp, 1);
        assert_eq!(correction(&resp[14..]), 20_000 << 16);
    }

    #[test]
    fn an_unmatched_delay_resp_is_not_sent_where_the_request_may_have_been_paced() {
        let mut c = Corrector::with_capacity(16, 1);
        // Sent unchanged by default (its request waited a batch hold at most).
        let mut m = message(0);
        assert!(c.handle_egress(&apply(Event::DelayReq, 1), D1, Timestamp(9_000), &mut m));
        c.set_unmatched_delay_resp_sent(false);
        assert!(!c.handle_egress(&apply(Event::DelayReq, 2), D1, Timestamp(9_000), &mut m));
        // A matched one still leaves, with its residence; so does an unmatched Follow_Up.
        c.handle_egress(
            &remember(Event::DelayReq, 3, 0),
            UP,
            Timestamp(200_000_000),
            &mut m,
        );
        let mut resp = message(0);
        let answered = Timestamp(300_000_000);
        assert!(c.handle_egress(&apply(Event::DelayReq, 3), D1, answered, &mut resp));
        assert_eq!(correction(&resp), 200_000_000 << 16);
        assert!(c.handle_egress(&apply(Event::Sync, 4), D1, Timestamp(9_000), &mut m));
        let s = c.stats();
        assert_eq!(
            (
                s.delay_resp,
                s.delay_resp_unmatched,
                s.delay_resp_unmatched_dropped
            ),
            (1, 2, 1)
        );
        assert_eq!(s.follow_up_unmatched, 1);
    }

    #[test]
    fn without_a_table_nothing_is_remembered_and_a_reload_allocates_one() {
        let mut c = Corrector::for_mode(Correction::None, 1);
        assert_eq!(c.capacity(), 0);
        let req = remember(Event::DelayReq, 3, 0);
        let resp = apply(Event::DelayReq, 3);
        c.handle_egress(&req, UP, Timestamp(20_000), &mut message(0));
        c.handle_tx_timestamp(UP, &key(Event::DelayReq, 3), Timestamp(21_000));
        let mut m = message(0);
        c.handle_egress(&resp, D1, Timestamp(90_000), &mut m);
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().delay_resp_unmatched, 1);
        assert_eq!(c.pending(), 0);

        c.reconfigure(Correction::Residence, &PortMap::identity());
        assert_eq!(c.capacity(), board::PENDING_CORRECTIONS);
        c.handle_egress(&req, UP, Timestamp(20_000), &mut message(0));
        c.handle_egress(&resp, D1, Timestamp(90_000), &mut m);
        assert_eq!(correction(&m), 20_000 << 16);
        // The same mode again keeps what is remembered; back to none frees the table.
        c.reconfigure(Correction::Residence, &PortMap::identity());
        assert_eq!((c.pending(), c.capacity()), (1, board::PENDING_CORRECTIONS));
        c.reconfigure(Correction::None, &PortMap::identity());
        assert_eq!(c.capacity(), 0);
        assert_eq!(c.stats().delay_resp, 1, "counters survive a reload");
    }

    #[test]
    fn implausible_residences_and_stale_entries_are_not_applied() {
        let mut c = Corrector::with_capacity(16, 1);
        let mut m = message(0);
        // Clock stepped back between capture and send.
        let t = Timing::OneStep {
            captured: Timestamp(10_000),
            rewrite: AT,
        };
        assert!(
            !c.handle_egress(&t, D1, Timestamp(9_000), &mut m),
            "not sent"
        );
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().out_of_range, 1);
        // A Follow_Up 3 s after its Sync is not its Sync's.
        let sync = remember(Event::Sync, 1, 0);
        c.handle_egress(&sync, D1, Timestamp(10), &mut message(0));
        let fup = apply(Event::Sync, 1);
        c.handle_egress(&fup, D1, Timestamp(3_000_000_010), &mut m);
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().follow_up_unmatched, 1);
    }

    #[test]
    fn a_clock_step_while_frames_wait_keeps_their_events_from_leaving() {
        // Injected clock: the shell declares the captures of a turn untimed (the wall clock
        // stepped while they waited); their events are not sent, general messages are.
        let mut c = Corrector::with_capacity(16, 1);
        let sync = sync_frame(7);
        let parsed = PtpFrame::parse(&sync).unwrap();
        c.set_captures_timed(false);
        let t = c.timing_of(&parsed, &sync, Timestamp(1_000));
        assert_eq!(t, Timing::Untimed);
        assert!(!c.handle_egress(&t, D1, Timestamp(2_000), &mut sync.clone()));
        assert_eq!(c.stats().clock_step, 1);
        assert_eq!(c.pending(), 0, "nothing remembered for its Follow_Up");
        let mut fup = sync.clone();
        fup[14] = 0x08;
        fup[14 + 6] = 0;
        let parsed_fup = PtpFrame::parse(&fup).unwrap();
        let t = c.timing_of(&parsed_fup, &fup, Timestamp(1_500));
        assert!(matches!(t, Timing::Apply { .. }));
        assert!(c.handle_egress(&t, D1, Timestamp(2_500), &mut fup));
        // The next turn is timed again.
        c.set_captures_timed(true);
        let t = c.timing_of(&parsed, &sync, Timestamp(10_000));
        assert!(matches!(t, Timing::Remember { .. }));
        assert!(c.handle_egress(&t, D1, Timestamp(12_000), &mut sync.clone()));
        assert_eq!(c.pending(), 1);
        // A transmit timestamp that straddled a step is not used.
        c.tx_timestamp_untimed();
        assert_eq!(c.stats().clock_step, 2);
    }

    #[test]
    fn a_residence_above_the_ceiling_is_a_fault_and_its_event_is_not_sent() {
        let mut c = Corrector::with_capacity(16, 1);
        c.set_max_residence(3_000_000);
        let one_step = |captured| Timing::OneStep {
            captured: Timestamp(captured),
            rewrite: AT,
        };
        let mut m = message(0);
        assert!(c.handle_egress(&one_step(0), D1, Timestamp(3_000_000), &mut m));
        assert_eq!(correction(&m), 3_000_000 << 16);
        let mut m = message(0);
        // A small step forward the shell did not see, or a loop stalled for 3 ms more.
        assert!(!c.handle_egress(&one_step(0), D1, Timestamp(3_000_001), &mut m));
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().out_of_range, 1);
        // A transmit timestamp that would take a remembered residence past it is not used.
        let sync = remember(Event::Sync, 4, 0);
        assert!(c.handle_egress(&sync, D1, Timestamp(2_000_000), &mut message(0)));
        c.handle_tx_timestamp(D1, &key(Event::Sync, 4), Timestamp(3_500_000));
        assert_eq!(c.stats().tx_timestamped, 0);
        // The hard cap holds whatever is asked.
        c.set_max_residence(i64::MAX);
        assert_eq!(c.max_residence_ns, MAX_RESIDENCE_NS);
    }

    #[test]
    fn correction_saturates_instead_of_wrapping() {
        let mut m = message(i64::MAX - 5);
        assert!(AT.add(&mut m, 1_000));
        assert_eq!(correction(&m), i64::MAX);
        let mut m = message(0);
        assert!(!Rewrite {
            correction_at: 40,
            checksum_at: None
        }
        .add(&mut m, 1));
    }

    #[test]
    fn the_table_stays_bounded_and_counts_what_it_evicts() {
        let mut c = Corrector::with_capacity(8, 3);
        for seq in 0..1_000u16 {
            let t = Timing::Remember {
                captured: Timestamp(i64::from(seq) * 10),
                key: key(Event::DelayReq, seq),
                ptp_offset: 0,
            };
            c.handle_egress(&t, UP, Timestamp(i64::from(seq) * 10 + 5), &mut message(0));
        }
        assert!(c.pending() <= 8);
        assert_eq!(c.stats().remembered, 1_000);
        assert_eq!(c.stats().evicted, 1_000 - 8);
        // The newest are still there.
        let mut m = message(0);
        let resp = apply(Event::DelayReq, 999);
        c.handle_egress(&resp, D1, Timestamp(10_000), &mut m);
        assert_eq!(correction(&m), 5 << 16);
    }

    /// A real two-step Sync (L2) with sequenceId `seq`.
    fn sync_frame(seq: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 44];
        f[..6].copy_from_slice(&[0x01, 0x1b, 0x19, 0, 0, 0]);
        f[12..14].copy_from_slice(&[0x88, 0xf7]);
        f[14] = 0x00;
        f[15] = 0x02;
        f[16..18].copy_from_slice(&44u16.to_be_bytes());
        f[14 + 6] = 0x02; // twoStepFlag
        f[14 + 30..14 + 32].copy_from_slice(&seq.to_be_bytes());
        f
    }

    #[test]
    fn a_transmit_timestamp_makes_the_remembered_residence_exact() {
        // A real two-step Sync (L2), as the relay tags it.
        let f = sync_frame(9);
        let parsed = PtpFrame::parse(&f).unwrap();
        let sync = Timing::of(&parsed, &f, Timestamp(1_000));
        let Timing::Remember {
            key, ptp_offset, ..
        } = sync
        else {
            panic!("{sync:?}");
        };
        assert!(key.is_event_of(&f[usize::from(ptp_offset)..]));
        assert!(!key.is_event_of(&f[usize::from(ptp_offset) + 1..]));
        let mut c = Corrector::with_capacity(16, 1);
        c.handle_egress(&sync, D1, Timestamp(11_000), &mut f.clone());
        // Sent 2.5 µs after the clock was read; a timestamp from before the read is ignored.
        c.handle_tx_timestamp(D1, &key, Timestamp(10_999));
        c.handle_tx_timestamp(D1, &key, Timestamp(13_500));
        assert_eq!(c.stats().tx_timestamped, 1);
        assert_eq!(c.stats().tx_timestamp_mean_added_ns(), 2_500);
        let mut fup = f.clone();
        fup[14] = 0x08;
        fup[14 + 6] = 0;
        let parsed = PtpFrame::parse(&fup).unwrap();
        assert!(!key.is_event_of(&fup[14..]), "a Follow_Up is not the Sync");
        let t = Timing::of(&parsed, &fup, Timestamp(20_000));
        c.handle_egress(&t, D1, Timestamp(30_000), &mut fup);
        assert_eq!(correction(&fup[14..]), 12_500 << 16);
        assert_eq!(
            c.stats().tx_timestamp_missing,
            0,
            "it ended at the timestamp"
        );
        // Another port's copy was not sent: nothing to refine there.
        c.handle_tx_timestamp(D2, &key, Timestamp(13_500));
        assert_eq!(c.stats().tx_timestamped, 1);
    }

    #[test]
    fn a_general_message_knows_which_port_s_transmit_timestamp_it_waits_for() {
        let mut c = Corrector::with_capacity(16, 1);
        let req = remember(Event::DelayReq, 3, 0);
        let resp = apply(Event::DelayReq, 3);
        assert_eq!(c.awaits_tx_timestamp(&resp, D1), None, "nothing remembered");
        c.handle_egress(&req, UP, Timestamp(1_000), &mut message(0));
        // The Delay_Resp leaves on D1; its Delay_Req left upstream.
        assert_eq!(c.awaits_tx_timestamp(&resp, D1), Some(UP));
        c.handle_tx_timestamp(UP, &key(Event::DelayReq, 3), Timestamp(1_500));
        assert_eq!(c.awaits_tx_timestamp(&resp, D1), None, "stamped");
        let mut m = message(0);
        c.handle_egress(&resp, D1, Timestamp(9_000), &mut m);
        assert_eq!(correction(&m), 1_500 << 16);
        assert_eq!(c.stats().tx_timestamp_missing, 0);
        assert_eq!(c.awaits_tx_timestamp(&Timing::None, D1), None);
    }

    #[test]
    fn a_reload_moves_remembered_residences_with_their_port() {
        let mut c = Corrector::with_capacity(64, 5);
        let sync = |seq| remember(Event::Sync, seq, 0);
        c.handle_egress(&sync(1), D1, Timestamp(1_000), &mut message(0));
        c.handle_egress(&sync(2), D2, Timestamp(2_000), &mut message(0));
        // Port 1 goes, port 2 becomes port 1.
        let mut map = PortMap::identity();
        map.0[1] = None;
        map.0[2] = Some(D1);
        c.reconfigure(Correction::Residence, &map);
        assert_eq!(c.pending(), 1);
        let fup = |seq| apply(Event::Sync, seq);
        let mut m = message(0);
        c.handle_egress(&fup(2), D1, Timestamp(5_000), &mut m);
        assert_eq!(correction(&m), 2_000 << 16);
        // Applied with the clock read before the Sync's send: no transmit timestamp came.
        assert_eq!(c.stats().tx_timestamp_missing, 1);
        let mut m = message(0);
        c.handle_egress(&fup(1), D1, Timestamp(5_000), &mut m);
        assert_eq!(correction(&m), 0);
    }

    #[test]
    fn an_entry_takes_32_bytes() {
        // The board profiles size the table as 2 x max_clients entries on this figure.
        assert!(core::mem::size_of::<Option<Slot>>() <= 32);
    }

    #[test]
    fn incremental_checksum_matches_a_full_recompute() {
        // A UDP datagram (no pseudo-header here: the update does not depend on it) with the
        // field at an even offset.
        let mut d = vec![0u8; 52];
        for (i, b) in d.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37);
        }
        let full = |d: &[u8]| {
            let mut x = d.to_vec();
            x[6..8].fill(0);
            match !ip::checksum_fold(ip::sum_words(&x)) {
                0 => 0xFFFF,
                c => c,
            }
        };
        let c = full(&d);
        d[6..8].copy_from_slice(&c.to_be_bytes());
        let rw = Rewrite {
            correction_at: 16,
            checksum_at: Some(6),
        };
        for r in [1, 12_345, 999_999_999, 65_535] {
            assert!(rw.add(&mut d, r));
            assert_eq!(u16::from_be_bytes([d[6], d[7]]), full(&d), "residence {r}");
        }
    }
}
