//! Logging: syslog (facility daemon, ident `ptpproxy`: `logread` on OpenWrt) and, in the
//! foreground (`-f`), stderr. Never per frame; repeated conditions go through [`RateLimit`].

use std::time::{Duration, Instant};

pub struct Log {
    syslog: Option<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>,
    stderr: bool,
}

#[derive(Clone, Copy)]
enum Level {
    Err,
    Warning,
    Notice,
    Info,
}

impl Log {
    pub fn new(stderr: bool) -> Log {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: "ptpproxy".into(),
            pid: std::process::id(),
        };
        Log {
            // No syslog socket (e.g. a minimal container): stderr is all there is.
            syslog: syslog::unix(formatter).ok(),
            stderr,
        }
    }

    fn write(&mut self, level: Level, msg: &str) {
        if let Some(s) = self.syslog.as_mut() {
            let _ = match level {
                Level::Err => s.err(msg),
                Level::Warning => s.warning(msg),
                Level::Notice => s.notice(msg),
                Level::Info => s.info(msg),
            };
        }
        if self.stderr || self.syslog.is_none() {
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
