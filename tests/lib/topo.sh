# shellcheck shell=bash
# shellcheck disable=SC2034 # TOPO_* and PROXY_RC are read by the scripts that source this file
# Test topology for ptpproxy: network namespaces joined by veth pairs. Sourced by tests/e2e.sh and
# tests/demo.sh; needs root, iproute2, linuxptp (ptp4l), tcpdump.
#
#   [gm] eth0 ──── up [px] dn1 ──── up1 {br1} c11 ──── eth0 [c11]
#                      [px]               {br1} c12 ──── eth0 [c12]
#                      [px] dn2 ──── up2 {br2} c21 ──── eth0 [c21]
#                                         {br2} c22 ──── eth0 [c22]
#
#   [x] = namespace "${NETNS_PREFIX}x" (tests/lib/netns.sh): gm (ptp4l grandmaster), px (ptpproxy
#   on up, dn1, dn2), s1/s2 (one Linux bridge each: a client segment), c11..c22 (ptp4l clients, slaveOnly, free_running).
#   MACs: gm 02:00:00:00:00:01, cNM 02:00:00:00:0N:0M (so ptp4l's clockIdentity is 020000.fffe.000N0M);
#   IPv4 10.98.0.0/24 (gm .1, cNM .NM). Nothing is created outside these namespaces.
#
# Interface for the scripts (every wait is bounded; every process gets a lifetime limit):
#   topo_init [RUN_DIR]          unique prefix, run directory, cleanup traps (call once per script)
#   topo_create ptpproxy|bridge  build the namespaces; "bridge" puts a plain Linux bridge over up/dn1/dn2
#                                in px (stand-in for ptpproxy, to validate the harness).
#                                TOPO_LOAD=1: also a namespace "ld" for a load generator, with l1 and l2
#                                ports of br1 and br2, and l0 on a new segment s0 (bridge br0: g0 to
#                                gm's eth0, u0 to px's up, lm to l0) on the grandmaster's side
#                                TOPO_TX_CSUM=off: the ptp4l hosts' veths compute UDP checksums in
#                                software, as a real NIC puts them on the wire (default: kernel's veth
#                                default, checksum offload on: frames cross the veth unfinished)
#   netns_exec NODE CMD...       run CMD in NODE's namespace (gm px s1 s2 c11 c12 c21 c22)
#   capture_start NODE [IF [FILE]]  tcpdump (no promiscuous mode) on NODE's IF (eth0) -> FILE
#                                ($TOPO_RUN/NODE.pcap). TOPO_CAPTURE_FILTER: pcap filter (PTP: L2 and
#                                UDP ports 319/320); TOPO_CAPTURE_NANO=1: nanosecond time stamps;
#                                TOPO_CAPTURE_COUNT=N: stop after N frames
#   capture_stop_all             stop the captures (files are complete afterwards)
#   ptp_start_gm l2|udp4|udp6    ptp4l grandmaster, log $TOPO_RUN/gm.log (udp6: IPv6 on eth0 first).
#                                TOPO_PTP4L_EXTRA: more [global] lines for every ptp4l (gm, clients,
#                                tc), TOPO_CLIENT_EXTRA: for the clients only
#   ptp_start_client NODE l2|udp4|udp6   ptp4l client (debug log level: "delay filtered N raw M" lines)
#   ptp_start_tc l2|udp4|udp6    ptp4l as an end-to-end transparent clock over up, dn1, dn2 in px
#                                (software time stamps, free_running; log $TOPO_RUN/tc.log)
#   ptp_stop_all                 stop every ptp4l
#   px_bridge_start / px_bridge_stop   a Linux bridge br0 over up, dn1, dn2 in px, created/deleted at
#                                run time (topo_create ptpproxy, then switch forwarders in one topology)
#   topo_hide_domain D           (TOPO_LOAD=1) drop PTP of domain D on the bridge ports towards gm and
#                                the clients: a load on domain D crosses the forwarder only
#   proxy_start MODE [BIN]       write $TOPO_RUN/ptpproxy.json (delay_resp MODE), check it, start
#                                ptpproxy -m in px (stderr: $TOPO_RUN/ptpproxy.log), wait for the status
#                                file. TOPO_PROXY_CORRECTION (none), TOPO_PROXY_DOMAINS ([0]) and
#                                TOPO_PROXY_EXTRA (more JSON members, ", \"k\": v") shape the config
#   proxy_stop                   SIGTERM, bounded wait; exit status in PROXY_RC (124 = did not exit)
#   netns_sleep SECONDS          sleep, interruptible by INT/TERM (use it for every long wait)
#   inject NODE IF ARGS...       send crafted PTP frames from NODE's IF (tests/lib/ptpframe.py ARGS)
#   topo_destroy                 kill everything started here, delete the namespaces (idempotent)
#   topo_ptp4l_logs LINES EXTRA NODE...  the end of each ptp4l log (for a failure's diagnosis)
# Helpers: client_mac NODE, client_identity NODE (020000.fffe.000101-1), client_port NODE (dn1|dn2),
#   client_ip NODE, path_delay_count NODE, path_delay_last NODE.

