#!/usr/bin/env python3
"""Judge the runs of tests/hardening.sh: ptpload's JSON (--json), ptpproxy's status file (final,
written at SIGTERM) and its stderr log.

  hardening.py CHECK ARGS...

Prints one line per finding: "PASS text", "FAIL text", "INFO text" (a measurement) or "NOTE text"
(a property of ptpproxy worth knowing that the issue does not require: reported, not judged).
Exits 0 unless it could not read its input. Standard library only.
"""

import json
import re
import statistics
import sys

CLIENT_ID = "02706c.fffe.{:06x}-1"  # ptpload's client c: clockIdentity 02:70:'l':ff:fe:c (frames.rs)
MAX_IDENTITIES_PER_MAC = 8  # src/clients.rs


def load(path):
    with open(path) as f:
        return json.load(f)


def out(kind, text):
    print(f"{kind} {text}", flush=True)


def check(ok, text):
    out("PASS" if ok else "FAIL", text)
    return ok


def port_of(status, name):
    for p in status["ports"]:
        if p["name"] == name:
            return p
    return None


def clients(run, port=None):
    """ptpload's well-behaved clients (on downstream index `port`, 0-based, if given)."""
    return [c for c in run["clients"] if port is None or c["port"] == port]


def spread(v):
    if not v:
        return "none"
    return f"min {min(v)} median {statistics.median(v):g} max {max(v)}"


def served(run, port=None):
    """Per-client share of Delay_Req answered (Delay_Resp received / Delay_Req sent)."""
    return [c["delay_resp_own"] / max(1, c["delay_req_sent"]) for c in clients(run, port)]


def versus_baseline(base, run, port, label, min_ratio=0.9, total_ratio=0.97):
    """Client c's Delay_Resp count in `run` against the same client's in the baseline run."""
    b = {c["client"]: c["delay_resp_own"] for c in clients(base, port)}
    r = {c["client"]: c["delay_resp_own"] for c in clients(run, port)}
    ratios = [r[c] / b[c] for c in b if b[c] > 0 and c in r]
    if not ratios:
        return check(False, f"{label}: no baseline to compare with")
    total = sum(r.get(c, 0) for c in b) / max(1, sum(b.values()))
    return check(
        min(ratios) >= min_ratio and total >= total_ratio,
        f"{label}: Delay_Resp per client {spread(sorted(r.values()))} vs baseline "
        f"{spread(sorted(b.values()))} (worst client {100 * min(ratios):.0f}% of its baseline, "
        f"all together {100 * total:.1f}%; need >= {100 * min_ratio:.0f}% and {100 * total_ratio:.0f}%)",
    )


def latency(run, base):
    u, d = run["up"]["latency"], run["down"]["latency"]
    bu, bd = base["up"]["latency"], base["down"]["latency"]
    return (
        f"latency p50/p99 up {u['p50_us']:.0f}/{u['p99_us']:.0f} us (baseline {bu['p50_us']:.0f}/"
        f"{bu['p99_us']:.0f}), down {d['p50_us']:.0f}/{d['p99_us']:.0f} us (baseline "
        f"{bd['p50_us']:.0f}/{bd['p99_us']:.0f})"
    )


def flood_rate(f):
    return f["sent"] / max(1e-9, f["elapsed_s"])


def flood_sent_ok(f, label):
    rate = flood_rate(f)
    return check(
        rate >= 0.5 * f["rate"] and f["tx_errors"] == 0,
        f"{label}: ptpload sent {f['sent']} frames at {rate:,.0f}/s (asked {f['rate']:,.0f}/s, "
        f"{f['tx_errors']} send errors)",
    )


def in_table(status, run, port=None):
    ids = {c["identity"] for c in status["client_table"]}
    want = [CLIENT_ID.format(c["client"]) for c in clients(run, port)]
    return sum(1 for i in want if i in ids), len(want)


def table_capacity(status, label):
    c = status["clients"]
    return check(
        c["count"] <= c["capacity"],
        f"{label}: client table {c['count']} of {c['capacity']} entries (never above capacity)",
    )


def dropped(status):
    return {k: v for k, v in status["dropped"].items() if v}


