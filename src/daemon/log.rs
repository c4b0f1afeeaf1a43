//! Logging: syslog (facility daemon, ident `ptpproxy`: `logread` on OpenWrt) and, in the
//! foreground (`-f`), stderr. Never per frame; repeated conditions go through [`RateLimit`].
//!
//! # The syslog writer
//!
//! [`Syslog`] sends each line as one datagram over a non-blocking AF_UNIX datagram socket
//! connected to `/dev/log`, in the RFC 3164 form `<PRI>Mmm dd hh:mm:ss ptpproxy[PID]: MESSAGE`
//! (local time, no hostname, no trailing newline). Both log daemons of the targets read that
//! form from `/dev/log`: busybox syslogd takes the 15-character timestamp followed by a space
//! as the line's time, and OpenWrt's logd strips `<PRI>` and those 16 bytes and stamps the line
//! itself.
//!
//! It is ptpproxy's own because the loop that relays frames is the only thread and must never
//! wait for a log daemon, and nothing off the shelf promises that:
//!
//! - a log daemon that is restarted (`/etc/init.d/log restart`, a busybox syslogd respawned by
//!   init) unlinks `/dev/log` and binds a new socket there. A socket connected to the old one
//!   then fails with ECONNREFUSED (then ENOTCONN); ENOENT while no socket exists. On any of
//!   these the writer closes its socket and connects again — right away if it last connected
//!   over a second ago, so a restart long past costs no line, and otherwise at most once per
//!   second ([`RETRY_INTERVAL`]), so a dead daemon costs one failed `connect(2)` a second, not
//!   one per line;
//! - a log daemon that is stalled (stopped, swapping, blocked on a full flash) or simply not
//!   scheduled yet stops reading, and once its receive queue is full (`net.unix.max_dgram_qlen`
//!   datagrams: 10 by default, fewer than a start-up with a few ports logs at once) a blocking
//!   send waits until it reads again. The writer's socket is non-blocking: a line the daemon
//!   does not take now (EAGAIN, or no daemon while it restarts) waits in a bounded backlog
//!   ([`BACKLOG_LINES`], [`BACKLOG_BYTES`]) that is sent, in order, before the next line and
//!   by [`Log::poll`] (while lines wait, the loop wakes up every [`FLUSH_INTERVAL`], or for the
//!   next connection attempt while the daemon is gone). Beyond the
//!   backlog, lines are dropped and counted;
//! - the report "N log lines dropped while syslog was unavailable" follows the backlog once
//!   the daemon takes lines again, before any later line (lines logged until it went out are
//!   counted in it). The counts are in the status file (`"log"`).
//!
//! musl's syslog(3) (what a static firmware binary would get) does reconnect once on a lost
//! connection, but its socket is blocking, so a stalled daemon (or a burst larger than the
//! daemon's queue, under SCHED_FIFO on one core) would stall the relay; the
//! `syslog` crate connected once and never again, losing every line after a daemon restart.
//!
//! Until syslog was reached once (none at start, e.g. a minimal container), lines also go to
//! stderr, as they always do in the foreground.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Where a syslog daemon listens, tried in turn: `/dev/log` (busybox syslogd, OpenWrt's logd,
/// every Linux syslog daemon), then the paths other systems use.
pub const SOCKET_PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];

/// At most one connection attempt per this interval while syslog is unavailable.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How often [`Syslog::poll`] tries to send what waits.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines kept while the daemon does not take them (a burst larger than its queue, a restart),
/// and their total size: beyond either, lines are dropped.
pub const BACKLOG_LINES: usize = 64;
pub const BACKLOG_BYTES: usize = 32 * 1024;

/// LOG_DAEMON (3) << 3.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The syslog side's figures, for the status file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyslogStats {
    /// A socket is connected now (a stalled daemon still counts as connected).
    pub connected: bool,
    /// Connections made (1 if the daemon was never lost).
    pub connects: u64,
    /// Lines waiting in the backlog.
    pub waiting: u64,
    /// Lines that did not reach syslog, in all.
    pub dropped: u64,
    /// Of those, the ones not yet reported in the log.
    pub unreported: u64,
}

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Yes,
    /// Not now: the daemon's queue is full, or it is gone (keep the line, try again).
    Later,
    /// Never (the daemon refuses this datagram).
    No,
}

