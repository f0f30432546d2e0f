/* api.c - the public API of include/whiply/whiply.h over the engine.
 *
 * An engine decides one line at a time with its worker's own decider (one shard: all the
 * state of the engine in one place). Until the next line it keeps a copy of the line (the
 * analysis points into it), the analysis and the verdict (the decision JSON is encoded from
 * them when asked for) and the copies a whiply_verdict points to: that is how long whiply.h
 * promises the verdict's strings live, whatever the caller does with its buffer meanwhile. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "engine.h"
#include "whiply/whiply.h"

_Static_assert(WHIPLY_ACTION_ALLOW == (int)WH_ACT_ALLOW && WHIPLY_ACTION_WARN == (int)WH_ACT_WARN &&
                   WHIPLY_ACTION_HOLD == (int)WH_ACT_HOLD &&
                   WHIPLY_ACTION_DELETE == (int)WH_ACT_DELETE &&
                   WHIPLY_ACTION_TIMEOUT == (int)WH_ACT_TIMEOUT &&
                   WHIPLY_ACTION_BAN == (int)WH_ACT_BAN && WH_ACT__COUNT == 6,
               "whiply_action mirrors wh_action");

struct whiply_opts {
    char *cache_dir;
    bool explain;
    int max_depth; /* 0: the decoder's default */
};

struct whiply_engine {
    wh_ruleset *rs;
    wh_worker *w;
    wh_engine_opts eo;
    /* the last line: its analysis (the verdict points into it), the arena holding what the
     * analysis keeps and the verdict's copies, and its decision JSON once asked for */
    wh_buf line;
    wh_arena keep;
    wh_analysis an;
    bool decided;        /* a line was decided since the engine was made */
    const wh_verdict *v; /* the last line's verdict; NULL when it was not an event */
    wh_buf out;
    bool out_ready;
};

/* ---- version, status, options ---- */

const char *whiply_version(void)
{
    return WHIPLY_VERSION;
}

static const char *const status_text[] = {
    [WHIPLY_OK] = "success",
    [WHIPLY_ERULES] = "the rules do not load",
    [WHIPLY_ENOMEM] = "out of memory",
    [WHIPLY_EINVAL] = "invalid argument",
};

const char *whiply_strerror(whiply_status st)
{
    unsigned i = (unsigned)st;
    if (i >= WH_ARRAY_LEN(status_text) || !status_text[i]) return "unknown status";
    return status_text[i];
}

const char *whiply_action_name(whiply_action a)
{
    unsigned i = (unsigned)a;
    return i < WH_ACT__COUNT ? wh_action_names[i] : NULL;
}

whiply_opts *whiply_opts_new(void)
{
    return calloc(1, sizeof(whiply_opts));
}

void whiply_opts_free(whiply_opts *o)
{
    if (!o) return;
    free(o->cache_dir);
    free(o);
}

whiply_status whiply_opts_set_cache_dir(whiply_opts *o, const char *dir)
{
    if (!o) return WHIPLY_EINVAL;
    char *d = NULL;
    if (dir && !(d = strdup(dir))) return WHIPLY_ENOMEM;
    free(o->cache_dir);
    o->cache_dir = d;
    return WHIPLY_OK;
}

whiply_status whiply_opts_set_explain(whiply_opts *o, int explain)
{
    if (!o) return WHIPLY_EINVAL;
    o->explain = explain != 0;
    return WHIPLY_OK;
}

whiply_status whiply_opts_set_max_depth(whiply_opts *o, int depth)
{
    if (!o || depth < 2 || depth > WH_MAX_DEPTH) return WHIPLY_EINVAL;
    o->max_depth = depth;
    return WHIPLY_OK;
}

/* ---- engines ---- */

static whiply_status make(wh_ruleset *rs, const wh_engine_opts *eo, whiply_engine **out)
{
    whiply_engine *e = calloc(1, sizeof(*e));
    if (!e) return WHIPLY_ENOMEM;
    e->rs = rs;
    wh_ruleset_retain(rs);
    e->eo = *eo;
    e->w = wh_worker_new(rs, eo);
    wh_buf_init(&e->line);
    wh_arena_init(&e->keep, 16 * 1024);
    wh_buf_init(&e->out);
    if (!e->w) {
        whiply_engine_close(e);
        return WHIPLY_ENOMEM;
    }
    *out = e;
    return WHIPLY_OK;
}

static whiply_status open_rules(const char *rules_path, const char *cache_dir,
                                const wh_engine_opts *eo, whiply_engine **out, char **diagnostics)
{
    if (!rules_path || !out) return WHIPLY_EINVAL;
    *out = NULL;
    if (diagnostics) *diagnostics = NULL;
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts lo = {.cache_dir = cache_dir, .compile = true};
    if (wh_ruleset_load(rules_path, &lo, &d, &rs) != WH_OK) {
        if (diagnostics) *diagnostics = wh_diags_text(&d);
        wh_diags_free(&d);
        return WHIPLY_ERULES;
    }
    wh_diags_free(&d);
    whiply_status st = make(rs, eo, out);
    wh_ruleset_release(rs);
    return st;
}

