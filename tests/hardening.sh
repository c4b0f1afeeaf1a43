#!/usr/bin/env bash
# Adversarial end-to-end tests of ptpproxy in network namespaces (root required; ~2 minutes).
#
#   tests/hardening.sh [--only N]... [--keep]
#
# Topology (tests/lib/hardening.sh): ptpload's grandmaster -- ptpproxy (up | dn1, dn2, dn3 added by
# reloads) -- ptpload's well-behaved clients (100 x 16 Delay_Req/s, half on dn1, half on dn2) and
# its misbehaving senders (ptpload --flood). Every scenario asserts that the real clients keep
# being served and prints what it measured. Judged from ptpload's JSON, ptpproxy's status file
# (final, written at SIGTERM) and its stderr (tests/lib/hardening.py).
#
#   1  Delay_Req flood from 100k fresh clock identities + MACs per second on dn1: starting before
#      the clients (dn2's clients are served as in a no-flood baseline, the table stays within
#      capacity, the upstream gets one Delay_Req per admitted fake), after them (known clients keep
#      their entries), from a single MAC (at most 8 entries), and on both ports (table_full)
#   2  one client at 2000 Delay_Req/s against max_delay_req_rate 128: limited, others unaffected
#   3  a rogue master (Sync/Follow_Up/Announce) on dn1, without and with allow_downstream_masters;
#      the log names it (port and sourcePortIdentity) once
#   4  malformed frames at 50k/s (14 kinds, QinQ included): counted by reason and by port, none
#      relayed (a Signaling whose TLV claims 65535 bytes is well-formed to the relay and goes
#      upstream within dn1's Signaling/Management limit), clients unaffected
#   5  link flaps: dn1 and up set down/up, dn2 and up deleted and re-created: forwarding resumes
#      within 2 s of the link's return, a few log lines per flap
#   6  SIGHUP: a valid new configuration (steer -> unicast, dn3 added) keeps the client table and
#      forwarding; an invalid one is rejected, the old one keeps running; SIGTERM exits 0 in < 1 s
#   7  least privilege ("user": "nobody"): uid 65534, only CAP_NET_RAW, no_new_privs, and it still
#      reopens a re-created interface and opens a port a reload adds; the CPU wake-up latency
#      request ("cpu_latency_us", taken as root) is held throughout and gone after the exit
#
#   --only N   run only scenario N (repeatable)
#   --keep     keep the run directory (logs, JSON, status files) even when everything passed
# Binaries: $PTPPROXY and $PTPLOAD, else built here (cargo build --release).
# Ends with "N passed, N failed"; exit status 1 if anything failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/hardening.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/hardening.sh" # and tests/lib/check.sh: pass, fail, REPO

KEEP=0
ONLY=()
arg_list --only ONLY "--only needs a scenario number"
arg_flag --keep KEEP 1
args_parse "$@"

info() { echo "  ..   $*"; }
note() { echo "  NOTE $*"; }

# judge CHECK ARGS...: run tests/lib/hardening.py and count its verdicts
judge() {
	verdicts < <(timeout 60 python3 "$HERE/lib/hardening.py" "$@" 2>&1 || echo "FAIL hardening.py $1 crashed")
}

