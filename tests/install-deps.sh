#!/usr/bin/env bash
# Install what the tests and the demo need on a fresh Debian 12 machine (run as root). Idempotent:
# installs only missing packages, runs `apt-get update` only when apt cannot find one of them, and
# is a no-op (one line, well under a second) when everything is there.
#
#   tests/install-deps.sh [--demo]
#
#   --demo   only what tests/demo.sh needs: linuxptp, tcpdump, iproute2, python3, and what building
#            ptpproxy needs (libpcap-dev, pkg-config, gcc, the Rust toolchain)
#
# The Rust toolchain is not a Debian package here (bookworm's rustc 1.63 is older than Cargo.toml's
# rust-version): when no cargo at least that new is on PATH or in ~/.cargo/bin, rustup installs the
# stable toolchain (minimal profile) into ~/.cargo and ~/.rustup. Callers put ~/.cargo/bin on PATH.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEMO=0
case ${1:-} in
--demo) DEMO=1 ;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0
	;;
*)
	echo "install-deps.sh: unknown argument: $1 (see --help)" >&2
	exit 2
	;;
esac

# What the demo needs (and building ptpproxy); the whole suite needs these and the rest.
DEMO_PACKAGES=(linuxptp tcpdump iproute2 python3 procps util-linux libpcap-dev pkg-config gcc libc6-dev)
PACKAGES=("${DEMO_PACKAGES[@]}" tshark shellcheck busybox qemu-user-static qemu-system-arm flex bison
	make file binutils python3-venv valgrind python3-prometheus-client nftables
	systemd systemd-container)
# Only to fetch rustup when no Rust toolchain is there.
RUSTUP_PACKAGES=(curl ca-certificates)
RUSTUP_INIT_URL=https://static.rust-lang.org/rustup/rustup-init.sh
((DEMO)) && PACKAGES=("${DEMO_PACKAGES[@]}")

if [[ $EUID -ne 0 ]]; then
	echo "install-deps.sh: run as root" >&2
	exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

# apt_ensure PKG...: install those of PKG that are missing
apt_ensure() {
	local pkg missing=() updated=0
	for pkg in "$@"; do
		installed "$pkg" || missing+=("$pkg")
	done
	((${#missing[@]} > 0)) || return 0
	echo "install-deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark pulls in wireshark-common, which would ask whether non-root users may capture: no.
	echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
	for pkg in "${missing[@]}"; do
		if ! has_candidate "$pkg"; then
			timeout 600 apt-get update -q
			updated=1
			break
		fi
	done
	if ! timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}"; then
		# stale package lists (404 on download): refresh once and retry
		((updated)) && return 1
		timeout 600 apt-get update -q
		timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	for pkg in "${missing[@]}"; do
		installed "$pkg" || {
			echo "install-deps.sh: $pkg is still missing" >&2
			return 1
		}
	done
	echo "install-deps.sh: installed ${missing[*]}"
}

# The oldest Rust the build accepts: Cargo.toml's rust-version.
rust_min() { sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$HERE/../Cargo.toml" | head -n 1; }

# rust_ok: a cargo at least rust_min is on PATH (after ~/.cargo/bin); its version on stdout
rust_ok() {
	local have min
	have=$(PATH="$HOME/.cargo/bin:$PATH" cargo --version 2>/dev/null | awk '{print $2}') || return 1
	min=$(rust_min)
	[[ -n $have ]] || return 1
	[[ -z $min ]] || [[ $(printf '%s\n%s\n' "$min" "$have" | sort -V | head -n 1) == "$min" ]] || return 1
	echo "$have"
}

rust_ensure() {
	local have
	if have=$(rust_ok); then
		RUST_STATE="cargo $have"
		return 0
	fi
	echo "install-deps.sh: no cargo >= $(rust_min): installing the stable Rust toolchain with rustup"
	if PATH="$HOME/.cargo/bin:$PATH" command -v rustup >/dev/null; then
		PATH="$HOME/.cargo/bin:$PATH" timeout 1800 rustup toolchain install stable --profile minimal
		PATH="$HOME/.cargo/bin:$PATH" rustup default stable
	else
		apt_ensure "${RUSTUP_PACKAGES[@]}"
		# (its closing advice to restart the shell goes: callers put ~/.cargo/bin on PATH)
		curl --proto '=https' --tlsv1.2 -sSf --retry 3 "$RUSTUP_INIT_URL" |
			timeout 1800 sh -s -- -y -q --profile minimal --default-toolchain stable >/dev/null
	fi
	have=$(rust_ok) || {
		echo "install-deps.sh: still no cargo >= $(rust_min) in $HOME/.cargo/bin" >&2
		return 1
	}
	RUST_STATE="cargo $have (installed in $HOME/.cargo/bin)"
}

apt_ensure "${PACKAGES[@]}"
RUST_STATE=
rust_ensure
echo "install-deps.sh: all present: ${PACKAGES[*]}, $RUST_STATE"
