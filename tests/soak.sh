#!/usr/bin/env bash
# Soak test of ptpproxy (root required; not in CI): load with link flaps, memory and fds watched.
#
#   tests/soak.sh [MINUTES] [--clients N] [--correction none|residence] [--keep]
#
# The topology of tests/hardening.sh (tests/lib/hardening.sh). ptpload runs N clients (1000) at
# 16 Delay_Req/s each through ptpproxy for MINUTES (30, at most 60) while, every minute, one link
# flaps in turn: dn1 down/up, up down/up, dn2 deleted and re-created, up deleted and re-created.
# Every 10 s: ptpproxy's VmRSS and VmHWM (/proc/PID/status), its open fds (/proc/PID/fd), its CPU
# time, the client table and each port's opens. At the end: the series, min/max of RSS and fds
# after the first minute (warm-up), whether they stayed flat (RSS within 1 MiB, fds constant),
# whether forwarding resumed after each flap (within 2 s) and ptpload's totals.
# Exit status 0 if ptpproxy ran to the end with RSS and fds flat.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/hardening.sh source-path=SCRIPTDIR disable=SC1091
source "$HERE/lib/hardening.sh" # and tests/lib/check.sh: pass, fail, REPO

MINUTES=30
KEEP=0
CLIENTS=1000
CORRECTION=none
correction_known() { # shellcheck disable=SC2317 # called by args_parse
	[[ $CORRECTION == none || $CORRECTION == residence ]] || {
		echo "--correction must be none or residence" >&2
		exit 2
	}
}
arg_flag --keep KEEP 1
arg_value --clients CLIENTS "--clients needs a number"
arg_value --correction CORRECTION "--correction needs none or residence" correction_known
arg_positional MINUTES '^[0-9]+$'
args_parse "$@"
((MINUTES >= 2 && MINUTES <= 60)) || {
	echo "MINUTES must be 2..60" >&2
	exit 2
}
if ! [[ $CLIENTS =~ ^[0-9]+$ ]] || ((CLIENTS < 1 || CLIENTS > 4000)); then
	echo "--clients must be 1..4000" >&2
	exit 2
fi
HZ_CLIENTS=$CLIENTS
# shellcheck disable=SC2034 # read by tests/lib/netns.sh
NETNS_LIFETIME=$((MINUTES * 60 + 600))

build_release ''
if missing=$(missing_binary); then
	echo "binary not found: $missing" >&2
	exit 1
fi

hz_init "$(mktemp -d /tmp/ptpproxy-soak.XXXXXX)"
hz_topo_create
CFG=$HZ_RUN/ptpproxy.json
LOG=$HZ_RUN/ptpproxy.log
EVENTS=$HZ_RUN/flaps.events
SERIES=$HZ_RUN/series.tsv
hz_config "$CFG" correction="\"$CORRECTION\""
: >"$EVENTS"
echo "soak: $MINUTES min, $HZ_CLIENTS clients x $HZ_RATE Delay_Req/s, correction $CORRECTION, a flap every minute; run directory $HZ_RUN"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
hz_proxy_start "$CFG" "$LOG"
PID=$HZ_PROXY_PID
CLK_TCK=$(getconf CLK_TCK)
hz_load_bg soak $((MINUTES * 60)) --gap-ms 250
T0=$(date +%s)

sample() { # t: one line of the series
	local rss hwm fds cpu clients opens
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
	fds=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	cpu=$(sed 's/.*) //' "/proc/$PID/stat" | awk -v t="$CLK_TCK" '{printf "%.1f", ($12 + $13) / t}')
	clients=$(hz_status "$HZ_RUN/status.json" 'j["clients"]["count"]' 2>/dev/null || echo "?")
	opens=$(hz_status "$HZ_RUN/status.json" '"/".join(str(p["opens"]) for p in j["ports"])' 2>/dev/null || echo "?")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$rss" "$hwm" "$fds" "$cpu" "$clients" "$opens" | tee -a "$SERIES"
}

