#!/usr/bin/env python3
"""The checks of tests/dump.sh: what tshark reads from ptpproxy's pcapng dump, against the
status file. Prints one verdict per line ("PASS TEXT", "FAIL TEXT", "INFO TEXT").

    dump.py dropped FILE STATUS      a "dropped" dump of a rogue master and malformed frames
    dump.py all FILE STATUS          an "all" dump of ptpload's clients and grandmaster
    dump.py rotated FILE STATUS MAX  FILE and FILE.1 within MAX bytes, both readable
    dump.py restarted FILE           a new file of rogue_master drops only
"""
import json, subprocess, sys

def rows(path):
    """(interface, messageType or '', comment) of every frame tshark reads from the file."""
    out = subprocess.run(
        ["tshark", "-r", path, "-T", "fields", "-E", "separator=\t",
         "-e", "frame.interface_name", "-e", "ptp.v2.messagetype", "-e", "frame.comment"],
        capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        print(f"FAIL tshark -r {path}: exit {out.returncode}: {out.stderr.strip()[:300]}")
        sys.exit(0)
    r = []
    for line in out.stdout.splitlines():
        iface, mt, comment = (line.split("\t") + ["", ""])[:3]
        r.append((iface, mt.split(",")[0], comment))
    return r

def verdict(ok, text):
    print(("PASS " if ok else "FAIL ") + text)

def sample(r, pred):
    for x in r:
        if pred(x):
            return "\t".join(x)
    return "none"

check, args = sys.argv[1], sys.argv[2:]
if check == "dropped":
    path, status = args
    j = json.load(open(status))
    r = rows(path)
    dump = j["dump"]
    verdict(dump["frames_written"] == len(r) and dump["frames_dropped"] == 0,
            f"tshark reads {len(r)} frames, the status file: written {dump['frames_written']}, "
            f"not dumped {dump['frames_dropped']}")
    seen = {}
    for _, _, c in r:
        seen[c] = seen.get(c, 0) + 1
    want = {f"dropped: {k}": v for k, v in j["dropped"].items() if v}
    verdict(seen == want, f"comments per reason = the status file's dropped counters: {seen}")
    rogue = [x for x in r if x[2] == "dropped: rogue_master"]
    kinds = sorted({mt for _, mt, _ in rogue})
    verdict(len(rogue) > 0 and all(i == "dn1" for i, _, _ in rogue) and kinds == ["0x00", "0x08", "0x0b"],
            f"{len(rogue)} rogue_master frames, all from dn1, messageTypes {kinds} (Sync, Follow_Up, Announce)")
    malformed = {"truncated", "bad_version", "bad_length", "unknown_message", "stacked_vlan",
                 "bad_ip", "fragment", "bad_udp", "wrong_domain"}
    got = {c.removeprefix("dropped: ") for _, _, c in r}
    verdict(malformed <= got, f"the 13 dropped kinds of malformed frames under their 9 reasons: missing {sorted(malformed - got)}")
    verdict(not any(c.startswith("forwarded") for _, _, c in r), "no relayed frame in a \"dropped\" dump")
    print("INFO e.g. " + sample(r, lambda x: x[2] == "dropped: rogue_master"))
    print("INFO e.g. " + sample(r, lambda x: x[2] == "dropped: bad_version"))
elif check == "all":
    path, status = args
    j = json.load(open(status))
    r = rows(path)
    rx = sum(p["rx"] for p in j["ports"])
    dump = j["dump"]
    verdict(len(r) == rx and dump["frames_dropped"] == 0,
            f"every frame received is in the file: tshark {len(r)}, rx {rx}, not dumped {dump['frames_dropped']}")
    def only(mt, iface, ok, what):
        sel = [x for x in r if x[1] == mt and x[0] == iface]
        bad = [x for x in sel if not ok(x[2])]
        verdict(len(sel) > 0 and not bad,
                f"{len(sel)} {what} from {iface}: {sel[0][2] if sel else '-'}" + (f"; not: {bad[0]}" if bad else ""))
    only("0x00", "up", lambda c: c.startswith("forwarded to dn1,dn2; ") and "residence" in c, "Sync")
    only("0x08", "up", lambda c: c == "forwarded to dn1,dn2; correction += its event's residence at send", "Follow_Up")
    for p in ("dn1", "dn2"):
        only("0x01", p, lambda c: c == "forwarded to up; residence measured at send, added to its Follow_Up or Delay_Resp", "Delay_Req")
    only("0x09", "up", lambda c: c in ("forwarded to dn1; correction += its event's residence at send",
                                       "forwarded to dn2; correction += its event's residence at send"), "Delay_Resp")
    print("INFO e.g. " + sample(r, lambda x: x[1] == "0x09"))
elif check == "rotated":
    path, status, max_bytes = args[0], args[1], int(args[2])
    import os
    j = json.load(open(status))
    sizes = {p: os.path.getsize(p) for p in (path, path + ".1")}
    verdict(all(s <= max_bytes for s in sizes.values()) and sizes[path + ".1"] > max_bytes - 1024,
            f"each file within max_bytes {max_bytes}: {sizes}")
    n = {p: len(rows(p)) for p in sizes}
    verdict(all(v > 0 for v in n.values()), f"tshark reads both: {n} frames")
    verdict(j["dump"]["rotations"] >= 1, f"rotations {j['dump']['rotations']}, written {j['dump']['frames_written']}")
elif check == "restarted":
    path, = args
    r = rows(path)
    verdict(len(r) > 0 and all(c == "dropped: rogue_master" for _, _, c in r),
            f"the new file holds the rogue frames sent after the reload: {len(r)} frames")
