# shellcheck shell=bash
# shellcheck disable=SC2034 # PASSED, FAILED and FAILURES are read by the scripts that source this
# Bookkeeping shared by the test scripts: `pass TEXT` and `fail TEXT` count and print one check
# ("  ok   TEXT" / "  FAIL TEXT"; CHECK_VERBOSE=0 hides the ok lines), the scripts end with
# "$PASSED passed, $FAILED failed"; `print_help SCRIPT` prints a script's header comment.

PASSED=0
FAILED=0
FAILURES=()
CHECK_VERBOSE=${CHECK_VERBOSE:-1}

pass() {
	PASSED=$((PASSED + 1))
	((CHECK_VERBOSE)) && echo "  ok   $*"
	return 0
}

fail() {
	FAILED=$((FAILED + 1))
	FAILURES+=("$*")
	echo "  FAIL $*"
}

# print_help SCRIPT: the comment block at the top of SCRIPT, after the #! line
print_help() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
}
