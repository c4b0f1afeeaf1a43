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
//! - a log daemon that is stalled (stopped, swapping, blocked on a full flash) stops reading,
//!   and once its receive queue is full (`net.unix.max_dgram_qlen` datagrams) a blocking send
//!   waits until it reads again. The writer's socket is non-blocking: the send fails with
//!   EAGAIN and the line is dropped and counted instead;
//! - lines dropped either way are counted; the next line that reaches the daemon is preceded by
//!   "N log lines dropped while syslog was unavailable", and [`Log::poll`] (once per loop turn)
//!   sends that report within a second of the daemon's return even if nothing else is logged.
//!   The count is in the status file (`"log"`).
//!
//! musl's syslog(3) (what a static firmware binary would get) does reconnect once on a lost
//! connection, but its socket is blocking, so a stalled daemon would stall the relay; the
//! `syslog` crate connected once and never again, losing every line after a daemon restart.
//!
//! Until syslog was reached once (none at start, e.g. a minimal container), lines also go to
//! stderr, as they always do in the foreground.

use std::fmt::Write as _;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Where a syslog daemon listens, tried in turn: `/dev/log` (busybox syslogd, OpenWrt's logd,
/// every Linux syslog daemon), then the paths other systems use.
pub const SOCKET_PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];

/// At most one connection attempt per this interval while syslog is unavailable, and at most
/// one attempt per interval to report dropped lines.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// LOG_DAEMON (3) << 3.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The syslog side's figures, for the status file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyslogStats {
    /// A socket is connected now (a stalled daemon still counts as connected).
    pub connected: bool,
    /// Connections made (1 if the daemon was never lost).
    pub connects: u64,
    /// Lines that did not reach syslog, in all.
    pub dropped: u64,
    /// Of those, the ones not yet reported in the log.
    pub unreported: u64,
}

