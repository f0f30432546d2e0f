/* report.c - a replay's result as JSON and as a self-contained HTML page (replay.h). */
#include <math.h>
#include <stdio.h>

#include "exp/replay.h"

static const char *const label_names[] = {"unlabelled", "harmful", "ok"};

/* The vision's bars (docs/experiments.md). */
#define TARGET_ACCURACY 0.95
#define TARGET_FPR 0.05
#define TARGET_COVERAGE 0.80

/* ---- JSON ---- */

static void jnum(wh_buf *b, double v)
{
    if (!isfinite(v))
        wh_buf_puts(b, "null");
    else
        wh_buf_printf(b, "%.6g", v);
}

static void jstr(wh_buf *b, const char *s)
{
    wh_buf_json_str(b, s, strlen(s));
}

static void jinterval(wh_buf *b, const char *key, wh_interval x)
{
    wh_buf_printf(b, "\"%s\":{\"est\":", key);
    jnum(b, x.est);
    wh_buf_puts(b, ",\"lo\":");
    jnum(b, x.lo);
    wh_buf_puts(b, ",\"hi\":");
    jnum(b, x.hi);
    wh_buf_putc(b, '}');
}

/* A share with its counts and Wilson interval. */
static void jshare(wh_buf *b, const char *key, uint64_t k, uint64_t n, wh_interval x)
{
    wh_buf_printf(b, "\"%s\":{\"k\":%llu,\"n\":%llu,\"est\":", key, (unsigned long long)k,
                  (unsigned long long)n);
    jnum(b, x.est);
    wh_buf_puts(b, ",\"lo\":");
    jnum(b, x.lo);
    wh_buf_puts(b, ",\"hi\":");
    jnum(b, x.hi);
    wh_buf_putc(b, '}');
}

static void jdist(wh_buf *b, const char *key, wh_dist d)
{
    wh_buf_printf(b, "\"%s\":{\"n\":%llu,\"p50\":", key, (unsigned long long)d.n);
    jnum(b, d.p50);
    wh_buf_puts(b, ",\"p90\":");
    jnum(b, d.p90);
    wh_buf_puts(b, ",\"mean\":");
    jnum(b, d.mean);
    wh_buf_putc(b, '}');
}

static const char *rule_id(const wh_ruleset *rs, int32_t rule)
{
    return rule >= 0 ? rs->rules[rule].id : NULL;
}

static void jrule(wh_buf *b, const char *key, const wh_ruleset *rs, int32_t rule)
{
    wh_buf_printf(b, "\"%s\":", key);
    if (rule >= 0)
        jstr(b, rule_id(rs, rule));
    else
        wh_buf_puts(b, "null");
}

static void json_rule(wh_buf *b, const wh_ruleset_result *o, const wh_rule_result *x)
{
    const wh_rule *r = &o->rs->rules[x->rule];
    wh_buf_puts(b, "{\"id\":");
    jstr(b, r->id);
    wh_buf_printf(b, ",\"mode\":\"%s\",\"fired\":%llu,\"harmful\":%llu,\"ok\":%llu,",
                  r->shadow ? "shadow" : "enforce", (unsigned long long)x->fired,
                  (unsigned long long)x->tp, (unsigned long long)x->fp);
    jshare(b, "precision", x->tp, x->tp + x->fp, x->precision);
    wh_buf_putc(b, ',');
    jshare(b, "recall", x->tp, o->cm.tp + o->cm.fn, x->recall);
    if (r->shadow) {
        wh_buf_printf(b,
                      ",\"would_add\":{\"messages\":%llu,\"harmful\":%llu,\"ok\":%llu,"
                      "\"unlabelled\":%llu,\"per_1000_messages\":",
                      (unsigned long long)x->add, (unsigned long long)x->add_harmful,
                      (unsigned long long)x->add_ok,
                      (unsigned long long)(x->add - x->add_harmful - x->add_ok));
        uint64_t nm =
            o->cm.tp + o->cm.fp + o->cm.tn + o->cm.fn + o->cm.unl_acted + o->cm.unl_allowed;
        jnum(b, nm ? 1000.0 * (double)x->add / (double)nm : NAN);
        wh_buf_puts(b, "},\"if_enforced\":{");
        jinterval(b, "precision", x->precision_if);
        wh_buf_putc(b, ',');
        jinterval(b, "recall", x->recall_if);
        wh_buf_putc(b, '}');
    }
    wh_buf_putc(b, '}');
}

