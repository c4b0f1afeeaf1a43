#!/usr/bin/env bash
# The pcapng dump ("dump" in the configuration), end to end in network namespaces (root; ~1 min):
# ptpload's grandmaster, clients and misbehaving senders around a real ptpproxy (the topology of
# tests/hardening.sh, tests/lib/hardening.sh, in namespaces of its own: "dump<pid>-*"), and
# tshark reading what ptpproxy wrote.
#
#   tests/dump.sh [--keep]
#
#   1  "frames": "dropped": a rogue master (Sync, Follow_Up, Announce) and 14 kinds of malformed
#      frames on dn1, with well-behaved clients, ptpproxy as "nobody" under SCHED_FIFO (its
#      writer thread: uid 65534, no capabilities, SCHED_OTHER): tshark opens the file; each
#      frame's comment is "dropped: <reason>", per reason as many as the status file counts
#      dropped, rogue_master only for Sync/Follow_Up/Announce from dn1; nothing relayed is in it
#   2  "frames": "all" with the residence correction: every frame received is in the file (the
#      status file's rx), Sync/Follow_Up from up say "forwarded to dn1,dn2", Delay_Req "forwarded
#      to up", each Delay_Resp names the one port of its client
#   3  "max_bytes": 65536 under load: the file rotates to FILE.1, both within the bound and
#      readable by tshark, the log says so; a reload without "dump" stops it (the file no longer
#      grows), a reload with it starts a new file (the one before kept as FILE.1)
#
#   --keep   keep the run directory (logs, dumps, status files) even when everything passed
# Binaries: $PTPPROXY and $PTPLOAD, else built here (cargo build --release).
# Ends with "N passed, N failed"; exit status 1 if anything failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/hardening.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/hardening.sh" # and tests/lib/check.sh: pass, fail, REPO

KEEP=0
arg_flag --keep KEEP 1
args_parse "$@"

info() { echo "  ..   $*"; }
HZ_CLIENTS=10
CL=""

# judge CHECK ARGS...: tests/lib/dump.py (tshark's reading against the status file), counted
judge() {
	verdicts < <(timeout 120 python3 "$HERE/lib/dump.py" "$@" 2>&1 || echo "FAIL dump.py $1 crashed")
}

# run LABEL CFG SECONDS PTPLOAD-ARGS...: a fresh ptpproxy, one ptpload run, SIGTERM; the final
# status file as $HZ_RUN/LABEL.status.json
run() {
	local label=$1 cfg=$2 secs=$3 status
	shift 3
	status=$(hz_status "$cfg" 'j["status_file"]')
	hz_proxy_start "$cfg" "$HZ_RUN/$label.ptpproxy.log" || {
		fail "$label: ptpproxy did not start"
		return 1
	}
	hz_load "$label" "$secs" "$@" || fail "$label: ptpload failed: $(tail -n 2 "$HZ_RUN/$label.txt")"
	hz_proxy_stop
	[[ $HZ_PROXY_RC == 0 ]] || fail "$label: exit status $HZ_PROXY_RC on SIGTERM"
	cp "$status" "$HZ_RUN/$label.status.json"
}

# writer_thread PID: the privileges and scheduling of ptpproxy's dump writer thread against its
# loop's (the writer must hold no more than the loop, and never run SCHED_FIFO)
writer_thread() {
	local pid=$1 tid="" t main writer
	for t in /proc/"$pid"/task/*; do
		[[ $(cat "$t/comm" 2>/dev/null) == ptpproxy-dump ]] && tid=${t##*/}
	done
	[[ -n $tid ]] || {
		fail "a thread named ptpproxy-dump in ptpproxy ($pid)"
		return 0
	}
	ids() { awk '/^(Uid|CapEff):/ { $1 = $1; printf "%s; ", $0 }' "$1"; }
	main="$(ids "/proc/$pid/status")$(chrt -p "$pid" | tr '\n' ' ')"
	writer="$(ids "/proc/$pid/task/$tid/status")$(chrt -p "$tid" | tr '\n' ' ')"
	if [[ $writer == "Uid: 65534 65534 65534 65534; CapEff: 0000000000000000; "*"policy: SCHED_OTHER"* &&
		$main == *"policy: SCHED_FIFO"* ]]; then
		pass "\"user\": \"nobody\", realtime_priority 10: the writer thread $tid: $writer (the loop: $main)"
	else
		fail "the writer thread: $writer; the loop: $main (want uid 65534, no capabilities, SCHED_OTHER)"
	fi
}

