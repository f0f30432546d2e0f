/* pred_repeat.c - duplicate, similar (a user repeating a text, exactly or nearly) and wave
 * (many users posting one text) (see pred.h, docs/rules.md). */
#include "pred.h"

static double dup_value(const eval_ctx *c, const wh_cond *n)
{
    if (!c->user || !c->an->sk.hash) return 0;
    return 1 + wh_user_count_dup(c->user, c->an->sk.hash, c->now, n->within_ms);
}

static bool dup_holds(eval_ctx *c, const wh_cond *n)
{
    return dup_value(c, n) >= n->count;
}

const wh_pred_eval wh_pred_dup = {
    .holds = dup_holds, .feature = "duplicate", .value = dup_value, .show = WH_SHOW_NUMBER};

static double similar_value(const eval_ctx *c, const wh_cond *n)
{
    if (!c->user || !c->an->sk.length) return 0;
    return 1 + wh_user_count_similar(c->user, c->an->sk.sim, n->threshold, c->now, n->within_ms);
}

static bool similar_holds(eval_ctx *c, const wh_cond *n)
{
    return similar_value(c, n) >= n->count;
}

const wh_pred_eval wh_pred_similar = {
    .holds = similar_holds, .feature = "similar", .value = similar_value, .show = WH_SHOW_NUMBER};

/* The users of the message's group within the window; by default only a message that
 * counts itself can complete or continue a wave. */
static double wave_value(const eval_ctx *c, const wh_cond *n)
{
    if (!c->wave || c->an->sk.length < n->min_length || c->wave_sim < n->threshold - 1e-9 ||
        (!n->flag && !c->wave_why))
        return 0;
    return wh_wave_count(c->wave, c->now, n->within_ms, !n->flag);
}

/* `users` in the window, or a known wave still live: a predicate held for it less than
 * `within` ago (with as many `users` or more), and this message matches it. Holding marks
 * the decision as naming the wave's members (decide.c). */
static bool wave_holds(eval_ctx *c, const wh_cond *n)
{
    double v = wave_value(c, n);
    const wh_wave_cluster *g = c->wave;
    bool live =
        v > 0 && g->live_ms && c->now - g->live_ms < n->within_ms && n->count <= g->live_users;
    if (v < n->count && !live) return false;
    c->wave_true = true;
    c->wave_all |= n->flag;
    if (n->count > c->wave_users) c->wave_users = n->count;
    if (n->within_ms > c->wave_within) c->wave_within = n->within_ms;
    return true;
}

const wh_pred_eval wh_pred_wave = {
    .holds = wave_holds, .feature = "wave", .value = wave_value, .show = WH_SHOW_NUMBER};
