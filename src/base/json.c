/* json.c - see json.h. */
#include "json.h"

#include "base.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define FAIL(pos, what)                                                                            \
    do {                                                                                           \
        *err_pos = (pos);                                                                          \
        *err_what = (what);                                                                        \
        return WH_J_EINVAL;                                                                        \
    } while (0)

static inline bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Offset of the first '"', '\\' or byte < 0x20 at or after i, or n. */
static inline size_t string_stop(const unsigned char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, b)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f));
        int m = _mm_movemask_epi8(hit);
        if (m) return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
        i++;
    return i;
}

int wh_json_tokenize(const char *str, size_t n, wh_jtok *tok, int cap, int max_depth,
                     size_t *err_pos, const char **err_what)
{
    const unsigned char *s = (const unsigned char *)str;
    int stack[64];
    if (max_depth > 64) max_depth = 64;
    int depth = 0, ntok = 0;
    size_t i = 0;
    /* After a value: expect ',' or the container's close (or the end at depth 0). */
    bool after_value = false;
    /* In an object, after '{' or ',' the next token must be a key, then ':'. */
    bool want_key = false;
    while (i < n && is_ws(s[i]))
        i++;
    if (i >= n) FAIL(i, "empty");
    for (;;) {
        while (i < n && is_ws(s[i]))
            i++;
        if (after_value) {
            if (depth == 0) {
                if (i != n) FAIL(i, "data after the value");
                return ntok;
            }
            if (i >= n) FAIL(i, "truncated");
            wh_jtok *ct = &tok[stack[depth - 1]];
            unsigned char close = ct->type == WH_J_OBJECT ? '}' : ']';
            if (s[i] == ',') {
                i++;
                after_value = false;
                want_key = ct->type == WH_J_OBJECT;
                continue;
            }
            if (s[i] != close) FAIL(i, "separator");
            ct->end = (int32_t)(i + 1);
            ct->next = ntok;
            depth--;
            i++;
            continue; /* still after a value: the container just closed */
        }
        if (i >= n) FAIL(i, "truncated");
        unsigned char c = s[i];
        if (ntok >= cap) return WH_J_ENOMEM;
        wh_jtok *t = &tok[ntok];
        t->escaped = 0;
        t->size = 0;
        if (depth) {
            wh_jtok *parent = &tok[stack[depth - 1]];
            if (want_key) {
                if (c != '"') FAIL(i, "key"); /* also "{\"a\":1,}" */
                parent->size++;
            } else if (parent->type == WH_J_ARRAY) {
                parent->size++;
            }
        }
        switch (c) {
        case '{':
        case '[':
            if (depth >= max_depth) {
                *err_pos = i;
                *err_what = "depth";
                return WH_J_EDEPTH;
            }
            t->type = c == '{' ? WH_J_OBJECT : WH_J_ARRAY;
            t->start = (int32_t)i;
            stack[depth++] = ntok++;
            i++;
            while (i < n && is_ws(s[i]))
                i++;
            if (i < n && s[i] == (c == '{' ? '}' : ']')) { /* empty container */
                t->end = (int32_t)(i + 1);
                t->next = ntok;
                depth--;
                i++;
                after_value = true;
                want_key = false;
            } else {
                want_key = c == '{';
            }
            continue;
        case '}':
        case ']':
            FAIL(i, "separator");
        case '"': {
            size_t st = ++i;
            for (;;) {
                i = string_stop(s, i, n);
                if (i >= n) FAIL(st - 1, "truncated");
                if (s[i] == '"') break;
                if (s[i] < 0x20) FAIL(i, "control");
                /* backslash */
                t->escaped = 1;
                if (i + 1 >= n) FAIL(i, "truncated");
                unsigned char e = s[i + 1];
                if (e == 'u') {
                    if (i + 6 > n || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
                        !is_hex(s[i + 5]))
                        FAIL(i, "escape");
                    i += 6;
                } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                           e == 'r' || e == 't') {
                    i += 2;
                } else {
                    FAIL(i, "escape");
                }
            }
            t->type = WH_J_STRING;
            t->start = (int32_t)st;
            t->end = (int32_t)i;
            t->next = ++ntok;
            i++;
            if (want_key) {
                /* a key: ':' and then its value */
                while (i < n && is_ws(s[i]))
                    i++;
                if (i >= n) FAIL(i, "truncated");
                if (s[i] != ':') FAIL(i, "separator");
                i++;
                want_key = false;
                after_value = false;
            } else {
                after_value = true;
            }
            continue;
        }
        case 't':
        case 'f':
        case 'n': {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t l = strlen(lit);
            if (i + l > n || memcmp(s + i, lit, l)) FAIL(i, "literal");
            t->type = WH_J_PRIMITIVE;
            t->start = (int32_t)i;
            t->end = (int32_t)(i + l);
            t->next = ++ntok;
            i += l;
            after_value = true;
            continue;
        }
        default: {
            size_t st = i;
            if (s[i] == '-') i++;
            if (i < n && s[i] == '0') {
                i++;
            } else if (i < n && s[i] >= '1' && s[i] <= '9') {
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            } else {
                FAIL(st, "literal");
            }
            if (i < n && s[i] == '.') {
                i++;
                if (i >= n || s[i] < '0' || s[i] > '9') FAIL(i, "literal");
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
            if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '+' || s[i] == '-')) i++;
                if (i >= n || s[i] < '0' || s[i] > '9') FAIL(i, "literal");
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
            if (i < n && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']')
                FAIL(i, "literal");
            t->type = WH_J_PRIMITIVE;
            t->start = (int32_t)st;
            t->end = (int32_t)i;
            t->next = ++ntok;
            after_value = true;
            continue;
        }
        }
    }
}

