#!/usr/bin/env bash
# tests/initscript.sh: the firmware's init script, rootfs-overlay/etc/init.d/ptpproxy, run by
# `busybox sh` with busybox's applets first on PATH (start-stop-daemon included), as on a busybox
# image, against the host build target/release/ptpproxy (DAEMON=...) in a network namespace with
# veth pairs; then `foreground`, the command of rootfs-overlay/etc/inittab.example's respawn line
# (this shell stands in for busybox init); then busybox init itself, PID 1 of a pid namespace,
# with inittab.example as /etc/inittab: start and respawn. Needs root, iproute2, util-linux
# (unshare, nsenter), busybox, python3 (a syslog socket), overlayfs.
#
# The scenario runs inside the namespace and a private mount namespace with its own tmpfs on
# /run, so the script's default pidfile /var/run/ptpproxy.pid and the status file are the real
# paths without touching the host's, and a small listener on /var/run/syslog (where ptpproxy looks
# for a log daemon after /dev/log) collects what ptpproxy logs.
# shellcheck disable=SC2016 # check/wait_for get '...' conditions that eval expands when they run
# shellcheck disable=SC2317 # helpers are called through check, wait_for and eval
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
INIT=$ROOT/rootfs-overlay/etc/init.d/ptpproxy

# shellcheck source=lib/check.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/check.sh
CHECK_OK="ok - " CHECK_FAIL="FAIL - "
indent() { sed 's/^/    /'; }

# ------------------------------------------------------------------ inside the namespaces

inner() {
    local tmp=$1 pfx=$2
    local bb=$tmp/bb run daemon=$ROOT/target/release/ptpproxy log=$tmp/syslog.txt
    local pidfile=/var/run/ptpproxy.pid status=/var/run/ptpproxy/status.json
    local config=$tmp/config.json bad=$tmp/bad.json

    run=$(readlink -f /var/run)
    mount -t tmpfs -o mode=0755 ptpproxy-test "$run"
    # Syslog for ptpproxy: /dev/log is the host's (or absent), /var/run/syslog is ours.
    python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", 0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\n") + b"\n")
