//! The few system facilities the shell shares: its two clocks and setsockopt(2).

use ptpproxy::time::{Instant, Timestamp};
use std::os::fd::AsRawFd;

/// CLOCK_MONOTONIC in nanoseconds: the core's time base (never jumps with the wall clock).
pub fn monotonic() -> Instant {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    Instant(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// CLOCK_MONOTONIC as a [`Timestamp`]: the clock the residence correction measures on, read
/// right before frames that need it are sent (the kernel's CLOCK_REALTIME stamps are moved onto
/// it by [`WallClock`]).
pub fn egress_clock() -> Timestamp {
    Timestamp(monotonic().0 as i64)
}

fn realtime_ns() -> i64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available");
    // tv_nsec is a C long: 32 bits on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    Timestamp::from_parts(t.tv_sec() as i64, t.tv_nsec() as i64).0
}

/// A change of CLOCK_REALTIME − CLOCK_MONOTONIC larger than this is a step of the wall clock.
/// Both clocks run at the rate NTP/PTP daemons set (slewing changes both alike), so only a step
/// (settimeofday, `date -s`, a leap second, ntpd/chrony/phc2sys stepping) moves their difference;
/// reading it is exact to within half the width of the read ([`Reading`]).
const STEP_NS: i64 = 5_000;

/// The widest read of the difference taken as exact: two monotonic reads this close around the
/// realtime read place it within 1 µs.
const SHARP_NS: i64 = 2_000;

/// One read of CLOCK_REALTIME − CLOCK_MONOTONIC: the realtime read against the midpoint of the
/// two monotonic reads around it, `width` apart. A preemption (on a shared or busy CPU, a vCPU
/// descheduled) between the reads widens it: the difference is then only known to ±width/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    offset: i64,
    width: i64,
}

impl Reading {
    fn take() -> Reading {
        let m1 = monotonic().0 as i64;
        let r = realtime_ns();
        let m2 = monotonic().0 as i64;
        Reading {
            offset: r - (m1 + m2) / 2,
            width: m2 - m1,
        }
    }

    /// The sharpest of a few reads (one preempted read is useless, four rarely all are).
    fn sharpest() -> Reading {
        let mut best = Reading::take();
        for _ in 0..3 {
            if best.width <= SHARP_NS {
                break;
            }
            let r = Reading::take();
            if r.width < best.width {
                best = r;
            }
        }
        best
    }
}

/// What a reading says about the difference held: a step only when the change exceeds
/// [`STEP_NS`] beyond the reading's own uncertainty (a wide read is no evidence of a step, and
/// under load a step check that trusted one would count steps that never happened and leave
/// every event of that turn unsent); the held difference moves only on a sharp read.
fn judge(held: i64, reading: Reading) -> (bool, Option<i64>) {
    let uncertainty = reading.width.max(0) / 2;
    let stepped = (reading.offset - held).abs() > STEP_NS + uncertainty;
    let keep = reading.width <= SHARP_NS || stepped;
    (stepped, keep.then_some(reading.offset))
}

/// The kernel stamps frames (capture, transmit) with CLOCK_REALTIME, which steps; the residence
/// correction measures on CLOCK_MONOTONIC, which does not. A WallClock holds their difference,
/// re-read once per loop turn: a kernel stamp minus it is the same instant on the monotonic
/// clock, and a change of it between two reads means the wall clock stepped in between, so the
/// stamps taken meanwhile cannot be placed on the monotonic clock.
pub struct WallClock {
    offset: i64,
    /// Steps seen, and the size of the last (nanoseconds, + forward), for the log.
    pub steps: u64,
    pub last_step_ns: i64,
}

impl WallClock {
    pub fn new() -> WallClock {
        WallClock {
            offset: Reading::sharpest().offset,
            steps: 0,
            last_step_ns: 0,
        }
    }

    /// Read the difference again; true if the wall clock stepped since the last read.
    pub fn resample(&mut self) -> bool {
        let (stepped, offset) = judge(self.offset, Reading::sharpest());
        let offset = offset.unwrap_or(self.offset);
        if stepped {
            self.steps += 1;
            self.last_step_ns = offset - self.offset;
        }
        self.offset = offset;
        stepped
    }

    /// True if the wall clock stepped since the last [`WallClock::resample`] (which is kept).
    pub fn stepped_since(&self) -> bool {
        judge(self.offset, Reading::sharpest()).0
    }

    /// A kernel timestamp (CLOCK_REALTIME) on the monotonic clock.
    pub fn to_monotonic(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.0.saturating_sub(self.offset))
    }
}

/// setsockopt(2) with a plain-data option value on the open socket `fd` (the capture handle's or
/// the sending socket).
pub fn setsockopt<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> std::io::Result<()> {
    // SAFETY: `fd` is an open socket that outlives the call; `value` is a valid, initialised
    // T and the length passed is its size; the kernel only reads it (and copies what it keeps,
    // including anything it points to).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_beyond_the_reading_s_uncertainty_is_a_step() {
        let sharp = |offset| Reading {
            offset,
            width: 1_000,
        };
        let wide = |offset, width| Reading { offset, width };
        assert_eq!(judge(0, sharp(4_000)), (false, Some(4_000)));
        assert_eq!(judge(0, sharp(-5_600)), (true, Some(-5_600)));
        // A read preempted for 40 µs: 15 µs off is within its ±20 µs, and it is not kept.
        assert_eq!(judge(0, wide(15_000, 40_000)), (false, None));
        // A real step of a millisecond shows through any plausible preemption.
        assert_eq!(judge(0, wide(1_000_000, 40_000)), (true, Some(1_000_000)));
    }

    #[test]
    fn a_steady_wall_clock_is_no_clock_step_and_its_stamps_land_on_the_monotonic_clock() {
        let mut clock = WallClock::new();
        assert!(!clock.resample(), "no step between two reads");
        assert!(!clock.stepped_since());
        let now = clock.to_monotonic(Timestamp(realtime_ns()));
        let mono = egress_clock();
        assert!(
            (mono.0 - now.0).abs() < 1_000_000,
            "{} vs {}",
            mono.0,
            now.0
        );
    }
}
