/* actions.c - actions, escalation ladders, channel actions and the top-level behaviour
 * sections (see loader.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "text/utf8.h"

/* ---- actions ---- */

bool ld_parse_action(ld_t *L, struct fy_node *n, wh_rule *r)
{
    if (n && fy_node_get_type(n) == FYNT_SCALAR) {
        char *s = ld_scalar(L, n, "'action'");
        if (!s) return false;
        for (int a = 0; a < WH_ACT__COUNT; a++) {
            if (strcmp(s, wh_action_names[a])) continue;
            if (a == WH_ACT_TIMEOUT) {
                ERR(L, n, "'timeout' needs a duration: write {timeout: 10m}");
                return false;
            }
            r->action = (wh_action)a;
            return true;
        }
        const char *best = NULL;
        size_t bd = 3;
        for (int a = 0; a < WH_ACT__COUNT; a++) {
            size_t d = wh_levenshtein(s, wh_action_names[a]);
            if (d < bd) bd = d, best = wh_action_names[a];
        }
        if (best)
            ERR(L, n, "unknown action '%s'; did you mean '%s'?", s, best);
        else
            ERR(L, n, "unknown action '%s' (expected allow, warn, hold, delete, timeout or ban)",
                s);
        return false;
    }
    if (!n || fy_node_get_type(n) != FYNT_MAPPING || fy_node_mapping_item_count(n) != 1) {
        ERR(L, n,
            "'action' must be a name (delete) or one of {warn: MESSAGE}, {timeout: DURATION}");
        return false;
    }
    struct fy_node_pair *pr = fy_node_mapping_get_by_index(n, 0);
    struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
    char *k = ld_scalar(L, kn, "an action");
    if (!k) return false;
    if (!strcmp(k, "warn")) {
        r->action = WH_ACT_WARN;
        if (!ld_is_null_node(v)) r->message = ld_scalar(L, v, "the warn message");
        return true;
    }
    if (!strcmp(k, "timeout")) {
        char *d = ld_scalar(L, v, "the timeout duration");
        int64_t ms;
        if (!d) return false;
        if (!wh_parse_duration(d, strlen(d), &ms) || ms < 1000) {
            ERR(L, v, "bad duration '%s': expected e.g. 30s, 10m, 1h30m, 7d (at least 1s)", d);
            return false;
        }
        if (ms / 1000 > MAX_TIMEOUT_S) {
            ERR(L, v, "timeout '%s' is longer than 14d, the platforms' limit; use ban", d);
            return false;
        }
        r->action = WH_ACT_TIMEOUT;
        r->duration_s = (uint32_t)(ms / 1000);
        return true;
    }
    static const char *const keys[] = {"warn", "timeout", NULL};
    ld_unknown_key(L, kn, k, keys, "'action'");
    return false;
}

/* ---- escalation ---- */

/* A ladder: [warn, 60s, 10m, 1d, ban]; a duration is a timeout of that length. */
bool ld_parse_ladder(ld_t *L, struct fy_node *n, wh_step *out, uint32_t *nout)
{
    seq_iter it;
    if (!ld_seq_start(L, n, "an escalation ladder", &it)) return false;
    uint32_t k = 0;
    bool ok = true;
    struct fy_node *x;
    while ((x = ld_seq_next(&it))) {
        char *s = ld_scalar(L, x, "a ladder step");
        if (!s) {
            ok = false;
            continue;
        }
        if (k == WH_MAX_STEPS) {
            ERR(L, x, "an escalation ladder has at most %d steps", WH_MAX_STEPS);
            return false;
        }
        wh_step st = {0, 0};
        bool found = false;
        for (int a = 0; a < WH_ACT__COUNT && !found; a++)
            if (a != WH_ACT_TIMEOUT && a != WH_ACT_ALLOW && !strcmp(s, wh_action_names[a]))
                st.action = (uint8_t)a, found = true;
        int64_t ms;
        if (!found && wh_parse_duration(s, strlen(s), &ms) && ms >= 1000 &&
            ms / 1000 <= MAX_TIMEOUT_S) {
            st.action = WH_ACT_TIMEOUT;
            st.duration_s = (uint32_t)(ms / 1000);
            found = true;
        }
        if (!found) {
            ERR(L, x,
                "bad ladder step '%s': expected warn, hold, delete, ban or a timeout duration "
                "from 1s to 14d (60s, 10m, 1d)",
                s);
            ok = false;
            continue;
        }
        out[k++] = st;
    }
    if (ok && k == 0) {
        ERR(L, n, "an escalation ladder needs at least one step");
        ok = false;
    }
    *nout = k;
    return ok;
}

static const char *const chan_action_keys[] = {"mode", "for", NULL};
const char *const wh_chan_mode_names[WH_MODE__COUNT] = {"followers_only", "slow",
                                                        "subscribers_only", "emote_only"};

bool ld_parse_channel_action(ld_t *L, struct fy_node *n, wh_rule *r)
{
    if (!ld_map_start(L, n, "'channel_action' ({mode: followers_only, for: 10m})")) return false;
    bool ok = true, have_mode = false, have_for = false, seen_mode = false;
    int64_t ms = 0;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "mode")) {
            seen_mode = true;
            char *m = ld_scalar(L, v, "'mode'");
            for (int i = 0; m && i < WH_MODE__COUNT; i++)
                if (!strcmp(m, wh_chan_mode_names[i])) r->chan_mode = (int8_t)i, have_mode = true;
            if (m && !have_mode) {
                ERR(L, v,
                    "unknown channel mode '%s' (expected followers_only, slow, subscribers_only "
                    "or emote_only)",
                    m);
                ok = false;
            }
        } else if (!strcmp(k, "for")) {
            have_for = true;
            ok &= ld_get_duration(L, v, "'for'", 1000, &ms);
            if (ms > 366LL * 86400000) {
                ERR(L, v, "'for' is at most 366d");
                ok = false;
                ms = 0;
            }
        } else {
            ld_unknown_key(L, k_n, k, chan_action_keys, "'channel_action'");
            ok = false;
        }
    }
    if (!seen_mode) {
        ERR(L, n, "'channel_action' needs 'mode'");
        ok = false;
    }
    if (!have_for) {
        ERR(L, n, "'channel_action' needs 'for' (how long the mode stays on, such as 10m)");
        ok = false;
    }
    r->chan_for_s = (uint32_t)(ms / 1000);
    if (!ok) r->chan_mode = -1;
    return ok;
}

