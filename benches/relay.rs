//! Cost per frame of the core (`Proxy::handle_frame`) for the frame mix of tests/bench.sh's
//! scenario (a): 1000 clients on two downstream ports, each sending 16 Delay_Req/s and getting a
//! Delay_Resp for each, a grandmaster's Sync + Follow_Up 16/s and Announce 1/s, plus 1 % foreign
//! Delay_Req (upstream side) and Delay_Resp (unknown clients) that are dropped. L2, steer mode.
//! Time advances as it would at that rate, so rate limits and aging act as in the daemon.
//! The Sync is two-step. A third variant runs with `"correction": "residence"` and also carries
//! out each frame's correction per egress port (`Proxy::handle_egress` on a copy), as the
//! daemon's sender does.
//!
//!   cargo bench --bench relay [-- --runs N --frames N]   several runs, median ns/frame, frames/s
//!   <bench binary> --callgrind N    learn the clients, then N frames, nothing else: run under
//!                                   `valgrind --tool=callgrind` for two N and take the difference
//!                                   (tests/bench.sh --callgrind does) for instructions per frame
//!   (no arguments, as `cargo test --all-targets` runs it) a quick sanity pass
//!
//! std only, no criterion: `cargo test --all-targets` builds it in seconds.

use std::hint::black_box;
use std::time::Instant as Wall;

use ptpproxy::board;
use ptpproxy::config::Config;
use ptpproxy::port::PortId;
use ptpproxy::proxy::{Action, Proxy};
use ptpproxy::time::{Instant, Timestamp};
use ptpproxy::wire::ptp::FLAG_TWO_STEP;
use ptpproxy::wire::{EthernetAddress, MessageRepr, MessageType, PortIdentity, PtpFrameRepr};

const CLIENTS: u32 = 1000;
const RATE: u32 = 16;
const DOWNSTREAM: u8 = 2;
/// Foreign Delay_Req and foreign Delay_Resp, each per 100 Delay_Req.
const FOREIGN_PER_100: u32 = 1;

fn mac(kind: u8, n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x70, kind, b[1], b[2], b[3]]
}

fn identity(kind: u8, n: u32) -> [u8; 10] {
    let m = mac(kind, n);
    [m[0], m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5], 0, 1]
}

/// An L2 PTPv2 message (the layout ptpload sends): the body zero but for the requesting
/// identity, controlField and logMessageInterval zero, twoStepFlag on Sync alone, padded to the
/// Ethernet minimum.
fn l2(kind: u8, src: [u8; 6], id: [u8; 10], seq: u16, requesting: Option<[u8; 10]>) -> Vec<u8> {
    let len: usize = match kind {
        0xB => 64,
        0x9 => 54,
        _ => 44,
    };
    let id = PortIdentity::from_bytes(&id);
    let requesting = requesting.map(|r| PortIdentity::from_bytes(&r));
    let mut m = MessageRepr::bare(MessageType::from_nibble(kind), id, seq, requesting, len);
    if kind == 0x0 {
        m.header.flags = FLAG_TWO_STEP;
    }
    let frame = PtpFrameRepr::l2(m)
        .with_dst(EthernetAddress::PTP_PRIMARY)
        .with_src(EthernetAddress(src))
        .padded_to_minimum();
    let mut f = vec![0u8; frame.buffer_len()];
    frame.emit(&mut f);
    f
}

/// One second of scenario (a), in arrival order: (ingress port, frame).
fn one_second() -> Vec<(PortId, Vec<u8>)> {
    let gm_mac = mac(b'm', 1);
    let gm = identity(b'm', 1);
    let mut out = Vec::new();
    let mut foreign = 0u32;
    for k in 0..RATE {
        let seq = k as u16;
        out.push((PortId(0), l2(0x0, gm_mac, gm, seq, None)));
        out.push((PortId(0), l2(0x8, gm_mac, gm, seq, None)));
        if k == 0 {
            out.push((PortId(0), l2(0xB, gm_mac, gm, 0, None)));
        }
        for c in 0..CLIENTS {
            let port = PortId(1 + (c % u32::from(DOWNSTREAM)) as u8);
            let id = identity(b'l', c);
            out.push((port, l2(0x1, mac(b'l', c), id, seq, None)));
            out.push((PortId(0), l2(0x9, gm_mac, gm, seq, Some(id))));
            if (k * CLIENTS + c) % (100 / FOREIGN_PER_100) == 0 {
                let f = identity(b'f', foreign % 64);
                out.push((PortId(0), l2(0x1, mac(b'f', foreign % 64), f, seq, None)));
                out.push((PortId(0), l2(0x9, gm_mac, gm, seq, Some(f))));
                foreign += 1;
            }
        }
    }
    out
}

struct Bench {
    proxy: Proxy,
    mix: Vec<(PortId, Vec<u8>)>,
    scratch: Vec<u8>,
    /// With residence correction: the transmit copy each egress port's correction is written to.
    tx: Option<Vec<u8>>,
    /// Simulated time per frame, ns.
    step: u64,
    now: u64,
    at: usize,
    forwarded: u64,
    dropped: u64,
}

