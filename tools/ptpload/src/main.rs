//! `ptpload`: PTPv2 load generator and meter for ptpproxy (or any forwarder, e.g. a Linux bridge).
//!
//! One process, one thread, one clock: it emulates a grandmaster on the upstream interface and
//! N clients spread over the downstream interfaces (each `NETNS:IFNAME`, its AF_PACKET sockets
//! opened inside that namespace), sends Sync + Follow_Up, Announce and every client's Delay_Req
//! on schedule, answers each Delay_Req that reaches the master with a Delay_Resp, optionally adds
//! "foreign" Delay_Req (upstream side) and Delay_Resp (for clients that never asked) that a
//! selective relay must drop, and measures per direction what was sent, received and lost and
//! the one-way latency through the forwarder from kernel timestamps on both ends (net.rs).
//! `--flood` adds misbehaving senders (fake clients, rogue masters, malformed frames: flood.rs)
//! for the hardening tests, and every port's arrivals are watched for silences (link flaps).
//! Frames are built and read with `ptpproxy::wire`. Bounded by `--duration` and `--max-frames`;
//! it touches no interface but those it is given.
//!
//! This file only wires the parts together (command line, run, report, exit status): it must
//! never hold logic of its own.

mod args;
mod flood;
mod frames;
#[cfg(test)]
mod golden;
mod hist;
mod net;
mod report;
mod results;
mod run;

use std::process::ExitCode;

use args::USAGE;

fn usage(problem: &str) -> ExitCode {
    eprintln!("ptpload: {problem}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage(&e),
    };
    let report = match run::run(args.opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ptpload: {e}");
            return ExitCode::from(1);
        }
    };
    if !args.quiet {
        print!("{}", report::table(&report));
    }
    if let Some(path) = args.json {
        if let Err(e) = std::fs::write(&path, report::json(&report)) {
            eprintln!("ptpload: {path}: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
