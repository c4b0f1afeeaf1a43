# shellcheck shell=bash
# shellcheck disable=SC2034 # HZ_* variables are read by the scripts that source this file
# Topology and process helpers of tests/hardening.sh and tests/soak.sh (root required).
#
#   [gm] gm0 ── gs {sw: brU} su ── up  [px]        ptpload's grandmaster on gm0
#   [px] dn1 ──────────────────── cl1 [cl]        direct link: the flooded port
#   [px] dn2 ── s2 {sw: br2} c2 ── cl2 [cl]        a bridge in between, so dn2 (and up) can be
#   [px] dn3 ──────────────────── cl3 [cl]         deleted and re-created under ptpload's feet
#
#   [x] = namespace "${NETNS_PREFIX}x" (tests/lib/netns.sh): gm (ptpload's master side), px
#   (ptpproxy: upstream up, downstream dn1 dn2, dn3 added by reloads), sw (plain Linux bridges,
#   multicast snooping off), cl (ptpload's clients on cl1 cl2 cl3, and its misbehaving senders).
#   ptpload is one process that enters the namespaces itself. veth only; nothing is created outside these namespaces.
#
# Interface:
#   hz_init [RUN_DIR]         unique prefix, run directory, cleanup traps (once per script)
#   hz_topo_create            the namespaces and links above
#   hz_link_flap IF SECONDS   set px's IF down, wait, up again
#   hz_recreate IF [SECONDS]  delete px's IF (and its peer), wait, create it again with the same
#                             name and MAC, re-attached as before (IF: up, dn2)
#   hz_config FILE [KEY=JSON]...  write a ptpproxy configuration (defaults below, KEY overrides)
#   hz_proxy_start CFG LOG    start ptpproxy -m in px, wait for its status file; HZ_PROXY_PID
#   hz_proxy_stop [VAR]       SIGTERM, bounded wait; exit status in HZ_PROXY_RC, ms in HZ_STOP_MS
#   hz_load LABEL SECONDS [ARGS...]     ptpload in the foreground (JSON $HZ_RUN/LABEL.json)
#   hz_load_bg LABEL SECONDS [ARGS...]  the same in the background; HZ_LOAD_PID
#   hz_status FILE PY-EXPR    evaluate a Python expression on the status file (j = its JSON)
#   hz_now_ns                 CLOCK_REALTIME in ns (ptpload's arrival stamps use it)
#   netns_sleep SECONDS       a sleep INT/TERM interrupt at once (tests/lib/netns.sh)
#   hz_destroy                kill what was started here, delete the namespaces (idempotent)

HZ_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=netns.sh source-path=SCRIPTDIR disable=SC1091
source "$HZ_LIB_DIR/netns.sh"
# shellcheck source=check.sh source-path=SCRIPTDIR disable=SC1091
source "$HZ_LIB_DIR/check.sh"
NETNS_LIFETIME=${HZ_LIFETIME:-2400} # no process of ours outlives this many seconds
NETNS_POLL_S=0.05
NETNS_POLL_PER_S=20
HZ_PROXY_TPID= # the `timeout` process wrapping ptpproxy (its exit status is ptpproxy's)
HZ_PROXY_PID=
HZ_PROXY_RC=
HZ_STOP_MS=
HZ_LOAD_PID=
HZ_RUN=
HZ_CLIENTS=100      # ptpload's well-behaved clients, round-robin over its downstream interfaces
HZ_RATE=16          # Delay_Req/s per client
HZ_SYNC_RATE=32     # the master's Sync (+ Follow_Up) per second: a gap resolution of ~31 ms
HZ_MAX_RATE=128     # ptpproxy's max_delay_req_rate in the default configuration

hz_log() { printf '%s\n' "$*" >&2; }
hz_now_ns() { date +%s%N; }

hz_init() {
	HZ_RUN=${1:-$(mktemp -d /tmp/ptpproxy-hardening.XXXXXX)}
	netns_init "hz$$-" "$HZ_RUN" hz_destroy "network namespaces, raw sockets"
	# An unprivileged ptpproxy ("user": "nobody") must read its configuration here on reload.
	chmod 755 "$HZ_RUN"
}

# _hz_enslave BRIDGE PORT: put sw's PORT into BRIDGE
_hz_enslave() { netns_exec sw ip link set dev "$2" master "$1"; }

hz_topo_create() {
	local n br
	for n in gm px sw cl; do netns_add "$n"; done
	for br in brU br2; do netns_bridge sw "$br"; done
	netns_veth gm gm0 "" sw gs
	_hz_enslave brU gs
	netns_veth px up 02:00:00:00:f0:00 sw su
	_hz_enslave brU su
	netns_veth px dn1 02:00:00:00:f0:01 cl cl1
	netns_veth px dn2 02:00:00:00:f0:02 sw s2
	_hz_enslave br2 s2
	netns_veth sw c2 "" cl cl2
	_hz_enslave br2 c2
	netns_veth px dn3 02:00:00:00:f0:03 cl cl3
}

