#!/usr/bin/env python3
"""Judge one end-to-end run from its captures, ptp4l logs and ptpproxy status file.

Reads RUN_DIR/{gm,c11,c12,c21,c22}.pcap (through tshark), RUN_DIR/cNM.log (ptp4l, debug level) and,
unless --no-status, the status file. Prints one line per finding, for tests/e2e.sh to count:
  PASS <what>            FAIL <what>: <why>            CLIENT <per-client summary line>
Counting, per client, of the Delay_Resp frames seen on its interface (by requestingPortIdentity):
  own            meant for this client
  other_segment  meant for a client behind the other downstream port
  other_client   meant for anyone else (segment neighbour, other port, unknown identities)
Standard library only.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

CLIENTS = ["c11", "c12", "c21", "c22"]
GM_ID = "020000.fffe.000001"
SYNC, DELAY_REQ, FOLLOW_UP, DELAY_RESP, ANNOUNCE = 0x0, 0x1, 0x8, 0x9, 0xB
FIELDS = [
    "eth.src",
    "eth.dst",
    "ptp.v2.messagetype",
    "ptp.v2.clockidentity",
    "ptp.v2.sourceportid",
    "ptp.v2.sequenceid",
    "ptp.v2.dr.requestingsourceportidentity",
    "ptp.v2.dr.requestingsourceportid",
]
DELAY_LINE = re.compile(r"delay\s+filtered\s+(-?\d+)\s+raw\s+(-?\d+)")


def mac(c):
    return f"02:00:00:00:0{c[1]}:0{c[2]}"


def identity(c):
    return f"020000.fffe.000{c[1]}0{c[2]}-1"


def port_of(c):
    return f"dn{c[1]}"


def dotted(hex_id):
    """0x020000fffe000101 -> 020000.fffe.000101"""
    digits = hex_id.lower().removeprefix("0x").rjust(16, "0")
    return f"{digits[:6]}.{digits[6:10]}.{digits[10:]}"


def read_pcap(path):
    """One dict per PTP frame: src, dst, type, id (dotted clockIdentity), port, seq, req ('id-port')."""
    if not path.exists():
        return None
    cmd = ["tshark", "-r", str(path), "-Y", "ptp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for field in FIELDS:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    frames = []
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < len(FIELDS) or not cols[2]:
            continue
        src, dst, mtype, cid, cport, seq, req_id, req_port = cols[: len(FIELDS)]
        frames.append(
            {
                "src": src,
                "dst": dst,
                "type": int(mtype, 16),
                "id": dotted(cid) if cid else "",
                "port": cport,
                "seq": seq,
                "req": f"{dotted(req_id)}-{req_port}" if req_id else "",
            }
        )
    return frames


def udp_csum_errors(path):
    """Udp InCsumErrors from a copy of the node's /proc/net/snmp (None if unavailable)."""
    if not path.exists():
        return None
    rows = [line.split() for line in path.read_text().splitlines() if line.startswith("Udp:")]
    if len(rows) < 2 or "InCsumErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("InCsumErrors")])


class Report:
    def __init__(self, label):
        self.label = label

    def check(self, ok, what, why=""):
        if ok:
            print(f"PASS {self.label} {what}")
        else:
            print(f"FAIL {self.label} {what}: {why}")


