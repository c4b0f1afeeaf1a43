//! `ptpproxy status` against status files whose writer is running, gone, or hung: the built
//! binary, run on files written here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, SystemTime};

const EX_NOINPUT: i32 = 66;
const EX_UNAVAILABLE: i32 = 69;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ptpproxy-status-{name}-{}-{:?}",
            std::process::id(),
            SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A status file as ptpproxy writes it (one port, no client), from `pid`, rewritten every
/// `interval` seconds.
fn write_status(path: &Path, pid: u32, interval: u32) {
    let json = format!(
        r#"{{"version":"0.1.0","board":"generic","pid":{pid},"status_interval_s":{interval},"uptime_s":12,"config":"/etc/ptpproxy/config.json","delay_resp_mode":"steer","clients":{{"count":0,"capacity":4096,"learned":0,"aged":0,"moved":0}},"udp_checksums_completed":0,
"ports":[
 {{"name":"eth0","role":"upstream","up":true,"rx":5,"tx":0,"tx_errors":0,"kernel_drops":0,"opens":1,"dropped":{{}}}}],
"forwarded":{{"sync":5}},"delay_resp":{{"steered":0,"unicast":0,"flooded":0}},"dropped":{{"no_egress":0}},"correction_mode":"none","correction":{{"pending":0,"capacity":0}},"io":{{"wakeups":5}},"log":{{"syslog_connected":1,"syslog_connects":1,"lines_dropped":0,"lines_dropped_unreported":0}},
"client_table":[]}}
"#
    );
    std::fs::write(path, json).unwrap();
}

fn set_age(path: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn status(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptpproxy"))
        .arg("status")
        .arg(path)
        .output()
        .unwrap()
}

/// A process whose name is `ptpproxy` (sleep(1) run through a link of that name).
struct FakeDaemon(Child);

impl FakeDaemon {
    fn start(dir: &Path) -> FakeDaemon {
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep(1)");
        let link = dir.join("ptpproxy");
        std::os::unix::fs::symlink(sleep, &link).unwrap();
        FakeDaemon(Command::new(&link).arg("60").spawn().unwrap())
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_live_daemon_and_a_fresh_file_print_the_tables() {
    let dir = TempDir::new("live");
    let daemon = FakeDaemon::start(&dir.0);
    let file = dir.0.join("status.json");
    write_status(&file, daemon.0.id(), 5);
    set_age(&file, Duration::from_secs(14));
    let out = status(&file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ptpproxy 0.1.0 (board generic)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("log         syslog_connected 1"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_dead_daemon_s_file_is_stale() {
    let dir = TempDir::new("dead");
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let file = dir.0.join("status.json");
    write_status(&file, pid, 5);
    let out = status(&file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("stale: ptpproxy (pid {pid}) is not running")),
        "{stderr}"
    );
    // The last known content, marked.
    assert!(
        stdout.starts_with(&format!(
            "STALE (ptpproxy (pid {pid}) is not running; last written"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("eth0"), "{stdout}");
}

#[test]
fn a_reused_pid_is_not_the_daemon() {
    let dir = TempDir::new("reused");
    let file = dir.0.join("status.json");
    // A pid that runs another program now.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    write_status(&file, other.id(), 5);
    let out = status(&file);
    let _ = other.kill();
    let _ = other.wait();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{stderr}");
    assert!(stderr.contains("is now \"sleep\""), "{stderr}");
}

#[test]
fn a_file_not_rewritten_for_three_intervals_is_stale() {
    let dir = TempDir::new("old");
    let daemon = FakeDaemon::start(&dir.0);
    let file = dir.0.join("status.json");
    write_status(&file, daemon.0.id(), 5);
    set_age(&file, Duration::from_secs(60));
    let out = status(&file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{stdout}{stderr}");
    assert!(
        stderr.contains("stale: not rewritten for 60 s (every 5 s expected)"),
        "{stderr}"
    );
    assert!(stdout.starts_with("STALE (not rewritten"), "{stdout}");
    assert!(stdout.contains("clients    0 of 4096"), "{stdout}");
}

#[test]
fn no_file_is_no_input() {
    let dir = TempDir::new("none");
    let out = status(&dir.0.join("absent.json"));
    assert_eq!(out.status.code(), Some(EX_NOINPUT));
    assert!(text(&out.stderr).contains("is ptpproxy running?"));
}
