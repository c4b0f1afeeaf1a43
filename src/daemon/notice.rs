//! Notices for the operator: conditions that only moved counters before, named in the log.
//!
//! Ticked about once a second by the daemon (never per frame): each tick compares the core's
//! and the ports' counters with what was logged before and returns the lines to log. A
//! condition is named at most once per [`INTERVAL`], with how many frames it concerned since its
//! previous line, so a loop or a flood gives a line every half minute, not one per frame.
//!
//! - counted conditions ([`COUNTED`]): a counter and the last detail the core kept about it —
//!   a cabling loop (`loop`: where the last looped frame came in and was sent, where it came
//!   back, and every port loops were seen on), a
//!   rogue master (`rogue_master`: its port and sourcePortIdentity), a client identity used from
//!   another port or MAC (`identity_conflict`: the port and identity), frames the kernel dropped
//!   because a capture ring was full, a new grandmaster announced on the upstream port (the
//!   domain, the new one and its quality, the old one), Delay_Req the upstream pacing dropped.
//!   One more is one more row of the table.
//! - states, named when they begin and when they end: the client table above 90% full (back
//!   under 80%), and the upstream side silent: no Sync or Announce for three announce intervals
//!   (the logMessageInterval of its last Announce, 1 s before one arrived; at least 2 s).

use super::capture::Capture;
use super::log::RateLimit;
use ptpproxy::stats::{DropReason, Stats};
use ptpproxy::upstream::ClockId;
use std::time::{Duration, Instant};

/// The shortest time between two lines about one condition.
pub const INTERVAL: Duration = Duration::from_secs(30);

/// How often [`Notices::tick`] should run.
pub const TICK: Duration = Duration::from_secs(1);

/// The client table is reported full above this share (percent), and no longer below the next.
const TABLE_HIGH: usize = 90;
const TABLE_LOW: usize = 80;

/// Announce intervals without Sync or Announce before the upstream side is reported silent.
const SILENT_INTERVALS: u32 = 3;
/// Never report silence sooner (ticks are a second apart).
const SILENT_MIN: Duration = Duration::from_secs(2);

/// What the notices read: the core's counters, the client table's fill, the ports.
pub struct Inputs<'a> {
    pub stats: &'a Stats,
    /// Entries in use, capacity.
    pub clients: (usize, usize),
    /// By port index: names and kernel drop counts.
    pub ports: &'a [Capture],
    /// Wall-clock steps seen by the loop, and the last one's size (ns).
    pub clock_steps: (u64, i64),
}

impl Inputs<'_> {
    fn port(&self, i: usize) -> &str {
        self.ports.get(i).map_or("?", |p| p.name.as_str())
    }
}

/// A line for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// A warning (something is wrong), or a notice (it is over).
    pub warning: bool,
    pub text: String,
}

