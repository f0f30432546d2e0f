/* pred_channel.c - what a moderator switched on for the whole channel: panic (see pred.h,
 * docs/rules.md "panic").
 *
 * A moderator's panic switch (a `mod_action` event with action `panic` and `duration_s`,
 * POST /v1/channels/CHANNEL/panic) sets the channel's panic_until in event time; `panic: true`
 * holds for the channel's events before then, so a ruleset can define the stricter preset the
 * switch turns on (as Twitch's Shield Mode does by hand). The switch lives in the channel's
 * state: it is decided in order with the channel's events, snapshotted, and replays alike. */
#include "pred.h"

static bool panicking(const eval_ctx *c)
{
    return c->chan && c->now < c->chan->panic_until;
}

static double panic_value(const eval_ctx *c, const wh_cond *n)
{
    return panicking(c);
}

static bool panic_holds(eval_ctx *c, const wh_cond *n)
{
    return panicking(c) == n->flag;
}

static const wh_pred_eval eval_panic = {
    .holds = panic_holds, .feature = "panic", .value = panic_value, .show = WH_SHOW_BOOL};

/* ---- how the key is read ---- */

static wh_cond *pred_panic(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_PANIC, m->key);
    if (!ld_get_bool(L, v, "'panic'", &c->flag)) return NULL;
    L->rs->state.need_panic = true; /* the channel entry keeps the switch */
    return c;
}

const wh_pred_def wh_preds_channel[] = {
    {"panic", WH_C_PANIC, PRED_STATE, 0, pred_panic, &eval_panic},
    {NULL, 0, 0, 0, NULL, NULL},
};