static void json_ruleset(wh_buf *b, const wh_ruleset_result *o)
{
    const wh_confusion *c = &o->cm;
    wh_buf_puts(b, "{\"name\":");
    jstr(b, o->name);
    wh_buf_printf(b, ",\"ruleset\":\"%s\",\"figures\":{", o->rs->hash);
    jshare(b, "accuracy", c->tp + c->tn, c->tp + c->tn + c->fp + c->fn, o->accuracy);
    wh_buf_putc(b, ',');
    jshare(b, "false_positive_rate", c->fp, c->fp + c->tn, o->fpr);
    wh_buf_putc(b, ',');
    jshare(b, "coverage", o->covered, o->human_acted, o->coverage);
    wh_buf_puts(b, ",\"time_to_action\":{");
    jdist(b, "human_latency_ms", o->human_ms);
    wh_buf_putc(b, ',');
    jdist(b, "visible_ms", o->visible_ms);
    wh_buf_putc(b, ',');
    jshare(b, "hidden_before_humans", o->hidden, o->human_acted, o->first);
    wh_buf_puts(b, ",\"engine_us\":{\"p50\":");
    jnum(b, o->engine_p50_us);
    wh_buf_puts(b, ",\"p99\":");
    jnum(b, o->engine_p99_us);
    wh_buf_puts(b, "}}},");
    jshare(b, "precision", c->tp, c->tp + c->fp, o->precision);
    wh_buf_putc(b, ',');
    jshare(b, "recall", c->tp, c->tp + c->fn, o->recall);
    wh_buf_printf(b,
                  ",\"confusion\":{\"tp\":%llu,\"fp\":%llu,\"tn\":%llu,\"fn\":%llu,"
                  "\"unlabelled_acted\":%llu,\"unlabelled_allowed\":%llu},\"actions\":{",
                  (unsigned long long)c->tp, (unsigned long long)c->fp, (unsigned long long)c->tn,
                  (unsigned long long)c->fn, (unsigned long long)c->unl_acted,
                  (unsigned long long)c->unl_allowed);
    for (int a = 0; a < WH_ACT__COUNT; a++)
        wh_buf_printf(b, "%s\"%s\":%llu", a ? "," : "", wh_action_names[a],
                      (unsigned long long)o->actions[a]);
    const wh_confusion *s = &o->cm_sample;
    wh_buf_printf(b, "},\"sampled_review\":{\"tp\":%llu,\"fp\":%llu,\"tn\":%llu,\"fn\":%llu,",
                  (unsigned long long)s->tp, (unsigned long long)s->fp, (unsigned long long)s->tn,
                  (unsigned long long)s->fn);
    jshare(b, "accuracy", s->tp + s->tn, s->tp + s->tn + s->fp + s->fn, o->accuracy_sample);
    wh_buf_putc(b, ',');
    jshare(b, "false_positive_rate", s->fp, s->fp + s->tn, o->fpr_sample);
    wh_buf_putc(b, ',');
    jshare(b, "precision", s->tp, s->tp + s->fp, o->precision_sample);
    wh_buf_putc(b, ',');
    jshare(b, "recall", s->tp, s->tp + s->fn, o->recall_sample);
    wh_buf_puts(b, "},\"rules\":[");
    bool first = true;
    for (uint32_t i = 0; i < o->nrules; i++) {
        if (o->rs->rules[o->rules[i].rule].shadow) continue;
        if (!first) wh_buf_putc(b, ',');
        first = false;
        json_rule(b, o, &o->rules[i]);
    }
    wh_buf_puts(b, "],\"shadow\":[");
    first = true;
    for (uint32_t i = 0; i < o->nrules; i++) {
        if (!o->rs->rules[o->rules[i].rule].shadow) continue;
        if (!first) wh_buf_putc(b, ',');
        first = false;
        json_rule(b, o, &o->rules[i]);
    }
    wh_buf_puts(b, "]}");
}

