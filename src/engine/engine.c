/* engine.c - the per-event pipeline and the verdict (see engine.h). */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/normalize.h"

#define MAX_MATCHES 256
#define MAX_REPORTED_MATCHES 32

struct wh_worker {
    wh_ruleset *rs;
    wh_engine_opts opts;
    wh_decoder *dec;
    wh_arena arena;
    wh_match_scratch *ms;
    wh_match matches[MAX_MATCHES];
    uint32_t nmatches;
    uint8_t *group_hit; /* per group: a surviving blocked match */
    uint8_t *fired;     /* per rule: 0 no, 1 enforced, 2 shadow */
};

wh_worker *wh_worker_new(wh_ruleset *rs, const wh_engine_opts *opts)
{
    wh_worker *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->rs = rs;
    wh_ruleset_retain(rs);
    if (opts) w->opts = *opts;
    wh_arena_init(&w->arena, 256 * 1024);
    w->dec = wh_decoder_new();
    w->ms = rs->matcher ? wh_match_scratch_new(rs->matcher) : NULL;
    w->group_hit = calloc(rs->ngroups + 1, 1);
    w->fired = calloc(rs->nrules + 1, 1);
    if (!w->dec || (rs->matcher && !w->ms) || !w->group_hit || !w->fired) {
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
    free(w->group_hit);
    free(w->fired);
    wh_ruleset_release(w->rs);
    free(w);
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

static double feature(const wh_text *t, const wh_event *ev, wh_feature_id f)
{
    const wh_features *x = &t->f;
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

typedef struct {
    const wh_text *t;
    const wh_event *ev;
    const uint8_t *group_hit;
} eval_ctx;

static bool eval(const eval_ctx *c, const wh_cond *n)
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
        return c->group_hit[n->group] != 0;
    case WH_C_NUM:
        return wh_cmp_holds(n->cmp, feature(c->t, c->ev, n->feat));
    case WH_C_LINKS: {
        const wh_features *f = &c->t->f;
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

static void json_double(wh_buf *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        wh_buf_i64(b, (int64_t)v);
    else
        wh_buf_printf(b, "%.4g", v);
}

/* The first surviving match of rule r, or NULL. */
static const wh_match *first_match(const wh_worker *w, uint32_t r)
{
    for (uint32_t i = 0; i < w->nmatches; i++) {
        const wh_pattern_info *pi = &w->rs->pats[w->matches[i].pattern];
        if (pi->rule == r) return &w->matches[i];
    }
    return NULL;
}

static void write_reason(wh_buf *out, const wh_worker *w, uint32_t ri, const wh_event *ev,
                         const wh_text *t)
{
    const wh_rule *r = &w->rs->rules[ri];
    const char *tmpl = r->reason ? r->reason : r->description ? r->description : r->id;
    wh_buf tmp;
    wh_buf_init(&tmp);
    const wh_match *m = first_match(w, ri);
    for (const char *p = tmpl; *p; p++) {
        if (*p != '{') {
            wh_buf_putc(&tmp, *p);
            continue;
        }
        const char *e = strchr(p, '}');
        if (!e) {
            wh_buf_putc(&tmp, *p);
            continue;
        }
        size_t kl = (size_t)(e - p - 1);
        const char *k = p + 1;
#define IS(lit) (kl == sizeof(lit) - 1 && !memcmp(k, lit, kl))
        if (IS("rule"))
            wh_buf_puts(&tmp, r->id);
        else if (IS("term"))
            wh_buf_puts(&tmp, m ? w->rs->pats[m->pattern].source : "");
        else if (IS("match")) {
            if (m) wh_buf_append(&tmp, t->v[WH_VIEW_RAW].s + m->rs, m->re - m->rs);
        } else if (IS("view"))
            wh_buf_puts(&tmp, m ? wh_view_names[m->view] : "");
        else if (IS("user"))
            wh_buf_append(&tmp, ev->user_name.n ? ev->user_name.p : ev->user_id.p,
                          ev->user_name.n ? ev->user_name.n : ev->user_id.n);
        else if (IS("channel"))
            wh_buf_append(&tmp, ev->channel.p, ev->channel.n);
        else if (IS("platform"))
            wh_buf_append(&tmp, ev->platform.p, ev->platform.n);
        else if (IS("action"))
            wh_buf_puts(&tmp, wh_action_names[r->action]);
        else {
            wh_buf_append(&tmp, p, (size_t)(e - p + 1)); /* not a placeholder: keep it */
        }
#undef IS
        p = e;
    }
    wh_buf_json_str(out, tmp.p ? tmp.p : "", tmp.len);
    wh_buf_free(&tmp);
}

static void explain_features(wh_buf *out, const wh_cond *n, const eval_ctx *c, const char *rule,
                             bool *first)
{
    if (n->kind == WH_C_NOT) return;
    if (n->kind == WH_C_ALL || n->kind == WH_C_ANY) {
        for (uint32_t i = 0; i < n->nkids; i++)
            explain_features(out, n->kids[i], c, rule, first);
        return;
    }
    if ((n->kind != WH_C_NUM && n->kind != WH_C_LINKS) || !eval(c, n)) return;
    wh_feature_id f = n->kind == WH_C_NUM ? n->feat : WH_F_LINKS;
    wh_buf_puts(out, *first ? "" : ",");
    *first = false;
    wh_buf_puts(out, "{\"rule\":");
    wh_buf_json_str(out, rule, strlen(rule));
    wh_buf_puts(out, ",\"feature\":\"");
    wh_buf_puts(out, wh_feature_names[f]);
    wh_buf_puts(out, "\",\"value\":");
    json_double(out, feature(c->t, c->ev, f));
    if (f == WH_F_LINKS && c->t->f.nlinks) {
        wh_buf_puts(out, ",\"hosts\":[");
        uint32_t kept = c->t->f.nlinks < WH_MAX_LINKS ? c->t->f.nlinks : WH_MAX_LINKS;
        for (uint32_t i = 0; i < kept; i++) {
            if (i) wh_buf_putc(out, ',');
            wh_buf_json_str(out, c->t->f.links[i].host.p, c->t->f.links[i].host.n);
        }
        wh_buf_putc(out, ']');
    }
    wh_buf_putc(out, '}');
}

static bool rule_applies(const wh_rule *r, const wh_event *ev)
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

static int strength_cmp(const wh_rule *a, const wh_rule *b)
{
    if (a->action != b->action) return a->action > b->action ? 1 : -1;
    if (a->action == WH_ACT_TIMEOUT && a->duration_s != b->duration_s)
        return a->duration_s > b->duration_s ? 1 : -1;
    return 0;
}

static void decision_head(wh_buf *out, const wh_event *ev)
{
    wh_buf_puts(out, "{\"id\":");
    wh_buf_json_str(out, ev->id.p, ev->id.n);
}

static void decision_tail(wh_buf *out, const wh_worker *w, const wh_event *ev)
{
    wh_buf_puts(out, ",\"ruleset\":\"");
    wh_buf_puts(out, w->rs->hash);
    wh_buf_putc(out, '"');
    if (ev->meta.n) {
        wh_buf_puts(out, ",\"meta\":");
        wh_buf_append(out, ev->meta.p, ev->meta.n);
    }
    wh_buf_puts(out, "}\n");
}

wh_outcome wh_worker_line(wh_worker *w, const char *line, size_t len, uint64_t line_no,
                          int64_t now_ms, wh_buf *out)
{
    wh_outcome oc = {false, WH_ACT_ALLOW};
    wh_ruleset *rs = w->rs;
    wh_event ev;
    wh_decode_error err;
    wh_arena_reset(&w->arena);
    if (!wh_event_decode(w->dec, line, len, &w->arena, now_ms, &ev, &err)) {
        wh_buf_puts(out, "{\"id\":");
        if (err.id.n)
            wh_buf_json_str(out, err.id.p, err.id.n);
        else
            wh_buf_puts(out, "null");
        wh_buf_puts(out, ",\"line\":");
        wh_buf_u64(out, line_no);
        wh_buf_puts(out, ",\"error\":{\"code\":\"");
        wh_buf_puts(out, err.code);
        wh_buf_puts(out, "\",\"message\":");
        wh_buf_json_str(out, err.message, strlen(err.message));
        wh_buf_puts(out, "}}\n");
        oc.error = true;
        return oc;
    }
    decision_head(out, &ev);
    bool exempt = false;
    for (uint32_t i = 0; i < ev.nroles && !exempt; i++)
        exempt = wh_strset_has(&rs->exempt_roles, ev.roles[i]);
    if (ev.type != WH_EV_MESSAGE || exempt) {
        wh_buf_puts(out, ",\"action\":\"allow\"");
        decision_tail(out, w, &ev);
        return oc;
    }
    wh_text t;
    if (wh_text_build(ev.text.p, ev.text.n, &w->arena, &t) != WH_OK) {
        /* Out of memory for one message: answer it rather than lose it. */
        wh_buf_puts(out, ",\"action\":\"allow\",\"error\":{\"code\":\"internal\",\"message\":"
                         "\"out of memory while normalizing\"}");
        decision_tail(out, w, &ev);
        return oc;
    }
    /* Scan, then let permitted terms cancel the blocked matches they cover. */
    bool truncated = false;
    w->nmatches = 0;
    memset(w->group_hit, 0, rs->ngroups + 1);
    if (rs->matcher) {
        w->nmatches = wh_matcher_scan(rs->matcher, w->ms, &t, w->matches, MAX_MATCHES, &truncated);
        uint32_t nc;
        const uint32_t *conf = wh_match_confirmed(w->ms, &nc);
        for (uint32_t i = 0; i < nc; i++)
            w->group_hit[rs->pats[conf[i]].group] = 1;
    }
    /* Rules by priority; an allow rule stops lower priorities. */
    eval_ctx ctx = {&t, &ev, w->group_hit};
    int64_t floor = INT64_MIN;
    bool floor_set = false;
    int32_t winner = -1;
    bool any_shadow = false, any_fired = false;
    for (uint32_t ri = 0; ri < rs->nrules; ri++) {
        const wh_rule *r = &rs->rules[ri];
        w->fired[ri] = 0;
        if (r->req_group >= 0 && !w->group_hit[r->req_group]) continue;
        if (floor_set && r->priority < floor) continue;
        if (!rule_applies(r, &ev) || !eval(&ctx, r->when)) continue;
        if (r->shadow) {
            w->fired[ri] = 2;
            any_shadow = true;
            continue;
        }
        w->fired[ri] = 1;
        any_fired = true;
        if (r->action == WH_ACT_ALLOW && !floor_set) {
            floor = r->priority;
            floor_set = true;
        }
        if (winner < 0 || strength_cmp(r, &rs->rules[winner]) > 0) winner = (int32_t)ri;
    }
    const wh_rule *win = winner >= 0 ? &rs->rules[winner] : NULL;
    wh_action act = win ? win->action : WH_ACT_ALLOW;
    oc.action = act;
    wh_buf_puts(out, ",\"action\":\"");
    wh_buf_puts(out, wh_action_names[act]);
    wh_buf_putc(out, '"');
    if (act == WH_ACT_TIMEOUT) {
        wh_buf_puts(out, ",\"duration_s\":");
        wh_buf_u64(out, win->duration_s);
    }
    if (act == WH_ACT_WARN && win->message) {
        wh_buf_puts(out, ",\"message\":");
        wh_buf_json_str(out, win->message, strlen(win->message));
    }
    if (any_fired) {
        wh_buf_puts(out, ",\"rules\":[");
        bool first = true;
        for (uint32_t ri = 0; ri < rs->nrules; ri++) {
            if (w->fired[ri] != 1) continue;
            if (!first) wh_buf_putc(out, ',');
            first = false;
            wh_buf_json_str(out, rs->rules[ri].id, strlen(rs->rules[ri].id));
        }
        wh_buf_puts(out, "],\"reason\":");
        write_reason(out, w, (uint32_t)winner, &ev, &t);
    }
    /* Matches of the rules that fired (enforced or shadow). */
    bool first = true;
    uint32_t reported = 0;
    for (uint32_t i = 0; i < w->nmatches; i++) {
        const wh_match *m = &w->matches[i];
        const wh_pattern_info *pi = &rs->pats[m->pattern];
        if (!w->fired[pi->rule]) continue;
        bool dup = false; /* the same span of the same rule from another term ("fuck", "fuck*") */
        for (uint32_t k = 0; k < i && !dup; k++) {
            const wh_match *o = &w->matches[k];
            dup = o->rs == m->rs && o->re == m->re && rs->pats[o->pattern].rule == pi->rule;
        }
        if (dup) continue;
        if (reported == MAX_REPORTED_MATCHES) {
            truncated = true; /* more to report than a decision carries */
            break;
        }
        wh_buf_puts(out, first ? ",\"matches\":[" : ",");
        first = false;
        reported++;
        wh_buf_puts(out, "{\"rule\":");
        const char *rid = rs->rules[pi->rule].id;
        wh_buf_json_str(out, rid, strlen(rid));
        wh_buf_puts(out, ",\"view\":\"");
        wh_buf_puts(out, wh_view_names[m->view]);
        wh_buf_puts(out, "\",\"span\":[");
        wh_buf_u64(out, m->rs);
        wh_buf_putc(out, ',');
        wh_buf_u64(out, m->re);
        wh_buf_putc(out, ']');
        if (w->opts.explain) {
            wh_buf_puts(out, ",\"term\":");
            wh_buf_json_str(out, pi->source, strlen(pi->source));
            wh_buf_puts(out, ",\"text\":");
            wh_buf_json_str(out, ev.text.p + m->rs, m->re - m->rs);
        }
        wh_buf_putc(out, '}');
    }
    if (w->opts.explain) {
        for (uint32_t ri = 0; ri < rs->nrules; ri++) {
            if (!w->fired[ri]) continue;
            if (first) {
                size_t before = out->len;
                wh_buf_puts(out, ",\"matches\":[");
                bool f2 = true;
                explain_features(out, rs->rules[ri].when, &ctx, rs->rules[ri].id, &f2);
                if (f2)
                    out->len = before; /* nothing to add */
                else
                    first = false;
            } else {
                bool f2 = false;
                explain_features(out, rs->rules[ri].when, &ctx, rs->rules[ri].id, &f2);
            }
        }
    }
    if (!first) wh_buf_putc(out, ']');
    if (truncated) wh_buf_puts(out, ",\"matches_truncated\":true");
    if (any_shadow) {
        wh_buf_puts(out, ",\"shadow\":[");
        bool f = true;
        for (uint32_t ri = 0; ri < rs->nrules; ri++) {
            if (w->fired[ri] != 2) continue;
            if (!f) wh_buf_putc(out, ',');
            f = false;
            wh_buf_puts(out, "{\"rule\":");
            wh_buf_json_str(out, rs->rules[ri].id, strlen(rs->rules[ri].id));
            wh_buf_puts(out, ",\"action\":\"");
            wh_buf_puts(out, wh_action_names[rs->rules[ri].action]);
            wh_buf_puts(out, "\"}");
        }
        wh_buf_putc(out, ']');
    }
    decision_tail(out, w, &ev);
    return oc;
}
