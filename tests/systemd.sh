#!/usr/bin/env bash
# tests/systemd.sh: the systemd unit, cross/yocto/files/ptpproxy.service.
#
# 1. Its exposure score: `systemd-analyze security --offline=true` prints it; the test fails above
#    MAX_EXPOSURE (2.0).
# 2. ptpproxy under that unit's sandbox, managed by a real systemd: a container
#    (systemd-nspawn --volatile=yes: the host's /usr, a fresh /etc and /var) boots systemd as its
#    PID 1 in the proxy's network namespace of tests/lib/topo.sh, with the unit file as shipped,
#    the binary under test as /usr/sbin/ptpproxy (an overlay on /usr) and a configuration in
#    /etc/ptpproxy. One drop-in only: SystemCallErrorNumber=kill, so a system call outside the
#    unit's filter kills ptpproxy (and fails the test) instead of returning EPERM unseen.
#    Checked: start, the process's user, capabilities, no_new_privs, seccomp and /proc view, its
#    status file, Delay_Resp reaching ptp4l clients through it (L2, then UDPv4), reload (same process, "reload:
#    applied"), no restart, a clean stop.
#
#   tests/systemd.sh [--score-only] [--keep]
#
# Needs root, systemd (systemd-analyze), systemd-container (systemd-nspawn), util-linux (nsenter),
# iproute2, linuxptp; tests/install-deps.sh installs them. Runs under the shared lock of the
# namespace tests (its namespace names are unique: tests/lib/topo.sh's per-pid prefix).
# shellcheck disable=SC2016,SC2034 # conditions in '...' (and the locals they set or read) are expanded by eval when they run
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT=cross/yocto/files/ptpproxy.service
MAX_EXPOSURE=2.0
SCORE_ONLY=0
KEEP=0
for a in "$@"; do
	case $a in
	--score-only) SCORE_ONLY=1 ;;
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "usage: tests/systemd.sh [--score-only] [--keep]" >&2
		exit 64
		;;
	esac
done

# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/topo.sh

# ------------------------------------------------------------------ 1. the exposure score

score_check() {
	local out score
	echo "== systemd-analyze security --offline=true $UNIT"
	if ! out=$(systemd-analyze security --offline=true "$UNIT" 2>&1); then
		printf '%s\n' "$out" | tail -n 5
		fail "systemd-analyze security analyses the unit"
		return
	fi
	# What is still exposed, and the overall line.
	grep -E '^✗|Overall exposure' <<<"$out" | sed 's/^/    /'
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
	check "exposure score ${score:-none} <= $MAX_EXPOSURE" \
		awk -v s="${score:-99}" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= max + 0) }'
}

score_check
if ((SCORE_ONLY)); then
	check_summary
	exit
fi

# ------------------------------------------------------------------ 2. under systemd

require_ptpproxy
# shellcheck disable=SC2119 # no run directory given: topo_init makes one
topo_init
TMP=$TOPO_RUN
CONTAINER_PID= # systemd-nspawn (under timeout)
CINIT=         # the container's systemd, as the host sees it

cexec() { nsenter -t "$CINIT" -a "$@"; }
cunit() { cexec systemctl show -p "$1" --value ptpproxy.service; }
journal() { cexec journalctl -q --no-pager -o cat -u ptpproxy.service; }

write_config() { # write_config STATUS_INTERVAL_S
	cat >"$TMP/etc-ptpproxy/config.json.tmp" <<-EOF
		{"upstream": "up", "downstream": ["dn1", "dn2"], "domains": [0], "delay_resp": "steer",
		 "client_timeout_s": 60, "status_interval_s": $1}
	EOF
	mv "$TMP/etc-ptpproxy/config.json.tmp" "$TMP/etc-ptpproxy/config.json"
}

