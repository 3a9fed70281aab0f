#!/bin/sh
# nsboot.sh UNITDIR -- PID-1 pre-exec script for the sysbox test harness.
#
# WHAT: runs as PID 1 of a fresh PID + mount (+uts, ipc, cgroup) namespace made by
#   unshare --pid --fork --kill-child --mount --uts --ipc --cgroup --mount-proc \
#           --propagation private -- nsboot.sh UNITDIR
# prepares a private, harmless environment, then execs the real /lib/systemd/systemd
# as PID 1 with --unit=netlab-test.target.  UNITDIR's contents are copied into the
# private /run/systemd/system (runtime units, highest priority after /etc).
#
# WHY all the care (see /work/shared/notes/integration-recipes.md sections 0 and 4):
# the mount namespace shares the host's root filesystem.  A plain boot would run
# systemd-tmpfiles-setup (Debian's "D /tmp" rule wipes the HOST's /tmp), start every
# enabled service of the machine on the host network, write sysctls, spam dmesg, and
# on a tmpfs /run make /run/systemd/system appear on the host.  So we:
#   - mount a private tmpfs on /run and pre-populate it (units, masks, journald conf),
#   - make /tmp and /proc/sys read-only (NETLAB_RW_PATHS: dirs kept writable),
#   - bind /dev/kmsg (and /dev/console when not a tty) to /dev/null,
#   - mount a private cgroupfs view (rooted at our cgroup namespace),
#   - mask every unit of {sysinit,sockets}.target.wants except journald/dbus and a
#     list of known-dangerous units, disable generators, export container=,
#   - boot only netlab-test.target (sysinit + optional dbus.socket), never default.target.
#
# Environment (set by sysbox.py; only NETLAB_HOST_MNTNS is mandatory):
#   NETLAB_HOST_MNTNS     inode of the caller's mount namespace; we refuse to run in it.
#   NETLAB_RW_PATHS       space-separated existing dirs to keep writable despite ro /tmp.
#   NETLAB_OVERLAY_DIR    boot on a throwaway overlay of / (writes go to a tmpfs mounted here).
#   NETLAB_OVERLAY_SIZE   size of that tmpfs (default 4g; only what is written counts).
#   NETLAB_PRIVATE_NET    non-empty: the box has its own network namespace; bring up lo.
#   NETLAB_CGROUP_LAYOUT  cgroupfs view to mount: unified | hybrid | legacy.  sysbox.py passes
#                         unified on pure-v2 AND hybrid hosts (a hybrid view makes systemd
#                         create cgroups in the host's v1 controller hierarchies, see
#                         box_cgroup_mode() in sysbox.py).  Auto-detected from the host if unset.
#   NETLAB_LOG_TARGET     systemd --log-target (default journal; console for debugging,
#                         which only works when stdin is a tty, see the recipe).
#   NETLAB_LOG_LEVEL      systemd --log-level (default info).
set -eu

UNITDIR=${1:?usage: nsboot.sh UNITDIR}

die() { echo "nsboot.sh: $*" >&2; exit 1; }

# ---- safety guards: never touch the host's mounts -------------------------------------
[ "$$" = 1 ] || die "must run as PID 1 of a new PID namespace (unshare --pid --fork), refusing"
[ -n "${NETLAB_HOST_MNTNS:-}" ] || die "NETLAB_HOST_MNTNS not set (inode of the host mount ns), refusing"
MY_MNTNS=$(stat -L -c %i /proc/self/ns/mnt) || die "cannot stat /proc/self/ns/mnt"
[ "$MY_MNTNS" != "$NETLAB_HOST_MNTNS" ] || die "still in the host mount namespace (missing --mount?), refusing"
[ -d "$UNITDIR" ] || die "UNITDIR '$UNITDIR' is not a directory"

mount -n --make-rprivate /

# ---- optional throwaway root: an overlay of / whose writes land in a tmpfs ----------------
# (NETLAB_OVERLAY_DIR: an empty host dir; the tmpfs, the overlay and every write in the box
# vanish with the mount namespace.)  Package installs, new users, /etc and /srv edits stay
# in the box.  /proc, /sys and /dev are the namespace's own, bound into the new root; the
# rw paths are bound from the host so that they stay shared.
OVERLAY=${NETLAB_OVERLAY_DIR:-}
if [ -n "$OVERLAY" ]; then
    [ -d "$OVERLAY" ] || die "NETLAB_OVERLAY_DIR '$OVERLAY' is not a directory"
    mount -n -t tmpfs -o mode=0700,size="${NETLAB_OVERLAY_SIZE:-4g}" tmpfs "$OVERLAY"
    mkdir "$OVERLAY/upper" "$OVERLAY/work" "$OVERLAY/root"
    mount -n -t overlay overlay -o "lowerdir=/,upperdir=$OVERLAY/upper,workdir=$OVERLAY/work" "$OVERLAY/root"
    for m in /proc /sys /dev; do mount -n --rbind "$m" "$OVERLAY/root$m"; done
    for rw in ${NETLAB_RW_PATHS:-}; do
        [ -d "$rw" ] || die "NETLAB_RW_PATHS entry '$rw' is not a directory"
        mount -n --bind "$rw" "$OVERLAY/root$rw"
    done
    mkdir "$OVERLAY/root/.nsboot-oldroot"
    cd "$OVERLAY/root"
    pivot_root . .nsboot-oldroot
    cd /
    umount -n -l /.nsboot-oldroot
    rmdir /.nsboot-oldroot