/// The loop's non-blocking syslog writer (see the module documentation).
pub struct Syslog {
    paths: Vec<PathBuf>,
    /// `ptpproxy[PID]`
    tag: String,
    sock: Option<UnixDatagram>,
    /// No connection attempt before this.
    connect_at: Option<Instant>,
    /// No flush by [`Syslog::poll`] before this.
    flush_at: Option<Instant>,
    /// Formatted lines the daemon did not take yet, oldest first, and their bytes.
    backlog: VecDeque<String>,
    backlog_bytes: usize,
    stats: SyslogStats,
}

impl Syslog {
    /// A writer to the first of `paths` that accepts a connection. Connects at the first line.
    pub fn new<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Syslog {
        Syslog {
            paths: paths.into_iter().map(Into::into).collect(),
            tag: format!("ptpproxy[{}]", std::process::id()),
            sock: None,
            connect_at: None,
            flush_at: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            stats: SyslogStats::default(),
        }
    }

    pub fn stats(&self) -> SyslogStats {
        SyslogStats {
            connected: self.sock.is_some(),
            waiting: self.backlog.len() as u64,
            ..self.stats
        }
    }

    /// Whether lines (or the report of dropped ones) wait for the daemon: [`Syslog::poll`]
    /// wants to run within [`FLUSH_INTERVAL`].
    pub fn pending(&self) -> bool {
        !self.backlog.is_empty() || self.stats.unreported > 0
    }

    /// How long until [`Syslog::poll`] may get something out: `None` if nothing waits; while
    /// the daemon is gone, its next connection attempt ([`RETRY_INTERVAL`]), else the next
    /// flush ([`FLUSH_INTERVAL`]).
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        if !self.pending() {
            return None;
        }
        let mut at = self.flush_at.unwrap_or(now);
        if self.sock.is_none() {
            at = at.max(self.connect_at.unwrap_or(now));
        }
        Some(at.saturating_duration_since(now))
    }

    /// Log one line at `severity` (0–7): sent, or kept in the backlog if the daemon does not
    /// take it now; `false` if it was dropped (and counted).
    pub fn log(&mut self, now: Instant, severity: u8, msg: &str) -> bool {
        let clear = self.flush(now);
        // Lines after dropped ones wait for the report (which follows the backlog): dropped.
        if self.stats.unreported > 0 {
            self.dropped();
            return false;
        }
        let line = self.format(severity, msg);
        if clear {
            match self.send(now, &line) {
                Sent::Yes => return true,
                Sent::No => {
                    self.dropped();
                    return false;
                }
                Sent::Later => {}
            }
        }
        if self.backlog.len() < BACKLOG_LINES && self.backlog_bytes + line.len() <= BACKLOG_BYTES {
            self.backlog_bytes += line.len();
            self.backlog.push_back(line);
            true
        } else {
            self.dropped();
            false
        }
    }

    /// Once per loop turn: send what waits (at most every [`FLUSH_INTERVAL`]), so the backlog
    /// and the report of dropped lines follow the daemon's return even when nothing else is
    /// logged.
    pub fn poll(&mut self, now: Instant) {
        if !self.pending() || self.flush_at.is_some_and(|t| now < t) {
            return;
        }
        if !self.flush(now) {
            self.flush_at = Some(now + FLUSH_INTERVAL);
        }
    }

    fn dropped(&mut self) {
        self.stats.dropped += 1;
        self.stats.unreported += 1;
    }

    /// Send the backlog, then the report of dropped lines; `true` if nothing is left.
    fn flush(&mut self, now: Instant) -> bool {
        while let Some(line) = self.backlog.pop_front() {
            match self.send(now, &line) {
                Sent::Yes => self.backlog_bytes -= line.len(),
                Sent::No => {
                    self.backlog_bytes -= line.len();
                    self.dropped();
                }
                Sent::Later => {
                    self.backlog.push_front(line);
                    return false;
                }
            }
        }
        if self.stats.unreported == 0 {
            return true;
        }
        let msg = format!(
            "{} log lines dropped while syslog was unavailable",
            self.stats.unreported
        );
        let report = self.format(4, &msg);
        match self.send(now, &report) {
            Sent::Yes => {
                self.stats.unreported = 0;
                true
            }
            Sent::Later | Sent::No => false,
        }
    }

    /// `<PRI>Mmm dd hh:mm:ss ptpproxy[PID]: msg`
    fn format(&self, severity: u8, msg: &str) -> String {
        let mut line = String::with_capacity(40 + msg.len());
        let _ = write!(line, "<{}>", FACILITY_DAEMON | (severity & 7));
        write_timestamp(&mut line, SystemTime::now());
        let _ = write!(line, " {}: {msg}", self.tag);
        line
    }

    /// Send one datagram: on a lost connection, connect again (if due) and retry once.
    fn send(&mut self, now: Instant, line: &str) -> Sent {
        for _ in 0..2 {
            if self.sock.is_none() && !self.connect(now) {
                return Sent::Later;
            }
            let Some(sock) = self.sock.as_ref() else {
                return Sent::Later;
            };
            match sock.send(line.as_bytes()) {
                Ok(_) => return Sent::Yes,
                Err(e) if connection_lost(&e) => self.sock = None,
                // The daemon is stalled and its queue is full.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Later,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Sent::Later,
                Err(_) => return Sent::No,
            }
        }
        Sent::Later
    }

    /// Connect to the first path that accepts, unless an attempt was made less than
    /// [`RETRY_INTERVAL`] ago.
    fn connect(&mut self, now: Instant) -> bool {
        if self.connect_at.is_some_and(|t| now < t) {
            return false;
        }
        self.connect_at = Some(now + RETRY_INTERVAL);
        for path in &self.paths {
            let Ok(sock) = UnixDatagram::unbound() else {
                return false;
            };
            if sock.set_nonblocking(true).is_ok() && sock.connect(path).is_ok() {
                self.sock = Some(sock);
                self.stats.connects += 1;
                return true;
            }
        }
        false
    }
}

