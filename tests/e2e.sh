#!/usr/bin/env bash
# End-to-end test of ptpproxy between real ptp4l peers, in network namespaces (root required).
#
#   tests/e2e.sh [--bridge] [--seconds N] [--only TRANSPORT:MODE]... [--verbose] [--keep]
#
# Topology (tests/lib/topo.sh): ptp4l grandmaster -- ptpproxy (up | dn1, dn2) -- on each downstream
# port a Linux bridge with two ptp4l clients. Four runs: {l2, udp4} x {steer, unicast}. Each run
# captures PTP on every client's and the grandmaster's interface, injects a foreign Delay_Req from the
# upstream side and a rogue master's Sync/Announce on dn1's segment, then judges captures, ptp4l logs
# and the ptpproxy status file (tests/lib/analyze.py).
#
#   --bridge      a plain Linux bridge instead of ptpproxy: validates the harness; the isolation
#                 checks (other port's Delay_Resp, injected frames, status file) must then FAIL
#   --seconds N   traffic time per run (default 14)
#   --only T:M    run only this combination (e.g. l2:steer); repeatable
#   --full-checksums  ptp4l hosts send complete UDP checksums (TX checksum offload off on their veths),
#                 as real NICs do; by default veths leave them to "hardware" and a pcap relay
#                 captures them unfinished
#   --verbose     print every passing check too
#   --keep        keep the run directory (logs, captures) even when everything passed
# Binary: $PTPPROXY, or target/release/ptpproxy built here with `cargo build --release`.
# Prints one line per client and run ("L2 steer c11: delay_resp own=..."), then "N passed, N failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, REPO

BACKEND=ptpproxy
RUN_SECONDS=14
VERBOSE=0
KEEP=0
ONLY=()
arg_flag --bridge BACKEND bridge
arg_flag --full-checksums TOPO_TX_CSUM off
arg_value --seconds RUN_SECONDS "--seconds needs a value"
arg_list --only ONLY "--only needs TRANSPORT:MODE"
arg_flag --verbose VERBOSE 1
arg_flag --keep KEEP 1
args_parse "$@"
if ! [[ $RUN_SECONDS =~ ^[0-9]+$ ]] || ((RUN_SECONDS < 6 || RUN_SECONDS > 300)); then
	echo "--seconds must be 6..300" >&2
	exit 2
fi

FOREIGN_ID=02000a.fffe.0000aa # a client of some other proxy, heard on the upstream side
FOREIGN_MAC=02:00:0a:00:00:aa
FOREIGN_COUNT=5
ROGUE_ID=02000b.fffe.0000bb # a fake master on dn1's segment
ROGUE_MAC=02:00:0b:00:00:bb
ROGUE_EACH=5 # Sync and Announce each
PROBE_ID=02000c.fffe.0000cc # Syncs sent from upstream before ptp4l starts: the first frames on `up`
PROBE_MAC=02:00:0c:00:00:cc
PROBE_COUNT=3

# shellcheck disable=SC2034 # read by pass (tests/lib/check.sh)
CHECK_VERBOSE=$VERBOSE
CLIENT_LINES=()


label_of() { # l2 steer -> "L2 steer"
	case $1 in
	l2) printf 'L2 %s\n' "$2" ;;
	udp4) printf 'UDPv4 %s\n' "$2" ;;
	esac
}

show_logs() {
	echo "---- logs of this run ($TOPO_RUN) ----"
	if [[ -f $TOPO_RUN/ptpproxy.log ]]; then
		echo "-- ptpproxy stderr (last 40 lines):"
		tail -n 40 "$TOPO_RUN/ptpproxy.log"
	fi
	if [[ -f $TOPO_RUN/status.json ]]; then
		echo "-- status file:"
		cat "$TOPO_RUN/status.json"
		echo
	fi
	topo_ptp4l_logs 8 "" gm c11 c12 c21 c22
	echo "----"
}

