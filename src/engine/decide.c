/* decide.c - one analysed event against the state and the rules: the verdict, and its
 * consequences for the user and the channel (see engine.h, verdict.h). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

wh_decider *wh_decider_new(wh_ruleset *rs, const wh_engine_opts *opts, uint32_t nshards)
{
    wh_decider *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->rs = rs;
    wh_ruleset_retain(rs);
    if (opts) d->opts = *opts;
    wh_buf_init(&d->vb);
    uint32_t n = rs->nrules + 1;
    d->fired = calloc(n, 1);
    d->act = calloc(n, sizeof(wh_action));
    d->dur = calloc(n, sizeof(uint32_t));
    d->hits = calloc(n, sizeof(*d->hits));
    d->score_hist =
        calloc((size_t)rs->nscores * (WH_SCORE_BUCKETS + 1) + 1, sizeof(*d->score_hist));
    bool ok = d->fired && d->act && d->dur && d->hits && d->score_hist;
    if (ok && rs->state.enabled) {
        if (!nshards) nshards = 1;
        const wh_state_cfg *c = &rs->state;
        d->shard = wh_shard_new((c->max_users + nshards - 1) / nshards,
                                (c->max_channels + nshards - 1) / nshards, c->idle_ms);
        ok = d->shard != NULL;
    }
    if (!ok) {
        wh_decider_free(d);
        return NULL;
    }
    return d;
}

void wh_decider_free(wh_decider *d)
{
    if (!d) return;
    wh_shard_free(d->shard);
    free(d->fired);
    free(d->act);
    free(d->dur);
    free((void *)d->hits);
    free((void *)d->score_hist);
    wh_buf_free(&d->vb);
    wh_ruleset_release(d->rs);
    free(d);
}

uint64_t wh_decider_hits(const wh_decider *d, uint32_t rule)
{
    return rule < d->rs->nrules ? atomic_load_explicit(&d->hits[rule], memory_order_relaxed) : 0;
}

void wh_decider_score_hist(const wh_decider *d, uint32_t slot, uint64_t *counts,
                           uint64_t *sum_millionths)
{
    if (slot >= d->rs->nscores) return;
    const _Atomic uint64_t *h = d->score_hist + (size_t)slot * (WH_SCORE_BUCKETS + 1);
    for (int i = 0; i < WH_SCORE_BUCKETS; i++)
        counts[i] += atomic_load_explicit(&h[i], memory_order_relaxed);
    *sum_millionths += atomic_load_explicit(&h[WH_SCORE_BUCKETS], memory_order_relaxed);
}

wh_shard *wh_decider_shard(wh_decider *d)
{
    return d->shard;
}

void wh_decide_prefetch(const wh_decider *d, const wh_analysis *an, int stage)
{
    if (d->shard && an->kind == WH_AN_EVENT && !an->exempt)
        wh_shard_prefetch(d->shard, an->user_key, an->chan_key,
                          d->rs->state.need_wave ? an->sk.anchor : NULL, stage);
}

/* ---- output ---- */

void wh_write_line_error(wh_buf *out, uint64_t line_no, const char *code, const char *message)
{
    wh_buf_puts(out, "{\"id\":null,\"line\":");
    wh_buf_u64(out, line_no);
    wh_buf_puts(out, ",\"error\":{\"code\":\"");
    wh_buf_puts(out, code);
    wh_buf_puts(out, "\",\"message\":");
    wh_buf_json_str(out, message, strlen(message));
    wh_buf_puts(out, "}}\n");
}

/* The first surviving match of rule r, or NULL. */
static const wh_match *first_match(const wh_ruleset *rs, const wh_analysis *an, uint32_t r)
{
    for (uint32_t i = 0; i < an->nmatches; i++) {
        const wh_pattern_info *pi = &rs->pats[an->matches[i].pattern];
        if (pi->rule == r) return &an->matches[i];
    }
    return NULL;
}

