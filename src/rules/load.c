/* load.c - YAML rules -> wh_ruleset, reporting every problem with file:line:col.
 *
 * Keys are described by tables (name + handler), so unknown keys get a "did you mean"
 * from the same table that parses the known ones. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"

#include "loader.h"
#include "text/utf8.h"

const char *const wh_action_names[WH_ACT__COUNT] = {"allow",  "warn",    "hold",
                                                    "delete", "timeout", "ban"};
const char *const wh_feature_names[WH_F__COUNT] = {
    "length", "letters",  "caps_ratio", "symbol_ratio",    "repeated_chars",
    "zalgo",  "mentions", "emotes",     "non_latin_ratio", "links"};

/* ---- small helpers ---- */

bool wh_cmp_holds(wh_cmp c, double x)
{
    switch (c.op) {
    case WH_OP_GT:
        return x > c.v;
    case WH_OP_GE:
        return x >= c.v;
    case WH_OP_LT:
        return x < c.v;
    case WH_OP_LE:
        return x <= c.v;
    case WH_OP_EQ:
        return x == c.v;
    case WH_OP_NE:
        return x != c.v;
    }
    return false;
}

bool wh_strset_has(const wh_strset *s, wh_str x)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == x.n && strncasecmp(s->v[i], x.p, x.n) == 0) return true;
    return false;
}

static bool parse_strset(ld_t *L, struct fy_node *n, const char *what, wh_strset *out)
{
    seq_iter it;
    if (!ld_seq_start(L, n, what, &it)) return false;
    uint32_t cap = 0;
    struct fy_node *x;
    while ((x = ld_seq_next(&it))) {
        char *s = ld_scalar(L, x, what);
        if (!s) continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            char **v = wh_arena_alloc(L->a, sizeof(char *) * cap);
            if (!v) return false;
            if (out->n) memcpy(v, out->v, sizeof(char *) * out->n);
            out->v = v;
        }
        out->v[out->n++] = s;
    }
    return true;
}

/* ---- rules ---- */

static const char *const rule_keys[] = {"id",           "description",    "when",      "action",
                                        "reason",       "priority",       "mode",      "roles",
                                        "exempt_roles", "channels",       "platforms", "escalate",
                                        "strikes",      "channel_action", NULL};