/// The errors that mean the daemon's socket is gone or was replaced: connect again.
fn connection_lost(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ENOENT | libc::ECONNRESET | libc::EPIPE)
    )
}

/// RFC 3164's `Mmm dd hh:mm:ss` (day padded with a space), local time as syslog(3) writes it;
/// UTC if the local time cannot be had.
// libc marks time_t deprecated on musl targets (it may widen to 64 bits there); the conversion
// below follows whatever width it has.
#[allow(deprecated)]
fn write_timestamp(out: &mut String, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value (integers and, where present, a null zone
    // pointer); localtime_r only reads `time` and writes `tm`, both live for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above; the pointers are to locals that outlive the call.
    let local = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    let (month, day, h, m, s) = if local {
        (
            tm.tm_mon as usize,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
        )
    } else {
        let (_, month, day) = civil_from_days((secs / 86_400) as i64);
        let sod = secs % 86_400;
        (
            month as usize - 1,
            day as i32,
            (sod / 3600) as i32,
            (sod / 60 % 60) as i32,
            (sod % 60) as i32,
        )
    };
    let _ = write!(
        out,
        "{} {day:>2} {h:02}:{m:02}:{s:02}",
        MONTHS[month.min(11)]
    );
}

/// (year, month 1–12, day 1–31) of a day number since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub struct Log {
    syslog: Syslog,
    stderr: bool,
    /// Lines of a higher severity number (less important) are not logged (`-l`).
    max_severity: u8,
}

/// The default `-l`: everything ptpproxy logs (info), as ptp4l's `logging_level` 6.
pub const DEFAULT_LEVEL: u8 = 6;

#[derive(Clone, Copy)]
enum Level {
    Err,
    Warning,
    Notice,
    Info,
}

