#!/usr/bin/env bash
# bench/startup.sh - how long a 10,000-term ruleset takes to start, cold (compiling the
# Hyperscan databases) and warm (loading them from the cache). The issue's bar: warm < 1 s.
#   TERMS=10000 bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WHIPLY=${WHIPLY:-build/whiply}
TERMS=${TERMS:-10000}
DICT=/usr/share/dict/american-english
OUT=bench/out/startup
mkdir -p "$OUT"
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/whiply-startup.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT
# Terms: lowercase dictionary words of 4+ letters, a fixed pseudo-random sample, plus phrases.
grep -E '^[a-z]{4,}$' "$DICT" | awk 'BEGIN{srand(7)} {print rand() "\t" $0}' | sort -k1,1 |
    cut -f2 | awk -v n="$TERMS" 'NR <= n' >"$OUT/terms.txt"
cat >"$OUT/rules.yaml" <<YAML
version: 1
lists:
  big: {file: terms.txt}
rules:
  - id: big-list
    when: {words: ["@big"], unless_words: ["scunthorpe"]}
    action: delete
  - id: scam
    when: {regex: ['fr[e3]{2}\\s*n[i1]tr[o0]', 'steam\\s*gift'], view: skeleton}
    action: ban
YAML
now() { date +%s.%N; }
run() { "$WHIPLY" check --rules "$OUT/rules.yaml" --cache-dir "$CACHE" </dev/null >/dev/null; }
t0=$(now); run; t1=$(now); run; t2=$(now); run; t3=$(now)
awk -v t0="$t0" -v t1="$t1" -v t3="$t3" -v n="$(wc -l <"$OUT/terms.txt")" 'BEGIN {
    warm = (t3 - t1) / 2
    printf "startup with %d terms: cold %.3f s (compile + cache), warm %.3f s (from cache) %s\n",
        n, t1 - t0, warm, warm < 1 ? "[ok: < 1 s]" : "[SLOW: >= 1 s]" }'