def count(frames, pred):
    return sum(1 for f in frames if pred(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--label", required=True, help='e.g. "L2 steer"')
    ap.add_argument("--mode", choices=["steer", "unicast", "flood"], required=True)
    ap.add_argument("--foreign-id", required=True, help="clockIdentity of the upstream-injected Delay_Req")
    ap.add_argument("--foreign-count", type=int, required=True)
    ap.add_argument("--rogue-id", required=True, help="clockIdentity of the fake master on dn1's segment")
    ap.add_argument("--rogue-count", type=int, required=True, help="Sync + Announce frames injected")
    ap.add_argument("--probe-id", required=True, help="clockIdentity of the Syncs sent upstream before ptp4l")
    ap.add_argument("--probe-count", type=int, required=True)
    ap.add_argument("--status", type=Path, help="ptpproxy status file (final, written at exit)")
    args = ap.parse_args()
    rep = Report(args.label)

    caps = {node: read_pcap(args.run / f"{node}.pcap") for node in ["gm"] + CLIENTS}
    for node, frames in caps.items():
        if frames is None:
            rep.check(False, f"{node}: capture exists", f"{args.run}/{node}.pcap missing")
            caps[node] = []

    def is_rogue(f):
        return f["id"] == args.rogue_id and f["type"] in (SYNC, ANNOUNCE)

    for c in CLIENTS:
        frames = caps[c]
        own = identity(c)
        other_seg = {identity(o) for o in CLIENTS if port_of(o) != port_of(c)}
        resps = [f for f in frames if f["type"] == DELAY_RESP]
        n_sync = count(frames, lambda f: f["type"] == SYNC and f["id"] == GM_ID)
        n_fup = count(frames, lambda f: f["type"] == FOLLOW_UP and f["id"] == GM_ID)
        n_own = count(resps, lambda f, own=own: f["req"] == own)
        n_other_seg = count(resps, lambda f, s=other_seg: f["req"] in s)
        n_other = count(resps, lambda f, own=own: f["req"] != own)
        n_wrong_mac = count(resps, lambda f, m=mac(c): f["dst"].lower() != m)
        print(
            f"CLIENT {args.label} {c}: delay_resp own={n_own} other_segment={n_other_seg} "
            f"other_client={n_other} sync={n_sync}"
        )
        rep.check(n_sync > 0 and n_fup > 0, f"{c}: receives Sync and Follow_Up", f"sync={n_sync} follow_up={n_fup}")
        rep.check(n_own > 0, f"{c}: receives Delay_Resp for its own Delay_Req", f"own={n_own}")
        log = args.run / f"{c}.log"
        delays = DELAY_LINE.findall(log.read_text(errors="replace")) if log.exists() else []
        last = f"last filtered={delays[-1][0]} ns raw={delays[-1][1]} ns" if delays else "none"
        rep.check(bool(delays), f"{c}: ptp4l reports path delay updates ({len(delays)}, {last})", "no 'delay filtered' line")
        if args.mode == "steer":
            rep.check(n_other_seg == 0, f"{c}: no Delay_Resp meant for the other port's clients", f"{n_other_seg} seen")
        if args.mode == "unicast":
            rep.check(n_other == 0, f"{c}: no Delay_Resp meant for any other client", f"{n_other} seen")
            rep.check(n_wrong_mac == 0, f"{c}: every Delay_Resp is addressed to {mac(c)}", f"{n_wrong_mac} were not")
        n_probe = count(frames, lambda f: f["type"] == SYNC and f["id"] == args.probe_id)
        rep.check(n_probe == args.probe_count, f"{c}: the first frames after start are relayed (probe Syncs)",
                  f"{n_probe} of {args.probe_count} arrived")
        n_foreign = count(frames, lambda f: f["type"] == DELAY_REQ and f["id"] == args.foreign_id)
        rep.check(n_foreign == 0, f"{c}: never sees the Delay_Req injected upstream", f"{n_foreign} seen")
        n_rogue = count(frames, is_rogue)
        if port_of(c) == "dn2":
            rep.check(n_rogue == 0, f"{c}: never sees the rogue master's Sync/Announce from dn1's segment", f"{n_rogue} seen")
        else:  # same bridge as the fake master: proves the injection happened
            rep.check(n_rogue > 0, f"{c}: rogue master's frames reached dn1's segment (precondition)", "injection not seen")

    for node in ["gm"] + CLIENTS:
        errors = udp_csum_errors(args.run / f"{node}.snmp")
        if errors is not None:
            rep.check(errors == 0, f"{node}: its kernel drops no UDP datagram for a bad checksum",
                      f"Udp InCsumErrors={errors} (frames relayed with an unfinished checksum?)")

    gm = caps["gm"]
    n_out = count(gm, lambda f: f["type"] == DELAY_REQ and f["id"] == args.foreign_id)
    rep.check(n_out == args.foreign_count, "gm: foreign Delay_Req injected upstream (precondition)",
              f"{n_out} of {args.foreign_count} seen on gm's interface")
    n_rogue_up = count(gm, is_rogue)
    rep.check(n_rogue_up == 0, "gm: never sees the rogue master's Sync/Announce", f"{n_rogue_up} seen")
    for c in CLIENTS:
        n_req = count(gm, lambda f, c=c: f["type"] == DELAY_REQ and f"{f['id']}-{f['port']}" == identity(c))
        rep.check(n_req > 0, f"gm: receives Delay_Req from {c}", "none")

    if args.status is None:
        return 0
    try:
        st = json.loads(args.status.read_text())
    except (OSError, ValueError) as err:
        rep.check(False, "status file readable", str(err))
        return 0

    def get(*keys):
        node = st
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node

    def positive(*keys):
        v = get(*keys)
        rep.check(isinstance(v, int) and v > 0, f"status: {'.'.join(keys)} > 0", f"is {v!r}")

    def equals(expected, *keys):
        v = get(*keys)
        rep.check(v == expected, f"status: {'.'.join(keys)} == {expected}", f"is {v!r}")

    equals(4, "clients", "count")
    equals(args.mode, "delay_resp_mode")
    table = get("client_table") or []
    for c in CLIENTS:
        rows = [r for r in table if isinstance(r, dict) and r.get("identity") == identity(c)]
        row = rows[0] if rows else {}
        ok = len(rows) == 1 and row.get("port") == port_of(c) and str(row.get("mac", "")).lower() == mac(c)
        rep.check(ok, f"status: client_table has {identity(c)} on {port_of(c)} with {mac(c)}", f"rows: {rows}")
    for kind in ("sync", "follow_up", "announce", "delay_req", "delay_resp"):
        positive("forwarded", kind)
    positive("delay_resp", "steered" if args.mode == "steer" else "unicast")
    equals(0, "delay_resp", "flooded")
    equals(args.foreign_count, "dropped", "delay_req_from_upstream")
    equals(args.rogue_count, "dropped", "rogue_master")
    return 0


if __name__ == "__main__":
    sys.exit(main())
