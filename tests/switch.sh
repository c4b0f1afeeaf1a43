#!/usr/bin/env bash
# ptpproxy where its ports are bridged, between real ptp4l peers in network namespaces (root, nft).
#
#   tests/switch.sh [--seconds N] [--only SHAPE:BRIDGE_PORTS:TRANSPORT:MODE]... [--verbose] [--keep]
#
# The topology of tests/lib/topo.sh (ptp4l grandmaster -- up [px] dn1, dn2 -- a segment of two
# ptp4l clients behind each downstream port), in two shapes:
#   switch  up, dn1 and dn2 are members of one Linux bridge br0 in px (a switch's ports in
#           br-lan), ptpproxy relays on the member ports. With "bridge_ports": "filter" (the
#           default) each client must see each Sync/Follow_Up once, its own Delay_Resp once, no
#           other segment's Delay_Resp (steer) or none but its own (unicast), no frame ptpproxy
#           sent coming back in (dropped.loop 0), and ptpproxy's nftables table must be there
#           while it runs (its counters dropping what the bridge would have forwarded) and gone
#           after it exits. With "leave" the same run gives the counts without the filter (the
#           "before"), printed, not judged.
#   router  downstream is the bridge device br0 over dn1 and dn2, upstream the routed port up:
#           each client sees each Sync once and its own Delay_Resp once; unicast: none but its own.
# Also: a bridge and its own member in one configuration are refused (exit 78) naming both, and a
# crashed run's table (SIGKILL) is replaced by the next start and removed at its exit.
#
#   --seconds N   traffic time per run (default 10)
#   --only S:B:T:M  e.g. switch:filter:l2:steer, router:-:udp4:unicast; repeatable
#   --verbose     print every passing check too
#   --keep        keep the run directory even when everything passed
# Binary: $PTPPROXY, or target/release/ptpproxy built here with `cargo build --release`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, REPO

RUN_SECONDS=10
VERBOSE=0
KEEP=0
ONLY=()
arg_value --seconds RUN_SECONDS "--seconds needs a value"
arg_list --only ONLY "--only needs SHAPE:BRIDGE_PORTS:TRANSPORT:MODE"
arg_flag --verbose VERBOSE 1
arg_flag --keep KEEP 1
args_parse "$@"
if ! [[ $RUN_SECONDS =~ ^[0-9]+$ ]] || ((RUN_SECONDS < 5 || RUN_SECONDS > 300)); then
	echo "--seconds must be 5..300" >&2
	exit 2
fi
# shellcheck disable=SC2034 # read by pass (tests/lib/check.sh)
CHECK_VERBOSE=$VERBOSE
SUMMARY=()

# nft in px: the tables of the bridge family, one name per line
bridge_tables() { netns_exec px nft list tables bridge 2>/dev/null | awk '{print $3}'; }
has_table() { bridge_tables | grep -qx ptpproxy; }
no_table() { ! has_table; }
# not_in FILE: ptpproxy's table is not in this `nft list ruleset` output
not_in() { ! grep -q 'table bridge ptpproxy' "$1"; }

# write_config UPSTREAM DOWNSTREAM_JSON MODE BRIDGE_PORTS: $TOPO_RUN/ptpproxy.json
write_config() {
	cat >"$TOPO_RUN/ptpproxy.json" <<-EOF
		{"upstream": "$1", "downstream": $2, "delay_resp": "$3", "correction": "none",
		 "bridge_ports": "$4", "status_file": "$TOPO_RUN/status.json", "status_interval_s": 1}
	EOF
}

start_proxy() {
	netns_ptpproxy "$PTPPROXY" "$TOPO_RUN/ptpproxy.json" "$TOPO_RUN/status.json" "$TOPO_RUN/ptpproxy.log" ||
		return 1
	TOPO_PROXY_PID=$NETNS_LAST_PID
}

