#!/usr/bin/env python3
"""Timing fidelity of a PTP forwarder, from nanosecond captures (tests/timing.sh).

  timing.py analyze --dir RUN/MODE --mode MODE --transport T [--clients c11,c12,c21,c22]
                    [--identity-gm 020000.fffe.000001] [--load-pcap F ...] [--ptpload-json F]
                    [--since-ns N] --out RUN/MODE/result.json
  timing.py report RESULT.json... [--json FILE]
  timing.py check RESULT.json... --bounds JSON

analyze: reads DIR/{gm,cNM}.pcap (pcap or nanosecond pcap, Ethernet; L2, UDPv4 or UDPv6 PTP,
untagged or one 802.1Q tag, parsed here), DIR/cNM.log (ptp4l, debug level) and the files given.
Every capture shares CLOCK_REALTIME with the grandmaster's and the clients' software time stamps:

  Sync path delay      t2 - t1 - (correction(Sync) + correction(Follow_Up))   per Sync at a client
                       t2: capture time of the Sync on the client's interface; t1: the Follow_Up's
                       preciseOriginTimestamp (two-step), or the Sync's originTimestamp (one-step)
  Delay_Req path delay t4 - t3 - correction(Delay_Resp)      per Delay_Req of a client answered
                       t3: capture time of the client's Delay_Req on its interface; t4: receiveTimestamp
                       of the Delay_Resp with its requestingPortIdentity and sequenceId
  offset error         (mean Sync delay - mean Delay_Req delay) / 2: what an asymmetric forwarder
                       makes a client believe its clock is off (also from medians: robust to outliers)

correctionField is a signed 64-bit count of 2^-16 ns: each delay is computed exactly in those units
from integer time stamps (ns since the epoch do not fit a float) and only the result becomes a float.
Per forwarder, against the grandmaster's capture of the same frames:
  added correction     what the forwarder added: Sync + Follow_Up corrections at the client minus at
                       the grandmaster; Delay_Resp correction at the client minus the Delay_Req's as
                       the client sent it (a transparent clock may add a Delay_Req's residence to the
                       Delay_Req itself, and the grandmaster copies it into the Delay_Resp)
  transit              capture on the grandmaster's interface to capture on the client's (Sync), or
                       the reverse (Delay_Req): the forwarder held the frame for less than that, so an
                       added correction above the transit is wrong (over-correction)
tshark (-o udp.check_checksum:TRUE -o ip.check_checksum:TRUE) judges every frame captured: bad IP or
UDP checksums (UDPv6 zero included), malformed packets, expert errors.

report: one table, a row per mode: Sync and Delay_Req delay mean/std (and p50/p99), offset error,
std ratios against the bridge of the same run; ptp4l's own view (mean "master offset", path delay).
check: PASS/FAIL lines for tests/timing.sh --check (bounds explained there).
Standard library only (and the tshark program).
"""

import argparse
import json
import math
import re
import struct
import subprocess
import sys
from pathlib import Path

SYNC, DELAY_REQ, FOLLOW_UP, DELAY_RESP, ANNOUNCE = 0x0, 0x1, 0x8, 0x9, 0xB
NAMES = {SYNC: "sync", DELAY_REQ: "delay_req", FOLLOW_UP: "follow_up", DELAY_RESP: "delay_resp",
         ANNOUNCE: "announce"}
SCALE = 1 << 16  # correctionField units per ns


# ---------------------------------------------------------------- pcap and PTP parsing

