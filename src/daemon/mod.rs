//! The shell around the core: everything here does I/O; every decision about a frame is made by
//! [`ptpproxy::proxy::Proxy`].
//!
//! - [`capture`] and [`sender`]: the two sides of a port (libpcap ring in, AF_PACKET batches
//!   out, transmit timestamps back);
//! - this module: the [`Daemon`] and its lifecycle — start (ports, scheduling, privileges),
//!   reload, the status file, counters in the log, ports that vanish and come back;
//! - [`event_loop`]: the one `poll()` loop that drives it;
//! - [`notice`]: conditions named in the log (loops, rogue masters, a nearly full client table,
//!   ring drops, a silent upstream), checked once a second;
//! - [`dump`]: the pcapng dump of handled frames, written by a thread of its own;
//! - [`status`], [`log`], [`privileges`], [`sys`], [`error`]: what those need.

pub mod bridge;
pub mod capture;
pub mod dump;
pub mod error;
pub mod event_loop;
pub mod log;
pub mod notice;
pub mod privileges;
pub mod sender;
pub mod status;
pub mod sys;

use capture::Capture;
use error::Error;
use log::{Log, RateLimit};
use ptpproxy::board;
use ptpproxy::config::{Config, Correction};
use ptpproxy::port::{PortId, PortSet};
use ptpproxy::proxy::Proxy;
use ptpproxy::stats::{DropReason, Forwarded};
use ptpproxy::time::{Duration, Instant};
use sender::{Hold, Sender};
use std::fs;
use std::time::Duration as StdDuration;
use sys::monotonic;

/// Largest configuration file read.
const CONFIG_MAX: u64 = 64 * 1024;

/// How often a closed port is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// Without a batching hold: how soon a frame held for its event's transmit timestamp is tried
/// again.
const HELD_FRAME_RETRY: Duration = Duration(200_000);

