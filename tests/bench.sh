#!/usr/bin/env bash
# Load benchmark: ptpproxy against a Linux bridge and a naive libpcap relay, same topology, same
# run (root required).
#
#   tests/bench.sh [--smoke] [--runs N] [--seconds S] [--ramp "R1 R2 ..."] [--ramp-seconds S]
#                  [--clients N] [--transport l2|udp4] [--foreign F] [--only a|b|c]...
#                  [--forwarders "bridge naive immediate ptpproxy"] [--correction none|residence]
#                  [--max-hold US]
#                  [--cpu-latency US]
#                  [--nice N] [--rt PRIO] [--pin] [--perf] [--callgrind] [--tx-path]
#                  [--soak SECONDS] [--dump all|dropped] [--keep]
#
# Topology (namespaces with a unique prefix, veth only, removed on exit):
#
#   [gm] gm0 ──── up [px] dn1 ──── cl1 [cl]
#                         dn2 ──── cl2 [cl]
#
# ptpload (target/release/ptpload) emulates the grandmaster on gm0 and the clients, half on cl1 and
# half on cl2. The forwarder in px is one of:
#   bridge    a Linux bridge br0 over up, dn1, dn2 (multicast snooping off, so it floods PTP like a
#             plain switch): the kernel reference
#   naive     tests/lib/naive_relay.c, compiled here (cc, libpcap): immediate mode, poll, one
#             inject per frame, no PTP logic (floods Delay_Resp, relays foreign frames): the floor
#             of any user-space libpcap relay on this machine
#   immediate ptpproxy with "correction": "none": every frame leaves as soon as it is read (one
#             wake-up per frame at low load)
#   ptpproxy  target/release/ptpproxy as shipped, config generated here: upstream up, downstream
#             dn1 dn2, steer, max_delay_req_rate 1024, correction residence (--correction), which
#             batches: at most one wake-up per max_hold_us (--max-hold)
# Scenarios, each through every forwarder, medians over --runs runs (the order reversed every
# other run):
#   (a) N clients x 16 Delay_Req/s   (b) N clients x 128 Delay_Req/s
#   (c) a ramp of per-client rates (--ramp) up to the first step with loss: each forwarder's
#       zero-loss maximum (a lossy step is tried once more before it counts).
#   (d) top speed: every client asks for --top-rate Delay_Req/s, more than ptpload can send; what
#       ptpload gets out each way (ptpload is the limit here by design: it sends as fast as it
#       can) and the share of it each forwarder delivers, for --ramp-seconds, --runs times.
#   (e) bursts: N clients each send one Delay_Req a second within 1 ms of each Sync (no
#       spreading), ptpload's master answers at most --burst-capacity Delay_Req/s (10 ms' worth of
#       burst, the rest unanswered: a grandmaster's limit); through ptpproxy as shipped and with
#       "upstream_max_delay_req_rate": --pace-rate ("paced"): the Delay_Req the master reads per
#       10 ms window (max, p99), the share of the clients' Delay_Req answered, their Delay_Req
#       latency (the pacing wait, which the residence correction hands to each client; the
#       clients' offset error through it is measured with real ptp4l clients by tests/pacing.sh).
# Reported: loss per direction, one-way latency (kernel stamps, ptpload --help), Delay_Resp each
# client had to look at for others, the CPU time (/proc/PID/stat) and peak RSS (VmHWM) of naive
# and ptpproxy, ratios ptpproxy/bridge, ptpproxy/naive and ptpproxy/immediate, ptpproxy's own
# figures of batching (wake-ups/s, frames per wake-up, system calls per 1000 frames, from its
# status file), and whether ptpload itself was the limit. JSON of every run is kept in the run directory.
#
#   --smoke        ~14 s of traffic for CI: (a) for 3 s through each forwarder, a short (b) and a
#                  3 s (e) paced through ptpproxy. Not judged on performance; fails if ptpload or a
#                  relay fails, if nothing gets through, if ptpproxy relays what it must drop, or
#                  if the paced bursts reach the master faster than --pace-rate allows (60 in any
#                  10 ms at 4000/s: the rate, the 2 ms slack and margin).
#   --forwarders "..."  which of bridge, naive, immediate, ptpproxy to run
#                  ("bridge naive immediate ptpproxy")
#   --correction C ptpproxy's "correction": none or residence (residence)
#   --max-hold US  ptpproxy's "max_hold_us" (2000)
#   --cpu-latency US  hold a CPU wake-up latency limit of US microseconds (PM QoS,
#                  /dev/cpu_dma_latency) for the whole run, every forwarder alike: what
#                  ptpproxy's "cpu_latency_us" does on a deployment (not with --smoke)
#   --runs N       runs per scenario and forwarder (3)          --seconds S   per run (10)
#   --ramp "..."   per-client Delay_Req rates of (c) ("16 32 64 96 128 160 192 256 320 384 512")
#   --ramp-seconds S  per ramp step and (d) run (5)             --clients N   (1000)
#   --top-rate R   per-client Delay_Req/s asked for in (d) (512)
#   --transport T  l2 or udp4 (l2)                              --foreign F   share (0.01)
#   --only X       scenario a, b, c, d or e (repeatable; default all)
#   --burst-capacity N  Delay_Req/s ptpload's master answers in (e) (4000)
#   --pace-rate N  upstream_max_delay_req_rate of (e)'s paced runs (4000)
#   --nice N       nice value for ptpload and the relays (naive, ptpproxy) (0)
#   --rt PRIO      run ptpload and the relays SCHED_FIFO at PRIO instead: on a machine shared with
#                  other work (builds), keeps that work from deciding the result
#   --pin          give the forwarder CPU 0 and ptpload CPU 1: the relay is pinned there, and RPS
#                  steers the receive processing of px's interfaces (where the bridge forwards and
#                  the relays' capture is fed) to CPU 0. Without it the bridge forwards inside
#                  ptpload's sends, on ptpload's CPU, so its maximum is ptpload's. With it, all
#                  kernel work of both directions lands on CPU 0 beside the relay (and veth's
#                  backlog overflows there first, as ptpload's send errors show)
#   --perf         perf record -g ptpproxy during its (b) runs; top symbols printed
#   --callgrind    instructions per frame of Proxy::handle_frame (benches/relay.rs under callgrind)
#   --tx-path      the send side alone (tests/lib/txpath.c on dn1, frames dropped by cl1's
#                  kernel): CPU per frame of sendmmsg(2) batches against a PACKET_TX_RING, each
#                  with and without PACKET_QDISC_BYPASS, 3 x 1,000,000 frames each
#   --soak S       also run (a) through ptpproxy for S seconds, sampling its RSS every 10 s
#   --dump F       ptpproxy (both configurations) also writes a pcapng dump of F frames ("all" or
#                  "dropped") to the run directory, 64 MiB per file: its cost beside a run without
#   --keep         keep the run directory
# Binaries: $PTPPROXY / $PTPLOAD, else built here with `cargo build --release`.
# Ends with "N passed, N failed" (checks: the tools ran, frames got through, the relays exited
# cleanly, ptpproxy dropped what it must; performance targets are reported, not judged).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/check.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/check.sh"
# shellcheck source=lib/netns.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/netns.sh"
BENCH_PY=$HERE/lib/bench.py

