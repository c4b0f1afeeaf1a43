//! The command line: the usage text, the run's [`Options`] and the parsing of `argv` into them.
//!
//! Every option is one row of [`VALUED`] or [`SWITCHES`] (name and what it sets), so an option's
//! range check sits next to its name. Parsing only validates and fills in defaults: it must never
//! open a socket or touch an interface, and its messages and limits are part of the interface
//! the test scripts rely on.

use crate::flood::{self, Flood, FloodMsg};
use crate::frames::Transport;

pub const USAGE: &str = "\
usage: ptpload --upstream NETNS:IF --downstream NETNS:IF[,NETNS:IF...] [options]

Emulates a PTP grandmaster on the upstream interface and N clients on the downstream ones,
sends through the forwarder between them and measures loss and one-way latency.
NETNS is a name under /var/run/netns (`ip netns add`); an empty NETNS (\":IF\" or \"IF\") is the
current namespace. Needs CAP_NET_RAW and CAP_SYS_ADMIN (root).

  --clients N         emulated clients, spread round-robin over the downstream ports (1000)
  --rate R            Delay_Req per second per client (16)
  --jitter F          Delay_Req k of a client is sent at k/R + uniform[0, F/R) s: F = 1 spreads
                      them evenly after each Sync, F = 0.01 bunches them right after it (1)
  --master-capacity N  Delay_Req per second the emulated master answers, with 10 ms' worth of
                      burst; the others go unanswered (a grandmaster's limit). 0: all (0)
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

/// `NETNS:IFNAME` (NETNS empty: the current namespace).
#[derive(Clone, Debug)]
pub struct Iface {
    pub netns: String,
    pub name: String,
}

impl Iface {
    pub fn parse(s: &str) -> Option<Iface> {
        let (ns, name) = s.rsplit_once(':').unwrap_or(("", s));
        if name.is_empty() || name.len() > 15 || ns.contains('/') || ns.starts_with('.') {
            return None;
        }
        Some(Iface {
            netns: ns.into(),
            name: name.into(),
        })
    }
}

impl std::fmt::Display for Iface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.netns.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}:{}", self.netns, self.name)
        }
    }
}

/// Most downstream interfaces.
pub const MAX_DOWN: usize = 8;

#[derive(Clone, Debug)]
pub struct Options {
    pub upstream: Iface,
    pub downstream: Vec<Iface>,
    pub clients: u32,
    /// Delay_Req per second per client.
    pub rate: f64,
    pub sync_rate: f64,
    pub announce_rate: f64,
    /// Delay_Req k of a client goes at k periods + uniform [0, jitter) periods.
    pub jitter: f64,
    /// Delay_Req per second the master answers (0: all).
    pub master_capacity: f64,
    /// Foreign Delay_Req and foreign Delay_Resp, each this share of the Delay_Req rate.
    pub foreign: f64,
    pub transport: Transport,
    pub domain: u8,
    pub duration_s: f64,
    pub drain_ms: u64,
    pub max_frames: u64,
    pub batch: usize,
    pub ring_bytes: usize,
    /// Latency of Delay_Req/Delay_Resp sampled on every `tap_every`-th sequenceId (power of 2).
    pub tap_every: u32,
    pub seed: u64,
    /// Misbehaving senders (`--flood`), if any.
    pub flood: Vec<Flood>,
    /// Silences of at least this long in a port's arrivals are listed (ns).
    pub gap_ns: u64,
}

/// The parsed command line.
pub struct Args {
    pub opts: Options,
    pub json: Option<String>,
    pub quiet: bool,
}

/// What the command line has said so far: the options, and the `--flood` modifiers that apply
/// to every `--flood` whatever their order (combined in [`Parsed::finish`]).
struct Parsed {
    o: Options,
    have_up: bool,
    flood: Vec<(Iface, f64)>,
    flood_msg: FloodMsg,
    flood_at: f64,
    flood_for: f64,
    flood_ids: u32,
    single_mac: bool,
    json: Option<String>,
    quiet: bool,
}

