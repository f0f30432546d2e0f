/* load.c - YAML rules -> wh_ruleset, reporting every problem with file:line:col.
 *
 * Keys are described by tables (name + handler), so unknown keys get a "did you mean"
 * from the same table that parses the known ones. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rules.h"
#include "yaml.h"
#include "state/gcra.h"
#include "text/utf8.h"

const char *const wh_action_names[WH_ACT__COUNT] = {"allow",  "warn",    "hold",
                                                    "delete", "timeout", "ban"};
const char *const wh_feature_names[WH_F__COUNT] = {
    "length", "letters",  "caps_ratio", "symbol_ratio",    "repeated_chars",
    "zalgo",  "mentions", "emotes",     "non_latin_ratio", "links"};

#define MAX_TIMEOUT_S (14 * 86400) /* Twitch's and Discord's longest timeout */

/* ---- diagnostics ---- */

void wh_diags_add(wh_diags *d, const char *file, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 16;
        wh_diag *v = realloc(d->v, sizeof(*v) * cap);
        if (!v) return;
        d->v = v;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    wh_diag *x = &d->v[d->n++];
    x->file = strdup(file ? file : "<rules>");
    x->line = line;
    x->col = col;
    x->message = msg;
}

static int diag_cmp(const void *a, const void *b)
{
    const wh_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c) return c;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

void wh_diags_print(const wh_diags *d, void *fp)
{
    if (d->n > 1) qsort(d->v, d->n, sizeof(wh_diag), diag_cmp);
    for (uint32_t i = 0; i < d->n; i++) {
        const wh_diag *x = &d->v[i];
        if (x->line)
            fprintf(fp, "%s:%u:%u: error: %s\n", x->file, x->line, x->col,
                    x->message ? x->message : "?");
        else
            fprintf(fp, "%s: error: %s\n", x->file, x->message ? x->message : "?");
    }
}

char *wh_diags_text(const wh_diags *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    wh_diags_print(d, f);
    fclose(f);
    return text;
}

void wh_diags_free(wh_diags *d)
{
    for (uint32_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].message);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

/* ---- small helpers ---- */

bool wh_cmp_holds(wh_cmp c, double x)
{
    switch (c.op) {
    case WH_OP_GT:
        return x > c.v;
    case WH_OP_GE:
        return x >= c.v;
    case WH_OP_LT:
        return x < c.v;
    case WH_OP_LE:
        return x <= c.v;
    case WH_OP_EQ:
        return x == c.v;
    case WH_OP_NE:
        return x != c.v;
    }
    return false;
}

bool wh_strset_has(const wh_strset *s, wh_str x)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == x.n && strncasecmp(s->v[i], x.p, x.n) == 0) return true;
    return false;
}

/* ---- loader state ---- */

typedef struct {
    char *name;
    char **terms;
    uint32_t *lines;
    uint32_t n;
    char *file; /* where the terms came from (for positions); NULL: inline */
    uint32_t line, col;
    bool ok;
} list_t;

typedef struct {
    const char *path;
    char *dir;
    wh_diags *d;
    wh_ruleset *rs;
    wh_arena *a;
    list_t *lists;
    uint32_t nlists;
    wh_pattern_spec *specs;
    wh_pattern_info *infos;
    uint32_t nspecs, capspecs;
    wh_group *groups;
    uint32_t ngroups, capgroups;
    wh_rule *rules;
    uint32_t nrules, caprules;
    uint32_t cur_rule;
    XXH3_state_t *hash;
    bool compile, lint;
    bool stateful; /* a behaviour predicate, an escalation or a state section was seen */
} ld_t;

#define ERR(L, node, ...)                                                                          \
    wh_diags_add((L)->d, (L)->path, wh_yaml_line(node), wh_yaml_col(node), __VA_ARGS__)

static char *scalar(ld_t *L, struct fy_node *n, const char *what)
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

static bool is_null_node(struct fy_node *n)
{
    if (!n) return true;
    if (fy_node_get_type(n) != FYNT_SCALAR) return false;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return !s || len == 0 || (len == 4 && !memcmp(s, "null", 4)) || (len == 1 && s[0] == '~');
}

static void unknown_key(ld_t *L, struct fy_node *k, const char *key, const char *const *known,
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

/* Iterates a sequence (or a single scalar treated as a one-item sequence). */
typedef struct {
    struct fy_node *seq;
    void *it;
    struct fy_node *single;
    bool done;
} seq_iter;

static struct fy_node *seq_next(seq_iter *s)
{
    if (s->single) {
        if (s->done) return NULL;
        s->done = true;
        return s->single;
    }
    return fy_node_sequence_iterate(s->seq, &s->it);
}

static bool seq_start(ld_t *L, struct fy_node *n, const char *what, seq_iter *s)
{
    memset(s, 0, sizeof(*s));
    if (n && fy_node_get_type(n) == FYNT_SEQUENCE) {
        s->seq = n;
        return true;
    }
    if (n && fy_node_get_type(n) == FYNT_SCALAR && !is_null_node(n)) {
        s->single = n;
        return true;
    }
    ERR(L, n, "%s must be a list", what);
    return false;
}

static char *lower_dup(ld_t *L, const char *s)
{
    char *d = wh_arena_strndup(L->a, s, strlen(s));
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    return d;
}

static bool parse_strset(ld_t *L, struct fy_node *n, const char *what, wh_strset *out)
{
    seq_iter it;
    if (!seq_start(L, n, what, &it)) return false;
    uint32_t cap = 0;
    struct fy_node *x;
    while ((x = seq_next(&it))) {
        char *s = scalar(L, x, what);
        if (!s) continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            char **v = wh_arena_alloc(L->a, sizeof(char *) * cap);
            if (!v) return false;
            if (out->n) memcpy(v, out->v, sizeof(char *) * out->n);
            out->v = v;
        }
        out->v[out->n++] = s;
    }
    return true;
}

/* ---- lists ---- */

static list_t *find_list(ld_t *L, const char *name)
{
    for (uint32_t i = 0; i < L->nlists; i++)
        if (!strcmp(L->lists[i].name, name)) return &L->lists[i];
    return NULL;
}

static void list_push(ld_t *L, list_t *l, const char *term, size_t n, uint32_t line, uint32_t *cap)
{
    if (l->n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 64;
        char **t = realloc(l->terms, sizeof(char *) * nc);
        uint32_t *ln = realloc(l->lines, sizeof(uint32_t) * nc);
        if (t) l->terms = t;
        if (ln) l->lines = ln;
        if (!t || !ln) return;
        *cap = nc;
    }
    l->terms[l->n] = wh_arena_strndup(L->a, term, n);
    l->lines[l->n] = line;
    l->n++;
}

static void load_list_file(ld_t *L, list_t *l, struct fy_node *fnode, const char *rel)
{
    char *path;
    if (rel[0] == '/')
        path = wh_arena_strndup(L->a, rel, strlen(rel));
    else {
        size_t n = strlen(L->dir) + strlen(rel) + 2;
        path = wh_arena_alloc(L->a, n);
        snprintf(path, n, "%s/%s", L->dir, rel);
    }
    char *buf;
    size_t len;
    wh_status rst = wh_read_file_max(path, WH_LIST_FILE_MAX, &buf, &len);
    if (rst != WH_OK) {
        char why[64];
        ERR(L, fnode, "cannot read list file '%s': %s", path,
            wh_read_file_why(rst, WH_LIST_FILE_MAX, why, sizeof(why)));
        return;
    }
    XXH3_64bits_update(L->hash, buf, len);
    l->file = path;
    uint32_t cap = 0;
    size_t bad = wh_utf8_invalid_at(buf, len);
    if (bad != (size_t)-1) {
        ERR(L, fnode, "list file '%s' is not valid UTF-8 (byte %zu)", path, bad + 1);
        free(buf);
        return;
    }
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".json")) {
        int tcap = 1024, nt = WH_J_ENOMEM;
        wh_jtok *t = NULL;
        size_t epos = 0;
        const char *what = "";
        for (;;) {
            wh_jtok *g = realloc(t, sizeof(wh_jtok) * (size_t)tcap);
            if (!g) break;
            t = g;
            nt = wh_json_tokenize(buf, len, t, tcap, 4, &epos, &what);
            if (nt != WH_J_ENOMEM || tcap > (1 << 24)) break;
            tcap *= 2;
        }
        if (!t || nt <= 0 || t[0].type != WH_J_ARRAY) {
            ERR(L, fnode, "list file '%s' must be a JSON array of strings (%s at byte %zu)", path,
                nt < 0 ? what : "not an array", nt < 0 ? epos + 1 : 1);
        } else {
            uint32_t line = 1;
            int scanned = 0;
            for (int i = 1; i < nt; i++) {
                if (t[i].type != WH_J_STRING) {
                    ERR(L, fnode, "list file '%s': item %d is not a string", path, i);
                    break;
                }
                /* Line of the item, for positions in lint messages. */
                for (; scanned < t[i].start; scanned++)
                    line += buf[scanned] == '\n';
                const char *s = buf + t[i].start;
                size_t n = (size_t)(t[i].end - t[i].start);
                if (memchr(s, '\\', n)) {
                    char *u = wh_arena_alloc(L->a, n + 1);
                    size_t w = 0, bad_esc = 0;
                    if (!u || !wh_json_unescape(s, n, u, &w, &bad_esc)) {
                        wh_diags_add(L->d, path, line, 1, "bad escape in a list item");
                        continue;
                    }
                    list_push(L, l, u, w, line, &cap);
                } else {
                    list_push(L, l, s, n, line, &cap);
                }
            }
        }
        free(t);
    } else {
        uint32_t line = 0;
        char *p = buf, *end = buf + len;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *le = nl ? nl : end;
            line++;
            char *s = p, *e = le;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
            if (e > s && *s != '#') list_push(L, l, s, (size_t)(e - s), line, &cap);
            p = le + 1;
        }
    }
    free(buf);
}

