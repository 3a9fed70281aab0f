#!/bin/bash
# Install the peers the benchmarks in tests/bench/ compare netlab with (Debian 12).
#   tests/bench/setup-bench-deps.sh        nginx, curl and iperf3 (bench-file.py),
#                                          xinetd and a static libc (bench-message.py),
#                                          atftpd, atftp, nftables, iptables, ethtool
#                                          and libnetfilter-queue-dev (bench-xfer.py)
# Safe to run again: apt is skipped when everything is already installed.
#
# The benchmarks start every peer themselves, from a temporary directory with a
# config of their own, on a free loopback port. So the packages' own services
# must not run: installing nginx would otherwise start the system nginx on port
# 80, and xinetd its system instance. A policy-rc.d that refuses every start
# covers the install (invoke-rc.d and deb-systemd-invoke honour it); afterwards
# the units are stopped and disabled where systemd is running.
set -euo pipefail

PKGS=(nginx-light curl iperf3 xinetd gcc libc6-dev atftpd atftp nftables iptables libnetfilter-queue-dev
      iproute2 ethtool pkg-config)
SERVICES=(nginx iperf3 xinetd atftpd nftables)

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${PKGS[@]}"; do
    # Any nginx flavour will do: keep one the admin already has.
    if [ "$p" = nginx-light ] && { installed nginx || installed nginx-core || installed nginx-full \
            || installed nginx-extras || installed nginx-light; }; then
        continue
    fi
    installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-bench-deps: installing ${missing[*]}"
    policy=/usr/sbin/policy-rc.d
    saved=""
    if [ -e "$policy" ]; then
        saved=$(mktemp)
        $SUDO cp -p "$policy" "$saved"
    fi
    restore_policy() {
        if [ -n "$saved" ]; then
            $SUDO cp -p "$saved" "$policy"
            rm -f "$saved"
        else
            $SUDO rm -f "$policy"
        fi
    }
    trap restore_policy EXIT
    # 101: "action forbidden by policy", so no service is started by the install.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    # iperf3 asks whether to run its daemon; the answer is no.
    echo "iperf3 iperf3/start_daemon boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
    # atftpd asks whether inetd should start it; no: bench-xfer.py runs its own.
    echo "atftpd atftpd/use_inetd boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    restore_policy
    trap - EXIT
fi

# Whatever installed them, the system services must not hold ports or CPU
# while a benchmark runs, nor start at boot. systemctl disable works without a
# running systemd too (it only removes the wants/ links).
if command -v systemctl >/dev/null; then
    now=""; [ -d /run/systemd/system ] && now=--now
    for s in "${SERVICES[@]}"; do
        # atftpd also ships a socket unit on port 69: that one goes too.
        for u in "$s.socket" "$s.service"; do
            if [ -e "/lib/systemd/system/$u" ] || [ -e "/etc/systemd/system/$u" ]; then
                $SUDO systemctl disable $now "$u" >/dev/null 2>&1 || true
            fi
        done
    done
fi
if [ ! -d /run/systemd/system ]; then
    # No systemd: the init scripts' pid files name the daemons (if any) to stop.
    for pidfile in /run/nginx.pid /run/xinetd.pid /run/atftpd.pid; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if [ -d "/proc/$pid" ]; then
                echo "setup-bench-deps: stopping the system daemon of $pidfile (pid $pid)"
                $SUDO kill "$pid" || true
            fi
        fi
    done
fi

for exe in nginx curl iperf3 xinetd atftpd atftp nft iptables ethtool; do
    command -v "$exe" >/dev/null || [ -x "/usr/sbin/$exe" ] || {
        echo "setup-bench-deps: $exe is still missing after the install" >&2
        exit 1
    }
done
echo "setup-bench-deps: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'), $(curl --version | head -1 | cut -d' ' -f1-2), $(iperf3 --version | head -1 | cut -d' ' -f1-2), $(atftp --version 2>&1 | head -1 | cut -d' ' -f1), nft $(nft --version | cut -d' ' -f2)"
