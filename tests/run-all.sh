#!/bin/bash
# Every test netlab has, as CI runs it (.ci/run calls this):
#   1. C unit tests (meson test)
#   2. the pytest integration suite against the normal build, including the
#      systemd tier (a real systemd booted in a private PID namespace; needs root)
#      and the packaging tier (.deb and .rpm built, lintian, the .deb installed
#      under that systemd)
#   3. the whole pytest suite again against an ASan+UBSan build
#   4. a 30-second libFuzzer run of every parser's fuzz target (tests/fuzz/)
# Uses Debian's Python (/usr/bin/python3): the python3 on PATH may be a pyenv
# build that cannot see python3-pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

tests/setup-deps.sh --test || exit 1

status=0
step() { echo; echo "==== $*"; }

step "unit tests (meson test)"
meson test -C build --print-errorlogs || status=1

step "integration tests (pytest, build/)"
NETLAB_BUILD=build /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider || status=1

step "integration tests under ASan+UBSan (pytest, build-asan/)"
if [ ! -d build-asan ]; then
    meson setup build-asan -Dsanitize=address-undefined -Db_lundef=false >/dev/null || status=1
fi
if meson compile -C build-asan >/dev/null; then
    # NETLAB_PACKAGING=skip: the packages are built from the tree with the
    # distribution's flags, the same in both passes; the first pass tests them.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    NETLAB_PACKAGING=skip NETLAB_BUILD=build-asan /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider || status=1
else
    echo "run-all: the ASan+UBSan build failed"; status=1
fi

step "fuzz targets, 30 s each (tests/fuzz/run.sh; clang, build-fuzz/)"
tests/fuzz/run.sh --seconds 30 || status=1

echo
[ $status -eq 0 ] && echo "run-all: every test passed" || echo "run-all: FAILURES (see above)"
exit $status
