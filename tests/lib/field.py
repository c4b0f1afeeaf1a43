#!/usr/bin/env python3
"""Judge the runs of tests/field.sh: ptpproxy's final status file and stderr log, and the ptp4l
clients' logs, of one run directory (and the reference run's).

  field.py noloop RUN_DIR ROGUE_ID
  field.py loop RUN_DIR REFERENCE_RUN_DIR

Prints "PASS text", "FAIL text" or "INFO text" per finding. Standard library only.
"""

import json
import re
import statistics
import struct
import sys
from pathlib import Path

# ptp4l's summary line (free_running clients print no per-Sync "master offset" line): the offset's
# rms and largest magnitude over the summary interval, ns.
SUMMARY = re.compile(r"\brms\s+(\d+)\s+max\s+(\d+)\s+freq\s+\S+\s+\+/-\s+\d+")
DELAY = re.compile(r"delay\s+filtered\s+-?\d+\s+raw\s+-?\d+")
LOOP_LINE = re.compile(
    r"loop: frames sent on (.+?) return on (\S+) \(received on (\S+)\): cabling loop\? \(.*in all: (.*)\)")
# Offsets a client on an unaffected port may show on this shared VM: software timestamps, one
# clock for every namespace (the reference run's spread is printed beside them).
OFFSET_MAX_NS = 1_000_000
DELAY_SHARE_MIN = 0.8
# Delay_Resp for a client per Delay_Req it sent (both seen on its interface): one, but for the
# last request or two the run's end cuts off.
DELAY_RESP_PER_REQ = (0.9, 1.1)
# Through the loop each frame ptpproxy sends on dn1 reaches its upstream port once more, and so
# do the Delay_Req of dn1's clients (dn1's segment now reaches the grandmaster directly): about
# twice the frames of the reference. Relaying what comes back would multiply them without end.
RX_RATIO_MAX = 3.0


def out(kind, text):
    print(f"{kind} {text}", flush=True)


def check(ok, text):
    out("PASS" if ok else "FAIL", text)
    return ok


def status(run):
    return json.loads((run / "status.json").read_text())


def log(run):
    p = run / "ptpproxy.log"
    return p.read_text(errors="replace") if p.exists() else ""


def upstream_rx(st):
    return st["ports"][0]["rx"]


def client(run, node):
    """ptp4l's view of one client: its offset summaries (rms, max; ns) but the first (which covers
    the start), its path delay updates."""
    p = run / f"{node}.log"
    text = p.read_text(errors="replace") if p.exists() else ""
    summaries = [(int(m.group(1)), int(m.group(2))) for m in SUMMARY.finditer(text)]
    return {"offsets": summaries[1:], "delays": len(DELAY.findall(text))}


def offset_max(v):
    return max(m for _, m in v)


def own_delay_req_resp(run, node):
    """(Delay_Req `node` sent, Delay_Resp for it (by requestingPortIdentity)) in its capture (L2,
    untagged; tests/lib/topo.sh names the client cNM 020000.fffe.000N0M-1)."""
    p = run / f"{node}.pcap"
    if not p.exists():
        return None, None
    me = bytes([2, 0, 0, 0xFF, 0xFE, 0, int(node[1]), int(node[2]), 0, 1])
    data = p.read_bytes()
    big = data[:4] == bytes.fromhex("a1b2c3d4") or data[:4] == bytes.fromhex("a1b23c4d")
    rec = struct.Struct(">IIII" if big else "<IIII")
    req, resp, at = 0, 0, 24
    while at + rec.size <= len(data):
        _, _, caplen, _ = rec.unpack_from(data, at)
        f = data[at + rec.size: at + rec.size + caplen]
        at += rec.size + caplen
        if len(f) < 14 + 44 or f[12:14] != b"\x88\xf7":
            continue
        kind = f[14] & 0x0F
        if kind == 0x1 and f[14 + 20:14 + 30] == me:
            req += 1
        elif kind == 0x9 and f[14 + 44:14 + 54] == me:
            resp += 1
    return req, resp


def spread(v):
    if not v:
        return "no summaries"
    return (f"offset rms median {statistics.median(r for r, _ in v) / 1000:.1f} us, "
            f"max {offset_max(v) / 1000:.1f} us ({len(v)} summaries)")


def dropped(st):
    return {k: v for k, v in st["dropped"].items() if v}


