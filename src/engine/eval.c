/* eval.c - the conditions of a rule against an analysed event and the state (see
 * internal.h), and what --explain says of them. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- features ---- */

static uint32_t count_emotes(const wh_event *ev)
{
    if (ev->meta_emotes_is_array) return ev->meta_emotes.n;
    /* Twitch tag: "25:0-4,12-16/1902:6-10": one occurrence per range. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < ev->meta_emotes.n; i++)
        n += ev->meta_emotes.p[i] == '-';
    return n;
}

static double feature(const wh_features *x, const wh_event *ev, wh_feature_id f)
{
    switch (f) {
    case WH_F_LENGTH:
        return x->length;
    case WH_F_LETTERS:
        return x->letters;
    case WH_F_CAPS_RATIO:
        return x->letters ? (double)x->upper / x->letters : 0;
    case WH_F_SYMBOL_RATIO:
        return x->length ? (double)x->symbols / x->length : 0;
    case WH_F_REPEATED:
        return x->max_run;
    case WH_F_ZALGO:
        return x->marks;
    case WH_F_MENTIONS:
        return x->mentions;
    case WH_F_EMOTES:
        return count_emotes(ev);
    case WH_F_NON_LATIN_RATIO:
        return x->letters ? (double)x->non_latin / x->letters : 0;
    case WH_F_LINKS:
        return x->nlinks;
    case WH_F__COUNT:
        break;
    }
    return 0;
}

static bool host_in(const wh_hostset *hs, wh_str host)
{
    for (uint32_t i = 0; i < hs->n; i++) {
        size_t l = strlen(hs->hosts[i]);
        if (host.n == l && !memcmp(host.p, hs->hosts[i], l)) return true;
        if (host.n > l && host.p[host.n - l - 1] == '.' &&
            !memcmp(host.p + host.n - l, hs->hosts[i], l))
            return true;
    }
    return false;
}

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

static double state_value(const eval_ctx *c, const wh_cond *n)
{
    const wh_event *ev = &c->an->ev;
    switch (n->kind) {
    case WH_C_DUP:
        if (!c->user || !c->an->sk.hash) return 0;
        return 1 + wh_user_count_dup(c->user, c->an->sk.hash, c->now, n->within_ms);
    case WH_C_SIMILAR:
        if (!c->user || !c->an->sk.length) return 0;
        return 1 +
               wh_user_count_similar(c->user, c->an->sk.sim, n->threshold, c->now, n->within_ms);
    case WH_C_WAVE:
        /* by default only a message that counts itself can complete or continue a wave */
        if (!c->wave || c->an->sk.length < n->min_length || c->wave_sim < n->threshold - 1e-9 ||
            (!n->flag && !c->wave_why))
            return 0;
        return wh_wave_count(c->wave, c->now, n->within_ms, !n->flag);
    case WH_C_AGE:
        return ev->created_at_ms == INT64_MIN ? -1 : (double)(c->now - ev->created_at_ms);
    case WH_C_REP:
        return c->user ? c->user->rep : 0;
    case WH_C_STRIKES:
        return wh_strikes_whole(c->strikes);
    case WH_C_FIRST:
        return c->first;
    case WH_C_RATE:
    case WH_C_JOINS:
        return n->chan_scope ? c->over_c[n->slot] : c->over_u[n->slot];
    default:
        return 0;
    }
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
    case WH_C_MATCH:
        return c->an->group_hit && c->an->group_hit[n->group] != 0;
    case WH_C_NUM:
        return wh_cmp_holds(n->cmp, feature(&c->an->f, &c->an->ev, n->feat));
    case WH_C_LINKS: {
        const wh_features *f = &c->an->f;
        if (n->has_count && !wh_cmp_holds(n->cmp, f->nlinks)) return false;
        if (!n->has_allow && !n->has_deny) return true;
        uint32_t kept = f->nlinks < WH_MAX_LINKS ? f->nlinks : WH_MAX_LINKS;
        for (uint32_t i = 0; i < kept; i++) {
            wh_str h = f->links[i].host;
            if (n->has_deny && host_in(&n->deny, h)) return true;
            if (n->has_allow && !host_in(&n->allow, h)) return true;
        }
        return false;
    }
    case WH_C_JOINS:
        if (c->joins_assumed) return true;
        return state_value(c, n) != 0;
    case WH_C_RATE:
        return state_value(c, n) != 0;
    case WH_C_DUP:
    case WH_C_SIMILAR:
        return state_value(c, n) >= n->count;
    case WH_C_WAVE: {
        /* `users` in the window, or a known wave still live: a predicate held for it less
         * than `within` ago (with as many `users` or more), and this message matches it */
        double v = state_value(c, n);
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
    case WH_C_AGE: {
        double age = state_value(c, n);
        return age >= 0 && wh_cmp_holds(n->cmp, age);
    }
    case WH_C_FIRST:
        return c->first >= 0 && (c->first == 1) == n->flag;
    case WH_C_REP:
    case WH_C_STRIKES:
        return wh_cmp_holds(n->cmp, state_value(c, n));
    case WH_C_SCORE:
        return c->an->scores && wh_cmp_holds(n->cmp, c->an->scores[n->slot]);
    }
    return false;
}

static const char *const state_names[] = {
    [WH_C_RATE] = "rate",      [WH_C_DUP] = "duplicate",     [WH_C_SIMILAR] = "similar",
    [WH_C_WAVE] = "wave",      [WH_C_AGE] = "account_age_s", [WH_C_FIRST] = "first_message",
    [WH_C_REP] = "reputation", [WH_C_STRIKES] = "strikes",   [WH_C_JOINS] = "joins"};

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
    if (n->kind == WH_C_SCORE) {
        const char *sn = c->rs->score_names[n->slot];
        wh_buf_puts(out, "score\",\"model\":");
        wh_buf_json_str(out, sn, strlen(sn));
        wh_buf_puts(out, ",\"value\":");
        wh_json_score(out, c->an->scores[n->slot]);
    } else if (n->kind == WH_C_NUM || n->kind == WH_C_LINKS) {
        wh_feature_id f = n->kind == WH_C_NUM ? n->feat : WH_F_LINKS;
        wh_buf_puts(out, wh_feature_names[f]);
        wh_buf_puts(out, "\",\"value\":");
        wh_json_double(out, feature(&c->an->f, &c->an->ev, f));
        const wh_features *ft = &c->an->f;
        if (f == WH_F_LINKS && ft->nlinks) {
            wh_buf_puts(out, ",\"hosts\":[");
            uint32_t kept = ft->nlinks < WH_MAX_LINKS ? ft->nlinks : WH_MAX_LINKS;
            for (uint32_t i = 0; i < kept; i++) {
                if (i) wh_buf_putc(out, ',');
                wh_buf_json_str(out, ft->links[i].host.p, ft->links[i].host.n);
            }
            wh_buf_putc(out, ']');
        }
    } else {
        wh_buf_puts(out, state_names[n->kind]);
        wh_buf_puts(out, "\",\"value\":");
        double v = state_value(c, n);
        if (n->kind == WH_C_AGE) v = floor(v / 1000);
        if (n->kind == WH_C_RATE || n->kind == WH_C_JOINS || n->kind == WH_C_FIRST)
            wh_buf_puts(out, v != 0 ? "true" : "false");
        else
            wh_json_double(out, v);
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
