//! Golden tests of the interfaces the test scripts rely on: the command line (accepted values,
//! defaults, error messages) and the table and JSON of a report, against the outputs in
//! `testdata/`. A change there is a change of interface: it must never happen by accident, and
//! the files are regenerated only on purpose (`PTPLOAD_BLESS=1 cargo test -p ptpload golden`).

use crate::results::{ClientCounts, FloodReport, Flow, Foreign, PortCounts, Report};

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

const BASE: &str = "--upstream gm:up0 --downstream cl1:dn1";

/// Every option with a value of its own.
const RICH: &str = "--upstream gm:up0 --downstream cl1:dn1,c\"l:dn2,:dn3,dn4 --clients 5 \
    --rate 8 --jitter 0.5 --sync-rate 2 --announce-rate 0.5 --foreign 0.25 --transport udp4 \
    --domain 3 --duration 2.5 --drain-ms 10 --max-frames 12345 --batch 32 --ring-mib 2 \
    --tap-every 4 --seed 99 --gap-ms 100 --flood cl1:dn1:5000 --flood :dn2:250.5 \
    --flood-msg malformed --flood-at -0.5 --flood-for 1 --flood-identities 7 \
    --flood-single-mac --json report.json --quiet";

/// Command lines, most of them wrong.
const CASES: &[&str] = &[
    "--help",
    "-h --bogus",
    "",
    "--upstream",
    "--upstream a/b:x",
    "--downstream",
    "--downstream x,",
    "--upstream u --downstream a,b,c,d,e,f,g,h,i",
    "--upstream u",
    "--bogus",
    "--transport udp6",
    "--transport",
    "--flood-msg",
    "--flood-msg x",
    "--flood",
    "--flood x",
    "--flood a/b:x:5",
    "--flood x:y",
    "--flood x:0.01",
    "--flood a:1 --flood b:1 --flood c:1 --flood d:1 --flood e:1",
    "--json",
];

/// Each numeric option without a value, then with each value after [`BASE`] and a `--flood`.
const VALUES: &[(&str, &[&str])] = &[
    ("--clients", &["0", "65537", "x", "1"]),
    ("--rate", &["0", "4097", "nan", "1e3"]),
    ("--jitter", &["-1", "2", "1"]),
    ("--sync-rate", &["0.001", "5000", "3"]),
    ("--announce-rate", &["0", "2000", "1"]),
    ("--foreign", &["1.5", "0.5"]),
    ("--domain", &["256", "-1", "7"]),
    ("--duration", &["0.01", "4000", "1"]),
    ("--drain-ms", &["10001", "0"]),
    ("--max-frames", &["0", "10000000001", "5"]),
    ("--batch", &["0", "1025", "1"]),
    ("--ring-mib", &["0", "1025", "1024"]),
    ("--tap-every", &["0", "3", "256", "128"]),
    ("--seed", &["-1", "18446744073709551615"]),
    ("--gap-ms", &["0", "60001", "60000"]),
    ("--flood-at", &["-61", "3601", "-60"]),
    ("--flood-for", &["-1", "3601", "0"]),
    ("--flood-identities", &["-1", "4294967295"]),
];

fn arg_cases() -> Vec<Vec<String>> {
    let mut v = vec![words(BASE), words(RICH)];
    v.extend(CASES.iter().map(|c| words(c)));
    for (flag, vals) in VALUES {
        v.push(argv(&[flag]));
        for val in *vals {
            let mut a = words(BASE);
            a.extend(argv(&["--flood", "f:1", flag, val]));
            v.push(a);
        }
    }
    v
}

/// Deterministic counts for the fixtures (a linear congruential generator).
struct Gen(u64);

impl Gen {
    fn n(&mut self, m: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % m
    }

    fn flow(&mut self, fanout: u64, rich: bool) -> Flow {
        let mut f = Flow::new(fanout);
        if !rich {
            return f;
        }
        f.sent = 1000 + self.n(100);
        f.received = f.sent * fanout - self.n(10);
        f.duplicate = self.n(3);
        f.unmatched = self.n(3);
        f.wrong_port = self.n(2);
        for _ in 0..50 {
            f.latency.record(1000 + self.n(200_000));
        }
        f
    }