/// Sets what an option with a value says: (state, option name, its value if there was one).
type Set = fn(&mut Parsed, &str, Option<&String>) -> Result<(), String>;

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

/// The options that take a value.
const VALUED: &[(&str, Set)] = &[
    ("--upstream", |p, _, v| {
        let v = v.ok_or("--upstream needs NETNS:IF")?;
        p.o.upstream = Iface::parse(v).ok_or(format!("--upstream: bad interface {v:?}"))?;
        p.have_up = true;
        Ok(())
    }),
    ("--downstream", |p, _, v| {
        let v = v.ok_or("--downstream needs NETNS:IF[,...]")?;
        for s in v.split(',') {
            let iface = Iface::parse(s).ok_or(format!("--downstream: bad interface {s:?}"))?;
            p.o.downstream.push(iface);
        }
        Ok(())
    }),
    ("--clients", |p, a, v| {
        p.o.clients = range(a, num(a, v)?, 1, 65536)?;
        Ok(())
    }),
    ("--rate", |p, a, v| {
        p.o.rate = range(a, num(a, v)?, 0.01, 4096.0)?;
        Ok(())
    }),
    ("--jitter", |p, a, v| {
        p.o.jitter = range(a, num(a, v)?, 0.0, 1.0)?;
        Ok(())
    }),
    ("--master-capacity", |p, a, v| {
        p.o.master_capacity = range(a, num(a, v)?, 0.0, 10_000_000.0)?;
        Ok(())
    }),
    ("--sync-rate", |p, a, v| {
        p.o.sync_rate = range(a, num(a, v)?, 0.01, 4096.0)?;
        Ok(())
    }),
    ("--announce-rate", |p, a, v| {
        p.o.announce_rate = range(a, num(a, v)?, 0.01, 1024.0)?;
        Ok(())
    }),
    ("--foreign", |p, a, v| {
        p.o.foreign = range(a, num(a, v)?, 0.0, 1.0)?;
        Ok(())
    }),
    ("--transport", |p, _, v| {
        p.o.transport = match v.map(String::as_str) {
            Some("l2") => Transport::L2,
            Some("udp4") => Transport::Udp4,
            other => return Err(format!("--transport: l2 or udp4, not {other:?}")),
        };
        Ok(())
    }),
    ("--domain", |p, a, v| {
        p.o.domain = num(a, v)?;
        Ok(())
    }),
    ("--duration", |p, a, v| {
        p.o.duration_s = range(a, num(a, v)?, 0.1, 3600.0)?;
        Ok(())
    }),
    ("--drain-ms", |p, a, v| {
        p.o.drain_ms = range(a, num(a, v)?, 0, 10_000)?;
        Ok(())
    }),
    ("--max-frames", |p, a, v| {
        p.o.max_frames = range(a, num(a, v)?, 1, 10_000_000_000)?;
        Ok(())
    }),
    ("--batch", |p, a, v| {
        p.o.batch = range(a, num(a, v)?, 1, 1024)?;
        Ok(())
    }),
    ("--ring-mib", |p, a, v| {
        p.o.ring_bytes = range(a, num::<usize>(a, v)?, 1, 1024)? << 20;
        Ok(())
    }),
    ("--tap-every", |p, a, v| {
        p.o.tap_every = range(a, num(a, v)?, 1, 128)?;
        if !p.o.tap_every.is_power_of_two() {
            return Err("--tap-every must be a power of two".into());
        }
        Ok(())
    }),
    ("--seed", |p, a, v| {
        p.o.seed = num(a, v)?;
        Ok(())
    }),
    ("--gap-ms", |p, a, v| {
        p.o.gap_ns = range(a, num::<u64>(a, v)?, 1, 60_000)? * 1_000_000;
        Ok(())
    }),
    ("--flood", flood_source),
    ("--flood-msg", |p, _, v| {
        let v = v.ok_or("--flood-msg needs a kind")?;
        p.flood_msg = FloodMsg::parse(v).ok_or(format!(
            "--flood-msg: delay_req, rogue, signaling or malformed, not {v:?}"
        ))?;
        Ok(())
    }),
    ("--flood-at", |p, a, v| {
        p.flood_at = range(a, num(a, v)?, -60.0, 3600.0)?;
        Ok(())
    }),
    ("--flood-for", |p, a, v| {
        p.flood_for = range(a, num(a, v)?, 0.0, 3600.0)?;
        Ok(())
    }),
    ("--flood-identities", |p, a, v| {
        p.flood_ids = num(a, v)?;
        Ok(())
    }),
    ("--json", |p, _, v| {
        p.json = Some(v.ok_or("--json needs a file")?.clone());
        Ok(())
    }),
];

