#!/usr/bin/env bash
# Operating ptpproxy as a fleet does: the upstream section of `ptpproxy status`, the metrics file,
# a change of grandmaster; real ptp4l in network namespaces (root required; ~40 s). Run it under
# the machine's namespace lock where several people share one: flock /tmp/ptpproxy-netns.lock
#
#   tests/ops.sh [--keep]
#
# Topology (tests/lib/topo.sh; namespaces "pp<pid>-*", unique to the run): a ptp4l grandmaster
# (L2, priority1 10, clockClass 248) -- ptpproxy (up | dn1, dn2; "metrics_file" set, status every
# second) -- ptp4l clients c11 and c21. Steps:
#   1. 6 s of traffic: `ptpproxy status` shows the grandmaster's identity, clockClass and master
#      port, Sync/Follow_Up/Announce ages under a second or so; each client has Delay_Req and as
#      many Delay_Resp in the table
#   2. the grandmaster stopped for 4 s: the ages grew by about 4 s
#   3. another grandmaster (another MAC, so another clockIdentity; clockClass 6) started: the
#      status names it, counts one change, and the log names old and new
#   4. a reload (SIGHUP) moves the metrics file: written at the new path, the old one deleted
#   5. ptpproxy stopped (its last status and metrics files are written from one snapshot): the
#      metrics file parses with prometheus_client's parser and every figure equals the status
#      file's (tests/lib/ops.py)
# Binary: $PTPPROXY, or target/release/ptpproxy built here. Ends with "N passed, N failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, verdicts, REPO

KEEP=0
arg_flag --keep KEEP 1
args_parse "$@"

GM1=$TOPO_GM_IDENTITY # 020000.fffe.000001, from the MAC 02:00:00:00:00:01
GM2_MAC=02:00:00:00:00:02
GM2=020000.fffe.000002
# prometheus_client comes from Debian's python3-prometheus-client: Debian's interpreter.
PY=/usr/bin/python3

judge() {
	verdicts < <(timeout 60 "$PY" "$HERE/lib/ops.py" "$@" 2>&1 || echo "FAIL ops.py $1 crashed")
}

# snapshot NAME: the status file as it is now, and `ptpproxy status` of it
snapshot() {
	cp "$TOPO_RUN/status.json" "$TOPO_RUN/$1.json"
	"$PTPPROXY" status "$TOPO_RUN/$1.json" >"$TOPO_RUN/$1.txt" 2>&1 || true
}

# A second grandmaster in gm's namespace: another MAC (so another clockIdentity), clockClass 6.
start_gm2() {
	local cfg="$TOPO_RUN/gm2.cfg"
	netns_exec gm ip link set dev eth0 address "$GM2_MAC"
	cat >"$cfg" <<-EOF
		[global]
		priority1 10
		clockClass 6
		logAnnounceInterval -2
		logSyncInterval -3
		uds_address $TOPO_RUN/gm2.uds
	EOF
	netns_bg "$TOPO_RUN/gm2.log" gm ptp4l -f "$cfg" -i eth0 -2 -S -m -q
	TOPO_PTP_PIDS+=("$NETNS_LAST_PID")
}

main() {
	require_ptpproxy
	topo_init "$(mktemp -d /tmp/ptpproxy-ops.XXXXXX)"
	echo "== run directory $TOPO_RUN; ptpproxy $PTPPROXY"
	topo_create ptpproxy
	local prom="$TOPO_RUN/ptpproxy.prom"
	# shellcheck disable=SC2034 # read by proxy_config (tests/lib/topo.sh)
	TOPO_PROXY_EXTRA=", \"metrics_file\": \"$prom\""
	# shellcheck disable=SC2034 # the default: the correction's figures are in the files too
	TOPO_PROXY_CORRECTION=residence
	if ! proxy_start steer "$PTPPROXY"; then
		fail "ptpproxy starts"
		check_summary
		return 1
	fi
	ptp_start_gm l2
	local gm1_pid=$NETNS_LAST_PID
	ptp_start_client c11 l2
	ptp_start_client c21 l2

	echo "== 1. grandmaster $GM1 relayed"
	netns_sleep 6
	snapshot live
	judge upstream "$TOPO_RUN/live.json" "$GM1" 248 0
	judge clients "$TOPO_RUN/live.json" "$(client_identity c11)" "$(client_identity c21)"
	check "ptpproxy status names the grandmaster and its master port" \
		grep -q "^upstream   up domain 0: grandmasterIdentity $GM1 via $GM1-1 (changes 0)$" "$TOPO_RUN/live.txt"
	check "ptpproxy status shows its clockClass and priority1" \
		grep -q "^ *clockClass 248 clockAccuracy 0x[0-9a-f]* offsetScaledLogVariance 0x[0-9a-f]* priority1 10 " "$TOPO_RUN/live.txt"
	check "ptpproxy status: the upstream section with the ages" \
		grep -q "last Sync 0\.[0-9]* s ago, Follow_Up 0\.[0-9]* s ago, Announce [01]\.[0-9]* s ago" "$TOPO_RUN/live.txt"
	check "the metrics file exists while running" test -s "$prom"
	sed -n '/^upstream/,/^$/p' "$TOPO_RUN/live.txt"

	echo "== 2. grandmaster stopped for 4 s"
	netns_stop_pid "$gm1_pid" 5 || true
	snapshot stopped0
	netns_sleep 4
	snapshot stopped4
	judge aged "$TOPO_RUN/stopped0.json" "$TOPO_RUN/stopped4.json" 4
	grep '^ *last Sync' "$TOPO_RUN/stopped4.txt" || true

	echo "== 3. another grandmaster, $GM2 (clockClass 6)"
	start_gm2
	netns_sleep 5
	snapshot changed
	judge upstream "$TOPO_RUN/changed.json" "$GM2" 6 1
	check "the log names the new grandmaster and the old one" \
		grep -q "domain 0 grandmaster now $GM2 (clockClass 6, priority1 10, stepsRemoved 0) via $GM2-1, was $GM1" \
		"$TOPO_RUN/ptpproxy.log"
	grep 'grandmaster now' "$TOPO_RUN/ptpproxy.log" || true

	echo "== 4. a reload moves the metrics file"
	local moved="$TOPO_RUN/moved.prom"
	sed -i "s|\"metrics_file\": \"$prom\"|\"metrics_file\": \"$moved\"|" "$TOPO_RUN/ptpproxy.json"
	kill -HUP "$TOPO_PROXY_PID"
	netns_wait_for 5 test -s "$moved" || true
	check "after SIGHUP the metrics file is written at its new path" test -s "$moved"
	check "and the old one is gone (a scraper would read stale figures)" test ! -e "$prom"
	prom=$moved

	echo "== 5. metrics file against the status file (ptpproxy's last write, one snapshot)"
	proxy_stop
	check "ptpproxy exits 0 on SIGTERM (rc $PROXY_RC)" test "$PROXY_RC" = 0
	judge metrics "$TOPO_RUN/status.json" "$prom"
	if command -v promtool >/dev/null; then
		check "promtool check metrics accepts the file" promtool check metrics <"$prom"
	fi
	ptp_stop_all
	topo_destroy
	keep_run_dir "$KEEP" "$TOPO_RUN" "logs, status and metrics files"
	check_summary
}

main
