/* preds.c - the predicates of a rule's `when`: one row each (pred_defs), the conditions
 * and their parsers (see loader.h; what each means when deciding: src/engine/pred.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "text/utf8.h"

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

wh_cond *ld_new_cond(ld_t *L, wh_cond_kind kind, struct fy_node *n)
{
    wh_cond *c = wh_arena_alloc(L->a, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->line = wh_yaml_line(n);
    c->col = wh_yaml_col(n);
    return c;
}

static wh_cond *parse_cond_list(ld_t *L, struct fy_node *n, wh_cond_kind kind, int depth)
{
    wh_cond *c = ld_new_cond(L, kind, n);
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
        ERR(L, n, "'%s' must be a list of conditions", kind == WH_C_ALL ? "all" : "any");
        return c;
    }
    int cnt = fy_node_sequence_item_count(n);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    void *it = NULL;
    struct fy_node *x;
    while ((x = fy_node_sequence_iterate(n, &it))) {
        wh_cond *k = ld_parse_cond(L, x, depth + 1);
        if (k) c->kids[c->nkids++] = k;
    }
    return c;
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

/* ---- behaviour predicates ---- */

/* The slot of a GCRA limit (limits written alike share one cell). */
static bool rate_slot(ld_t *L, struct fy_node *where, wh_rate_slot rs, bool chan, uint32_t *out)
{
    wh_state_cfg *c = &L->rs->state;
    wh_rate_slot *v = chan ? c->chan_slots : c->user_slots;
    uint32_t *n = chan ? &c->nchan_slots : &c->nuser_slots;
    uint32_t max = chan ? WH_CHAN_SLOTS : WH_USER_SLOTS;
    for (uint32_t i = 0; i < *n; i++)
        if (wh_rate_slot_eq(&v[i], &rs)) {
            *out = i;
            return true;
        }
    if (*n == max) {
        ERR(L, where, "more than %u different %s limits in one ruleset (state keeps %u per %s)",
            max, chan ? "channel" : "per-user rate", max, chan ? "channel" : "user");
        return false;
    }
    v[*n] = rs;
    *out = (*n)++;
    return true;
}

/* rate: {count, per, scope, mode, burst} and joins: {count, per, mode, burst}. The default
 * mode is a sliding window (at most `count` in any `per`); `mode: gcra` is a token bucket
 * (`burst` at once, refilled at count/per). Event times reach year 9999 (2.5e14 ms) and GCRA
 * works in ms * count: 10,000 keeps that inside int64. */
#define WH_RATE_MAX_COUNT 10000
#define WH_RATE_MAX_PERIOD_MS (366LL * 86400000)

