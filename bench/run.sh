#!/usr/bin/env bash
# bench/run.sh - whiply throughput/latency benchmark against the npm `obscenity` filter.
#
#   bench/run.sh                      # what `make bench` runs
#   EVENTS=200000 bench/run.sh        # a smaller stream
#
# Environment (all optional):
#   WHIPLY=build/whiply   the binary under test
#   EVENTS=1000000        events to generate (all of type message)
#   SEED=42               genstream seed (same seed -> byte-identical files)
#   PEER_EVENTS=100000    events the obscenity peer runs on (the first N; 0 = all). obscenity
#                         manages ~5k messages/s here, so the full stream would take minutes.
#   THREADS="1 2"         whiply --threads values to run
#   KEEP_DECISIONS=0      1 keeps the decision files in bench/out/ instead of deleting them
#
# Generated files go to bench/out/ (git-ignored). Needs: cc, node, npm (only when the word
# lists / obscenity are not yet in .deps/npm).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=bench/out
WHIPLY=${WHIPLY:-build/whiply}
EVENTS=${EVENTS:-1000000}
SEED=${SEED:-42}
PEER_EVENTS=${PEER_EVENTS:-100000}
THREADS=${THREADS:-"1 2"}
KEEP_DECISIONS=${KEEP_DECISIONS:-0}
NPM_DIR=.deps/npm
NM=$NPM_DIR/node_modules

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/whiply-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say() { printf '%s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "bench: '$1' is required"; exit 2; }; }
need cc
need node

# one value out of a JSON line: jget 'FILE' 'a.b.c'
jget() {
    node -e 'const fs=require("fs");const l=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").pop();
             let v=JSON.parse(l);for(const k of process.argv[2].split("."))v=v==null?undefined:v[k];
             process.stdout.write(v===undefined?"":String(v))' "$1" "$2"
}

# ---- 1. dependencies: word lists and the peer
if [ ! -f "$NM/naughty-words/en.json" ] || [ ! -f "$NM/cuss/index.js" ] || [ ! -d "$NM/obscenity" ]; then
    need npm
    say "bench: installing naughty-words, cuss, obscenity into $NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund naughty-words@1.2.0 cuss@2.2.0 obscenity@0.4.6 >&2
fi
# ---- 2. the stream and the ruleset
SUB=$PEER_EVENTS # the events the peer sees
if [ "$SUB" = 0 ] || [ "$SUB" -gt "$EVENTS" ]; then SUB=$EVENTS; fi
say "bench: generating $EVENTS events (seed $SEED)"
bench/core_stream.sh "$OUT" "$EVENTS" "$SEED" --stats-prefix "$SUB"

# count of decisions whose "rules" array holds the profanity rule (the id appears nowhere else
# in a decision: reasons and other rule ids never spell it as the JSON string "profanity")
PROF_RE='"rules":\[[^]]*"profanity"'
count_prof() { # FILE [FIRST_N]
    if [ -n "${2:-}" ] && [ "$2" != 0 ]; then head -n "$2" "$1" | grep -c "$PROF_RE" || true
    else grep -c "$PROF_RE" "$1" || true; fi
}

# ---- 3. whiply
declare -A W_EPS W_P50 W_P99 W_P999 W_MAX W_RSS W_CATCH W_CATCH_SUB
HAVE_WHIPLY=0
FIRST_DECISIONS=
if [ -x "$WHIPLY" ]; then
    HAVE_WHIPLY=1
    for t in $THREADS; do
        dec="$TMP/decisions.t$t.ndjson"
        [ "$KEEP_DECISIONS" = 1 ] && dec="$OUT/decisions.t$t.ndjson"
        say "bench: $WHIPLY check --threads $t"
        rc=0
        "$WHIPLY" check --rules "$OUT/rules.yaml" --in "$OUT/events.ndjson" --out "$dec" \
            --threads "$t" --stats 2> "$TMP/stderr.t$t" || rc=$?
        if [ "$rc" != 0 ]; then
            say "bench: whiply check --threads $t exited $rc:"
            tail -n 20 "$TMP/stderr.t$t" >&2
            exit 1
        fi
        grep '^{"events"' "$TMP/stderr.t$t" | tail -n 1 > "$TMP/stats.t$t.json" || true
        if [ ! -s "$TMP/stats.t$t.json" ]; then
            say "bench: no --stats line from whiply (threads $t); its stderr:"
            tail -n 20 "$TMP/stderr.t$t" >&2
            exit 1
        fi
        cp "$TMP/stats.t$t.json" "$OUT/whiply-stats.t$t.json"
        lines=$(wc -l < "$dec")
        if [ "$lines" != "$EVENTS" ]; then
            say "bench: whiply wrote $lines decisions for $EVENTS events (threads $t)"
            exit 1
        fi
        s="$TMP/stats.t$t.json"
        W_EPS[$t]=$(jget "$s" events_per_s)
        W_P50[$t]=$(jget "$s" latency_us.p50)
        W_P99[$t]=$(jget "$s" latency_us.p99)
        W_P999[$t]=$(jget "$s" latency_us.p999)
        W_MAX[$t]=$(jget "$s" latency_us.max)
        W_RSS[$t]=$(jget "$s" peak_rss_kb)
        W_CATCH[$t]=$(count_prof "$dec")
        W_CATCH_SUB[$t]=$(count_prof "$dec" "$SUB")
        if [ -z "$FIRST_DECISIONS" ]; then
            FIRST_DECISIONS=$dec
        elif [ "$(cmp -s "$FIRST_DECISIONS" "$dec" && echo same)" != same ]; then
            say "bench: note: decisions with --threads $t differ from the first run"
        fi
    done
else
    say "bench: $WHIPLY not found or not executable (build it: meson setup build && ninja -C build);"
    say "       running the peer only"
fi

# ---- 4. the peer
say "bench: obscenity peer on $([ "$PEER_EVENTS" = 0 ] && echo all || echo "the first $PEER_EVENTS") events"
node bench/obscenity_peer.js --list "$OUT/profanity.txt" --events "$OUT/events.ndjson" \
    --limit "$SUB" --out-matched "$OUT/obscenity-matched.txt" > "$OUT/obscenity.json" 2> "$TMP/peer.err" || {
    cat "$TMP/peer.err" >&2; exit 1; }
O_MPS=$(jget "$OUT/obscenity.json" messages_per_s)
O_MSGS=$(jget "$OUT/obscenity.json" messages)
O_MATCHED=$(jget "$OUT/obscenity.json" matched)
O_SECS=$(jget "$OUT/obscenity.json" seconds)

# ---- 5. report
G=$OUT/genstream.json
CPU=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
echo
echo "whiply benchmark  ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo "machine:  ${CPU:-unknown CPU}, nproc $(nproc), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "stream:   $EVENTS message events, seed $SEED, $(du -h "$OUT/events.ndjson" | cut -f1) ($OUT/events.ndjson);" \
     "text length p50/p99 $(jget "$G" all.length_cps.p50)/$(jget "$G" all.length_cps.p99) code points;" \
     "non-ASCII $(node -e "console.log((100*$(jget "$G" all.non_ascii_share)).toFixed(1))")%"
echo "rules:    $OUT/rules.yaml: $(jget "$G" terms) list terms, $(jget "$G" regex_rules) regex rules, shape and link rules"
echo "injected: $(jget "$G" all.plain_profanity) plain list terms + $(jget "$G" all.evasions) evasions" \
     "(first $SUB events: $(jget "$G" prefix.plain_profanity) + $(jget "$G" prefix.evasions))"
echo
if [ "$HAVE_WHIPLY" = 1 ]; then
    printf '%-22s %8s %12s %9s %9s %9s %9s %10s %13s %13s\n' engine threads "events/s" "p50 us" "p99 us" \
        "p99.9 us" "max us" "peak RSS" "profanity" "profanity@sub"
    for t in $THREADS; do
        printf '%-22s %8s %12s %9s %9s %9s %9s %10s %13s %13s\n' whiply "$t" "$(printf '%.0f' "${W_EPS[$t]}")" \
            "${W_P50[$t]}" "${W_P99[$t]}" "${W_P999[$t]}" "${W_MAX[$t]}" \
            "$(awk -v k="${W_RSS[$t]}" 'BEGIN{printf "%.1f MB", k/1024}')" "${W_CATCH[$t]}" "${W_CATCH_SUB[$t]}"
    done
    printf '%-22s %8s %12s %9s %9s %9s %9s %10s %13s %13s\n' "obscenity $(node -p "require('./$NM/obscenity/package.json').version")" 1 \
        "$O_MPS" - - - - - - "$O_MATCHED"
    echo
    echo "profanity = events whose decision lists the 'profanity' rule (whole stream);"
    echo "profanity@sub = the same over the first $O_MSGS events, the ones obscenity ran on (obscenity: hasMatch true)."
    echo "obscenity: $O_MSGS messages in ${O_SECS}s (timed pass after a warm-up); whiply events are all messages, so"
    echo "events/s and messages/s compare directly. Latency is whiply's per-event figure from --stats."
    for t in $THREADS; do
        echo "throughput ratio whiply($t thread$([ "$t" = 1 ] || echo s))/obscenity: $(awk -v a="${W_EPS[$t]}" -v b="$O_MPS" 'BEGIN{printf "%.1fx", a/b}')"
    done
else
    echo "whiply: not run ($WHIPLY missing)"
    echo "obscenity $(node -p "require('./$NM/obscenity/package.json').version"): $O_MSGS messages in ${O_SECS}s," \
         "$O_MPS messages/s, $O_MATCHED matched"
fi
echo
echo "catches by kind of injected term (first $O_MSGS events):"
if [ -n "$FIRST_DECISIONS" ]; then
    node bench/catches.js --truth "$OUT/truth.ndjson" --limit "$SUB" \
        --decisions "$FIRST_DECISIONS" --obscenity-matched "$OUT/obscenity-matched.txt"
else
    node bench/catches.js --truth "$OUT/truth.ndjson" --limit "$SUB" \
        --obscenity-matched "$OUT/obscenity-matched.txt"
fi
[ "$HAVE_WHIPLY" = 1 ] || exit 1

# ---- 6. startup (100 terms + 50 regexes, 10,000 and 50,000 terms), cold and from the database cache
echo
WHIPLY="$WHIPLY" bench/startup.sh
