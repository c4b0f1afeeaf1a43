//! The emulated master's load: the Delay_Req it reads per 10 ms window, and, with
//! `--master-capacity`, which of them it answers (a grandmaster answers a bounded rate; the rest
//! go unanswered, as on a real one whose queue overflows). It never sends or reads a socket: the
//! receiver asks it about each Delay_Req, with the frame's kernel stamp.

use crate::results::MasterReport;

/// The window the load is measured in.
pub(super) const WINDOW_NS: u64 = 10_000_000;

pub(super) struct MasterLoad {
    capacity: f64,
    /// Between answers at the capacity, and how far ahead of it a burst may run (one window's
    /// worth); 0: every Delay_Req is answered.
    interval_ns: u64,
    burst_ns: u64,
    /// When the next answer is due at the capacity (GCRA).
    tat: u64,
    /// Delay_Req read per window since the first one.
    windows: Vec<u32>,
    first: Option<u64>,
    seen: u64,
    refused: u64,
}

impl MasterLoad {
    pub(super) fn new(capacity: f64) -> MasterLoad {
        let interval_ns = if capacity > 0.0 {
            (1e9 / capacity) as u64
        } else {
            0
        };
        MasterLoad {
            capacity,
            interval_ns,
            burst_ns: WINDOW_NS.saturating_sub(interval_ns),
            tat: 0,
            windows: Vec::new(),
            first: None,
            seen: 0,
            refused: 0,
        }
    }

    /// A Delay_Req read at `ts` (ns): counted in its window; true if the master answers it.
    pub(super) fn admit(&mut self, ts: u64) -> bool {
        self.seen += 1;
        let first = *self.first.get_or_insert(ts);
        // A stamp before the first (another ring read later) counts in the first window.
        let w = (ts.saturating_sub(first) / WINDOW_NS) as usize;
        if self.windows.len() <= w {
            self.windows.resize(w + 1, 0);
        }
        self.windows[w] += 1;
        if self.interval_ns == 0 {
            return true;
        }
        let tat = self.tat.max(ts);
        if tat > ts + self.burst_ns {
            self.refused += 1;
            return false;
        }
        self.tat = tat + self.interval_ns;
        true
    }

    pub(super) fn report(&self) -> MasterReport {
        let mut counts = self.windows.clone();
        counts.sort_unstable();
        let at = |q: f64| {
            let n = counts.len();
            if n == 0 {
                0
            } else {
                u64::from(counts[((q * n as f64) as usize).min(n - 1)])
            }
        };
        MasterReport {
            capacity: self.capacity,
            delay_req_seen: self.seen,
            refused: self.refused,
            per_10ms_max: counts.last().map_or(0, |&c| u64::from(c)),
            per_10ms_p99: at(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_above_the_capacity_is_partly_refused_and_windows_are_counted() {
        // 1000/s: 10 ms' worth (10) of a burst of 100 is answered at once.
        let mut m = MasterLoad::new(1000.0);
        let answered = (0..100).filter(|_| m.admit(1_000_000_000)).count();
        assert_eq!(answered, 10);
        // 50 ms later, again a window's worth: an idle master banks no more than that.
        let later = (0..100).filter(|_| m.admit(1_050_000_000)).count();
        assert_eq!(later, 10);
        let r = m.report();
        assert_eq!((r.delay_req_seen, r.refused), (200, 180));
        assert_eq!(r.per_10ms_max, 100);
        // Six windows: 100, four empty, 100.
        assert_eq!(r.per_10ms_p99, 100);
        let mut all = MasterLoad::new(0.0);
        assert!((0..1000).all(|_| all.admit(5)));
        assert_eq!(all.report().refused, 0);
    }
}