static void json_paired(wh_buf *b, const char *key, const wh_paired *p)
{
    wh_buf_printf(b, "\"%s\":{\"n\":%llu,\"base\":", key,
                  (unsigned long long)(p->a + p->b + p->c + p->d));
    jnum(b, p->base);
    wh_buf_puts(b, ",\"candidate\":");
    jnum(b, p->cand);
    wh_buf_putc(b, ',');
    jinterval(b, "difference", p->diff);
    wh_buf_printf(b, ",\"mcnemar\":{\"base_only\":%llu,\"candidate_only\":%llu,\"exact_p\":",
                  (unsigned long long)p->b, (unsigned long long)p->c);
    jnum(b, p->test.exact);
    wh_buf_puts(b, ",\"mid_p\":");
    jnum(b, p->test.mid_p);
    wh_buf_puts(b, "}}");
}

static void json_comparison(wh_buf *b, const wh_replay_result *res, const wh_comparison *c)
{
    const wh_ruleset *bs = res->rs[0].rs, *cs = res->rs[c->cand].rs;
    wh_buf_puts(b, "{\"base\":");
    jstr(b, res->rs[0].name);
    wh_buf_puts(b, ",\"candidate\":");
    jstr(b, res->rs[c->cand].name);
    wh_buf_putc(b, ',');
    json_paired(b, "accuracy", &c->accuracy);
    wh_buf_putc(b, ',');
    json_paired(b, "false_positive_rate", &c->fpr);
    wh_buf_putc(b, ',');
    json_paired(b, "coverage", &c->coverage);
    wh_buf_putc(b, ',');
    json_paired(b, "recall", &c->recall);
    wh_buf_putc(b, ',');
    jinterval(b, "visible_ms_change", c->visible_diff_ms);
    wh_buf_printf(b, ",\"changed\":{\"messages\":%llu,\"groups\":[",
                  (unsigned long long)c->changed);
    for (uint32_t i = 0; i < c->ngroups; i++) {
        const wh_change_group *g = &c->groups[i];
        wh_buf_puts(b, i ? ",{" : "{");
        jrule(b, "base_rule", bs, g->base_rule);
        wh_buf_putc(b, ',');
        jrule(b, "candidate_rule", cs, g->cand_rule);
        wh_buf_printf(b,
                      ",\"count\":%llu,\"now_acting\":%llu,\"now_allowed\":%llu,"
                      "\"harmful\":%llu,\"ok\":%llu,\"examples\":[",
                      (unsigned long long)g->count, (unsigned long long)g->now_acting,
                      (unsigned long long)g->now_allowed, (unsigned long long)g->harmful,
                      (unsigned long long)g->ok);
        for (uint32_t e = 0; e < g->nex; e++) {
            const wh_example *x = &g->ex[e];
            wh_buf_puts(b, e ? ",{\"id\":" : "{\"id\":");
            jstr(b, x->id);
            wh_buf_puts(b, ",\"text\":");
            jstr(b, x->text);
            wh_buf_printf(b, ",\"label\":\"%s\",\"base\":\"%s\",\"candidate\":\"%s\"}",
                          label_names[x->label], wh_action_names[x->base],
                          wh_action_names[x->cand]);
        }
        wh_buf_puts(b, "]}");
    }
    wh_buf_puts(b, "]}}");
}