def read_pcap(path):
    """Yield (ts_ns, frame bytes) from a pcap file (µs or ns resolution, either byte order)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    table = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
             b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
    if magic not in table:
        raise ValueError(f"{path}: not a pcap file")
    endian, mult = table[magic]
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    rec = struct.Struct(endian + "IIII")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        yield sec * 1_000_000_000 + frac * mult, data[off:off + incl]
        off += incl


def ptp_offset(frame):
    """(transport, offset of the PTP header) or None."""
    if len(frame) < 14:
        return None
    etype = int.from_bytes(frame[12:14], "big")
    off = 14
    if etype == 0x8100 and len(frame) >= 18:
        etype = int.from_bytes(frame[16:18], "big")
        off = 18
    if etype == 0x88F7:
        return "l2", off
    if etype == 0x0800 and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17:
            return None
        udp = off + ihl
        if len(frame) < udp + 8 or int.from_bytes(frame[udp + 2:udp + 4], "big") not in (319, 320):
            return None
        return "udp4", udp + 8
    if etype == 0x86DD and len(frame) >= off + 48:
        if frame[off + 6] != 17:
            return None
        udp = off + 40
        if int.from_bytes(frame[udp + 2:udp + 4], "big") not in (319, 320):
            return None
        return "udp6", udp + 8
    return None


def port_identity(b):
    cid = b[:8].hex()
    return f"{cid[:6]}.{cid[6:10]}.{cid[10:]}-{int.from_bytes(b[8:10], 'big')}"


def ts80(b):
    """PTP Timestamp (48-bit seconds, 32-bit ns) -> integer ns"""
    return int.from_bytes(b[:6], "big") * 1_000_000_000 + int.from_bytes(b[6:10], "big")


def parse(frame):
    """A PTP message as a dict, or None."""
    where = ptp_offset(frame)
    if where is None:
        return None
    transport, p = where
    if len(frame) < p + 44:
        return None
    h = frame[p:]
    msg = {
        "transport": transport,
        "src": frame[6:12].hex(":"),
        "type": h[0] & 0x0F,
        "domain": h[4],
        "two_step": bool(h[6] & 0x02),
        "corr": struct.unpack(">q", h[8:16])[0],
        "source": port_identity(h[20:30]),
        "seq": int.from_bytes(h[30:32], "big"),
        "ts": ts80(h[34:44]),
    }
    if msg["type"] == DELAY_RESP and len(h) >= 54:
        msg["req"] = port_identity(h[44:54])
    return msg


def load(path, domain=0):
    """[(capture ns, msg)] of one capture, PTP of this domain only."""
    out = []
    if not Path(path).exists():
        return out
    for ts, frame in read_pcap(path):
        m = parse(frame)
        if m is not None and m["domain"] == domain:
            out.append((ts, m))
    return out


# ---------------------------------------------------------------- statistics

def stats(values):
    """values: floats (ns). n, mean, std (population), min, p50, p99, max."""
    n = len(values)
    if n == 0:
        return {"n": 0}
    s = sorted(values)
    mean = math.fsum(s) / n
    var = math.fsum((v - mean) ** 2 for v in s) / n

    def pct(q):
        return s[min(n - 1, max(0, math.ceil(q * n) - 1))]
    return {"n": n, "mean": mean, "std": math.sqrt(var), "min": s[0], "p50": pct(0.5),
            "p99": pct(0.99), "max": s[-1]}


def scaled_to_ns(v):
    """2^-16 ns integer -> float ns (only differences, small numbers, get here)"""
    return v / SCALE


def identity_of_mac(mac):
    b = bytes.fromhex(mac.replace(":", ""))
    cid = (b[:3] + b"\xff\xfe" + b[3:]).hex()
    return f"{cid[:6]}.{cid[6:10]}.{cid[10:]}-1"


def client_mac(node):
    return f"02:00:00:00:0{node[1]}:0{node[2]}"


# ---------------------------------------------------------------- analysis of one mode

def gm_index(gm_msgs, gm_id):
    """From the grandmaster's capture: Sync/Follow_Up by seq and Delay_Req/Delay_Resp by (req, seq)."""
    idx = {"sync": {}, "fup": {}, "dreq": {}, "dresp": {}}
    for ts, m in gm_msgs:
        if m["type"] == SYNC and m["source"] == gm_id:
            idx["sync"].setdefault(m["seq"], (ts, m))
        elif m["type"] == FOLLOW_UP and m["source"] == gm_id:
            idx["fup"].setdefault(m["seq"], (ts, m))
        elif m["type"] == DELAY_REQ:
            idx["dreq"].setdefault((m["source"], m["seq"]), (ts, m))
        elif m["type"] == DELAY_RESP and m.get("req"):
            idx["dresp"].setdefault((m["req"], m["seq"]), (ts, m))
    return idx


