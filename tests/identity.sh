#!/usr/bin/env bash
# Identity ownership on the wire, between real ptp4l peers in network namespaces (root required;
# ~1 minute).
#
#   tests/identity.sh [--only spoof|moved]... [--seconds N] [--measure-only] [--keep]
#
# Topology (tests/lib/topo.sh): ptp4l grandmaster -- ptpproxy (up | dn1, dn2) -- on each downstream
# port a Linux bridge with two ptp4l clients (c11, c12 on dn1; c21, c22 on dn2), L2 transport,
# "delay_resp": "steer". Captures on every client's and the grandmaster's interface.
#
#   spoof  a spoofer on dn2's segment (tests/lib/ptpframe.py, its own MAC) sends c11's
#          clockIdentity in Delay_Req at 2000/s for N seconds (default 20): c11 gets as many
#          Delay_Resp as its neighbour c12, none of c11's Delay_Resp reach dn2's segment, no
#          spoofed Delay_Req reaches the grandmaster, ptpproxy counts identity_conflict on dn2
#   moved  c12's link moves from dn1's segment to dn2's (its veth goes to the other bridge, ptp4l
#          keeps running): served on dn2 within 3 s of its first Delay_Req there, its Delay_Resp
#          no longer go to dn1, counted as moved
#
#   --measure-only  print what was measured without judging it (e.g. a baseline binary)
#   --keep          keep the run directory (captures, logs) even when everything passed
# Binary: $PTPPROXY, or target/release/ptpproxy built here with `cargo build --release`.
# Shares the machine's namespaces with other tests: run it under
# `flock /tmp/ptpproxy-netns.lock tests/identity.sh`. Ends with "N passed, N failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, REPO

SPOOF_SECONDS=20
SPOOF_RATE=2000
SPOOFER_MAC=02:00:0d:00:00:dd
MEASURE_ONLY=0
KEEP=0
ONLY=()
arg_list --only ONLY "--only needs spoof or moved"
arg_value --seconds SPOOF_SECONDS "--seconds needs a value"
arg_flag --measure-only MEASURE_ONLY 1
arg_flag --keep KEEP 1
args_parse "$@"
if ! [[ $SPOOF_SECONDS =~ ^[0-9]+$ ]] || ((SPOOF_SECONDS < 2 || SPOOF_SECONDS > 50)); then
	echo "--seconds must be 2..50" >&2
	exit 2
fi

want() {
	((${#ONLY[@]} == 0)) && return 0
	[[ " ${ONLY[*]} " == *" $1 "* ]]
}

now() { date +%s.%N; }

# judge SCENARIO: tests/lib/identity.py's verdicts
judge() {
	local opts=()
	((MEASURE_ONLY)) && opts+=(--measure-only)
	verdicts "$1: " < <(timeout 120 python3 "$HERE/lib/identity.py" "$1" "$TOPO_RUN" "${opts[@]}" 2>&1 ||
		echo "FAIL identity.py $1 crashed")
}

# start: topology, captures, ptpproxy, ptp4l everywhere; 1 if ptpproxy did not start
start() {
	topo_create ptpproxy
	local node
	for node in gm c11 c12 c21 c22; do
		capture_start "$node"
	done
	if ! proxy_start steer "$PTPPROXY"; then
		fail "$1: ptpproxy starts"
		tail -n 20 "$TOPO_RUN/ptpproxy.log" || true
		return 1
	fi
	ptp_start_gm l2
	for node in c11 c12 c21 c22; do
		ptp_start_client "$node" l2
	done
}

# stop: ptp4l, captures, then ptpproxy (its final status file)
stop() {
	ptp_stop_all
	capture_stop_all
	sleep 1.2 # one more status interval with the final counters
	proxy_stop
	if [[ $PROXY_RC == 0 ]]; then
		pass "$1: ptpproxy exits 0 on SIGTERM"
	else
		fail "$1: ptpproxy exits 0 on SIGTERM (exit status $PROXY_RC)"
	fi
}

scenario_spoof() {
	local count=$((SPOOF_SECONDS * SPOOF_RATE)) t0 t1
	echo "== spoof: c11's clockIdentity from dn2's segment at ${SPOOF_RATE}/s for ${SPOOF_SECONDS} s"
	TOPO_RUN="$RUN_ROOT/spoof"
	mkdir -p "$TOPO_RUN"
	start spoof || {
		topo_destroy
		return 0
	}
	netns_sleep 4 # the clients are learned and synchronised
	t0=$(now)
	inject s2 br2 --type delay_req --clock-id 020000.fffe.000101 --port-number 1 \
		--src-mac "$SPOOFER_MAC" --count "$count" --rate "$SPOOF_RATE" --seq 1000
	t1=$(now)
	netns_sleep 1
	stop spoof
	cat >"$TOPO_RUN/times.json" <<-EOF
		{"victim": "c11", "neighbour": "c12", "spoofer_segment": ["c21", "c22"],
		 "spoofer_port": "dn2", "spoofer_mac": "$SPOOFER_MAC", "spoof_rate": $SPOOF_RATE,
		 "spoof_count": $count, "spoof_start": $t0, "spoof_end": $t1}
	EOF
	judge spoof
	topo_destroy
}

scenario_moved() {
	local t0 t1
	echo "== moved: c12's link moves from dn1's segment to dn2's"
	TOPO_RUN="$RUN_ROOT/moved"
	mkdir -p "$TOPO_RUN"
	start moved || {
		topo_destroy
		return 0
	}
	netns_sleep 5
	t0=$(now)
	# The bridge port of c12 leaves br1 (namespace s1) for br2 (namespace s2): the cable moved.
	netns_exec s1 ip link set dev c12 nomaster
	netns_exec s1 ip link set dev c12 netns "$(netns_name s2)"
	netns_exec s2 ip link set dev c12 master br2
	netns_exec s2 ip link set dev c12 up
	netns_sleep 10
	t1=$(now)
	stop moved
	cat >"$TOPO_RUN/times.json" <<-EOF
		{"mover": "c12", "old_port": "dn1", "new_port": "dn2", "old_segment": ["c11"],
		 "new_segment": ["c21", "c22"], "move_at": $t0, "end": $t1}
	EOF
	judge moved
	topo_destroy
}

main() {
	require_ptpproxy --bin ptpproxy
	topo_init "$(mktemp -d /tmp/ptpproxy-identity.XXXXXX)"
	RUN_ROOT=$TOPO_RUN
	echo "== run directory: $RUN_ROOT (ptpproxy: $PTPPROXY)"
	want spoof && scenario_spoof
	want moved && scenario_moved
	keep_run_dir "$KEEP" "$RUN_ROOT" "logs and captures"
	check_summary
}

main