static wh_cond *parse_rate(ld_t *L, struct fy_node *kn, struct fy_node *n, bool joins)
{
    const char *what = joins ? "'joins'" : "'rate'";
    wh_cond *c = ld_new_cond(L, joins ? WH_C_JOINS : WH_C_RATE, kn);
    if (!ld_map_start(L, n,
                      joins ? "'joins' ({count: 20, per: 10s})"
                            : "'rate' ({count: 5, per: 10s, scope: user})"))
        return NULL;
    static const char *const keys[] = {"count", "per", "scope", "mode", "burst", NULL};
    static const char *const jkeys[] = {"count", "per", "mode", "burst", NULL};
    wh_rate_slot rs = {0};
    bool ok = true, have_count = false, have_per = false;
    double burst = 0;
    struct fy_node *k_n, *v, *burst_n = NULL, *count_n = NULL;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        double x;
        if (!strcmp(k, "count")) {
            have_count = true;
            count_n = v;
            ok &= ld_get_number(L, v, "'count'", 1, WH_RATE_MAX_COUNT, true, &x);
            rs.count = (int64_t)x;
        } else if (!strcmp(k, "per")) {
            have_per = true;
            ok &= ld_get_duration(L, v, "'per'", 1, &rs.period_ms);
            if (ok && rs.period_ms > WH_RATE_MAX_PERIOD_MS) {
                ERR(L, v, "'per' is at most 366d");
                ok = false;
            }
        } else if (!strcmp(k, "burst")) {
            burst_n = v;
            ok &= ld_get_number(L, v, "'burst'", 1, WH_RATE_MAX_COUNT, true, &burst);
        } else if (!strcmp(k, "mode")) {
            char *m = ld_scalar(L, v, "'mode'");
            if (m && !strcmp(m, "gcra"))
                rs.gcra = true;
            else if (m && strcmp(m, "window")) {
                ERR(L, v, "unknown mode '%s' (expected window or gcra)", m);
                ok = false;
            }
        } else if (!strcmp(k, "scope") && !joins) {
            char *sc = ld_scalar(L, v, "'scope'");
            if (sc && !strcmp(sc, "channel"))
                c->chan_scope = true;
            else if (sc && strcmp(sc, "user")) {
                ERR(L, v, "unknown scope '%s' (expected user or channel)", sc);
                ok = false;
            }
        } else {
            ld_unknown_key(L, k_n, k, joins ? jkeys : keys, what);
            ok = false;
        }
    }
    if (!have_count) ERR(L, n, "%s needs 'count'", what);
    if (!have_per) ERR(L, n, "%s needs 'per' (a duration such as 10s)", what);
    if (!ok || !have_count || !have_per) return NULL;
    if (joins) c->chan_scope = true;
    if (burst_n && !rs.gcra) {
        /* a window has no burst: at most `count` in any `per` is the whole rule */
        ERR(L, burst_n,
            "'burst' belongs to a token bucket: add 'mode: gcra' (a burst of 'burst', refilled "
            "at count/per), or drop it (at most 'count' in any 'per')");
        return NULL;
    }
    if (!rs.gcra) {
        int64_t max = c->chan_scope ? WH_WINDOW_MAX_CHAN_COUNT : WH_WINDOW_MAX_USER_COUNT;
        if (rs.count > max) {
            ERR(L, count_n,
                "%s counts at most %" PRId64 " in a sliding window%s (it keeps the time of each); "
                "for more use 'mode: gcra'",
                what, max, c->chan_scope ? "" : " per user");
            return NULL;
        }
    }
    rs.burst = burst > 0 ? (int64_t)burst : rs.count;
    rs.joins = joins;
    if (!rate_slot(L, n, rs, c->chan_scope, &c->slot)) return NULL;
    wh_state_cfg *st = &L->rs->state;
    if (!rs.gcra && !c->chan_scope) {
        st->need_log = true;
        if ((uint32_t)rs.count > st->log_cap) st->log_cap = (uint32_t)rs.count;
        if (rs.period_ms > st->log_keep_ms) st->log_keep_ms = rs.period_ms;
    }
    if (joins) {
        /* every join of the longest join window, up to WH_JOIN_LOG_MAX: a rule's filters may
         * first hold some joins after the window went over, and still name the earliest */
        st->join_log_cap = WH_JOIN_LOG_MAX;
        if (rs.period_ms > st->join_keep_ms) st->join_keep_ms = rs.period_ms;
    }
    return c;
}

#define WH_MAX_RECENT_COUNT 8 /* similar: sketches of the last 8 messages (WH_RECENT) */
#define WH_MAX_WAVE_USERS 256

/* duplicate: {count, within}; similar: {count, within, threshold};
 * wave: {users, within, threshold, min_length, from} */
