/* pred_user.c - who the user is: account_age, first_message, reputation, strikes (see
 * pred.h, docs/rules.md). */
#include "pred.h"

#include <stdio.h>
#include <string.h>

static double age_value(const eval_ctx *c, const wh_cond *n)
{
    const wh_event *ev = &c->an->ev;
    return ev->created_at_ms == INT64_MIN ? -1 : (double)(c->now - ev->created_at_ms);
}

static bool age_holds(eval_ctx *c, const wh_cond *n)
{
    double age = age_value(c, n);
    return age >= 0 && wh_cmp_holds(n->cmp, age); /* unknown age: never */
}

static const wh_pred_eval eval_age = {
    .holds = age_holds, .feature = "account_age_s", .value = age_value, .show = WH_SHOW_SECONDS};

static double first_value(const eval_ctx *c, const wh_cond *n)
{
    return c->first;
}

static bool first_holds(eval_ctx *c, const wh_cond *n)
{
    return c->first >= 0 && (c->first == 1) == n->flag;
}

static const wh_pred_eval eval_first = {
    .holds = first_holds, .feature = "first_message", .value = first_value, .show = WH_SHOW_BOOL};

static double rep_value(const eval_ctx *c, const wh_cond *n)
{
    return c->user ? c->user->rep : 0;
}

static bool rep_holds(eval_ctx *c, const wh_cond *n)
{
    return wh_cmp_holds(n->cmp, rep_value(c, n));
}

static const wh_pred_eval eval_rep = {
    .holds = rep_holds, .feature = "reputation", .value = rep_value, .show = WH_SHOW_NUMBER};

static double strikes_value(const eval_ctx *c, const wh_cond *n)
{
    return wh_strikes_whole(c->strikes);
}

static bool strikes_holds(eval_ctx *c, const wh_cond *n)
{
    return wh_cmp_holds(n->cmp, strikes_value(c, n));
}

static const wh_pred_eval eval_strikes = {
    .holds = strikes_holds, .feature = "strikes", .value = strikes_value, .show = WH_SHOW_NUMBER};

/* ---- how the keys are read ---- */

static wh_cond *pred_cmp(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    char what[48];
    snprintf(what, sizeof(what), "'%s'", d->name);
    wh_cond *c = ld_new_cond(L, d->kind, m->key);
    return ld_parse_cmp(L, v, what, d->arg, &c->cmp) ? c : NULL;
}

static wh_cond *pred_first(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_FIRST, m->key);
    return ld_get_bool(L, v, "'first_message'", &c->flag) ? c : NULL;
}

const wh_pred_def wh_preds_user[] = {
    {"account_age", WH_C_AGE, PRED_STATE, CMP_DURATION, pred_cmp, &eval_age},
    {"first_message", WH_C_FIRST, PRED_STATE, 0, pred_first, &eval_first},
    {"reputation", WH_C_REP, PRED_STATE, CMP_SIGNED, pred_cmp, &eval_rep},
    {"strikes", WH_C_STRIKES, PRED_STATE, CMP_COUNT, pred_cmp, &eval_strikes},
    {NULL, 0, 0, 0, NULL, NULL},
};
