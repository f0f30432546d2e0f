#!/usr/bin/env bash
# bench/long.sh - what one message costs as it gets longer (issue 17): for 20, 200, 2,000,
# 20,000 and 65,536 code points (65,536 bytes is the contract's limit), time per message,
# code points per second, instructions per message (callgrind: the claim, since wall time
# on a shared 2-core machine moves by tens of percent) and each length's instructions per
# code point against the 2,000 row's (1.00 = linear).
#
#   bench/long.sh                  # needs bench/out from bench/core_stream.sh (run.sh makes it)
#   KINDS="chat mixed words near runs links" LENGTHS="2000 20000" bench/long.sh
#
# Kinds (bench/gen_long.py): chat = the benchmark stream's texts joined; the others are
# hostile: words (distinct list words), near (list words one letter off, each a Hyperscan
# hit that PCRE2 rejects), runs, links, mixed (all of them in turn).
# Each measure is a run over a warm-up copy of the messages and then the messages, less a
# run over the warm-up alone: start-up, cache loading and first-hit PCRE2 compiles cancel.
set -euo pipefail
cd "$(dirname "$0")/.."
WHIPLY=${WHIPLY:-build/whiply}
RULES=${RULES:-bench/out/rules.yaml}
LIST=${LIST:-bench/out/profanity.txt}
CHAT=${CHAT:-bench/out/events.ndjson}
KINDS=${KINDS:-"chat mixed"}
LENGTHS=${LENGTHS:-"20 200 2000 20000 65536"}
ROUNDS=${ROUNDS:-3}
for f in "$WHIPLY" "$RULES" "$LIST" "$CHAT"; do
    [ -e "$f" ] || { echo "long.sh: $f is missing (bench/run.sh makes bench/out)" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "long.sh: needs valgrind (callgrind)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/whiply-long.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# The database cache: the default one, so that the runs under valgrind find the databases it
# compiled for valgrind's CPU (the cache keys on CPU features; the first run under valgrind
# compiles them, minutes, once).
CACHE=${WHIPLY_CACHE_DIR:-$HOME/.cache/whiply}

check() { # FILE -> processing seconds (the stats line's "seconds")
    "$WHIPLY" check --rules "$RULES" --in "$1" --out /dev/null --threads 1 --stats \
        --cache-dir "$CACHE" 2>&1 >/dev/null | grep -o '"seconds":[0-9.]*' | cut -d: -f2
}
instr() { # FILE -> instructions of the whole run
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$WHIPLY" check --rules "$RULES" \
        --in "$1" --out /dev/null --threads 1 --cache-dir "$CACHE" 2>&1 |
        grep -o 'Collected : [0-9]*' | awk '{print $3}'
}

# Warm the database cache natively and under valgrind (it keys on the CPU's features,
# which valgrind's CPU lacks).
echo '{"id":"w","type":"message","platform":"twitch","channel":"#w","user":{"id":"w"},"text":"hi","ts":"2026-12-07T20:00:00Z"}' >"$TMP/w.ndjson"
check "$TMP/w.ndjson" >/dev/null
instr "$TMP/w.ndjson" >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $WHIPLY; rules: $RULES"
printf '%-6s %8s %12s %12s %16s %14s %10s\n' kind cps 'us/msg' 'M cp/s' 'instr/msg' 'instr/cp' 'vs 2,000'
for kind in $KINDS; do
    declare -A ipc=()
    rows=()
    for n in $LENGTHS; do
        # fewer messages when they are long: callgrind runs ~50x slower than the CPU
        k=$((n >= 20000 ? 4 : n >= 2000 ? 10 : 40))
        python3 bench/gen_long.py --chat "$CHAT" --list "$LIST" --kind "$kind" --cps "$n" \
            --count "$k" >"$TMP/m.ndjson"
        cat "$TMP/m.ndjson" "$TMP/m.ndjson" >"$TMP/m2.ndjson"
        i1=$(instr "$TMP/m.ndjson")
        i2=$(instr "$TMP/m2.ndjson")
        # time: the messages r times after the warm-up, less the warm-up alone, best of ROUNDS
        r=$((2000000 / (n * k) + 1))
        cp "$TMP/m.ndjson" "$TMP/mr.ndjson"
        for _ in $(seq "$r"); do cat "$TMP/m.ndjson"; done >>"$TMP/mr.ndjson"
        best=
        for _ in $(seq "$ROUNDS"); do
            t1=$(check "$TMP/m.ndjson")
            t2=$(check "$TMP/mr.ndjson")
            best=$(awk -v a="$t1" -v b="$t2" -v best="$best" 'BEGIN {
                d = b - a; if (best == "" || d < best) print d; else print best }')
        done
        ipc[$n]=$(awk -v a="$i1" -v b="$i2" -v k="$k" -v n="$n" 'BEGIN { print (b - a) / k / n }')
        rows+=("$n $k $r $best $i1 $i2")
    done
    for row in "${rows[@]}"; do
        read -r n k r best i1 i2 <<<"$row"
        awk -v kind="$kind" -v n="$n" -v k="$k" -v r="$r" -v t="$best" -v a="$i1" -v b="$i2" \
            -v ref="${ipc[2000]:-0}" 'BEGIN {
            us = t / (k * r) * 1e6; per = (b - a) / k
            rate = 0; if (us > 0) rate = n / us
            vs = "-"; if (ref > 0) vs = sprintf("%.2f", per / n / ref)
            printf "%-6s %8d %12.1f %12.1f %16.0f %14.1f %10s\n", kind, n, us, rate, per, per / n, vs }'
    done
    unset ipc
done
