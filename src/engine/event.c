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

/* The keys the contract names, at the top level and in "user". Each may appear once: a
 * JSON object with a key twice means whatever its reader decides (the first or the last
 * wins), so a line that whiply reads one way and a client, a log or a moderator's screen
 * another is refused. A bit per key makes the check free; other keys are ignored (their
 * repeats too: checking them would cost a comparison per pair). */
enum {
    K_ID,
    K_TYPE,
    K_PLATFORM,
    K_CHANNEL,
    K_TEXT,
    K_TS,
    K_META,
    K_USER,
    K_MODERATOR,
    K_TARGET,
    K_ACTION,
    K_REF_EVENT,
    K_DURATION_S,
    K__TOP
};
static const char *const top_names[K__TOP] = {
    "id",   "type",      "platform", "channel", "text",      "ts",        "meta",
    "user", "moderator", "target",   "action",  "ref_event", "duration_s"};
enum { U_ID, U_NAME, U_ROLES, U_CREATED_AT, U_FIRST_MESSAGE, U__COUNT };
static const char *const user_names[U__COUNT] = {"id", "name", "roles", "created_at",
                                                 "first_message"};

/* The names above by length, then bytes: constant-length compares the compiler inlines
 * (every key of every event comes here; a loop over the names with memcmp made the whole
 * decode 5% more instructions, callgrind on bench/core_stream.sh's events). */
#define IS(lit) (!memcmp(p, lit, sizeof(lit) - 1))
static inline __attribute__((always_inline)) int top_key(const char *p, size_t len)
{
    switch (len) {
    case 2:
        return IS("id") ? K_ID : IS("ts") ? K_TS : -1;
    case 4:
        return IS("type")   ? K_TYPE
               : IS("text") ? K_TEXT
               : IS("meta") ? K_META
               : IS("user") ? K_USER
                            : -1;
    case 6:
        return IS("target") ? K_TARGET : IS("action") ? K_ACTION : -1;
    case 7:
        return IS("channel") ? K_CHANNEL : -1;
    case 8:
        return IS("platform") ? K_PLATFORM : -1;
    case 9:
        return IS("moderator") ? K_MODERATOR : IS("ref_event") ? K_REF_EVENT : -1;
    case 10:
        return IS("duration_s") ? K_DURATION_S : -1;
    }
    return -1;
}

static inline __attribute__((always_inline)) int user_key(const char *p, size_t len)
{
    switch (len) {
    case 2:
        return IS("id") ? U_ID : -1;
    case 4:
        return IS("name") ? U_NAME : -1;
    case 5:
        return IS("roles") ? U_ROLES : -1;
    case 10:
        return IS("created_at") ? U_CREATED_AT : -1;
    case 13:
        return IS("first_message") ? U_FIRST_MESSAGE : -1;
    }
    return -1;
}

/* meta's one key that whiply reads */
static int meta_key(const char *p, size_t len)
{
    return len == 6 && IS("emotes") ? 0 : -1;
}
#undef IS

/* The rare key with escapes, out of line: its buffer stays off the hot path's stack. */
static __attribute__((noinline)) int key_unescaped(const char *p, size_t len,
                                                   int (*lookup)(const char *, size_t))
{
    char kb[96]; /* a known key, escaped, is at most 6 bytes a character: 13 x 6 fit */
    size_t w = 0, bad = 0;
    if (len > sizeof(kb) || !wh_json_unescape(p, len, kb, &w, &bad)) return -1;
    return lookup(kb, w);
}

/* Which key the key token t is, by lookup (one of the functions above; a direct call, so it
 * is inlined), or -1. A key written with escapes ("te\u0078t") is the same key to every
 * JSON reader, so it is looked up unescaped. */
#define KEY_OF(t, lookup)                                                                          \
    ((t)->escaped ? key_unescaped(js + (t)->start, (size_t)((t)->end - (t)->start), lookup)        \
                  : lookup(js + (t)->start, (size_t)((t)->end - (t)->start)))

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