TOPO_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=netns.sh source-path=SCRIPTDIR disable=SC1091
source "$TOPO_LIB_DIR/netns.sh"
# shellcheck source=check.sh source-path=SCRIPTDIR disable=SC1091
source "$TOPO_LIB_DIR/check.sh"
TOPO_CLIENTS=(c11 c12 c21 c22)
TOPO_GM_MAC=02:00:00:00:00:01
TOPO_GM_IDENTITY=020000.fffe.000001
TOPO_TX_CSUM=${TOPO_TX_CSUM:-on}
TOPO_LOAD=${TOPO_LOAD:-0}
NETNS_LIFETIME=${TOPO_LIFETIME:-900} # no process of ours outlives this many seconds, even if we are killed
TOPO_PROXY_CORRECTION=${TOPO_PROXY_CORRECTION:-none}
TOPO_PROXY_DOMAINS=${TOPO_PROXY_DOMAINS:-[0]}
TOPO_PROXY_EXTRA=${TOPO_PROXY_EXTRA:-}
TOPO_CAPTURE_FILTER=${TOPO_CAPTURE_FILTER:-ether proto 0x88f7 or udp port 319 or udp port 320}
TOPO_CAPTURE_NANO=${TOPO_CAPTURE_NANO:-0}
TOPO_CAPTURE_COUNT=${TOPO_CAPTURE_COUNT:-0}
TOPO_PTP4L_EXTRA=${TOPO_PTP4L_EXTRA:-}   # more [global] lines for every ptp4l (newline-separated)
TOPO_CLIENT_EXTRA=${TOPO_CLIENT_EXTRA:-} # more [global] lines for the clients' ptp4l
TOPO_CAPTURE_PIDS=()
TOPO_PTP_PIDS=()
TOPO_PROXY_PID=
TOPO_TC_PID=
PROXY_RC=
TOPO_RUN=

topo_log() { printf '%s\n' "$*" >&2; }

client_mac() { printf '02:00:00:00:0%s:0%s\n' "${1:1:1}" "${1:2:1}"; }
client_identity() { printf '020000.fffe.000%s0%s-1\n' "${1:1:1}" "${1:2:1}"; }
client_port() { printf 'dn%s\n' "${1:1:1}"; }
client_ip() { printf '10.98.0.%s\n' "${1:1:2}"; }

topo_init() {
	TOPO_RUN=${1:-$(mktemp -d /tmp/ptpproxy-test.XXXXXX)}
	netns_init "pp$$-" "$TOPO_RUN" topo_destroy "network namespaces"
}

