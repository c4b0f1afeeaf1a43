#!/usr/bin/env bash
# QEMU smoke test of the firmware build (issue 4): boot the static aarch64 ptpproxy with the
# rootfs-overlay exactly as shipped in an emulated ARM board and watch it relay real PTP frames.
#
#   tests/qemu/run.sh
#
# 1. builds target/qemu-virt-aarch64/ptpproxy with `cross/build.sh qemu-virt-aarch64`;
# 2. fetches a Debian arm64 kernel, its virtio-net modules and busybox-static once into
#    target/qemu/cache (tests/qemu/fetch.sh; apt, no state left behind);
# 3. packs an initramfs: busybox, the modules, ptpproxy, rootfs-overlay/, tests/qemu/init;
# 4. boots qemu-system-aarch64 -M virt -cpu cortex-a53 with three virtio NICs (eth0 upstream,
#    lan1 and lan2 downstream), each a `-netdev dgram` UDP socket on 127.0.0.1 whose other end is
#    tests/qemu/host.py: no tap device, no root networking, nothing beyond 127.0.0.1;
# 5. host.py sends real PTPv2 frames, checks where they come out, asks the guest for
#    `ptpproxy status` and ptpproxy's syslog lines, checks them, and powers the guest off.
#    Between the two builds' phases, a clock-step phase: the guest steps its wall clock 8 times
#    (up to 1 s forward, then back: `date -s`, which this VM's shared clock cannot take) while a
#    Sync/Follow_Up pair goes through every 2 ms; no Follow_Up may carry a step as residence and
#    the status must count clock_step (tests/qemu/host.py, Phase.clock_steps).
#
# The guest also runs the armv7 firmware build (target/lan966x/ptpproxy, `cross/build.sh lan966x`,
# 32-bit ARM on the arm64 kernel's COMPAT layer) through the same steps: its counters and
# byte-identical forwarded frames (up to 358 bytes) show that it reads pcap's caplen right, which a
# 32/64-bit time_t mismatch in pcap_pkthdr would garble (TOOLCHAIN.md).
#
# Bounded: QEMU runs under `timeout` (PTPQ_TIMEOUT seconds, default 180); a failure prints the
# whole guest console, a pass what the guest printed without the kernel's boot messages. Ends
# with "N passed, N failed"; exit status 1 on any failure. Needs root only to install
# qemu-system-arm and for apt (once; then everything comes from the cache).
#
# Environment: PTPQ_BIN=FILE (aarch64 binary to test as is, no build), PTPQ_ARMV7=FILE (armv7
# binary as is) or none (skip that phase), PTPQ_TIMEOUT=seconds, PTPQ_KEEP=1 (keep the run
# directory target/qemu/run.*), PTPQ_NO_BRIDGE=1 (skip the bridge phase: eth0, lan1, lan2 in a
# Linux bridge, ptpproxy's tc trap filters forced on them; tests/qemu/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