whiply_status whiply_engine_open_opts(const char *rules_path, const whiply_opts *opts,
                                      whiply_engine **out, char **diagnostics)
{
    wh_engine_opts eo = {.explain = opts && opts->explain, .max_depth = opts ? opts->max_depth : 0};
    return open_rules(rules_path, opts ? opts->cache_dir : NULL, &eo, out, diagnostics);
}

whiply_status whiply_engine_open(const char *rules_path, const whiply_options *opts,
                                 whiply_engine **out, char **diagnostics)
{
    wh_engine_opts eo = {.explain = opts && opts->explain};
    return open_rules(rules_path, opts ? opts->cache_dir : NULL, &eo, out, diagnostics);
}

whiply_status whiply_engine_clone(const whiply_engine *e, whiply_engine **out)
{
    if (!e || !out) return WHIPLY_EINVAL;
    return make(e->rs, &e->eo, out);
}

void whiply_engine_close(whiply_engine *e)
{
    if (!e) return;
    wh_worker_free(e->w);
    wh_ruleset_release(e->rs);
    wh_buf_free(&e->line);
    wh_arena_free(&e->keep);
    wh_buf_free(&e->out);
    free(e);
}

void whiply_free(void *p)
{
    free(p);
}

/* ---- deciding ---- */

/* Analyses and decides one line, keeping both in e until the next. */
static whiply_status run(whiply_engine *e, const char *event, size_t len, long long now_ms)
{
    wh_decider *d = wh_worker_decider(e->w);
    if (!d) return WHIPLY_ENOMEM;
    wh_arena_reset(&e->keep);
    e->v = NULL;
    e->out_ready = false;
    e->decided = false;
    e->line.len = 0;
    wh_buf_append(&e->line, event, len);
    if (e->line.oom) {
        e->line.oom = false;
        return WHIPLY_ENOMEM;
    }
    wh_analyze(e->w, e->line.p ? e->line.p : "", len, 1, now_ms, &e->keep, 1, &e->an);
    if (e->an.kind == WH_AN_ERROR && !e->an.pre.n) return WHIPLY_ENOMEM; /* no room to say */
    if (e->an.kind != WH_AN_ERROR) e->v = wh_decide_verdict(d, &e->an);
    e->decided = true;
    return WHIPLY_OK;
}

/* The last line's decision JSON into e->out (NUL-terminated, without its newline). */
static whiply_status last_json(whiply_engine *e)
{
    if (e->out_ready) return WHIPLY_OK;
    e->out.len = 0;
    if (e->v)
        wh_verdict_json(e->v, &e->out);
    else
        wh_buf_append(&e->out, e->an.pre.p, e->an.pre.n);
    if (e->out.oom || !e->out.len) {
        e->out.oom = false;
        return WHIPLY_ENOMEM;
    }
    if (e->out.p[e->out.len - 1] == '\n') e->out.len--;
    e->out.p[e->out.len] = 0;
    e->out_ready = true;
    return WHIPLY_OK;
}

whiply_status whiply_decide(whiply_engine *e, const char *event, size_t len, long long now_ms,
                            char **decision, size_t *decision_len)
{
    if (!e || !event || !decision) return WHIPLY_EINVAL;
    whiply_status st = run(e, event, len, now_ms);
    if (st == WHIPLY_OK) st = last_json(e);
    if (st != WHIPLY_OK) return st;
    char *d = strdup(e->out.p);
    if (!d) return WHIPLY_ENOMEM;
    *decision = d;
    if (decision_len) *decision_len = e->out.len;
    return WHIPLY_OK;
}

whiply_status whiply_verdict_json(whiply_engine *e, const char **json, size_t *len)
{
    if (!e || !json || !e->decided) return WHIPLY_EINVAL;
    whiply_status st = last_json(e);
    if (st != WHIPLY_OK) return st;
    *json = e->out.p;
    if (len) *len = e->out.len;
    return WHIPLY_OK;
}

/* ---- the verdict as whiply.h's struct ---- */

/* A NUL-terminated copy of s (the engine's slices are not terminated) in the per-line arena. */
static const char *keep_str(whiply_engine *e, wh_str s, bool *oom)
{
    char *p = wh_arena_strndup(&e->keep, s.p ? s.p : "", s.n);
    if (!p) *oom = true;
    return p;
}

static void *keep_array(whiply_engine *e, size_t n, size_t size, bool *oom)
{
    if (!n) return NULL;
    void *p = wh_arena_alloc(&e->keep, n * size);
    if (!p) *oom = true;
    return p;
}