topo_create() {
	local backend=$1 seg c
	netns_add gm
	netns_add px
	if [[ $TOPO_LOAD == 1 ]]; then
		# gm's side becomes a segment too, with a port for a load generator's master
		netns_add s0
		netns_add ld
		netns_veth gm eth0 "$TOPO_GM_MAC" s0 g0 ""
		netns_veth s0 u0 "" px up 02:00:00:00:f0:00
		netns_veth ld l0 "" s0 lm ""
		netns_bridge s0 br0 g0 u0 lm
	else
		netns_veth gm eth0 "$TOPO_GM_MAC" px up 02:00:00:00:f0:00
	fi
	netns_exec gm ip addr add 10.98.0.1/24 dev eth0
	for seg in 1 2; do
		netns_add "s$seg"
		netns_veth px "dn$seg" "02:00:00:00:f0:0$seg" "s$seg" "up$seg" ""
		for c in "c${seg}1" "c${seg}2"; do
			netns_add "$c"
			netns_veth "$c" eth0 "$(client_mac "$c")" "s$seg" "$c" ""
			netns_exec "$c" ip addr add "$(client_ip "$c")/24" dev eth0
		done
		if [[ $TOPO_LOAD == 1 ]]; then
			netns_veth ld "l$seg" "" "s$seg" "ld$seg" ""
			netns_bridge "s$seg" "br$seg" "up$seg" "c${seg}1" "c${seg}2" "ld$seg"
		else
			netns_bridge "s$seg" "br$seg" "up$seg" "c${seg}1" "c${seg}2"
		fi
	done
	if [[ $backend == bridge ]]; then
		netns_bridge px br0 up dn1 dn2
	fi
	if [[ $TOPO_TX_CSUM == off ]]; then
		for c in gm "${TOPO_CLIENTS[@]}"; do
			netns_exec "$c" python3 "$TOPO_LIB_DIR/txcsum.py" eth0 off >/dev/null
		done
	fi
}

capture_start() {
	local node=$1 iface=${2:-eth0} file=${3:-} log opts=()
	[[ -n $file ]] || file="$TOPO_RUN/$node.pcap"
	log="${file%.pcap}.tcpdump.log"
	[[ $TOPO_CAPTURE_NANO == 1 ]] && opts+=(--time-stamp-precision=nano)
	[[ $TOPO_CAPTURE_COUNT != 0 ]] && opts+=(-c "$TOPO_CAPTURE_COUNT")
	# -p: no promiscuous mode, -U: flush per packet, -w -: the shell writes the file (tcpdump may
	# drop privileges), PTP only (default filter): L2 and UDP event/general ports.
	ip netns exec "$(netns_name "$node")" timeout -k 5 "$NETNS_LIFETIME" \
		tcpdump -i "$iface" -p -U -n -s 512 "${opts[@]}" -w - "$TOPO_CAPTURE_FILTER" \
		>"$file" 2>"$log" &
	netns_track "$!"
	TOPO_CAPTURE_PIDS+=("$!")
	netns_wait_for 10 grep -qs 'listening on' "$log" || {
		topo_log "tcpdump in $node ($iface) did not start:"
		cat "$log" >&2
		return 1
	}
}

capture_stop_all() {
	local pid
	sleep 0.3 # let the last frames in flight land
	for pid in "${TOPO_CAPTURE_PIDS[@]}"; do
		netns_stop_pid "$pid" 5 || true
	done
	TOPO_CAPTURE_PIDS=()
}

_topo_ptp_flag() {
	case $1 in
	l2) echo -2 ;;
	udp4) echo -4 ;;
	udp6) echo -6 ;;
	*)
		topo_log "transport must be l2, udp4 or udp6, not '$1'"
		return 1
		;;
	esac
}

# topo_ipv6_on NODE IF...: IPv6 on these interfaces of NODE (namespaces start with it off), no
# duplicate address detection (the link-local address is usable at once), no router solicitations.
topo_ipv6_on() {
	local node=$1 iface
	shift
	for iface in "$@"; do
		netns_exec "$node" sysctl -qw "net.ipv6.conf.$iface.accept_dad=0" \
			"net.ipv6.conf.$iface.router_solicitations=0" "net.ipv6.conf.$iface.disable_ipv6=0"
	done
}

# _topo_transport_ready NODE TRANSPORT IF...: what the transport needs on NODE's interfaces
_topo_transport_ready() {
	local node=$1 transport=$2
	shift 2
	[[ $transport == udp6 ]] && topo_ipv6_on "$node" "$@"
	return 0
}

