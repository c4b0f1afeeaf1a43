#!/usr/bin/env python3
"""The demo's closing table (tests/demo.sh): per client, what ptp4l and the wire say.

  demo.py --run RUN [--seconds N] [--mode steer|unicast] FORWARDER...   FORWARDER: ptpproxy, bridge
                                                                        (files in RUN/FORWARDER/)

Reads, per forwarder and client cNM, RUN/FORWARDER/cNM.log (ptp4l at debug level, free_running,
printing "master offset N sK freq F path delay D" once a second and "delay filtered N raw M" for
every Delay_Resp it accepts) and RUN/FORWARDER/cNM.pcap (tcpdump on the client's interface).
Prints one table per forwarder:

  path delay      ptp4l's mean path delay, the filtered value it offsets by (a moving median of the
                  last exchanges), as it stood after each Delay_Resp: mean, std, max
  offset          ptp4l's "master offset" (its offset from the grandmaster): rms and largest
                  magnitude. All namespaces share one clock, so the true offset is 0 and this is
                  ptp4l's measurement error
  Delay_Req sent  the client's own, from the capture
  Delay_Resp      received on its interface, by requestingPortIdentity: its own, its segment
                  neighbour's, the other port's clients'

Exit status 1 if a client has no offset or path delay from ptp4l or received none of its own
Delay_Resp, or (ptpproxy) received one meant for the other port's clients. Reuses tests/lib/timing.py's
pcap reader and ptp4l log parser. Standard library only.
"""

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (tests/lib/timing.py: pcap and ptp4l log parsing)

CLIENTS = ["c11", "c12", "c21", "c22"]
TITLES = {
    "ptpproxy": "ptpproxy (delay_resp {mode}, correction residence)",
    "bridge": "Linux bridge",
}


def title(name, mode):
    return TITLES.get(name, name).format(mode=mode)


def identity(node):
    return timing.identity_of_mac(timing.client_mac(node))


def port_of(node):
    return f"dn{node[1]}"


def client_row(run, node):
    """What ptp4l reported and what the capture holds for one client (numbers in ns)."""
    log = timing.read_ptp4l_log(run / f"{node}.log")
    msgs = timing.load(run / f"{node}.pcap")
    own = identity(node)
    neighbours = {identity(o) for o in CLIENTS if o != node and port_of(o) == port_of(node)}
    others = {identity(o) for o in CLIENTS if port_of(o) != port_of(node)}
    resp = [m["req"] for _, m in msgs if m["type"] == timing.DELAY_RESP and m.get("req")]
    offsets = log["offset"]
    return {
        "node": node,
        "delay": timing.stats(log["delay_filtered"]),
        "offset_n": len(offsets),
        "offset_rms": math.sqrt(math.fsum(v * v for v in offsets) / len(offsets)) if offsets else None,
        "offset_max": max((abs(v) for v in offsets), default=None),
        "sent": sum(1 for _, m in msgs if m["type"] == timing.DELAY_REQ and m["source"] == own),
        "own": sum(1 for r in resp if r == own),
        "neighbour": sum(1 for r in resp if r in neighbours),
        "other_port": sum(1 for r in resp if r in others),
        "unknown": sum(1 for r in resp if r != own and r not in neighbours and r not in others),
    }


def us(v):
    return "—" if v is None else f"{v / 1000:.1f}"


# (heading, width) of each column; the data rows use the same widths
COLUMNS = [("client", 6), ("port", 4), ("mean", 6), ("std", 5), ("max", 6), ("rms", 6), ("max", 6),
           ("n", 4), ("sent", 9), ("own", 7), ("neighbour's", 11), ("other port's", 12)]
# headings over several columns: (text, first column, last column)
GROUPS = [("path delay (µs)", 2, 4), ("offset from gm (µs)", 5, 7), ("Delay_Req", 8, 8),
          ("Delay_Resp received", 9, 11)]


def groups():
    """The line of GROUPS, each centred over its columns."""
    starts, pos = [], 0
    for _, w in COLUMNS:
        starts.append(pos)
        pos += w + 2
    line = ""
    for text, first, last in GROUPS:
        left, right = starts[first], starts[last] + COLUMNS[last][1]
        line = line.ljust(left) + text.center(right - left).rstrip()
    return line


def cells(values):
    return "  ".join(f"{v:<{w}}" if i < 2 else f"{v:>{w}}" for i, ((_, w), v) in enumerate(zip(COLUMNS, values)))


def table(name, rows, mode):
    lines = [f"{title(name, mode)}:", groups(), cells([h for h, _ in COLUMNS])]
    for r in rows:
        d = r["delay"]
        lines.append(cells([r["node"], port_of(r["node"]), us(d.get("mean")), us(d.get("std")), us(d.get("max")),
                            us(r["offset_rms"]), us(r["offset_max"]), r["offset_n"], r["sent"], r["own"],
                            r["neighbour"], r["other_port"]])
                     + (f"  (+{r['unknown']} for unknown clients)" if r["unknown"] else ""))
    return lines


def in_short(name, rows, mode):
    """One line per forwarder: others' Delay_Resp per own, the median client's offset rms, path delay."""
    own = sum(r["own"] for r in rows)
    others = sum(r["neighbour"] + r["other_port"] + r["unknown"] for r in rows)
    rms = sorted(r["offset_rms"] for r in rows if r["offset_rms"] is not None)
    delay = [r["delay"]["mean"] for r in rows if r["delay"]["n"]]
    per_own = f"{others / own:.1f}" if own else "—"
    return (f"{title(name, mode).split(' (')[0]:<12} {per_own} Delay_Resp for other clients per own, "
            f"offset rms {us(statistics.median(rms)) if rms else '—'} µs (median client), "
            f"path delay {us(statistics.fmean(delay)) if delay else '—'} µs (mean)")


def problems(name, rows):
    out = []
    for r in rows:
        c = r["node"]
        if r["offset_n"] == 0:
            out.append(f"{name}: {c}: ptp4l reported no offset from the grandmaster")
        if r["delay"]["n"] == 0:
            out.append(f"{name}: {c}: ptp4l measured no path delay")
        if r["own"] == 0:
            out.append(f"{name}: {c}: received none of its own Delay_Resp")
        if name == "ptpproxy" and r["other_port"]:
            out.append(f"{name}: {c}: received {r['other_port']} Delay_Resp meant for the other port's clients")
        if name == "bridge" and not r["other_port"]:
            out.append(f"{name}: {c}: received none of the other port's clients' Delay_Resp (a bridge floods them)")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--mode", default="steer", help="ptpproxy's delay_resp")
    ap.add_argument("forwarders", nargs="+")
    args = ap.parse_args()
    every = {f: [client_row(args.run / f, c) for c in CLIENTS] for f in args.forwarders}
    span = f", {args.seconds} s" + (" each" if len(every) > 1 else "") if args.seconds else ""
    print(f"== per client: ptp4l's path delay and offset from the grandmaster, and the Delay_Resp on its interface{span}")
    for f, rows in every.items():
        print()
        print("\n".join(table(f, rows, args.mode)))
    print()
    for f, rows in every.items():
        print(in_short(f, rows, args.mode))
    print()
    print("offset: ptp4l's measurement error (one shared clock: the true offset is 0); neighbour's: the other")
    print("client behind the same switch, which floods multicast; other port's: clients behind the other port.")
    bad = [p for f, rows in every.items() for p in problems(f, rows)]
    for p in bad:
        print(f"PROBLEM {p}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
