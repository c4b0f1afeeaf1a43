# shellcheck shell=bash
# shellcheck disable=SC2034 # PASSED, FAILED and FAILURES are read by the scripts that source this
# Bookkeeping shared by the test scripts: `pass TEXT` and `fail TEXT` count and print one check
# ("  ok   TEXT" / "  FAIL TEXT": CHECK_OK and CHECK_FAIL, set after sourcing for another style;
# CHECK_VERBOSE=0 hides the ok lines), `check TEXT CMD...` is pass or fail by CMD's exit status,
# `check_summary` prints "$PASSED passed, $FAILED failed" and is true if nothing failed.
# `build_release` and `missing_binary`: the release binaries under test. REPO: the repository.
# Also sources tests/lib/args.sh (command lines, `print_help SCRIPT`).

# shellcheck source=args.sh source-path=SCRIPTDIR disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/args.sh"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PASSED=0
FAILED=0
FAILURES=()
CHECK_VERBOSE=${CHECK_VERBOSE:-1}
CHECK_OK="  ok   "
CHECK_FAIL="  FAIL "

pass() {
	PASSED=$((PASSED + 1))
	((CHECK_VERBOSE)) && echo "$CHECK_OK$*"
	return 0
}

fail() {
	FAILED=$((FAILED + 1))
	FAILURES+=("$*")
	echo "$CHECK_FAIL$*"
}

# check TEXT CMD...: pass TEXT if CMD succeeds, else fail TEXT
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

check_summary() {
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
}

# build_release [NOTE]: unless $PTPPROXY and $PTPLOAD are both given, prints NOTE (if any) and
# builds them in $REPO with `cargo build --release --workspace --bins` (its last line shown; the
# build's exit status returned); the ones not given are the build's (CARGO_TARGET_DIR honoured).
build_release() {
	if [[ -z ${PTPPROXY:-} || -z ${PTPLOAD:-} ]]; then
		[[ -z ${1:-} ]] || echo "$1"
		(cd "$REPO" && timeout 1800 cargo build --release --workspace --bins 2>&1 | tail -n 1) || return
		PTPPROXY=${PTPPROXY:-${CARGO_TARGET_DIR:-$REPO/target}/release/ptpproxy}
		PTPLOAD=${PTPLOAD:-${CARGO_TARGET_DIR:-$REPO/target}/release/ptpload}
	fi
}

# missing_binary: the first of $PTPPROXY and $PTPLOAD that is not an executable (1 if none)
missing_binary() {
	local b
	for b in "$PTPPROXY" "$PTPLOAD"; do
		[[ -x $b ]] || {
			echo "$b"
			return 0
		}
	done
	return 1
}
