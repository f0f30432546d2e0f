/* event.c - NDJSON event decoding with jsmn (zero-copy tokenizer).
 *
 * jsmn only tokenizes; this file adds what the contract needs on top: strict
 * primitives, string escapes and control characters, nesting depth, the limits, and
 * an error that names the field and the byte offset. */
#include "event.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "text/utf8.h"

const char *const wh_event_type_names[WH_EV__COUNT] = {"message", "join", "part", "mod_action",
                                                       "user_update"};

struct wh_decoder {
    jsmntok_t *tok;
    int *end; /* end[i]: index just past the subtree of token i (filled by walk) */
    unsigned cap;
    bool check_ctl; /* the line has bytes < 0x20: strings must be checked */
};

wh_decoder *wh_decoder_new(void)
{
    wh_decoder *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->cap = 256;
    d->tok = malloc(sizeof(jsmntok_t) * d->cap);
    d->end = malloc(sizeof(int) * d->cap);
    if (!d->tok || !d->end) {
        wh_decoder_free(d);
        return NULL;
    }
    return d;
}

void wh_decoder_free(wh_decoder *d)
{
    if (!d) return;
    free(d->tok);
    free(d->end);
    free(d);
}

/* True when some byte is below 0x20 (tab, CR, or a raw control character). */
static bool has_control(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        /* A byte < 0x20 has bits 5-7 clear: (b & 0xE0) == 0. */
        uint64_t t = ~(w | (w << 1) | (w << 2)) & 0x8080808080808080ull; /* bit 7 of each byte */
        if (t) {
            for (size_t k = 0; k < 8; k++)
                if ((unsigned char)s[i + k] < 0x20) return true;
        }
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return true;
    return false;
}

bool wh_line_is_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') return false;
    return true;
}

