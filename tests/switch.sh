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
# Also: a bridge and its own member in one configuration are refused (exit 78) naming both; as
# user nobody, a crashed run's table (SIGKILL) is replaced by the next start (CAP_NET_ADMIN then
# permitted, not effective), the table follows reloads and a re-created port, and goes at exit.
#
#   --seconds N   traffic time per run (default 10)
#   --only S:B:T:M  e.g. switch:filter:l2:steer, router:-:udp4:unicast, or refused, lifecycle;
#                 repeatable
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
		check "$label: ptpproxy status shows up, dn1, dn2 as members of br0, nftables filter installed" \
			test "$(grep -cE '^(up|dn1|dn2) +member of br0 +installed \(nftables\)$' "$TOPO_RUN/status.txt")" = 3
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
	out=$(netns_exec px timeout 10 "$PTPPROXY" -c "$TOPO_RUN/ptpproxy.json" 2>&1) || rc=$?
	if [[ $rc == 78 && $out == *"downstream dn1 is a member of upstream bridge br0"* ]]; then
		pass "a bridge and its member as upstream and downstream: exit 78, both named ($out)"
	else
		fail "a bridge and its member as upstream and downstream: exit 78, both named (exit $rc): $out"
	fi
	topo_destroy
}

# set_is NAMES: the table's set of relayed ports is exactly NAMES ('"up","dn1"')
set_is() {
	[[ $(netns_exec px nft list set bridge ptpproxy relayed 2>/dev/null | tr -d ' \t\n') == *"elements={$1}"* ]]
}

# proxy_pid: the ptpproxy process under netns_bg's timeout
proxy_pid() { pgrep -P "$TOPO_PROXY_PID" -x ptpproxy; }

# reload_to DOWNSTREAM_JSON BRIDGE_PORTS: rewrite the configuration and send SIGHUP
reload_to() {
	write_config up "$1" steer "$2"
	sed -i 's/"status_interval_s": 1}/"status_interval_s": 1, "user": "nobody"}/' "$TOPO_RUN/ptpproxy.json"
	kill -HUP "$(proxy_pid)"
}

# The filter's life as user nobody: a crashed run's table (SIGKILL) replaced by the next start,
# which keeps CAP_NET_ADMIN permitted only; replaced when a reload changes the ports and when a
# port is deleted and re-created; kept through a rejected reload (a bridge with its member);
# removed by a reload to "leave", back with "filter"; gone at exit.
check_lifecycle() {
	local label="lifecycle" n caps
	TOPO_RUN="$RUN_ROOT/lifecycle"
	mkdir -p "$TOPO_RUN"
	chmod 755 "$RUN_ROOT" # reachable for the user nobody, who re-reads the configuration
	echo "== $label: SIGKILL, a new start, reloads, a re-created port (user nobody)"
	topo_create ptpproxy
	px_bridge_start
	reload_to '["dn1", "dn2"]' filter 2>/dev/null || true # only writes the file: nothing runs yet
	start_proxy || fail "$label: ptpproxy starts"
	kill -KILL "$(proxy_pid)" 2>/dev/null || true
	netns_wait_for 5 netns_dead "$TOPO_PROXY_PID" || true
	TOPO_PROXY_PID=
	check "$label: the killed run's table is left behind" has_table
	start_proxy || fail "$label: ptpproxy starts again"
	n=$(bridge_tables | grep -cx ptpproxy || true)
	check "$label: the new run has exactly one table ($n)" test "$n" = 1
	check "$label: it names up, dn1, dn2" set_is '"up","dn1","dn2"'
	caps=$(awk '/^(Uid|CapPrm|CapEff|CapAmb):/ {printf "%s %s; ", $1, $2}' "/proc/$(proxy_pid)/status")
	check "$label: as nobody, CAP_NET_ADMIN permitted but not effective ($caps)" \
		test "$caps" = "Uid: 65534; CapPrm: 0000000000003000; CapEff: 0000000000002000; CapAmb: 0000000000000000; "
	reload_to '["dn1"]' filter
	check "$label: a reload to downstream dn1 only: the set is up, dn1" netns_wait_for 5 set_is '"up","dn1"'
	reload_to '["dn1", "dn2"]' filter
	check "$label: a reload back: up, dn1, dn2" netns_wait_for 5 set_is '"up","dn1","dn2"'
	netns_exec px ip link del dn2
	check "$label: dn2 deleted: up, dn1" netns_wait_for 5 set_is '"up","dn1"'
	netns_veth px dn2 02:00:00:00:f0:02 s2 up2 ""
	netns_exec s2 ip link set dev up2 master br2
	netns_exec px ip link set dev dn2 master br0
	check "$label: dn2 re-created in br0: up, dn1, dn2" netns_wait_for 5 set_is '"up","dn1","dn2"'
	write_config br0 '["dn1"]' steer filter
	kill -HUP "$(proxy_pid)"
	check "$label: a reload to upstream br0 with its member dn1 is rejected, naming both" \
		netns_wait_for 5 grep -q 'reload rejected, keeping the running configuration: downstream dn1 is a member of upstream bridge br0' "$TOPO_RUN/ptpproxy.log"
	check "$label: the running filter stays (up, dn1, dn2)" set_is '"up","dn1","dn2"'
	reload_to '["dn1", "dn2"]' leave
	check "$label: a reload to \"leave\" removes the table" netns_wait_for 5 no_table
	reload_to '["dn1", "dn2"]' filter
	check "$label: a reload to \"filter\" installs it again" netns_wait_for 5 set_is '"up","dn1","dn2"'
	proxy_stop
	check "$label: ptpproxy exits 0 ($PROXY_RC)" test "$PROXY_RC" = 0
	check "$label: removed at exit" no_table
	grep -E 'bridge filter|privileges' "$TOPO_RUN/ptpproxy.log" | sed 's/^/    /'
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
	if ((${#ONLY[@]} == 0)) || [[ " ${ONLY[*]} " == *" refused "* ]]; then
		check_refused
	fi
	if ((${#ONLY[@]} == 0)) || [[ " ${ONLY[*]} " == *" lifecycle "* ]]; then
		check_lifecycle
	fi
	if ((${#SUMMARY[@]})); then
		echo
		echo "== totals over the four clients (before: switch leave; after: switch filter; router)"
		printf '  %s\n' "${SUMMARY[@]}"
	fi
	keep_run_dir "$KEEP" "$RUN_ROOT" "logs and captures"
	check_summary
}

main