static wh_cond *parse_repeat(ld_t *L, struct fy_node *kn, struct fy_node *n, wh_cond_kind kind)
{
    const char *what = kind == WH_C_DUP       ? "'duplicate'"
                       : kind == WH_C_SIMILAR ? "'similar'"
                                              : "'wave'";
    wh_cond *c = ld_new_cond(L, kind, kn);
    if (!ld_map_start(L, n,
                      kind == WH_C_DUP       ? "'duplicate' ({count: 3, within: 60s})"
                      : kind == WH_C_SIMILAR ? "'similar' ({count: 3, within: 60s, threshold: 0.8})"
                                             : "'wave' ({users: 20, within: 30s, threshold: 0.8})"))
        return NULL;
    static const char *const dkeys[] = {"count", "within", NULL};
    static const char *const skeys[] = {"count", "within", "threshold", NULL};
    static const char *const wkeys[] = {"users", "within", "threshold", "min_length", "from", NULL};
    const char *cname = kind == WH_C_WAVE ? "users" : "count";
    c->threshold = 0.8;
    c->min_length = 20;
    bool ok = true, have_count = false, have_within = false;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        double x;
        if (!strcmp(k, cname)) {
            have_count = true;
            if (kind == WH_C_WAVE)
                ok &= ld_get_uint(L, v, "'users'", 2, WH_MAX_WAVE_USERS, &c->count);
            else
                ok &= ld_get_uint(L, v, "'count'", 2, WH_MAX_RECENT_COUNT, &c->count);
        } else if (!strcmp(k, "within")) {
            have_within = true;
            ok &= ld_get_duration(L, v, "'within'", 1, &c->within_ms);
        } else if (!strcmp(k, "threshold") && kind != WH_C_DUP) {
            ok &= ld_get_number(L, v, "'threshold'", 0.5, 1, false, &x);
            c->threshold = x;
        } else if (!strcmp(k, "min_length") && kind == WH_C_WAVE) {
            ok &= ld_get_uint(L, v, "'min_length'", 1, 1000, &c->min_length);
        } else if (!strcmp(k, "from") && kind == WH_C_WAVE) {
            /* suspects (the default): only messages of fresh, unknown or low-reputation
             * accounts, or with links or mentions, count; everyone: every message */
            char *m = ld_scalar(L, v, "'from'");
            if (m && !strcmp(m, "everyone"))
                c->flag = true;
            else if (m && strcmp(m, "suspects")) {
                ERR(L, v, "unknown 'from' '%s' (expected suspects or everyone)", m);
                ok = false;
            }
        } else {
            ld_unknown_key(L, k_n, k,
                           kind == WH_C_DUP       ? dkeys
                           : kind == WH_C_SIMILAR ? skeys
                                                  : wkeys,
                           what);
            ok = false;
        }
    }
    if (!have_count) ERR(L, n, "%s needs '%s'", what, cname);
    if (!have_within) ERR(L, n, "%s needs 'within' (a duration such as 60s)", what);
    if (!ok || !have_count || !have_within) return NULL;
    wh_state_cfg *st = &L->rs->state;
    if (kind == WH_C_DUP) {
        /* every message of the window stays in the log (up to WH_LOG_MAX), not only the last
         * 8: a third copy after nine other lines is still the third */
        st->need_hash = st->need_log = true;
        st->log_cap = WH_LOG_MAX;
        if (c->within_ms > st->log_keep_ms) st->log_keep_ms = c->within_ms;
    }
    if (kind == WH_C_SIMILAR) st->need_sim = st->need_similar = st->need_log = true;
    if (kind == WH_C_WAVE) {
        st->need_sim = st->need_wave = true;
        if (st->wave_threshold == 0 || c->threshold < st->wave_threshold)
            st->wave_threshold = c->threshold;
        if (c->within_ms > st->wave_within_ms) st->wave_within_ms = c->within_ms;
        if (st->wave_min_length == 0 || c->min_length < st->wave_min_length)
            st->wave_min_length = c->min_length;
        if (c->count > st->wave_max_users) st->wave_max_users = c->count;
    }
    return c;
}

/* ---- the predicates: one row each ----
 *
 * A condition map's keys are looked up here: its name, the condition kind it makes, what it
 * needs (state, a matcher) and how its value is parsed. The list of known keys and "did you
 * mean" come from the same rows. What a kind means at decision time is in
 * src/engine/eval.c; docs/rules.md has every key. */

enum {
    PRED_STATE = 1,   /* keeps behaviour state (the ruleset then has state) */
    PRED_MATCHER = 2, /* scans the text (words, regex): `unless_words` applies to it */
    PRED_MAP = 4,     /* a modifier of the whole map (unless_words, view), read first */
};

/* What the keys of one condition map share. */
typedef struct {
    int32_t permit;      /* the map's unless_words set, or -1 */
    wh_view_id dview;    /* the map's `view` for regexes */
    int depth;           /* nesting */
    struct fy_node *key; /* the key being parsed (where errors point) */
} cond_map;

typedef struct pred_def pred_def;
struct pred_def {
    const char *name;
    wh_cond_kind kind;
    unsigned flags;
    int arg; /* NUM: the feature; AGE, REP, STRIKES: the comparison kind (CMP_*) */
    wh_cond *(*parse)(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m);
};

static wh_cond *pred_words(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_MATCH, m->key);
    c->group = ld_new_group(L, m->permit);
    ld_parse_terms(L, v, c->group, -1, "'words'");
    return c;
}

static wh_cond *pred_regex(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_MATCH, m->key);
    c->group = ld_new_group(L, m->permit);
    ld_parse_regexes(L, v, m->dview, c->group, -1);
    return c;
}

