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

mod flood;
mod frames;
mod hist;
mod net;
mod report;
mod run;

use std::process::ExitCode;

use flood::{Flood, FloodMsg};
use frames::Transport;
use run::{Iface, Options, MAX_DOWN};

const USAGE: &str = "\
usage: ptpload --upstream NETNS:IF --downstream NETNS:IF[,NETNS:IF...] [options]

Emulates a PTP grandmaster on the upstream interface and N clients on the downstream ones,
sends through the forwarder between them and measures loss and one-way latency.
NETNS is a name under /var/run/netns (`ip netns add`); an empty NETNS (\":IF\" or \"IF\") is the
current namespace. Needs CAP_NET_RAW and CAP_SYS_ADMIN (root).

  --clients N         emulated clients, spread round-robin over the downstream ports (1000)
  --rate R            Delay_Req per second per client (16)
  --jitter F          Delay_Req k of a client is sent at k/R + uniform[0, F/R) s: F = 1 spreads
                      them evenly after each Sync, F = 0.01 bunches them right after it (1)
  --sync-rate R       Sync + Follow_Up per second (same as --rate)
  --announce-rate R   Announce per second (1)
  --foreign F         also send foreign Delay_Req on the upstream side and Delay_Resp for unknown
                      clients, each F x the total Delay_Req rate; they must not get through (0)
  --transport T       l2 or udp4 (l2)
  --domain N          domainNumber (0)
  --duration S        seconds of sending, 0.1..3600 (10)
  --drain-ms MS       time to wait for frames in flight after sending stops (300)
  --max-frames N      stop sending after N frames in all (100000000)
  --batch N           frames per sendmmsg, 1..1024 (64)
  --ring-mib N        receive ring per interface, MiB (8)
  --tap-every N       latency of Delay_Req/Delay_Resp from every N-th sequenceId only (power of
                      two, 8): the send stamps come from the kernel's copy of each sent frame,
                      which costs ring space and CPU; Sync/Follow_Up/Announce are always timed
  --seed N            random seed (1)
  --gap-ms MS         list every silence of at least MS in a port's arrivals of the well-behaved
                      flows (the master's frames, our clients' Delay_Req and Delay_Resp) (250)
  --json FILE         also write the results as JSON
  --quiet             no table on stdout

Misbehaving senders (tests/hardening.sh), from identities 02:70:78:ff:fe:NN:NN:NN with MACs
02:70:78:NN:NN:NN; what of them reaches each port is counted:
  --flood NETNS:IF:RATE  send RATE frames/s on IF (may be one of --downstream); up to 4, each
                      with identities of its own; the options below apply to all (none)
  --flood-msg KIND    delay_req: a fake client's Delay_Req; rogue: Sync, Follow_Up, Announce in
                      turn; signaling: Signaling; malformed: 14 kinds of broken frames in turn
                      (truncated, bad version, lying messageLength, reserved type, QinQ, bad IPv4
                      header, fragment, bad UDP length, huge TLV length, wrong domain) (delay_req)
  --flood-at S        start S s after the clients' first Delay_Req; negative: before it (the
                      clients then start -S s after ptpload) (0)
  --flood-for S       flood for S s (0: until the end)
  --flood-identities N  cycle N identities (1: one client far above its rate); 0: a fresh
                      identity and MAC for every frame (0)
  --flood-single-mac  every frame of a --flood from one MAC, 02:70:78:ff:ff:f0 for the first
                      (identities still vary)
Exit status: 0 when the run completed (whatever it measured), 1 on a setup error, 2 on usage.";

fn usage(problem: &str) -> ExitCode {
    eprintln!("ptpload: {problem}\n{USAGE}");
    ExitCode::from(2)
}