/// A condition reported when its counter moves: the counter, and the line naming it given how
/// much it moved since the condition's previous line.
pub struct Counted {
    pub count: fn(&Inputs<'_>) -> u64,
    pub line: fn(&Inputs<'_>, u64) -> String,
}

/// Every counted condition.
pub const COUNTED: &[Counted] = &[
    Counted {
        count: |i| i.stats.dropped(DropReason::Loop),
        line: loop_line,
    },
    Counted {
        count: |i| i.stats.dropped(DropReason::RogueMaster),
        line: rogue_line,
    },
    Counted {
        count: |i| i.stats.dropped(DropReason::IdentityConflict),
        line: conflict_line,
    },
    Counted {
        count: |i| i.ports.iter().map(|p| p.kernel_drops).sum(),
        line: ring_line,
    },
    Counted {
        count: |i| i.clock_steps.0,
        line: step_line,
    },
    Counted {
        count: |i| i.stats.grandmaster_changes,
        line: grandmaster_line,
    },
    Counted {
        count: |i| {
            i.stats.dropped(DropReason::UpstreamRateQueueFull)
                + i.stats.dropped(DropReason::UpstreamRateExpired)
        },
        line: pacing_line,
    },
];

fn grandmaster_line(i: &Inputs<'_>, n: u64) -> String {
    let Some(c) = i.stats.last_grandmaster_change else {
        return format!("grandmaster changed {n} time(s)");
    };
    format!(
        "upstream {}: domain {} grandmaster now {} (clockClass {}, priority1 {}, stepsRemoved {}) via {}, was {} ({n} change(s) since the last notice)",
        i.port(0),
        c.domain,
        ClockId(c.to.identity),
        c.to.clock_class,
        c.to.priority1,
        c.to.steps_removed,
        c.master,
        ClockId(c.from)
    )
}

fn pacing_line(i: &Inputs<'_>, n: u64) -> String {
    format!(
        "upstream pacing: {n} Delay_Req dropped since the last notice (in all: {} queue full, {} waited past max_delay_req_hold_ms): the clients ask faster than upstream_max_delay_req_rate for longer than the queue and the hold allow",
        i.stats.dropped(DropReason::UpstreamRateQueueFull),
        i.stats.dropped(DropReason::UpstreamRateExpired)
    )
}

fn step_line(i: &Inputs<'_>, n: u64) -> String {
    format!(
        "wall clock stepped {n} time(s) since the last notice, the last by {:+.3} ms: the Sync and Delay_Req read meanwhile were not sent (counted as clock_step), the residence is measured on CLOCK_MONOTONIC",
        i.clock_steps.1 as f64 / 1e6
    )
}

fn loop_line(i: &Inputs<'_>, n: u64) -> String {
    // Where loops were seen (a frame comes back on the upstream port, a Delay_Req on a
    // downstream one): the last one alone names only one of them.
    let seen: Vec<String> = (0..i.ports.len())
        .map(|p| (p, i.stats.dropped_on(p, DropReason::Loop)))
        .filter(|(_, n)| *n > 0)
        .map(|(p, n)| format!("{} {n}", i.port(p)))
        .collect();
    let Some(l) = i.stats.last_loop else {
        return format!("loop: {n} relayed frames came back in: cabling loop?");
    };
    let sent: Vec<&str> = l.sent_on.iter().map(|p| i.port(p.index())).collect();
    format!(
        "loop: frames sent on {} return on {} (received on {}): cabling loop? ({n} dropped as \"loop\" since the last notice; in all: {})",
        sent.join(", "),
        i.port(l.returned_on.index()),
        i.port(l.received_on.index()),
        seen.join(", ")
    )
}

fn rogue_line(i: &Inputs<'_>, n: u64) -> String {
    match i.stats.last_rogue {
        Some((port, id)) => format!(
            "rogue master on {}: {id} sends Sync/Follow_Up/Announce on a client port ({n} dropped as \"rogue_master\" since the last notice)",
            i.port(port.index())
        ),
        None => format!("rogue master: {n} frames dropped as \"rogue_master\""),
    }
}

fn conflict_line(i: &Inputs<'_>, n: u64) -> String {
    match i.stats.last_conflict {
        Some((port, id)) => format!(
            "identity conflict on {}: Delay_Req of {id}, a client that lives on another port or MAC (spoofed, or moved and not yet silent where it was; {n} dropped as \"identity_conflict\" since the last notice)",
            i.port(port.index())
        ),
        None => format!("identity conflict: {n} Delay_Req dropped as \"identity_conflict\""),
    }
}

fn ring_line(i: &Inputs<'_>, n: u64) -> String {
    let ports: Vec<String> = i
        .ports
        .iter()
        .filter(|p| p.kernel_drops > 0)
        .map(|p| format!("{} {}", p.name, p.kernel_drops))
        .collect();
    format!(
        "kernel ring drops: {n} frames lost before ptpproxy could read them, since the last notice (in all: {}): the relay falls behind",
        ports.join(", ")
    )
}

/// Where one counted condition stands.
struct CountedState {
    /// The counter when the condition was last named (or first seen).
    logged: u64,
    limit: RateLimit,
}

/// The log lines' memory: what each condition's last line said, and when.
pub struct Notices {
    counted: Vec<CountedState>,
    table_full: bool,
    table_limit: RateLimit,
    /// The upstream side: the Sync/Announce count at the last tick, when it last moved, and
    /// whether its silence was reported.
    heard: u64,
    heard_at: Instant,
    silent: bool,
    silent_limit: RateLimit,
}

impl Notices {
    /// Starting at `now`, with the counters of `inputs` as the base (nothing logged for what
    /// happened before).
    pub fn new(now: Instant, inputs: &Inputs<'_>) -> Notices {
        Notices {
            counted: COUNTED
                .iter()
                .map(|c| CountedState {
                    logged: (c.count)(inputs),
                    limit: RateLimit::new(INTERVAL),
                })
                .collect(),
            table_full: false,
            table_limit: RateLimit::new(INTERVAL),
            heard: inputs.stats.upstream_sync_announce,
            heard_at: now,
            silent: false,
            silent_limit: RateLimit::new(INTERVAL),
        }
    }

    /// Compare the counters with the last tick's: the lines to log now.
    pub fn tick(&mut self, now: Instant, inputs: &Inputs<'_>) -> Vec<Notice> {
        let mut out = Vec::new();
        for (c, s) in COUNTED.iter().zip(&mut self.counted) {
            let count = (c.count)(inputs);
            // A reload that removes a port takes its counts with it.
            s.logged = s.logged.min(count);
            if count > s.logged && s.limit.allow(now).is_some() {
                out.push(Notice {
                    warning: true,
                    text: (c.line)(inputs, count - s.logged),
                });
                s.logged = count;
            }
        }
        self.table(now, inputs, &mut out);
        self.upstream(now, inputs, &mut out);
        out
    }

    fn table(&mut self, now: Instant, inputs: &Inputs<'_>, out: &mut Vec<Notice>) {
        let (len, cap) = inputs.clients;
        let percent = (len * 100).checked_div(cap).unwrap_or(0);
        if !self.table_full && percent > TABLE_HIGH && self.table_limit.allow(now).is_some() {
            self.table_full = true;
            out.push(Notice {
                warning: true,
                text: format!(
                    "client table {percent}% full ({len} of {cap}): new clients are refused once it is full"
                ),
            });
        } else if self.table_full && percent < TABLE_LOW {
            self.table_full = false;
            out.push(Notice {
                warning: false,
                text: format!("client table back under {TABLE_LOW}% ({len} of {cap})"),
            });
        }
    }

    fn upstream(&mut self, now: Instant, inputs: &Inputs<'_>, out: &mut Vec<Notice>) {
        let name = inputs.port(0);
        let heard = inputs.stats.upstream_sync_announce;
        if heard != self.heard {
            self.heard = heard;
            if self.silent {
                self.silent = false;
                out.push(Notice {
                    warning: false,
                    text: format!(
                        "upstream {name}: Sync/Announce back after {} s of silence",
                        now.duration_since(self.heard_at).as_secs()
                    ),
                });
            }
            self.heard_at = now;
            return;
        }
        let interval = announce_interval(inputs.stats.upstream_announce_interval);
        let limit = (interval * SILENT_INTERVALS).max(SILENT_MIN);
        let quiet = now.duration_since(self.heard_at);
        if !self.silent && quiet >= limit && self.silent_limit.allow(now).is_some() {
            self.silent = true;
            out.push(Notice {
                warning: true,
                text: format!(
                    "upstream {name}: no Sync or Announce for {} s ({SILENT_INTERVALS} announce intervals of {} ms): grandmaster or its link gone?",
                    quiet.as_secs(),
                    interval.as_millis()
                ),
            });
        }
    }
}

/// The announce interval a logMessageInterval means (2^n s); 1 s when unknown or out of the
/// range a profile uses (-7..=7; 0x7F is "not specified").
pub fn announce_interval(log: Option<i8>) -> Duration {
    match log {
        Some(n @ 0..=7) => Duration::from_secs(1 << n),
        Some(n @ -7..=-1) => Duration::from_nanos(1_000_000_000 >> -n),
        _ => Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::port::{PortId, PortSet};
    use ptpproxy::stats::LoopSeen;
    use ptpproxy::wire::PortIdentity;

    fn ports() -> Vec<Capture> {
        ["up0", "dn1", "dn2"]
            .iter()
            .map(|n| Capture::new(n, false))
            .collect()
    }

    fn inputs<'a>(stats: &'a Stats, ports: &'a [Capture], clients: usize) -> Inputs<'a> {
        Inputs {
            stats,
            clients: (clients, 100),
            ports,
            clock_steps: (0, 0),
        }
    }

    fn texts(v: &[Notice]) -> Vec<&str> {
        v.iter().map(|n| n.text.as_str()).collect()
    }

    #[test]
    fn a_loop_is_named_once_per_interval_with_the_count_since_the_last_line() {
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.upstream_sync_announce = 1;
        assert_eq!(n.tick(t0, &inputs(&s, &p, 0)), []);
        s.dropped[DropReason::Loop as usize] = 40;
        s.dropped_on[0][DropReason::Loop as usize] = 40;
        s.last_loop = Some(LoopSeen {
            received_on: PortId(0),
            sent_on: PortSet::single(PortId(1)),
            returned_on: PortId(0),
        });
        s.upstream_sync_announce = 2;
        let t = t0 + TICK;
        assert_eq!(
            texts(&n.tick(t, &inputs(&s, &p, 0))),
            ["loop: frames sent on dn1 return on up0 (received on up0): cabling loop? (40 dropped as \"loop\" since the last notice; in all: up0 40)"]
        );
        // More within the interval: nothing; after it, the count since the last line.
        s.dropped[DropReason::Loop as usize] = 100;
        s.dropped_on[0][DropReason::Loop as usize] = 90;
        s.dropped_on[1][DropReason::Loop as usize] = 10;
        s.last_loop = Some(LoopSeen {
            received_on: PortId(2),
            sent_on: PortSet::single(PortId(0)),
            returned_on: PortId(1),
        });
        for k in 2..30 {
            s.upstream_sync_announce += 1;
            assert_eq!(n.tick(t0 + TICK * k, &inputs(&s, &p, 0)), [], "{k}");
        }
        s.upstream_sync_announce += 1;
        assert_eq!(
            texts(&n.tick(t + INTERVAL, &inputs(&s, &p, 0))),
            ["loop: frames sent on up0 return on dn1 (received on dn2): cabling loop? (60 dropped as \"loop\" since the last notice; in all: up0 90, dn1 10)"]
        );
    }

    #[test]
    fn a_rogue_master_and_ring_drops_are_named() {
        let t0 = Instant::now();
        let mut p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.dropped[DropReason::RogueMaster as usize] = 7;
        let id = PortIdentity {
            clock_identity: [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0xff],
            port_number: 1,
        };
        s.last_rogue = Some((PortId(2), id));
        p[1].kernel_drops = 5;
        s.upstream_sync_announce = 1;
        let lines = n.tick(t0 + TICK, &inputs(&s, &p, 0));
        assert_eq!(
            texts(&lines),
            [
                "rogue master on dn2: aabbcc.fffe.ddeeff-1 sends Sync/Follow_Up/Announce on a client port (7 dropped as \"rogue_master\" since the last notice)",
                "kernel ring drops: 5 frames lost before ptpproxy could read them, since the last notice (in all: dn1 5): the relay falls behind"
            ]
        );
        assert!(lines.iter().all(|l| l.warning));
    }

    #[test]
    fn an_identity_conflict_is_named_with_its_port_and_identity() {
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.dropped[DropReason::IdentityConflict as usize] = 40;
        s.last_conflict = Some((
            PortId(2),
            PortIdentity {
                clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, 1],
                port_number: 1,
            },
        ));
        s.upstream_sync_announce = 1;
        assert_eq!(
            texts(&n.tick(t0 + TICK, &inputs(&s, &p, 0))),
            ["identity conflict on dn2: Delay_Req of 020000.fffe.000101-1, a client that lives on another port or MAC (spoofed, or moved and not yet silent where it was; 40 dropped as \"identity_conflict\" since the last notice)"]
        );
    }

    #[test]
    fn a_new_grandmaster_is_named_with_the_old_one() {
        use ptpproxy::upstream::{Grandmaster, GrandmasterChange};
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.upstream_sync_announce = 1;
        s.grandmaster_changes = 1;
        s.last_grandmaster_change = Some(GrandmasterChange {
            domain: 0,
            from: [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0, 0, 1],
            to: Grandmaster {
                identity: [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0, 0, 2],
                clock_class: 6,
                clock_accuracy: 0x21,
                offset_scaled_log_variance: 0x4e5d,
                priority1: 128,
                priority2: 128,
                steps_removed: 0,
                time_source: 0x20,
            },
            master: PortIdentity {
                clock_identity: [0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0, 0, 2],
                port_number: 1,
            },
        });
        let lines = n.tick(t0 + TICK, &inputs(&s, &p, 0));
        assert_eq!(
            texts(&lines),
            ["upstream up0: domain 0 grandmaster now aabbcc.fffe.000002 (clockClass 6, priority1 128, stepsRemoved 0) via aabbcc.fffe.000002-1, was aabbcc.fffe.000001 (1 change(s) since the last notice)"]
        );
        assert!(n.tick(t0 + TICK * 2, &inputs(&s, &p, 0)).is_empty());
    }

    #[test]
    fn a_clock_step_is_named_with_its_size() {
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats {
            upstream_sync_announce: 1,
            ..Stats::default()
        };
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.upstream_sync_announce = 2;
        let stepped = Inputs {
            clock_steps: (2, -523_100_000),
            ..inputs(&s, &p, 0)
        };
        assert_eq!(
            texts(&n.tick(t0 + TICK, &stepped)),
            ["wall clock stepped 2 time(s) since the last notice, the last by -523.100 ms: the Sync and Delay_Req read meanwhile were not sent (counted as clock_step), the residence is measured on CLOCK_MONOTONIC"]
        );
    }

    #[test]
    fn the_client_table_is_named_when_nearly_full_and_when_no_longer() {
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        let mut at = |k: u32, clients: usize, s: &mut Stats| {
            s.upstream_sync_announce += 1;
            n.tick(t0 + TICK * k, &inputs(s, &p, clients))
        };
        assert_eq!(at(1, 90, &mut s), []);
        assert_eq!(
            texts(&at(2, 91, &mut s)),
            ["client table 91% full (91 of 100): new clients are refused once it is full"]
        );
        assert_eq!(at(3, 100, &mut s), []);
        assert_eq!(at(4, 85, &mut s), []);
        let back = at(5, 79, &mut s);
        assert_eq!(texts(&back), ["client table back under 80% (79 of 100)"]);
        assert!(!back[0].warning);
    }

    #[test]
    fn a_silent_upstream_is_named_after_three_announce_intervals_and_when_it_is_back() {
        let t0 = Instant::now();
        let p = ports();
        let mut s = Stats::default();
        let mut n = Notices::new(t0, &inputs(&s, &p, 0));
        s.upstream_sync_announce = 10;
        s.upstream_announce_interval = Some(0);
        assert_eq!(n.tick(t0 + TICK, &inputs(&s, &p, 0)), []);
        assert_eq!(n.tick(t0 + TICK * 3, &inputs(&s, &p, 0)), []);
        let silent = n.tick(t0 + TICK * 4, &inputs(&s, &p, 0));
        assert_eq!(
            texts(&silent),
            ["upstream up0: no Sync or Announce for 3 s (3 announce intervals of 1000 ms): grandmaster or its link gone?"]
        );
        assert_eq!(n.tick(t0 + TICK * 9, &inputs(&s, &p, 0)), []);
        s.upstream_sync_announce = 11;
        let back = n.tick(t0 + TICK * 10, &inputs(&s, &p, 0));
        assert_eq!(
            texts(&back),
            ["upstream up0: Sync/Announce back after 9 s of silence"]
        );
        assert!(!back[0].warning);
        // A 4 s announce interval: 12 s of silence, and one line per INTERVAL at most.
        s.upstream_announce_interval = Some(2);
        assert_eq!(n.tick(t0 + TICK * 21, &inputs(&s, &p, 0)), []);
        assert_eq!(n.tick(t0 + TICK * 33, &inputs(&s, &p, 0)), []);
        assert_eq!(
            texts(&n.tick(t0 + TICK * 34, &inputs(&s, &p, 0))),
            ["upstream up0: no Sync or Announce for 24 s (3 announce intervals of 4000 ms): grandmaster or its link gone?"]
        );
    }

    #[test]
    fn announce_intervals() {
        assert_eq!(announce_interval(None), Duration::from_secs(1));
        assert_eq!(announce_interval(Some(0x7F)), Duration::from_secs(1));
        assert_eq!(announce_interval(Some(1)), Duration::from_secs(2));
        assert_eq!(announce_interval(Some(-2)), Duration::from_millis(250));
    }
}