impl Level {
    fn severity(self) -> u8 {
        match self {
            Level::Err => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
        }
    }
}

impl Log {
    /// Syslog at [`SOCKET_PATHS`]; `stderr`: every line to stderr as well.
    pub fn new(stderr: bool) -> Log {
        Log::with_syslog(Syslog::new(SOCKET_PATHS), stderr)
    }

    pub fn with_syslog(syslog: Syslog, stderr: bool) -> Log {
        Log {
            syslog,
            stderr,
            max_severity: DEFAULT_LEVEL,
        }
    }

    /// Log only lines of syslog severity `level` (0 emerg .. 7 debug) or more important.
    pub fn set_level(&mut self, level: u8) {
        self.max_severity = level;
    }

    /// Once per loop turn: what waits for syslog (lines, the report of dropped ones).
    pub fn poll(&mut self) {
        self.syslog.poll(Instant::now());
    }

    /// When lines wait for syslog: how soon [`Log::poll`] wants to run ([`Syslog::retry_in`]).
    pub fn retry_in(&self) -> Option<Duration> {
        self.syslog.retry_in(Instant::now())
    }

    pub fn syslog_stats(&self) -> SyslogStats {
        self.syslog.stats()
    }

    fn write(&mut self, level: Level, msg: &str) {
        if level.severity() > self.max_severity {
            return;
        }
        self.syslog.log(Instant::now(), level.severity(), msg);
        if self.stderr || self.syslog.stats.connects == 0 {
            let tag = match level {
                Level::Err => "error",
                Level::Warning => "warning",
                Level::Notice => "notice",
                Level::Info => "info",
            };
            eprintln!("ptpproxy: {tag}: {msg}");
        }
    }

    pub fn err(&mut self, msg: &str) {
        self.write(Level::Err, msg)
    }
    pub fn warn(&mut self, msg: &str) {
        self.write(Level::Warning, msg)
    }
    pub fn notice(&mut self, msg: &str) {
        self.write(Level::Notice, msg)
    }
    pub fn info(&mut self, msg: &str) {
        self.write(Level::Info, msg)
    }
}

