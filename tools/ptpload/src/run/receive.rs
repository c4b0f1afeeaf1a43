//! The receivers: every port's ring drained into the meter, and the emulated master's answer to
//! each Delay_Req it found there.
//!
//! Reading is bounded per ring and iteration ([`BUDGET`]) so that sending never starves. It
//! never decides what a frame means (the meter does) nor when scheduled frames go (the
//! scheduler does): the Delay_Resp it sends are replies, due as soon as their Delay_Req is read.

use ptpproxy::wire::MessageType;

use super::flood_tx::FloodState;
use super::meter::Meter;
use super::{Port, BUDGET};
use crate::flood::Flood;
use crate::frames::{self, Builder, Msg, Who};
use crate::net;

/// Drain every ring into the meter; returns the frames read. Taps come first within each ring;
/// an arrival may precede its tap across rings, which the meter handles in both orders.
pub(super) fn drain(ports: &mut [Port], m: &mut Meter) -> usize {
    let mut work = 0;
    for (i, p) in ports.iter_mut().enumerate() {
        work += p.rx.drain(BUDGET, |f| {
            let Some(s) = frames::parse(f.data) else {
                m.ports[i].other += 1;
                return;
            };
            if f.outgoing {
                m.on_tap(i, &s, f.ts_ns);
            } else {
                m.on_arrival(i, &s, f.ts_ns);
            }
        });
    }
    work
}

/// The master's Delay_Resp to every Delay_Req the meter queued for an answer, sent at once.
/// It carries the Delay_Req's arrival stamp (the time now if the kernel gave none).
pub(super) fn answer(
    ports: &mut [Port],
    m: &mut Meter,
    flood: &mut [FloodState],
    b: &Builder,
    delay_log: i8,
) {
    if m.answer.is_empty() {
        return;
    }
    let wall = net::clock_ns(libc::CLOCK_REALTIME);
    // Taken out and put back so its capacity is reused while the meter is borrowed.
    let answers = std::mem::take(&mut m.answer);
    let up = &mut ports[0];
    for &(id, seq, rx_ts) in &answers {
        // A grandmaster of bounded capacity leaves the rest unanswered.
        if !m.master_load.admit(if rx_ts != 0 { rx_ts } else { wall }) {
            continue;
        }
        m.delay_resp_sent(&id, seq);
        if let Who::Flood(n) = Who::of(&id) {
            if let Some(fs) = flood.get_mut(Flood::source_of(n)) {
                fs.report.answered += 1;
            }
        }
        let msg = Msg {
            kind: MessageType::DelayResp,
            from: Who::Master,
            dst: None,
            seq,
            timestamp_ns: if rx_ts != 0 { rx_ts } else { wall },
            requesting: Some(id),
            log_interval: delay_log,
        };
        up.queue(&mut m.ports[0], b, &msg);
    }
    m.answer = answers;
    m.answer.clear();
    up.flush(&mut m.ports[0]);
}
