#!/usr/bin/env bash
# bench/startup.sh - how long a ruleset takes to start, cold (compiling the Hyperscan
# databases into an empty cache) and warm (loading them from the cache), for the three
# rulesets of issue 17's table:
#   regex   the bench ruleset (bench/genstream.c, 50 regex rules) with 100 list terms
#   10000   10,000 dictionary words and 2 regexes
#   50000   50,000 dictionary words and 2 regexes
# Each row: cold wall and CPU seconds and peak RSS (one run), warm wall seconds (mean of
# two). CPU seconds are the figure to compare on a shared machine: the databases compile on
# every core, so wall time depends on what else runs.
#   bench/startup.sh                 # all three rows
#   ROWS="10000" bench/startup.sh    # one row
set -euo pipefail
cd "$(dirname "$0")/.."
WHIPLY=${WHIPLY:-build/whiply}
ROWS=${ROWS:-"regex 10000 50000"}
DICT=/usr/share/dict/american-english
OUT=bench/out/startup
mkdir -p "$OUT"
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/whiply-startup.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT

# ruleset NAME -> the rules file of that row (generated once into bench/out/startup)
ruleset() {
    case $1 in
    regex)
        if [ ! -f "$OUT/regex/rules.yaml" ]; then
            bench/core_stream.sh "$OUT/regex" 1 42 --max-terms 100 --stats-prefix 1 >&2
        fi
        echo "$OUT/regex/rules.yaml"
        ;;
    *)
        local n=$1 f=$OUT/terms$1.yaml
        if [ ! -f "$f" ]; then
            # lowercase dictionary words of 4+ letters, a fixed pseudo-random sample
            grep -E '^[a-z]{4,}$' "$DICT" | awk 'BEGIN{srand(7)} {print rand() "\t" $0}' |
                sort -k1,1 | cut -f2 | awk -v n="$n" 'NR <= n' >"$OUT/terms$n.txt"
            cat >"$f" <<YAML
version: 1
lists:
  big: {file: terms$n.txt}
rules:
  - id: big-list
    when: {words: ["@big"], unless_words: ["scunthorpe"]}
    action: delete
  - id: scam
    when: {regex: ['fr[e3]{2}\\s*n[i1]tr[o0]', 'steam\\s*gift'], view: skeleton}
    action: ban
YAML
        fi
        echo "$f"
        ;;
    esac
}

# timed RULES CACHE_DIR -> "wall cpu peak_kb" of one `whiply check` with no input
timed() {
    /usr/bin/time -f "%e %U %S %M" -o "$CACHE/time" \
        "$WHIPLY" check --rules "$1" --cache-dir "$2" </dev/null >/dev/null
    awk '{printf "%s %.2f %d\n", $1, $2 + $3, $4}' "$CACHE/time"
}

for row in $ROWS; do
    rules=$(ruleset "$row")
    case $row in
    regex) label="100 terms + 50 regexes" goal_s=1 goal_mb=0 ;;
    10000) label="10,000 terms" goal_s=3 goal_mb=0 ;;
    50000) label="50,000 terms" goal_s=15 goal_mb=300 ;;
    *) label="$row terms" goal_s=0 goal_mb=0 ;;
    esac
    dir=$CACHE/$row
    read -r cold_wall cold_cpu cold_kb < <(timed "$rules" "$dir")
    read -r w1 _ _ < <(timed "$rules" "$dir")
    read -r w2 _ _ < <(timed "$rules" "$dir")
    awk -v l="$label" -v cw="$cold_wall" -v cc="$cold_cpu" -v kb="$cold_kb" -v w1="$w1" \
        -v w2="$w2" -v gs="$goal_s" -v gm="$goal_mb" 'BEGIN {
        mb = kb / 1024; warm = (w1 + w2) / 2
        verdict = ""
        if (gs > 0) verdict = (cw <= gs && (gm == 0 || mb <= gm)) ? "[ok" : "[SLOW"
        if (gs > 0) verdict = verdict sprintf(": goal <= %g s%s]", gs, gm ? sprintf(", <= %d MB", gm) : "")
        printf "cold start, %s: cold %.2f s (%.2f s CPU), peak %.0f MB; warm %.3f s %s %s\n",
            l, cw, cc, mb, warm, warm < 1 ? "[ok: < 1 s]" : "[SLOW: >= 1 s]", verdict }'
done