/* The reason of rule ri, its placeholders filled, as text (not JSON) at the end of out. */
__attribute__((noinline)) static void write_reason(wh_buf *out, const wh_ruleset *rs, uint32_t ri,
                                                   const wh_analysis *an, wh_action act)
{
    const wh_event *ev = &an->ev;
    const wh_rule *r = &rs->rules[ri];
    const char *tmpl = r->reason ? r->reason : r->description ? r->description : r->id;
    const wh_match *m = first_match(rs, an, ri);
    for (const char *p = tmpl; *p; p++) {
        if (*p != '{') {
            wh_buf_putc(out, *p);
            continue;
        }
        const char *e = strchr(p, '}');
        if (!e) {
            wh_buf_putc(out, *p);
            continue;
        }
        size_t kl = (size_t)(e - p - 1);
        const char *k = p + 1;
#define IS(lit) (kl == sizeof(lit) - 1 && !memcmp(k, lit, kl))
        if (IS("rule"))
            wh_buf_puts(out, r->id);
        else if (IS("term"))
            wh_buf_puts(out, m ? rs->pats[m->pattern].source : "");
        else if (IS("match")) {
            if (m) wh_buf_append(out, ev->text.p + m->rs, m->re - m->rs);
        } else if (IS("view"))
            wh_buf_puts(out, m ? wh_view_names[m->view] : "");
        else if (IS("user"))
            wh_buf_append(out, ev->user_name.n ? ev->user_name.p : ev->user_id.p,
                          ev->user_name.n ? ev->user_name.n : ev->user_id.n);
        else if (IS("channel"))
            wh_buf_append(out, ev->channel.p, ev->channel.n);
        else if (IS("platform"))
            wh_buf_append(out, ev->platform.p, ev->platform.n);
        else if (IS("action"))
            wh_buf_puts(out, wh_action_names[act]);
        else {
            wh_buf_append(out, p, (size_t)(e - p + 1)); /* not a placeholder: keep it */
        }
#undef IS
        p = e;
    }
}

static int strength_cmp(wh_action a, uint32_t ad, wh_action b, uint32_t bd)
{
    if (a != b) return a > b ? 1 : -1;
    if (a == WH_ACT_TIMEOUT && ad != bd) return ad > bd ? 1 : -1;
    return 0;
}

static bool str_is(wh_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && !memcmp(s.p, lit, n);
}

/* A human moderator's action: strikes and reputation of the target in that channel. */
WH_COLD static void decide_mod_action(wh_decider *d, const wh_analysis *an, wh_verdict *v)
{
    const wh_event *ev = &an->ev;
    const wh_state_cfg *c = &d->rs->state;
    v->kind = WH_VK_MOD_ACTION;
    int64_t now = ev->ts_ms;
    if (str_is(ev->mod_action, "panic")) { /* the channel's switch: no target */
        wh_channel *ch = d->shard && d->rs->state.need_panic
                             ? wh_shard_channel(d->shard, an->chan_key, now, true)
                             : NULL;
        if (!ch) return; /* no rule looks at it (or out of memory): nothing to keep */
        int64_t for_s = ev->duration_s > WH_PANIC_MAX_S ? WH_PANIC_MAX_S : ev->duration_s;
        ch->panic_until = for_s > 0 ? now + for_s * 1000 : 0; /* absent or 0: off */
        v->has_panic = true;
        v->panic_until = ch->panic_until;
        return;
    }
    if (!d->shard || !ev->target.n) return;
    wh_user *u = wh_shard_user(d->shard, an->user_key, now, true);
    if (!u) return;
    wh_str a = ev->mod_action;
    if (str_is(a, "timeout"))
        wh_user_add_strikes(u, c, now, c->mod_weight[WH_MOD_TIMEOUT]);
    else if (str_is(a, "ban"))
        wh_user_add_strikes(u, c, now, c->mod_weight[WH_MOD_BAN]);
    else if (str_is(a, "warn"))
        wh_user_add_strikes(u, c, now, c->mod_weight[WH_MOD_WARN]);
    else if (str_is(a, "deny"))
        wh_user_add_strikes(u, c, now, c->mod_weight[WH_MOD_DENY]);
    else if (str_is(a, "approve")) {
        wh_user_add_strikes(u, c, now, -1); /* the hold it approves was a false positive */
        wh_user_add_rep(u, c, c->rep_approve);
    } else if (str_is(a, "unban")) {
        u->strikes = 0;
    }
    v->mod_target = ev->target;
    v->has_standing = true;
    v->standing_strikes = (uint64_t)wh_strikes_whole(wh_user_strikes(u, c, now));
    v->standing_rep = u->rep;
}

/* ---- the rarer parts of a decision, out of line ---- */