# run_one TRANSPORT MODE
run_one() {
	local transport=$1 mode=$2 label failed_before=$FAILED node line half rc out
	label=$(label_of "$transport" "$mode")
	TOPO_RUN="$RUN_ROOT/$transport-$mode"
	mkdir -p "$TOPO_RUN"
	echo "== $label ($BACKEND, ${RUN_SECONDS}s, veth tx checksum offload $TOPO_TX_CSUM)"

	topo_create "$BACKEND"
	for node in gm c11 c12 c21 c22; do
		capture_start "$node"
	done
	if [[ $BACKEND == ptpproxy ]]; then
		if proxy_start "$mode" "$PTPPROXY"; then
			pass "$label: ptpproxy starts and writes its status file"
		else
			fail "$label: ptpproxy starts and writes its status file"
			show_logs
			topo_destroy
			return 0
		fi
	fi
	inject gm eth0 --transport "$transport" --type sync --clock-id "$PROBE_ID" \
		--src-mac "$PROBE_MAC" --src-ip 10.98.0.202 --count "$PROBE_COUNT" --interval 0.1
	ptp_start_gm "$transport"
	for node in c11 c12 c21 c22; do
		ptp_start_client "$node" "$transport"
	done

	half=$((RUN_SECONDS / 2))
	netns_sleep "$half"
	inject gm eth0 --transport "$transport" --type delay_req --clock-id "$FOREIGN_ID" \
		--src-mac "$FOREIGN_MAC" --src-ip 10.98.0.200 --count "$FOREIGN_COUNT" --interval 0.1
	inject s1 br1 --transport "$transport" --type sync --clock-id "$ROGUE_ID" \
		--src-mac "$ROGUE_MAC" --src-ip 10.98.0.201 --count "$ROGUE_EACH" --interval 0.1
	inject s1 br1 --transport "$transport" --type announce --clock-id "$ROGUE_ID" \
		--src-mac "$ROGUE_MAC" --src-ip 10.98.0.201 --count "$ROGUE_EACH" --interval 0.1
	netns_sleep $((RUN_SECONDS - half))

	ptp_stop_all
	capture_stop_all
	for node in gm c11 c12 c21 c22; do # kernel counters: UDP checksum errors, for analyze.py
		netns_exec "$node" cat /proc/net/snmp >"$TOPO_RUN/$node.snmp"
	done
	local status_args=(--status "$TOPO_RUN/status.json")
	if [[ $BACKEND == ptpproxy ]]; then
		sleep 1.2 # one more status interval with the final counters
		proxy_stop
		if [[ $PROXY_RC == 0 ]]; then
			pass "$label: ptpproxy exits 0 on SIGTERM"
		else
			fail "$label: ptpproxy exits 0 on SIGTERM (exit status $PROXY_RC)"
		fi
		if [[ $mode == steer ]]; then
			rc=0
			# ptpproxy has stopped: its final status file is printed, marked stale (exit 69).
			out=$(timeout 10 "$PTPPROXY" status "$TOPO_RUN/status.json" 2>&1) || rc=$?
			if [[ $rc == 69 && $out == *"STALE (ptpproxy (pid "*") is not running"* && $out == *"PORT "* ]]; then
				pass "$label: ptpproxy status prints the stopped ptpproxy's last status file, marked stale (exit 69)"
				((VERBOSE)) && printf '%s\n' "$out"
			else
				fail "$label: ptpproxy status prints the stopped ptpproxy's last status file, marked stale (exit $rc, expected 69): $out"
			fi
		fi
	fi

	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "${line#PASS }" ;;
		"FAIL "*) fail "${line#FAIL }" ;;
		"CLIENT "*)
			echo "  ${line#CLIENT }"
			CLIENT_LINES+=("${line#CLIENT }")
			;;
		*) echo "  $line" ;;
		esac
	done < <(python3 "$HERE/lib/analyze.py" --run "$TOPO_RUN" --label "$label" --mode "$mode" \
		--foreign-id "$FOREIGN_ID" --foreign-count "$FOREIGN_COUNT" \
		--rogue-id "$ROGUE_ID" --rogue-count $((2 * ROGUE_EACH)) \
		--probe-id "$PROBE_ID" --probe-count "$PROBE_COUNT" "${status_args[@]}" ||
		echo "FAIL $label: analyze.py crashed")

	if ((FAILED > failed_before)); then
		show_logs
	fi
	topo_destroy
}

# A bad config: exit 78 and exactly one line.
check_bad_config() {
	local cfg="$RUN_ROOT/bad.json" rc=0 out
	printf '%s\n' '{"upstream": "up", "downstream": ["dn1"], "domains": [0], "no_such_key": 1}' >"$cfg"
	out=$(timeout 10 "$PTPPROXY" --check-config -c "$cfg" 2>&1) || rc=$?
	if [[ $rc == 78 && $(printf '%s\n' "$out" | wc -l) == 1 ]]; then
		pass "--check-config on a bad file exits 78 with one line ($out)"
	else
		fail "--check-config on a bad file exits 78 with one line (exit $rc): $out"
	fi
}

main() {
	if [[ $BACKEND == ptpproxy ]]; then
		require_ptpproxy
	fi
	topo_init "$(mktemp -d /tmp/ptpproxy-e2e.XXXXXX)"
	RUN_ROOT=$TOPO_RUN
	echo "== run directory: $RUN_ROOT"
	[[ $BACKEND == ptpproxy ]] && check_bad_config

	local transport mode
	for transport in l2 udp4; do
		for mode in steer unicast; do
			if ((${#ONLY[@]})) && [[ " ${ONLY[*]} " != *" $transport:$mode "* ]]; then
				continue
			fi
			run_one "$transport" "$mode"
		done
	done

	echo
	echo "== per client ($BACKEND): Delay_Resp seen on the client's interface, by requestingPortIdentity"
	printf '%s\n' "${CLIENT_LINES[@]}"
	keep_run_dir "$KEEP" "$RUN_ROOT" "logs and captures"
	check_summary
}

main
