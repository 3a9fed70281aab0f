#!/bin/bash
# run.sh: the fuzzers' smoke run (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [--seconds N] [--jobs J] [--build DIR] [--keep] [TARGET...]
#
# Builds DIR (default build-fuzz at the top of the checkout; configured with
# clang, -Dfuzz=true and the sanitizers if it does not exist yet), then per
# target: replays every kept crasher in tests/fuzz/regressions/TARGET/ once,
# and fuzzes for N seconds (default 30) on a copy of tests/fuzz/corpus/TARGET/
# (the committed corpus never grows here).  J targets run at once (default:
# the number of CPUs).  Fails if any replay or run crashes, leaks, times out
# or runs out of memory; crash inputs are kept in the work directory, whose
# path is printed.  Prints one summary line per target with its executions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
all_targets=(message lab file-request guess xfer config journal-relay)

# Longest input per target: a little over the largest thing it reads.
declare -A max_len=(
        [message]=4200          # max_message 4096 + the frame header
        [lab]=64                # 12 bytes matter
        [file-request]=4400     # a path of NL_PATH_MAX + a GET's fields
        [guess]=1100            # NL_GUESS_REQUEST_MAX + 1
        [xfer]=10000            # NL_XFER_REQUEST_MAX + 1, and DATA/END/ERROR past their limits
        [config]=8192
        [journal-relay]=16500   # RELAY_MAX_ENTRY + 1, so truncation is reached
)

seconds=30
jobs=$(nproc 2>/dev/null || echo 1)
build="$root/build-fuzz"
keep=false
targets=()
while [ $# -gt 0 ]; do
        case "$1" in
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        --build) build=${2:?--build needs a directory}; shift 2 ;;
        --build=*) build=${1#*=}; shift ;;
        --keep) keep=true; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
        esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
        [ -n "${max_len[$t]:-}" ] || { echo "run.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2; }
done
case "$seconds" in ''|*[!0-9]*) echo "run.sh: --seconds: not a number: '$seconds'" >&2; exit 2 ;; esac
case "$jobs" in ''|*[!0-9]*|0) echo "run.sh: --jobs: not a positive number: '$jobs'" >&2; exit 2 ;; esac

start=$(date +%s)

# ---- build ----
if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" "$root" -Dfuzz=true -Dsanitize=address-undefined -Db_lundef=false >/dev/null
elif ! meson introspect --buildoptions "$build" | grep -q '"name": "fuzz", "value": true'; then
        meson configure "$build" -Dfuzz=true >/dev/null
fi
# Only the fuzzers: the rest of the tree is built and tested by gcc.
meson compile -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null
built=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/netlab-fuzz.XXXXXX")
mkdir -p "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# The config target makes its private directory here.
export TMPDIR="$work"

# One target: replay, then fuzz.  Writes $work/$t.result: "status execs exec/s".
run_one() {
        local t=$1 exe="$build/tests/fuzz/fuzz-$1" status=ok execs=0 rate=0
        local args=(-max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048
                    -artifact_prefix="$work/artifacts/$t-")
        [ -f "$here/dict/$t.dict" ] && args+=(-dict="$here/dict/$t.dict")

        local regressions=()
        [ -d "$here/regressions/$t" ] && mapfile -t regressions < <(find "$here/regressions/$t" -type f | sort)
        if [ ${#regressions[@]} -gt 0 ] &&
           ! "$exe" "${args[@]}" "${regressions[@]}" >"$work/$t.replay.log" 2>&1; then
                status=REGRESSION
        fi

        mkdir -p "$work/corpus/$t"
        cp -r "$here/corpus/$t/." "$work/corpus/$t/"
        # Fuzz even after a failed replay: the executions still say how far
        # the rest of the parser was explored.
        if ! timeout $((seconds + 120)) "$exe" "${args[@]}" -max_total_time="$seconds" -print_final_stats=1 \
                   "$work/corpus/$t" >"$work/$t.log" 2>&1; then
                [ "$status" = ok ] && status=FAILED || status="$status+FAILED"
        fi
        if [ -f "$work/$t.log" ]; then
                execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n1)
                rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -n1)
        fi
        echo "$status ${execs:-0} ${rate:-0}" >"$work/$t.result"
}

running=0
for t in "${targets[@]}"; do
        run_one "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n || true
                running=$((running - 1))
        fi
done
wait

# ---- summary ----
failed=0
printf '\n%-14s %-18s %12s %10s %8s\n' target result executions exec/s max_len
for t in "${targets[@]}"; do
        read -r status execs rate <"$work/$t.result"
        printf '%-14s %-18s %12s %10s %8s\n' "$t" "$status" "$execs" "$rate" "${max_len[$t]}"
        [ "$status" = ok ] || failed=1
done
end=$(date +%s)
echo
echo "build $((built - start)) s, fuzzing $((end - built)) s, ${seconds} s per target, $jobs at once"

if [ "$failed" -ne 0 ]; then
        echo
        for t in "${targets[@]}"; do
                read -r status _ <"$work/$t.result"
                [ "$status" = ok ] && continue
                logs=()
                case "$status" in *REGRESSION*) logs+=("$work/$t.replay.log") ;; esac
                case "$status" in *FAILED*) logs+=("$work/$t.log") ;; esac
                for log in "${logs[@]}"; do
                        echo "== $t: $status; from $log:"
                        grep -E 'invariant broken|ERROR|SUMMARY|Test unit written|Running:' "$log" | tail -n 12 ||
                                tail -n 20 "$log"
                done
        done
        echo
        echo "crash inputs: $work/artifacts/ (logs in $work/)"
        echo "a crasher becomes a regression test: tests/fuzz/README.md"
        exit 1
fi
if $keep; then
        echo "work directory kept: $work"
else
        rm -rf "$work"
fi