    fn port(&mut self, i: usize, name: String, rich: bool) -> PortCounts {
        PortCounts {
            name,
            tx: self.n(1000),
            tx_errors: if rich { self.n(3) } else { 0 },
            rx: self.n(1000),
            taps: self.n(100),
            ring_drops: if rich { self.n(2) } else { 0 },
            delay_resp_group: 10 + self.n(5),
            delay_req_flooded: self.n(4),
            other: self.n(4),
            flood_rx: self.n(40),
            flood_delay_resp: self.n(40),
            first_rx_ns: 1_700_000_000_000_000_000 + self.n(1000),
            last_rx_ns: 1_700_000_002_000_000_000 + self.n(1000),
            max_gap_ns: self.n(300_000_000),
            gaps: if rich && i != 2 {
                vec![
                    (1_700_000_000_100_000_000, 1_700_000_000_350_000_000),
                    (5, 123_456_789),
                ]
            } else {
                Vec::new()
            },
        }
    }

    fn flood(&mut self, kinds: usize) -> FloodReport {
        FloodReport {
            sent: self.n(100000),
            tx_errors: self.n(5),
            by_kind: (0..kinds).map(|_| self.n(1000)).collect(),
            elapsed_s: self.n(3000) as f64 / 1000.0,
            delay_req_at_master: self.n(50),
            identities_at_master: self.n(7),
            answered: self.n(50),
        }
    }

    fn foreign(&mut self) -> Foreign {
        Foreign {
            sent: self.n(100),
            leaked: self.n(3),
        }
    }
}

/// A report of every kind of content (`rich`: floods, gaps, limits) or a bare one.
fn fixture(rich: bool) -> Report {
    let argv = words(if rich {
        RICH
    } else {
        "--upstream up0 --downstream dn1 --clients 3"
    });
    let opts = crate::args::parse(&argv).ok().unwrap().opts;
    let mut g = Gen(7);
    let [delay_req, delay_resp, sync, follow_up, announce] =
        [1, 1, 4, 4, 4].map(|fanout| g.flow(fanout, rich));
    let clients = (0..opts.clients)
        .map(|_| ClientCounts {
            delay_req_sent: g.n(100),
            delay_resp_own: g.n(100),
            own_group: g.n(5),
            unicast_for_others: g.n(7),
        })
        .collect();
    let ifaces = std::iter::once(&opts.upstream).chain(&opts.downstream);
    let ports = ifaces
        .enumerate()
        .map(|(i, f)| g.port(i, f.to_string(), rich))
        .collect();
    let flood = opts
        .flood
        .iter()
        .map(|f| g.flood(f.msg.kinds().len()))
        .collect();
    let (foreign_req, foreign_resp) = (g.foreign(), g.foreign());
    let pick = |v: f64| if rich { v } else { 0.0 };
    Report {
        opts,
        delay_req,
        delay_resp,
        sync,
        follow_up,
        announce,
        foreign_req,
        foreign_resp,
        clients,
        ports,
        elapsed_s: pick(2.4871),
        cpu_s: pick(2.41),
        late_sends: if rich { 200 } else { 0 },
        max_lag_ns: if rich { 3_456_789 } else { 0 },
        stopped_by_max_frames: rich,
        negative: if rich { 3 } else { 0 },
        flood,
        master: crate::results::MasterReport {
            capacity: pick(4000.0),
            delay_req_seen: g.n(10000),
            refused: g.n(100),
            per_10ms_max: g.n(600),
            per_10ms_p99: g.n(60),
        },
    }
}

fn args_text() -> String {
    let mut out = String::new();
    for a in arg_cases() {
        let r = match crate::args::parse(&a) {
            Ok(x) => format!("Ok {:?} json={:?} quiet={}", x.opts, x.json, x.quiet),
            Err(e) => format!("Err {e:?}"),
        };
        out.push_str(&format!("{a:?}\n  {r}\n"));
    }
    out
}

/// Compare `actual` with `testdata/name`, or rewrite the file with `PTPLOAD_BLESS=1`.
fn check(name: &str, actual: &str) {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("PTPLOAD_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(e, a, "{path}: line {} differs", n + 1);
    }
    assert_eq!(expected, actual, "{path}: differs (length)");
}

#[test]
fn golden_args() {
    check("args.txt", &args_text());
}

#[test]
fn golden_report() {
    for (name, rich) in [("rich", true), ("plain", false)] {
        let r = fixture(rich);
        check(&format!("report_{name}.txt"), &crate::report::table(&r));
        check(&format!("report_{name}.json"), &crate::report::json(&r));
    }
}
