#!/usr/bin/env bash
# bench/bus.sh - whiply on NATS JetStream (docs/bus.md), against a floor measured in the same
# run on the same server and stream:
#   1. throughput: N events already on the stream (P partitions); the time until every one is
#      decided, its decision published and its input acked, by 1 and by 2 instances, against
#      the floor: a bare libnats consumer (bench/bus_bench.c) that only fetches and acks, as
#      many threads and consumers as partitions                (goal: whiply >= 80% of it)
#   2. cost: CPU-seconds per million events (user + system of the whiply processes) with 1, 2
#      and 4 instances (it must not grow with the instances), and the ownership bucket's
#      traffic (KV operations a second) idle and under load
#   3. latency: events published at half the saturating rate of 1 instance; event ->
#      decision-on-the-stream p50/p99/p99.9
#   4. failover: 2 instances under load, one killed -9: the time until the other owns every
#      partition (goal: <= 2 leases)
# Each part starts its own nats-server (random port, a fresh store) and whiply instances on
# loopback, and stops them. Prints one line a figure and a summary.
#
#   bench/bus.sh                     # N=200000, P=8, about 2 minutes
#   N=50000 PARTS="throughput" bench/bus.sh
#
# Environment: WHIPLY=build/whiply BUS_BENCH=build/bus_bench N=200000 P=8 LEASE=2s
#   EVENTS=bench/out/events.ndjson RULES=examples/rules.yaml PARTS="throughput cost latency failover"
set -euo pipefail
cd "$(dirname "$0")/.."
WHIPLY=${WHIPLY:-build/whiply}
BUS_BENCH=${BUS_BENCH:-build/bus_bench}
N=${N:-200000}
P=${P:-8}
LEASE=${LEASE:-2s}
EVENTS=${EVENTS:-bench/out/events.ndjson}
RULES=${RULES:-examples/rules.yaml}
PARTS=${PARTS:-throughput cost latency failover}
command -v nats-server >/dev/null || { echo "bus.sh: nats-server is missing (make deps-bench)" >&2; exit 2; }
[ -x "$WHIPLY" ] && [ -x "$BUS_BENCH" ] || { echo "bus.sh: build first (ninja -C build)" >&2; exit 2; }
if [ ! -f "$EVENTS" ]; then
    echo "bus.sh: $EVENTS is missing: run bench/run.sh first" >&2
    exit 2
