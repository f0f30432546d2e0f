#!/usr/bin/env bash
# bench/serve.sh - benchmark of the HTTP daemon (`whiply serve`) on loopback, with wrk:
#   1. events: POST /v1/events, NDJSON bodies of 100 events, at a few connection counts:
#      events/s, latency p50/p99, the daemon's peak RSS; the audit trail is on (every
#      decision is committed to SQLite before its answer), and `whiply audit verify` must pass
#      after SIGTERM                                           (target: >= 150,000 events/s)
#      Then the floors of its audit, in the same run (bench/audit_bench.c): the same rows as
#      plain SQLite inserts alone, in transactions of the daemon's rows/commit, and the audit
#      store alone (the writer's chain and group commit, 16 producers of 100 rows, no HTTP)
#   2. single: one event per request (application/json) on keep-alive connections, paced to
#      about SINGLE_RATE requests/s: p50/p90/p99              (target: p99 < 2 ms at 20k/s)
#   3. ratelimit: POST /v1/ratelimit, NDJSON bodies of 100 requests from one seeded key stream,
#      against Redis 7 running a GCRA script (bench/redis_gcra.lua) fed the same stream as
#      pipelined EVALSHA commands (redis-cli --pipe): decisions/s, ratio whiply/Redis, and the
#      allowed fraction of each over one pass of the stream    (target: >= 100,000 decisions/s)
# Then a summary block. One daemon serves all parts (fresh temporary data dir, audit always
# on), in the order of PARTS: the audit grows through the run (part 1 writes ~6M rows), and
# later parts run against that database; PARTS=single alone measures a fresh daemon.
#
#   bench/serve.sh                              # about 1.5 minutes
#   RULES=examples/behaviour.yaml bench/serve.sh
#   DURATION=5 PARTS=events CONNS="8" bench/serve.sh
#   PERF=1 bench/serve.sh                       # also perf-profiles the daemon in each part
#
# Environment (all optional):
#   WHIPLY=build/whiply        the binary under test
#   EVENTS=bench/out/events.ndjson   events file (NDJSON); when the default is missing it is
#                              generated as bench/run.sh does (GEN_EVENTS=200000, seed 42)
#   RULES=examples/rules.yaml  the daemon's --rules
#   CONFIG=                    a whiply.yaml for the daemon (e.g. to set limits.dedupe)
#   DURATION=10                seconds of each measured wrk run
#   CONNS="4 8 16"             connection counts of part 1 (wrk -t1: one client thread)
#   PARTS="events single ratelimit"
#   PER_BODY=100 BODIES=2000   part 1: events per request, distinct bodies (cycled)
#   SINGLE_RATE=20000          part 2: the request rate to hold
#   SINGLE_DELAY=1             part 2: ms a connection waits after an answer (wrk delay())
#   RL_REQUESTS=200000 RL_KEYS=10000 RL_SEED=1   part 3's key stream (skewed: key = K*u^2)
#   RL_BURST=9 RL_RATE=10 RL_PERIOD=60           part 3's limit (10 at once, then 1 per 6 s)
#   RL_FAST="9 20 1"           part 3: a second limit (burst rate period) for the agreement
#                              check only, one that refills within a pass
#   RL_CONNS=8                 part 3: wrk connections
#   REDIS_PASSES=5             part 3: times the stream is piped to Redis in the timed run
#   AUDIT_BENCH=<WHIPLY's dir>/audit_bench   part 1's audit floors (skipped when missing)
#   FLOOR_ROWS=300000          rows each floor writes
#   PERF=0                     1: `perf record -g` the daemon during the last wrk run of each
#                              part (and Redis during its timed run); the reports go to
#                              bench/out/serve/perf-*.txt
#
# Columns of part 1: daemon CPU = its CPU seconds over the run's wall seconds (cores); wrk
# CPU likewise; us CPU/ev = daemon CPU time per event; engine us/ev = the daemon's
# whiply_engine_seconds_per_event (a request's wall time from analysis to audit submission
# over its events, so lock waits and preemption count); rows/commit = audit rows per SQLite
# transaction. "daemon threads" splits the daemon's CPU by thread (from /proc, 1 s into the
# run to 1 s before its end).
#
# wrk here is Debian's wrk 4.1: closed loop. Each connection sends its next request only
# after the previous answer (plus the delay() in part 2), so when the daemon stalls, the
# requests a fixed-rate client would have sent during the stall are never sent and never
# measured: the percentiles are optimistic (coordinated omission). Part 2 therefore also
# prints percentiles corrected the way wrk2/HdrHistogram do it (each slow answer adds the
# answers that requests on the intended per-connection schedule would have waited), as an
# estimate of what an open-loop client at SINGLE_RATE would see.
#
# Needs: wrk, curl, redis-server and redis-cli (part 3), awk; perf with PERF=1. Outputs and
# wrk logs go to bench/out/serve/ (git-ignored).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=bench/out
SOUT=$OUT/serve
WHIPLY=${WHIPLY:-build/whiply}
EVENTS=${EVENTS:-$OUT/events.ndjson}
RULES=${RULES:-examples/rules.yaml}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"4 8 16"}
PARTS=${PARTS:-"events single ratelimit"}
PER_BODY=${PER_BODY:-100}
BODIES=${BODIES:-2000}
SINGLE_RATE=${SINGLE_RATE:-20000}
SINGLE_DELAY=${SINGLE_DELAY:-1}
RL_REQUESTS=${RL_REQUESTS:-200000}
RL_KEYS=${RL_KEYS:-10000}
RL_SEED=${RL_SEED:-1}
RL_BURST=${RL_BURST:-9}
RL_RATE=${RL_RATE:-10}
RL_PERIOD=${RL_PERIOD:-60}
RL_CONNS=${RL_CONNS:-8}
REDIS_PASSES=${REDIS_PASSES:-5}
RL_FAST=${RL_FAST:-"9 20 1"}
PERF=${PERF:-0}
GEN_EVENTS=${GEN_EVENTS:-200000}
AUDIT_BENCH=${AUDIT_BENCH:-$(dirname "$WHIPLY")/audit_bench}
FLOOR_ROWS=${FLOOR_ROWS:-300000}

