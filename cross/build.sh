#!/usr/bin/env bash
# cross/build.sh [--probe] BOARD... | all
#
# Builds target/<board>/ptpproxy: a stripped, fully static musl binary for the target triple named
# in board/<board>.json, linked against a static libpcap built here from Debian's source package;
# and target/<board>/ptpproxy-<version>-<board>.tar.gz (unpacked in target/<board>/rootfs/): the
# binary as usr/sbin/ptpproxy, rootfs-overlay/ (configuration, init script), and the licenses in
# usr/share/licenses/ptpproxy/ (ptpproxy's, and libpcap's: it is linked in).
# Installs what a fresh Debian 12 machine lacks (flex, bison, python3-venv, the Rust target or a
# nightly with rust-src for armv7, ziglang + cargo-zigbuild from PyPI in a venv), caches the
# libpcap build under target/cross/ and is idempotent: a second run only re-runs cargo.
#
# Environment:
#   LIBPCAP_SRC=/path/libpcap-X.tar.gz  bring your own libpcap tarball instead of Debian's
#   LIBPCAP_SHA256=<hex>                expected sha256 of that tarball (default: the pinned
#                                       Debian 1.10.3 .orig; a mismatch is an error)
#   PTPPROXY_CACHE=DIR                  downloads (tarball, venv); default ~/.cache/ptpproxy-cross
#   CARGO_TARGET_DIR is not honoured: cargo builds in target/cross/cargo/<target triple>.
#
# --probe builds target/<board>/pcapprobe from cross/pcapprobe instead: a pcap file reader built
# with exactly the same toolchain settings, which tests/cross.sh runs on frames of known length
# and timestamp (the armv7 time64 pitfall shows there as caplen = microseconds, len = 0).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

LIBPCAP_DEB_VERSION=1.10.3-1
LIBPCAP_ORIG=libpcap_1.10.3.orig.tar.gz
LIBPCAP_PINNED_SHA256=2a8885c403516cf7b0933ed4b14d6caa30e02052489ebd414dc75ac52e7559e6
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1

CACHE=${PTPPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ptpproxy-cross}
WORK=$ROOT/target/cross
VENV=$CACHE/venv-zig$ZIGLANG_VERSION-zigbuild$CARGO_ZIGBUILD_VERSION

[ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH
export PATH

log() { printf '>>> %s\n' "$*" >&2; }
die() {
    printf 'cross/build.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    echo "usage: cross/build.sh [--probe] BOARD... | all" >&2
    echo "  --probe: build target/<board>/pcapprobe (cross/pcapprobe) instead, the same way" >&2
    echo "boards: $(all_boards | tr '\n' ' ')" >&2
    exit 64
}

all_boards() {
    local f
    for f in board/*.json; do basename "$f" .json; done
}

# board_field BOARD KEY: one string field of board/BOARD.json.
board_field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "board/$1.json" "$2"
}

# ---------------------------------------------------------------- tools a fresh machine lacks

apt_updated=
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}: run as root or install them"
    log "apt-get install ${missing[*]}"
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_host_tools() {
    local need=()
    command -v flex >/dev/null || need+=(flex)
    command -v bison >/dev/null || need+=(bison)
    command -v make >/dev/null || need+=(make)
    command -v python3 >/dev/null || need+=(python3)
    command -v flock >/dev/null || need+=(util-linux)
    [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    command -v rustup >/dev/null || die "rustup not found (install Rust with rustup first)"
}

# ziglang (a C cross compiler and musl for every target) and cargo-zigbuild, pinned, in a venv.
ensure_zig() {
    mkdir -p "$CACHE"
    (
        flock 9
        if [ ! -x "$VENV/bin/zig" ] || [ ! -x "$VENV/bin/cargo-zigbuild" ]; then
            log "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $VENV"
            rm -rf "$VENV"
            python3 -m venv "$VENV"
            "$VENV/bin/pip" install -q --disable-pip-version-check \
                "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
            # The ziglang wheel only offers `python -m ziglang`: put its zig binary on PATH.
            local zig
            zig=$("$VENV/bin/python" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
            ln -sf "$zig" "$VENV/bin/zig"
        fi
    ) 9>"$CACHE/.lock"
    PATH=$VENV/bin:$PATH
    export PATH
}

# ensure_rust TRIPLE: stable rust-std where it can be downloaded; nightly + rust-src for
# -Zbuild-std where it cannot (armv7-unknown-linux-musleabihf).
ensure_rust() {
    case $1 in
    armv7-*)
        if ! rustup run nightly rustc --version >/dev/null 2>&1; then
            log "rustup toolchain install nightly"
            rustup toolchain install nightly --profile minimal --component rust-src
        fi
        if [ ! -d "$(rustup run nightly rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
            log "rustup component add rust-src (nightly)"
            rustup component add rust-src --toolchain nightly
        fi
        ;;
    *)
        if ! rustup target list --installed | grep -qx "$1"; then
            log "rustup target add $1"
            rustup target add "$1"
        fi
        ;;
    esac
}

# ---------------------------------------------------------------- libpcap source and build

# Prints the path of a verified libpcap tarball.
libpcap_tarball() {
    local want=${LIBPCAP_SHA256:-$LIBPCAP_PINNED_SHA256} tarball got
    if [ -n "${LIBPCAP_SRC:-}" ]; then
        tarball=$LIBPCAP_SRC
        [ -f "$tarball" ] || die "LIBPCAP_SRC=$tarball: no such file"
    else
        tarball=$CACHE/src/$LIBPCAP_ORIG
        if [ ! -f "$tarball" ]; then
            fetch_debian_source "$CACHE/src"
        fi
    fi
    got=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        die "$tarball: sha256 $got, expected $want (set LIBPCAP_SHA256 for another tarball)"
    fi
    echo "$tarball"
}

# Debian's libpcap source package through apt, with a private source list and list directory:
# neither /etc/apt nor the system's package lists are touched. apt checks the Release
# signature and the files' hashes; the caller then checks the pinned sha256.
fetch_debian_source() {
    local dest=$1 tmp
    command -v apt-get >/dev/null || die "no apt-get: download $LIBPCAP_ORIG yourself and set LIBPCAP_SRC"
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/dl" "$dest"
    echo 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' \
        >"$tmp/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=-"
        -o "Dir::State::Lists=$tmp/lists" -o "APT::Sandbox::User=root" -qq)
    log "apt-get source --download-only libpcap=$LIBPCAP_DEB_VERSION"
    if ! apt-get "${opts[@]}" update ||
        ! (cd "$tmp/dl" && apt-get "${opts[@]}" source --download-only "libpcap=$LIBPCAP_DEB_VERSION"); then
        rm -rf "$tmp"
        die "could not download Debian's libpcap source package"
    fi
    [ -f "$tmp/dl/$LIBPCAP_ORIG" ] || { rm -rf "$tmp"; die "apt-get source gave no $LIBPCAP_ORIG"; }
    mv "$tmp/dl/$LIBPCAP_ORIG" "$dest/$LIBPCAP_ORIG.part"
    mv "$dest/$LIBPCAP_ORIG.part" "$dest/$LIBPCAP_ORIG"
    rm -rf "$tmp"
}

# zig_target RUST_TRIPLE: sets ZIG_TRIPLE and ZIG_CFLAGS.
zig_target() {
    ZIG_CFLAGS="-Os -ffunction-sections -fdata-sections"
    case $1 in
    x86_64-unknown-linux-musl) ZIG_TRIPLE=x86_64-linux-musl ;;
    aarch64-unknown-linux-musl) ZIG_TRIPLE=aarch64-linux-musl ;;
    armv7-unknown-linux-musleabihf)
        ZIG_TRIPLE=arm-linux-musleabihf
        # Rust's armv7 musleabihf target: ARMv7-A, VFPv3-D32, Thumb-2, no NEON.
        ZIG_CFLAGS="$ZIG_CFLAGS -mcpu=generic+v7a+vfp3-d32+thumb2-neon"
        ;;
    *) die "target $1: no zig triple known (add it to zig_target in cross/build.sh)" ;;
    esac
}

# build_libpcap TARBALL: sets LIBPCAP_LIBDIR (holding only libpcap.a), LIBPCAP_VER and
# LIBPCAP_LICENSE (the source's LICENSE, shipped with every binary that links it).
build_libpcap() {
    local tarball=$1 sha dir stamp want
    sha=$(sha256sum "$tarball" | cut -d' ' -f1)
    dir=$WORK/libpcap-${sha:0:12}/$ZIG_TRIPLE
    stamp="$ZIG_TRIPLE|$ZIG_CFLAGS|zig $ZIGLANG_VERSION"
    LIBPCAP_LIBDIR=$dir/lib
    mkdir -p "$dir"
    (
        flock 9
        if [ -f "$dir/lib/libpcap.a" ] && [ -f "$dir/LICENSE" ] &&
            [ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ]; then
            exit 0
        fi
        log "building static libpcap for $ZIG_TRIPLE in $dir"
        rm -rf "${dir:?}/src" "${dir:?}/lib" "${dir:?}/bin" "${dir:?}/stamp"
        mkdir -p "$dir/src" "$dir/lib" "$dir/bin"
        tar -xzf "$tarball" -C "$dir/src" --strip-components=1
        # One-word CC/AR/RANLIB: autoconf and libtool split on spaces.
        printf '#!/bin/sh\nexec zig cc -target %s "$@"\n' "$ZIG_TRIPLE" >"$dir/bin/cc"
        printf '#!/bin/sh\nexec zig ar "$@"\n' >"$dir/bin/ar"
        printf '#!/bin/sh\nexec zig ranlib "$@"\n' >"$dir/bin/ranlib"
        chmod +x "$dir/bin/cc" "$dir/bin/ar" "$dir/bin/ranlib"
        (
            cd "$dir/src"
            CC=$dir/bin/cc AR=$dir/bin/ar RANLIB=$dir/bin/ranlib CFLAGS=$ZIG_CFLAGS \
                ./configure --host="$ZIG_TRIPLE" --disable-shared --with-pcap=linux \
                --without-libnl --disable-dbus --disable-rdma --disable-bluetooth --disable-usb \
                --disable-netmap --disable-remote --without-dag --without-septel --without-snf \
                --without-turbocap --without-dpdk >"$dir/configure.log" 2>&1 ||
                { tail -30 "$dir/configure.log" >&2; exit 1; }
            make -j"$(nproc)" libpcap.a >"$dir/make.log" 2>&1 ||
                { tail -30 "$dir/make.log" >&2; exit 1; }
        )
        cp "$dir/src/libpcap.a" "$dir/lib/libpcap.a"
        cp "$dir/src/VERSION" "$dir/VERSION"
        cp "$dir/src/LICENSE" "$dir/LICENSE"
        echo "$stamp" >"$dir/stamp"
    ) 9>"$dir/.lock"
    want=$(cat "$dir/VERSION")
    LIBPCAP_VER=${want%%[!0-9.]*}
    LIBPCAP_LICENSE=$dir/LICENSE
}

# ---------------------------------------------------------------- the board's binary

# cargo_build BOARD TARGET TARGET_DIR [cargo args...]: cargo zigbuild --release for TARGET with the
# board's profile, the static libpcap, and the armv7 settings.
cargo_build() {
    local board=$1 target=$2 cargo_dir=$3
    shift 3
    local flags_var cargo=(cargo zigbuild) rustflags=""
    flags_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
    case $target in
    armv7-*)
        # No downloadable rust-std: build std from source with nightly. zig provides crt1.o
        # (Rust's self-contained copy is absent), and musl >= 1.2 uses a 64-bit time_t on
        # 32-bit targets: libc (ours and std's) must agree with zig's musl, or every struct with
        # a time_t (pcap_pkthdr, timespec) is misread.
        cargo=(cargo +nightly zigbuild "-Zbuild-std=std,panic_abort")
        rustflags="-C link-self-contained=no --cfg libc_unstable_musl_v1_2"
        export RUST_LIBC_UNSTABLE_MUSL_V1_2_3=1
        ;;
    *)
        unset RUST_LIBC_UNSTABLE_MUSL_V1_2_3
        ;;
    esac
    env PTPPROXY_BOARD="$board" LIBPCAP_LIBDIR="$LIBPCAP_LIBDIR" LIBPCAP_VER="$LIBPCAP_VER" \
        PKG_CONFIG_ALLOW_CROSS=0 PKG_CONFIG_PATH=/nonexistent PKG_CONFIG_LIBDIR=/nonexistent \
        CARGO_TARGET_DIR="$cargo_dir" "$flags_var=$rustflags" \
        "${cargo[@]}" --release --locked --target "$target" "$@"
    if [ "${target%%-*}" = armv7 ]; then
        check_time64 "$cargo_dir"
    fi
}

build_board() {
    local board=$1 target start out cargo_dir
    target=$(board_field "$board" target)
    [ "$(board_field "$board" name)" = "$board" ] || die "board/$board.json: \"name\" is not \"$board\""
    start=$(date +%s)
    log "board $board: $target"

    ensure_rust "$target"
    zig_target "$target"
    local tarball
    tarball=$(libpcap_tarball) # a failed check exits here (set -e), not in a subshell only
    build_libpcap "$tarball"

    # One cargo directory per target triple, shared by the boards of that triple and the probe:
    # dependencies (and armv7's std) are built once; a board switch rebuilds only ptpproxy itself
    # (build.rs reruns when PTPPROXY_BOARD changes). The lock keeps build and copy together when
    # two builds for the same triple run at once.
    cargo_dir=$ROOT/target/cross/cargo/$target
    mkdir -p "$cargo_dir" "$ROOT/target/$board"
    local lock
    exec {lock}>"$cargo_dir.lock"
    flock "$lock"
    if [ -n "$PROBE" ]; then
        # The toolchain check: a tiny reader of pcap files (cross/pcapprobe) built exactly like
        # ptpproxy; tests/cross.sh runs it on frames of known length and timestamp.
        log "cargo build (pcapprobe for $target)"
        cargo_build "$board" "$target" "$cargo_dir" --manifest-path "$ROOT/cross/pcapprobe/Cargo.toml"
        out=$ROOT/target/$board/pcapprobe
        cp "$cargo_dir/$target/release/pcapprobe" "$out.tmp"
    else
        log "cargo build ($board, libpcap $LIBPCAP_VER static from $LIBPCAP_LIBDIR)"
        # The root package (cargo runs in $ROOT): its one binary is the daemon. The workspace's
        # development tools (tools/) are packages of their own and not built here.
        cargo_build "$board" "$target" "$cargo_dir"
        out=$ROOT/target/$board/ptpproxy
        cp "$cargo_dir/$target/release/ptpproxy" "$out.tmp"
    fi
    mv "$out.tmp" "$out"
    exec {lock}>&-
    [ -n "$PROBE" ] || package_board "$board"
    log "board $board: $out, $(stat -c %s "$out") bytes, $(($(date +%s) - start)) s"
    SIZES+=("$board${PROBE:+/pcapprobe} $target $(stat -c %s "$out")")
}

# package_board BOARD: target/BOARD/rootfs/, what a firmware image gets at / (the binary, the
# overlay's configuration and init scripts, the licenses), and the same as
# target/BOARD/ptpproxy-<version>-BOARD.tar.gz, reproducible: sorted, owned by root, dated by the
# last commit (or SOURCE_DATE_EPOCH).
package_board() {
    local board=$1 version stage tarball epoch lic
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
    stage=$ROOT/target/$board/rootfs
    tarball=$ROOT/target/$board/ptpproxy-$version-$board.tar.gz
    lic=$stage/usr/share/licenses/ptpproxy
    rm -rf "$stage"
    mkdir -p "$stage"
    cp -R rootfs-overlay/. "$stage/"
    install -D -m 0755 "$ROOT/target/$board/ptpproxy" "$stage/usr/sbin/ptpproxy"
    install -D -m 0644 LICENSE-MIT "$lic/LICENSE-MIT"
    install -D -m 0644 LICENSE-APACHE "$lic/LICENSE-APACHE"
    install -D -m 0644 "$LIBPCAP_LICENSE" "$lic/LICENSE-libpcap"
    chmod -R u+w,go-w,a+rX "$stage"
    epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -cf - . |
        gzip -9n >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    log "board $board: $tarball ($(tar -tzf "$tarball" | grep -vc '/$') files)"
}

# Every libc crate built for armv7 (std's and ours) must have enabled musl's 64-bit time_t.
check_time64() {
    local f n=0
    for f in "$1"/*/release/build/libc-*/output; do
        [ -f "$f" ] || continue
        grep -q '^cargo:rustc-cfg=musl32_time64$' "$f" || die "$f: libc built without 64-bit time_t (RUST_LIBC_UNSTABLE_MUSL_V1_2_3)"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "no libc build script output found under $1 to check time64"
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || usage
boards=()
PROBE=
for a in "$@"; do
    case $a in
    -h | --help) usage ;;
    --probe) PROBE=1 ;;
    all) mapfile -t -O "${#boards[@]}" boards < <(all_boards) ;;
    *) boards+=("$a") ;;
    esac
done
for b in "${boards[@]}"; do
    [ -f "board/$b.json" ] || die "no board profile board/$b.json (boards: $(all_boards | tr '\n' ' '))"
done

ensure_host_tools
ensure_zig
SIZES=()
for b in "${boards[@]}"; do
    build_board "$b"
done

echo
printf '%-20s %-32s %10s\n' board target bytes
for s in "${SIZES[@]}"; do
    # shellcheck disable=SC2086 # three words by construction
    printf '%-20s %-32s %10s\n' $s
done
