/* event.c - NDJSON event decoding on the zero-copy tokenizer of base/json.h.
 *
 * The tokenizer validates the JSON; this file maps it onto the event contract: field
 * types, string escapes, the limits, and an error that names the field and the byte. */
#include "event.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#include "text/utf8.h"

const char *const wh_event_type_names[WH_EV__COUNT] = {"message", "join", "part", "mod_action",
                                                       "user_update"};

struct wh_decoder {
    wh_jtok *tok;
    int cap;
    int max_depth;
};

void wh_decoder_set_max_depth(wh_decoder *d, int depth)
{
    if (depth >= 2 && depth <= WH_MAX_DEPTH) d->max_depth = depth;
}

wh_decoder *wh_decoder_new(void)
{
    wh_decoder *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->cap = 256;
    d->max_depth = WH_MAX_DEPTH;
    d->tok = malloc(sizeof(wh_jtok) * (size_t)d->cap);
    if (!d->tok) {
        wh_decoder_free(d);
        return NULL;
    }
    return d;
}

void wh_decoder_free(wh_decoder *d)
{
    if (!d) return;
    free(d->tok);
    free(d);
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

/* Returns the string token's value, unescaped into the arena when it has escapes.
 * On a bad escape returns false with *bad_at set. */
static bool str_value(const char *js, const wh_jtok *t, wh_arena *a, wh_str *out, int *bad_at)
{
    const char *p = js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (!t->escaped) {
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

static bool key_is(const char *js, const wh_jtok *t, const char *k, size_t kn)
{
    return (size_t)(t->end - t->start) == kn && memcmp(js + t->start, k, kn) == 0;
}
#define KEY_AT(k, lit) key_is(js, &tok[k], lit, sizeof(lit) - 1)
#define KEY(lit) KEY_AT(i, lit)

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
    if (bad != (size_t)-1) return fail(err, "bad_utf8", "invalid UTF-8 at byte %zu", bad + 1);

    int ntok;
    size_t epos = 0;
    const char *what = "";
    for (;;) {
        ntok = wh_json_tokenize(line, len, d->tok, d->cap, d->max_depth, &epos, &what);
        if (ntok != WH_J_ENOMEM) break;
        if (d->cap >= (1 << 20)) return fail(err, "bad_json", "too many JSON values");
        wh_jtok *nt = realloc(d->tok, sizeof(wh_jtok) * (size_t)d->cap * 2);
        if (!nt) return fail(err, "bad_json", "out of memory for JSON tokens");
        d->tok = nt;
        d->cap *= 2;
    }
    const wh_jtok *tok = d->tok;
    if (ntok == WH_J_EDEPTH)
        return fail(err, "too_deep", "nesting deeper than %d at byte %zu", d->max_depth, epos + 1);
    if (ntok < 0) {
        char m[160];
        wh_json_describe(ntok, what, epos, d->max_depth, m, sizeof(m));
        return fail(err, "bad_json", "%s", m);
    }
    if (tok[0].type != WH_J_OBJECT)
        return fail(err, "bad_json", "an event must be a JSON object, at byte %d",
                    tok[0].start + 1);
    int bad_at = 0;

    const char *js = line;
    /* First pass: the id, so that later errors can name the event. */
    int nkeys = tok[0].size;
    int i = 1;
    bool have_id = false;
    for (int k = 0; k < nkeys; k++) {
        int v = i + 1;
        if (KEY("id") && !have_id) {
            if (tok[v].type == WH_J_STRING) {
                if (!str_value(js, &tok[v], arena, &ev->id, &bad_at))
                    return fail(err, "bad_json", "invalid escape in \"id\" at byte %d", bad_at + 1);
            } else if (tok[v].type == WH_J_PRIMITIVE && line[tok[v].start] != 't' &&
                       line[tok[v].start] != 'f' && line[tok[v].start] != 'n') {
                ev->id.p = line + tok[v].start; /* a number: keep its literal text */
                ev->id.n = (uint32_t)(tok[v].end - tok[v].start);
            } else {
                return fail(err, "bad_field", "\"id\" must be a string");
            }
            have_id = true;
        }
        i = tok[v].next;
    }
    if (!have_id || ev->id.n == 0) return fail(err, "missing_id", "the event has no \"id\"");
    if (ev->id.n > WH_MAX_ID) {
        return fail(err, "bad_field", "\"id\" is %u bytes; the limit is %d", ev->id.n, WH_MAX_ID);
    }
    err->id = ev->id;

/* The value token x must be a string; it goes to field. */
#define WANT_STR_AT(x, field, name)                                                                \
    do {                                                                                           \
        if (tok[x].type != WH_J_STRING)                                                            \
            return fail(err, "bad_field", "\"%s\" must be a string", name);                        \
        if (!str_value(js, &tok[x], arena, &(field), &bad_at))                                     \
            return fail(err, "bad_json", "invalid escape in \"%s\" at byte %d", name, bad_at + 1); \
    } while (0)
#define WANT_STR(field, name) WANT_STR_AT(v, field, name)
#define NULL_AT(x) (tok[x].type == WH_J_PRIMITIVE && line[tok[x].start] == 'n')
#define IS_NULL NULL_AT(v)

    i = 1;
    for (int k = 0; k < nkeys; k++) {
        int v = i + 1;
        int next = tok[v].next;
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
            if (ev->text.n && memchr(ev->text.p, 0, ev->text.n))
                return fail(err, "bad_field", "\"text\" contains a NUL character");
        } else if (KEY("ts")) {
            if (tok[v].type == WH_J_STRING) {
                wh_str s;
                WANT_STR(s, "ts");
                if (!wh_parse_rfc3339(s.p, s.n, &ev->ts_ms))
                    return fail(err, "bad_ts", "\"ts\" is not an RFC 3339 time");
                ev->ts_given = true;
            } else if (tok[v].type == WH_J_PRIMITIVE && !IS_NULL) {
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
            if (tok[v].type == WH_J_STRING) { /* keep the quotes: it is echoed as JSON */
                ev->meta.p--;
                ev->meta.n += 2;
            }
            if (tok[v].type == WH_J_OBJECT) {
                int j = v + 1;
                for (int mk = 0; mk < tok[v].size; mk++) {
                    if (key_is(js, &tok[j], "emotes", 6)) {
                        const wh_jtok *e = &tok[j + 1];
                        if (e->type == WH_J_STRING) {
                            ev->meta_emotes.p = line + e->start;
                            ev->meta_emotes.n = (uint32_t)(e->end - e->start);
                        } else if (e->type == WH_J_ARRAY) {
                            ev->meta_emotes_is_array = true;
                            ev->meta_emotes.n = (uint32_t)e->size;
                        }
                    }
                    j = tok[j + 1].next;
                }
            }
        } else if (KEY("user")) {
            if (tok[v].type == WH_J_OBJECT) {
                int j = v + 1;
                for (int uk = 0; uk < tok[v].size; uk++) {
                    int uv = j + 1; /* the key is tok[j], its value tok[uv] */
                    if (KEY_AT(j, "id")) {
                        if (tok[uv].type == WH_J_PRIMITIVE && !NULL_AT(uv)) {
                            ev->user_id.p = line + tok[uv].start;
                            ev->user_id.n = (uint32_t)(tok[uv].end - tok[uv].start);
                        } else if (!NULL_AT(uv)) {
                            WANT_STR_AT(uv, ev->user_id, "user.id");
                        }
                    } else if (KEY_AT(j, "name")) {
                        if (!NULL_AT(uv)) WANT_STR_AT(uv, ev->user_name, "user.name");
                    } else if (KEY_AT(j, "roles")) {
                        if (tok[uv].type == WH_J_ARRAY) {
                            for (int r = uv + 1; r < tok[uv].next; r++) {
                                if (tok[r].type != WH_J_STRING)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" must be an array of strings");
                                if (ev->nroles >= WH_MAX_ROLES)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" has more than %d roles",
                                                WH_MAX_ROLES);
                                WANT_STR_AT(r, ev->roles[ev->nroles], "user.roles");
                                ev->nroles++;
                            }
                        } else if (!NULL_AT(uv)) {
                            return fail(err, "bad_field", "\"user.roles\" must be an array");
                        }
                    } else if (KEY_AT(j, "created_at")) {
                        if (tok[uv].type == WH_J_STRING) {
                            wh_str s;
                            WANT_STR_AT(uv, s, "user.created_at");
                            if (!wh_parse_rfc3339(s.p, s.n, &ev->created_at_ms))
                                return fail(err, "bad_ts",
                                            "\"user.created_at\" is not an RFC 3339 time");
                        } else if (tok[uv].type == WH_J_PRIMITIVE && !NULL_AT(uv)) {
                            if (!parse_int(line + tok[uv].start,
                                           (size_t)(tok[uv].end - tok[uv].start),
                                           &ev->created_at_ms) ||
                                ev->created_at_ms < 0 || ev->created_at_ms > 253402300799999LL)
                                return fail(err, "bad_ts",
                                            "\"user.created_at\" must be RFC 3339 or unix ms "
                                            "(years 1970-9999)");
                        }
                    } else if (KEY_AT(j, "first_message")) {
                        if (tok[uv].type == WH_J_PRIMITIVE && line[tok[uv].start] == 't')
                            ev->first_message = 1;
                        else if (tok[uv].type == WH_J_PRIMITIVE && line[tok[uv].start] == 'f')
                            ev->first_message = 0;
                        else if (!NULL_AT(uv))
                            return fail(err, "bad_field",
                                        "\"user.first_message\" must be true or false");
                    }
                    j = tok[uv].next;
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
            if ((tok[v].type != WH_J_PRIMITIVE ||
                 !parse_int(line + tok[v].start, (size_t)(tok[v].end - tok[v].start),
                            &ev->duration_s) ||
                 ev->duration_s < 0) &&
                !IS_NULL)
                return fail(err, "bad_field", "\"duration_s\" must be a non-negative integer");
        }
        i = next;
    }
    if (!ev->ts_given) ev->ts_ms = now_ms == WH_NOW ? wh_now_ms() : now_ms;
    if (!ev->text.p) ev->text.p = ""; /* absent or null text: an empty message */
    return true;
}
