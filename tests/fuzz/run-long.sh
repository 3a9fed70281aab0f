#!/bin/bash
# run-long.sh: long fuzzing runs that grow a corpus (tests/fuzz/README.md).
#
#   tests/fuzz/run-long.sh --corpus DIR [--hours H] [--workers W] [--build DIR] [TARGET...]
#
# For each target in turn (default: all), runs libFuzzer's fork mode with W
# workers (default: the number of CPUs) for H hours (default 1; fractions
# allowed), starting from DIR/TARGET plus the committed seeds and regressions,
# and carrying on after a crash so one run collects every crasher.  New
# inputs land in a scratch directory first; at the end they are merged
# (-merge=1: only inputs that add coverage) into DIR/TARGET.  Pass
# --corpus tests/fuzz/corpus to grow the committed corpus (review the
# additions before committing them).  Crash inputs and logs stay in the work
# directory, whose path is printed; exit status 1 if any target crashed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
all_targets=(message lab file-request guess xfer config journal-relay)
declare -A max_len=(
        [message]=4200 [lab]=64 [file-request]=4400 [guess]=1100 [xfer]=10000
        [config]=8192 [journal-relay]=16500
)

corpus=""
hours=1
workers=$(nproc 2>/dev/null || echo 1)
build="$root/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
        case "$1" in
        --corpus) corpus=${2:?--corpus needs a directory}; shift 2 ;;
        --corpus=*) corpus=${1#*=}; shift ;;
        --hours) hours=${2:?--hours needs a number}; shift 2 ;;
        --hours=*) hours=${1#*=}; shift ;;
        --workers) workers=${2:?--workers needs a number}; shift 2 ;;
        --workers=*) workers=${1#*=}; shift ;;
        --build) build=${2:?--build needs a directory}; shift 2 ;;
        --build=*) build=${1#*=}; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run-long.sh: unknown option '$1'" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
        esac
done
[ -n "$corpus" ] || { echo "run-long.sh: --corpus DIR is required" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
        [ -n "${max_len[$t]:-}" ] || { echo "run-long.sh: unknown target '$t'" >&2; exit 2; }
done
seconds=$(awk -v h="$hours" 'BEGIN { s = int(h * 3600); if (h !~ /^[0-9]*\.?[0-9]+$/ || s < 1) exit 1; print s }') ||
        { echo "run-long.sh: --hours: not a positive number: '$hours'" >&2; exit 2; }
case "$workers" in ''|*[!0-9]*|0) echo "run-long.sh: --workers: not a positive number" >&2; exit 2 ;; esac

if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" "$root" -Dfuzz=true -Dsanitize=address-undefined -Db_lundef=false >/dev/null
elif ! meson introspect --buildoptions "$build" | grep -q '"name": "fuzz", "value": true'; then
        meson configure "$build" -Dfuzz=true >/dev/null
fi
meson compile -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null

mkdir -p "$corpus"
corpus=$(cd "$corpus" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/netlab-fuzz-long.XXXXXX")
mkdir -p "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TMPDIR="$work"
echo "work directory: $work ($seconds s per target, $workers workers)"

crashed=0
for t in "${targets[@]}"; do
        exe="$build/tests/fuzz/fuzz-$t"
        args=(-max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048
              -artifact_prefix="$work/artifacts/$t-")
        [ -f "$here/dict/$t.dict" ] && args+=(-dict="$here/dict/$t.dict")
        mkdir -p "$corpus/$t" "$work/new/$t"
        inputs=("$corpus/$t" "$here/corpus/$t")
        [ -d "$here/regressions/$t" ] && inputs+=("$here/regressions/$t")

        echo "== $t: fuzzing until $(date -d "+$seconds seconds" '+%F %T')"
        # The first directory is where fork mode writes what it finds.
        "$exe" "${args[@]}" -fork="$workers" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
                -max_total_time="$seconds" -print_final_stats=1 \
                "$work/new/$t" "${inputs[@]}" >"$work/$t.log" 2>&1 || true
        "$exe" "${args[@]}" -merge=1 "$corpus/$t" "$work/new/$t" >"$work/$t.merge.log" 2>&1 ||
                echo "   merge failed: $work/$t.merge.log"

        n_crash=$(find "$work/artifacts" -name "$t-*" -type f | wc -l)
        # Fork mode's status lines: "#EXECS: cov: ... exec/s RATE ...".
        execs=$(sed -n 's/^#\([0-9]*\): cov.*/\1/p' "$work/$t.log" | tail -n1)
        echo "   executions: ${execs:-0}; crash inputs: $n_crash;" \
             "$(find "$corpus/$t" -type f | wc -l) inputs in $corpus/$t"
        [ "$n_crash" -eq 0 ] || crashed=1
done

if [ "$crashed" -ne 0 ]; then
        echo "crash inputs in $work/artifacts/: turn each into a regression (tests/fuzz/README.md)"
        exit 1
fi
echo "no crashes; logs in $work/"