/* The first enforced rule (by priority) that switches a channel mode not already on. */
WH_COLD static void set_channel_action(wh_decider *d, wh_channel *ch, int64_t now, wh_verdict *v)
{
    const wh_ruleset *rs = d->rs;
    for (uint32_t ri = 0; ri < rs->nrules; ri++) {
        const wh_rule *r = &rs->rules[ri];
        if (d->fired[ri] != 1 || r->chan_mode < 0) continue;
        if (now < ch->mode_until[r->chan_mode]) continue;
        ch->mode_until[r->chan_mode] = now + (int64_t)r->chan_for_s * 1000;
        v->chan_mode = r->chan_mode;
        v->chan_for_s = r->chan_for_s;
        break;
    }
}

/* One more user the action reaches, copied into the verdict's buffer. */
static void add_target(wh_decider *d, const char *id, size_t n)
{
    if (d->ntargets == MAX_TARGETS) return;
    d->toff[d->ntargets] = (uint32_t)d->vb.len;
    d->tlen[d->ntargets++] = (uint32_t)n;
    wh_buf_append(&d->vb, id, n);
}

/* A wave completed: name everyone in it (only_counted: everyone whose message counted
 * toward it), so the action reaches the earlier senders. */
WH_COLD static void name_wave_targets(wh_decider *d, wh_wave_cluster *g, int64_t now,
                                      int64_t within, bool only_counted)
{
    g->reported = true;
    d->has_targets = true;
    for (uint32_t i = 0; i < g->n && d->ntargets < MAX_TARGETS; i++) {
        const wh_wave_member *m = &g->m[i];
        if (now - m->ts >= within || (only_counted && !m->counted)) continue;
        const char *id = wh_wave_member_id(m);
        add_target(d, id, strlen(id));
    }
}

/* A raid ends at a join that is not over its window; in GCRA mode, at one that found the
 * bucket full (a join under a refilling bucket is still part of the raid that emptied it). */
static bool raid_ended(const wh_channel *ch, const wh_rate_slot *sl, uint32_t slot, bool over,
                       int64_t now)
{
    if (over) return false;
    return !sl->gcra || ch->tat[slot] <= now * sl->count + sl->period_ms;
}

/* A join: which join rules' filters (their conditions with `joins` taken as holding, and
 * their scopes) the joiner matches, kept with the join so that the join that detects a raid
 * can name the earlier joiners of it; and a raid that ended (its window no longer over)
 * may name its joiners again next time. */
static void join_record(const wh_decider *d, eval_ctx *ctx, wh_channel *ch)
{
    const wh_ruleset *rs = d->rs;
    ctx->joins_assumed = true;
    uint64_t mask = 0, ended = 0;
    for (uint32_t ri = 0; ri < rs->nrules; ri++) {
        const wh_rule *r = &rs->rules[ri];
        if (r->join_bit >= WH_MAX_JOIN_RULES) continue;
        if (r->join_slot >= 0 &&
            raid_ended(ch, &rs->state.chan_slots[r->join_slot], (uint32_t)r->join_slot,
                       ctx->over_c[r->join_slot], ctx->now))
            ended |= 1ULL << r->join_bit;
        if ((!rs->gates[ri].scoped || rule_applies(r, &ctx->an->ev)) && wh_eval(ctx, r->when))
            mask |= 1ULL << r->join_bit;
    }
    ctx->joins_assumed = false;
    ctx->wave_true = false;
    ctx->wave_all = false;
    ctx->wave_within = 0;
    ctx->join_mask = mask;
    if (ch->x) ch->x->named &= ~ended;
}

/* A raid detected: name the earlier joiners of its window that matched the rule's filters,
 * oldest first, and this one, at most MAX_TARGETS. */
WH_COLD static void name_raid_targets(wh_decider *d, wh_channel *ch, const wh_rule *r,
                                      const eval_ctx *ctx, const wh_event *ev)
{
    wh_chan_ext *x = ch->x;
    const wh_rate_slot *sl = &d->rs->state.chan_slots[r->join_slot];
    wh_str me = user_identity(ev);
    x->named |= 1ULL << r->join_bit;
    d->has_targets = true;
    for (uint32_t i = 0; i < x->jn && d->ntargets < MAX_TARGETS - 1; i++) {
        const wh_joiner *e = &x->j[(x->jhead + x->jcap - x->jn + i) % x->jcap];
        const char *id = e->big ? e->big : e->id;
        size_t l = strlen(id);
        if (!(e->mask >> r->join_bit & 1) || !l || ctx->now - e->ts >= sl->period_ms) continue;
        if (l == me.n && !memcmp(id, me.p, l)) continue; /* joined before too: named last */
        add_target(d, id, l);
    }
    if (me.n) add_target(d, me.p, me.n);
}

