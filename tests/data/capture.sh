#!/usr/bin/env bash
# Regenerate the PTP replay captures in tests/data/replay/ and the byte arrays in src/wire/samples.rs.
#
# Needs root, Linux network namespaces, and Debian's linuxptp (ptp4l, pmc), tcpdump, iproute2, ethtool;
# tshark is optional (prints a summary at the end), python3 writes src/wire/samples.rs.
#
# For each transport (l2 = ptp4l -2, udp4 = -4, udp6 = -6) it builds:
#
#   ppcap-gm (ptp4l grandmaster, ppcap-eth 02:00:00:00:00:01)
#      |
#   ppcap-mid: bridge ppcap-br with member veths  up | dn1 | dn2   (the relay's three ports)
#                                                       |     |
#   ppcap-s1: bridge ppcap-br ---------------------------+     +------ ppcap-s2: bridge ppcap-br
#      |-- ppcap-c11 (ptp4l client, 02:00:00:00:01:01)             |-- ppcap-c21 (02:00:00:00:02:01)
#      `-- ppcap-c12 (ptp4l client, 02:00:00:00:01:02)             `-- ppcap-c22 (02:00:00:00:02:02)
#
# waits until every client exchanges Delay_Req/Delay_Resp with the grandmaster, then captures inbound
# traffic (tcpdump -Q in) on up, dn1 and dn2 for CAPTURE_SECONDS while pmc in ppcap-c11 sends one
# GET CURRENT_DATA_SET over the same transport. Output: replay/<l2|udp4|udp6>/{up,dn1,dn2}.pcap.
#
# All namespaces share CLOCK_REALTIME, so every ptp4l runs with free_running 1 (the grandmaster too:
# nothing here may steer the machine's clock), software timestamping and its own uds_address.
#
# Usage: tests/data/capture.sh [l2|udp4|udp6 ...]   (default: all three)
# Env:   CAPTURE_SECONDS (3), SETTLE_TIMEOUT (60), NO_SAMPLES=1 to skip writing src/wire/samples.rs,
#        DEBUG=1 to print the c11 and grandmaster ptp4l logs once settled.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$HERE/replay
CAPTURE_SECONDS=${CAPTURE_SECONDS:-3}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-60}

NAMESPACES=(ppcap-gm ppcap-mid ppcap-s1 ppcap-s2 ppcap-c11 ppcap-c12 ppcap-c21 ppcap-c22)
CLIENTS=(c11 c12 c21 c22)
PORTS=(up dn1 dn2)
declare -A MAC=([gm]=02:00:00:00:00:01
	[c11]=02:00:00:00:01:01 [c12]=02:00:00:00:01:02
	[c21]=02:00:00:00:02:01 [c22]=02:00:00:00:02:02)
declare -A HOST=([gm]=1 [c11]=11 [c12]=12 [c21]=21 [c22]=22)
declare -A FLAG=([l2]=-2 [udp4]=-4 [udp6]=-6)

if [[ $(id -u) -ne 0 ]]; then
	echo "capture.sh: must run as root (network namespaces)" >&2
	exit 1
fi
for tool in ip ethtool ptp4l pmc tcpdump; do
	command -v "$tool" >/dev/null || {
		echo "capture.sh: $tool not found" >&2
		exit 1
	}
done

