#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for a bounded time (fuzz/README.md).
#
# Usage: tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Installs cargo-fuzz (and the nightly toolchain) if missing, builds the targets, copies the committed
# seeds fuzz/seeds/<target>/ into the working corpus fuzz/corpus/<target>/ (git-ignored, kept between
# runs), runs each target with libFuzzer's -max_total_time, and prints per target the executions,
# exec/s, coverage, corpus size and crashes. A crash leaves its input in fuzz/artifacts/<target>/ and
# fails the run; reproduce it with `cd fuzz && cargo +nightly fuzz run -s none <target> <file>`.
#
# Environment: FUZZ_SANITIZER (default none: the library is #![forbid(unsafe_code)], so AddressSanitizer
# would cost ~5x the executions for nothing; set it to "address" to check anyway), FUZZ_RSS_LIMIT_MB
# (default 2048), FUZZ_TIMEOUT_S (default 30: one input running longer is a failure),
# PTPPROXY_FUZZ_KNOWN (see fuzz/README.md, "Known findings"; empty by default).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
sanitizer=${FUZZ_SANITIZER:-none}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
timeout_s=${FUZZ_TIMEOUT_S:-30}
case $seconds in
'' | *[!0-9]*)
    echo "usage: tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd fuzz
cargo +nightly fuzz build -s "$sanitizer"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The last value libFuzzer's -print_final_stats gave for $1 in log $2.
stat_of() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

passed=0
failed=0
failures=()
for t in "${targets[@]}"; do
    corpus=corpus/$t
    artifacts=artifacts/$t
    log=artifacts/$t.log
    mkdir -p "$corpus" "$artifacts"
    if [ -d "seeds/$t" ]; then
        cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    fi
    stamp=$(mktemp)
    echo "=== $t: ${seconds}s"
    rc=0
    nice cargo +nightly fuzz run -s "$sanitizer" "$t" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_limit" -timeout="$timeout_s" \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    # libFuzzer's last status line: "cov: EDGES ft: FEATURES corp: INPUTS/SIZE".
    status=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1)
    cov=$(sed -E 's/^cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/(.*)$/coverage \1 edges, \2 features, corpus \3 inputs (\4)/' <<<"$status")
    files=$(find "$corpus" -type f | wc -l)
    crashes=$(find "$artifacts" -type f -newer "$stamp" | wc -l)
    echo "$t: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-coverage ?}, $files files, $crashes crashes"
    if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$t")
        echo "--- $t failed (exit $rc); the end of $log:"
        grep -vE '^(#[0-9]+|")' "$log" | tail -n 40
        find "$artifacts" -type f -newer "$stamp" | head -n 5
    fi
    rm -f "$stamp"
done

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
