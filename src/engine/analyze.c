/* analyze.c - an event line to its analysis: decode, normalize, scan, features, sketch,
 * classifier scores (see engine.h). Stateless: any worker thread, any order. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

wh_decider *wh_worker_decider(wh_worker *w)
{
    if (!w->own) w->own = wh_decider_new(w->rs, &w->opts, 1);
    return w->own;
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

static void analyze_decoded(wh_worker *w, wh_arena *keep, uint32_t nshards, const wh_text *text,
                            wh_analysis *an);

static void analysis_init(wh_worker *w, wh_analysis *an)
{
    an->kind = WH_AN_EVENT;
    an->oom = an->exempt = an->truncated = false;
    an->group_hit = NULL;
    an->matches = NULL;
    an->nmatches = 0;
    an->scores = NULL;
    an->score_explain = WH_STR_NULL;
    memset(&an->sk, 0, sizeof(an->sk));
    an->f.nlinks = 0;
    wh_arena_reset(&w->arena);
}

void wh_analyze(wh_worker *w, const char *line, size_t len, uint64_t line_no, int64_t now_ms,
                wh_arena *keep, uint32_t nshards, wh_analysis *an)
{
    analysis_init(w, an);
    wh_decode_error err;
    if (!wh_event_decode(w->dec, line, len, keep, now_ms, &an->ev, &err)) {
        analysis_error(an, keep, &err, line_no);
        return;
    }
    analyze_decoded(w, keep, nshards, NULL, an);
}

void wh_analyze_event(wh_worker *w, const wh_event *ev, const wh_text *text, wh_arena *keep,
                      uint32_t nshards, wh_analysis *an)
{
    analysis_init(w, an);
    an->ev = *ev;
    analyze_decoded(w, keep, nshards, text, an);
}

/* The analysis of a decoded event (an->ev), with its text's views when the caller built them
 * (text), else built here in the worker's arena. */
static void analyze_decoded(wh_worker *w, wh_arena *keep, uint32_t nshards, const wh_text *text,
                            wh_analysis *an)
{
    wh_ruleset *rs = w->rs;
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
    if (text)
        t = *text;
    else if (wh_text_build(ev->text.p, ev->text.n, &w->arena, &t) != WH_OK) {
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
        wh_sketch_text_opt(t.v[WH_VIEW_SQUASHED].s, t.v[WH_VIEW_SQUASHED].len, rs->state.sim_from,
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
