//! The core the shell drives: one object that owns the forwarding rules ([`Relay`]) and the
//! residence correction ([`Corrector`]), with statime's sans-IO shape — inputs are `handle_*`
//! calls, "what next" is [`Proxy::poll_timeout`], and every output is a value the caller
//! carries out.
//!
//! The life of a frame (ARCHITECTURE.md has the picture):
//! 1. [`Proxy::handle_frame`]: the shell hands over a captured frame, its ingress port, the
//!    core's time and the capture timestamp; the answer is an [`Action`]: drop (counted), or
//!    forward these bytes to these ports with this [`Timing`].
//! 2. [`Proxy::handle_egress`]: right before a copy leaves a port, the shell reads the clock of
//!    the capture timestamps and lets the core write the residence into that copy (or remember
//!    it for the Follow_Up / Delay_Resp to come).
//! 3. [`Proxy::handle_tx_timestamp`]: when the kernel reports when a remembered event really
//!    left, the shell hands back the [`PendingKey`] that event's send carried.
//!
//! Nothing here reads a clock, touches a socket or allocates per frame.

use crate::clients::ClientTable;
use crate::config::Config;
use crate::correction::{CorrectionStats, Corrector, PendingKey, Timing};
use crate::pacing::{Admit, Pacer, PacingStats, Released};
use crate::port::{PortId, PortMap, PortSet};
use crate::relay::Relay;
use crate::stats::{DropReason, Stats};
use crate::time::{Duration, Instant, Timestamp};
use crate::wire::MessageType;

/// What to do with a frame.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Not relayed; the reason was counted.
    Drop(DropReason),
    /// Send `frame` (the input, or a rewritten copy in the caller's scratch buffer) out of each
    /// port in `to`, each copy through [`Proxy::handle_egress`] with `timing` as it leaves.
    Forward {
        to: PortSet,
        frame: &'a [u8],
        timing: Timing,
    },
    /// A Delay_Req above `upstream_max_delay_req_rate`, kept by the core: it leaves through
    /// [`Proxy::release_paced`] when its turn comes.
    Held,
}

pub struct Proxy {
    relay: Relay,
    corrector: Corrector,
    /// Delay_Req towards the upstream port held to `upstream_max_delay_req_rate`.
    pacer: Option<Pacer>,
}

impl Proxy {
    /// `seed` keys the hashes of the client and pending tables: draw it at random at start.
    pub fn new(config: &Config, now: Instant, seed: u64) -> Proxy {
        let mut corrector = Corrector::for_mode(config.correction, mix(seed));
        limit_correction(&mut corrector, config);
        Proxy {
            relay: Relay::new(config, now, seed),
            corrector,
            pacer: pacer_for(config),
        }
    }

    /// The same with a pending-correction table of `capacity` entries whatever the mode (tests
    /// and fuzzing use small tables to reach eviction quickly).
    pub fn with_pending_capacity(
        config: &Config,
        now: Instant,
        seed: u64,
        capacity: usize,
    ) -> Proxy {
        let mut corrector =
            Corrector::for_mode_with_capacity(config.correction, capacity, mix(seed));
        limit_correction(&mut corrector, config);
        Proxy {
            relay: Relay::new(config, now, seed),
            corrector,
            pacer: pacer_for(config),
        }
    }

