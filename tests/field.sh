#!/usr/bin/env bash
# Field faults with real ptp4l peers, in network namespaces (root required; ~1 minute). Run it
# under the machine's namespace lock where several people share one: flock /tmp/ptpproxy-netns.lock
#
#   tests/field.sh [--seconds N] [--only noloop|loop]... [--keep]
#
# Topology (tests/lib/topo.sh with TOPO_LOAD=1, so the grandmaster's side is a segment too):
# ptp4l grandmaster on segment s0 -- ptpproxy (up | dn1, dn2) -- on each downstream port a bridge
# with two ptp4l clients (c11 c12 on dn1, c21 c22 on dn2). Two runs of N seconds (default 20):
#
#   noloop  the reference; a rogue master (Sync/Announce from 02000b.fffe.0000bb) on dn2's
#           segment must be named in ptpproxy's log, and, the grandmaster stopped at the end,
#           the silent upstream
#   loop    dn1's segment patched back into the grandmaster's (a veth pair between the two
#           bridges) 3 s after the start: every frame ptpproxy sends on dn1 reaches its upstream
#           port again, and every Delay_Req it sends upstream reaches dn1. Judged against the
#           reference: frames received on the upstream port (< 2x), the "loop" counter (> 0), the
#           log line naming the ports, the offsets ptp4l reports on dn2's clients (sane), and the
#           Delay_Resp they get (captured on their interfaces: one per Delay_Req they sent; and
#           ptp4l's path delay updates, >= 80%)
#
#   --seconds N   traffic time per run (default 20)
#   --only RUN    only this run (the loop run's comparisons need the reference: both by default)
#   --keep        keep the run directory (logs, status files) even when everything passed
# Binary: $PTPPROXY, or target/release/ptpproxy built here (cargo build --release). Another
# build's binary (one without the loop guard) shows what a loop does: its checks then fail.
# Ends with "N passed, N failed" (tests/lib/field.py judges); exit status 1 if anything failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOPO_LOAD=1
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, REPO

RUN_SECONDS=20
KEEP=0
ONLY=()
arg_value --seconds RUN_SECONDS "--seconds needs a value"
arg_list --only ONLY "--only needs noloop or loop"
arg_flag --keep KEEP 1
args_parse "$@"
if ! [[ $RUN_SECONDS =~ ^[0-9]+$ ]] || ((RUN_SECONDS < 8 || RUN_SECONDS > 300)); then
	echo "--seconds must be 8..300" >&2
	exit 2
fi

ROGUE_ID=02000b.fffe.0000bb
ROGUE_MAC=02:00:0b:00:00:bb
PATCH_AT=3 # seconds after the start
# The clients' offset summaries (rms, max) every 4 s rather than every 16 s.
TOPO_CLIENT_EXTRA=${TOPO_CLIENT_EXTRA:-summary_interval -2}

want() {
	((${#ONLY[@]} == 0)) && return 0
	[[ " ${ONLY[*]} " == *" $1 "* ]]
}

# judge CHECK ARGS...: tests/lib/field.py's verdicts, counted
judge() {
	verdicts < <(timeout 60 python3 "$HERE/lib/field.py" "$@" 2>&1 || echo "FAIL field.py $1 crashed")
}

# run LABEL: one run of RUN_SECONDS in a fresh topology; its files in $RUN_ROOT/LABEL
run() {
	local label=$1 node
	TOPO_RUN="$RUN_ROOT/$label"
	mkdir -p "$TOPO_RUN"
	echo "== $label (${RUN_SECONDS}s)"
	topo_create ptpproxy
	for node in c21 c22; do
		capture_start "$node"
	done
	TOPO_PROXY_CORRECTION=residence # the default: frames wait for batches
	if ! proxy_start steer "$PTPPROXY"; then
		fail "$label: ptpproxy starts"
		topo_destroy
		return 0
	fi
	ptp_start_gm l2
	for node in c11 c12 c21 c22; do
		ptp_start_client "$node" l2
	done
	netns_sleep "$PATCH_AT"
	if [[ $label == loop ]]; then
		# dn1's segment (bridge br1 in s1) patched into the grandmaster's (br0 in s0)
		netns_veth s1 lp1 "" s0 lp0 ""
		netns_exec s1 ip link set dev lp1 master br1
		netns_exec s0 ip link set dev lp0 master br0
	else
		inject s2 br2 --transport l2 --type sync --clock-id "$ROGUE_ID" \
			--src-mac "$ROGUE_MAC" --count 5 --interval 0.1
		inject s2 br2 --transport l2 --type announce --clock-id "$ROGUE_ID" \
			--src-mac "$ROGUE_MAC" --count 5 --interval 0.1
	fi
	netns_sleep $((RUN_SECONDS - PATCH_AT))
	if [[ $label == noloop ]]; then
		# The grandmaster goes: its announce interval is 250 ms, silence is named after 2 s.
		netns_stop_pid "${TOPO_PTP_PIDS[0]}" 5 || true
		netns_sleep 3.5
	fi
	ptp_stop_all
	capture_stop_all
	proxy_stop
	if [[ $PROXY_RC == 0 ]]; then
		pass "$label: ptpproxy ran through it and exited 0 on SIGTERM"
	else
		fail "$label: ptpproxy exit status $PROXY_RC on SIGTERM; log: $(tail -n 5 "$TOPO_RUN/ptpproxy.log")"
	fi
	topo_destroy
}

main() {
	require_ptpproxy
	topo_init "$(mktemp -d /tmp/ptpproxy-field.XXXXXX)"
	RUN_ROOT=$TOPO_RUN
	echo "== run directory $RUN_ROOT; ptpproxy $PTPPROXY; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	if want noloop; then
		run noloop
		judge noloop "$RUN_ROOT/noloop" "$ROGUE_ID"
	fi
	if want loop; then
		run loop
		judge loop "$RUN_ROOT/loop" "$RUN_ROOT/noloop"
	fi
	echo
	keep_run_dir "$KEEP" "$RUN_ROOT" "logs and status files"
	check_summary
}

main
