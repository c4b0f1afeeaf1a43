# shellcheck shell=bash
# Command lines of the test scripts. A script declares its options, then calls args_parse "$@":
#
#   arg_flag OPTION VAR VALUE              OPTION sets VAR to VALUE
#   arg_value OPTION VAR [MESSAGE [CHECK]] OPTION X sets VAR to X; a missing or empty X stops the
#                                          script with MESSAGE (bash's ${2:?MESSAGE}); CHECK, a
#                                          command, runs right after
#   arg_text OPTION VAR                    OPTION X sets VAR to X, which may be empty
#   arg_list OPTION ARRAY [MESSAGE]        OPTION X appends X to ARRAY (repeatable)
#   arg_positional VAR REGEX               an argument matching REGEX sets VAR
#   args_parse ARGS...                     -h and --help print the script's header comment
#                                          (print_help) and exit 0; anything undeclared prints
#                                          "unknown argument: X (see --help)" and exits 2
#   print_help SCRIPT                      the comment block at the top of SCRIPT, after the #! line

declare -A _ARG_KIND=() _ARG_VAR=() _ARG_VALUE=() _ARG_MESSAGE=() _ARG_CHECK=()
_ARG_POSITIONAL_VAR=
_ARG_POSITIONAL_RE=

_arg_declare() { # KIND OPTION VAR VALUE MESSAGE CHECK
	_ARG_KIND[$2]=$1 _ARG_VAR[$2]=$3 _ARG_VALUE[$2]=$4 _ARG_MESSAGE[$2]=$5 _ARG_CHECK[$2]=$6
}
arg_flag() { _arg_declare flag "$1" "$2" "$3" "" ""; }
arg_value() { _arg_declare value "$1" "$2" "" "${3:-}" "${4:-}"; }
arg_text() { _arg_declare text "$1" "$2" "" "" ""; }
arg_list() { _arg_declare list "$1" "$2" "" "${3:-}" ""; }
arg_positional() { _ARG_POSITIONAL_VAR=$1 _ARG_POSITIONAL_RE=$2; }

args_parse() {
	local opt kind value
	while (($#)); do
		opt=$1 kind=
		[[ -n $opt ]] && kind=${_ARG_KIND[$opt]:-}
		case $kind in
		flag) printf -v "${_ARG_VAR[$opt]}" '%s' "${_ARG_VALUE[$opt]}" ;;
		value | list | text)
			if [[ $kind == text ]]; then
				value=${2?}
			elif [[ -n ${_ARG_MESSAGE[$opt]} ]]; then
				value=${2:?${_ARG_MESSAGE[$opt]}}
			else
				value=${2:?}
			fi
			if [[ $kind == list ]]; then
				eval "${_ARG_VAR[$opt]}+=(\"\$value\")"
			else
				printf -v "${_ARG_VAR[$opt]}" '%s' "$value"
			fi
			[[ -z ${_ARG_CHECK[$opt]} ]] || ${_ARG_CHECK[$opt]}
			shift
			;;
		*)
			case $opt in
			-h | --help)
				print_help "$0"
				exit 0
				;;
			esac
			if [[ -n $_ARG_POSITIONAL_VAR && $opt =~ $_ARG_POSITIONAL_RE ]]; then
				printf -v "$_ARG_POSITIONAL_VAR" '%s' "$opt"
			else
				echo "unknown argument: $opt (see --help)" >&2
				exit 2
			fi
			;;
		esac
		shift
	done
}

print_help() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
}
