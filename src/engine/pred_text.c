/* pred_text.c - predicates on the text: words and regex (a match group hit), the message's
 * shape (length, caps_ratio, ...), links (see pred.h). */
#include "pred.h"

#include <string.h>

static uint32_t count_emotes(const wh_event *ev)
{
    if (ev->meta_emotes_is_array) return ev->meta_emotes.n;
    /* Twitch tag: "25:0-4,12-16/1902:6-10": one occurrence per range. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < ev->meta_emotes.n; i++)
        n += ev->meta_emotes.p[i] == '-';
    return n;
}

double wh_feature(const wh_features *x, const wh_event *ev, wh_feature_id f)
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

/* words, regex: a surviving blocked match of the group (after unless_words) */
static bool match_holds(eval_ctx *c, const wh_cond *n)
{
    return c->an->group_hit && c->an->group_hit[n->group] != 0;
}

const wh_pred_eval wh_pred_match = {.holds = match_holds};

static bool num_holds(eval_ctx *c, const wh_cond *n)
{
    return wh_cmp_holds(n->cmp, wh_feature(&c->an->f, &c->an->ev, n->feat));
}

static void feature_explain(wh_buf *out, const eval_ctx *c, wh_feature_id f)
{
    wh_buf_puts(out, wh_feature_names[f]);
    wh_buf_puts(out, "\",\"value\":");
    wh_json_double(out, wh_feature(&c->an->f, &c->an->ev, f));
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
}

static void num_explain(wh_buf *out, const eval_ctx *c, const wh_cond *n)
{
    feature_explain(out, c, n->feat);
}

const wh_pred_eval wh_pred_num = {.holds = num_holds, .explain = num_explain};

/* A host matches itself and its subdomains. */
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

static bool links_holds(eval_ctx *c, const wh_cond *n)
{
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

static void links_explain(wh_buf *out, const eval_ctx *c, const wh_cond *n)
{
    feature_explain(out, c, WH_F_LINKS);
}

const wh_pred_eval wh_pred_links = {.holds = links_holds, .explain = links_explain};
