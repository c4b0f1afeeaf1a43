#!/usr/bin/python3
"""Judges for tests/ops.sh: what ptpproxy's status file says about the grandmaster side and the
clients, and whether its metrics file (the Prometheus text format) parses and says the same.
Prints PASS/FAIL/INFO lines (tests/lib/check.sh's `verdicts` counts them).

  ops.py upstream STATUS GM_IDENTITY CLOCK_CLASS CHANGES   the upstream section, fresh ages
  ops.py clients STATUS IDENTITY...                        Delay_Req and Delay_Resp per client
  ops.py aged BEFORE AFTER SECONDS                         ages grew by about SECONDS
  ops.py metrics STATUS PROM                               PROM parses; its figures are STATUS's

The metrics file is parsed by prometheus_client's own text parser (Debian's
python3-prometheus-client, run by /usr/bin/python3), not by anything of ptpproxy's.
"""

import json
import math
import sys


def verdict(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    return ok


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def domain0(status):
    for u in status.get("upstream") or []:
        if u["domain"] == 0:
            return u
    return None


def upstream(path, gm, clock_class, changes):
    s = load(path)
    u = domain0(s)
    if not verdict(u is not None, "status file has an upstream entry for domain 0"):
        return
    g = u.get("grandmaster") or {}
    print(f"INFO upstream: {json.dumps(u)}")
    verdict(g.get("identity") == gm, f"grandmaster identity {g.get('identity')} is the ptp4l grandmaster's {gm}")
    verdict(g.get("clock_class") == int(clock_class), f"clockClass {g.get('clock_class')} == {clock_class}")
    verdict(u.get("master_port") == gm + "-1", f"master port {u.get('master_port')} == {gm}-1")
    verdict(g.get("priority1") == 10 and g.get("steps_removed") == 0,
            f"priority1 {g.get('priority1')} (ptp4l's configured 10), stepsRemoved {g.get('steps_removed')} (0)")
    # ptp4l: Sync every 125 ms, Announce every 250 ms; the file is rewritten every second.
    for key, limit in (("sync_age_ms", 1300), ("follow_up_age_ms", 1300), ("announce_age_ms", 1500)):
        age = u.get(key)
        verdict(age is not None and age < limit, f"{key} {age} < {limit}")
    verdict(u.get("grandmaster_changes") == int(changes), f"grandmaster_changes {u.get('grandmaster_changes')} == {changes}")


def clients(path, *identities):
    rows = {r["identity"]: r for r in load(path)["client_table"]}
    for ident in identities:
        r = rows.get(ident)
        if not verdict(r is not None, f"client {ident} in the table"):
            continue
        req, resp = r.get("delay_req", 0), r.get("delay_resp", -1)
        verdict(req > 0 and 0 < resp <= req and resp >= req - 3,
                f"client {ident}: delay_req {req}, delay_resp {resp} (one answer per request, "
                f"the last few may be in flight), moved {r.get('moved')}")


def aged(before, after, seconds):
    a, b = domain0(load(before)), domain0(load(after))
    least = float(seconds) * 1000 - 1500
    for key in ("sync_age_ms", "follow_up_age_ms", "announce_age_ms"):
        x, y = a.get(key), b.get(key)
        verdict(x is not None and y is not None and y > x and y >= least,
                f"{key} grew from {x} to {y} (>= {least:.0f}) with the grandmaster stopped")


def scale(name):
    """How a figure of correction/io/log is exposed (the same rule as src/daemon/status/metrics.rs,
    written again here so that a slip in either shows)."""
    gauges = {"pending", "capacity", "wakeups_per_s", "frames_per_wakeup",
              "syscalls_per_1000_frames", "syslog_connected", "lines_waiting",
              "lines_dropped_unreported"}
    for unit, factor in (("_ns", 1e-9), ("_us", 1e-6)):
        if name.endswith(unit):
            return name[: -len(unit)] + "_seconds", "gauge", factor
    if name in gauges:
        return name, "gauge", 1
    return name + "_total", "counter", 1


def metrics(status_path, prom_path):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        verdict(False, "prometheus_client importable (apt install python3-prometheus-client; tests/install-deps.sh)")
        return
    s = load(status_path)
    with open(prom_path, encoding="utf-8") as f:
        text = f.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own verdict on the format
        verdict(False, f"metrics file parses: {e}")
        return
    verdict(True, f"metrics file parses ({len(families)} families, {len(text.splitlines())} lines)")
    types = {}
    samples = {}
    for fam in families:
        for smp in fam.samples:
            types[smp.name] = fam.type
            samples[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
    verdict(all(n.startswith("ptpproxy_") for n in types), "every metric is named ptpproxy_*")
    bad = [n for n, t in types.items() if t == "counter" and not n.endswith("_total")]
    verdict(not bad, f"every counter sample ends in _total {bad}")
    expected = []  # (name, labels, value, type)

    def want(name, labels, value, kind):
        expected.append(("ptpproxy_" + name, tuple(sorted(labels.items())), value, kind))

    c = s["clients"]
    want("clients", {}, c["count"], "gauge")
    want("clients_capacity", {}, c["capacity"], "gauge")
    for k in ("learned", "aged", "moved"):
        want(f"clients_{k}_total", {}, c[k], "counter")
    want("udp_checksums_completed_total", {}, s["udp_checksums_completed"], "counter")
    for p in s["ports"]:
        port = p["name"]
        want("port_up", {"port": port, "role": p["role"]}, 1 if p["up"] else 0, "gauge")
        for k, m in (("rx", "rx_frames"), ("tx", "tx_frames"), ("tx_errors", "tx_errors"),
                     ("kernel_drops", "kernel_drops"), ("opens", "opens")):
            want(f"port_{m}_total", {"port": port}, p[k], "counter")
        for reason, v in p["dropped"].items():
            want("port_dropped_total", {"port": port, "reason": reason}, v, "counter")
    for group, label in (("forwarded", "message"), ("delay_resp", "delivery"), ("dropped", "reason")):
        for k, v in s[group].items():
            want(f"{group}_total", {label: k}, v, "counter")
    groups = ["io", "log"] + (["correction"] if s["correction_mode"] != "none" else [])
    for group in groups:
        for k, v in s[group].items():
            name, kind, factor = scale(k)
            want(f"{group}_{name}", {}, v * factor, kind)
    for u in s.get("upstream") or []:
        d = {"domain": str(u["domain"])}
        want("upstream_grandmaster_changes_total", d, u["grandmaster_changes"], "counter")
        for k in ("sync", "follow_up", "announce"):
            if u[f"{k}_age_ms"] is not None:
                # the file keeps whole milliseconds of the same age
                want(f"upstream_last_{k}_age_seconds", d, u[f"{k}_age_ms"] / 1000, "gauge~ms")
        g = u.get("grandmaster")
        if g:
            info = dict(d, grandmaster_identity=g["identity"], master_port=u["master_port"])
            want("upstream_grandmaster_info", info, 1, "gauge")
            for k in ("clock_class", "clock_accuracy", "offset_scaled_log_variance", "priority1",
                      "priority2", "steps_removed"):
                want(f"upstream_{k}", d, g[k], "gauge")
    wrong = []
    for name, labels, value, kind in expected:
        got = samples.get((name, labels))
        if got is None:
            wrong.append(f"{name}{dict(labels)} missing")
            continue
        tolerance = 0.001 if kind == "gauge~ms" else 1e-9 * max(1, abs(value))
        if not math.isclose(got, value, abs_tol=tolerance):
            wrong.append(f"{name}{dict(labels)} {got} != {value}")
        if types.get(name) != kind.split("~")[0]:
            wrong.append(f"{name} is a {types.get(name)}, not a {kind}")
    verdict(not wrong, f"the {len(expected)} figures of the status file are in the metrics file, "
                       f"equal and typed as expected {wrong[:5]}")
    counters = sum(1 for e in expected if e[3] == "counter")
    print(f"INFO {counters} counters and {len(expected) - counters} gauges compared")
    extra = set(samples) - {(n, l) for n, l, _, _ in expected}
    extra = sorted(n for n, _ in extra if n not in ("ptpproxy_info", "ptpproxy_uptime_seconds"))
    verdict(not extra, f"nothing in the metrics file that the status file does not have {extra[:5]}")
    for n, lbl, v, _ in expected:
        if n == "ptpproxy_forwarded_total" and dict(lbl).get("message") == "sync":
            verdict(v > 0, f"Sync relayed: {v}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"upstream": upstream, "clients": clients, "aged": aged, "metrics": metrics}[cmd](*args)


if __name__ == "__main__":
    main()