SMOKE=0 RUNS=3 SECONDS_PER_RUN=10 RAMP_SECONDS=5 CLIENTS=1000 TRANSPORT=l2 FOREIGN=0.01
RAMP="16 32 64 96 128 160 192 256 320 384 512"
TOP_RATE=512
BURST_CAPACITY=4000
PACE_RATE=4000
NICE=0 RT=0 PIN=0 PERF=0 CALLGRIND=0 TX_PATH=0 SOAK=0 KEEP=0
FORWARDERS="bridge naive immediate ptpproxy"
CORRECTION=residence
MAX_HOLD=2000
CPU_LATENCY=
ONLY=()
arg_flag --smoke SMOKE 1
arg_value --runs RUNS
arg_value --seconds SECONDS_PER_RUN
arg_value --ramp RAMP
arg_value --ramp-seconds RAMP_SECONDS
arg_value --top-rate TOP_RATE
arg_value --burst-capacity BURST_CAPACITY
arg_value --pace-rate PACE_RATE
arg_value --clients CLIENTS
arg_value --transport TRANSPORT
arg_value --foreign FOREIGN
arg_list --only ONLY
arg_text --forwarders FORWARDERS
arg_value --correction CORRECTION
arg_value --max-hold MAX_HOLD
arg_value --cpu-latency CPU_LATENCY
arg_value --nice NICE
arg_value --rt RT
arg_flag --pin PIN 1
arg_flag --perf PERF 1
arg_flag --callgrind CALLGRIND 1
arg_flag --tx-path TX_PATH 1
arg_value --soak SOAK
arg_flag --keep KEEP 1
DUMP_FRAMES=
arg_value --dump DUMP_FRAMES
args_parse "$@"
for v in RUNS SECONDS_PER_RUN RAMP_SECONDS TOP_RATE CLIENTS SOAK MAX_HOLD BURST_CAPACITY PACE_RATE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || {
		echo "$v must be a whole number" >&2
		exit 2
	}