struct Args {
    opts: Options,
    json: Option<String>,
    quiet: bool,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut o = Options {
        upstream: Iface {
            netns: String::new(),
            name: String::new(),
        },
        downstream: Vec::new(),
        clients: 1000,
        rate: 16.0,
        sync_rate: 0.0,
        announce_rate: 1.0,
        jitter: 1.0,
        foreign: 0.0,
        transport: Transport::L2,
        domain: 0,
        duration_s: 10.0,
        drain_ms: 300,
        max_frames: 100_000_000,
        batch: 64,
        ring_bytes: 8 << 20,
        tap_every: 8,
        seed: 1,
        flood: Vec::new(),
        gap_ns: 250_000_000,
    };
    let mut flood: Vec<(Iface, f64)> = Vec::new();
    let (mut flood_msg, mut flood_at, mut flood_for, mut flood_ids, mut single_mac) =
        (FloodMsg::DelayReq, 0.0, 0.0, 0u32, false);
    let mut json = None;
    let mut quiet = false;
    let mut have_up = false;
    let mut it = argv.iter();
    fn num<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse()
            .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
    }
    fn range<T: PartialOrd + std::fmt::Display + Copy>(
        flag: &str,
        v: T,
        lo: T,
        hi: T,
    ) -> Result<T, String> {
        if v < lo || v > hi {
            Err(format!("{flag} must be {lo}..={hi}, not {v}"))
        } else {
            Ok(v)
        }
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--upstream" => {
                let v = it.next().ok_or("--upstream needs NETNS:IF")?;
                o.upstream = Iface::parse(v).ok_or(format!("--upstream: bad interface {v:?}"))?;
                have_up = true;
            }
            "--downstream" => {
                let v = it.next().ok_or("--downstream needs NETNS:IF[,...]")?;
                for s in v.split(',') {
                    o.downstream
                        .push(Iface::parse(s).ok_or(format!("--downstream: bad interface {s:?}"))?);
                }
            }
            "--clients" => o.clients = range(a, num(a, it.next())?, 1, 65536)?,
            "--rate" => o.rate = range(a, num(a, it.next())?, 0.01, 4096.0)?,
            "--jitter" => o.jitter = range(a, num(a, it.next())?, 0.0, 1.0)?,
            "--sync-rate" => o.sync_rate = range(a, num(a, it.next())?, 0.01, 4096.0)?,
            "--announce-rate" => o.announce_rate = range(a, num(a, it.next())?, 0.01, 1024.0)?,
            "--foreign" => o.foreign = range(a, num(a, it.next())?, 0.0, 1.0)?,
            "--transport" => {
                o.transport = match it.next().map(String::as_str) {
                    Some("l2") => Transport::L2,
                    Some("udp4") => Transport::Udp4,
                    other => return Err(format!("--transport: l2 or udp4, not {other:?}")),
                }
            }
            "--domain" => o.domain = num(a, it.next())?,
            "--duration" => o.duration_s = range(a, num(a, it.next())?, 0.1, 3600.0)?,
            "--drain-ms" => o.drain_ms = range(a, num(a, it.next())?, 0, 10_000)?,
            "--max-frames" => o.max_frames = range(a, num(a, it.next())?, 1, 10_000_000_000)?,
            "--batch" => o.batch = range(a, num(a, it.next())?, 1, 1024)?,
            "--ring-mib" => {
                o.ring_bytes = range(a, num::<usize>(a, it.next())?, 1, 1024)? << 20;
            }
            "--tap-every" => {
                o.tap_every = range(a, num(a, it.next())?, 1, 128)?;
                if !o.tap_every.is_power_of_two() {
                    return Err("--tap-every must be a power of two".into());
                }
            }
            "--seed" => o.seed = num(a, it.next())?,
            "--gap-ms" => o.gap_ns = range(a, num::<u64>(a, it.next())?, 1, 60_000)? * 1_000_000,
            "--flood" => {
                let v = it.next().ok_or("--flood needs NETNS:IF:RATE")?;
                let (i, r) = v
                    .rsplit_once(':')
                    .ok_or(format!("--flood: {v:?} is not NETNS:IF:RATE"))?;
                let iface = Iface::parse(i).ok_or(format!("--flood: bad interface {i:?}"))?;
                let rate: f64 = r
                    .parse()
                    .map_err(|_| format!("--flood: rate {r:?} is not a number"))?;
                if flood.len() == flood::MAX_SOURCES {
                    return Err(format!("at most {} --flood", flood::MAX_SOURCES));
                }
                flood.push((iface, range(a, rate, 0.1, 2_000_000.0)?));
            }
            "--flood-msg" => {
                let v = it.next().ok_or("--flood-msg needs a kind")?;
                flood_msg = FloodMsg::parse(v).ok_or(format!(
                    "--flood-msg: delay_req, rogue, signaling or malformed, not {v:?}"
                ))?;
            }
            "--flood-at" => flood_at = range(a, num(a, it.next())?, -60.0, 3600.0)?,
            "--flood-for" => flood_for = range(a, num(a, it.next())?, 0.0, 3600.0)?,
            "--flood-identities" => flood_ids = num(a, it.next())?,
            "--flood-single-mac" => single_mac = true,
            "--json" => json = Some(it.next().ok_or("--json needs a file")?.clone()),
            "--quiet" => quiet = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !have_up || o.downstream.is_empty() {
        return Err("--upstream and --downstream are required".into());
    }
    if o.downstream.len() > MAX_DOWN {
        return Err(format!("at most {MAX_DOWN} downstream interfaces"));
    }
    if o.sync_rate == 0.0 {
        o.sync_rate = o.rate;
    }
    o.flood = flood
        .into_iter()
        .enumerate()
        .map(|(i, (iface, rate))| Flood {
            iface,
            rate,
            at_s: flood_at,
            for_s: flood_for,
            identities: flood_ids,
            single_mac,
            msg: flood_msg,
            transport: o.transport,
            domain: o.domain,
            source: i as u32,
        })
        .collect();
    Ok(Args {
        opts: o,
        json,
        quiet,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
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
