# shellcheck shell=bash
# shellcheck disable=SC2034 # NETNS_* variables are read by the files that source this one
# Network namespaces and background processes of the test topologies (tests/lib/topo.sh,
# tests/lib/hardening.sh, tests/bench.sh). Root required. Every namespace is named
# "${NETNS_PREFIX}NODE"; netns_destroy removes them all with what runs inside.
#
#   netns_init PREFIX RUN_DIR DESTROY WHY   root or "must run as root (WHY)" and exit 1; prefix,
#                                       run directory (created), traps: DESTROY on exit, INT and
#                                       TERM exit (130 / 143)
#   netns_name NODE                     the namespace's name
#   netns_exec NODE CMD...              run CMD in NODE's namespace
#   netns_add NODE                      a namespace: IPv6 off, lo up
#   netns_veth NODE_A IF_A MAC_A NODE_B IF_B [MAC_B]   a veth pair, both ends up (MAC "" = the
#                                       kernel's choice)
#   netns_bridge NODE BRIDGE [PORT...]  a Linux bridge like a dumb switch (multicast snooping off:
#                                       floods PTP; STP off, forwards at once) over PORTs, up
#   netns_bg LOG NODE CMD...            CMD in NODE's namespace in the background under a lifetime
#                                       limit (NETNS_LIFETIME s); NETNS_LAST_PID, tracked
#   netns_track PID                     NETNS_DESTROY stops PID too
#   netns_wait_for SECONDS CMD...       poll CMD every NETNS_POLL_S (0.1) s; 1 on timeout
#   netns_alive PID, netns_dead PID     exists and is not a zombie (or the opposite)
#   netns_stop_pid PID [SECONDS]        TERM, bounded wait (5 s), then KILL; returns the exit status
#                                       (124: had to be killed)
#   netns_sleep SECONDS                 a sleep that a trapped INT/TERM interrupts at once
#   netns_ptpproxy BIN CFG STATUS LOG   check CFG, start BIN -f CFG -m in px (netns_bg), wait for
#                                       its status file STATUS (logs why not)
#   netns_destroy                       stop what was started here, delete the namespaces
#                                       (idempotent)

NETNS_PREFIX=
NETNS_NODES=()
NETNS_PIDS=()
NETNS_SLEEP_PID=
NETNS_LAST_PID=
NETNS_LIFETIME=900 # no process of ours outlives this many seconds, even if we are killed
NETNS_POLL_S=0.1
NETNS_POLL_PER_S=10

netns_log() { printf '%s\n' "$*" >&2; }
netns_name() { printf '%s%s\n' "$NETNS_PREFIX" "$1"; }

netns_exec() {
	local node=$1
	shift
	ip netns exec "$(netns_name "$node")" "$@"
}

# shellcheck disable=SC2064 # DESTROY is expanded now on purpose: a command name
netns_init() {
	[[ $EUID -eq 0 ]] || {
		netns_log "must run as root ($4)"
		exit 1
	}
	NETNS_PREFIX=$1
	mkdir -p "$2"
	trap "$3" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

netns_add() {
	ip netns add "$(netns_name "$1")"
	NETNS_NODES+=("$1")
	# no IPv6 chatter (DAD, MLD, router solicitations) in the captures; fine if the kernel has no IPv6
	netns_exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
	netns_exec "$1" ip link set dev lo up
}

netns_veth() {
	local a=(name "$2") b=(name "$5")
	[[ -n $3 ]] && a+=(address "$3")
	[[ -n ${6:-} ]] && b+=(address "$6")
	ip link add "${a[@]}" netns "$(netns_name "$1")" type veth peer "${b[@]}" netns "$(netns_name "$4")"
	netns_exec "$1" ip link set dev "$2" up
	netns_exec "$4" ip link set dev "$5" up
}

netns_bridge() {
	local node=$1 br=$2 port
	shift 2
	netns_exec "$node" ip link add "$br" type bridge mcast_snooping 0 stp_state 0 forward_delay 0
	for port in "$@"; do
		netns_exec "$node" ip link set dev "$port" master "$br"
	done
	netns_exec "$node" ip link set dev "$br" up
}

# timeout(1) passes SIGTERM on to CMD and exits with CMD's status.
netns_bg() {
	local log=$1 node=$2
	shift 2
	ip netns exec "$(netns_name "$node")" timeout -k 5 "$NETNS_LIFETIME" "$@" >"$log" 2>&1 &
	NETNS_LAST_PID=$!
	NETNS_PIDS+=("$NETNS_LAST_PID")
}

netns_track() { NETNS_PIDS+=("$1"); }

netns_wait_for() {
	local tries=$(($1 * NETNS_POLL_PER_S))
	shift
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep "$NETNS_POLL_S"
	done
	return 1
}

netns_alive() { [[ -e /proc/$1 ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
netns_dead() { ! netns_alive "$1"; }

netns_stop_pid() {
	local pid=$1 secs=${2:-5} rc=0
	if netns_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! netns_wait_for "$secs" netns_dead "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			return 124
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# (bash runs traps only between commands, but during `wait` too)
netns_sleep() {
	sleep "$1" &
	NETNS_SLEEP_PID=$!
	wait "$NETNS_SLEEP_PID" || true
	NETNS_SLEEP_PID=
}

netns_ptpproxy() {
	local bin=$1 cfg=$2 status=$3 log=$4 out
	[[ -x $bin ]] || {
		netns_log "ptpproxy binary not found: '$bin'"
		return 1
	}
	rm -f "$status"
	if ! out=$(timeout 10 "$bin" --check-config -c "$cfg" 2>&1); then
		netns_log "ptpproxy --check-config rejected $cfg: $out"
		return 1
	fi
	netns_bg "$log" px "$bin" -f "$cfg" -m
	netns_wait_for 10 test -s "$status" || {
		netns_log "ptpproxy wrote no status file within 10 s; its log:"
		cat "$log" >&2
		return 1
	}
}

netns_destroy() {
	local pid node ns left
	if [[ -n $NETNS_SLEEP_PID ]]; then
		kill -TERM "$NETNS_SLEEP_PID" 2>/dev/null || true
		NETNS_SLEEP_PID=
	fi
	for pid in "${NETNS_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${NETNS_PIDS[@]}"; do
		netns_stop_pid "$pid" 3 >/dev/null 2>&1 || true
	done
	NETNS_PIDS=()
	for node in "${NETNS_NODES[@]}"; do
		ns=$(netns_name "$node")
		# anything still inside one of our namespaces was started by this script
		left=$(ip netns pids "$ns" 2>/dev/null || true)
		for pid in $left; do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	NETNS_NODES=()
}
