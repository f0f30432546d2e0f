#!/usr/bin/env bash
# bench/core_stream.sh OUT EVENTS SEED [GENSTREAM OPTIONS...] - the core benchmark stream:
# builds bench/genstream.c and writes OUT/events.ndjson, rules.yaml, profanity.txt,
# truth.ndjson and genstream.json for EVENTS events from SEED (same seed, same bytes), with
# the LDNOOBW and cuss word lists from .deps/npm (run `make npm` first). Shared by
# bench/run.sh, bench/behaviour.sh and bench/serve.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1 EVENTS=$2 SEED=$3
shift 3
NM=.deps/npm/node_modules
for t in cc node; do
    command -v "$t" >/dev/null 2>&1 || { echo "core_stream: needs $t" >&2; exit 1; }
done
if [ ! -f "$NM/naughty-words/en.json" ] || [ ! -f "$NM/cuss/index.js" ]; then
    echo "core_stream: no word lists in .deps/npm: run 'make npm' first" >&2
    exit 1
fi
mkdir -p "$OUT"
# cuss ships as an ES module: export its {term: rating} map as JSON for genstream
node --input-type=module -e "
import { cuss } from '$(pwd)/$NM/cuss/index.js';
import fs from 'fs';
fs.writeFileSync('$OUT/cuss.json', JSON.stringify(cuss));
"
cc -std=c11 -O2 -Wall -o "$OUT/genstream" bench/genstream.c
"$OUT/genstream" --seed "$SEED" --events "$EVENTS" \
    --out-events "$OUT/events.ndjson" --out-rules "$OUT/rules.yaml" --out-list "$OUT/profanity.txt" \
    --out-truth "$OUT/truth.ndjson" --out-stats "$OUT/genstream.json" \
    --words "$NM/naughty-words/en.json" "$OUT/cuss.json" "$@" 2>/dev/null