bool ld_valid_id(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void parse_rule(ld_t *L, struct fy_node *n)
{
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(L, n, "a rule must be a mapping with id, when and action");
        return;
    }
    if (L->nrules == L->caprules) {
        L->caprules = L->caprules ? L->caprules * 2 : 16;
        L->rules = realloc(L->rules, sizeof(wh_rule) * L->caprules);
    }
    L->cur_rule = L->nrules;
    wh_rule r;
    memset(&r, 0, sizeof(r));
    r.line = wh_yaml_line(n);
    r.col = wh_yaml_col(n);
    r.order = L->nrules;
    r.weight = 1;
    r.chan_mode = -1;
    bool have_when = false, have_action = false, ok = true;
    struct fy_node *esc_node = NULL;
    bool have_chan_action = false;
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = ld_scalar(L, kn, "a key");
        if (!k) continue;
        if (!strcmp(k, "id")) {
            r.id = ld_scalar(L, v, "'id'");
            if (r.id && !ld_valid_id(r.id)) {
                ERR(L, v, "rule id '%s' may only contain letters, digits, '_', '-' and '.'", r.id);
                ok = false;
            }
            for (uint32_t i = 0; r.id && i < L->nrules; i++)
                if (L->rules[i].id && !strcmp(L->rules[i].id, r.id))
                    ERR(L, v, "duplicate rule id '%s' (first defined at line %u)", r.id,
                        L->rules[i].line);
        } else if (!strcmp(k, "description")) {
            r.description = ld_scalar(L, v, "'description'");
        } else if (!strcmp(k, "reason")) {
            r.reason = ld_scalar(L, v, "'reason'");
        } else if (!strcmp(k, "when")) {
            have_when = true;
            r.when = ld_parse_cond(L, v, 0);
            if (!r.when) ok = false;
        } else if (!strcmp(k, "action")) {
            have_action = true;
            if (!ld_parse_action(L, v, &r)) ok = false;
        } else if (!strcmp(k, "priority")) {
            char *s = ld_scalar(L, v, "'priority'");
            char *end;
            if (s) {
                errno = 0;
                long long p = strtoll(s, &end, 10);
                if (*end || end == s || errno || p > 1000000000 || p < -1000000000)
                    ERR(L, v, "'priority' must be an integer, got '%s'", s);
                else
                    r.priority = p;
            }
        } else if (!strcmp(k, "mode")) {
            static const char *const modes[] = {"enforce", "shadow", NULL};
            int i = 0;
            ld_get_choice(L, v, "mode", modes, &i);
            r.shadow = i == 1;
        } else if (!strcmp(k, "roles")) {
            parse_strset(L, v, "'roles'", &r.roles);
        } else if (!strcmp(k, "exempt_roles")) {
            parse_strset(L, v, "'exempt_roles'", &r.exempt_roles);
        } else if (!strcmp(k, "channels")) {
            parse_strset(L, v, "'channels'", &r.channels);
        } else if (!strcmp(k, "platforms")) {
            parse_strset(L, v, "'platforms'", &r.platforms);
        } else if (!strcmp(k, "escalate")) {
            esc_node = kn;
            L->stateful = true;
            if (fy_node_get_type(v) == FYNT_SEQUENCE) {
                wh_step steps[WH_MAX_STEPS];
                if (ld_parse_ladder(L, v, steps, &r.nladder)) {
                    r.ladder = wh_arena_alloc(L->a, sizeof(wh_step) * r.nladder);
                    memcpy(r.ladder, steps, sizeof(wh_step) * r.nladder);
                    r.escalate = true;
                }
            } else {
                bool b;
                if (ld_get_bool(L, v, "'escalate' (true, or a ladder such as [warn, 60s, ban])",
                                &b))
                    r.escalate = b;
            }
        } else if (!strcmp(k, "strikes")) {
            ld_get_number(L, v, "'strikes' (the weight of this rule's offences)", 0, 100, false,
                          &r.weight);
        } else if (!strcmp(k, "channel_action")) {
            L->stateful = true;
            have_chan_action = true;
            if (!ld_parse_channel_action(L, v, &r)) ok = false;
        } else {
            ld_unknown_key(L, kn, k, rule_keys, "a rule");
        }
    }
    if (!r.id) {
        ERR(L, n, "rule has no 'id'");
        char buf[32];
        snprintf(buf, sizeof(buf), "rule-%u", L->nrules + 1);
        r.id = wh_arena_strndup(L->a, buf, strlen(buf));
    }
    if (!have_when) ERR(L, n, "rule '%s' has no 'when'", r.id);
    if (have_action && r.escalate)
        ERR(L, esc_node, "rule '%s' has both 'action' and 'escalate': the ladder picks the action",
            r.id);
    else if (!have_action && !r.escalate && !have_chan_action)
        ERR(L, n, "rule '%s' has no 'action' (or 'escalate')", r.id);
    if (r.escalate) r.action = WH_ACT_WARN; /* the ladder's first step at the least */
    /* A rule that only switches a channel mode allows the event, but is no allow rule:
     * it must not stop the rules of lower priority. */
    r.implicit_allow = !have_action && !r.escalate;
    r.on_join = ld_has_kind(r.when, WH_C_JOINS);
    r.has_wave = ld_has_kind(r.when, WH_C_WAVE);
    if (r.on_join) {
        const wh_cond *m = ld_message_only(r.when);
        if (m)
            wh_diags_add(L->d, L->path, m->line, m->col,
                         "rule '%s' counts 'joins', so it runs on join events, which have no "
                         "text: only account_age, reputation and strikes may stand beside "
                         "'joins'",
                         r.id);
    }
    (void)ok;
    L->rules[L->nrules++] = r;
}