/* ---- top-level behaviour sections ---- */

void ld_parse_state_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"max_users", "max_channels", "idle", NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!ld_map_start(L, n, "'state'")) return;
    L->stateful = true;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "max_users"))
            ld_get_uint(L, v, "'max_users'", 1, 1u << 30, &c->max_users);
        else if (!strcmp(k, "max_channels"))
            ld_get_uint(L, v, "'max_channels'", 1, 1u << 24, &c->max_channels);
        else if (!strcmp(k, "idle"))
            ld_get_duration(L, v, "'idle'", 1000, &c->idle_ms);
        else
            ld_unknown_key(L, k_n, k, keys, "'state'");
    }
}

void ld_parse_escalation_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"ladder", "half_life", "expire", NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!ld_map_start(L, n, "'escalation'")) return;
    struct fy_node *k_n, *v, *hl = NULL, *ex = NULL;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "ladder"))
            ld_parse_ladder(L, v, c->ladder, &c->nladder);
        else if (!strcmp(k, "half_life"))
            hl = v, ld_get_duration(L, v, "'half_life'", 1000, &c->half_life_ms);
        else if (!strcmp(k, "expire"))
            ex = v, ld_get_duration(L, v, "'expire'", 1000, &c->expire_ms);
        else
            ld_unknown_key(L, k_n, k, keys, "'escalation'");
    }
    if (hl && ex) ERR(L, ex, "'escalation' takes 'half_life' or 'expire', not both");
    if (ex) c->half_life_ms = 0;
    if (hl) c->expire_ms = 0;
}

void ld_parse_reputation_section(ld_t *L, struct fy_node *n)
{
    static const char *const keys[] = {"message", "interval", "approve", "strike",
                                       "min",     "max",      NULL};
    wh_state_cfg *c = &L->rs->state;
    if (!ld_map_start(L, n, "'reputation'")) return;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        if (!strcmp(k, "message"))
            ld_get_number(L, v, "'message'", 0, 1000, false, &c->rep_message);
        else if (!strcmp(k, "interval"))
            ld_get_duration(L, v, "'interval'", 0, &c->rep_interval_ms);
        else if (!strcmp(k, "approve"))
            ld_get_number(L, v, "'approve'", 0, 1000, false, &c->rep_approve);
        else if (!strcmp(k, "strike"))
            ld_get_number(L, v, "'strike'", -1000, 0, false, &c->rep_strike);
        else if (!strcmp(k, "min"))
            ld_get_number(L, v, "'min'", -1e6, 0, false, &c->rep_min);
        else if (!strcmp(k, "max"))
            ld_get_number(L, v, "'max'", 0, 1e6, false, &c->rep_max);
        else
            ld_unknown_key(L, k_n, k, keys, "'reputation'");
    }
}

static const char *const mod_kind_names[WH_MOD__WEIGHTED + 1] = {"warn", "timeout", "ban", "deny",
                                                                 NULL};

void ld_parse_mod_actions_section(ld_t *L, struct fy_node *n)
{
    wh_state_cfg *c = &L->rs->state;
    if (!ld_map_start(L, n, "'mod_actions' (strikes per moderator action)")) return;
    struct fy_node *k_n, *v;
    char *k;
    FOR_PAIRS(L, n, k_n, v, k)
    {
        int found = -1;
        for (int i = 0; i < WH_MOD__WEIGHTED; i++)
            if (!strcmp(k, mod_kind_names[i])) found = i;
        if (found < 0) {
            ld_unknown_key(L, k_n, k, mod_kind_names, "'mod_actions'");
            continue;
        }
        ld_get_number(L, v, "a strike weight", 0, 100, false, &c->mod_weight[found]);
    }
}

void ld_state_defaults(wh_state_cfg *c)
{
    c->max_users = 2000000;
    c->max_channels = 200000;
    c->idle_ms = 7 * 86400000LL;
    static const wh_step ladder[] = {{WH_ACT_WARN, 0},
                                     {WH_ACT_TIMEOUT, 60},
                                     {WH_ACT_TIMEOUT, 600},
                                     {WH_ACT_TIMEOUT, 86400},
                                     {WH_ACT_BAN, 0}};
    memcpy(c->ladder, ladder, sizeof(ladder));
    c->nladder = WH_ARRAY_LEN(ladder);
    c->half_life_ms = 86400000LL;
    c->expire_ms = 0;
    c->rep_message = 1;
    c->rep_interval_ms = 60000;
    c->rep_approve = 5;
    c->rep_strike = -3;
    c->rep_min = -100;
    c->rep_max = 100;
    c->mod_weight[WH_MOD_WARN] = 1;
    c->mod_weight[WH_MOD_TIMEOUT] = 1;
    c->mod_weight[WH_MOD_BAN] = 3;
    c->mod_weight[WH_MOD_DENY] = 1;
}

/* Message-only predicates found under a join rule, for the error. */