void wh_replay_json(const wh_replay_result *res, const char *input, wh_buf *b)
{
    wh_buf_puts(b, "{\"whiply_replay\":1,\"input\":{\"path\":");
    jstr(b, input);
    wh_buf_printf(b,
                  ",\"lines\":%llu,\"events\":%llu,\"errors\":%llu,\"messages\":%llu,"
                  "\"first_errors\":[",
                  (unsigned long long)res->lines, (unsigned long long)res->events,
                  (unsigned long long)res->errors, (unsigned long long)res->messages);
    for (uint64_t i = 0; i < res->errors && i < WH_REPLAY_MAX_ERRORS; i++) {
        wh_buf_printf(b, "%s{\"line\":%llu,\"code\":", i ? "," : "",
                      (unsigned long long)res->first_errors[i].line);
        jstr(b, res->first_errors[i].code);
        wh_buf_puts(b, ",\"message\":");
        jstr(b, res->first_errors[i].message);
        wh_buf_putc(b, '}');
    }
    const wh_replay_opts *o = &res->opts;
    wh_buf_printf(b,
                  "]},\"ground_truth\":{\"min_action\":\"%s\",\"attribute_s\":%lld,"
                  "\"unlabelled\":\"%s\",\"human_actions\":{\"removals\":%llu,\"approvals\":%llu,"
                  "\"reversals\":%llu,\"attributed_without_ref\":%llu,\"unattributed\":%llu,"
                  "\"below_min_action\":%llu,\"other\":%llu},\"labels\":{\"harmful\":%llu,"
                  "\"ok\":%llu,\"unlabelled\":%llu,\"from_humans\":%llu,\"from_sample\":%llu},"
                  "\"sample\":{\"labels\":%llu,\"applied\":%llu,\"conflicts\":%llu,"
                  "\"unknown_ids\":%llu}},\"rulesets\":[",
                  wh_action_names[o->min_action], (long long)(o->attribute_ms / 1000),
                  o->unlabelled_ok ? "ok" : "left_out", (unsigned long long)res->removals,
                  (unsigned long long)res->approvals, (unsigned long long)res->reversals,
                  (unsigned long long)res->attributed, (unsigned long long)res->unattributed,
                  (unsigned long long)res->below_min, (unsigned long long)res->other_actions,
                  (unsigned long long)res->harmful, (unsigned long long)res->ok,
                  (unsigned long long)res->unlabelled, (unsigned long long)res->from_humans,
                  (unsigned long long)res->from_sample, (unsigned long long)res->sample_labels,
                  (unsigned long long)res->sample_applied,
                  (unsigned long long)res->sample_conflicts,
                  (unsigned long long)res->sample_unknown);
    for (uint32_t i = 0; i < res->nrs; i++) {
        if (i) wh_buf_putc(b, ',');
        json_ruleset(b, &res->rs[i]);
    }
    wh_buf_puts(b, "],\"comparisons\":[");
    for (uint32_t i = 0; i + 1 < res->nrs; i++) {
        if (i) wh_buf_putc(b, ',');
        json_comparison(b, res, &res->cmp[i]);
    }
    wh_buf_puts(b, "]}\n");
}

/* ---- HTML ---- */

/* Text as HTML: the five characters that mean something there, escaped. */
static const char *const html_entities[256] = {
    ['<'] = "&lt;", ['>'] = "&gt;", ['&'] = "&amp;", ['"'] = "&quot;", ['\''] = "&#39;"};

static void esc(wh_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *ent = html_entities[(unsigned char)*s];
        if (ent)
            wh_buf_puts(b, ent);
        else
            wh_buf_putc(b, *s);
    }
}

static void pct(wh_buf *b, double v)
{
    if (isfinite(v))
        wh_buf_printf(b, "%.1f%%", 100 * v);
    else
        wh_buf_puts(b, "–");
}

static void pct_ci(wh_buf *b, wh_interval x)
{
    pct(b, x.est);
    if (!isfinite(x.est)) return;
    wh_buf_puts(b, " <span class=ci>[");
    pct(b, x.lo);
    wh_buf_puts(b, "–");
    pct(b, x.hi);
    wh_buf_puts(b, "]</span>");
}

static void duration(wh_buf *b, double ms)
{
    if (!isfinite(ms))
        wh_buf_puts(b, "–");
    else if (fabs(ms) < 1000)
        wh_buf_printf(b, "%.0f ms", ms);
    else if (fabs(ms) < 120000)
        wh_buf_printf(b, "%.1f s", ms / 1000);
    else
        wh_buf_printf(b, "%.1f min", ms / 60000);
}

static void dist_row(wh_buf *b, const wh_dist *d)
{
    duration(b, d->mean);
    wh_buf_puts(b, ", ");
    duration(b, d->p50);
    wh_buf_puts(b, ", ");
    duration(b, d->p90);
}

static void pvalue(wh_buf *b, double p)
{
    if (p < 0.0001)
        wh_buf_puts(b, "&lt; 0.0001");
    else
        wh_buf_printf(b, "%.4f", p);
}

/* One horizontal bar per share, its Wilson interval as a whisker and the vision's bar as a
 * dashed tick. */
typedef struct {
    const char *label;
    wh_interval x;
    double target;
} bar;

