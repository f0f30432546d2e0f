/* eval.c - the conditions of a rule against an analysed event and the state: the
 * combinators, and each predicate through its row (pred.h); what --explain says of them. */
#include "pred.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- conditions ---- */

const char *const wh_wave_why_names[5] = {"links", "mentions", "fresh_account", "new_here",
                                          "low_reputation"};
#define WAVE_FRESH_MS (7LL * 86400000) /* an account younger than a week is fresh */
#define WAVE_KNOWN_MESSAGES 3          /* known here: at least 3 earlier messages ... */
#define WAVE_KNOWN_MS (10LL * 60000)   /* ... the first of them 10 minutes ago or more */

/* The reasons (WAVE_WHY_*) this message counts toward a wave by default; 0: an established
 * chatter's plain message. Known here: whiply saw WAVE_KNOWN_MESSAGES earlier messages of
 * the user in the channel over WAVE_KNOWN_MS, or the platform says it is not their first. */
uint32_t wh_wave_why(const wh_analysis *an, const wh_user *u, double strikes, int64_t now)
{
    const wh_event *ev = &an->ev;
    uint32_t why = 0;
    if (an->f.nlinks) why |= WAVE_WHY_LINKS;
    if (an->f.mentions) why |= WAVE_WHY_MENTIONS;
    if (ev->created_at_ms != INT64_MIN && now - ev->created_at_ms < WAVE_FRESH_MS)
        why |= WAVE_WHY_FRESH;
    bool known = ev->first_message == 0 ||
                 (u && u->messages >= WAVE_KNOWN_MESSAGES && now - u->first_ms >= WAVE_KNOWN_MS);
    if (!known) why |= WAVE_WHY_NEW;
    if (u && (u->rep < 0 || wh_strikes_whole(strikes) >= 1)) why |= WAVE_WHY_REP;
    return why;
}

bool wh_eval(eval_ctx *c, const wh_cond *n)
{
    switch (n->kind) {
    case WH_C_ALL:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (!wh_eval(c, n->kids[i])) return false;
        return true;
    case WH_C_ANY:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (wh_eval(c, n->kids[i])) return true;
        return false;
    case WH_C_NOT:
        return !wh_eval(c, n->kids[0]);
    case WH_C_MATCH: /* the most common: no call */
        return c->an->group_hit && c->an->group_hit[n->group] != 0;
    default:
        return n->eval->holds(c, n);
    }
}

static void explain_features(wh_buf *out, const wh_cond *n, eval_ctx *c, const char *rule,
                             bool *first)
{
    if (n->kind == WH_C_NOT) return;
    if (n->kind == WH_C_ALL || n->kind == WH_C_ANY) {
        for (uint32_t i = 0; i < n->nkids; i++)
            explain_features(out, n->kids[i], c, rule, first);
        return;
    }
    if (n->kind == WH_C_MATCH) return;
    bool wt = c->wave_true, wa = c->wave_all;
    int64_t ww = c->wave_within;
    uint32_t wu = c->wave_users;
    bool holds = wh_eval(c, n);
    c->wave_true = wt, c->wave_all = wa, c->wave_within = ww; /* explaining changes nothing */
    c->wave_users = wu;
    if (!holds) return;
    wh_buf_puts(out, *first ? "" : ",");
    *first = false;
    wh_buf_puts(out, "{\"rule\":");
    wh_buf_json_str(out, rule, strlen(rule));
    wh_buf_puts(out, ",\"feature\":\"");
    const wh_pred_eval *p = n->eval;
    if (p->explain) {
        p->explain(out, c, n);
    } else {
        wh_buf_puts(out, p->feature);
        wh_buf_puts(out, "\",\"value\":");
        double v = p->value(c, n);
        if (p->show == WH_SHOW_BOOL)
            wh_buf_puts(out, v != 0 ? "true" : "false");
        else
            wh_json_double(out, p->show == WH_SHOW_SECONDS ? floor(v / 1000) : v);
    }
    wh_buf_putc(out, '}');
}

/* --explain: values of the predicates that held, against the state before this event, as
 * the elements of the decision's "matches" array that follow the spans (comma-separated). */
WH_COLD void wh_explain_values(const uint8_t *fired, eval_ctx *ctx, wh_buf *out)
{
    const wh_ruleset *rs = ctx->rs;
    bool first = true;
    for (uint32_t ri = 0; ri < rs->nrules; ri++)
        if (fired[ri]) explain_features(out, rs->rules[ri].when, ctx, rs->rules[ri].id, &first);
}

/* Whether this message counted toward a wave by default, and why (or why not). */
WH_COLD static void write_explain_wave(const eval_ctx *ctx, wh_buf *out)
{
    const wh_state_cfg *cfg = ctx->cfg;
    wh_buf_puts(out, ",\"wave\":{\"counted\":");
    if (ctx->an->sk.length < cfg->wave_min_length) {
        wh_buf_puts(out, "false,\"because\":[\"shorter_than_min_length\"],\"length\":");
        wh_buf_u64(out, ctx->an->sk.length);
        wh_buf_putc(out, '}');
        return;
    }
    wh_buf_puts(out, ctx->wave_why ? "true,\"because\":[" : "false,\"because\":[");
    if (!ctx->wave_why) {
        /* the reasons it would have needed, all absent */
        wh_buf_puts(out, "\"known_here\",\"no_links_or_mentions\",\"account_not_fresh\","
                         "\"reputation_not_low\"");
    }
    bool f = true;
    for (uint32_t i = 0; i < sizeof(wh_wave_why_names) / sizeof(wh_wave_why_names[0]); i++) {
        if (!(ctx->wave_why >> i & 1)) continue;
        if (!f) wh_buf_putc(out, ',');
        f = false;
        wh_buf_putc(out, '"');
        wh_buf_puts(out, wh_wave_why_names[i]);
        wh_buf_putc(out, '"');
    }
    wh_buf_putc(out, ']');
    if (ctx->wave) {
        /* the group: users with a similar message within the longest window, all and counted */
        wh_buf_puts(out, ",\"similarity\":");
        wh_json_double(out, ctx->wave_sim);
        wh_buf_puts(out, ",\"users\":");
        wh_buf_u64(out, wh_wave_count(ctx->wave, ctx->now, cfg->wave_within_ms, false));
        wh_buf_puts(out, ",\"users_counted\":");
        wh_buf_u64(out, wh_wave_count(ctx->wave, ctx->now, cfg->wave_within_ms, true));
        /* a known wave: a predicate held for it; when last (ms before this message) */
        if (ctx->wave->live_ms) {
            wh_buf_puts(out, ",\"known_wave_ms_ago\":");
            wh_buf_u64(
                out, (uint64_t)(ctx->now > ctx->wave->live_ms ? ctx->now - ctx->wave->live_ms : 0));
        }
    }
    wh_buf_putc(out, '}');
}

WH_COLD void wh_explain_state(const eval_ctx *ctx, wh_buf *out)
{
    wh_buf_puts(out, ",\"state\":{");
    wh_buf_puts(out, "\"strikes\":");
    wh_json_double(out, ctx->strikes);
    wh_buf_puts(out, ",\"reputation\":");
    wh_json_double(out, ctx->user->rep);
    wh_buf_puts(out, ",\"messages\":");
    wh_buf_u64(out, ctx->user->messages);
    if (ctx->cfg->need_wave && ctx->an->ev.type == WH_EV_MESSAGE) write_explain_wave(ctx, out);
    wh_buf_putc(out, '}');
}
