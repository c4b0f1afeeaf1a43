//! The one loop: `poll()` over every open port, a signalfd and a deadline (aging, status file,
//! reopening lost ports). Each ready port hands up to `board::RX_BATCH` frames (one
//! pcap_dispatch) before the next, so one busy port cannot starve the others.

use super::log::{Log, RateLimit};
use super::port::Port;
use super::{load_config, privileges, status};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::time::{clock_gettime, ClockId};
use ptpproxy::board;
use ptpproxy::config::{Config, Correction};
use ptpproxy::correction::Corrector;
use ptpproxy::relay::{Action, PortId, Relay};
use ptpproxy::stats::DropReason;
use ptpproxy::time::Instant;
use std::time::Duration as StdDuration;

/// Ports with something to read (or an error to collect), in port order.
type Ready = heapless::Vec<usize, { board::MAX_PORTS }>;

/// How often a closed port is tried again.
const REOPEN_INTERVAL_NS: u64 = 1_000_000_000;

pub struct Daemon {
    pub config_path: String,
    pub config: Config,
    pub relay: Relay,
    /// The residence correction's pending table (used with `"correction": "residence"`).
    pub corrector: Corrector,
    pub ports: Vec<Port>,
    pub log: Log,
    started: Instant,
    next_status: Instant,
    next_reopen: Instant,
    status_errors: RateLimit,
    port_errors: Vec<RateLimit>,
    tx_errors: Vec<RateLimit>,
    /// The PM QoS request of `cpu_latency_us`, held while open.
    cpu_latency: Option<std::fs::File>,
}