def per_port_rx(status):
    return ", ".join(f"{p['name']} rx {p['rx']} kernel_drops {p['kernel_drops']}" for p in status["ports"])


# ---- scenario 1: Delay_Req flood ------------------------------------------------------------


def flood_before(base_path, run_path, status_path):
    base, run, st = load(base_path), load(run_path), load(status_path)
    f = run["flood"][0]
    label = "flood before the clients"
    flood_sent_ok(f, f"{label}: flood of fresh identities+MACs on dn1")
    cap = st["clients"]["capacity"]
    share = cap // 2
    table_capacity(st, label)
    check(
        f["identities_at_master"] <= share and f["delay_req_at_master"] == f["identities_at_master"],
        f"{label}: reached the upstream: {f['delay_req_at_master']} flood Delay_Req, one per admitted "
        f"fake identity ({f['identities_at_master']}; dn1's share is {share}), i.e. "
        f"{100 * f['delay_req_at_master'] / max(1, f['sent']):.2f}% of the flood",
    )
    versus_baseline(base, run, 1, f"{label}: clients on dn2 (arriving during the flood)")
    dn1 = port_of(st, "dn1")
    dn1_entries = [c for c in st["client_table"] if c["port"] == "dn1"]
    admitted_frames = sum(c["delay_req"] for c in dn1_entries)
    refused = st["dropped"]["port_share_full"] + st["dropped"]["table_full"] + st["dropped"]["mac_limit"]
    check(
        st["dropped"]["port_share_full"] > 0 and admitted_frames + refused + st["dropped"]["rate_limited"] == dn1["rx"],
        f"{label}: status file accounts for every dn1 frame: rx {dn1['rx']} = {admitted_frames} from "
        f"the {len(dn1_entries)} dn1 entries + port_share_full {st['dropped']['port_share_full']} + "
        f"table_full {st['dropped']['table_full']} + mac_limit {st['dropped']['mac_limit']} + "
        f"rate_limited {st['dropped']['rate_limited']}",
    )
    refusals = ("port_share_full", "table_full", "mac_limit")
    by_port = {p["name"]: {r: p["dropped"].get(r, 0) for r in refusals} for p in st["ports"]}
    check(
        all(by_port["dn1"][r] == st["dropped"][r] for r in refusals)
        and all(by_port[p][r] == 0 for p in by_port if p != "dn1" for r in refusals),
        f"{label}: the status file shows the flood by port and reason: "
        + "; ".join(f"{p} " + " ".join(f"{r} {n}" for r, n in c.items()) for p, c in by_port.items()),
    )
    up = run["up"]
    out(
        "INFO",
        f"{label}: at the grandmaster {up['received'] + f['delay_req_at_master']} Delay_Req = "
        f"{up['received']} from real clients + {f['delay_req_at_master']} from the flood "
        f"(of {f['sent']} sent); ptpproxy: {per_port_rx(st)}; dropped {dropped(st)}",
    )
    n1, t1 = sum(1 for c in clients(run, 0) if c["delay_resp_own"] > 0), len(clients(run, 0))
    out(
        "NOTE",
        f"{label}: clients arriving on the flooded port itself: {n1} of {t1} admitted "
        f"(dn1's share is held by fake identities until they age out, client_timeout_s after the "
        f"flood stops); {latency(run, base)}",
    )


def known_before(base_path, run_path, status_path):
    base, run, st = load(base_path), load(run_path), load(status_path)
    f = run["flood"][0]
    label = "flood after the clients"
    flood_sent_ok(f, f"{label}: flood of fresh identities+MACs on dn1")
    table_capacity(st, label)
    have, want = in_table(st, run)
    check(have == want, f"{label}: clients known before the flood kept their entries: {have} of {want}")
    share = st["clients"]["capacity"] // 2
    known_dn1 = len(clients(run, 0))
    check(
        f["identities_at_master"] == share - known_dn1,
        f"{label}: the flood got only the rest of dn1's share: {f['identities_at_master']} fake "
        f"identities admitted = share {share} - {known_dn1} known clients",
    )
    versus_baseline(base, run, 0, f"{label}: known clients on the flooded port dn1", 0.85, 0.95)
    versus_baseline(base, run, 1, f"{label}: known clients on dn2")
    out("INFO", f"{label}: ptpproxy: {per_port_rx(st)}; dropped {dropped(st)}; {latency(run, base)}")