def analyze_client(msgs, own, gm_id, gm, since_ns):
    """Per-message delays and correction diagnostics for one client's capture."""
    syncs, fups, dreqs, dresps = {}, {}, {}, {}
    for ts, m in msgs:
        t = m["type"]
        if t == SYNC and m["source"] == gm_id:
            syncs.setdefault(m["seq"], (ts, m))
        elif t == FOLLOW_UP and m["source"] == gm_id:
            fups.setdefault(m["seq"], (ts, m))
        elif t == DELAY_REQ and m["source"] == own:
            dreqs.setdefault(m["seq"], (ts, m))
        elif t == DELAY_RESP and m.get("req") == own and m["source"] == gm_id:
            dresps.setdefault(m["seq"], (ts, m))
    r = {"sync_delay": [], "dreq_delay": [], "sync_added": [], "dreq_added": [],
         "sync_transit": [], "dreq_transit": [], "sync_over": 0, "dreq_over": 0,
         "sync_under": 0, "sync_changed": 0, "counts": {"sync": len(syncs), "follow_up": len(fups),
                                       "delay_req": len(dreqs), "delay_resp": len(dresps)}}
    # Sync path
    for seq, (t2, s) in syncs.items():
        if t2 < since_ns:
            continue
        if s["two_step"]:
            if seq not in fups:
                continue
            f = fups[seq][1]
            t1, corr = f["ts"], s["corr"] + f["corr"]
        else:
            f = None
            t1, corr = s["ts"], s["corr"]
        r["sync_delay"].append(scaled_to_ns((t2 - t1) * SCALE - corr))
        g_s, g_f = gm["sync"].get(seq), gm["fup"].get(seq)
        if g_s is not None and (f is None or g_f is not None):
            gm_corr = g_s[1]["corr"] + (g_f[1]["corr"] if f is not None else 0)
            added = corr - gm_corr
            transit = t2 - g_s[0]
            r["sync_added"].append(scaled_to_ns(added))
            r["sync_transit"].append(float(transit))
            if added > transit * SCALE:
                r["sync_over"] += 1
            if transit * SCALE - added > UNDER_CORRECTED_NS * SCALE:
                r["sync_under"] += 1
            if s["corr"] != g_s[1]["corr"] and s["two_step"]:
                r["sync_changed"] += 1  # a two-step Sync's correction is the Follow_Up's business
    # Delay_Req path
    for seq, (t3, q) in dreqs.items():
        if t3 < since_ns or seq not in dresps:
            continue
        d = dresps[seq][1]
        r["dreq_delay"].append(scaled_to_ns((d["ts"] - t3) * SCALE - d["corr"]))
        added = d["corr"] - q["corr"]
        r["dreq_added"].append(scaled_to_ns(added))
        g_q = gm["dreq"].get((own, seq))
        if g_q is not None:
            transit = g_q[0] - t3
            r["dreq_transit"].append(float(transit))
            if added > transit * SCALE:
                r["dreq_over"] += 1
    return r


# A Sync whose correction falls short of its measured transit by more than this was held after the
# relay measured it (an egress qdisc) without the Follow_Up learning so: the transit of a relay
# that corrects exactly exceeds its correction only by the wire and the capture (~20 µs here).
UNDER_CORRECTED_NS = 100_000

LOG_DELAY = re.compile(r"delay\s+filtered\s+(-?\d+)\s+raw\s+(-?\d+)")
LOG_OFFSET = re.compile(r"master offset\s+(-?\d+)\s+s\d+\s+freq\s+\S+\s+path delay\s+(-?\d+)")
LOG_TIME = re.compile(r"^ptp4l\[(\d+\.\d+)\]")


def read_ptp4l_log(path):
    """ptp4l client log: states, path delays ("delay filtered N raw M"), "master offset" lines."""
    out = {"rs_slave": False, "slave": False, "faulty": 0, "delay_raw": [], "delay_filtered": [],
           "offset": [], "offset_delay": []}
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text(errors="replace").splitlines():
        if "on RS_SLAVE" in line:
            out["rs_slave"] = True
        if "to SLAVE" in line:
            out["slave"] = True
        if "to FAULTY" in line:
            out["faulty"] += 1
        m = LOG_DELAY.search(line)
        if m:
            out["delay_filtered"].append(float(m.group(1)))
            out["delay_raw"].append(float(m.group(2)))
            continue
        m = LOG_OFFSET.search(line)
        if m:
            out["offset"].append(float(m.group(1)))
            out["offset_delay"].append(float(m.group(2)))
    return out