/* ---- matcher errors ---- */

static void on_pattern_error(void *ud, uint32_t pi, const char *msg)
{
    ld_t *L = ud;
    if (pi == UINT32_MAX || pi >= L->nspecs) {
        wh_diags_add(L->d, L->path, 0, 0, "%s", msg);
        return;
    }
    const wh_pattern_info *in = &L->infos[pi];
    const wh_pattern_spec *sp = &L->specs[pi];
    /* Lint words a regex Hyperscan rejects as it always has, with what Hyperscan says of the
     * regex alone; only the rejected ones are compiled alone again (a rare, cheap error path,
     * where every regex used to be, once more than the databases need). */
    char *alone =
        L->lint && sp->kind == WH_PAT_REGEX ? wh_regex_check(sp->expr, sp->view, true) : NULL;
    if (alone)
        wh_diags_add(L->d, in->file, in->line, in->col, "bad regex '%s': %s", sp->expr, alone);
    else
        wh_diags_add(L->d, in->file, in->line, in->col, "'%s': %s", in->source, msg);
    free(alone);
}

/* ---- top level ---- */

static const char *const top_keys[] = {"version", "lists",      "exempt_roles", "rules",
                                       "state",   "escalation", "reputation",   "mod_actions",
                                       "models",  NULL};

static wh_status load(const char *path, const char *dir, const char *mem, size_t memlen,
                      const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out);

wh_status wh_ruleset_load(const char *path, const wh_load_opts *opts, wh_diags *diags,
                          wh_ruleset **out)
{
    return load(path, NULL, NULL, 0, opts, diags, out);
}

wh_status wh_ruleset_load_mem(const char *label, const char *base_dir, const char *text, size_t len,
                              const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out)
{
    return load(label, base_dir ? base_dir : ".", text, len, opts, diags, out);
}