static void svg_bars(wh_buf *b, const bar *v, int n)
{
    const int w = 520, left = 150, span = 340, row = 30;
    wh_buf_printf(b,
                  "<svg class=chart width=%d height=%d viewBox=\"0 0 %d %d\" role=img>"
                  "<line x1=%d y1=0 x2=%d y2=%d class=axis />",
                  w, n * row + 20, w, n * row + 20, left, left, n * row);
    for (int i = 0; i < n; i++) {
        int y = i * row + 6;
        double e = isfinite(v[i].x.est) ? v[i].x.est : 0;
        wh_buf_printf(b, "<text x=%d y=%d class=lab>", left - 8, y + 13);
        esc(b, v[i].label);
        wh_buf_printf(b, "</text><rect x=%d y=%d width=%.1f height=18 class=bar />", left, y,
                      e * span);
        if (isfinite(v[i].x.lo))
            wh_buf_printf(b, "<line x1=%.1f y1=%d x2=%.1f y2=%d class=ci />",
                          left + v[i].x.lo * span, y + 9, left + v[i].x.hi * span, y + 9);
        wh_buf_printf(b, "<line x1=%.1f y1=%d x2=%.1f y2=%d class=target />",
                      left + v[i].target * span, y - 3, left + v[i].target * span, y + 21);
    }
    for (int t = 0; t <= 4; t++)
        wh_buf_printf(b, "<text x=%.1f y=%d class=tick>%d%%</text>", left + t * span / 4.0,
                      n * row + 14, t * 25);
    wh_buf_puts(b, "</svg>");
}

/* Differences (candidate - base) around zero, with their intervals. */
static void svg_diffs(wh_buf *b, const char *const *labels, const wh_interval *v, int n)
{
    const int w = 520, left = 150, span = 340, row = 30;
    double m = 0.01;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i].lo)) m = fmax(m, fmax(fabs(v[i].lo), fabs(v[i].hi)));
    double zero = left + span / 2.0, k = span / 2.0 / m;
    wh_buf_printf(b,
                  "<svg class=chart width=%d height=%d viewBox=\"0 0 %d %d\" role=img>"
                  "<line x1=%.1f y1=0 x2=%.1f y2=%d class=axis />",
                  w, n * row + 20, w, n * row + 20, zero, zero, n * row);
    for (int i = 0; i < n; i++) {
        int y = i * row + 15;
        wh_buf_printf(b, "<text x=%d y=%d class=lab>", left - 8, y + 4);
        esc(b, labels[i]);
        wh_buf_puts(b, "</text>");
        if (!isfinite(v[i].est)) continue;
        wh_buf_printf(b,
                      "<line x1=%.1f y1=%d x2=%.1f y2=%d class=ci />"
                      "<circle cx=%.1f cy=%d r=5 class=%s />",
                      zero + v[i].lo * k, y, zero + v[i].hi * k, y, zero + v[i].est * k, y,
                      v[i].lo > 0 || v[i].hi < 0 ? "dot sig" : "dot");
    }
    wh_buf_printf(b,
                  "<text x=%d y=%d class=tick>−%.1f pp</text><text x=%.1f y=%d "
                  "class=tick>0</text><text x=%d y=%d class=tick>+%.1f pp</text></svg>",
                  left, n * row + 14, 100 * m, zero, n * row + 14, left + span, n * row + 14,
                  100 * m);
}

static void html_rules(wh_buf *b, const wh_ruleset_result *o, bool shadow)
{
    bool any = false;
    for (uint32_t i = 0; i < o->nrules; i++) {
        const wh_rule_result *x = &o->rules[i];
        const wh_rule *r = &o->rs->rules[x->rule];
        if (r->shadow != shadow) continue;
        if (!any) {
            wh_buf_puts(b, shadow ? "<table><tr><th>shadow rule<th>fired<th>harmful<th>ok"
                                    "<th>precision<th>recall<th>would add<th>of them harmful / "
                                    "ok<th>ruleset's precision if enforced<th>recall if enforced"
                                  : "<table><tr><th>rule<th>action<th>fired<th>harmful<th>ok"
                                    "<th>precision<th>recall");
            any = true;
        }
        wh_buf_puts(b, "<tr><td>");
        esc(b, r->id);
        if (!shadow)
            wh_buf_printf(b, "<td>%s", r->escalate ? "ladder" : wh_action_names[r->action]);
        wh_buf_printf(b, "<td>%llu<td>%llu<td>%llu<td>", (unsigned long long)x->fired,
                      (unsigned long long)x->tp, (unsigned long long)x->fp);
        pct_ci(b, x->precision);
        wh_buf_puts(b, "<td>");
        pct_ci(b, x->recall);
        if (shadow) {
            wh_buf_printf(b, "<td>%llu<td>%llu / %llu<td>", (unsigned long long)x->add,
                          (unsigned long long)x->add_harmful, (unsigned long long)x->add_ok);
            pct_ci(b, x->precision_if);
            wh_buf_puts(b, "<td>");
            pct_ci(b, x->recall_if);
        }
    }
    if (any)
        wh_buf_puts(b, "</table>");
    else
        wh_buf_puts(b, shadow ? "<p>No shadow rule fired.</p>" : "<p>No rule acted.</p>");
}

