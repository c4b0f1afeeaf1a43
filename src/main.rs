//! `ptpproxy`: the daemon and its command line. Thin: arguments, configuration, logging, then
//! the event loop of `daemon::event_loop`.

mod daemon;

use daemon::event_loop::{self, signal_set};
use daemon::log::Log;
use daemon::{load_config, status, Daemon};
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/ptpproxy/config.json";
const DEFAULT_STATUS: &str = "/var/run/ptpproxy/status.json";

/// sysexits.h
const EX_USAGE: u8 = 64;
const EX_NOINPUT: u8 = 66;
/// `ptpproxy status`: the file is stale (its writer is gone or hung); the last content is printed.
const EX_UNAVAILABLE: u8 = 69;
const EX_OSERR: u8 = 71;
const EX_CONFIG: u8 = 78;

const USAGE: &str = "usage: ptpproxy [-f FILE] [-m] [-l LEVEL] [--check-config] [--version]
       ptpproxy status [FILE]

  -f FILE         configuration (default /etc/ptpproxy/config.json), as ptp4l -f;
                  -c FILE and --config FILE are the same
  -m              print log messages to stderr too (ptpproxy always stays in the foreground)
  -l LEVEL        log messages up to syslog level LEVEL: 3 errors, 4 warnings, 5 notices,
                  6 info (default, everything ptpproxy logs), 0-7 accepted as by ptp4l
  --check-config  validate the configuration and exit (0 valid, 78 invalid)
  --version       print version and board profile
  status [FILE]   print the status file (default: the configured status_file); exit 69
                  if it is stale (ptpproxy not running, or not rewritten for 3 intervals),
                  66 if there is none";

struct Args {
    config: String,
    /// `-m`: log messages to stderr too.
    stderr: bool,
    /// `-l`: the highest syslog severity number logged.
    level: u8,
    check: bool,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("status") {
        return status_command(argv.get(1).map(String::as_str), argv.len() > 2);
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ptpproxy: invalid configuration {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    // The ports as the kernel has them now: a bridge and its own member in the relay is refused
    // (--check-config also prints the warnings, which the daemon logs when it starts).
    let findings = daemon::bridge::check_config(&config);
    for f in findings.iter().filter(|f| f.error || args.check) {
        let kind = if f.error { "error" } else { "warning" };
        eprintln!("ptpproxy: {}: {kind}: {}", args.config, f.text);
    }
    if findings.iter().any(|f| f.error) {
        return ExitCode::from(EX_CONFIG);
    }
    if args.check {
        println!("{}: valid", args.config);
        return ExitCode::SUCCESS;
    }

    // Signals arrive through the signalfd only: block them before anything else runs.
    if let Err(e) = signal_set().thread_block() {
        eprintln!("ptpproxy: blocking signals: {e}");
        return ExitCode::from(EX_OSERR);
    }
    let mut log = Log::new(args.stderr);
    log.set_level(args.level);
    let mut d = Daemon::new(args.config, config, log);
    match event_loop::run(&mut d) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            d.log.err(&e.to_string());
            ExitCode::from(EX_OSERR)
        }
    }
}

/// The daemon's options; `Err` is how the process ends right away (--help, --version, a
/// usage error).
fn parse_args(argv: &[String]) -> Result<Args, ExitCode> {
    let mut args = Args {
        config: DEFAULT_CONFIG.into(),
        stderr: false,
        level: daemon::log::DEFAULT_LEVEL,
        check: false,
    };
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "-c" | "--config" => match it.next() {
                // `-f` alone meant "log to stderr" before it named the configuration.
                Some(f) if !f.starts_with('-') => args.config = f.clone(),
                _ => {
                    return Err(usage(&format!(
                        "{a} needs a configuration file (to print log messages to stderr, use -m)"
                    )))
                }
            },
            "-m" => args.stderr = true,
            "-l" => match it.next().and_then(|l| l.parse::<u8>().ok()) {
                Some(l @ 0..=7) => args.level = l,
                _ => return Err(usage("-l needs a syslog level from 0 to 7, e.g. 6")),
            },
            "--check-config" => args.check = true,
            "--version" | "-V" => {
                println!(
                    "ptpproxy {} (board {}, target {}, {} clients, {} ports)",
                    env!("CARGO_PKG_VERSION"),
                    ptpproxy::board::NAME,
                    ptpproxy::board::TARGET,
                    ptpproxy::board::MAX_CLIENTS,
                    ptpproxy::board::MAX_PORTS
                );
                return Err(ExitCode::SUCCESS);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            other => return Err(usage(&format!("unknown argument {other:?}"))),
        }
    }
    Ok(args)
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("ptpproxy: {problem}\n{USAGE}");
    ExitCode::from(EX_USAGE)
}

/// `ptpproxy status [FILE]`: the status file as tables; a stale one (its writer gone or hung)
/// is said so on stderr, printed under a STALE line, and exits EX_UNAVAILABLE.
fn status_command(file: Option<&str>, extra: bool) -> ExitCode {
    if extra {
        return usage("status takes at most one FILE");
    }
    let path = match file {
        Some(f) => f.to_owned(),
        None => load_config(DEFAULT_CONFIG)
            .map(|c| c.status_file.as_str().to_owned())
            .unwrap_or_else(|_| DEFAULT_STATUS.to_owned()),
    };
    let (bytes, modified) = match std::fs::read(&path).and_then(|b| {
        let m = std::fs::metadata(&path)?.modified()?;
        Ok((b, m))
    }) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ptpproxy: {path}: {e} (is ptpproxy running?)");
            return ExitCode::from(EX_NOINPUT);
        }
    };
    // A file from the future (the clock was set back) counts as just written.
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    let checked = status::format_table(&bytes).and_then(|t| {
        Ok((
            t,
            status::stale::stale_reason(&bytes, age, status::stale::writer_of)?,
        ))
    });
    match checked {
        Ok((t, None)) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Ok((t, Some(reason))) => {
            eprintln!(
                "ptpproxy: {path}: stale: {reason}; showing the last status, written {} s ago",
                age.as_secs()
            );
            println!("STALE ({reason}; last written {} s ago)", age.as_secs());
            print!("{t}");
            ExitCode::from(EX_UNAVAILABLE)
        }
        Err(e) => {
            eprintln!("ptpproxy: {path}: {e}");
            ExitCode::from(EX_NOINPUT)
        }
    }
}