def tshark_validate(path):
    """Every frame of a capture through tshark with checksum validation: counts of bad frames."""
    res = {"file": Path(path).name, "frames": 0, "ptp": 0, "udp": 0, "udp_good": 0, "udp_none": 0,
           "bad_udp": 0, "bad_ip": 0, "malformed": 0, "expert_error": 0, "examples": []}
    if not Path(path).exists():
        res["error"] = "missing"
        return res
    cmd = ["tshark", "-r", str(path), "-n", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,",
           "-e", "frame.number", "-e", "ptp.v2.messagetype", "-e", "udp.checksum.status",
           "-e", "ip.checksum.status", "-e", "_ws.malformed", "-e", "_ws.expert.severity",
           "-e", "udp.checksum.zero", "-e", "eth.src", "-e", "ptp.v2.sequenceid"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        res["error"] = str(e)
        return res
    if proc.returncode != 0:
        res["error"] = proc.stderr.strip().splitlines()[-1:] or f"exit {proc.returncode}"
    error_sev = str(0x00800000)
    for line in proc.stdout.splitlines():
        c = (line.split("\t") + [""] * 9)[:9]
        num, mtype, udp_st, ip_st, malformed, sev, zero, src, seq = c
        res["frames"] += 1
        bad = []
        if mtype:
            res["ptp"] += 1
        if udp_st:
            res["udp"] += 1
            if "0" in udp_st.split(","):
                res["bad_udp"] += 1
                bad.append("udp checksum")
            elif "1" in udp_st.split(","):
                res["udp_good"] += 1
            else:
                res["udp_none"] += 1
        if zero:
            res["bad_udp"] += 1
            bad.append("udp checksum zero over IPv6")
        if ip_st and "0" in ip_st.split(","):
            res["bad_ip"] += 1
            bad.append("ip checksum")
        if malformed:
            res["malformed"] += 1
            bad.append("malformed")
        if error_sev in sev.split(","):
            res["expert_error"] += 1
            if not bad:
                bad.append("expert error")
        if bad and len(res["examples"]) < 5:
            res["examples"].append(f"frame {num} from {src} type {mtype} seq {seq}: {', '.join(bad)}")
    return res



def summary(sync_delay, dreq_delay, r):
    """Delays, corrections and offset errors of one client's samples (or all clients'): `r` holds
    the lists sync_added, dreq_added, sync_transit, dreq_transit and the counts sync_over,
    dreq_over, sync_changed."""
    out = {
        "sync": stats(sync_delay),
        "delay_req": stats(dreq_delay),
        "sync_added": stats(r["sync_added"]),
        "delay_resp_added": stats(r["dreq_added"]),
        "sync_added_nonzero": sum(1 for v in r["sync_added"] if v != 0),
        "delay_resp_added_nonzero": sum(1 for v in r["dreq_added"] if v != 0),
        "sync_transit": stats(r["sync_transit"]),
        "delay_req_transit": stats(r["dreq_transit"]),
        "sync_over_corrected": r["sync_over"],
        "delay_resp_over_corrected": r["dreq_over"],
        "sync_under_corrected": r["sync_under"],
        "sync_correction_changed": r["sync_changed"],
    }
    out["offset_error_mean"] = offset_error(out["sync"], out["delay_req"], "mean")
    out["offset_error_p50"] = offset_error(out["sync"], out["delay_req"], "p50")
    return out

def analyze(args):
    d = Path(args.dir)
    clients = args.clients.split(",")
    gm_msgs = load(d / "gm.pcap")
    gm_id = args.identity_gm
    if not gm_id:  # the source of most Syncs in the grandmaster's capture
        srcs = {}
        for _ts, m in gm_msgs:
            if m["type"] == SYNC:
                srcs[m["source"]] = srcs.get(m["source"], 0) + 1
        gm_id = max(srcs, key=srcs.get) if srcs else ""
    gm = gm_index(gm_msgs, gm_id)
    result = {"mode": args.mode, "transport": args.transport, "gm": gm_id, "clients": {},
              "gm_counts": {k: len(v) for k, v in gm.items()}}
    all_sync, all_dreq = [], []
    agg = {"sync_added": [], "dreq_added": [], "sync_transit": [], "dreq_transit": [],
           "sync_over": 0, "dreq_over": 0, "sync_under": 0, "sync_changed": 0}
    transports = {}
    for c in clients:
        msgs = load(d / f"{c}.pcap")
        for _ts, m in msgs:
            transports[m["transport"]] = transports.get(m["transport"], 0) + 1
        own = identity_of_mac(client_mac(c))
        r = analyze_client(msgs, own, gm_id, gm, args.since_ns)
        log = read_ptp4l_log(d / f"{c}.log")
        cr = {
            "identity": own,
            "counts": r["counts"],
            **summary(r["sync_delay"], r["dreq_delay"], r),
            "ptp4l": {"rs_slave": log["rs_slave"], "slave": log["slave"], "faulty": log["faulty"],
                      "path_delay_reports": len(log["delay_raw"]),
                      "path_delay_raw": stats(log["delay_raw"]),
                      "path_delay_filtered": stats(log["delay_filtered"]),
                      "master_offset": stats(log["offset"])},
        }
        result["clients"][c] = cr
        all_sync += r["sync_delay"]
        all_dreq += r["dreq_delay"]
        for k in ("sync_added", "dreq_added", "sync_transit", "dreq_transit"):
            agg[k] += r[k]
        for k in ("sync_over", "dreq_over", "sync_under", "sync_changed"):
            agg[k] += r[k]
    ov = {**summary(all_sync, all_dreq, agg), "transports_seen": transports}
    sent = sum(result["clients"][c]["counts"]["delay_req"] for c in clients)
    ov["delay_req_sent"] = sent
    ov["delay_req_answered"] = ov["delay_req"]["n"]
    ov["ptp4l_faults"] = sum(result["clients"][c]["ptp4l"]["faulty"] for c in clients)
    offs = [result["clients"][c]["ptp4l"]["master_offset"] for c in clients]
    pds = [result["clients"][c]["ptp4l"]["path_delay_raw"] for c in clients]
    ov["ptp4l_master_offset_mean"] = weighted_mean(offs)
    ov["ptp4l_path_delay_mean"] = weighted_mean(pds)
    tc_log = d / "tc.log"
    if tc_log.exists():  # linuxptp's transparent clock: did it keep up?
        text = tc_log.read_text(errors="replace")
        ov["tc_faulty"] = text.count("to FAULTY")
        ov["tc_tx_timestamp_timeouts"] = text.count("timed out while polling for tx timestamp")
        ov["tc_forward_failures"] = len(re.findall(r"failed to (?:forward|fetch)", text))
    result["overall"] = ov
    # checksums and malformed frames: every frame captured where the forwarder delivers
    validate = [d / f"{c}.pcap" for c in clients] + [Path(p) for p in args.load_pcap]
    result["tshark"] = [tshark_validate(p) for p in validate] if args.tshark else []
    if args.ptpload_json and Path(args.ptpload_json).exists():
        try:
            result["ptpload"] = summarize_ptpload(json.loads(Path(args.ptpload_json).read_text()))
        except (ValueError, KeyError, TypeError) as e:
            result["ptpload"] = {"error": str(e)}
    if args.status and Path(args.status).exists():
        try:
            result["ptpproxy_status"] = json.loads(Path(args.status).read_text())
        except ValueError:
            pass
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(summary_line(result))
    return 0


def summarize_ptpload(j):
    """The parts of ptpload's JSON report worth keeping: totals per direction, flows, generator."""
    keep = ("elapsed_s", "offered_delay_req_per_s", "total_sent", "up", "down", "flows", "generator")
    return {k: j[k] for k in keep if k in j}


def offset_error(s, q, key):
    if s.get("n", 0) == 0 or q.get("n", 0) == 0:
        return None
    return (s[key] - q[key]) / 2


def weighted_mean(sts):
    n = sum(s.get("n", 0) for s in sts)
    if n == 0:
        return None
    return sum(s["mean"] * s["n"] for s in sts if s.get("n", 0)) / n


def answered(o):
    sent = o.get("delay_req_sent", 0)
    return "-" if not sent else f"{100 * o.get('delay_req_answered', 0) / sent:.0f}"


def fmt_us(v, digits=2):
    return "-" if v is None else f"{v / 1000:.{digits}f}"


def summary_line(r):
    o = r["overall"]
    bad = sum(t["bad_udp"] + t["bad_ip"] + t["malformed"] for t in r.get("tshark", []))
    return (f"{r['mode']:<9} {r['transport']}: Sync {fmt_us(o['sync'].get('mean'))} ± "
            f"{fmt_us(o['sync'].get('std'))} µs (n {o['sync']['n']}), Delay_Req "
            f"{fmt_us(o['delay_req'].get('mean'))} ± {fmt_us(o['delay_req'].get('std'))} µs "
            f"(n {o['delay_req']['n']}), offset error {fmt_us(o['offset_error_mean'])} µs; "
            f"added correction Follow_Up {fmt_us(o['sync_added'].get('p50'))} µs median "
            f"({o['sync_added_nonzero']}/{o['sync_added']['n']} nonzero), Delay_Resp "
            f"{fmt_us(o['delay_resp_added'].get('p50'))} µs ({o['delay_resp_added_nonzero']}/"
            f"{o['delay_resp_added']['n']}); tshark: {bad} bad frames")


# ---------------------------------------------------------------- report

def report(args):
    results = [json.loads(Path(p).read_text()) for p in args.results]
    by_key = {}
    for r in results:
        by_key[(r["transport"], r["mode"])] = r
    lines = []
    hdr = (f"{'mode':<10}{'transp':<7}{'Sync delay µs':>27}{'Delay_Req delay µs':>27}{'answ':>6}"
           f"{'offset err µs':>18}{'std ratio vs bridge':>21}{'ptp4l offset/delay µs':>24}")
    sub = (f"{'':<17}{'mean':>9}{'std':>9}{'p99':>9}{'mean':>9}{'std':>9}{'p99':>9}{'%':>6}"
           f"{'mean':>9}{'p50':>9}{'Sync':>10}{'DReq':>9}{'':>2}{'offset':>10}{'delay':>10}")
    lines += [hdr, sub]
    for r in results:
        o = r["overall"]
        s, q = o["sync"], o["delay_req"]
        b = by_key.get((r["transport"], "bridge"))
        rs = rq = None
        if b:
            bs, bq = b["overall"]["sync"], b["overall"]["delay_req"]
            if s.get("n") and bs.get("n") and bs["std"] > 0:
                rs = s["std"] / bs["std"]
            if q.get("n") and bq.get("n") and bq["std"] > 0:
                rq = q["std"] / bq["std"]
        lines.append(
            f"{r['mode']:<10}{r['transport']:<7}"
            f"{fmt_us(s.get('mean')):>9}{fmt_us(s.get('std')):>9}{fmt_us(s.get('p99'), 1):>9}"
            f"{fmt_us(q.get('mean')):>9}{fmt_us(q.get('std')):>9}{fmt_us(q.get('p99'), 1):>9}"
            f"{answered(o):>6}"
            f"{fmt_us(o['offset_error_mean']):>9}{fmt_us(o['offset_error_p50']):>9}"
            f"{'-' if rs is None else f'{rs:.2f}x':>10}{'-' if rq is None else f'{rq:.2f}x':>9}{'':>2}"
            f"{fmt_us(o.get('ptp4l_master_offset_mean')):>10}{fmt_us(o.get('ptp4l_path_delay_mean')):>10}")
    lines.append("answ: share of the ptp4l clients' Delay_Req (captured) answered by a Delay_Resp that reached them."
                 " offset err: (Sync - Delay_Req delay) / 2 from means, and from medians (p50).")
    faults = [f"{r['mode']} {r['transport']}: {r['overall'].get('ptp4l_faults', 0)}" for r in results
              if r["overall"].get("ptp4l_faults")]
    if faults:
        lines.append("ptp4l clients that went FAULTY: " + ", ".join(faults))
    for r in results:
        o = r["overall"]
        if "tc_faulty" in o:
            lines.append(f"ptp4l E2E_TC ({r['transport']}): ports to FAULTY {o['tc_faulty']}, TX time stamp "
                         f"timeouts {o['tc_tx_timestamp_timeouts']}, failed forwards {o['tc_forward_failures']}")
    lines.append("")
    lines.append("per client (Sync mean/std, Delay_Req mean/std, offset error, µs; samples):")
    for r in results:
        parts = []
        for c, cr in r["clients"].items():
            parts.append(f"{c} {fmt_us(cr['sync'].get('mean'), 1)}/{fmt_us(cr['sync'].get('std'), 1)} "
                         f"{fmt_us(cr['delay_req'].get('mean'), 1)}/{fmt_us(cr['delay_req'].get('std'), 1)} "
                         f"{fmt_us(cr['offset_error_mean'], 1)} ({cr['sync']['n']}/{cr['delay_req']['n']})")
        lines.append(f"  {r['mode']:<10}{r['transport']:<6}" + "  ".join(parts))
    lines.append("")
    lines.append("corrections added by the forwarder (median µs, nonzero/matched) and transit (median µs):")
    for r in results:
        o = r["overall"]
        lines.append(
            f"  {r['mode']:<10}{r['transport']:<6}Sync+Follow_Up {fmt_us(o['sync_added'].get('p50'))} "
            f"({o['sync_added_nonzero']}/{o['sync_added']['n']}), transit {fmt_us(o['sync_transit'].get('p50'))}"
            f", over-corrected {o['sync_over_corrected']}, short by > {UNDER_CORRECTED_NS // 1000} µs "
            f"{o.get('sync_under_corrected', '-')};  Delay_Resp {fmt_us(o['delay_resp_added'].get('p50'))} "
            f"({o['delay_resp_added_nonzero']}/{o['delay_resp_added']['n']}), transit "
            f"{fmt_us(o['delay_req_transit'].get('p50'))}, over-corrected {o['delay_resp_over_corrected']}")
    relay = [r for r in results if isinstance(r.get("ptpproxy_status"), dict)]
    if relay:
        lines.append("")
        lines.append("ptpproxy's correction counters (status file at exit): transmit timestamps used / "
                     "residences remembered, mean µs they added to the clock read; general messages that "
                     "waited for a later batch for their event's timestamp, and that left without it; faults")
        for r in relay:
            c = r["ptpproxy_status"].get("correction", {})
            waits = r["ptpproxy_status"].get("io", {}).get("tx_timestamp_waits", "-")
            stamped, remembered = c.get("tx_timestamped", 0), c.get("remembered", 0)
            added = c.get("tx_timestamp_mean_added_ns", 0) / 1000
            lines.append(
                f"  {r['mode']:<10}{r['transport']:<6}tx_timestamped {stamped}/{remembered} "
                f"(+{added:.1f} µs), tx_timestamp_waits {waits}, "
                f"tx_timestamp_missing {c.get('tx_timestamp_missing', 0)}, "
                f"follow_up {c.get('follow_up', 0)}, delay_resp {c.get('delay_resp', 0)}, "
                f"out_of_range {c.get('out_of_range', 0)}, clock_step {c.get('clock_step', 0)}, "
                f"residence mean/max {c.get('residence_mean_ns', 0) / 1000:.1f}/"
                f"{c.get('residence_max_ns', 0) / 1000:.1f} µs")
    lines.append("")
    lines.append("tshark over every captured frame (bad UDP/IP checksums, malformed):")
    for r in results:
        ts = r.get("tshark", [])
        if not ts:
            continue
        tot = sum(t["frames"] for t in ts)
        bad = sum(t["bad_udp"] + t["bad_ip"] + t["malformed"] for t in ts)
        good = sum(t["udp_good"] for t in ts)
        udp = sum(t["udp"] for t in ts)
        load_line = ""
        pl = r.get("ptpload")
        if isinstance(pl, dict) and pl:
            load_line = "; ptpload: " + ptpload_brief(pl)
        lines.append(f"  {r['mode']:<10}{r['transport']:<6}{tot} frames, {bad} bad"
                     + (f", UDP checksums verified good {good}/{udp}" if udp else "") + load_line)
        for t in ts:
            for e in t["examples"]:
                lines.append(f"      {t['file']}: {e}")
    text = "\n".join(lines)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "table": text}, indent=1) + "\n")
    return 0