flap() { # k: the k-th flap, recorded like tests/hardening.sh's (for tests/lib/hardening.py flaps)
	local what ifname watch l0 down up
	case $(($1 % 4)) in
	0) what=dn1-down/up ifname=dn1 watch=cl1 ;;
	1) what=up-down/up ifname=up watch=gm0,cl1,cl2 ;;
	2) what=dn2-deleted/re-created ifname=dn2 watch=cl2 ;;
	3) what=up-deleted/re-created ifname=up watch=gm0,cl1,cl2 ;;
	esac
	[[ -s $EVENTS ]] && printf ' %s\n' "$(wc -l <"$LOG")" >>"$EVENTS"
	l0=$(wc -l <"$LOG")
	down=$(hz_now_ns)
	case $what in
	*down/up) hz_link_flap "$ifname" 1 ;;
	*) hz_recreate "$ifname" 1 ;;
	esac
	up=$(hz_now_ns)
	printf '%s-%d %s %s %s %s %s' "$what" "$1" "$ifname" "$down" "$up" "$watch" "$l0" >>"$EVENTS"
	echo "   flap $1: $what"
}

printf 't_s\trss_kib\thwm_kib\tfds\tcpu_s\tclients\topens(up/dn1/dn2)\n' | tee "$SERIES"
died=0 k=0
for ((i = 0; i <= MINUTES * 6; i++)); do
	# every 10 s a sample; every minute, 30 s in, a flap
	while (($(date +%s) < T0 + 10 * i)); do netns_sleep 0.5; done
	if ! netns_alive "$PID"; then
		died=1
		echo "ptpproxy (pid $PID) is gone at t=$((10 * i)) s"
		break
	fi
	sample $((10 * i))
	if ((i % 6 == 3 && i < MINUTES * 6 - 3)); then
		flap "$k"
		k=$((k + 1))
	fi
done
[[ -s $EVENTS ]] && printf ' %s\n' "$(wc -l <"$LOG")" >>"$EVENTS"
rc=0
wait "$HZ_LOAD_PID" || rc=$?
((rc == 0)) || echo "ptpload exited with status $rc: $(tail -n 3 "$HZ_RUN/soak.txt")"
hz_proxy_stop
echo "ptpproxy: exit status $HZ_PROXY_RC after SIGTERM ($HZ_STOP_MS ms)"

echo "== flaps (forwarding must resume within 2 s of the link's return)"
flaps=$(timeout 60 python3 "$HERE/lib/hardening.py" flaps "$HZ_RUN/soak.json" "$EVENTS" "$LOG" 2000 4 2>&1 || true)
printf '%s\n' "$flaps" | sed 's/^/  /'
flaps_failed=$(printf '%s\n' "$flaps" | grep -c '^FAIL' || true)
if [[ $CORRECTION == residence ]]; then
	echo "== residence correction (final status file)"
	hz_status "$HZ_RUN/status.json" '" ".join(f"{k} {v}" for k, v in j["correction"].items())' | sed 's/^/  /' || true
fi
echo "== ptpload"
grep -E '^(delay_re|sync|ALL|per client|generator)' "$HZ_RUN/soak.txt" | sed 's/^/  /' || true
echo "== memory and fds after the first minute"
verdict=$(python3 - "$SERIES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
rows = [r for r in rows if int(r[0]) >= 60] or rows
rss = [int(r[1]) for r in rows]
hwm = [int(r[2]) for r in rows]
fds = [int(r[3]) for r in rows]
flat_rss = max(rss) - min(rss) <= 1024
flat_fds = max(fds) == min(fds)
print(f"  VmRSS KiB min {min(rss)} max {max(rss)} (first {rss[0]}, last {rss[-1]}): "
      f"{'flat' if flat_rss else 'NOT flat'} (within 1024 KiB)")
print(f"  VmHWM KiB first {hwm[0]} last {hwm[-1]}")
print(f"  fds min {min(fds)} max {max(fds)}: {'flat' if flat_fds else 'NOT flat'}")
print("FLAT" if flat_rss and flat_fds else "GROWING")
PY
)
printf '%s\n' "$verdict" | sed '$d'
why=()
[[ $(printf '%s\n' "$verdict" | tail -n 1) == FLAT ]] || why+=("RSS or fds not flat")
((died == 0)) || why+=("ptpproxy died")
((rc == 0)) || why+=("ptpload failed")
[[ $HZ_PROXY_RC == 0 ]] || why+=("ptpproxy exit status $HZ_PROXY_RC")
((flaps_failed == 0)) || why+=("$flaps_failed flap check(s) failed")
hz_destroy
if ((${#why[@]} == 0)); then
	echo "soak: passed"
	if ((KEEP)); then echo "run directory kept: $HZ_RUN"; else rm -rf "$HZ_RUN"; fi
	exit 0
fi
echo "soak: FAILED: $(IFS=';'; echo "${why[*]}"); run directory kept: $HZ_RUN"
exit 1