# shellcheck source=../lib/check.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/check.sh
CHECK_OK="ok   " CHECK_FAIL="FAIL "
t_start=$(date +%s.%N)
note() { printf 'qemu: %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- tools

if ! command -v qemu-system-aarch64 >/dev/null; then
    note "installing qemu-system-arm (Debian)"
    [ "$(id -u)" -eq 0 ] || { fail "qemu-system-aarch64 missing; install qemu-system-arm as root"; check_summary; exit 1; }
    # Without recommends: no ipxe-qemu roms, hence `romfile=` on every NIC below.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 qemu-system-arm >/dev/null; then
        apt-get update -qq -o DPkg::Lock::Timeout=300
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -o DPkg::Lock::Timeout=300 qemu-system-arm >/dev/null
    fi
fi
command -v python3 >/dev/null || { fail "python3 missing"; check_summary; exit 1; }

# ---------------------------------------------------------------- the binaries

bin=${PTPQ_BIN:-target/qemu-virt-aarch64/ptpproxy}
armv7=${PTPQ_ARMV7:-target/lan966x/ptpproxy}
boards=()
[ -n "${PTPQ_BIN:-}" ] || boards+=(qemu-virt-aarch64)
[ -n "${PTPQ_ARMV7:-}" ] || boards+=(lan966x)
if [ ${#boards[@]} -gt 0 ]; then
    t=$(date +%s.%N)
    if [ ! -x cross/build.sh ]; then
        fail "build: cross/build.sh does not exist"
        check_summary
        exit 1
    fi
    if timeout 1200 cross/build.sh "${boards[@]}" >target/qemu-build.log 2>&1; then
        pass "build: cross/build.sh ${boards[*]} ($(elapsed "$t") s)"
    else
        tail -n 40 target/qemu-build.log
        fail "build: cross/build.sh ${boards[*]} (log: target/qemu-build.log)"
        check_summary
        exit 1
    fi
fi
[ -f "$bin" ] || { fail "no binary $bin"; check_summary; exit 1; }
if [ "$armv7" != none ] && [ ! -f "$armv7" ]; then
    fail "no armv7 binary $armv7"
    armv7=none
fi
[ "$armv7" != none ] || note "no armv7 binary: the armv7 (lan966x) phase is skipped"

# ---------------------------------------------------------------- the image

t=$(date +%s.%N)
mkdir -p target/qemu
# One fetch at a time per checkout (runs in parallel share the cache).
if timeout 900 flock target/qemu/.fetch.lock tests/qemu/fetch.sh target/qemu/cache; then
    pass "guest kernel, modules and busybox in target/qemu/cache ($(cat target/qemu/cache/kernel-version))"
else
    fail "fetch the Debian arm64 packages"
    check_summary
    exit 1
fi

mkdir -p target/qemu
run=$(mktemp -d "$root/target/qemu/run.XXXXXX")
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    exec 3>&-
    [ "${PTPQ_KEEP:-0}" = 1 ] || rm -rf "$run"
}
trap cleanup EXIT

stage=$run/stage
mkdir -p "$stage/bin" "$stage/usr/sbin" "$stage/lib/modules"
cp target/qemu/cache/busybox "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp target/qemu/cache/modules/*.ko target/qemu/cache/modules/order "$stage/lib/modules/"
cp -R rootfs-overlay/. "$stage/" # exactly as shipped
cp "$bin" "$stage/usr/sbin/ptpproxy"
[ "$armv7" = none ] || cp "$armv7" "$stage/usr/sbin/ptpproxy-armv7"
cp tests/qemu/init "$stage/init"
chmod 0755 "$stage/init" "$stage/usr/sbin/"*
if python3 tests/qemu/initramfs.py "$stage" "$run/initramfs.cpio.gz"; then
    pass "initramfs assembled ($(elapsed "$t") s)"
else
    fail "initramfs"
    check_summary
    exit 1
fi

# ---------------------------------------------------------------- boot and test

read -r hu hd1 hd2 gu gd1 gd2 < <(python3 tests/qemu/host.py ports 6)
mac=52:54:00:70:74
netdev() { # id guest-port host-port mac
    printf -- '-netdev\0dgram,id=%s,local.type=inet,local.host=127.0.0.1,local.port=%s,remote.type=inet,remote.host=127.0.0.1,remote.port=%s\0-device\0virtio-net-pci,netdev=%s,mac=%s,romfile=\0' \
        "$1" "$2" "$3" "$1" "$4"
}
mapfile -d '' nics < <(netdev up "$gu" "$hu" "$mac:00"; netdev down1 "$gd1" "$hd1" "$mac:01"; netdev down2 "$gd2" "$hd2" "$mac:02")

limit=${PTPQ_TIMEOUT:-180}
mkfifo "$run/console.in"
exec 3<>"$run/console.in" # held open for QEMU's whole life: no EOF on its stdin
t0=$(date +%s.%N)
timeout -k 5 "$limit" qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m 256 \
    -nographic -no-reboot \
    -kernel target/qemu/cache/vmlinuz -initrd "$run/initramfs.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 PTPQ_NICS=$mac:00/eth0,$mac:01/lan1,$mac:02/lan2" \
    "${nics[@]}" <&3 >"$run/console.log" 2>&1 &
qemu_pid=$!
note "QEMU pid $qemu_pid, console $run/console.log, netdevs eth0 $gu<->$hu lan1 $gd1<->$hd1 lan2 $gd2<->$hd2"

# host.py gives up 10 s before QEMU's limit (or half way, for a short one) to power it off itself.
deadline=$(awk -v a="$t0" -v l="$limit" 'BEGIN { m = l - 10; if (m < l / 2) m = l / 2; printf "%.3f", a + m }')
host_args=(run --host-ports "$hu,$hd1,$hd2" --guest-ports "$gu,$gd1,$gd2"
    --console "$run/console.log" --console-in "$run/console.in"
    --t0 "$t0" --deadline "$deadline" --results "$run/results.json" --qemu-pid "$qemu_pid")
[ "$armv7" = none ] || host_args+=(--armv7)
[ "${PTPQ_NO_BRIDGE:-0}" != 1 ] || host_args+=(--no-bridge)
host_rc=0
timeout -k 5 "$limit" python3 tests/qemu/host.py "${host_args[@]}" || host_rc=$?

# The guest was told to power off; QEMU exits with 0 then (-no-reboot). If host.py gave up
# before that, give QEMU 20 s, then end it (`timeout` bounds it in any case).
i=0
while kill -0 "$qemu_pid" 2>/dev/null && [ $i -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill "$qemu_pid" 2>/dev/null || true
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
run_s=$(elapsed "$t0")
if [ "$qemu_rc" -eq 0 ]; then
    pass "QEMU exited after the guest powered off ($run_s s after boot)"
else
    fail "QEMU exit status $qemu_rc (124: killed after ${limit} s)"
fi
cp "$run/console.log" target/qemu/console.log

if [ -f "$run/results.json" ]; then
    read -r hp hf < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["passed"], r["failed"])' "$run/results.json")
    PASSED=$((PASSED + hp))
    FAILED=$((FAILED + hf))
    boot=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r.get("boot_to_ready_s", "?"), r.get("guest_uptime_at_ready_s", "?"))' "$run/results.json")
    [ "${boot% *}" = "?" ] || note "boot to ready: ${boot% *} s after QEMU start (guest uptime ${boot#* } s at ready)"
else
    fail "host checks did not finish (exit status $host_rc)"
fi
[ "$host_rc" -eq 0 ] || [ "$FAILED" -gt 0 ] || fail "host.py exit status $host_rc"

if [ "$FAILED" -gt 0 ]; then
    echo "---------------------------------------------------------------- guest console"
    cat "$run/console.log"
    echo "---------------------------------------------------------------- end of guest console"
    PTPQ_KEEP=1
    note "kept $run"
else
    # What the guest printed, without the kernel's boot messages (target/qemu/console.log has all).
    echo "---------------------------------------------------------------- guest console (no kernel lines)"
    grep -v '^\[ *[0-9]*\.[0-9]*\] ' "$run/console.log" || true
    echo "---------------------------------------------------------------- end of guest console"
fi
note "total $(elapsed "$t_start") s"
check_summary
