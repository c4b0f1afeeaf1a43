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

/// A residence outside `0..=MAX_RESIDENCE_NS` means the clock was stepped between capture and
/// send (or a frame sat in a queue far longer than any PTP exchange lasts): not applied, counted.
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
}

impl Timing {
    /// True for event messages, whose residence is measured: the sender reads its clock
    /// right before sending them.
    pub fn is_event(&self) -> bool {
        matches!(self, Timing::OneStep { .. } | Timing::Remember { .. })
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
    /// Delay_Resp sent unchanged: no residence of their Delay_Req was found.
    pub delay_resp_unmatched: u64,
    /// Remembered residences replaced before their general message came (table too small).
    pub evicted: u64,
    /// Residences outside 0..=1 s (a clock step): not applied.
    pub out_of_range: u64,
    /// Remembered residences made exact with the kernel's transmit timestamp of the event
    /// ([`Corrector::handle_tx_timestamp`]), and the sum of what that added to the clock read before
    /// the send, nanoseconds.
    pub tx_timestamped: u64,
    pub tx_timestamp_added_ns: u64,
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
    pub fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("residence_mean_ns", self.residence_mean_ns()),
            ("residence_max_ns", self.residence_max_ns),
            ("one_step", self.one_step),
            ("remembered", self.remembered),
            ("follow_up", self.follow_up),
            ("delay_resp", self.delay_resp),
            ("follow_up_unmatched", self.follow_up_unmatched),
            ("delay_resp_unmatched", self.delay_resp_unmatched),
            ("evicted", self.evicted),
            ("out_of_range", self.out_of_range),
            ("tx_timestamped", self.tx_timestamped),
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
    /// When the event left (the age of the entry), and its residence (0..=MAX_RESIDENCE_NS:
    /// 32 bits hold it, and keep an entry 32 bytes).
    sent: Timestamp,
    residence_ns: i32,
    /// Applied at least once: the first to go when its set needs room.
    used: bool,
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
        }
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
            Correction::Residence => Timing::of(parsed, frame, captured),
            Correction::None => Timing::None,
        }
    }

    /// Carry out `timing` for the copy of a frame, `frame`, that leaves `port` now, at `egress`
    /// (read just before the send, on the clock of the capture timestamps).
    pub fn handle_egress(
        &mut self,
        timing: &Timing,
        port: PortId,
        egress: Timestamp,
        frame: &mut [u8],
    ) {
        match *timing {
            Timing::None => {}
            Timing::OneStep { captured, rewrite } => {
                if let Some(r) = self.residence(captured, egress) {
                    if rewrite.add(frame, r) {
                        self.stats.one_step += 1;
                    }
                }
            }
            Timing::Remember { captured, key, .. } => {
                if let Some(r) = self.residence(captured, egress) {
                    self.remember(key, port, egress, r);
                }
            }
            Timing::Apply { key, rewrite } => {
                // A Delay_Req always left through the upstream port, whichever port its
                // Delay_Resp takes; a Follow_Up takes its Sync's port.
                let event_port = match key.event {
                    Event::Sync => port,
                    Event::DelayReq => PortId::UPSTREAM,
                };
                let found = self.take(&key, event_port, egress);
                let applied = found.is_some_and(|r| rewrite.add(frame, r));
                let counter = match (key.event, applied) {
                    (Event::Sync, true) => &mut self.stats.follow_up,
                    (Event::Sync, false) => &mut self.stats.follow_up_unmatched,
                    (Event::DelayReq, true) => &mut self.stats.delay_resp,
                    (Event::DelayReq, false) => &mut self.stats.delay_resp_unmatched,
                };
                *counter += 1;
            }
        }
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
        if added < 0 || residence > MAX_RESIDENCE_NS {
            return;
        }
        let Ok(residence) = i32::try_from(residence) else {
            return;
        };
        slot.residence_ns = residence;
        slot.sent = tx;
        self.stats.tx_timestamped += 1;
        self.stats.tx_timestamp_added_ns = self
            .stats
            .tx_timestamp_added_ns
            .saturating_add(added as u64);
    }

    /// `egress - captured` if it is a plausible residence; counts it either way.
    fn residence(&mut self, captured: Timestamp, egress: Timestamp) -> Option<i64> {
        let r = egress.nanos_since(captured);
        if !(0..=MAX_RESIDENCE_NS).contains(&r) {
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
        // Cannot fail: `residence` keeps it within 0..=MAX_RESIDENCE_NS.
        let Ok(residence_ns) = i32::try_from(residence_ns) else {
            return;
        };
        self.insert(Slot {
            key,
            port,
            sent,
            residence_ns,
            used: false,
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
    fn take(&mut self, key: &PendingKey, port: PortId, now: Timestamp) -> Option<i64> {
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
        Some(i64::from(slot.residence_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: PortId = PortId(0);
    const D1: PortId = PortId(1);
    const D2: PortId = PortId(2);

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
        let sync = Timing::Remember {
            captured: Timestamp(100),
            key: key(Event::Sync, 7),
            ptp_offset: 0,
        };
        c.handle_egress(&sync, D1, Timestamp(1_100), &mut message(0));
        c.handle_egress(&sync, D2, Timestamp(3_100), &mut message(0));
        let fup = Timing::Apply {
            key: key(Event::Sync, 7),
            rewrite: AT,
        };
        let (mut m1, mut m2) = (message(1), message(1));
        c.handle_egress(&fup, D1, Timestamp(5_000), &mut m1);
        c.handle_egress(&fup, D2, Timestamp(5_000), &mut m2);
        assert_eq!(correction(&m1), 1 + (1_000 << 16));
        assert_eq!(correction(&m2), 1 + (3_000 << 16));
        assert_eq!(c.stats().follow_up, 2);
        // Another sequenceId finds nothing and goes unchanged.
        let mut m3 = message(1);
        let other = Timing::Apply {
            key: key(Event::Sync, 8),
            rewrite: AT,
        };
        c.handle_egress(&other, D1, Timestamp(5_000), &mut m3);
        assert_eq!(correction(&m3), 1);
        assert_eq!(c.stats().follow_up_unmatched, 1);
    }

    #[test]
    fn delay_resp_gets_the_residence_of_the_delay_req_on_the_upstream_port() {
        let mut c = Corrector::with_capacity(16, 1);
        let req = Timing::Remember {
            captured: Timestamp(0),
            key: key(Event::DelayReq, 3),
            ptp_offset: 0,
        };
        c.handle_egress(&req, UP, Timestamp(20_000), &mut message(0));
        let resp = Timing::Apply {
            key: key(Event::DelayReq, 3),
            rewrite: AT,
        };
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
    fn without_a_table_nothing_is_remembered_and_a_reload_allocates_one() {
        let mut c = Corrector::for_mode(Correction::None, 1);
        assert_eq!(c.capacity(), 0);
        let req = Timing::Remember {
            captured: Timestamp(0),
            key: key(Event::DelayReq, 3),
            ptp_offset: 0,
        };
        let resp = Timing::Apply {
            key: key(Event::DelayReq, 3),
            rewrite: AT,
        };
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
        c.handle_egress(&t, D1, Timestamp(9_000), &mut m);
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().out_of_range, 1);
        // A Follow_Up 3 s after its Sync is not its Sync's.
        let sync = Timing::Remember {
            captured: Timestamp(0),
            key: key(Event::Sync, 1),
            ptp_offset: 0,
        };
        c.handle_egress(&sync, D1, Timestamp(10), &mut message(0));
        let fup = Timing::Apply {
            key: key(Event::Sync, 1),
            rewrite: AT,
        };
        c.handle_egress(&fup, D1, Timestamp(3_000_000_010), &mut m);
        assert_eq!(correction(&m), 0);
        assert_eq!(c.stats().follow_up_unmatched, 1);
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
        let resp = Timing::Apply {
            key: key(Event::DelayReq, 999),
            rewrite: AT,
        };
        c.handle_egress(&resp, D1, Timestamp(10_000), &mut m);
        assert_eq!(correction(&m), 5 << 16);
    }

    #[test]
    fn a_transmit_timestamp_makes_the_remembered_residence_exact() {
        // A real two-step Sync (L2), as the relay tags it.
        let mut f = vec![0u8; 14 + 44];
        f[..6].copy_from_slice(&[0x01, 0x1b, 0x19, 0, 0, 0]);
        f[12..14].copy_from_slice(&[0x88, 0xf7]);
        f[14] = 0x00;
        f[15] = 0x02;
        f[16..18].copy_from_slice(&44u16.to_be_bytes());
        f[14 + 6] = 0x02; // twoStepFlag
        f[14 + 30..14 + 32].copy_from_slice(&9u16.to_be_bytes());
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
        // Another port's copy was not sent: nothing to refine there.
        c.handle_tx_timestamp(D2, &key, Timestamp(13_500));
        assert_eq!(c.stats().tx_timestamped, 1);
    }

    #[test]
    fn a_reload_moves_remembered_residences_with_their_port() {
        let mut c = Corrector::with_capacity(64, 5);
        let sync = |seq| Timing::Remember {
            captured: Timestamp(0),
            key: key(Event::Sync, seq),
            ptp_offset: 0,
        };
        c.handle_egress(&sync(1), D1, Timestamp(1_000), &mut message(0));
        c.handle_egress(&sync(2), D2, Timestamp(2_000), &mut message(0));
        // Port 1 goes, port 2 becomes port 1.
        let mut map = PortMap::identity();
        map.0[1] = None;
        map.0[2] = Some(D1);
        c.reconfigure(Correction::Residence, &map);
        assert_eq!(c.pending(), 1);
        let fup = |seq| Timing::Apply {
            key: key(Event::Sync, seq),
            rewrite: AT,
        };
        let mut m = message(0);
        c.handle_egress(&fup(2), D1, Timestamp(5_000), &mut m);
        assert_eq!(correction(&m), 2_000 << 16);
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