/// CLOCK_MONOTONIC in nanoseconds: the core's time base (never jumps with the wall clock).
pub fn monotonic() -> Instant {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always available");
    Instant(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

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

impl Daemon {
    pub fn new(config_path: String, config: Config, log: Log) -> Daemon {
        let now = monotonic();
        let ports: Vec<Port> = config
            .port_names()
            .map(|n| Port::new(n, config.promiscuous))
            .collect();
        let port_errors = ports
            .iter()
            .map(|_| RateLimit::new(StdDuration::from_secs(10)))
            .collect();
        Daemon {
            relay: Relay::new(&config, now, random_seed()),
            corrector: Corrector::for_mode(config.correction, random_seed()),
            config_path,
            config,
            ports,
            log,
            started: now,
            next_status: now,
            next_reopen: now,
            status_errors: RateLimit::new(StdDuration::from_secs(60)),
            port_errors,
            tx_errors: Vec::new(),
            cpu_latency: None,
        }
    }

    /// Hold, change or release the CPU wake-up latency request (`cpu_latency_us`); a failure is
    /// logged, never fatal: the relay works without it, only with slower wake-ups.
    fn apply_cpu_latency(&mut self, want: Option<u32>) {
        let Some(us) = want else {
            if self.cpu_latency.take().is_some() {
                self.log.notice("cpu latency: request released");
            }
            return;
        };
        let result = match self.cpu_latency.as_mut() {
            Some(f) => privileges::set_cpu_latency(f, us),
            None => privileges::hold_cpu_latency(us).map(|f| self.cpu_latency = Some(f)),
        };
        match result {
            Ok(()) => self.log.notice(&format!(
                "cpu latency: idle CPUs wake within {us} us (PM QoS request held)"
            )),
            Err(e) => self.log.err(&format!("cpu latency not set: {e}")),
        }
    }

    /// Open every port that is not open; log what happened (failures rate-limited).
    fn open_ports(&mut self) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if p.is_open() {
                continue;
            }
            let reopening = p.counters.opens > 0;
            match p.open() {
                Ok(()) => {
                    let role = if i == 0 { "upstream" } else { "downstream" };
                    self.log.notice(&format!(
                        "{} port {} {} (ring {} bytes, ~{} frames of snaplen {})",
                        role,
                        p.name,
                        if reopening { "reopened" } else { "opened" },
                        board::RING_BYTES,
                        board::RING_FRAMES,
                        board::SNAPLEN
                    ));
                }
                Err(e) => {
                    if let Some(n) = self.port_errors[i].allow(std::time::Instant::now()) {
                        self.log.warn(&format!(
                            "{e}; retrying every second ({n} retries not logged)"
                        ));
                    }
                }
            }
        }
    }

    fn write_status(&mut self, now: Instant) {
        for p in &mut self.ports {
            p.update_kernel_drops();
        }
        let snap = status::Snapshot {
            config: &self.config,
            config_path: &self.config_path,
            uptime_s: now.saturating_since(self.started).as_secs(),
            now,
            relay: &self.relay,
            corrector: &self.corrector,
            ports: &self.ports,
        };
        let written =
            status::write_atomically(&self.config.status_file, |out| status::render(out, &snap));
        if let Err(e) = written {
            if self
                .status_errors
                .allow(std::time::Instant::now())
                .is_some()
            {
                self.log
                    .warn(&format!("status file {}: {e}", self.config.status_file));
            }
        }
    }

    fn log_counters(&mut self) {
        let s = self.relay.stats();
        let mut line = format!(
            "clients {}/{}; forwarded",
            self.relay.clients().len(),
            self.relay.clients().capacity()
        );
        for f in ptpproxy::stats::Forwarded::ALL {
            line.push_str(&format!(" {}={}", f.name(), s.forwarded(*f)));
        }
        line.push_str("; dropped");
        for r in DropReason::ALL {
            if s.dropped(*r) > 0 {
                line.push_str(&format!(" {}={}", r.name(), s.dropped(*r)));
            }
        }
        if self.config.correction == Correction::Residence {
            line.push_str("; residence correction");
            for (name, value) in self.corrector.stats().named() {
                line.push_str(&format!(" {name}={value}"));
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            line.push_str(&format!(
                "; {} rx={} tx={} tx_errors={} kernel_drops={}",
                p.name, s.rx[i], p.counters.tx, p.counters.tx_errors, p.counters.kernel_drops
            ));
        }
        self.log.info(&line);
    }

    /// SIGHUP: re-read the file; an invalid one is logged and the running config stays.
    fn reload(&mut self) {
        let new = match load_config(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                self.log.err(&format!(
                    "reload rejected, keeping the running configuration: {e}"
                ));
                return;
            }
        };
        if new == self.config {
            self.log.notice("reload: configuration unchanged");
            return;
        }
        for (changed, key) in [
            (new.user != self.config.user, "user"),
            (
                new.realtime_priority != self.config.realtime_priority,
                "realtime_priority",
            ),
        ] {
            if changed {
                self.log.warn(&format!(
                    "reload: a changed \"{key}\" takes effect only after a restart"
                ));
            }
        }
        if new.cpu_latency_us != self.config.cpu_latency_us {
            self.apply_cpu_latency(new.cpu_latency_us);
        }
        // Keep the open handles (and their counters) of ports that keep name and role.
        let mut old_ports: Vec<Option<Port>> = self.ports.drain(..).map(Some).collect();
        let old_names: Vec<String> = self.config.port_names().map(str::to_owned).collect();
        let mut ports = Vec::new();
        for (j, name) in new.port_names().enumerate() {
            let kept = old_names
                .iter()
                .enumerate()
                .position(|(i, n)| n == name && (i == 0) == (j == 0))
                .and_then(|i| old_ports[i].take());
            ports.push(kept.unwrap_or_else(|| Port::new(name, new.promiscuous)));
        }
        for p in old_ports.into_iter().flatten() {
            self.log.notice(&format!("reload: port {} removed", p.name));
        }
        // A promiscuous-mode change needs new handles.
        if new.promiscuous != self.config.promiscuous {
            for p in &mut ports {
                *p = Port::new(&p.name.clone(), new.promiscuous);
            }
        }
        self.ports = ports;
        self.port_errors = self
            .ports
            .iter()
            .map(|_| RateLimit::new(StdDuration::from_secs(10)))
            .collect();
        self.relay.reconfigure(&self.config, &new);
        // Remembered residences are keyed by port index, which a reload may renumber.
        self.corrector.reconfigure(new.correction);
        self.config = new;
        self.log.notice(&format!(
            "reload: applied {}, {} clients kept",
            self.config_path,
            self.relay.clients().len()
        ));
        self.open_ports();
    }

    /// Run until SIGTERM/SIGINT. Returns an error only for failures of the loop itself.
    pub fn run(&mut self) -> Result<(), String> {
        let sfd = SignalFd::with_flags(
            &signal_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(|e| format!("signalfd: {e}"))?;
        self.open_ports();
        if self.config.realtime_priority > 0 {
            match privileges::set_realtime(self.config.realtime_priority) {
                Ok(()) => self.log.notice(&format!(
                    "scheduling: SCHED_FIFO priority {}, memory locked",
                    self.config.realtime_priority
                )),
                Err(e) => self.log.err(&format!("realtime scheduling not set: {e}")),
            }
        }
        self.apply_cpu_latency(self.config.cpu_latency_us);
        match privileges::drop_privileges(self.config.user.as_deref(), &self.config.status_file) {
            Ok(d) => self.log.notice(&format!(
                "privileges: uid {} gid {}, capabilities: CAP_NET_RAW only{}",
                d.uid,
                d.gid,
                if d.bounding_set_cleared {
                    ""
                } else {
                    " (bounding set unchanged: no CAP_SETPCAP)"
                }
            )),
            Err(e) => self.log.err(&format!("privileges not dropped: {e}")),
        }
        self.log.notice(&format!(
            "started: upstream {}, {} downstream, delay_resp {}, board {} ({} clients max)",
            self.config.upstream,
            self.config.downstream.len(),
            status::mode_name(self.config.delay_resp),
            board::NAME,
            board::MAX_CLIENTS
        ));
        let mut scratch = vec![0u8; board::SNAPLEN];
        let mut ready: Ready = heapless::Vec::new();
        loop {
            let now = monotonic();
            let deadline = self
                .relay
                .poll_timeout()
                .min(self.next_status)
                .min(self.next_reopen);
            let wait_ms = deadline
                .saturating_since(now)
                .0
                .div_ceil(1_000_000)
                .min(60_000) as u16;

            let signalled = match self.wait(&sfd, wait_ms, &mut ready) {
                Ok(s) => s,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            };

            if signalled {
                while let Ok(Some(info)) = sfd.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                            self.log.notice("stopping");
                            self.log_counters();
                            self.write_status(monotonic());
                            return Ok(());
                        }
                        Ok(Signal::SIGHUP) => self.reload(),
                        Ok(Signal::SIGUSR1) => self.log_counters(),
                        _ => {}
                    }
                }
            }

            // POLLERR/POLLHUP without data too: pcap then reports what happened.
            for &i in &ready {
                if let Err(e) = self.drain(i, &mut scratch) {
                    self.port_failed(i, &e);
                }
            }
            for (j, p) in self.ports.iter_mut().enumerate() {
                p.flush(PortId(j as u8), &mut self.corrector);
            }
            self.log_tx_errors();
            let now = monotonic();
            self.relay.handle_timeout(now);
            if now >= self.next_status {
                self.write_status(now);
                self.next_status = now
                    + ptpproxy::time::Duration::from_secs(u64::from(self.config.status_interval_s));
            }
            if now >= self.next_reopen {
                self.check_ports();
                if !self.ports.iter().all(Port::is_open) {
                    self.open_ports();
                }
                self.next_reopen = now + ptpproxy::time::Duration(REOPEN_INTERVAL_NS);
            }
        }
    }

    /// Send errors are counted per frame and logged at most every 10 s per port.
    fn log_tx_errors(&mut self) {
        self.tx_errors.resize_with(self.ports.len(), || {
            RateLimit::new(StdDuration::from_secs(10))
        });
        for (p, limit) in self.ports.iter_mut().zip(&mut self.tx_errors) {
            let Some(e) = p.last_tx_error.take() else {
                continue;
            };
            if let Some(n) = limit.allow(std::time::Instant::now()) {
                let msg = format!(
                    "port {}: send failed: {e} ({} send errors on this port so far, {n} reports not logged)",
                    p.name, p.counters.tx_errors
                );
                self.log.warn(&msg);
            }
        }
    }

    /// Once a second: close ports whose interface was deleted or re-created (their socket is
    /// bound to an interface index that no longer exists and would never be readable again),
    /// and log link transitions. Sampling once a second bounds these lines to one per second
    /// and port, however fast a link flaps.
    fn check_ports(&mut self) {
        let links: Vec<(String, bool)> = match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => addrs
                .map(|a| {
                    use nix::net::if_::InterfaceFlags as F;
                    let up = a.flags.contains(F::IFF_UP) && a.flags.contains(F::IFF_RUNNING);
                    (a.interface_name, up)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for p in &mut self.ports {
            if p.interface_replaced() {
                p.close();
                self.log.notice(&format!(
                    "port {}: interface deleted or re-created; reopening",
                    p.name
                ));
            }
            if !p.is_open() {
                // Its closing was logged, and its reopening will be: no "link down" and
                // "link up" lines for the interface going away and coming back as well.
                p.link_up = None;
                continue;
            }
            let up = links.iter().any(|(n, up)| *up && *n == p.name);
            if p.link_up != Some(up) {
                if p.link_up.is_some() {
                    let state = if up { "up" } else { "down" };
                    self.log.notice(&format!("port {}: link {state}", p.name));
                }
                p.link_up = Some(up);
            }
        }
    }

    /// One poll() over the signalfd and every open port; fills `ready` with the ports that have
    /// frames or an error, returns whether a signal is pending. Allocates nothing.
    fn wait(&self, sfd: &SignalFd, wait_ms: u16, ready: &mut Ready) -> nix::Result<bool> {
        use std::os::fd::AsFd;
        let mut fds: heapless::Vec<PollFd<'_>, { board::MAX_PORTS + 1 }> = heapless::Vec::new();
        let mut which: Ready = heapless::Vec::new();
        let _ = fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(fd) = p.fd() {
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

    fn port_failed(&mut self, i: usize, e: &str) {
        self.ports[i].close();
        self.next_reopen = monotonic() + ptpproxy::time::Duration(REOPEN_INTERVAL_NS);
        if let Some(n) = self.port_errors[i].allow(std::time::Instant::now()) {
            self.log.warn(&format!(
                "port {}: {e}; closed, reopening when it returns ({n} messages not logged)",
                self.ports[i].name
            ));
        }
    }

    /// Read up to RX_BATCH frames from port `i` and carry out the relay's decisions.
    fn drain(&mut self, i: usize, scratch: &mut [u8]) -> Result<(), String> {
        let (left, rest) = self.ports.split_at_mut(i);
        let Some((rx, right)) = rest.split_first_mut() else {
            return Ok(());
        };
        let (relay, corrector) = (&mut self.relay, &mut self.corrector);
        rx.dispatch(board::RX_BATCH, |frame| {
            let now = monotonic();
            let Action::Forward { to, frame, timing } =
                relay.handle_frame(now, PortId(i as u8), frame.data, frame.captured, scratch)
            else {
                return;
            };
            for id in to.iter() {
                let j = id.index();
                let port = if j < i {
                    left.get_mut(j)
                } else {
                    right.get_mut(j - i - 1)
                };
                if let Some(port) = port {
                    port.queue(frame, timing, id, corrector);
                }
            }
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// A random 64-bit value from the OS (std's hash keys come from getrandom).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(monotonic().0)
}
