SUMMARY = "Selective PTPv2 multicast relay for embedded Linux switches and routers"
DESCRIPTION = "Relays PTPv2 multicast (L2, UDPv4, UDPv6) between an upstream port facing the \
grandmaster and downstream ports facing up to thousands of clients, steering each Delay_Resp \
to the port of the client that asked instead of flooding it."
SECTION = "net"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE-MIT;md5=73d471e384395ed5fe55a687852058e2 \
                    file://LICENSE-APACHE;md5=22a53954e4e0ec258dfce4391e905dac"

# The source: a pinned commit (cross/pin-source.sh rewrites SRCREV_ptpproxy and the license
# checksums for a commit). Point PTPPROXY_GIT_URI at your repository or mirror in a layer or
# local.conf, e.g.
#   PTPPROXY_GIT_URI = "git://git.example.com/ptpproxy.git;protocol=https;branch=main"
# For development, build a checkout in place instead (local.conf):
#   INHERIT += "externalsrc"
#   EXTERNALSRC:pn-ptpproxy = "/path/to/ptpproxy"
# (externalsrc keeps the crate:// entries below, so the crates are still fetched and checked.)
PTPPROXY_GIT_BRANCH ??= "main"
PTPPROXY_GIT_URI ??= "git://git.example.com/ptpproxy.git;protocol=https;branch=${PTPPROXY_GIT_BRANCH}"
SRC_URI = "${PTPPROXY_GIT_URI};name=ptpproxy;destsuffix=${BP}"
SRCREV_ptpproxy = "716b1c36392d481e5f1ec191258a8c16791fb686"
SRCREV_FORMAT = "ptpproxy"

# The crates of Cargo.lock with their sha256 (regenerate with cross/yocto/update-crates.sh, or
# `bitbake -c update_crates ptpproxy`).
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates pkgconfig systemd update-rc.d

# Cargo.toml says rust-version 1.80: OE-core's Rust is new enough from walnascar (5.2) on; on
# scarthgap (Rust 1.75) use a newer Rust from a mixin layer (meta-lts-mixins).

DEPENDS += "libpcap"

# Board profile (board/<name>.json) that sizes rings and tables at compile time, per machine:
#   PTPPROXY_BOARD:pn-ptpproxy = "lan966x"     (or sparx5, ls1028a, qemu-virt-aarch64, generic)
PTPPROXY_BOARD ??= "generic"
export PTPPROXY_BOARD

# The pcap crate's build script reads only LIBPCAP_LIBDIR and LIBPCAP_VER: without them it
# dlopens the build host's libpcap and silently assumes version 1.9.1.
export LIBPCAP_LIBDIR = "${STAGING_LIBDIR}"

do_compile:prepend() {
	export LIBPCAP_VER="$(pkg-config --modversion libpcap)"
	# On 32-bit targets whose C library uses a 64-bit time_t (musl >= 1.2 always; glibc when
	# OE builds with GLIBC_64BIT_TIME_FLAGS), Rust's libc must agree, or pcap_pkthdr
	# (a struct timeval, then caplen and len) is misread and packet lengths are garbage.
	if [ "${SITEINFO_BITS}" = "32" ]; then
		if [ "${TCLIBC}" = "musl" ]; then
			export RUST_LIBC_UNSTABLE_MUSL_V1_2_3=1
		elif [ -n "${GLIBC_64BIT_TIME_FLAGS}" ]; then
			export RUST_LIBC_UNSTABLE_GNU_TIME_BITS=64
		fi
	fi
}

# The root package (cargo.bbclass passes the root Cargo.toml as --manifest-path): its one binary
# is the daemon. The workspace's development tools (tools/) are packages of their own, not built,
# so cargo_do_install, which installs every executable it finds in the target directory, finds
# only ptpproxy.
do_compile() {
	oe_cargo_build
}

do_install:append() {
	# cargo installs to ${bindir}; a daemon belongs in ${sbindir}.
	install -d ${D}${sbindir}
	mv ${D}${bindir}/ptpproxy ${D}${sbindir}/ptpproxy
	rmdir --ignore-fail-on-non-empty ${D}${bindir}

	# The firmware overlay: configuration and the busybox/sysvinit script.
	install -d ${D}${sysconfdir}/ptpproxy ${D}${INIT_D_DIR}
	install -m 0644 ${S}/rootfs-overlay/etc/ptpproxy/config.json ${D}${sysconfdir}/ptpproxy/config.json
	install -m 0755 ${S}/rootfs-overlay/etc/init.d/ptpproxy ${D}${INIT_D_DIR}/ptpproxy

	# Both are shipped; the systemd class drops the one the distro does not use.
	install -d ${D}${systemd_system_unitdir}
	install -m 0644 ${S}/cross/yocto/files/ptpproxy.service ${D}${systemd_system_unitdir}/ptpproxy.service

	# ptpproxy's licenses, and libpcap's (linked dynamically here, its own package carries it too;
	# shipped so that /usr/share/licenses/ptpproxy/ is the same in every build, static ones included).
	install -d ${D}${datadir}/licenses/ptpproxy
	install -m 0644 ${S}/LICENSE-MIT ${S}/LICENSE-APACHE ${D}${datadir}/licenses/ptpproxy/
	install -m 0644 ${S}/cross/licenses/LICENSE-libpcap ${D}${datadir}/licenses/ptpproxy/LICENSE-libpcap
}

INITSCRIPT_NAME = "ptpproxy"
INITSCRIPT_PARAMS = "defaults 60 20"

SYSTEMD_SERVICE:${PN} = "ptpproxy.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# Kept across upgrades (OE has no default for this).
CONFFILES:${PN} = "${sysconfdir}/ptpproxy/config.json"

FILES:${PN} += "${systemd_system_unitdir}/ptpproxy.service ${datadir}/licenses/ptpproxy"
