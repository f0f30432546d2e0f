/* preds.c - the conditions of a rule's `when`: the combinators (all, any, not) and the
 * lookup of a condition map's keys over the predicate families (loader.h; each family's rows,
 * parsers and meaning are in src/engine/pred_*.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "text/utf8.h"

static const struct wh_pred_eval *eval_of(wh_cond_kind kind);

wh_cond *ld_new_cond(ld_t *L, wh_cond_kind kind, struct fy_node *n)
{
    wh_cond *c = wh_arena_alloc(L->a, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->eval = eval_of(kind);
    c->line = wh_yaml_line(n);
    c->col = wh_yaml_col(n);
    return c;
}

static wh_cond *parse_cond_list(ld_t *L, struct fy_node *n, wh_cond_kind kind, int depth)
{
    wh_cond *c = ld_new_cond(L, kind, n);
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
        ERR(L, n, "'%s' must be a list of conditions", kind == WH_C_ALL ? "all" : "any");
        return c;
    }
    int cnt = fy_node_sequence_item_count(n);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    void *it = NULL;
    struct fy_node *x;
    while ((x = fy_node_sequence_iterate(n, &it))) {
        wh_cond *k = ld_parse_cond(L, x, depth + 1);
        if (k) c->kids[c->nkids++] = k;
    }
    return c;
}

/* ---- the predicates: one row each ----
 *
 * A condition map's keys are looked up in the families' rows: the name, the condition kind
 * it makes, what it needs (state, a matcher), how its value is parsed and what it means when
 * deciding. The list of known keys and "did you mean" come from the same rows; docs/rules.md
 * has every key. */

static wh_cond *pred_list(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_cond_list(L, v, d->kind, m->depth);
}

static wh_cond *pred_not(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *kid = ld_parse_cond(L, v, m->depth + 1);
    if (!kid) return NULL;
    wh_cond *c = ld_new_cond(L, WH_C_NOT, m->key);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *));
    c->kids[0] = kid;
    c->nkids = 1;
    return c;
}

static const wh_pred_def combinators[] = {
    {"all", WH_C_ALL, 0, 0, pred_list, NULL},
    {"any", WH_C_ANY, 0, 0, pred_list, NULL},
    {"not", WH_C_NOT, 0, 0, pred_not, NULL},
    {NULL, 0, 0, 0, NULL, NULL},
};

/* Every key a condition map can have: the combinators, then each family's rows. A new
 * family is one line here. */
static const wh_pred_def *const families[] = {combinators,     wh_preds_text, wh_preds_rate,
                                              wh_preds_repeat, wh_preds_user, wh_preds_score,
                                              wh_preds_channel};

static const wh_pred_def *pred_find(const char *name)
{
    for (size_t f = 0; f < WH_ARRAY_LEN(families); f++)
        for (const wh_pred_def *d = families[f]; d->name; d++)
            if (!strcmp(name, d->name)) return d;
    return NULL;
}

/* What a condition of this kind means when deciding: the first row of the kind that says. */
static const struct wh_pred_eval *eval_of(wh_cond_kind kind)
{
    for (size_t f = 0; f < WH_ARRAY_LEN(families); f++)
        for (const wh_pred_def *d = families[f]; d->name; d++)
            if (d->kind == kind && d->eval) return d->eval;
    return NULL;
}

static void unknown_pred(ld_t *L, struct fy_node *kn, const char *k)
{
    const char *known[64];
    size_t n = 0;
    for (size_t f = 0; f < WH_ARRAY_LEN(families); f++)
        for (const wh_pred_def *d = families[f]; d->name && n < WH_ARRAY_LEN(known) - 1; d++)
            known[n++] = d->name;
    known[n] = NULL;
    ld_unknown_key(L, kn, k, known, "a condition");
}

wh_cond *ld_parse_cond(ld_t *L, struct fy_node *n, int depth)
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
            ld_parse_terms(L, fy_node_pair_value(pr), 0, m.permit, "'unless_words'");
        } else if (kl == 4 && !memcmp(k, "view", 4)) {
            ld_parse_view(L, fy_node_pair_value(pr), &m.dview);
        }
    }
    int cnt = fy_node_mapping_item_count(n);
    wh_cond *all = ld_new_cond(L, WH_C_ALL, n);
    all->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    bool has_matcher = false;
    it = NULL;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = ld_scalar(L, kn, "a key");
        if (!k) continue;
        const wh_pred_def *d = pred_find(k);
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

const wh_cond *ld_message_only(const wh_cond *c)
{
    if (!c) return NULL;
    switch (c->kind) {
    case WH_C_ALL:
    case WH_C_ANY:
    case WH_C_NOT:
        for (uint32_t i = 0; i < c->nkids; i++) {
            const wh_cond *m = ld_message_only(c->kids[i]);
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
int ld_join_slot_of(const wh_cond *c)
{
    if (!c) return -1;
    if (c->kind == WH_C_JOINS) return (int)c->slot;
    for (uint32_t i = 0; i < c->nkids; i++) {
        int s = ld_join_slot_of(c->kids[i]);
        if (s >= 0) return s;
    }
    return -1;
}

bool ld_has_kind(const wh_cond *c, wh_cond_kind k)
{
    if (!c) return false;
    if (c->kind == k) return true;
    for (uint32_t i = 0; i < c->nkids; i++)
        if (ld_has_kind(c->kids[i], k)) return true;
    return false;
}
