/* pred_rate.c - rate and joins: over a limit of the user's messages or the channel's
 * messages or joins, counted when the decision began (see pred.h, docs/rules.md). */
#include "pred.h"

static double over(const eval_ctx *c, const wh_cond *n)
{
    return n->chan_scope ? c->over_c[n->slot] : c->over_u[n->slot];
}

static bool rate_holds(eval_ctx *c, const wh_cond *n)
{
    return over(c, n) != 0;
}

const wh_pred_eval wh_pred_rate = {
    .holds = rate_holds, .feature = "rate", .value = over, .show = WH_SHOW_BOOL};

/* A join rule's filters are its other conditions with `joins` taken as holding (see
 * join_record in decide.c). */
static bool joins_holds(eval_ctx *c, const wh_cond *n)
{
    return c->joins_assumed || over(c, n) != 0;
}

const wh_pred_eval wh_pred_joins = {
    .holds = joins_holds, .feature = "joins", .value = over, .show = WH_SHOW_BOOL};
