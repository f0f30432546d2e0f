/* lists.c - lists (inline and from files) and the patterns of words and regex (see
 * loader.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "loader.h"
#include "text/utf8.h"

/* ---- lists ---- */

list_t *ld_find_list(ld_t *L, const char *name)
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

void ld_parse_lists(ld_t *L, struct fy_node *n)
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
        char *name = ld_scalar(L, k, "a list name");
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
                char *kk = ld_scalar(L, fy_node_pair_key(p2), "a key");
                if (!kk) continue;
                if (!strcmp(kk, "file")) {
                    char *f = ld_scalar(L, fy_node_pair_value(p2), "'file'");
                    if (f) load_list_file(L, l, fy_node_pair_value(p2), f);
                } else {
                    ld_unknown_key(L, fy_node_pair_key(p2), kk, keys, "a list");
                }
            }
        } else {
            seq_iter si;
            if (!ld_seq_start(L, v, "a list", &si)) continue;
            struct fy_node *x;
            while ((x = ld_seq_next(&si))) {
                char *s = ld_scalar(L, x, "a list item");
                if (s) list_push(L, l, s, strlen(s), wh_yaml_line(x), &cap);
            }
        }
    }
}

/* ---- patterns ---- */

uint32_t ld_new_group(ld_t *L, int32_t permit_set)
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

void ld_parse_terms(ld_t *L, struct fy_node *n, uint32_t group, int32_t permit_set,
                    const char *what)
{
    seq_iter it;
    if (!ld_seq_start(L, n, what, &it)) return;
    struct fy_node *x;
    while ((x = ld_seq_next(&it))) {
        char *t = ld_scalar(L, x, "a term");
        if (!t) continue;
        if (t[0] == '@') {
            list_t *l = ld_find_list(L, t + 1);
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
    char *msg = wh_regex_check(re, view, false); /* Hyperscan's verdict: see on_pattern_error */
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

bool ld_parse_view(ld_t *L, struct fy_node *n, wh_view_id *out)
{
    char *v = ld_scalar(L, n, "'view'");
    if (!v) return false;
    if (wh_view_from_name(v, strlen(v), out)) return true;
    ERR(L, n, "unknown view '%s' (expected raw, folded, skeleton or squashed)", v);
    return false;
}

void ld_parse_regexes(ld_t *L, struct fy_node *n, wh_view_id dview, uint32_t group,
                      int32_t permit_set)
{
    seq_iter it;
    if (n && fy_node_get_type(n) == FYNT_MAPPING) {
        memset(&it, 0, sizeof(it));
        it.single = n;
    } else if (!ld_seq_start(L, n, "'regex'", &it)) {
        return;
    }
    struct fy_node *x;
    static const char *const keys[] = {"pattern", "view", NULL};
    while ((x = ld_seq_next(&it))) {
        if (fy_node_get_type(x) == FYNT_MAPPING) {
            wh_view_id view = dview;
            char *pat = NULL;
            struct fy_node *pn = x;
            void *i2 = NULL;
            struct fy_node_pair *pr;
            while ((pr = fy_node_mapping_iterate(x, &i2))) {
                char *k = ld_scalar(L, fy_node_pair_key(pr), "a key");
                if (!k) continue;
                if (!strcmp(k, "pattern")) {
                    pn = fy_node_pair_value(pr);
                    pat = ld_scalar(L, pn, "'pattern'");
                } else if (!strcmp(k, "view")) {
                    ld_parse_view(L, fy_node_pair_value(pr), &view);
                } else {
                    ld_unknown_key(L, fy_node_pair_key(pr), k, keys, "a regex");
                }
            }
            if (!pat) {
                ERR(L, x, "a regex item needs 'pattern'");
                continue;
            }
            add_regex(L, pn, pat, view, group, permit_set);
        } else {
            char *pat = ld_scalar(L, x, "a regex");
            if (pat) add_regex(L, x, pat, dview, group, permit_set);
        }
    }
}

/* A comparison: "> 0.7", ">= 5", "< -5", "< 7d" (CMP_DURATION: the value in ms), or a bare
 * value (meaning >=). */
