/* rules.h - the compiled ruleset: YAML rules (libfyaml) -> rule tree + one matcher.
 *
 * A wh_ruleset is immutable after load and reference-counted, so that a reload can build
 * a new one beside the old and events in flight finish on the one they started with. */
#ifndef WH_RULES_H
#define WH_RULES_H

#include <stdatomic.h>

#include "base/base.h"
#include "match/matcher.h"

typedef enum {
    WH_ACT_ALLOW = 0,
    WH_ACT_WARN,
    WH_ACT_HOLD,
    WH_ACT_DELETE,
    WH_ACT_TIMEOUT,
    WH_ACT_BAN,
    WH_ACT__COUNT
} wh_action;

extern const char *const wh_action_names[WH_ACT__COUNT];

typedef enum {
    WH_F_LENGTH = 0,
    WH_F_LETTERS,
    WH_F_CAPS_RATIO,
    WH_F_SYMBOL_RATIO,
    WH_F_REPEATED,
    WH_F_ZALGO,
    WH_F_MENTIONS,
    WH_F_EMOTES,
    WH_F_NON_LATIN_RATIO,
    WH_F_LINKS,
    WH_F__COUNT
} wh_feature_id;

extern const char *const wh_feature_names[WH_F__COUNT];

typedef enum { WH_OP_GT, WH_OP_GE, WH_OP_LT, WH_OP_LE, WH_OP_EQ, WH_OP_NE } wh_cmp_op;

typedef struct {
    wh_cmp_op op;
    double v;
} wh_cmp;

bool wh_cmp_holds(wh_cmp c, double x);

typedef enum { WH_C_ALL, WH_C_ANY, WH_C_NOT, WH_C_MATCH, WH_C_NUM, WH_C_LINKS } wh_cond_kind;

typedef struct {
    char **hosts; /* lowercased; a host matches itself and its subdomains */
    uint32_t n;
} wh_hostset;

typedef struct wh_cond wh_cond;
struct wh_cond {
    wh_cond_kind kind;
    uint32_t line, col;
    wh_cond **kids; /* ALL, ANY, NOT */
    uint32_t nkids;
    uint32_t group;         /* MATCH: the match group */
    wh_feature_id feat;     /* NUM */
    wh_cmp cmp;             /* NUM; LINKS count */
    bool has_count;         /* LINKS */
    wh_hostset allow, deny; /* LINKS */
    bool has_allow, has_deny;
};

typedef struct {
    char **v;
    uint32_t n;
} wh_strset;

bool wh_strset_has(const wh_strset *s, wh_str x); /* ASCII case-insensitive */

typedef struct {
    char *id;
    char *description;
    char *reason;  /* template, may be NULL */
    char *message; /* warn text, may be NULL */
    int64_t priority;
    bool shadow;
    wh_action action;
    uint32_t duration_s;
    wh_cond *when;
    int32_t req_group; /* a match group the condition cannot hold without, or -1: lets the
                          engine skip most rules of a message in one test */
    wh_strset roles, exempt_roles, channels, platforms;
    uint32_t line, col, order;
} wh_rule;

/* A match group: the patterns of one `words` or `regex` predicate. */
typedef struct {
    int32_t permit_set; /* the unless_words set that can cancel its matches, or -1 */
    uint32_t rule;      /* index of the owning rule */
} wh_group;

typedef struct {
    uint32_t group;
    int32_t permit_set;
    uint32_t rule;
    const char *source; /* the term/regex as written */
    uint32_t line, col; /* where it was written (the list file line for list terms) */
    const char *file;
} wh_pattern_info;

typedef struct wh_ruleset {
    atomic_int refs;
    wh_rule *rules; /* sorted: priority desc, then file order */
    uint32_t nrules;
    wh_group *groups;
    uint32_t ngroups;
    uint32_t npermit_sets;
    wh_pattern_info *pats;
    uint32_t npats;
    wh_matcher *matcher;
    wh_strset exempt_roles;
    char hash[17]; /* identifies the ruleset in decisions */
    char *path;
    wh_arena arena; /* owns every string and node above */
} wh_ruleset;

/* ---- diagnostics ---- */
typedef struct {
    char *file;
    uint32_t line, col; /* 1-based; 0 when unknown */
    char *message;
} wh_diag;

typedef struct {
    wh_diag *v;
    uint32_t n, cap;
} wh_diags;

void wh_diags_add(wh_diags *d, const char *file, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void wh_diags_print(const wh_diags *d, void *fp);
void wh_diags_free(wh_diags *d);

typedef struct {
    const char *cache_dir; /* Hyperscan database cache; NULL disables */
    bool compile;          /* false: check only, do not build the matcher */
    bool lint;             /* also compile each regex alone in Hyperscan, to name every one it
                              rejects (slow for big rulesets; loads for serving skip it) */
} wh_load_opts;

/* Loads and compiles a rules file. Every problem found is added to diags; the ruleset is
 * returned only when there were none. */
wh_status wh_ruleset_load(const char *path, const wh_load_opts *opts, wh_diags *diags,
                          wh_ruleset **out);
/* The same, from YAML text in memory; list files resolve relative to base_dir. */
wh_status wh_ruleset_load_mem(const char *label, const char *base_dir, const char *text, size_t len,
                              const wh_load_opts *opts, wh_diags *diags, wh_ruleset **out);
void wh_ruleset_retain(wh_ruleset *rs);
void wh_ruleset_release(wh_ruleset *rs);

#endif
