/* decision_json.c - the decision JSON of a verdict (docs/api.md, "The decision"). One
 * encoder of wh_verdict; the order of the keys is the contract the goldens hold. */
#include "engine.h"

#include <math.h>
#include <string.h>

void wh_json_double(wh_buf *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        wh_buf_i64(b, (int64_t)v);
    else
        wh_buf_printf(b, "%.4g", v);
}

void wh_json_score(wh_buf *b, float v)
{
    if (isfinite(v))
        wh_buf_printf(b, "%.5g", (double)v);
    else
        wh_buf_puts(b, "null"); /* cannot happen with a model the loader accepted */
}

static void json_cstr(wh_buf *b, const char *s)
{
    wh_buf_json_str(b, s, strlen(s));
}

/* The classifiers' scores of a message, by slot name. */
static void write_scores(wh_buf *out, const wh_ruleset *rs, const wh_analysis *an, bool explain)
{
    wh_buf_puts(out, ",\"scores\":{");
    for (uint32_t i = 0; i < rs->nscores; i++) {
        if (i) wh_buf_putc(out, ',');
        json_cstr(out, rs->score_names[i]);
        wh_buf_putc(out, ':');
        wh_json_score(out, an->scores[i]);
    }
    wh_buf_putc(out, '}');
    if (explain && an->score_explain.n) {
        wh_buf_puts(out, ",\"score_features\":{");
        wh_buf_append(out, an->score_explain.p, an->score_explain.n);
        wh_buf_putc(out, '}');
    }
}

static void write_matches(const wh_verdict *v, wh_buf *out)
{
    const wh_ruleset *rs = v->rs;
    const wh_event *ev = &v->an->ev;
    bool first = true;
    for (uint32_t i = 0; i < v->nmatches; i++) {
        const wh_verdict_match *m = &v->matches[i];
        wh_buf_puts(out, first ? ",\"matches\":[" : ",");
        first = false;
        wh_buf_puts(out, "{\"rule\":");
        json_cstr(out, rs->rules[m->rule].id);
        wh_buf_puts(out, ",\"view\":\"");
        wh_buf_puts(out, wh_view_names[m->view]);
        wh_buf_puts(out, "\",\"span\":[");
        wh_buf_u64(out, m->rs);
        wh_buf_putc(out, ',');
        wh_buf_u64(out, m->re);
        wh_buf_putc(out, ']');
        if (v->explain) {
            wh_buf_puts(out, ",\"term\":");
            json_cstr(out, rs->pats[m->pattern].source);
            wh_buf_puts(out, ",\"text\":");
            wh_buf_json_str(out, ev->text.p + m->rs, m->re - m->rs);
        }
        wh_buf_putc(out, '}');
    }
    if (v->explain_values.n) { /* the predicates' values go on in the same array */
        wh_buf_puts(out, first ? ",\"matches\":[" : ",");
        first = false;
        wh_buf_append(out, v->explain_values.p, v->explain_values.n);
    }
    if (!first) wh_buf_putc(out, ']');
    if (v->matches_truncated) wh_buf_puts(out, ",\"matches_truncated\":true");
}

/* The channel's panic switch, as unix ms (0: switched off). */
static void write_panic(const wh_verdict *v, wh_buf *out)
{
    if (!v->has_panic) return;
    wh_buf_puts(out, ",\"panic_until\":");
    wh_buf_i64(out, v->panic_until);
}

