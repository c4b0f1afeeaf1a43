#!/usr/bin/env python3
"""The Python side of tests/bench.sh: tables and verdicts from ptpload's JSON files.

  bench.py summarize RUN TITLE PREFIX FORWARDERS   the table of one scenario (medians over its runs)
  bench.py zero-loss FILE                          exit 0 if nothing was lost either way
  bench.py ramp-step FILE FORWARDER RATE           one line of the ramp (c)
  bench.py offered FILE                            the offered Delay_Req/s, rounded
  bench.py limited FILE                            "yes" if ptpload was the limit, else ""
  bench.py ramp-summary RAMP_TXT                   the zero-loss maximum of each forwarder
  bench.py tx-path TXPATH_TXT                      --tx-path: CPU per frame of each send path
  bench.py top-summary TOP_TXT                     (d): sent/s and delivered share per forwarder
  bench.py through FILE                            frames got through both ways (exit 0) or not
  bench.py io STATUS                               ptpproxy's batching figures from its status file
  bench.py dropped FILE                            no foreign frame leaked, no Delay_Resp on
                                                   another client's port (exit 0) or not
  bench.py bench-exe                               the relay bench's executable, from cargo's
                                                   JSON messages on stdin
  bench.py cpu-latency US                          hold a PM QoS CPU wake-up latency request of
                                                   US microseconds until killed
  bench.py burst-summary RUN                       (e): the master's load per 10 ms, answered
                                                   share, Delay_Req latency, ptpproxy vs paced
  bench.py paced FILE MOST                         exit 0 if the master read at most MOST
                                                   Delay_Req in any 10 ms (and some)
  bench.py valid-json FILE                         exit 0 if FILE is valid JSON
"""
import glob
import json
import os
import signal
import statistics
import struct
import sys


def load_json(path):
    return json.load(open(path))