/// At most one message per interval; counts what it suppressed.
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` if a message may go out now, `n` = messages suppressed since the last one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::mpsc;

    /// A fresh directory for one test's sockets, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "ptpproxy-log-{name}-{}-{:?}",
                std::process::id(),
                Instant::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A log daemon's socket at `path` (whatever was there replaced, as daemons do).
    fn listen(path: &Path) -> UnixDatagram {
        let _ = std::fs::remove_file(path);
        let s = UnixDatagram::bind(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    /// The next datagram, as text (fails the test after 2 s).
    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("a log line");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// Everything queued, without waiting.
    fn drain(s: &UnixDatagram) -> Vec<String> {
        s.set_nonblocking(true).unwrap();
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.recv(&mut buf) {
            lines.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        s.set_nonblocking(false).unwrap();
        lines
    }

    /// Run `f` on another thread; fail if it takes longer than `limit` (it blocked).
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| panic!("blocked: not done within {limit:?}"))
    }

    #[test]
    fn lines_are_rfc3164_with_the_daemon_facility() {
        let dir = TempDir::new("format");
        let path = dir.path("log");
        let daemon = listen(&path);
        let mut log = Syslog::new([&path]);
        assert!(log.log(Instant::now(), 3, "port eth0: link down"));
        let line = recv(&daemon);
        // <27> = daemon (3) * 8 + err (3)
        let rest = line
            .strip_prefix("<27>")
            .unwrap_or_else(|| panic!("{line}"));
        let b = rest.as_bytes();
        // "Mmm dd hh:mm:ss " as busybox syslogd checks it, then the tag.
        assert!(
            b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':' && b[15] == b' ',
            "{line}"
        );
        let tag = format!("ptpproxy[{}]: port eth0: link down", std::process::id());
        assert_eq!(&rest[16..], tag, "{line}");
        assert!(!line.ends_with('\n'));
    }

    #[test]
    fn timestamps_pad_the_day_with_a_space() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_428), (2025, 12, 6));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut s = String::new();
        write_timestamp(
            &mut s,
            SystemTime::UNIX_EPOCH + Duration::from_secs(20_428 * 86_400),
        );
        assert_eq!(s.len(), 15, "{s:?}");
        assert!(
            s.as_bytes()[4] == b' ' || s.as_bytes()[4].is_ascii_digit(),
            "{s:?}"
        );
    }

    /// Let `log` send what waits while the daemon reads, FLUSH_INTERVAL after FLUSH_INTERVAL
    /// from `t`: every line the daemon got.
    fn deliver(log: &mut Syslog, daemon: &UnixDatagram, t: Instant) -> Vec<String> {
        let mut lines = drain(daemon);
        for k in 0..1000 {
            if !log.pending() {
                break;
            }
            log.poll(t + FLUSH_INTERVAL * k);
            lines.extend(drain(daemon));
        }
        assert!(!log.pending(), "still pending: {:?}", log.stats());
        lines
    }

    fn message(line: &str) -> &str {
        line.split_once("]: ").map_or(line, |(_, m)| m)
    }

    #[test]
    fn reconnects_after_the_daemon_is_restarted() {
        let dir = TempDir::new("reconnect");
        let path = dir.path("log");
        let t0 = Instant::now();
        let daemon = listen(&path);
        let mut log = Syslog::new([dir.path("absent"), path.clone()]);
        assert!(log.log(t0, 6, "one"));
        assert_eq!(message(&recv(&daemon)), "one");

        // Restarted long after the connection was made: the next line reconnects at once.
        drop(daemon);
        let daemon = listen(&path);
        assert!(log.log(t0 + Duration::from_secs(5), 6, "two"));
        assert_eq!(message(&recv(&daemon)), "two");
        assert_eq!(log.stats().connects, 2);

        // Gone (socket file removed): lines wait, and connections are tried at most once a
        // second.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        let t1 = t0 + Duration::from_secs(5) + Duration::from_millis(100);
        assert!(log.log(t1, 6, "three"));
        assert!(log.log(t1 + Duration::from_millis(200), 6, "four"));
        // Back within the second: not tried yet.
        let daemon = listen(&path);
        assert!(log.log(t1 + Duration::from_millis(500), 6, "five"));
        log.poll(t1 + Duration::from_millis(600));
        assert!(drain(&daemon).is_empty());
        assert_eq!(
            log.stats(),
            SyslogStats {
                connected: false,
                connects: 2,
                waiting: 3,
                dropped: 0,
                unreported: 0
            }
        );
        // A second after the last attempt: connected, what waited first, in order.
        assert!(log.log(t1 + Duration::from_millis(1600), 5, "six"));
        let got: Vec<String> = drain(&daemon)
            .iter()
            .map(|l| message(l).to_owned())
            .collect();
        assert_eq!(got, ["three", "four", "five", "six"]);
        assert_eq!(
            log.stats(),
            SyslogStats {
                connected: true,
                connects: 3,
                waiting: 0,
                dropped: 0,
                unreported: 0
            }
        );
    }

    #[test]
    fn waiting_lines_follow_the_return_without_a_new_line() {
        let dir = TempDir::new("poll");
        let path = dir.path("log");
        let t0 = Instant::now();
        let mut log = Syslog::new([&path]);
        assert!(log.log(t0, 6, "waiting"));
        assert!(log.pending());
        log.poll(t0 + Duration::from_millis(10));
        let daemon = listen(&path);
        log.poll(t0 + Duration::from_millis(200)); // connections: at most once a second
        assert!(drain(&daemon).is_empty());
        log.poll(t0 + Duration::from_millis(1100));
        assert_eq!(message(&recv(&daemon)), "waiting");
        assert!(!log.pending());
    }

    #[test]
    fn a_long_absence_overflows_the_backlog_and_is_reported() {
        let dir = TempDir::new("overflow");
        let path = dir.path("log");
        let t0 = Instant::now();
        let mut log = Syslog::new([&path]);
        let kept = (0..100)
            .filter(|i| log.log(t0, 6, &format!("line {i}")))
            .count();
        assert_eq!(kept, BACKLOG_LINES);
        assert_eq!(log.stats().dropped, 100 - BACKLOG_LINES as u64);
        let daemon = listen(&path);
        let got = deliver(&mut log, &daemon, t0 + RETRY_INTERVAL);
        let want: Vec<String> = (0..BACKLOG_LINES)
            .map(|i| format!("line {i}"))
            .chain([format!(
                "{} log lines dropped while syslog was unavailable",
                100 - BACKLOG_LINES
            )])
            .collect();
        let got: Vec<&str> = got.iter().map(|l| message(l)).collect();
        assert_eq!(got, want);
        assert_eq!(log.stats().unreported, 0);
    }

    #[test]
    fn a_stalled_daemon_drops_and_counts_lines_without_blocking() {
        let dir = TempDir::new("stalled");
        let path = dir.path("log");
        let daemon = listen(&path);
        // The daemon reads nothing: its queue fills (net.unix.max_dgram_qlen datagrams), then
        // the backlog; every further line must be dropped at once, never waited for.
        let (log, taken, started) = within(Duration::from_secs(10), move || {
            let mut log = Syslog::new([&path]);
            let started = Instant::now();
            let mut taken = 0u64;
            for i in 0..5000 {
                if log.log(Instant::now(), 6, &format!("line {i} {}", "x".repeat(200))) {
                    taken += 1;
                }
            }
            (log, taken, started)
        });
        let elapsed = started.elapsed();
        let mut log = log;
        let stats = log.stats();
        assert!(stats.dropped > 0, "the queue never filled ({taken} taken)");
        assert_eq!(taken + stats.dropped, 5000);
        assert_eq!(stats.waiting, BACKLOG_LINES as u64);
        assert!(taken > stats.waiting, "nothing reached the daemon");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(stats.connected, "a stalled daemon is still connected");
        let now = Instant::now();
        log.poll(now);
        assert_eq!(log.retry_in(now), Some(FLUSH_INTERVAL));

        // The daemon reads again: every line taken, in order, then the report, then new lines.
        let got = deliver(&mut log, &daemon, Instant::now());
        assert_eq!(got.len() as u64, taken + 1);
        for (i, line) in got[..taken as usize].iter().enumerate() {
            assert!(message(line).starts_with(&format!("line {i} ")), "{line}");
        }
        let report = got.last().unwrap();
        assert_eq!(
            message(report),
            format!(
                "{} log lines dropped while syslog was unavailable",
                stats.dropped
            )
        );
        assert!(report.starts_with("<28>"), "{report}"); // daemon.warning
        assert!(log.log(Instant::now(), 6, "after"));
        assert_eq!(message(&recv(&daemon)), "after");
        assert_eq!(log.stats().unreported, 0);
    }

    #[test]
    fn no_daemon_at_all_costs_one_attempt_a_second() {
        let dir = TempDir::new("none");
        let t0 = Instant::now();
        let mut log = within(Duration::from_secs(5), move || {
            let mut log = Syslog::new([dir.path("log")]);
            for i in 0..1000 {
                log.log(t0 + Duration::from_micros(i), 6, "x");
            }
            log
        });
        assert_eq!(log.stats().waiting, BACKLOG_LINES as u64);
        assert_eq!(log.stats().dropped, 1000 - BACKLOG_LINES as u64);
        assert_eq!(log.stats().connects, 0);
        assert!(log.connect_at.is_some_and(|t| t == t0 + RETRY_INTERVAL));
        log.poll(t0 + Duration::from_millis(1)); // not due: no attempt
        assert!(log.connect_at.is_some_and(|t| t == t0 + RETRY_INTERVAL));
        // The loop sleeps until the next connection attempt, not a flush interval.
        assert_eq!(
            log.retry_in(t0 + Duration::from_millis(1)),
            Some(RETRY_INTERVAL - Duration::from_millis(1))
        );
    }
}