/* A JSON string token of the engine's own error line, unescaped. */
static const char *keep_json_str(whiply_engine *e, const char *js, const wh_jtok *t, bool *oom)
{
    wh_str s = {js + t->start, (uint32_t)(t->end - t->start)};
    if (!t->escaped) return keep_str(e, s, oom);
    char *p = wh_arena_alloc(&e->keep, s.n + 1);
    size_t n = 0, bad = 0;
    if (!p) {
        *oom = true;
        return NULL;
    }
    if (!wh_json_unescape(s.p, s.n, p, &n, &bad)) n = 0; /* cannot happen: the engine wrote it */
    p[n] = 0;
    return p;
}

/* A line that was not an event: the analysis keeps only its error line,
 * {"id":...,"line":1,"error":{"code":...,"message":...}}, the one record of what was wrong;
 * the verdict reads its fields back from it. */
static whiply_status fill_error(whiply_engine *e, whiply_verdict *out)
{
    const char *js = e->an.pre.p;
    wh_jtok t[16];
    size_t pos;
    const char *what;
    int n = wh_json_tokenize(js, e->an.pre.n, t, (int)WH_ARRAY_LEN(t), 4, &pos, &what);
    bool oom = false;
    out->error = 1;
    for (int i = 1; n > 0 && t[0].type == WH_J_OBJECT && i + 1 < n; i = t[i + 1].next) {
        const wh_jtok *k = &t[i], *v = &t[i + 1];
        wh_str key = {js + k->start, (uint32_t)(k->end - k->start)};
        if (WH_STR_EQ_LIT(key, "id") && v->type == WH_J_STRING) {
            out->id = keep_json_str(e, js, v, &oom);
        } else if (WH_STR_EQ_LIT(key, "error") && v->type == WH_J_OBJECT) {
            for (int j = i + 2; j + 1 < v->next; j = t[j + 1].next) {
                wh_str ek = {js + t[j].start, (uint32_t)(t[j].end - t[j].start)};
                if (t[j + 1].type != WH_J_STRING) continue;
                if (WH_STR_EQ_LIT(ek, "code"))
                    out->error_code = keep_json_str(e, js, &t[j + 1], &oom);
                else if (WH_STR_EQ_LIT(ek, "message"))
                    out->error_message = keep_json_str(e, js, &t[j + 1], &oom);
            }
        }
    }
    return oom ? WHIPLY_ENOMEM : WHIPLY_OK;
}

static whiply_status fill(whiply_engine *e, whiply_verdict *out)
{
    memset(out, 0, sizeof(*out));
    out->action = WHIPLY_ACTION_ALLOW;
    out->strike = -1;
    const wh_verdict *v = e->v;
    if (!v) return fill_error(e, out);
    const wh_ruleset *rs = v->rs;
    const wh_event *ev = &e->an.ev;
    bool oom = false;
    out->id = keep_str(e, ev->id, &oom);
    if (v->kind == WH_VK_OOM) {
        out->error = 1;
        out->error_code = "internal";
        out->error_message = "out of memory while normalizing";
    }
    out->action = (whiply_action)v->action;
    out->duration_s = v->duration_s;
    out->message = v->message;
    out->rule = v->rule >= 0 ? rs->rules[v->rule].id : NULL;
    out->strike = v->strike;
    if (v->nfired) { /* fired and the reason are only set when a rule fired */
        out->reason = keep_str(e, v->reason, &oom);
        const char **r = keep_array(e, v->nfired, sizeof(*r), &oom);
        for (uint32_t ri = 0; r && ri < rs->nrules && out->nrules < v->nfired; ri++)
            if (v->fired[ri] == 1) r[out->nrules++] = rs->rules[ri].id;
        out->rules = r;
    }
    if (v->chan_mode >= 0) {
        out->channel_mode = wh_chan_mode_names[v->chan_mode];
        out->channel_duration_s = v->chan_for_s;
    }
    const char **tg = keep_array(e, v->ntargets, sizeof(*tg), &oom);
    for (uint32_t i = 0; tg && i < v->ntargets; i++)
        tg[out->ntargets++] = keep_str(e, v->targets[i], &oom);
    out->targets = tg;
    whiply_match *m = keep_array(e, v->nmatches, sizeof(*m), &oom);
    for (uint32_t i = 0; m && i < v->nmatches; i++) {
        const wh_verdict_match *vm = &v->matches[i];
        m[out->nmatches++] =
            (whiply_match){rs->rules[vm->rule].id, wh_view_names[vm->view], vm->rs, vm->re};
    }
    out->matches = m;
    out->matches_truncated = v->matches_truncated;
    if (ev->type == WH_EV_MESSAGE) {
        out->text = keep_str(e, ev->text, &oom);
        out->text_len = ev->text.n;
    }
    return oom ? WHIPLY_ENOMEM : WHIPLY_OK;
}

whiply_status whiply_decide_verdict(whiply_engine *e, const char *event, size_t len,
                                    long long now_ms, whiply_verdict *out)
{
    if (!e || !event || !out) return WHIPLY_EINVAL;
    whiply_status st = run(e, event, len, now_ms);
    if (st == WHIPLY_OK) st = fill(e, out);
    return st;
}