fi

# ---- optional private network namespace (unshare --net): bring up its loopback ------------
if [ -n "${NETLAB_PRIVATE_NET:-}" ]; then
    ip link set lo up || die "cannot bring up lo in the private network namespace"
fi

# ---- private /run ---------------------------------------------------------------------
mount -n -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs /run
mkdir -p /run/systemd/system /run/netlab-nogen /run/systemd/journald.conf.d
cp -a "$UNITDIR"/. /run/systemd/system/
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToKMsg=no\nForwardToConsole=no\n' \
    > /run/systemd/journald.conf.d/netlab.conf

# ---- keep the host's dmesg, console, journal, sysctls and /tmp untouched ---------------
# (never create missing nodes/dirs: /dev and /var are the host's.)
if [ -e /dev/kmsg ]; then mount --bind /dev/null /dev/kmsg; fi
if [ -e /dev/console ]; then
    if [ -t 0 ]; then mount --bind "$(tty)" /dev/console; else mount --bind /dev/null /dev/console; fi
fi
if [ -d /var/log/journal ]; then mount -t tmpfs -o mode=2755 tmpfs /var/log/journal; fi
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
if [ -z "$OVERLAY" ]; then
    # (on an overlay root, writes to /tmp land in the box's tmpfs: nothing to guard)
    mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp
fi
if [ -z "$OVERLAY" ]; then
    for rw in ${NETLAB_RW_PATHS:-}; do
        [ -d "$rw" ] || die "NETLAB_RW_PATHS entry '$rw' is not a directory"
        # a bind mount inherits ro from /tmp: remount it rw explicitly
        mount --bind "$rw" "$rw" && mount -o remount,bind,rw "$rw"
    done
fi

# ---- private cgroupfs view (the cgroup namespace makes our cgroup its root) -------------
LAYOUT=${NETLAB_CGROUP_LAYOUT:-}
if [ -z "$LAYOUT" ]; then
    if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then LAYOUT=unified
    elif [ -d /sys/fs/cgroup/unified ]; then LAYOUT=hybrid
    else LAYOUT=legacy; fi
fi
case $LAYOUT in
    unified)   # verified on a hybrid host (the box cgroup in unified/); pure v2 hosts: unverified
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup ;;
    hybrid)    # the recipe's view: tmpfs + name=systemd v1 + cgroup2 at unified (systemd adds v1 controllers)
        mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
        mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
        mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
        mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified ;;
    legacy)    # v1 only, no unified hierarchy
        mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
        mkdir /sys/fs/cgroup/systemd
        mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd ;;
    *) die "unknown NETLAB_CGROUP_LAYOUT '$LAYOUT'" ;;
esac

# ---- the boot target ---------------------------------------------------------------------
# (a netlab-test.target shipped in UNITDIR wins)
if [ ! -e /run/systemd/system/netlab-test.target ]; then
    cat > /run/systemd/system/netlab-test.target <<'EOF'
[Unit]
Description=netlab test boot target (sysinit + journald only)
Requires=sysinit.target
After=sysinit.target
Wants=dbus.socket
EOF
fi

# ---- runtime masks (written last: they win over anything from UNITDIR) ---------------------
mask() {
    if [ -e "/run/systemd/system/$1" ] && [ ! -L "/run/systemd/system/$1" ]; then
        echo "nsboot.sh: warning: unit $1 from UNITDIR is overridden by a safety mask" >&2
    fi
    ln -sfn /dev/null "/run/systemd/system/$1"
}
# /usr/lib is added to the recipe's {/lib,/etc}: same dir on merged-/usr bookworm, the real one on trixie.
for d in /lib/systemd/system /usr/lib/systemd/system /etc/systemd/system; do
    for t in sysinit sockets; do
        for f in "$d/$t.target.wants"/*; do
            [ -e "$f" ] || [ -L "$f" ] || continue
            u=${f##*/}
            case $u in
                systemd-journald.service|systemd-journald.socket|systemd-journal-flush.service|dbus.socket) ;;
                *) mask "$u" ;;
            esac
        done
    done
done
# the explicit list of the recipe
for u in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
         systemd-tmpfiles-clean.timer systemd-tmpfiles-clean.service \
         systemd-remount-fs.service systemd-sysusers.service ldconfig.service \
         systemd-update-utmp.service systemd-update-utmp-runlevel.service \
         systemd-hwdb-update.service systemd-journal-catalog-update.service \
         systemd-update-done.service systemd-udevd.service systemd-journald-dev-log.socket \
         systemd-timesyncd.service systemd-logind.service; do
    mask "$u"
done
# extras beyond the recipe (absent on this machine, harmless when absent): udev sockets and
# trigger, and the early tmpfiles unit of newer systemd versions.
for u in systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service \
         systemd-tmpfiles-setup-dev-early.service; do
    mask "$u"
done

# ---- hand over to the real init -------------------------------------------------------------
export container=netlab-test SYSTEMD_GENERATOR_PATH=/run/netlab-nogen SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/netlab-nogen
exec /lib/systemd/systemd --system --unit=netlab-test.target \
    --log-target="${NETLAB_LOG_TARGET:-journal}" --log-level="${NETLAB_LOG_LEVEL:-info}" --show-status=no
