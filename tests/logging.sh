#!/usr/bin/env bash
# tests/logging.sh: ptpproxy's syslog writer against a real log daemon, busybox syslogd, on the
# real /dev/log path. Needs root, iproute2, util-linux (unshare), busybox, python3.
#
#   tests/logging.sh [--keep]
#
# ptpproxy (target/release/ptpproxy, or $PTPPROXY) runs in a network namespace with two veth
# pairs (upstream u0, downstream d0), inside a private mount namespace whose /dev is a tmpfs
# (null, zero, urandom, ... bound from the host's) and whose /var/run is a tmpfs: busybox syslogd
# creates /dev/log and its pidfile there without touching the host's. Then:
#
#   1  start-up: ptpproxy's "started:" line reaches syslogd, RFC 3164 as syslogd parses it
#   2  restart: syslogd is killed and started again (a new /dev/log); the next lines (USR1's
#      counters line, HUP's reload line) reach the new daemon, none is lost
#   3  gone: syslogd is killed; USR1 lines wait in ptpproxy's backlog (status file: waiting,
#      none dropped) and reach the next syslogd within 2 s, unasked
#   4  stalled: syslogd is stopped (SIGSTOP) while USR1 asks for 100 lines, more than its queue
#      and ptpproxy's backlog hold; ptpproxy keeps relaying (Sync frames injected upstream are
#      forwarded), rewrites its status file, and `ptpproxy status` calls it live; after SIGCONT
#      what waited arrives and the dropped lines are reported, N equal to the status file's count
#
#   --keep   keep the run directory (syslog files, ptpproxy's stderr, status file)
# Ends with "N passed, N failed"; exit status 1 if anything failed.
# shellcheck disable=SC2016 # check gets '...' conditions that eval expands when they run
# shellcheck disable=SC2317 # helpers are called through check and wait_for
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=lib/check.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/check.sh

# ------------------------------------------------------------------ inside the namespaces

syslogd=''   # the running busybox syslogd
old_inode='' # the inode of the socket the previous one left

changed() { [ "$(stat -c %.9Y "$1")" != "$2" ]; }                 # changed FILE MTIME
more_lines() { [ "$(grep -c -- "$1" "$2")" -gt "$3" ]; } # more_lines PATTERN FILE N: more than N match
new_socket() { [ -S "$1" ] && [ "$(stat -c %i "$1")" != "$2" ]; } # new_socket PATH OLD-INODE

# private_dev DIR: a tmpfs on /dev with the host's basic device nodes (bound through DIR), so that
# /dev/log can be created and replaced here only.
private_dev() {
    local host=$1 n
    mkdir -p "$host"
    mount --bind /dev "$host"
    mount -t tmpfs -o mode=0755,size=1m ptpproxy-logging-dev /dev
    for n in null zero full random urandom tty; do
        [ -e "$host/$n" ] || continue
        touch "/dev/$n"
        mount --bind "$host/$n" "/dev/$n"
    done
    ln -s /proc/self/fd /dev/fd
    ln -s /proc/self/fd/0 /dev/stdin
    ln -s /proc/self/fd/1 /dev/stdout
    ln -s /proc/self/fd/2 /dev/stderr
    mkdir /dev/shm /dev/pts
}

