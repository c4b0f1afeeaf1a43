#!/usr/bin/env bash
# tests/cross.sh [BOARD...]: builds every board profile (or the ones named) with cross/build.sh and
# checks each target/<board>/ptpproxy: statically linked (no INTERP, no NEEDED), stripped, runs
# --version (naming its board and target) and --check-config on the shipped configuration (and
# rejects a bad one with 78) under qemu user emulation (Debian's qemu-user-static); an aarch64
# binary must stay <= 1 MiB. Prints a size table. Also checks that the Yocto recipe's crate list
# (cross/yocto/ptpproxy-crates.inc) matches Cargo.lock, and each board's tarball
# (target/<board>/ptpproxy-<version>-<board>.tar.gz): the binary, the overlay, and the licenses
# with libpcap's LICENSE as in its source tarball (and as cross/licenses/LICENSE-libpcap, the copy
# the OpenWrt and Yocto packages install). Installs binutils, file and qemu-user-static when
# missing (root).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_AARCH64_BYTES=1048576
CONFIG=rootfs-overlay/etc/ptpproxy/config.json

# shellcheck source=lib/check.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/check.sh
CHECK_OK="ok - " CHECK_FAIL="FAIL - "

need=()
command -v readelf >/dev/null || need+=(binutils)
command -v file >/dev/null || need+=(file)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "tests/cross.sh: missing ${need[*]} (run as root to install)" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ $# -gt 0 ]; then
    boards=("$@")
