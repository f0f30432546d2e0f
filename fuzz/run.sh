#!/usr/bin/env bash
# fuzz/run.sh - run the libFuzzer targets for a while each.
#
#   bash fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# BUILD_DIR is a build configured with
#   CC=clang meson setup /tmp/bfuzz -Dfuzz=true -Dbuildtype=debugoptimized
#   meson compile -C /tmp/bfuzz fuzz_event fuzz_rules fuzz_normalize fuzz_state fuzz_config fuzz_request fuzz_model fuzz_dedupe fuzz_checkpoint fuzz_subject fuzz_session fuzz_irc fuzz_twitch fuzz_replay
# SECONDS (default 20) is per target; TARGET defaults to all of them.
#
# Each target fuzzes a copy of fuzz/corpus/<target>/ in a temporary directory (the repo is
# never written). Prints one line per target:
#   fuzz: <target> ok (N runs)     or     fuzz: <target> FAILED
# and exits 1 if any target crashed, leaked, timed out or ran out of memory. On failure the
# temporary directory (logs, crashing inputs) is kept and its path printed; the end of the
# log and a dump of the crashing input go to stderr.
#
# Environment: FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS="-jobs=4 -workers=4");
# ASAN_OPTIONS / UBSAN_OPTIONS are respected, with useful defaults otherwise.
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS] [TARGET...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
build_dir=$1
shift
secs=20
if [ $# -ge 1 ]; then
    secs=$1
    shift
fi
case $secs in
'' | *[!0-9]*) echo "$0: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
if [ $# -ge 1 ]; then
    targets=("$@")
else
    targets=(fuzz_event fuzz_rules fuzz_normalize fuzz_state fuzz_config fuzz_request fuzz_model fuzz_dedupe
        fuzz_checkpoint fuzz_subject fuzz_session fuzz_irc fuzz_twitch fuzz_replay)
fi

[ -d "$build_dir" ] || { echo "$0: no build directory '$build_dir'" >&2; exit 2; }
build_dir=$(cd "$build_dir" && pwd)
fuzz_src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

max_len_for() {
    case $1 in
    fuzz_rules) echo 4096 ;;
    fuzz_event) echo 8192 ;;
    fuzz_normalize) echo 4096 ;;
    fuzz_state) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$fuzz_src/lsan.supp}
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/whiply-fuzz.XXXXXX")
keep=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ "$keep" = 0 ]; then rm -rf -- "$work"; fi
}
trap cleanup EXIT

failed=0
for t in "${targets[@]}"; do
    bin=$build_dir/fuzz/$t
    seeds=$fuzz_src/corpus/$t
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ -d "$seeds" ]; then
        cp -R "$seeds/." "$dir/corpus/"
    fi
    log=$dir/log.txt
    if [ ! -x "$bin" ]; then
        echo "fuzz: $t FAILED"
        echo "  $bin is missing: build it with meson compile -C $build_dir $t" >&2
        failed=1
        continue
    fi
    rc=0
    "$bin" "$dir/corpus" \
        -max_total_time="$secs" -max_len="$(max_len_for "$t")" \
        -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
        ${extra_args[@]+"${extra_args[@]}"} >"$log" 2>&1 || rc=$?
    artifacts=$(find "$dir/artifacts" -type f | sort)
    if [ "$rc" -eq 0 ] && [ -z "$artifacts" ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
        if [ -z "$runs" ]; then
            runs=$(sed -n 's/^Done \([0-9][0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
        fi
        echo "fuzz: $t ok (${runs:-?} runs)"
    else
        echo "fuzz: $t FAILED"
        failed=1
        keep=1
        {
            echo "---- $t: libFuzzer exited with status $rc; log: $log"
            # The report starts at the sanitizer/libFuzzer banner; show it and what follows.
            first=$(grep -n -m 1 -E '^==[0-9]+==|runtime error|check failed|ERROR: libFuzzer' "$log" |
                cut -d: -f1 || true)
            first=${first:-1}
            tail -n +"$((first > 5 ? first - 5 : 1))" "$log" | head -n 80 || true
            find "$dir/artifacts" -type f | sort | while IFS= read -r a; do
                echo "---- input $a ($(wc -c <"$a") bytes):"
                od -A d -t x1z -v "$a" | head -n 40 || true
                echo "---- reproduce: $bin $a"
            done
        } >&2
    fi
done

if [ "$failed" != 0 ]; then
    if [ "$keep" != 0 ]; then echo "run.sh: logs and crashing inputs kept in $work" >&2; fi
    exit 1
fi
exit 0
