#!/usr/bin/env bash
# cross/pin-source.sh [--url URL] [--print] [COMMIT]: pins the OpenWrt package and the Yocto recipe
# to COMMIT (default HEAD) of this repository:
#   cross/openwrt/ptpproxy/Makefile  PKG_VERSION (Cargo.toml's at COMMIT), PKG_SOURCE_VERSION,
#                                    PKG_SOURCE_DATE, PKG_SOURCE, PKG_MIRROR_HASH
#   cross/yocto/ptpproxy_*.bb        SRCREV_ptpproxy, LIC_FILES_CHKSUM (md5 of the license files)
# and, with --url (an https:// or git:// repository URL), the source URL of both.
#
# PKG_MIRROR_HASH is the sha256 of the tarball OpenWrt's git download method makes of COMMIT:
# clone, checkout, submodules, .git removed, then `tar --numeric-owner --owner=0 --group=0
# --mode=a-s --sort=name --mtime=@<commit time>` of the directory PKG_NAME-PKG_VERSION, and
# `gzip -nc` (PKG_SOURCE ends in .tar.gz: gzip's output does not change between versions, as xz's
# and zstd's may). A buildroot whose git method packs differently reports a mismatch and falls back
# to its own clone; `make package/ptpproxy/check FIXUP=1` then writes its hash.
#
# --print: print "COMMIT HASH" and change nothing. The commit must be reachable from a branch (it
# is cloned from this repository). Run it after the commit to release, then commit the result.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MAKEFILE=cross/openwrt/ptpproxy/Makefile
RECIPE=$(ls cross/yocto/ptpproxy_*.bb)

die() {
    echo "cross/pin-source.sh: $*" >&2
    exit 1
}

url=''
print=0
rev=HEAD
while [ $# -gt 0 ]; do
    case $1 in
    --url)
        url=${2:?--url needs a URL}
        shift
        ;;
    --print) print=1 ;;
    -h | --help)
        sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"
        exit 0
        ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) rev=$1 ;;
    esac
    shift
done

commit=$(git rev-parse --verify "$rev^{commit}") || die "$rev: not a commit"
version=$(git show "$commit:Cargo.toml" | sed -n 's/^version = "\(.*\)"$/\1/p' | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml at $commit"
epoch=$(git log -1 --format=%ct "$commit")
date=$(git log -1 --format=%cd --date=format:%Y-%m-%d "$commit")
subdir=ptpproxy-$version
file=ptpproxy-$version-${commit:0:8}.tar.gz

# OpenWrt's git download method, step by step (include/download.mk, DownloadMethod/rawgit).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
    umask 022
    cd "$tmp"
    git clone -q "$ROOT" "$subdir" 2>"$tmp/clone.log" || { cat "$tmp/clone.log" >&2; exit 1; }
    cd "$subdir"
    git -c advice.detachedHead=false checkout -q "$commit" ||
        { echo "cross/pin-source.sh: $commit is on no branch (clone cannot check it out)" >&2; exit 1; }
    git submodule -q update --init --recursive
    cd ..
    rm -rf "$subdir/.git"
    tar --numeric-owner --owner=0 --group=0 --mode=a-s --sort=name --mtime="@$epoch" -c "$subdir" |
        gzip -nc >"$file"
)
hash=$(sha256sum "$tmp/$file" | cut -d' ' -f1)

if ((print)); then
    echo "$commit $hash"
    exit 0
fi

md5_at() { git show "$commit:$1" | md5sum | cut -d' ' -f1; }
mit=$(md5_at LICENSE-MIT) || die "no LICENSE-MIT at $commit"
apache=$(md5_at LICENSE-APACHE) || die "no LICENSE-APACHE at $commit"

sed -i -e "s/^PKG_VERSION:=.*/PKG_VERSION:=$version/" \
    -e "s/^PKG_SOURCE_VERSION:=.*/PKG_SOURCE_VERSION:=$commit/" \
    -e "s/^PKG_SOURCE_DATE:=.*/PKG_SOURCE_DATE:=$date/" \
    -e "s/^PKG_SOURCE:=.*/PKG_SOURCE:=$file/" \
    -e "s/^PKG_MIRROR_HASH:=.*/PKG_MIRROR_HASH:=$hash/" "$MAKEFILE"
sed -i -e "s/^SRCREV_ptpproxy = .*/SRCREV_ptpproxy = \"$commit\"/" \
    -e "s/file:\/\/LICENSE-MIT;md5=[0-9a-f]*/file:\/\/LICENSE-MIT;md5=$mit/" \
    -e "s/file:\/\/LICENSE-APACHE;md5=[0-9a-f]*/file:\/\/LICENSE-APACHE;md5=$apache/" "$RECIPE"
if [ -n "$url" ]; then
    case $url in
    https://* | http://*) yocto="git://${url#*://};protocol=${url%%://*}" ;;
    git://*) yocto=$url ;;
    *) die "--url $url: give an https://, http:// or git:// URL" ;;
    esac
    sed -i "s|^PKG_SOURCE_URL:=.*|PKG_SOURCE_URL:=\$(or \$(PTPPROXY_GIT_URL),$url)|" "$MAKEFILE"
    sed -i "s|^PTPPROXY_GIT_URI ??= \"[^;\"]*\(;[^\"]*\)\{0,1\}\"|PTPPROXY_GIT_URI ??= \"$yocto;branch=\${PTPPROXY_GIT_BRANCH}\"|" "$RECIPE"
fi
if ! grep -q "^PKG_SOURCE_VERSION:=$commit\$" "$MAKEFILE" || ! grep -q "^PKG_MIRROR_HASH:=$hash\$" "$MAKEFILE"; then
    die "$MAKEFILE: the PKG_SOURCE_* lines were not rewritten"
fi
grep -q "^SRCREV_ptpproxy = \"$commit\"\$" "$RECIPE" || die "$RECIPE: SRCREV_ptpproxy was not rewritten"
echo "pinned ptpproxy $version at $commit ($date)"
echo "  $MAKEFILE: $file, PKG_MIRROR_HASH $hash"
echo "  $RECIPE: SRCREV_ptpproxy, LICENSE-MIT md5 $mit, LICENSE-APACHE md5 $apache"