def summarize(run, title, prefix, forwarders):
    def load(fwd):
        out = []
        for f in sorted(glob.glob(f"{run}/{prefix}-{fwd}-*.json")):
            j = json.load(open(f))
            p = f[:-5] + ".proxy"
            if os.path.exists(p):
                cpu, wall, hwm, rc, sys_s = open(p).read().split()
                j["proxy"] = {"cpu_s": float(cpu), "wall_s": float(wall), "vmhwm_kib": int(hwm),
                              "sys_s": float(sys_s)}
            st = f[:-5] + ".status"
            if os.path.exists(st):
                try:
                    status = json.load(open(st))
                    j["io"] = status["io"]
                    j["io"]["wall_s"] = j["proxy"]["wall_s"]
                    j["io"]["correction"] = status.get("correction", {})
                except (ValueError, KeyError):
                    pass
            out.append(j)
        return out

    fwds = forwarders.split()
    runs = {f: load(f) for f in fwds}

    def med(f, get, agg=statistics.median):
        v = [get(j) for j in runs[f]]
        return agg(v) if v else float("nan")

    rows = [
        ("offered Delay_Req/s", lambda j: j["offered_delay_req_per_s"], "{:.0f}"),
        ("up (Delay_Req) lost %", lambda j: 100 * j["up"]["loss_ratio"], "{:.4f}"),
        ("down (Resp/Sync/FU/Ann) lost %", lambda j: 100 * j["down"]["loss_ratio"], "{:.4f}"),
    ]
    for d in ("up", "down"):
        for q in ("p50", "p99", "p999", "max"):
            rows.append((f"{d} latency {q} us", (lambda d, q: lambda j: j[d]["latency"][q + "_us"])(d, q), "{:.1f}"))
    rows += [
        ("Delay_Resp for others /client/s", lambda j: j["delay_resp_per_client"]["others"]["median"] / j["elapsed_s"], "{:.0f}"),
        ("foreign frames leaked", lambda j: j["foreign"]["delay_req"]["leaked"] + j["foreign"]["delay_resp"]["leaked"], "{:.0f}"),
        ("ptpload cpu % of a core", lambda j: 100 * j["generator"]["cpu_share"], "{:.0f}"),
    ]

    # the relays' own CPU time and peak RSS (none for the bridge: it forwards in the kernel)
    def relay(get):
        return lambda j: get(j["proxy"]) if "proxy" in j else float("nan")

    rows += [
        ("relay cpu % of a core", relay(lambda p: 100 * p["cpu_s"] / p["wall_s"]), "{:.1f}"),
        ("  of which in the kernel %", relay(lambda p: 100 * p["sys_s"] / p["wall_s"]), "{:.1f}"),
        ("relay peak RSS (VmHWM) KiB", relay(lambda p: p["vmhwm_kib"]), "{:.0f}", max),
    ]

    # ptpproxy's own batching figures (its final status file)
    def io(get):
        return lambda j: get(j["io"]) if "io" in j else float("nan")

    rows += [
        ("wake-ups/s", io(lambda i: i["wakeups"] / i["wall_s"]), "{:.0f}"),
        ("frames per wake-up", io(lambda i: i["frames"] / max(i["wakeups"], 1)), "{:.1f}"),
        ("syscalls per frame", io(lambda i: i["syscalls"] / max(i["frames"], 1)), "{:.3f}"),
        ("hold (residence) mean us", io(lambda i: i["hold_mean_us"]), "{:.0f}"),
        ("hold (residence) max us", io(lambda i: i["hold_max_us"]), "{:.0f}", max),
        # Events not sent because their residence could not be measured (the most of any run):
        # a step of the wall clock (its size is in ptpproxy's log), a residence above the ceiling.
        ("events lost to clock_step", io(lambda i: i["correction"].get("clock_step", 0)), "{:.0f}", max),
        ("events lost to out_of_range", io(lambda i: i["correction"].get("out_of_range", 0)), "{:.0f}", max),
    ]

    def ratio(p, x):
        return f"{p / x:.2f}x" if x and x == x and p == p else "-"

    refs = [f for f in ("bridge", "naive", "immediate") if f in runs and "ptpproxy" in runs]
    print(f"\n{title}  (median of " + " / ".join(f"{len(runs[f])} {f}" for f in fwds) + " runs)")
    print(f"  {'metric':<34}" + "".join(f"{f:>12}" for f in fwds) + "".join(f"{'px/' + r:>11}" for r in refs))
    for name, get, fmt, *agg in rows:
        v = {f: med(f, get, *agg) for f in fwds}
        cells = "".join(f"{'-' if v[f] != v[f] else fmt.format(v[f]):>12}" for f in fwds)
        print(f"  {name:<34}{cells}" + "".join(f"{ratio(v['ptpproxy'], v[r]):>11}" for r in refs))
    for f in runs:
        lim = [r for j in runs[f] for r in j["generator"]["reasons"]]
        if lim:
            print(f"  note: ptpload may have been the limit in {f} runs: {lim[0]}" + (f" (+{len(lim) - 1} more)" if len(lim) > 1 else ""))


def zero_loss(path):
    j = load_json(path)
    return 0 if j["up"]["lost"] == 0 and j["down"]["lost"] == 0 else 1


def ramp_step(path, fwd, rate):
    j = load_json(path)
    print(f"  {fwd:<9} {int(rate):>4}/client/s offered {j['offered_delay_req_per_s']:>8.0f} Delay_Req/s: "
          f"lost up {j['up']['lost']} down {j['down']['lost']}, p99 up {j['up']['latency']['p99_us']:.0f} us "
          f"down {j['down']['latency']['p99_us']:.0f} us, ptpload cpu {100 * j['generator']['cpu_share']:.0f}%"
          + (" [generator limit]" if j["generator"]["limited"] else ""))