static wh_cond *pred_modifier(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return NULL; /* read before the other keys (ld_parse_cond) */
}

bool ld_is_ratio(wh_feature_id f)
{
    return f == WH_F_CAPS_RATIO || f == WH_F_SYMBOL_RATIO || f == WH_F_NON_LATIN_RATIO;
}

static wh_cond *pred_num(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_NUM, m->key);
    c->feat = (wh_feature_id)d->arg;
    if (!ld_parse_cmp(L, v, d->name, ld_is_ratio(c->feat) ? CMP_RATIO : CMP_COUNT, &c->cmp))
        return NULL;
    return c;
}

static wh_cond *pred_links(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_links(L, v);
}

static wh_cond *pred_score(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return ld_parse_score(L, m->key, v);
}

static wh_cond *pred_list(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_cond_list(L, v, d->kind, m->depth);
}

static wh_cond *pred_not(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *kid = ld_parse_cond(L, v, m->depth + 1);
    if (!kid) return NULL;
    wh_cond *c = ld_new_cond(L, WH_C_NOT, m->key);
    c->kids = wh_arena_alloc(L->a, sizeof(wh_cond *));
    c->kids[0] = kid;
    c->nkids = 1;
    return c;
}

static wh_cond *pred_rate(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_rate(L, m->key, v, d->kind == WH_C_JOINS);
}

static wh_cond *pred_repeat(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    return parse_repeat(L, m->key, v, d->kind);
}

static wh_cond *pred_cmp(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    char what[48];
    snprintf(what, sizeof(what), "'%s'", d->name);
    wh_cond *c = ld_new_cond(L, d->kind, m->key);
    return ld_parse_cmp(L, v, what, d->arg, &c->cmp) ? c : NULL;
}

static wh_cond *pred_first(ld_t *L, const pred_def *d, struct fy_node *v, cond_map *m)
{
    wh_cond *c = ld_new_cond(L, WH_C_FIRST, m->key);
    return ld_get_bool(L, v, "'first_message'", &c->flag) ? c : NULL;
}

static const pred_def pred_defs[] = {
    /* the text */
    {"words", WH_C_MATCH, PRED_MATCHER, 0, pred_words},
    {"unless_words", WH_C_MATCH, PRED_MAP, 0, pred_modifier},
    {"regex", WH_C_MATCH, PRED_MATCHER, 0, pred_regex},
    {"view", WH_C_MATCH, PRED_MAP, 0, pred_modifier},
    /* the message's shape */
    {"length", WH_C_NUM, 0, WH_F_LENGTH, pred_num},
    {"letters", WH_C_NUM, 0, WH_F_LETTERS, pred_num},
    {"caps_ratio", WH_C_NUM, 0, WH_F_CAPS_RATIO, pred_num},
    {"symbol_ratio", WH_C_NUM, 0, WH_F_SYMBOL_RATIO, pred_num},
    {"repeated_chars", WH_C_NUM, 0, WH_F_REPEATED, pred_num},
    {"zalgo", WH_C_NUM, 0, WH_F_ZALGO, pred_num},
    {"mentions", WH_C_NUM, 0, WH_F_MENTIONS, pred_num},
    {"emotes", WH_C_NUM, 0, WH_F_EMOTES, pred_num},
    {"non_latin_ratio", WH_C_NUM, 0, WH_F_NON_LATIN_RATIO, pred_num},
    {"links", WH_C_LINKS, 0, 0, pred_links},
    /* behaviour */
    {"rate", WH_C_RATE, PRED_STATE, 0, pred_rate},
    {"joins", WH_C_JOINS, PRED_STATE, 0, pred_rate},
    {"duplicate", WH_C_DUP, PRED_STATE, 0, pred_repeat},
    {"similar", WH_C_SIMILAR, PRED_STATE, 0, pred_repeat},
    {"wave", WH_C_WAVE, PRED_STATE, 0, pred_repeat},
    {"account_age", WH_C_AGE, PRED_STATE, CMP_DURATION, pred_cmp},
    {"first_message", WH_C_FIRST, PRED_STATE, 0, pred_first},
    {"reputation", WH_C_REP, PRED_STATE, CMP_SIGNED, pred_cmp},
    {"strikes", WH_C_STRIKES, PRED_STATE, CMP_COUNT, pred_cmp},
    /* classifiers */
    {"score", WH_C_SCORE, 0, 0, pred_score},
    /* combinators */
    {"all", WH_C_ALL, 0, 0, pred_list},
    {"any", WH_C_ANY, 0, 0, pred_list},
    {"not", WH_C_NOT, 0, 0, pred_not},
};

