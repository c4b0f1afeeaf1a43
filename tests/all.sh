#!/usr/bin/env bash
# The whole test suite, as CI runs it (README: "Run every test"). Installs what a fresh Debian
# machine lacks, then: formatting, lints, unit + replay tests, --check-config on every shipped
# configuration, and the end-to-end test with ptp4l in network namespaces (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
step() {
    local name=$1
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED"
    fi
}

tests/install-deps.sh
[[ -d $HOME/.cargo/bin ]] && PATH=$HOME/.cargo/bin:$PATH # where install-deps.sh puts rustup's Rust
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --all-targets
step "release build" cargo build --release
check_configs() {
    local f rc=0
    for f in rootfs-overlay/etc/ptpproxy/*.json; do
        target/release/ptpproxy --check-config -c "$f" || rc=1
    done
    # A broken file must be rejected with EX_CONFIG (78), naming the field.
    local bad out code=0
    bad=$(mktemp)
    echo '{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "sideways"}' >"$bad"
    out=$(target/release/ptpproxy --check-config -c "$bad" 2>&1) || code=$?
    [ "$code" -eq 78 ] || { echo "bad config: exit $code, expected 78"; rc=1; }
    grep -q '"delay_resp"' <<<"$out" || { echo "rejection does not name the field: $out"; rc=1; }
    echo "rejected as expected: $out"
    rm -f "$bad"
    return $rc
}
step "check shipped configs" check_configs
step "shellcheck" shellcheck tests/*.sh tests/lib/*.sh tests/data/*.sh tests/qemu/*.sh tests/qemu/init \
    cross/*.sh cross/yocto/*.sh cross/openwrt/ptpproxy/files/ptpproxy.init .ci/run
step "shellcheck (POSIX sh init script)" shellcheck -s sh rootfs-overlay/etc/init.d/ptpproxy
step "end to end (ptp4l in namespaces)" tests/e2e.sh
step "demo (README's first command: ptpproxy, then a Linux bridge, 15 s each)" tests/demo.sh --compare --seconds 15
step "timing fidelity (residence correction vs bridge, ptp4l clients, L2/UDPv4/UDPv6 checksums)" tests/timing.sh --check
step "hardening (floods, rogue masters, malformed frames, flaps, reloads, least privilege)" tests/hardening.sh
step "identity ownership (a spoofed clockIdentity, a moved client; ptp4l in namespaces)" tests/identity.sh
step "operations (upstream health, metrics file, a new grandmaster; ptp4l in namespaces)" tests/ops.sh
step "bridged ports (switch and router shapes, nftables filter; ptp4l in namespaces)" tests/switch.sh
step "field faults (a cabling loop, a rogue master, a silent grandmaster; ptp4l in namespaces)" tests/field.sh
step "upstream pacing (1000 clients bursting at a ptp4l grandmaster, without and with pacing)" tests/pacing.sh --check
step "pcapng dump (rogue and malformed frames, all frames, max_bytes, reloads; read by tshark)" tests/dump.sh
step "benchmark smoke (ptpproxy vs Linux bridge and naive relay, 11 s)" tests/bench.sh --smoke
step "fuzz smoke (every target, 15 s each)" tests/fuzz.sh 15
step "init script (busybox, namespaces)" tests/initscript.sh
step "systemd unit (exposure score <= 2.0; ptpproxy under it in a systemd-nspawn container)" tests/systemd.sh
step "logging (busybox syslogd restarted, gone, stalled; private /dev/log)" tests/logging.sh
step "packaging (licenses, LIC_FILES_CHKSUM, the pinned sources, cross/pin-source.sh)" tests/packaging.sh
step "static cross builds, every board" tests/cross.sh
step "QEMU smoke test (aarch64 and armv7 in an arm64 guest; tc trap filters on a bridge)" tests/qemu/run.sh

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