static wh_status load(const char *path, const char *dir, const char *mem, size_t memlen,
                      const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out)
{
    *out = NULL;
    wh_status st = WH_EINVAL;
    uint32_t nd0 = diags->n;
    ld_t L;
    memset(&L, 0, sizeof(L));
    L.path = path;
    L.d = diags;
    L.compile = opts ? opts->compile : true;
    L.lint = opts ? opts->lint : false;
    wh_ruleset *rs = calloc(1, sizeof(*rs));
    if (!rs) return WH_ENOMEM;
    atomic_init(&rs->refs, 1);
    wh_arena_init(&rs->arena, 64 * 1024);
    L.rs = rs;
    L.a = &rs->arena;
    rs->path = wh_arena_strndup(L.a, path, strlen(path));
    const char *slash = strrchr(path, '/');
    L.dir = dir     ? wh_arena_strndup(L.a, dir, strlen(dir))
            : slash ? wh_arena_strndup(L.a, path, (size_t)(slash - path))
                    : wh_arena_strndup(L.a, ".", 1);
    L.hash = XXH3_createState();
    XXH3_64bits_reset(L.hash);
    ld_state_defaults(&rs->state);

    char *text = NULL;
    size_t tlen = 0;
    wh_status rst;
    struct fy_document *doc = NULL;
    if (mem) {
        text = malloc(memlen + 1);
        if (!text) goto fail;
        memcpy(text, mem, memlen);
        text[memlen] = 0;
        tlen = memlen;
    } else if ((rst = wh_read_file_max(path, WH_RULES_FILE_MAX, &text, &tlen)) != WH_OK) {
        char why[64];
        wh_diags_add(diags, path, 0, 0, "cannot read rules file: %s",
                     wh_read_file_why(rst, WH_RULES_FILE_MAX, why, sizeof(why)));
        goto fail;
    }
    XXH3_64bits_update(L.hash, text, tlen);
    doc = wh_yaml_parse(path, text, tlen, "rules files", diags);
    if (!doc) goto fail;
    struct fy_node *root = fy_document_root(doc);
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        wh_diags_add(diags, path, 1, 1, "the rules file must be a mapping with version and rules");
        goto fail;
    }
    struct fy_node *rules_node = NULL, *version = NULL;
    void *it = NULL;
    struct fy_node_pair *pr;
    /* Lists and global options first: rules refer to them wherever they are written. */
    while ((pr = fy_node_mapping_iterate(root, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char *k = ld_scalar(&L, kn, "a key");
        if (!k) continue;
        if (!strcmp(k, "version")) {
            version = v;
            char *s = ld_scalar(&L, v, "'version'");
            if (s && strcmp(s, "1"))
                ERR(&L, v, "unsupported version '%s' (this whiply reads version 1)", s);
        } else if (!strcmp(k, "lists")) {
            ld_parse_lists(&L, v);
        } else if (!strcmp(k, "models")) {
            ld_parse_models(&L, v);
        } else if (!strcmp(k, "exempt_roles")) {
            parse_strset(&L, v, "'exempt_roles'", &rs->exempt_roles);
        } else if (!strcmp(k, "rules")) {
            rules_node = v;
        } else if (!strcmp(k, "state")) {
            ld_parse_state_section(&L, v);
        } else if (!strcmp(k, "escalation")) {
            L.stateful = true;
            ld_parse_escalation_section(&L, v);
        } else if (!strcmp(k, "reputation")) {
            L.stateful = true;
            ld_parse_reputation_section(&L, v);
        } else if (!strcmp(k, "mod_actions")) {
            L.stateful = true;
            ld_parse_mod_actions_section(&L, v);
        } else {
            ld_unknown_key(&L, kn, k, top_keys, "the top level");
        }
    }
    if (!version) wh_diags_add(diags, path, 1, 1, "missing 'version: 1'");
    if (!rules_node || fy_node_get_type(rules_node) != FYNT_SEQUENCE) {
        wh_diags_add(diags, path, rules_node ? wh_yaml_line(rules_node) : 1,
                     rules_node ? wh_yaml_col(rules_node) : 1, "'rules' must be a list of rules");
    } else {
        it = NULL;
        struct fy_node *rn;
        while ((rn = fy_node_sequence_iterate(rules_node, &it)))
            parse_rule(&L, rn);
    }
    /* Build the ruleset: rules sorted by priority, groups, patterns. */
    rs->nrules = L.nrules;
    rs->rules = wh_arena_alloc(L.a, sizeof(wh_rule) * (L.nrules ? L.nrules : 1));
    if (L.nrules) memcpy(rs->rules, L.rules, sizeof(wh_rule) * L.nrules);
    /* Groups and patterns refer to rules by file order; keep a map to the sorted order. */
    qsort(rs->rules, rs->nrules, sizeof(wh_rule), ld_rule_cmp);
    uint32_t *pos = calloc(L.nrules ? L.nrules : 1, sizeof(uint32_t));
    for (uint32_t i = 0; i < rs->nrules; i++)
        pos[rs->rules[i].order] = i;
    for (uint32_t g = 0; g < L.ngroups; g++)
        L.groups[g].rule = pos[L.groups[g].rule];
    for (uint32_t p = 0; p < L.nspecs; p++)
        L.infos[p].rule = pos[L.infos[p].rule];
    free(pos);
    ld_check_reachability(&L, rs->rules, rs->nrules);
    rs->state.enabled = L.stateful;
    rs->state.need_chan = rs->state.nchan_slots || rs->state.need_wave || rs->state.need_panic;
    rs->state.sim_from = !rs->state.need_sim      ? UINT32_MAX
                         : rs->state.need_similar ? 0
                                                  : rs->state.wave_min_length;
    for (uint32_t i = 0; i < rs->nrules; i++)
        rs->state.need_chan |= rs->rules[i].chan_mode >= 0;
    if (rs->state.need_log) { /* a power of two, 8 .. WH_LOG_MAX (state/shard.h) */
        uint32_t cap = 8;
        while (cap < rs->state.log_cap)
            cap *= 2;
        rs->state.log_cap = cap;
    }
    /* join rules in priority order: each has a bit in the filter mask a join records, so a
     * raid's detection can name the earlier joiners that matched that rule's filters */
    for (uint32_t i = 0; i < rs->nrules; i++) {
        wh_rule *r = &rs->rules[i];
        r->join_slot = (int16_t)ld_join_slot_of(r->when);
        r->join_bit = 255;
        if (r->on_join && rs->state.njoin_rules < WH_MAX_JOIN_RULES) {
            rs->state.join_ids[rs->state.njoin_rules] = XXH3_64bits(r->id, strlen(r->id));
            r->join_bit = (uint8_t)rs->state.njoin_rules++;
        }
    }
    rs->gates = wh_arena_alloc(L.a, sizeof(wh_rule_gate) * (rs->nrules ? rs->nrules : 1));
    for (uint32_t i = 0; i < rs->nrules; i++) {
        wh_rule *r = &rs->rules[i];
        r->req_group = ld_required_group(r->when);
        r->req_links = ld_requires_links(r->when);
        rs->gates[i] = (wh_rule_gate){.req_group = r->req_group,
                                      .on_join = r->on_join,
                                      .req_links = r->req_links,
                                      .scoped = r->platforms.n || r->channels.n || r->roles.n ||
                                                r->exempt_roles.n};
    }
    rs->groups = L.groups;
    rs->ngroups = L.ngroups;
    L.groups = NULL;
    rs->pats = L.infos;
    rs->npats = L.nspecs;
    L.infos = NULL;
    /* Lint compiles even a ruleset with other problems, to report every regex Hyperscan
     * rejects (from the databases it builds, not from compiling each regex alone first). */
    if ((diags->n == nd0 || L.lint) && L.compile) {
        wh_matcher_opts mo = {.cache_dir = opts ? opts->cache_dir : NULL};
        L.infos = rs->pats; /* for error positions */
        st = wh_matcher_build(L.specs, L.nspecs, &mo, on_pattern_error, &L, &rs->matcher);
        L.infos = NULL;
        if (st != WH_OK && diags->n == nd0)
            wh_diags_add(diags, path, 0, 0, "cannot compile the patterns: %s", wh_status_str(st));
    }
    uint64_t h = XXH3_64bits_digest(L.hash);
    snprintf(rs->hash, sizeof(rs->hash), "%016llx", (unsigned long long)h);
    if (diags->n != nd0) {
        st = WH_EINVAL; /* e.g. a pattern Hyperscan rejected while the database was built */
        goto fail;
    }
    st = WH_OK;
    *out = rs;
    rs = NULL;
fail:
    if (doc) fy_document_destroy(doc);
    free(text);
    for (uint32_t i = 0; i < L.nlists; i++) {
        free(L.lists[i].terms);
        free(L.lists[i].lines);
    }
    free(L.lists);
    free(L.specs);
    free(L.infos);
    free(L.groups);
    free(L.rules);
    XXH3_freeState(L.hash);
    if (rs) wh_ruleset_release(rs);
    if (st == WH_OK) return WH_OK;
    return st == WH_EINVAL || st == WH_OK ? WH_EINVAL : st;
}

void wh_ruleset_retain(wh_ruleset *rs)
{
    atomic_fetch_add(&rs->refs, 1);
}

void wh_ruleset_release(wh_ruleset *rs)
{
    if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1) return;
    wh_matcher_free(rs->matcher);
    for (uint32_t i = 0; i < rs->nmodels; i++)
        wh_model_release(rs->models[i].model);
    free(rs->groups);
    free(rs->pats);
    wh_arena_free(&rs->arena);
    free(rs);
}
