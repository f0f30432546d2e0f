/* api.c - the public API of include/whiply/whiply.h over the engine. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "whiply/whiply.h"

struct whiply_engine {
    wh_ruleset *rs;
    wh_worker *w;
    wh_engine_opts eo;
    wh_buf out;
};

static whiply_status make(wh_ruleset *rs, const wh_engine_opts *eo, whiply_engine **out)
{
    whiply_engine *e = calloc(1, sizeof(*e));
    if (!e) return WHIPLY_ENOMEM;
    e->rs = rs;
    wh_ruleset_retain(rs);
    e->eo = *eo;
    e->w = wh_worker_new(rs, eo);
    wh_buf_init(&e->out);
    if (!e->w) {
        whiply_engine_close(e);
        return WHIPLY_ENOMEM;
    }
    *out = e;
    return WHIPLY_OK;
}

whiply_status whiply_engine_open(const char *rules_path, const whiply_options *opts,
                                 whiply_engine **out, char **diagnostics)
{
    if (!rules_path || !out) return WHIPLY_EINVAL;
    *out = NULL;
    if (diagnostics) *diagnostics = NULL;
    wh_diags d = {0};
    wh_ruleset *rs = NULL;
    wh_load_opts lo = {.cache_dir = opts ? opts->cache_dir : NULL, .compile = true};
    if (wh_ruleset_load(rules_path, &lo, &d, &rs) != WH_OK) {
        if (diagnostics) *diagnostics = wh_diags_text(&d);
        wh_diags_free(&d);
        return WHIPLY_ERULES;
    }
    wh_diags_free(&d);
    wh_engine_opts eo = {.explain = opts && opts->explain};
    whiply_status st = make(rs, &eo, out);
    wh_ruleset_release(rs);
    return st;
}

whiply_status whiply_engine_clone(const whiply_engine *e, whiply_engine **out)
{
    if (!e || !out) return WHIPLY_EINVAL;
    return make(e->rs, &e->eo, out);
}

whiply_status whiply_decide(whiply_engine *e, const char *event, size_t len, long long now_ms,
                            char **decision, size_t *decision_len)
{
    if (!e || !event || !decision) return WHIPLY_EINVAL;
    e->out.len = 0;
    wh_worker_line(e->w, event, len, 1, now_ms, &e->out);
    if (e->out.oom) {
        e->out.oom = false;
        return WHIPLY_ENOMEM;
    }
    size_t n = e->out.len && e->out.p[e->out.len - 1] == '\n' ? e->out.len - 1 : e->out.len;
    char *d = malloc(n + 1);
    if (!d) return WHIPLY_ENOMEM;
    memcpy(d, e->out.p, n);
    d[n] = 0;
    *decision = d;
    if (decision_len) *decision_len = n;
    return WHIPLY_OK;
}

void whiply_engine_close(whiply_engine *e)
{
    if (!e) return;
    wh_worker_free(e->w);
    wh_ruleset_release(e->rs);
    wh_buf_free(&e->out);
    free(e);
}

void whiply_free(void *p)
{
    free(p);
}