say() { printf '%s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "serve: '$1' is required"; exit 2; }; }
need wrk
need curl
need awk
case " $PARTS " in *" ratelimit "*) need redis-server; need redis-cli ;; esac
[ "$PERF" = 1 ] && need perf
if [ ! -x "$WHIPLY" ]; then
    say "serve: $WHIPLY not found or not executable (build it: ninja -C build)"
    exit 1
fi
mkdir -p "$SOUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/whiply-serve.XXXXXX")
WPID=
RPID=
cleanup() {
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- helpers
commas() { printf '%s' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
# one field of a wrk-result line: wget FILE KEY
wget_() { sed -n 's/.*wrk-result .*\<'"$2"'=\([-0-9.]*\).*/\1/p' "$1" | tail -n 1; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$WPID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$WPID/stat"; }
TCK=$(getconf CLK_TCK)
# the daemon's threads: "NANOSECONDS" then "TID COMM TICKS" lines
task_snap() {
    date +%s%N
    awk '{ f = FILENAME; sub("/stat$", "", f); sub(".*/", "", f); print f, $2, $14 + $15 }' \
        "/proc/$WPID"/task/*/stat 2>/dev/null || true
}
# CPU of the daemon's threads between the two snapshots of a run, in cores, busiest first:
# the main thread, MHD's listener, the connection threads (one per connection, summed), and
# every other thread by id (the audit writer is the busy one, the checkpointer the other).
threads_line() {
    [ -s "$TMP/$1.task1" ] || return 0
    awk -v pid="$WPID" -v k="$TCK" '
        FNR == 1 { if (NR == 1) t0 = $1; else t1 = $1; next }
        NR == FNR { a[$1] = $3; next }
        ($1 in a) {
            d = $3 - a[$1]
            if ($1 == pid) g = "main"
            else if ($2 == "(MHD-connection)") { g = "MHD-connection"; nc++ }
            else { g = $2 "[" $1 "]"; gsub(/[()]/, "", g) }
            cpu[g] += d
        }
        END {
            secs = (t1 - t0) / 1e9
            for (g in cpu) printf "%s %.2f\n", (g == "MHD-connection" ? g "x" nc : g), cpu[g] / k / secs
        }' "$TMP/$1.task0" "$TMP/$1.task1" | sort -k2 -rn | awk '
        $2 >= 0.005 { printf "%s%s %s", (n++ ? ", " : ""), $1, $2 } END { print "" }'
}
wcurl() { curl -sS --noproxy '*' -H "Authorization: Bearer $TOKEN" "$@"; }
# metrics snapshot: snap NAME -> $TMP/m.NAME
snap() { wcurl "$URL/metrics" | grep -v '^#' | sed 's/{}//' >"$TMP/m.$1"; }
# one metric (exact name with labels) from a snapshot: mval NAME METRIC
mval() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$TMP/m.$1"; }
# difference of a metric between two snapshots: mdiff A B METRIC
mdiff() { awk -v a="$(mval "$1" "$3")" -v b="$(mval "$2" "$3")" 'BEGIN { printf "%.9g", b - a }'; }

# run_wrk LABEL CONNS SECONDS SCRIPT ARGS...: wrk -t1 with --latency; the output goes to
# $SOUT/wrk-LABEL.txt, wrk's CPU (user+sys s) to $TMP/LABEL.wcpu, the daemon's CPU ticks
# during the run to $TMP/LABEL.dcpu; metrics are snapshotted before and after (LABEL.0/.1).
# With PERF=1 and PROFILE=LABEL set, the daemon is perf-recorded during the run.
run_wrk() {
    local label=$1 c=$2 secs=$3 script=$4
    shift 4
    local c0 c1 perfpid=
    snap "$label.0"
    c0=$(cpu_ticks)
    # per-thread CPU from 1 s into the run to 1 s before its end (the connection threads
    # live as long as wrk's connections)
    local samp=
    if [ "$secs" -ge 4 ]; then
        { sleep 1; task_snap >"$TMP/$label.task0"; sleep $((secs - 2)); task_snap >"$TMP/$label.task1"; } &
        samp=$!
    fi
    if [ "$PERF" = 1 ] && [ "${PROFILE:-}" = "$label" ]; then
        # from 1 s into the run (perf -p follows the threads that exist when it attaches, so
        # wait for wrk's connections and their threads) to 1 s before its end
        { sleep 1; perf record -q -F 499 -g -p "$WPID" -o "$TMP/perf.$label.data" -- sleep $((secs - 2)); } \
            >/dev/null 2>"$TMP/perf.$label.err" &
        perfpid=$!
    fi
    /usr/bin/time -o "$TMP/$label.time" -f '%U %S' \
        wrk -t1 -c"$c" -d"${secs}s" --timeout 10s --latency -s "$script" "$URL" -- "$@" \
        >"$SOUT/wrk-$label.txt" 2>&1 || {
        say "serve: wrk ($label) failed:"
        cat "$SOUT/wrk-$label.txt" >&2
        exit 1
    }
    c1=$(cpu_ticks)
    snap "$label.1"
    [ -n "$samp" ] && { wait "$samp" || true; }
    awk '{ print $1 + $2 }' "$TMP/$label.time" >"$TMP/$label.wcpu"
    echo $((c1 - c0)) >"$TMP/$label.dcpu"
    if [ -n "$perfpid" ]; then
        wait "$perfpid" || true
        {
            echo "# perf record -F 499 -g -p <whiply serve> during wrk run '$label' ($c connections)"
            echo "# by thread name:"
            perf report -i "$TMP/perf.$label.data" --no-children --sort comm --stdio -g none 2>/dev/null |
                grep -v '^#' | grep -v '^$' | head -n 8
            echo "# by symbol (self):"
            perf report -i "$TMP/perf.$label.data" --no-children --sort dso,symbol --stdio -g none \
                --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 45
        } >"$SOUT/perf-$label.txt"
    fi
    if ! grep -q 'wrk-result' "$SOUT/wrk-$label.txt"; then
        say "serve: no result line from wrk ($label):"
        cat "$SOUT/wrk-$label.txt" >&2
        exit 1
    fi
    local errs
    errs=$(awk -v s="$(wget_ "$SOUT/wrk-$label.txt" err_status)" -v t="$(wget_ "$SOUT/wrk-$label.txt" err_timeout)" \
        -v r="$(wget_ "$SOUT/wrk-$label.txt" err_read)" -v c="$(wget_ "$SOUT/wrk-$label.txt" err_connect)" \
        'BEGIN { print s + t + r + c }')
    if [ "$errs" != 0 ]; then
        say "serve: note: wrk ($label) counted $errs errors (non-2xx answers, timeouts, read/connect errors):"
        grep -E 'Non-2xx|Socket errors' "$SOUT/wrk-$label.txt" >&2 || true
    fi
}
# daemon CPU during a run, in cores (CPU seconds / wall seconds of the run)
dcores() { awk -v t="$(cat "$TMP/$1.dcpu")" -v k="$TCK" -v d="$(wget_ "$SOUT/wrk-$1.txt" duration_us)" \
    'BEGIN { printf "%.2f", t / k / (d / 1e6) }'; }
wcores() { awk -v t="$(cat "$TMP/$1.wcpu")" -v d="$(wget_ "$SOUT/wrk-$1.txt" duration_us)" \
    'BEGIN { printf "%.2f", t / (d / 1e6) }'; }

# ---- the events file
if [ ! -s "$EVENTS" ]; then
    if [ "$EVENTS" != "$OUT/events.ndjson" ]; then
        say "serve: $EVENTS not found"
        exit 1
    fi
    say "serve: generating $GEN_EVENTS events (seed 42) into $EVENTS"
    bench/core_stream.sh "$OUT" "$GEN_EVENTS" 42
fi

# ---- the daemon: port 0 (it picks a free one and logs it), fresh data dir, audit on
DATA=$TMP/data
mkdir -p "$DATA"
# shellcheck disable=SC2086
"$WHIPLY" serve ${CONFIG:+--config "$CONFIG"} --listen 127.0.0.1:0 --data "$DATA" --rules "$RULES" 2>"$SOUT/daemon.log" &
WPID=$!
PORT=
for _ in $(seq 1 300); do
    PORT=$(sed -n 's|^whiply: listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$SOUT/daemon.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$WPID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    say "serve: the daemon did not start listening; its log:"
    cat "$SOUT/daemon.log" >&2
    exit 1
fi
URL=http://127.0.0.1:$PORT
TOKEN=$(cat "$DATA/admin.token")

CPU=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
[ -n "$(git status --porcelain -- src include meson.build 2>/dev/null)" ] && REV="$REV+local changes"
NEV=$(wc -l <"$EVENTS")
echo
echo "whiply serve benchmark  ($(date -u +%Y-%m-%dT%H:%M:%SZ), whiply $REV)"
echo "machine:  ${CPU:-unknown CPU}, nproc $(nproc), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "client:   $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2), one thread (-t1), on the same machine"
echo "daemon:   $WHIPLY serve on $URL, rules $RULES, data $DATA (audit on), pid $WPID"
echo "events:   $EVENTS ($(commas "$NEV") events)"

declare -A R # results for the summary

# ================================================================ 1. events
part_events() {
    echo
    echo "== 1. events: POST /v1/events, $PER_BODY events per request (NDJSON), $BODIES distinct bodies" \
         "cycled (the first $(commas $((PER_BODY * BODIES))) events), ${DURATION}s per run"
    local c label last= eps best=0 bestc=
    for c in $CONNS; do last=$c; done
    printf '%6s %9s %10s %9s %9s %9s %9s %12s %9s %11s %12s %10s\n' conns "req/s" "events/s" p50 p90 p99 p99.9 \
        "daemon CPU" "wrk CPU" "us CPU/ev" "engine us/ev" "rows/commit"
    for c in $CONNS; do
        label=events.c$c
        say "serve: [1] wrk -c$c, ${DURATION}s"
        PROFILE=events.c$last run_wrk "$label" "$c" "$DURATION" bench/serve_events.lua \
            "$TOKEN" "$EVENTS" "$PER_BODY" "$BODIES"
        local f=$SOUT/wrk-$label.txt rps dev rows commits
        rps=$(wget_ "$f" rps)
        eps=$(awk -v r="$rps" -v n="$PER_BODY" 'BEGIN { printf "%.0f", r * n }')
        dev=$(mdiff "$label.0" "$label.1" whiply_events_total)
        rows=$(mdiff "$label.0" "$label.1" whiply_audit_rows_total)
        commits=$(mdiff "$label.0" "$label.1" whiply_audit_commits_total)
        printf '%6s %9s %10s %9s %9s %9s %9s %12s %9s %11s %12s %10s\n' "$c" "$(printf '%.0f' "$rps")" \
            "$(commas "$eps")" "$(ms "$(wget_ "$f" p50_us)")" "$(ms "$(wget_ "$f" p90_us)")" \
            "$(ms "$(wget_ "$f" p99_us)")" "$(ms "$(wget_ "$f" p999_us)")" "$(dcores "$label") cores" \
            "$(wcores "$label")" \
            "$(awk -v t="$(cat "$TMP/$label.dcpu")" -v k="$TCK" -v n="$dev" 'BEGIN { printf "%.2f", n ? t / k / n * 1e6 : 0 }')" \
            "$(awk -v s="$(mdiff "$label.0" "$label.1" whiply_engine_seconds_per_event_sum)" -v n="$(mdiff "$label.0" "$label.1" whiply_engine_seconds_per_event_count)" \
                'BEGIN { printf "%.2f", n ? s / n * 1e6 : 0 }')" \
            "$(awk -v r="$rows" -v c="$commits" 'BEGIN { printf "%.0f", c ? r / c : 0 }')"
        R[ev.$c]="$eps $(wget_ "$f" p50_us) $(wget_ "$f" p99_us)"
        if [ "$eps" -gt "$best" ]; then best=$eps; bestc=$c; fi
        # the daemon answered one decision per event sent
        local sent
        sent=$(awk -v r="$(wget_ "$f" requests)" -v n="$PER_BODY" 'BEGIN { print r * n }')
        if awk -v a="$dev" -v b="$sent" 'BEGIN { exit !(a < b) }'; then
            say "serve: note: the daemon counted $dev events for $sent sent in answered requests ($label)"
        fi
        local csec
        csec=$(mdiff "$label.0" "$label.1" whiply_audit_commit_seconds_total)
        R[evnote.$c]="audit: $(commas "$(printf '%.0f' "$(mval "$label.0" whiply_audit_rows_total)")") rows before the run, $(commas "$(printf '%.0f' "$rows")") rows in $(commas "$(printf '%.0f' "$commits")") commits, commit time $(awk -v s="$csec" -v d="$(wget_ "$f" duration_us)" 'BEGIN { printf "%.2f s (%.0f%% of the run)", s, 100 * s / (d / 1e6) }')"
    done
    for c in $CONNS; do
        echo "  c=$c ${R[evnote.$c]}"
        [ -s "$TMP/events.c$c.task1" ] && echo "       daemon threads (cores): $(threads_line "events.c$c")"
    done
    R[ev.best]="$best $bestc"
    audit_floors "$last"
    R[ev.hwm]=$(hwm_kb)
    echo "daemon peak RSS after part 1 (VmHWM): $(awk -v k="${R[ev.hwm]}" 'BEGIN { printf "%.1f MB", k / 1024 }')"
    [ "$PERF" = 1 ] && echo "profile: $SOUT/perf-events.c$last.txt" && head -n 40 "$SOUT/perf-events.c$last.txt"
    return 0
}

# The audit's floors, beside part 1's figures (issue 17): the rows the daemon writes for the
# events file's decisions, as plain SQLite inserts alone in transactions of the rows/commit
# the daemon reached at c=$1, and through the audit store alone (hash chain, queue, group
# commit; no HTTP, no engine). One CPU core's worth of each is its ceiling in events/s.
audit_floors() {
    [ -x "$AUDIT_BENCH" ] || { echo "audit floors: $AUDIT_BENCH not built, skipped"; return 0; }
    local c=$1 label=events.c$1 rows commits batch m
    rows=$(mdiff "$label.0" "$label.1" whiply_audit_rows_total)
    commits=$(mdiff "$label.0" "$label.1" whiply_audit_commits_total)
    batch=$(awk -v r="$rows" -v c="$commits" 'BEGIN { b = c ? int(r / c + 0.5) : 1000; print b < 1 ? 1 : b }')
    "$WHIPLY" check --rules "$RULES" <"$EVENTS" >"$TMP/decisions.ndjson" 2>/dev/null || true
    echo "audit floors (same machine, just after the runs above; $(commas "$FLOOR_ROWS") rows of the events file's decisions):"
    printf '  %-44s %12s %12s %10s %12s\n' "" "rows/s" "CPU us/row" "bytes/row" "WAL B/row"
    for m in "floor $batch" "store 100 16"; do
        rm -rf "$TMP/floor"
        # shellcheck disable=SC2086
        "$AUDIT_BENCH" ${m%% *} "$EVENTS" "$TMP/decisions.ndjson" "$FLOOR_ROWS" ${m#* } "$TMP/floor" \
            >"$TMP/floor.out" 2>/dev/null || { echo "  audit_bench ${m%% *} failed"; continue; }
        f() { sed -n 's/.*\<'"$1"'=\([-0-9.]*\).*/\1/p' "$TMP/floor.out" | head -n 1; }
        printf '  %-44s %12s %12s %10s %12s\n' \
            "$([ "${m%% *}" = floor ] && echo "SQLite inserts alone ($batch rows a transaction)" || echo "audit store alone (16 x 100-row submits)")" \
            "$(commas "$(f rows_per_s)")" "$(f cpu_us_per_row)" "$(f bytes_per_row)" "$(f wal_bytes_per_row)"
        R[floor.${m%% *}]="$(f rows_per_s) $(f cpu_us_per_row)"
    done
    rm -rf "$TMP/floor"
}

# ================================================================ 2. single events, paced
part_single() {
    echo
    echo "== 2. single events: POST /v1/events, one event per request (application/json), keep-alive," \
         "paced to ~$(commas "$SINGLE_RATE") req/s (wrk delay() ${SINGLE_DELAY} ms per connection)"
    # Calibrate the connection count: each connection manages about 1 / (delay + latency +
    # timer slack) requests/s, so run twice for 2 s and scale.
    local c=24 i rps
    for i in 1 2; do
        say "serve: [2] calibration $i: wrk -c$c, 2s"
        run_wrk "single.cal$i" "$c" 2 bench/serve_single.lua "$TOKEN" "$EVENTS" 1 20000 "$SINGLE_DELAY"
        rps=$(wget_ "$SOUT/wrk-single.cal$i.txt" rps)
        c=$(awk -v c="$c" -v r="$rps" -v t="$SINGLE_RATE" 'BEGIN { n = int(c * t / r + 0.5); if (n < 1) n = 1; if (n > 400) n = 400; print n }')
    done
    local iv
    iv=$(awk -v c="$c" -v t="$SINGLE_RATE" 'BEGIN { printf "%.0f", c * 1e6 / t }')
    say "serve: [2] wrk -c$c, ${DURATION}s"
    WRK_CO_INTERVAL_US=$iv PROFILE=single run_wrk single "$c" "$DURATION" bench/serve_single.lua \
        "$TOKEN" "$EVENTS" 1 20000 "$SINGLE_DELAY"
    local f=$SOUT/wrk-single.txt
    rps=$(wget_ "$f" rps)
    printf '%6s %9s %9s %9s %9s %9s %9s %12s %9s\n' conns "req/s" p50 p90 p99 p99.9 max "daemon CPU" "wrk CPU"
    printf '%6s %9s %9s %9s %9s %9s %9s %12s %9s\n' "$c" "$(commas "$(printf '%.0f' "$rps")")" \
        "$(ms "$(wget_ "$f" p50_us)")" "$(ms "$(wget_ "$f" p90_us)")" "$(ms "$(wget_ "$f" p99_us)")" \
        "$(ms "$(wget_ "$f" p999_us)")" "$(ms "$(wget_ "$f" max_us)")" "$(dcores single) cores" "$(wcores single)"
    echo "corrected for coordinated omission (schedule of one request per $(ms "$iv") per connection):" \
         "p50 $(ms "$(wget_ "$f" co_p50_us)"), p90 $(ms "$(wget_ "$f" co_p90_us)")," \
         "p99 $(ms "$(wget_ "$f" co_p99_us)"), p99.9 $(ms "$(wget_ "$f" co_p999_us)")"
    # the daemon's own view: request time from its first callback to the answer queued
    local n b1 b25 a0=single.0 a1=single.1
    n=$(mdiff $a0 $a1 'whiply_http_request_duration_seconds_count{route="events"}')
    b1=$(mdiff $a0 $a1 'whiply_http_request_duration_seconds_bucket{route="events",le="0.001"}')
    b25=$(mdiff $a0 $a1 'whiply_http_request_duration_seconds_bucket{route="events",le="0.0025"}')
    echo "daemon-side request time: mean $(awk -v s="$(mdiff $a0 $a1 'whiply_http_request_duration_seconds_sum{route="events"}')" -v n="$n" 'BEGIN { printf "%.3f ms", n ? 1000 * s / n : 0 }'),"\
         "$(awk -v a="$b1" -v n="$n" 'BEGIN { printf "%.2f%%", n ? 100 * a / n : 0 }') within 1 ms," \
         "$(awk -v a="$b25" -v n="$n" 'BEGIN { printf "%.3f%%", n ? 100 * a / n : 0 }') within 2.5 ms;" \
         "engine $(awk -v s="$(mdiff $a0 $a1 whiply_engine_seconds_per_event_sum)" -v n="$(mdiff $a0 $a1 whiply_engine_seconds_per_event_count)" 'BEGIN { printf "%.1f us", n ? s / n * 1e6 : 0 }')/event;" \
         "audit $(awk -v r="$(mdiff $a0 $a1 whiply_audit_rows_total)" -v c="$(mdiff $a0 $a1 whiply_audit_commits_total)" 'BEGIN { printf "%.1f", c ? r / c : 0 }') rows/commit," \
         "$(awk -v s="$(mdiff $a0 $a1 whiply_audit_commit_seconds_total)" -v c="$(mdiff $a0 $a1 whiply_audit_commits_total)" 'BEGIN { printf "%.0f us", c ? 1e6 * s / c : 0 }')/commit"
    [ -s "$TMP/single.task1" ] && echo "daemon threads (cores): $(threads_line single)"
    R[single]="$rps $c $(wget_ "$f" p50_us) $(wget_ "$f" p90_us) $(wget_ "$f" p99_us) $(wget_ "$f" co_p99_us)"
    [ "$PERF" = 1 ] && echo "profile: $SOUT/perf-single.txt" && head -n 40 "$SOUT/perf-single.txt"
    return 0
}

# ================================================================ 3. rate limiting vs Redis
part_ratelimit() {
    echo
    local keys=$TMP/rl-keys.txt
    # The key stream: Park-Miller minimal standard generator (exact in awk's doubles, so any
    # awk gives the same file), key index K * u^2 (skewed: key 0 gets ~1% of the requests,
    # the coldest ~1 in 2K).
    awk -v n="$RL_REQUESTS" -v k="$RL_KEYS" -v seed="$RL_SEED" 'BEGIN {
        x = seed % 2147483647; if (x <= 0) x += 2147483646
        for (i = 0; i < n; i++) {
            x = (x * 48271) % 2147483647
            u = x / 2147483647
            printf "user:%d\n", int(k * u * u)
        }
    }' >"$keys"
    cp "$keys" "$SOUT/ratelimit-keys.txt"
    local distinct
    distinct=$(sort -u "$keys" | wc -l)
    echo "== 3. rate limiting: $(commas "$RL_REQUESTS") requests over $(commas "$distinct") keys" \
         "(seed $RL_SEED, skewed), limit burst $RL_BURST (+1 at once), $RL_RATE per ${RL_PERIOD}s, cost 1;" \
         "whiply: POST /v1/ratelimit, NDJSON of 100, wrk -c$RL_CONNS, ${DURATION}s (the stream cycled);" \
         "Redis $(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p'): EVALSHA of bench/redis_gcra.lua," \
         "redis-cli --pipe, the stream $REDIS_PASSES times"

    # -- whiply, timed
    say "serve: [3] wrk -c$RL_CONNS /v1/ratelimit, ${DURATION}s"
    PROFILE=ratelimit run_wrk ratelimit "$RL_CONNS" "$DURATION" bench/serve_ratelimit.lua \
        "$TOKEN" "$keys" 100 "$RL_BURST" "$RL_RATE" "$RL_PERIOD"
    local wf=$SOUT/wrk-ratelimit.txt w_dps w_al w_li
    w_dps=$(awk -v r="$(wget_ "$wf" rps)" 'BEGIN { printf "%.0f", r * 100 }')
    w_al=$(mdiff ratelimit.0 ratelimit.1 'whiply_ratelimit_decisions_total{kind="gcra",result="allowed"}')
    w_li=$(mdiff ratelimit.0 ratelimit.1 'whiply_ratelimit_decisions_total{kind="gcra",result="limited"}')

    # -- Redis: a free port, no persistence
    local rport=
    for rport in $(seq $((20000 + RANDOM % 20000)) 1 $((40100 + RANDOM % 100))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null || break
    done
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --protected-mode yes --loglevel warning >"$SOUT/redis.log" 2>&1 &
    RPID=$!
    local ok=0
    for _ in $(seq 1 100); do
        if redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
        sleep 0.05
    done
    if [ "$ok" != 1 ]; then
        say "serve: redis-server did not start on port $rport:"
        cat "$SOUT/redis.log" >&2
        exit 1
    fi
    local sha
    sha=$(redis-cli -p "$rport" -x SCRIPT LOAD <bench/redis_gcra.lua)
    if ! printf '%s' "$sha" | grep -Eq '^[0-9a-f]{40}$'; then
        say "serve: SCRIPT LOAD failed: $sha"
        exit 1
    fi
    # RESP of EVALSHA sha 1 PREFIX+KEY BURST RATE PERIOD 1 TALLY, one per key of the stream
    resp() { # PREFIX TALLY BURST RATE PERIOD
        LC_ALL=C awk -v sha="$sha" -v pre="$1" -v tally="$2" -v b="$3" -v r="$4" -v p="$5" '
            function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
            BEGIN { head = "*9\r\n" bulk("EVALSHA") bulk(sha) bulk("1")
                    tail = bulk(b) bulk(r) bulk(p) bulk("1") bulk(tally) }
            { printf "%s%s%s", head, bulk(pre $0), tail }' "$keys"
    }
    # redis_pipe FILE|- N: redis-cli --pipe, checks it got N replies and no error
    redis_pipe() {
        local out
        out=$(redis-cli -p "$rport" --pipe 2>&1 <"$1")
        if ! printf '%s' "$out" | grep -q "errors: 0, replies: $2\$"; then
            say "serve: redis-cli --pipe: $out"
            exit 1
        fi
    }

    # -- Redis, timed: the stream REDIS_PASSES times from empty, as most of whiply's cycled
    # run, passes 2 and later are mostly limited
    resp "" 0 "$RL_BURST" "$RL_RATE" "$RL_PERIOD" >"$TMP/rl.resp"
    local nreq=$((RL_REQUESTS * REDIS_PASSES)) i
    for ((i = 1; i < REDIS_PASSES; i++)); do cat "$TMP/rl.resp"; done >"$TMP/rl-more.resp"
    cat "$TMP/rl.resp" >>"$TMP/rl-more.resp"
    redis-cli -p "$rport" FLUSHALL >/dev/null
    say "serve: [3] redis-cli --pipe, $REDIS_PASSES x $(commas "$RL_REQUESTS") EVALSHA"
    local rc0 rc1 perfpid= t0 t1
    rc0=$(awk '{ print $14 + $15 }' "/proc/$RPID/stat")
    if [ "$PERF" = 1 ]; then
        perf record -q -F 499 -g -p "$RPID" -o "$TMP/perf.redis.data" >/dev/null 2>"$TMP/perf.redis.err" &
        perfpid=$!
    fi
    t0=$(date +%s%N)
    redis_pipe "$TMP/rl-more.resp" "$nreq"
    t1=$(date +%s%N)
    rc1=$(awk '{ print $14 + $15 }' "/proc/$RPID/stat")
    if [ -n "$perfpid" ]; then
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" || true
        perf report -i "$TMP/perf.redis.data" --no-children --sort dso,symbol --stdio -g none \
            --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 30 >"$SOUT/perf-redis.txt"
    fi
    local r_dps r_tsecs r_mem
    r_tsecs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    r_dps=$(awk -v n="$nreq" -v s="$r_tsecs" 'BEGIN { printf "%.0f", n / s }')
    r_mem=$(redis-cli -p "$rport" INFO memory | sed -n 's/^used_memory_rss:\([0-9]*\).*/\1/p' | tr -d '\r')

    printf '%-34s %14s %9s %9s %12s %10s\n' "" "decisions/s" p50 p99 "server CPU" "client CPU"
    printf '%-34s %14s %9s %9s %12s %10s\n' "whiply (wrk -c$RL_CONNS, 100 per request)" "$(commas "$w_dps")" \
        "$(ms "$(wget_ "$wf" p50_us)")" "$(ms "$(wget_ "$wf" p99_us)")" "$(dcores ratelimit) cores" "$(wcores ratelimit)"
    printf '%-34s %14s %9s %9s %12s %10s\n' "Redis (redis-cli --pipe, EVALSHA)" "$(commas "$r_dps")" - - \
        "$(awk -v t=$((rc1 - rc0)) -v k="$TCK" -v s="$r_tsecs" 'BEGIN { printf "%.2f cores", t / k / s }')" -
    echo "ratio whiply/Redis: $(awk -v a="$w_dps" -v b="$r_dps" 'BEGIN { printf "%.2fx", a / b }');" \
         "Redis: $(commas "$nreq") decisions in ${r_tsecs}s, used_memory_rss $(awk -v b="${r_mem:-0}" 'BEGIN { printf "%.1f MB", b / 1048576 }');" \
         "allowed in the timed runs: whiply $(awk -v a="$w_al" -v l="$w_li" 'BEGIN { printf "%.1f%%", 100 * a / (a + l) }')" \
         "(the stream cycled $(awk -v a="$w_al" -v l="$w_li" -v n="$RL_REQUESTS" 'BEGIN { printf "%.1f", (a + l) / n }') times)"
    [ "$PERF" = 1 ] && echo "profiles: $SOUT/perf-ratelimit.txt, $SOUT/perf-redis.txt"

    # -- agreement: the stream once per limit, from fresh keys (a prefix per pass), through
    # both; allowed answers counted (whiply: "allowed":true lines; Redis: the script's tally)
    echo "agreement, one pass of the stream from fresh keys (whiply: 20 requests of 10,000 on one" \
         "connection; Redis: redis-cli --pipe):"
    printf '  %-22s %24s %16s %24s %16s\n' limit "whiply allowed (time)" "model" "Redis allowed (time)" "model"
    # the model: each key's n requests spread evenly over a pass of D seconds pass
    # min(n, burst + 1 + whole refills in D); with D = 0, the no-refill bound
    model() { # BURST RATE PERIOD SECONDS
        sort "$keys" | uniq -c | awk -v l=$(($1 + 1)) -v r="$2" -v p="$3" -v d="$4" \
            '{ m = l + int(r / p * d); s += ($1 < m ? $1 : m) } END { print s }'
    }
    pct() { awk -v a="$1" -v n="$RL_REQUESTS" 'BEGIN { printf "%.2f%%", 100 * a / n }'; }
    local lim n=0 b r p bound w_allowed w_total w_secs r_allowed r_secs f
    for lim in "$RL_BURST $RL_RATE $RL_PERIOD" "$RL_FAST"; do
        read -r b r p <<<"$lim"
        n=$((n + 1))
        bound=$(model "$b" "$r" "$p" 0)
        rm -f "$TMP"/rl-chk.*
        awk -v b="$b" -v r="$r" -v p="$p" -v pre="chk$n:" \
            '{ printf "{\"key\":\"%s%s\",\"burst\":%s,\"rate\":%s,\"period\":%s,\"cost\":1}\n", pre, $0, b, r, p }' \
            "$keys" | split -l 10000 - "$TMP/rl-chk."
        t0=$(date +%s%N)
        for f in "$TMP"/rl-chk.*; do
            wcurl -H 'Content-Type: application/x-ndjson' --data-binary "@$f" "$URL/v1/ratelimit" >"$f.answers"
        done
        t1=$(date +%s%N)
        w_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
        w_allowed=$(cat "$TMP"/rl-chk.*.answers | grep -c '"allowed":true' || true)
        w_total=$(cat "$TMP"/rl-chk.*.answers | grep -c '"allowed":' || true)
        if [ "$w_total" != "$RL_REQUESTS" ]; then
            say "serve: whiply answered $w_total of $RL_REQUESTS rate-limit requests in the agreement pass:"
            cat "$TMP"/rl-chk.*.answers | grep -v '"allowed":' | head -n 3 >&2
            exit 1
        fi
        resp "chk$n:" 1 "$b" "$r" "$p" >"$TMP/rl-chk.resp"
        redis-cli -p "$rport" FLUSHALL >/dev/null
        t0=$(date +%s%N)
        redis_pipe "$TMP/rl-chk.resp" "$RL_REQUESTS"
        t1=$(date +%s%N)
        r_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
        r_allowed=$(redis-cli -p "$rport" GET tally:allowed)
        r_allowed=${r_allowed:-0}
        printf '  %-22s %24s %16s %24s %16s\n' "burst $b, $r per ${p}s" \
            "$(commas "$w_allowed") $(pct "$w_allowed") (${w_secs}s)" "$(commas "$(model "$b" "$r" "$p" "$w_secs")")" \
            "$(commas "$r_allowed") $(pct "$r_allowed") (${r_secs}s)" "$(commas "$(model "$b" "$r" "$p" "$r_secs")")"
        [ "$n" = 1 ] && R[rlagree]="$w_allowed $r_allowed $bound"
        [ "$n" = 2 ] && R[rlagree2]="$w_allowed $r_allowed $bound $w_secs $r_secs"
    done
    echo "  model: each key's requests spread evenly over the pass, min(n, burst + 1 + refills in the pass time);" \
         "no-refill bound (time 0): $(commas "$bound") ($(pct "$bound"))."
    echo "  Each key passes burst + 1 at once, then one more per period/rate seconds. With the first limit a" \
         "pass is far shorter than one refill ($(awk -v p="$RL_PERIOD" -v r="$RL_RATE" 'BEGIN { printf "%g", p / r }') s)," \
         "so both must give exactly the bound; with the second, keys refill during the pass, so the count" \
         "depends on how long the pass takes and when each key's requests arrive (the slower pass allows more)."
    kill "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
    RPID=
    R[rl]="$w_dps $r_dps"
    return 0
}

for p in $PARTS; do
    case $p in
    events) part_events ;;
    single) part_single ;;
    ratelimit) part_ratelimit ;;
    *) say "serve: unknown part '$p' (events, single, ratelimit)"; exit 2 ;;
    esac