def single_mac(base_path, run_path, status_path):
    base, run, st = load(base_path), load(run_path), load(status_path)
    f = run["flood"][0]
    label = "flood from one MAC"
    flood_sent_ok(f, f"{label}: fresh identities, one MAC, on dn1")
    check(
        f["identities_at_master"] <= MAX_IDENTITIES_PER_MAC and st["dropped"]["mac_limit"] > 0,
        f"{label}: it took {f['identities_at_master']} entries (at most {MAX_IDENTITIES_PER_MAC}); "
        f"mac_limit {st['dropped']['mac_limit']}",
    )
    table_capacity(st, label)
    versus_baseline(base, run, 0, f"{label}: clients on dn1 itself (arriving during the flood)", 0.85, 0.95)
    versus_baseline(base, run, 1, f"{label}: clients on dn2")
    out("INFO", f"{label}: ptpproxy: {per_port_rx(st)}; dropped {dropped(st)}")


def table_full(base_path, run_path, status_path):
    base, run, st = load(base_path), load(run_path), load(status_path)
    label = "flood on both ports"
    for f in run["flood"]:
        flood_sent_ok(f, f"{label}: fresh identities+MACs on {f['iface'].split(':')[-1]}")
    c = st["clients"]
    check(
        c["count"] == c["capacity"] and st["dropped"]["table_full"] > 0,
        f"{label}: the table filled to {c['count']} of {c['capacity']} and stayed there "
        f"(table_full {st['dropped']['table_full']}, port_share_full {st['dropped']['port_share_full']})",
    )
    have, want = in_table(st, run)
    check(have == want, f"{label}: clients known before the flood kept their entries: {have} of {want}")
    versus_baseline(base, run, None, f"{label}: known clients on both ports", 0.85, 0.95)
    admitted = sum(f["identities_at_master"] for f in run["flood"])
    out(
        "INFO",
        f"{label}: {admitted} fake identities admitted in all (= capacity - {want} clients); "
        f"ptpproxy: {per_port_rx(st)}",
    )


# ---- scenario 2: one client far above max_delay_req_rate --------------------------------------


def over_rate(base_path, run_path, status_path, max_rate):
    base, run, st = load(base_path), load(run_path), load(status_path)
    f = run["flood"][0]
    rate = float(max_rate)
    label = "client above its rate"
    flood_sent_ok(f, f"{label}: one identity on dn1")
    secs = f["elapsed_s"]
    got = f["delay_req_at_master"]
    # The rate plus one second of burst; ptpproxy judges a frame when it reads it, which may be
    # up to the 0.3 s of draining after the last one was sent.
    allowed = rate * (secs + 0.3) + rate
    check(
        0.9 * rate * secs <= got <= allowed,
        f"{label}: {f['sent']} Delay_Req at {flood_rate(f):.0f}/s, {got} reached the grandmaster = "
        f"{got / max(1e-9, secs):.1f}/s over {secs:.1f} s (limit {rate:.0f}/s + {rate:.0f} burst: "
        f"{rate * secs + rate:.0f}, at most {allowed:.0f} with the drain)",
    )
    check(
        st["dropped"]["rate_limited"] == f["sent"] - got,
        f"{label}: status rate_limited {st['dropped']['rate_limited']} = sent {f['sent']} - relayed {got}",
    )
    versus_baseline(base, run, None, f"{label}: the other clients")


# ---- scenario 3: rogue master ------------------------------------------------------------------