/// The loop's non-blocking syslog writer (see the module documentation).
pub struct Syslog {
    paths: Vec<PathBuf>,
    /// `ptpproxy[PID]`
    tag: String,
    sock: Option<UnixDatagram>,
    /// No connection attempt before this.
    connect_at: Option<Instant>,
    /// No report attempt by [`Syslog::poll`] before this.
    report_at: Option<Instant>,
    /// The datagram being sent (kept: no allocation per line once it is large enough).
    buf: String,
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
            report_at: None,
            buf: String::with_capacity(512),
            stats: SyslogStats::default(),
        }
    }

    pub fn stats(&self) -> SyslogStats {
        SyslogStats {
            connected: self.sock.is_some(),
            ..self.stats
        }
    }

    /// Send one line at `severity` (0–7); `false` if it was dropped (and counted).
    pub fn log(&mut self, now: Instant, severity: u8, msg: &str) -> bool {
        if self.stats.unreported > 0 && !self.report(now) {
            self.dropped();
            return false;
        }
        self.format(severity, msg);
        if self.send(now) {
            true
        } else {
            self.dropped();
            false
        }
    }

    /// Report dropped lines if any, at most once per [`RETRY_INTERVAL`]: called once per loop
    /// turn, so the report follows the daemon's return even when nothing else is logged.
    pub fn poll(&mut self, now: Instant) {
        if self.stats.unreported == 0 || self.report_at.is_some_and(|t| now < t) {
            return;
        }
        self.report_at = Some(now + RETRY_INTERVAL);
        self.report(now);
    }

    fn dropped(&mut self) {
        self.stats.dropped += 1;
        self.stats.unreported += 1;
    }

    /// Send the dropped-lines report; `true` if it went out.
    fn report(&mut self, now: Instant) -> bool {
        let msg = format!(
            "{} log lines dropped while syslog was unavailable",
            self.stats.unreported
        );
        self.format(4, &msg);
        let sent = self.send(now);
        if sent {
            self.stats.unreported = 0;
        }
        sent
    }

    /// `<PRI>Mmm dd hh:mm:ss ptpproxy[PID]: msg` into `buf`.
    fn format(&mut self, severity: u8, msg: &str) {
        self.buf.clear();
        let _ = write!(self.buf, "<{}>", FACILITY_DAEMON | (severity & 7));
        write_timestamp(&mut self.buf, SystemTime::now());
        let _ = write!(self.buf, " {}: {msg}", self.tag);
    }

    /// Send `buf`: on a lost connection, connect again (if due) and retry once.
    fn send(&mut self, now: Instant) -> bool {
        for _ in 0..2 {
            if self.sock.is_none() && !self.connect(now) {
                return false;
            }
            let Some(sock) = self.sock.as_ref() else {
                return false;
            };
            match sock.send(self.buf.as_bytes()) {
                Ok(_) => return true,
                Err(e) if connection_lost(&e) => self.sock = None,
                // EAGAIN: the daemon is stalled and its queue is full; anything else: this
                // line only.
                Err(_) => return false,
            }
        }
        false
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
}

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
        Log { syslog, stderr }
    }

    /// Once per loop turn: the dropped-lines report, once syslog takes lines again.
    pub fn poll(&mut self) {
        self.syslog.poll(Instant::now());
    }

    pub fn syslog_stats(&self) -> SyslogStats {
        self.syslog.stats()
    }

    fn write(&mut self, level: Level, msg: &str) {
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

    #[test]
    fn reconnects_after_the_daemon_is_restarted() {
        let dir = TempDir::new("reconnect");
        let path = dir.path("log");
        let t0 = Instant::now();
        let daemon = listen(&path);
        let mut log = Syslog::new([dir.path("absent"), path.clone()]);
        assert!(log.log(t0, 6, "one"));
        assert!(recv(&daemon).ends_with(": one"));

        // Restarted long after the connection was made: the next line reconnects at once.
        drop(daemon);
        let daemon = listen(&path);
        assert!(log.log(t0 + Duration::from_secs(5), 6, "two"));
        assert!(recv(&daemon).ends_with(": two"));
        assert_eq!(log.stats().connects, 2);
        assert_eq!(log.stats().dropped, 0);

        // Gone (socket file removed): lines are dropped, and connections are tried at most
        // once a second.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        let t1 = t0 + Duration::from_secs(5) + Duration::from_millis(100);
        assert!(!log.log(t1, 6, "three"));
        assert!(!log.log(t1 + Duration::from_millis(200), 6, "four"));
        // Back within the second: not tried yet.
        let daemon = listen(&path);
        assert!(!log.log(t1 + Duration::from_millis(500), 6, "five"));
        assert!(drain(&daemon).is_empty());
        assert_eq!(
            log.stats(),
            SyslogStats {
                connected: false,
                connects: 2,
                dropped: 3,
                unreported: 3
            }
        );
        // A second after the last attempt: connected, the report first, then the line.
        assert!(log.log(t1 + Duration::from_millis(1600), 5, "six"));
        assert!(
            recv(&daemon).ends_with(": 3 log lines dropped while syslog was unavailable"),
            "report"
        );
        assert!(recv(&daemon).ends_with(": six"));
        assert_eq!(log.stats().unreported, 0);
        assert_eq!(log.stats().dropped, 3);
        assert!(log.stats().connected);
    }

    #[test]
    fn the_report_follows_the_return_without_a_new_line() {
        let dir = TempDir::new("poll");
        let path = dir.path("log");
        let t0 = Instant::now();
        let mut log = Syslog::new([&path]);
        assert!(!log.log(t0, 6, "lost"));
        log.poll(t0 + Duration::from_millis(10)); // nothing there: no report
        let daemon = listen(&path);
        log.poll(t0 + Duration::from_millis(20)); // reported at most once a second
        assert!(drain(&daemon).is_empty());
        log.poll(t0 + Duration::from_millis(1100));
        assert!(recv(&daemon).ends_with(": 1 log lines dropped while syslog was unavailable"));
        log.poll(t0 + Duration::from_secs(5));
        assert!(drain(&daemon).is_empty());
    }

    #[test]
    fn a_stalled_daemon_drops_and_counts_lines_without_blocking() {
        let dir = TempDir::new("stalled");
        let path = dir.path("log");
        let daemon = listen(&path);
        // The daemon reads nothing: its queue fills (net.unix.max_dgram_qlen datagrams, or the
        // socket buffers) and every further line must be dropped at once, never waited for.
        let (log, sent, started) = within(Duration::from_secs(10), move || {
            let mut log = Syslog::new([&path]);
            let started = Instant::now();
            let mut sent = 0u64;
            for i in 0..5000 {
                if log.log(Instant::now(), 6, &format!("line {i} {}", "x".repeat(200))) {
                    sent += 1;
                }
            }
            (log, sent, started)
        });
        let elapsed = started.elapsed();
        let dropped = log.stats().dropped;
        assert!(sent > 0, "nothing reached the daemon");
        assert!(dropped > 0, "the queue never filled ({sent} sent)");
        assert_eq!(sent + dropped, 5000);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(log.stats().connected, "a stalled daemon is still connected");

        // The daemon reads again: what it had queued, then the report and the next line.
        let queued = drain(&daemon);
        assert_eq!(queued.len() as u64, sent);
        let mut log = log;
        assert!(log.log(Instant::now(), 6, "after"));
        let report = recv(&daemon);
        assert!(
            report.ends_with(&format!(
                ": {dropped} log lines dropped while syslog was unavailable"
            )),
            "{report}"
        );
        assert!(report.starts_with("<28>"), "{report}"); // daemon.warning
        assert!(recv(&daemon).ends_with(": after"));
        assert_eq!(log.stats().unreported, 0);
    }

    #[test]
    fn no_daemon_at_all_costs_one_attempt_a_second() {
        let dir = TempDir::new("none");
        let t0 = Instant::now();
        let mut log = within(Duration::from_secs(5), move || {
            let mut log = Syslog::new([dir.path("log")]);
            for i in 0..1000 {
                assert!(!log.log(t0 + Duration::from_micros(i), 6, "x"));
            }
            log
        });
        assert_eq!(log.stats().dropped, 1000);
        assert_eq!(log.stats().connects, 0);
        assert!(log.connect_at.is_some_and(|t| t == t0 + RETRY_INTERVAL));
        log.poll(t0);
    }
}