# container_start: boot systemd in a container joined to px's network namespace.
container_start() {
	mkdir -p "$TMP/usr/sbin" "$TMP/etc-ptpproxy" "$TMP/dropin"
	cp "$PTPPROXY" "$TMP/usr/sbin/ptpproxy"
	write_config 1
	printf '[Service]\n# test only: a system call outside the filter kills the daemon\nSystemCallErrorNumber=kill\n' \
		>"$TMP/dropin/test.conf"
	timeout -k 5 "$NETNS_LIFETIME" systemd-nspawn -q -D / --volatile=yes --register=no --keep-unit \
		-M "${NETNS_PREFIX}sd" --network-namespace-path="/run/netns/$(netns_name px)" \
		--overlay-ro="/usr:$TMP/usr:/usr" \
		--bind-ro="$PWD/$UNIT:/etc/systemd/system/ptpproxy.service" \
		--bind-ro="$TMP/dropin:/etc/systemd/system/ptpproxy.service.d" \
		--bind-ro="$TMP/etc-ptpproxy:/etc/ptpproxy" \
		-b --console=pipe </dev/null >"$TMP/container.log" 2>&1 &
	CONTAINER_PID=$!
	netns_track "$CONTAINER_PID"
	local nspawn=
	# The container's PID 1 is nspawn's child once it has executed systemd (before that, nspawn's
	# children are short-lived helpers).
	netns_wait_for 20 eval 'nspawn=$(pgrep -P "$CONTAINER_PID" -x systemd-nspawn) && CINIT=$(pgrep -P "$nspawn" -x systemd | head -n 1) && [ -n "$CINIT" ]' ||
		return 1
	# Booting is over when is-system-running says "running", or "degraded" when some unit of the
	# host's OS failed in the container (not ptpproxy's concern; it is checked below). Before
	# that it says "initializing"/"starting", or cannot reach PID 1 yet.
	local state=
	netns_wait_for 120 eval 'state=$(cexec systemctl is-system-running 2>&1); [[ $state == running || $state == degraded ]]' ||
		{
			echo "    container state: $state"
			return 1
		}
	echo "    container booted: systemd $(cexec systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') as PID 1, state $state"
}

container_stop() {
	[[ -n $CONTAINER_PID ]] || return 0
	kill -TERM "$CONTAINER_PID" 2>/dev/null || true # timeout passes it on: nspawn halts the container
	netns_wait_for 30 netns_dead "$CONTAINER_PID" || kill -KILL "$CONTAINER_PID" 2>/dev/null || true
	CONTAINER_PID=
}