static bool fail(wh_decode_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static bool fail(wh_decode_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return false;
}

static bool has_control(const char *s, size_t n);

/* Byte offsets of a token including its quotes. */
static inline int raw_start(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->start - 1 : t->start;
}
static inline int raw_end(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* js[a..b) must be whitespace, with exactly one sep in it when sep is not 0. */
static bool gap_ok(const char *js, int a, int b, char sep, int *bad_at)
{
    bool seen = sep == 0;
    for (int k = a; k < b; k++) {
        char c = js[k];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == sep && !seen) {
            seen = true;
            continue;
        }
        *bad_at = k;
        return false;
    }
    if (!seen) *bad_at = b;
    return seen;
}

/* Index just past the subtree rooted at token i; checks depth, keys, primitives and (when
 * the line has any) control characters in strings, and records every subtree's end. */
static int skip(wh_decoder *d, const char *js, const jsmntok_t *t, int ntok, int i, int depth,
                int *bad_at, const char **why)
{
    if (i >= ntok) return ntok;
    if (depth > WH_MAX_DEPTH) {
        *bad_at = t[i].start;
        *why = "depth";
        return -1;
    }
    switch (t[i].type) {
    case JSMN_OBJECT:
    case JSMN_ARRAY: {
        /* jsmn does not check separators: every gap between tokens must be whitespace
         * around exactly the right ',' or ':'. */
        bool obj = t[i].type == JSMN_OBJECT;
        int n = t[i].size, j = i + 1, pos = t[i].start + 1;
        for (int k = 0; k < n; k++) {
            if (obj) {
                if (j >= ntok || t[j].type != JSMN_STRING) {
                    *bad_at = j < ntok ? t[j].start : t[i].start;
                    *why = "key";
                    return -1;
                }
                if (!gap_ok(js, pos, raw_start(&t[j]), k ? ',' : 0, bad_at)) goto sep;
                if (d->check_ctl && has_control(js + t[j].start, (size_t)(t[j].end - t[j].start))) {
                    *bad_at = t[j].start;
                    *why = "control";
                    return -1;
                }
                pos = raw_end(&t[j]);
                j++; /* the key; its value follows */
                if (j >= ntok || !gap_ok(js, pos, raw_start(&t[j]), ':', bad_at)) goto sep;
            } else if (j >= ntok || !gap_ok(js, pos, raw_start(&t[j]), k ? ',' : 0, bad_at)) {
                goto sep;
            }
            int v = j;
            j = skip(d, js, t, ntok, j, depth + 1, bad_at, why);
            if (j < 0) return -1;
            pos = raw_end(&t[v]);
        }
        if (!gap_ok(js, pos, t[i].end - 1, 0, bad_at)) goto sep;
        d->end[i] = j;
        return j;
    sep:
        *why = "separator";
        return -1;
    }
    case JSMN_PRIMITIVE: {
        const char *p = js + t[i].start;
        int n = t[i].end - t[i].start;
        if ((n == 4 && !memcmp(p, "true", 4)) || (n == 5 && !memcmp(p, "false", 5)) ||
            (n == 4 && !memcmp(p, "null", 4))) {
            d->end[i] = i + 1;
            return i + 1;
        }
        /* RFC 8259 number grammar. */
        int k = 0;
        if (k < n && p[k] == '-') k++;
        if (k < n && p[k] == '0') {
            k++;
        } else if (k < n && p[k] >= '1' && p[k] <= '9') {
            while (k < n && p[k] >= '0' && p[k] <= '9') k++;
        } else {
            goto bad;
        }
        if (k < n && p[k] == '.') {
            k++;
            if (k >= n || p[k] < '0' || p[k] > '9') goto bad;
            while (k < n && p[k] >= '0' && p[k] <= '9') k++;
        }
        if (k < n && (p[k] == 'e' || p[k] == 'E')) {
            k++;
            if (k < n && (p[k] == '+' || p[k] == '-')) k++;
            if (k >= n || p[k] < '0' || p[k] > '9') goto bad;
            while (k < n && p[k] >= '0' && p[k] <= '9') k++;
        }
        if (k != n) goto bad;
        d->end[i] = i + 1;
        return i + 1;
    bad:
        *bad_at = t[i].start;
        *why = "primitive";
        return -1;
    }
    case JSMN_STRING: {
        d->end[i] = i + 1;
        for (int k = d->check_ctl ? t[i].start : t[i].end; k < t[i].end; k++) {
            if ((unsigned char)js[k] < 0x20) {
                *bad_at = k;
                *why = "control";
                return -1;
            }
        }
        return i + 1;
    }
    default: d->end[i] = i + 1; return i + 1;
    }
}

/* Returns the string token's value, unescaped into the arena when it has escapes.
 * On a bad escape returns false with *bad_at set. */
static bool str_value(const char *js, const jsmntok_t *t, wh_arena *a, wh_str *out, int *bad_at)
{
    const char *p = js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (!memchr(p, '\\', n)) {
        out->p = p;
        out->n = (uint32_t)n;
        return true;
    }
    char *o = wh_arena_alloc(a, n + 1);
    size_t w = 0, bad = 0;
    if (!o || !wh_json_unescape(p, n, o, &w, &bad)) {
        *bad_at = t->start + (int)bad;
        return false;
    }
    o[w] = 0;
    out->p = o;
    out->n = (uint32_t)w;
    return true;
}

static bool key_is(const char *js, const jsmntok_t *t, const char *k, size_t kn)
{
    return (size_t)(t->end - t->start) == kn && memcmp(js + t->start, k, kn) == 0;
}
#define KEY(lit) key_is(js, &tok[i], lit, sizeof(lit) - 1)

static bool parse_int(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 17) return false; /* |v| < 10^16: no overflow, and far past any ms time */
    int64_t v = 0;
    size_t k = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        k = 1;
        if (n == 1) return false;
    }
    for (; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') return false;
        v = v * 10 + (p[k] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

bool wh_event_decode(wh_decoder *d, const char *line, size_t len, wh_arena *arena, int64_t now_ms,
                     wh_event *ev, wh_decode_error *err)
{
    memset(ev, 0, sizeof(*ev));
    memset(err, 0, sizeof(*err));
    ev->created_at_ms = INT64_MIN;
    ev->first_message = -1;
    ev->duration_s = -1;
    if (len > WH_MAX_LINE)
        return fail(err, "line_too_long", "line is %zu bytes; the limit is %d", len, WH_MAX_LINE);
    size_t bad = wh_utf8_invalid_at(line, len);
    if (bad != (size_t)-1)
        return fail(err, "bad_utf8", "invalid UTF-8 at byte %zu", bad + 1);

    jsmn_parser p;
    int ntok;
    jsmn_init(&p);
    for (;;) {
        ntok = jsmn_parse(&p, line, len, d->tok, d->cap);
        if (ntok != JSMN_ERROR_NOMEM) break;
        if (d->cap >= (1u << 20)) return fail(err, "bad_json", "too many JSON values");
        jsmntok_t *nt = realloc(d->tok, sizeof(jsmntok_t) * d->cap * 2);
        if (!nt) return fail(err, "bad_json", "out of memory for JSON tokens");
        d->tok = nt;
        int *ne = realloc(d->end, sizeof(int) * d->cap * 2);
        if (!ne) return fail(err, "bad_json", "out of memory for JSON tokens");
        d->end = ne;
        d->cap *= 2;
        jsmn_init(&p); /* start over with the bigger array: simplest state to reason about */
    }
    const jsmntok_t *tok = d->tok;
    if (ntok == JSMN_ERROR_INVAL)
        return fail(err, "bad_json", "invalid JSON at byte %u", p.pos + 1);
    if (ntok == JSMN_ERROR_PART || ntok == 0)
        return fail(err, "bad_json", "truncated JSON: the line ends inside a value");
    if (ntok < 0) return fail(err, "bad_json", "invalid JSON");
    if (tok[0].type != JSMN_OBJECT)
        return fail(err, "bad_json", "an event must be a JSON object, at byte %d", tok[0].start + 1);
    for (size_t k = (size_t)tok[0].end; k < len; k++)
        if (line[k] != ' ' && line[k] != '\t' && line[k] != '\r')
            return fail(err, "bad_json", "unexpected data after the object at byte %zu", k + 1);
    int bad_at = 0;
    const char *why = NULL;
    d->check_ctl = has_control(line, len);
    if (skip(d, line, tok, ntok, 0, 1, &bad_at, &why) < 0) {
        if (!strcmp(why, "depth"))
            return fail(err, "too_deep", "nesting deeper than %d at byte %d", WH_MAX_DEPTH,
                        bad_at + 1);
        if (!strcmp(why, "control"))
            return fail(err, "bad_json", "unescaped control character in a string at byte %d",
                        bad_at + 1);
        if (!strcmp(why, "key"))
            return fail(err, "bad_json", "object key must be a string at byte %d", bad_at + 1);
        if (!strcmp(why, "separator"))
            return fail(err, "bad_json", "missing or unexpected ',' or ':' at byte %d", bad_at + 1);
        return fail(err, "bad_json", "invalid literal at byte %d", bad_at + 1);
    }

    const char *js = line;
    /* First pass: the id, so that later errors can name the event. */
    int nkeys = tok[0].size;
    int i = 1;
    bool have_id = false;
    for (int k = 0; k < nkeys; k++) {
        int v = i + 1;
        if (KEY("id") && !have_id) {
            if (tok[v].type == JSMN_STRING) {
                if (!str_value(js, &tok[v], arena, &ev->id, &bad_at))
                    return fail(err, "bad_json", "invalid escape in \"id\" at byte %d", bad_at + 1);
            } else if (tok[v].type == JSMN_PRIMITIVE && line[tok[v].start] != 't' &&
                       line[tok[v].start] != 'f' && line[tok[v].start] != 'n') {
                ev->id.p = line + tok[v].start; /* a number: keep its literal text */
                ev->id.n = (uint32_t)(tok[v].end - tok[v].start);
            } else {
                return fail(err, "bad_field", "\"id\" must be a string");
            }
            have_id = true;
        }
        i = d->end[v];
    }
    if (!have_id || ev->id.n == 0) return fail(err, "missing_id", "the event has no \"id\"");
    if (ev->id.n > WH_MAX_ID) {
        return fail(err, "bad_field", "\"id\" is %u bytes; the limit is %d", ev->id.n, WH_MAX_ID);
    }
    err->id = ev->id;

#define WANT_STR(field, name)                                                                      \
    do {                                                                                           \
        if (tok[v].type != JSMN_STRING)                                                            \
            return fail(err, "bad_field", "\"%s\" must be a string", name);                        \
        if (!str_value(js, &tok[v], arena, &(field), &bad_at))                                     \
            return fail(err, "bad_json", "invalid escape in \"%s\" at byte %d", name, bad_at + 1); \
    } while (0)
#define IS_NULL (tok[v].type == JSMN_PRIMITIVE && line[tok[v].start] == 'n')

    i = 1;
    for (int k = 0; k < nkeys; k++) {
        int v = i + 1;
        int next = d->end[v];
        if (KEY("type")) {
            wh_str t;
            WANT_STR(t, "type");
            bool found = false;
            for (int e = 0; e < WH_EV__COUNT; e++) {
                if (wh_str_eq(t, wh_event_type_names[e], strlen(wh_event_type_names[e]))) {
                    ev->type = (wh_event_type)e;
                    found = true;
                }
            }
            if (!found)
                return fail(err, "bad_field",
                            "unknown \"type\" (expected message, join, part, mod_action or "
                            "user_update)");
        } else if (KEY("platform")) {
            if (!IS_NULL) WANT_STR(ev->platform, "platform");
        } else if (KEY("channel")) {
            if (!IS_NULL) WANT_STR(ev->channel, "channel");
        } else if (KEY("text")) {
            if (!IS_NULL) WANT_STR(ev->text, "text");
            if (ev->text.n > WH_MAX_TEXT)
                return fail(err, "text_too_long", "\"text\" is %u bytes; the limit is %d",
                            ev->text.n, WH_MAX_TEXT);
            if (memchr(ev->text.p, 0, ev->text.n))
                return fail(err, "bad_field", "\"text\" contains a NUL character");
        } else if (KEY("ts")) {
            if (tok[v].type == JSMN_STRING) {
                wh_str s;
                WANT_STR(s, "ts");
                if (!wh_parse_rfc3339(s.p, s.n, &ev->ts_ms))
                    return fail(err, "bad_ts", "\"ts\" is not an RFC 3339 time");
                ev->ts_given = true;
            } else if (tok[v].type == JSMN_PRIMITIVE && !IS_NULL) {
                if (!parse_int(line + tok[v].start, (size_t)(tok[v].end - tok[v].start),
                               &ev->ts_ms) ||
                    ev->ts_ms < 0 || ev->ts_ms > 253402300799999LL)
                    return fail(err, "bad_ts",
                                "\"ts\" must be RFC 3339 or integer unix ms (years 1970-9999)");
                ev->ts_given = true;
            }
        } else if (KEY("meta")) {
            ev->meta.p = line + tok[v].start;
            ev->meta.n = (uint32_t)(tok[v].end - tok[v].start);
            if (tok[v].type == JSMN_STRING) { /* keep the quotes: it is echoed as JSON */
                ev->meta.p--;
                ev->meta.n += 2;
            }
            if (tok[v].type == JSMN_OBJECT) {
                int j = v + 1;
                for (int mk = 0; mk < tok[v].size; mk++) {
                    if (key_is(js, &tok[j], "emotes", 6)) {
                        const jsmntok_t *e = &tok[j + 1];
                        if (e->type == JSMN_STRING) {
                            ev->meta_emotes.p = line + e->start;
                            ev->meta_emotes.n = (uint32_t)(e->end - e->start);
                        } else if (e->type == JSMN_ARRAY) {
                            ev->meta_emotes_is_array = true;
                            ev->meta_emotes.n = (uint32_t)e->size;
                        }
                    }
                    j = d->end[j + 1];
                }
            }
        } else if (KEY("user")) {
            if (tok[v].type == JSMN_OBJECT) {
                int j = v + 1;
                for (int uk = 0; uk < tok[v].size; uk++) {
                    int uv = j + 1;
                    const jsmntok_t *kt = &tok[j];
                    int save_i = i;
                    i = j;
                    int vv = v;
                    v = uv;
                    if (KEY("id")) {
                        if (tok[v].type == JSMN_PRIMITIVE && !IS_NULL) {
                            ev->user_id.p = line + tok[v].start;
                            ev->user_id.n = (uint32_t)(tok[v].end - tok[v].start);
                        } else if (!IS_NULL) {
                            WANT_STR(ev->user_id, "user.id");
                        }
                    } else if (KEY("name")) {
                        if (!IS_NULL) WANT_STR(ev->user_name, "user.name");
                    } else if (KEY("roles")) {
                        if (tok[v].type == JSMN_ARRAY) {
                            int r = v + 1, nr = tok[v].size;
                            for (int rk = 0; rk < nr; rk++) {
                                if (tok[r].type != JSMN_STRING)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" must be an array of strings");
                                if (ev->nroles >= WH_MAX_ROLES)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" has more than %d roles",
                                                WH_MAX_ROLES);
                                v = r;
                                WANT_STR(ev->roles[ev->nroles], "user.roles");
                                ev->nroles++;
                                r++;
                            }
                        } else if (!IS_NULL) {
                            return fail(err, "bad_field", "\"user.roles\" must be an array");
                        }
                    } else if (KEY("created_at")) {
                        if (tok[v].type == JSMN_STRING) {
                            wh_str s;
                            WANT_STR(s, "user.created_at");
                            if (!wh_parse_rfc3339(s.p, s.n, &ev->created_at_ms))
                                return fail(err, "bad_ts",
                                            "\"user.created_at\" is not an RFC 3339 time");
                        } else if (tok[v].type == JSMN_PRIMITIVE && !IS_NULL) {
                            if (!parse_int(line + tok[v].start,
                                           (size_t)(tok[v].end - tok[v].start),
                                           &ev->created_at_ms))
                                return fail(err, "bad_ts",
                                            "\"user.created_at\" must be RFC 3339 or unix ms");
                        }
                    } else if (KEY("first_message")) {
                        if (tok[v].type == JSMN_PRIMITIVE && line[tok[v].start] == 't')
                            ev->first_message = 1;
                        else if (tok[v].type == JSMN_PRIMITIVE && line[tok[v].start] == 'f')
                            ev->first_message = 0;
                        else if (!IS_NULL)
                            return fail(err, "bad_field",
                                        "\"user.first_message\" must be true or false");
                    }
                    (void)kt;
                    v = vv;
                    i = save_i;
                    j = d->end[uv];
                }
            } else if (!IS_NULL) {
                return fail(err, "bad_field", "\"user\" must be an object");
            }
        } else if (KEY("moderator")) {
            if (!IS_NULL) WANT_STR(ev->moderator, "moderator");
        } else if (KEY("target")) {
            if (!IS_NULL) WANT_STR(ev->target, "target");
        } else if (KEY("action")) {
            if (!IS_NULL) WANT_STR(ev->mod_action, "action");
        } else if (KEY("ref_event")) {
            if (!IS_NULL) WANT_STR(ev->ref_event, "ref_event");
        } else if (KEY("duration_s")) {
            if ((tok[v].type != JSMN_PRIMITIVE ||
                 !parse_int(line + tok[v].start, (size_t)(tok[v].end - tok[v].start),
                            &ev->duration_s) ||
                 ev->duration_s < 0) &&
                !IS_NULL)
                return fail(err, "bad_field", "\"duration_s\" must be a non-negative integer");
        }
        i = next;
    }
    if (!ev->ts_given) ev->ts_ms = now_ms;
    return true;
}