static void write_decided(const wh_verdict *v, wh_buf *out)
{
    const wh_ruleset *rs = v->rs;
    wh_buf_puts(out, ",\"action\":\"");
    wh_buf_puts(out, wh_action_names[v->action]);
    wh_buf_putc(out, '"');
    if (v->action == WH_ACT_TIMEOUT) {
        wh_buf_puts(out, ",\"duration_s\":");
        wh_buf_u64(out, v->duration_s);
    }
    if (v->action == WH_ACT_WARN && v->message) {
        wh_buf_puts(out, ",\"message\":");
        json_cstr(out, v->message);
    }
    if (v->strike >= 0) {
        wh_buf_puts(out, ",\"strike\":");
        wh_buf_u64(out, (uint64_t)v->strike);
    }
    if (v->nfired) {
        wh_buf_puts(out, ",\"rules\":[");
        bool first = true;
        for (uint32_t ri = 0; ri < rs->nrules; ri++) {
            if (v->fired[ri] != 1) continue;
            if (!first) wh_buf_putc(out, ',');
            first = false;
            json_cstr(out, rs->rules[ri].id);
        }
        wh_buf_puts(out, "],\"reason\":");
        wh_buf_json_str(out, v->reason.p, v->reason.n);
    }
    if (v->an->scores) write_scores(out, rs, v->an, v->explain);
    if (v->chan_mode >= 0) {
        wh_buf_puts(out, ",\"channel_action\":{\"mode\":\"");
        wh_buf_puts(out, wh_chan_mode_names[v->chan_mode]);
        wh_buf_puts(out, "\",\"duration_s\":");
        wh_buf_u64(out, v->chan_for_s);
        wh_buf_putc(out, '}');
    }
    write_panic(v, out);
    if (v->has_targets) {
        wh_buf_puts(out, ",\"targets\":[");
        for (uint32_t i = 0; i < v->ntargets; i++) {
            if (i) wh_buf_putc(out, ',');
            wh_buf_json_str(out, v->targets[i].p, v->targets[i].n);
        }
        wh_buf_putc(out, ']');
    }
    write_matches(v, out);
    if (v->nshadow) {
        wh_buf_puts(out, ",\"shadow\":[");
        bool f = true;
        for (uint32_t ri = 0; ri < rs->nrules; ri++) {
            if (v->fired[ri] != 2) continue;
            if (!f) wh_buf_putc(out, ',');
            f = false;
            wh_buf_puts(out, "{\"rule\":");
            json_cstr(out, rs->rules[ri].id);
            wh_buf_puts(out, ",\"action\":\"");
            wh_buf_puts(out, wh_action_names[v->act[ri]]);
            wh_buf_puts(out, "\"}");
        }
        wh_buf_putc(out, ']');
    }
    if (v->explain_state.n) wh_buf_append(out, v->explain_state.p, v->explain_state.n);
}

void wh_verdict_json(const wh_verdict *v, wh_buf *out)
{
    const wh_event *ev = &v->an->ev;
    wh_buf_puts(out, "{\"id\":");
    wh_buf_json_str(out, ev->id.p, ev->id.n);
    switch (v->kind) {
    case WH_VK_DECIDED:
        write_decided(v, out);
        break;
    case WH_VK_OOM:
        wh_buf_puts(out, ",\"action\":\"allow\",\"error\":{\"code\":\"internal\",\"message\":"
                         "\"out of memory while normalizing\"}");
        break;
    case WH_VK_MOD_ACTION:
        wh_buf_puts(out, ",\"action\":\"allow\"");
        if (v->has_standing) {
            wh_buf_puts(out, ",\"target\":");
            wh_buf_json_str(out, v->mod_target.p, v->mod_target.n);
            wh_buf_puts(out, ",\"strikes\":");
            wh_buf_u64(out, v->standing_strikes);
            wh_buf_puts(out, ",\"reputation\":");
            wh_json_double(out, v->standing_rep);
        }
        write_panic(v, out);
        break;
    case WH_VK_PASS:
        wh_buf_puts(out, ",\"action\":\"allow\"");
        break;
    }
    wh_buf_puts(out, ",\"ruleset\":\"");
    wh_buf_puts(out, v->rs->hash);
    wh_buf_putc(out, '"');
    if (ev->meta.n) {
        wh_buf_puts(out, ",\"meta\":");
        wh_buf_append(out, ev->meta.p, ev->meta.n);
    }
    wh_buf_puts(out, "}\n");
}