/* Takes one from a GCRA cell; true when over the limit (the cell is then unchanged). */
static bool over_limit(int64_t *tat, const wh_rate_slot *sl, int64_t now)
{
    wh_gcra g = {*tat};
    wh_gcra_limit lim = {sl->period_ms, sl->count, sl->burst};
    wh_gcra_result r;
    wh_gcra_take(&g, &lim, now, 1, &r);
    *tat = g.tat;
    return !r.allowed;
}

const wh_verdict *wh_decide_verdict(wh_decider *d, const wh_analysis *an)
{
    const wh_ruleset *rs = d->rs;
    const wh_event *ev = &an->ev;
    const wh_state_cfg *cfg = &rs->state;
    wh_verdict *v = &d->v;
    memset(v, 0, sizeof(*v));
    v->rs = rs;
    v->an = an;
    v->explain = d->opts.explain;
    v->rule = -1;
    v->strike = -1;
    v->chan_mode = -1;
    v->fired = d->fired;
    v->act = d->act;
    v->action = WH_ACT_ALLOW;
    d->vb.len = 0;
    d->ntargets = 0;
    d->has_targets = false;
    bool is_msg = ev->type == WH_EV_MESSAGE, is_join = ev->type == WH_EV_JOIN;
    if (an->oom) { /* out of memory for one message: answer it rather than lose it */
        v->kind = WH_VK_OOM;
        return v;
    }
    if (ev->type == WH_EV_MOD_ACTION) { /* its roles are the moderator's: never exempt */
        decide_mod_action(d, an, v);
        return v;
    }
    if (an->exempt || (!is_msg && !(is_join && d->shard))) {
        v->kind = WH_VK_PASS;
        return v;
    }
    /* State first, the same whatever the rules then look at: every message counts in
     * every rate and repeat window, so no rule's short-circuit changes what is counted. */
    eval_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.an = an;
    ctx.rs = rs;
    ctx.cfg = cfg;
    ctx.now = ev->ts_ms;
    ctx.first = ev->first_message;
    wh_channel *ch = NULL;
    if (d->shard) {
        wh_str uid = user_identity(ev);
        if (an->user_key) /* a join reads what is known of the user, and leaves no record */
            ctx.user = wh_shard_user(d->shard, an->user_key, ctx.now, is_msg);
        if (ctx.user && is_join) {
            ctx.strikes = wh_user_strikes(ctx.user, cfg, ctx.now);
        } else if (ctx.user) {
            if (ctx.first < 0) ctx.first = ctx.user->first_ms == 0;
            ctx.strikes = wh_user_strikes(ctx.user, cfg, ctx.now);
            for (uint32_t i = 0; i < cfg->nuser_slots; i++) {
                const wh_rate_slot *sl = &cfg->user_slots[i];
                /* a window reads the log, which this message joins at the end */
                ctx.over_u[i] =
                    sl->gcra ? over_limit(&ctx.user->tat[i], sl, ctx.now)
                             : wh_user_window_over(ctx.user, sl->count, sl->period_ms, ctx.now);
            }
        }
        if (cfg->need_chan) ch = wh_shard_channel(d->shard, an->chan_key, ctx.now, true);
        ctx.chan = ch;
        if (ch) {
            wh_chan_ext *x = NULL;
            for (uint32_t i = 0; i < cfg->nchan_slots; i++) {
                const wh_rate_slot *sl = &cfg->chan_slots[i];
                if (sl->joins != is_join) continue;
                if (sl->gcra)
                    ctx.over_c[i] = over_limit(&ch->tat[i], sl, ctx.now);
                else if (x || (x = wh_chan_ext_get(ch)))
                    ctx.over_c[i] = wh_chan_window_take(x, i, sl, ctx.now);
            }
            if (is_join && cfg->njoin_rules && (x || (x = wh_chan_ext_get(ch))))
                join_record(d, &ctx, ch);
            if (is_msg && cfg->need_wave && an->sk.length >= cfg->wave_min_length) {
                ctx.wave_why = wh_wave_why(an, ctx.user, ctx.strikes, ctx.now);
                ctx.wave = wh_wave_observe(ch, cfg, an->user_key, uid, an->sk.sim, an->sk.anchor,
                                           ctx.wave_why != 0, ctx.now, &ctx.wave_sim);
            }
        }
    }
    /* Rules by priority; an allow rule stops lower priorities. */
    int64_t floor_p = INT64_MIN;
    bool floor_set = false;
    int32_t winner = -1;
    bool any_shadow = false, any_fired = false, want_targets = false, targets_all = false;
    uint32_t live_users = 0; /* a wave predicate held in a rule that fired: its largest users */
    int64_t targets_within = 0;
    int32_t raid_rule = -1; /* a join rule whose raid this decision names */
    for (uint32_t ri = 0; ri < rs->nrules; ri++) {
        const wh_rule_gate *gt = &rs->gates[ri];
        d->fired[ri] = 0;
        if (gt->on_join != is_join) continue;
        if (gt->req_group >= 0 && !(an->group_hit && an->group_hit[gt->req_group])) continue;
        if (gt->req_links && !an->f.nlinks) continue;
        const wh_rule *r = &rs->rules[ri];
        if (floor_set && r->priority < floor_p) continue;
        ctx.wave_true = false;
        ctx.wave_all = false;
        ctx.wave_users = 0;
        ctx.wave_within = 0;
        if ((gt->scoped && !rule_applies(r, ev)) || !wh_eval(&ctx, r->when)) continue;
        wh_action a = r->action;
        uint32_t dur = r->duration_s;
        if (r->escalate) {
            const wh_step *lad = r->ladder ? r->ladder : cfg->ladder;
            uint32_t n = r->ladder ? r->nladder : cfg->nladder;
            double s = wh_strikes_whole(ctx.strikes);
            uint32_t step = s >= n - 1 ? n - 1 : (uint32_t)s;
            a = (wh_action)lad[step].action;
            dur = lad[step].duration_s;
        }
        d->act[ri] = a;
        d->dur[ri] = dur;
        atomic_fetch_add_explicit(&d->hits[ri], 1, memory_order_relaxed);
        if (ctx.wave_true && ctx.wave_users > live_users) live_users = ctx.wave_users;
        if (r->shadow) {
            d->fired[ri] = 2;
            any_shadow = true;
            continue;
        }
        d->fired[ri] = 1;
        any_fired = true;
        if (ctx.wave_true && ctx.wave && !ctx.wave->reported) {
            want_targets = true;
            targets_all |= ctx.wave_all;
            if (ctx.wave_within > targets_within) targets_within = ctx.wave_within;
        }
        if (is_join && raid_rule < 0 && a != WH_ACT_ALLOW && r->join_bit < WH_MAX_JOIN_RULES &&
            r->join_slot >= 0 && ch && ch->x && ctx.over_c[r->join_slot] &&
            !(ch->x->named >> r->join_bit & 1))
            raid_rule = (int32_t)ri; /* the first firing with an action in a raid names it */
        if (a == WH_ACT_ALLOW && !floor_set && !r->implicit_allow) {
            floor_p = r->priority;
            floor_set = true;
        }
        if (winner < 0 || strength_cmp(a, dur, d->act[winner], d->dur[winner]) > 0)
            winner = (int32_t)ri;
    }
    const wh_rule *win = winner >= 0 ? &rs->rules[winner] : NULL;
    wh_action act = win ? d->act[winner] : WH_ACT_ALLOW;
    uint32_t act_dur = win ? d->dur[winner] : 0;
    /* What this decision does to the user (applied at the end, so that --explain shows
     * the state the rules saw): strikes for an enforced action. */
    double strike_after = -1;
    bool add_strike = ctx.user && act != WH_ACT_ALLOW && win->weight > 0;
    if (add_strike) strike_after = ctx.strikes + win->weight;
    v->action = act;
    v->rule = winner;
    v->duration_s = act == WH_ACT_TIMEOUT ? act_dur : 0;
    v->message = act == WH_ACT_WARN && win->message ? win->message : NULL;
    if (strike_after >= 0) v->strike = (int64_t)wh_strikes_whole(strike_after);
    if (any_fired) {
        for (uint32_t ri = 0; ri < rs->nrules; ri++)
            v->nfired += d->fired[ri] == 1;
        write_reason(&d->vb, rs, (uint32_t)winner, an, act); /* first in vb */
        v->reason.n = (uint32_t)d->vb.len;
    }
    if (an->scores) {
        for (uint32_t i = 0; i < rs->nscores; i++) {
            float sv = an->scores[i];
            if (!isfinite(sv)) continue;
            int b = (int)ceilf(sv * WH_SCORE_BUCKETS) - 1; /* Prometheus: v <= the bound */
            if (b >= WH_SCORE_BUCKETS) b = WH_SCORE_BUCKETS - 1;
            if (b < 0) b = 0;
            _Atomic uint64_t *h = d->score_hist + (size_t)i * (WH_SCORE_BUCKETS + 1);
            atomic_fetch_add_explicit(&h[b], 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h[WH_SCORE_BUCKETS], (uint64_t)(sv * 1e6f),
                                      memory_order_relaxed);
        }
    }
    if (ch && any_fired) set_channel_action(d, ch, ctx.now, v);
    if (ch && any_fired && ctx.now < ch->panic_until) {
        v->has_panic = true;
        v->panic_until = ch->panic_until;
    }
    if (want_targets) name_wave_targets(d, ctx.wave, ctx.now, targets_within, !targets_all);
    if (live_users && ctx.wave) wh_wave_mark_live(ch, ctx.wave, live_users, ctx.now);
    if (raid_rule >= 0) name_raid_targets(d, ch, &rs->rules[raid_rule], &ctx, ev);
    if (is_join && ch && ch->x && cfg->njoin_rules)
        wh_chan_remember_join(ch->x, cfg, user_identity(ev), ctx.join_mask, ctx.now);
    /* Matches of the rules that fired (enforced or shadow). */
    bool truncated = an->truncated;
    uint32_t reported = 0;
    for (uint32_t i = 0; i < an->nmatches; i++) {
        const wh_match *m = &an->matches[i];
        const wh_pattern_info *pi = &rs->pats[m->pattern];
        if (!d->fired[pi->rule]) continue;
        bool dup = false; /* the same span of the same rule from another term ("fuck", "fuck*") */
        for (uint32_t k = 0; k < i && !dup; k++) {
            const wh_match *o = &an->matches[k];
            dup = o->rs == m->rs && o->re == m->re && rs->pats[o->pattern].rule == pi->rule;
        }
        if (dup) continue;
        if (reported == MAX_REPORTED_MATCHES) {
            truncated = true; /* more to report than a decision carries */
            break;
        }
        d->vm[reported++] = (wh_verdict_match){pi->rule, m->pattern, m->view, m->rs, m->re};
    }
    v->matches = d->vm;
    v->nmatches = reported;
    v->matches_truncated = truncated;
    v->nshadow = any_shadow;
    size_t values_at = d->vb.len, state_at = values_at;
    if (d->opts.explain) {
        wh_explain_values(d->fired, &ctx, &d->vb);
        state_at = d->vb.len;
        if (ctx.user) wh_explain_state(&ctx, &d->vb);
    }
    /* the buffer has stopped growing: its pieces become strings */
    const char *vb = d->vb.p ? d->vb.p : "";
    v->reason.p = vb;
    v->explain_values = (wh_str){vb + values_at, (uint32_t)(state_at - values_at)};
    v->explain_state = (wh_str){vb + state_at, (uint32_t)(d->vb.len - state_at)};
    for (uint32_t i = 0; i < d->ntargets; i++)
        d->tstr[i] = (wh_str){vb + d->toff[i], d->tlen[i]};
    v->targets = d->tstr;
    v->ntargets = d->ntargets;
    v->has_targets = d->has_targets;
    if (d->vb.oom) { /* the strings could not all be kept: say less rather than wrong */
        v->reason.n = 0;
        v->explain_values.n = v->explain_state.n = 0;
        v->ntargets = 0;
    }
    /* Consequences for the user: strikes for an enforced action, reputation for an
     * ordinary message, and the message joins the user's recent ones. */
    if (ctx.user && is_join) {
        if (add_strike) wh_user_add_strikes(ctx.user, cfg, ctx.now, win->weight);
    } else if (ctx.user) {
        wh_user *u = ctx.user;
        if (add_strike) {
            wh_user_add_strikes(u, cfg, ctx.now, win->weight);
        } else if (!any_fired && (!u->rep_ms || ctx.now - u->rep_ms >= cfg->rep_interval_ms)) {
            wh_user_add_rep(u, cfg, cfg->rep_message);
            u->rep_ms = ctx.now;
        }
        if (cfg->need_log) wh_user_remember(u, cfg, an->sk.hash, an->sk.sim, ctx.now);
        if (!u->first_ms) u->first_ms = ctx.now ? ctx.now : 1;
        if (u->messages < UINT32_MAX) u->messages++;
    }
    return v;
}

wh_action wh_decide(wh_decider *d, const wh_analysis *an, wh_buf *out)
{
    const wh_verdict *v = wh_decide_verdict(d, an);
    wh_verdict_json(v, out);
    return v->action;
}