done
if ! [[ $RT =~ ^[0-9]+$ ]] || ((RT > 99)); then
	echo "--rt must be 0..99" >&2
	exit 2
fi
# How ptpload and ptpproxy are started: nice value, or SCHED_FIFO priority with --rt; CPUs.
SCHED=(nice -n "$NICE")
((RT == 0)) || SCHED=(chrt -f "$RT")
GEN_SCHED=("${SCHED[@]}")
FWD_SCHED=("${SCHED[@]}")
if ((PIN)) && (($(nproc) >= 2)); then
	GEN_SCHED=(taskset -c 1 "${SCHED[@]}")
	FWD_SCHED=(taskset -c 0 "${SCHED[@]}")
else
	PIN=0
fi
[[ $NICE =~ ^-?[0-9]+$ ]] || {
	echo "--nice must be a number" >&2
	exit 2
}
((RUNS >= 1 && SECONDS_PER_RUN >= 1 && SECONDS_PER_RUN <= 600 && SOAK <= 3600)) || {
	echo "--runs >= 1, --seconds 1..600, --soak <= 3600" >&2
	exit 2
}
[[ -z $CPU_LATENCY || $CPU_LATENCY =~ ^[0-9]+$ ]] || {
	echo "--cpu-latency must be a whole number of microseconds" >&2
	exit 2
}
[[ $CORRECTION == none || $CORRECTION == residence ]] || {
	echo "--correction must be none or residence" >&2
	exit 2
}
# the forwarders to run, always in the order bridge, naive, immediate, ptpproxy
FWDS=()
for f in $FORWARDERS; do
	[[ $f == bridge || $f == naive || $f == immediate || $f == ptpproxy ]] || {
		echo "--forwarders: unknown forwarder $f (bridge, naive, immediate, ptpproxy)" >&2
		exit 2
	}
done
for f in bridge naive immediate ptpproxy; do
	[[ " $FORWARDERS " == *" $f "* ]] && FWDS+=("$f")
