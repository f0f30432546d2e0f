#!/usr/bin/env bash
# bench/dashboard.sh - what the dashboard costs the daemon, and how the page holds up (issue 20):
#   1. the daemon's throughput (POST /v1/events with wrk, NDJSON bodies of 100 events, the
#      audit on) with no dashboard open and with three, each reading GET /v1/stream as an open
#      live feed asks for it (curl -N, STREAM_QUERY=?allow=50: every decision but plain allows,
#      with its text, and at most 50 plain allows a second; STREAM_QUERY=?allow=all for every
#      one): rounds interleaved (none, three, none, three, ...), events/s of each and the change,
#      and the CPU time each event cost the daemon (and the readers) from /proc: on a machine
#      shared with other work, throughput moves with their load, CPU per event much less
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
# SUBSCRIBERS=3, STREAM_QUERY="?allow=50", RATE=10000 (decisions/s for part 2),
# PARTS="daemon browser".
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
STREAM_QUERY=${STREAM_QUERY:-"?allow=50"}
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

echo "stream as asked: GET /v1/stream$STREAM_QUERY"
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
    declare -A SUM=([none]=0 [three]=0) CPU=([none]=0 [three]=0) RCPU=([none]=0 [three]=0) EV=([none]=0 [three]=0)
    ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime
    HZ=$(getconf CLK_TCK)
    for r in $(seq 1 "$ROUNDS"); do
        for mode in none three; do
            SUBS=()
            if [ $mode = three ]; then
                for s in $(seq 1 "$SUBSCRIBERS"); do
                    curl -sN -H "Authorization: Bearer $TOKEN" "$URL/v1/stream$STREAM_QUERY" >"$TMP/sub$s" &
                    SUBS+=($!)
                done
                sleep 0.5 # subscribed (the streams' first bytes) before the load starts
            fi
            # 100 events a request: events/s = requests/s x 100
            c0=$(ticks "$WPID")
            w=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/serve_events.lua "$URL/v1/events" -- "$TOKEN" "$EVENTS" 100 2000 2>&1)
            c1=$(ticks "$WPID")
            eps=$(awk '/Requests\/sec/ { printf "%.0f", $2 * 100 }' <<<"$w")
            nev=$(awk '/requests in/ { print $1 * 100 }' <<<"$w")
            rc=0
            got=""
            if [ $mode = three ]; then
                for p in "${SUBS[@]}"; do rc=$((rc + $(ticks "$p"))); kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
                got=" (a subscriber read $(grep -c '^event: decision' "$TMP/sub1") decisions, $(grep -c '^event: lagging' "$TMP/sub1") lagging notices; $(awk '/^event: stats/ { s = 1; next } s && /^data: / { sub(/.*"sampled_out":/, ""); n += $0 + 0 } { s = 0 } END { print n + 0 }' "$TMP/sub1") allows sampled out)"
                SUBS=()
            fi
            printf 'round %d, %-5s dashboards: %s events/s, daemon %.2f us CPU an event%s\n' "$r" "$mode" "$eps" \
                "$(awk -v c=$((c1 - c0)) -v n="$nev" -v hz="$HZ" 'BEGIN { print c / hz * 1e6 / n }')" "$got"
            SUM[$mode]=$(awk -v a="${SUM[$mode]}" -v b="$eps" 'BEGIN { print a + b }')
            CPU[$mode]=$((CPU[$mode] + c1 - c0))
            RCPU[$mode]=$((RCPU[$mode] + rc))
            EV[$mode]=$((EV[$mode] + nev))
        done
    done
    awk -v n="${SUM[none]}" -v t="${SUM[three]}" -v r="$ROUNDS" -v s="$SUBSCRIBERS" 'BEGIN {
        printf "daemon: %.0f events/s with no dashboard, %.0f with %d reading the stream: %+.1f%% (ratio %.3f)\n", n / r, t / r, s, (t - n) * 100 / n, t / n }'
    awk -v cn="${CPU[none]}" -v ct="${CPU[three]}" -v rt="${RCPU[three]}" -v en="${EV[none]}" -v et="${EV[three]}" -v hz="$HZ" 'BEGIN {
        n = cn / hz * 1e6 / en; t = ct / hz * 1e6 / et; r = rt / hz * 1e6 / et
        printf "daemon CPU an event: %.2f us with no dashboard, %.2f with the readers (%+.1f%%); the readers %.2f us an event; throughput on a machine of its own: ratio %.3f\n", n, t, (t - n) * 100 / n, r, n / (t + r) }'
    echo "daemon peak RSS (VmHWM): $(awk '/^VmHWM/ { printf "%.1f MB", $2 / 1024 }' /proc/$WPID/status)"
    kill "$WPID"
    wait "$WPID"
    WPID=
fi
if [[ " $PARTS " == *" browser "* ]]; then
    RATE=$RATE node bench/dashboard_browser.mjs "$WHIPLY"
fi