else
    boards=()
    for f in board/*.json; do boards+=("$(basename "$f" .json)"); done
fi

bad=$(mktemp)
known=$(mktemp)
echo '{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "sideways"}' >"$bad"

# Frames of known length and timestamp, as libpcap hands them over in pcap_pkthdr: an L2 PTP
# Sync-sized frame, a UDP-sized one, and one cut by the snaplen (caplen 100 of len 1514).
python3 - "$known" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, (caplen, length, usec) in enumerate([(60, 60, 123456), (90, 90, 654321), (100, 1514, 999999)]):
        frame = bytes.fromhex("011b19000000020000000001") + b"\x88\xf7" + bytes(caplen - 14)
        f.write(struct.pack("<IIII", 1700000000 + i, usec, caplen, length) + frame)
PY
expected_probe="caplen=60 len=60 data=60 ts=1700000000.123456
caplen=90 len=90 data=90 ts=1700000001.654321
caplen=100 len=1514 data=100 ts=1700000002.999999"
probed=" "

# The Yocto recipe fetches exactly the crates of Cargo.lock: its list must follow the lock file.
if out=$(cross/yocto/update-crates.sh --check 2>&1); then pass "yocto: $out"; else fail "yocto: $out"; fi

# libpcap's LICENSE in the source tarball the builds use (cross/build.sh's pinned one, or LIBPCAP_SRC)
pcap_tarball=${LIBPCAP_SRC:-${PTPPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ptpproxy-cross}/src/libpcap_1.10.3.orig.tar.gz}
pcap_license=$(mktemp)
trap 'rm -f "$bad" "$known" "$known.log" "$pcap_license"' EXIT

# check_package BOARD: the board's tarball holds the binary, the overlay and the three licenses
check_package() {
    local board=$1 tarball want f list
    tarball=$(find "target/$board" -maxdepth 1 -name "ptpproxy-*-$board.tar.gz" 2>/dev/null | head -n 1)
    [ -n "$tarball" ] || { fail "$board: no target/$board/ptpproxy-<version>-$board.tar.gz"; return; }
    want="./usr/sbin/ptpproxy ./etc/ptpproxy/config.json ./etc/init.d/ptpproxy
        ./usr/share/licenses/ptpproxy/LICENSE-MIT ./usr/share/licenses/ptpproxy/LICENSE-APACHE
        ./usr/share/licenses/ptpproxy/LICENSE-libpcap"
    list=$(tar -tzf "$tarball")
    for f in $want; do
        grep -qx "$f" <<<"$list" || { fail "$board: $tarball lacks $f"; return; }
    done
    pass "$board: $tarball holds the binary, the overlay and usr/share/licenses/ptpproxy/"
    if cmp -s <(tar -xzOf "$tarball" ./usr/sbin/ptpproxy) "target/$board/ptpproxy" &&
        cmp -s <(tar -xzOf "$tarball" ./usr/share/licenses/ptpproxy/LICENSE-MIT) LICENSE-MIT &&
        cmp -s <(tar -xzOf "$tarball" ./usr/share/licenses/ptpproxy/LICENSE-APACHE) LICENSE-APACHE; then
        pass "$board: tarball's binary and ptpproxy licenses are the built and the repository's"
    else
        fail "$board: tarball's binary or licenses differ from target/$board/ptpproxy, LICENSE-*"
    fi
    if [ -s "$pcap_license" ] &&
        cmp -s <(tar -xzOf "$tarball" ./usr/share/licenses/ptpproxy/LICENSE-libpcap) "$pcap_license" &&
        cmp -s "$pcap_license" cross/licenses/LICENSE-libpcap; then
        pass "$board: LICENSE-libpcap is the LICENSE of $(basename "$pcap_tarball") (and cross/licenses/)"
    else
        fail "$board: LICENSE-libpcap differs from the LICENSE in $pcap_tarball or cross/licenses/LICENSE-libpcap"
    fi
}

rows=()
for board in "${boards[@]}"; do
    echo "=== $board"
    bin=target/$board/ptpproxy
    start=$(date +%s)
    if ! cross/build.sh "$board"; then
        fail "$board: cross/build.sh failed"
        rows+=("$board - - - - FAILED")
        continue
    fi
    secs=$(($(date +%s) - start))
    [ -s "$pcap_license" ] || tar -xzOf "$pcap_tarball" --wildcards '*/LICENSE' >"$pcap_license" 2>/dev/null || true
    check_package "$board"
    target=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["target"])' "board/$board.json")
    size=$(stat -c %s "$bin")
    pass "$board: built $bin ($size bytes, ${secs}s)"

    info=$(file -b "$bin")
    case $info in
    *"statically linked"*) pass "$board: file: statically linked" ;;
    *) fail "$board: file: not statically linked: $info" ;;
    esac
    case $info in
    *", stripped"*) pass "$board: file: stripped" ;;
    *) fail "$board: file: not stripped: $info" ;;
    esac
    if readelf -SW "$bin" | grep -q '\.symtab'; then fail "$board: has a .symtab"; else pass "$board: no .symtab"; fi
    if readelf -lW "$bin" | grep -q INTERP; then
        fail "$board: has a program interpreter: $(readelf -lW "$bin" | grep -A1 INTERP | tail -1)"
    else
        pass "$board: readelf -l: no INTERP"
    fi
    if readelf -dW "$bin" | grep -q NEEDED; then
        fail "$board: readelf -d: NEEDED $(readelf -dW "$bin" | grep NEEDED | tr -s ' ' | tr '\n' ' ')"
    else
        pass "$board: readelf -d: no NEEDED"
    fi

    machine=$(readelf -hW "$bin" | sed -n 's/^ *Machine: *//p')
    case $machine in
    AArch64) run=(qemu-aarch64-static) ;;
    ARM) run=(qemu-arm-static) ;;
    *X86-64*) run=() ;;
    *) run=(false) ;;
    esac
    case $target in
    aarch64-*) want=AArch64 ;;
    armv7-*) want=ARM ;;
    x86_64-*) want="Advanced Micro Devices X86-64" ;;
    *) want="?" ;;
    esac
    if [ "$machine" = "$want" ]; then
        pass "$board: ELF machine $machine matches $target"
    else
        fail "$board: ELF machine $machine, expected $want for $target"
    fi

    rc=0
    version=$("${run[@]}" "$bin" --version 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && [[ $version == *"board $board,"* ]] && [[ $version == *"target $target"* ]]; then
        pass "$board: ${run[*]:-native} --version: $version"
    else
        fail "$board: --version (exit $rc) does not name board $board and $target: $version"
    fi
    rc=0
    out=$("${run[@]}" "$bin" --check-config -c "$CONFIG" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then pass "$board: --check-config $CONFIG: $out"; else fail "$board: --check-config $CONFIG: exit $rc: $out"; fi
    rc=0
    out=$("${run[@]}" "$bin" --check-config -c "$bad" 2>&1) || rc=$?
    if [ "$rc" -eq 78 ] && [[ $out == *'"delay_resp"'* ]]; then
        pass "$board: a bad configuration is rejected with 78"
    else
        fail "$board: a bad configuration: exit $rc (expected 78): $out"
    fi

    # Does Rust read libpcap's pcap_pkthdr as libpcap wrote it (time_t width, armv7 time64)?
    # Once per target triple: a pcap file reader built exactly like ptpproxy.
    if [[ $probed != *" $target "* ]]; then
        probed="$probed$target "
        if cross/build.sh --probe "$board" >"$known.log" 2>&1; then
            rc=0
            out=$("${run[@]}" "target/$board/pcapprobe" "$known" 2>&1) || rc=$?
            if [ "$rc" -eq 0 ] && [ "$out" = "$expected_probe" ]; then
                pass "$target: libpcap packet headers read correctly (caplen, len, timestamp)"
            else
                fail "$target: libpcap packet headers misread (exit $rc):"
                echo "$out" | head -5
            fi
        else
            fail "$target: cross/build.sh --probe $board failed"
            tail -20 "$known.log"
        fi
    fi

    verdict=ok
    if [ "$machine" = AArch64 ]; then
        if [ "$size" -le "$MAX_AARCH64_BYTES" ]; then
            pass "$board: $size bytes <= $MAX_AARCH64_BYTES (aarch64 limit)"
        else
            fail "$board: $size bytes > $MAX_AARCH64_BYTES (aarch64 limit)"
            verdict=TOO-BIG
        fi
    fi
    rows+=("$board $target $size $((size / 1024)) ${secs}s $verdict")
done

echo
printf '%-20s %-32s %10s %8s %8s  %s\n' board target bytes KiB build ""
for r in "${rows[@]}"; do
    # shellcheck disable=SC2086 # six words by construction
    printf '%-20s %-32s %10s %8s %8s  %s\n' $r
done
echo
check_summary
