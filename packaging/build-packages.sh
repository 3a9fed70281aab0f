#!/bin/bash
# Build netlab's Debian packages (source + binary) and RPM from the current
# tree, uncommitted changes included, into OUTDIR (default: dist/ in the tree).
#
#   packaging/build-packages.sh [--no-check] [--lintian] [OUTDIR]
#
#   --no-check  skip the unit tests inside the package builds
#               (DEB_BUILD_OPTIONS=nocheck, rpmbuild --nocheck)
#   --lintian   then run lintian -EIL +pedantic on the .changes and fail on any
#               error or any warning not overridden; rpmlint runs too, advisory
#
# The tree is the git-tracked files plus untracked ones not ignored (or, outside
# git, everything but build and output directories). It is copied into a
# throwaway directory: nothing is written into the tree except OUTDIR. The
# version is meson.build's, and debian/changelog and the spec must agree.
# Needs: dpkg-dev debhelper fakeroot rpm (lintian for --lintian, rpmlint optional)
# and netlab's build dependencies; no root.
set -euo pipefail

usage() {
        echo "usage: $0 [--no-check] [--lintian] [OUTDIR]" >&2
        exit 2
}

no_check=false
run_lintian=false
outdir=
while [ $# -gt 0 ]; do
        case "$1" in
        --no-check) no_check=true ;;
        --lintian) run_lintian=true ;;
        -h|--help) usage ;;
        -*) echo "$0: unknown option $1" >&2; usage ;;
        *) [ -z "$outdir" ] || usage; outdir=$1 ;;
        esac
        shift
done

src=$(cd "$(dirname "$0")/.." && pwd -P)
[ -n "$outdir" ] || outdir=$src/dist

for tool in dpkg-buildpackage dpkg-parsechangelog dh fakeroot rpmbuild meson python3; do
        command -v "$tool" >/dev/null || { echo "$0: $tool is missing" >&2; exit 1; }
done
if $run_lintian; then
        command -v lintian >/dev/null || { echo "$0: lintian is missing" >&2; exit 1; }
fi

version=$(meson introspect --projectinfo "$src/meson.build" |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
deb_version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
deb_upstream=${deb_version#*:}
deb_upstream=${deb_upstream%-*}
rpm_version=$(sed -n 's/^Version:[[:space:]]*//p' "$src/packaging/rpm/netlab.spec")
if [ "$deb_upstream" != "$version" ] || [ "$rpm_version" != "$version" ]; then
        echo "$0: versions disagree: meson.build $version, packaging/debian/changelog" \
             "$deb_version, packaging/rpm/netlab.spec $rpm_version" >&2
        exit 1
fi
# The tarball's timestamps: the changelog's date, so one tree gives one tarball.
epoch=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Timestamp)

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd -P)
work=$(mktemp -d "${TMPDIR:-/tmp}/netlab-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The source tree and the upstream tarball (Debian's orig, RPM's Source0).
stage=$work/stage/netlab-$version
mkdir -p "$stage"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked files deleted in the work tree are still listed: skip them.
        # OUTDIR, when inside the tree and not ignored, must not feed itself.
        (cd "$src" && git ls-files -co --exclude-standard -z) |
        python3 -c '
import os, sys
src, out = sys.argv[1], sys.argv[2]
for name in sys.stdin.buffer.read().split(b"\0"):
    path = os.path.join(src.encode(), name)
    if not name or not os.path.lexists(path) or os.path.isdir(path):
        continue
    if os.path.realpath(path).startswith(out.encode() + b"/"):
        continue
    sys.stdout.buffer.write(name + b"\0")
' "$src" "$outdir" > "$work/files"
        tar -C "$src" --null --no-recursion -T "$work/files" -cf - | tar -C "$stage" -xf -
else
        tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' \
            --exclude=./dist --exclude="./${outdir#"$src"/}" --exclude=__pycache__ \
            --exclude=.pytest_cache -cf - . | tar -C "$stage" -xf -
fi
tarball=$work/netlab-$version.tar.gz
tar -C "$work/stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -cf - "netlab-$version" | gzip -9n > "$tarball"

log_fail() {
        echo "$0: $1 failed; the end of $2:" >&2
        tail -n 40 "$2" >&2
        exit 1
}

# 2. Debian: source and binary packages. packaging/debian becomes debian/ in
#    the copy; the orig tarball beside it makes the 3.0 (quilt) source.
mkdir -p "$work/deb"
cp "$tarball" "$work/deb/netlab_$version.orig.tar.gz"
tar -C "$work/deb" -xzf "$tarball"
cp -a "$src/packaging/debian" "$work/deb/netlab-$version/debian"
deb_opts=${DEB_BUILD_OPTIONS:-}
$no_check && deb_opts="$deb_opts nocheck"
echo "building the Debian packages (log: $outdir/build-deb.log)"
(cd "$work/deb/netlab-$version" &&
 DEB_BUILD_OPTIONS="${deb_opts# }" dpkg-buildpackage -us -uc) > "$outdir/build-deb.log" 2>&1 ||
        log_fail dpkg-buildpackage "$outdir/build-deb.log"

# 3. RPM. Debian's rpm database is empty, so BuildRequires can only be checked
#    where rpm itself knows the build tools (Fedora, EL).
top=$work/rpm
mkdir -p "$top/SOURCES"
cp "$tarball" "$stage/systemd/netlab.sysusers" "$top/SOURCES/"
rpm_opts=(--define "_topdir $top")
rpm -q gcc >/dev/null 2>&1 || rpm_opts+=(--nodeps)
$no_check && rpm_opts+=(--nocheck)
echo "building the RPM (log: $outdir/build-rpm.log)"
rpmbuild "${rpm_opts[@]}" -ba "$stage/packaging/rpm/netlab.spec" > "$outdir/build-rpm.log" 2>&1 ||
        log_fail rpmbuild "$outdir/build-rpm.log"

# 4. Collect. Only this build's files are printed, not older ones in OUTDIR.
built=()
for f in "$work"/deb/*.deb "$work"/deb/*.dsc "$work"/deb/*.tar.* "$work"/deb/*.buildinfo \
         "$work"/deb/*.changes "$top"/RPMS/*/*.rpm "$top"/SRPMS/*.rpm; do
        [ -e "$f" ] || continue
        cp -f "$f" "$outdir/"
        built+=("$outdir/$(basename "$f")")
done

status=0
if $run_lintian; then
        changes=$(ls "$outdir"/netlab_"$deb_version"_*.changes)
        echo "lintian -EIL +pedantic $(basename "$changes")"
        lintian -EIL +pedantic --fail-on error,warning "$changes" || status=1
        if command -v rpmlint >/dev/null; then
                echo "rpmlint (advisory; Debian's rpmlint flags missing signatures and tags):"
                rpmlint "$outdir"/netlab-"$version"-*.rpm "$src/packaging/rpm/netlab.spec" || true
        fi
fi

echo "built:"
printf '  %s\n' "${built[@]}"
exit $status