scenario_dropped() {
	echo "== 1. \"frames\": \"dropped\": a rogue master and malformed frames on dn1, as nobody, SCHED_FIFO"
	local cfg=$HZ_RUN/dropped.json dir=$HZ_RUN/nobody dump=$HZ_RUN/nobody/dropped.pcapng
	mkdir -p "$dir"
	chmod 777 "$dir"
	hz_config "$cfg" "dump={\"file\": \"$dump\", \"frames\": \"dropped\"}" 'correction="residence"' \
		'user="nobody"' 'realtime_priority=10' "status_file=\"$dir/status.json\""
	hz_proxy_start "$cfg" "$HZ_RUN/dropped.ptpproxy.log" || {
		fail "dropped: ptpproxy did not start"
		return 0
	}
	writer_thread "$HZ_PROXY_PID"
	hz_load rogue 2 --flood "$CL:cl1:300" --flood-msg rogue --flood-identities 1 ||
		fail "rogue: ptpload failed"
	hz_load malformed 2 --flood "$CL:cl1:1400" --flood-msg malformed ||
		fail "malformed: ptpload failed"
	hz_proxy_stop
	cp "$dir/status.json" "$HZ_RUN/dropped.status.json"
	judge dropped "$dump" "$HZ_RUN/dropped.status.json"
}

scenario_all() {
	echo "== 2. \"frames\": \"all\", residence correction, $HZ_CLIENTS clients on dn1 and dn2"
	local cfg=$HZ_RUN/all.json dump=$HZ_RUN/all.pcapng
	hz_config "$cfg" "dump={\"file\": \"$dump\", \"frames\": \"all\"}" 'correction="residence"'
	run all "$cfg" 2 || return 0
	judge all "$dump" "$HZ_RUN/all.status.json"
}

scenario_bound_and_reload() {
	echo "== 3. \"max_bytes\": 65536 under 100 clients; reloads turn the dump off and on"
	local cfg=$HZ_RUN/bound.json dump=$HZ_RUN/bound.pcapng log=$HZ_RUN/bound.ptpproxy.log pid
	local size0 size1
	hz_config "$cfg" "dump={\"file\": \"$dump\", \"frames\": \"all\", \"max_bytes\": 65536}"
	hz_proxy_start "$cfg" "$log" || {
		fail "bound: ptpproxy did not start"
		return 0
	}
	pid=$HZ_PROXY_PID
	HZ_CLIENTS=100 hz_load bound 3 || fail "bound: ptpload failed"
	netns_sleep 1.2 # a status file written after the last frame
	cp "$HZ_RUN/status.json" "$HZ_RUN/bound.status.json"
	judge rotated "$dump" "$HZ_RUN/bound.status.json" 65536
	if grep -q "dump: $dump reached max_bytes 65536; rotated to $dump.1" "$log"; then
		pass "the log says so: $(grep -o 'dump: .*reached max_bytes.*' "$log" | tail -n 1)"
	else
		fail "no \"reached max_bytes\" line in the log: $(grep 'dump' "$log" || true)"
	fi

	hz_config "$cfg"
	kill -HUP "$pid"
	netns_sleep 0.5
	size0=$(stat -c %s "$dump")
	hz_load off 1 --flood "$CL:cl1:300" --flood-msg rogue --flood-identities 1 || fail "off: ptpload failed"
	netns_sleep 1.2
	size1=$(stat -c %s "$dump")
	local enabled
	enabled=$(hz_status "$HZ_RUN/status.json" 'j["dump"]["enabled"]')
	if grep -q 'dump: stopped' "$log" && ((size0 == size1 && enabled == 0)); then
		pass "reload without \"dump\": logged \"dump: stopped\", status enabled $enabled, the file stays at $size1 bytes through a rogue flood"
	else
		fail "reload without \"dump\": size $size0 -> $size1, enabled $enabled, log: $(grep 'dump' "$log" | tail -n 2)"
	fi

	hz_config "$cfg" "dump={\"file\": \"$dump\"}"
	kill -HUP "$pid"
	netns_sleep 0.5
	hz_load on 1 --flood "$CL:cl1:300" --flood-msg rogue --flood-identities 1 || fail "on: ptpload failed"
	hz_proxy_stop
	if grep -q "dump: dropped frames to $dump" "$log" && [[ $(stat -c %s "$dump.1") == "$size1" ]]; then
		pass "reload with \"dump\" again: logged, a new file (the one before kept as .1, $size1 bytes)"
	else
		fail "reload with \"dump\": log $(grep 'dump' "$log" | tail -n 1); .1 is $(stat -c %s "$dump.1") bytes, want $size1"
	fi
	judge restarted "$dump"
}

main() {
	local t_start
	t_start=$(date +%s)
	require_binaries
	command -v tshark >/dev/null || {
		fail "tshark installed (tests/install-deps.sh)"
		check_summary
		exit 1
	}
	HZ_RUN=$(mktemp -d /tmp/ptpproxy-dump.XXXXXX)
	netns_init "dump$$-" "$HZ_RUN" hz_destroy "network namespaces, raw sockets"
	# ptpproxy as "nobody" (scenario 1) reads its configuration here.
	chmod 755 "$HZ_RUN"
	echo "== run directory $HZ_RUN; $(tshark --version 2>/dev/null | head -n 1)"
	hz_topo_create
	CL=$(netns_name cl)

	scenario_dropped
	scenario_all
	scenario_bound_and_reload

	hz_destroy
	echo
	echo "== $(($(date +%s) - t_start)) s"
	((FAILED == 0)) || printf 'failed: %s\n' "${FAILURES[@]}"
	keep_run_dir "$KEEP" "$HZ_RUN" "logs, dumps and status files"
	check_summary
}

main