/// Read and validate a configuration file. The error is one line for the user.
pub fn load_config(path: &str) -> Result<Config, Error> {
    use std::io::Read;
    let problem = |problem: String| Error::Config {
        path: path.to_owned(),
        problem,
    };
    let file = fs::File::open(path).map_err(|e| problem(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(CONFIG_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| problem(e.to_string()))?;
    if bytes.len() as u64 > CONFIG_MAX {
        return Err(problem(format!("larger than {CONFIG_MAX} bytes")));
    }
    Config::parse_detailed(&bytes).map_err(|e| problem(e.to_string()))
}

pub struct Daemon {
    pub config_path: String,
    pub config: Config,
    pub proxy: Proxy,
    /// The two sides of each port, by port index: apart, so that a frame read from one port can
    /// be queued on the others.
    pub captures: Vec<Capture>,
    pub senders: Vec<Sender>,
    pub log: Log,
    started: Instant,
    next_status: Instant,
    next_reopen: Instant,
    /// Conditions named in the log, checked once a second.
    notices: notice::Notices,
    next_notice: Instant,
    status_errors: RateLimit,
    /// Per port: open failures, send failures (logged at most every 10 s each).
    port_errors: Vec<RateLimit>,
    tx_errors: Vec<RateLimit>,
    /// The PM QoS request of `cpu_latency_us`, held while open.
    cpu_latency: Option<std::fs::File>,
    /// How the loop woke up and read: what batching achieves.
    pub io: IoStats,
    /// The wake-ups counted at the last status write, and when: the rate since.
    io_mark: (Instant, u64),
    /// Where the kernel's CLOCK_REALTIME stamps lie on the monotonic clock, re-read each turn.
    pub clock: sys::WallClock,
    /// The ports' bridging and the bridge filter installed for them.
    pub bridges: bridge::Bridges,
    /// The pcapng dump (`"dump"`), off when not configured.
    pub dump: dump::Dump,
}

/// The loop's batching figures by name, as [`Daemon::io_report`] gives them.
pub type IoReport = [(&'static str, u64); 11];

/// Counters of the loop itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStats {
    /// poll(2) calls, and those that found a port ready (wake-ups).
    pub polls: u64,
    pub wakeups: u64,
    /// Hold sleeps (clock_nanosleep(2)) between batches.
    pub sleeps: u64,
    /// pcap_dispatch calls (they read the ring without a system call while it holds frames),
    /// and the frames they read.
    pub dispatches: u64,
    pub frames: u64,
}

fn port_limits(n: usize) -> Vec<RateLimit> {
    (0..n)
        .map(|_| RateLimit::new(StdDuration::from_secs(10)))
        .collect()
}

impl Daemon {
    pub fn new(config_path: String, config: Config, log: Log) -> Daemon {
        let now = monotonic();
        let captures: Vec<Capture> = config
            .port_names()
            .map(|n| Capture::new(n, config.promiscuous))
            .collect();
        let n = captures.len();
        let proxy = Proxy::new(&config, now, random_seed());
        let notices = notice::Notices::new(
            std::time::Instant::now(),
            &notice::Inputs {
                stats: proxy.stats(),
                clients: (proxy.clients().len(), proxy.clients().capacity()),
                ports: &captures,
                clock_steps: (0, 0),
            },
        );
        Daemon {
            proxy,
            clock: sys::WallClock::new(),
            config_path,
            config,
            captures,
            senders: (0..n).map(|_| Sender::new()).collect(),
            log,
            started: now,
            next_status: now,
            next_reopen: now,
            notices,
            next_notice: now + Duration(notice::TICK.as_nanos() as u64),
            status_errors: RateLimit::new(StdDuration::from_secs(60)),
            port_errors: port_limits(n),
            tx_errors: port_limits(n),
            cpu_latency: None,
            io: IoStats::default(),
            io_mark: (now, 0),
            bridges: bridge::Bridges::new(),
            dump: dump::Dump::new(),
        }
    }

    /// Open the ports, then take what needs root (scheduling, the CPU latency request) and drop
    /// every privilege but CAP_NET_RAW. Failures are logged: the relay runs with what it got.
    pub fn start(&mut self) {
        // Before the scheduling and the privileges change: see `Dump::spawn_writer`.
        if let Err(e) = self.dump.spawn_writer() {
            self.log.err(&e);
        }
        self.open_ports();
        self.start_bridges();
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
        let filter = self.bridges.installed();
        match privileges::drop_privileges(
            self.config.user.as_deref(),
            &self.config.status_file,
            filter,
        ) {
            Ok(d) => {
                self.bridges.privileges_dropped(d.net_admin_kept);
                self.log.notice(&format!(
                    "privileges: uid {} gid {}, capabilities: CAP_NET_RAW only{}{}",
                    d.uid,
                    d.gid,
                    if d.net_admin_kept {
                        " (and CAP_NET_ADMIN permitted, not effective, for the bridge filter)"
                    } else {
                        ""
                    },
                    if d.bounding_set_cleared {
                        ""
                    } else {
                        " (bounding set unchanged: no CAP_SETPCAP)"
                    }
                ))
            }
            Err(e) => self.log.err(&format!("privileges not dropped: {e}")),
        }
        // After the privileges are dropped: the writer thread then drops its capabilities.
        self.apply_dump();
        self.log.notice(&format!(
            "started: upstream {}, {} downstream, delay_resp {}, board {} ({} clients max)",
            self.config.upstream,
            self.config.downstream.len(),
            status::mode_name(self.config.delay_resp),
            board::NAME,
            board::MAX_CLIENTS
        ));
    }

    /// SIGTERM/SIGINT: the counters and a last status file.
    pub fn stop(&mut self) {
        self.log.notice("stopping");
        self.send_held();
        self.stop_bridges();
        self.dump.shutdown(StdDuration::from_secs(1));
        self.log_counters();
        self.write_status(monotonic());
    }

    /// How long frames may wait for the next batch: `max_hold_us` with the residence
    /// correction (which hides the wait from the clients), none without it.
    pub fn hold(&self) -> Option<Duration> {
        let us = u64::from(self.config.max_hold_us);
        (self.config.correction == Correction::Residence && us > 0).then(|| Duration(us * 1000))
    }

    /// What a flush may hold back for transmit timestamps: with the residence correction, a
    /// general message whose event left through a port whose driver stamps (one has come back).
    pub fn tx_hold(&self) -> Option<Hold> {
        if self.config.correction != Correction::Residence {
            return None;
        }
        let mut stamping = PortSet::EMPTY;
        for (j, s) in self.senders.iter().enumerate() {
            if s.tx_timestamps > 0 {
                stamping = stamping.with(PortId(j as u8));
            }
        }
        Some(Hold {
            now: monotonic(),
            stamping,
        })
    }

    /// Whether a sender holds frames back for their event's transmit timestamp.
    pub fn holds_frames(&self) -> bool {
        self.senders.iter().any(Sender::holds_frames)
    }

    /// When [`Daemon::handle_timeout`] (or a flush of held frames) wants to run next (soon
    /// while log lines wait for syslog, or frames for their event's transmit timestamp).
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self
            .proxy
            .poll_timeout()
            .min(self.next_status)
            .min(self.next_reopen)
            .min(self.next_notice);
        if self.holds_frames() {
            t = t.min(monotonic() + self.hold().unwrap_or(HELD_FRAME_RETRY));
        }
        match self.log.retry_in() {
            Some(d) => t.min(monotonic() + Duration(d.as_nanos() as u64)),
            None => t,
        }
    }

    /// Periodic work: the core's aging, the status file, ports to check and reopen, notices, the
    /// report of log lines syslog did not take.
    pub fn handle_timeout(&mut self) {
        let now = monotonic();
        self.proxy.handle_timeout(now);
        self.log.poll();
        if now >= self.next_status {
            self.write_status(now);
            self.next_status = now + Duration::from_secs(u64::from(self.config.status_interval_s));
        }
        if now >= self.next_reopen {
            self.check_ports();
            if !self.captures.iter().all(Capture::is_open) {
                self.open_ports();
            }
            self.next_reopen = now + REOPEN_INTERVAL;
        }
        if now >= self.next_notice {
            self.log_notices();
            self.next_notice = now + Duration(notice::TICK.as_nanos() as u64);
        }
    }

    /// Start, change or stop the dump as the configuration says; log what changed.
    fn apply_dump(&mut self) {
        match self.dump.configure(&self.config) {
            Ok(Some(note)) => self.log.notice(&note),
            Ok(None) => {}
            Err(e) => self.log.err(&e),
        }
    }

    /// Name in the log what the counters say happened since the last tick ([`notice`]).
    fn log_notices(&mut self) {
        for (warning, line) in self.dump.notices() {
            if warning {
                self.log.warn(&line);
            } else {
                self.log.notice(&line);
            }
        }
        for c in &mut self.captures {
            c.update_kernel_drops();
        }
        let clients = self.proxy.clients();
        let inputs = notice::Inputs {
            stats: self.proxy.stats(),
            clients: (clients.len(), clients.capacity()),
            ports: &self.captures,
            clock_steps: (self.clock.steps, self.clock.last_step_ns),
        };
        for n in self.notices.tick(std::time::Instant::now(), &inputs) {
            if n.warning {
                self.log.warn(&n.text);
            } else {
                self.log.notice(&n.text);
            }
        }
    }

    /// Queue on the upstream port the paced Delay_Req whose turn has come (none without pacing);
    /// [`Daemon::flush`] sends them.
    pub fn release_paced(&mut self) {
        let batched = self.hold().is_some();
        let hold = self.tx_hold();
        let Some(up) = self.senders.first_mut() else {
            return;
        };
        let now = monotonic();
        // As many as the upstream queue has room for, then a batch out, until none is due.
        loop {
            if up.is_full() {
                up.flush(
                    PortId::UPSTREAM,
                    &mut self.proxy,
                    batched,
                    &self.clock,
                    hold,
                );
            }
            let room = up.room();
            let sent = self
                .proxy
                .release_paced(now, room, |frame, timing| up.queue(frame, timing, now));
            if sent < room {
                return;
            }
        }
    }

    /// At a stop: the Follow_Up and Delay_Resp held for their event's transmit timestamp leave
    /// (their events did: a client would otherwise be left with a Sync or a Delay_Req answered
    /// by nothing), given the time they would have had; the Delay_Req the pacing holds are
    /// dropped, counted (their answers would come back to nobody).
    fn send_held(&mut self) {
        self.proxy.drop_paced();
        let until = monotonic() + sender::TX_TIMESTAMP_WAIT;
        while self.holds_frames() && monotonic() < until {
            std::thread::sleep(StdDuration::from_millis(1));
            self.flush();
        }
        self.flush_holding(None);
    }

    /// Send what every port has queued, and log send errors (rate-limited).
    pub fn flush(&mut self) {
        let hold = self.tx_hold();
        self.flush_holding(hold);
    }

    /// [`Daemon::flush`], holding back what `hold` lets wait for transmit timestamps.
    fn flush_holding(&mut self, hold: Option<Hold>) {
        let batched = self.hold().is_some();
        // Transmit timestamps a Follow_Up or Delay_Resp about to leave still waits for: read
        // once more (still missing, the frame waits for a later flush, up to
        // sender::TX_TIMESTAMP_WAIT; then the clock read is used, counted as
        // tx_timestamp_missing).
        let mut awaited = PortSet::EMPTY;
        if self.senders.iter().any(|s| s.awaits_tx_timestamps()) {
            for (j, s) in self.senders.iter().enumerate() {
                s.awaited_ports(PortId(j as u8), &self.proxy, &mut awaited);
            }
        }
        for p in awaited.iter() {
            if let Some(s) = self.senders.get_mut(p.index()) {
                s.collect_tx_timestamps(p, &mut self.proxy, &self.clock);
            }
        }
        for (j, s) in self.senders.iter_mut().enumerate() {
            s.flush(PortId(j as u8), &mut self.proxy, batched, &self.clock, hold);
        }
        for ((s, c), limit) in self
            .senders
            .iter_mut()
            .zip(&self.captures)
            .zip(&mut self.tx_errors)
        {
            let Some(e) = s.last_error.take() else {
                continue;
            };
            if let Some(n) = limit.allow(std::time::Instant::now()) {
                let msg = format!(
                    "port {}: send failed: {e} ({} send errors on this port so far, {n} reports not logged)",
                    c.name, s.tx_errors
                );
                self.log.warn(&msg);
            }
        }
    }

    /// What the loop's counters say about batching, by name: the status file's `io` object and
    /// the log's. System calls are the loop's poll(2) and hold sleeps and the senders'
    /// sendmmsg(2)/recvmmsg(2); pcap_dispatch adds one poll(2) only when it finds a ring empty.
    /// The hold is the residence the correction measured (capture to send).
    pub fn io_report(&self, now: Instant) -> IoReport {
        let io = &self.io;
        let syscalls = io.polls + io.sleeps + self.senders.iter().map(|s| s.syscalls).sum::<u64>();
        let (mark_at, mark_wakeups) = self.io_mark;
        let elapsed_ms = now.saturating_since(mark_at).0 / 1_000_000;
        let per_s = (io.wakeups - mark_wakeups)
            .saturating_mul(1000)
            .checked_div(elapsed_ms)
            .unwrap_or(0);
        let c = self.proxy.correction_stats();
        [
            ("max_hold_us", self.hold().map_or(0, |h| h.0 / 1000)),
            ("wakeups", io.wakeups),
            ("wakeups_per_s", per_s),
            ("frames", io.frames),
            (
                "frames_per_wakeup",
                io.frames.checked_div(io.wakeups).unwrap_or(0),
            ),
            ("syscalls", syscalls),
            (
                "syscalls_per_1000_frames",
                (syscalls * 1000).checked_div(io.frames).unwrap_or(0),
            ),
            ("dispatches", io.dispatches),
            ("hold_mean_us", c.residence_mean_ns() / 1000),
            ("hold_max_us", c.residence_max_ns / 1000),
            (
                "tx_timestamp_waits",
                self.senders.iter().map(|s| s.tx_timestamp_waits).sum(),
            ),
        ]
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

    /// Open both sides of port `i`.
    fn open_port(&mut self, i: usize) -> Result<(), Error> {
        let ifindex = self.captures[i].open()?;
        let opened = self.senders[i].open(&self.captures[i].name, ifindex);
        if opened.is_err() {
            self.captures[i].close();
        }
        opened
    }

    /// Open every port that is not open; log what happened (failures rate-limited).
    fn open_ports(&mut self) {
        for i in 0..self.captures.len() {
            if self.captures[i].is_open() {
                continue;
            }
            let reopening = self.captures[i].opens > 0;
            match self.open_port(i) {
                Ok(()) => {
                    let role = if i == 0 { "upstream" } else { "downstream" };
                    self.log.notice(&format!(
                        "{} port {} {} (ring {} bytes, ~{} frames of snaplen {})",
                        role,
                        self.captures[i].name,
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

    /// A port failed in the loop (its interface went away): close it, reopen it later.
    pub fn port_failed(&mut self, i: usize, e: &pcap::Error) {
        self.captures[i].close();
        self.senders[i].close();
        self.next_reopen = monotonic() + REOPEN_INTERVAL;
        if let Some(n) = self.port_errors[i].allow(std::time::Instant::now()) {
            self.log.warn(&format!(
                "port {}: {e}; closed, reopening when it returns ({n} messages not logged)",
                self.captures[i].name
            ));
        }
    }

    fn write_status(&mut self, now: Instant) {
        for c in &mut self.captures {
            c.update_kernel_drops();
        }
        let snap = status::Snapshot {
            config: &self.config,
            config_path: &self.config_path,
            uptime_s: now.saturating_since(self.started).as_secs(),
            now,
            proxy: &self.proxy,
            captures: &self.captures,
            senders: &self.senders,
            io: self.io_report(now),
            log: self.log.syslog_stats(),
            bridges: &self.bridges,
            dump: self.dump.report(),
        };
        let written =
            status::write_atomically(&self.config.status_file, |out| status::render(out, &snap))
                .map_err(|e| (self.config.status_file.as_str(), e));
        let written = written.and_then(|()| match &self.config.metrics_file {
            Some(m) => status::write_atomically(m, |out| status::metrics::render(out, &snap))
                .map_err(|e| (m.as_str(), e)),
            None => Ok(()),
        });
        if let Err((file, e)) = written {
            if self
                .status_errors
                .allow(std::time::Instant::now())
                .is_some()
            {
                self.log.warn(&format!("status file {file}: {e}"));
            }
        }
        self.io_mark = (now, self.io.wakeups);
    }

    /// SIGUSR1 (and at the end): every counter in one log line.
    pub fn log_counters(&mut self) {
        let s = self.proxy.stats();
        let clients = self.proxy.clients();
        let mut line = format!(
            "clients {}/{}; forwarded",
            clients.len(),
            clients.capacity()
        );
        for f in Forwarded::ALL {
            line.push_str(&format!(" {}={}", f.name(), s.forwarded(*f)));
        }
        line.push_str("; dropped");
        for r in DropReason::ALL {
            if s.dropped(*r) > 0 {
                line.push_str(&format!(" {}={}", r.name(), s.dropped(*r)));
            }
        }
        if let Some((port, id)) = s.last_conflict {
            let name = self
                .captures
                .get(port.index())
                .map_or("?", |c| c.name.as_str());
            line.push_str(&format!(" (last identity_conflict: {id} on {name})"));
        }
        if self.config.correction == Correction::Residence {
            line.push_str("; residence correction");
            for (name, value) in self.proxy.correction_stats().named() {
                line.push_str(&format!(" {name}={value}"));
            }
        }
        for (i, (name, value)) in status::pacing_counters(&self.config, &self.proxy)
            .into_iter()
            .enumerate()
        {
            line.push_str(if i == 0 { "; upstream pacing" } else { "" });
            line.push_str(&format!(" {name}={value}"));
        }
        line.push_str("; io");
        for (name, value) in self.io_report(monotonic()) {
            line.push_str(&format!(" {name}={value}"));
        }
        for (i, (c, t)) in self.captures.iter().zip(&self.senders).enumerate() {
            line.push_str(&format!(
                "; {} rx={} tx={} tx_errors={} kernel_drops={}",
                c.name, s.rx[i], t.tx_count, t.tx_errors, c.kernel_drops
            ));
        }
        self.log.info(&line);
    }

    /// SIGHUP: re-read the file; an invalid one is logged and the running config stays.
    pub fn reload(&mut self) {
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
        if let Some(errors) = bridge::log_findings(&mut self.log, &bridge::check_config(&new)) {
            self.log.err(&format!(
                "reload rejected, keeping the running configuration: {errors}"
            ));
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
        if let Some(old) = self.config.metrics_file.as_deref() {
            // A scraper would go on reading the old file's last figures.
            if new.metrics_file.as_deref() != Some(old) {
                let _ = std::fs::remove_file(old);
            }
        }
        let map = self.proxy.reconfigure(&self.config, &new);
        self.renumber_ports(&map, &new);
        self.config = new;
        self.apply_dump();
        self.log.notice(&format!(
            "reload: applied {}, {} clients kept",
            self.config_path,
            self.proxy.clients().len()
        ));
        self.open_ports();
        self.sync_bridges(true);
    }

    /// Keep the open handles (and their counters) of the ports `map` keeps, under their new
    /// numbers; the others close, and the new configuration's new ports open later.
    fn renumber_ports(&mut self, map: &ptpproxy::port::PortMap, new: &Config) {
        let mut old: Vec<Option<(Capture, Sender)>> = self
            .captures
            .drain(..)
            .zip(self.senders.drain(..))
            .map(Some)
            .collect();
        let mut kept: Vec<Option<(Capture, Sender)>> = new.port_names().map(|_| None).collect();
        for (i, port) in old.iter_mut().enumerate() {
            if let Some(j) = map.get(PortId(i as u8)) {
                kept[j.index()] = port.take();
            }
        }
        for (c, _) in old.into_iter().flatten() {
            self.log.notice(&format!("reload: port {} removed", c.name));
        }
        for (name, port) in new.port_names().zip(kept) {
            let (mut c, mut s) =
                port.unwrap_or_else(|| (Capture::new(name, new.promiscuous), Sender::new()));
            // A promiscuous-mode change needs new handles.
            if new.promiscuous != self.config.promiscuous {
                c = Capture::new(name, new.promiscuous);
                s = Sender::new();
            }
            self.captures.push(c);
            self.senders.push(s);
        }
        self.port_errors = port_limits(self.captures.len());
        self.tx_errors = port_limits(self.captures.len());
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
        let mut replaced = false;
        for (c, s) in self.captures.iter_mut().zip(&mut self.senders) {
            if c.interface_replaced() {
                replaced = true;
                c.close();
                s.close();
                self.log.notice(&format!(
                    "port {}: interface deleted or re-created; reopening",
                    c.name
                ));
            }
            if !c.is_open() {
                // Its closing was logged, and its reopening will be: no "link down" and
                // "link up" lines for the interface going away and coming back as well.
                c.link_up = None;
                continue;
            }
            let up = links.iter().any(|(n, up)| *up && *n == c.name);
            if c.link_up != Some(up) {
                if c.link_up.is_some() {
                    let state = if up { "up" } else { "down" };
                    self.log.notice(&format!("port {}: link {state}", c.name));
                }
                c.link_up = Some(up);
            }
        }
        self.sync_bridges(replaced);
    }
}

/// A random 64-bit value from the OS (std's hash keys come from getrandom).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(monotonic().0)
}