    /// Decide what happens to one frame that arrived on `from` at `now` (the core's monotonic
    /// time), captured at `captured` (its kernel timestamp, for the residence correction).
    ///
    /// `scratch` is where a rewritten copy is built; it should hold `board::SNAPLEN` bytes.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        from: PortId,
        frame: &'a [u8],
        captured: Timestamp,
        scratch: &'a mut [u8],
    ) -> Action<'a> {
        let parsed = match self.relay.receive(from, frame) {
            Ok(p) => p,
            Err(reason) => return Action::Drop(reason),
        };
        let (to, frame) = match self.relay.handle_frame(now, from, &parsed, frame, scratch) {
            Ok(forward) => forward,
            Err(reason) => return Action::Drop(reason),
        };
        let timing = self.corrector.timing_of(&parsed, frame, captured);
        let paced = parsed.message_type == MessageType::DelayReq
            && to == PortSet::single(PortId::UPSTREAM)
            && self.pacer.is_some();
        if !paced {
            return Action::Forward { to, frame, timing };
        }
        self.pace(now, from, frame, timing)
    }

    /// A Delay_Req on its way upstream, through the pacing: now, later, or not at all.
    fn pace<'a>(
        &mut self,
        now: Instant,
        from: PortId,
        frame: &'a [u8],
        timing: Timing,
    ) -> Action<'a> {
        let to = PortSet::single(PortId::UPSTREAM);
        let Some(pacer) = self.pacer.as_mut() else {
            return Action::Forward { to, frame, timing };
        };
        match pacer.admit(now, from, frame, timing) {
            Admit::Now => Action::Forward { to, frame, timing },
            Admit::Held { evicted } => {
                if let Some(p) = evicted {
                    self.relay
                        .count_paced_drop(p, DropReason::UpstreamRateQueueFull);
                }
                Action::Held
            }
            Admit::Dropped(reason) => {
                self.relay.count_paced_drop(from, reason);
                Action::Drop(reason)
            }
        }
    }

    /// The held Delay_Req whose turn has come by `now`, at most `max`: `send` gets each frame
    /// and its timing, to queue on the upstream port (and [`Proxy::handle_egress`] as it
    /// leaves, as for any forwarded frame). Those that waited past the hold are dropped and
    /// counted. Returns how many `send` got.
    pub fn release_paced(
        &mut self,
        now: Instant,
        max: usize,
        mut send: impl FnMut(&[u8], Timing),
    ) -> usize {
        let (Some(pacer), relay) = (self.pacer.as_mut(), &mut self.relay) else {
            return 0;
        };
        pacer.release(now, max, |r| match r {
            Released::Send { frame, timing } => send(frame, timing),
            Released::Dropped { from, reason } => relay.count_paced_drop(from, reason),
        })
    }

    /// The pacing's counters, if Delay_Req are paced.
    pub fn pacing_stats(&self) -> Option<&PacingStats> {
        self.pacer.as_ref().map(Pacer::stats)
    }

    /// The copy `frame` of a forwarded frame leaves `port` now; `egress` is the time read just
    /// before the send, on the clock of the capture timestamps. Writes the residence into
    /// `frame` or remembers it, as `timing` says. False if the copy must not be sent (its
    /// residence could not be measured: [`Corrector::handle_egress`]).
    pub fn handle_egress(
        &mut self,
        timing: &Timing,
        port: PortId,
        egress: Timestamp,
        frame: &mut [u8],
    ) -> bool {
        self.corrector.handle_egress(timing, port, egress, frame)
    }

    /// Whether the capture timestamps of the frames handled from now on can be trusted (false
    /// while the wall clock stepped: [`Corrector::set_captures_timed`]).
    pub fn set_captures_timed(&mut self, timed: bool) {
        self.corrector.set_captures_timed(timed);
    }

    /// The port whose transmit timestamp the general message `timing`, leaving `port`, waits
    /// for ([`Corrector::awaits_tx_timestamp`]).
    pub fn awaits_tx_timestamp(&self, timing: &Timing, port: PortId) -> Option<PortId> {
        self.corrector.awaits_tx_timestamp(timing, port)
    }

    /// A transmit timestamp the shell did not use because the wall clock stepped around it.
    pub fn tx_timestamp_untimed(&mut self) {
        self.corrector.tx_timestamp_untimed();
    }

    /// The kernel's transmit timestamp `tx` of the event frame whose send carried `key`
    /// ([`Timing::Remember`]) and left `port`.
    pub fn handle_tx_timestamp(&mut self, port: PortId, key: &PendingKey, tx: Timestamp) {
        self.corrector.handle_tx_timestamp(port, key, tx);
    }

    /// When [`Proxy::handle_timeout`] (or [`Proxy::release_paced`]) wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        let relay = self.relay.poll_timeout();
        match self.pacer.as_ref().and_then(Pacer::next_release) {
            Some(t) => relay.min(t),
            None => relay,
        }
    }

    /// Periodic work (aging the client table).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.relay.handle_timeout(now);
    }

    /// Apply a reloaded configuration. Returns how the ports were renumbered, for the shell to
    /// move its own per-port state with the same map.
    pub fn reconfigure(&mut self, old: &Config, new: &Config) -> PortMap {
        let map = PortMap::between(old, new);
        self.relay.reconfigure(&map, new);
        self.corrector.reconfigure(new.correction, &map);
        limit_correction(&mut self.corrector, new);
        self.repace(new, &map);
        map
    }

    /// A reload's pacing: started, stopped (what waited is dropped, counted), or kept with the
    /// new rate and its queues renumbered.
    fn repace(&mut self, new: &Config, map: &PortMap) {
        let relay = &mut self.relay;
        let expired = crate::stats::DropReason::UpstreamRateExpired;
        match (self.pacer.as_mut(), new.upstream_max_delay_req_rate) {
            (Some(p), Some(rate)) => {
                p.set_rate(rate, hold_of(new));
                p.renumber(map, |port| relay.count_paced_drop(port, expired));
            }
            (Some(_), None) => {
                self.drop_paced();
                self.pacer = None;
            }
            (None, Some(_)) => self.pacer = pacer_for(new),
            (None, None) => {}
        }
    }

    /// Drop every Delay_Req the pacing holds (a reload that ends the pacing, a stop: their
    /// answers would find no correction), counted as expired.
    pub fn drop_paced(&mut self) {
        let (Some(p), relay) = (self.pacer.as_mut(), &mut self.relay) else {
            return;
        };
        let expired = crate::stats::DropReason::UpstreamRateExpired;
        let gone = PortMap([None; crate::board::MAX_PORTS]);
        p.renumber(&gone, |port| relay.count_paced_drop(port, expired));
    }

    pub fn stats(&self) -> &Stats {
        self.relay.stats()
    }

    pub fn clients(&self) -> &ClientTable {
        self.relay.clients()
    }

    /// The grandmaster side per served domain.
    pub fn upstream(&self) -> &crate::upstream::UpstreamTable {
        self.relay.upstream()
    }

    pub fn correction_stats(&self) -> &CorrectionStats {
        self.corrector.stats()
    }

    /// Pending-correction entries in use, and the table's capacity (0 without the correction).
    pub fn pending(&self) -> (usize, usize) {
        (self.corrector.pending(), self.corrector.capacity())
    }
}