static void html_ruleset(wh_buf *b, const wh_ruleset_result *o)
{
    const wh_confusion *c = &o->cm;
    wh_buf_puts(b, "<section><h2>");
    esc(b, o->name);
    wh_buf_printf(b,
                  " <small>ruleset %s</small></h2><table class=figs><tr><th>figure<th>"
                  "value [95%% Wilson interval]<th>the vision's bar<th>",
                  o->rs->hash);
    wh_buf_puts(b, "<tr><td>accuracy (correct decisions on labelled messages)<td>");
    pct_ci(b, o->accuracy);
    wh_buf_printf(b, "<td>≥ 95%%<td>%s", o->accuracy.est >= TARGET_ACCURACY ? "met" : "not met");
    wh_buf_puts(b, "<tr><td>false-positive rate (fine messages acted on)<td>");
    pct_ci(b, o->fpr);
    wh_buf_printf(b, "<td>&lt; 5%%<td>%s", o->fpr.est < TARGET_FPR ? "met" : "not met");
    wh_buf_puts(b, "<tr><td>coverage (human removals the rules also acted on)<td>");
    pct_ci(b, o->coverage);
    wh_buf_printf(b, "<td>≥ 80%%<td>%s", o->coverage.est >= TARGET_COVERAGE ? "met" : "not met");
    wh_buf_puts(b, "<tr><td>time a removed message stayed visible, humans alone: mean, median, "
                   "p90<td>");
    dist_row(b, &o->human_ms);
    wh_buf_puts(b, "<td rowspan=2>decided in under a second<td rowspan=2>");
    wh_buf_puts(b, "<tr><td>… with these rules deciding first (");
    pct(b, o->first.est);
    wh_buf_puts(b, " hidden at once)<td>");
    dist_row(b, &o->visible_ms);
    if (o->cm_sample.tp + o->cm_sample.fp + o->cm_sample.tn + o->cm_sample.fn) {
        wh_buf_puts(b, "<tr><td>on the sampled review alone (a random sample): accuracy<td>");
        pct_ci(b, o->accuracy_sample);
        wh_buf_puts(b, "<td>≥ 95%<td><tr><td>… false-positive rate<td>");
        pct_ci(b, o->fpr_sample);
        wh_buf_puts(b, "<td>&lt; 5%<td><tr><td>… recall<td>");
        pct_ci(b, o->recall_sample);
        wh_buf_puts(b, "<td><td>");
    }
    wh_buf_printf(b,
                  "<tr><td>engine time per event, p50 / p99<td>%.1f µs / %.1f µs<td>&lt; 1 s<td>%s",
                  o->engine_p50_us, o->engine_p99_us, o->engine_p99_us < 1e6 ? "met" : "not met");
    wh_buf_puts(b, "</table>");
    bar v[] = {{"accuracy", o->accuracy, TARGET_ACCURACY},
               {"false positives", o->fpr, TARGET_FPR},
               {"coverage", o->coverage, TARGET_COVERAGE},
               {"precision", o->precision, TARGET_ACCURACY},
               {"recall", o->recall, TARGET_COVERAGE}};
    svg_bars(b, v, 5);
    wh_buf_printf(b,
                  "<h3>Confusion matrix</h3><table class=cm><tr><th><th>labelled harmful<th>"
                  "labelled fine<th>unlabelled<tr><th>acted on<td>%llu<td>%llu<td>%llu<tr>"
                  "<th>allowed<td>%llu<td>%llu<td>%llu</table><p>Actions: ",
                  (unsigned long long)c->tp, (unsigned long long)c->fp,
                  (unsigned long long)c->unl_acted, (unsigned long long)c->fn,
                  (unsigned long long)c->tn, (unsigned long long)c->unl_allowed);
    for (int a = 0; a < WH_ACT__COUNT; a++)
        wh_buf_printf(b, "%s%s %llu", a ? ", " : "", wh_action_names[a],
                      (unsigned long long)o->actions[a]);
    wh_buf_puts(b, ".</p><h3>Rules</h3>");
    html_rules(b, o, false);
    wh_buf_puts(b, "<h3>Shadow rules</h3>");
    html_rules(b, o, true);
    wh_buf_puts(b, "</section>");
}