impl Bench {
    fn new(residence: bool) -> Bench {
        let json = format!(
            r#"{{"upstream":"up","downstream":["dn1","dn2"],"delay_resp":"steer","max_delay_req_rate":1024,"correction":"{}"}}"#,
            if residence { "residence" } else { "none" }
        );
        let config = Config::parse(json.as_bytes()).expect("bench config");
        let mix = one_second();
        let now = 1_000_000_000;
        Bench {
            proxy: Proxy::new(&config, Instant(now), 0x5eed),
            step: 1_000_000_000 / mix.len() as u64,
            mix,
            scratch: vec![0u8; board::SNAPLEN],
            tx: residence.then(|| vec![0u8; board::SNAPLEN]),
            now,
            at: 0,
            forwarded: 0,
            dropped: 0,
        }
    }

    /// Feed `n` frames; with `timeouts`, call handle_timeout every RX_BATCH frames as the
    /// daemon's loop does after each drain.
    fn feed(&mut self, n: usize, timeouts: bool) {
        for i in 0..n {
            let (port, frame) = &self.mix[self.at];
            self.at += 1;
            if self.at == self.mix.len() {
                self.at = 0;
            }
            self.now += self.step;
            match self.proxy.handle_frame(
                Instant(self.now),
                *port,
                frame,
                Timestamp(self.now as i64),
                &mut self.scratch,
            ) {
                Action::Forward { to, frame, timing } => {
                    if let Some(tx) = &mut self.tx {
                        for p in to.iter() {
                            let copy = &mut tx[..frame.len()];
                            copy.copy_from_slice(frame);
                            let egress = Timestamp(self.now as i64 + 20_000);
                            self.proxy.handle_egress(&timing, p, egress, copy);
                        }
                    }
                    black_box((to, frame, timing));
                    self.forwarded += 1;
                }
                Action::Drop(r) => {
                    black_box(r);
                    self.dropped += 1;
                }
                Action::Held => {}
            }
            if timeouts && i % board::RX_BATCH == 0 {
                self.proxy.handle_timeout(Instant(self.now));
            }
        }
    }
}

/// Learn every client first: steady state, as in the daemon after the first second; check that
/// only the foreign frames are dropped.
fn learn(b: &mut Bench) {
    let mix_len = b.mix.len();
    b.feed(mix_len, true);
    let (f0, d0) = (b.forwarded, b.dropped);
    b.feed(mix_len, true);
    let (fwd, drop) = (b.forwarded - f0, b.dropped - d0);
    let foreign = 2 * (RATE * CLIENTS * FOREIGN_PER_100 / 100) as u64;
    assert_eq!(drop, foreign, "only the foreign frames are dropped");
    assert_eq!(fwd + drop, mix_len as u64);
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    if let Some(n) = arg("--callgrind") {
        let mut b = Bench::new(args.iter().any(|a| a == "--residence"));
        let warm = b.mix.len();
        b.feed(warm, true);
        b.feed(n, true);
        black_box(b.forwarded);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let runs = arg("--runs").unwrap_or(if full { 9 } else { 1 });
    let frames = arg("--frames").unwrap_or(if full { 2_000_000 } else { 20_000 });

    let mut b = Bench::new(false);
    let mix_len = b.mix.len();
    learn(&mut b);
    let mut r = Bench::new(true);
    learn(&mut r);

    println!(
        "relay::handle_frame, scenario (a) mix: {} frames/s of traffic ({} clients x {} Delay_Req/s + Delay_Resp, two-step Sync/Follow_Up {}/s, Announce 1/s, {}% foreign), {} runs x {} frames",
        mix_len, CLIENTS, RATE, RATE, FOREIGN_PER_100, runs, frames
    );
    for (label, residence, timeouts) in [
        ("handle_frame", false, false),
        ("handle_frame + handle_timeout per 64", false, true),
        ("same, residence + handle_egress per port", true, true),
    ] {
        let bench = if residence { &mut r } else { &mut b };
        let mut ns = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Wall::now();
            bench.feed(frames, timeouts);
            ns.push(t.elapsed().as_nanos() as f64 / frames as f64);
        }
        let (lo, hi) = (
            ns.iter().cloned().fold(f64::MAX, f64::min),
            ns.iter().cloned().fold(0.0, f64::max),
        );
        let med = median(&mut ns);
        println!(
            "  {label:<40} median {med:7.1} ns/frame ({:>10.0} frames/s), min {lo:.1}, max {hi:.1}",
            1e9 / med
        );
    }
    let c = r.proxy.correction_stats();
    println!(
        "  residence: follow_up {} delay_resp {} unmatched {}/{} evicted {}",
        c.follow_up, c.delay_resp, c.follow_up_unmatched, c.delay_resp_unmatched, c.evicted
    );
    println!(
        "  clients in the table: {}, forwarded {} dropped {}",
        b.proxy.clients().len(),
        b.forwarded,
        b.dropped
    );
}
