#!/bin/bash
# Install what netlab needs to build and test on Debian 12, then build it.
#   tests/setup-deps.sh          install build deps, configure and build build/
#   tests/setup-deps.sh --test   also the test deps (pytest, systemd, ...)
# Safe to run again: apt is skipped when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DEPS=(meson ninja-build pkg-config gcc libc6-dev libsystemd-dev libconfig-dev libinih-dev libssl-dev systemd)
# debhelper..cpio: the packaging tier builds the .deb and .rpm and runs lintian;
# bash-completion: the completion is tested with and without it.
# clang..llvm-14: the libFuzzer targets (libclang-rt-14-dev is only a
# Recommends of clang; llvm-14 gives crash reports their file:line).
TEST_DEPS=(python3 python3-pytest systemd util-linux procps iproute2 nftables
           debhelper dpkg-dev fakeroot lintian rpm cpio bash-completion
           clang libclang-rt-14-dev llvm-14)
want=("${BUILD_DEPS[@]}")
[ "${1:-}" = "--test" ] && want+=("${TEST_DEPS[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-deps: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The example config serves /srv/netlab: give it the sample file (the
# packages install the same), unless the admin already has one.
if [ ! -e /srv/netlab ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO install -d -m 0755 /srv/netlab
    $SUDO install -m 0644 conf/srv/source_file.txt /srv/netlab/source_file.txt
fi

# The example config runs netlabd as the system user "netlab" once it has
# bound its ports (user = "netlab"): create it as the packages do, from the
# same sysusers.d file. Only root can, and only root needs it.
if [ "$(id -u)" -eq 0 ] && ! getent passwd netlab >/dev/null; then
    systemd-sysusers "$PWD/systemd/netlab.sysusers"
fi

[ -d build ] || meson setup build
meson compile -C build
