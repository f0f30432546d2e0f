/* pred_repeat.c - duplicate, similar (a user repeating a text, exactly or nearly) and wave
 * (many users posting one text) (see pred.h, docs/rules.md). */
#include "pred.h"

#include <stdio.h>
#include <string.h>

static double dup_value(const eval_ctx *c, const wh_cond *n)
{
    if (!c->user || !c->an->sk.hash) return 0;
    return 1 + wh_user_count_dup(c->user, c->an->sk.hash, c->now, n->within_ms);
}

static bool dup_holds(eval_ctx *c, const wh_cond *n)
{
    return dup_value(c, n) >= n->count;
}

static const wh_pred_eval eval_dup = {
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

static const wh_pred_eval eval_similar = {
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

static const wh_pred_eval eval_wave = {
    .holds = wave_holds, .feature = "wave", .value = wave_value, .show = WH_SHOW_NUMBER};

/* ---- how the keys are read ---- */

#define WH_MAX_RECENT_COUNT 8 /* similar: sketches of the last 8 messages (WH_RECENT) */
#define WH_MAX_WAVE_USERS 256

/* duplicate: {count, within}; similar: {count, within, threshold};
 * wave: {users, within, threshold, min_length, from} */
static wh_cond *parse_repeat(ld_t *L, struct fy_node *kn, struct fy_node *n, wh_cond_kind kind)
{
    const char *what = kind == WH_C_DUP       ? "'duplicate'"
                       : kind == WH_C_SIMILAR ? "'similar'"
                                              : "'wave'";
    wh_cond *c = ld_new_cond(L, kind, kn);
    if (!ld_map_start(L, n,
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
                ok &= ld_get_uint(L, v, "'users'", 2, WH_MAX_WAVE_USERS, &c->count);
            else
                ok &= ld_get_uint(L, v, "'count'", 2, WH_MAX_RECENT_COUNT, &c->count);
        } else if (!strcmp(k, "within")) {
            have_within = true;
            ok &= ld_get_duration(L, v, "'within'", 1, &c->within_ms);
        } else if (!strcmp(k, "threshold") && kind != WH_C_DUP) {
            ok &= ld_get_number(L, v, "'threshold'", 0.5, 1, false, &x);
            c->threshold = x;
        } else if (!strcmp(k, "min_length") && kind == WH_C_WAVE) {
            ok &= ld_get_uint(L, v, "'min_length'", 1, 1000, &c->min_length);
        } else if (!strcmp(k, "from") && kind == WH_C_WAVE) {
            /* suspects (the default): only messages of fresh, unknown or low-reputation
             * accounts, or with links or mentions, count; everyone: every message */
            static const char *const from[] = {"suspects", "everyone", NULL};
            int i = 0;
            ok &= ld_get_choice(L, v, "'from'", from, &i);
            c->flag = i == 1;
        } else {
            ld_unknown_key(L, k_n, k,
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

static wh_cond *pred_repeat(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_repeat(L, m->key, v, d->kind);
}

const wh_pred_def wh_preds_repeat[] = {
    {"duplicate", WH_C_DUP, PRED_STATE, 0, pred_repeat, &eval_dup},
    {"similar", WH_C_SIMILAR, PRED_STATE, 0, pred_repeat, &eval_similar},
    {"wave", WH_C_WAVE, PRED_STATE, 0, pred_repeat, &eval_wave},
    {NULL, 0, 0, 0, NULL, NULL},
};
