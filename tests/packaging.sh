#!/usr/bin/env bash
# tests/packaging.sh: the packaging metadata against the repository, and cross/pin-source.sh.
#   - LICENSE-MIT and LICENSE-APACHE (Cargo.toml's "MIT OR Apache-2.0"); the Yocto recipe's
#     LIC_FILES_CHKSUM are their md5; OpenWrt's PKG_LICENSE_FILES exist; every file the OpenWrt
#     package and the Yocto recipe install from the source tree exists.
#   - The committed pins: the OpenWrt PKG_SOURCE_VERSION and the Yocto SRCREV are one commit of
#     this repository (no AUTOREV), and PKG_MIRROR_HASH is the hash of that commit's tarball,
#     recomputed (cross/pin-source.sh --print).
#   - cross/pin-source.sh in a throwaway clone with a new commit and --url: both files pinned to
#     it, the hash reproducible, and the tarball is exactly the commit's tree (compared with
#     `git archive`), Cargo.lock and the licenses included.
# Needs git, python3; no root, no network.
# shellcheck disable=SC2016 # conditions in '...' are expanded by eval when they run; sed patterns are literal
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/check.sh source-path=SCRIPTDIR disable=SC1091
source tests/lib/check.sh
MAKEFILE=cross/openwrt/ptpproxy/Makefile
RECIPE=$(ls cross/yocto/ptpproxy_*.bb)
tmp=$(mktemp -d /tmp/ptpproxy-packaging.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

mk() { sed -n "s/^$1:=//p" "${2:-$MAKEFILE}"; }                 # mk VAR: an OpenWrt variable
bb() { sed -n "s/^$1 = \"\\(.*\\)\"$/\\1/p" "${2:-$RECIPE}"; } # bb VAR: a recipe assignment
md5() { md5sum "$1" | cut -d' ' -f1; }

echo "== licenses"
check "Cargo.toml: license = \"MIT OR Apache-2.0\"" grep -qx 'license = "MIT OR Apache-2.0"' Cargo.toml
check "LICENSE-MIT: the MIT text, copyright \"The ptpproxy authors\"" \
    eval 'grep -qx "Copyright (c) The ptpproxy authors" LICENSE-MIT && grep -q "Permission is hereby granted, free of charge" LICENSE-MIT'
check "LICENSE-APACHE: the Apache License 2.0 text" \
    eval 'grep -q "Apache License" LICENSE-APACHE && grep -q "Version 2.0, January 2004" LICENSE-APACHE && grep -q "END OF TERMS AND CONDITIONS" LICENSE-APACHE'
check "cross/licenses/LICENSE-libpcap: libpcap's BSD notice" \
    grep -q "Redistribution and use in source and binary forms" cross/licenses/LICENSE-libpcap
check "yocto: LICENSE = \"MIT | Apache-2.0\"" [ "$(bb LICENSE)" = "MIT | Apache-2.0" ]
check "yocto: LIC_FILES_CHKSUM LICENSE-MIT md5 $(md5 LICENSE-MIT)" grep -q "file://LICENSE-MIT;md5=$(md5 LICENSE-MIT)" "$RECIPE"
check "yocto: LIC_FILES_CHKSUM LICENSE-APACHE md5 $(md5 LICENSE-APACHE)" grep -q "file://LICENSE-APACHE;md5=$(md5 LICENSE-APACHE)" "$RECIPE"
files=$(mk PKG_LICENSE_FILES)
check "openwrt: PKG_LICENSE_FILES ($files) exist" eval 'for f in $files; do [ -f "$f" ] || exit 1; done'
# What the install steps take from the source tree.
mapfile -t from_owrt < <(grep -o '\$(PKG_BUILD_DIR)/[^ ]*' "$MAKEFILE" | sed 's|^$(PKG_BUILD_DIR)/||' | sort -u)
mapfile -t from_bb < <(grep -o '\${S}/[^ ]*' "$RECIPE" | sed 's|^${S}/||' | sort -u)
missing=()
for f in "${from_owrt[@]}" "${from_bb[@]}"; do [ -f "$f" ] || missing+=("$f"); done
check "every file the packages install from the tree exists (${#from_owrt[@]} OpenWrt, ${#from_bb[@]} Yocto)${missing[*]:+: missing ${missing[*]}}" \
    [ ${#missing[@]} -eq 0 ]
for f in LICENSE-MIT LICENSE-APACHE cross/licenses/LICENSE-libpcap; do
    check "$f installed by OpenWrt and Yocto into /usr/share/licenses/ptpproxy/" \
        eval 'printf "%s\n" "${from_owrt[@]}" | grep -qx "$f" && printf "%s\n" "${from_bb[@]}" | grep -qx "$f"'
done

echo "== the committed pins"
commit=$(mk PKG_SOURCE_VERSION)
check "openwrt PKG_SOURCE_VERSION = yocto SRCREV_ptpproxy = $commit" [ "$commit" = "$(bb SRCREV_ptpproxy)" ]
check "yocto: no AUTOREV" eval '! grep -q AUTOREV "$RECIPE"'
if git cat-file -e "$commit^{commit}" 2>/dev/null; then
    pass "$commit is a commit of this repository ($(git log -1 --format='%cd, %s' --date=short "$commit" | cut -c1-60))"
    out=$(cross/pin-source.sh --print "$commit" 2>&1) || true
    check "PKG_MIRROR_HASH $(mk PKG_MIRROR_HASH) is the hash of that commit's tarball (recomputed: ${out#* })" \
        [ "$out" = "$commit $(mk PKG_MIRROR_HASH)" ]
    check "PKG_VERSION and PKG_SOURCE follow the commit ($(mk PKG_VERSION), $(mk PKG_SOURCE))" \
        eval '[ "$(mk PKG_VERSION)" = "$(git show "$commit:Cargo.toml" | sed -n "s/^version = \"\(.*\)\"$/\1/p" | head -n 1)" ] &&
            [ "$(mk PKG_SOURCE)" = "ptpproxy-$(mk PKG_VERSION)-${commit:0:8}.tar.gz" ]'
else
    fail "$commit (the pinned commit) is not in this repository: run cross/pin-source.sh and commit"
fi

echo "== cross/pin-source.sh in a throwaway clone"
git clone -q "$PWD" "$tmp/repo"
(
    cd "$tmp/repo"
    echo "pin test" >pin-test.txt
    git add pin-test.txt
    git -c user.name=test -c user.email=test@example.org commit -qm "pin test"
) >/dev/null
new=$(git -C "$tmp/repo" rev-parse HEAD)
out=$("$tmp/repo/cross/pin-source.sh" --url https://example.org/mirror/ptpproxy.git 2>&1) || true
while IFS= read -r line; do echo "    $line"; done <<<"$out"
check "openwrt: PKG_SOURCE_VERSION = the new commit $new" [ "$(mk PKG_SOURCE_VERSION "$tmp/repo/$MAKEFILE")" = "$new" ]
check "yocto: SRCREV_ptpproxy = the new commit" [ "$(bb SRCREV_ptpproxy "$tmp/repo/$RECIPE")" = "$new" ]
check "--url: openwrt PKG_SOURCE_URL, yocto PTPPROXY_GIT_URI" \
    eval 'grep -qx "PKG_SOURCE_URL:=\$(or \$(PTPPROXY_GIT_URL),https://example.org/mirror/ptpproxy.git)" "$tmp/repo/$MAKEFILE" &&
        grep -q "^PTPPROXY_GIT_URI ??= \"git://example.org/mirror/ptpproxy.git;protocol=https;branch=\${PTPPROXY_GIT_BRANCH}\"" "$tmp/repo/$RECIPE"'
hash=$(mk PKG_MIRROR_HASH "$tmp/repo/$MAKEFILE")
again=$("$tmp/repo/cross/pin-source.sh" --print 2>&1) || true
check "the hash is reproducible ($hash)" [ "$again" = "$new $hash" ]
check "the pin script changed only the pin lines" \
    eval '[ "$(git -C "$tmp/repo" diff --numstat | awk "{a += \$1} END {print a}")" -le 9 ]'

# The tarball, as the script makes it, against git's own export of the commit.
version=$(mk PKG_VERSION "$tmp/repo/$MAKEFILE")
mkdir -p "$tmp/pinned" "$tmp/archive"
(
    cd "$tmp/repo"
    # the same steps as the script, kept here to look inside the tarball
    git -c advice.detachedHead=false clone -q . "$tmp/dl/ptpproxy-$version"
    rm -rf "$tmp/dl/ptpproxy-$version/.git"
    tar --numeric-owner --owner=0 --group=0 --mode=a-s --sort=name \
        --mtime="@$(git log -1 --format=%ct)" -C "$tmp/dl" -c "ptpproxy-$version" | gzip -nc >"$tmp/pinned.tar.gz"
    git archive --prefix="ptpproxy-$version/" HEAD | tar -x -C "$tmp/archive"
)
check "the tarball's sha256 is PKG_MIRROR_HASH" [ "$(sha256sum "$tmp/pinned.tar.gz" | cut -d' ' -f1)" = "$hash" ]
tar -xzf "$tmp/pinned.tar.gz" -C "$tmp/pinned"
check "the tarball holds exactly the commit's tree (diff -r against git archive)" \
    diff -r "$tmp/pinned/ptpproxy-$version" "$tmp/archive/ptpproxy-$version"
check "the tarball holds Cargo.lock (cargo install --locked) and the license files" \
    eval 'for f in Cargo.lock LICENSE-MIT LICENSE-APACHE cross/licenses/LICENSE-libpcap; do [ -f "$tmp/pinned/ptpproxy-$version/$f" ] || exit 1; done'
check "its entries are owned by 0:0, one top directory ptpproxy-$version" \
    eval '[ -z "$(tar -tvzf "$tmp/pinned.tar.gz" | awk "\$2 != \"0/0\"")" ] &&
        [ "$(tar -tzf "$tmp/pinned.tar.gz" | cut -d/ -f1 | sort -u)" = "ptpproxy-$version" ]'

check_summary