ptp_start_gm() {
	local flag cfg="$TOPO_RUN/gm.cfg"
	flag=$(_topo_ptp_flag "$1")
	_topo_transport_ready gm "$1" eth0
	cat >"$cfg" <<-EOF
		[global]
		priority1 10
		logAnnounceInterval -2
		logSyncInterval -3
		logMinDelayReqInterval -3
		uds_address $TOPO_RUN/gm.uds
		$TOPO_PTP4L_EXTRA
	EOF
	netns_bg "$TOPO_RUN/gm.log" gm ptp4l -f "$cfg" -i eth0 "$flag" -S -m -q
	TOPO_PTP_PIDS+=("$NETNS_LAST_PID")
}

ptp_start_client() {
	local node=$1 flag cfg="$TOPO_RUN/$1.cfg"
	flag=$(_topo_ptp_flag "$2")
	_topo_transport_ready "$node" "$2" eth0
	# free_running: all namespaces share the one system clock, a client must never steer it.
	# With free_running, ptp4l 3.1.1 prints path delays only at debug level (-l 7):
	# "delay   filtered   1567   raw   1943" (ns) for every Delay_Resp it accepts.
	cat >"$cfg" <<-EOF
		[global]
		slaveOnly 1
		free_running 1
		uds_address $TOPO_RUN/$node.uds
		$TOPO_PTP4L_EXTRA
		$TOPO_CLIENT_EXTRA
	EOF
	netns_bg "$TOPO_RUN/$node.log" "$node" ptp4l -f "$cfg" -i eth0 "$flag" -S -m -q -l 7
	TOPO_PTP_PIDS+=("$NETNS_LAST_PID")
}

# ptp_start_tc l2|udp4|udp6: linuxptp's ptp4l as an end-to-end transparent clock over up, dn1 and dn2
# in px (nothing else may be forwarding there). Software time stamps: veth stamps what it sends
# (skb_tx_timestamp) and the kernel stamps what arrives. free_running: it must not steer the shared
# clock. For UDP the ports get addresses (ptp4l sends from them): 10.98.0.250-252, IPv6 link-local.
# linuxptp's TC relays Delay_Req/Delay_Resp only through ports that have left LISTENING: a short
# announce interval (the GM's) lets the ports without a master become MASTER within a second.
ptp_start_tc() {
	local flag cfg="$TOPO_RUN/tc.cfg" i n=250
	flag=$(_topo_ptp_flag "$1")
	_topo_transport_ready px "$1" up dn1 dn2
	if [[ $1 == udp4 ]]; then
		for i in up dn1 dn2; do
			netns_exec px ip addr replace "10.98.0.$n/32" dev "$i"
			n=$((n + 1))
		done
	fi
	cat >"$cfg" <<-EOF
		[global]
		clock_type E2E_TC
		free_running 1
		logAnnounceInterval -2
		uds_address $TOPO_RUN/tc.uds
		$TOPO_PTP4L_EXTRA
		[up]
		[dn1]
		[dn2]
	EOF
	netns_bg "$TOPO_RUN/tc.log" px ptp4l -f "$cfg" "$flag" -S -m -q
	TOPO_PTP_PIDS+=("$NETNS_LAST_PID")
	TOPO_TC_PID=$NETNS_LAST_PID
}

# ptp_stop_tc: stop the transparent clock only; its ports lose the addresses ptp_start_tc gave them
ptp_stop_tc() {
	local pid i others=()
	[[ -n ${TOPO_TC_PID:-} ]] || return 0
	netns_stop_pid "$TOPO_TC_PID" 5 || true
	for pid in "${TOPO_PTP_PIDS[@]}"; do
		[[ $pid == "$TOPO_TC_PID" ]] || others+=("$pid")
	done
	TOPO_PTP_PIDS=("${others[@]}")
	TOPO_TC_PID=
	for i in up dn1 dn2; do
		netns_exec px ip -4 addr flush dev "$i" 2>/dev/null || true
	done
}

px_bridge_start() { netns_bridge px br0 up dn1 dn2; }
px_bridge_stop() { netns_exec px ip link del br0 2>/dev/null || true; }

