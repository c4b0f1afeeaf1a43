#!/usr/bin/env bash
# Fetch what the QEMU guest is made of (a Debian arm64 kernel, its virtio-net modules and
# busybox-static) into a cache under target/qemu/, once. Later runs reuse the cache and need no
# network. Run as root on Debian 12 (bookworm).
#
# apt: a temporary arch-specific list file (deleted on exit, whatever happens), read only by our
# own apt-get calls (Dir::Etc::SourceList), with apt state of our own under target/qemu/apt/
# (lists, caches, locks). The list is deliberately not put in /etc/apt/sources.list.d/: there every
# other apt user on the machine (cross/build.sh, tests/install-deps.sh, CI) would pick it up while
# it exists, and a SIGKILL would leave it behind. So /etc/apt and the machine's package lists are
# neither touched nor locked, no `apt-get update` is needed afterwards to clean up, and
# debian.sources is never edited. dpkg gets no arm64 architecture: `-o APT::Architectures::=...`.
#
# Usage: tests/qemu/fetch.sh [CACHE_DIR]     (default target/qemu/cache)
# Prints the cache directory's contents summary; exit non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=${1:-target/qemu/cache}
stamp=$cache/.complete

# The virtio-net stack as modules, in insmod order (TOOLCHAIN.md: PACKET and VIRTIO are built in,
# there is no modules.dep in the .deb). binfmt_misc is not needed: 32-bit ARM ELF runs via COMPAT.
modules="failover net_failover virtio_net virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci"
# The bridge phase: a Linux bridge and tc's clsact qdisc, flower classifier and gact (trap) action.
modules="$modules llc stp bridge sch_ingress cls_flower act_gact"

# A cache made for another module list is fetched again.
if [ -f "$stamp" ] && grep -qxF "modules: $modules" "$stamp"; then
    echo "fetch: cache $cache is complete ($(head -n1 "$stamp"))"
    exit 0
fi

apt_dir=$PWD/target/qemu/apt
work=$(mktemp -d)
list=$work/arm64.list
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$cache"

echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$list"
apt_opts=(
    -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64"
    -o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root" # the _apt user cannot write into target/ or $work
)
echo "fetch: apt-get update (arm64 list, private state in $apt_dir)"
apt-get -q "${apt_opts[@]}" update >"$work/update.log" 2>&1 || {
    cat "$work/update.log"
    exit 1
}

# The kernel the archive offers today: whatever linux-image-arm64 (the metapackage) depends on,
# e.g. linux-image-6.1.0-41-arm64.
kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64:arm64 |
    sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n1)
[ -n "$kpkg" ] || {
    echo "fetch: no linux-image-6.1.0-*-arm64 behind linux-image-arm64:arm64" >&2
    exit 1
}
echo "fetch: downloading $kpkg:arm64 busybox-static:arm64"
(cd "$work" && apt-get -q "${apt_opts[@]}" download "$kpkg:arm64" busybox-static:arm64) >"$work/download.log" 2>&1 || {
    cat "$work/download.log"
    exit 1
}
rm -f "$list" # done with apt

mkdir -p "$work/k" "$work/bb"
dpkg-deb -x "$work"/linux-image-*_arm64.deb "$work/k"
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/bb"

kver=$(basename "$(find "$work/k/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
rm -rf "$cache/modules"
mkdir -p "$cache/modules"
cp "$work/k/boot/vmlinuz-$kver" "$cache/vmlinuz"
cp "$work/k/boot/config-$kver" "$cache/kernel-config"
for m in $modules; do
    ko=$(find "$work/k/lib/modules/$kver" -name "$m.ko" | head -n1)
    if [ -z "$ko" ]; then
        # Built in on this kernel? Then there is nothing to load.
        if grep -q "^CONFIG_$(echo "$m" | tr '[:lower:]' '[:upper:]')=y" "$cache/kernel-config"; then
            continue
        fi
        echo "fetch: module $m.ko not in $kpkg" >&2
        exit 1
    fi
    cp "$ko" "$cache/modules/"
done
# insmod order, for the guest's /init
for m in $modules; do
    [ -f "$cache/modules/$m.ko" ] && echo "$m"
done >"$cache/modules/order"
# What the guest relies on being built in: AF_PACKET (capture), devtmpfs, gzip initramfs, and
# COMPAT + COMPAT_BINFMT_ELF to run the 32-bit armv7 (lan966x) binary on this arm64 kernel.
for opt in PACKET DEVTMPFS BLK_DEV_INITRD RD_GZIP VIRTIO COMPAT COMPAT_BINFMT_ELF; do
    grep -qx "CONFIG_$opt=y" "$cache/kernel-config" || {
        echo "fetch: $kpkg lacks CONFIG_$opt=y" >&2
        exit 1
    }
done
cp "$work/bb/bin/busybox" "$cache/busybox"
echo "$kver" >"$cache/kernel-version"
{
    (cd "$work" && echo "$kpkg" ./*.deb)
    echo "modules: $modules"
} >"$stamp"
echo "fetch: cache $cache complete: kernel $kver, modules: $(tr '\n' ' ' <"$cache/modules/order")"