/* Identifiers are looked up, keyed, compared and shown (in URL paths, logs, SQL, the
 * moderators' queue), and C strings end at a NUL: "held\u0000x" would be one event to the
 * engine and another to everything after it. So no C0 control character and no DEL in
 * them. (Free text keeps its newlines and tabs; only NUL is refused there.)
 *
 * The bytes of w below 0x20 or equal to 0x7f, as their high bits (and no other bit of
 * 0x80..80 set): a byte b < 0x20 borrows into its high bit in w - 0x20 while its own high
 * bit is clear, and a byte 0x7f is a zero byte of w ^ 0x7f. */
static inline uint64_t control_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, d = w ^ (ones * 0x7f);
    return ((w - ones * 0x20) & ~w) | ((d - ones) & ~d);
}

/* Whether p[0..n) holds a control byte, without a loop over its bytes (this runs on every
 * identifier of every event, most of them under 16 bytes): whole words, the last one
 * overlapping; under 8 bytes, two overlapping loads whose bytes are all p's. */
static inline bool has_control(const char *p, uint32_t n)
{
    uint64_t acc = 0;
    if (n >= 8) {
        uint64_t w;
        for (uint32_t k = 0; k + 8 < n; k += 8) {
            memcpy(&w, p + k, 8);
            acc |= control_bytes(w);
        }
        memcpy(&w, p + n - 8, 8);
        acc |= control_bytes(w);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        acc = control_bytes(a | (uint64_t)b << 32);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, p, 2);
        memcpy(&b, p + n - 2, 2);
        uint64_t x = a | (uint64_t)b << 16;
        acc = control_bytes(x | x << 32);
    } else if (n == 1) {
        acc = control_bytes(0x0101010101010101ull * (unsigned char)p[0]);
    }
    return (acc & 0x8080808080808080ull) != 0;
}