static void parse_lists(ld_t *L, struct fy_node *n)
{
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "'lists' must be a mapping of list names to lists");
        return;
    }
    int cnt = fy_node_mapping_item_count(n);
    L->lists = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof(list_t));
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *name = scalar(L, k, "a list name");
        if (!name) continue;
        list_t *l = &L->lists[L->nlists++];
        l->name = name;
        l->line = wh_yaml_line(k);
        l->col = wh_yaml_col(k);
        l->ok = true;
        uint32_t cap = 0;
        if (v && fy_node_get_type(v) == FYNT_MAPPING) {
            void *it2 = NULL;
            struct fy_node_pair *p2;
            static const char *const keys[] = {"file", NULL};
            while ((p2 = fy_node_mapping_iterate(v, &it2))) {
                char *kk = scalar(L, fy_node_pair_key(p2), "a key");
                if (!kk) continue;
                if (!strcmp(kk, "file")) {
                    char *f = scalar(L, fy_node_pair_value(p2), "'file'");
                    if (f) load_list_file(L, l, fy_node_pair_value(p2), f);
                } else {
                    unknown_key(L, fy_node_pair_key(p2), kk, keys, "a list");
                }
            }
        } else {
            seq_iter si;
            if (!seq_start(L, v, "a list", &si)) continue;
            struct fy_node *x;
            while ((x = seq_next(&si))) {
                char *s = scalar(L, x, "a list item");
                if (s) list_push(L, l, s, strlen(s), wh_yaml_line(x), &cap);
            }
        }
    }
}

/* ---- patterns ---- */

static uint32_t new_group(ld_t *L, int32_t permit_set)
{
    if (L->ngroups == L->capgroups) {
        L->capgroups = L->capgroups ? L->capgroups * 2 : 32;
        L->groups = realloc(L->groups, sizeof(wh_group) * L->capgroups);
    }
    L->groups[L->ngroups] = (wh_group){.permit_set = permit_set, .rule = L->cur_rule};
    return L->ngroups++;
}

static void add_spec(ld_t *L, wh_pattern_spec sp, const char *file, uint32_t line, uint32_t col)
{
    if (L->nspecs == L->capspecs) {
        L->capspecs = L->capspecs ? L->capspecs * 2 : 256;
        L->specs = realloc(L->specs, sizeof(wh_pattern_spec) * L->capspecs);
        L->infos = realloc(L->infos, sizeof(wh_pattern_info) * L->capspecs);
    }
    if (sp.permit_set < 0 && sp.group < L->ngroups)
        sp.cancel_set = L->groups[sp.group].permit_set;
    else
        sp.cancel_set = -1;
    L->specs[L->nspecs] = sp;
    L->infos[L->nspecs] = (wh_pattern_info){.group = sp.group,
                                            .permit_set = sp.permit_set,
                                            .rule = L->cur_rule,
                                            .source = sp.source,
                                            .line = line,
                                            .col = col,
                                            .file = file};
    L->nspecs++;
}

static void add_term(ld_t *L, const char *term, uint32_t group, int32_t permit_set,
                     struct fy_node *where, const char *file, uint32_t line)
{
    size_t n = strlen(term);
    const char *s = term;
    bool pre = false, suf = false;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n && *s == '*') pre = true, s++, n--;
    if (n && s[n - 1] == '*') suf = true, n--;
    uint32_t qn = 0;
    const char *q = wh_normalize_term(s, n, WH_VIEW_SQUASHED, L->a, &qn);
    bool has_word = false, literal = false;
    for (uint32_t i = 0; q && i < qn; i++)
        if (q[i] != ' ') has_word = true;
    if (q && !has_word) {
        /* No letters or digits (an emoji, a symbol): match it exactly on the folded view. */
        q = wh_normalize_term(s, n, WH_VIEW_FOLDED, L->a, &qn);
        for (uint32_t i = 0; q && i < qn; i++)
            if (q[i] != ' ') has_word = true;
        literal = true;
    }
    if (!q || !has_word) {
        if (file)
            wh_diags_add(L->d, file, line, 1, "term '%s' has no letters or digits", term);
        else
            ERR(L, where, "term '%s' has no letters or digits", term);
        return;
    }
    /* Trim the spaces that separators at the ends of the term became. */
    while (qn && q[qn - 1] == ' ')
        qn--;
    while (qn && q[0] == ' ')
        q++, qn--;
    wh_pattern_spec sp = {.kind = WH_PAT_WORD,
                          .view = literal ? WH_VIEW_FOLDED : WH_VIEW_SQUASHED,
                          .literal = literal,
                          .source = wh_arena_strndup(L->a, term, strlen(term)),
                          .expr = wh_arena_strndup(L->a, q, qn),
                          .group = group,
                          .permit_set = permit_set,
                          .prefix_star = pre,
                          .suffix_star = suf};
    add_spec(L, sp, file ? file : L->path, file ? line : wh_yaml_line(where),
             file ? 1 : wh_yaml_col(where));
}

static void parse_terms(ld_t *L, struct fy_node *n, uint32_t group, int32_t permit_set,
                        const char *what)
{
    seq_iter it;
    if (!seq_start(L, n, what, &it)) return;
    struct fy_node *x;
    while ((x = seq_next(&it))) {
        char *t = scalar(L, x, "a term");
        if (!t) continue;
        if (t[0] == '@') {
            list_t *l = find_list(L, t + 1);
            if (!l) {
                ERR(L, x, "unknown list '%s' (define it under 'lists:')", t + 1);
                continue;
            }
            for (uint32_t i = 0; i < l->n; i++)
                add_term(L, l->terms[i], group, permit_set, x, l->file, l->lines[i]);
            continue;
        }
        add_term(L, t, group, permit_set, x, NULL, 0);
    }
}

static void add_regex(ld_t *L, struct fy_node *where, const char *re, wh_view_id view,
                      uint32_t group, int32_t permit_set)
{
    if (!*re) {
        ERR(L, where, "empty regex");
        return;
    }
    char *msg = wh_regex_check(re, view, L->lint);
    if (msg) {
        ERR(L, where, "bad regex '%s': %s", re, msg);
        free(msg);
        return;
    }
    wh_pattern_spec sp = {.kind = WH_PAT_REGEX,
                          .view = view,
                          .source = re,
                          .expr = re,
                          .group = group,
                          .permit_set = permit_set};
    add_spec(L, sp, L->path, wh_yaml_line(where), wh_yaml_col(where));
}

static bool parse_view(ld_t *L, struct fy_node *n, wh_view_id *out)
{
    char *v = scalar(L, n, "'view'");
    if (!v) return false;
    if (wh_view_from_name(v, strlen(v), out)) return true;
    ERR(L, n, "unknown view '%s' (expected raw, folded, skeleton or squashed)", v);
    return false;
}

static void parse_regexes(ld_t *L, struct fy_node *n, wh_view_id dview, uint32_t group,
                          int32_t permit_set)
{
    seq_iter it;
    if (n && fy_node_get_type(n) == FYNT_MAPPING) {
        memset(&it, 0, sizeof(it));
        it.single = n;
    } else if (!seq_start(L, n, "'regex'", &it)) {
        return;
    }
    struct fy_node *x;
    static const char *const keys[] = {"pattern", "view", NULL};
    while ((x = seq_next(&it))) {
        if (fy_node_get_type(x) == FYNT_MAPPING) {
            wh_view_id view = dview;
            char *pat = NULL;
            struct fy_node *pn = x;
            void *i2 = NULL;
            struct fy_node_pair *pr;
            while ((pr = fy_node_mapping_iterate(x, &i2))) {
                char *k = scalar(L, fy_node_pair_key(pr), "a key");
                if (!k) continue;
                if (!strcmp(k, "pattern")) {
                    pn = fy_node_pair_value(pr);
                    pat = scalar(L, pn, "'pattern'");
                } else if (!strcmp(k, "view")) {
                    parse_view(L, fy_node_pair_value(pr), &view);
                } else {
                    unknown_key(L, fy_node_pair_key(pr), k, keys, "a regex");
                }
            }
            if (!pat) {
                ERR(L, x, "a regex item needs 'pattern'");
                continue;
            }
            add_regex(L, pn, pat, view, group, permit_set);
        } else {
            char *pat = scalar(L, x, "a regex");
            if (pat) add_regex(L, x, pat, dview, group, permit_set);
        }
    }
}

enum { CMP_COUNT = 0, CMP_RATIO = 1, CMP_SIGNED, CMP_DURATION };

/* A comparison: "> 0.7", ">= 5", "< -5", "< 7d" (CMP_DURATION: the value in ms), or a bare
 * value (meaning >=). */