done
((${#FWDS[@]})) || {
	echo "--forwarders: none given (bridge, naive, immediate, ptpproxy)" >&2
	exit 2
}
FORWARDERS="${FWDS[*]}"
uses() { [[ " $FORWARDERS " == *" $1 "* ]]; } # uses FORWARDER
[[ $EUID -eq 0 ]] || {
	echo "must run as root (network namespaces, raw sockets)" >&2
	exit 1
}


# ---- binaries ----
build_release ''
if missing=$(missing_binary); then
	echo "binary not found: $missing" >&2
	exit 1
fi
CLK_TCK=$(getconf CLK_TCK)

# ---- topology ----
RUN=$(mktemp -d /tmp/ptpproxy-bench.XXXXXX)
FWD_TPID= # the `timeout` wrapping the running relay (ptpproxy or naive_relay)
FWD_PID=  # the relay itself
FWD_COMM= # its process name

cleanup() {
	netns_destroy
	if ((KEEP)); then
		echo "run directory kept: $RUN"
	else
		rm -rf "$RUN"
	fi
}
netns_init "pb$$-" "$RUN" cleanup "network namespaces, raw sockets"

netns_add gm
netns_add px
netns_add cl
# The reference is the kernel's plain bridge: no bridge-netfilter hooks (per namespace).
for t in iptables ip6tables arptables; do
	netns_exec px sysctl -qw "net.bridge.bridge-nf-call-$t=0" 2>/dev/null || true
done
netns_veth gm gm0 "" px up 02:00:00:00:f0:00
netns_veth cl cl1 "" px dn1 02:00:00:00:f0:01
netns_veth cl cl2 "" px dn2 02:00:00:00:f0:02
if ((PIN)); then
	for i in up dn1 dn2; do
		netns_exec px sh -c "echo 1 >/sys/class/net/$i/queues/rx-0/rps_cpus" 2>/dev/null ||
			echo "note: RPS not available on $i: the bridge forwards on the sender's CPU" >&2
	done
fi

# ---- forwarders ----
# proxy_config FILE CORRECTION: ptpproxy's configuration for the bench
proxy_config() { # FILE CORRECTION [MORE JSON MEMBERS]
	local dump=""
	[[ -z $DUMP_FRAMES ]] ||
		dump="\"dump\": {\"file\": \"$RUN/dump.pcapng\", \"frames\": \"$DUMP_FRAMES\", \"max_bytes\": 67108864},"
	cat >"$1" <<EOF
{"upstream": "up", "downstream": ["dn1", "dn2"], "domains": [0], $dump
 "delay_resp": "steer", "correction": "$2", "max_hold_us": $MAX_HOLD, "allow_downstream_masters": false,
 "client_timeout_s": 60, "max_delay_req_rate": 1024,
 "status_file": "$RUN/status.json", "status_interval_s": 1, "promiscuous": false${3:-}}
EOF
	"$PTPPROXY" --check-config -c "$1" >/dev/null
}
CONFIG=$RUN/ptpproxy.json
CONFIG_IMMEDIATE=$RUN/immediate.json
CONFIG_PACED=$RUN/paced.json
proxy_config "$CONFIG" "$CORRECTION"
proxy_config "$CONFIG_IMMEDIATE" none
proxy_config "$CONFIG_PACED" residence ", \"upstream_max_delay_req_rate\": $PACE_RATE"
NAIVE=$RUN/naive_relay
if uses naive; then
	cc -O2 -Wall -Wextra -Werror -o "$NAIVE" "$HERE/lib/naive_relay.c" -lpcap || {
		echo "tests/lib/naive_relay.c did not compile (needs gcc and libpcap-dev: tests/install-deps.sh)" >&2
		exit 1
	}
fi

# descendant PID NAME: the first process named NAME below PID (ip netns exec, nice and timeout
# may each fork or exec depending on their versions)
descendant() {
	local queue=("$1") p c
	while ((${#queue[@]})); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		if [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$2" ]]; then
			echo "$p"
			return 0
		fi
		# shellcheck disable=SC2013 # the file is one line of space-separated PIDs
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do queue+=("$c"); done
	done
	return 1
}

# fwd_find: FWD_PID, the process named FWD_COMM under FWD_TPID
fwd_find() {
	FWD_PID=$(descendant "$FWD_TPID" "$FWD_COMM")
	[[ -n $FWD_PID ]] || {
		echo "$FWD_COMM's process not found under PID $FWD_TPID" >&2
		return 1
	}
}

# ptpproxy_start [CONFIG]: ptpproxy as shipped (or with CONFIG)
ptpproxy_start() {
	rm -f "$RUN/status.json"
	netns_exec px "${FWD_SCHED[@]}" timeout -k 5 900 "$PTPPROXY" -f "${1:-$CONFIG}" -m >>"$RUN/ptpproxy.log" 2>&1 &
	FWD_TPID=$! FWD_COMM=ptpproxy
	netns_track "$FWD_TPID"
	netns_wait_for 10 test -s "$RUN/status.json" || {
		echo "ptpproxy wrote no status file; its log:" >&2
		tail -n 20 "$RUN/ptpproxy.log" >&2
		return 1
	}
	fwd_find || return 1
	echo "$FWD_PID" >"$RUN/proxy.pid"
}

immediate_start() { ptpproxy_start "$CONFIG_IMMEDIATE"; }
paced_start() { ptpproxy_start "$CONFIG_PACED"; }

# relaying LOG N: line N + 1 of LOG is naive_relay's "relaying"
relaying() { sed -n "$(($2 + 1))p" "$1" | grep -q '^naive_relay: relaying'; }

# naive_start: the naive relay on the same ports, started like ptpproxy; up once it has said
# "relaying" (a new line in its log)
naive_start() {
	local log=$RUN/naive.log n0
	touch "$log"
	n0=$(wc -l <"$log")
	netns_exec px "${FWD_SCHED[@]}" timeout -k 5 900 "$NAIVE" up dn1 dn2 >>"$log" 2>&1 &
	FWD_TPID=$! FWD_COMM=naive_relay
	netns_track "$FWD_TPID"
	netns_wait_for 10 relaying "$log" "$n0" || {
		echo "naive_relay did not start; its log:" >&2
		tail -n 20 "$log" >&2
		return 1
	}
	fwd_find
}

# fwd_stop: TERM the running relay, bounded wait; returns its exit status (124: had to be killed)
fwd_stop() {
	local rc=0 tries=100
	[[ -n $FWD_TPID ]] || return 0
	[[ -n $FWD_PID ]] || FWD_PID=$(descendant "$FWD_TPID" "$FWD_COMM") || FWD_PID=$FWD_TPID
	kill -TERM "$FWD_PID" 2>/dev/null || true
	while netns_alive "$FWD_PID" && ((tries-- > 0)); do sleep 0.1; done
	if netns_alive "$FWD_PID"; then
		kill -KILL "$FWD_TPID" "$FWD_PID" 2>/dev/null || true
		rc=124
	fi
	local wrc=0
	wait "$FWD_TPID" 2>/dev/null || wrc=$?
	((rc != 0)) || rc=$wrc
	FWD_TPID='' FWD_PID=''
	return "$rc"
}

bridge_start() {
	netns_bridge px br0 up dn1 dn2
	sleep 0.5
}

bridge_stop() { netns_exec px ip link del br0; }

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # user + system
sys_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $13}'; }

# run_load FORWARDER LABEL RATE SECONDS [PTPLOAD ARGS...]: one ptpload run through FORWARDER
# (started and stopped here), JSON in $RUN/LABEL.json plus, for the relays (naive, ptpproxy), "$RUN/LABEL.proxy"
# (cpu_s, wall_s, vmhwm_kib, exit status, the system part of cpu_s).
run_load() {
	local fwd=$1 label=$2 rate=$3 secs=$4 rc=0 t0 t1 c0=0 c1 s0=0 s1 hwm prc=0 foreign=$FOREIGN
	shift 4
	# a scenario's own options (bursts) come without foreign frames
	(($# == 0)) || foreign=0
	if [[ $fwd == bridge ]]; then
		bridge_start
	else
		"${fwd}_start" || {
			fwd_stop || true
			fail "$label: $fwd did not start"
			return 1
		}
		c0=$(cpu_ticks "$FWD_PID")
		s0=$(sys_ticks "$FWD_PID")
	fi
	t0=$(date +%s.%N)
	"${GEN_SCHED[@]}" timeout -k 5 $((secs + 60)) "$PTPLOAD" \
		--upstream "$(netns_name gm):gm0" --downstream "$(netns_name cl):cl1,$(netns_name cl):cl2" \
		--clients "$CLIENTS" --rate "$rate" --foreign "$foreign" --transport "$TRANSPORT" \
		--duration "$secs" --quiet --json "$RUN/$label.json" "$@" >"$RUN/$label.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	if [[ $fwd == bridge ]]; then
		bridge_stop
	else
		c1=$(cpu_ticks "$FWD_PID")
		s1=$(sys_ticks "$FWD_PID")
		hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$FWD_PID/status")
		fwd_stop || prc=$?
		echo "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v w0="$t0" -v w1="$t1" \
			'BEGIN { printf "%.3f %.3f", (b - a) / t, w1 - w0 }') $hwm $prc \
			$(awk -v a="$s0" -v b="$s1" -v t="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / t }')" >"$RUN/$label.proxy"
		((prc == 0)) || fail "$label: $fwd exited with status $prc"
		# its final status file (written at SIGTERM): the batching figures
		[[ $fwd == naive ]] || cp "$RUN/status.json" "$RUN/$label.status" 2>/dev/null || true
	fi
	if ((rc != 0)); then
		fail "$label: ptpload exited with status $rc: $(tail -n 3 "$RUN/$label.log")"
		return 1
	fi
	return 0
}

want() { # scenario letter
	((${#ONLY[@]} == 0)) && return 0
	local x
	for x in "${ONLY[@]}"; do [[ $x == "$1" ]] && return 0; done
	return 1
}

# summarize TITLE LABEL_PREFIX: the table of one scenario (medians over its runs)
summarize() {
	python3 "$BENCH_PY" summarize "$RUN" "$1" "$2" "$FORWARDERS"
	# what ptpproxy said about steps of the wall clock (their sizes), if anything
	if [[ -f $RUN/ptpproxy.log ]] && grep -q "wall clock stepped" "$RUN/ptpproxy.log"; then
		echo "  ptpproxy's log (this bench run so far): $(grep -c "wall clock stepped" "$RUN/ptpproxy.log") wall-clock step notices, the first:"
		grep "wall clock stepped" "$RUN/ptpproxy.log" | head -n 3 | sed 's/^/    /'
	fi
}

# ---- scenarios ----
scenario() { # LETTER RATE TITLE
	local letter=$1 rate=$2 title=$3 r f order=()
	echo "== ($letter) $title"
	for ((r = 1; r <= RUNS; r++)); do
		order=("${FWDS[@]}")
		if ((r % 2 == 0)); then # reversed
			order=()
			for f in "${FWDS[@]}"; do order=("$f" "${order[@]}"); done
		fi
		for f in "${order[@]}"; do
			run_load "$f" "$letter-$f-$r" "$rate" "$SECONDS_PER_RUN" || true
		done
	done
	summarize "($letter) $title" "$letter" | tee -a "$RUN/summary.txt"
}

# bursts: (e), ptpproxy as shipped and paced, --runs times
BURST_ARGS=(--sync-rate 1 --jitter 0.001 --master-capacity "$BURST_CAPACITY")
bursts() {
	local r f
	echo "== (e) bursts: $CLIENTS clients x 1 Delay_Req/s within 1 ms of each Sync, master answers $BURST_CAPACITY/s; ptpproxy, paced at $PACE_RATE/s"
	for ((r = 1; r <= RUNS; r++)); do
		for f in ptpproxy paced; do
			run_load "$f" "e-$f-$r" 1 "$SECONDS_PER_RUN" "${BURST_ARGS[@]}" || true
		done
	done
	python3 "$BENCH_PY" burst-summary "$RUN" | tee -a "$RUN/summary.txt"
}

# zero_loss FILE: true if nothing was lost either way
zero_loss() {
	python3 "$BENCH_PY" zero-loss "$1"
}

ramp() {
	local f rate best limited label tries
	echo "== (c) ramp: per-client Delay_Req/s $RAMP, $RAMP_SECONDS s per step"
	for f in "${FWDS[@]}"; do
		best=0 limited=
		for rate in $RAMP; do
			tries=0
			while ((tries < 2)); do
				tries=$((tries + 1))
				label="c-$f-$rate-$tries"
				run_load "$f" "$label" "$rate" "$RAMP_SECONDS" || break 2
				zero_loss "$RUN/$label.json" && break
			done
			python3 "$BENCH_PY" ramp-step "$RUN/$label.json" "$f" "$rate"
			zero_loss "$RUN/$label.json" || break
			best=$(python3 "$BENCH_PY" offered "$RUN/$label.json")
			limited=$(python3 "$BENCH_PY" limited "$RUN/$label.json")
		done
		echo "$f $best ${limited:-no}" >>"$RUN/ramp.txt"
	done
	python3 "$BENCH_PY" ramp-summary "$RUN/ramp.txt" | tee -a "$RUN/summary.txt"
}

top_speed() {
	local f i label
	echo "== (d) top speed: $CLIENTS clients x $TOP_RATE Delay_Req/s asked for, $RAMP_SECONDS s, $RUNS runs"
	: >"$RUN/top.txt"
	for i in $(seq "$RUNS"); do
		for f in "${FWDS[@]}"; do
			label="d-$f-$i"
			run_load "$f" "$label" "$TOP_RATE" "$RAMP_SECONDS" || return 0
			echo "$f $RUN/$label.json" >>"$RUN/top.txt"
		done
	done
	python3 "$BENCH_PY" top-summary "$RUN/top.txt" | tee -a "$RUN/summary.txt"
}

perf_top() { # the (b) profile of ptpproxy
	local data=$RUN/perf-b.data
	[[ -s $data ]] || return 0
	echo "== perf: ptpproxy during (b), top symbols (self)"
	{ perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null || true; } |
		awk '/^ +[0-9.]+%/ && n++ < 30' | tee -a "$RUN/summary.txt"
}

tx_path() {
	local exe=$RUN/txpath mode i
	echo "== send side alone: 68-byte frames in batches of 64 on dn1 (veth; cl1's kernel drops them)"
	cc -O2 -Wall -Wextra -Werror -o "$exe" "$HERE/lib/txpath.c" || {
		fail "tests/lib/txpath.c did not compile"
		return
	}
	for i in 1 2 3; do
		for mode in sendmmsg sendmmsg-bypass txring txring-bypass; do
			netns_exec px "$exe" dn1 1000000 "$mode" >>"$RUN/txpath.txt" || fail "txpath $mode failed"
		done
	done
	python3 "$BENCH_PY" tx-path "$RUN/txpath.txt" | tee -a "$RUN/summary.txt"
}

callgrind() {
	local exe out n1=20000 n2=120000 i1 i2
	echo "== callgrind: instructions per frame of Proxy::handle_frame, scenario (a) mix"
	exe=$(cd "$REPO" && cargo bench --bench relay --no-run --message-format=json 2>/dev/null |
		python3 "$BENCH_PY" bench-exe)
	[[ -x $exe ]] || {
		fail "callgrind: bench binary not built"
		return
	}
	for n in $n1 $n2; do
		out=$RUN/callgrind.$n
		valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --callgrind "$n" >/dev/null 2>&1
	done
	i1=$(awk '/^(summary|totals):/ {print $2; exit}' "$RUN/callgrind.$n1")
	i2=$(awk '/^(summary|totals):/ {print $2; exit}' "$RUN/callgrind.$n2")
	echo "  $(((i2 - i1) / (n2 - n1))) instructions per frame ($i1 Ir for $n1 frames, $i2 Ir for $n2)" |
		tee -a "$RUN/summary.txt"
}

if ((SMOKE)); then
	echo "== smoke: (a) for 3 s through each of $FORWARDERS$(uses ptpproxy && echo ", (b) for 2 s through ptpproxy")"
	labels=()
	if uses bridge; then
		run_load bridge smoke-bridge 16 3 && pass "ptpload through the bridge"
		labels+=(smoke-bridge)
	fi
	if uses naive; then
		run_load naive smoke-naive 16 3 && pass "ptpload through the naive relay, naive_relay exited cleanly"
		labels+=(smoke-naive)
	fi
	if uses immediate; then
		run_load immediate smoke-immediate 16 3 && pass "ptpload through ptpproxy immediate, ptpproxy exited cleanly"
		labels+=(smoke-immediate)
	fi
	if uses ptpproxy; then
		run_load ptpproxy smoke-ptpproxy 16 3 && pass "ptpload through ptpproxy (a), ptpproxy exited cleanly"
		run_load ptpproxy smoke-ptpproxy-b 128 2 && pass "ptpload through ptpproxy (b), ptpproxy exited cleanly"
		labels+=(smoke-ptpproxy smoke-ptpproxy-b)
		if run_load paced smoke-paced 1 3 "${BURST_ARGS[@]}"; then
			pass "ptpload's bursts through ptpproxy paced at $PACE_RATE/s (e), ptpproxy exited cleanly"
			if python3 "$BENCH_PY" paced "$RUN/smoke-paced.json" $((PACE_RATE * 15 / 1000)); then
				pass "smoke-paced: at most $((PACE_RATE * 15 / 1000)) Delay_Req in any 10 ms at the master"
			else
				fail "smoke-paced: the master got more than $((PACE_RATE * 15 / 1000)) Delay_Req in 10 ms"
			fi
		fi
	fi
	for label in "${labels[@]}"; do
		[[ -s $RUN/$label.json ]] || continue
		if python3 "$BENCH_PY" through "$RUN/$label.json"; then
			pass "$label: frames got through both ways"
		else
			fail "$label: nothing got through one way"
		fi
		[[ ! -s $RUN/$label.status ]] || python3 "$BENCH_PY" io "$RUN/$label.status" || true
		# the bridge and the naive relay flood: what ptpproxy must drop is theirs to pass
		[[ $label == smoke-ptpproxy* || $label == smoke-immediate ]] || continue
		if python3 "$BENCH_PY" dropped "$RUN/$label.json"; then
			pass "$label: foreign frames dropped, Delay_Resp steered"
		else
			fail "$label: ptpproxy relayed frames it must drop"
		fi
	done
	echo
	check_summary
	exit
fi

if [[ -n $CPU_LATENCY ]]; then
	# The request lives as long as the holder keeps the device open (cleanup ends it).
	python3 "$BENCH_PY" cpu-latency "$CPU_LATENCY" &
	netns_track "$!"
	echo "CPU wake-up latency limit: $CPU_LATENCY us (PM QoS), held for every forwarder's runs"
fi
echo "ptpproxy bench: $FORWARDERS; $CLIENTS clients ($TRANSPORT, foreign $FOREIGN), correction $CORRECTION, $RUNS runs x $SECONDS_PER_RUN s, ${SCHED[*]}, $( ((PIN)) && echo "forwarder on CPU 0, ptpload on CPU 1" || echo "not pinned"), run dir $RUN"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
if want a; then scenario a 16 "$CLIENTS clients x 16 Delay_Req/s"; fi
if want b; then
	if ((PERF)); then
		# Profile only the first ptpproxy run of (b): start perf when that ptpproxy is up.
		(
			for _ in $(seq 600); do
				[[ -n $(ls "$RUN"/b-ptpproxy-*.log 2>/dev/null) ]] && break
				sleep 0.1
			done
			pid=$(cat "$RUN/proxy.pid" 2>/dev/null || true)
			[[ -n $pid ]] && timeout $((SECONDS_PER_RUN + 5)) perf record -g -p "$pid" -o "$RUN/perf-b.data" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1
		) &
		netns_track "$!"
	fi
	scenario b 128 "$CLIENTS clients x 128 Delay_Req/s"
	((PERF)) && perf_top
fi
if want c; then ramp; fi
if want d; then top_speed; fi
if want e; then bursts; fi
if ((SOAK > 0)); then
	echo "== soak: (a) through ptpproxy for $SOAK s, VmRSS every 10 s"
	ptpproxy_start
	"${GEN_SCHED[@]}" timeout -k 5 $((SOAK + 60)) "$PTPLOAD" \
		--upstream "$(netns_name gm):gm0" --downstream "$(netns_name cl):cl1,$(netns_name cl):cl2" \
		--clients "$CLIENTS" --rate 16 --foreign "$FOREIGN" --transport "$TRANSPORT" \
		--duration "$SOAK" --quiet --json "$RUN/soak.json" >"$RUN/soak.log" 2>&1 &
	soak_pid=$!
	while netns_alive "$soak_pid"; do
		printf '  t=%ss VmRSS %s KiB VmHWM %s KiB\n' "$(($(date +%s) - $(stat -c %Y "$RUN/soak.log")))" \
			"$(awk '/^VmRSS/ {print $2}' "/proc/$FWD_PID/status")" "$(awk '/^VmHWM/ {print $2}' "/proc/$FWD_PID/status")"
		sleep 10
	done
	wait "$soak_pid" || fail "soak: ptpload failed"
	fwd_stop || fail "soak: ptpproxy exit status $?"
fi
if ((CALLGRIND)); then callgrind; fi
if ((TX_PATH)); then tx_path; fi

for f in "$RUN"/*.json; do
	[[ -e $f ]] || continue
	python3 "$BENCH_PY" valid-json "$f" || fail "$(basename "$f"): not valid JSON"
done
((FAILED == 0)) && pass "every run completed"
echo
check_summary
