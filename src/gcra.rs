//! A GCRA rate limit (the token bucket as one deadline per flow, ITU-T I.371): what limits each
//! client's Delay_Req and each downstream port's Signaling/Management. One `Instant` of state
//! per flow, kept by the caller; no clock is read here.

use crate::time::{Duration, Instant};

/// `rate` events per second with a burst of one second's worth.
#[derive(Clone, Copy, Debug)]
pub struct Gcra {
    interval: Duration,
    /// (rate - 1) intervals.
    tolerance: Duration,
}

impl Gcra {
    pub fn per_second(rate: u32) -> Gcra {
        let rate = rate.max(1);
        let interval = Duration(1_000_000_000 / u64::from(rate));
        Gcra {
            interval,
            tolerance: Duration(interval.0 * u64::from(rate - 1)),
        }
    }

    /// The theoretical arrival time after a new flow's first event at `now` (always allowed).
    pub fn first(&self, now: Instant) -> Instant {
        now + self.interval
    }

    /// One event of the flow whose theoretical arrival time is `tat` at `now`: allowed (and
    /// `tat` advanced) or not (`tat` unchanged).
    pub fn allow(&self, tat: &mut Instant, now: Instant) -> bool {
        if now < *tat - self.tolerance {
            return false;
        }
        *tat = core::cmp::max(*tat, now) + self.interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let g = Gcra::per_second(4);
        let mut tat = Instant(0);
        let t0 = Instant::from_secs(10);
        assert_eq!((0..10).filter(|_| g.allow(&mut tat, t0)).count(), 4);
        // 250 ms later one more fits, not two.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!((0..10).filter(|_| g.allow(&mut tat, t1)).count(), 1);
    }
}