static bool parse_cmp(ld_t *L, struct fy_node *n, const char *what, int kind, wh_cmp *out)
{
    char *s = scalar(L, n, what);
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
static bool get_duration(ld_t *L, struct fy_node *v, const char *what, int64_t min_ms, int64_t *out)
{
    char *d = scalar(L, v, what);
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

static bool get_number(ld_t *L, struct fy_node *v, const char *what, double lo, double hi,
                       bool integer, double *out)
{
    char *s = scalar(L, v, what);
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

static bool get_uint(ld_t *L, struct fy_node *v, const char *what, uint32_t lo, uint32_t hi,
                     uint32_t *out)
{
    double x;
    if (!get_number(L, v, what, lo, hi, true, &x)) return false;
    *out = (uint32_t)x;
    return true;
}

static bool get_bool(ld_t *L, struct fy_node *v, const char *what, bool *out)
{
    char *s = scalar(L, v, what);
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
static bool map_start(ld_t *L, struct fy_node *n, const char *what)
{
    if (n && fy_node_get_type(n) == FYNT_MAPPING) return true;
    ERR(L, n, "%s must be a mapping", what);
    return false;
}

#define FOR_PAIRS(L, n, kn, v, k)                                                                  \
    for (void *it_ = NULL, *pr_;                                                                   \
         (pr_ = fy_node_mapping_iterate((n), &it_)) &&                                             \
         ((kn = fy_node_pair_key(pr_)), (v = fy_node_pair_value(pr_)), 1);)                        \
        if (!(k = scalar((L), kn, "a key"))) {                                                     \
        } else

static void parse_hosts(ld_t *L, struct fy_node *n, const char *what, wh_hostset *out)
{
    seq_iter it;
    if (!seq_start(L, n, what, &it)) return;
    uint32_t cap = 0;
    struct fy_node *x;
    while ((x = seq_next(&it))) {
        char *t = scalar(L, x, "a host");
        if (!t) continue;
        char **src = &t;
        uint32_t cnt = 1;
        if (t[0] == '@') {
            list_t *l = find_list(L, t + 1);
            if (!l) {
                ERR(L, x, "unknown list '%s' (define it under 'lists:')", t + 1);
                continue;
            }
            src = l->terms;
            cnt = l->n;
        }
        for (uint32_t i = 0; i < cnt; i++) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                char **v = wh_arena_alloc(L->a, sizeof(char *) * cap);
                if (out->n) memcpy(v, out->hosts, sizeof(char *) * out->n);
                out->hosts = v;
            }
            char *h = lower_dup(L, src[i]);
            /* Accept "https://host/..." and "*.host" as written by people. */
            char *ss = strstr(h, "://");
            if (ss) h = ss + 3;
            if (h[0] == '*' && h[1] == '.') h += 2;
            char *slash = strchr(h, '/');
            if (slash) *slash = 0;
            out->hosts[out->n++] = h;
        }
    }
}

static wh_cond *new_cond(ld_t *L, wh_cond_kind kind, struct fy_node *n)
{
    wh_cond *c = wh_arena_alloc(L->a, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->line = wh_yaml_line(n);
    c->col = wh_yaml_col(n);
    return c;
}

static wh_cond *parse_cond(ld_t *L, struct fy_node *n, int depth);

static wh_cond *parse_cond_list(ld_t *L, struct fy_node *n, wh_cond_kind kind, int depth)
{
    wh_cond *c = new_cond(L, kind, n);
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
        ERR(L, n, "'%s' must be a list of conditions", kind == WH_C_ALL ? "all" : "any");
        return c;
    }
    int cnt = fy_node_sequence_item_count(n);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    void *it = NULL;
    struct fy_node *x;
    while ((x = fy_node_sequence_iterate(n, &it))) {
        wh_cond *k = parse_cond(L, x, depth + 1);
        if (k) c->kids[c->nkids++] = k;
    }
    return c;
}

static wh_cond *parse_links(ld_t *L, struct fy_node *n)
{
    wh_cond *c = new_cond(L, WH_C_LINKS, n);
    if (fy_node_get_type(n) == FYNT_SCALAR) {
        c->has_count = parse_cmp(L, n, "links", CMP_COUNT, &c->cmp);
        return c;
    }
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "'links' must be a comparison or a mapping with count/allow/deny");
        return c;
    }
    static const char *const keys[] = {"count", "allow", "deny", NULL};
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        char *k = scalar(L, fy_node_pair_key(pr), "a key");
        struct fy_node *v = fy_node_pair_value(pr);
        if (!k) continue;
        if (!strcmp(k, "count"))
            c->has_count = parse_cmp(L, v, "links count", CMP_COUNT, &c->cmp);
        else if (!strcmp(k, "allow"))
            c->has_allow = true, parse_hosts(L, v, "'allow'", &c->allow);
        else if (!strcmp(k, "deny"))
            c->has_deny = true, parse_hosts(L, v, "'deny'", &c->deny);
        else
            unknown_key(L, fy_node_pair_key(pr), k, keys, "'links'");
    }
    if (!c->has_count && !c->has_allow && !c->has_deny) {
        c->has_count = true;
        c->cmp = (wh_cmp){WH_OP_GE, 1};
    }
    return c;
}

/* ---- behaviour predicates ---- */

/* The slot of a GCRA limit (limits written alike share one cell). */
static bool rate_slot(ld_t *L, struct fy_node *where, wh_rate_slot rs, bool chan, uint32_t *out)
{
    wh_state_cfg *c = &L->rs->state;
    wh_rate_slot *v = chan ? c->chan_slots : c->user_slots;
    uint32_t *n = chan ? &c->nchan_slots : &c->nuser_slots;
    uint32_t max = chan ? WH_CHAN_SLOTS : WH_USER_SLOTS;
    for (uint32_t i = 0; i < *n; i++)
        if (wh_rate_slot_eq(&v[i], &rs)) {
            *out = i;
            return true;
        }
    if (*n == max) {
        ERR(L, where, "more than %u different %s limits in one ruleset (state keeps %u per %s)",
            max, chan ? "channel" : "per-user rate", max, chan ? "channel" : "user");
        return false;
    }
    v[*n] = rs;
    *out = (*n)++;
    return true;
}

/* rate: {count, per, scope, mode, burst} and joins: {count, per, mode, burst}. The default
 * mode is a sliding window (at most `count` in any `per`); `mode: gcra` is a token bucket
 * (`burst` at once, refilled at count/per). Event times reach year 9999 (2.5e14 ms) and GCRA
 * works in ms * count: 10,000 keeps that inside int64. */
#define WH_RATE_MAX_COUNT 10000
#define WH_RATE_MAX_PERIOD_MS (366LL * 86400000)

static wh_cond *parse_rate(ld_t *L, struct fy_node *kn, struct fy_node *n, bool joins)
{
    const char *what = joins ? "'joins'" : "'rate'";
    wh_cond *c = new_cond(L, joins ? WH_C_JOINS : WH_C_RATE, kn);
    if (!map_start(L, n,
                   joins ? "'joins' ({count: 20, per: 10s})"
                         : "'rate' ({count: 5, per: 10s, scope: user})"))
        return NULL;
    static const char *const keys[] = {"count", "per", "scope", "mode", "burst", NULL};
    static const char *const jkeys[] = {"count", "per", "mode", "burst", NULL};
    wh_rate_slot rs = {0};
    bool ok = true, have_count = false, have_per = false;
    double burst = 0;
    struct fy_node *k_n, *v, *burst_n = NULL, *count_n = NULL;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        double x;
        if (!strcmp(k, "count")) {
            have_count = true;
            count_n = v;
            ok &= get_number(L, v, "'count'", 1, WH_RATE_MAX_COUNT, true, &x);
            rs.count = (int64_t)x;
        } else if (!strcmp(k, "per")) {
            have_per = true;
            ok &= get_duration(L, v, "'per'", 1, &rs.period_ms);
            if (ok && rs.period_ms > WH_RATE_MAX_PERIOD_MS) {
                ERR(L, v, "'per' is at most 366d");
                ok = false;
            }
        } else if (!strcmp(k, "burst")) {
            burst_n = v;
            ok &= get_number(L, v, "'burst'", 1, WH_RATE_MAX_COUNT, true, &burst);
        } else if (!strcmp(k, "mode")) {
            char *m = scalar(L, v, "'mode'");
            if (m && !strcmp(m, "gcra"))
                rs.gcra = true;
            else if (m && strcmp(m, "window")) {
                ERR(L, v, "unknown mode '%s' (expected window or gcra)", m);
                ok = false;
            }
        } else if (!strcmp(k, "scope") && !joins) {
            char *sc = scalar(L, v, "'scope'");
            if (sc && !strcmp(sc, "channel"))
                c->chan_scope = true;
            else if (sc && strcmp(sc, "user")) {
                ERR(L, v, "unknown scope '%s' (expected user or channel)", sc);
                ok = false;
            }
        } else {
            unknown_key(L, k_n, k, joins ? jkeys : keys, what);
            ok = false;
        }
    }
    if (!have_count) ERR(L, n, "%s needs 'count'", what);
    if (!have_per) ERR(L, n, "%s needs 'per' (a duration such as 10s)", what);
    if (!ok || !have_count || !have_per) return NULL;
    if (joins) c->chan_scope = true;
    if (burst_n && !rs.gcra) {
        /* a window has no burst: at most `count` in any `per` is the whole rule */
        ERR(L, burst_n,
            "'burst' belongs to a token bucket: add 'mode: gcra' (a burst of 'burst', refilled "
            "at count/per), or drop it (at most 'count' in any 'per')");
        return NULL;
    }
    if (!rs.gcra) {
        int64_t max = c->chan_scope ? WH_WINDOW_MAX_CHAN_COUNT : WH_WINDOW_MAX_USER_COUNT;
        if (rs.count > max) {
            ERR(L, count_n,
                "%s counts at most %" PRId64 " in a sliding window%s (it keeps the time of each); "
                "for more use 'mode: gcra'",
                what, max, c->chan_scope ? "" : " per user");
            return NULL;
        }
    }
    rs.burst = burst > 0 ? (int64_t)burst : rs.count;
    rs.joins = joins;
    if (!rate_slot(L, n, rs, c->chan_scope, &c->slot)) return NULL;
    wh_state_cfg *st = &L->rs->state;
    if (!rs.gcra && !c->chan_scope) {
        st->need_log = true;
        if ((uint32_t)rs.count > st->log_cap) st->log_cap = (uint32_t)rs.count;
        if (rs.period_ms > st->log_keep_ms) st->log_keep_ms = rs.period_ms;
    }
    if (joins) {
        /* every join of the longest join window, up to WH_JOIN_LOG_MAX: a rule's filters may
         * first hold some joins after the window went over, and still name the earliest */
        st->join_log_cap = WH_JOIN_LOG_MAX;
        if (rs.period_ms > st->join_keep_ms) st->join_keep_ms = rs.period_ms;
    }
    return c;
}

#define WH_MAX_RECENT_COUNT 8 /* similar: sketches of the last 8 messages (WH_RECENT) */
#define WH_MAX_WAVE_USERS 256

/* duplicate: {count, within}; similar: {count, within, threshold};
 * wave: {users, within, threshold, min_length, from} */
