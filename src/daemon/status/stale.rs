//! Whether a status file still describes a running ptpproxy. The file outlives its writer (the
//! last one is written at exit, and a killed or hung daemon leaves its last one behind), so
//! `ptpproxy status` checks two things before calling it live: the process that wrote it (its
//! `pid`) still runs and is a ptpproxy, and the file was rewritten within the last
//! [`STALE_INTERVALS`] status intervals (`status_interval_s`, also in the file).

use super::schema::Head;
use std::time::Duration;

/// A file not rewritten for this many status intervals is stale (the daemon is hung or its
/// status file cannot be written).
pub const STALE_INTERVALS: u64 = 3;

/// What the process named by the file's `pid` is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Runs, and is a ptpproxy (or cannot be looked at closer: another user's, `/proc` hidden).
    Ptpproxy,
    /// Gone (or a zombie: it exited, nobody collected it yet).
    Gone,
    /// The pid was reused: this program runs under it now.
    Other(String),
}

/// Look up `pid`: kill(pid, 0) says whether it exists, `/proc/PID/stat` whether it is a zombie,
/// `/proc/PID/comm` what program it is (ptpproxy's may carry a suffix, e.g. `ptpproxy-armv7`).
pub fn writer_of(pid: u32) -> Writer {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    // 0 and negative numbers would name process groups.
    let Ok(raw) = i32::try_from(pid) else {
        return Writer::Gone;
    };
    if raw <= 0 {
        return Writer::Gone;
    }
    if kill(Pid::from_raw(raw), None) == Err(Errno::ESRCH) {
        return Writer::Gone;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state == Some('Z') {
            return Writer::Gone;
        }
    }
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if !comm.contains("ptpproxy") => Writer::Other(comm.trim_end().to_owned()),
        _ => Writer::Ptpproxy,
    }
}

/// Why the status file `json`, last modified `age` ago, is stale; `None` if it is live.
/// `writer` looks up the file's pid ([`writer_of`]). An error if the file is not a status file.
pub fn stale_reason(
    json: &[u8],
    age: Duration,
    writer: impl FnOnce(u32) -> Writer,
) -> Result<Option<String>, String> {
    let (head, _): (Head, usize) = serde_json_core::from_slice(json)
        .map_err(|e| format!("not a ptpproxy status file: {e}"))?;
    let pid = head.pid;
    Ok(match writer(pid) {
        Writer::Gone => Some(format!("ptpproxy (pid {pid}) is not running")),
        Writer::Other(comm) => Some(format!(
            "ptpproxy (pid {pid}) is not running (pid {pid} is now {comm:?})"
        )),
        Writer::Ptpproxy => {
            let interval = u64::from(head.status_interval_s);
            let limit = interval * STALE_INTERVALS;
            (interval > 0 && age.as_secs() > limit).then(|| {
                format!(
                    "not rewritten for {} s (every {interval} s expected): ptpproxy (pid {pid}) is hung or cannot write it",
                    age.as_secs()
                )
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pid: u32, interval: u32) -> String {
        format!(
            r#"{{"version":"0.1.0","board":"generic","pid":{pid},"status_interval_s":{interval},"uptime_s":9,"config":"/c","delay_resp_mode":"steer","clients":{{"count":0,"capacity":1,"learned":0,"aged":0,"moved":0}},"udp_checksums_completed":0}}"#
        )
    }

    #[test]
    fn a_live_writer_and_a_fresh_file_are_live() {
        let f = file(42, 5);
        let looked_up = std::cell::Cell::new(0);
        let r = stale_reason(f.as_bytes(), Duration::from_secs(15), |pid| {
            looked_up.set(pid);
            Writer::Ptpproxy
        });
        assert_eq!(r, Ok(None));
        assert_eq!(looked_up.get(), 42);
    }

    #[test]
    fn a_gone_or_replaced_writer_is_stale() {
        let f = file(42, 5);
        let gone = stale_reason(f.as_bytes(), Duration::ZERO, |_| Writer::Gone).unwrap();
        assert_eq!(gone.as_deref(), Some("ptpproxy (pid 42) is not running"));
        let other = stale_reason(f.as_bytes(), Duration::ZERO, |_| {
            Writer::Other("bash".into())
        })
        .unwrap();
        assert!(other.unwrap().contains("pid 42 is now \"bash\""));
    }

    #[test]
    fn a_file_older_than_three_intervals_is_stale() {
        let f = file(42, 5);
        let r = stale_reason(f.as_bytes(), Duration::from_secs(16), |_| Writer::Ptpproxy).unwrap();
        assert!(r
            .unwrap()
            .starts_with("not rewritten for 16 s (every 5 s expected)"));
        // Files of older versions do not say the interval: only the pid is checked.
        let old = file(42, 0).replace(r#""status_interval_s":0,"#, "");
        assert!(!old.contains("status_interval_s"));
        let r = stale_reason(old.as_bytes(), Duration::from_secs(3600), |_| {
            Writer::Ptpproxy
        });
        assert_eq!(r, Ok(None));
    }

    #[test]
    fn writers_are_looked_up_in_proc() {
        assert_eq!(writer_of(0), Writer::Gone);
        assert_eq!(writer_of(u32::MAX), Writer::Gone);
        // The test binary itself: running, not a ptpproxy (its name is the test harness's).
        let me = writer_of(std::process::id());
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        if comm.contains("ptpproxy") {
            assert_eq!(me, Writer::Ptpproxy);
        } else {
            assert_eq!(me, Writer::Other(comm.trim_end().to_owned()));
        }
        // A child that exited and was collected.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(writer_of(pid), Writer::Gone);
    }
}
