/* engine.c - the analysis and the decision of one event (see engine.h). */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Paths most events never take are kept out of line, so that the per-event code stays small
 * in the instruction cache (which Hyperscan's code needs too). */
#define WH_COLD __attribute__((cold, noinline))

#define MAX_MATCHES 256
#define MAX_REPORTED_MATCHES WH_VERDICT_MAX_MATCHES
#define MAX_TARGETS WH_VERDICT_MAX_TARGETS

struct wh_worker {
    wh_ruleset *rs;
    wh_engine_opts opts;
    wh_decoder *dec;
    wh_arena arena; /* per event: the text views */
    wh_arena keep;  /* per event, for wh_worker_line */
    wh_match_scratch *ms;
    wh_match matches[MAX_MATCHES];
    wh_ml_fv fv;     /* classifier features */
    wh_decider *own; /* wh_worker_line's decider (made on first use) */
};

struct wh_decider {
    wh_ruleset *rs;
    wh_engine_opts opts;
    wh_shard *shard;        /* NULL when the ruleset keeps no state */
    uint8_t *fired;         /* per rule: 0 no, 1 enforced, 2 shadow */
    wh_action *act;         /* per rule: the action it takes (its ladder step when it escalates) */
    uint32_t *dur;          /* per rule: timeout seconds */
    _Atomic uint64_t *hits; /* per rule: times it fired (enforced or shadow), for metrics */
    _Atomic uint64_t *score_hist; /* per score slot: WH_SCORE_BUCKETS counts, then the sum of
                                     scores in millionths, for metrics */
    /* the last verdict and what it points to */
    wh_verdict v;
    wh_buf vb; /* the reason, the targets' ids, the --explain fragments */
    wh_verdict_match vm[MAX_REPORTED_MATCHES];
    uint32_t toff[MAX_TARGETS], tlen[MAX_TARGETS], ntargets; /* targets, as offsets in vb */
    bool has_targets;
    wh_str tstr[MAX_TARGETS];
};

wh_worker *wh_worker_new(wh_ruleset *rs, const wh_engine_opts *opts)
{
    wh_worker *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->rs = rs;
    wh_ruleset_retain(rs);
    if (opts) w->opts = *opts;
    wh_arena_init(&w->arena, 256 * 1024);
    wh_arena_init(&w->keep, 16 * 1024);
    w->dec = wh_decoder_new();
    if (w->dec && w->opts.max_depth) wh_decoder_set_max_depth(w->dec, w->opts.max_depth);
    w->ms = rs->matcher ? wh_match_scratch_new(rs->matcher) : NULL;
    if (!w->dec || (rs->matcher && !w->ms)) {
        wh_worker_free(w);
        return NULL;
    }
    return w;
}

void wh_worker_free(wh_worker *w)
{
    if (!w) return;
    wh_decoder_free(w->dec);
    wh_match_scratch_free(w->ms);
    wh_arena_free(&w->arena);
    wh_arena_free(&w->keep);
    wh_ml_fv_free(&w->fv);
    wh_decider_free(w->own);
    wh_ruleset_release(w->rs);
    free(w);
}

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

wh_decider *wh_worker_decider(wh_worker *w)
{
    if (!w->own) w->own = wh_decider_new(w->rs, &w->opts, 1);
    return w->own;
}

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

/* Why a message counts toward a wave by default (`from: suspects`): a chorus of established
 * chatters ("LETS GOOO", "happy birthday") is not a spam wave; a burst of fresh or unknown
 * accounts with one text, or one text carrying links or mentions, is. One row a reason, in
 * the order --explain lists them. */
enum {
    WAVE_WHY_LINKS = 1u << 0,
    WAVE_WHY_MENTIONS = 1u << 1,
    WAVE_WHY_FRESH = 1u << 2,
    WAVE_WHY_NEW = 1u << 3,
    WAVE_WHY_REP = 1u << 4,
};
static const char *const wave_why_names[] = {"links", "mentions", "fresh_account", "new_here",
                                             "low_reputation"};
#define WAVE_FRESH_MS (7LL * 86400000) /* an account younger than a week is fresh */
#define WAVE_KNOWN_MESSAGES 3          /* known here: at least 3 earlier messages ... */
#define WAVE_KNOWN_MS (10LL * 60000)   /* ... the first of them 10 minutes ago or more */

/* The reasons (WAVE_WHY_*) this message counts toward a wave by default; 0: an established
 * chatter's plain message. Known here: whiply saw WAVE_KNOWN_MESSAGES earlier messages of
 * the user in the channel over WAVE_KNOWN_MS, or the platform says it is not their first. */
static uint32_t wave_why(const wh_analysis *an, const wh_user *u, double strikes, int64_t now)
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

typedef struct {
    const wh_analysis *an;
    const wh_ruleset *rs;
    const wh_state_cfg *cfg;
    int64_t now;
    wh_user *user;  /* NULL: no state or no user identity */
    double strikes; /* active strikes before this event */
    int first;      /* first message in the channel: 1, 0, or -1 unknown */
    bool over_u[WH_USER_SLOTS], over_c[WH_CHAN_SLOTS];
    wh_wave_cluster *wave; /* the group of similar messages this one joined, or NULL */
    double wave_sim;
    bool wave_true;      /* set by a wave predicate that held */
    bool wave_all;       /* ... and one of them counts everyone (`from: everyone`) */
    uint32_t wave_users; /* ... the largest `users` of them */
    int64_t wave_within;
    uint32_t wave_why;  /* why this message counts toward a wave by default (WAVE_WHY_*), 0: not */
    bool joins_assumed; /* `joins` holds: a join rule's other conditions (its filters) alone */
    uint64_t join_mask; /* join rules whose filters this join matched (wh_rule.join_bit) */
} eval_ctx;

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

static bool eval(eval_ctx *c, const wh_cond *n)
{
    switch (n->kind) {
    case WH_C_ALL:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (!eval(c, n->kids[i])) return false;
        return true;
    case WH_C_ANY:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (eval(c, n->kids[i])) return true;
        return false;
    case WH_C_NOT:
        return !eval(c, n->kids[0]);
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
    bool holds = eval(c, n);
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

/* (inlined: it runs for most rules of most events, and join_record calls it too) */
static inline __attribute__((always_inline)) bool rule_applies(const wh_rule *r, const wh_event *ev)
{
    if (r->platforms.n && !wh_strset_has(&r->platforms, ev->platform)) return false;
    if (r->channels.n && !wh_strset_has(&r->channels, ev->channel)) return false;
    if (r->roles.n) {
        bool any = false;
        for (uint32_t i = 0; i < ev->nroles && !any; i++)
            any = wh_strset_has(&r->roles, ev->roles[i]);
        if (!any) return false;
    }
    for (uint32_t i = 0; i < ev->nroles; i++)
        if (wh_strset_has(&r->exempt_roles, ev->roles[i])) return false;
    return true;
}

static int strength_cmp(wh_action a, uint32_t ad, wh_action b, uint32_t bd)
{
    if (a != b) return a > b ? 1 : -1;
    if (a == WH_ACT_TIMEOUT && ad != bd) return ad > bd ? 1 : -1;
    return 0;
}

static wh_str user_identity(const wh_event *ev)
{
    return ev->user_id.n ? ev->user_id : ev->user_name;
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
    if (!d->shard || !ev->target.n) return;
    int64_t now = ev->ts_ms;
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

/* --explain: values of the predicates that held, against the state before this event, as
 * the elements of the decision's "matches" array that follow the spans (comma-separated). */
WH_COLD static void write_explain_values(const wh_decider *d, eval_ctx *ctx, wh_buf *out)
{
    const wh_ruleset *rs = d->rs;
    bool first = true;
    for (uint32_t ri = 0; ri < rs->nrules; ri++)
        if (d->fired[ri]) explain_features(out, rs->rules[ri].when, ctx, rs->rules[ri].id, &first);
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
    for (uint32_t i = 0; i < sizeof(wave_why_names) / sizeof(wave_why_names[0]); i++) {
        if (!(ctx->wave_why >> i & 1)) continue;
        if (!f) wh_buf_putc(out, ',');
        f = false;
        wh_buf_putc(out, '"');
        wh_buf_puts(out, wave_why_names[i]);
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

WH_COLD static void write_explain_state(const eval_ctx *ctx, wh_buf *out)
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
        if ((!rs->gates[ri].scoped || rule_applies(r, &ctx->an->ev)) && eval(ctx, r->when))
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
                ctx.wave_why = wave_why(an, ctx.user, ctx.strikes, ctx.now);
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
        if ((gt->scoped && !rule_applies(r, ev)) || !eval(&ctx, r->when)) continue;
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
        write_explain_values(d, &ctx, &d->vb);
        state_at = d->vb.len;
        if (ctx.user) write_explain_state(&ctx, &d->vb);
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

/* ---- analysis ---- */

WH_COLD static void analysis_error(wh_analysis *an, wh_arena *keep, const wh_decode_error *err,
                                   uint64_t line_no)
{
    wh_buf b;
    wh_buf_init(&b);
    wh_buf_puts(&b, "{\"id\":");
    if (err->id.n)
        wh_buf_json_str(&b, err->id.p, err->id.n);
    else
        wh_buf_puts(&b, "null");
    wh_buf_puts(&b, ",\"line\":");
    wh_buf_u64(&b, line_no);
    wh_buf_puts(&b, ",\"error\":{\"code\":\"");
    wh_buf_puts(&b, err->code);
    wh_buf_puts(&b, "\",\"message\":");
    wh_buf_json_str(&b, err->message, strlen(err->message));
    wh_buf_puts(&b, "}}\n");
    an->kind = WH_AN_ERROR;
    char *p = b.len ? wh_arena_strndup(keep, b.p, b.len) : NULL;
    an->pre = (wh_str){p ? p : "", p ? (uint32_t)b.len : 0};
    wh_buf_free(&b);
}

/* ---- classifiers ---- */

#define EXPLAIN_TOP 8

typedef struct {
    const char *name;
    uint32_t len, bucket, kind;
} named_feat;

typedef struct {
    named_feat *v;
    uint32_t n, cap;
    wh_arena *a;
    bool oom;
} named_list;

static void collect_named(void *ud, uint32_t bucket, unsigned kind, const char *name, size_t n)
{
    named_list *l = ud;
    if (l->oom) return;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 64;
        named_feat *v = wh_arena_alloc(l->a, sizeof(named_feat) * cap);
        if (!v) {
            l->oom = true;
            return;
        }
        if (l->n) memcpy(v, l->v, sizeof(named_feat) * l->n);
        l->v = v;
        l->cap = cap;
    }
    char *s = wh_arena_strndup(l->a, name, n);
    if (!s) {
        l->oom = true;
        return;
    }
    l->v[l->n++] = (named_feat){s, (uint32_t)n, bucket, kind};
}

static int named_cmp(const void *a, const void *b)
{
    const named_feat *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct {
    uint32_t i; /* into the distinct names */
    float w;
} contrib;

static int contrib_cmp(const void *a, const void *b)
{
    float x = fabsf(((const contrib *)a)->w), y = fabsf(((const contrib *)b)->w);
    if (x != y) return x < y ? 1 : -1;
    return (((const contrib *)a)->i > ((const contrib *)b)->i) -
           (((const contrib *)a)->i < ((const contrib *)b)->i);
}

/* --explain: the features that weighed most in each score, by |weight x value|. */
WH_COLD static bool explain_model(wh_worker *w, const wh_rmodel *rm, const wh_text *t, wh_buf *out)
{
    named_list l = {.a = &w->arena};
    if (!wh_ml_featurize_named(wh_model_fcfg(rm->model), t, &w->fv, collect_named, &l) || l.oom)
        return false;
    if (l.n) qsort(l.v, l.n, sizeof(named_feat), named_cmp);
    uint32_t nd = 0; /* distinct names, with their counts */
    uint32_t *cnt = wh_arena_alloc(&w->arena, sizeof(uint32_t) * (l.n ? l.n : 1));
    contrib *c = wh_arena_alloc(&w->arena, sizeof(contrib) * (l.n ? l.n : 1));
    if (!cnt || !c) return false;
    for (uint32_t i = 0; i < l.n; i++) {
        if (nd && !named_cmp(&l.v[nd - 1], &l.v[i])) {
            cnt[nd - 1]++;
            continue;
        }
        l.v[nd] = l.v[i];
        cnt[nd++] = 1;
    }
    uint32_t nl = wh_model_nlabels(rm->model);
    for (uint32_t lab = 0; lab < nl; lab++) {
        for (uint32_t i = 0; i < nd; i++)
            c[i] = (contrib){i, wh_model_weight(rm->model, l.v[i].bucket, lab) *
                                    (1 + logf((float)cnt[i])) * w->fv.kscale[l.v[i].kind]};
        if (nd) qsort(c, nd, sizeof(contrib), contrib_cmp);
        if (out->len) wh_buf_putc(out, ',');
        const char *sn = w->rs->score_names[rm->slot0 + lab];
        wh_buf_json_str(out, sn, strlen(sn));
        wh_buf_puts(out, ":[");
        for (uint32_t k = 0; k < nd && k < EXPLAIN_TOP; k++) {
            if (k) wh_buf_putc(out, ',');
            wh_buf_puts(out, "{\"feature\":");
            wh_buf_json_str(out, l.v[c[k].i].name, l.v[c[k].i].len);
            wh_buf_printf(out, ",\"weight\":%.4g}", (double)c[k].w);
        }
        wh_buf_putc(out, ']');
    }
    return true;
}

/* Every model's scores of a message (features computed once per feature setting). */
static bool score_text(wh_worker *w, const wh_text *t, wh_arena *keep, wh_analysis *an)
{
    const wh_ruleset *rs = w->rs;
    an->scores = wh_arena_alloc(keep, sizeof(float) * rs->nscores);
    if (!an->scores) return false;
    const wh_ml_fcfg *done = NULL;
    for (uint32_t i = 0; i < rs->nmodels; i++) {
        const wh_rmodel *rm = &rs->models[i];
        const wh_ml_fcfg *f = wh_model_fcfg(rm->model);
        if (!done || memcmp(done, f, sizeof(*f))) {
            if (!wh_ml_featurize(f, t, &w->fv)) return false;
            done = f;
        }
        wh_model_score_fv(rm->model, &w->fv, an->scores + rm->slot0);
    }
    if (w->opts.explain) {
        wh_buf b;
        wh_buf_init(&b);
        bool ok = true;
        for (uint32_t i = 0; i < rs->nmodels && ok; i++)
            ok = explain_model(w, &rs->models[i], t, &b);
        char *p = ok && b.len ? wh_arena_strndup(keep, b.p, b.len) : NULL;
        if (p) an->score_explain = (wh_str){p, (uint32_t)b.len};
        wh_buf_free(&b);
    }
    return true;
}

void wh_analyze(wh_worker *w, const char *line, size_t len, uint64_t line_no, int64_t now_ms,
                wh_arena *keep, uint32_t nshards, wh_analysis *an)
{
    wh_ruleset *rs = w->rs;
    an->kind = WH_AN_EVENT;
    an->oom = an->exempt = an->truncated = false;
    an->group_hit = NULL;
    an->matches = NULL;
    an->nmatches = 0;
    an->scores = NULL;
    an->score_explain = WH_STR_NULL;
    memset(&an->sk, 0, sizeof(an->sk));
    an->f.nlinks = 0;
    wh_decode_error err;
    wh_arena_reset(&w->arena);
    if (!wh_event_decode(w->dec, line, len, keep, now_ms, &an->ev, &err)) {
        analysis_error(an, keep, &err, line_no);
        return;
    }
    const wh_event *ev = &an->ev;
    /* Without state every shard decides alike: no need to hash the channel. */
    an->chan_key = rs->state.enabled ? wh_chan_key(ev->platform, ev->channel) : 0;
    an->shard = rs->state.enabled ? wh_shard_of(an->chan_key, nshards ? nshards : 1) : 0;
    an->user_key = 0;
    if (rs->state.enabled) {
        wh_str who = ev->type == WH_EV_MOD_ACTION ? ev->target : user_identity(ev);
        if (who.n) an->user_key = wh_user_key(an->chan_key, who);
    }
    for (uint32_t i = 0; i < ev->nroles && !an->exempt; i++)
        an->exempt = wh_strset_has(&rs->exempt_roles, ev->roles[i]);
    if (ev->type != WH_EV_MESSAGE || an->exempt) return;
    wh_text t;
    if (wh_text_build(ev->text.p, ev->text.n, &w->arena, &t) != WH_OK) {
        an->oom = true;
        return;
    }
    an->f = t.f;
    uint32_t kept = t.f.nlinks < WH_MAX_LINKS ? t.f.nlinks : WH_MAX_LINKS;
    for (uint32_t i = 0; i < kept; i++) { /* the views go with the event arena */
        char *h = wh_arena_strndup(keep, t.f.links[i].host.p, t.f.links[i].host.n);
        an->f.links[i].host = (wh_str){h ? h : "", h ? t.f.links[i].host.n : 0};
    }
    if (rs->nmodels && !score_text(w, &t, keep, an)) {
        an->oom = true;
        return;
    }
    /* The SimHash serves `similar` (every message) and waves (only messages of min_length) */
    if (rs->state.need_hash || rs->state.need_sim)
        wh_sketch_text_opt(t.v[WH_VIEW_SQUASHED].s, t.v[WH_VIEW_SQUASHED].len,
                           !rs->state.need_sim      ? UINT32_MAX
                           : rs->state.need_similar ? 0
                                                    : rs->state.wave_min_length,
                           &an->sk);
    if (!rs->matcher) return;
    /* Scan, then let permitted terms cancel the blocked matches they cover. */
    uint32_t nm = wh_matcher_scan(rs->matcher, w->ms, &t, w->matches, MAX_MATCHES, &an->truncated);
    uint32_t nc;
    const uint32_t *conf = wh_match_confirmed(w->ms, &nc);
    if (!nc && !nm) return;
    an->group_hit = wh_arena_alloc(keep, rs->ngroups + 1);
    an->matches = nm ? wh_arena_alloc(keep, sizeof(wh_match) * nm) : NULL;
    if (!an->group_hit || (nm && !an->matches)) {
        an->oom = true;
        return;
    }
    memset(an->group_hit, 0, rs->ngroups + 1);
    for (uint32_t i = 0; i < nc; i++)
        an->group_hit[rs->pats[conf[i]].group] = 1;
    if (nm) memcpy(an->matches, w->matches, sizeof(wh_match) * nm);
    an->nmatches = nm;
}

wh_outcome wh_worker_line(wh_worker *w, const char *line, size_t len, uint64_t line_no,
                          int64_t now_ms, wh_buf *out)
{
    wh_outcome oc = {false, WH_ACT_ALLOW};
    wh_decider *d = wh_worker_decider(w);
    wh_arena_reset(&w->keep);
    wh_analysis an;
    wh_analyze(w, line, len, line_no, now_ms, &w->keep, 1, &an);
    if (an.kind == WH_AN_ERROR || !d) {
        if (an.kind == WH_AN_ERROR)
            wh_buf_append(out, an.pre.p, an.pre.n);
        else
            wh_write_line_error(out, line_no, "internal", "out of memory");
        oc.error = true;
        return oc;
    }
    oc.action = wh_decide(d, &an, out);
    return oc;
}