void wh_json_describe(int code, const char *what, size_t pos, int max_depth, char *out, size_t n)
{
    static const struct {
        const char *what, *msg;
    } msgs[] = {
        {"truncated", "truncated JSON: the line ends inside a value"},
        {"separator", "missing or unexpected ',', ':' or bracket at byte %zu"},
        {"key", "object key must be a string at byte %zu"},
        {"control", "unescaped control character in a string at byte %zu"},
        {"escape", "invalid escape at byte %zu"},
        {"literal", "invalid JSON at byte %zu"},
        {"data after the value", "unexpected data after the object at byte %zu"},
    };
    if (code == WH_J_EDEPTH) {
        snprintf(out, n, "nesting deeper than %d at byte %zu", max_depth, pos + 1);
        return;
    }
    if (code == WH_J_ENOMEM) {
        snprintf(out, n, "out of memory for JSON tokens");
        return;
    }
    for (size_t k = 0; k < sizeof(msgs) / sizeof(msgs[0]); k++) {
        if (!what || strcmp(msgs[k].what, what)) continue;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(out, n, msgs[k].msg, pos + 1);
#pragma GCC diagnostic pop
        return;
    }
    snprintf(out, n, "invalid JSON at byte %zu", pos + 1);
}

bool wh_json_get_string(const char *js, size_t n, const char *key, char *out, size_t cap)
{
    wh_jtok tok[256];
    size_t pos;
    const char *what;
    int nt = n ? wh_json_tokenize(js, n, tok, 256, WH_J_GET_DEPTH, &pos, &what) : 0;
    if (nt <= 0 || tok[0].type != WH_J_OBJECT || !cap) return false;
    size_t kl = strlen(key);
    for (int i = 1; i + 1 < nt; i = tok[i + 1].next) {
        const wh_jtok *k = &tok[i], *v = &tok[i + 1];
        if ((size_t)(k->end - k->start) != kl || memcmp(js + k->start, key, kl) != 0) continue;
        size_t vl = (size_t)(v->end - v->start), ol = 0, bad;
        if (v->type != WH_J_STRING || vl >= cap) return false;
        if (!wh_json_unescape(js + v->start, vl, out, &ol, &bad)) return false;
        out[ol] = 0;
        return true;
    }
    return false;
}
