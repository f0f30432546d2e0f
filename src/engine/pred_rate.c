/* pred_rate.c - rate and joins: over a limit of the user's messages or the channel's
 * messages or joins, counted when the decision began (see pred.h, docs/rules.md). */
#include "pred.h"

#include <inttypes.h>
#include <string.h>

static double over(const eval_ctx *c, const wh_cond *n)
{
    return n->chan_scope ? c->over_c[n->slot] : c->over_u[n->slot];
}

static bool rate_holds(eval_ctx *c, const wh_cond *n)
{
    return over(c, n) != 0;
}

static const wh_pred_eval eval_rate = {
    .holds = rate_holds, .feature = "rate", .value = over, .show = WH_SHOW_BOOL};

/* A join rule's filters are its other conditions with `joins` taken as holding (see
 * join_record in decide.c). */
static bool joins_holds(eval_ctx *c, const wh_cond *n)
{
    return c->joins_assumed || over(c, n) != 0;
}

static const wh_pred_eval eval_joins = {
    .holds = joins_holds, .feature = "joins", .value = over, .show = WH_SHOW_BOOL};

/* ---- how the keys are read ---- */

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
    wh_cond *c = ld_new_cond(L, joins ? WH_C_JOINS : WH_C_RATE, kn);
    if (!ld_map_start(L, n,
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
            ok &= ld_get_number(L, v, "'count'", 1, WH_RATE_MAX_COUNT, true, &x);
            rs.count = (int64_t)x;
        } else if (!strcmp(k, "per")) {
            have_per = true;
            ok &= ld_get_duration(L, v, "'per'", 1, &rs.period_ms);
            if (ok && rs.period_ms > WH_RATE_MAX_PERIOD_MS) {
                ERR(L, v, "'per' is at most 366d");
                ok = false;
            }
        } else if (!strcmp(k, "burst")) {
            burst_n = v;
            ok &= ld_get_number(L, v, "'burst'", 1, WH_RATE_MAX_COUNT, true, &burst);
        } else if (!strcmp(k, "mode")) {
            static const char *const modes[] = {"window", "gcra", NULL};
            int i = 0;
            ok &= ld_get_choice(L, v, "mode", modes, &i);
            rs.gcra = i == 1;
        } else if (!strcmp(k, "scope") && !joins) {
            static const char *const scopes[] = {"user", "channel", NULL};
            int i = 0;
            ok &= ld_get_choice(L, v, "scope", scopes, &i);
            c->chan_scope = i == 1;
        } else {
            ld_unknown_key(L, k_n, k, joins ? jkeys : keys, what);
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

static wh_cond *pred_rate(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_rate(L, m->key, v, d->kind == WH_C_JOINS);
}

const wh_pred_def wh_preds_rate[] = {
    {"rate", WH_C_RATE, PRED_STATE, 0, pred_rate, &eval_rate},
    {"joins", WH_C_JOINS, PRED_STATE, 0, pred_rate, &eval_joins},
    {NULL, 0, 0, 0, NULL, NULL},
};
