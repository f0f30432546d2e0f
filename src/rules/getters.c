/* getters.c - the rules loader's YAML getters: a scalar, a sequence, a mapping, a
 * comparison ("> 0.7"), a duration, a number in a range, a whole number, a boolean. Each
 * reports what is wrong at the node's line and column and says what it expected. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

char *ld_scalar(ld_t *L, struct fy_node *n, const char *what)
{
    if (!n || fy_node_get_type(n) != FYNT_SCALAR) {
        ERR(L, n, "%s must be a scalar (a string or number)", what);
        return NULL;
    }
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s) return NULL;
    return wh_arena_strndup(L->a, s, len);
}

bool ld_is_null_node(struct fy_node *n)
{
    if (!n) return true;
    if (fy_node_get_type(n) != FYNT_SCALAR) return false;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return !s || len == 0 || (len == 4 && !memcmp(s, "null", 4)) || (len == 1 && s[0] == '~');
}

void ld_unknown_key(ld_t *L, struct fy_node *k, const char *key, const char *const *known,
                    const char *where)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; known[i]; i++) {
        size_t dd = wh_levenshtein(key, known[i]);
        if (dd < bd) {
            bd = dd;
            best = known[i];
        }
    }
    if (best)
        ERR(L, k, "unknown key '%s' in %s; did you mean '%s'?", key, where, best);
    else
        ERR(L, k, "unknown key '%s' in %s", key, where);
}

struct fy_node *ld_seq_next(seq_iter *s)
{
    if (s->single) {
        if (s->done) return NULL;
        s->done = true;
        return s->single;
    }
    return fy_node_sequence_iterate(s->seq, &s->it);
}

bool ld_seq_start(ld_t *L, struct fy_node *n, const char *what, seq_iter *s)
{
    memset(s, 0, sizeof(*s));
    if (n && fy_node_get_type(n) == FYNT_SEQUENCE) {
        s->seq = n;
        return true;
    }
    if (n && fy_node_get_type(n) == FYNT_SCALAR && !ld_is_null_node(n)) {
        s->single = n;
        return true;
    }
    ERR(L, n, "%s must be a list", what);
    return false;
}

char *ld_lower_dup(ld_t *L, const char *s)
{
    char *d = wh_arena_strndup(L->a, s, strlen(s));
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    return d;
}

bool ld_parse_cmp(ld_t *L, struct fy_node *n, const char *what, int kind, wh_cmp *out)
{
    char *s = ld_scalar(L, n, what);
    if (!s) return false;
    const char *p = s;
    while (*p == ' ')
        p++;
    static const struct {
        const char *tok;
        wh_cmp_op op;
    } ops[] = {{">=", WH_OP_GE}, {"<=", WH_OP_LE}, {"==", WH_OP_EQ}, {"!=", WH_OP_NE},
               {">", WH_OP_GT},  {"<", WH_OP_LT},  {"=", WH_OP_EQ}};
    out->op = WH_OP_GE;
    for (size_t i = 0; i < WH_ARRAY_LEN(ops); i++) {
        size_t l = strlen(ops[i].tok);
        if (!strncmp(p, ops[i].tok, l)) {
            out->op = ops[i].op;
            p += l;
            break;
        }
    }
    while (*p == ' ')
        p++;
    if (kind == CMP_DURATION) {
        size_t l = strlen(p);
        while (l && p[l - 1] == ' ')
            l--;
        int64_t ms;
        if (!l || !wh_parse_duration(p, l, &ms)) {
            ERR(L, n, "bad comparison '%s' for %s: expected e.g. \"< 7d\" or \">= 1h30m\"", s,
                what);
            return false;
        }
        out->v = (double)ms;
        return true;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !isfinite(v)) goto bad;
    while (*end == ' ')
        end++;
    if (*end == '%' && kind != CMP_SIGNED) {
        v /= 100.0;
        end++;
    }
    while (*end == ' ')
        end++;
    if (*end) goto bad;
    if (kind == CMP_RATIO && (v < 0 || v > 1)) {
        ERR(L, n, "%s is a ratio between 0 and 1 (write 0.7 or 70%%), got '%s'", what, s);
        return false;
    }
    if (v < 0 && kind != CMP_SIGNED) {
        ERR(L, n, "%s cannot be negative: '%s'", what, s);
        return false;
    }
    out->v = v;
    return true;
bad:
    ERR(L, n, "bad comparison '%s' for %s: expected e.g. \"> 0.7\", \">= 5\" or a number", s, what);
    return false;
}

/* Scalars of option mappings: each reports what is wrong with its own position. */
bool ld_get_duration(ld_t *L, struct fy_node *v, const char *what, int64_t min_ms, int64_t *out)
{
    char *d = ld_scalar(L, v, what);
    if (!d) return false;
    int64_t ms;
    if (!wh_parse_duration(d, strlen(d), &ms) || ms < min_ms) {
        ERR(L, v, "bad duration '%s' for %s: expected e.g. 500ms, 30s, 10m, 1h30m, 7d%s", d, what,
            min_ms >= 1000 ? " (at least 1s)"
            : min_ms > 0   ? " (more than 0)"
                           : "");
        return false;
    }
    *out = ms;
    return true;
}

bool ld_get_number(ld_t *L, struct fy_node *v, const char *what, double lo, double hi, bool integer,
                   double *out)
{
    char *s = ld_scalar(L, v, what);
    if (!s) return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(x) || x < lo || x > hi ||
        (integer && x != floor(x))) {
        if (integer)
            ERR(L, v, "%s must be a whole number from %.0f to %.0f, got '%s'", what, lo, hi, s);
        else
            ERR(L, v, "%s must be a number from %g to %g, got '%s'", what, lo, hi, s);
        return false;
    }
    *out = x;
    return true;
}

bool ld_get_uint(ld_t *L, struct fy_node *v, const char *what, uint32_t lo, uint32_t hi,
                 uint32_t *out)
{
    double x;
    if (!ld_get_number(L, v, what, lo, hi, true, &x)) return false;
    *out = (uint32_t)x;
    return true;
}

bool ld_get_bool(ld_t *L, struct fy_node *v, const char *what, bool *out)
{
    char *s = ld_scalar(L, v, what);
    if (!s) return false;
    if (!strcmp(s, "true") || !strcmp(s, "yes")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no")) {
        *out = false;
        return true;
    }
    ERR(L, v, "%s must be true or false, got '%s'", what, s);
    return false;
}

/* Iterates the pairs of an options mapping; reports a non-mapping once. */
bool ld_get_choice(ld_t *L, struct fy_node *v, const char *what, const char *const *names, int *out)
{
    char label[64];
    snprintf(label, sizeof(label), what[0] == '\'' ? "%s" : "'%s'", what);
    char *s = ld_scalar(L, v, label);
    if (!s) return false;
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return true;
        }
    char expected[256] = "";
    for (int i = 0; names[i]; i++) {
        size_t at = strlen(expected);
        snprintf(expected + at, sizeof(expected) - at, "%s%s",
                 i == 0         ? ""
                 : names[i + 1] ? ", "
                                : " or ",
                 names[i]);
    }
    ERR(L, v, "unknown %s '%s' (expected %s)", what, s, expected);
    return false;
}

bool ld_map_start(ld_t *L, struct fy_node *n, const char *what)
{
    if (n && fy_node_get_type(n) == FYNT_MAPPING) return true;
    ERR(L, n, "%s must be a mapping", what);
    return false;
}
