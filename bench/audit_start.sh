#!/bin/sh
# bench/audit_start.sh [BUILD] [GIB] - how long `whiply serve` takes to start on a large audit
# trail (the start checks: the newest rows' chain, the last signed checkpoint), and how long
# the background walk + PRAGMA quick_check take. Makes a trail of GIB GiB (default 10) in a
# temporary folder under /work (check `df -h /work` first), removes it afterwards.
set -eu
BUILD=${1:-build}
GIB=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W="$ROOT/$BUILD/whiply"
T=$(mktemp -d "${TMPDIR:-/work}/whiply-audit-start.XXXXXX")
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
PID=
printf 'listen: "127.0.0.1:0"\nstore:\n  preallocate: 0\n' > "$T/whiply.yaml"
serve() { # starts, waits for "listening", sets S to the seconds it took; leaves $PID running
    t0=$(date +%s.%N)
    "$W" serve --config "$T/whiply.yaml" --data "$T/data" --rules "$ROOT/examples/rules.yaml" \
        2> "$T/log" &
    PID=$!
    until grep -q "listening on" "$T/log"; do
        kill -0 $PID 2>/dev/null || { cat "$T/log"; exit 1; }
        sleep 0.01
    done
    t1=$(date +%s.%N)
    S=$(echo "$t1 - $t0" | bc)
}
stop() { kill -TERM $PID; wait $PID || true; PID=; }
serve; stop # the schema and the key
python3 "$ROOT/bench/gen_audit.py" "$T/data/whiply.db" "$GIB"
ls -l "$T/data/whiply.db" | awk '{printf "audit_start: whiply.db %.1f GiB\n", $5 / 2^30}'
for run in 1 2 3; do
    serve
    echo "audit_start: run $run: listening after $S s"
    if [ $run = 1 ]; then # the background walk of the whole trail, once
        # (runs 2 and 3 start on the checkpoint run 1 signed: the start compares with it)
        until grep -q "audit check: \|audit trail damaged" "$T/log"; do sleep 1; done
        grep "audit check: \|damaged" "$T/log" | sed 's/^/audit_start: /'
    fi
    stop
done
