#!/usr/bin/env bash
# bench/dashboard.sh - what the dashboard costs the daemon, and how the page holds up (issue 20):
#   1. the daemon's throughput (POST /v1/events with wrk, NDJSON bodies of 100 events, the
#      audit on) with no dashboard open and with three, each reading GET /v1/stream in full
#      (curl -N, as an open feed does: every decision, with its text, is sent to each):
#      rounds interleaved (none, three, none, three, ...), events/s of each and the change
#   2. the page in Debian's chromium (bench/dashboard_browser.mjs): first load on loopback,
#      and the live feed with RATE decisions/s flowing for 10 s: long tasks (PerformanceObserver
#      'longtask') and what the page showed
# Prints the figures and the machine; bench/RESULTS.md keeps them.
#
#   bench/dashboard.sh                  # about a minute and a half
#   DURATION=5 ROUNDS=2 bench/dashboard.sh
#
# Environment: WHIPLY=build/whiply, EVENTS=bench/out/events.ndjson (made by
# bench/core_stream.sh when missing), DURATION=10 (s a round), ROUNDS=3, CONNS=8 (wrk),
# SUBSCRIBERS=3, RATE=10000 (decisions/s for part 2), PARTS="daemon browser".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
WHIPLY=${WHIPLY:-build/whiply}
OUT=bench/out
EVENTS=${EVENTS:-$OUT/events.ndjson}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-8}
SUBSCRIBERS=${SUBSCRIBERS:-3}
RATE=${RATE:-10000}
PARTS=${PARTS:-"daemon browser"}
say() { printf '%s\n' "$*" >&2; }
for c in wrk curl node; do command -v $c >/dev/null || { say "dashboard: '$c' is required"; exit 2; }; done
mkdir -p "$OUT"
if [ ! -s "$EVENTS" ]; then
    say "dashboard: generating 200000 events (seed 42) into $EVENTS"
    bench/core_stream.sh "$OUT" 200000 42 >/dev/null
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/whiply-dash.XXXXXX")
WPID=
SUBS=()
cleanup() {
    for p in "${SUBS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ " $PARTS " == *" daemon "* ]]; then
    TOKEN=bench-dashboard-token-0123456789
    printf 'listen: "127.0.0.1:0"\ntokens:\n  - name: bench\n    sha256: %s\n    scopes: [admin]\n' \
        "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" >"$TMP/whiply.yaml"
    "$WHIPLY" serve --config "$TMP/whiply.yaml" --data "$TMP/data" --rules examples/rules.yaml 2>"$TMP/log" &
    WPID=$!
    for _ in $(seq 1 600); do grep -q 'listening on' "$TMP/log" && break; sleep 0.1; done
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/log")
    [ -n "$PORT" ] || { say "dashboard: the daemon did not start: $(cat "$TMP/log")"; exit 1; }
    URL=http://127.0.0.1:$PORT
    wrk -t1 -c"$CONNS" -d2s -s bench/serve_events.lua "$URL/v1/events" -- "$TOKEN" "$EVENTS" 100 2000 >/dev/null # warm-up
    declare -A SUM=([none]=0 [three]=0)
    for r in $(seq 1 "$ROUNDS"); do
        for mode in none three; do
            SUBS=()
            if [ $mode = three ]; then
                for s in $(seq 1 "$SUBSCRIBERS"); do
                    curl -sN -H "Authorization: Bearer $TOKEN" "$URL/v1/stream" >"$TMP/sub$s" &
                    SUBS+=($!)
                done
                sleep 0.5 # subscribed (the streams' first bytes) before the load starts
            fi
            # 100 events a request: events/s = requests/s x 100
            eps=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/serve_events.lua "$URL/v1/events" -- "$TOKEN" "$EVENTS" 100 2000 2>&1 |
                awk '/Requests\/sec/ { printf "%.0f", $2 * 100 }')
            got=""
            if [ $mode = three ]; then
                for p in "${SUBS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
                got=" (each subscriber read $(grep -c '^event: decision' "$TMP/sub1") decisions, $(grep -c '^event: lagging' "$TMP/sub1") lagging notices)"
                SUBS=()
            fi
            printf 'round %d, %-5s dashboards: %s events/s%s\n' "$r" "$mode" "$eps" "$got"
            SUM[$mode]=$(awk -v a="${SUM[$mode]}" -v b="$eps" 'BEGIN { print a + b }')
        done
    done
    awk -v n="${SUM[none]}" -v t="${SUM[three]}" -v r="$ROUNDS" -v s="$SUBSCRIBERS" 'BEGIN {
        printf "daemon: %.0f events/s with no dashboard, %.0f with %d reading the stream: %+.1f%%\n", n / r, t / r, s, (t - n) * 100 / n }'
    echo "daemon peak RSS (VmHWM): $(awk '/^VmHWM/ { printf "%.1f MB", $2 / 1024 }' /proc/$WPID/status)"
    kill "$WPID"
    wait "$WPID"
    WPID=
fi
if [[ " $PARTS " == *" browser "* ]]; then
    RATE=$RATE node bench/dashboard_browser.mjs "$WHIPLY"
fi