done

# ---- stop the daemon (SIGTERM drains), then verify the audit chain
snap final
HWM=$(hwm_kb)
A_ROWS=$(mval final whiply_audit_rows_total)
A_EV=$(mval final whiply_events_total)
A_FAILED=$(mval final whiply_audit_failed)
fsize() { [ -f "$1" ] && awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1048576 }' || echo "-"; }
FILES="whiply.db $(fsize "$DATA/whiply.db"), whiply.db-wal $(fsize "$DATA/whiply.db-wal")"
T0=$(date +%s%N)
kill -TERM "$WPID"
rc=0
wait "$WPID" || rc=$?
WPID=
STOP_S=$(awk -v a="$T0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
VERIFY=$("$WHIPLY" audit verify --data "$DATA" 2>&1) && VOK=1 || VOK=0
echo
echo "audit files before SIGTERM: $FILES (a WAL far over 16 MB means checkpoints are not keeping up)"
echo "daemon: exit status $rc, ${STOP_S}s after SIGTERM; peak RSS (VmHWM) $(awk -v k="$HWM" 'BEGIN { printf "%.1f MB", k / 1024 }');" \
     "$(commas "$A_EV") events decided, $(commas "$A_ROWS") audit rows written (whiply_audit_rows_total), audit_failed $A_FAILED"
echo "$VERIFY"

# ---- summary
pass() { if [ "$1" = 1 ]; then echo "met"; else echo "MISSED"; fi; }
echo
echo "== summary: whiply serve $REV, rules $RULES, $(nproc) cores shared with the client, $(date -u +%Y-%m-%d)"
if [ -n "${R[ev.best]:-}" ]; then
    line="events/s (100 per request):"
    for c in $CONNS; do
        read -r e p50 p99 <<<"${R[ev.$c]}"
        line="$line c=$c $(commas "$e") (p50 $(ms "$p50"), p99 $(ms "$p99"));"
    done
    echo "$line"
    met= missed=
    for c in $CONNS; do
        read -r e _ <<<"${R[ev.$c]}"
        if [ "$e" -ge 150000 ]; then met="$met c=$c"
        else missed="$missed c=$c ($(awk -v b="$e" 'BEGIN { printf "%.1f%% short", 100 * (1 - b / 150000) }'))"; fi
    done
    echo "  target >= 150,000 events/s: $([ -z "$missed" ] && echo "met at every connection count" ||
        { [ -n "$met" ] && echo "met at${met}; MISSED at${missed}" || echo "MISSED at${missed}"; })" \
        "(runs in the order of CONNS; the audit grows through them)"
    if [ -n "${R[floor.floor]:-}" ]; then
        read -r fr fc <<<"${R[floor.floor]}"
        read -r sr sc <<<"${R[floor.store]:-0 0}"
        echo "  audit floors: SQLite inserts alone $(commas "$fr") rows/s ($fc us CPU a row)," \
             "the audit store alone $(commas "$sr") rows/s ($sc us)"
    fi
