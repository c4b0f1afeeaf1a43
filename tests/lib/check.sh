# shellcheck shell=bash
# shellcheck disable=SC2034 # PASSED, FAILED and FAILURES are read by the scripts that source this
# Bookkeeping shared by the test scripts: `pass TEXT` and `fail TEXT` count and print one check
# ("  ok   TEXT" / "  FAIL TEXT": CHECK_OK and CHECK_FAIL, set after sourcing for another style;
# CHECK_VERBOSE=0 hides the ok lines), `check TEXT CMD...` is pass or fail by CMD's exit status,
# `check_summary` prints "$PASSED passed, $FAILED failed" and is true if nothing failed.
# `build_release` and `missing_binary`: the release binaries under test; `require_ptpproxy`: the
# ptpproxy binary alone. `verdicts`: count a judge's PASS/FAIL lines. `keep_run_dir`: remove a
# run directory unless something failed. `private_netns_run`: the outer half of a test that runs
# inside a network and mount namespace of its own. REPO: the repository.
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

# wait_for SECONDS CMD...: poll CMD every 0.1 s; false if it never succeeded.
wait_for() {
	local n=$(($1 * 10))
	shift
	while ((n-- > 0)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# require_binaries: $PTPPROXY and $PTPLOAD, built here first when unset (build_release); fails the
# run (summary, exit 1) when they do not build or one is not executable.
require_binaries() {
	local missing
	if ! build_release "== building ptpproxy and ptpload (cargo build --release)"; then
		fail "ptpproxy and ptpload build"
		check_summary
		exit 1
	fi
	if missing=$(missing_binary); then
		fail "binary exists: $missing"
		check_summary
		exit 1
	fi
}

# require_ptpproxy [CARGO ARGS...]: $PTPPROXY, or target/release/ptpproxy built here first (`cargo
# build --release` with CARGO ARGS, its last line shown); fails the run (summary, exit 1) when it
# does not build or is not executable.
require_ptpproxy() {
	if [[ -z ${PTPPROXY:-} ]]; then
		PTPPROXY=$REPO/target/release/ptpproxy
		echo "== building ptpproxy (cargo build --release)"
		if ! (cd "$REPO" && timeout 1800 cargo build --release "$@" 2>&1 | tail -n 1); then
			fail "ptpproxy builds (cargo build --release)"
			check_summary
			exit 1
		fi
	fi
	[[ -x $PTPPROXY ]] || {
		fail "ptpproxy binary exists at $PTPPROXY"
		check_summary
		exit 1
	}
}

# verdicts [PREFIX]: count the verdict lines a judge writes on stdin ("PASS TEXT", "FAIL TEXT"),
# each text after PREFIX; "NOTE TEXT" and anything else ("INFO TEXT") is shown.
verdicts() {
	local line prefix=${1:-}
	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "$prefix${line#PASS }" ;;
		"FAIL "*) fail "$prefix${line#FAIL }" ;;
		"NOTE "*) echo "  NOTE $prefix${line#NOTE }" ;;
		*) echo "  ..   $prefix${line#INFO }" ;;
		esac
	done
}

# keep_run_dir KEEP DIR WHAT: remove DIR if every check passed and KEEP (--keep) is not 1, else
# say that WHAT (e.g. "logs and captures") is kept there.
keep_run_dir() {
	if ((FAILED == 0 && $1 == 0)); then
		rm -rf "$2"
	else
		echo "$3 kept in $2"
	fi
}

# private_netns_run NAME PREFIX "PAIRS" TITLE: run this script's inner half (`$0 --inner TMP PFX`)
# as root in a network namespace of its own (PFX: PREFIX and the pid, 9 characters at most, also
# the namespace's name) with a private mount namespace, veth pairs PFX<pair>0/PFX<pair>1 up for
# each of PAIRS; the inner half writes "PASSED FAILED" to TMP/result, which become ours. TMP is a
# new /tmp/ptpproxy-NAME.XXXXXX. At exit the namespace's processes are killed and it is deleted;
# TMP goes too unless something failed or KEEP=1. Prints "TITLE, namespace NS" first and the
# summary last; returns check_summary's status.
private_netns_run() {
	local name=$1 pairs=$3 title=$4 pair rc=0
	PRIVATE_PFX=$2$$
	PRIVATE_PFX=${PRIVATE_PFX:0:9}
	PRIVATE_TMP=$(mktemp -d "/tmp/ptpproxy-$name.XXXXXX")
	trap _private_netns_cleanup EXIT
	trap 'exit 130' INT TERM
	local ns=$PRIVATE_PFX
	ip netns add "$ns"
	for pair in $pairs; do
		ip -n "$ns" link add "${ns}${pair}0" type veth peer name "${ns}${pair}1"
		ip -n "$ns" link set "${ns}${pair}0" up
		ip -n "$ns" link set "${ns}${pair}1" up
	done
	ip -n "$ns" link set lo up
	echo "$title, namespace $ns"
	ip netns exec "$ns" unshare --mount --propagation private "$0" --inner "$PRIVATE_TMP" "$ns" || rc=$?
	if [[ -f $PRIVATE_TMP/result ]]; then
		read -r PASSED FAILED <"$PRIVATE_TMP/result"
	else
		fail "the scenario did not finish (exit $rc)"
	fi
	check_summary
}

_private_netns_cleanup() {
	local p
	if ip netns list 2>/dev/null | grep -qw "$PRIVATE_PFX"; then
		for p in $(ip netns pids "$PRIVATE_PFX" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$PRIVATE_PFX" 2>/dev/null || true
	fi
	if ((${KEEP:-0} == 1 || FAILED > 0)); then
		echo "run directory kept: $PRIVATE_TMP"
	else
		rm -rf "$PRIVATE_TMP"
	fi
}