fi
TMP=$(mktemp -d /tmp/whiply-bus-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
head -n "$N" "$EVENTS" >"$TMP/events.ndjson"

wait_log() { # wait_log FILE PATTERN: until the log says it (20 s at most), or fail
    for _ in $(seq 1 400); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bus.sh: $1 never said '$2'" >&2
    return 1
}
nats_start() { # nats_start NAME: starts a server, sets URL
    local d=$TMP/$1
    mkdir -p "$d"
    nats-server -a 127.0.0.1 -p -1 -js -sd "$d/js" 2>"$d/nats.log" &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    wait_log "$d/nats.log" "Server is ready"
    URL="nats://127.0.0.1:$(grep -o 'client connections on 127.0.0.1:[0-9]*' "$d/nats.log" | grep -o '[0-9]*$')"
}
nats_stop() { kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null || true; }

whiply_start() { # whiply_start NAME INSTANCE: a `whiply serve` on the bus; sets WPID, WPORT
    local d=$TMP/$1
    mkdir -p "$d"
    cat >"$d/whiply.yaml" <<EOF
listen: 127.0.0.1:0
data: $d/data
rules: $PWD/$RULES
store: {preallocate: 0, signing_key: none, checkpoints: none}
bus: {url: "$URL", partitions: $P, instance: $2, lease: $LEASE, batch: ${BATCH:-128}}
EOF
    "$WHIPLY" serve --config "$d/whiply.yaml" 2>"$d/log" &
    WPID=$!
    PIDS+=("$WPID")
    wait_log "$d/log" "consuming the bus"
    WPORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$d/log" | grep -o '[0-9]*$')
    WTOKEN=$(cat "$d/data/admin.token")
}
metric() { # metric PORT TOKEN NAME: the sum of a bus metric
    curl -s -H "Authorization: Bearer $2" "http://127.0.0.1:$1/metrics" |
        awk -v n="$3" '$1 ~ "^"n"[{ ]" {s += $2} END {print s + 0}'
}
cpu_s() { # cpu_s PID: user + system seconds so far
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
now() { date +%s.%N; }

publish() { "$WHIPLY" publish --bus "$URL" --partitions "$P" --in "$1" 2>"$TMP/publish.log"; }

# ---- 1 and 2: throughput, cost ----
run_instances() { # run_instances K: K instances drain the N events; prints events/s
    local k=$1 i ports=() tokens=() pids=()
    nats_start "drain$k"
    publish "$TMP/events.ndjson"
    local t0 cpu0=0
    for i in $(seq 1 "$k"); do
        whiply_start "w$k-$i" "inst$i"
        ports+=("$WPORT")
        tokens+=("$WTOKEN")
        pids+=("$WPID")
        [ "$i" = 1 ] && t0=$(now) # from when the first is ready (rules loaded)
        cpu0=$(echo "$cpu0 + $(cpu_s "$WPID")" | bc -l)
    done
    local acked=0
    while [ "$acked" -lt "$N" ]; do
        acked=0
        for i in $(seq 0 $((k - 1))); do
            acked=$((acked + $(metric "${ports[$i]}" "${tokens[$i]}" whiply_bus_acked_total)))
        done
        sleep 0.05
    done
    local t1 cpu=-$cpu0 kv=0
    t1=$(now)
    for i in $(seq 0 $((k - 1))); do
        cpu=$(echo "$cpu + $(cpu_s "${pids[$i]}")" | bc -l)
        kv=$((kv + $(metric "${ports[$i]}" "${tokens[$i]}" whiply_bus_kv_ops_total)))
    done
    local secs
    secs=$(echo "$t1 - $t0" | bc -l)
    # idle KV traffic: 3 leases with nothing to do
    local kv0=$kv kv1=0
    sleep "$(echo "3 * ${LEASE%s}" | bc -l)"
    for i in $(seq 0 $((k - 1))); do
        kv1=$((kv1 + $(metric "${ports[$i]}" "${tokens[$i]}" whiply_bus_kv_ops_total)))
    done
    printf 'whiply x%d: %d events in %.2f s: %.0f events/s; %.2f CPU-s per million events; KV ops/s: %.1f loaded, %.1f idle\n' \
        "$k" "$N" "$secs" "$(echo "$N / $secs" | bc -l)" "$(echo "$cpu * 1000000 / $N" | bc -l)" \
        "$(echo "$kv0 / $secs" | bc -l)" "$(echo "($kv1 - $kv0) / (3 * ${LEASE%s})" | bc -l)"
    for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
    nats_stop
}
floor() {
    nats_start floor
    publish "$TMP/events.ndjson"
    "$BUS_BENCH" floor "$URL" "$P" "$N"
    nats_stop
}

echo "bus.sh: N=$N P=$P lease=$LEASE rules=$RULES; $(nproc) cores, $(uname -r)"
for part in $PARTS; do
    case $part in
    throughput)
        floor
        run_instances 1
        run_instances 2
        ;;
    cost)
        run_instances 4
        ;;
    latency)
        # half of what one instance drains a second, measured here again
        out=$(run_instances 1)
        echo "$out"
        rate=$(echo "$out" | grep -o '[0-9]* events/s' | head -1 | grep -o '^[0-9]*')
        half=$((rate / 2))
        nats_start latency
        whiply_start lat-1 lat1
        "$BUS_BENCH" latency "$URL" "$P" "$TMP/events.ndjson" "$half" 10 || true
        kill "$WPID"
        wait "$WPID" 2>/dev/null || true
        nats_stop
        ;;
    failover)
        nats_start failover
        whiply_start fo-a foa
        pa=$WPID
        whiply_start fo-b fob
        bport=$WPORT btok=$WTOKEN bpid=$WPID
        publish "$TMP/events.ndjson" &
        pubpid=$!
        sleep 1
        t0=$(now)
        kill -9 "$pa"
        while [ "$(curl -s -H "Authorization: Bearer $btok" "http://127.0.0.1:$bport/metrics" |
            grep -c 'whiply_bus_partition_owned{.*} 1')" -lt "$P" ]; do
            sleep 0.02
        done
        t1=$(now)
        printf 'failover: the survivor owns every partition %.2f s after kill -9 (lease %s)\n' \
            "$(echo "$t1 - $t0" | bc -l)" "$LEASE"
        wait "$pubpid" || true
        kill "$bpid"
        wait "$bpid" 2>/dev/null || true
        nats_stop
        ;;
    esac
done