/// Sets what an option without a value says.
type Switch = fn(&mut Parsed);

/// The options without a value.
const SWITCHES: &[(&str, Switch)] = &[
    ("--flood-single-mac", |p| p.single_mac = true),
    ("--quiet", |p| p.quiet = true),
];

/// `--flood NETNS:IF:RATE`: the interface and rate are checked before the count of sources, so a
/// malformed fifth `--flood` is reported as malformed.
fn flood_source(p: &mut Parsed, a: &str, v: Option<&String>) -> Result<(), String> {
    let v = v.ok_or("--flood needs NETNS:IF:RATE")?;
    let (i, r) = v
        .rsplit_once(':')
        .ok_or(format!("--flood: {v:?} is not NETNS:IF:RATE"))?;
    let iface = Iface::parse(i).ok_or(format!("--flood: bad interface {i:?}"))?;
    let rate: f64 = r
        .parse()
        .map_err(|_| format!("--flood: rate {r:?} is not a number"))?;
    if p.flood.len() == flood::MAX_SOURCES {
        return Err(format!("at most {} --flood", flood::MAX_SOURCES));
    }
    p.flood.push((iface, range(a, rate, 0.1, 2_000_000.0)?));
    Ok(())
}

impl Parsed {
    fn new() -> Parsed {
        Parsed {
            o: Options {
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
                master_capacity: 0.0,
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
            },
            have_up: false,
            flood: Vec::new(),
            flood_msg: FloodMsg::DelayReq,
            flood_at: 0.0,
            flood_for: 0.0,
            flood_ids: 0,
            single_mac: false,
            json: None,
            quiet: false,
        }
    }

    /// The checks that need the whole command line, the defaults that follow other options,
    /// and every `--flood` with the modifiers.
    fn finish(self) -> Result<Args, String> {
        let mut o = self.o;
        if !self.have_up || o.downstream.is_empty() {
            return Err("--upstream and --downstream are required".into());
        }
        if o.downstream.len() > MAX_DOWN {
            return Err(format!("at most {MAX_DOWN} downstream interfaces"));
        }
        if o.sync_rate == 0.0 {
            o.sync_rate = o.rate;
        }
        o.flood = self
            .flood
            .into_iter()
            .enumerate()
            .map(|(i, (iface, rate))| Flood {
                iface,
                rate,
                at_s: self.flood_at,
                for_s: self.flood_for,
                identities: self.flood_ids,
                single_mac: self.single_mac,
                msg: self.flood_msg,
                transport: o.transport,
                domain: o.domain,
                source: i as u32,
            })
            .collect();
        Ok(Args {
            opts: o,
            json: self.json,
            quiet: self.quiet,
        })
    }
}

/// `argv` without the program name. `Err("")` asks for the usage text (`-h`, `--help`);
/// any other `Err` is a usage error to report.
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut p = Parsed::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let a = a.as_str();
        if a == "-h" || a == "--help" {
            return Err(String::new());
        }
        if let Some((_, set)) = SWITCHES.iter().find(|(name, _)| *name == a) {
            set(&mut p);
        } else if let Some((_, set)) = VALUED.iter().find(|(name, _)| *name == a) {
            set(&mut p, a, it.next())?;
        } else {
            return Err(format!("unknown argument {a:?}"));
        }
    }
    p.finish()
}