/// A second hash key from the first (splitmix64's finalizer), so the two tables' hashes differ.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What `config` allows the correction: its residence ceiling, and, with upstream pacing, no
/// Delay_Resp whose request's wait is unknown.
fn limit_correction(corrector: &mut Corrector, config: &Config) {
    corrector.set_max_residence(max_residence_ns(config));
    corrector.set_unmatched_delay_resp_sent(config.upstream_max_delay_req_rate.is_none());
}

/// The ceiling on residences (`max_residence_us`: by default the batching hold plus a loop
/// turn's margin); with pacing, at least the longest a paced Delay_Req may wait plus that margin.
fn max_residence_ns(config: &Config) -> i64 {
    let configured = i64::from(config.max_residence_us) * 1_000;
    match config.upstream_max_delay_req_rate {
        Some(_) => {
            let margin = i64::from(crate::config::DEFAULT_RESIDENCE_MARGIN_US) * 1_000;
            configured.max(hold_of(config).0 as i64 + margin)
        }
        None => configured,
    }
}

/// The pacing of `config`, if any.
fn pacer_for(config: &Config) -> Option<Pacer> {
    let rate = config.upstream_max_delay_req_rate?;
    Some(Pacer::new(rate, hold_of(config)))
}

/// `max_delay_req_hold_ms` as a duration.
fn hold_of(config: &Config) -> Duration {
    Duration::from_millis(u64::from(config.max_delay_req_hold_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::samples::{L2_DELAY_RESP, L2_SYNC};
    use crate::wire::PtpFrame;

    fn config(extra: &str) -> Config {
        let json = format!(r#"{{"upstream": "eth0", "downstream": ["lan1"]{extra}}}"#);
        Config::parse(json.as_bytes()).unwrap()
    }

    /// The Sync's timing as `proxy` tags it, read from the grandmaster at capture time 0.
    fn sync_timing(proxy: &mut Proxy) -> Timing {
        let mut scratch = [0u8; crate::board::SNAPLEN];
        match proxy.handle_frame(
            Instant(1_000_000_000),
            PortId(0),
            &L2_SYNC,
            Timestamp(0),
            &mut scratch,
        ) {
            Action::Forward { timing, .. } => timing,
            other => panic!("Sync not forwarded: {other:?}"),
        }
    }

    #[test]
    fn the_configured_residence_ceiling_applies_and_follows_a_reload() {
        let tight = config(r#", "max_hold_us": 2000, "max_residence_us": 3000"#);
        let mut proxy = Proxy::new(&tight, Instant(0), 7);
        let timing = sync_timing(&mut proxy);
        let mut copy = L2_SYNC;
        // Held 4 ms: above the 3 ms ceiling, a fault; the Sync is not sent.
        assert!(!proxy.handle_egress(&timing, PortId(1), Timestamp(4_000_000), &mut copy));
        assert_eq!(proxy.correction_stats().out_of_range, 1);

        // The default (hold + 50 ms) admits it after a reload.
        let default = config(r#", "max_hold_us": 2000"#);
        proxy.reconfigure(&tight, &default);
        let timing = sync_timing(&mut proxy);
        assert!(proxy.handle_egress(&timing, PortId(1), Timestamp(4_000_000), &mut copy));
        assert!(!proxy.handle_egress(&timing, PortId(1), Timestamp(52_000_001), &mut copy));
        assert_eq!(proxy.correction_stats().out_of_range, 2);
    }

    #[test]
    fn with_pacing_a_delay_resp_without_its_requests_residence_is_not_sent() {
        let paced = config(r#", "upstream_max_delay_req_rate": 4000"#);
        let unpaced = config("");
        let parsed = PtpFrame::parse(&L2_DELAY_RESP).unwrap();
        let timing = Timing::of(&parsed, &L2_DELAY_RESP, Timestamp(0));
        let mut copy = L2_DELAY_RESP;
        // Nothing remembered for its Delay_Req (as after an eviction).
        let mut proxy = Proxy::new(&paced, Instant(0), 7);
        assert!(!proxy.handle_egress(&timing, PortId(1), Timestamp(1_000), &mut copy));
        proxy.reconfigure(&paced, &unpaced);
        assert!(proxy.handle_egress(&timing, PortId(1), Timestamp(1_000), &mut copy));
        proxy.reconfigure(&unpaced, &paced);
        assert!(!proxy.handle_egress(&timing, PortId(1), Timestamp(1_000), &mut copy));
        let s = proxy.correction_stats();
        assert_eq!(
            (s.delay_resp_unmatched, s.delay_resp_unmatched_dropped),
            (3, 2)
        );
    }
}