static void html_paired_row(wh_buf *b, const char *name, const wh_paired *p)
{
    wh_buf_printf(b, "<tr><td>%s<td>", name);
    pct(b, p->base);
    wh_buf_puts(b, "<td>");
    pct(b, p->cand);
    wh_buf_puts(b, "<td>");
    if (isfinite(p->diff.est))
        wh_buf_printf(b, "%+.2f pp <span class=ci>[%+.2f, %+.2f]</span>", 100 * p->diff.est,
                      100 * p->diff.lo, 100 * p->diff.hi);
    else
        wh_buf_puts(b, "–");
    wh_buf_printf(b, "<td>%llu / %llu<td>", (unsigned long long)p->b, (unsigned long long)p->c);
    pvalue(b, p->test.exact);
    wh_buf_puts(b, "<td>");
    pvalue(b, p->test.mid_p);
}

static void html_comparison(wh_buf *b, const wh_replay_result *res, const wh_comparison *c)
{
    const wh_ruleset *bs = res->rs[0].rs, *cs = res->rs[c->cand].rs;
    wh_buf_puts(b, "<section><h2>");
    esc(b, res->rs[c->cand].name);
    wh_buf_puts(b, " against ");
    esc(b, res->rs[0].name);
    wh_buf_puts(b, "</h2><p>Paired: the same messages, decided by both. McNemar's test looks "
                   "only at the messages where the two disagree.</p><table><tr><th>figure<th>"
                   "base<th>candidate<th>change [95% Newcombe interval]<th>only base / only "
                   "candidate<th>McNemar exact p<th>mid-p");
    html_paired_row(b, "accuracy", &c->accuracy);
    html_paired_row(b, "false-positive rate", &c->fpr);
    html_paired_row(b, "coverage of human removals", &c->coverage);
    html_paired_row(b, "recall", &c->recall);
    wh_buf_puts(b, "<tr><td>mean time a removed message stayed visible<td colspan=2><td>");
    if (isfinite(c->visible_diff_ms.est)) {
        duration(b, c->visible_diff_ms.est);
        wh_buf_puts(b, " <span class=ci>[");
        duration(b, c->visible_diff_ms.lo);
        wh_buf_puts(b, ", ");
        duration(b, c->visible_diff_ms.hi);
        wh_buf_puts(b, "]</span>");
    } else {
        wh_buf_puts(b, "–");
    }
    wh_buf_puts(b, "<td colspan=3></table>");
    const char *labels[] = {"accuracy", "false positives", "coverage", "recall"};
    wh_interval d[] = {c->accuracy.diff, c->fpr.diff, c->coverage.diff, c->recall.diff};
    svg_diffs(b, labels, d, 4);
    wh_buf_printf(b, "<h3>Changed decisions: %llu messages</h3>", (unsigned long long)c->changed);
    if (c->ngroups)
        wh_buf_puts(b, "<table><tr><th>base's rule<th>candidate's rule<th>messages<th>now "
                       "acted on<th>now allowed<th>harmful<th>ok<th>examples");
    for (uint32_t i = 0; i < c->ngroups && i < 25; i++) {
        const wh_change_group *g = &c->groups[i];
        wh_buf_puts(b, "<tr><td>");
        esc(b, g->base_rule >= 0 ? bs->rules[g->base_rule].id : "(none)");
        wh_buf_puts(b, "<td>");
        esc(b, g->cand_rule >= 0 ? cs->rules[g->cand_rule].id : "(none)");
        wh_buf_printf(b, "<td>%llu<td>%llu<td>%llu<td>%llu<td>%llu<td>",
                      (unsigned long long)g->count, (unsigned long long)g->now_acting,
                      (unsigned long long)g->now_allowed, (unsigned long long)g->harmful,
                      (unsigned long long)g->ok);
        for (uint32_t e = 0; e < g->nex; e++) {
            const wh_example *x = &g->ex[e];
            wh_buf_puts(b, "<div class=ex><code>");
            esc(b, x->id);
            wh_buf_printf(b, "</code> %s → %s (%s): ", wh_action_names[x->base],
                          wh_action_names[x->cand], label_names[x->label]);
            esc(b, x->text);
            wh_buf_puts(b, "</div>");
        }
    }
    if (c->ngroups) wh_buf_puts(b, "</table>");
    if (c->ngroups > 25)
        wh_buf_printf(b, "<p>… and %u more groups (in the JSON report).</p>", c->ngroups - 25);
    wh_buf_puts(b, "</section>");
}