static wh_cond *parse_repeat(ld_t *L, struct fy_node *kn, struct fy_node *n, wh_cond_kind kind)
{
    const char *what = kind == WH_C_DUP       ? "'duplicate'"
                       : kind == WH_C_SIMILAR ? "'similar'"
                                              : "'wave'";
    wh_cond *c = new_cond(L, kind, kn);
    if (!map_start(L, n,
                   kind == WH_C_DUP       ? "'duplicate' ({count: 3, within: 60s})"
                   : kind == WH_C_SIMILAR ? "'similar' ({count: 3, within: 60s, threshold: 0.8})"
                                          : "'wave' ({users: 20, within: 30s, threshold: 0.8})"))
        return NULL;
    static const char *const dkeys[] = {"count", "within", NULL};
    static const char *const skeys[] = {"count", "within", "threshold", NULL};
    static const char *const wkeys[] = {"users", "within", "threshold", "min_length", "from", NULL};
    const char *cname = kind == WH_C_WAVE ? "users" : "count";
    c->threshold = 0.8;
    c->min_length = 20;
    bool ok = true, have_count = false, have_within = false;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        double x;
        if (!strcmp(k, cname)) {
            have_count = true;
            if (kind == WH_C_WAVE)
                ok &= get_uint(L, v, "'users'", 2, WH_MAX_WAVE_USERS, &c->count);
            else
                ok &= get_uint(L, v, "'count'", 2, WH_MAX_RECENT_COUNT, &c->count);
        } else if (!strcmp(k, "within")) {
            have_within = true;
            ok &= get_duration(L, v, "'within'", 1, &c->within_ms);
        } else if (!strcmp(k, "threshold") && kind != WH_C_DUP) {
            ok &= get_number(L, v, "'threshold'", 0.5, 1, false, &x);
            c->threshold = x;
        } else if (!strcmp(k, "min_length") && kind == WH_C_WAVE) {
            ok &= get_uint(L, v, "'min_length'", 1, 1000, &c->min_length);
        } else if (!strcmp(k, "from") && kind == WH_C_WAVE) {
            /* suspects (the default): only messages of fresh, unknown or low-reputation
             * accounts, or with links or mentions, count; everyone: every message */
            char *m = scalar(L, v, "'from'");
            if (m && !strcmp(m, "everyone"))
                c->flag = true;
            else if (m && strcmp(m, "suspects")) {
                ERR(L, v, "unknown 'from' '%s' (expected suspects or everyone)", m);
                ok = false;
            }
        } else {
            unknown_key(L, k_n, k,
                        kind == WH_C_DUP       ? dkeys
                        : kind == WH_C_SIMILAR ? skeys
                                               : wkeys,
                        what);
            ok = false;
        }
    }
    if (!have_count) ERR(L, n, "%s needs '%s'", what, cname);
    if (!have_within) ERR(L, n, "%s needs 'within' (a duration such as 60s)", what);
    if (!ok || !have_count || !have_within) return NULL;
    wh_state_cfg *st = &L->rs->state;
    if (kind == WH_C_DUP) {
        /* every message of the window stays in the log (up to WH_LOG_MAX), not only the last
         * 8: a third copy after nine other lines is still the third */
        st->need_hash = st->need_log = true;
        st->log_cap = WH_LOG_MAX;
        if (c->within_ms > st->log_keep_ms) st->log_keep_ms = c->within_ms;
    }
    if (kind == WH_C_SIMILAR) st->need_sim = st->need_similar = st->need_log = true;
    if (kind == WH_C_WAVE) {
        st->need_sim = st->need_wave = true;
        if (st->wave_threshold == 0 || c->threshold < st->wave_threshold)
            st->wave_threshold = c->threshold;
        if (c->within_ms > st->wave_within_ms) st->wave_within_ms = c->within_ms;
        if (st->wave_min_length == 0 || c->min_length < st->wave_min_length)
            st->wave_min_length = c->min_length;
        if (c->count > st->wave_max_users) st->wave_max_users = c->count;
    }
    return c;
}

/* ---- classifiers: `models:` and the `score` predicate ---- */

static bool valid_id(const char *s);

static const char *const model_keys[] = {"file", NULL};

static void parse_models(ld_t *L, struct fy_node *n)
{
    if (!map_start(L, n, "'models'")) return;
    int cnt = fy_node_mapping_item_count(n);
    L->rs->models = wh_arena_alloc(L->a, sizeof(wh_rmodel) * (size_t)(cnt > 0 ? cnt : 1));
    struct fy_node *kn, *v;
    char *name;
    FOR_PAIRS(L, n, kn, v, name)
    {
        if (!valid_id(name)) {
            ERR(L, kn, "model name '%s' must be letters, digits, '-' or '_'", name);
            continue;
        }
        struct fy_node *fnode = NULL;
        if (v && fy_node_get_type(v) == FYNT_SCALAR) {
            fnode = v; /* spam: models/spam.whm */
        } else if (map_start(L, v, "a model")) {
            void *it2 = NULL;
            struct fy_node_pair *p2;
            while ((p2 = fy_node_mapping_iterate(v, &it2))) {
                struct fy_node *k2 = fy_node_pair_key(p2);
                char *key = scalar(L, k2, "a key");
                if (key && !strcmp(key, "file"))
                    fnode = fy_node_pair_value(p2);
                else if (key)
                    unknown_key(L, k2, key, model_keys, "a model");
            }
        } else {
            continue;
        }
        char *rel = fnode ? scalar(L, fnode, "a model file") : NULL;
        if (!rel) {
            if (!fnode) ERR(L, v, "model '%s' needs a file: {file: models/%s.whm}", name, name);
            continue;
        }
        for (uint32_t i = 0; i < L->rs->nmodels; i++)
            if (!strcmp(L->rs->models[i].name, name))
                ERR(L, kn, "model '%s' is defined twice", name);
        size_t pl = strlen(L->dir) + strlen(rel) + 2;
        char *path = wh_arena_alloc(L->a, pl);
        if (rel[0] == '/')
            snprintf(path, pl, "%s", rel);
        else
            snprintf(path, pl, "%s/%s", L->dir, rel);
        char err[256];
        wh_model *m = wh_model_open(path, err, sizeof(err));
        if (!m) {
            ERR(L, fnode, "model '%s': %s: %s", name, path, err);
            continue;
        }
        XXH3_64bits_update(L->hash, wh_model_checksum(m), 32);
        wh_rmodel *rm = &L->rs->models[L->rs->nmodels++];
        rm->name = name;
        rm->path = path;
        rm->model = m;
        rm->slot0 = L->rs->nscores;
        L->rs->nscores += wh_model_nlabels(m);
    }
    wh_ruleset *rs = L->rs;
    rs->score_names = wh_arena_alloc(L->a, sizeof(char *) * (rs->nscores ? rs->nscores : 1));
    for (uint32_t i = 0; i < rs->nmodels; i++) {
        const wh_rmodel *rm = &rs->models[i];
        uint32_t nl = wh_model_nlabels(rm->model);
        for (uint32_t l = 0; l < nl; l++) {
            const char *lab = wh_model_label(rm->model, l);
            size_t k = strlen(rm->name) + strlen(lab) + 2;
            char *sn = wh_arena_alloc(L->a, k);
            if (nl == 1)
                snprintf(sn, k, "%s", rm->name);
            else
                snprintf(sn, k, "%s.%s", rm->name, lab);
            rs->score_names[rm->slot0 + l] = sn;
        }
    }
}

static const char *const score_keys[] = {"model", "label", "gt", "gte", "lt", "lte", NULL};

/* score: {model: spam, gte: 0.9} (and label: for a model of several labels). */
static wh_cond *parse_score(ld_t *L, struct fy_node *kn, struct fy_node *n)
{
    if (!map_start(L, n, "'score'")) return NULL;
    struct fy_node *k, *v, *mnode = NULL, *lnode = NULL;
    char *key;
    wh_cmp cmps[4];
    struct fy_node *cnodes[4];
    uint32_t ncmp = 0, nbounds = 0;
    FOR_PAIRS(L, n, k, v, key)
    {
        static const struct {
            const char *k;
            wh_cmp_op op;
        } ops[] = {{"gt", WH_OP_GT}, {"gte", WH_OP_GE}, {"lt", WH_OP_LT}, {"lte", WH_OP_LE}};
        if (!strcmp(key, "model")) {
            mnode = v;
            continue;
        }
        if (!strcmp(key, "label")) {
            lnode = v;
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < WH_ARRAY_LEN(ops) && !found; i++) {
            if (strcmp(key, ops[i].k)) continue;
            found = true;
            nbounds++;
            double x;
            if (ncmp < 4 && get_number(L, v, "a score bound", 0, 1, false, &x)) {
                cnodes[ncmp] = k;
                cmps[ncmp++] = (wh_cmp){ops[i].op, x};
            }
        }
        if (!found) unknown_key(L, k, key, score_keys, "'score'");
    }
    char *mname = mnode ? scalar(L, mnode, "'model'") : NULL;
    if (!mnode) ERR(L, n, "'score' needs the model it reads: {model: spam, gte: 0.9}");
    if (!nbounds) ERR(L, n, "'score' needs a bound: gt, gte, lt or lte (a number from 0 to 1)");
    if (!mname || !ncmp) return NULL;
    const wh_rmodel *rm = NULL;
    for (uint32_t i = 0; i < L->rs->nmodels && !rm; i++)
        if (!strcmp(L->rs->models[i].name, mname)) rm = &L->rs->models[i];
    if (!rm) {
        ERR(L, mnode, "unknown model '%s' (define it under 'models:')", mname);
        return NULL;
    }
    uint32_t nl = wh_model_nlabels(rm->model);
    int32_t lab = nl == 1 ? 0 : wh_model_find_label(rm->model, mname);
    if (lnode) {
        char *ls = scalar(L, lnode, "'label'");
        lab = ls ? wh_model_find_label(rm->model, ls) : -1;
        if (ls && lab < 0) {
            wh_buf b;
            wh_buf_init(&b);
            for (uint32_t i = 0; i < nl; i++)
                wh_buf_printf(&b, "%s%s", i ? ", " : "", wh_model_label(rm->model, i));
            ERR(L, lnode, "model '%s' has no label '%s' (its labels: %s)", mname, ls,
                wh_buf_cstr(&b));
            wh_buf_free(&b);
            return NULL;
        }
    } else if (lab < 0) {
        ERR(L, n, "model '%s' has %u labels: name one with 'label:'", mname, nl);
        return NULL;
    }
    if (lab < 0) return NULL;
    wh_cond *all = NULL;
    if (ncmp > 1) {
        all = new_cond(L, WH_C_ALL, kn);
        all->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * ncmp);
    }
    wh_cond *c = NULL;
    for (uint32_t i = 0; i < ncmp; i++) {
        c = new_cond(L, WH_C_SCORE, cnodes[i]);
        c->slot = rm->slot0 + (uint32_t)lab;
        c->cmp = cmps[i];
        if (all) all->kids[all->nkids++] = c;
    }
    return all ? all : c;
}

/* ---- the predicates: one row each ----
 *
 * A condition map's keys are looked up here: its name, the condition kind it makes, what it
 * needs (state, a matcher) and how its value is parsed. The list of known keys and "did you
 * mean" come from the same rows. What a kind means at decision time is in
 * src/engine/eval.c; docs/rules.md has every key. */

enum {
    PRED_STATE = 1,   /* keeps behaviour state (the ruleset then has state) */
    PRED_MATCHER = 2, /* scans the text (words, regex): `unless_words` applies to it */
    PRED_MAP = 4,     /* a modifier of the whole map (unless_words, view), read first */
};

/* What the keys of one condition map share. */
typedef struct {
    int32_t permit;      /* the map's unless_words set, or -1 */
    wh_view_id dview;    /* the map's `view` for regexes */
    int depth;           /* nesting */
    struct fy_node *key; /* the key being parsed (where errors point) */
} cond_map;

