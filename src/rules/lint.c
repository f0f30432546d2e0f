/* lint.c - reachability: rules that can never fire, reported as problems (see
 * loader.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "text/utf8.h"

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
        if (!ld_is_ratio(c->feat)) { /* counts are whole numbers: "> 5" is ">= 6" */
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
        ivs[f] = (interval){0, ld_is_ratio((wh_feature_id)f) ? 1 : INFINITY, false, false};
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
int32_t ld_required_group(const wh_cond *c)
{
    if (!c) return -1;
    if (c->kind == WH_C_MATCH) return (int32_t)c->group;
    if (c->kind == WH_C_ALL)
        for (uint32_t i = 0; i < c->nkids; i++) {
            int32_t g = ld_required_group(c->kids[i]);
            if (g >= 0) return g;
        }
    return -1;
}

/* True when c cannot hold on a message with no links (a `links` predicate that 0 fails,
 * required by every branch of an `all`). */
bool ld_requires_links(const wh_cond *c)
{
    if (!c) return false;
    if (c->kind == WH_C_LINKS)
        return c->has_allow || c->has_deny || (c->has_count && !wh_cmp_holds(c->cmp, 0));
    if (c->kind == WH_C_ALL)
        for (uint32_t i = 0; i < c->nkids; i++)
            if (ld_requires_links(c->kids[i])) return true;
    return false;
}

int ld_rule_cmp(const void *a, const void *b)
{
    const wh_rule *x = a, *y = b;
    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

void ld_check_reachability(ld_t *L, wh_rule *sorted, uint32_t n)
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