static const char css[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;"
    "color:#1d2430}h1{font-size:1.6em}h2{border-bottom:1px solid #ccd;padding-bottom:.2em}"
    "small{color:#667;font-weight:normal;font-size:.6em}table{border-collapse:collapse;"
    "margin:.6em 0}td,th{border:1px solid #dde;padding:.25em .55em;text-align:left;"
    "vertical-align:top}th{background:#f3f4f8}.ci{color:#667;font-size:.85em}"
    ".chart .bar{fill:#5b7bd5}.chart .ci{stroke:#1d2430;stroke-width:2}.chart .target{stroke:"
    "#c0392b;stroke-dasharray:3 2;stroke-width:2}.chart .axis{stroke:#889}.chart .lab{"
    "text-anchor:end;font-size:12px}.chart .tick{font-size:11px;fill:#667;text-anchor:middle}"
    ".chart .dot{fill:#889}.chart .sig{fill:#5b7bd5}.ex{font-size:.85em;margin:.15em 0}";

void wh_replay_html(const wh_replay_result *res, const char *input, wh_buf *b)
{
    wh_buf_puts(b, "<!doctype html><html lang=en><head><meta charset=utf-8><title>whiply "
                   "replay: ");
    esc(b, input);
    wh_buf_printf(b, "</title><style>%s</style></head><body><h1>Replay of <code>", css);
    esc(b, input);
    wh_buf_printf(b,
                  "</code></h1><p>%llu lines, %llu events (%llu lines were not events), %llu "
                  "messages. Ground truth: %llu human removals, %llu approvals and %llu "
                  "reversals in the stream (%llu without a message named, attributed to the "
                  "user's last message; %llu named none); %llu sampled labels applied. "
                  "Labelled: %llu harmful, %llu fine; %llu unlabelled (%s). An action counts "
                  "from <b>%s</b> up.</p>",
                  (unsigned long long)res->lines, (unsigned long long)res->events,
                  (unsigned long long)res->errors, (unsigned long long)res->messages,
                  (unsigned long long)res->removals, (unsigned long long)res->approvals,
                  (unsigned long long)res->reversals, (unsigned long long)res->attributed,
                  (unsigned long long)res->unattributed, (unsigned long long)res->sample_applied,
                  (unsigned long long)res->harmful, (unsigned long long)res->ok,
                  (unsigned long long)res->unlabelled,
                  res->opts.unlabelled_ok ? "counted as fine" : "left out of the figures",
                  wh_action_names[res->opts.min_action]);
    for (uint64_t i = 0; i < res->errors && i < WH_REPLAY_MAX_ERRORS; i++) {
        wh_buf_printf(b, "<p class=ci>line %llu: ", (unsigned long long)res->first_errors[i].line);
        esc(b, res->first_errors[i].code);
        wh_buf_puts(b, ": ");
        esc(b, res->first_errors[i].message);
        wh_buf_puts(b, "</p>");
    }
    for (uint32_t i = 0; i < res->nrs; i++)
        html_ruleset(b, &res->rs[i]);
    for (uint32_t i = 0; i + 1 < res->nrs; i++)
        html_comparison(b, res, &res->cmp[i]);
    wh_buf_puts(b, "<p class=ci>Intervals are 95%: Wilson score intervals for shares, Newcombe's "
                   "square-and-add interval for paired changes. Made by whiply replay.</p>"
                   "</body></html>\n");
}