def ptpload_brief(pl):
    """One line from ptpload's JSON: received/sent per direction."""
    parts = []
    for key in ("up", "down"):
        v = pl.get(key)
        if isinstance(v, dict) and "sent" in v:
            parts.append(f"{key} {v.get('received', '?')}/{v.get('expected', v['sent'])} received")
    return ", ".join(parts) if parts else "no totals"


# ---------------------------------------------------------------- check (tests/timing.sh --check)

def check(args):
    results = [json.loads(Path(p).read_text()) for p in args.results]
    bounds = json.loads(args.bounds)
    by_key = {(r["transport"], r["mode"]): r for r in results}

    def say(ok, what, why=""):
        print(f"PASS {what}" if ok else f"FAIL {what}: {why}")

    for r in results:
        label = f"{r['transport']} {r['mode']}"
        o = r["overall"]
        # every frame delivered is valid
        ts = r.get("tshark", [])
        tot = sum(t["frames"] for t in ts)
        bad = sum(t["bad_udp"] + t["bad_ip"] + t["malformed"] for t in ts)
        ex = [f"{t['file']}: {e}" for t in ts for e in t["examples"]][:3]
        errs = [f"{t['file']}: {t['error']}" for t in ts if t.get("error")]
        say(tot > 0 and bad == 0 and not errs,
            f"{label}: tshark finds no bad checksum and no malformed frame ({tot} frames)",
            f"{bad} bad of {tot}; {'; '.join(ex + errs)}")
        if r["transport"] != "l2":
            udp = sum(t["udp"] for t in ts)
            good = sum(t["udp_good"] for t in ts)
            want = {"udp6": 1.0}.get(r["transport"], 0.5)
            # UDPv6: every checksum present and verified. UDPv4: ptpload sends zero checksums (none),
            # ptp4l real ones; the ptp4l share must verify.
            say(udp > 0 and good >= want * sum(t["udp"] - t["udp_none"] for t in ts) and good > 0,
                f"{label}: UDP checksums present and verified good ({good} of {udp})",
                f"good {good}, none {sum(t['udp_none'] for t in ts)}, udp {udp}")
        if r["mode"] not in ("residence", "residence@q"):
            continue
        if r["mode"] == "residence@q":
            n, under = o["sync_added"]["n"], o["sync_under_corrected"]
            say(n >= bounds["min_matched"] and under <= max(2, n // 100),
                f"{label}: Follow_Up corrections include the time their Sync waited in the egress qdisc "
                f"({under} of {n} short of the transit by > {UNDER_CORRECTED_NS // 1000} µs)",
                f"{under} of {n} matched (want >= {bounds['min_matched']}, at most max(2, 1%))")
            st = r.get("ptpproxy_status") or {}
            missing = st.get("correction", {}).get("tx_timestamp_missing")
            waits = st.get("io", {}).get("tx_timestamp_waits")
            say(missing is not None and missing <= bounds["max_tx_timestamp_missing"],
                f"{label}: no Follow_Up or Delay_Resp left before its event's transmit timestamp came back "
                f"(tx_timestamp_missing {missing}, tx_timestamp_waits {waits})",
                f"tx_timestamp_missing {missing} (want <= {bounds['max_tx_timestamp_missing']})")
        # clients synchronise
        for c, cr in r["clients"].items():
            p = cr["ptp4l"]
            ok = p["rs_slave"] and p["path_delay_reports"] >= bounds["min_path_delay_reports"] and not p["faulty"]
            say(ok, f"{label}: {c} selects the grandmaster (RS_SLAVE) and reports path delays",
                f"rs_slave {p['rs_slave']}, path delay reports {p['path_delay_reports']} "
                f"(want >= {bounds['min_path_delay_reports']}), faulty {p['faulty']}")
        # the forwarder adds its residence
        for key, name in (("sync_added", "Follow_Up"), ("delay_resp_added", "Delay_Resp")):
            n = o[key]["n"]
            nz = o[f"{key}_nonzero"]
            mn = o[key].get("min")
            say(n >= bounds["min_matched"] and nz == n and mn is not None and mn > 0,
                f"{label}: every {name} carries a positive correction added by ptpproxy "
                f"({nz} of {n}, median {fmt_us(o[key].get('p50'))} µs)",
                f"{nz} nonzero of {n} matched (want >= {bounds['min_matched']}), min {fmt_us(mn)} µs")
        for key, name in (("sync_over_corrected", "Sync"), ("delay_resp_over_corrected", "Delay_Req")):
            say(o[key] == 0, f"{label}: no {name} correction exceeds the frame's measured transit",
                f"{o[key]} over-corrected")
        say(o["sync_correction_changed"] == 0, f"{label}: two-step Sync correctionField left as the GM sent it",
            f"{o['sync_correction_changed']} changed")
        pl = r.get("ptpload")
        if isinstance(pl, dict) and "error" not in pl and pl:
            pass
        # offset error against the bridge and none; path delays against the bridge
        if r["transport"] == "l2" and ("l2", "bridge") in by_key and ("l2", "none") in by_key:
            bo, no_ = by_key[("l2", "bridge")]["overall"], by_key[("l2", "none")]["overall"]
            key = bounds.get("offset_key", "offset_error_p50")
            res, br, no = o[key], bo[key], no_[key]
            if None in (res, br, no):
                say(False, f"{label}: offset error comparable with the bridge's and none's", "missing samples")
                continue
            closer = abs(res - br) < abs(no - br)
            within = abs(res) <= abs(br) + bounds["offset_within_ns"]
            say(closer or within,
                f"{label}: offset error {fmt_us(res)} µs is closer to the bridge's ({fmt_us(br)}) than "
                f"none's ({fmt_us(no)}), or no larger than the bridge's + "
                f"{fmt_us(bounds['offset_within_ns'], 0)} µs",
                f"|res-bridge| {fmt_us(abs(res - br))} µs, |none-bridge| {fmt_us(abs(no - br))} µs")
            for k, name in (("sync", "Sync"), ("delay_req", "Delay_Req")):
                rv, bv = o[k].get("p50"), bo[k].get("p50")
                lim = None if bv is None else bv + bounds["path_over_bridge_ns"]
                say(rv is not None and lim is not None and rv <= lim,
                    f"{label}: median {name} path delay after correction {fmt_us(rv)} µs <= the bridge's "
                    f"{fmt_us(bv)} + {fmt_us(bounds['path_over_bridge_ns'], 0)} µs (none: "
                    f"{fmt_us(no_[k].get('p50'))} µs)",
                    "residence time not corrected?")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    a = sp.add_parser("analyze")
    a.add_argument("--dir", required=True)
    a.add_argument("--mode", required=True)
    a.add_argument("--transport", required=True)
    a.add_argument("--clients", default="c11,c12,c21,c22")
    a.add_argument("--identity-gm", default="")
    a.add_argument("--load-pcap", action="append", default=[])
    a.add_argument("--ptpload-json", default="")
    a.add_argument("--status", default="")
    a.add_argument("--since-ns", type=int, default=0, help="ignore client frames captured before")
    a.add_argument("--no-tshark", dest="tshark", action="store_false")
    a.add_argument("--out", required=True)
    r = sp.add_parser("report")
    r.add_argument("results", nargs="+")
    r.add_argument("--json", default="")
    c = sp.add_parser("check")
    c.add_argument("results", nargs="+")
    c.add_argument("--bounds", required=True, help="JSON object of thresholds")
    args = ap.parse_args()
    return {"analyze": analyze, "report": report, "check": check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