static const pred_def *pred_find(const char *name)
{
    for (size_t i = 0; i < WH_ARRAY_LEN(pred_defs); i++)
        if (!strcmp(name, pred_defs[i].name)) return &pred_defs[i];
    return NULL;
}

static void unknown_pred(ld_t *L, struct fy_node *kn, const char *k)
{
    const char *known[WH_ARRAY_LEN(pred_defs) + 1];
    for (size_t i = 0; i < WH_ARRAY_LEN(pred_defs); i++)
        known[i] = pred_defs[i].name;
    known[WH_ARRAY_LEN(pred_defs)] = NULL;
    ld_unknown_key(L, kn, k, known, "a condition");
}

wh_cond *ld_parse_cond(ld_t *L, struct fy_node *n, int depth)
{
    if (depth > 16) {
        ERR(L, n, "conditions nested deeper than 16 levels");
        return NULL;
    }
    if (!n || fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "a condition must be a mapping such as {words: [...]}");
        return NULL;
    }
    /* unless_words and view apply to the whole map: read them first. */
    cond_map m = {.permit = -1, .dview = WH_VIEW_FOLDED, .depth = depth};
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        size_t kl;
        const char *k = fy_node_get_scalar(fy_node_pair_key(pr), &kl);
        if (!k) continue;
        if (kl == 12 && !memcmp(k, "unless_words", 12)) {
            m.permit = (int32_t)L->rs->npermit_sets++;
            ld_parse_terms(L, fy_node_pair_value(pr), 0, m.permit, "'unless_words'");
        } else if (kl == 4 && !memcmp(k, "view", 4)) {
            ld_parse_view(L, fy_node_pair_value(pr), &m.dview);
        }
    }
    int cnt = fy_node_mapping_item_count(n);
    wh_cond *all = ld_new_cond(L, WH_C_ALL, n);
    all->kids = wh_arena_alloc(L->a, sizeof(wh_cond *) * (size_t)(cnt > 0 ? cnt : 1));
    bool has_matcher = false;
    it = NULL;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = ld_scalar(L, kn, "a key");
        if (!k) continue;
        const pred_def *d = pred_find(k);
        if (!d) {
            unknown_pred(L, kn, k);
            continue;
        }
        if (d->flags & PRED_MAP) continue;
        m.key = kn;
        wh_cond *c = d->parse(L, d, v, &m);
        if (d->flags & PRED_STATE) L->stateful = true;
        if (d->flags & PRED_MATCHER) has_matcher = true;
        if (c) all->kids[all->nkids++] = c;
    }
    if (m.permit >= 0 && !has_matcher)
        ERR(L, n, "'unless_words' only has an effect beside 'words' or 'regex' in the same map");
    if (all->nkids == 1) return all->kids[0];
    return all;
}

const wh_cond *ld_message_only(const wh_cond *c)
{
    if (!c) return NULL;
    switch (c->kind) {
    case WH_C_ALL:
    case WH_C_ANY:
    case WH_C_NOT:
        for (uint32_t i = 0; i < c->nkids; i++) {
            const wh_cond *m = ld_message_only(c->kids[i]);
            if (m) return m;
        }
        return NULL;
    case WH_C_JOINS:
    case WH_C_AGE:
    case WH_C_REP:
    case WH_C_STRIKES:
        return NULL;
    default: /* a message rate (user or channel) counts messages, never joins */
        return c;
    }
}

/* The channel slot of the first `joins` in c, or -1. */
int ld_join_slot_of(const wh_cond *c)
{
    if (!c) return -1;
    if (c->kind == WH_C_JOINS) return (int)c->slot;
    for (uint32_t i = 0; i < c->nkids; i++) {
        int s = ld_join_slot_of(c->kids[i]);
        if (s >= 0) return s;
    }
    return -1;
}

bool ld_has_kind(const wh_cond *c, wh_cond_kind k)
{
    if (!c) return false;
    if (c->kind == k) return true;
    for (uint32_t i = 0; i < c->nkids; i++)
        if (ld_has_kind(c->kids[i], k)) return true;
    return false;
}