typedef struct pred_def pred_def;
struct pred_def {
    const char *name;
    wh_cond_kind kind;
    unsigned flags;
    int arg; /* NUM: the feature; AGE, REP, STRIKES: the comparison kind (CMP_*) */
    wh_cond *(*parse)(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m);
};

static wh_cond *pred_words(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = new_cond(L, WH_C_MATCH, m->key);
    c->group = new_group(L, m->permit);
    parse_terms(L, v, c->group, -1, "'words'");
    return c;
}

static wh_cond *pred_regex(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = new_cond(L, WH_C_MATCH, m->key);
    c->group = new_group(L, m->permit);
    parse_regexes(L, v, m->dview, c->group, -1);
    return c;
}

static wh_cond *pred_modifier(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return NULL; /* read before the other keys (parse_cond) */
}

static bool is_ratio(wh_feature_id f)
{
    return f == WH_F_CAPS_RATIO || f == WH_F_SYMBOL_RATIO || f == WH_F_NON_LATIN_RATIO;
}

static wh_cond *pred_num(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = new_cond(L, WH_C_NUM, m->key);
    c->feat = (wh_feature_id)d->arg;
    if (!parse_cmp(L, v, d->name, is_ratio(c->feat) ? CMP_RATIO : CMP_COUNT, &c->cmp)) return NULL;
    return c;
}

static wh_cond *pred_links(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_links(L, v);
}

static wh_cond *pred_score(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_score(L, m->key, v);
}

static wh_cond *pred_list(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_cond_list(L, v, d->kind, m->depth);
}

static wh_cond *pred_not(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *kid = parse_cond(L, v, m->depth + 1);
    if (!kid) return NULL;
    wh_cond *c = new_cond(L, WH_C_NOT, m->key);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *));
    c->kids[0] = kid;
    c->nkids = 1;
    return c;
}

static wh_cond *pred_rate(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_rate(L, m->key, v, d->kind == WH_C_JOINS);
}

static wh_cond *pred_repeat(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_repeat(L, m->key, v, d->kind);
}

static wh_cond *pred_cmp(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    char what[48];
    snprintf(what, sizeof(what), "'%s'", d->name);
    wh_cond *c = new_cond(L, d->kind, m->key);
    return parse_cmp(L, v, what, d->arg, &c->cmp) ? c : NULL;
}

static wh_cond *pred_first(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = new_cond(L, WH_C_FIRST, m->key);
    return get_bool(L, v, "'first_message'", &c->flag) ? c : NULL;
}

static const pred_def pred_defs[] = {
    /* the text */
    {"words", WH_C_MATCH, PRED_MATCHER, 0, pred_words},
    {"unless_words", WH_C_MATCH, PRED_MAP, 0, pred_modifier},
    {"regex", WH_C_MATCH, PRED_MATCHER, 0, pred_regex},
    {"view", WH_C_MATCH, PRED_MAP, 0, pred_modifier},
    /* the message's shape */
    {"length", WH_C_NUM, 0, WH_F_LENGTH, pred_num},
    {"letters", WH_C_NUM, 0, WH_F_LETTERS, pred_num},
    {"caps_ratio", WH_C_NUM, 0, WH_F_CAPS_RATIO, pred_num},
    {"symbol_ratio", WH_C_NUM, 0, WH_F_SYMBOL_RATIO, pred_num},
    {"repeated_chars", WH_C_NUM, 0, WH_F_REPEATED, pred_num},
    {"zalgo", WH_C_NUM, 0, WH_F_ZALGO, pred_num},
    {"mentions", WH_C_NUM, 0, WH_F_MENTIONS, pred_num},
    {"emotes", WH_C_NUM, 0, WH_F_EMOTES, pred_num},
    {"non_latin_ratio", WH_C_NUM, 0, WH_F_NON_LATIN_RATIO, pred_num},
    {"links", WH_C_LINKS, 0, 0, pred_links},
    /* behaviour */
    {"rate", WH_C_RATE, PRED_STATE, 0, pred_rate},
    {"joins", WH_C_JOINS, PRED_STATE, 0, pred_rate},
    {"duplicate", WH_C_DUP, PRED_STATE, 0, pred_repeat},
    {"similar", WH_C_SIMILAR, PRED_STATE, 0, pred_repeat},
    {"wave", WH_C_WAVE, PRED_STATE, 0, pred_repeat},
    {"account_age", WH_C_AGE, PRED_STATE, CMP_DURATION, pred_cmp},
    {"first_message", WH_C_FIRST, PRED_STATE, 0, pred_first},
    {"reputation", WH_C_REP, PRED_STATE, CMP_SIGNED, pred_cmp},
    {"strikes", WH_C_STRIKES, PRED_STATE, CMP_COUNT, pred_cmp},
    /* classifiers */
    {"score", WH_C_SCORE, 0, 0, pred_score},
    /* combinators */
    {"all", WH_C_ALL, 0, 0, pred_list},
    {"any", WH_C_ANY, 0, 0, pred_list},
    {"not", WH_C_NOT, 0, 0, pred_not},
};

static const pred_def *pred_find(const char *name)
{
    for (size_t i = 0; i < WH_ARRAY_LEN(pred_defs); i++)
        if (!strcmp(name, pred_defs[i].name)) return &pred_defs[i];
    return NULL;
}

static void unknown_pred(ld_t *L, struct fy_node *kn, const char *k)
{
    const char *known[WH_ARRAY_LEN(pred_defs) + 1];
    for (size_t i = 0; i < WH_ARRAY_LEN(pred_defs); i++)
        known[i] = pred_defs[i].name;
    known[WH_ARRAY_LEN(pred_defs)] = NULL;
    unknown_key(L, kn, k, known, "a condition");
}

static wh_cond *parse_cond(ld_t *L, struct fy_node *n, int depth)
{
    if (depth > 16) {
        ERR(L, n, "conditions nested deeper than 16 levels");
        return NULL;
    }
    if (!n || fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "a condition must be a mapping such as {words: [...]}");
        return NULL;
    }
    /* unless_words and view apply to the whole map: read them first. */
    cond_map m = {.permit = -1, .dview = WH_VIEW_FOLDED, .depth = depth};
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        size_t kl;
        const char *k = fy_node_get_scalar(fy_node_pair_key(pr), &kl);
        if (!k) continue;
        if (kl == 12 && !memcmp(k, "unless_words", 12)) {
            m.permit = (int32_t)L->rs->npermit_sets++;
            parse_terms(L, fy_node_pair_value(pr), 0, m.permit, "'unless_words'");
        } else if (kl == 4 && !memcmp(k, "view", 4)) {
            parse_view(L, fy_node_pair_value(pr), &m.dview);
        }
    }
    int cnt = fy_node_mapping_item_count(n);
    wh_cond *all = new_cond(L, WH_C_ALL, n);
    all->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    bool has_matcher = false;
    it = NULL;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = scalar(L, kn, "a key");
        if (!k) continue;
        const pred_def *d = pred_find(k);
        if (!d) {
            unknown_pred(L, kn, k);
            continue;
        }
        if (d->flags & PRED_MAP) continue;
        m.key = kn;
        wh_cond *c = d->parse(L, d, v, &m);
        if (d->flags & PRED_STATE) L->stateful = true;
        if (d->flags & PRED_MATCHER) has_matcher = true;
        if (c) all->kids[all->nkids++] = c;
    }
    if (m.permit >= 0 && !has_matcher)
        ERR(L, n, "'unless_words' only has an effect beside 'words' or 'regex' in the same map");
    if (all->nkids == 1) return all->kids[0];
    return all;
}

/* ---- actions ---- */

static bool parse_action(ld_t *L, struct fy_node *n, wh_rule *r)
{
    if (n && fy_node_get_type(n) == FYNT_SCALAR) {
        char *s = scalar(L, n, "'action'");
        if (!s) return false;
        for (int a = 0; a < WH_ACT__COUNT; a++) {
            if (strcmp(s, wh_action_names[a])) continue;
            if (a == WH_ACT_TIMEOUT) {
                ERR(L, n, "'timeout' needs a duration: write {timeout: 10m}");
                return false;
            }
            r->action = (wh_action)a;
            return true;
        }
        const char *best = NULL;
        size_t bd = 3;
        for (int a = 0; a < WH_ACT__COUNT; a++) {
            size_t d = wh_levenshtein(s, wh_action_names[a]);
            if (d < bd) bd = d, best = wh_action_names[a];
        }
        if (best)
            ERR(L, n, "unknown action '%s'; did you mean '%s'?", s, best);
        else
            ERR(L, n, "unknown action '%s' (expected allow, warn, hold, delete, timeout or ban)",
                s);
        return false;
    }
    if (!n || fy_node_get_type(n) != FYNT_MAPPING || fy_node_mapping_item_count(n) != 1) {
        ERR(L, n,
            "'action' must be a name (delete) or one of {warn: MESSAGE}, {timeout: DURATION}");
        return false;
    }
    struct fy_node_pair *pr = fy_node_mapping_get_by_index(n, 0);
    struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
    char *k = scalar(L, kn, "an action");
    if (!k) return false;
    if (!strcmp(k, "warn")) {
        r->action = WH_ACT_WARN;
        if (!is_null_node(v)) r->message = scalar(L, v, "the warn message");
        return true;
    }
    if (!strcmp(k, "timeout")) {
        char *d = scalar(L, v, "the timeout duration");
        int64_t ms;
        if (!d) return false;
        if (!wh_parse_duration(d, strlen(d), &ms) || ms < 1000) {
            ERR(L, v, "bad duration '%s': expected e.g. 30s, 10m, 1h30m, 7d (at least 1s)", d);
            return false;
        }
        if (ms / 1000 > MAX_TIMEOUT_S) {
            ERR(L, v, "timeout '%s' is longer than 14d, the platforms' limit; use ban", d);
            return false;
        }
        r->action = WH_ACT_TIMEOUT;
        r->duration_s = (uint32_t)(ms / 1000);
        return true;
    }
    static const char *const keys[] = {"warn", "timeout", NULL};
    unknown_key(L, kn, k, keys, "'action'");
    return false;
}

/* ---- escalation ---- */

