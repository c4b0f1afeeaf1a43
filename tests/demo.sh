#!/usr/bin/env bash
# See ptpproxy work: builds it, then relays PTP between a ptp4l grandmaster and four ptp4l clients,
# all in network namespaces on this machine (root; Debian packages: tests/install-deps.sh).
#
#   tests/demo.sh [--udp4] [--seconds N]
#
#   --udp4        PTP over UDPv4 instead of layer 2 (Ethernet)
#   --seconds N   how long to watch (default 30); `ptpproxy status` is printed every 5 s
#
#   grandmaster ── up [ptpproxy] dn1 ── bridge ── c11, c12
#                                dn2 ── bridge ── c21, c22
#
# The clients run free_running (they measure, but never steer the machine's one clock), so what to
# look at: ptpproxy learns the four clients from their Delay_Req and sends each Delay_Resp only to the
# port its client sits behind; at the end every client's last path-delay measurement is shown.
# ptpproxy runs as shipped: residence correction, batching (the path delays are then the links').
# Everything is removed on exit (also on Ctrl-C).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topo.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/topo.sh" # and tests/lib/check.sh: pass, fail, REPO
TOPO_PROXY_CORRECTION=residence # the shipped default (the other tests pin "none" or test both)

TRANSPORT=l2
WATCH=30
arg_flag --udp4 TRANSPORT udp4
arg_value --seconds WATCH "--seconds needs a value"
args_parse "$@"
if ! [[ $WATCH =~ ^[0-9]+$ ]] || ((WATCH < 5 || WATCH > 3600)); then
	echo "--seconds must be 5..3600" >&2
	exit 2
fi
NETNS_LIFETIME=$((WATCH + 300)) # bound on every process the demo starts
for tool in ptp4l ip tcpdump python3 cargo; do
	command -v "$tool" >/dev/null || {
		echo "missing: $tool (run tests/install-deps.sh; cargo comes with rustup)" >&2
		exit 1
	}
done

echo "== building ptpproxy: cargo build --release"
(cd "$REPO" && timeout 1800 cargo build --release)
BIN=$REPO/target/release/ptpproxy

topo_init "$(mktemp -d /tmp/ptpproxy-demo.XXXXXX)"
echo "== creating namespaces ${NETNS_PREFIX}* (work files in $TOPO_RUN)"
topo_create ptpproxy
echo "== starting ptpproxy (delay_resp steer), the grandmaster and 4 clients, PTP over ${TRANSPORT^^}"
proxy_start steer "$BIN"
ptp_start_gm "$TRANSPORT"
for c in "${TOPO_CLIENTS[@]}"; do
	ptp_start_client "$c" "$TRANSPORT"
done

elapsed=0
while ((elapsed < WATCH)); do
	step=$((WATCH - elapsed < 5 ? WATCH - elapsed : 5))
	netns_sleep "$step"
	elapsed=$((elapsed + step))
	echo
	echo "==== after ${elapsed} s: ptpproxy status $TOPO_RUN/status.json"
	"$BIN" status "$TOPO_RUN/status.json" || echo "(ptpproxy status failed)"
done

echo
echo "== stopping"
ptp_stop_all
proxy_stop
echo "ptpproxy exited with status $PROXY_RC"

echo
echo "== each client's last path delay, as ptp4l measured it (ns; 'filtered' is ptp4l's smoothed value)"
keep=0
for c in "${TOPO_CLIENTS[@]}"; do
	n=$(path_delay_count "$c")
	last=$(path_delay_last "$c")
	if [[ -n $last ]]; then
		printf '%s  %s  behind %s  %4d measurements, last: %s\n' "$c" "$(client_identity "$c")" \
			"$(client_port "$c")" "$n" "$(sed -E 's/.*delay +filtered +(-?[0-9]+) +raw +(-?[0-9]+).*/filtered \1 ns, raw \2 ns/' <<<"$last")"
	else
		printf '%s  %s  behind %s  no path delay measured (log: %s)\n' "$c" "$(client_identity "$c")" \
			"$(client_port "$c")" "$TOPO_RUN/$c.log"
		keep=1
	fi
done
echo
echo "== done; removing the namespaces. More: tests/e2e.sh (the full end-to-end test)."
topo_destroy
if ((keep)); then
	echo "logs kept in $TOPO_RUN (ptpproxy.log, gm.log, c11.log ...)"
	exit 1
fi
rm -rf "$TOPO_RUN"
