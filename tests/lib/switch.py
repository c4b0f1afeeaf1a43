#!/usr/bin/env python3
"""Judge one run of tests/switch.sh from the clients' captures and the ptpproxy status file.

Per client (RUN_DIR/cNM.pcap, through tshark like tests/lib/analyze.py), of the frames the
grandmaster's ptp4l sent:
  sync / follow_up   frames seen, and duplicates (the same sequenceId seen again)
  own                Delay_Resp for this client (and duplicates of them)
  other_segment      Delay_Resp for a client behind the other segment
  neighbour          Delay_Resp for the other client of the same segment
Prints "COUNTS <label> <client> k=v ..." per client, then PASS/FAIL lines for what --expect asks:
  once       each Sync and Follow_Up seen once, each own Delay_Resp once, some of each
  steer      no other segment's Delay_Resp
  unicast    no Delay_Resp but the client's own
  loop0      the status file's dropped.loop is 0
  (none)     only the counts (the "before" runs)
Standard library only.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyze import CLIENTS, DELAY_RESP, FOLLOW_UP, GM_ID, SYNC, identity, read_pcap  # noqa: E402


def dups(frames):
    """Frames seen beyond the first of each sequenceId."""
    seen = Counter(f["seq"] for f in frames)
    return sum(n - 1 for n in seen.values())


def counts(frames, client):
    gm = [f for f in frames if f["id"] == GM_ID]
    sync = [f for f in gm if f["type"] == SYNC]
    fup = [f for f in gm if f["type"] == FOLLOW_UP]
    resp = [f for f in gm if f["type"] == DELAY_RESP]
    own = [f for f in resp if f["req"] == identity(client)]
    segment = [c for c in CLIENTS if c[1] == client[1]]
    other_seg = [f for f in resp if f["req"] in {identity(c) for c in CLIENTS if c not in segment}]
    neighbour = [f for f in resp if f["req"] in {identity(c) for c in segment if c != client}]
    return {
        "sync": len(sync),
        "sync_dup": dups(sync),
        "follow_up": len(fup),
        "follow_up_dup": dups(fup),
        "own": len(own),
        "own_dup": dups(own),
        "other_segment": len(other_seg),
        "neighbour": len(neighbour),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--expect", nargs="*", default=[], choices=["once", "steer", "unicast", "loop0"])
    args = ap.parse_args()

    totals = Counter()
    for c in CLIENTS:
        frames = read_pcap(args.run / f"{c}.pcap")
        if frames is None:
            print(f"FAIL {args.label} {c}: no capture")
            continue
        n = counts(frames, c)
        totals.update(n)
        print(f"COUNTS {args.label} {c} " + " ".join(f"{k}={v}" for k, v in n.items()))
        if "once" in args.expect:
            ok = n["sync"] > 0 and n["follow_up"] > 0 and n["own"] > 0
            ok = ok and n["sync_dup"] == n["follow_up_dup"] == n["own_dup"] == 0
            print(
                f"{'PASS' if ok else 'FAIL'} {args.label} {c}: each Sync, Follow_Up and own "
                f"Delay_Resp seen once (sync {n['sync']} dup {n['sync_dup']}, follow_up "
                f"{n['follow_up']} dup {n['follow_up_dup']}, own {n['own']} dup {n['own_dup']})"
            )
        if "steer" in args.expect:
            ok = n["other_segment"] == 0
            print(f"{'PASS' if ok else 'FAIL'} {args.label} {c}: no other segment's Delay_Resp ({n['other_segment']})")
        if "unicast" in args.expect:
            ok = n["other_segment"] == 0 and n["neighbour"] == 0
            print(
                f"{'PASS' if ok else 'FAIL'} {args.label} {c}: no Delay_Resp but its own (other segment "
                f"{n['other_segment']}, neighbour {n['neighbour']})"
            )
    try:
        loop = json.loads((args.run / "status.json").read_text())["dropped"]["loop"]
    except (OSError, ValueError, KeyError) as e:
        loop = f"unreadable ({e})"
    print(f"TOTAL {args.label} " + " ".join(f"{k}={totals[k]}" for k in totals) + f" ptpproxy_dropped_loop={loop}")
    if "loop0" in args.expect:
        if not isinstance(loop, int):
            print(f"FAIL {args.label} status file: dropped.loop {loop}")
        else:
            ok = loop == 0
            print(
                f"{'PASS' if ok else 'FAIL'} {args.label} no frame ptpproxy sent came back in through "
                f"the bridge (dropped.loop {loop})"
            )


if __name__ == "__main__":
    main()
