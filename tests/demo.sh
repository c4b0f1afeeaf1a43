#!/usr/bin/env bash
# See ptpproxy work. On a fresh Debian 12 machine, as root, from a clone: installs what it needs
# (tests/install-deps.sh --demo: linuxptp, tcpdump, libpcap, the Rust toolchain; a quick no-op
# once there), builds ptpproxy, relays PTP between a ptp4l grandmaster and four ptp4l clients in
# network namespaces, and ends with a table per client: its path delay and its offset from the
# grandmaster as ptp4l computed them, and the Delay_Resp it received, its own and other clients'.
#
#   tests/demo.sh [--compare] [--seconds N] [--udp4] [--unicast] [--keep]
#
#   --compare     then the same with a Linux bridge in ptpproxy's place (as many seconds), and
#                 both tables: what a client receives through a bridge, others' Delay_Resp included
#   --seconds N   how long each forwarder runs (default 40, 10..3600); `ptpproxy status` is
#                 printed every 20 s
#   --udp4        PTP over UDPv4 instead of layer 2 (Ethernet)
#   --unicast     ptpproxy with "delay_resp": "unicast" (each Delay_Resp also addressed to its
#                 client's MAC, so the segment's learning switch delivers it to that client alone)
#   --keep        keep the logs and captures (kept anyway if something went wrong)
#
#   grandmaster ── up [ptpproxy] dn1 ── switch ── c11, c12
#                                dn2 ── switch ── c21, c22
#
# ptpproxy runs as shipped: delay_resp steer (each Delay_Resp only to the port its client is
# behind), residence correction, batching. The switches are plain Linux bridges that flood
# multicast, as a dumb switch does: a client also hears its neighbour's Delay_Resp, never those of
# the other port's clients. All namespaces share this machine's one clock and the clients run
# free_running (they measure, never steer it): their true offset is 0, so the offset ptp4l reports
# is its measurement error. Exit status 0 if every client measured and got its own Delay_Resp
# (through ptpproxy none of the other port's, through the bridge some). Everything is removed on
# exit (also Ctrl-C).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh (REPO, require_ptpproxy), tests/lib/netns.sh
TOPO_PROXY_CORRECTION=residence # the shipped default (the other tests pin "none" or test both)
# ptp4l clients print "master offset N sK freq F path delay D" once a second (a frequency estimate
# every 2^0 s, a summary of every estimate) besides the debug "delay filtered N raw M" lines.
TOPO_CLIENT_EXTRA=$'freq_est_interval 0\nsummary_interval -3'
STATUS_EVERY=20

TRANSPORT=l2
MODE=steer
WATCH=40
COMPARE=0
KEEP=0
arg_flag --udp4 TRANSPORT udp4
arg_flag --compare COMPARE 1
arg_flag --unicast MODE unicast
arg_flag --keep KEEP 1
arg_value --seconds WATCH "--seconds needs a value"
args_parse "$@"
if ! [[ $WATCH =~ ^[0-9]+$ ]] || ((WATCH < 10 || WATCH > 3600)); then
	echo "--seconds must be 10..3600" >&2
	exit 2
fi
FORWARDERS=(ptpproxy)
((COMPARE)) && FORWARDERS+=(bridge)
NETNS_LIFETIME=$((${#FORWARDERS[@]} * (WATCH + 60) + 120)) # bound on every process started here

# setup: what the demo needs, installed by the one list of what gets installed
setup() {
	if [[ $EUID -ne 0 ]]; then
		echo "tests/demo.sh: run as root (it installs packages, creates network namespaces)" >&2
		exit 1
	fi
	# ptp4l, sysctl live in /usr/sbin, which a root shell from plain `su` lacks
	PATH=$PATH:/usr/sbin:/sbin
	# rustup's toolchain (~/.cargo/bin) before any older cargo on PATH
	[[ -d $HOME/.cargo/bin ]] && PATH=$HOME/.cargo/bin:$PATH
	echo "== set-up: tests/install-deps.sh --demo"
	"$HERE/install-deps.sh" --demo || {
		echo "tests/demo.sh: set-up failed (tests/install-deps.sh --demo)" >&2
		exit 1
	}
	[[ -d $HOME/.cargo/bin ]] && PATH=$HOME/.cargo/bin:$PATH
	local tool
	for tool in ptp4l ip tcpdump python3 cargo; do
		command -v "$tool" >/dev/null || {
			echo "tests/demo.sh: missing: $tool after tests/install-deps.sh --demo" >&2
			exit 1
		}
	done
}

# watch_forwarder NAME: WATCH seconds; ptpproxy's status every STATUS_EVERY s and at the end
watch_forwarder() {
	local elapsed=0 step
	while ((elapsed < WATCH)); do
		step=$((WATCH - elapsed < STATUS_EVERY ? WATCH - elapsed : STATUS_EVERY))
		netns_sleep "$step"
		elapsed=$((elapsed + step))
		if [[ $1 == ptpproxy ]]; then
			echo
			echo "==== after ${elapsed} s: ptpproxy status $TOPO_RUN/status.json"
			"$PTPPROXY" status "$TOPO_RUN/status.json" || echo "(ptpproxy status failed)"
		else
			echo "   ... ${elapsed} s"
		fi
	done
}

# run_forwarder ptpproxy|bridge: the grandmaster and the clients through it for WATCH seconds,
# captures on the clients' interfaces; logs and captures in RUN/NAME
run_forwarder() {
	local name=$1 c
	TOPO_RUN=$RUN/$name
	mkdir -p "$TOPO_RUN"
	echo
	if [[ $name == ptpproxy ]]; then
		echo "== ptpproxy (delay_resp $MODE, correction residence) between up and dn1, dn2; PTP over ${TRANSPORT^^}, $WATCH s"
		proxy_start "$MODE" "$PTPPROXY"
	else
		echo "== a Linux bridge over up, dn1, dn2 in ptpproxy's place; PTP over ${TRANSPORT^^}, $WATCH s"
		px_bridge_start
	fi
	for c in "${TOPO_CLIENTS[@]}"; do
		capture_start "$c"
	done
	ptp_start_gm "$TRANSPORT"
	for c in "${TOPO_CLIENTS[@]}"; do
		ptp_start_client "$c" "$TRANSPORT"
	done
	watch_forwarder "$name"
	ptp_stop_all
	capture_stop_all
	if [[ $name == ptpproxy ]]; then
		proxy_stop
		echo "ptpproxy exited with status $PROXY_RC"
	else
		px_bridge_stop
	fi
}

setup
require_ptpproxy # PTPPROXY, or target/release/ptpproxy built here

# demo_exit: at any exit, the namespaces go; the run directory stays unless the table was printed
# and nothing went wrong
# shellcheck disable=SC2317 # run by the EXIT trap
demo_exit() {
	topo_destroy
	if [[ -d $RUN ]]; then
		echo "logs and captures kept in $RUN (ptpproxy/, bridge/: ptpproxy.log, gm.log, c11.log, c11.pcap ...)"
	fi
}

RUN=$(mktemp -d /tmp/ptpproxy-demo.XXXXXX)
topo_init "$RUN"
trap demo_exit EXIT
echo "== creating namespaces ${NETNS_PREFIX}* (logs and captures in $RUN)"
topo_create ptpproxy
for fwd in "${FORWARDERS[@]}"; do
	run_forwarder "$fwd"
done
topo_destroy

echo
rc=0
python3 "$HERE/lib/demo.py" --run "$RUN" --seconds "$WATCH" --mode "$MODE" "${FORWARDERS[@]}" || rc=$?
((rc != 0 || KEEP)) || rm -rf "$RUN"
exit "$rc"
