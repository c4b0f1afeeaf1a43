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
use crate::port::{PortId, PortMap, PortSet};
use crate::relay::Relay;
use crate::stats::{DropReason, Stats};
use crate::time::{Instant, Timestamp};

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
}

pub struct Proxy {
    relay: Relay,
    corrector: Corrector,
}

impl Proxy {
    /// `seed` keys the hashes of the client and pending tables: draw it at random at start.
    pub fn new(config: &Config, now: Instant, seed: u64) -> Proxy {
        let mut corrector = Corrector::for_mode(config.correction, mix(seed));
        corrector.set_max_residence(max_residence_ns(config));
        Proxy {
            relay: Relay::new(config, now, seed),
            corrector,
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
        corrector.set_max_residence(max_residence_ns(config));
        Proxy {
            relay: Relay::new(config, now, seed),
            corrector,
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
        match self.relay.handle_frame(now, from, &parsed, frame, scratch) {
            Ok((to, frame)) => Action::Forward {
                to,
                frame,
                timing: self.corrector.timing_of(&parsed, frame, captured),
            },
            Err(reason) => Action::Drop(reason),
        }
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

    /// When [`Proxy::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        self.relay.poll_timeout()
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
        self.corrector.set_max_residence(max_residence_ns(new));
        map
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

/// The ceiling on residences (`max_residence_us`: by default the batching hold plus a loop
/// turn's margin).
fn max_residence_ns(config: &Config) -> i64 {
    i64::from(config.max_residence_us) * 1_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::samples::L2_SYNC;

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
            Action::Drop(reason) => panic!("Sync dropped: {reason:?}"),
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
}