def ramp_summary(path):
    best = {}
    for line in open(path):
        f, b, lim = line.split()
        best[f] = (int(b), lim)
    print("\n(c) zero-loss maximum, Delay_Req/s offered (as many Delay_Resp back; frames through the forwarder ~2x)")
    for f, (b, lim) in best.items():
        print(f"  {f:<9} {b:>8}" + ("  (ptpload was the limit at this step: the forwarder may do more)" if lim == "yes" else ""))
    for ref in ("bridge", "naive"):
        if ref in best and "ptpproxy" in best and best[ref][0]:
            print(f"  ratio ptpproxy / {ref}: {best['ptpproxy'][0] / best[ref][0]:.2f}x")


def top_summary(path):
    runs = {}
    for line in open(path):
        f, p = line.split()
        runs.setdefault(f, []).append(load_json(p))

    def med(js, get):
        return statistics.median(get(j) for j in js)

    rows = {}
    for f, js in runs.items():
        rows[f] = {
            "up sent/s": med(js, lambda j: j["up"]["sent"] / j["elapsed_s"]),
            "up delivered %": med(js, lambda j: 100 * j["up"]["received"] / max(1, j["up"]["expected"])),
            "down sent/s": med(js, lambda j: j["down"]["sent"] / j["elapsed_s"]),
            "down delivered %": med(js, lambda j: 100 * j["down"]["received"] / max(1, j["down"]["expected"])),
            # What got through per second: when ptpload is the limit (a bridge forwards inside
            # ptpload's own sends, slowing them), the share alone flatters the slower sender.
            "up delivered/s": med(js, lambda j: j["up"]["received"] / j["elapsed_s"]),
            "down delivered/s": med(js, lambda j: j["down"]["received"] / j["elapsed_s"]),
            "ptpload cpu %": med(js, lambda j: 100 * j["generator"]["cpu_share"]),
        }
    names = list(rows)
    print(f"\n(d) top speed (median of {min(len(v) for v in runs.values())} runs): what ptpload sent and the share delivered")
    print(f"  {'metric':<20}" + "".join(f"{n:>12}" for n in names)
          + ("".join(f"{n[:5] + '/bridge':>14}" for n in names if n != "bridge") if "bridge" in rows else ""))
    for m in rows[names[0]]:
        line = f"  {m:<20}" + "".join(f"{rows[n][m]:>12.1f}" for n in names)
        if "bridge" in rows:
            line += "".join(f"{rows[n][m] / max(1e-9, rows['bridge'][m]):>13.2f}x" for n in names if n != "bridge")
        print(line)
    for f, js in runs.items():
        why = [r for j in js for r in j["generator"]["reasons"]]
        if why:
            print(f"  {f}: ptpload limit: {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1 else ""))


def tx_path(path):
    cost = {}
    for line in open(path):
        w = line.split()
        f = dict(zip(w[1::2], w[2::2]))
        cost.setdefault(w[0], []).append(float(f["user_ns_per_frame"]) + float(f["sys_ns_per_frame"]))
    base = statistics.median(cost["sendmmsg"])
    print(f"  {'send path':<18}{'CPU ns/frame':>14}{'vs sendmmsg':>13}   (median of {len(cost['sendmmsg'])}; user + system)")
    for mode, v in cost.items():
        m = statistics.median(v)
        print(f"  {mode:<18}{m:>14.0f}{m / base:>12.2f}x")


def through(path):
    j = load_json(path)
    up, down = j["up"], j["down"]
    print(f"    up {up['received']}/{up['expected']} (p99 {up['latency']['p99_us']:.0f} us), "
          f"down {down['received']}/{down['expected']} (p99 {down['latency']['p99_us']:.0f} us)")
    return 0 if up["received"] > 0 and down["received"] > 0 else 1


def io(path):
    i = load_json(path)["io"]
    print(f"    batching: {i['wakeups']} wake-ups, {i['frames'] / max(i['wakeups'], 1):.1f} frames per "
          f"wake-up, {i['syscalls'] / max(i['frames'], 1):.3f} syscalls per frame, hold mean "
          f"{i['hold_mean_us']} us max {i['hold_max_us']} us (max_hold_us {i['max_hold_us']})")
    return 0


def dropped(path):
    j = load_json(path)
    leaked = j["foreign"]["delay_req"]["leaked"] + j["foreign"]["delay_resp"]["leaked"]
    wrong = j["flows"]["delay_resp"]["wrong_port"]
    print(f"    foreign leaked {leaked}, Delay_Resp on another client's port {wrong}")
    return 0 if leaked == 0 and wrong == 0 else 1


def bench_exe():
    for line in sys.stdin:
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "relay" and m.get("executable"):
            print(m["executable"])


def cpu_latency(us):
    # The request lives as long as this process keeps the device open.
    fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    os.write(fd, struct.pack("i", int(us)))
    signal.pause()


def burst_summary(run):
    """(e): per forwarder, medians over the runs of what the master read per 10 ms, the share
    of the clients' Delay_Req it read and answered, and their Delay_Req latency."""
    print(f"{'':<34}{'ptpproxy':>14}{'paced':>14}")
    rows = [
        ("Delay_Req sent by the clients", lambda j: j["flows"]["delay_req"]["sent"], "{:.0f}"),
        ("read by the master", lambda j: 100 * j["master"]["delay_req_seen"] / max(1, j["flows"]["delay_req"]["sent"]), "{:.2f}%"),
        ("at the master per 10 ms: max", lambda j: j["master"]["per_10ms_max"], "{:.0f}"),
        ("at the master per 10 ms: p99", lambda j: j["master"]["per_10ms_p99"], "{:.0f}"),
        ("not answered (over capacity)", lambda j: j["master"]["refused"], "{:.0f}"),
        ("answered (Delay_Resp at clients)", lambda j: 100 * j["flows"]["delay_resp"]["received"] / max(1, j["flows"]["delay_req"]["sent"]), "{:.2f}%"),
        ("Delay_Req latency p50 (ms)", lambda j: j["flows"]["delay_req"]["latency"]["p50_us"] / 1000, "{:.2f}"),
        ("Delay_Req latency max (ms)", lambda j: j["flows"]["delay_req"]["latency"]["max_us"] / 1000, "{:.2f}"),
    ]
    runs = {f: [load_json(p) for p in sorted(glob.glob(f"{run}/e-{f}-*.json"))] for f in ("ptpproxy", "paced")}
    for name, get, fmt in rows:
        cells = []
        for f in ("ptpproxy", "paced"):
            vals = [get(j) for j in runs[f]]
            cells.append(fmt.format(statistics.median(vals)) if vals else "-")
        print(f"{name:<34}{cells[0]:>14}{cells[1]:>14}")


def paced(path, most):
    """True if the master read at most MOST Delay_Req in any 10 ms window, and some at all."""
    m = load_json(path)["master"]
    print(f"  paced: master read {m['delay_req_seen']}, per 10 ms max {m['per_10ms_max']} p99 {m['per_10ms_p99']}")
    return 0 if 0 < m["delay_req_seen"] and m["per_10ms_max"] <= int(most) else 1


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "summarize":
        summarize(*args)
    elif cmd == "zero-loss":
        return zero_loss(*args)
    elif cmd == "ramp-step":
        ramp_step(*args)
    elif cmd == "offered":
        print(round(load_json(args[0])["offered_delay_req_per_s"]))
    elif cmd == "limited":
        print("yes" if load_json(args[0])["generator"]["limited"] else "")
    elif cmd == "ramp-summary":
        ramp_summary(*args)
    elif cmd == "tx-path":
        tx_path(*args)
    elif cmd == "top-summary":
        top_summary(*args)
    elif cmd == "through":
        return through(*args)
    elif cmd == "dropped":
        return dropped(*args)
    elif cmd == "bench-exe":
        bench_exe()
    elif cmd == "io":
        return io(*args)
    elif cmd == "cpu-latency":
        cpu_latency(*args)
    elif cmd == "burst-summary":
        burst_summary(*args)
    elif cmd == "paced":
        return paced(*args)
    elif cmd == "valid-json":
        load_json(args[0])
    else:
        sys.exit(f"bench.py: unknown command {cmd!r} (see its header)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