/* A ladder: [warn, 60s, 10m, 1d, ban]; a duration is a timeout of that length. */
static bool parse_ladder(ld_t *L, struct fy_node *n, wh_step *out, uint32_t *nout)
{
    seq_iter it;
    if (!seq_start(L, n, "an escalation ladder", &it)) return false;
    uint32_t k = 0;
    bool ok = true;
    struct fy_node *x;
    while ((x = seq_next(&it))) {
        char *s = scalar(L, x, "a ladder step");
        if (!s) {
            ok = false;
            continue;
        }
        if (k == WH_MAX_STEPS) {
            ERR(L, x, "an escalation ladder has at most %d steps", WH_MAX_STEPS);
            return false;
        }
        wh_step st = {0, 0};
        bool found = false;
        for (int a = 0; a < WH_ACT__COUNT && !found; a++)
            if (a != WH_ACT_TIMEOUT && a != WH_ACT_ALLOW && !strcmp(s, wh_action_names[a]))
                st.action = (uint8_t)a, found = true;
        int64_t ms;
        if (!found && wh_parse_duration(s, strlen(s), &ms) && ms >= 1000 &&
            ms / 1000 <= MAX_TIMEOUT_S) {
            st.action = WH_ACT_TIMEOUT;
            st.duration_s = (uint32_t)(ms / 1000);
            found = true;
        }
        if (!found) {
            ERR(L, x,
                "bad ladder step '%s': expected warn, hold, delete, ban or a timeout duration "
                "from 1s to 14d (60s, 10m, 1d)",
                s);
            ok = false;
            continue;
        }
        out[k++] = st;
    }
    if (ok && k == 0) {
        ERR(L, n, "an escalation ladder needs at least one step");
        ok = false;
    }
    *nout = k;
    return ok;
}

static const char *const chan_action_keys[] = {"mode", "for", NULL};
const char *const wh_chan_mode_names[WH_MODE__COUNT] = {"followers_only", "slow",
                                                        "subscribers_only", "emote_only"};

static bool parse_channel_action(ld_t *L, struct fy_node *n, wh_rule *r)
{
    if (!map_start(L, n, "'channel_action' ({mode: followers_only, for: 10m})")) return false;
    bool ok = true, have_mode = false, have_for = false, seen_mode = false;
    int64_t ms = 0;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "mode")) {
            seen_mode = true;
            char *m = scalar(L, v, "'mode'");
            for (int i = 0; m && i < WH_MODE__COUNT; i++)
                if (!strcmp(m, wh_chan_mode_names[i])) r->chan_mode = (int8_t)i, have_mode = true;
            if (m && !have_mode) {
                ERR(L, v,
                    "unknown channel mode '%s' (expected followers_only, slow, subscribers_only "
                    "or emote_only)",
                    m);
                ok = false;
            }
        } else if (!strcmp(k, "for")) {
            have_for = true;
            ok &= get_duration(L, v, "'for'", 1000, &ms);
            if (ms > 366LL * 86400000) {
                ERR(L, v, "'for' is at most 366d");
                ok = false;
                ms = 0;
            }
        } else {
            unknown_key(L, k_n, k, chan_action_keys, "'channel_action'");
            ok = false;
        }
    }
    if (!seen_mode) {
        ERR(L, n, "'channel_action' needs 'mode'");
        ok = false;
    }
    if (!have_for) {
        ERR(L, n, "'channel_action' needs 'for' (how long the mode stays on, such as 10m)");
        ok = false;
    }
    r->chan_for_s = (uint32_t)(ms / 1000);
    if (!ok) r->chan_mode = -1;
    return ok;
}

/* ---- top-level behaviour sections ---- */

static void parse_state_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"max_users", "max_channels", "idle", NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!map_start(L, n, "'state'")) return;
    L->stateful = true;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "max_users"))
            get_uint(L, v, "'max_users'", 1, 1u << 30, &c->max_users);
        else if (!strcmp(k, "max_channels"))
            get_uint(L, v, "'max_channels'", 1, 1u << 24, &c->max_channels);
        else if (!strcmp(k, "idle"))
            get_duration(L, v, "'idle'", 1000, &c->idle_ms);
        else
            unknown_key(L, k_n, k, keys, "'state'");
    }
}

static void parse_escalation_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"ladder", "half_life", "expire", NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!map_start(L, n, "'escalation'")) return;
    struct fy_node *k_n, *v, *hl = NULL, *ex = NULL;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "ladder"))
            parse_ladder(L, v, c->ladder, &c->nladder);
        else if (!strcmp(k, "half_life"))
            hl = v, get_duration(L, v, "'half_life'", 1000, &c->half_life_ms);
        else if (!strcmp(k, "expire"))
            ex = v, get_duration(L, v, "'expire'", 1000, &c->expire_ms);
        else
            unknown_key(L, k_n, k, keys, "'escalation'");
    }
    if (hl && ex) ERR(L, ex, "'escalation' takes 'half_life' or 'expire', not both");
    if (ex) c->half_life_ms = 0;
    if (hl) c->expire_ms = 0;
}

static void parse_reputation_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"message", "interval", "approve", "strike",
                                       "min",     "max",      NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!map_start(L, n, "'reputation'")) return;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "message"))
            get_number(L, v, "'message'", 0, 1000, false, &c->rep_message);
        else if (!strcmp(k, "interval"))
            get_duration(L, v, "'interval'", 0, &c->rep_interval_ms);
        else if (!strcmp(k, "approve"))
            get_number(L, v, "'approve'", 0, 1000, false, &c->rep_approve);
        else if (!strcmp(k, "strike"))
            get_number(L, v, "'strike'", -1000, 0, false, &c->rep_strike);
        else if (!strcmp(k, "min"))
            get_number(L, v, "'min'", -1e6, 0, false, &c->rep_min);
        else if (!strcmp(k, "max"))
            get_number(L, v, "'max'", 0, 1e6, false, &c->rep_max);
        else
            unknown_key(L, k_n, k, keys, "'reputation'");
    }
}

static const char *const mod_kind_names[WH_MOD__WEIGHTED + 1] = {"warn", "timeout", "ban", "deny",
                                                                 NULL};

static void parse_mod_actions_section(ld_t *L, struct fy_node *n)
{
    wh_state_cfg *c = &L->rs->state;
    if (!map_start(L, n, "'mod_actions' (strikes per moderator action)")) return;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        int found = -1;
        for (int i = 0; i < WH_MOD__WEIGHTED; i++)
            if (!strcmp(k, mod_kind_names[i])) found = i;
        if (found < 0) {
            unknown_key(L, k_n, k, mod_kind_names, "'mod_actions'");
            continue;
        }
        get_number(L, v, "a strike weight", 0, 100, false, &c->mod_weight[found]);
    }
}

static void state_defaults(wh_state_cfg *c)
{
    c->max_users = 2000000;
    c->max_channels = 200000;
    c->idle_ms = 7 * 86400000LL;
    static const wh_step ladder[] = {{WH_ACT_WARN, 0},
                                     {WH_ACT_TIMEOUT, 60},
                                     {WH_ACT_TIMEOUT, 600},
                                     {WH_ACT_TIMEOUT, 86400},
                                     {WH_ACT_BAN, 0}};
    memcpy(c->ladder, ladder, sizeof(ladder));
    c->nladder = WH_ARRAY_LEN(ladder);
    c->half_life_ms = 86400000LL;
    c->expire_ms = 0;
    c->rep_message = 1;
    c->rep_interval_ms = 60000;
    c->rep_approve = 5;
    c->rep_strike = -3;
    c->rep_min = -100;
    c->rep_max = 100;
    c->mod_weight[WH_MOD_WARN] = 1;
    c->mod_weight[WH_MOD_TIMEOUT] = 1;
    c->mod_weight[WH_MOD_BAN] = 3;
    c->mod_weight[WH_MOD_DENY] = 1;
}

/* Message-only predicates found under a join rule, for the error. */
static const wh_cond *message_only(const wh_cond *c)
{
    if (!c) return NULL;
    switch (c->kind) {
    case WH_C_ALL:
    case WH_C_ANY:
    case WH_C_NOT:
        for (uint32_t i = 0; i < c->nkids; i++) {
            const wh_cond *m = message_only(c->kids[i]);
            if (m) return m;
        }
        return NULL;
    case WH_C_JOINS:
    case WH_C_AGE:
    case WH_C_REP:
    case WH_C_STRIKES:
        return NULL;
    default: /* a message rate (user or channel) counts messages, never joins */
        return c;
    }
}

/* The channel slot of the first `joins` in c, or -1. */
static int join_slot_of(const wh_cond *c)
{
    if (!c) return -1;
    if (c->kind == WH_C_JOINS) return (int)c->slot;
    for (uint32_t i = 0; i < c->nkids; i++) {
        int s = join_slot_of(c->kids[i]);
        if (s >= 0) return s;
    }
    return -1;
}

static bool has_kind(const wh_cond *c, wh_cond_kind k)
{
    if (!c) return false;
    if (c->kind == k) return true;
    for (uint32_t i = 0; i < c->nkids; i++)
        if (has_kind(c->kids[i], k)) return true;
    return false;
}

/* ---- rules ---- */

static const char *const rule_keys[] = {"id",           "description",    "when",      "action",
                                        "reason",       "priority",       "mode",      "roles",
                                        "exempt_roles", "channels",       "platforms", "escalate",
                                        "strikes",      "channel_action", NULL};