' /var/run/syslog "$log" &
    local syslogd=$!
    # shellcheck disable=SC2064 # expand now: these are this function's locals
    trap "kill $syslogd 2>/dev/null || true" EXIT
    wait_for 5 test -S /var/run/syslog || { fail "syslog listener did not start"; return; }
    if [ -e /dev/log ] && [ ! -L /dev/log ]; then
        mount --bind /var/run/syslog /dev/log
    fi

    mkdir -p "$bb"
    busybox --install -s "$bb"
    initd() { # the init script as a busybox system runs it
        env -i PATH="$bb:/usr/sbin:/usr/bin:/sbin:/bin" DAEMON="${DAEMON:-$daemon}" \
            CONFIG="${CONFIG:-$config}" STOP_TIMEOUT=5 RESPAWN_DELAY=1 busybox sh "$INIT" "$@"
    }
    write_config() { # write_config DOWNSTREAM...
        local d list=""
        for d in "$@"; do list="$list${list:+, }\"$pfx$d\""; done
        cat >"$config.tmp" <<EOF
{"upstream": "${pfx}u0", "downstream": [$list], "domains": [0], "delay_resp": "steer",
 "status_file": "$status", "status_interval_s": 1, "client_timeout_s": 60}
EOF
        mv "$config.tmp" "$config"
    }
    ours() { # ours PID: alive, named ptpproxy, in this network namespace
        [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
            [ "$(cat "/proc/$1/comm")" = ptpproxy ] &&
            [ "$(readlink "/proc/$1/ns/net")" = "$(readlink /proc/self/ns/net)" ]
    }
    no_ptpproxy_here() { # no ptpproxy process in this network namespace
        local p
        for p in /proc/[0-9]*; do
            [ "$(cat "$p/comm" 2>/dev/null)" = ptpproxy ] || continue
            [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ] && return 1
        done
        return 0
    }
    status_field() { # status_field KEY: a number from the status file
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$status" "$1" 2>/dev/null
    }
    status_ports() {
        python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(open(sys.argv[1]))["ports"]))' "$status" 2>/dev/null
    }

    # foreground: what the respawn line of rootfs-overlay/etc/inittab.example runs under busybox
    # init (here this shell stands in for init: it starts the line's command once).
    foreground_checks() {
        local line fg fpid n t0 out rc=0
        line=$(sed -n 's/^::respawn://p' "$ROOT/rootfs-overlay/etc/inittab.example")
        check "inittab.example: one respawn line, this script's foreground: $line" \
            [ "$line" = "/etc/init.d/ptpproxy foreground" ]
        n=$(grep -c "reload: applied" "$log" || true)
        initd foreground >"$tmp/fg.out" 2>&1 &
        fg=$!
        check "foreground: pidfile names a running ptpproxy" \
            wait_for 5 eval 'fpid=$(cat "$pidfile" 2>/dev/null) && ours "$fpid"'
        check "foreground: status 0 (the script's own status)" eval 'initd status >/dev/null'
        reloads_over() { [ "$(grep -c "reload: applied" "$log")" -gt "$1" ]; }
        # (after the start: a SIGHUP before ptpproxy's handler is in place would end it)
        wait_for 5 grep -q "ptpproxy\[$fpid\]: started" "$log" || true
        write_config d0
        out=$(initd reload 2>&1) || true
        check "foreground: reload applied to the same process: $out" \
            eval 'wait_for 5 reloads_over "$n" && ours "$fpid"'
        t0=$(date +%s%N)
        kill -TERM "$fpid"
        wait "$fg" || rc=$?
        check "foreground: returns when ptpproxy ends (exit $rc), after RESPAWN_DELAY (1 s): $((($(date +%s%N) - t0) / 1000000)) ms, pidfile gone" \
            eval '[ $((($(date +%s%N) - t0) / 1000000)) -ge 1000 ] && [ ! -e "$pidfile" ] && ! ours "$fpid"'
        rc=0
        t0=$(date +%s%N)
        CONFIG=$bad initd foreground >"$tmp/fg.out" 2>&1 || rc=$?
        check "foreground with an invalid config: exit $rc (6) after the delay, reason printed, nothing started" \
            eval '[ "$rc" -eq 6 ] && [ $((($(date +%s%N) - t0) / 1000000)) -ge 1000 ] &&
                grep -q "\"delay_resp\"" "$tmp/fg.out" && no_ptpproxy_here'
    }

    # busybox init itself, as PID 1 of a pid namespace, with rootfs-overlay/etc/inittab.example as
    # /etc/inittab (an overlay on /etc in this mount namespace; /etc/default/ptpproxy there points
    # the init script at the test build): it starts ptpproxy, and respawns it when it is killed.
    ptpproxy_here() { # the pids of the daemon binary running in this network namespace
        local p
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/exe" 2>/dev/null)" = "$(readlink -f "$daemon")" ] || continue
            [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ] && echo "${p#/proc/}"
        done
        return 0
    }
    busybox_init_checks() {
        local etc=$tmp/etc unshare_pid init_pid p1='' p2='' out rc
        mkdir -p "$etc/up/init.d" "$etc/up/default" "$etc/work"
        cp "$ROOT/rootfs-overlay/etc/inittab.example" "$etc/up/inittab"
        cp "$INIT" "$etc/up/init.d/ptpproxy"
        printf 'DAEMON=%s\nCONFIG=%s\nRESPAWN_DELAY=1\n' "$daemon" "$config" >"$etc/up/default/ptpproxy"
        mount -t overlay ptpproxy-etc -o "lowerdir=/etc,upperdir=$etc/up,workdir=$etc/work" /etc
        unshare --pid --fork --mount-proc busybox init </dev/null >"$tmp/init.out" 2>&1 &
        unshare_pid=$!
        check "busybox init with inittab.example as /etc/inittab starts ptpproxy" \
            wait_for 5 eval 'p1=$(ptpproxy_here) && [ -n "$p1" ]'
        init_pid=$(pgrep -P "$unshare_pid" -x busybox || true)
        out=$(nsenter -t "$init_pid" -p -m /etc/init.d/ptpproxy status 2>&1) || true
        check "busybox init: the init script's status sees it: $out" grep -q "is running" <<<"$out"
        [ -n "$p1" ] && kill -TERM "$p1"
        rc=0
        wait_for 5 eval 'p2=$(ptpproxy_here) && [ -n "$p2" ] && [ "$p2" != "$p1" ]' || rc=1
        check "busybox init: ptpproxy killed (pid ${p1:-none}) is respawned (pid ${p2:-none}) within 5 s" [ "$rc" -eq 0 ]
        # Killing the namespace's PID 1 ends every process in it.
        [ -n "$init_pid" ] && kill -KILL "$init_pid"
        wait "$unshare_pid" 2>/dev/null || true
        umount /etc
        check "busybox init gone: no ptpproxy left" wait_for 5 eval '[ -z "$(ptpproxy_here)" ]'
    }

    local out rc pid pid2 up1 up2
    write_config d0

    rc=0
    out=$(initd status) || rc=$?
    check "status before start: 3 (stopped): $out" [ "$rc" -eq 3 ]

    rc=0
    out=$(initd start 2>&1) || rc=$?
    indent <<<"$out"
    check "start: exit 0" [ "$rc" -eq 0 ]
    pid=$(cat "$pidfile" 2>/dev/null || true)
    check "start: pidfile $pidfile names a running ptpproxy in the namespace (pid ${pid:-none})" ours "$pid"
    rc=0
    out=$(initd status) || rc=$?
    check "status while running: 0: $out" [ "$rc" -eq 0 ]
    rc=0
    out=$(initd start 2>&1) || rc=$?
    check "start again: exit 0, same process: $out" \
        eval '[ "$rc" -eq 0 ] && [ "$(cat "$pidfile")" = "$pid" ]'
    check "status file written by the same process" \
        wait_for 10 eval '[ "$(status_field pid)" = "$pid" ]'
    check "syslog: ptpproxy opened its ports" wait_for 5 grep -q "port ${pfx}d0 opened" "$log"
    up1=$(status_field uptime_s)

    # Reload: a new downstream port appears without a restart.
    write_config d0 e0
    rc=0
    out=$(initd reload 2>&1) || rc=$?
    check "reload: exit 0: $out" [ "$rc" -eq 0 ]
    check "reload: syslog says the new configuration was applied" wait_for 5 grep -q "reload: applied" "$log"
    check "reload: the status file lists the new port ${pfx}e0" \
        wait_for 10 eval '[[ " $(status_ports) " == *" ${pfx}e0 "* ]]'
    check "reload: same process (pid $pid) still running" ours "$pid"
    sleep 1
    up2=$(status_field uptime_s)
    check "reload: uptime went on ($up1 s -> $up2 s), no restart" [ "${up2:-0}" -ge "${up1:-999999}" ]
    echo "    ports after reload: $(status_ports)"

    # An invalid new file: reload refuses with the reason and the daemon keeps running.
    cp "$config" "$config.good"
    echo '{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "sideways"}' >"$config"
    rc=0
    out=$(initd reload 2>&1) || rc=$?
    check "reload of an invalid file: refused (exit $rc) naming the field: $out" \
        eval '[ "$rc" -ne 0 ] && grep -q "\"delay_resp\"" <<<"$out"'
    check "reload of an invalid file: same process still running" ours "$pid"
    rc=0
    out=$(initd restart 2>&1) || rc=$?
    check "restart with an invalid file: refused (exit $rc), old process still running: $out" \
        eval '[ "$rc" -ne 0 ] && ours "$pid"'
    mv "$config.good" "$config"

    rc=0
    out=$(initd restart 2>&1) || rc=$?
    indent <<<"$out"
    pid2=$(cat "$pidfile" 2>/dev/null || true)
    check "restart: exit 0, a new process (pid $pid -> ${pid2:-none})" \
        eval '[ "$rc" -eq 0 ] && [ "$pid2" != "$pid" ] && ours "$pid2" && ! kill -0 "$pid" 2>/dev/null'

    rc=0
    out=$(initd stop 2>&1) || rc=$?
    indent <<<"$out"
    check "stop: exit 0" [ "$rc" -eq 0 ]
    check "stop: process $pid2 gone, pidfile removed" \
        eval '! kill -0 "$pid2" 2>/dev/null && [ ! -e "$pidfile" ]'
    rc=0
    out=$(initd status) || rc=$?
    check "status after stop: 3 (stopped): $out" [ "$rc" -eq 3 ]
    check "stop: ptpproxy logged that it is stopping (SIGTERM)" grep -q "stopping" "$log"
    rc=0
    out=$(initd stop 2>&1) || rc=$?
    check "stop when stopped: exit 0: $out" [ "$rc" -eq 0 ]

    # A pidfile whose process is gone: LSB status 1.
    sh -c 'echo $$' >"$pidfile"
    rc=0
    out=$(initd status) || rc=$?
    check "status with a stale pidfile: 1 (dead): $out" [ "$rc" -eq 1 ]
    rm -f "$pidfile"

    # An invalid configuration: nothing starts, the reason is printed.
    echo '{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "sideways"}' >"$bad"
    rc=0
    out=$(CONFIG=$bad initd start 2>&1) || rc=$?
    echo "    $out"
    check "start with an invalid config: refused (exit $rc)" [ "$rc" -ne 0 ]
    check "start with an invalid config: prints the reason naming the field" \
        grep -q '"delay_resp".*fix:' <<<"$out"
    check "start with an invalid config: no process, no pidfile" \
        eval 'no_ptpproxy_here && [ ! -e "$pidfile" ]'
    rc=0
    out=$(DAEMON=$tmp/nonexistent initd start 2>&1) || rc=$?
    check "start without the binary: exit 5 (not installed): $out" [ "$rc" -eq 5 ]

    foreground_checks
    busybox_init_checks

    echo "    syslog lines collected: $(wc -l <"$log")"
    sed -n '1,12s/^/    | /p' "$log"
    echo "$PASSED $FAILED" >"$tmp/result"
}

if [ "${1:-}" = --inner ]; then
    inner "$2" "$3"
    exit 0
fi

# ------------------------------------------------------------------ outside: setup and cleanup

[ "$(id -u)" -eq 0 ] || { echo "tests/initscript.sh: needs root (network namespaces)" >&2; exit 1; }
need=()
command -v busybox >/dev/null || need+=(busybox)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x target/release/ptpproxy ] || cargo build --release

private_netns_run initscript pxi "u d e" "init script: $INIT (busybox sh, busybox start-stop-daemon)"