def summary(label, run, st):
    ports = ", ".join(f"{p['name']} rx {p['rx']} tx {p['tx']}" for p in st["ports"])
    out("INFO", f"{label}: {ports}; forwarded {st['forwarded']}; dropped {dropped(st)}")
    for node in ("c11", "c12", "c21", "c22"):
        c = client(run, node)
        out("INFO", f"{label}: {node}: offsets {spread(c['offsets'])}; {c['delays']} path delay updates")


def noloop(run, rogue_id):
    run = Path(run)
    st, text = status(run), log(run)
    summary("noloop", run, st)
    want = f"rogue master on dn2: {rogue_id}-1 sends Sync/Follow_Up/Announce"
    line = next((x for x in text.splitlines() if want in x), None)
    check(line is not None, f"noloop: the rogue master is named in the log: {line or 'no ' + repr(want)}")
    line = next((x for x in text.splitlines() if "upstream up: no Sync or Announce" in x), None)
    check(line is not None, f"noloop: the grandmaster gone, the silent upstream is named: {line or 'no such line'}")
    check(st["dropped"].get("loop", 0) == 0, f"noloop: nothing dropped as loop ({st['dropped'].get('loop', 0)})")


def loop(run, ref):
    run, ref = Path(run), Path(ref)
    st, base, text = status(run), status(ref), log(run)
    summary("loop", run, st)
    rx, rx0 = upstream_rx(st), upstream_rx(base)
    check(
        rx < RX_RATIO_MAX * rx0,
        f"loop: frames received on the upstream port {rx} vs {rx0} without the loop "
        f"({rx / max(1, rx0):.2f}x; need < {RX_RATIO_MAX:g}x)",
    )
    n = st["dropped"].get("loop", 0)
    check(n > 0, f"loop: the loop counter moved (dropped as loop: {n}; by port: "
          + ", ".join(f"{p['name']} {p['dropped'].get('loop', 0)}" for p in st["ports"]) + ")")
    lines = [m for m in (LOOP_LINE.search(x) for x in text.splitlines()) if m]
    def ports_of(m):
        seen = {x.split()[0] for x in m.group(4).split(", ")}
        return seen | set(m.group(1).split(", ")) | {m.group(2), m.group(3)}

    named = [m.group(0) for m in lines if {"up", "dn1"} <= ports_of(m)]
    check(bool(named), f"loop: the log names the ports: {named[0] if named else f'{len(lines)} loop lines, none naming up and dn1'}"
          + (f" ({len(lines)} loop lines in all)" if named else ""))
    for node in ("c21", "c22"):
        c, c0 = client(run, node), client(ref, node)
        offs = c["offsets"]
        check(
            bool(offs) and offset_max(offs) < OFFSET_MAX_NS,
            f"loop: {node} (dn2) keeps a sane offset: {spread(offs)} (without the loop: {spread(c0['offsets'])}; "
            f"need its max below {OFFSET_MAX_NS / 1000:.0f} us)",
        )
        (req, resp), (req0, resp0) = own_delay_req_resp(run, node), own_delay_req_resp(ref, node)
        lo, hi = DELAY_RESP_PER_REQ
        check(
            bool(req) and resp is not None and lo * req <= resp <= hi * req,
            f"loop: {node} (dn2) receives one Delay_Resp per Delay_Req: {resp} for its {req} "
            f"(need {lo:g}x to {hi:g}x; without the loop: {resp0} for {req0})",
        )
        # Per Delay_Req it sent: ptp4l sends a different number in each run.
        share, share0 = c["delays"] / max(1, req or 0), c0["delays"] / max(1, req0 or 0)
        check(
            share >= DELAY_SHARE_MIN * share0 and c["delays"] > 0,
            f"loop: {node} (dn2) gets its Delay_Resp: {c['delays']} path delay updates for its {req} "
            f"Delay_Req vs {c0['delays']} for {req0} without the loop (need >= {100 * DELAY_SHARE_MIN:.0f}% "
            f"of that share)",
        )


CHECKS = {"noloop": noloop, "loop": loop}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(CHECKS)} ARGS...")
    try:
        CHECKS[sys.argv[1]](*sys.argv[2:])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        out("FAIL", f"{sys.argv[1]}: cannot judge the run: {type(e).__name__}: {e}")