want() {
	((${#ONLY[@]} == 0)) && return 0
	local x
	for x in "${ONLY[@]}"; do [[ $x == "$1" ]] && return 0; done
	return 1
}

CL=""  # "<prefix>cl", set after hz_init
CFG="" # the default configuration file

# proxy_run LABEL CFG SECONDS PTPLOAD-ARGS...: fresh ptpproxy, one ptpload run through it, then
# SIGTERM; the final status file is kept as $HZ_RUN/LABEL.status.json. 1 if a step failed.
proxy_run() {
	local label=$1 cfg=$2 secs=$3 pid rc=0 status
	shift 3
	status=$(hz_status "$cfg" 'j["status_file"]')
	hz_proxy_start "$cfg" "$HZ_RUN/$label.ptpproxy.log" || {
		fail "$label: ptpproxy did not start"
		return 1
	}
	pid=$HZ_PROXY_PID
	hz_load "$label" "$secs" "$@" || rc=$?
	sleep 0.3 # frames in flight, the last Delay_Resp
	local alive=yes
	netns_alive "$pid" || alive=no
	hz_proxy_stop
	cp "$status" "$HZ_RUN/$label.status.json" 2>/dev/null || true
	if ((rc != 0)); then
		fail "$label: ptpload exited with status $rc: $(tail -n 3 "$HZ_RUN/$label.txt")"
		return 1
	fi
	if [[ $alive == yes && $HZ_PROXY_RC == 0 ]]; then
		pass "$label: ptpproxy kept running (pid $pid) and exited 0 on SIGTERM"
	else
		fail "$label: ptpproxy running at the end: $alive, exit status $HZ_PROXY_RC; log: $(tail -n 5 "$HZ_RUN/$label.ptpproxy.log")"
		return 1
	fi
}

# ---- 1: Delay_Req flood ----
scenario_flood() {
	echo "== 1. Delay_Req flood: 100k fresh identities+MACs per second on dn1"
	proxy_run base "$CFG" 5 || return 0
	info "baseline (no flood): $(grep -E '^per client' "$HZ_RUN/base.txt")"
	if proxy_run flood-before "$CFG" 5 --flood "$CL:cl1:100000" --flood-at -1; then
		judge flood-before "$HZ_RUN/base.json" "$HZ_RUN/flood-before.json" "$HZ_RUN/flood-before.status.json"
	fi
	if proxy_run flood-after "$CFG" 5 --flood "$CL:cl1:100000" --flood-at 1.5; then
		judge known-before "$HZ_RUN/base.json" "$HZ_RUN/flood-after.json" "$HZ_RUN/flood-after.status.json"
	fi
	if proxy_run flood-one-mac "$CFG" 5 --flood "$CL:cl1:100000" --flood-at -1 --flood-single-mac; then
		judge single-mac "$HZ_RUN/base.json" "$HZ_RUN/flood-one-mac.json" "$HZ_RUN/flood-one-mac.status.json"
	fi
	if proxy_run flood-both "$CFG" 5 --flood "$CL:cl1:25000" --flood "$CL:cl2:25000" --flood-at 1.5; then
		judge table-full "$HZ_RUN/base.json" "$HZ_RUN/flood-both.json" "$HZ_RUN/flood-both.status.json"
	fi
	note "per-port drop reasons: the status file has rx and kernel_drops per port but its drop" \
		"reasons are global, so which port a flood came in on is inferred from rx; a per-port" \
		"\"dropped\" object (only non-zero reasons) in each \"ports\" entry would show it directly"
}

# ---- 2: one client above max_delay_req_rate ----
scenario_over_rate() {
	echo "== 2. one client at 2000 Delay_Req/s (max_delay_req_rate $HZ_MAX_RATE)"
	[[ -s $HZ_RUN/base.json ]] || proxy_run base "$CFG" 5 || return 0
	if proxy_run over-rate "$CFG" 5 --flood "$CL:cl1:2000" --flood-identities 1; then
		judge over-rate "$HZ_RUN/base.json" "$HZ_RUN/over-rate.json" "$HZ_RUN/over-rate.status.json" "$HZ_MAX_RATE"
	fi
}

# ---- 3: rogue master ----
scenario_rogue() {
	echo "== 3. rogue master on dn1 (Sync, Follow_Up, Announce at 1000/s)"
	local allow="$HZ_RUN/allow.json"
	hz_config "$allow" allow_downstream_masters=true
	if proxy_run rogue-deny "$CFG" 3 --flood "$CL:cl1:1000" --flood-msg rogue --flood-identities 1; then
		judge rogue "$HZ_RUN/rogue-deny.json" "$HZ_RUN/rogue-deny.status.json" deny
		local named
		named=$(grep -Eo 'rogue master on dn1: [0-9a-f]{6}\.[0-9a-f]{4}\.[0-9a-f]{6}-[0-9]+ .*' \
			"$HZ_RUN/rogue-deny.ptpproxy.log" | head -n 1 || true)
		if [[ -n $named && $(grep -c 'rogue master on' "$HZ_RUN/rogue-deny.ptpproxy.log") -le 1 ]]; then
			pass "rogue master: named once in the log (3 s, 3000 frames): $named"
		else
			fail "rogue master: one log line naming dn1 and the sender: $(grep 'rogue master' "$HZ_RUN/rogue-deny.ptpproxy.log" || echo none)"
		fi
	fi
	if proxy_run rogue-allow "$allow" 3 --flood "$CL:cl1:1000" --flood-msg rogue --flood-identities 1; then
		judge rogue "$HZ_RUN/rogue-allow.json" "$HZ_RUN/rogue-allow.status.json" allow
	fi
}

# ---- 4: malformed frames ----
scenario_malformed() {
	echo "== 4. malformed frames at 50k/s on dn1"
	[[ -s $HZ_RUN/base.json ]] || proxy_run base "$CFG" 5 || return 0
	if proxy_run malformed "$CFG" 5 --flood "$CL:cl1:50000" --flood-msg malformed; then
		judge malformed "$HZ_RUN/base.json" "$HZ_RUN/malformed.json" "$HZ_RUN/malformed.status.json"
	fi
}

# ---- 5: link flaps ----
# event WHAT IFNAME WATCH ACTION...: run ACTION (which takes the link away and brings it back),
# recording when the link went and came back and where ptpproxy's log stood.
EVENTS=
FLAP_LOG=
event() {
	local what=$1 ifname=$2 watch=$3 down up l0
	shift 3
	l0=$(wc -l <"$FLAP_LOG")
	down=$(hz_now_ns)
	"$@"
	up=$(hz_now_ns)
	printf '%s %s %s %s %s %s' "$what" "$ifname" "$down" "$up" "$watch" "$l0" >>"$EVENTS"
}
event_end() { printf ' %s\n' "$(wc -l <"$FLAP_LOG")" >>"$EVENTS"; }

scenario_flaps() {
	echo "== 5. link flaps (forwarding must resume within 2 s of the link's return)"
	local pid label=flaps
	EVENTS="$HZ_RUN/flaps.events"
	FLAP_LOG="$HZ_RUN/flaps.ptpproxy.log"
	: >"$EVENTS"
	hz_proxy_start "$CFG" "$FLAP_LOG" || {
		fail "$label: ptpproxy did not start"
		return 0
	}
	pid=$HZ_PROXY_PID
	hz_load_bg "$label" 15 --gap-ms 100
	netns_sleep 2
	event "dn1-down/up" dn1 cl1 hz_link_flap dn1 0.5
	netns_sleep 2.5
	event_end
	event "up-down/up" up gm0,cl1,cl2 hz_link_flap up 0.5
	netns_sleep 2.5
	event_end
	event "dn2-deleted/re-created" dn2 cl2 hz_recreate dn2 0.5
	netns_sleep 2.5
	event_end
	event "up-deleted/re-created" up gm0,cl1,cl2 hz_recreate up 0.5
	netns_sleep 2.5
	event_end
	local rc=0
	wait "$HZ_LOAD_PID" || rc=$?
	((rc == 0)) || fail "$label: ptpload exited with status $rc: $(tail -n 3 "$HZ_RUN/$label.txt")"
	if netns_alive "$pid"; then
		pass "$label: ptpproxy kept running through 4 flaps (pid $pid)"
	else
		fail "$label: ptpproxy died; log: $(tail -n 5 "$FLAP_LOG")"
	fi
	cp "$HZ_RUN/status.json" "$HZ_RUN/$label.status-live.json" 2>/dev/null || true
	hz_proxy_stop
	cp "$HZ_RUN/status.json" "$HZ_RUN/$label.status.json" 2>/dev/null || true
	info "$label: ports at the end: $(hz_status "$HZ_RUN/$label.status.json" \
		'", ".join("%s opens %s up %s tx_errors %s" % (p["name"], p["opens"], p["up"], p["tx_errors"]) for p in j["ports"])')"
	[[ -s $HZ_RUN/$label.json ]] && judge flaps "$HZ_RUN/$label.json" "$EVENTS" "$FLAP_LOG" 2000 4
	info "$label: $(grep -E '^(ALL|gaps)' "$HZ_RUN/$label.txt" | tr '\n' ';' | tr -s ' ')"
}

# ---- 6: SIGHUP and SIGTERM ----
scenario_reload() {
	echo "== 6. SIGHUP (valid, then invalid configuration) and SIGTERM"
	local label=reload cfg="$HZ_RUN/reload.json" log="$HZ_RUN/reload.ptpproxy.log" pid
	local c0 l0 t1 t2 n3 st="$HZ_RUN/status.json"
	hz_config "$cfg"
	hz_proxy_start "$cfg" "$log" || {
		fail "$label: ptpproxy did not start"
		return 0
	}
	pid=$HZ_PROXY_PID
	hz_load_bg "$label" 10 --downstream "$CL:cl1,$CL:cl2,$CL:cl3"
	netns_sleep 3
	c0=$(hz_status "$st" 'j["clients"]["count"]')
	l0=$(hz_status "$st" 'j["clients"]["learned"]')
	n3=$((HZ_CLIENTS / 3)) # ptpload's clients 2, 5, 8, ... are on cl3
	info "$label: before: $c0 clients (learned $l0) on dn1/dn2; the $n3 on cl3 have no port yet"
	hz_config "$cfg" 'downstream=["dn1", "dn2", "dn3"]' 'delay_resp="unicast"'
	t1=$(hz_now_ns)
	kill -HUP "$pid"
	netns_sleep 2.5
	local mode count learned dn3 unicast
	mode=$(hz_status "$st" 'j["delay_resp_mode"]')
	count=$(hz_status "$st" 'j["clients"]["count"]')
	learned=$(hz_status "$st" 'j["clients"]["learned"]')
	dn3=$(hz_status "$st" '[p["up"] for p in j["ports"] if p["name"] == "dn3"]')
	unicast=$(hz_status "$st" 'j["delay_resp"]["unicast"]')
	if [[ $mode == unicast && $dn3 == "[True]" && $unicast -gt 0 ]]; then
		pass "$label: valid SIGHUP applied: delay_resp $mode ($unicast unicast so far), dn3 open"
	else
		fail "$label: valid SIGHUP applied: delay_resp $mode, dn3 $dn3, unicast $unicast"
	fi
	if ((count == c0 + n3 && learned == l0 + n3)); then
		pass "$label: client table kept: $count clients = $c0 kept + $n3 new on dn3; learned $learned = $l0 + $n3 (the kept ones not learned again)"
	else
		fail "$label: client table kept: $count clients (expected $c0 + $n3), learned $learned (expected $l0 + $n3)"
	fi
	if grep -q "reload: applied .*, $c0 clients kept" "$log"; then
		pass "$label: logged: $(grep -o 'reload: applied.*' "$log" | head -n 1)"
	else
		fail "$label: no \"reload: applied ..., $c0 clients kept\" in the log: $(tail -n 3 "$log")"
	fi
	printf '%s\n' '{"upstream": "up", "downstream": ["dn1"], "delay_resp": "sideways"}' >"$cfg"
	t2=$(hz_now_ns)
	kill -HUP "$pid"
	netns_sleep 2
	local u2
	u2=$(hz_status "$st" 'j["delay_resp"]["unicast"]')
	mode=$(hz_status "$st" 'j["delay_resp_mode"]')
	if netns_alive "$pid" && [[ $mode == unicast ]] && ((u2 > unicast)) && grep -q 'reload rejected' "$log"; then
		pass "$label: invalid SIGHUP rejected, old configuration running (unicast Delay_Resp $unicast -> $u2): $(grep -o 'reload rejected.*' "$log" | head -n 1)"
	else
		fail "$label: invalid SIGHUP: alive $(netns_alive "$pid" && echo yes || echo no), mode $mode, unicast $unicast -> $u2; log: $(tail -n 2 "$log")"
	fi
	local rc=0
	wait "$HZ_LOAD_PID" || rc=$?
	((rc == 0)) || fail "$label: ptpload exited with status $rc: $(tail -n 3 "$HZ_RUN/$label.txt")"
	hz_proxy_stop
	cp "$st" "$HZ_RUN/$label.status.json" 2>/dev/null || true
	if [[ $HZ_PROXY_RC == 0 ]] && ((HZ_STOP_MS < 1000)); then
		pass "$label: SIGTERM: exit status 0 after $HZ_STOP_MS ms"
	else
		fail "$label: SIGTERM: exit status $HZ_PROXY_RC after $HZ_STOP_MS ms (need 0, < 1000 ms)"
	fi
	[[ -s $HZ_RUN/$label.json ]] || return 0
	judge no-gap "$HZ_RUN/$label.json" $((t1 - 500000000)) $((t2 + 1500000000)) gm0,cl1,cl2 \
		"$label: forwarding for the kept ports went on through both reloads"
	judge first-after "$HZ_RUN/$label.json" cl3 "$t1" 1500 "$label: the added port dn3"
	judge served "$HZ_RUN/$label.json" 0 0.95 "$label: clients on dn1"
	judge served "$HZ_RUN/$label.json" 1 0.95 "$label: clients on dn2"
	local unknown
	unknown=$(hz_status "$HZ_RUN/$label.status.json" 'j["dropped"]["unknown_client"]')
	if ((unknown == 0)); then
		pass "$label: no Delay_Resp for a forgotten client (unknown_client 0)"
	else
		fail "$label: unknown_client $unknown: Delay_Resp for clients the reload forgot"
	fi
}

# ---- 7: least privilege ----
# The kernel's CPU wake-up latency limit now (the smallest request held), microseconds.
cpu_latency() { python3 -c 'import struct; print(struct.unpack("i", open("/dev/cpu_dma_latency", "rb").read(4))[0])'; }

scenario_privileges() {
	echo "== 7. least privilege: \"user\": \"nobody\""
	local label=privileges cfg="$HZ_RUN/privileges.json" log="$HZ_RUN/privileges.ptpproxy.log" pid
	local st="$HZ_RUN/lp/status.json" t1 t2 qos0 qos
	mkdir -p "$HZ_RUN/lp"
	qos0=$(cpu_latency)
	hz_config "$cfg" 'user="nobody"' "status_file=\"$st\"" 'cpu_latency_us=50'
	hz_proxy_start "$cfg" "$log" || {
		fail "$label: ptpproxy did not start as nobody"
		return 0
	}
	pid=$HZ_PROXY_PID
	proc_status() {
		awk '/^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):/ { $1 = $1; printf "%s; ", $0 }' "/proc/$pid/status"
	}
	check_privileges() { # WHEN
		local s
		s=$(proc_status)
		if [[ $s == *"Uid: 65534 65534 65534 65534;"* && $s == *"Gid: 65534 65534 65534 65534;"* &&
			$s == *"CapInh: 0000000000000000;"* && $s == *"CapPrm: 0000000000002000;"* &&
			$s == *"CapEff: 0000000000002000;"* && $s == *"CapBnd: 0000000000002000;"* &&
			$s == *"CapAmb: 0000000000000000;"* && $s == *"NoNewPrivs: 1;"* ]]; then
			pass "$label: $1: /proc/$pid/status: $s"
		else
			fail "$label: $1: /proc/$pid/status: $s (want uid/gid 65534, CapPrm/CapEff/CapBnd 0x2000 = CAP_NET_RAW, none inheritable or ambient, NoNewPrivs 1)"
		fi
	}
	check_privileges "after start"
	qos=$(cpu_latency)
	if ((qos <= 50)) && grep -q 'cpu latency: idle CPUs wake within 50 us' "$log"; then
		pass "$label: cpu_latency_us 50 held: /dev/cpu_dma_latency reads $qos (was $qos0)"
	else
		fail "$label: cpu_latency_us 50: /dev/cpu_dma_latency reads $qos (was $qos0); log: $(grep 'cpu latency' "$log" || true)"
	fi
	if grep -q 'privileges: uid 65534 gid 65534, capabilities: CAP_NET_RAW only$' "$log"; then
		pass "$label: logged: $(grep -o 'privileges:.*' "$log")"
	else
		fail "$label: no \"privileges: uid 65534 gid 65534, capabilities: CAP_NET_RAW only\" in the log: $(grep privileges "$log" || true)"
	fi
	hz_load_bg "$label" 8 --downstream "$CL:cl1,$CL:cl2,$CL:cl3" --gap-ms 100
	EVENTS="$HZ_RUN/privileges.events" FLAP_LOG=$log
	: >"$EVENTS"
	netns_sleep 2
	event "dn2-deleted/re-created-as-nobody" dn2 cl2 hz_recreate dn2 0.5
	netns_sleep 2.5
	event_end
	hz_config "$cfg" 'user="nobody"' "status_file=\"$st\"" 'cpu_latency_us=50' 'downstream=["dn1", "dn2", "dn3"]'
	t1=$(hz_now_ns)
	kill -HUP "$pid"
	netns_sleep 2
	t2=$(hz_now_ns)
	local rc=0
	wait "$HZ_LOAD_PID" || rc=$?
	((rc == 0)) || fail "$label: ptpload exited with status $rc: $(tail -n 3 "$HZ_RUN/$label.txt")"
	check_privileges "after a reopen and a reload"
	info "$label: ports: $(hz_status "$st" '", ".join("%s opens %s up %s" % (p["name"], p["opens"], p["up"]) for p in j["ports"])')"
	qos=$(cpu_latency)
	hz_proxy_stop
	[[ $HZ_PROXY_RC == 0 ]] || fail "$label: exit status $HZ_PROXY_RC on SIGTERM"
	local qos_after
	qos_after=$(cpu_latency)
	if ((qos <= 50 && qos_after == qos0)); then
		pass "$label: cpu latency request held through the reload ($qos us) and gone after the exit ($qos_after)"
	else
		fail "$label: cpu latency: $qos after the reload (want <= 50), $qos_after after the exit (want $qos0)"
	fi
	[[ -s $HZ_RUN/$label.json ]] || return 0
	judge flaps "$HZ_RUN/$label.json" "$EVENTS" "$log" 2000 4
	judge first-after "$HZ_RUN/$label.json" cl3 "$t1" 1500 "$label: the port a reload added (dn3), opened as nobody"
	judge no-gap "$HZ_RUN/$label.json" "$t1" "$t2" gm0,cl1 "$label: forwarding through the reload"
}

main() {
	local t_start
	t_start=$(date +%s)
	require_binaries
	hz_init "$(mktemp -d /tmp/ptpproxy-hardening.XXXXXX)"
	echo "== run directory $HZ_RUN; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	hz_topo_create
	CL=$(netns_name cl)
	CFG="$HZ_RUN/ptpproxy.json"
	hz_config "$CFG"
	echo "== ptpload: $HZ_CLIENTS clients x $HZ_RATE Delay_Req/s (half on dn1, half on dn2), Sync $HZ_SYNC_RATE/s; ptpproxy max_delay_req_rate $HZ_MAX_RATE"

	if want 1; then scenario_flood; fi
	if want 2; then scenario_over_rate; fi
	if want 3; then scenario_rogue; fi
	if want 4; then scenario_malformed; fi
	if want 5; then scenario_flaps; fi
	if want 6; then scenario_reload; fi
	if want 7; then scenario_privileges; fi

	hz_destroy
	echo
	echo "== $(($(date +%s) - t_start)) s"
	if ((FAILED > 0)); then
		printf 'failed: %s\n' "${FAILURES[@]}"
		echo "logs, JSON and status files kept in $HZ_RUN"
	elif ((KEEP)); then
		echo "run directory kept: $HZ_RUN"
	else
		rm -rf "$HZ_RUN"
	fi
	check_summary
}

main
