#!/usr/bin/env bash
# Install what the tests and the demo need on a fresh Debian 12 machine (run as root). Idempotent:
# installs only missing packages and runs `apt-get update` only when apt cannot find one of them.
#
#   tests/install-deps.sh
#
# The Rust toolchain (cargo) is not a Debian package here: install it with rustup.
set -euo pipefail

PACKAGES=(linuxptp tcpdump tshark iproute2 python3 libpcap-dev pkg-config shellcheck procps
	busybox qemu-user-static qemu-system-arm flex bison make file binutils python3-venv util-linux
	valgrind gcc systemd systemd-container)

if [[ $EUID -ne 0 ]]; then
	echo "install-deps.sh: run as root" >&2
	exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

missing=()
for pkg in "${PACKAGES[@]}"; do
	installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
	echo "install-deps.sh: all present: ${PACKAGES[*]}"
	exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# tshark pulls in wireshark-common, which would ask whether non-root users may capture: no.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections

updated=0
for pkg in "${missing[@]}"; do
	if ! has_candidate "$pkg"; then
		timeout 600 apt-get update -q
		updated=1
		break
	fi
done

apt_install() { timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}"; }
if ! apt_install; then
	# stale package lists (404 on download): refresh once and retry
	((updated)) && exit 1
	timeout 600 apt-get update -q
	apt_install
fi

for pkg in "${missing[@]}"; do
	installed "$pkg" || {
		echo "install-deps.sh: $pkg is still missing" >&2
		exit 1
	}
done
echo "install-deps.sh: done"
