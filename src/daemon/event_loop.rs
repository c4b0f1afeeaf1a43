//! The one loop: `poll()` over every open port's capture, a signalfd and the daemon's next
//! deadline. Each ready port hands up to `board::RX_BATCH` frames (one pcap_dispatch) to the
//! core before the next, so one busy port cannot starve the others; then every port sends what
//! it was given, in one batch each.

use super::capture::Capture;
use super::dump::Dump;
use super::error::Error;
use super::sender::{Hold, Sender};
use super::sys::{monotonic, WallClock};
use super::Daemon;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use ptpproxy::board;
use ptpproxy::port::PortId;
use ptpproxy::proxy::{Action, Proxy};
use ptpproxy::time::Instant;

/// Ports with something to read (or an error to collect), in port order.
type Ready = heapless::Vec<usize, { board::MAX_PORTS }>;

/// Signals handled through the signalfd; blocked for normal delivery.
pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        set.add(s);
    }
    set
}

/// Start `d` and run it until SIGTERM/SIGINT. An error only for failures of the loop itself.
pub fn run(d: &mut Daemon) -> Result<(), Error> {
    let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
    let sfd = SignalFd::with_flags(&signal_set(), flags).map_err(|e| Error::sys("signalfd", e))?;
    d.start();
    let mut scratch = vec![0u8; board::SNAPLEN];
    let mut ready = Ready::new();
    loop {
        let wait = d.poll_timeout().saturating_since(monotonic());
        let wait_ms = wait.0.div_ceil(1_000_000).min(60_000) as u16;
        let signalled = match wait_ready(&d.captures, &sfd, wait_ms, &mut ready) {
            Ok(s) => s,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
        };
        while let Some(info) = signalled
            .then(|| sfd.read_signal())
            .and_then(|r| r.ok().flatten())
        {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT) => {
                    d.stop();
                    return Ok(());
                }
                Ok(Signal::SIGHUP) => d.reload(),
                Ok(Signal::SIGUSR1) => d.log_counters(),
                _ => {}
            }
        }
        let woke = monotonic();
        d.io.polls += 1;
        if ready.is_empty() {
            // A timeout: paced Delay_Req may be due (their release time is in the deadline).
            d.release_paced();
            d.flush();
            d.handle_timeout();
            continue;
        }
        d.io.wakeups += 1;
        // Frames captured while the wall clock stepped cannot be placed on the monotonic clock.
        let stepped = d.clock.resample();
        d.proxy.set_captures_timed(!stepped);
        drain_ready(d, &ready, &mut scratch);
        d.release_paced();
        d.flush();
        d.handle_timeout();
        // Batching: the next wake-up comes a hold after this one, whatever the load; the frames
        // that arrive meanwhile wait in the rings (their residence is corrected).
        if let Some(hold) = d.hold() {
            sleep_until(woke + hold);
            d.io.sleeps += 1;
        }
    }
}

/// Sleep until `t` on the core's clock (signals wait in the signalfd meanwhile).
fn sleep_until(t: Instant) {
    use nix::sys::time::TimeSpec;
    use nix::time::{clock_nanosleep, ClockId, ClockNanosleepFlags};
    let at = TimeSpec::from(std::time::Duration::from_nanos(t.0));
    let _ = clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &at,
    );
}

/// Read the ready ports: one batch of `board::RX_BATCH` frames each in turn, so a busy port
/// cannot starve the others; batching, as many turns as it takes to empty every ring (bounded
/// by the ring's size), so that nothing waits for a second hold.
fn drain_ready(d: &mut Daemon, ready: &Ready, scratch: &mut [u8]) {
    let batched = d.hold().is_some();
    let hold = d.tx_hold();
    let turns = if batched {
        board::RING_FRAMES / board::RX_BATCH + 1
    } else {
        1
    };
    let mut busy: Ready = ready.clone();
    for _ in 0..turns {
        let mut still = Ready::new();
        for &i in &busy {
            let (captures, senders) = (&mut d.captures, &mut d.senders);
            let turn = Turn {
                clock: &d.clock,
                batched,
                hold,
            };
            let (proxy, dump) = (&mut d.proxy, &mut d.dump);
            match drain(i, &mut captures[i], senders, proxy, dump, scratch, turn) {
                Ok(n) => {
                    d.io.frames += n as u64;
                    d.io.dispatches += 1;
                    if n == board::RX_BATCH {
                        let _ = still.push(i);
                    }
                }
                // POLLERR/POLLHUP without data too: pcap then reports what happened.
                Err(e) => d.port_failed(i, &e),
            }
        }
        if still.is_empty() {
            break;
        }
        busy = still;
    }
    d.dump.end_turn();
}

/// One poll() over the signalfd and every open capture; fills `ready` with the ports that have
/// frames or an error, returns whether a signal is pending. Allocates nothing.
fn wait_ready(
    captures: &[Capture],
    sfd: &SignalFd,
    wait_ms: u16,
    ready: &mut Ready,
) -> nix::Result<bool> {
    use std::os::fd::AsFd;
    let mut fds: heapless::Vec<PollFd<'_>, { board::MAX_PORTS + 1 }> = heapless::Vec::new();
    let mut which = Ready::new();
    let _ = fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
    for (i, c) in captures.iter().enumerate() {
        if let Some(fd) = c.fd() {
            let _ = fds.push(PollFd::new(fd, PollFlags::POLLIN));
            let _ = which.push(i);
        }
    }
    poll(&mut fds, PollTimeout::from(wait_ms))?;
    ready.clear();
    for (k, &i) in which.iter().enumerate() {
        if fds[k + 1].revents().is_some_and(|e| !e.is_empty()) {
            let _ = ready.push(i);
        }
    }
    Ok(fds[0]
        .revents()
        .is_some_and(|e| e.contains(PollFlags::POLLIN)))
}

/// How a turn reads and sends: the clock the capture stamps are moved onto, whether batching,
/// what a flush may hold back for transmit timestamps (and when the turn began).
#[derive(Clone, Copy)]
struct Turn<'a> {
    clock: &'a WallClock,
    batched: bool,
    hold: Option<Hold>,
}

/// Hand up to RX_BATCH frames of port `i` to the core, offer each with its fate to the dump,
/// and queue what it forwards on the other ports' senders (a full queue is sent first); how
/// many frames were read.
fn drain(
    i: usize,
    capture: &mut Capture,
    senders: &mut [Sender],
    proxy: &mut Proxy,
    dump: &mut Dump,
    scratch: &mut [u8],
    turn: Turn<'_>,
) -> Result<usize, pcap::Error> {
    capture.dispatch(board::RX_BATCH, |frame| {
        let action = proxy.handle_frame(
            monotonic(),
            PortId(i as u8),
            frame.data,
            turn.clock.to_monotonic(frame.captured),
            scratch,
        );
        dump.offer(i, &frame, &action);
        let Action::Forward { to, frame, timing } = action else {
            return;
        };
        for id in to.iter() {
            let Some(sender) = senders.get_mut(id.index()) else {
                continue;
            };
            if sender.is_full() {
                sender.flush(id, proxy, turn.batched, turn.clock, turn.hold);
            }
            sender.queue(frame, timing, turn.hold.map_or(Instant(0), |h| h.now));
        }
    })
}