fi
if [ -n "${R[single]:-}" ]; then
    read -r rps c p50 p90 p99 cop99 <<<"${R[single]}"
    ok=$(awk -v p="$p99" -v r="$rps" -v t="$SINGLE_RATE" 'BEGIN { print (p < 2000 && r >= 0.95 * t) ? 1 : 0 }')
    echo "single event: $(commas "$(printf '%.0f' "$rps")") req/s (c=$c): p50 $(ms "$p50"), p90 $(ms "$p90"), p99 $(ms "$p99")" \
         "(closed loop; corrected for coordinated omission p99 $(ms "$cop99"))"
    echo "  target p99 < 2 ms at $(commas "$SINGLE_RATE") req/s: $(pass "$ok")$([ "$ok" = 1 ] || awk -v p="$p99" -v r="$rps" -v t="$SINGLE_RATE" 'BEGIN { if (p >= 2000) printf " (p99 %.0f%% over)", 100 * (p / 2000 - 1); if (r < 0.95 * t) printf " (rate %.0f%% short)", 100 * (1 - r / t) }')"
fi
if [ -n "${R[rl]:-}" ]; then
    read -r wd rd <<<"${R[rl]}"
    read -r wa ra bd <<<"${R[rlagree]}"
    read -r wa2 ra2 bd2 ws2 rs2 <<<"${R[rlagree2]}"
    ok=$(awk -v b="$wd" 'BEGIN { print (b >= 100000) ? 1 : 0 }')
    echo "rate limiting: whiply $(commas "$wd") decisions/s, Redis $(commas "$rd"): ratio $(awk -v a="$wd" -v b="$rd" 'BEGIN { printf "%.2fx", a / b }')"
    echo "  allowed over one pass: burst $RL_BURST, $RL_RATE per ${RL_PERIOD}s: whiply $(commas "$wa"), Redis $(commas "$ra")," \
         "bound $(commas "$bd")$([ "$wa" = "$ra" ] && [ "$wa" = "$bd" ] && echo " (identical)");" \
         "$(read -r b r p <<<"$RL_FAST"; echo "burst $b, $r per ${p}s"): whiply $(commas "$wa2") in ${ws2}s, Redis $(commas "$ra2") in ${rs2}s"
    echo "  target >= 100,000 decisions/s: $(pass "$ok")"
fi
echo "peak RSS of the daemon: $(awk -v k="$HWM" 'BEGIN { printf "%.1f MB", k / 1024 }')$([ -n "${R[ev.hwm]:-}" ] && awk -v k="${R[ev.hwm]}" 'BEGIN { printf " (%.1f MB after part 1)", k / 1024 }');" \
     "audit: $(commas "$A_ROWS") rows; verify after SIGTERM: $([ "$VOK" = 1 ] && echo ok || echo FAILED); exit status $rc after ${STOP_S}s"
[ "$VOK" = 1 ] && [ "$rc" = 0 ]
