/* loader.h - what the rules loader's files share (not an interface): the loader's state,
 * the YAML getters that report a problem at the node's line and column, and each part's
 * entry points.
 *
 *   load.c     the top level: the file, its sections, each rule
 *   getters.c  the YAML getters (scalar, sequence, mapping, comparison, duration, number, bool)
 *   lists.c    lists (inline and files) and the patterns of words and regex
 *   preds.c    conditions: the combinators, the key lookup over the predicate families (their
 *              rows and parsers are in src/engine/pred_*.c, beside what each means)
 *   models.c   classifiers: `models:` and the `score` predicate
 *   actions.c  actions, ladders, channel actions, the behaviour sections
 *   lint.c     rules that can never fire (reachability) */
#ifndef WH_RULES_LOADER_H
#define WH_RULES_LOADER_H

#include <libfyaml.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rules.h"
#include "yaml.h"

#define MAX_TIMEOUT_S (14 * 86400) /* Twitch's and Discord's longest timeout */

typedef struct {
    char *name;
    char **terms;
    uint32_t *lines;
    uint32_t n;
    char *file; /* where the terms came from (for positions); NULL: inline */
    uint32_t line, col;
    bool ok;
} list_t;

typedef struct {
    const char *path;
    char *dir;
    wh_diags *d;
    wh_ruleset *rs;
    wh_arena *a;
    list_t *lists;
    uint32_t nlists;
    wh_pattern_spec *specs;
    wh_pattern_info *infos;
    uint32_t nspecs, capspecs;
    wh_group *groups;
    uint32_t ngroups, capgroups;
    wh_rule *rules;
    uint32_t nrules, caprules;
    uint32_t cur_rule;
    XXH3_state_t *hash;
    bool compile, lint;
    bool stateful; /* a behaviour predicate, an escalation or a state section was seen */
} ld_t;

#define ERR(L, node, ...)                                                                          \
    wh_diags_add((L)->d, (L)->path, wh_yaml_line(node), wh_yaml_col(node), __VA_ARGS__)

/* Iterates a sequence (or a single scalar treated as a one-item sequence). */
typedef struct {
    struct fy_node *seq;
    void *it;
    struct fy_node *single;
    bool done;
} seq_iter;

#define FOR_PAIRS(L, n, kn, v, k)                                                                  \
    for (void *it_ = NULL, *pr_;                                                                   \
         (pr_ = fy_node_mapping_iterate((n), &it_)) &&                                             \
         ((kn = fy_node_pair_key(pr_)), (v = fy_node_pair_value(pr_)), 1);)                        \
        if (!(k = ld_scalar((L), kn, "a key"))) {                                                  \
        } else

enum { CMP_COUNT = 0, CMP_RATIO = 1, CMP_SIGNED, CMP_DURATION };

bool ld_is_null_node(struct fy_node *n);
char *ld_lower_dup(ld_t *L, const char *s);
char *ld_scalar(ld_t *L, struct fy_node *n, const char *what);
struct fy_node *ld_seq_next(seq_iter *s);
bool ld_seq_start(ld_t *L, struct fy_node *n, const char *what, seq_iter *s);
void ld_unknown_key(ld_t *L, struct fy_node *k, const char *key, const char *const *known,
                    const char *where);
list_t *ld_find_list(ld_t *L, const char *name);
uint32_t ld_new_group(ld_t *L, int32_t permit_set);
void ld_parse_lists(ld_t *L, struct fy_node *n);
void ld_parse_regexes(ld_t *L, struct fy_node *n, wh_view_id dview, uint32_t group,
                      int32_t permit_set);
void ld_parse_terms(ld_t *L, struct fy_node *n, uint32_t group, int32_t permit_set,
                    const char *what);
bool ld_parse_view(ld_t *L, struct fy_node *n, wh_view_id *out);
bool ld_get_bool(ld_t *L, struct fy_node *v, const char *what, bool *out);
bool ld_get_duration(ld_t *L, struct fy_node *v, const char *what, int64_t min_ms, int64_t *out);
bool ld_get_number(ld_t *L, struct fy_node *v, const char *what, double lo, double hi, bool integer,
                   double *out);
bool ld_get_uint(ld_t *L, struct fy_node *v, const char *what, uint32_t lo, uint32_t hi,
                 uint32_t *out);
/* ---- predicates: one row per condition key, in one file per family ----
 *
 * A row says how a key of a condition map is read (here, the rules' side) and what the
 * condition it makes means when an event is decided (eval, src/engine/pred.h). The families
 * live with their meaning, in src/engine/pred_*.c; preds.c has the combinators and the list
 * of families, from which the key lookup, the list of known keys and "did you mean" come. */
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

typedef struct wh_pred_def wh_pred_def;
struct wh_pred_def {
    const char *name; /* the key; NULL ends a family's rows */
    wh_cond_kind kind;
    unsigned flags;
    int arg; /* NUM: the feature; AGE, REP, STRIKES: the comparison kind (CMP_*) */
    wh_cond *(*parse)(ld_t *L, const wh_pred_def *d, struct fy_node *v, cond_map *m);
    const struct wh_pred_eval *eval; /* what the kind means (NULL: all, any, not, modifiers) */
};

/* The families (src/engine/pred_*.c), each ended by a row without a name. */
extern const wh_pred_def wh_preds_text[], wh_preds_rate[], wh_preds_repeat[], wh_preds_user[],
    wh_preds_score[], wh_preds_channel[];

bool ld_map_start(ld_t *L, struct fy_node *n, const char *what);
/* A scalar that must be one of names (NULL-terminated): its index in *out; else "unknown
 * WHAT 'x' (expected a, b or c)" at the node, and false. */
bool ld_get_choice(ld_t *L, struct fy_node *v, const char *what, const char *const *names,
                   int *out);
bool ld_parse_cmp(ld_t *L, struct fy_node *n, const char *what, int kind, wh_cmp *out);
wh_cond *ld_new_cond(ld_t *L, wh_cond_kind kind, struct fy_node *n);
wh_cond *ld_parse_cond(ld_t *L, struct fy_node *n, int depth);
void ld_parse_models(ld_t *L, struct fy_node *n);
wh_cond *ld_parse_score(ld_t *L, struct fy_node *kn, struct fy_node *n);
bool ld_is_ratio(wh_feature_id f);
bool ld_parse_action(ld_t *L, struct fy_node *n, wh_rule *r);
bool ld_parse_channel_action(ld_t *L, struct fy_node *n, wh_rule *r);
void ld_parse_escalation_section(ld_t *L, struct fy_node *n);
bool ld_parse_ladder(ld_t *L, struct fy_node *n, wh_step *out, uint32_t *nout);
void ld_parse_mod_actions_section(ld_t *L, struct fy_node *n);
void ld_parse_reputation_section(ld_t *L, struct fy_node *n);
void ld_parse_state_section(ld_t *L, struct fy_node *n);
void ld_state_defaults(wh_state_cfg *c);
bool ld_has_kind(const wh_cond *c, wh_cond_kind k);
int ld_join_slot_of(const wh_cond *c);
const wh_cond *ld_message_only(const wh_cond *c);
bool ld_valid_id(const char *s);
void ld_check_reachability(ld_t *L, wh_rule *sorted, uint32_t n);
int32_t ld_required_group(const wh_cond *c);
bool ld_requires_links(const wh_cond *c);
int ld_rule_cmp(const void *a, const void *b);

#endif