static bool valid_id(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void parse_rule(ld_t *L, struct fy_node *n)
{
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "a rule must be a mapping with id, when and action");
        return;
    }
    if (L->nrules == L->caprules) {
        L->caprules = L->caprules ? L->caprules * 2 : 16;
        L->rules = realloc(L->rules, sizeof(wh_rule) * L->caprules);
    }
    L->cur_rule = L->nrules;
    wh_rule r;
    memset(&r, 0, sizeof(r));
    r.line = wh_yaml_line(n);
    r.col = wh_yaml_col(n);
    r.order = L->nrules;
    r.weight = 1;
    r.chan_mode = -1;
    bool have_when = false, have_action = false, ok = true;
    struct fy_node *esc_node = NULL;
    bool have_chan_action = false;
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = scalar(L, kn, "a key");
        if (!k) continue;
        if (!strcmp(k, "id")) {
            r.id = scalar(L, v, "'id'");
            if (r.id && !valid_id(r.id)) {
                ERR(L, v, "rule id '%s' may only contain letters, digits, '_', '-' and '.'", r.id);
                ok = false;
            }
            for (uint32_t i = 0; r.id && i < L->nrules; i++)
                if (L->rules[i].id && !strcmp(L->rules[i].id, r.id))
                    ERR(L, v, "duplicate rule id '%s' (first defined at line %u)", r.id,
                        L->rules[i].line);
        } else if (!strcmp(k, "description")) {
            r.description = scalar(L, v, "'description'");
        } else if (!strcmp(k, "reason")) {
            r.reason = scalar(L, v, "'reason'");
        } else if (!strcmp(k, "when")) {
            have_when = true;
            r.when = parse_cond(L, v, 0);
            if (!r.when) ok = false;
        } else if (!strcmp(k, "action")) {
            have_action = true;
            if (!parse_action(L, v, &r)) ok = false;
        } else if (!strcmp(k, "priority")) {
            char *s = scalar(L, v, "'priority'");
            char *end;
            if (s) {
                errno = 0;
                long long p = strtoll(s, &end, 10);
                if (*end || end == s || errno || p > 1000000000 || p < -1000000000)
                    ERR(L, v, "'priority' must be an integer, got '%s'", s);
                else
                    r.priority = p;
            }
        } else if (!strcmp(k, "mode")) {
            char *s = scalar(L, v, "'mode'");
            if (s && !strcmp(s, "shadow"))
                r.shadow = true;
            else if (s && strcmp(s, "enforce"))
                ERR(L, v, "unknown mode '%s' (expected enforce or shadow)", s);
        } else if (!strcmp(k, "roles")) {
            parse_strset(L, v, "'roles'", &r.roles);
        } else if (!strcmp(k, "exempt_roles")) {
            parse_strset(L, v, "'exempt_roles'", &r.exempt_roles);
        } else if (!strcmp(k, "channels")) {
            parse_strset(L, v, "'channels'", &r.channels);
        } else if (!strcmp(k, "platforms")) {
            parse_strset(L, v, "'platforms'", &r.platforms);
        } else if (!strcmp(k, "escalate")) {
            esc_node = kn;
            L->stateful = true;
            if (fy_node_get_type(v) == FYNT_SEQUENCE) {
                wh_step steps[WH_MAX_STEPS];
                if (parse_ladder(L, v, steps, &r.nladder)) {
                    r.ladder = wh_arena_alloc(L->a, sizeof(wh_step) * r.nladder);
                    memcpy(r.ladder, steps, sizeof(wh_step) * r.nladder);
                    r.escalate = true;
                }
            } else {
                bool b;
                if (get_bool(L, v, "'escalate' (true, or a ladder such as [warn, 60s, ban])", &b))
                    r.escalate = b;
            }
        } else if (!strcmp(k, "strikes")) {
            get_number(L, v, "'strikes' (the weight of this rule's offences)", 0, 100, false,
                       &r.weight);
        } else if (!strcmp(k, "channel_action")) {
            L->stateful = true;
            have_chan_action = true;
            if (!parse_channel_action(L, v, &r)) ok = false;
        } else {
            unknown_key(L, kn, k, rule_keys, "a rule");
        }
    }
    if (!r.id) {
        ERR(L, n, "rule has no 'id'");
        char buf[32];
        snprintf(buf, sizeof(buf), "rule-%u", L->nrules + 1);
        r.id = wh_arena_strndup(L->a, buf, strlen(buf));
    }
    if (!have_when) ERR(L, n, "rule '%s' has no 'when'", r.id);
    if (have_action && r.escalate)
        ERR(L, esc_node, "rule '%s' has both 'action' and 'escalate': the ladder picks the action",
            r.id);
    else if (!have_action && !r.escalate && !have_chan_action)
        ERR(L, n, "rule '%s' has no 'action' (or 'escalate')", r.id);
    if (r.escalate) r.action = WH_ACT_WARN; /* the ladder's first step at the least */
    /* A rule that only switches a channel mode allows the event, but is no allow rule:
     * it must not stop the rules of lower priority. */
    r.implicit_allow = !have_action && !r.escalate;
    r.on_join = has_kind(r.when, WH_C_JOINS);
    r.has_wave = has_kind(r.when, WH_C_WAVE);
    if (r.on_join) {
        const wh_cond *m = message_only(r.when);
        if (m)
            wh_diags_add(L->d, L->path, m->line, m->col,
                         "rule '%s' counts 'joins', so it runs on join events, which have no "
                         "text: only account_age, reputation and strikes may stand beside "
                         "'joins'",
                         r.id);
    }
    (void)ok;
    L->rules[L->nrules++] = r;
}

/* ---- reachability ---- */

typedef struct {
    double lo, hi;
    bool lo_open, hi_open;
} interval;

static bool interval_empty(const interval *iv)
{
    return iv->lo > iv->hi || (iv->lo == iv->hi && (iv->lo_open || iv->hi_open));
}

static void interval_apply(interval *iv, wh_cmp c)
{
    switch (c.op) {
    case WH_OP_GT:
        if (c.v >= iv->lo) iv->lo = c.v, iv->lo_open = true;
        break;
    case WH_OP_GE:
        if (c.v > iv->lo) iv->lo = c.v, iv->lo_open = false;
        break;
    case WH_OP_LT:
        if (c.v <= iv->hi) iv->hi = c.v, iv->hi_open = true;
        break;
    case WH_OP_LE:
        if (c.v < iv->hi) iv->hi = c.v, iv->hi_open = false;
        break;
    case WH_OP_EQ:
        if (c.v > iv->lo || (c.v == iv->lo && !iv->lo_open))
            iv->lo = c.v, iv->lo_open = false;
        else
            iv->lo = INFINITY;
        if (c.v < iv->hi || (c.v == iv->hi && !iv->hi_open))
            iv->hi = c.v, iv->hi_open = false;
        else
            iv->hi = -INFINITY;
        break;
    case WH_OP_NE:
        break;
    }
}

/* Narrows the per-feature intervals by every numeric predicate that must hold under c
 * (the kids of nested `all`s included). Returns true when one becomes empty. */
static bool narrow(const wh_cond *c, interval *ivs, wh_feature_id *which)
{
    if (c->kind == WH_C_NUM) {
        wh_cmp k = c->cmp;
        if (!is_ratio(c->feat)) { /* counts are whole numbers: "> 5" is ">= 6" */
            if (k.op == WH_OP_GT)
                k = (wh_cmp){WH_OP_GE, floor(k.v) + 1};
            else if (k.op == WH_OP_LT)
                k = (wh_cmp){WH_OP_LE, ceil(k.v) - 1};
        }
        interval_apply(&ivs[c->feat], k);
        *which = c->feat;
        return interval_empty(&ivs[c->feat]);
    }
    if (c->kind != WH_C_ALL) return false;
    for (uint32_t i = 0; i < c->nkids; i++)
        if (narrow(c->kids[i], ivs, which)) return true;
    return false;
}

/* Finds a conjunction of numeric predicates that no message can satisfy. */
static bool impossible(const wh_cond *c, wh_feature_id *which)
{
    interval ivs[WH_F__COUNT];
    for (int f = 0; f < WH_F__COUNT; f++)
        ivs[f] = (interval){0, is_ratio((wh_feature_id)f) ? 1 : INFINITY, false, false};
    if (narrow(c, ivs, which)) return true;
    if (c->kind == WH_C_ALL)
        for (uint32_t i = 0; i < c->nkids; i++) /* an `any` inside is fine if one branch is */
            if (c->kids[i]->kind == WH_C_ANY && c->kids[i]->nkids) {
                bool all_bad = true;
                for (uint32_t k = 0; k < c->kids[i]->nkids && all_bad; k++)
                    all_bad = impossible(c->kids[i]->kids[k], which);
                if (all_bad) return true;
            }
    return false;
}

static bool always_true(const wh_cond *c)
{
    return c && c->kind == WH_C_ALL && c->nkids == 0;
}

static bool subset(const wh_strset *inner, const wh_strset *outer)
{
    if (outer->n == 0) return true;
    if (inner->n == 0) return false;
    for (uint32_t i = 0; i < inner->n; i++)
        if (!wh_strset_has(outer, (wh_str){inner->v[i], (uint32_t)strlen(inner->v[i])}))
            return false;
    return true;
}

/* A match group that must have matched for c to hold, or -1. */
static int32_t required_group(const wh_cond *c)
{
    if (!c) return -1;
    if (c->kind == WH_C_MATCH) return (int32_t)c->group;
    if (c->kind == WH_C_ALL)
        for (uint32_t i = 0; i < c->nkids; i++) {
            int32_t g = required_group(c->kids[i]);
            if (g >= 0) return g;
        }
    return -1;
}

/* True when c cannot hold on a message with no links (a `links` predicate that 0 fails,
 * required by every branch of an `all`). */
static bool requires_links(const wh_cond *c)
{
    if (!c) return false;
    if (c->kind == WH_C_LINKS)
        return c->has_allow || c->has_deny || (c->has_count && !wh_cmp_holds(c->cmp, 0));
    if (c->kind == WH_C_ALL)
        for (uint32_t i = 0; i < c->nkids; i++)
            if (requires_links(c->kids[i])) return true;
    return false;
}

static int rule_cmp(const void *a, const void *b)
{
    const wh_rule *x = a, *y = b;
    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void check_reachability(ld_t *L, wh_rule *sorted, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        wh_rule *q = &sorted[i];
        if (!q->when) continue;
        wh_feature_id f;
        if (impossible(q->when, &f)) {
            wh_diags_add(L->d, L->path, q->line, q->col,
                         "rule '%s' can never fire: its '%s' conditions cannot all hold", q->id,
                         wh_feature_names[f]);
            continue;
        }
        if (q->roles.n) {
            bool all_exempt = true;
            for (uint32_t k = 0; k < q->roles.n; k++) {
                wh_str r = {q->roles.v[k], (uint32_t)strlen(q->roles.v[k])};
                if (!wh_strset_has(&L->rs->exempt_roles, r) && !wh_strset_has(&q->exempt_roles, r))
                    all_exempt = false;
            }
            if (all_exempt) {
                wh_diags_add(L->d, L->path, q->line, q->col,
                             "rule '%s' can never fire: every role it applies to is exempt", q->id);
                continue;
            }
        }
        for (uint32_t j = 0; j < i; j++) {
            wh_rule *a = &sorted[j];
            if (a->action != WH_ACT_ALLOW || a->shadow || !always_true(a->when)) continue;
            if (a->priority <= q->priority) continue;
            if (a->exempt_roles.n) continue;
            if (subset(&q->channels, &a->channels) && subset(&q->platforms, &a->platforms) &&
                subset(&q->roles, &a->roles)) {
                wh_diags_add(L->d, L->path, q->line, q->col,
                             "rule '%s' can never fire: rule '%s' (line %u) allows every event "
                             "in its scope first",
                             q->id, a->id, a->line);
                break;
            }
        }
    }
}