# topo_hide_domain D: the segment bridges drop PTP frames of domain D (L2 and UDPv4, untagged) on
# their way to gm and to the clients (s0's g0, s1's and s2's cNM ports): a load generator's traffic
# on that domain crosses the forwarder but never reaches a ptp4l host. A classic BPF program in
# direct-action mode on clsact egress (return 2 = TC_ACT_SHOT): needs no tc action module.
topo_hide_domain() {
	local d=$1 prog node port
	prog=$(netns_exec px tcpdump -i up -ddd "(ether proto 0x88f7 and ether[18] = $d) or \
		(ip and udp and (udp port 319 or udp port 320) and udp[12] = $d)" |
		sed 's/^6 0 0 [1-9][0-9]*$/6 0 0 2/' | tr '\n' ',')
	prog=${prog%,}
	for port in s0:g0 s1:c11 s1:c12 s2:c21 s2:c22; do
		node=${port%%:*}
		port=${port#*:}
		netns_exec "$node" tc qdisc add dev "$port" clsact
		netns_exec "$node" tc filter add dev "$port" egress bpf da bytecode "$prog"
	done
}

ptp_stop_all() {
	local pid
	for pid in "${TOPO_PTP_PIDS[@]}"; do
		netns_stop_pid "$pid" 5 || true
	done
	TOPO_PTP_PIDS=()
}

# topo_ptp4l_logs LINES EXTRA NODE...: the last LINES lines of each NODE's ptp4l log, without
# debug chatter (and lines matching the regex alternatives EXTRA, "|a|b")
topo_ptp4l_logs() {
	local lines=$1 extra=$2 f
	shift 2
	for f in "$@"; do
		[[ -f $TOPO_RUN/$f.log ]] || continue
		echo "-- ptp4l $f (last $lines lines without debug chatter):"
		grep -vE "config item|section item|delay +(filtered|timeout)|master/local|sum-1|product|peer/local|fup_info$extra" \
			"$TOPO_RUN/$f.log" | tail -n "$lines" || true
	done
}

path_delay_count() { grep -cE 'delay +filtered +-?[0-9]+ +raw +-?[0-9]+' "$TOPO_RUN/$1.log" || true; }
path_delay_last() { grep -E 'delay +filtered +-?[0-9]+ +raw +-?[0-9]+' "$TOPO_RUN/$1.log" | tail -n 1 || true; }

# proxy_config MODE: the ptpproxy config for this topology on stdout
proxy_config() {
	cat <<-EOF
		{"upstream": "up", "downstream": ["dn1", "dn2"], "domains": $TOPO_PROXY_DOMAINS,
		 "delay_resp": "$1", "correction": "$TOPO_PROXY_CORRECTION", "allow_downstream_masters": false,
		 "client_timeout_s": 60, "max_delay_req_rate": 128,
		 "status_file": "$TOPO_RUN/status.json", "status_interval_s": 1, "promiscuous": false$TOPO_PROXY_EXTRA}
	EOF
}

proxy_start() {
	local mode=$1 bin=${2:-${PTPPROXY:-}} cfg="$TOPO_RUN/ptpproxy.json"
	proxy_config "$mode" >"$cfg"
	netns_ptpproxy "$bin" "$cfg" "$TOPO_RUN/status.json" "$TOPO_RUN/ptpproxy.log" || return 1
	TOPO_PROXY_PID=$NETNS_LAST_PID
}

proxy_stop() {
	PROXY_RC=
	[[ -n $TOPO_PROXY_PID ]] || return 0
	PROXY_RC=0
	netns_stop_pid "$TOPO_PROXY_PID" 10 || PROXY_RC=$?
	TOPO_PROXY_PID=
}

inject() {
	local node=$1 iface=$2
	shift 2
	netns_exec "$node" timeout 60 python3 "$TOPO_LIB_DIR/ptpframe.py" --iface "$iface" "$@" \
		2>>"$TOPO_RUN/inject.log"
}

topo_destroy() {
	netns_destroy
	TOPO_CAPTURE_PIDS=() TOPO_PTP_PIDS=() TOPO_PROXY_PID='' TOPO_TC_PID=''
}
