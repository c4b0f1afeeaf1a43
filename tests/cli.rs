//! The command line as linuxptp users type it: `-f FILE` names the configuration (`-c` and
//! `--config` are the same), `-m` prints log messages to stderr, `-l LEVEL` sets the syslog
//! level; the built binary, run here.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const EX_USAGE: i32 = 64;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ptpproxy-cli-{name}-{}-{:?}",
            std::process::id(),
            SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A valid configuration on interfaces that do not exist, its status file in here.
    fn config(&self) -> String {
        let path = self.0.join("config.json");
        let status = self.0.join("status.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"upstream":"ptpcli-no0","downstream":["ptpcli-no1"],"status_file":"{}"}}"#,
                status.display()
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ptpproxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptpproxy"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_the_linuxptp_options() {
    let out = ptpproxy(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for option in ["-f FILE", "-c FILE", "-m ", "-l LEVEL", "--check-config"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn f_c_and_config_all_name_the_configuration() {
    let dir = TempDir::new("aliases");
    let config = dir.config();
    for option in ["-f", "-c", "--config"] {
        let out = ptpproxy(&[option, &config, "--check-config"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{option}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), format!("{config}: valid\n"), "{option}");
    }
    // The file is really read: a bad one is rejected whichever option names it.
    std::fs::write(&config, "{").unwrap();
    for option in ["-f", "-c"] {
        let out = ptpproxy(&["--check-config", option, &config]);
        assert_eq!(out.status.code(), Some(78), "{option}");
    }
}

#[test]
fn f_without_a_file_says_that_m_is_now_stderr() {
    for args in [&["-f"][..], &["-f", "-m"], &["-c"]] {
        let out = ptpproxy(args);
        assert_eq!(out.status.code(), Some(EX_USAGE), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("needs a configuration file"),
            "{args:?}: {err}"
        );
        assert!(err.contains("use -m"), "{args:?}: {err}");
    }
}

#[test]
fn l_takes_the_syslog_levels_0_to_7() {
    let dir = TempDir::new("levels");
    let config = dir.config();
    for level in ["0", "3", "7"] {
        let out = ptpproxy(&["-l", level, "-f", &config, "--check-config"]);
        assert_eq!(out.status.code(), Some(0), "-l {level}");
    }
    for level in ["8", "-1", "info", ""] {
        let out = ptpproxy(&["-l", level, "-f", &config, "--check-config"]);
        assert_eq!(out.status.code(), Some(EX_USAGE), "-l {level:?}");
        assert!(text(&out.stderr).contains("-l needs a syslog level"));
    }
    assert_eq!(ptpproxy(&["-l"]).status.code(), Some(EX_USAGE));
}

/// Run the daemon with `args` until its status file appears, stop it with SIGTERM: its stderr.
fn run_daemon(dir: &TempDir, args: &[&str]) -> String {
    let status = dir.0.join("status.json");
    let _ = std::fs::remove_file(&status);
    let child = Command::new(env!("CARGO_BIN_EXE_ptpproxy"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(status.exists(), "no status file: {}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn m_prints_the_log_and_l_filters_it() {
    let dir = TempDir::new("daemon");
    let config = dir.config();
    let all = run_daemon(&dir, &["-f", &config, "-m"]);
    assert!(
        all.contains("ptpproxy: notice: started: upstream ptpcli-no0"),
        "{all}"
    );
    assert!(all.contains("ptpproxy: notice: stopping"), "{all}");
    // Level 4: warnings and errors (the missing interfaces), no notices.
    let quiet = run_daemon(&dir, &["-m", "-l", "4", "-f", &config]);
    assert!(!quiet.contains("notice:"), "{quiet}");
    assert!(quiet.contains("ptpcli-no0"), "{quiet}");
}