show_logs() {
	echo "---- logs of this run ($TOPO_RUN) ----"
	[[ -f $TOPO_RUN/ptpproxy.log ]] && tail -n 30 "$TOPO_RUN/ptpproxy.log"
	topo_ptp4l_logs 6 "" gm c11 c12 c21 c22
	echo "----"
}

# judge LABEL EXPECT...: tests/lib/switch.py's lines counted; COUNTS/TOTAL lines printed
judge() {
	local label=$1 line
	shift
	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "${line#PASS }" ;;
		"FAIL "*) fail "${line#FAIL }" ;;
		"TOTAL "*)
			echo "  $line"
			SUMMARY+=("${line#TOTAL }")
			;;
		*) echo "  $line" ;;
		esac
	done < <(python3 "$HERE/lib/switch.py" --run "$TOPO_RUN" --label "$label" --expect "$@" ||
		echo "FAIL $label: switch.py crashed")
}

# run_one SHAPE BRIDGE_PORTS TRANSPORT MODE
run_one() {
	local shape=$1 bp=$2 transport=$3 mode=$4 label failed_before=$FAILED node out expect=()
	label="$shape $bp $transport $mode"
	[[ $shape == router ]] && label="router $transport $mode"
	TOPO_RUN="$RUN_ROOT/$shape-$bp-$transport-$mode"
	mkdir -p "$TOPO_RUN"
	echo "== $label (${RUN_SECONDS}s)"
	topo_create ptpproxy
	if [[ $shape == switch ]]; then
		px_bridge_start # br0 over up, dn1, dn2
		write_config up '["dn1", "dn2"]' "$mode" "$bp"
	else
		netns_bridge px br0 dn1 dn2
		write_config up '["br0"]' "$mode" "$bp"
	fi
	for node in c11 c12 c21 c22; do
		capture_start "$node"
	done
	if start_proxy; then
		pass "$label: ptpproxy starts"
	else
		fail "$label: ptpproxy starts"
		show_logs
		topo_destroy
		return 0
	fi
	ptp_start_gm "$transport"
	for node in c11 c12 c21 c22; do
		ptp_start_client "$node" "$transport"
	done
	netns_sleep "$RUN_SECONDS"
	ptp_stop_all
	capture_stop_all
	netns_exec px nft list ruleset >"$TOPO_RUN/nft.txt" 2>&1 || true
	out=$(timeout 10 "$PTPPROXY" status "$TOPO_RUN/status.json" 2>&1) || true
	printf '%s\n' "$out" >"$TOPO_RUN/status.txt"
	sleep 1.2 # one more status interval with the final counters
	proxy_stop
	check "$label: ptpproxy exits 0 on SIGTERM (exit status $PROXY_RC)" test "$PROXY_RC" = 0

	if [[ $shape == switch && $bp == filter ]]; then
		expect=(once "$mode" loop0)
		check "$label: the bridge filter dropped PTP while ptpproxy ran ($(grep -c 'counter packets [1-9]' "$TOPO_RUN/nft.txt") rules counted drops)" \
			grep -q 'counter packets [1-9]' "$TOPO_RUN/nft.txt"
		check "$label: ptpproxy status shows up, dn1, dn2 as members of br0, filter installed" \
			test "$(grep -cE '^(up|dn1|dn2) +member of br0 +installed$' "$TOPO_RUN/status.txt")" = 3
		check "$label: the bridge filter is gone after exit (bridge tables: $(bridge_tables | tr '\n' ' '))" \
			no_table
	elif [[ $shape == switch ]]; then
		check "$label: \"leave\" warns at start that frames may be forwarded twice" \
			grep -q 'are members of one bridge and "bridge_ports" is "leave"' "$TOPO_RUN/ptpproxy.log"
		check "$label: no table with \"leave\"" not_in "$TOPO_RUN/nft.txt"
	else
		expect=(once loop0)
		[[ $mode == unicast ]] && expect+=(unicast)
		check "$label: no table in the router shape" not_in "$TOPO_RUN/nft.txt"
		check "$label: ptpproxy status shows br0 as a bridge device, no filter" \
			grep -qE '^br0 +bridge device +none$' "$TOPO_RUN/status.txt"
	fi
	judge "$label" "${expect[@]}"
	((FAILED > failed_before)) && show_logs
	topo_destroy
}

