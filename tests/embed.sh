#!/usr/bin/env bash
# tests/embed.sh BUILD_DIR - the C library as an embedder has it: examples/embed.c, built in
# BUILD_DIR against the header and the shared library, decides a few events with
# examples/rules.yaml; then the library is installed (meson install --destdir) and embed.c
# is built again from the installed files with pkg-config alone, shared and static, and must
# print the same. Prints "PASS name" / "FAIL name: why" lines and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
# The installed library is built again with the build's own compiler and sanitizers: the
# library of an ASan build (make asan) needs the sanitizer runtime in the program too.
build_cc() {
    python3 - "$BUILD/meson-info/intro-targets.json" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1])):
    if t["name"] == "embed":
        s = t["target_sources"][0]
        print(" ".join(s["compiler"] + [p for p in s["parameters"] if p.startswith("-fsanitize")]))
        break
PY
}
read -r -a CCV <<<"$(build_cc 2>/dev/null || echo cc)"
[ ${#CCV[@]} -gt 0 ] || CCV=(cc)
TMP=$(mktemp -d /tmp/whiply-embed.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export WHIPLY_CACHE_DIR=$TMP/cache
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1${2:+: $2}"; }

# One event a rule of examples/rules.yaml acts on (and a few it must not), a moderator (exempt
# whatever they write) and a line that is not JSON.
cat >"$TMP/events.ndjson" <<'EOF'
{"id":"hello","platform":"twitch","channel":"#pixelqueen","user":{"id":"u1"},"text":"hi chat, good luck today"}
{"id":"swear","platform":"twitch","channel":"#pixelqueen","user":{"id":"u2"},"text":"what the fuck was that"}
{"id":"kys","platform":"twitch","channel":"#pixelqueen","user":{"id":"u3"},"text":"just kill yourself lol"}
{"id":"spoil","platform":"twitch","channel":"#pixelqueen","user":{"id":"u4"},"text":"the killer is the butler"}
{"id":"scam","platform":"discord","channel":"general","user":{"id":"u5"},"text":"fr33 n1tr0 here https://dlscord-gift.ru/claim"}
{"id":"mod","platform":"twitch","channel":"#pixelqueen","user":{"id":"m1","roles":["moderator"]},"text":"fuck this"}
not json at all
{"id":"cocktail","platform":"twitch","channel":"#pixelqueen","user":{"id":"u6"},"text":"cocktail hour!"}
EOF

# The lines embed prints from the verdict struct, in order (each is followed by its JSON).
cat >"$TMP/expected.txt" <<'EOF'
hello allow rule=-
swear delete rule=profanity
  match profanity squashed [9,13) "fuck"
kys timeout 3600s rule=harassment
  match harassment squashed [5,18) "kill yourself"
spoil warn rule=spoilers message="No spoilers please, Pixel is playing blind!"
  match spoilers squashed [0,13) "the killer is"
scam ban rule=gift-scam-text
  match gift-scam-text skeleton [0,10) "fr33 n1tr0"
mod allow rule=-
- error bad_json: invalid JSON at byte 1
cocktail allow rule=-
EOF

# check_embed NAME BINARY : BINARY prints the expected verdict lines, and JSON lines that are
# whiply check's decisions of the same events (the API decides one line at a time, so an
# error names line 1)
check_embed() {
    local name=$1 bin=$2 out=$TMP/${1//[^a-z]/_} rc
    "$bin" examples/rules.yaml <"$TMP/events.ndjson" >"$out.out" 2>"$out.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "$name: runs" "exit $rc: $(head -c 2000 "$out.err")"
        return
    fi
    ok "$name: runs"
    if diff -u "$TMP/expected.txt" <(grep -v '^  {' "$out.out") >"$TMP/diff.txt"; then
        ok "$name: the verdict struct has each event's action, rule, duration, message and spans"
    else
        bad "$name: the verdict struct has each event's action, rule, duration, message and spans" \
            "$(head -c 3000 "$TMP/diff.txt")"
    fi
    if diff -u <(sed 's/"line":7,/"line":1,/' "$TMP/check.ndjson") \
        <(sed -n 's/^  {/{/p' "$out.out") >"$TMP/diff.txt"; then
        ok "$name: its JSON decisions are whiply check's"
    else
        bad "$name: its JSON decisions are whiply check's" "$(head -c 3000 "$TMP/diff.txt")"
    fi
}

if ! "$BUILD/whiply" check --rules examples/rules.yaml --in "$TMP/events.ndjson" >"$TMP/check.ndjson" 2>"$TMP/check.err"; then
    bad "whiply check decides the events" "$(head -c 2000 "$TMP/check.err")"
fi

# ---- the example as the build makes it ----
if [ -x "$BUILD/embed" ]; then
    check_embed "build/embed" "$BUILD/embed"
else
    bad "build/embed: runs" "$BUILD/embed was not built"
fi
out=$("$BUILD/embed" tests/lint/errors.yaml </dev/null 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q 'errors.yaml:[0-9]*:[0-9]*: error: ' <<<"$out"; then
    ok "build/embed: rules that do not load exit 2 with file:line:col diagnostics"
else
    bad "build/embed: rules that do not load exit 2 with file:line:col diagnostics" "exit $rc: $out"
fi

# ---- installed: header, libraries and whiply.pc; embed.c built with pkg-config alone ----
DEST=$TMP/dest
if meson install --destdir "$DEST" -C "$BUILD" >"$TMP/install.log" 2>&1; then
    ok "meson install --destdir"
else
    bad "meson install --destdir" "$(tail -c 2000 "$TMP/install.log")"
fi
pc=$(find "$DEST" -name whiply.pc -path '*/pkgconfig/*' 2>/dev/null | head -1)
hdr=$(find "$DEST" -path '*/include/whiply/whiply.h' 2>/dev/null | head -1)
a=$(find "$DEST" -name libwhiply.a 2>/dev/null | head -1)
so=$(find "$DEST" -name 'libwhiply.so.*' -type f 2>/dev/null | head -1)
if [ -n "$pc" ] && [ -n "$hdr" ] && [ -n "$a" ] && [ -n "$so" ] &&
    [ -e "$(dirname "$so")/libwhiply.so" ]; then
    ok "installed: include/whiply/whiply.h, libwhiply.a, libwhiply.so*, pkgconfig/whiply.pc"
else
    bad "installed: include/whiply/whiply.h, libwhiply.a, libwhiply.so*, pkgconfig/whiply.pc" \
        "pc=$pc hdr=$hdr a=$a so=$so; $(find "$DEST" -type f 2>/dev/null | head -20)"
fi
# the shared library exports the header's calls and nothing of the engine's internals
if [ -n "$so" ] && nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' >"$TMP/syms" &&
    grep -q '^whiply_decide_verdict$' "$TMP/syms" && ! grep -qv '^whiply_' "$TMP/syms"; then
    ok "libwhiply.so exports only whiply_* names"
else
    bad "libwhiply.so exports only whiply_* names" "$(grep -v '^whiply_' "$TMP/syms" 2>/dev/null | head -5)"
fi

if [ -n "$pc" ]; then
    pkgconf() { PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$DEST pkg-config "$@" whiply; }
    libdir=$(dirname "$so")
    # shared: what pkg-config --cflags --libs gives (the library found at run time through
    # LD_LIBRARY_PATH, as it is not in the system's directories under the destdir)
    # shellcheck disable=SC2046
    if "${CCV[@]}" examples/embed.c $(pkgconf --cflags --libs) -o "$TMP/embed-shared" 2>"$TMP/cc.err"; then
        ok "installed: embed.c builds with pkg-config --cflags --libs whiply"
        LD_LIBRARY_PATH=$libdir check_embed "installed shared" "$TMP/embed-shared"
    else
        bad "installed: embed.c builds with pkg-config --cflags --libs whiply" "$(head -c 2000 "$TMP/cc.err")"
    fi
    # static: libwhiply.a by name (-lwhiply would pick the .so beside it) and the libraries it
    # needs, which --static lists (Hyperscan's own list brings the C++ runtime)
    # shellcheck disable=SC2046
    if "${CCV[@]}" examples/embed.c $(pkgconf --cflags) $(pkgconf --static --libs | sed 's/-lwhiply\b/-l:libwhiply.a/') \
        -o "$TMP/embed-static" 2>"$TMP/cc.err"; then
        ok "installed: embed.c links libwhiply.a with pkg-config --static --libs whiply"
        if readelf -d "$TMP/embed-static" | grep -q 'NEEDED.*libwhiply'; then
            bad "installed static: does not need libwhiply.so" "$(readelf -d "$TMP/embed-static" | grep NEEDED)"
        else
            ok "installed static: does not need libwhiply.so"
        fi
        check_embed "installed static" "$TMP/embed-static"
    else
        bad "installed: embed.c links libwhiply.a with pkg-config --static --libs whiply" \
            "$(head -c 2000 "$TMP/cc.err")"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