TRANSPORTS=("$@")
if [[ ${#TRANSPORTS[@]} -eq 0 ]]; then
	TRANSPORTS=(l2 udp4 udp6)
fi
for t in "${TRANSPORTS[@]}"; do
	[[ -n ${FLAG[$t]:-} ]] || {
		echo "capture.sh: unknown transport '$t' (l2, udp4, udp6)" >&2
		exit 2
	}
done

WORK=$(mktemp -d /tmp/ppcap.XXXXXX)
PIDS=()

stop_processes() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

teardown() {
	local n
	stop_processes
	for n in "${NAMESPACES[@]}"; do
		if [[ -e /run/netns/$n ]]; then
			ip netns del "$n" || true
		fi
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	teardown
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# veth A_NS A_NAME A_MAC B_NS B_NAME B_MAC: a veth pair created directly inside the namespaces
veth() {
	ip -n "ppcap-$1" link add name "$2" address "$3" type veth peer name "$5" address "$6" netns "ppcap-$4"
	ip -n "ppcap-$1" link set dev "$2" up
	ip -n "ppcap-$4" link set dev "$5" up
}

# bridge NS MAC MEMBER...: a plain bridge, no STP, no multicast snooping (flood all PTP groups)
bridge() {
	local n=$1 mac=$2 m
	shift 2
	ip -n "ppcap-$n" link add name ppcap-br address "$mac" type bridge stp_state 0 mcast_snooping 0
	for m in "$@"; do
		ip -n "ppcap-$n" link set dev "$m" master ppcap-br
	done
	ip -n "ppcap-$n" link set dev ppcap-br up
}

setup() {
	local transport=$1 n ipv6_off ep seg c i
	teardown
	for n in "${NAMESPACES[@]}"; do
		ip netns add "$n"
		# IPv6 only where the UDPv6 run needs it (keeps MLD/NDP chatter out of the captures);
		# never DAD, so the addresses are usable at once.
		ipv6_off=1
		if [[ $transport == udp6 && $n != ppcap-mid && $n != ppcap-s? ]]; then
			ipv6_off=0
		fi
		ip netns exec "$n" sysctl -q -w \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.disable_ipv6=$ipv6_off net.ipv6.conf.default.disable_ipv6=$ipv6_off
		ip -n "$n" link set dev lo up
	done

	veth mid up 02:00:00:ff:00:01 gm ppcap-eth "${MAC[gm]}"
	for seg in 1 2; do
		veth mid "dn$seg" "02:00:00:ff:00:0$((seg + 1))" "s$seg" ppcap-up "02:00:00:ff:0$seg:00"
		for i in 1 2; do
			c=c$seg$i
			veth "s$seg" "ppcap-$c" "02:00:00:ff:0$seg:0$i" "$c" ppcap-eth "${MAC[$c]}"
		done
		bridge "s$seg" "02:00:00:fe:0$seg:00" ppcap-up "ppcap-c${seg}1" "ppcap-c${seg}2"
	done
	bridge mid 02:00:00:fe:00:00 up dn1 dn2

	for ep in gm "${CLIENTS[@]}"; do
		# veth offloads the UDP checksum by default and nothing ever fills it in: turn TX
		# checksumming off so the captured frames carry valid UDP checksums
		ip netns exec "ppcap-$ep" ethtool -K ppcap-eth tx off >/dev/null
		ip -n "ppcap-$ep" addr add "10.99.0.${HOST[$ep]}/24" dev ppcap-eth
		if [[ $transport == udp6 ]]; then
			ip -n "ppcap-$ep" addr add "fd99::${HOST[$ep]}/64" dev ppcap-eth nodad
		fi
	done
}

write_configs() {
	cat >"$WORK/gm.cfg" <<-EOF
		[global]
		priority1 100
		free_running 1
		logAnnounceInterval -2
		logSyncInterval -3
		logMinDelayReqInterval -3
	EOF
	cat >"$WORK/client.cfg" <<-EOF
		[global]
		priority1 200
		slaveOnly 1
		free_running 1
		summary_interval -3
	EOF
}

# ptp4l_start TRANSPORT NAME CONFIG
ptp4l_start() {
	local transport=$1 name=$2 cfg=$3
	# ip netns exec execs its command: $! is ptp4l's own pid (a shell function here would fork a
	# subshell, and killing that would leave ptp4l running)
	ip netns exec "ppcap-$name" ptp4l -f "$cfg" "${FLAG[$transport]}" -S -i ppcap-eth -m -q \
		--uds_address="$WORK/$name.uds" >"$WORK/$transport-$name.log" 2>&1 &
	PIDS+=($!)
}

# settled TRANSPORT: every client is UNCALIBRATED or SLAVE, has taken the grandmaster's Delay_Resp
# interval ("minimum delay request interval 2^-3": logged on the first Delay_Resp) and logs a measured
# path delay (free_running 1, summary_interval -3: "master offset ... path delay N" after every frequency
# estimation interval, i.e. every 2 s).
settled() {
	local transport=$1 c log
	for c in "${CLIENTS[@]}"; do
		log=$WORK/$transport-$c.log
		[[ -f $log ]] || return 1
		grep -Eq 'to (SLAVE|UNCALIBRATED)' "$log" || return 1
		grep -q 'minimum delay request interval 2^-3' "$log" || return 1
		[[ $(grep -Ec 'delay +[0-9]+' "$log") -ge 2 ]] || return 1
	done
}

capture() {
	local transport=$1 dir=$OUT/$1 start p c pmc pmc_rc=0
	PIDS=()
	setup "$transport"
	ptp4l_start "$transport" gm "$WORK/gm.cfg"
	for c in "${CLIENTS[@]}"; do
		ptp4l_start "$transport" "$c" "$WORK/client.cfg"
	done

	start=$SECONDS
	until settled "$transport"; do
		if ((SECONDS - start > SETTLE_TIMEOUT)); then
			echo "capture.sh: $transport: clients did not settle within ${SETTLE_TIMEOUT}s" >&2
			tail -n 5 "$WORK/$transport"-*.log >&2
			return 1
		fi
		sleep 0.5
	done
	echo "$transport: settled after $((SECONDS - start))s"
	if [[ ${DEBUG:-0} == 1 ]]; then cat "$WORK/$transport-c11.log" "$WORK/$transport-gm.log"; fi
	sleep 1 # let the first IGMP/MLD reports and state changes pass

	mkdir -p "$dir"
	local tcpdumps=()
	for p in "${PORTS[@]}"; do
		rm -f "$dir/$p.pcap"
		ip netns exec ppcap-mid tcpdump -Q in -i "$p" -U -n -Z root -w "$dir/$p.pcap" 2>"$WORK/tcpdump-$transport-$p.log" &
		tcpdumps+=($!)
		PIDS+=($!)
	done
	for p in "${PORTS[@]}"; do
		for _ in {1..100}; do
			grep -q 'listening on' "$WORK/tcpdump-$transport-$p.log" && continue 2
			sleep 0.05
		done
		echo "capture.sh: tcpdump on $p did not start:" >&2
		cat "$WORK/tcpdump-$transport-$p.log" >&2
		return 1
	done

	# pmc has no uds server here, but give it a socket path of its own anyway. It exits after 100 ms
	# without any frame on its socket, which the steady PTP traffic may never allow: timeout (exit
	# 124) is normal, the request and the replies are sent within milliseconds.
	sleep 1
	timeout 1.5 ip netns exec ppcap-c11 pmc "${FLAG[$transport]}" -i ppcap-eth -b 0 \
		--uds_address="$WORK/pmc.uds" 'GET CURRENT_DATA_SET' >"$WORK/pmc-$transport.log" 2>&1 &
	pmc=$!
	PIDS+=("$pmc")
	sleep "$((CAPTURE_SECONDS - 1))"

	# SIGTERM: background jobs of a non-interactive shell start with SIGINT ignored
	for p in "${tcpdumps[@]}"; do kill -TERM "$p"; done
	for p in "${tcpdumps[@]}"; do wait "$p" || true; done
	wait "$pmc" || pmc_rc=$?
	echo "$transport: pmc (exit $pmc_rc):"
	sed 's/^/    /' "$WORK/pmc-$transport.log"
	for p in "${PORTS[@]}"; do
		echo "$transport: $p.pcap $(stat -c %s "$dir/$p.pcap") bytes, $(grep -h 'packets captured' "$WORK/tcpdump-$transport-$p.log")"
	done
	teardown
}

summary() {
	local f
	for f in "$@"; do
		echo "== ${f#"$HERE"/}"
		tshark -r "$f" -Y ptp -T fields -e ptp.v2.messagetype -e ptp.v2.clockidentity 2>/dev/null |
			awk '{ n[$1]++; id[$2]++ }
				END {
					split("0 Sync,1 Delay_Req,8 Follow_Up,9 Delay_Resp,11 Announce,13 Management", t, ",")
					for (k in t) { split(t[k], kv, " "); name[kv[1]] = kv[2] }
					for (m in n) printf "   messageType %2d %-10s %4d\n", m, name[m], n[m]
					for (i in id) printf "   clockIdentity %s %4d\n", i, id[i]
				}' | sort
	done
}

write_configs
for t in "${TRANSPORTS[@]}"; do
	capture "$t"
done

if command -v tshark >/dev/null; then
	for t in "${TRANSPORTS[@]}"; do
		summary "$OUT/$t/up.pcap" "$OUT/$t/dn1.pcap" "$OUT/$t/dn2.pcap"
	done
fi

if [[ ${NO_SAMPLES:-0} != 1 ]]; then
	python3 "$HERE/gen_samples.py" "$OUT" "$REPO/src/wire/samples.rs"
fi