/* The error for an identifier that has_control found a control byte in. */
static bool control_error(wh_str v, const char *name, wh_decode_error *err)
{
    uint32_t k = 0;
    while (k + 1 < v.n && (unsigned char)v.p[k] >= 0x20 && v.p[k] != 0x7f)
        k++;
    return fail(err, "bad_field",
                "\"%s\" contains a control character (U+%04X at byte %u of its value); "
                "identifiers may not",
                name, (unsigned char)v.p[k], k + 1);
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
        bool is_id =
            tok[i].escaped ? KEY_OF(&tok[i], top_key) == K_ID : key_is(js, &tok[i], "id", 2);
        if (is_id && have_id) return fail(err, "bad_field", "duplicate key \"id\"");
        if (is_id) {
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
    if (has_control(ev->id.p, ev->id.n)) return control_error(ev->id, "id", err);
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
/* The same for an identifier (has_control). */
#define WANT_ID_AT(x, field, name)                                                                 \
    do {                                                                                           \
        WANT_STR_AT(x, field, name);                                                               \
        if (has_control((field).p, (field).n)) return control_error(field, name, err);             \
    } while (0)
#define WANT_ID(field, name) WANT_ID_AT(v, field, name)
#define NULL_AT(x) (tok[x].type == WH_J_PRIMITIVE && line[tok[x].start] == 'n')
#define IS_NULL NULL_AT(v)

    i = 1;
    uint32_t seen = 0; /* top_keys met so far, a bit each */
    for (int k = 0; k < nkeys; k++) {
        int v = i + 1;
        int next = tok[v].next;
        int key = KEY_OF(&tok[i], top_key);
        if (key >= 0) {
            if (seen & (1u << key))
                return fail(err, "bad_field", "duplicate key \"%s\"", top_names[key]);
            seen |= 1u << key;
        }
        if (key == K_ID) {
            /* read in the first pass */
        } else if (key == K_TYPE) {
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
        } else if (key == K_PLATFORM) {
            if (!IS_NULL) WANT_ID(ev->platform, "platform");
        } else if (key == K_CHANNEL) {
            if (!IS_NULL) WANT_ID(ev->channel, "channel");
        } else if (key == K_TEXT) {
            if (!IS_NULL) WANT_STR(ev->text, "text");
            if (ev->text.n > WH_MAX_TEXT)
                return fail(err, "text_too_long", "\"text\" is %u bytes; the limit is %d",
                            ev->text.n, WH_MAX_TEXT);
            if (ev->text.n && memchr(ev->text.p, 0, ev->text.n))
                return fail(err, "bad_field", "\"text\" contains a NUL character");
        } else if (key == K_TS) {
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
        } else if (key == K_META) {
            ev->meta.p = line + tok[v].start;
            ev->meta.n = (uint32_t)(tok[v].end - tok[v].start);
            if (tok[v].type == WH_J_STRING) { /* keep the quotes: it is echoed as JSON */
                ev->meta.p--;
                ev->meta.n += 2;
            }
            /* meta is the client's, passed on as it came; of its keys whiply reads only
             * "emotes", which may appear once like the event's own keys. */
            if (tok[v].type == WH_J_OBJECT) {
                int j = v + 1;
                bool emotes = false;
                for (int mk = 0; mk < tok[v].size; mk++) {
                    if (KEY_OF(&tok[j], meta_key) == 0) {
                        if (emotes) return fail(err, "bad_field", "duplicate key \"meta.emotes\"");
                        emotes = true;
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
        } else if (key == K_USER) {
            if (tok[v].type == WH_J_OBJECT) {
                int j = v + 1;
                uint32_t useen = 0;
                for (int uk = 0; uk < tok[v].size; uk++) {
                    int uv = j + 1; /* the key is tok[j], its value tok[uv] */
                    int ukey = KEY_OF(&tok[j], user_key);
                    if (ukey >= 0) {
                        if (useen & (1u << ukey))
                            return fail(err, "bad_field", "duplicate key \"user.%s\"",
                                        user_names[ukey]);
                        useen |= 1u << ukey;
                    }
                    if (ukey == U_ID) {
                        if (tok[uv].type == WH_J_PRIMITIVE && !NULL_AT(uv)) {
                            ev->user_id.p = line + tok[uv].start;
                            ev->user_id.n = (uint32_t)(tok[uv].end - tok[uv].start);
                        } else if (!NULL_AT(uv)) {
                            WANT_ID_AT(uv, ev->user_id, "user.id");
                        }
                    } else if (ukey == U_NAME) {
                        if (!NULL_AT(uv)) WANT_ID_AT(uv, ev->user_name, "user.name");
                    } else if (ukey == U_ROLES) {
                        if (tok[uv].type == WH_J_ARRAY) {
                            for (int r = uv + 1; r < tok[uv].next; r++) {
                                if (tok[r].type != WH_J_STRING)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" must be an array of strings");
                                if (ev->nroles >= WH_MAX_ROLES)
                                    return fail(err, "bad_field",
                                                "\"user.roles\" has more than %d roles",
                                                WH_MAX_ROLES);
                                WANT_ID_AT(r, ev->roles[ev->nroles], "user.roles");
                                ev->nroles++;
                            }
                        } else if (!NULL_AT(uv)) {
                            return fail(err, "bad_field", "\"user.roles\" must be an array");
                        }
                    } else if (ukey == U_CREATED_AT) {
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
                    } else if (ukey == U_FIRST_MESSAGE) {
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
        } else if (key == K_MODERATOR) {
            if (!IS_NULL) WANT_ID(ev->moderator, "moderator");
        } else if (key == K_TARGET) {
            if (!IS_NULL) WANT_ID(ev->target, "target");
        } else if (key == K_ACTION) {
            if (!IS_NULL) WANT_ID(ev->mod_action, "action");
        } else if (key == K_REF_EVENT) {
            if (!IS_NULL) WANT_ID(ev->ref_event, "ref_event");
        } else if (key == K_DURATION_S) {
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