def rogue(run_path, status_path, allow):
    run, st = load(run_path), load(status_path)
    f = run["flood"][0]
    allow = allow == "allow"
    label = f"rogue master ({'allow' if allow else 'no'} allow_downstream_masters)"
    flood_sent_ok(f, f"{label}: Sync/Follow_Up/Announce on dn1")
    at = {p["name"].split(":")[-1]: p["flood_rx"] for p in run["ports"]}
    sent = f["sent"]
    lost = port_of(st, "dn1")["kernel_drops"] + sum(p["ring_drops"] for p in run["ports"])
    if allow:
        check(
            sent - lost <= at["gm0"] <= sent and sent - lost <= at["cl2"] <= sent and at["cl1"] == 0,
            f"{label}: relayed to the upstream ({at['gm0']} of {sent}) and dn2 ({at['cl2']}), never "
            f"back out of dn1 ({at['cl1']})",
        )
        check(st["dropped"]["rogue_master"] == 0, f"{label}: status rogue_master {st['dropped']['rogue_master']}")
    else:
        check(
            at["gm0"] == 0 and at["cl2"] == 0 and at["cl1"] == 0,
            f"{label}: none of {sent} reached the upstream ({at['gm0']}), dn2 ({at['cl2']}) or dn1 ({at['cl1']})",
        )
        check(
            st["dropped"]["rogue_master"] == sent - port_of(st, "dn1")["kernel_drops"],
            f"{label}: status rogue_master {st['dropped']['rogue_master']} of {sent} sent",
        )
    s = run["flows"]["sync"]
    check(
        s["lost"] == 0 and run["flows"]["delay_resp"]["lost"] == 0,
        f"{label}: the real master's Sync {s['received']} of {s['expected']}, clients' Delay_Resp "
        f"{run['flows']['delay_resp']['received']} of {run['flows']['delay_resp']['expected']}",
    )


# ---- scenario 4: malformed frames ----------------------------------------------------------------


def malformed(base_path, run_path, status_path):
    base, run, st = load(base_path), load(run_path), load(status_path)
    f = run["flood"][0]
    label = "malformed frames"
    flood_sent_ok(f, f"{label}: 14 kinds in turn on dn1")
    expect = {}
    for kind, reason in f["expected"].items():
        expect.setdefault(reason, []).append(kind)
    drops = port_of(st, "dn1")["kernel_drops"]
    for reason, kinds in sorted(expect.items()):
        n = sum(f["by_kind"][k] for k in kinds)
        if reason == "forwarded.signaling":
            # Relayed upstream within dn1's Signaling/Management rate limit, the rest dropped.
            limited = st["dropped"]["signaling_rate_limited"]
            got = st["forwarded"]["signaling"] + limited
            on_dn1 = got
            check(
                limited > 0 and port_of(st, "dn1")["dropped"].get("signaling_rate_limited", 0) == limited,
                f"{label}: Signaling above the per-port limit on dn1: {st['forwarded']['signaling']} "
                f"relayed, signaling_rate_limited {limited}",
            )
        elif reason.startswith("forwarded."):
            got = st["forwarded"][reason.split(".", 1)[1]]
            on_dn1 = got
        else:
            got = st["dropped"][reason]
            on_dn1 = port_of(st, "dn1")["dropped"].get(reason, 0)
        check(
            n - drops <= got <= n and on_dn1 == got,
            f"{label}: {'+'.join(kinds)}: {n} sent, counted as {reason}: {got} (on dn1: {on_dn1})",
        )
    tlv = f["by_kind"].get("huge_tlv", 0)
    at = {p["name"].split(":")[-1]: p for p in run["ports"]}
    check(
        all(p["other"] == 0 for p in run["ports"]) and at["cl1"]["flood_rx"] == 0 and at["cl2"]["flood_rx"] == 0,
        f"{label}: nothing broken was relayed (frames ptpload could not parse: "
        + ", ".join(f"{k} {p['other']}" for k, p in at.items())
        + ")",
    )
    out(
        "NOTE",
        f"{label}: Signaling with a TLV claiming 65535 bytes is well-formed as far as the relay "
        f"reads it and goes upstream like any Signaling, within the port's limit of "
        f"max_delay_req_rate per second: {at['gm0']['flood_rx']} of {tlv} reached the grandmaster, "
        f"at {at['gm0']['flood_rx'] / max(1e-9, run['elapsed_s']):.0f}/s",
    )
    versus_baseline(base, run, None, f"{label}: the clients")
    out("INFO", f"{label}: ptpproxy: {per_port_rx(st)}; dropped {dropped(st)}; {latency(run, base)}")


# ---- scenario 5: link flaps ----------------------------------------------------------------------


def resume_ms(port, up_ns):
    """ms from `up_ns` to the first arrival after it on `port`; None if there was none."""
    if port["last_rx_ns"] < up_ns:
        return None
    for a, b in port["gaps"]:
        if a <= up_ns < b:
            return (b - up_ns) / 1e6
    return 0.0  # no silence of --gap-ms across up_ns