# A bridge and its own member in one configuration: refused at start, both named.
check_refused() {
	local rc=0 out
	TOPO_RUN="$RUN_ROOT/refused"
	mkdir -p "$TOPO_RUN"
	echo "== refused: upstream br0, downstream dn1 (a member of br0)"
	topo_create ptpproxy
	px_bridge_start
	write_config br0 '["dn1"]' steer filter
	out=$(netns_exec px timeout 10 "$PTPPROXY" -c "$TOPO_RUN/ptpproxy.json" -f 2>&1) || rc=$?
	if [[ $rc == 78 && $out == *"downstream dn1 is a member of upstream bridge br0"* ]]; then
		pass "a bridge and its member as upstream and downstream: exit 78, both named ($out)"
	else
		fail "a bridge and its member as upstream and downstream: exit 78, both named (exit $rc): $out"
	fi
	topo_destroy
}

# A crashed run (SIGKILL) leaves its table; the next start replaces it, its exit removes it.
check_stale() {
	local label="stale table" n
	TOPO_RUN="$RUN_ROOT/stale"
	mkdir -p "$TOPO_RUN"
	echo "== $label: SIGKILL, then a new start"
	topo_create ptpproxy
	px_bridge_start
	write_config up '["dn1", "dn2"]' steer filter
	start_proxy || fail "$label: ptpproxy starts"
	kill -KILL "$TOPO_PROXY_PID" 2>/dev/null || true
	netns_wait_for 5 netns_dead "$TOPO_PROXY_PID" || true
	TOPO_PROXY_PID=
	check "$label: the killed run's table is left behind" has_table
	start_proxy || fail "$label: ptpproxy starts again"
	n=$(bridge_tables | grep -cx ptpproxy || true)
	check "$label: the new run has exactly one table ($n)" test "$n" = 1
	check "$label: the new run logs the filter installed" \
		grep -q 'bridge filter: PTP no longer forwarded by the bridge between up, dn1, dn2' "$TOPO_RUN/ptpproxy.log"
	proxy_stop
	check "$label: removed at exit" no_table
	topo_destroy
}

main() {
	require_ptpproxy
	if ! command -v nft >/dev/null; then
		fail "nft (nftables) is installed (tests/install-deps.sh)"
		check_summary
		return
	fi
	topo_init "$(mktemp -d /tmp/ptpproxy-switch.XXXXXX)"
	# shellcheck disable=SC2034 # read by tests/lib/netns.sh
	NETNS_PREFIX="sw$$-" # own namespace names (topo_init's are the other scripts')
	RUN_ROOT=$TOPO_RUN
	echo "== run directory: $RUN_ROOT"
	local run shape bp bp_value transport mode
	for run in switch:filter switch:leave router:-; do
		shape=${run%%:*}
		bp=${run#*:}
		for transport in l2 udp4; do
			for mode in steer unicast; do
				if ((${#ONLY[@]})) && [[ " ${ONLY[*]} " != *" $shape:$bp:$transport:$mode "* ]]; then
					continue
				fi
				[[ $bp == - ]] && bp_value=filter || bp_value=$bp
				run_one "$shape" "$bp_value" "$transport" "$mode"
			done
		done
	done
	if ((${#ONLY[@]} == 0)); then
		check_refused
		check_stale
	fi
	echo
	echo "== totals over the four clients (before: switch leave; after: switch filter; router)"
	printf '  %s\n' "${SUMMARY[@]}"
	keep_run_dir "$KEEP" "$RUN_ROOT" "logs and captures"
	check_summary
}

main
