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

static const wh_pred_eval eval_match = {.holds = match_holds};

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

static const wh_pred_eval eval_num = {.holds = num_holds, .explain = num_explain};

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

static const wh_pred_eval eval_links = {.holds = links_holds, .explain = links_explain};

/* ---- how the keys are read ---- */

static void parse_hosts(ld_t *L, struct fy_node *n, const char *what, wh_hostset *out)
{
    seq_iter it;
    if (!ld_seq_start(L, n, what, &it)) return;
    uint32_t cap = 0;
    struct fy_node *x;
    while ((x = ld_seq_next(&it))) {
        char *t = ld_scalar(L, x, "a host");
        if (!t) continue;
        char **src = &t;
        uint32_t cnt = 1;
        if (t[0] == '@') {
            list_t *l = ld_find_list(L, t + 1);
            if (!l) {
                ERR(L, x, "unknown list '%s' (define it under 'lists:')", t + 1);
                continue;
            }
            src = l->terms;
            cnt = l->n;
        }
        for (uint32_t i = 0; i < cnt; i++) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                char **v = wh_arena_alloc(L->a, sizeof(char *) * cap);
                if (out->n) memcpy(v, out->hosts, sizeof(char *) * out->n);
                out->hosts = v;
            }
            char *h = ld_lower_dup(L, src[i]);
            /* Accept "https://host/..." and "*.host" as written by people. */
            char *ss = strstr(h, "://");
            if (ss) h = ss + 3;
            if (h[0] == '*' && h[1] == '.') h += 2;
            char *slash = strchr(h, '/');
            if (slash) *slash = 0;
            out->hosts[out->n++] = h;
        }
    }
}

static wh_cond *parse_links(ld_t *L, struct fy_node *n)
{
    wh_cond *c = ld_new_cond(L, WH_C_LINKS, n);
    if (fy_node_get_type(n) == FYNT_SCALAR) {
        c->has_count = ld_parse_cmp(L, n, "links", CMP_COUNT, &c->cmp);
        return c;
    }
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "'links' must be a comparison or a mapping with count/allow/deny");
        return c;
    }
    static const char *const keys[] = {"count", "allow", "deny", NULL};
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        char *k = ld_scalar(L, fy_node_pair_key(pr), "a key");
        struct fy_node *v = fy_node_pair_value(pr);
        if (!k) continue;
        if (!strcmp(k, "count"))
            c->has_count = ld_parse_cmp(L, v, "links count", CMP_COUNT, &c->cmp);
        else if (!strcmp(k, "allow"))
            c->has_allow = true, parse_hosts(L, v, "'allow'", &c->allow);
        else if (!strcmp(k, "deny"))
            c->has_deny = true, parse_hosts(L, v, "'deny'", &c->deny);
        else
            ld_unknown_key(L, fy_node_pair_key(pr), k, keys, "'links'");
    }
    if (!c->has_count && !c->has_allow && !c->has_deny) {
        c->has_count = true;
        c->cmp = (wh_cmp){WH_OP_GE, 1};
    }
    return c;
}

static wh_cond *pred_words(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_MATCH, m->key);
    c->group = ld_new_group(L, m->permit);
    ld_parse_terms(L, v, c->group, -1, "'words'");
    return c;
}

static wh_cond *pred_regex(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_MATCH, m->key);
    c->group = ld_new_group(L, m->permit);
    ld_parse_regexes(L, v, m->dview, c->group, -1);
    return c;
}

static wh_cond *pred_modifier(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return NULL; /* read before the other keys (ld_parse_cond) */
}

bool ld_is_ratio(wh_feature_id f)
{
    return f == WH_F_CAPS_RATIO || f == WH_F_SYMBOL_RATIO || f == WH_F_NON_LATIN_RATIO;
}

static wh_cond *pred_num(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_NUM, m->key);
    c->feat = (wh_feature_id)d->arg;
    if (!ld_parse_cmp(L, v, d->name, ld_is_ratio(c->feat) ? CMP_RATIO : CMP_COUNT, &c->cmp))
        return NULL;
    return c;
}

static wh_cond *pred_links(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_links(L, v);
}

const wh_pred_def wh_preds_text[] = {
    /* the text */
    {"words", WH_C_MATCH, PRED_MATCHER, 0, pred_words, &eval_match},
    {"unless_words", WH_C_MATCH, PRED_MAP, 0, pred_modifier, NULL},
    {"regex", WH_C_MATCH, PRED_MATCHER, 0, pred_regex, &eval_match},
    {"view", WH_C_MATCH, PRED_MAP, 0, pred_modifier, NULL},
    /* the message's shape */
    {"length", WH_C_NUM, 0, WH_F_LENGTH, pred_num, &eval_num},
    {"letters", WH_C_NUM, 0, WH_F_LETTERS, pred_num, &eval_num},
    {"caps_ratio", WH_C_NUM, 0, WH_F_CAPS_RATIO, pred_num, &eval_num},
    {"symbol_ratio", WH_C_NUM, 0, WH_F_SYMBOL_RATIO, pred_num, &eval_num},
    {"repeated_chars", WH_C_NUM, 0, WH_F_REPEATED, pred_num, &eval_num},
    {"zalgo", WH_C_NUM, 0, WH_F_ZALGO, pred_num, &eval_num},
    {"mentions", WH_C_NUM, 0, WH_F_MENTIONS, pred_num, &eval_num},
    {"emotes", WH_C_NUM, 0, WH_F_EMOTES, pred_num, &eval_num},
    {"non_latin_ratio", WH_C_NUM, 0, WH_F_NON_LATIN_RATIO, pred_num, &eval_num},
    {"links", WH_C_LINKS, 0, 0, pred_links, &eval_links},
    {NULL, 0, 0, 0, NULL, NULL},
};
