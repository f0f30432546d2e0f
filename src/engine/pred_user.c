/* pred_user.c - who the user is: account_age, first_message, reputation, strikes (see
 * pred.h, docs/rules.md). */
#include "pred.h"

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

const wh_pred_eval wh_pred_age = {
    .holds = age_holds, .feature = "account_age_s", .value = age_value, .show = WH_SHOW_SECONDS};

static double first_value(const eval_ctx *c, const wh_cond *n)
{
    return c->first;
}

static bool first_holds(eval_ctx *c, const wh_cond *n)
{
    return c->first >= 0 && (c->first == 1) == n->flag;
}

const wh_pred_eval wh_pred_first = {
    .holds = first_holds, .feature = "first_message", .value = first_value, .show = WH_SHOW_BOOL};

static double rep_value(const eval_ctx *c, const wh_cond *n)
{
    return c->user ? c->user->rep : 0;
}

static bool rep_holds(eval_ctx *c, const wh_cond *n)
{
    return wh_cmp_holds(n->cmp, rep_value(c, n));
}

const wh_pred_eval wh_pred_rep = {
    .holds = rep_holds, .feature = "reputation", .value = rep_value, .show = WH_SHOW_NUMBER};

static double strikes_value(const eval_ctx *c, const wh_cond *n)
{
    return wh_strikes_whole(c->strikes);
}

static bool strikes_holds(eval_ctx *c, const wh_cond *n)
{
    return wh_cmp_holds(n->cmp, strikes_value(c, n));
}

const wh_pred_eval wh_pred_strikes = {
    .holds = strikes_holds, .feature = "strikes", .value = strikes_value, .show = WH_SHOW_NUMBER};
