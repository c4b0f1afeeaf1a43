//! The few system facilities the shell shares: its two clocks and setsockopt(2).

use ptpproxy::time::{Instant, Timestamp};
use std::os::fd::AsRawFd;

/// CLOCK_MONOTONIC in nanoseconds: the core's time base (never jumps with the wall clock).
pub fn monotonic() -> Instant {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    Instant(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// The clock of the capture timestamps (libpcap's, CLOCK_REALTIME), read right before frames
/// that need it are sent.
pub fn realtime() -> Timestamp {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available");
    // tv_nsec is a C long: 32 bits on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    Timestamp::from_parts(t.tv_sec() as i64, t.tv_nsec() as i64)
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
