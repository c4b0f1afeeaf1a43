#!/usr/bin/env python3
"""The demo's closing table (tests/demo.sh): per client, what ptp4l and the wire say.

  demo.py --run RUN [--seconds N] FORWARDER...      FORWARDER: ptpproxy, bridge (RUN/FORWARDER/)

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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (tests/lib/timing.py: pcap and ptp4l log parsing)

CLIENTS = ["c11", "c12", "c21", "c22"]
TITLES = {
    "ptpproxy": "ptpproxy (delay_resp steer, correction residence)",
    "bridge": "Linux bridge",
}


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


def us(v, width=7):
    return f"{'—':>{width}}" if v is None else f"{v / 1000:{width}.1f}"


HEADER = [
    "          path delay (µs)        offset from gm (µs)   Delay_Req  Delay_Resp received",
    "client    mean    std    max      rms     max    n     sent       own  neighbour's  other port's",
]


def table(name, rows):
    lines = [f"{TITLES.get(name, name)}:"] + HEADER
    for r in rows:
        d = r["delay"]
        lines.append(
            f"{r['node']} {port_of(r['node'])} {us(d.get('mean'), 6)} {us(d.get('std'), 6)} {us(d.get('max'), 6)}"
            f"  {us(r['offset_rms'])} {us(r['offset_max'])} {r['offset_n']:4d}   {r['sent']:6d}"
            f"   {r['own']:7d}  {r['neighbour']:11d}  {r['other_port']:12d}"
            + (f"  (+{r['unknown']} unknown)" if r["unknown"] else "")
        )
    return lines


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
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("forwarders", nargs="+")
    args = ap.parse_args()
    every = {f: [client_row(args.run / f, c) for c in CLIENTS] for f in args.forwarders}
    span = f", {args.seconds} s each" if args.seconds else ""
    print(f"== per client: ptp4l's path delay and offset from the grandmaster, and the Delay_Resp on its interface{span}")
    for f, rows in every.items():
        print()
        print("\n".join(table(f, rows)))
    print()
    print("offset: ptp4l's measurement error (one shared clock: the true offset is 0); neighbour's: the other")
    print("client behind the same switch, which floods multicast; other port's: clients behind the other port.")
    bad = [p for f, rows in every.items() for p in problems(f, rows)]
    for p in bad:
        print(f"PROBLEM {p}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