# caps_ok HEX: CAP_NET_RAW present, nothing beyond CAP_NET_RAW and CAP_NET_ADMIN
caps_ok() { (((16#$1 & 0x2000) && !(16#$1 & ~0x3000))); }
caps_within() { ((!(16#$1 & ~0x3000))); }
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$2" | awk '{print $1}'; }

sandbox_checks() {
	local pid=$1 st uid gid view
	st=$(cexec cat "/proc/$pid/status")
	uid=$(field Uid "$st")
	gid=$(field Gid "$st")
	check "runs as a dynamic user (uid $uid), not root" eval '[ -n "$uid" ] && [ "$uid" -ne 0 ]'
	check "keeps CAP_NET_RAW, nothing beyond CAP_NET_RAW|CAP_NET_ADMIN (CapEff $(field CapEff "$st"))" \
		caps_ok "$(field CapEff "$st")"
	check "bounding set within CAP_NET_RAW|CAP_NET_ADMIN (CapBnd $(field CapBnd "$st"))" \
		caps_within "$(field CapBnd "$st")"
	check "no_new_privs set, seccomp filter on (NoNewPrivs $(field NoNewPrivs "$st"), Seccomp $(field Seccomp "$st"))" \
		eval '[ "$(field NoNewPrivs "$st")" = 1 ] && [ "$(field Seccomp "$st")" = 2 ]'
	# /proc as the service sees it (its mount namespace, its user): ProtectProc=invisible hides
	# every process it may not ptrace (root's, and ptpproxy itself: exec with capabilities made it
	# non-dumpable), ProcSubset=pid everything but processes.
	view=$(cexec nsenter -t "$pid" -m -S "$uid" -G "$gid" ls /proc 2>&1) || true
	check "its /proc as uid $uid: PID 1 (root's) hidden, no /proc/sys, /proc/self there: $(tr '\n' ' ' <<<"$view")" \
		eval '! grep -qx 1 <<<"$view" && ! grep -qx sys <<<"$view" && grep -qx self <<<"$view"'
}

relay_checks() { # relay_checks l2|udp4: a grandmaster and a client on each downstream port
	ptp_stop_all
	ptp_start_gm "$1"
	ptp_start_client c11 "$1"
	ptp_start_client c21 "$1"
	check "$1: ptp4l clients on dn1 and dn2 get Delay_Resp through ptpproxy (path delays within 40 s)" \
		netns_wait_for 40 eval '[ "$(path_delay_count c11)" -ge 2 ] && [ "$(path_delay_count c21)" -ge 2 ]'
	echo "    c11: $(path_delay_last c11)"
}

scenario() {
	local out rc pid pid2 status n1 n2 ipdeny
	if container_start; then
		pass "systemd boots in a container in the proxy's namespace"
	else
		fail "systemd boots in a container in the proxy's namespace"
		return
	fi
	rc=0
	out=$(cexec systemctl start ptpproxy.service 2>&1) || rc=$?
	check "systemctl start ptpproxy: exit $rc $out" [ "$rc" -eq 0 ]
	sleep 2
	if [ "$(cunit ActiveState)" != active ]; then
		fail "unit active after 2 s (it is $(cunit ActiveState), $(cunit NRestarts) restarts)"
		journal | tail -n 8 | sed 's/^/    | /'
		return
	fi
	pass "unit active after 2 s"
	pid=$(cunit MainPID)
	# systemd 252 shows the kill action as its internal number (INT_MAX - 1).
	check "drop-in applied: SystemCallErrorNumber=kill ($(cunit SystemCallErrorNumber))" \
		eval '[[ "$(cunit SystemCallErrorNumber)" =~ ^(kill|2147483646)$ ]]'
	sandbox_checks "$pid"
	check "status file /run/ptpproxy/status.json written by pid $pid" \
		netns_wait_for 10 eval 'status=$(cexec cat /run/ptpproxy/status.json 2>/dev/null) &&
			python3 -c "import json,sys; sys.exit(json.loads(sys.argv[1])[\"pid\"] != $pid)" "$status"'
	check "journal: ptpproxy opened its ports" eval 'journal | grep -q "port dn2 opened"'

	relay_checks l2

	write_config 2
	rc=0
	out=$(cexec systemctl reload ptpproxy.service 2>&1) || rc=$?
	check "systemctl reload: exit $rc $out" [ "$rc" -eq 0 ]
	check "reload: journal says applied" netns_wait_for 10 eval 'journal | grep -q "reload: applied"'
	pid2=$(cunit MainPID)
	check "reload: same process ($pid -> $pid2), active" \
		eval '[ "$pid2" = "$pid" ] && [ "$(cunit ActiveState)" = active ]'
	n1=$(path_delay_count c11)
	check "after the reload, Delay_Resp still reach the clients" \
		netns_wait_for 15 eval '[ "$(path_delay_count c11)" -gt "$n1" ]'
	# UDPv4 too: ptpproxy reads and writes it on the same packet sockets (no IP socket: the unit
	# allows none).
	relay_checks udp4
	n2=$(cunit NRestarts)
	check "never restarted (NRestarts ${n2:-?}: no crash, no SIGSYS)" [ "${n2:-1}" = 0 ]

	ipdeny=$(cexec journalctl -q --no-pager -o cat -b | grep -m1 -iE 'BPF firewall|IP.*(allow|deny).*not supported' || true)
	echo "    IPAddressDeny: ${ipdeny:-systemd logged no warning about it} (not exercised: ptpproxy opens no IP socket)"

	rc=0
	out=$(cexec systemctl stop ptpproxy.service 2>&1) || rc=$?
	check "systemctl stop: exit $rc, result $(cunit Result), exit status $(cunit ExecMainStatus)" \
		eval '[ "$rc" -eq 0 ] && [ "$(cunit Result)" = success ] && [ "$(cunit ExecMainStatus)" = 0 ]'
	echo "    journal of ptpproxy.service (first lines):"
	journal | head -n 8 | sed 's/^/    | /'
}

echo "== ptpproxy under $UNIT in a systemd-nspawn container"
for tool in systemd-nspawn nsenter ptp4l; do
	command -v "$tool" >/dev/null || {
		fail "$tool installed (tests/install-deps.sh)"
		check_summary
		exit 1
	}
done
topo_create ptpproxy
scenario || true
ptp_stop_all
container_stop
if ((FAILED > 0)); then
	topo_ptp4l_logs 10 "" c11 c21
	echo "-- container console:"
	tail -n 20 "$TMP/container.log" || true
fi
topo_destroy
keep_run_dir "$KEEP" "$TMP" "logs"
check_summary