/* ---- matcher errors ---- */

static void on_pattern_error(void *ud, uint32_t pi, const char *msg)
{
    ld_t *L = ud;
    if (pi == UINT32_MAX || pi >= L->nspecs) {
        wh_diags_add(L->d, L->path, 0, 0, "%s", msg);
        return;
    }
    const wh_pattern_info *in = &L->infos[pi];
    wh_diags_add(L->d, in->file, in->line, in->col, "'%s': %s", in->source, msg);
}

/* ---- top level ---- */

static const char *const top_keys[] = {"version", "lists",      "exempt_roles", "rules",
                                       "state",   "escalation", "reputation",   "mod_actions",
                                       "models",  NULL};

static wh_status load(const char *path, const char *dir, const char *mem, size_t memlen,
                      const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out);

wh_status wh_ruleset_load(const char *path, const wh_load_opts *opts, wh_diags *diags,
                          wh_ruleset **out)
{
    return load(path, NULL, NULL, 0, opts, diags, out);
}

wh_status wh_ruleset_load_mem(const char *label, const char *base_dir, const char *text, size_t len,
                              const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out)
{
    return load(label, base_dir ? base_dir : ".", text, len, opts, diags, out);
}

static wh_status load(const char *path, const char *dir, const char *mem, size_t memlen,
                      const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out)
{
    *out = NULL;
    wh_status st = WH_EINVAL;
    uint32_t nd0 = diags->n;
    ld_t L;
    memset(&L, 0, sizeof(L));
    L.path = path;
    L.d = diags;
    L.compile = opts ? opts->compile : true;
    L.lint = opts ? opts->lint : false;
    wh_ruleset *rs = calloc(1, sizeof(*rs));
    if (!rs) return WH_ENOMEM;
    atomic_init(&rs->refs, 1);
    wh_arena_init(&rs->arena, 64 * 1024);
    L.rs = rs;
    L.a = &rs->arena;
    rs->path = wh_arena_strndup(L.a, path, strlen(path));
    const char *slash = strrchr(path, '/');
    L.dir = dir     ? wh_arena_strndup(L.a, dir, strlen(dir))
            : slash ? wh_arena_strndup(L.a, path, (size_t)(slash - path))
                    : wh_arena_strndup(L.a, ".", 1);
    L.hash = XXH3_createState();
    XXH3_64bits_reset(L.hash);
    state_defaults(&rs->state);

    char *text = NULL;
    size_t tlen = 0;
    wh_status rst;
    struct fy_document *doc = NULL;
    if (mem) {
        text = malloc(memlen + 1);
        if (!text) goto fail;
        memcpy(text, mem, memlen);
        text[memlen] = 0;
        tlen = memlen;
    } else if ((rst = wh_read_file_max(path, WH_RULES_FILE_MAX, &text, &tlen)) != WH_OK) {
        char why[64];
        wh_diags_add(diags, path, 0, 0, "cannot read rules file: %s",
                     wh_read_file_why(rst, WH_RULES_FILE_MAX, why, sizeof(why)));
        goto fail;
    }
    XXH3_64bits_update(L.hash, text, tlen);
    doc = wh_yaml_parse(path, text, tlen, "rules files", diags);
    if (!doc) goto fail;
    struct fy_node *root = fy_document_root(doc);
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        wh_diags_add(diags, path, 1, 1, "the rules file must be a mapping with version and rules");
        goto fail;
    }
    struct fy_node *rules_node = NULL, *version = NULL;
    void *it = NULL;
    struct fy_node_pair *pr;
    /* Lists and global options first: rules refer to them wherever they are written. */
    while ((pr = fy_node_mapping_iterate(root, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = scalar(&L, kn, "a key");
        if (!k) continue;
        if (!strcmp(k, "version")) {
            version = v;
            char *s = scalar(&L, v, "'version'");
            if (s && strcmp(s, "1"))
                ERR(&L, v, "unsupported version '%s' (this whiply reads version 1)", s);
        } else if (!strcmp(k, "lists")) {
            parse_lists(&L, v);
        } else if (!strcmp(k, "models")) {
            parse_models(&L, v);
        } else if (!strcmp(k, "exempt_roles")) {
            parse_strset(&L, v, "'exempt_roles'", &rs->exempt_roles);
        } else if (!strcmp(k, "rules")) {
            rules_node = v;
        } else if (!strcmp(k, "state")) {
            parse_state_section(&L, v);
        } else if (!strcmp(k, "escalation")) {
            L.stateful = true;
            parse_escalation_section(&L, v);
        } else if (!strcmp(k, "reputation")) {
            L.stateful = true;
            parse_reputation_section(&L, v);
        } else if (!strcmp(k, "mod_actions")) {
            L.stateful = true;
            parse_mod_actions_section(&L, v);
        } else {
            unknown_key(&L, kn, k, top_keys, "the top level");
        }
    }
    if (!version) wh_diags_add(diags, path, 1, 1, "missing 'version: 1'");
    if (!rules_node || fy_node_get_type(rules_node) != FYNT_SEQUENCE) {
        wh_diags_add(diags, path, rules_node ? wh_yaml_line(rules_node) : 1,
                     rules_node ? wh_yaml_col(rules_node) : 1, "'rules' must be a list of rules");
    } else {
        it = NULL;
        struct fy_node *rn;
        while ((rn = fy_node_sequence_iterate(rules_node, &it)))
            parse_rule(&L, rn);
    }
    /* Build the ruleset: rules sorted by priority, groups, patterns. */
    rs->nrules = L.nrules;
    rs->rules = wh_arena_alloc(L.a, sizeof(wh_rule) * (L.nrules ? L.nrules : 1));
    if (L.nrules) memcpy(rs->rules, L.rules, sizeof(wh_rule) * L.nrules);
    /* Groups and patterns refer to rules by file order; keep a map to the sorted order. */
    qsort(rs->rules, rs->nrules, sizeof(wh_rule), rule_cmp);
    uint32_t *pos = calloc(L.nrules ? L.nrules : 1, sizeof(uint32_t));
    for (uint32_t i = 0; i < rs->nrules; i++)
        pos[rs->rules[i].order] = i;
    for (uint32_t g = 0; g < L.ngroups; g++)
        L.groups[g].rule = pos[L.groups[g].rule];
    for (uint32_t p = 0; p < L.nspecs; p++)
        L.infos[p].rule = pos[L.infos[p].rule];
    free(pos);
    check_reachability(&L, rs->rules, rs->nrules);
    rs->state.enabled = L.stateful;
    rs->state.need_chan = rs->state.nchan_slots || rs->state.need_wave;
    for (uint32_t i = 0; i < rs->nrules; i++)
        rs->state.need_chan |= rs->rules[i].chan_mode >= 0;
    if (rs->state.need_log) { /* a power of two, 8 .. WH_LOG_MAX (state/shard.h) */
        uint32_t cap = 8;
        while (cap < rs->state.log_cap)
            cap *= 2;
        rs->state.log_cap = cap;
    }
    /* join rules in priority order: each has a bit in the filter mask a join records, so a
     * raid's detection can name the earlier joiners that matched that rule's filters */
    for (uint32_t i = 0; i < rs->nrules; i++) {
        wh_rule *r = &rs->rules[i];
        r->join_slot = (int16_t)join_slot_of(r->when);
        r->join_bit = 255;
        if (r->on_join && rs->state.njoin_rules < WH_MAX_JOIN_RULES) {
            rs->state.join_ids[rs->state.njoin_rules] = XXH3_64bits(r->id, strlen(r->id));
            r->join_bit = (uint8_t)rs->state.njoin_rules++;
        }
    }
    rs->gates = wh_arena_alloc(L.a, sizeof(wh_rule_gate) * (rs->nrules ? rs->nrules : 1));
    for (uint32_t i = 0; i < rs->nrules; i++) {
        wh_rule *r = &rs->rules[i];
        r->req_group = required_group(r->when);
        r->req_links = requires_links(r->when);
        rs->gates[i] = (wh_rule_gate){.req_group = r->req_group,
                                      .on_join = r->on_join,
                                      .req_links = r->req_links,
                                      .scoped = r->platforms.n || r->channels.n || r->roles.n ||
                                                r->exempt_roles.n};
    }
    rs->groups = L.groups;
    rs->ngroups = L.ngroups;
    L.groups = NULL;
    rs->pats = L.infos;
    rs->npats = L.nspecs;
    L.infos = NULL;
    if (diags->n == nd0 && L.compile) {
        wh_matcher_opts mo = {.cache_dir = opts ? opts->cache_dir : NULL};
        L.infos = rs->pats; /* for error positions */
        st = wh_matcher_build(L.specs, L.nspecs, &mo, on_pattern_error, &L, &rs->matcher);
        L.infos = NULL;
        if (st != WH_OK && diags->n == nd0)
            wh_diags_add(diags, path, 0, 0, "cannot compile the patterns: %s", wh_status_str(st));
    }
    uint64_t h = XXH3_64bits_digest(L.hash);
    snprintf(rs->hash, sizeof(rs->hash), "%016llx", (unsigned long long)h);
    if (diags->n != nd0) {
        st = WH_EINVAL; /* e.g. a pattern Hyperscan rejected while the database was built */
        goto fail;
    }
    st = WH_OK;
    *out = rs;
    rs = NULL;
fail:
    if (doc) fy_document_destroy(doc);
    free(text);
    for (uint32_t i = 0; i < L.nlists; i++) {
        free(L.lists[i].terms);
        free(L.lists[i].lines);
    }
    free(L.lists);
    free(L.specs);
    free(L.infos);
    free(L.groups);
    free(L.rules);
    XXH3_freeState(L.hash);
    if (rs) wh_ruleset_release(rs);
    if (st == WH_OK) return WH_OK;
    return st == WH_EINVAL || st == WH_OK ? WH_EINVAL : st;
}

void wh_ruleset_retain(wh_ruleset *rs)
{
    atomic_fetch_add(&rs->refs, 1);
}

void wh_ruleset_release(wh_ruleset *rs)
{
    if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1) return;
    wh_matcher_free(rs->matcher);
    for (uint32_t i = 0; i < rs->nmodels; i++)
        wh_model_release(rs->models[i].model);
    free(rs->groups);
    free(rs->pats);
    wh_arena_free(&rs->arena);
    free(rs);
}