def flaps(run_path, events_path, log_path, max_resume_ms, max_lines):
    run = load(run_path)
    max_resume_ms, max_lines = float(max_resume_ms), int(max_lines)
    ports = run["ports"]
    names = [p["name"].split(":")[-1] for p in ports]
    with open(log_path, errors="replace") as f:
        log = f.read().splitlines()
    gap_ms = run["options"]["gap_ms"]
    for line in open(events_path):
        what, ifname, down, up, watch, l0, l1 = line.split()
        down, up, l0, l1 = int(down), int(up), int(l0), int(l1)
        parts = []
        ok = True
        for w in watch.split(","):
            p = ports[names.index(w)]
            r = resume_ms(p, up)
            if r is None:
                ok = False
                parts.append(f"{w}: nothing after it (last arrival {(p['last_rx_ns'] - up) / 1e6:.0f} ms from it)")
            else:
                ok = ok and r <= max_resume_ms
                parts.append(f"{w} {r:.0f} ms" if r > 0 else f"{w} < {gap_ms} ms")
        check(
            ok,
            f"link flaps: {what} ({(up - down) / 1e6:.0f} ms): forwarding resumed within "
            f"{max_resume_ms:.0f} ms of the link's return: " + ", ".join(parts),
        )
        about = re.compile(rf"\bport {re.escape(ifname)}\b")
        lines = [x for x in log[l0:l1] if about.search(x)]
        check(
            1 <= len(lines) <= max_lines,
            f"link flaps: {what}: ptpproxy logged {len(lines)} line(s) about {ifname} (1..{max_lines})"
            + (": " + " | ".join(x.removeprefix("ptpproxy: ") for x in lines) if lines else ""),
        )


# ---- gaps in a time window (reloads) -----------------------------------------------------------


def no_gap(run_path, t0, t1, watch, label):
    """No silence of --gap-ms on the watched ports between t0 and t1 (ns), and arrivals after t1."""
    run = load(run_path)
    t0, t1 = int(t0), int(t1)
    gap_ms = run["options"]["gap_ms"]
    parts, ok = [], True
    for p in run["ports"]:
        name = p["name"].split(":")[-1]
        if name not in watch.split(","):
            continue
        bad = [(a, b) for a, b in p["gaps"] if b > t0 and a < t1]
        alive = p["last_rx_ns"] > t1
        ok = ok and not bad and alive
        parts.append(
            f"{name} " + (", ".join(f"{(b - a) / 1e6:.0f} ms silence" for a, b in bad) or f"no silence >= {gap_ms} ms")
            + ("" if alive else " and nothing after")
        )
    check(ok, f"{label}: " + "; ".join(parts))


def first_after(run_path, port, t, max_ms, label):
    """The first arrival on `port` comes after t (ns) and within max_ms of it."""
    run = load(run_path)
    p = [p for p in run["ports"] if p["name"].split(":")[-1] == port][0]
    t = int(t)
    if p["first_rx_ns"] == 0:
        check(False, f"{label}: nothing ever arrived on {port}")
        return
    d = (p["first_rx_ns"] - t) / 1e6
    check(0 <= d <= float(max_ms), f"{label}: first frame on {port} {d:.0f} ms after the reload (<= {max_ms} ms)")


def served_port(run_path, port, min_ratio, label):
    run = load(run_path)
    s = served(run, int(port))
    check(bool(s) and min(s) >= float(min_ratio), f"{label}: share of Delay_Req answered per client {spread([round(x, 3) for x in s])}")


CHECKS = {
    "flood-before": flood_before,
    "known-before": known_before,
    "single-mac": single_mac,
    "table-full": table_full,
    "over-rate": over_rate,
    "rogue": rogue,
    "malformed": malformed,
    "flaps": flaps,
    "no-gap": no_gap,
    "first-after": first_after,
    "served": served_port,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(CHECKS)} ARGS...")
    try:
        CHECKS[sys.argv[1]](*sys.argv[2:])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        out("FAIL", f"{sys.argv[1]}: cannot judge the run: {type(e).__name__}: {e}")