inner() {
    local tmp=$1 pfx=$2
    local daemon=${PTPPROXY:-$ROOT/target/release/ptpproxy}
    local config=$tmp/config.json status=$tmp/status.json run
    local n=0 log=''

    private_dev "$tmp/hostdev"
    run=$(readlink -f /var/run)
    mount -t tmpfs -o mode=0755 ptpproxy-logging-run "$run"
    check "private /dev: no /dev/log yet, /dev/null works" \
        eval '[ ! -e /dev/log ] && echo x >/dev/null'

    # syslogd_start: a new busybox syslogd writing $tmp/syslog.N (N counts up: $log)
    syslogd_start() {
        n=$((n + 1))
        log=$tmp/syslog.$n
        : >"$log"
        busybox syslogd -n -O "$log" &
        syslogd=$!
        # its socket, new (not a previous daemon's left behind)
        wait_for 5 new_socket /dev/log "$old_inode"
    }
    syslogd_kill() {
        old_inode=$(stat -c %i /dev/log 2>/dev/null || true)
        kill -TERM "$syslogd" 2>/dev/null || true
        wait "$syslogd" 2>/dev/null || true
    }
    status_field() { # status_field PY-EXPR: evaluated on the status file (j)
        python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
            "$status" "$1" 2>/dev/null
    }
    # status_after_write PY-EXPR: the expression on the next status file written from now
    status_after_write() {
        local mtime
        mtime=$(stat -c %.9Y "$status")
        wait_for 5 changed "$status" "$mtime" || true
        status_field "$1"
    }
    logged() { grep -q -- "$1" "$log"; }
    trap 'kill -KILL "$syslogd" 2>/dev/null || true' EXIT
    local out

    # ---- 1: start-up
    echo "== 1. start-up line reaches busybox syslogd on /dev/log"
    syslogd_start || { fail "busybox syslogd did not create /dev/log"; return; }
    cat >"$config" <<EOF
{"upstream": "${pfx}u0", "downstream": ["${pfx}d0"], "domains": [0], "delay_resp": "steer",
 "correction": "none", "status_file": "$status", "status_interval_s": 1}
EOF
    "$daemon" -f "$config" -m 2>"$tmp/stderr.log" &
    local pid=$!
    check "ptpproxy wrote its status file (pid $pid)" wait_for 10 test -s "$status"
    check "syslog: the start-up line arrived" wait_for 5 logged "ptpproxy\[$pid\]: started: upstream ${pfx}u0"
    echo "    | $(grep -m1 "ptpproxy\[$pid\]: started:" "$log" || true)"
    check "syslog: daemon facility, notice level, the line's own timestamp parsed (busybox kept the text after it)" \
        grep -qE "^[A-Z][a-z]{2} [ 0-3][0-9] [0-9:]{8} .* daemon\.notice ptpproxy\[$pid\]: started:" "$log"
    check "status file: syslog connected, nothing dropped" \
        eval '[ "$(status_field "(j[\"log\"][\"syslog_connected\"], j[\"log\"][\"lines_dropped\"])")" = "(1, 0)" ]'

    # ---- 2: restart
    echo "== 2. syslogd restarted: the next lines reach the new daemon"
    sleep 1.2 # the writer's last connection is over a second old: it reconnects at once
    syslogd_kill
    syslogd_start || { fail "busybox syslogd did not start again"; return; }
    kill -USR1 "$pid"
    check "after the restart: USR1's counters line reached the new syslogd" \
        wait_for 5 logged "ptpproxy\[$pid\]: clients 0/"
    echo "    | $(grep -m1 'clients 0/' "$log" | cut -c1-150 || true)..."
    kill -HUP "$pid"
    check "after the restart: HUP's reload line reached the new syslogd" \
        wait_for 5 logged "ptpproxy\[$pid\]: reload: configuration unchanged"
    check "after the restart: no line dropped, 2 connections (status file)" \
        eval '[ "$(status_after_write "(j[\"log\"][\"lines_dropped\"], j[\"log\"][\"syslog_connects\"])")" = "(0, 2)" ]'

    # ---- 3: gone
    echo "== 3. syslogd gone: lines wait (bounded) and reach the next one"
    syslogd_kill
    for _ in 1 2 3; do
        kill -USR1 "$pid"
        sleep 0.3
    done
    local waiting
    waiting=$(status_after_write '(j["log"]["lines_waiting"], j["log"]["lines_dropped"], j["log"]["syslog_connected"])')
    # 3 counters lines, and perhaps a notice of the silent upstream (no grandmaster here)
    check "while gone: 3 or 4 lines wait, none dropped, not connected (status file: $waiting)" \
        eval '[[ $waiting == "(3, 0, 0)" || $waiting == "(4, 0, 0)" ]]'
    check "ptpproxy still running" kill -0 "$pid"
    syslogd_start || { fail "busybox syslogd did not start again"; return; }
    check "back: the 3 waiting counters lines reached the new syslogd within 2 s, unasked" \
        wait_for 2 more_lines "ptpproxy\[$pid\]: clients 0/" "$log" 2
    check "back: nothing waits, nothing was dropped (status file)" \
        eval '[ "$(status_after_write "(j[\"log\"][\"lines_waiting\"], j[\"log\"][\"lines_dropped\"])")" = "(0, 0)" ]'
    local dropped

    # ---- 4: stalled
    echo "== 4. syslogd stalled (SIGSTOP) while ptpproxy logs 100 lines"
    local before_total fwd0 fwd1 up0 up1 rc=0 t0 t1 report
    before_total=$(status_after_write 'j["log"]["lines_dropped"]')
    fwd0=$(status_field 'j["forwarded"]["sync"]')
    up0=$(status_field 'j["uptime_s"]')
    kill -STOP "$syslogd"
    t0=$(date +%s%N)
    for _ in $(seq 100); do
        kill -USR1 "$pid"
        sleep 0.02
    done
    t1=$(date +%s%N)
    python3 "$ROOT/tests/lib/ptpframe.py" --iface "${pfx}u1" --type sync --src-mac 02:00:00:00:00:01 \
        --clock-id 020000.fffe.000001 --count 20 --interval 0.02 2>>"$tmp/inject.log"
    sleep 2.2 # two status writes
    fwd1=$(status_field 'j["forwarded"]["sync"]')
    up1=$(status_field 'j["uptime_s"]')
    dropped=$(status_field 'j["log"]["lines_dropped"]')
    echo "    100 USR1 in $(((t1 - t0) / 1000000)) ms; lines dropped while stalled: $((dropped - before_total))"
    check "while stalled: ptpproxy still running" kill -0 "$pid"
    check "while stalled: 20 Syncs injected upstream were forwarded (forwarded.sync $fwd0 -> $fwd1)" \
        [ "$((fwd1 - fwd0))" -eq 20 ]
    check "while stalled: the status file is still rewritten (uptime_s $up0 -> $up1)" [ "$up1" -gt "$up0" ]
    out=$("$daemon" status "$status" 2>&1) || rc=$?
    check "while stalled: ptpproxy status calls it live (exit $rc)" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || echo "$out"
    rc=0
    check "while stalled: lines dropped and counted ($((dropped - before_total)) in the status file)" \
        [ "$((dropped - before_total))" -gt 0 ]
    local reports
    reports=$(grep -c 'log lines dropped' "$log" || true)
    kill -CONT "$syslogd"
    check "after SIGCONT: the dropped lines are reported within 2 s" \
        wait_for 2 more_lines 'log lines dropped' "$log" "$reports"
    report=$(grep 'log lines dropped' "$log" | tail -n 1)
    echo "    | $report"
    local reported
    reported=$(grep -oE '[0-9]+ log lines dropped' <<<"$report" | cut -d' ' -f1)
    dropped=$(status_after_write 'j["log"]["lines_dropped"]')
    check "after SIGCONT: the report says $reported, the status file's count rose by $((dropped - before_total))" \
        [ "$reported" -eq "$((dropped - before_total))" ]
    check "after SIGCONT: nothing waits, nothing left unreported" \
        eval '[ "$(status_field "(j[\"log\"][\"lines_waiting\"], j[\"log\"][\"lines_dropped_unreported\"])")" = "(0, 0)" ]'
    echo "    syslog lines ptpproxy got into the last syslogd's file: $(grep -c "ptpproxy\[$pid\]" "$log")"

    kill -TERM "$pid"
    wait "$pid" || rc=$?
    check "SIGTERM: ptpproxy exits 0" [ "$rc" -eq 0 ]
    check "its stopping line reached syslog" logged "ptpproxy\[$pid\]: stopping"
    echo "$PASSED $FAILED" >"$tmp/result"
}

if [ "${1:-}" = --inner ]; then
    inner "$2" "$3"
    exit 0
fi

# ------------------------------------------------------------------ outside: setup and cleanup

KEEP=0
arg_flag --keep KEEP 1
args_parse "$@"

[ "$(id -u)" -eq 0 ] || { echo "tests/logging.sh: needs root (namespaces, mounts)" >&2; exit 1; }
need=()
command -v busybox >/dev/null || need+=(busybox)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -z "${PTPPROXY:-}" ]; then
    cargo build --release --bin ptpproxy 2>&1 | tail -n 1
fi

private_netns_run logging pxl "u d" "logging: ptpproxy and busybox syslogd on a private /dev/log"