hz_link_flap() {
	netns_exec px ip link set dev "$1" down
	netns_sleep "$2"
	netns_exec px ip link set dev "$1" up
}

hz_recreate() {
	local ifname=$1 pause=${2:-0} peer br mac
	case $ifname in
	up) peer=su br=brU mac=02:00:00:00:f0:00 ;;
	dn2) peer=s2 br=br2 mac=02:00:00:00:f0:02 ;;
	*)
		hz_log "hz_recreate: no recipe for $ifname"
		return 1
		;;
	esac
	netns_exec px ip link del dev "$ifname"
	netns_sleep "$pause"
	netns_veth px "$ifname" "$mac" sw "$peer"
	_hz_enslave "$br" "$peer"
}

# hz_config FILE [KEY=JSON]...: the defaults of the hardening runs, each KEY replaced or added
hz_config() {
	local file=$1
	shift
	python3 - "$file" "$HZ_RUN" "$HZ_MAX_RATE" "$@" <<'PY'
import json, sys
file, run, rate = sys.argv[1:4]
c = {"upstream": "up", "downstream": ["dn1", "dn2"], "domains": [0], "delay_resp": "steer",
     "correction": "none", "allow_downstream_masters": False, "client_timeout_s": 60,
     "max_delay_req_rate": int(rate), "status_file": f"{run}/status.json",
     "status_interval_s": 1, "promiscuous": False}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    c[k] = json.loads(v)
with open(file, "w") as f:
    json.dump(c, f)
    f.write("\n")
PY
	chmod 644 "$file"
}

# hz_status FILE EXPR: print a Python expression evaluated on the status file (as `j`)
hz_status() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# hz_proxy_start CFG LOG: ptpproxy in px; HZ_PROXY_PID from its status file (the one of CFG)
hz_proxy_start() {
	local cfg=$1 log=$2 status
	status=$(hz_status "$cfg" 'j["status_file"]')
	netns_ptpproxy "${PTPPROXY:-}" "$cfg" "$status" "$log" || return 1
	HZ_PROXY_TPID=$NETNS_LAST_PID
	HZ_PROXY_PID=$(hz_status "$status" 'j["pid"]')
	netns_alive "$HZ_PROXY_PID" || {
		hz_log "ptpproxy (pid $HZ_PROXY_PID) is not running; its log:"
		cat "$log" >&2
		return 1
	}
}

# hz_proxy_stop: SIGTERM to ptpproxy, wait up to 5 s (then KILL); HZ_PROXY_RC (124: killed),
# HZ_STOP_MS (signal to exit). ptpproxy writes its final status file on the way out.
hz_proxy_stop() {
	local t0 t1 rc=0
	HZ_PROXY_RC='' HZ_STOP_MS=''
	[[ -n $HZ_PROXY_TPID ]] || return 0
	t0=$(hz_now_ns)
	kill -TERM "$HZ_PROXY_PID" 2>/dev/null || true
	if ! netns_wait_for 5 netns_dead "$HZ_PROXY_PID"; then
		kill -KILL "$HZ_PROXY_PID" 2>/dev/null || true
		rc=124
	fi
	t1=$(hz_now_ns)
	local wrc=0
	wait "$HZ_PROXY_TPID" 2>/dev/null || wrc=$?
	((rc != 0)) || rc=$wrc
	HZ_PROXY_RC=$rc
	HZ_STOP_MS=$(((t1 - t0) / 1000000))
	HZ_PROXY_TPID='' HZ_PROXY_PID=''
}

_hz_load_args() { # LABEL SECONDS ARGS... -> the ptpload command line in HZ_LOAD_CMD
	local label=$1 secs=$2
	shift 2
	HZ_LOAD_CMD=(timeout -k 5 "$(awk -v s="$secs" 'BEGIN { printf "%d", s + 60 }')" "$PTPLOAD"
		--upstream "$(netns_name gm):gm0" --clients "$HZ_CLIENTS" --rate "$HZ_RATE"
		--sync-rate "$HZ_SYNC_RATE" --duration "$secs" --json "$HZ_RUN/$label.json" "$@")
	# the default downstream side, unless given
	[[ " $* " == *" --downstream "* ]] || HZ_LOAD_CMD+=(--downstream "$(netns_name cl):cl1,$(netns_name cl):cl2")
}

# hz_load LABEL SECONDS ARGS...: ptpload in the foreground, its table in $HZ_RUN/LABEL.txt
hz_load() {
	local label=$1
	_hz_load_args "$@"
	"${HZ_LOAD_CMD[@]}" >"$HZ_RUN/$label.txt" 2>&1
}

hz_load_bg() {
	local label=$1
	_hz_load_args "$@"
	"${HZ_LOAD_CMD[@]}" >"$HZ_RUN/$label.txt" 2>&1 &
	HZ_LOAD_PID=$!
	netns_track "$HZ_LOAD_PID"
}

hz_destroy() {
	netns_destroy
	HZ_PROXY_TPID='' HZ_PROXY_PID='' HZ_LOAD_PID=''
}
